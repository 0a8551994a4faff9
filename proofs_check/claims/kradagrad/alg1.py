"""KrADagrad Alg. 1 (KrADagrad*): its update line as printed and as intended (errata 1).

What the search found: Alg. 1's printed update line is ill-typed for m != n (shrinks to m = 1, n = 2) and differs
from the intended update on square cases (shrinks to 2 x 2, one step); the intended update keeps Cor. 3.3.
"""
from __future__ import annotations

from typing import NamedTuple

import mpmath
from hypothesis import strategies as st

from ... import mp as M
from ... import strategies as S
from ... import twins as T
from ...claim import FAILS, Claim, Evidence, Source, register
from .. import _evidence as E
from ._common import MAX_DIM, PAPER, Traj, _failed, _traj_detail, _worst, trajectories
from .cor3_3 import _cor33_margins


class ShapeInstance(NamedTuple):
    m: int
    n: int


@st.composite
def shape_instances(draw):
    return ShapeInstance(*draw(S.shapes(max_dim=MAX_DIM)))


def _alg1_typing_check(inst: ShapeInstance, *, dps: int):
    # Printed: (L_k, R_k) <- (R_{k-1} - dR_k, L_{k-1} - dL_k): L_k gets R's shape (n x n) but must be m x m, both
    # as the next step's L_{k-1} (m x m, in L G G^T L) and in the step W - eta L^{a/2} G R^{a/2}.
    ok = (inst.n, inst.n) == (inst.m, inst.m)
    return Evidence(margin=0.0 if ok else -1.0, scale=1.0, tol=M.mp_tolerance(dps, 1),
                    detail={"L_k shape (printed)": [inst.n, inst.n], "needed": [inst.m, inst.m]})


register(Claim(
    id="kradagrad.alg1_printed_well_typed",
    source=Source(PAPER, "Alg. 1, update line (errata 1)"),
    statement="Alg. 1's update (L_k, R_k) <- (R_{k-1} - dR_k, L_{k-1} - dL_k) is well-typed for all (m, n)",
    strategy=shape_instances(),
    check=_alg1_typing_check,
    expected=FAILS,
    twin="kradagrad.alg1_intended",
    note="Ill-typed whenever m != n; shrinks to m = 1, n = 2.",
))


class SquareTraj(NamedTuple):
    grads: list  # (m, m) gradients


@st.composite
def square_trajectories(draw):
    m = draw(S.dims(1, MAX_DIM))
    return SquareTraj(draw(S.gradient_sequences(m, m, min_len=1, max_len=4)))


def _alg1_printed_check(inst: SquareTraj, *, dps: int):
    m = inst.grads[0].shape[0]
    intended = T.twin_trajectory("kradagrad_star", None, inst.grads, dps=dps, roots=False, t_rule="frobenius")
    evs = []
    with M.workdps(dps):
        L, R = mpmath.eye(m), mpmath.eye(m)
        for rec, G in zip(intended, inst.grads):
            dL_new, tL = T.krad_update(L, G, None, t_rule="frobenius", dps=dps)  # L - dL
            dR_new, tR = T.krad_update(R, G.T, None, t_rule="frobenius", dps=dps)  # R - dR
            L, R = dR_new, dL_new  # the printed swap
            evs.append(E.identity(L, rec["factors"][0], dps=dps, n=m, detail={"step": rec["count"], "m": m}))
            if _failed(evs):
                break
    return _worst(evs)


register(Claim(
    id="kradagrad.alg1_printed_equals_intended",
    source=Source(PAPER, "Alg. 1, update line, square case (errata 1)"),
    statement="For m = n, Alg. 1 as printed gives the intended L_k = L_{k-1} - dL_k at every step",
    strategy=square_trajectories(),
    check=_alg1_printed_check,
    expected=FAILS,
    twin="kradagrad.alg1_intended",
    note="Printed L_1 = I - G^T G/t_R, intended I - G G^T/t_L: different unless G is normal (G G^T = G^T G), so "
         "every 1 x 1 case agrees and the counterexample shrinks to 2 x 2. (Errata 1: a domination search on "
         "square cases does not separate them.)",
))


def _alg1_intended_check(inst: Traj, *, dps: int):
    m, n = inst.grads[0].shape
    recs = T.twin_trajectory("kradagrad_star", None, inst.grads, dps=dps, init=(inst.L0, inst.R0),
                             t_rule=inst.t_rule, roots=True)
    evs = []
    with M.workdps(dps):
        prev = (M.to_mp(inst.L0), M.to_mp(inst.R0))
        for rec in recs:
            L, R = rec["factors"]
            D = rec["direction"]
            typed = (L.rows, L.cols, R.rows, R.cols, D.rows, D.cols) == (m, m, n, n, m, n)
            if not typed:
                return Evidence(-1.0, 1.0, M.mp_tolerance(dps, 1), {"step": rec["count"], "ill_typed": True})
            evs += _cor33_margins(prev[0], L, dps=dps, d=m, step=rec["count"], which="L")
            evs += _cor33_margins(prev[1], R, dps=dps, d=n, step=rec["count"], which="R")
            prev = (L, R)
            if _failed(evs):
                break
    return _worst(evs, _traj_detail(inst))


register(Claim(
    id="kradagrad.alg1_intended",
    source=Source(PAPER, "Alg. 1 with the intended update line (errata 1)"),
    statement="Alg. 1 with (L_k, R_k) <- (L_{k-1} - dL_k, R_{k-1} - dR_k) is well-typed for all (m, n) "
              "(L_k m x m, R_k n x n, L_k^{1/4} G_k R_k^{1/4} m x n) and keeps 0 < L_k <= L_{k-1}, 0 < R_k <= R_{k-1}",
    strategy=trajectories(),
    check=_alg1_intended_check,
    weight=0.5,
))
