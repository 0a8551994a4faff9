"""KrADagrad Lemma 3.4: the trace growth bounds Eqs. (14)-(15), as printed and corrected.

What the search found: Lemma 3.4 (14)-(15) count the wrong updates: tr(B_k) grows with the *left* updates
(k - k'), not with the k' right updates. Swapped, both bounds hold, for the alternating scheme and per estimator
of KrADagrad*.
"""
from __future__ import annotations

import numpy as np

from ... import certify as BALL
from ... import mp as M
from ...claim import FAILS, Claim, Source, register
from ._common import PAPER, Traj, _alt, _ball_factors, _ev, _failed, _inv, _star, _traj_detail, _worst, trajectories


def _norm2(A_np: np.ndarray, dps: int):
    return M.mp_lambda_max(A_np, dps=dps)  # A symmetric PD: ||A||_2 = lambda_max


def _lemma34_alt_check(inst: Traj, *, dps: int, swapped: bool):
    m, n = inst.grads[0].shape
    recs = _alt(inst, dps=dps)
    evs = []
    with M.workdps(dps):
        L0n, R0n = _norm2(inst.L0, dps), _norm2(inst.R0, dps)
        s = 1 + L0n * R0n
        trB0, trC0 = M.mp_trace(_inv(M.to_mp(inst.L0))), M.mp_trace(_inv(M.to_mp(inst.R0)))
        nL = nR = 0
        for rec in recs:
            nL += rec["mode"] == 0
            nR += rec["mode"] == 1
            L, R = rec["factors"]
            trB, trC = M.mp_trace(_inv(L)), M.mp_trace(_inv(R))
            cB, cC = (nL, nR) if swapped else (nR, nL)  # printed: (14) counts k' = right updates, (15) k - k'
            rhsB = trB0 + cB * m * s * R0n
            rhsC = trC0 + cC * n * s * L0n
            k = rec["count"]
            evs.append(_ev(rhsB - trB, rhsB, dps=dps, n=m, detail={"step": k, "eq": "(14)", "left_updates": nL,
                                                                    "tr_B_k": float(trB), "bound": float(rhsB)}))
            evs.append(_ev(rhsC - trC, rhsC, dps=dps, n=n, detail={"step": k, "eq": "(15)", "right_updates": nR,
                                                                    "tr_C_k": float(trC), "bound": float(rhsC)}))
            if _failed(evs):
                break
    return _worst(evs, _traj_detail(inst) | {"schedule": list(inst.schedule)})


def _lemma34_ball(inst: Traj, *, dps: int, scheme: str, swapped: bool):
    """Lemma 3.4's trace bounds, each as the 1 x 1 Loewner statement [bound] >= [tr B_k] (see _lemma34_*_check)."""
    m, n = inst.grads[0].shape
    L0, R0 = BALL.mat(inst.L0), BALL.mat(inst.R0)
    L0n, R0n = BALL.lambda_max(L0), BALL.lambda_max(R0)
    trB0, trC0 = BALL.trace(BALL.inv(L0))[0, 0], BALL.trace(BALL.inv(R0))[0, 0]
    out, nL, nR = [], 0, 0
    for k, (L, R, _) in enumerate(_ball_factors(inst, scheme), 1):
        if scheme == "star":
            cB, cC = (k, k) if swapped else (0, 0)
            rhsB, rhsC = trB0 + cB * m * (1 + L0n), trC0 + cC * n * (1 + R0n)
        else:
            nL += inst.schedule[k - 1] == 0
            nR += inst.schedule[k - 1] == 1
            cB, cC = (nL, nR) if swapped else (nR, nL)
            rhsB = trB0 + cB * m * (1 + L0n * R0n) * R0n
            rhsC = trC0 + cC * n * (1 + L0n * R0n) * L0n
        for rhs, F, d in ((rhsB, L, m), (rhsC, R, n)):
            out.append(BALL.Sides("loewner", BALL.scalar(rhs), BALL.trace(BALL.inv(F)), n=d))
    return out


_L34 = ("||G_k||_2 <= 1, s = 1 + ||L_0||_2 ||R_0||_2, KrADagrad with L updated in k - k' of the first k steps and R "
        "in the other k': ")
register(Claim(
    id="kradagrad.lemma3_4_alt_as_printed",
    source=Source(PAPER, "Lemma 3.4, Eqs. (14)-(15) (KrADagrad)"),
    statement=_L34 + "tr(B_k) <= tr(B_0) + k' m s ||R_0||_2 and tr(C_k) <= tr(C_0) + (k - k') n s ||L_0||_2",
    strategy=trajectories(),
    check=lambda inst, *, dps: _lemma34_alt_check(inst, dps=dps, swapped=False),
    certify=lambda inst, *, dps: _lemma34_ball(inst, dps=dps, scheme="alt", swapped=False),
    expected=FAILS,
    twin="kradagrad.lemma3_4_alt",
    note="B_k = L_k^{-1} changes only on left updates, so after one left update (k' = 0) (14) says tr(B_1) <= "
         "tr(B_0), false for any G != 0. The counts are swapped: see the twin.",
))

register(Claim(
    id="kradagrad.lemma3_4_alt",
    source=Source(PAPER, "Lemma 3.4 corrected (counts swapped)"),
    statement=_L34 + "tr(B_k) <= tr(B_0) + (k - k') m s ||R_0||_2 and tr(C_k) <= tr(C_0) + k' n s ||L_0||_2",
    strategy=trajectories(),
    check=lambda inst, *, dps: _lemma34_alt_check(inst, dps=dps, swapped=True),
    certify=lambda inst, *, dps: _lemma34_ball(inst, dps=dps, scheme="alt", swapped=True),
    note="Proof: a left update gives B_k - B_{k-1} <= G R G^T/(t - rho) <= G R G^T (t - rho >= 1 for all four "
         "t-rules), and tr(G R G^T) <= ||R_{k-1}||_2 ||G||_F^2 <= ||R_0||_2 min(m, n) (Cor. 3.3). So the bound "
         "holds even without the factor s >= 1.",
))


def _lemma34_star_check(inst: Traj, *, dps: int, swapped: bool):
    m, n = inst.grads[0].shape
    recs = _star(inst, dps=dps)
    evs = []
    with M.workdps(dps):
        L0n, R0n = _norm2(inst.L0, dps), _norm2(inst.R0, dps)
        s1, s2 = 1 + L0n, 1 + R0n  # estimator (L, I_n): ||R_0|| = 1; estimator (I_m, R): ||L_0|| = 1
        trB0, trC0 = M.mp_trace(_inv(M.to_mp(inst.L0))), M.mp_trace(_inv(M.to_mp(inst.R0)))
        for rec in recs:
            k = rec["count"]
            L, R = rec["factors"]
            trB, trC = M.mp_trace(_inv(L)), M.mp_trace(_inv(R))
            # estimator 1 updates L at all k steps (k' = 0); estimator 2 updates R at all k steps (k' = k)
            cB, cC = (k, k) if swapped else (0, 0)
            rhsB, rhsC = trB0 + cB * m * s1, trC0 + cC * n * s2
            evs.append(_ev(rhsB - trB, rhsB, dps=dps, n=m, detail={"step": k, "eq": "(14), estimator (L_k, I_n)"}))
            evs.append(_ev(rhsC - trC, rhsC, dps=dps, n=n, detail={"step": k, "eq": "(15), estimator (I_m, R_k)"}))
            if _failed(evs):
                break
    return _worst(evs, _traj_detail(inst))


register(Claim(
    id="kradagrad.lemma3_4_star_as_printed",
    source=Source(PAPER, "Lemma 3.4, Eqs. (14)-(15) (KrADagrad* estimators)"),
    statement="KrADagrad*, per estimator: (L_k, I_n) updates L at every step (k' = 0, R_0 = I_n) and (I_m, R_k) "
              "updates R at every step (k' = k, L_0 = I_m); (14)-(15) as printed then read "
              "tr(L_k^{-1}) <= tr(L_0^{-1}) and tr(R_k^{-1}) <= tr(R_0^{-1})",
    strategy=trajectories(),
    check=lambda inst, *, dps: _lemma34_star_check(inst, dps=dps, swapped=False),
    certify=lambda inst, *, dps: _lemma34_ball(inst, dps=dps, scheme="star", swapped=False),
    expected=FAILS,
    twin="kradagrad.lemma3_4_star",
    note="Same swap as kradagrad.lemma3_4_alt_as_printed; KrADagrad* updates both factors every step, so the "
         "lemma's 'k - k' left, k' right' only fits each estimator separately (our reading).",
))

register(Claim(
    id="kradagrad.lemma3_4_star",
    source=Source(PAPER, "Lemma 3.4 corrected, KrADagrad* estimators"),
    statement="KrADagrad*, ||G_k||_2 <= 1: tr(L_k^{-1}) <= tr(L_0^{-1}) + k m (1 + ||L_0||_2) and "
              "tr(R_k^{-1}) <= tr(R_0^{-1}) + k n (1 + ||R_0||_2)",
    strategy=trajectories(),
    check=lambda inst, *, dps: _lemma34_star_check(inst, dps=dps, swapped=True),
    certify=lambda inst, *, dps: _lemma34_ball(inst, dps=dps, scheme="star", swapped=True),
    note="The corrected (14)-(15) for each estimator (s = 1 + ||L_0|| ||I||). Per step tr grows by at most "
         "||G||_F^2 <= min(m, n).",
))
