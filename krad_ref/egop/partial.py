"""Partial EGOP basis: the leading k eigenvectors (exact, or by randomized SVD), completed at random to a full basis.

References:
  egop.md Sec. 5 ("one can use techniques like randomized SVD to form [the leading eigenvectors] ... and then append
  any random orthonormal basis for the complement"), App. B; notes §9 "partial basis" [seed].
  Halko, Martinsson, Tropp, "Finding structure with randomness", SIAM Review 53 (2011), Alg. 4.4 and 5.1
  (randomized range finder with subspace iteration).

The random numbers (Gaussian test matrices, the random completion) come from
:func:`krad_ref.egop.sampling.standard_normal`, seeded by the caller.
"""
from __future__ import annotations

from .. import backend, validate
from .estimate import fix_signs
from .reparam import _check_orthonormal_columns
from .sampling import rng_from_seed, standard_normal


def partial_basis(Vk, *, seed):
    """Complete k orthonormal leading vectors to a full orthogonal basis with a *random* orthonormal basis of
    their complement (egop.md Sec. 5 / notes §9 "partial basis" [seed]).

    Sampling helper: draws a (d, d-k) standard Gaussian Z with NumPy from ``seed``, projects it onto
    span(Vk)^perp twice (classical Gram-Schmidt with re-orthogonalization, "twice is enough") and takes the Q
    factor of a QR decomposition: a Haar-distributed orthonormal basis of the complement.

    Args:
      Vk: (d, k) array with orthonormal columns, 0 <= k <= d.
      seed: int or numpy Generator.
    Returns:
      (d, d) orthogonal array [Vk, Q], first k columns exactly Vk.
    Raises: ValueError when Vk's columns are not orthonormal within ~ d u.
    """
    xp = validate.matrix(Vk, "Vk")
    validate.finite(Vk, "Vk", xp=xp)
    d, k = Vk.shape
    if d == 0:
        raise ValueError("Vk: expected d >= 1 rows, got 0")
    if k > d:
        raise ValueError(f"Vk: expected at most d = {d} columns, got {k}")
    _check_orthonormal_columns(Vk, "Vk", xp)
    if k == d:
        return Vk
    Z = standard_normal(rng_from_seed(seed), (d, d - k), dtype=Vk.dtype, device=backend.device(Vk), xp=xp)
    Vt = xp.matrix_transpose(Vk)
    for _ in range(2):                                        # "twice is enough" (Giraud et al. 2005)
        Z = Z - Vk @ (Vt @ Z)
    Q, R = xp.linalg.qr(Z)                                    # reduced: Q (d, d - k)
    rd = xp.linalg.diagonal(R)
    one = xp.ones_like(rd)
    Q = Q * xp.where(rd < 0, -one, one)[None, :]              # sign(diag R) > 0: Haar on the complement
    return xp.concat([Vk, Q], axis=1)


def randomized_range_finder(A, ell: int, *, n_power_iter: int = 2, seed):
    """Orthonormal Q (m, ell) with range(Q) ~ the leading ell-dimensional range of A (HMT Alg. 4.4).

    Randomized subspace iteration: Y = A Omega with a Gaussian Omega (n, ell) (sampling helper), then
    ``n_power_iter`` rounds of Q <- qr(A qr(A^T Q)) (re-orthonormalized at each half step, as Alg. 4.4, to keep
    the small singular directions from being lost to rounding).

    Args:
      A: (m, n) real floating array (for the EGOP: the gradient bundle G, d x M).
      ell: number of columns, 1 <= ell <= min(m, n).
      n_power_iter: q >= 0; the error bound shrinks like (s_{ell+1}/s_k)^(2q+1) (HMT Thm. 10.6 / Cor. 10.10).
      seed: int or numpy Generator.
    Returns: (m, ell) array with orthonormal columns.
    """
    xp = validate.matrix(A, "A")
    validate.finite(A, "A", xp=xp)
    m, n = A.shape
    ell = validate.positive_int(ell, "ell")
    if ell > min(m, n):
        raise ValueError(f"ell: expected 1 <= ell <= min(m, n) = {min(m, n)}, got {ell}")
    q = validate.positive_int(n_power_iter, "n_power_iter", minimum=0)
    Omega = standard_normal(rng_from_seed(seed), (n, ell), dtype=A.dtype, device=backend.device(A), xp=xp)
    At = xp.matrix_transpose(A)
    Q, _ = xp.linalg.qr(A @ Omega)
    for _ in range(q):                                        # HMT Alg. 4.4: re-orthonormalize each half step
        W, _ = xp.linalg.qr(At @ Q)
        Q, _ = xp.linalg.qr(A @ W)
    return Q


def randomized_leading_basis(G, k: int, *, oversample: int = 10, n_power_iter: int = 2, seed, M=None):
    """Leading k EGOP eigenpairs from the gradient bundle by randomized SVD (HMT Alg. 4.4 + Alg. 5.1).

    Q = randomized_range_finder(G, k + oversample); B = Q^T G; B = U_B S W^T; V_k = Q U_B[:, :k];
    lambda_i = s_i^2 / M. Signs fixed as :func:`fix_signs`.

    Args:
      G: (d, M) gradient bundle. k: 1 <= k <= min(d, M). oversample: p >= 0 (ell = min(k + p, d, M)).
      M: divisor for the eigenvalues (default G.shape[1]).
    Returns: (eigenvalues (k,) descending, Vk (d, k) orthonormal).
    """
    xp = validate.matrix(G, "G")
    d, Mc = G.shape
    k = validate.positive_int(k, "k")
    if k > min(d, Mc):
        raise ValueError(f"k: expected 1 <= k <= min(d, M) = {min(d, Mc)}, got {k}")
    p = validate.positive_int(oversample, "oversample", minimum=0)
    Mdiv = Mc if M is None else validate.positive_int(M, "M")
    ell = min(k + p, d, Mc)
    Q = randomized_range_finder(G, ell, n_power_iter=n_power_iter, seed=seed)
    B = xp.matrix_transpose(Q) @ G                            # (ell, M)
    UB, s, _ = xp.linalg.svd(B, full_matrices=False)          # HMT Alg. 5.1
    Vk = fix_signs(Q @ UB[:, :k])
    return (s[:k] * s[:k]) / Mdiv, Vk


def partial_egop_basis(G, k: int, *, seed, randomized: bool = True, oversample: int = 10, n_power_iter: int = 2):
    """Partial EGOP basis: the leading k EGOP eigenvectors of the bundle G, completed at random to an orthogonal
    (d x d) basis (egop.md Sec. 5; notes §9 "partial basis" [seed]).

    The leading vectors come from :func:`randomized_leading_basis` (``randomized=True``; the "e.g. randomized
    SVD" of the notes) or from the exact SVD of G (``randomized=False``); the completion is :func:`partial_basis`.
    One seed feeds both: the range finder draws first, then the completion, from the same Generator.

    Args: G (d, M) gradient bundle; k, 1 <= k <= min(d, M); seed; randomized, oversample, n_power_iter.
    Returns: (eigenvalues (k,) descending: the EGOP's leading eigenvalue estimates, V (d, d) orthogonal).
    """
    xp = validate.matrix(G, "G")
    validate.finite(G, "G", xp=xp)
    d, Mc = G.shape
    k = validate.positive_int(k, "k")
    if k > min(d, Mc):
        raise ValueError(f"k: expected 1 <= k <= min(d, M) = {min(d, Mc)}, got {k}")
    rng = rng_from_seed(seed)
    if randomized:
        lam, Vk = randomized_leading_basis(G, k, oversample=oversample, n_power_iter=n_power_iter, seed=rng)
    else:
        U, s, _ = xp.linalg.svd(G, full_matrices=False)
        lam, Vk = (s[:k] * s[:k]) / Mc, fix_signs(U[:, :k])
    return lam, partial_basis(Vk, seed=rng)
