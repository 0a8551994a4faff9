"""Symmetric eigenproblems in mp: ``mp_eigsy``, ``mp_eigvalsh``, the fast certified ``mp_lambda_min`` /
``mp_lambda_max`` behind every Loewner margin, and the spectral norm ``mp_norm_2``.

Accuracy contracts (M1: each is the identity the result satisfies, and the residual that shows it)
-----------------------------------------------------------------------------------------------
* :func:`mp_eigsy`: Q^T A Q = diag(w) and Q^T Q = I to O(n 10^-dps ||A||_2) (mpmath's Householder/QL, EISPACK
  tred2/tql2); eigenvalues have absolute error O(n 10^-dps ||A||_2), so *relative* error grows with kappa.
* :func:`mp_lambda_min` (hence :func:`loewner_margin`): absolute error <= 4 * 2^-prec * max_ij |M_ij| (a few
  units in the last place of the working precision, relative to the largest entry), certified as below.

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
"""
from __future__ import annotations

from typing import Any

import mpmath
import numpy as np

from .convert import _matrix, _mpf_from_dyadic, _rows
from .matrices import _sym_rows
from .precision import workdps


# Guard bits used inside mp_lambda_min (the result is still rounded to the working precision).
_GUARD_BITS = 24
# Inverse-iteration cap of the fast lambda_min: isolated eigenvalues converge in 2-4 steps; a cluster that has
# not converged in this many goes to the eigsy fallback (cheaper than hundreds of slow steps).
_MAX_INVERSE_ITERATIONS = 12
# Largest cluster around lambda_min iterated as a block (subspace iteration with Rayleigh-Ritz).
_MAX_BLOCK = 8


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
