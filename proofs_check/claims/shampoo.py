"""Shampoo's three conditions as the KrADagrad paper restates them (Sec. 2.4, Eqs. 2-6), encoded as printed.

Shampoo (Gupta, Koren, Singer 2018) keeps B_k = eps I_m + sum G_i G_i^T, C_k = eps I_n + sum G_i^T G_i (Eq. 2)
and preconditions with (L_k, R_k) = (B_k^{-1/4}, C_k^{-1/4}) (Eq. 3), so R_k^{-2} kron L_k^{-2} = C_k^{1/2} kron
B_k^{1/2}. Trajectories come from the mp twin (``proofs_check.twins``, "shampoo"), whose roots are the printed
L_k, R_k; the checks take the printed powers of those roots literally (L_k^{-2} = (L_k^{-1})^2, ...).

What the search found:
  * Eq. (4) as printed, R^{-2} kron L^{-2} >= eps I + sum g g^T, is false for any gradient of rank >= 2 (shrinks
    to one 2 x 2 gradient). Gupta et al.'s Lemma 8 has a 1/r: eps I + (1/r) sum g g^T, r = the largest rank of
    the G_i <= min(m, n); that form holds (twin). (Sec. 3.3.1's "C_c kron B_c >= GG^T" is the same statement.)
  * Eq. (5) holds.
  * Eq. (6), "tr(L_k), tr(R_k) = O(k^{1/4})", is vacuous for L_k = B_k^{-1/4} (tr L_k <= m eps^{-1/4}, bounded);
    the errata-style explicit form tr(L_k) <= m (eps + k)^{1/4} is false for eps (eps + k) < 1. What the regret
    proof needs is tr(L_k^{-1}) = tr(B_k^{1/4}) <= m (eps + k)^{1/4} (||G_i||_2 <= 1), which holds (twin).
"""
from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

import mpmath
import numpy as np
from hypothesis import strategies as st

from .. import certify as BALL
from .. import mp as M
from .. import strategies as S
from .. import twins as T
from ..claim import FAILS, Claim, Evidence, Source, register
from . import _evidence as E

PAPER = "KrADagrad"
MAX_DIM = 4  # Kronecker claims at size mn <= 16
MAX_STEPS = 5
# eps of Eq. (2), simplest first; dyadic so eps I is exact. Small eps make the statistics ill-conditioned.
EPS = (1.0, 2.0**-4, 2.0**-10, 2.0**-20)


class ShampooTraj(NamedTuple):
    grads: list  # (m, n) gradients, ||G_i||_2 <= 1
    eps: float


@st.composite
def shampoo_trajectories(draw, *, max_dim: int = MAX_DIM, max_len: int = MAX_STEPS, kinds=S.GRADIENT_KINDS):
    m, n = draw(S.shapes(max_dim=max_dim))
    grads = draw(S.gradient_sequences(m, n, min_len=1, max_len=max_len, kinds=kinds))
    return ShampooTraj(grads, draw(st.sampled_from(EPS)))


def _run(inst: ShampooTraj, *, dps: int):
    return T.twin_trajectory("shampoo", None, inst.grads, dps=dps, eps=inst.eps, roots=True)


def _gg(G: np.ndarray) -> mpmath.matrix:
    g = M.mp_vec(M.to_mp(G))
    return g * g.T


def _inv_sq(P: mpmath.matrix) -> mpmath.matrix:
    """P^{-2} of the printed root P (L_k or R_k), as printed: (P^{-1})^2."""
    Q = mpmath.inverse(P)
    Q = Q * Q
    return (Q + Q.T) * mpmath.mpf(0.5)


def _worst(evs, detail) -> Evidence:
    w = min(evs, key=lambda e: e.relative_margin)
    d = dict(w.detail)
    d.update(detail)
    return Evidence(w.margin, w.scale, w.tol, d)


def _detail(inst: ShampooTraj) -> dict:
    m, n = inst.grads[0].shape
    return {"m": m, "n": n, "steps": len(inst.grads), "eps": inst.eps}


def _tol(dps: int, n: int) -> float:
    # B_k >= eps I >= 2^-20 I is PD with condition number <= (eps + k)/eps < 1e7: the roots' mp error is
    # ~ 1e7 10^-dps, far inside mp_tolerance (half the digits); no Hoelder allowance is needed.
    return M.mp_tolerance(dps, n)


def _eq4_check(inst: ShampooTraj, *, dps: int, with_rank: bool):
    m, n = inst.grads[0].shape
    r = min(m, n)
    recs = _run(inst, dps=dps)
    evs = []
    with M.workdps(dps):
        Ssum = mpmath.zeros(m * n, m * n)
        epsI = mpmath.eye(m * n) * M.to_mpf(inst.eps)
        for rec, G in zip(recs, inst.grads):
            Ssum += _gg(G)
            Lk, Rk = rec["roots"]
            X = M.mp_kron(_inv_sq(Rk), _inv_sq(Lk))
            Y = epsI + (Ssum / r if with_rank else Ssum)
            evs.append(E.loewner(X, Y, dps=dps, n=m * n, tol=_tol(dps, m * n), detail={"step": rec["count"]}))
            if not evs[-1].ok:
                break
    return _worst(evs, _detail(inst) | ({"r": r} if with_rank else {}))


def _ball_steps(inst: ShampooTraj):
    """Per step k, in ball arithmetic: (C_k^{1/2} kron B_k^{1/2}, sum_{i<=k} g_i g_i^T), B_k = eps I + sum G G^T,
    C_k = eps I + sum G^T G (Eqs. (2)-(3)); R_k^{-2} kron L_k^{-2} is C_k^{1/2} kron B_k^{1/2} exactly."""
    m, n = inst.grads[0].shape
    eps = BALL.number(inst.eps)
    Bk, Ck = BALL.eye(m) * eps, BALL.eye(n) * eps
    Ssum = BALL.eye(m * n) * 0
    half = Fraction(1, 2)
    for G in inst.grads:
        Gb = BALL.mat(G)
        Bk, Ck = Bk + Gb * Gb.transpose(), Ck + Gb.transpose() * Gb
        g = BALL.vec(Gb)
        Ssum = Ssum + g * g.transpose()
        yield BALL.kron(BALL.power(Ck, half), BALL.power(Bk, half)), Ssum


def _eq4_ball(inst: ShampooTraj, *, dps: int, with_rank: bool):
    m, n = inst.grads[0].shape
    epsI = BALL.eye(m * n) * BALL.number(inst.eps)
    rinv = BALL.number(Fraction(1, min(m, n)) if with_rank else 1)
    return [BALL.Sides("loewner", X, epsI + Ssum * rinv, n=m * n, tol=_tol(dps, m * n))
            for X, Ssum in _ball_steps(inst)]


def _eq5_ball(inst: ShampooTraj, *, dps: int):
    m, n = inst.grads[0].shape
    prev, out = BALL.eye(m * n) * BALL.number(inst.eps), []
    for X, _ in _ball_steps(inst):
        out.append(BALL.Sides("loewner", X, prev, n=m * n, tol=_tol(dps, m * n)))
        prev = X
    return out


register(Claim(
    id="shampoo.eq4_as_printed",
    source=Source(PAPER, "Eq. (4) (Shampoo's first condition, Sec. 2.4)"),
    statement="R_k^{-2} kron L_k^{-2} >= eps I_mn + sum_{i<=k} g_i g_i^T for (L_k, R_k) = (B_k^{-1/4}, C_k^{-1/4}) "
              "of Eqs. (2)-(3)",
    # dense gradients first: a float64 "rank-one" a b^T has rank two at the 1e-17 level and fails by that much,
    # a true but unreadable counterexample; with dense first the search shrinks to an O(1) failure.
    strategy=shampoo_trajectories(kinds=("dense", "low_rank", "rank_one")),
    check=lambda inst, *, dps: _eq4_check(inst, dps=dps, with_rank=False),
    certify=lambda inst, *, dps: _eq4_ball(inst, dps=dps, with_rank=False),
    expected=FAILS,
    twin="shampoo.eq4",
    note="False for one G = I_2 (||G||_2 = 1): C^{1/2} kron B^{1/2} = (1 + eps) I_4 but g = vec(I_2) gives "
         "eps I + g g^T an eigenvalue eps + 2. In the SVD basis of G the relevant block is diag(s^2) - s s^T, "
         "indefinite once rank(G) >= 2. Rank-one gradient sequences (and m = 1 or n = 1) satisfy it. The "
         "KrADagrad paper drops the 1/r of Gupta et al. 2018, Lemma 8 (twin). Sec. 3.3.1's 'C_c kron B_c >= GG^T' "
         "(C_c = C^{1/2}, B_c = B^{1/2}) is the same statement and fails the same way.",
))

register(Claim(
    id="shampoo.eq4",
    source=Source(PAPER, "Eq. (4) with Gupta et al. 2018's 1/r (Lemma 8)"),
    statement="R_k^{-2} kron L_k^{-2} >= eps I_mn + (1/r) sum_{i<=k} g_i g_i^T, r = min(m, n) (>= every rank(G_i))",
    strategy=shampoo_trajectories(),
    check=lambda inst, *, dps: _eq4_check(inst, dps=dps, with_rank=True),
    certify=lambda inst, *, dps: _eq4_ball(inst, dps=dps, with_rank=True),
    note="Proof: g g^T <= r (I_n kron G G^T) and <= r (G^T G kron I_m) (as in KrADagrad Lemma 3.1), so "
         "eps I + (1/r) sum g g^T <= I kron B and <= C kron I; the geometric mean of those two is "
         "C^{1/2} kron B^{1/2} (jointly monotone, M_g(S, S) = S).",
))


def _eq5_check(inst: ShampooTraj, *, dps: int):
    m, n = inst.grads[0].shape
    recs = _run(inst, dps=dps)
    evs = []
    with M.workdps(dps):
        eps = M.to_mpf(inst.eps)
        prev = mpmath.eye(m * n) * mpmath.sqrt(eps) * mpmath.sqrt(eps)  # k = 0: (eps I)^{1/2} kron (eps I)^{1/2}
        for rec in recs:
            Lk, Rk = rec["roots"]
            X = M.mp_kron(_inv_sq(Rk), _inv_sq(Lk))
            evs.append(E.loewner(X, prev, dps=dps, n=m * n, tol=_tol(dps, m * n), detail={"step": rec["count"]}))
            prev = X
    return _worst(evs, _detail(inst))


register(Claim(
    id="shampoo.eq5",
    source=Source(PAPER, "Eq. (5) (Shampoo's second condition)"),
    statement="R_k^{-2} kron L_k^{-2} >= R_{k-1}^{-2} kron L_{k-1}^{-2} for every k >= 1 (k = 0: B_0 = C_0 = eps I)",
    strategy=shampoo_trajectories(),
    check=_eq5_check,
    certify=_eq5_ball,
    note="B_k >= B_{k-1} gives B_k^{1/2} >= B_{k-1}^{1/2} (Loewner-Heinz), and X1 >= X0 >= 0, Y1 >= Y0 >= 0 give "
         "X1 kron Y1 >= X0 kron Y0.",
))


def _eq6_check(inst: ShampooTraj, *, dps: int, quantity: str):
    m, n = inst.grads[0].shape
    recs = _run(inst, dps=dps)
    evs = []
    with M.workdps(dps):
        eps = M.to_mpf(inst.eps)
        quarter = mpmath.mpf(1) / 4
        for rec in recs:
            k = rec["count"]
            Lk, Rk = rec["roots"]
            for P, d, name in ((Lk, m, "L"), (Rk, n, "R")):
                if quantity == "printed":  # tr(L_k) with L_k = B_k^{-1/4}, explicit bound d (eps + k)^{1/4}
                    lhs, rhs = M.mp_trace(P), d * (eps + k) ** quarter
                elif quantity == "inverse":  # tr(L_k^{-1}) = tr(B_k^{1/4})
                    lhs, rhs = M.mp_trace(mpmath.inverse(P)), d * (eps + k) ** quarter
                else:  # "bounded": tr(L_k) <= d eps^{-1/4}
                    lhs, rhs = M.mp_trace(P), d * eps ** (-quarter)
                evs.append(Evidence(float(rhs - lhs), float(rhs), _tol(dps, d),
                                    {"step": k, "factor": name, "trace": float(lhs), "bound": float(rhs)}))
            if quantity == "printed" and any(not e.ok for e in evs[-2:]):
                break
    return _worst(evs, _detail(inst))


def _eq6_ball(inst: ShampooTraj, *, dps: int, quantity: str):
    """Eq. (6)'s scalar bounds lhs <= rhs in ball arithmetic, each as the 1 x 1 Loewner statement [rhs] >= [lhs]
    (margin rhs - lhs; the scale max(|lhs|, |rhs|) is the mp evidence's rhs up to the tiny margin)."""
    m, n = inst.grads[0].shape
    eps = BALL.number(inst.eps)
    q = Fraction(1, 4)
    Bk, Ck, out = BALL.eye(m) * eps, BALL.eye(n) * eps, []
    for k, G in enumerate(inst.grads, 1):
        Gb = BALL.mat(G)
        Bk, Ck = Bk + Gb * Gb.transpose(), Ck + Gb.transpose() * Gb
        for S, d in ((Bk, m), (Ck, n)):
            if quantity == "inverse":  # tr(L_k^{-1}) = tr(B_k^{1/4})
                lhs, rhs = BALL.trace_power(S, q), d * (eps + k) ** BALL.number(q)
            else:  # tr(L_k) = tr(B_k^{-1/4})
                lhs = BALL.trace_power(S, -q)
                rhs = d * (eps + k) ** BALL.number(q) if quantity == "printed" else d * eps ** BALL.number(-q)
            out.append(BALL.Sides("loewner", BALL.scalar(rhs), BALL.scalar(lhs), n=d, tol=_tol(dps, d)))
    return out


register(Claim(
    id="shampoo.eq6_as_printed",
    source=Source(PAPER, "Eq. (6) (Shampoo's third condition), explicit form"),
    statement="||G_i||_2 <= 1: tr(L_k) <= m (eps + k)^{1/4} and tr(R_k) <= n (eps + k)^{1/4} for "
              "(L_k, R_k) = (B_k^{-1/4}, C_k^{-1/4})",
    strategy=shampoo_trajectories(max_len=3),
    check=lambda inst, *, dps: _eq6_check(inst, dps=dps, quantity="printed"),
    certify=lambda inst, *, dps: _eq6_ball(inst, dps=dps, quantity="printed"),
    expected=FAILS,
    twin="shampoo.eq6_explicit",
    note="Errata intro: an O(.) claim is encoded as an explicit inequality; we read O(k^{1/4}) as the natural "
         "d (eps + k)^{1/4}. With L_k = B_k^{-1/4} the printed quantity decreases in k (tr L_k <= m eps^{-1/4}, "
         "shampoo.eq6_literal_bounded), so the explicit bound fails whenever eps (eps + k) < 1 and some direction "
         "is barely touched. The regret proof (Gupta et al. Thm. 7) uses tr(B_k^{1/4}) = tr(L_k^{-1}): twin.",
))

register(Claim(
    id="shampoo.eq6_explicit",
    source=Source(PAPER, "Eq. (6) corrected: the statistic's root"),
    statement="||G_i||_2 <= 1: tr(L_k^{-1}) = tr(B_k^{1/4}) <= m (eps + k)^{1/4} and "
              "tr(R_k^{-1}) = tr(C_k^{1/4}) <= n (eps + k)^{1/4}",
    strategy=shampoo_trajectories(),
    check=lambda inst, *, dps: _eq6_check(inst, dps=dps, quantity="inverse"),
    certify=lambda inst, *, dps: _eq6_ball(inst, dps=dps, quantity="inverse"),
    note="B_k = eps I + sum G G^T <= (eps + k) I since ||G_i G_i^T||_2 <= 1; x^{1/4} is operator monotone. "
         "(Sharper, by concavity: tr(B_k^{1/4}) <= m^{3/4} (m eps + k min(m, n))^{1/4}.)",
))

register(Claim(
    id="shampoo.eq6_literal_bounded",
    source=Source(PAPER, "Eq. (6) read literally"),
    statement="tr(L_k) <= m eps^{-1/4} and tr(R_k) <= n eps^{-1/4} for every k (so 'O(k^{1/4})' holds trivially)",
    strategy=shampoo_trajectories(),
    check=lambda inst, *, dps: _eq6_check(inst, dps=dps, quantity="bounded"),
    certify=lambda inst, *, dps: _eq6_ball(inst, dps=dps, quantity="bounded"),
    note="B_k >= eps I and x^{-1/4} is operator monotone decreasing: L_k <= eps^{-1/4} I.",
))
