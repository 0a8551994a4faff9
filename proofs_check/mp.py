"""Ground truth in mpmath: exact conversion, Loewner margins, Kronecker products, PSD powers, geometric means.

Every claim of ``proofs_check`` is judged here, so this module states its precision policy and keeps to it.

Precision policy
----------------
* **Working precision.** All arithmetic runs inside ``mpmath.workdps(dps)`` (a context manager: the global
  precision is restored on exit, never changed for good). ``dps=None`` means ``max(DEFAULT_DPS, mp.dps)``:
  50 digits at mpmath's default setting, or the caller's precision when it already works higher (so helpers
  called from inside :func:`mp_call` follow the caller). An explicit ``dps`` below ``MIN_DPS = 40`` raises
  ``ValueError``: at 40 digits the rounding of the mp evaluation is 24 orders below float64's unit roundoff,
  so a float64-sized defect of an exact statement can never hide in it.
* **Inputs are converted exactly.** A binary float (float16/32/64, longdouble) is a dyadic rational; it
  becomes the mpf with the same value, bit for bit, whatever the working precision (:func:`to_mpf`). Integers
  are exact too. Only genuinely non-dyadic inputs (a ``Fraction`` exponent such as 1/3) are rounded, once, at
  the working precision.
* **Results are rounded once, at the end.** Functions return mp objects; :func:`from_mp` rounds each entry once
  (round-half-even) to the target format, with no double rounding through float64 for float32/float16.
* **Arithmetic on returned mp objects** must itself run under ``workdps`` (or :func:`mp_call`): at mpmath's
  default 15 digits, ``X - Y`` on two 50-digit matrices would round to float64 precision.

Accuracy contracts (M1: each is the identity the result satisfies, and the residual that shows it)
-----------------------------------------------------------------------------------------------
* :func:`mp_eigsy`: Q^T A Q = diag(w) and Q^T Q = I to O(n 10^-dps ||A||_2) (mpmath's Householder/QL, EISPACK
  tred2/tql2); eigenvalues have absolute error O(n 10^-dps ||A||_2), so *relative* error grows with kappa.
* :func:`mp_lambda_min` (hence :func:`loewner_margin`): absolute error <= 4 * 2^-prec * max_ij |M_ij| (a few
  units in the last place of the working precision, relative to the largest entry), certified as below.
* :func:`mp_psd_power`: X = Q diag(w^p) Q^T with the error of the eigendecomposition, amplified by the
  conditioning of t -> t^p on the spectrum (kappa(A) |p| for p < 0).

Fast lambda_min (performance.md: a Loewner margin at n = 64 and 50 digits within 0.5 s)
--------------------------------------------------------------------------------------
mpmath's ``eigsy`` computes the whole spectrum in O(n^3) mp operations (about 0.6-1 s at n = 64). A margin
needs lambda_min only. :func:`mp_lambda_min` scales M by a power of two (exact), takes the float64
eigendecomposition as a seed, then works in mp with 24 + 2 log2(n) guard bits:

1. Cholesky of M - sigma I = L L^T (n^3/6 multiply-adds), sigma = w_0 - 16 n u ||M||_2 just below the float64
   estimate (whose error is <= p(n) u ||M||_2: Weyl's inequality with LAPACK's backward error). A Cholesky
   factor exists iff the shifted matrix is positive definite, so success proves lambda_min > sigma; failure
   widens the shift.
2. Inverse (subspace) iteration X <- (M - sigma I)^{-1} X from the float eigenvectors of lambda_min's cluster
   (the k <= 8 float eigenvalues within 2^20 (w_0 - sigma) of w_0; k = 1 for an isolated lambda_min), with
   Rayleigh-Ritz on span(X) when k > 1. Each step costs k n^2 and shrinks the error by
   (lambda_k - sigma)/(lambda_{k+1} - sigma) <~ 2^-20 (1e-14 for an isolated eigenvalue); it stops when the
   residual r = ||M X - X Theta||_F satisfies r <= tol or r^2 <= tol * gap (Kato-Temple), tol = 2^-prec.
3. Certificate: theta_1 >= lambda_min (Courant-Fischer), and a second Cholesky, of M - (theta_1 - 4 tol) I,
   proves lambda_min > theta_1 - 4 tol (Cholesky's backward error, O(n^2 2^-prec_guarded ||M||), Higham,
   *Accuracy and Stability*, Ch. 10, is far below tol).

When the iteration stalls (a cluster wider than 8, or eigenvalues closer than the seed can separate) or the
certificate fails, the routine falls back to ``mpmath.eigsy`` with the same guard bits: slower, never wrong.
Typical cost: two Cholesky factorizations plus a few n^2 steps, about n^3/3 mp multiply-adds against eigsy's
~4n^3/3 plus its QL sweeps (n = 64: ~0.12-0.2 s against ~1 s on the project machine).

Tolerances
----------
* :func:`tolerance` (float results against mp truth): c * n * u(dtype) * cond. Higham, *Accuracy and Stability
  of Numerical Algorithms* (2nd ed.): inner products and matrix products carry gamma_n = n u/(1 - n u)
  (Sec. 3.1, 3.5); backward-stable symmetric eigensolvers give |delta lambda| <= p(n) u ||A||_2 (Weyl's
  inequality with LAPACK's backward error bound, LAPACK Users' Guide, Sec. 4.7); the forward error of a
  computed f(A) is its backward error times the condition number of f at A (Sec. 1.6; Higham, *Functions of
  Matrices*, Sec. 3.1). ``cond`` is that condition number.
* :func:`mp_tolerance` (margins computed here): n * 10^-(dps // 2). Half of the working digits are guard
  digits that absorb the amplification of the mp rounding (n 10^-dps) by an instance's conditioning: the
  strategies keep kappa <= 1e12, and the rule leaves room for kappa up to 10^(dps/2) (1e25 at 50 digits).
  The other half resolve the claim: at dps >= 40 the tolerance is at most n * 1e-20, four orders below
  float64's u = 1.1e-16, so no float64-sized defect passes. It shrinks as dps grows (re-running a borderline
  instance at higher dps tells rounding from a genuine failure).
"""
from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any, Callable

import mpmath
import numpy as np
from mpmath.libmp import from_man_exp

from krad_ref import backend

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

#: Default working precision in decimal digits.
DEFAULT_DPS = 50
#: Lowest precision a caller may ask for (DESIGN.md: "Ground truth runs at mp.dps of at least 40").
MIN_DPS = 40
#: A matrix passed where a symmetric one is expected may be asymmetric by rounding: float64 kernels leave
#: O(n u ||A||) <= ~1e-13 relative. Anything above 2^-20 (~1e-6) is a different matrix (A^{-1} B, say), not
#: rounding, and is rejected; below it, the symmetric part (A + A^T)/2 is used.
SYMMETRY_RTOL = 2.0**-20

# Guard bits used inside mp_lambda_min (the result is still rounded to the working precision).
_GUARD_BITS = 24
# Inverse-iteration cap of the fast lambda_min: isolated eigenvalues converge in 2-4 steps; a cluster that has
# not converged in this many goes to the eigsy fallback (cheaper than hundreds of slow steps).
_MAX_INVERSE_ITERATIONS = 12
# Largest cluster around lambda_min iterated as a block (subspace iteration with Rayleigh-Ritz).
_MAX_BLOCK = 8


# --------------------------------------------------------------------------------------------------------------
# precision
# --------------------------------------------------------------------------------------------------------------
def resolve_dps(dps: int | None = None) -> int:
    """The working precision: ``dps`` itself (checked), or ``max(DEFAULT_DPS, mp.dps)`` when None.

    Raises:
      TypeError: if dps is not an integer.
      ValueError: if dps < MIN_DPS (40).
    """
    if dps is None:
        return max(DEFAULT_DPS, int(mpmath.mp.dps))
    if isinstance(dps, bool) or not isinstance(dps, (int, np.integer)):
        raise TypeError(f"dps: expected an integer number of decimal digits, got {type(dps).__name__}")
    if dps < MIN_DPS:
        raise ValueError(f"dps: ground truth needs at least {MIN_DPS} digits, got {dps}")
    return int(dps)


def workdps(dps: int | None = None):
    """``mpmath.workdps(resolve_dps(dps))``: a context manager; the global precision is restored on exit."""
    return mpmath.workdps(resolve_dps(dps))


def mp_call(fn: Callable[..., Any], *args: Any, dps: int | None = None, **kw: Any) -> Any:
    """Run ``fn(*args, **kw)`` under ``workdps(dps)`` and return its result (still an mp object)."""
    with workdps(dps):
        return fn(*args, **kw)


def _eps() -> mpmath.mpf:
    """2^(1 - prec) at the current working precision (mpmath's ``mp.eps``)."""
    return mpmath.mp.eps


# --------------------------------------------------------------------------------------------------------------
# conversion
# --------------------------------------------------------------------------------------------------------------
_make_mpf = mpmath.mp.make_mpf


def _mpf_from_dyadic(v) -> mpmath.mpf:
    """The mpf equal to the binary float / integer ``v`` (no rounding at any precision)."""
    if isinstance(v, (int, np.integer)):
        return _make_mpf(from_man_exp(int(v), 0))
    num, den = v.as_integer_ratio()  # den is a power of two for binary floats
    return _make_mpf(from_man_exp(num, 1 - den.bit_length()))


def to_mpf(x: Any) -> mpmath.mpf:
    """One real number as an mpf: exact for floats (any binary format) and integers.

    Accepts Python/NumPy floats and integers, 0-d arrays and one-element arrays of any backend, ``Fraction``
    (rounded once at the working precision when not dyadic) and mpf (returned unchanged).

    Raises:
      TypeError: complex, bool, or another type; ValueError: NaN or infinity.
    """
    if isinstance(x, mpmath.mpf):
        return x
    if isinstance(x, (bool, np.bool_)):
        raise TypeError("to_mpf: expected a real number, got bool")
    if isinstance(x, (int, np.integer)):
        return _mpf_from_dyadic(x)
    if isinstance(x, (float, np.floating)):
        if not np.isfinite(x):
            raise ValueError(f"to_mpf: expected a finite number, got {x!r}")
        return _mpf_from_dyadic(x)
    if isinstance(x, Fraction):
        if x.denominator & (x.denominator - 1) == 0:  # dyadic: exact
            return _make_mpf(from_man_exp(x.numerator, 1 - x.denominator.bit_length()))
        with workdps(None):
            return mpmath.mpf(x.numerator) / x.denominator
    if isinstance(x, (complex, np.complexfloating, mpmath.mpc)):
        raise TypeError(f"to_mpf: expected a real number, got {type(x).__name__}")
    if isinstance(x, mpmath.matrix):
        if x.rows * x.cols != 1:
            raise ValueError(f"to_mpf: expected a single number, got a {x.rows}x{x.cols} matrix")
        return to_mpf(x[0, 0])
    arr = _host_array(x, "x")
    if arr.size != 1:
        raise ValueError(f"to_mpf: expected a single number, got an array of shape {arr.shape}")
    return to_mpf(arr.reshape(())[()])  # a NumPy scalar of the array's dtype (longdouble stays exact)


def _host_array(x: Any, name: str) -> np.ndarray:
    """x as a NumPy array of reals (any backend via backend.to_numpy; lists via np.asarray)."""
    if isinstance(x, np.ndarray):
        arr = x
    elif isinstance(x, (list, tuple)):
        arr = np.asarray(x)
    else:
        try:
            arr = backend.to_numpy(x)
        except Exception as exc:  # noqa: BLE001 - report the type, whatever the library raised
            raise TypeError(f"{name}: cannot convert {type(x).__name__} to an array ({exc})") from None
        arr = np.asarray(arr)
    if arr.dtype.kind == "c":
        raise TypeError(f"{name}: expected a real array, got {arr.dtype}")
    if arr.dtype.kind == "b":
        raise TypeError(f"{name}: expected a real array, got bool")
    if arr.dtype.kind not in "iufO":
        raise TypeError(f"{name}: expected a real array, got {arr.dtype}")
    return arr


def _rows(x: Any, name: str = "A") -> list[list[mpmath.mpf]]:
    """x (array of any backend, scalar, or mpmath.matrix) as a list of rows of mpf, exactly. 1-D -> column."""
    if isinstance(x, mpmath.matrix):
        return [[to_mpf(x[i, j]) for j in range(x.cols)] for i in range(x.rows)]
    if isinstance(x, (int, float, np.integer, np.floating, Fraction, mpmath.mpf)):
        return [[to_mpf(x)]]
    arr = _host_array(x, name)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    elif arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    elif arr.ndim != 2:
        raise ValueError(f"{name}: expected a scalar, vector or matrix, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}: expected finite entries (NaN or inf found)")
        if arr.dtype.itemsize <= 8:  # float16/32/64 -> float64 is exact; tolist gives Python floats
            return [[_mpf_from_dyadic(v) for v in row] for row in arr.astype(np.float64).tolist()]
        return [[_mpf_from_dyadic(arr[i, j]) for j in range(arr.shape[1])] for i in range(arr.shape[0])]
    if arr.dtype.kind in "iu":
        return [[_mpf_from_dyadic(int(v)) for v in row] for row in arr.tolist()]
    return [[to_mpf(v) for v in row] for row in arr.tolist()]  # object arrays (mpf, Fraction, ...)


def _matrix(rows: list[list[Any]]) -> mpmath.matrix:
    M = mpmath.matrix(len(rows), len(rows[0]) if rows else 0)
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if v:
                M[i, j] = v
    return M


def to_mp(x: Any) -> mpmath.matrix:
    """x as an ``mpmath.matrix`` with exactly the same values (no rounding at any working precision).

    Args:
      x: a float or integer array of any backend (via ``krad_ref.backend.to_numpy``), a nested list, a Python
        or NumPy scalar (-> 1x1), or an mpmath.matrix (returned unchanged). A 1-D array becomes a column.

    Raises:
      TypeError: complex/bool/non-numeric input; ValueError: NaN/inf entries or ndim > 2.
    """
    if isinstance(x, mpmath.matrix):
        return x
    return _matrix(_rows(x, "x"))


# (p, emin, emax) of the binary formats from_mp rounds to: precision in bits, exponent range of normals.
_FORMATS = {"float16": (11, -14, 15), "float32": (24, -126, 127), "float64": (53, -1022, 1023)}


def _round_to_format(v: mpmath.mpf, p: int, emin: int, emax: int) -> float:
    """v rounded once (nearest, ties to even) to a binary format with p-bit significands, gradual underflow."""
    sgn, man, exp, _ = v._mpf_  # libmp's raw tuple: v = (-1)^sgn * man * 2^exp, man odd (0 for 0, inf, nan)
    if not man:
        return 0.0 if v == 0 else float(v)  # zero, or +-inf / nan passed through
    sign = -1 if sgn else 1
    top = exp + man.bit_length() - 1  # v in [2^top, 2^(top+1))
    q = max(top, emin) - p + 1  # exponent of the unit in the last place
    shift = q - exp
    if shift > 0:
        kept, rem = man >> shift, man & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and kept & 1):
            kept += 1
        man, exp = kept, q
    if man and exp + man.bit_length() - 1 > emax:
        return sign * math.inf
    return sign * math.ldexp(man, exp) if man else 0.0 * sign


def from_mp(M: Any, dtype: Any = "float64", *, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """An mp matrix (or mpf, or nested list of numbers) as a NumPy array, each entry rounded once.

    Rounding is to nearest, ties to even, directly to ``dtype`` (float16/32/64): float32 results are not
    rounded through float64 first. Values beyond the format's range become +-inf. A 1x1 matrix keeps shape
    (1, 1) and an mpf gives a 0-d array; pass ``shape`` to reshape (``shape=(n,)`` undoes to_mp's column).
    """
    name = backend.dtype_name(np.dtype(dtype)) if not isinstance(dtype, str) else dtype
    if name not in _FORMATS:
        raise TypeError(f"dtype: expected one of {sorted(_FORMATS)}, got {name}")
    fmt = _FORMATS[name]
    if isinstance(M, mpmath.matrix):
        vals = [[_round_to_format(to_mpf(M[i, j]), *fmt) for j in range(M.cols)] for i in range(M.rows)]
        out = np.array(vals, dtype=np.float64).reshape(M.rows, M.cols)
    elif isinstance(M, (list, tuple)):
        out = np.array(_nested_round(M, fmt), dtype=np.float64)
    else:
        out = np.array(_round_to_format(to_mpf(M), *fmt), dtype=np.float64)
    out = out.astype(name)  # exact: every value is representable in the target format
    return out.reshape(shape) if shape is not None else out


def _nested_round(x, fmt):
    if isinstance(x, (list, tuple)):
        return [_nested_round(v, fmt) for v in x]
    return _round_to_format(to_mpf(x), *fmt)


# --------------------------------------------------------------------------------------------------------------
# elementary matrix operations (all at the working precision)
# --------------------------------------------------------------------------------------------------------------
def mp_eye(n: int) -> mpmath.matrix:
    """The n x n identity as an mpmath.matrix."""
    return mpmath.eye(n)


def mp_exact_sum(*terms: Any) -> mpmath.matrix:
    """Elementwise sum of arrays (or mp matrices) with NO rounding at all (libmp ``mpf_sum`` at prec=0).

    For forming A = B + D from two float arrays when A >= B must hold exactly (strategies.LoewnerPair): the sum of
    dyadic numbers is dyadic and is kept with as many bits as it needs.
    """
    if not terms:
        raise ValueError("mp_exact_sum: expected at least one term")
    rows = [_rows(t, f"terms[{k}]") for k, t in enumerate(terms)]
    shape = (len(rows[0]), len(rows[0][0]))
    for k, r in enumerate(rows):
        if (len(r), len(r[0])) != shape:
            raise ValueError(f"mp_exact_sum: terms[{k}] has shape {(len(r), len(r[0]))}, expected {shape}")
    mpf_sum = mpmath.libmp.mpf_sum
    out = [[_make_mpf(mpf_sum([r[i][j]._mpf_ for r in rows], 0)) for j in range(shape[1])] for i in range(shape[0])]
    return _matrix(out)


def _sym_rows(R: list[list[mpmath.mpf]], name: str = "A") -> list[list[mpmath.mpf]]:
    """(R + R^T)/2 of a square row list, after checking the asymmetry is rounding-sized (SYMMETRY_RTOL)."""
    n = len(R)
    if any(len(row) != n for row in R):
        raise ValueError(f"{name}: expected a square matrix, got {n}x{len(R[0]) if R else 0}")
    scale = max((abs(v) for row in R for v in row), default=mpmath.mpf(0))
    asym = max((abs(R[i][j] - R[j][i]) for i in range(n) for j in range(i)), default=mpmath.mpf(0))
    if asym > SYMMETRY_RTOL * scale:
        raise ValueError(
            f"{name}: expected a symmetric matrix, max|A - A^T| = {mpmath.nstr(asym, 3)} > "
            f"{SYMMETRY_RTOL:.1e} * max|A| = {mpmath.nstr(SYMMETRY_RTOL * scale, 3)}"
        )
    half = mpmath.mpf(0.5)
    return [[R[i][j] if i == j else (R[i][j] + R[j][i]) * half for j in range(n)] for i in range(n)]


def mp_sym(A: Any, *, dps: int | None = None) -> mpmath.matrix:
    """sym(A) = (A + A^T)/2 of any square matrix (no symmetry check: this is the operator itself)."""
    with workdps(dps):
        R = _rows(A, "A")
        n = len(R)
        if any(len(row) != n for row in R):
            raise ValueError(f"A: expected a square matrix, got {n}x{len(R[0])}")
        half = mpmath.mpf(0.5)
        return _matrix([[(R[i][j] + R[j][i]) * half for j in range(n)] for i in range(n)])


def mp_kron(A: Any, B: Any, *, dps: int | None = None) -> mpmath.matrix:
    """Kronecker product A kron B: block (i, j) is a_ij B (KrADagrad Sec. 2.1; numpy.kron's ordering).

    With this ordering vec(L G R) = (R^T kron L) vec(G) for the column-major :func:`mp_vec`. Products of two
    float64 entries have <= 106 bits and are exact at dps >= 40.
    """
    with workdps(dps):
        RA, RB = _rows(A, "A"), _rows(B, "B")
        ma, na, mb, nb = len(RA), len(RA[0]), len(RB), len(RB[0])
        out = [[RA[i // mb][j // nb] * RB[i % mb][j % nb] for j in range(na * nb)] for i in range(ma * mb)]
        return _matrix(out)


def mp_vec(X: Any) -> mpmath.matrix:
    """Column-major vec: the columns of X stacked into one (mn x 1) column (errata 15)."""
    R = _rows(X, "X")
    m, n = len(R), len(R[0])
    return _matrix([[R[i][j]] for j in range(n) for i in range(m)])


def mp_unvec(v: Any, m: int, n: int) -> mpmath.matrix:
    """Inverse of :func:`mp_vec`: an (mn)-vector back to the m x n matrix, column-major."""
    R = _rows(v, "v")
    flat = [x for row in R for x in row]
    if len(flat) != m * n:
        raise ValueError(f"v: expected {m * n} entries for a {m}x{n} matrix, got {len(flat)}")
    return _matrix([[flat[j * m + i] for j in range(n)] for i in range(m)])


def mp_trace(A: Any, *, dps: int | None = None) -> mpmath.mpf:
    """tr(A) of a square matrix (one rounding: mpmath.fsum)."""
    with workdps(dps):
        R = _rows(A, "A")
        if len(R) != len(R[0]):
            raise ValueError(f"A: expected a square matrix, got {len(R)}x{len(R[0])}")
        return mpmath.fsum(R[i][i] for i in range(len(R)))


def mp_norm_fro(A: Any, *, dps: int | None = None) -> mpmath.mpf:
    """||A||_F = sqrt(sum a_ij^2)."""
    with workdps(dps):
        return mpmath.sqrt(mpmath.fsum((v for row in _rows(A, "A") for v in row), squared=True))


def _is_exactly_symmetric(R) -> bool:
    n = len(R)
    return all(len(row) == n for row in R) and all(R[i][j] == R[j][i] for i in range(n) for j in range(i))


def mp_norm_2(A: Any, *, dps: int | None = None) -> mpmath.mpf:
    """Spectral norm ||A||_2.

    Symmetric A (exactly, entry for entry): max(|lambda_min|, |lambda_max|) by :func:`mp_lambda_min`. Otherwise
    sqrt(lambda_max(A^T A)) (or of A A^T, whichever is smaller), the Gram matrix formed at the working
    precision (relative error of the norm ~ 10^-dps, not squared: lambda_max is well conditioned).
    """
    with workdps(dps):
        R = _rows(A, "A")
        if _is_exactly_symmetric(R):
            lo = _lambda_min_rows(R)
            hi = -_lambda_min_rows([[-v for v in row] for row in R])
            return max(abs(lo), abs(hi))
        m, n = len(R), len(R[0])
        cols = [[R[i][j] for i in range(m)] for j in range(n)]
        vecs = cols if n <= m else R  # Gram of the shorter side
        G = [[mpmath.fdot(u, v) for v in vecs] for u in vecs]
        lam = -_lambda_min_rows([[-v for v in row] for row in G])
        return mpmath.sqrt(max(lam, mpmath.mpf(0)))


# --------------------------------------------------------------------------------------------------------------
# symmetric eigenproblems
# --------------------------------------------------------------------------------------------------------------
def mp_eigsy(A: Any, *, dps: int | None = None) -> tuple[list[mpmath.mpf], mpmath.matrix]:
    """Eigendecomposition of symmetric A: ``(w, Q)`` with w ascending (list of mpf) and A Q[:, i] = w[i] Q[:, i].

    Guarantee (M1): Q^T A Q = diag(w) and Q^T Q = I up to O(n 10^-dps ||A||_2) (mpmath.eigsy: Householder
    tridiagonalization + implicit QL, EISPACK tred2/tql2). A may be asymmetric by rounding (<= SYMMETRY_RTOL
    relative); its symmetric part is used.
    """
    with workdps(dps):
        S = _sym_rows(_rows(A, "A"), "A")
        E, Q = mpmath.eigsy(_matrix(S))
        n = len(S)
        order = sorted(range(n), key=lambda i: E[i])
        w = [E[i] for i in order]
        Qs = mpmath.matrix(n, n)
        for jj, j in enumerate(order):
            for i in range(n):
                Qs[i, jj] = Q[i, j]
        return w, Qs


def mp_eigvalsh(A: Any, *, dps: int | None = None) -> list[mpmath.mpf]:
    """Eigenvalues of symmetric A, ascending (mpmath.eigsy, eigenvalues only)."""
    with workdps(dps):
        S = _sym_rows(_rows(A, "A"), "A")
        E = mpmath.eigsy(_matrix(S), eigvals_only=True)
        return sorted(E[i] for i in range(len(S)))


def _cholesky_shifted(T, sigma):
    """Row-oriented Cholesky of T - sigma I (lists of mpf). Returns L (rows of length i+1) or None if a pivot
    is <= 0, i.e. T - sigma I is not (numerically) positive definite."""
    fdot, sqrt = mpmath.fdot, mpmath.sqrt
    n = len(T)
    L: list[list[mpmath.mpf]] = []
    for i in range(n):
        Ti, Li = T[i], []
        for j in range(i):
            Lj = L[j]
            Li.append((Ti[j] - fdot(Li, Lj[:j])) / Lj[j] if j else Ti[j] / Lj[0])
        d = Ti[i] - sigma - fdot(Li, Li)
        if d <= 0:
            return None
        Li.append(sqrt(d))
        L.append(Li)
    return L


def _cholesky_solve(L, b):
    """Solve L L^T y = b (forward then backward substitution)."""
    fdot = mpmath.fdot
    n = len(L)
    z = []
    for i in range(n):
        z.append((b[i] - fdot(L[i][:i], z)) / L[i][i])
    y = [None] * n
    for i in range(n - 1, -1, -1):
        col = [L[k][i] for k in range(i + 1, n)]
        y[i] = (z[i] - fdot(col, y[i + 1:])) / L[i][i]
    return y


def _lambda_min_eigsy(T):
    return min(mpmath.eigsy(_matrix(T), eigvals_only=True))


def _orthonormalize(Y):
    """Modified Gram-Schmidt, applied twice ("twice is enough"), on a list of mp vectors."""
    fdot, sqrt = mpmath.fdot, mpmath.sqrt
    for _ in range(2):
        out = []
        for y in Y:
            for q in out:
                c = fdot(q, y)
                y = [a - c * b for a, b in zip(y, q)]
            nrm = sqrt(fdot(y, y))
            out.append([a / nrm for a in y])
        Y = out
    return Y


def _lambda_min_rows(S, *, method: str = "auto", info: dict | None = None) -> mpmath.mpf:
    """lambda_min of a symmetric row list S at the current precision (see the module docstring)."""
    n = len(S)
    out_prec = mpmath.mp.prec
    if n == 1:
        return +S[0][0]
    mx = max(abs(v) for row in S for v in row)
    if not mx:
        return mpmath.mpf(0)
    if method == "eigsy":
        if info is not None:
            info["path"] = "eigsy"
        return _lambda_min_eigsy(S)
    e = int(mpmath.frexp(mx)[1])
    ldexp, fdot, sqrt = mpmath.ldexp, mpmath.fdot, mpmath.sqrt
    T = [[ldexp(v, -e) for v in row] for row in S]  # exact: max |T_ij| in [1/2, 1)
    w, V = np.linalg.eigh(np.array([[float(v) for v in row] for row in T]))
    norm_f = max(abs(w[0]), abs(w[-1]), 0.5)
    with mpmath.workprec(out_prec + _GUARD_BITS + 2 * n.bit_length()):
        tol = mpmath.ldexp(mpmath.mpf(1), -out_prec)  # 2^-prec relative to max|M_ij| (which is ~1 here)
        path = None
        # float64 eigenvalues are off by <= p(n) u ||M||_2 (Weyl + LAPACK's backward error): shift below them
        delta = 16 * n * 2.0**-53 * norm_f
        L = None
        for _ in range(4):  # the float seed is wrong by more than its error model: widen the shift
            sigma = mpmath.mpf(float(w[0]) - delta)
            L = _cholesky_shifted(T, sigma)
            if L is not None:
                break
            delta *= 2.0**10
        lam = None
        if L is not None:
            # Block size k: the float eigenvalues within 2^20 delta of w_0 form lambda_min's cluster; iterating on
            # all of it makes the convergence rate (lambda_k - sigma)/(lambda_{k+1} - sigma) <~ 2^-20 per step.
            k = 1 + int(np.count_nonzero(w[1:] - w[0] <= 2.0**20 * delta))
            if k > _MAX_BLOCK:
                k = 1  # exact multiple eigenvalues still converge with one vector; otherwise: fallback
            gap = (float(w[k]) - float(w[0]) - 2 * delta) if k < n else 4.0 * n  # lower estimate of lambda_{k+1} - lambda_1
            X = [[_mpf_from_dyadic(float(v)) for v in V[:, j]] for j in range(k)]
            for it in range(_MAX_INVERSE_ITERATIONS):
                Y = _orthonormalize([_cholesky_solve(L, x) for x in X])
                MY = [[fdot(row, y) for row in T] for y in Y]
                if k == 1:
                    theta, X, MX = [fdot(Y[0], MY[0])], Y, MY
                else:  # Rayleigh-Ritz on span(Y): the k x k projected matrix, solved by eigsy (k <= 8: cheap)
                    H = mpmath.matrix(k, k)
                    for a in range(k):
                        for b in range(a + 1):
                            H[a, b] = H[b, a] = fdot(Y[a], MY[b])
                    E, W = mpmath.eigsy(H)
                    order = sorted(range(k), key=lambda j: E[j])
                    theta = [E[j] for j in order]
                    X = [[fdot([W[a, j] for a in range(k)], [Y[a][i] for a in range(k)]) for i in range(n)] for j in order]
                    MX = [[fdot([W[a, j] for a in range(k)], [MY[a][i] for a in range(k)]) for i in range(n)] for j in order]
                r2 = mpmath.fsum(
                    (mx_i - th * x_i for x, mx, th in zip(X, MX, theta) for x_i, mx_i in zip(x, mx)), squared=True
                )
                if r2 <= tol * tol or (gap > 0 and r2 <= tol * gap):  # Kato-Temple: |theta_1 - lambda_1| <= r^2/gap
                    # certify: theta_1 >= lambda_min (Courant-Fischer); a Cholesky factor of T - (theta_1 - 4 tol) I
                    # exists only if lambda_min > theta_1 - 4 tol (Sylvester)
                    if _cholesky_shifted(T, theta[0] - 4 * tol) is not None:
                        lam, path = theta[0], f"seeded(k={k}, steps={it + 1})"
                    break
        if lam is None:
            lam, path = _lambda_min_eigsy(T), "eigsy-fallback"
        if info is not None:
            info["path"] = path
        lam = ldexp(lam, e)
    return +lam  # rounded once to the working precision


def mp_lambda_min(A: Any, *, dps: int | None = None, method: str = "auto") -> mpmath.mpf:
    """lambda_min(A) of symmetric A, to a few units of 10^-dps * max|A_ij| (certified, module docstring).

    Args:
      method: "auto" (float64-seeded inverse iteration with a Cholesky certificate; falls back to eigsy when
        it cannot certify) or "eigsy" (mpmath.eigsy, all eigenvalues).
    """
    if method not in ("auto", "eigsy"):
        raise ValueError(f"method: expected 'auto' or 'eigsy', got {method!r}")
    with workdps(dps):
        return _lambda_min_rows(_sym_rows(_rows(A, "A"), "A"), method=method)


def mp_lambda_max(A: Any, *, dps: int | None = None, method: str = "auto") -> mpmath.mpf:
    """lambda_max(A) = -lambda_min(-A) of symmetric A (same accuracy as :func:`mp_lambda_min`)."""
    if method not in ("auto", "eigsy"):
        raise ValueError(f"method: expected 'auto' or 'eigsy', got {method!r}")
    with workdps(dps):
        S = _sym_rows(_rows(A, "A"), "A")
        return -_lambda_min_rows([[-v for v in row] for row in S], method=method)


# --------------------------------------------------------------------------------------------------------------
# matrix functions
# --------------------------------------------------------------------------------------------------------------
def _to_mp_exponent(p: Any) -> mpmath.mpf:
    if isinstance(p, (bool, np.bool_)):
        raise TypeError("p: expected a real exponent, got bool")
    if isinstance(p, (int, np.integer, float, np.floating, Fraction, mpmath.mpf)):
        return to_mpf(p)
    raise TypeError(f"p: expected a real exponent (int, float, Fraction, mpf), got {type(p).__name__}")


def mp_psd_power(A: Any, p: Any, *, dps: int | None = None) -> mpmath.matrix:
    """A^p = Q diag(w^p) Q^T for symmetric positive (semi)definite A and any real p.

    Args:
      A: symmetric (asymmetry <= SYMMETRY_RTOL relative), PSD for p > 0, PD for p < 0. p = 0 gives I.
      p: int, float, Fraction (rounded once at the working precision, e.g. 1/3) or mpf.

    Eigenvalues in [-tiny, 0), tiny = 16 n eps ||A||_2 (eps = 2^(1-prec); the eigsy error of an exact zero
    eigenvalue, measured <= 0.25 n eps ||A||_2 on exactly PSD rank-deficient inputs), are set to 0
    for p > 0. Guarantee: the result is Q diag(w^p) Q^T for the eigendecomposition of :func:`mp_eigsy`; the
    relative error is ~ n 10^-dps times the conditioning of t -> t^p on the spectrum (|p| kappa(A) for p < 0).

    Raises:
      ValueError: a negative eigenvalue below -tiny (not PSD), or, for p < 0, lambda_min <= tiny (singular to
        working precision).
    """
    with workdps(dps):
        pm = _to_mp_exponent(p)
        w, Q = mp_eigsy(A)
        n = len(w)
        if pm == 0:
            return mpmath.eye(n)
        scale = max(abs(w[0]), abs(w[-1]))
        tiny = 16 * n * _eps() * scale
        if w[0] < -tiny:
            raise ValueError(f"A: expected positive semidefinite, lambda_min = {mpmath.nstr(w[0], 5)}")
        if pm < 0 and w[0] <= tiny:
            raise ValueError(
                f"A: a negative power p = {mpmath.nstr(pm, 5)} needs positive definite A, "
                f"lambda_min = {mpmath.nstr(w[0], 5)} (<= {mpmath.nstr(tiny, 3)}, singular at {mpmath.mp.dps} digits)"
            )
        return _q_diag_qt(Q, [mpmath.power(v, pm) if v > 0 else mpmath.mpf(0) for v in w])


def _q_diag_qt(Q: mpmath.matrix, f: list) -> mpmath.matrix:
    """Q diag(f) Q^T, exactly symmetric (the two triangles are the same sums)."""
    n = len(f)
    Qr = Q.tolist()
    out = [[mpmath.fdot([Qr[i][k] * f[k] for k in range(n)], Qr[j]) for j in range(n)] for i in range(n)]
    for i in range(n):
        for j in range(i):
            out[i][j] = out[j][i]
    return _matrix(out)


def mp_pinv_power(A: Any, p: Any, *, rcond: Any = None, dps: int | None = None) -> mpmath.matrix:
    """The pseudo-power A^{+p} of symmetric PSD A: Q diag(g(w)) Q^T, g(w) = w^p for w > thr and 0 otherwise.

    thr = rcond * lambda_max when ``rcond`` is given (krad_ref's ``psd_power(eps_mode="pinv", rcond=...)``),
    else the exact zeros at working precision, thr = 16 n eps ||A||_2 as in :func:`mp_psd_power`. For p = -1
    this is the Moore-Penrose pseudo-inverse; for p = 0 the orthogonal projector onto the kept eigenvectors.

    Raises:
      ValueError: a negative eigenvalue below -16 n eps ||A||_2 (A not PSD).
    """
    with workdps(dps):
        pm = _to_mp_exponent(p)
        w, Q = mp_eigsy(A)
        n = len(w)
        scale = max(abs(w[0]), abs(w[-1]))
        tiny = 16 * n * _eps() * scale
        if w[0] < -tiny:
            raise ValueError(f"A: expected positive semidefinite, lambda_min = {mpmath.nstr(w[0], 5)}")
        thr = tiny if rcond is None else to_mpf(rcond) * scale
        return _q_diag_qt(Q, [mpmath.power(v, pm) if v > thr else mpmath.mpf(0) for v in w])


def mp_inv_root(A: Any, p: Any, *, dps: int | None = None) -> mpmath.matrix:
    """A^{-1/p} for symmetric positive definite A (Shampoo's inverse p-th root): mp_psd_power(A, -1/p).

    An integer p gives the exponent Fraction(-1, p), rounded once at the working precision.
    """
    pm = _to_mp_exponent(p)
    if pm == 0:
        raise ValueError("p: expected a nonzero root order")
    with workdps(dps):
        if isinstance(p, (int, np.integer)):
            expo = mpmath.mpf(-1) / int(p)
        else:
            expo = -1 / pm
        return mp_psd_power(A, expo)


def _lu_call(fn: Callable[[mpmath.matrix], Any], A: mpmath.matrix) -> Any:
    """``fn(A)`` for mpmath's LU-based ``inverse`` / ``det``, with a singular A raising ZeroDivisionError on
    mpmath 1.3 as on 1.4.

    mpmath 1.3's ``LU_decomp`` leaves the pivot index of column j unset (None) when that column is exactly zero
    on and below the diagonal (diag(0, 1), say), and ``swap_row`` then fails with a TypeError comparing None to
    an int; mpmath 1.4 checks the pivot and raises ZeroDivisionError("matrix is numerically singular"), as 1.3
    already does for every other singular case. A is an mp matrix built by the caller, so a TypeError here can
    only be that unset pivot.
    """
    try:
        return fn(A)
    except TypeError as exc:
        raise ZeroDivisionError("matrix is numerically singular (no pivot in a zero column)") from exc


def mp_sqrtm_general(M: Any, *, dps: int | None = None) -> mpmath.matrix:
    """Principal square root X of a (non-symmetric) real matrix with positive real spectrum: X^2 = M.

    For the geometric mean's formula 2, A (A^{-1} B)^{1/2}: A^{-1} B is not symmetric, and eigh on it gives a
    wrong answer (errata 10). Method: the Denman-Beavers iteration Y <- (Y + Z^{-1})/2, Z <- (Z + Y^{-1})/2
    from Y = M, Z = I (Y -> M^{1/2}, Z -> M^{-1/2}; the limit is the principal root when no eigenvalue lies on
    the closed negative real axis), with determinant scaling mu = |det Y det Z|^{-1/(2n)} while far from
    convergence (Higham, *Functions of Matrices*, Ch. 6: the DB iteration and its scaling), run with 10 guard
    digits, stopped when the relative step reaches the working precision or stops decreasing (stagnation).

    mpmath.sqrtm runs the same iteration without scaling; when it has not converged after 7 steps (a spectrum
    spanning many decades needs more) it retries on a rotated matrix and then raises NoConvergence: A^{-1} B
    with eigenvalues 9e-5 and 8e4 (kappa(A) = 1e5, kappa(B) = 1.3e4, n = 2) fails there. So it is not used;
    the tests check that both agree where mpmath's converges.

    Guarantee: ||X^2 - M||_F <= n^2 10^-(dps/2) ||X||_F^2 is verified before returning (a sanity check that the
    iteration converged to a root; its accuracy is that of the iteration, ~kappa(X) 10^-dps).

    Raises:
      RuntimeError: no convergence or failed residual check (M has eigenvalues on or near the negative real axis,
        or is singular).
    """
    with workdps(dps):
        R = _rows(M, "M")
        n = len(R)
        if any(len(row) != n for row in R):
            raise ValueError(f"M: expected a square matrix, got {n}x{len(R[0])}")
        Mm = _matrix(R)
        with mpmath.workdps(mpmath.mp.dps + 10):
            Y, Z = Mm.copy(), mpmath.eye(n)
            eps = _eps()
            scaling, prev = True, None
            try:
                for _ in range(4 * mpmath.mp.prec):
                    if scaling:
                        d = _lu_call(mpmath.det, Y) * _lu_call(mpmath.det, Z)
                        if d == 0:
                            raise ZeroDivisionError("singular iterate")
                        mu = abs(d) ** (-mpmath.mpf(1) / (2 * n))
                        Y, Z = Y * mu, Z * mu
                    Yn = (Y + _lu_call(mpmath.inverse, Z)) * mpmath.mpf(0.5)
                    Z = (Z + _lu_call(mpmath.inverse, Y)) * mpmath.mpf(0.5)
                    step = mpmath.mnorm(Yn - Y, "F") / mpmath.mnorm(Yn, "F")
                    Y = Yn
                    if step <= 16 * n * eps:
                        break
                    if step < mpmath.mpf("1e-2"):
                        scaling = False  # near convergence, scaling only slows the quadratic phase
                    if prev is not None and step < eps ** mpmath.mpf(0.5) and step >= prev / 2:
                        break  # no longer quadratic: rounding stagnation at ~kappa eps
                    prev = step
            except ZeroDivisionError:
                raise RuntimeError("mp_sqrtm_general: singular iterate (M singular or with eigenvalues <= 0)") from None
        X = Y * 1  # rounded to the working precision
        res = mpmath.mnorm(X * X - Mm, "F")
        bound = n * n * mpmath.mpf(10) ** (-(mpmath.mp.dps // 2)) * mpmath.mnorm(X, "F") ** 2
        if not res <= bound:
            raise RuntimeError(
                f"mp_sqrtm_general: residual ||X^2 - M||_F = {mpmath.nstr(res, 3)} > {mpmath.nstr(bound, 3)} "
                "(no principal real square root: eigenvalues on or near the negative real axis?)"
            )
        return X


def mp_geometric_mean(A: Any, B: Any, *, formula: int = 1, dps: int | None = None) -> mpmath.matrix:
    """Matrix geometric mean A # B of SPD A and PSD B (KrADagrad Sec. 3.3).

    Args:
      formula: 1: A^{1/2} (A^{-1/2} B A^{-1/2})^{1/2} A^{1/2} (symmetric functions only);
        2: A (A^{-1} B)^{1/2}, with the principal square root of the non-symmetric A^{-1} B
        (:func:`mp_sqrtm_general`; errata 10). Both equal the unique PSD M with M A^{-1} M = B.
    Returns the raw product (formula 2 is symmetric only up to rounding; apply mp_sym where needed).
    """
    if formula not in (1, 2):
        raise ValueError(f"formula: expected 1 or 2, got {formula!r}")
    with workdps(dps):
        Am, Bm = to_mp(A), to_mp(B)
        if formula == 1:
            Ah = mp_psd_power(Am, Fraction(1, 2))
            Aih = mp_psd_power(Am, Fraction(-1, 2))
            C = mp_psd_power(mp_sym(Aih * Bm * Aih), Fraction(1, 2))
            return Ah * C * Ah
        _ = mp_psd_power(Am, -1)  # validates: A symmetric positive definite
        return Am * mp_sqrtm_general(mpmath.inverse(Am) * Bm)


# --------------------------------------------------------------------------------------------------------------
# Loewner order
# --------------------------------------------------------------------------------------------------------------
def loewner_margin(A: Any, B: Any, *, dps: int | None = None, method: str = "auto") -> mpmath.mpf:
    """lambda_min(sym(A - B)): A >= B (Loewner) iff the margin is >= 0.

    A and B may be float arrays of any backend (converted exactly) or mp matrices. A - B is formed at the
    working precision (exact for float64 inputs unless their exponents differ by more than ~80 bits); use
    :func:`mp_exact_sum` to build A itself exactly. Accuracy: :func:`mp_lambda_min`.
    """
    with workdps(dps):
        RA, RB = _rows(A, "A"), _rows(B, "B")
        n = len(RA)
        if any(len(r) != n for r in RA) or len(RB) != n or any(len(r) != n for r in RB):
            raise ValueError(f"A, B: expected square matrices of one size, got {_shape(RA)} and {_shape(RB)}")
        half = mpmath.mpf(0.5)
        D = [[a - b for a, b in zip(ra, rb)] for ra, rb in zip(RA, RB)]
        S = [[D[i][j] if i == j else (D[i][j] + D[j][i]) * half for j in range(n)] for i in range(n)]
        return _lambda_min_rows(S, method=method)


def _shape(R) -> tuple[int, int]:
    return (len(R), len(R[0]) if R else 0)


_TINY = mpmath.mpf(2) ** -1022


def _norm_2_scale(R) -> mpmath.mpf:
    """||R||_2 to float64 accuracy, as an mpf: float64 2-norm after exact power-of-two scaling, scaled back
    (a scale needs 16 digits, not 50; the scaling avoids overflow/underflow of mp entries)."""
    mx = max((abs(v) for row in R for v in row), default=mpmath.mpf(0))
    if not mx:
        return mpmath.mpf(0)
    e = int(mpmath.frexp(mx)[1])
    F = np.array([[float(mpmath.ldexp(v, -e)) for v in row] for row in R])
    return mpmath.ldexp(to_mpf(float(np.linalg.norm(F, 2))), e)


def relative_loewner_margin(A: Any, B: Any, *, dps: int | None = None) -> mpmath.mpf:
    """loewner_margin(A, B) / max(||A||_2, ||B||_2, 2^-1022): the margin in units of the operands' size.

    The scale is computed in float64 after exact power-of-two scaling (16 correct digits suffice for a scale;
    this keeps the call at the cost of one margin).
    """
    with workdps(dps):
        margin = loewner_margin(A, B)
        scale = max(_TINY, _norm_2_scale(_rows(A, "A")), _norm_2_scale(_rows(B, "B")))
        return margin / scale


# --------------------------------------------------------------------------------------------------------------
# comparing float results with mp truth
# --------------------------------------------------------------------------------------------------------------
def _norm_rows(R, norm: str) -> mpmath.mpf:
    if norm == "fro":
        return mpmath.sqrt(mpmath.fsum((v for row in R for v in row), squared=True))
    if norm == "max":
        return max((abs(v) for row in R for v in row), default=mpmath.mpf(0))
    if norm == "2":
        return mp_norm_2(_matrix(R))
    raise ValueError(f"norm: expected 'fro', '2' or 'max', got {norm!r}")


def rel_error(x: Any, X_mp: Any, *, norm: str = "fro", dps: int | None = None) -> float:
    """||x - X|| / ||X|| computed in mp (x converted exactly), rounded once to float.

    Args:
      x: the computed result (array of any backend, scalar, or mp matrix).
      X_mp: the mp ground truth (same shape; 1-D inputs are columns on both sides).
      norm: "fro" (default), "2" (spectral) or "max" (largest entry).
    When X = 0 the absolute error ||x|| is returned.
    """
    with workdps(dps):
        Rx, RX = _rows(x, "x"), _rows(X_mp, "X_mp")
        if _shape(Rx) != _shape(RX):
            raise ValueError(f"x, X_mp: shapes differ, {_shape(Rx)} vs {_shape(RX)}")
        diff = [[a - b for a, b in zip(ra, rb)] for ra, rb in zip(Rx, RX)]
        num, den = _norm_rows(diff, norm), _norm_rows(RX, norm)
        return float(num / den) if den else float(num)


#: Default constant of :func:`tolerance`: a few units of n u, as in Higham's gamma_n with a margin for the
#: handful of operations each entry goes through.
DEFAULT_C = 4.0


def tolerance(dtype: Any, *, n: int, cond: float = 1.0, c: float = DEFAULT_C) -> float:
    """The accuracy expected of a float computation: c * n * u(dtype) * cond.

    u is the unit roundoff (2^-53 for float64, 2^-24 for float32; ``krad_ref.backend.unit_roundoff``), n the
    length of the inner products (or the matrix dimension), cond the condition number of the computed function
    at the input (1 for products; kappa(A) for A^{-1}; |p| kappa(A) for A^p with p < 0). Higham, *Accuracy and
    Stability of Numerical Algorithms*, 2nd ed., Sec. 2.2 (u), 3.1 (gamma_n = n u / (1 - n u)), 1.6 (forward
    error <~ condition number x backward error).
    """
    if n < 1:
        raise ValueError(f"n: expected a positive dimension, got {n}")
    if not cond >= 1.0:
        raise ValueError(f"cond: expected a condition number >= 1, got {cond}")
    try:  # "float32", np.float32, np.dtype: NumPy's spelling; other backends' dtypes go to backend as they are
        dt = np.dtype(dtype)
    except TypeError:
        dt = dtype
    return float(c) * int(n) * backend.unit_roundoff(dt) * float(cond)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The outcome of comparing a float result with mp truth: ``ok`` iff ``error <= tol``."""

    error: float
    tol: float
    ok: bool
    why: str = ""

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        rel = "<=" if self.ok else ">"
        return f"rel_error={self.error:.3e} {rel} tol={self.tol:.3e} [{self.why}]"


def compare(
    x: Any,
    X_mp: Any,
    *,
    dtype: Any,
    n: int,
    cond: float = 1.0,
    c: float = DEFAULT_C,
    why: str = "",
    norm: str = "fro",
) -> Comparison:
    """rel_error(x, X_mp) against tolerance(dtype, n=n, cond=cond, c=c); ``why`` says what the tolerance models."""
    err = rel_error(x, X_mp, norm=norm)
    tol = tolerance(dtype, n=n, cond=cond, c=c)
    return Comparison(error=err, tol=tol, ok=bool(err <= tol), why=why)


def mp_tolerance(dps: int | None = None, n: int = 1) -> float:
    """Relative tolerance of a margin computed here at dps digits: n * 10^-(dps // 2) (module docstring).

    A claim holds on an instance when ``margin >= -mp_tolerance(dps, n) * scale``. dps=None resolves like every
    function here (50 at mpmath's default precision): n * 1e-25.
    """
    d = resolve_dps(dps)
    if n < 1:
        raise ValueError(f"n: expected a positive dimension, got {n}")
    return float(n) * 10.0 ** (-(d // 2))
