"""Functions of symmetric PSD matrices: A^p (``mp_psd_power``), pseudo-powers, inverse p-th roots (Shampoo)
and the matrix geometric mean A # B (KrADagrad Sec. 3.3) by both of its formulas.

Accuracy contract (M1): :func:`mp_psd_power`: X = Q diag(w^p) Q^T with the error of the eigendecomposition
(:mod:`.eigen`), amplified by the conditioning of t -> t^p on the spectrum (kappa(A) |p| for p < 0).
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any

import mpmath
import numpy as np

from .convert import _matrix, to_mp, to_mpf
from .eigen import mp_eigsy
from .matrices import mp_sym
from .precision import _eps, workdps
from .roots import mp_sqrtm_general


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
