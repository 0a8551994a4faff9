"""Ando's matrix geometric mean M_g(A, B) of two symmetric positive definite matrices.

References:
  KrADagrad, Sec. 3.3: M_g(A, B) = A^{1/2} (A^{-1/2} B A^{-1/2})^{1/2} A^{1/2} = A (A^{-1} B)^{1/2} (Ando, Li and
  Mathias 2004); errata 10. Formula 2's square root of the non-symmetric A^{-1} B: Higham, Functions of Matrices
  (2008), Eq. (6.17) with determinant scaling (Sec. 6.5), the scaled product-form Denman-Beavers iteration.
"""
from __future__ import annotations

import math

from .. import backend, validate
from ._common import DIVERGENCE_RATIO, _check_symmetric_input, _eye, _fail, _fro, _namespace_of, _sym


def _denman_beavers_sqrt(Z, xp, *, tol: float | None, max_iter: int):
    """Principal square root of a matrix with real positive eigenvalues: scaled product-form Denman-Beavers.

    Higham, Functions of Matrices (2008), Eq. (6.17) with determinant scaling (Sec. 6.5):
      M_0 = Y_0 = Z;  mu_k = |det M_k|^{-1/(2n)} while ||M_k - I||_F > 1e-2, else 1;
      Y_{k+1} = (mu_k / 2) Y_k (I + mu_k^{-2} M_k^{-1});  M_{k+1} = (I + (mu_k^2 M_k + mu_k^{-2} M_k^{-1}) / 2) / 2.
    Y_k -> Z^{1/2} and M_k -> I quadratically; one inverse per iteration. Stops on ||M_k - I||_F <= tol.
    """
    n = Z.shape[0]
    u = backend.unit_roundoff(Z.dtype)
    tol = 4.0 * n * u if tol is None else tol
    I = _eye(n, Z, xp)
    Y = Z
    M = Z
    res = _fro(M - I, xp)
    prev = math.inf
    k = 0
    while res > tol:
        if k >= max_iter or not math.isfinite(res) or res > DIVERGENCE_RATIO * prev:
            raise _fail("geometric_mean", res, k, tol, " in the Denman-Beavers square root of A^-1 B")
        Minv = xp.linalg.inv(M)
        mu = 1.0
        if res > 1e-2:
            logabsdet = float(xp.linalg.slogdet(M)[1])
            mu = math.exp(-logabsdet / (2 * n))
        Y = (0.5 * mu) * (Y @ (I + Minv / mu**2))
        M = 0.5 * (I + (mu**2 * M + Minv / mu**2) / 2)
        k += 1
        # determinant-scaled steps may raise the residual transiently; guard only once scaling is off
        prev = res if res <= 1e-2 else math.inf
        res = _fro(M - I, xp)
    return Y


def geometric_mean(A, B, *, formula: int = 1, tol=None, max_iter: int = 100, check: bool = True):
    """Ando's matrix geometric mean M_g(A, B) of two symmetric positive definite matrices.

    References:
      KrADagrad, Sec. 3.3: M_g(A, B) = A^{1/2} (A^{-1/2} B A^{-1/2})^{1/2} A^{1/2} = A (A^{-1} B)^{1/2}
      (Ando, Li and Mathias 2004); errata 10.

    Args:
      A, B: (n, n) symmetric positive definite matrices, same dtype and namespace.
      formula: 1 = the symmetric form by two eigendecompositions (A, then C = A^{-1/2} B A^{-1/2});
        2 = A (A^{-1} B)^{1/2}, where the principal square root of the NON-symmetric Z = A^{-1} B (real positive
        eigenvalues, Z similar to C) is computed by a scaled Denman-Beavers iteration (never eigh on Z:
        errata 10). Formula 2 is here to test formula 1 and the paper's equality, not for production.
      tol: Denman-Beavers stopping tolerance on ||M_k - I||_F (default 4 n u); formula 2 only.
      max_iter: Denman-Beavers iteration cap; formula 2 only.
      check: verify symmetry and definiteness of A and B (one eigvalsh each; formula 1 reuses A's eigh).

    Returns:
      (n, n) symmetric PD X = M_g(A, B), input dtype (symmetrized: X == X^T exactly).

    Identity: X is the unique SPD solution of the Riccati equation X A^{-1} X = B; also M_g(A, B) = M_g(B, A),
    M_g(A, I) = A^{1/2}, and M_g(A, B)^{-1} = M_g(A^{-1}, B^{-1}). The residual that demonstrates it,
    ||X A^{-1} X - B||_F / ||B||_F, is <~ c n u kappa(A). Forward error of formula 1 <~ c n u (kappa(A) + kappa(B));
    formula 2 loses more (the solve costs kappa(A), the non-normal square root up to (kappa(A) kappa(B))^{1/2}).

    Raises:
      ValueError: A or B not symmetric PD (names the argument); shapes differ; bad formula.
      TypeError: dtype mismatch between A and B.
      RuntimeError: formula 2's iteration did not converge.
    """
    _check_symmetric_input(A, "A", check)
    _check_symmetric_input(B, "B", check)
    xp = _namespace_of(A=A, B=B)
    validate.same_dtype(A=A, B=B)
    validate.same_shape(A=A, B=B)
    validate.one_of(formula, "formula", (1, 2))
    max_iter = validate.positive_int(max_iter, "max_iter")
    if tol is not None:
        tol = validate.real_scalar(tol, "tol", low=0.0, low_open=True)
    n = A.shape[0]
    if check:
        validate.symmetric_pd(B, "B", xp=xp)
    if formula == 1:
        w, V = backend.eigh(_sym(A, xp))
        validate.psd_eigenvalues(w, "A", n=n, dtype=A.dtype, strict=True, xp=xp)
        s = xp.sqrt(w)
        Vt = xp.matrix_transpose(V)
        A_half = (V * s) @ Vt
        A_mhalf = (V / s) @ Vt
        C = _sym(A_mhalf @ (_sym(B, xp) @ A_mhalf), xp)
        wc, Vc = backend.eigh(C)
        sc = xp.sqrt(xp.where(wc > 0, wc, xp.zeros_like(wc)))
        C_half = (Vc * sc) @ xp.matrix_transpose(Vc)
        return _sym(A_half @ (C_half @ A_half), xp)
    if check:
        validate.symmetric_pd(A, "A", xp=xp)
    Z = xp.linalg.solve(_sym(A, xp), _sym(B, xp))
    Y = _denman_beavers_sqrt(Z, xp, tol=tol, max_iter=max_iter)
    return _sym(A @ Y, xp)
