"""KrADagrad Prop. 3.2 (M_k < I for every t-rule), the Woodbury domination Eqs. (12)-(13) and Eq. (13)'s rank-one
closed form (errata 3): one step from arbitrary PD factors.
"""
from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

import mpmath
import numpy as np
from hypothesis import strategies as st

from ... import mp as M
from ... import strategies as S
from ... import twins as T
from ...claim import Claim, Source, register
from .. import _evidence as E
from ._common import MAX_DIM, PAPER, PAPER_RULES, RULES, _cond, _inv, _worst, pd_factor


class StepInstance(NamedTuple):
    L: np.ndarray  # (m, m) PD: L_{k-1}
    R: np.ndarray  # (n, n) PD: R_{k-1} (= R_k: only L is updated)
    G: np.ndarray  # (m, n)


@st.composite
def step_instances(draw, *, max_dim: int = MAX_DIM):
    m, n = draw(S.shapes(max_dim=max_dim))
    L = draw(pd_factor(m, max_log10_cond=6, min_exp=-8, max_exp=16))
    R = draw(pd_factor(n, max_log10_cond=6, min_exp=-8, max_exp=16))
    return StepInstance(L, R, draw(S.gradients(m, n)))


def _prop32_check(inst: StepInstance, *, dps: int, rules):
    m, n = inst.G.shape
    evs = []
    with M.workdps(dps):
        L, R, G = M.to_mp(inst.L), M.to_mp(inst.R), M.to_mp(inst.G)
        A = G * R * G.T
        A = (A + A.T) * mpmath.mpf(0.5)
        Lh = M.mp_psd_power(L, Fraction(1, 2))
        for rule in rules:
            t = T.t_value(rule, L, A)
            Mk = Lh * A * Lh / t
            ev = E.loewner(mpmath.eye(m), Mk, dps=dps, n=m,
                           detail={"m": m, "n": n, "t_rule": rule, "t": float(t),
                                   "cond_L": _cond(inst.L), "cond_R": _cond(inst.R)})
            evs.append(ev)
    return _worst(evs)


_PROP32 = "M_k = (1/t_k) L^{1/2} G R G^T L^{1/2} < I for PD L (m x m), R (n x n), any G (m x n), "
for rule, label in (("spectral", "t_k = 1 + ||L G R G^T||_2"), ("frobenius", "t_k = 1 + ||L G R G^T||_F")):
    register(Claim(
        id=f"kradagrad.prop3_2_{rule}",
        source=Source(PAPER, "Prop. 3.2"),
        statement=_PROP32 + label,
        strategy=step_instances(),
        check=(lambda r: lambda inst, *, dps: _prop32_check(inst, dps=dps, rules=(r,)))(rule),
        note="lambda_max(M_k) = rho(L G R G^T)/t_k <= rho/(1 + rho) < 1. The margin checks I - M_k >= 0; its "
             "value 1 - lambda_max(M_k) >= 1/(1 + rho) > 0 is the strict part (reported as the worst margin).",
    ))

register(Claim(
    id="kradagrad.prop3_2_trace_code",
    source=Source(PAPER, "Prop. 3.2 with the trace and code t-rules (errata 18)"),
    statement=_PROP32 + "t_k = 1 + tr(L G R G^T) and t_k = m (1 + tr(L G R G^T)) (authors' code)",
    strategy=step_instances(),
    check=lambda inst, *, dps: _prop32_check(inst, dps=dps, rules=("trace", "code")),
    note="Not printed: the rules krad_ref offers beside the printed ones; tr >= rho since the eigenvalues of "
         "L G R G^T are >= 0.",
))


def _woodbury_check(inst: StepInstance, *, dps: int):
    m, n = inst.G.shape
    evs = []
    with M.workdps(dps):
        L, R, G = M.to_mp(inst.L), M.to_mp(inst.R), M.to_mp(inst.G)
        A = G * R * G.T
        A = (A + A.T) * mpmath.mpf(0.5)
        for rule in PAPER_RULES:
            t = T.t_value(rule, L, A)
            Lt = _inv(_inv(L) + A / t)  # (B_{k-1} + dB_k)^{-1}, dB_k = (1/t) G C_k^{-1} G^T, C_k^{-1} = R
            Lk, _ = T.krad_update(L, G, R, t=t)
            evs.append(E.loewner(Lt, Lk, dps=dps, n=m, detail={"m": m, "n": n, "t_rule": rule, "t": float(t),
                                                                "cond_L": _cond(inst.L)}))
    return _worst(evs)


register(Claim(
    id="kradagrad.woodbury_12_13",
    source=Source(PAPER, "Eqs. (12)-(13)"),
    statement="L~_k = (B_{k-1} + (1/t_k) G C_k^{-1} G^T)^{-1} >= L_k = L_{k-1} - (1/t_k) L_{k-1} G R_k G^T L_{k-1} "
              "(B = L^{-1}, C_k = C_{k-1} = R^{-1}), t_k from Prop. 3.2 (spectral and Frobenius)",
    strategy=step_instances(),
    check=_woodbury_check,
    note="Woodbury: L~ = L - L G (t R^{-1} + G^T L G)^{-1} G^T L and (t R^{-1} + G^T L G)^{-1} <= R/t, so (13) "
         "holds for every t > 0, not only Prop. 3.2's.",
))


class Rank1Instance(NamedTuple):
    L: np.ndarray
    R: np.ndarray
    G: np.ndarray  # rank one, a b^T
    t_rule: str


@st.composite
def exact_rank_one(draw, m: int, n: int):
    """G = a b^T with 13-bit dyadic a, b: every product a_i b_j is exact in float64, so G has rank one exactly."""
    ints = st.integers(-2**12, 2**12)
    a = np.ldexp(np.array(draw(st.lists(ints, min_size=m, max_size=m)), dtype=np.float64), -12)
    b = np.ldexp(np.array(draw(st.lists(ints, min_size=n, max_size=n)), dtype=np.float64), -12)
    if not a.any():
        a[0] = 1.0
    if not b.any():
        b[0] = 1.0
    return np.outer(a, b)


@st.composite
def rank1_instances(draw):
    m, n = draw(S.shapes(max_dim=MAX_DIM))
    return Rank1Instance(draw(pd_factor(m, max_log10_cond=6)), draw(pd_factor(n, max_log10_cond=6)),
                         draw(exact_rank_one(m, n)), draw(st.sampled_from(RULES)))


def _rank1_check(inst: Rank1Instance, *, dps: int):
    m, n = inst.G.shape
    with M.workdps(dps):
        L, R, G = M.to_mp(inst.L), M.to_mp(inst.R), M.to_mp(inst.G)
        A = G * R * G.T
        A = (A + A.T) * mpmath.mpf(0.5)
        Lk, t = T.krad_update(L, G, R, t_rule=inst.t_rule)
        tau = M.mp_trace(L * A)
        rhs = _inv(L) + A / (t - tau)
        return E.identity(_inv(Lk), rhs, dps=dps, n=m,
                          detail={"m": m, "n": n, "t_rule": inst.t_rule, "t": float(t), "tau": float(tau)})


register(Claim(
    id="kradagrad.rank1_closed_form",
    source=Source(PAPER, "Eq. (13), rank-one gradients (errata 3)"),
    statement="For G = a b^T and t > tau = tr(L G R G^T): L_k^{-1} = L_{k-1}^{-1} + G R G^T / (t - tau) "
              "(every t-rule)",
    strategy=rank1_instances(),
    check=_rank1_check,
    note="Sherman-Morrison with c = beta/(t - tau), beta = b^T R b. G = a b^T is built from 13-bit dyadic a, b so "
         "that it is exactly rank one (a float outer product is rank one only up to rounding). It equals the "
         "exact inverse update (L^{-1} + G R G^T)^{-1} only for t = 1 + tau.",
))
