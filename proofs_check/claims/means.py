"""The matrix geometric mean of KrADagrad Sec. 3.3 (Ando, Li and Mathias 2004; Bhatia 2009, Ch. 4).

The paper prints two formulas for M_g(A, B) of PD A, B:
    (1)  A^{1/2} (A^{-1/2} B A^{-1/2})^{1/2} A^{1/2}
    (2)  A (A^{-1} B)^{1/2}            (principal square root of a non-symmetric matrix; errata 10)
and uses, without listing them, the mean's standard properties: symmetry, M_g(X, X) = X, M_g(A, I) = A^{1/2}
(Sec. 3.3.1: "B_c = M_g(B_1, I) = B_1^{1/2}"), Kronecker multiplicativity (needed for R_c kron L_c to be the
mean of the Kronecker products), joint monotonicity in the Loewner order (behind "R_c kron L_c >= GG^T"), and
the Riccati characterisation: M_g(A, B) is the unique PD solution X of X A^{-1} X = B.

Every check computes the means in mp at the claim's working precision; formula 2 uses a scaled
Denman-Beavers square root (``mp.mp_sqrtm_general``). Condition numbers stay <= 1e8 here: the mp evaluation
of a mean loses about kappa(A) kappa(B) <= 1e16 relative to the working precision, which the tolerance
``mp.mp_tolerance`` (half the digits) absorbs.
"""
from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

import mpmath
import numpy as np
from hypothesis import strategies as st

from .. import certify as BALL
from .. import mp
from .. import strategies as S
from ..claim import Claim, Source, register
from . import _evidence as E

MAX_DIM = 4
MAX_LOG10_COND = 8
SOURCE = Source("KrADagrad", "Sec. 3.3 (geometric mean)")


class Pair(NamedTuple):
    A: np.ndarray  # (n, n) PD
    B: np.ndarray  # (n, n) PD


@st.composite
def pd_pairs(draw):
    n = draw(S.dims(1, MAX_DIM))
    return Pair(draw(S.spd_matrices(n, max_log10_cond=MAX_LOG10_COND)),
                draw(S.spd_matrices(n, max_log10_cond=MAX_LOG10_COND)))


def _detail(*mats) -> dict:
    return {"n": mats[0].shape[0], "kappa": [E.cond(M) for M in mats]}


def check_formulas_agree(inst: Pair, *, dps: int):
    with mpmath.workdps(dps):
        A, B = mp.to_mp(inst.A), mp.to_mp(inst.B)
        M1 = mp.mp_geometric_mean(A, B, formula=1, dps=dps)
        M2 = mp.mp_geometric_mean(A, B, formula=2, dps=dps)
    return E.identity(M1, M2, dps=dps, n=inst.A.shape[0], detail=_detail(*inst))


def check_symmetry(inst: Pair, *, dps: int):
    with mpmath.workdps(dps):
        A, B = mp.to_mp(inst.A), mp.to_mp(inst.B)
        lhs, rhs = mp.mp_geometric_mean(A, B, dps=dps), mp.mp_geometric_mean(B, A, dps=dps)
    return E.identity(lhs, rhs, dps=dps, n=inst.A.shape[0], detail=_detail(*inst))


def check_riccati(inst: Pair, *, dps: int):
    with mpmath.workdps(dps):
        A, B = mp.to_mp(inst.A), mp.to_mp(inst.B)
        M = mp.mp_geometric_mean(A, B, dps=dps)
        lhs = M * mpmath.inverse(A) * M
    return E.identity(lhs, B, dps=dps, n=inst.A.shape[0], detail=_detail(*inst))


@st.composite
def single_pd(draw):
    n = draw(S.dims(1, MAX_DIM))
    return (draw(S.spd_matrices(n, max_log10_cond=MAX_LOG10_COND)),)


def check_idempotent(inst, *, dps: int):
    (X,) = inst
    with mpmath.workdps(dps):
        Xm = mp.to_mp(X)
        M = mp.mp_geometric_mean(Xm, Xm, dps=dps)
    return E.identity(M, Xm, dps=dps, n=X.shape[0], detail=_detail(X))


def check_identity_sqrt(inst, *, dps: int):
    (A,) = inst
    n = A.shape[0]
    with mpmath.workdps(dps):
        Am = mp.to_mp(A)
        M = mp.mp_geometric_mean(Am, mpmath.eye(n), dps=dps)
        R = mp.mp_psd_power(Am, mpmath.mpf(1) / 2, dps=dps)
    return E.identity(M, R, dps=dps, n=n, detail=_detail(A))


class KronPairs(NamedTuple):
    A1: np.ndarray
    B1: np.ndarray
    A2: np.ndarray
    B2: np.ndarray


@st.composite
def kron_pairs(draw):
    m = draw(S.dims(1, 3))
    n = draw(S.dims(1, 3))
    mk = lambda k, lab: draw(S.spd_matrices(k, max_log10_cond=4))  # noqa: E731
    return KronPairs(mk(m, "A1"), mk(m, "B1"), mk(n, "A2"), mk(n, "B2"))


def check_kron(inst: KronPairs, *, dps: int):
    with mpmath.workdps(dps):
        A1, B1, A2, B2 = (mp.to_mp(x) for x in inst)
        lhs = mp.mp_geometric_mean(mp.mp_kron(A1, A2), mp.mp_kron(B1, B2), dps=dps)
        rhs = mp.mp_kron(mp.mp_geometric_mean(A1, B1, dps=dps), mp.mp_geometric_mean(A2, B2, dps=dps))
    n = inst.A1.shape[0] * inst.A2.shape[0]
    return E.identity(lhs, rhs, dps=dps, n=n, detail=_detail(*inst))


class MonotoneInstance(NamedTuple):
    A1: np.ndarray  # PD
    DA: np.ndarray  # PSD; A2 = A1 + DA formed in mp
    B1: np.ndarray  # PD
    DB: np.ndarray  # PSD; B2 = B1 + DB formed in mp


@st.composite
def monotone_instances(draw):
    n = draw(S.dims(1, MAX_DIM))
    pd = lambda lab: draw(S.spd_matrices(n, max_log10_cond=6))  # noqa: E731
    psd = lambda lab: draw(S.psd_matrices(n, max_log10_cond=6))  # noqa: E731
    return MonotoneInstance(pd("A1"), psd("DA"), pd("B1"), psd("DB"))


def check_monotone(inst: MonotoneInstance, *, dps: int):
    with mpmath.workdps(dps):
        lo = mp.mp_geometric_mean(mp.to_mp(inst.A1), mp.to_mp(inst.B1), dps=dps)
        # A2 = A1 + DA and B2 = B1 + DB formed without rounding, so the hypotheses hold exactly
        hi = mp.mp_geometric_mean(mp.mp_exact_sum(inst.A1, inst.DA), mp.mp_exact_sum(inst.B1, inst.DB), dps=dps)
    return E.loewner(hi, lo, dps=dps, n=inst.A1.shape[0],
                     detail=_detail(inst.A1, inst.B1))


# --- the same sides in ball arithmetic (proofs_check.certify): certified verdicts --------------------------------
HALF = Fraction(1, 2)


def ball_mean(A, B, formula: int = 1):
    """M_g(A, B) as a ball matrix: formula 1 from PSD powers, formula 2 as A times the principal square root of
    the non-symmetric A^{-1} B (both by eigen-enclosures; ``BALL.funm``)."""
    if formula == 2:
        return A * BALL.funm(BALL.inv(A) * B, lambda z: z.sqrt(), "(A^{-1} B)^{1/2}")
    Ah, Aih = BALL.power(A, HALF), BALL.power(A, -HALF)
    return Ah * BALL.power(BALL.sym(Aih * B * Aih), HALF) * Ah


def _ident(X, Y):
    return BALL.Sides("identity", X, Y, n=X.nrows())


def ball_formulas_agree(inst: Pair, *, dps: int):
    A, B = BALL.mat(inst.A), BALL.mat(inst.B)
    return _ident(ball_mean(A, B, 1), ball_mean(A, B, 2))


def ball_symmetry(inst: Pair, *, dps: int):
    A, B = BALL.mat(inst.A), BALL.mat(inst.B)
    return _ident(ball_mean(A, B), ball_mean(B, A))


def ball_riccati(inst: Pair, *, dps: int):
    A, B = BALL.mat(inst.A), BALL.mat(inst.B)
    Mg = ball_mean(A, B)
    return _ident(Mg * BALL.inv(A) * Mg, B)


def ball_idempotent(inst, *, dps: int):
    X = BALL.mat(inst[0])
    return _ident(ball_mean(X, X), X)


def ball_identity_sqrt(inst, *, dps: int):
    A = BALL.mat(inst[0])
    return _ident(ball_mean(A, BALL.eye(A.nrows())), BALL.power(A, HALF))


def ball_kron(inst: KronPairs, *, dps: int):
    A1, B1, A2, B2 = (BALL.mat(x) for x in inst)
    return _ident(ball_mean(BALL.kron(A1, A2), BALL.kron(B1, B2)), BALL.kron(ball_mean(A1, B1), ball_mean(A2, B2)))


def ball_monotone(inst: MonotoneInstance, *, dps: int):
    lo = ball_mean(BALL.mat(inst.A1), BALL.mat(inst.B1))
    hi = ball_mean(BALL.exact_sum(inst.A1, inst.DA), BALL.exact_sum(inst.B1, inst.DB))
    return BALL.Sides("loewner", hi, lo, n=lo.nrows())


for cid, statement, strategy, check, ball in (
    ("means.formulas_agree",
     "A^{1/2}(A^{-1/2} B A^{-1/2})^{1/2}A^{1/2} = A(A^{-1}B)^{1/2} for PD A, B (principal square root)",
     pd_pairs(), check_formulas_agree, ball_formulas_agree),
    ("means.symmetric", "M_g(A, B) = M_g(B, A) for PD A, B", pd_pairs(), check_symmetry, ball_symmetry),
    ("means.idempotent", "M_g(X, X) = X for PD X", single_pd(), check_idempotent, ball_idempotent),
    ("means.identity", "M_g(A, I) = A^{1/2} for PD A (Sec. 3.3.1: B_c = M_g(B_1, I) = B_1^{1/2})", single_pd(),
     check_identity_sqrt, ball_identity_sqrt),
    ("means.kron", "M_g(A1 kron A2, B1 kron B2) = M_g(A1, B1) kron M_g(A2, B2) for PD A1, B1 (m x m), A2, B2 (n x n)",
     kron_pairs(), check_kron, ball_kron),
    ("means.monotone", "A1 <= A2 and B1 <= B2 imply M_g(A1, B1) <= M_g(A2, B2) for PD A1, B1",
     monotone_instances(), check_monotone, ball_monotone),
    ("means.riccati", "X = M_g(A, B) solves X A^{-1} X = B for PD A, B", pd_pairs(), check_riccati, ball_riccati),
):
    register(Claim(id=cid, source=SOURCE, statement=statement, strategy=strategy, check=check, certify=ball,
                   weight=0.5 if cid in ("means.kron", "means.monotone") else 1.0))
