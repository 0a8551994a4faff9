"""Matrix norms: spectral, Frobenius, and the trace "norm" of the KrADagrad code.

References:
  KrADagrad, Sec. 2.1 (||A||_2, ||A||_F, tr), Prop. 3.2 (t_k = 1 + ||L G R G^T||_2), Sec. 3 (trace growth rates,
  Eq. 6); MBAG Sec. III-B (the Frobenius normalization of Newton-Schulz).

Convention: norms return 0-d arrays of the input's namespace, device and dtype (``float(x)`` turns one into a
Python float; on CuPy that is a device synchronisation). Each is scaled so that float32 squares cannot overflow.
"""
from __future__ import annotations

import math

from .. import backend, validate
from ._common import _max_abs, _sym


def _as_0d(x, xp):
    """A reduction's result as a true 0-d array (NumPy reductions return scalars, not 0-d ndarrays)."""
    return xp.asarray(x)


def _zero_d(value, A, xp):
    return xp.asarray(value, dtype=A.dtype, device=backend.device(A))


def norm_2(A, *, assume_symmetric=None):
    """Spectral norm ||A||_2, the largest singular value.

    References:
      KrADagrad, Sec. 2.1 (||A||_2) and Prop. 3.2 (t_k = 1 + ||L G R G^T||_2).

    Args:
      A: (m, n) real floating, finite matrix.
      assume_symmetric: True: A is symmetric, use max|lambda| from one eigvalsh (reads one triangle, ~3x
        cheaper than an SVD); False: sqrt(lambda_max(A^T A)) from the smaller Gram matrix (one GEMM and one
        eigvalsh: 3.7x faster than svdvals at 1024^2); None (default): decide by an exact test A == A^T.

    Returns:
      0-d array (A's namespace, device and dtype). Relative error <= c n u: the Gram route squares the condition
      of the *small* singular values only; the largest, lambda_max(A^T A) = ||A||_2^2, is computed with
      absolute error c n u ||A||_2^2, i.e. relative error c n u / 2 after the square root.

    Identity: ||A||_2 = max_i sigma_i(A) = max_{||x||=1} ||A x||; for symmetric A, = max|lambda_i|.
    """
    xp = validate.matrix(A, "A")
    validate.finite(A, "A", xp=xp)
    if A.size == 0:
        return _zero_d(0.0, A, xp)
    if assume_symmetric is None:
        assume_symmetric = A.shape[0] == A.shape[1] and bool(xp.all(A == xp.matrix_transpose(A)))
    if assume_symmetric:
        validate.square(A, "A", xp=xp)
        w = backend.eigvalsh(A)
        return _as_0d(xp.max(xp.abs(xp.stack([w[0], w[-1]]))), xp)
    return _norm_2_gram(A, _max_abs(A, xp), xp)


def _norm_2_general(A, xp):
    """``norm_2(A, assume_symmetric=False)`` of a 2-D real floating A whose finiteness the caller has not checked
    (KrADagrad's spectral t of N = L A): max|A| is inf or NaN exactly when A has such an entry, and then
    ``validate.finite`` raises norm_2's own message, so the kernel costs no separate finiteness pass."""
    if A.size == 0:
        return _zero_d(0.0, A, xp)
    mx = _max_abs(A, xp)
    if not math.isfinite(mx):
        validate.finite(A, "A", xp=xp)
    return _norm_2_gram(A, mx, xp)


def _norm_2_gram(A, mx: float, xp):
    """sqrt(lambda_max) of the smaller Gram matrix of a finite, non-empty A with max|A| = ``mx``."""
    m, n = A.shape
    # scaled by a power of two s ~ max|A| (exact: same digits) so that the Gram's squares cannot overflow
    s = _pow2_scale(mx)
    As = A / s if s != 1.0 else A
    At = xp.matrix_transpose(As)
    gram = At @ As if n <= m else As @ At
    w = backend.eigvalsh(_sym(gram, xp))
    return _as_0d(xp.sqrt(xp.clip(w[-1], 0.0, None)) * s, xp)


def _pow2_scale(m: float) -> float:
    """A power of two near m > 0 (1.0 for 0 or non-finite m): dividing by it is exact in binary floating point."""
    return math.ldexp(1.0, math.frexp(m)[1]) if m > 0 and math.isfinite(m) else 1.0


def norm_fro(A):
    """Frobenius norm ||A||_F = sqrt(sum_ij a_ij^2) = sqrt(tr(A^T A)).

    References:
      KrADagrad, Sec. 2.1; MBAG Sec. III-B (Newton-Schulz normalization).

    Args:
      A: (m, n) real floating, finite matrix.

    Returns:
      0-d array (A's namespace, device and dtype), computed as max|A| * ||A / max|A|||_F so that float32
      squares cannot overflow (LAPACK's xLANGE does the same); relative error <= c n u.

    Identity: ||A||_2 <= ||A||_F <= sqrt(rank A) ||A||_2.
    """
    xp = validate.matrix(A, "A")
    validate.finite(A, "A", xp=xp)
    return _norm_fro(A, xp)


def _norm_fro(A, xp):
    """:func:`norm_fro` of a 2-D real floating A whose finiteness the caller has not checked: max|A| is NaN or
    inf exactly when A has a NaN or inf entry, and then ``validate.finite`` raises norm_fro's own error, so the
    kernel costs no separate finiteness pass and returns the same bits and messages as norm_fro."""
    if A.size == 0:
        return _zero_d(0.0, A, xp)
    return _as_0d(_fro_value(A, xp), xp)


def _fro_value(A, xp):
    """:func:`_norm_fro` of a non-empty A as the reduction returns it (a NumPy scalar, not yet a 0-d array; the
    same value, for callers that only compute with it)."""
    m = backend.max_abs(A, xp)
    mf = float(m)
    if not math.isfinite(mf):
        validate.finite(A, "A", xp=xp)
    if mf == 0.0:
        return _zero_d(0.0, A, xp)
    return m * backend.vector_norm(A / m, xp)


def norm_trace(A):
    """Trace tr(A) = sum_i a_ii, the "trace norm" of the KrADagrad code (``matrices_norm(norm='tr')``).

    References:
      KrADagrad, Sec. 2.1 (tr), Sec. 3 (trace growth rates, Eq. 6); authors' ``matrices_norm``.

    Args:
      A: (n, n) real floating, finite matrix.

    Returns:
      0-d array (A's namespace, device and dtype).

    Caveat: this is the trace, not the nuclear norm ||A||_* = sum_i sigma_i: the two agree exactly when A is
    PSD (then tr A = sum lambda_i = sum sigma_i); for indefinite A the trace can be 0 or negative. Nothing here
    checks PSD. For PSD A: ||A||_2 <= ||A||_F <= tr A <= n ||A||_2.
    """
    xp = validate.square(A, "A")
    validate.finite(A, "A", xp=xp)
    return _as_0d(xp.linalg.trace(A), xp)
