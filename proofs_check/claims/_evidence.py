"""Turning mp results into Evidence: identities (X = Y) and Loewner inequalities (X >= Y).

Both are evaluated on mp matrices at the claim's working precision. The tolerance is
``mp.mp_tolerance(dps, n)`` = n 10^-(dps//2): half the digits are kept for what the mp evaluation itself loses
to the instance's conditioning (an eigen-decomposition at dps digits gives a relative error about
kappa 10^-dps, and the claims keep kappa <= 1e16), so a float64-sized residual (~1e-16) is always a real
failure of an exact statement. Fractional powers need one more allowance, :func:`hoelder_tol`.
"""
from __future__ import annotations

import mpmath
import numpy as np

from .. import mp
from ..claim import Evidence

__all__ = ["identity", "loewner", "cond", "hoelder_tol"]


def identity(lhs, rhs, *, dps: int, n: int, tol: float | None = None, detail=None) -> Evidence:
    """X = Y as -||X - Y||_F against the scale ||X||_F + ||Y||_F."""
    with mpmath.workdps(dps):
        diff = mp.mp_norm_fro(lhs - rhs)
        scale = mp.mp_norm_fro(lhs) + mp.mp_norm_fro(rhs)
    return Evidence(margin=-float(diff), scale=float(scale) or 1.0,
                    tol=mp.mp_tolerance(dps, n) if tol is None else tol, detail=dict(detail or {}))


def loewner(X, Y, *, dps: int, n: int, tol: float | None = None, detail=None) -> Evidence:
    """X >= Y as lambda_min(sym(X - Y)) against the scale max(||X||_F, ||Y||_F).

    The Frobenius norm (within sqrt(n) of the spectral norm) keeps the scale cheap: it costs no eigenvalue.
    """
    margin = mp.loewner_margin(X, Y, dps=dps)
    with mpmath.workdps(dps):
        scale = max(mp.mp_norm_fro(X), mp.mp_norm_fro(Y))
    return Evidence(margin=float(margin), scale=float(scale) or 1.0,
                    tol=mp.mp_tolerance(dps, n) if tol is None else tol, detail=dict(detail or {}))


def hoelder_tol(p, *, dps: int, n: int) -> float:
    """Tolerance for X^p with 0 < p < 1 of a PSD X that may have exact zero eigenvalues.

    An eigenvalue known to an absolute 16 n 10^-dps ||X|| (mp eigen-decomposition) moves x^p by up to
    (16 n 10^-dps)^p relative to ||X||^p, by the Hoelder bound |x^p - y^p| <= |x - y|^p on [0, inf):
    about 1e-12 for p = 1/4 at 50 digits, still four orders below float64-sized defects.
    """
    base = mp.mp_tolerance(dps, n)
    pf = float(p)
    if 0 < pf < 1:
        return max(base, (16.0 * n * 10.0 ** (-dps)) ** pf)
    return base


def cond(A_np) -> float:
    """2-norm condition number of a float64 SPD matrix, for reading counterexamples."""
    w = np.linalg.eigvalsh(A_np)
    return float(w[-1] / w[0]) if w[0] > 0 else float("inf")
