"""MBAG, the Mini-Block Adaptive Gradient method, and its variants MBAG-EMA and MBAG-N.

References:
  J. Lee, "MBAG: A Scalable Mini-Block Adaptive Gradient Method for Deep Neural Networks" (shared/papers/mbag.md):
  Eqs. (2)-(6), Alg. 1 (MBAG), Alg. 2 (MBAG-EMA), Sec. IV-B (Newton-Schulz, MBAG-N), Sec. IV-C (grouping);
  Higham, *Functions of Matrices* (2008), Eq. (6.35) (coupled Newton-Schulz); errata 5, 6, 15, 28, 29.
  No public implementation exists: every convention the paper leaves open is chosen here and stated in the submodule
  that owns it.

The paper's names, once. theta is the parameter, g_t its stochastic gradient, split into groups pi_i of tau
parameters each (``group``); for each group, independently (the block-diagonal approximation, Eq. (6)):
    G_t = G_{t-1} + g_t g_t^T,  G_0 = lambda I                         (Eq. 2, the statistic; lambda = ``lam``)
    H_t = G_t^{-1} = H_{t-1} - H g g^T H / (1 + g^T H g),  H_0 = I/lambda (Eq. 4, Sherman-Morrison)
    R_t = H_t^{1/2} = G_t^{-1/2}  refreshed when t = 0 mod T_sqr by T_NS Newton-Schulz steps, else R_{t-1}
    v_t = beta v_{t-1} + R_t g_t,  theta_t = theta_{t-1} - eta v_t    (Alg. 1, lines 6-12; v is the direction)
MBAG-EMA (Alg. 2) keeps G_t = alpha G_{t-1} + (1 - alpha) g g^T (G_0 = lambda I, never inverted) and takes
R_t = G_t^{-1/2} from Newton-Schulz with input G. MBAG-N preconditions with G^{-1} itself: v_t = beta v + H_t g_t.

Where each idea lives (paper section -> submodule):
  * Sec. IV-C, grouping: a parameter as (num_groups, tau) groups; tau=None structural; the remainder ->
    :mod:`krad_ref.mbag.grouping`
  * Sec. IV-A, Eq. (4): Sherman-Morrison updates of H = G^{-1}, batched over the groups -> :mod:`krad_ref.mbag.inverse`
  * Sec. IV-B, Eq. (5): batched coupled Newton-Schulz roots with their Frobenius rescaling (errata 6), and exact roots
    by one batched eigh -> :mod:`krad_ref.mbag.roots`
  * Alg. 1, MBAG: config, state, init, update, the record "mbag" -> :mod:`krad_ref.mbag.mbag_alg`
  * Alg. 2, MBAG-EMA, with its damping floor (errata 29) -> :mod:`krad_ref.mbag.mbag_ema_alg`
  * Sec. IV-B / VI, MBAG-N -> :mod:`krad_ref.mbag.mbag_n_alg`
  * what the three share (config checks, state creation and validation, momentum, the direction) ->
    :mod:`krad_ref.mbag.common`
Every name of ``__all__`` is importable from this package, as before the split into submodules.

Weight decay is not part of the paper's MBAG: compose with ``transforms.weight_decay``; ``params`` is unused.

Registered ids and module-level :class:`~krad_ref.algorithm.Algorithm` records: "mbag" (:data:`mbag`), "mbag_ema"
(:data:`mbag_ema`), "mbag_n" (:data:`mbag_n`). A single group with exact roots, beta = 0, T_sqr = 1 and lam = delta
is full-matrix AdaGrad in the (delta I + sum g g^T)^{-1/2} form (``adagrad.AdagradFullConfig(form="kradagrad")``),
not Duchi's (delta I + (sum g g^T)^{1/2})^{-1} of the paper's introduction (errata 5); the vec conventions differ
(row-major here, column-major there) but a matrix function commutes with the permutation, so the directions agree
entry for entry as arrays of the parameter's shape.
Importing this package registers the three ids, in that order ("mbag", "mbag_ema", "mbag_n").
"""
from __future__ import annotations

from .grouping import REMAINDERS, group, group_size, layout, ungroup
from .inverse import sherman_morrison
from .roots import ROOT_METHODS, GroupRoots, batched_newton_schulz
from .mbag_alg import MbagConfig, MbagState, mbag, mbag_init, mbag_update
from .mbag_alg import Array, _root_of_H  # noqa: F401  (outside __all__ as before; a crossval test calls _root_of_H)
from .mbag_ema_alg import (
    AUTO_FLOOR_FACTOR,
    MbagEmaConfig,
    MbagEmaState,
    ema_damping,
    mbag_ema,
    mbag_ema_init,
    mbag_ema_update,
)
from .mbag_n_alg import MbagNConfig, MbagNState, mbag_n, mbag_n_init, mbag_n_update

__all__ = [
    "layout", "group_size", "group", "ungroup",
    "sherman_morrison", "GroupRoots", "batched_newton_schulz", "ema_damping",
    "MbagConfig", "MbagState", "mbag_init", "mbag_update", "mbag",
    "MbagEmaConfig", "MbagEmaState", "mbag_ema_init", "mbag_ema_update", "mbag_ema",
    "MbagNConfig", "MbagNState", "mbag_n_init", "mbag_n_update", "mbag_n",
    "ROOT_METHODS", "REMAINDERS", "AUTO_FLOOR_FACTOR",
]
