"""MBAG, Algorithm 1: Sherman-Morrison inverse H_t (Eq. 4), its root R_t = H_t^{1/2} every T_sqr steps, momentum.

References:
  J. Lee, MBAG (shared/papers/mbag.md) Alg. 1, Eqs. (2)-(6), Sec. IV-B (the root sqrt(||H||_F) X_N), Sec. VI (the
  defaults); errata 6, 28.

Per group (the block-diagonal approximation, Eq. (6)):
    H_t = G_t^{-1} = H_{t-1} - H g g^T H / (1 + g^T H g),  H_0 = I/lambda (Eq. 4, Sherman-Morrison)
    R_t = H_t^{1/2} = G_t^{-1/2}  refreshed when t = 0 mod T_sqr by T_NS Newton-Schulz steps, else R_{t-1}
    v_t = beta v_{t-1} + R_t g_t,  theta_t = theta_{t-1} - eta v_t    (Alg. 1, lines 6-12; v is the direction)
H_t comes from :mod:`krad_ref.mbag.inverse`, the groups from :mod:`krad_ref.mbag.grouping` (tau, ``remainder``).
The root sqrt(||H||_F) X_N is the paper's formula (correct); with a fixed T_NS it under-estimates H^{1/2} in the
eigen-directions of the LARGEST eigenvalues of G (those of large gradients). The derivation and the measured errors
are in :mod:`krad_ref.mbag.roots`: its docstring is "the module docstring" that the Newton-Schulz notes below cite.

Convention the paper leaves open (errata 28), our choice: the root used before the first refresh (T_sqr > 1) is
the root of the initial statistic, H_0^{1/2} = I / sqrt(lam).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import algorithm, backend
from ..algorithm import Algorithm, register
from .common import _apply, _check_common, _check_root_fields, _check_state, _direction, _init_arrays, _momentum, _next
from .grouping import group
from .inverse import _sm, _sm_limit
from .roots import _eigh_power, _ns

Array = Any


@dataclass(frozen=True)
class MbagConfig:
    """MBAG hyperparameters (Alg. 1). Defaults: the paper's CIFAR-10 run (Sec. VI-A).

    References:
      MBAG Alg. 1, Eqs. (2)-(5), Sec. IV-C, Sec. VI (lambda = 0.01, beta = 0.9, T_sqr = 50, T_NS = 5, tau = 32 on
      CIFAR-10; lambda = 0.1, T_NS = 7 on the autoencoders).

    Args:
      lam: lambda > 0; G_0 = lambda I, H_0 = I / lambda (damping and initial inverse).
      beta: momentum in [0, 1); v_t = beta v_{t-1} + R_t g_t (no dampening, no bias correction).
      T_sqr: root refresh interval >= 1: the root is recomputed on steps t with t % T_sqr == 0 (t = 1, 2, ...);
        before the first refresh it is H_0^{1/2} = I / sqrt(lam) (errata 28).
      T_NS: Newton-Schulz iterations per refresh (fixed count, as the paper; errata 6 for its accuracy).
      tau: group size (None: structural, see :func:`group_size`; the paper ran 32 on fully-connected layers).
      remainder: ``"error"`` or ``"pad"`` when tau does not divide the parameter size (module docstring).
      root_method: ``"newton_schulz"`` (the paper: sqrt(||H||_F) X_N) or ``"eigh"`` (exact H^{1/2}).
    """

    lam: float = 0.01
    beta: float = 0.9
    T_sqr: int = 50
    T_NS: int = 5
    tau: int | None = None
    remainder: str = "error"
    root_method: str = "newton_schulz"

    def __post_init__(self):
        _check_common(self)
        _check_root_fields(self)


class MbagState(NamedTuple):
    """MBAG state (immutable); g groups of tau parameters (``layout``)."""

    count: Array     # shape (), int32: updates taken so far (t after an update)
    H: Array         # (g, tau, tau), param dtype: H_t = G_t^{-1} per group (Eq. 4), exactly symmetric
    root: Array      # (g, tau, tau), param dtype: R ~ H^{1/2} in use (last refresh; I/sqrt(lam) before the first)
    v: Array         # (g, tau), param dtype: momentum buffer v_t (grouped)
    residual: Array  # (g,), param dtype: ||I - Y X||_F of the last Newton-Schulz refresh (0: none yet, or eigh)
    template: Array  # (0, *param_shape), param dtype, no data: records the parameter shape and dtype


def mbag_init(shape_or_array, config: MbagConfig, *, dtype=None, xp=None) -> MbagState:
    """Initial MBAG state: H_0 = I / lam and root I / sqrt(lam) per group, v = 0, count 0.

    Args:
      shape_or_array: the parameter shape or the parameter (its namespace, device, dtype).
      config: :class:`MbagConfig`.
      dtype, xp: as ``algorithm.creation`` (default float64, NumPy).

    Returns:
      :class:`MbagState`. Memory 2 g tau^2 + g tau entries (g tau = N, rounded up with padding).

    Raises:
      ValueError: tau does not divide the size and remainder="error".
    """
    if not isinstance(config, MbagConfig):
        raise TypeError(f"config: expected MbagConfig, got {type(config).__name__}")
    c, (g, tau), H, v, template, count = _init_arrays(shape_or_array, config, dtype, xp, 1.0 / config.lam)
    xp = c.xp
    root = xp.zeros_like(H) + (1.0 / math.sqrt(config.lam)) * xp.eye(tau, dtype=c.dtype, device=c.device)
    return MbagState(count=count, H=H, root=root, v=v, residual=xp.zeros((g,), dtype=c.dtype, device=c.device),
                     template=template)


def _root_of_H(H, config, xp):
    if config.root_method == "eigh":
        return _eigh_power(H, 0.5, None, xp, "H"), xp.zeros(H.shape[:-2], dtype=H.dtype, device=backend.device(H))
    r = _ns(H, config.T_NS, xp)
    return r.sqrt, r.residual


@algorithm.overflow_guard(MbagConfig, _sm_limit, "the Sherman-Morrison term (H g)(H g)^T")
def mbag_update(grad, state: MbagState, config: MbagConfig, *, params=None):
    """One MBAG step (Alg. 1, lines 4-11): Sherman-Morrison update, root refresh every T_sqr steps, momentum.

    References:
      MBAG Alg. 1; Eq. (4) (H update); Eq. (5) + Sec. IV-B (root sqrt(||H||_F) X_N); Sec. IV-C (groups); errata 6, 28.

    Args:
      grad: gradient g_t, the parameter's shape and dtype, finite.
      state: :class:`MbagState` (never modified).
      config: :class:`MbagConfig` (the one the state was made with).
      params: unused (MBAG has no weight decay; compose with ``transforms.weight_decay``).

    Returns:
      ``(direction, new_state)``: direction = ungroup(v_t), v_t = beta v_{t-1} + R_t g_t; the caller steps
      theta <- theta - eta * direction.

    Numerical caveats:
      See :func:`sherman_morrison` (H accumulates ~ t tau u ||H_0|| of rounding) and the module docstring (a fixed
      T_NS under-estimates H^{1/2} in the directions of large gradients; ``state.residual`` says by how much).
    """
    xp, shape, _ = _check_state(grad, state, config, MbagState, MbagConfig, ("H", "root"))
    t = int(state.count) + 1
    gb = group(grad, config.tau, remainder=config.remainder)
    H = _sm(state.H, gb, xp)
    if t % config.T_sqr == 0:
        root, residual = _root_of_H(H, config, xp)
    else:
        root, residual = state.root, state.residual
    v = _momentum(state.v, _apply(root, gb), config.beta)
    new = MbagState(count=_next(state.count, xp), H=H, root=root, v=v, residual=residual, template=state.template)
    return _direction(v, shape, xp), new


mbag = register(Algorithm("mbag", MbagConfig, MbagState, mbag_init, mbag_update))
