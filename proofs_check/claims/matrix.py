"""The matrix facts the papers lean on: vec/Kronecker identities, Kronecker powers and traces, P15, Loewner-Heinz.

KrADagrad Sec. 2.1 defines vec column-major and B kron A with blocks b_ij A, and lists "properties" of trace
and Kronecker products in an Appendix D that was never found; "P15"/"P18" are the paper's labels as cited in
its text (errata 18: "P15" is our reading of the label). Loewner-Heinz is the textbook fact behind EGOP's
Lemma 13 and every "X >= Y implies X^p >= Y^p" step; its p = 2 form is known false and stays registered so
the runner proves it can find and shrink a counterexample.

Instances are float64 arrays, converted to mp exactly; sums that carry a hypothesis (A = B + D with D >= 0)
are formed in mp, where they are exact, so the hypothesis holds exactly even when D is rank-deficient.
"""
from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

import mpmath
import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .. import certify as BALL
from .. import mp
from .. import strategies as S
from ..claim import FAILS, Claim, Source, register
from . import _evidence as E

# Sizes stay small on purpose: every check runs an eigen-decomposition in mp at 50+ digits, O(n^3) with
# n up to mn = 16 for the Kronecker claims.
MAX_DIM = 4


@st.composite
def general_matrices(draw, m: int, n: int):
    """Dense (m, n) float64 matrices with entries in [-4, 4]; shrinks toward zero."""
    return draw(hnp.arrays(np.float64, (m, n), elements=st.floats(-4, 4, allow_subnormal=False, width=64)))


# --- vec(L G R) = (R^T kron L) vec(G) -------------------------------------------------------------------

class VecKronInstance(NamedTuple):
    L: np.ndarray  # (m, m)
    G: np.ndarray  # (m, n)
    R: np.ndarray  # (n, n)


@st.composite
def vec_kron_instances(draw):
    m, n = draw(S.shapes(max_dim=MAX_DIM))
    return VecKronInstance(draw(general_matrices(m, m)), draw(general_matrices(m, n)),
                           draw(general_matrices(n, n)))


def check_vec_kron(inst: VecKronInstance, *, dps: int):
    with mpmath.workdps(dps):
        L, G, R = (mp.to_mp(x) for x in inst)
        lhs = mp.mp_vec(L * G * R)
        rhs = mp.mp_kron(R.T, L) * mp.mp_vec(G)
    m, n = inst.G.shape
    # Both sides are sums of m*n triple products, each exact in mp up to one rounding per operation.
    return E.identity(lhs, rhs, dps=dps, n=m * n, detail={"m": m, "n": n})


def ball_vec_kron(inst: VecKronInstance, *, dps: int):
    L, G, R = (BALL.mat(x) for x in inst)
    m, n = inst.G.shape
    return BALL.Sides("identity", BALL.vec(L * G * R), BALL.kron(R.transpose(), L) * BALL.vec(G), n=m * n)


register(Claim(
    id="matrix.vec_kron",
    source=Source("KrADagrad", "Sec. 2.1/2.4, P18"),
    statement="vec(L G R) = (R^T kron L) vec(G) for all L (m x m), G (m x n), R (n x n), vec column-major",
    strategy=vec_kron_instances(),
    check=check_vec_kron,
    certify=ball_vec_kron,
))


# --- (A kron B)^p = A^p kron B^p ----------------------------------------------------------------------

POWERS = (Fraction(1, 2), Fraction(-1, 2), Fraction(1, 4), Fraction(-1, 4), Fraction(2), Fraction(-1), Fraction(1, 3))


class KronPowerInstance(NamedTuple):
    A: np.ndarray
    B: np.ndarray
    p: Fraction


@st.composite
def kron_power_instances(draw):
    p = draw(st.sampled_from(POWERS))
    m = draw(S.dims(1, MAX_DIM))
    n = draw(S.dims(1, MAX_DIM))
    # A negative power needs PD; PSD (rank-deficient tails included) is allowed for p > 0.
    maker = S.spd_matrices if p < 0 else S.psd_matrices
    return KronPowerInstance(draw(maker(m, max_log10_cond=8)), draw(maker(n, max_log10_cond=8)), p)


def _kappa(*mats) -> float:
    k = 1.0
    for M in mats:
        k *= E.cond(M)
    return k


def check_kron_power(inst: KronPowerInstance, *, dps: int):
    A, B, p = inst
    n = A.shape[0] * B.shape[0]
    with mpmath.workdps(dps):
        pm = mpmath.mpf(p.numerator) / p.denominator
        lhs = mp.mp_psd_power(mp.mp_kron(mp.to_mp(A), mp.to_mp(B)), pm, dps=dps)
        rhs = mp.mp_kron(mp.mp_psd_power(mp.to_mp(A), pm, dps=dps), mp.mp_psd_power(mp.to_mp(B), pm, dps=dps))
    return E.identity(lhs, rhs, dps=dps, n=n, tol=E.hoelder_tol(p, dps=dps, n=n),
                      detail={"p": str(p), "kappa": _kappa(A, B)})


def ball_kron_power(inst: KronPowerInstance, *, dps: int):
    A, B, p = BALL.mat(inst.A), BALL.mat(inst.B), inst.p
    n = A.nrows() * B.nrows()
    return BALL.Sides("identity", BALL.power(BALL.kron(A, B), p), BALL.kron(BALL.power(A, p), BALL.power(B, p)),
                      n=n, tol=E.hoelder_tol(p, dps=dps, n=n))


register(Claim(
    id="matrix.kron_power",
    source=Source("KrADagrad", "Sec. 2.4 / 3.3 (Kronecker power rule, App. D)"),
    statement="(A kron B)^p = A^p kron B^p for A, B >= 0 (A, B > 0 when p < 0), real p",
    strategy=kron_power_instances(),
    check=check_kron_power,
    certify=ball_kron_power,
    weight=0.5,
))


# --- tr(A kron B) = tr A tr B -------------------------------------------------------------------------

@st.composite
def kron_trace_instances(draw):
    m = draw(S.dims(1, MAX_DIM))
    n = draw(S.dims(1, MAX_DIM))
    return (draw(general_matrices(m, m)), draw(general_matrices(n, n)))


def check_kron_trace(inst, *, dps: int):
    A, B = inst
    with mpmath.workdps(dps):
        lhs = mpmath.matrix([[mp.mp_trace(mp.mp_kron(mp.to_mp(A), mp.to_mp(B)))]])
        rhs = mpmath.matrix([[mp.mp_trace(mp.to_mp(A)) * mp.mp_trace(mp.to_mp(B))]])
    return E.identity(lhs, rhs, dps=dps, n=A.shape[0] * B.shape[0])


def ball_kron_trace(inst, *, dps: int):
    A, B = (BALL.mat(x) for x in inst)
    return BALL.Sides("identity", BALL.trace(BALL.kron(A, B)), BALL.trace(A) * BALL.trace(B),
                      n=A.nrows() * B.nrows())


register(Claim(
    id="matrix.kron_trace",
    source=Source("KrADagrad", "Sec. 2.4, P13"),
    statement="tr(A kron B) = tr(A) tr(B) for square A, B",
    strategy=kron_trace_instances(),
    check=check_kron_trace,
    certify=ball_kron_trace,
))


# --- P15: C kron A >= C kron B when A >= B and C >= 0 -------------------------------------------------

class P15Instance(NamedTuple):
    C: np.ndarray  # (q, q) PSD
    B: np.ndarray  # (n, n) PSD
    D: np.ndarray  # (n, n) PSD; A = B + D is formed in mp


@st.composite
def p15_instances(draw):
    q = draw(S.dims(1, MAX_DIM))
    n = draw(S.dims(1, MAX_DIM))
    pair = draw(S.loewner_pairs(n))
    return P15Instance(draw(S.psd_matrices(q, max_log10_cond=8)), pair.B, pair.D)


def check_p15(inst: P15Instance, *, dps: int):
    with mpmath.workdps(dps):
        C, B = mp.to_mp(inst.C), mp.to_mp(inst.B)
        A = mp.mp_exact_sum(inst.B, inst.D)  # no rounding: the hypothesis A >= B holds exactly
        X, Y = mp.mp_kron(C, A), mp.mp_kron(C, B)
    return E.loewner(X, Y, dps=dps, n=inst.C.shape[0] * inst.B.shape[0])


def ball_p15(inst: P15Instance, *, dps: int):
    C, B = BALL.mat(inst.C), BALL.mat(inst.B)
    A = BALL.exact_sum(inst.B, inst.D)
    return BALL.Sides("loewner", BALL.kron(C, A), BALL.kron(C, B), n=C.nrows() * B.nrows())


register(Claim(
    id="matrix.p15_kron_monotone",
    source=Source("KrADagrad", "P15 (our label; App. D lost)"),
    statement="C kron A >= C kron B whenever A >= B and C >= 0",
    strategy=p15_instances(),
    check=check_p15,
    certify=ball_p15,
))


# --- Loewner-Heinz ---------------------------------------------------------------------------------------

class LoewnerHeinzInstance(NamedTuple):
    B: np.ndarray  # PSD
    D: np.ndarray  # PSD; A = B + D >= B is formed in mp
    p: Fraction


@st.composite
def loewner_heinz_instances(draw, powers):
    p = draw(st.sampled_from(powers))
    n = draw(S.dims(1, MAX_DIM))
    pair = draw(S.loewner_pairs(n))
    return LoewnerHeinzInstance(pair.B, pair.D, p)


def check_loewner_heinz(inst: LoewnerHeinzInstance, *, dps: int):
    n = inst.B.shape[0]
    with mpmath.workdps(dps):
        B = mp.to_mp(inst.B)
        pm = mpmath.mpf(inst.p.numerator) / inst.p.denominator
        Ap = mp.mp_psd_power(mp.mp_exact_sum(inst.B, inst.D), pm, dps=dps)  # A = B + D, no rounding
        Bp = mp.mp_psd_power(B, pm, dps=dps)
    # PSD B may have exact zero eigenvalues, where x^p is only Hoelder continuous: see E.hoelder_tol.
    return E.loewner(Ap, Bp, dps=dps, n=n, tol=E.hoelder_tol(inst.p, dps=dps, n=n), detail={"p": str(inst.p), "n": n})


def ball_loewner_heinz(inst: LoewnerHeinzInstance, *, dps: int):
    n = inst.B.shape[0]
    Ap = BALL.power(BALL.exact_sum(inst.B, inst.D), inst.p)  # A = B + D, as a ball containing the exact sum
    return BALL.Sides("loewner", Ap, BALL.power(BALL.mat(inst.B), inst.p), n=n,
                      tol=E.hoelder_tol(inst.p, dps=dps, n=n))


LH_POWERS = (Fraction(1), Fraction(1, 2), Fraction(1, 4), Fraction(1, 3), Fraction(2, 3), Fraction(3, 4))

register(Claim(
    id="matrix.loewner_heinz",
    source=Source("standard", "Loewner-Heinz (EGOP Lemma 13 uses p = 1/2)"),
    statement="A >= B >= 0 implies A^p >= B^p for every p in [0, 1]",
    strategy=loewner_heinz_instances(LH_POWERS),
    check=check_loewner_heinz,
    certify=ball_loewner_heinz,
    note="Tested at p in {1, 1/2, 1/4, 1/3, 2/3, 3/4}; p = 0 is trivial (I >= I).",
))

register(Claim(
    id="matrix.loewner_heinz_p2",
    source=Source("standard", "Loewner-Heinz outside [0, 1]"),
    statement="A >= B >= 0 implies A^2 >= B^2",
    strategy=loewner_heinz_instances((Fraction(2),)),
    check=check_loewner_heinz,
    certify=ball_loewner_heinz,
    expected=FAILS,
    twin="matrix.loewner_heinz",
    note="Known false: x -> x^2 is not operator monotone (A^2 - B^2 = BD + DB + D^2 is indefinite when B and D "
         "do not commute). Kept to show the runner finds and shrinks a counterexample; the true range is p in [0, 1].",
))
