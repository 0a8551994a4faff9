"""Ground truth in mpmath: exact conversion, Loewner margins, Kronecker products, PSD powers, geometric means.

Every claim of ``proofs_check`` is judged here, so this package states its precision policy and keeps to it:
all arithmetic runs under ``workdps(dps)`` with dps >= MIN_DPS = 40 (50 by default), inputs are converted
exactly, results are rounded once at the end, and each function's accuracy contract is the identity its result
satisfies (M1). ``from proofs_check import mp as M`` gives every name below as ``M.name``.

Idea -> submodule
-----------------
* working precision (``DEFAULT_DPS``, ``MIN_DPS``, ``resolve_dps``, ``workdps``, ``mp_call``): :mod:`.precision`
* exact float -> mpf conversion and the single rounding back (``to_mpf``, ``to_mp``, ``from_mp``): :mod:`.convert`
* elementary matrix operations (``mp_eye``, ``mp_exact_sum``, ``mp_sym``, ``mp_kron`` (KrADagrad Sec. 2.1),
  ``mp_vec`` / ``mp_unvec`` (errata 15), ``mp_trace``, ``mp_norm_fro``, ``SYMMETRY_RTOL``): :mod:`.matrices`
* symmetric eigenproblems and the certified fast lambda_min (``mp_eigsy``, ``mp_eigvalsh``, ``mp_lambda_min``,
  ``mp_lambda_max``, ``mp_norm_2``): :mod:`.eigen`
* PSD powers, inverse roots and the geometric mean A # B (KrADagrad Sec. 3.3) (``mp_psd_power``,
  ``mp_pinv_power``, ``mp_inv_root``, ``mp_geometric_mean``): :mod:`.powers`
* iterative roots of non-symmetric matrices (``mp_sqrtm_general``, errata 10; the mpmath-1.3 LU wrapper
  ``_lu_call``): :mod:`.roots`
* the Loewner order (``loewner_margin``, ``relative_loewner_margin``): :mod:`.loewner`
* float results against mp truth (``rel_error``, ``tolerance``, ``compare``, ``Comparison``, ``mp_tolerance``,
  ``DEFAULT_C``): :mod:`.tolerances`
"""
from __future__ import annotations

from .convert import (
    _FORMATS,
    _host_array,
    _make_mpf,
    _matrix,
    _mpf_from_dyadic,
    _nested_round,
    _round_to_format,
    _rows,
    from_mp,
    to_mp,
    to_mpf,
)
from .eigen import (
    _GUARD_BITS,
    _MAX_BLOCK,
    _MAX_INVERSE_ITERATIONS,
    _cholesky_shifted,
    _cholesky_solve,
    _is_exactly_symmetric,
    _lambda_min_eigsy,
    _lambda_min_rows,
    _orthonormalize,
    mp_eigsy,
    mp_eigvalsh,
    mp_lambda_max,
    mp_lambda_min,
    mp_norm_2,
)
from .loewner import _TINY, _norm_2_scale, loewner_margin, relative_loewner_margin
from .matrices import (
    SYMMETRY_RTOL,
    _shape,
    _sym_rows,
    mp_exact_sum,
    mp_eye,
    mp_kron,
    mp_norm_fro,
    mp_sym,
    mp_trace,
    mp_unvec,
    mp_vec,
)
from .powers import _q_diag_qt, _to_mp_exponent, mp_geometric_mean, mp_inv_root, mp_pinv_power, mp_psd_power
from .precision import DEFAULT_DPS, MIN_DPS, _eps, mp_call, resolve_dps, workdps
from .roots import _lu_call, mp_sqrtm_general
from .tolerances import DEFAULT_C, Comparison, _norm_rows, compare, mp_tolerance, rel_error, tolerance

__all__ = [
    "DEFAULT_DPS",
    "MIN_DPS",
    "SYMMETRY_RTOL",
    "resolve_dps",
    "workdps",
    "mp_call",
    "to_mpf",
    "to_mp",
    "from_mp",
    "mp_eye",
    "mp_exact_sum",
    "mp_sym",
    "mp_kron",
    "mp_vec",
    "mp_unvec",
    "mp_trace",
    "mp_norm_fro",
    "mp_norm_2",
    "mp_eigsy",
    "mp_eigvalsh",
    "mp_lambda_min",
    "mp_lambda_max",
    "mp_psd_power",
    "mp_pinv_power",
    "mp_inv_root",
    "mp_sqrtm_general",
    "mp_geometric_mean",
    "loewner_margin",
    "relative_loewner_margin",
    "rel_error",
    "tolerance",
    "Comparison",
    "compare",
    "mp_tolerance",
    "DEFAULT_C",
]
