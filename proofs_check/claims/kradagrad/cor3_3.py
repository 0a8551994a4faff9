"""KrADagrad Cor. 3.3 (0 < L_k <= L_{k-1}) along KrADagrad and KrADagrad* trajectories, and the domination
invariant Eqs. (7)/(11) along the same trajectories.

What the search found: Cor. 3.3 needs beta2 = 1 (errata 13): with the code's decay L <- L / beta2 the update
can increase L.
"""
from __future__ import annotations

from typing import NamedTuple

import mpmath
from hypothesis import strategies as st

from ... import certify as BALL
from ... import mp as M
from ...claim import FAILS, Claim, Evidence, Source, register
from .. import _evidence as E
from ._common import (
    PAPER,
    Traj,
    _alt,
    _ball_factors,
    _failed,
    _gg,
    _inv,
    _star,
    _traj_detail,
    _worst,
    _zeros,
    trajectories,
)


def _cor33_margins(prev, new, *, dps: int, d: int, step: int, which: str):
    with M.workdps(dps):
        pos = E.loewner(new, _zeros(d), dps=dps, n=d, detail={"step": step, "factor": which, "part": "0 < L_k"})
        mono = E.loewner(prev, new, dps=dps, n=d, detail={"step": step, "factor": which, "part": "L_k <= L_{k-1}"})
        # both measured against ||L_{k-1}||_F: a positive-but-tiny L_k is visible as a tiny margin
        scale = float(M.mp_norm_fro(prev))
        return [Evidence(pos.margin, scale, pos.tol, pos.detail), Evidence(mono.margin, scale, mono.tol, mono.detail)]


def _cor33_check(inst: Traj, *, dps: int, scheme: str, beta2: float = 1.0):
    m, n = inst.grads[0].shape
    recs = _alt(inst, dps=dps) if scheme == "alt" else _star(inst, dps=dps, beta2=beta2)
    evs = []
    with M.workdps(dps):
        prev = (M.to_mp(inst.L0), M.to_mp(inst.R0))
        for rec in recs:
            k = rec["count"]
            for i, (d, name) in enumerate(((m, "L"), (n, "R"))):
                if scheme == "alt" and rec["mode"] != i:
                    continue
                evs += _cor33_margins(prev[i], rec["factors"][i], dps=dps, d=d, step=k, which=name)
            prev = rec["factors"]
            if _failed(evs):
                break
    return _worst(evs, _traj_detail(inst))


def _cor33_ball(inst: Traj, *, scheme: str, beta2: float = 1.0):
    """Cor. 3.3 in ball arithmetic: per updated factor, [L_k] >= 0 and [L_{k-1}] >= [L_k] (each Loewner statement
    with its own scale, max of the two Frobenius norms)."""
    m, n = inst.grads[0].shape
    prev, out = (BALL.mat(inst.L0), BALL.mat(inst.R0)), []
    for k, (*new, _) in enumerate(_ball_factors(inst, scheme, beta2)):
        for i, d in enumerate((m, n)):
            if scheme == "alt" and inst.schedule[k] != i:
                continue
            out += [BALL.Sides("loewner", new[i], BALL.eye(d) * 0, n=d), BALL.Sides("loewner", prev[i], new[i], n=d)]
        prev = new
    return out


register(Claim(
    id="kradagrad.cor3_3_alt",
    source=Source(PAPER, "Cor. 3.3 (KrADagrad trajectories)"),
    statement="Along KrADagrad (alternating) trajectories from PD L_0, R_0 with any gradients: every update "
              "gives 0 < L_k <= L_{k-1} (and 0 < R_k <= R_{k-1} for right updates)",
    strategy=trajectories(),
    check=lambda inst, *, dps: _cor33_check(inst, dps=dps, scheme="alt"),
    certify=lambda inst, *, dps: _cor33_ball(inst, scheme="alt"),
    note="L_k = L^{1/2} (I - M_k) L^{1/2} with 0 <= M_k < I (Prop. 3.2). Schedules: strict alternation (errata "
         "21) or any L/R pattern; t-rules: all four.",
))

register(Claim(
    id="kradagrad.cor3_3_star",
    source=Source(PAPER, "Cor. 3.3 (KrADagrad* trajectories, Alg. 1)"),
    statement="Along KrADagrad* trajectories (Alg. 1, intended update line) from PD L_0, R_0: "
              "0 < L_k <= L_{k-1} and 0 < R_k <= R_{k-1} at every step",
    strategy=trajectories(),
    check=lambda inst, *, dps: _cor33_check(inst, dps=dps, scheme="star"),
    certify=lambda inst, *, dps: _cor33_ball(inst, scheme="star"),
))


class DecayInstance(NamedTuple):
    traj: Traj
    beta2: float


@st.composite
def decay_instances(draw):
    return DecayInstance(draw(trajectories(max_len=3)), draw(st.sampled_from((0.9, 0.99, 0.999))))


register(Claim(
    id="kradagrad.cor3_3_beta2",
    source=Source(PAPER, "Cor. 3.3 with the code's decay beta2 < 1 (errata 13)"),
    statement="Cor. 3.3 (0 < L_k <= L_{k-1}) for the authors' KrADagrad* update with decay: L <- L / beta2, "
              "then Eq. (13)",
    strategy=decay_instances(),
    check=lambda inst, *, dps: _cor33_check(inst.traj, dps=dps, scheme="star", beta2=inst.beta2),
    certify=lambda inst, *, dps: _cor33_ball(inst.traj, scheme="star", beta2=inst.beta2),
    expected=FAILS,
    twin="kradagrad.cor3_3_star",
    note="Errata 13: Cor. 3.3's monotonicity needs beta2 = 1. With beta2 < 1, directions G does not touch (or "
         "small gradients, ||G||^2 < 1 - beta2 for m = n = 1) grow by 1/beta2. Positivity still holds.",
))


# ==============================================================================================================
# the domination invariant (7)/(11)
# ==============================================================================================================
def _domination_alt_check(inst: Traj, *, dps: int):
    m, n = inst.grads[0].shape
    recs = _alt(inst, dps=dps)
    evs = []
    with M.workdps(dps):
        Q0 = M.mp_kron(_inv(M.to_mp(inst.R0)), _inv(M.to_mp(inst.L0)))
        Ssum, t = _zeros(m * n), mpmath.mpf(0)
        for rec, G in zip(recs, inst.grads):
            Ssum += _gg(G)
            t = max(t, rec["t"])
            L, R = rec["factors"]
            Qk = M.mp_kron(_inv(R), _inv(L))
            evs.append(E.loewner(Qk, Q0 + Ssum / (n * t), dps=dps, n=m * n,
                                 detail={"step": rec["count"], "t": float(t)}))
            if _failed(evs):
                break
    return _worst(evs, _traj_detail(inst))


def _domination_ball(inst: Traj, *, dps: int, scheme: str):
    """Eqs. (7)/(11) along a trajectory in ball arithmetic (see _domination_alt_check / _domination_star_check)."""
    m, n = inst.grads[0].shape
    L0, R0 = BALL.mat(inst.L0), BALL.mat(inst.R0)
    B0, C0, Im, In = BALL.inv(L0), BALL.inv(R0), BALL.eye(m), BALL.eye(n)
    Ssum, tL, tR, out = BALL.eye(m * n) * 0, BALL.number(0), BALL.number(0), []
    for G, (L, R, ts) in zip(inst.grads, _ball_factors(inst, scheme)):
        g = BALL.vec(BALL.mat(G))
        Ssum = Ssum + g * g.transpose()
        tL, tR = (tL if ts[0] is None else tL.max(ts[0])), (tR if ts[1] is None else tR.max(ts[1]))
        if scheme == "alt":  # one t: the largest over both factors' updates
            t = tL.max(tR)
            out.append(BALL.Sides("loewner", BALL.kron(BALL.inv(R), BALL.inv(L)),
                                  BALL.kron(C0, B0) + Ssum * (1 / (n * t)), n=m * n))
        else:
            out.append(BALL.Sides("loewner", BALL.kron(In, BALL.inv(L)), BALL.kron(In, B0) + Ssum * (1 / (n * tL)),
                                  n=m * n))
            out.append(BALL.Sides("loewner", BALL.kron(BALL.inv(R), Im), BALL.kron(C0, Im) + Ssum * (1 / (m * tR)),
                                  n=m * n))
    return out


register(Claim(
    id="kradagrad.domination_alt",
    source=Source(PAPER, "Eqs. (7), (11) (KrADagrad trajectories)"),
    statement="Along KrADagrad trajectories: C_k kron B_k >= C_0 kron B_0 + (1/(n t)) sum_{i<=k} g_i g_i^T with "
              "B = L^{-1}, C = R^{-1}, t = max_{i<=k} t_i; hence (7) for G = (G' eps I) whenever eps^2 <= n t "
              "lambda_min(C_0 kron B_0)",
    strategy=trajectories(),
    check=_domination_alt_check,
    certify=lambda inst, *, dps: _domination_ball(inst, dps=dps, scheme="alt"),
    note="Induction: B_k >= B_{k-1} + dB_k (Eq. 13 <= Woodbury) and C_k kron dB_k >= g g^T/(n t_k) (Lemma 3.1). "
         "The printed 1/(n t) (n = columns of G) holds for every shape, also for right updates when m > n, "
         "because the lemma's constant is 1/rank(G) >= 1/min(m, n) (kradagrad.lemma3_1_min_dim).",
))


def _domination_star_check(inst: Traj, *, dps: int):
    m, n = inst.grads[0].shape
    recs = _star(inst, dps=dps)
    evs = []
    with M.workdps(dps):
        Im, In = mpmath.eye(m), mpmath.eye(n)
        B0, C0 = _inv(M.to_mp(inst.L0)), _inv(M.to_mp(inst.R0))
        Ssum, tL, tR = _zeros(m * n), mpmath.mpf(0), mpmath.mpf(0)
        for rec, G in zip(recs, inst.grads):
            Ssum += _gg(G)
            tL, tR = max(tL, rec["t"][0]), max(tR, rec["t"][1])
            L, R = rec["factors"]
            evs.append(E.loewner(M.mp_kron(In, _inv(L)), M.mp_kron(In, B0) + Ssum / (n * tL), dps=dps, n=m * n,
                                 detail={"step": rec["count"], "estimator": "(L_k, I_n)", "t": float(tL)}))
            evs.append(E.loewner(M.mp_kron(_inv(R), Im), M.mp_kron(C0, Im) + Ssum / (m * tR), dps=dps, n=m * n,
                                 detail={"step": rec["count"], "estimator": "(I_m, R_k)", "t": float(tR)}))
            if _failed(evs):
                break
    return _worst(evs, _traj_detail(inst))


register(Claim(
    id="kradagrad.domination_star",
    source=Source(PAPER, "Eqs. (7), (11) for the KrADagrad* estimators (Sec. 3.3.2; errata 7)"),
    statement="Along KrADagrad* trajectories: I_n kron L_k^{-1} >= I_n kron L_0^{-1} + (1/(n t_L)) sum g g^T and "
              "R_k^{-1} kron I_m >= R_0^{-1} kron I_m + (1/(m t_R)) sum g g^T, t_L, t_R = max of the step t's",
    strategy=trajectories(),
    check=_domination_star_check,
    certify=lambda inst, *, dps: _domination_ball(inst, dps=dps, scheme="star"),
    note="Each estimator is a KrADagrad with the other factor held at the identity (errata 7: (L_k, I_n) and "
         "(I_m, R_k), not the printed (L_k, I_m), (I_n, R_k), which are ill-typed for m != n).",
))
