"""Argument checks shared by every public function.

Each check raises ``TypeError`` (wrong kind of object or dtype) or ``ValueError`` (wrong shape or value)
with the argument's name and the defect, in one shape: ``"L: expected a symmetric matrix, but
max|L - L^T| = 3.1e-02 > tol = 2.2e-14"``. Nothing here returns NaN or "fixes" an input silently.

Tolerances are scaled by the dtype's unit roundoff u (``backend.unit_roundoff``) and the matrix norm:
a matrix that is symmetric (or PSD) in exact arithmetic and then rounded, or produced by a backward-stable
computation of size n, is off by at most a small multiple of n u ||A||; anything larger is a defect.
"""
from __future__ import annotations

import math
import threading
from numbers import Integral, Real

from . import backend

__all__ = [
    "float_array",
    "matrix",
    "square",
    "finite",
    "symmetric",
    "psd_eigenvalues",
    "zero_tolerance",
    "symmetric_pd",
    "same_dtype",
    "same_shape",
    "positive_int",
    "real_scalar",
    "one_of",
    "OverflowLimitError",
    "norm_limit",
    "SYM_TOL_FACTOR",
    "RANK_TOL_FACTOR",
]

#: symmetry tolerance = SYM_TOL_FACTOR * n * u * max|A|; 8 n u covers a product of two rounded symmetric
#: matrices (each entry an n-term inner product, Higham Sec. 3.1) with room for the symmetrizing average.
SYM_TOL_FACTOR = 8.0

#: the numerical-rank rule's constant c in tau = c n u lambda_max (see :func:`zero_tolerance`).
RANK_TOL_FACTOR = 4.0


def float_array(x, name: str, *, ndim: int | None = None, xp=None):
    """Check ``x`` is an array with a real floating dtype (and ``ndim`` dimensions); return its namespace."""
    if x is None:
        raise TypeError(f"{name}: expected an array, got None")
    try:
        xp = backend.namespace(x) if xp is None else xp
    except TypeError:
        raise TypeError(f"{name}: expected an array, got {type(x).__name__}") from None
    if not hasattr(x, "dtype") or not hasattr(x, "shape"):
        raise TypeError(f"{name}: expected an array, got {type(x).__name__}")
    if not backend.is_real_floating(x, xp):
        raise TypeError(f"{name}: expected a real floating array, got {backend.dtype_name(x.dtype)}")
    if ndim is not None and x.ndim != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D array, got shape {tuple(x.shape)}")
    return xp


def matrix(A, name: str, *, xp=None):
    """Check ``A`` is a 2-D real floating array; return its namespace."""
    return float_array(A, name, ndim=2, xp=xp)


def square(A, name: str, *, xp=None):
    """Check ``A`` is a square (n, n) real floating matrix with n >= 1; return its namespace."""
    xp = matrix(A, name, xp=xp)
    m, n = A.shape
    if m != n:
        raise ValueError(f"{name}: expected a square matrix, got shape ({m}, {n})")
    if n == 0:
        raise ValueError(f"{name}: expected a non-empty matrix, got shape (0, 0)")
    return xp


# ---------------------------------------------------------------------------------------------------------
# arrays known to be finite (the bookkeeping of ``algorithm.overflow_guard``'s "checking each array once")

_LOCAL = threading.local()  # .frames: one dict per guarded update in progress on this thread, innermost last
_SEALED: dict = {}  # id -> weakref of a sealed (read-only, verified) ndarray; removed when the array is freed


def _frame():
    """The running guarded update's record of the arrays it has verified finite (id -> array), or None."""
    frames = getattr(_LOCAL, "frames", None)
    return frames[-1] if frames else None


def _known_finite(a, frame) -> bool:
    """``a`` was verified finite earlier in the running update, or is a sealed state array that nobody can have
    written since (still that object, still read-only)."""
    if frame is not None and frame.get(id(a)) is a:
        return True
    ref = _SEALED.get(id(a))
    return ref is not None and ref() is a and not a.flags.writeable


def _forget(key, ref):
    if _SEALED.get(key) is ref:
        del _SEALED[key]


def finite(x, name: str, *, xp=None):
    """Check every entry of ``x`` is finite (no NaN, no inf). Free for an array already verified in the running
    update, or sealed (``algorithm.overflow_guard``): its entries cannot have changed since."""
    if _known_finite(x, _frame()):
        return backend.namespace(x) if xp is None else xp
    xp = backend.namespace(x) if xp is None else xp
    if bool(backend.all_finite(x, xp)):  # one test; the entries are counted only for the message
        return xp
    bad = ~xp.isfinite(x)
    if bool(xp.any(bad)):
        count = int(xp.sum(xp.astype(bad, xp.int64)))
        raise ValueError(f"{name}: expected finite values, got {count} NaN or inf entr{'y' if count == 1 else 'ies'}")
    return xp


def _max_abs(x, xp) -> float:
    return float(xp.max(xp.abs(x))) if x.size != 0 else 0.0


def symmetric(A, name: str, *, rtol: float | None = None, xp=None):
    """Check ``A`` is square, finite and symmetric within ``rtol * max|A|``.

    The default ``rtol`` is ``SYM_TOL_FACTOR * n * u(dtype)``.
    """
    xp = square(A, name, xp=xp)
    finite(A, name, xp=xp)
    _symmetric_within(A, name, rtol, xp)
    return xp


def _symmetric_within(A, name: str, rtol, xp) -> None:
    """:func:`symmetric`'s tolerance test for a square A already known to be finite."""
    # an exactly symmetric A has max|A - A^T| = 0 <= tol whatever tol is: one comparison settles it (the common
    # case: a statistic formed by ?syrk, or a sum of such), and the tolerance is computed only for the others
    if bool(xp.all(A == backend.transpose_for_reading(A, xp))):
        return
    n = A.shape[0]
    tol = (SYM_TOL_FACTOR * n * backend.unit_roundoff(A.dtype) if rtol is None else rtol) * _max_abs(A, xp)
    asym = _max_abs(A - xp.matrix_transpose(A), xp)
    if asym > tol:
        raise ValueError(f"{name}: expected a symmetric matrix, but max|{name} - {name}^T| = {asym:.3g} > tol = {tol:.3g}")


def zero_tolerance(lam_max, *, n: int, dtype, rcond=None):
    """The numerical-rank rule: an eigenvalue of a symmetric matrix with |lambda| <= tau is numerically zero.

    tau = RANK_TOL_FACTOR * n * u * lambda_max = 4 n u lambda_max, with lambda_max = max_i |lambda_i| = ||A||_2 of
    the computed spectrum and u the unit roundoff of ``dtype``; or tau = rcond * lambda_max when an explicit
    relative cutoff ``rcond`` is given (the peers' pseudo-inverse cutoff: numpy.linalg.pinv's rcond,
    scipy.linalg.pinvh's rtol, Meta Distributed Shampoo's PseudoInverseConfig rank_rtol).

    The bound behind it (LAPACK Users' Guide, 3rd ed., Sec. 4.7 "Error Bounds for the Symmetric Eigenproblem" and
    its "Further Details"): the symmetric eigensolvers (xSYEV, xSYEVD, xSYEVR; cuSOLVER's syevd is the same
    Householder tridiagonalisation followed by a tridiagonal solver) return the exact eigendecomposition of A + E
    with ||E||_2 <= p(n) eps ||A||_2, p(n) "a modestly growing function of n", so by Weyl's inequality every
    computed eigenvalue is within p(n) eps ||A||_2 of an exact one (LAPACK's own error estimate takes p(n) = 1).
    An exact zero eigenvalue can therefore come out anywhere in [-tau, tau], with either sign (LAPACK tends to a
    tiny negative, cuSOLVER to a tiny positive), and an eigenvalue inside that band cannot be told from 0 by any
    backend. The constant: p(n) eps = 4 n u, linear in n as Householder's worst-case backward error and as the
    peers' rank cutoffs (NumPy's matrix_rank and pinv use n eps = 2 n u); measured |lambda_hat| of exact zeros of
    exactly representable rank-deficient matrices stayed below 1.2 n u lambda_max (1.4 with the rounding of
    forming fl(v v^T)) over n = 2..256 in float32 and float64 (LAPACK syevd and syevr; worst at n = 3-4, 20000
    draws), so c = 4 leaves a margin of ~3 and equals the PSD sign tolerance: one symmetric band decides "a
    negative eigenvalue is rounding", "dropped by a pseudo-inverse", "singular for a negative power" and "counts
    towards a rank". The price: eigenvalues below 4 n u lambda_max are treated as 0 although some are not, but
    the worst-case relative error of such an eigenvalue is >= 1/4 anyway (no reliable digit).

    Args:
      lam_max: max |lambda| of the spectrum, a Python float or an array of them (a stack of spectra).
      n: the matrix order.
      dtype: the dtype the matrix was computed in (its rounding is what the band covers).
      rcond: None (the rule) or a real >= 0: tau = rcond * lambda_max.

    Returns:
      tau, of the type of ``lam_max``.
    """
    if rcond is not None:
        return real_scalar(rcond, "rcond", low=0.0) * lam_max
    return RANK_TOL_FACTOR * n * backend.unit_roundoff(dtype) * lam_max


def psd_eigenvalues(w, name: str, *, n: int, dtype, strict: bool, xp=None) -> None:
    """Judge the ascending eigenvalues ``w`` of a symmetric matrix for PSD (``strict=False``) or PD.

    PSD allows lambda_min >= -tau with tau = 4 n u lambda_max, the numerical-rank rule (:func:`zero_tolerance`):
    a negative eigenvalue that small is rounding, a larger one a real defect. PD requires lambda_min > u lambda_max,
    i.e.
    a condition number below 1/u, the largest a matrix stored in that dtype can have and still be told apart
    from a singular one; it does not carry the factor n, which would refuse float32 matrices of kappa = 1e4
    from n = 512 on although their Cholesky factorization succeeds.
    """
    xp = backend.namespace(w) if xp is None else xp
    lam_min = float(w[0])
    lam_max = float(xp.max(xp.abs(w)))
    u = backend.unit_roundoff(dtype)
    if strict:
        tol = u * lam_max
        if not lam_min > tol:
            raise ValueError(
                f"{name}: expected a positive definite matrix, but lambda_min = {lam_min:.3g} <= tol = {tol:.3g}"
                f" (lambda_max = {lam_max:.3g})"
            )
        return
    tol = zero_tolerance(lam_max, n=n, dtype=dtype)
    if lam_min < -tol:
        raise ValueError(
            f"{name}: expected a positive semi-definite matrix, but lambda_min = {lam_min:.3g} < -tol = {-tol:.3g}"
        )


def symmetric_pd(A, name: str, *, strict: bool = True, xp=None):
    """Check ``A`` is symmetric and positive definite (``strict``) or semi-definite; costs one eigvalsh."""
    xp = symmetric(A, name, xp=xp)
    A_sym = (A + xp.matrix_transpose(A)) / 2
    psd_eigenvalues(backend.eigvalsh(A_sym), name, n=A.shape[0], dtype=A.dtype, strict=strict, xp=xp)
    return xp


def same_dtype(**arrays) -> None:
    """Check all named arrays share one dtype (no silent promotion between float32 and float64)."""
    items = [(k, v) for k, v in arrays.items() if v is not None]
    if not items:
        return
    k0, v0 = items[0]
    for k, v in items[1:]:
        if v.dtype != v0.dtype:
            raise TypeError(
                f"{k}: dtype {backend.dtype_name(v.dtype)} does not match {k0}'s {backend.dtype_name(v0.dtype)}"
            )


def same_shape(**arrays) -> None:
    """Check all named arrays share one shape."""
    items = [(k, v) for k, v in arrays.items() if v is not None]
    if not items:
        return
    k0, v0 = items[0]
    for k, v in items[1:]:
        if tuple(v.shape) != tuple(v0.shape):
            raise ValueError(f"{k}: shape {tuple(v.shape)} does not match {k0}'s {tuple(v0.shape)}")


def positive_int(value, name: str, *, minimum: int = 1) -> int:
    """Check ``value`` is an integer (not bool) >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


def real_scalar(value, name: str, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """Check ``value`` is a finite real number within the stated bounds; return it as float."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: expected a finite number, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name}: expected a value {'>' if low_open else '>='} {low}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name}: expected a value {'<' if high_open else '<='} {high}, got {v}")
    return v


def one_of(value, name: str, options) -> None:
    """Check ``value`` is one of ``options``."""
    if value not in options:
        raise ValueError(f"{name}: expected one of {tuple(options)}, got {value!r}")


class OverflowLimitError(ValueError):
    """A value a computation cannot carry in its dtype: a gradient whose norm is above an update's overflow limit,
    or a state array that overflowed to inf/NaN. A ValueError (bad input), raised with the argument's or the state
    field's name, the word "overflow" and the threshold."""


def norm_limit(x, name: str, *, limit: float, what: str, xp=None) -> None:
    """Refuse ``x`` when ||x||_F > ``limit`` (an :class:`OverflowLimitError` saying ``what`` would overflow).

    One reduction (max|x|) decides when max|x| sqrt(size) <= limit; otherwise ||x||_F is computed as
    max|x| ||x / max|x|||_F, which cannot overflow itself. An x holding inf or NaN is left to :func:`finite`.
    """
    _norm_limit(x, name, limit=limit, what=what, xp=xp)


def _norm_limit(x, name: str, *, limit: float, what: str, xp=None) -> float:
    """:func:`norm_limit`, returning max|x| (0.0 for an empty x): NaN or inf exactly when x holds a NaN or inf (max
    propagates NaN, the standard's rule), so a caller learns whether x is finite without another pass."""
    xp = backend.namespace(x) if xp is None else xp
    if x.size == 0:
        return 0.0
    m = float(backend.max_abs(x, xp))
    if m * math.sqrt(x.size) <= limit or not math.isfinite(m):
        return m
    nrm = m * float(xp.linalg.vector_norm(x / m))
    if not nrm <= limit:
        raise OverflowLimitError(f"{name}: ||{name}||_F = {nrm:.3g} is above the overflow limit {limit:.3g} of "
                                 f"{what} in {backend.dtype_name(x.dtype)}")
    return m
