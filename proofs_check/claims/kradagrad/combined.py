"""KrADagrad Sec. 3.3 (and 3.3.2): the combined (geometric-mean) estimator R_c kron L_c.

What the search found: Sec. 3.3's combined domination "R_c kron L_c >= GG^T" is a true implication about
whatever satisfies its hypotheses, but false for KrADagrad*'s own factors (preconditioners, not statistics);
errata 7's corrected form R^{-1/2} kron L^{-1/2} >= GG^T / (t sqrt(mn)) holds along every trajectory.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import mpmath
import numpy as np
from hypothesis import strategies as st

from ... import mp as M
from ... import strategies as S
from ...claim import FAILS, Claim, Source, register
from .. import _evidence as E
from ._common import PAPER, PAPER_RULES, Traj, _failed, _gg, _star, _traj_detail, _worst, trajectories
from .lemma3_4 import _norm2


class CombinedInstance(NamedTuple):
    L1: np.ndarray  # (m, m) PD, scaled so that R1 kron L1 >= S
    R1: np.ndarray  # (n, n) PD
    L2: np.ndarray
    R2: np.ndarray
    grads: list  # S = eps^2 I + sum g g^T
    eps2: float


def _dominating_scale(R: np.ndarray, L: np.ndarray, Sf: np.ndarray) -> int:
    """An exponent e with 2^e (R kron L) >= S, from a float64 estimate with a factor-4 safety margin."""
    K = np.kron(R, L)
    w, V = np.linalg.eigh(K)
    Kih = (V / np.sqrt(w)) @ V.T
    c = float(np.linalg.eigvalsh(Kih @ Sf @ Kih)[-1])
    return int(math.ceil(math.log2(c))) + 2


@st.composite
def combined_instances(draw):
    m, n = draw(S.shapes(max_dim=3))
    grads = draw(S.gradient_sequences(m, n, min_len=1, max_len=3))
    eps2 = draw(st.sampled_from((1.0, 2.0**-7)))
    Sf = eps2 * np.eye(m * n)
    for G in grads:
        g = G.reshape(-1, order="F")
        Sf = Sf + np.outer(g, g)
    mats = []
    for _ in range(2):
        L, R = draw(S.spd_matrices(m, max_log10_cond=3)), draw(S.spd_matrices(n, max_log10_cond=3))
        mats.append((np.ldexp(L, _dominating_scale(R, L, Sf)), R))
    (L1, R1), (L2, R2) = mats
    return CombinedInstance(L1, R1, L2, R2, grads, eps2)


def _S_mp(grads, eps2, m, n):
    Ssum = mpmath.eye(m * n) * M.to_mpf(eps2)
    for G in grads:
        Ssum += _gg(G)
    return Ssum


def _combined_implication_check(inst: CombinedInstance, *, dps: int):
    m, n = inst.L1.shape[0], inst.R1.shape[0]
    with M.workdps(dps):
        Sm = _S_mp(inst.grads, inst.eps2, m, n)
        L1, R1, L2, R2 = (M.to_mp(x) for x in (inst.L1, inst.R1, inst.L2, inst.R2))
        hyp = min(M.loewner_margin(M.mp_kron(R1, L1), Sm), M.loewner_margin(M.mp_kron(R2, L2), Sm))
        if hyp < 0:
            # the strategy builds instances that meet the hypotheses; one that does not is a defect of the
            # construction, reported as the claim's error rather than passed as a vacuous implication
            raise ValueError(f"combined_implication: instance violates its hypotheses (margin {float(hyp):.3g})")
        Lc, Rc = M.mp_geometric_mean(L1, L2), M.mp_geometric_mean(R1, R2)
        return E.loewner(M.mp_kron(Rc, Lc), Sm, dps=dps, n=m * n,
                         detail={"m": m, "n": n, "hypothesis_margin": float(hyp)})


register(Claim(
    id="kradagrad.combined_implication",
    source=Source(PAPER, "Sec. 3.3 (combined estimator, as an implication)"),
    statement="R_1 kron L_1 >= GG^T and R_2 kron L_2 >= GG^T imply R_c kron L_c >= GG^T, with "
              "L_c = M_g(L_1, L_2), R_c = M_g(R_1, R_2), GG^T = eps^2 I + sum g g^T",
    strategy=combined_instances(),
    check=_combined_implication_check,
    weight=0.5,
    note="True as a statement about any PD factors meeting the hypotheses: M_g is jointly monotone and "
         "Kronecker-multiplicative, M_g(X, X) = X. Instances scale L_i by a power of two so the hypotheses hold "
         "(verified in mp). What fails is applying it to KrADagrad*'s factors: kradagrad.combined_as_printed.",
))


def _combined_traj_check(inst: Traj, *, dps: int, corrected: bool):
    m, n = inst.grads[0].shape
    recs = _star(inst, dps=dps)
    evs = []
    with M.workdps(dps):
        if corrected:
            lmax = max(_norm2(inst.L0, dps), _norm2(inst.R0, dps))
            delta = 1 / lmax  # min(lambda_min(L_0^{-1}), lambda_min(R_0^{-1}))
        else:
            delta = mpmath.mpf(1)  # Alg. 1: L_0 = R_0 = I, so G = (G' I) at k = 0 is dominated with equality
        Ssum, t = mpmath.eye(m * n) * delta, mpmath.mpf(0)
        rt = mpmath.sqrt(m * n)
        for rec, G in zip(recs, inst.grads):
            Ssum += _gg(G)
            t = max(t, *rec["t"])
            L, R = rec["factors"]
            if corrected:
                X = M.mp_kron(M.mp_psd_power(R, Fraction(-1, 2)), M.mp_psd_power(L, Fraction(-1, 2)))
                Y = Ssum / (t * rt)
            else:
                X = M.mp_kron(M.mp_psd_power(R, Fraction(1, 2)), M.mp_psd_power(L, Fraction(1, 2)))
                Y = Ssum
            evs.append(E.loewner(X, Y, dps=dps, n=m * n,
                                 tol=E.hoelder_tol(Fraction(1, 2), dps=dps, n=m * n),
                                 detail={"step": rec["count"], "t": float(t), "delta": float(delta)}))
            if _failed(evs):
                break
    return _worst(evs, _traj_detail(inst))


register(Claim(
    id="kradagrad.combined_as_printed",
    source=Source(PAPER, "Sec. 3.3 / 3.3.2 (combined estimator on KrADagrad*'s factors)"),
    statement="For KrADagrad* (Alg. 1, L_0 = R_0 = I) with the pairs (L_k, I) and (I, R_k): "
              "R_c kron L_c = R_k^{1/2} kron L_k^{1/2} >= G_k G_k^T = I + sum_{i<=k} g_i g_i^T",
    strategy=trajectories(max_dim=3, max_len=4, identity_init=True, rules=PAPER_RULES),
    check=lambda inst, *, dps: _combined_traj_check(inst, dps=dps, corrected=False),
    expected=FAILS,
    twin="kradagrad.combined_errata7",
    note="Errata 7: 'R kron L >= GG^T' is about the wrong objects. L_k, R_k are preconditioners (they shrink, "
         "Cor. 3.3) while GG^T grows, so already one step with m = n = 1 breaks it (the hypotheses fail on these "
         "objects too). eps = 1 matches L_0 = R_0 = I; any eps > 0 fails once sum g g^T is large enough.",
))

register(Claim(
    id="kradagrad.combined_errata7",
    source=Source(PAPER, "Sec. 3.3 corrected (errata 7)"),
    statement="Along KrADagrad* trajectories from PD L_0, R_0: R_k^{-1/2} kron L_k^{-1/2} >= "
              "(delta I + sum_{i<=k} g_i g_i^T) / (t sqrt(mn)), t = max of all t_{i,L}, t_{i,R}, "
              "delta = min(lambda_min(L_0^{-1}), lambda_min(R_0^{-1}))",
    strategy=trajectories(),
    check=lambda inst, *, dps: _combined_traj_check(inst, dps=dps, corrected=True),
    weight=0.5,
    note="From kradagrad.domination_star: n t (I kron L^{-1}) >= S and m t (R^{-1} kron I) >= S; their geometric "
         "mean is t sqrt(mn) R^{-1/2} kron L^{-1/2} >= M_g(S, S) = S.",
))
