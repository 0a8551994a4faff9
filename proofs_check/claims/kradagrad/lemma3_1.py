"""KrADagrad Lemma 3.1 (KrAD): C kron B >= (1/n) U U^T for B = sum_i U_i C^{-1} U_i^T, and the sharpness of its 1/n.

What the search found: Lemma 3.1 holds, and holds with 1/min(m, n) in place of 1/n (so the m <= n convention is
not needed); 1/n is the best constant only when rank(U_1) = n; for r = 1 the best constant is exactly
1/rank(U_1) (errata 8).
"""
from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

import mpmath
import numpy as np
from hypothesis import strategies as st

from ... import certify as BALL
from ... import mp as M
from ... import strategies as S
from ... import twins as T
from ...claim import FAILS, Claim, Evidence, Source, register
from .. import _evidence as E
from ._common import MAX_DIM, PAPER, _cond, _gg, _zeros


class KradInstance(NamedTuple):
    C: np.ndarray  # (n, n) PD
    U: list  # r matrices U_i (m, n): the columns u_i = vec(U_i) of U


@st.composite
def krad_instances(draw):
    m, n = draw(S.shapes(max_dim=MAX_DIM))
    C = draw(S.spd_matrices(n, max_log10_cond=6))
    r = draw(st.integers(1, 3))
    U = [draw(S.gradients(m, n)) for _ in range(r)]
    return KradInstance(C, U)


def _krad_check(inst: KradInstance, *, dps: int, const: str):
    m, n = inst.U[0].shape
    with M.workdps(dps):
        Cm = M.to_mp(inst.C)
        B = T.krad_factor(Cm, inst.U, dps=dps)
        UU = _zeros(m * n)
        for X in inst.U:
            UU += _gg(X)
        c = {"n": n, "min": min(m, n)}[const]
        return E.loewner(M.mp_kron(Cm, B), UU / c, dps=dps, n=m * n,
                         detail={"m": m, "n": n, "r": len(inst.U), "cond_C": _cond(inst.C), "constant": f"1/{c}"})


def _krad_ball(inst: KradInstance, *, dps: int, const: str):
    """Lemma 3.1's two sides in ball arithmetic: B = sum_i U_i C^{-1} U_i^T is rational in the inputs."""
    m, n = inst.U[0].shape
    C = BALL.mat(inst.C)
    Ci = BALL.inv(C)
    Us = [BALL.mat(X) for X in inst.U]
    B = Us[0] * Ci * Us[0].transpose()
    UU = BALL.vec(Us[0]) * BALL.vec(Us[0]).transpose()
    for X in Us[1:]:
        B += X * Ci * X.transpose()
        UU += BALL.vec(X) * BALL.vec(X).transpose()
    c = {"n": n, "min": min(m, n)}[const]
    return BALL.Sides("loewner", BALL.kron(C, B), UU * BALL.number(Fraction(1, c)), n=m * n)


register(Claim(
    id="kradagrad.lemma3_1",
    source=Source(PAPER, "Lemma 3.1"),
    statement="For PD C (n x n) and U (mn x r) with U_i = vec^-1(u_i) (m x n): B = sum_i U_i C^{-1} U_i^T >= 0 "
              "and C kron B >= (1/n) U U^T",
    strategy=krad_instances(),
    check=lambda inst, *, dps: _krad_check(inst, dps=dps, const="n"),
    certify=lambda inst, *, dps: _krad_ball(inst, dps=dps, const="n"),
    note="Holds for every (m, n), not only m <= n: vec(Y) vec(Y)^T <= rank(Y) (I kron Y Y^T) (|tr M|^2 <= "
         "rank(M) ||M||_F^2 with M = Y^T Z), after the congruence by C^{-1/2} kron I.",
))

register(Claim(
    id="kradagrad.lemma3_1_min_dim",
    source=Source(PAPER, "Lemma 3.1, strengthened (ours; errata 8)"),
    statement="Same hypotheses: C kron B >= (1/min(m, n)) U U^T",
    strategy=krad_instances(),
    check=lambda inst, *, dps: _krad_check(inst, dps=dps, const="min"),
    certify=lambda inst, *, dps: _krad_ball(inst, dps=dps, const="min"),
    note="Our strengthening: the constant is 1/max_i rank(U_i) >= 1/min(m, n) (proof in lemma3_1's note), so "
         "under the paper's m <= n convention the lemma holds with 1/m. It makes (7)/(11) hold for the right-"
         "factor updates too, whatever the orientation.",
))


class SharpInstance(NamedTuple):
    C: np.ndarray  # (n, n) PD
    U: np.ndarray  # (m, n) integer matrix a b^T of exact rank >= 1 (small integers: every product is exact)


def _exact_rank(U: np.ndarray) -> int:
    """Rank by Gaussian elimination in rationals (U has integer entries)."""
    rows = [[Fraction(int(v)) for v in row] for row in U]
    rank, ncols = 0, len(rows[0])
    for c in range(ncols):
        piv = next((i for i in range(rank, len(rows)) if rows[i][c] != 0), None)
        if piv is None:
            continue
        rows[rank], rows[piv] = rows[piv], rows[rank]
        for i in range(len(rows)):
            if i != rank and rows[i][c] != 0:
                f = rows[i][c] / rows[rank][c]
                rows[i] = [a - f * b for a, b in zip(rows[i], rows[rank])]
        rank += 1
    return rank


@st.composite
def sharp_instances(draw):
    m, n = draw(S.shapes(max_dim=MAX_DIM))
    k = draw(st.integers(1, min(m, n)))
    ints = st.integers(-3, 3)
    a = np.array(draw(st.lists(st.lists(ints, min_size=k, max_size=k), min_size=m, max_size=m)), dtype=np.int64)
    b = np.array(draw(st.lists(st.lists(ints, min_size=k, max_size=k), min_size=n, max_size=n)), dtype=np.int64)
    U = (a @ b.T).astype(np.float64)
    if not U.any():
        U[0, 0] = 1.0
    return SharpInstance(draw(S.spd_matrices(n, max_log10_cond=6)), U)


def _best_constant_inverse(inst: SharpInstance, *, dps: int):
    """1/c* = sup_z (z^T u)^2 / (z^T K z) = u^T K^+ u with K = C kron B, B = U C^{-1} U^T, u = vec(U) (r = 1).

    Computed from the definition: eigen-decomposition of K (size mn) in mp, eigenvalues above 10^-(dps/2) ||K||
    inverted; u's component outside range(K) is returned too (it must vanish, else c* = 0).
    """
    with M.workdps(dps):
        Cm = M.to_mp(inst.C)
        B = T.krad_factor(Cm, [inst.U], dps=dps)
        K = M.mp_kron(Cm, B)
        u = M.mp_vec(M.to_mp(inst.U))
        w, Q = M.mp_eigsy(K)
        thr = mpmath.mpf(10) ** (-(dps // 2)) * max(abs(x) for x in w)
        val, proj = mpmath.mpf(0), mpmath.zeros(len(w), 1)
        for j, lam in enumerate(w):
            if lam > thr:
                q = Q[:, j]
                c = (q.T * u)[0]
                val += c * c / lam
                proj += q * c
        return val, mpmath.norm(u - proj) / mpmath.norm(u)


def _sharp_check(inst: SharpInstance, *, dps: int, target: str):
    m, n = inst.U.shape
    rank = _exact_rank(inst.U)
    inv_c, outside = _best_constant_inverse(inst, dps=dps)
    want = n if target == "n" else rank
    with M.workdps(dps):
        ev = E.identity(mpmath.matrix([[inv_c]]), mpmath.matrix([[want]]), dps=dps, n=m * n,
                        detail={"m": m, "n": n, "rank_U1": rank, "1/c*": float(inv_c), "expected_1/c*": want,
                                "u_outside_range": float(outside)})
    if float(outside) > M.mp_tolerance(dps, m * n):  # c* = 0: u not in range(K) (never happens: see note)
        return Evidence(margin=-1.0, scale=1.0, tol=ev.tol, detail=ev.detail)
    return ev


register(Claim(
    id="kradagrad.lemma3_1_sharp_1_over_n",
    source=Source(PAPER, "Lemma 3.1: sharpness of 1/n (errata 8)"),
    statement="Lemma 3.1's 1/n cannot be improved on any instance: for r = 1, the largest c with "
              "C kron B >= c u u^T is c* = 1/n",
    strategy=sharp_instances(),
    check=lambda inst, *, dps: _sharp_check(inst, dps=dps, target="n"),
    expected=FAILS,
    twin="kradagrad.lemma3_1_best_constant",
    note="Our reading of 'how sharp its 1/n is'. c* is computed from its definition, 1/c* = u^T (C kron B)^+ u "
         "(eigen-decomposition in mp). False whenever rank(U_1) < n, e.g. m < n (the paper's own m <= n "
         "convention); the best constant is 1/rank(U_1) (twin; errata 8), so 1/n is sharp only when U_1 can have "
         "rank n (m >= n).",
))

register(Claim(
    id="kradagrad.lemma3_1_best_constant",
    source=Source(PAPER, "Lemma 3.1, best constant for r = 1 (errata 8)"),
    statement="For r = 1: the largest c with C kron B >= c u u^T is exactly 1/rank(U_1)",
    strategy=sharp_instances(),
    check=lambda inst, *, dps: _sharp_check(inst, dps=dps, target="rank"),
    note="Proof: with Y = U_1 C^{-1/2}, u^T (C kron B)^+ u = tr(Y^T (Y Y^T)^+ Y) = rank(Y). Instances are small "
         "integer matrices a b^T, so rank(U_1) is exact (rational elimination) and 1/c* is computed in mp.",
))
