"""Matrix kernels shared by every algorithm: vec/kron, PSD matrix functions, the geometric mean, iterative roots, norms.

Written once against the Python array API: every function takes ``xp = backend.namespace(...)`` from its array
arguments and uses only the standard through it (plus ``array_api_extra.kron`` and the backend's ``eigh``, which
sends NumPy to LAPACK's divide-and-conquer driver). Results have the namespace, device and dtype of the inputs;
no function mutates its arguments.

Papers: KrADagrad (Mei et al., shared/papers/kradagrad.md), MBAG (mini-block adaptive gradient,
shared/papers/mbag.md) and Shampoo (Eqs. 2-3, the inverse fourth roots); the errata are shared/notes/errata.md.

Where each idea lives (each submodule's docstring states its conventions; every name is re-exported here, so
``krad_ref.linalg.NAME`` is the one import path):
  * ``vec_kron``: :func:`vec`, :func:`unvec`, :func:`kron`, :func:`sym`. KrADagrad Sec. 2.1; errata 15
    (column-major vec: vec(L G R) = (R^T kron L) vec(G)).
  * ``psd``: :func:`eigh_psd`, :func:`psd_power`, :func:`sqrt_psd`, :func:`inv_root_psd`, ``EPS_MODES``. f(A) =
    V f(Lambda) V^T by one eigh (KrADagrad Sec. 2.1 and Alg. 1, Shampoo Eqs. 2-3, MBAG Eq. 3) and the
    numerical-rank rule tau = 4 n u lambda_max that decides which eigenvalues are zero.
  * ``geomean``: :func:`geometric_mean`. Ando's M_g(A, B), KrADagrad Sec. 3.3; errata 10.
  * ``roots``: :func:`newton_schulz` (MBAG Eq. 5), :func:`coupled_newton_inv_root` (Shampoo's coupled Newton,
    Guo-Higham Eq. 3.2), :func:`psd_root_iteration` (KrADagrad Alg. 1's warm-started root; errata 12) and their
    results :class:`RootResult`, :class:`NewtonSchulzResult`.
  * ``norms``: :func:`norm_2`, :func:`norm_fro`, :func:`norm_trace`. KrADagrad Sec. 2.1 and Prop. 3.2.
  * ``_common``: the internal helpers the others share (symmetric part, scaled Frobenius norm, argument checks)
    and ``DIVERGENCE_RATIO``, the 1.2x guard of every iteration.
"""
from __future__ import annotations

from ._common import DIVERGENCE_RATIO
from .geomean import geometric_mean
from .norms import _norm_fro, norm_2, norm_fro, norm_trace  # noqa: F401 - krad.py calls linalg._norm_fro
from .psd import EPS_MODES, eigh_psd, inv_root_psd, psd_power, sqrt_psd
from .psd import _psd_power  # noqa: F401 - the optimizers' roots call the kernel of psd_power
from .roots import Array  # noqa: F401 - the old module's annotation alias, still importable from here
from .roots import NewtonSchulzResult, RootResult, coupled_newton_inv_root, newton_schulz, psd_root_iteration
from .vec_kron import kron, sym, unvec, vec

__all__ = [
    "vec",
    "unvec",
    "kron",
    "sym",
    "eigh_psd",
    "psd_power",
    "sqrt_psd",
    "inv_root_psd",
    "geometric_mean",
    "RootResult",
    "NewtonSchulzResult",
    "newton_schulz",
    "coupled_newton_inv_root",
    "psd_root_iteration",
    "norm_2",
    "norm_fro",
    "norm_trace",
    "EPS_MODES",
    "DIVERGENCE_RATIO",
]
