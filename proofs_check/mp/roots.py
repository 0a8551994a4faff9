"""Iterative matrix roots: the principal square root of a non-symmetric matrix (``mp_sqrtm_general``,
scaled Denman-Beavers; the geometric mean's formula 2, errata 10) and ``_lu_call``, the one wrapper that makes
mpmath 1.3's LU-based ``inverse`` / ``det`` report a singular matrix as mpmath 1.4 does.
"""
from __future__ import annotations

from typing import Any, Callable

import mpmath

from .convert import _matrix, _rows
from .precision import _eps, workdps


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
