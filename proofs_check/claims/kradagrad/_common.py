"""Shared by every KrADagrad claim: evidence helpers, the instance strategies (PD factors, trajectories), the mp
twins of both schemes and their replay in ball arithmetic.

Conventions (paper Sec. 2.1/2.4): G is m x n, L is m x m, R is n x n, g = vec(G) column-major, and the
preconditioner R kron L acts as vec(L G R); statistics B = L^{-1}, C = R^{-1}, Q = C kron B. The paper assumes
m <= n "w.l.o.g." in Sec. 2.4 and m >= n in Lemma 3.5 (errata 8): every claim draws both orders
(m = 1, n = 1 and m != n included) and says which n it means. Trajectories are computed by the mp twins
(``proofs_check.twins``), from float64 inputs converted exactly; "KrADagrad" is the alternating scheme (one
factor per step, Eq. 13 with the other factor held), "KrADagrad*" is Alg. 1 with errata 1's intended update line
(two estimators (L, I_n) and (I_m, R)). t-rules (errata 18): "frobenius" (Alg. 1 / Sec. 3.3.2), "spectral"
(Prop. 3.2), plus "trace" and the authors' code rule "code" = d (1 + tr); the printed statements are about the
first two and the others are drawn too where the statement's proof covers every t >= 1 + rho(L A).
"""
from __future__ import annotations

from typing import NamedTuple

import mpmath
import numpy as np
from hypothesis import strategies as st

from ... import certify as BALL
from ... import mp as M
from ... import strategies as S
from ... import twins as T
from ...claim import Evidence
from .. import _evidence as E

PAPER = "KrADagrad"
# Kronecker claims work at size mn (<= 16 here); mp eigen-decompositions at 50 digits cost O((mn)^3).
MAX_DIM = 4
MAX_STEPS = 6
# t-rules, simplest first (Alg. 1's Frobenius rule is the printed default).
RULES = ("frobenius", "spectral", "trace", "code")
PAPER_RULES = ("frobenius", "spectral")


# ==============================================================================================================
# shared helpers
# ==============================================================================================================
def _ev(margin, scale, *, dps: int, n: int, detail=None, tol=None) -> Evidence:
    """Evidence for a scalar inequality lhs <= rhs given as margin = rhs - lhs (mp values) against ``scale``."""
    return Evidence(margin=float(margin), scale=float(abs(scale)) or 1.0,
                    tol=M.mp_tolerance(dps, n) if tol is None else tol, detail=dict(detail or {}))


def _worst(evs, detail=None) -> Evidence:
    """The Evidence with the smallest margin/scale; ``detail`` is merged into it (step index and sizes)."""
    w = min(evs, key=lambda e: e.relative_margin)
    d = dict(w.detail)
    d.update(detail or {})
    return Evidence(margin=w.margin, scale=w.scale, tol=w.tol, detail=d)


def _failed(evs) -> bool:
    """True once a step's evidence is a counterexample: later steps need not be computed (faster shrinking)."""
    return any(not e.ok for e in evs[-2:])


def _inv(A: mpmath.matrix) -> mpmath.matrix:
    B = mpmath.inverse(A)
    return (B + B.T) * mpmath.mpf(0.5)


def _zeros(n: int) -> mpmath.matrix:
    return mpmath.zeros(n, n)


def _gg(G: np.ndarray) -> mpmath.matrix:
    """g g^T for g = vec(G) (column-major), exact products at the working precision."""
    g = M.mp_vec(M.to_mp(G))
    return g * g.T


def _cond(A: np.ndarray) -> float:
    return E.cond(A)


@st.composite
def pd_factor(draw, d: int, *, max_log10_cond: float = 4, min_exp: int = -3, max_exp: int = 6):
    """A symmetric PD d x d matrix with lambda_max = 2^s, condition number <= 10^max_log10_cond (exact scaling)."""
    A = draw(S.spd_matrices(d, max_log10_cond=max_log10_cond))
    return np.ldexp(A, draw(st.integers(min_exp, max_exp)))


class Traj(NamedTuple):
    """A trajectory instance: initial factors, gradients (||G_i||_2 <= 1), t-rule, KrADagrad schedule."""

    L0: np.ndarray  # (m, m) PD
    R0: np.ndarray  # (n, n) PD
    grads: list  # k arrays (m, n)
    t_rule: str
    schedule: tuple  # modes (0 = L, 1 = R) updated by the alternating scheme, one per step


@st.composite
def trajectories(draw, *, max_dim: int = MAX_DIM, max_len: int = MAX_STEPS, rules=RULES, identity_init=False,
                 alternate_only=False, square=False, min_dim: int = 1):
    m, n = draw(S.shapes(max_dim=max_dim, min_dim=min_dim))
    if square:
        n = m
    if identity_init:
        L0, R0 = np.eye(m), np.eye(n)
    else:
        L0, R0 = draw(pd_factor(m)), draw(pd_factor(n))
    grads = draw(S.gradient_sequences(m, n, min_len=1, max_len=max_len))
    rule = draw(st.sampled_from(rules))
    if alternate_only:
        sched = tuple(k % 2 for k in range(len(grads)))
    else:  # simplest first: strict alternation L, R, L, R (errata 21); else any schedule
        sched = draw(st.one_of(st.just(tuple(k % 2 for k in range(len(grads)))),
                               st.lists(st.integers(0, 1), min_size=len(grads), max_size=len(grads)).map(tuple)))
    return Traj(L0, R0, grads, rule, sched)


def _alt(inst: Traj, *, dps: int, **kw):
    return T.twin_trajectory("kradagrad", None, inst.grads, dps=dps, init=(inst.L0, inst.R0), roots=False,
                             t_rule=inst.t_rule, schedule=inst.schedule, **kw)


def _star(inst: Traj, *, dps: int, **kw):
    return T.twin_trajectory("kradagrad_star", None, inst.grads, dps=dps, init=(inst.L0, inst.R0), roots=False,
                             t_rule=inst.t_rule, **kw)


def _traj_detail(inst: Traj) -> dict:
    m, n = inst.grads[0].shape
    return {"m": m, "n": n, "steps": len(inst.grads), "t_rule": inst.t_rule,
            "cond_L0": _cond(inst.L0), "cond_R0": _cond(inst.R0)}


# the twins replayed in ball arithmetic: the certify hooks of Cor. 3.3, the domination invariant and Lemma 3.4

def _ball_t(rule: str, L, A, scheme: str):
    """t of a t-rule in ball arithmetic (``twins.t_value``'s definitions, module docstring)."""
    N = L * A
    if rule == "spectral":
        return 1 + BALL.norm_2(N)
    if rule == "frobenius" or (rule == "code" and scheme == "alternating"):
        return 1 + BALL.fro(N)
    tr = BALL.trace(N)[0, 0]
    return 1 + tr if rule == "trace" else L.nrows() * (1 + tr)


def _ball_step(L, A, rule: str, scheme: str, beta2: float = 1.0):
    """Eq. (13) in ball arithmetic: the code's decay L / beta2 when beta2 != 1, then L - L A L / t (no damping,
    as in the claims that use it; ``twins._krad_step``)."""
    if beta2 != 1:
        L = L * (1 / BALL.number(beta2))
    t = _ball_t(rule, L, A, scheme)
    return BALL.sym(L - L * A * L * (1 / t)), t


def _ball_factors(inst: Traj, scheme: str, beta2: float = 1.0):
    """(L_k, R_k, (t_L, t_R)) after each step, in ball arithmetic: KrADagrad* ("star", both factors, Grams
    G G^T and G^T G) or KrADagrad ("alt", inst.schedule's factor, Grams G R G^T and G^T L G; the other t is
    None), as ``twins.twin_trajectory``."""
    L, R = BALL.mat(inst.L0), BALL.mat(inst.R0)
    for s, G in enumerate(inst.grads):
        Gb = BALL.mat(G)
        Gt = Gb.transpose()
        if scheme == "star":
            (L, tL), (R, tR) = (_ball_step(L, Gb * Gt, inst.t_rule, "star", beta2),
                                _ball_step(R, Gt * Gb, inst.t_rule, "star", beta2))
        elif inst.schedule[s] == 0:
            (L, tL), tR = _ball_step(L, Gb * R * Gt, inst.t_rule, "alternating"), None
        else:
            tL, (R, tR) = None, _ball_step(R, Gt * L * Gb, inst.t_rule, "alternating")
        yield L, R, (tL, tR)
