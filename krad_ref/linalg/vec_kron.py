"""vec, unvec, kron and the symmetric part: the identities every Kronecker-factored preconditioner is written in.

References:
  KrADagrad (Mei et al.), Sec. 2.1 (vec, vec^{-1}, kron); errata 15.

Convention: ``vec`` is column-major (KrADagrad Sec. 2.1; errata 15): vec(L G R) = (R^T kron L) vec(G). With
NumPy's row-major flattening instead, flat(U X W) = (U kron W^T) flat(X).
"""
from __future__ import annotations

import array_api_extra as xpx

from .. import validate
from ._common import _namespace_of, _sym


def vec(X):
    """Column-major vectorization: stack the columns of X.

    References:
      KrADagrad (Mei et al.), Sec. 2.1: vec(A) = (a_1^T ... a_n^T)^T, a_i the i-th column; errata 15.

    Args:
      X: (m, n) real floating matrix.

    Returns:
      (m n,) array, ``vec(X)[i + j m] == X[i, j]``; written as ``reshape(matrix_transpose(X), (-1,))`` because
      the array API's reshape has no ``order=`` (NumPy's row-major ``X.reshape(-1)`` is vec(X^T)).

    Identity: vec(L G R) = (R^T kron L) vec(G) for L (m, m), G (m, n), R (n, n) (KrADagrad's P18). A pure
    permutation of entries: exact, no rounding.
    """
    xp = validate.matrix(X, "X")
    return xp.reshape(xp.matrix_transpose(X), (-1,))


def unvec(x, m: int, n: int):
    """Inverse of :func:`vec`: fold an (m n,) vector column by column into an (m, n) matrix.

    References:
      KrADagrad, Sec. 2.1: vec^{-1}_{m,n}(a) = (a_{1:m} ... a_{m(n-1)+1:mn}).

    Args:
      x: (m n,) real floating vector.
      m, n: the target shape, positive integers.

    Returns:
      (m, n) array with ``unvec(vec(X), m, n) == X`` and ``vec(unvec(x, m, n)) == x`` exactly.
    """
    xp = validate.float_array(x, "x", ndim=1)
    m = validate.positive_int(m, "m")
    n = validate.positive_int(n, "n")
    if x.shape[0] != m * n:
        raise ValueError(f"x: expected length m*n = {m * n}, got {x.shape[0]}")
    return xp.matrix_transpose(xp.reshape(x, (n, m)))


def kron(A, B):
    """Kronecker product A kron B: the (m q, n r) block matrix with blocks a_ij B.

    References:
      KrADagrad, Sec. 2.1 (definition); ``array_api_extra.kron`` (the standard has no kron).

    Args:
      A: (m, n) real floating matrix.
      B: (q, r) real floating matrix of the same dtype and namespace.

    Returns:
      (m q, n r) array. Each entry is one rounded product a_ij b_kl (relative error <= u).

    Identity: vec(L G R) = (R^T kron L) vec(G) (column-major :func:`vec`); with NumPy's row-major flattening
    instead, flat(U X W) = (U kron W^T) flat(X) (errata 15).
    """
    validate.matrix(A, "A")
    validate.matrix(B, "B")
    xp = _namespace_of(A=A, B=B)
    validate.same_dtype(A=A, B=B)
    return xpx.kron(A, B, xp=xp)


def sym(A):
    """Symmetric part (A + A^T)/2.

    References:
      KrADagrad authors' code, ``symmetrize``; used before every eigh (which reads only one triangle).

    Args:
      A: (n, n) real floating, finite matrix.

    Returns:
      (n, n) array S with S == S^T exactly (floating-point addition commutes). For a symmetric A, S == A
      exactly; otherwise ||S - A||_F = ||A - A^T||_F / 2.
    """
    xp = validate.square(A, "A")
    validate.finite(A, "A", xp=xp)
    return _sym(A, xp)
