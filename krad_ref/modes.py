"""Order-p tensors seen one mode at a time: mode products and mode Gram matrices.

A Kronecker-factored preconditioner keeps one d_k x d_k factor per mode k of a parameter of shape
(d_0, ..., d_{p-1}). For a matrix (p = 2), mode 0 is the left factor L (m x m) and mode 1 the right factor R
(n x n), and with vec column-major (KrADagrad Sec. 2.1)

    (R kron L) vec(G) = vec(L G R^T) = vec(G x_0 L x_1 R),

where ``X x_k M`` multiplies mode k of X by M (Kolda and Bader 2009, Sec. 2.5): (X x_k M)[.., i, ..] =
sum_j M[i, j] X[.., j, ..]. For an order-p tensor the preconditioner kron_k P_k acts as G x_0 P_0 ... x_{p-1}
P_{p-1} (KrADagrad App. C.5 as rebuilt from the authors' code, ``shared/notes/kradagrad-code.md`` Sec. 1).

The mode-k Gram matrix G_(k) G_(k)^T, with G_(k) the mode-k unfolding (d_k x prod_{j != k} d_j), does not
depend on how the other modes are ordered in the unfolding; it is computed here with ``tensordot`` over all
modes but k, so no unfolding is ever materialised.
"""
from __future__ import annotations

from . import backend

__all__ = ["mode_product", "mode_gram", "cross_gram", "multi_mode_product"]


def _check_mode(X, k: int, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"{name}: expected an integer mode, got {type(k).__name__}")
    if not -X.ndim <= k < X.ndim:
        raise ValueError(f"{name}: mode {k} out of range for an order-{X.ndim} tensor")
    return k % X.ndim


def mode_product(X, M, k: int):
    """``X x_k M``: multiply mode ``k`` of ``X`` (size d_k) by the (r, d_k) matrix ``M``; mode k becomes size r.

    For a matrix, ``mode_product(G, L, 0) = L @ G`` and ``mode_product(G, R, 1) = G @ R^T``.
    """
    xp = backend.namespace(X, M)
    k = _check_mode(X, k)
    if M.ndim != 2 or M.shape[1] != X.shape[k]:
        raise ValueError(f"M: expected shape (r, {X.shape[k]}) for mode {k} of a tensor of shape {tuple(X.shape)}, "
                         f"got {tuple(M.shape)}")
    return _mode_product(X, M, k, xp)


def _mode_product(X, M, k: int, xp):
    """:func:`mode_product` for checked arguments (0 <= k < X.ndim, M of shape (r, d_k)): the update's kernel."""
    if X.ndim == 2:  # plain matmul: the common case, and one GEMM without a transposed copy
        return M @ X if k == 0 else X @ M.T  # .T of a matrix: matrix_transpose without a call
    Y = xp.tensordot(M, X, axes=([1], [k]))  # new mode first
    return xp.moveaxis(Y, 0, k)


def multi_mode_product(X, mats, *, skip=()):
    """``X x_0 M_0 x_1 M_1 ...`` over every mode not in ``skip``; ``mats[k]`` may be None (identity)."""
    if len(mats) != X.ndim:
        raise ValueError(f"mats: expected {X.ndim} matrices (one per mode), got {len(mats)}")
    Y = X
    for k, M in enumerate(mats):
        if M is not None and k not in skip:
            Y = mode_product(Y, M, k)
    return Y


def _multi_mode_product(X, mats, xp):
    """:func:`multi_mode_product` (no ``skip``) for checked arguments: one matrix or None per mode, same library."""
    Y = X
    for k, M in enumerate(mats):
        if M is not None:
            Y = _mode_product(Y, M, k, xp)
    return Y


def cross_gram(X, Y, k: int):
    """``X_(k) Y_(k)^T`` (d_k x d_k): contraction of ``X`` and ``Y`` (same shape) over every mode but ``k``."""
    xp = backend.namespace(X, Y)
    k = _check_mode(X, k)
    if tuple(X.shape) != tuple(Y.shape):
        raise ValueError(f"Y: shape {tuple(Y.shape)} does not match X's {tuple(X.shape)}")
    return _cross_gram(X, Y, k, xp)


def _cross_gram(X, Y, k: int, xp):
    """:func:`cross_gram` for checked arguments (same shape and library, 0 <= k < X.ndim): the update's kernel."""
    if X.ndim == 1:
        return X[:, None] * Y[None, :]
    if X.ndim == 2:
        return X @ Y.T if k == 0 else X.T @ Y
    others = [j for j in range(X.ndim) if j != k]
    return xp.tensordot(X, Y, axes=(others, others))


def mode_gram(X, k: int):
    """``X_(k) X_(k)^T``: the mode-k Gram matrix (``G G^T`` for k = 0 and ``G^T G`` for k = 1 of a matrix)."""
    return cross_gram(X, X, k)


def _mode_gram(X, k: int, xp):
    """:func:`mode_gram` for a checked X and 0 <= k < X.ndim."""
    return _cross_gram(X, X, k, xp)


def gram_is_exactly_symmetric(X, xp) -> bool:
    """True when :func:`mode_gram` of ``X`` comes out exactly symmetric by construction, so that symmetrizing it
    again, (A + A^T) / 2 = (2a) / 2 = a, would be an identity (barring a + a overflowing) that callers can skip.

    * order 1: X[:, None] * X[None, :], entries x_i x_j = x_j x_i (multiplication commutes), on any backend;
    * order 2: when ``backend.gram_via_syrk`` (NumPy hands ``G @ G.T`` of a contiguous float32/float64 G to
      BLAS ?syrk and copies the triangle).
    Not claimed otherwise: a GEMM of A and A^T (CuPy, NumPy on a strided G, which it copies into two buffers,
    ``tensordot`` for order >= 3) is usually, not provably, symmetric; tests/test_perf.py shows a strided float64
    G whose Gram is not.
    """
    return X.ndim == 1 or (X.ndim == 2 and backend.gram_via_syrk(X, xp))
