"""MBAG's printed statements (Lee, "MBAG", Secs. I, IV-A, IV-B), encoded as printed, in mp.

Sec. IV-A, Eq. (4): the Sherman-Morrison update of H = G^{-1}. Sec. IV-B, Eq. (5): the coupled Newton-Schulz
iteration X_t = X (3I - Y X) / 2, Y_t = (3I - Y X) Y / 2 from X_0 = G^{-1} (Alg. 1) or X_0 = G (Alg. 2), Y_0 = I,
its limits, its convergence condition ||I - X_0||_p < 1 (p = 1, 2, inf), and the Frobenius normalisation
A' = X_0 / ||X_0||_F with the rescaling "G^{-1/2} = sqrt(||G^{-1}||_F) X_N". Sec. I: the AdaGrad that MBAG
approximates, "G = delta I + (sum g g^T)^{1/2}".

Newton-Schulz is run here in mp (:func:`mp_newton_schulz`), residual-controlled to 10^-(dps-10) for the limit
claims ("converges to" = the limit, errata 6), or for a fixed number of steps. Derivation behind the verdicts: all
iterates are polynomials in X_0, X_t = X_0 Y_t, and each eigenvalue q of X_0 follows the scalar map
z -> z (3 - z^2) / 2 on z = sqrt(q) y, which converges to 1 exactly for z_0 = sqrt(q) in (0, sqrt 3). Hence
X_t -> X_0^{1/2} and Y_t -> X_0^{-1/2} whenever the spectrum of X_0 lies in (0, 3) (any of the printed conditions
puts it in (0, 2)), and with X_0 = A / s: sqrt(s) X_N -> A^{1/2}, Y_N / sqrt(s) -> A^{-1/2}.

What the search finds:
  * Eq. (4) holds (exactly, over whole gradient sequences), and so do the unnormalised limits under the condition,
    the X-rescaling of Sec. IV-B, and an explicit quadratic rate ||E'||_F <= (3/4)||E||_F^2 + (1/4)||E||_F^3 for
    the residual E = I - Y X (exact algebra: E' = (3E^2 + E^3)/4).
  * Y after the normalisation is NOT G^{1/2} (Alg. 1 input) nor G^{-1/2} (Alg. 2 input): it is off by sqrt(s), and
    the rescaling by analogy with X (multiply by sqrt(s)) is off by s. Corrected twins: divide Y_N by sqrt(s).
  * "If X_0 is initialized to G, Y_t converges to G^{-1/2}" read literally (no normalisation) fails for
    lambda_max(G) >= 3 (diverges or converges to the wrong sign).
  * The Frobenius normalisation satisfies the condition in the 2-norm always (1 - ||I - A'||_2 = lambda_min / s > 0)
    but not in the 1- and inf-norms (A = v v^T + eps I with dense v): "the condition for p = 1, 2 or inf" is met
    through p = 2 only.
  * A fixed number of steps under-estimates both roots in the Loewner order (our statement; it explains errata 6).
  * Sec. I's AdaGrad, (delta I + (sum g g^T)^{1/2})^{-1} g, is not what one MBAG group computes: that is
    (lambda I + sum g g^T)^{-1/2} g (errata 5), already for tau = 1.
  * Theorem 1's deterministic ingredients (the per-step inequalities behind its log-det and G^2 terms) hold for
    T_sqr = 1; the log-det step fails for Algorithm 1 with a stale root (T_sqr > 1), which the theorem covers.
Not encoded: Theorem 1 itself (a bound in expectation over the noise, with constants L, G and log det terms of a
run; not an instance-checkable statement without a noise model).
"""
from __future__ import annotations

from typing import NamedTuple

import mpmath
import numpy as np
from hypothesis import strategies as st

from .. import mp as M
from .. import strategies as S
from ..claim import FAILS, Claim, Evidence, Source, register
from . import _evidence as E

PAPER = "MBAG"
MAX_N = 5          # mp Newton-Schulz costs ~30 iterations x 3 products of n x n matrices at 50 digits
MAX_LOG10_COND = 6  # ~23 linear-phase steps at most (z grows 3/2 per step from sqrt(q_min))
MAX_STEPS = 6
# lambda of G_0 = lambda I, simplest first; dyadic so that I / lambda is exact
LAMS = (1.0, 0.25, 4.0, 2.0**-10, 2.0**-20)
# A = f B with lambda_max(B) = 1 and f in (0, 2): ||I - A||_2 = max(|1 - f|, |1 - f lambda_min|) < 1 (dyadic f)
COND_FACTORS = (1.0, 0.5, 1.5, 0.25, 1.75, 1.875)
# general scales of the input (dyadic, exact), simplest first; 4 puts lambda_max >= 3 (outside the convergence region)
SCALES = (1.0, 4.0, 0.25, 2.0**10, 2.0**-10)


# ---------------------------------------------------------------------------------------------------------
# mp helpers

def _rows(A):
    return A.tolist() if isinstance(A, mpmath.matrix) else A


def _mm(A, B):
    """Product of two square mp matrices (lists of rows) with fdot: ~3x faster than mpmath.matrix.__mul__."""
    Bt = list(zip(*B))
    return [[mpmath.fdot(r, c) for c in Bt] for r in A]


def _fro(R) -> mpmath.mpf:
    return mpmath.sqrt(mpmath.fsum((v for row in R for v in row), squared=True))


class MpNS(NamedTuple):
    X: mpmath.matrix   # X_N (not rescaled)
    Y: mpmath.matrix   # Y_N (not rescaled)
    s: mpmath.mpf      # the normalisation (||A||_F, or 1 without normalisation)
    iterations: int
    residual: mpmath.mpf  # ||I - Y_N X_N||_F
    residuals: list       # ||I - Y_k X_k||_F for k = 0..N


def mp_newton_schulz(A, *, dps: int, iters: int | None = None, normalize: bool = True, max_iter: int = 200,
                     blowup: float = 1e8) -> MpNS:
    """Eq. (5) in mp: X_0 = A / s, Y_0 = I, s = ||A||_F (``normalize``) or 1; T = 3I - YX, X <- XT/2, Y <- TY/2.

    ``iters``: run exactly that many steps; None: until ||I - Y X||_F <= 10^-(dps - 10) (the limit, to ~40 digits at
    dps = 50), or ``max_iter``, or the residual exceeds ``blowup`` (a diverging iteration is returned as it is).
    """
    with mpmath.workdps(dps):
        R = _rows(M.to_mp(A))
        n = len(R)
        s = _fro(R) if normalize else mpmath.mpf(1)
        X = [[v / s for v in row] for row in R]
        Y = [[mpmath.mpf(int(i == j)) for j in range(n)] for i in range(n)]
        target = mpmath.mpf(10) ** (-(dps - 10))
        residuals = []
        k = 0
        while True:
            YX = _mm(Y, X)
            Emat = [[(1 if i == j else 0) - YX[i][j] for j in range(n)] for i in range(n)]
            res = _fro(Emat)
            residuals.append(res)
            if iters is not None:
                if k == iters:
                    break
            elif res <= target or k >= max_iter or res > blowup:
                break
            T = [[2 * (1 if i == j else 0) + Emat[i][j] for j in range(n)] for i in range(n)]  # 3I - YX = 2I + E
            X, Y = _mm(X, T), _mm(T, Y)
            X = [[v / 2 for v in row] for row in X]
            Y = [[v / 2 for v in row] for row in Y]
            k += 1
        return MpNS(mpmath.matrix(X), mpmath.matrix(Y), s, k, res, residuals)


def _worst(evs, detail=None) -> Evidence:
    w = min(evs, key=lambda e: e.relative_margin)
    d = dict(w.detail)
    d.update(detail or {})
    return Evidence(w.margin, w.scale, w.tol, d)


def _cond(B) -> float:
    return E.cond(np.asarray(B, dtype=np.float64))


# ---------------------------------------------------------------------------------------------------------
# Eq. (4): Sherman-Morrison

class SMInstance(NamedTuple):
    lam: float          # G_0 = lam I
    grads: np.ndarray   # (t, tau): g_1 ... g_t, ||g_i|| <= 1


@st.composite
def sm_instances(draw, max_n: int = MAX_N, max_len: int = MAX_STEPS):
    tau = draw(S.dims(1, max_n))
    seq = draw(S.gradient_sequences(tau, 1, min_len=1, max_len=max_len))
    return SMInstance(draw(st.sampled_from(LAMS)), np.stack([g[:, 0] for g in seq]))


def _sm_trajectory(inst: SMInstance, dps: int):
    """[(g_t, H_t by Eq. 4, G_t = lam I + sum g g^T)] in mp."""
    tau = inst.grads.shape[1]
    out = []
    with mpmath.workdps(dps):
        lam = M.to_mpf(inst.lam)
        H = mpmath.eye(tau) / lam
        G = mpmath.eye(tau) * lam
        for g in inst.grads:
            gm = M.to_mp(g)  # column
            u = H * gm
            H = H - (u * u.T) / (1 + (gm.T * u)[0])
            G = G + gm * gm.T
            out.append((gm, H, G))
    return out


def check_eq4(inst: SMInstance, *, dps: int):
    tau = inst.grads.shape[1]
    evs = []
    for k, (_, H, G) in enumerate(_sm_trajectory(inst, dps), 1):
        with mpmath.workdps(dps):
            direct = mpmath.inverse(G)
        # kappa(G_t) <= (lam + t) / lam < 1e8: the mp inverse keeps > 40 digits
        evs.append(E.identity(H, direct, dps=dps, n=tau, detail={"step": k}))
    return _worst(evs, {"tau": tau, "lam": inst.lam, "steps": len(inst.grads)})


register(Claim(
    id="mbag.eq4_sherman_morrison",
    source=Source(PAPER, "Eq. (4), Sec. IV-A"),
    statement="H_t = (G_{t-1} + g_t g_t^T)^{-1} = H_{t-1} - H_{t-1} g_t g_t^T H_{t-1} / (1 + g_t^T H_{t-1} g_t) with "
              "H_0 = I / lambda, G_0 = lambda I (lambda > 0), for every t of a gradient sequence",
    strategy=sm_instances(),
    check=check_eq4,
    note="Exact in mp over whole sequences (each step compared with the direct inverse of lambda I + sum g g^T).",
))


# ---------------------------------------------------------------------------------------------------------
# Sec. I vs Eq. (3): which AdaGrad one group is

def _single_group_check(inst: SMInstance, *, dps: int, form: str):
    tau = inst.grads.shape[1]
    evs = []
    for k, (g, H, G) in enumerate(_sm_trajectory(inst, dps), 1):
        with mpmath.workdps(dps):
            lhs = M.mp_psd_power(H, mpmath.mpf(1) / 2) * g  # one MBAG group, beta = 0, T_sqr = 1, exact root
            lam = M.to_mpf(inst.lam)
            if form == "kradagrad":
                rhs = M.mp_psd_power(G, -mpmath.mpf(1) / 2) * g
            else:  # Sec. I: G = delta I + (sum g g^T)^{1/2}, step G^{-1} g, delta = lambda
                Ssum = G - mpmath.eye(tau) * lam
                Ssum = (Ssum + Ssum.T) / 2
                rhs = mpmath.inverse(mpmath.eye(tau) * lam + M.mp_psd_power(Ssum, mpmath.mpf(1) / 2)) * g
        evs.append(E.identity(lhs, rhs, dps=dps, n=tau, detail={"step": k}))
        if not evs[-1].ok:
            break
    return _worst(evs, {"tau": tau, "lam": inst.lam, "steps": len(inst.grads)})


register(Claim(
    id="mbag.intro_adagrad_form",
    source=Source(PAPER, "Sec. I (AdaGrad's G = delta I + (sum g g^T)^{1/2}) vs Eqs. (2)-(3)"),
    statement="One MBAG group (beta = 0, T_sqr = 1, exact root, lambda = delta) steps like Sec. I's AdaGrad: "
              "H_t^{1/2} g_t = (delta I + (sum_{i<=t} g_i g_i^T)^{1/2})^{-1} g_t",
    strategy=sm_instances(),
    check=lambda inst, *, dps: _single_group_check(inst, dps=dps, form="duchi"),
    expected=FAILS,
    twin="mbag.single_group_adagrad",
    note="errata 5. Already tau = 1, one step: g / sqrt(lambda + g^2) vs g / (lambda + |g|). Sec. I quotes Duchi's "
         "form; Eqs. (2)-(3) implement (lambda I + sum g g^T)^{-1/2} (the twin). The two agree only as lambda -> 0.",
))

register(Claim(
    id="mbag.single_group_adagrad",
    source=Source(PAPER, "Eqs. (2)-(4) with one group (errata 5)"),
    statement="One MBAG group (beta = 0, T_sqr = 1, exact root) steps like full-matrix AdaGrad in the "
              "(lambda I + sum g g^T)^{-1/2} form: H_t^{1/2} g_t = (lambda I + sum_{i<=t} g_i g_i^T)^{-1/2} g_t",
    strategy=sm_instances(),
    check=lambda inst, *, dps: _single_group_check(inst, dps=dps, form="kradagrad"),
    note="H_t = G_t^{-1} (Eq. 4), so H_t^{1/2} = G_t^{-1/2}. krad_ref's bridge test checks the float code the same way "
         "(adagrad_full with form='kradagrad').",
))


# ---------------------------------------------------------------------------------------------------------
# Theorem 1's deterministic ingredients (Sec. V). The proof is not printed; the bound's terms name the steps of the
# framework it follows ([28], Chen et al. 2019): the L eta^2 / 2 E[log |G_T| / |G_0|] term bounds the smoothness
# term sum_t (L/2) ||eta H_t^{1/2} g_t||^2 through the per-step potential inequality below, and the
# 2 G^2 eta (tr(H_0^{1/2}) + 1/sqrt(lambda)) term telescopes sum_t tr(H_{t-1}^{1/2} - H_t^{1/2}) <= tr(H_0^{1/2})
# (needs H_t^{1/2} <= H_{t-1}^{1/2}) and bounds ||H_t^{1/2}||_2 <= 1/sqrt(lambda). Per group; the block-diagonal
# hat-G adds log-determinants and traces over the groups, so one group is the whole content.

class Thm1Instance(NamedTuple):
    lam: float          # G_0 = lam I
    grads: np.ndarray   # (t, tau)
    t_sqr: int = 1      # root refresh interval of Alg. 1 (lines 7-10)


@st.composite
def thm1_instances(draw, t_sqr: tuple[int, int] = (1, 1)):
    inst = draw(sm_instances())
    return Thm1Instance(inst.lam, inst.grads, draw(st.integers(*t_sqr)))


def _logdet_steps(inst: Thm1Instance, dps: int):
    """[(g_t, H_t, H_s, log|G_t| - log|G_{t-1}|)]: s = the last refresh <= t of Alg. 1 (s = 0 before the first,
    errata 28: the root of H_0 = I / lambda)."""
    traj = _sm_trajectory(SMInstance(inst.lam, inst.grads), dps)
    tau = inst.grads.shape[1]
    out = []
    with mpmath.workdps(dps):
        Hs = mpmath.eye(tau) / M.to_mpf(inst.lam)
        prev = tau * mpmath.log(M.to_mpf(inst.lam))
        for t, (g, H, G) in enumerate(traj, 1):
            if t % inst.t_sqr == 0:
                Hs = H
            logdet = mpmath.log(mpmath.det(G))
            out.append((g, H, Hs, logdet - prev))
            prev = logdet
    return out


def check_thm1_logdet(inst: Thm1Instance, *, dps: int):
    """||H^{1/2} g_t||^2 = g_t^T H g_t <= log|G_t| - log|G_{t-1}| with H the root's argument used at step t."""
    tau = inst.grads.shape[1]
    evs = []
    for k, (g, _, Hs, dlog) in enumerate(_logdet_steps(inst, dps), 1):
        with mpmath.workdps(dps):
            lhs = (g.T * Hs * g)[0]
        # both sides are O(g^T H g); their difference is O((g^T H g)^2) when the root is current: exact in mp
        evs.append(Evidence(float(dlog - lhs), float(abs(dlog) + abs(lhs)) or 1.0, M.mp_tolerance(dps, tau),
                            {"step": k, "gHg": float(lhs), "dlogdet": float(dlog)}))
    return _worst(evs, {"tau": tau, "lam": inst.lam, "steps": len(inst.grads), "T_sqr": inst.t_sqr})


register(Claim(
    id="mbag.thm1_logdet_step",
    source=Source(PAPER, "Theorem 1, its L eta^2/2 log(|G_T|/|G_0|) term (per-step ingredient, T_sqr = 1)"),
    statement="For G_t = G_{t-1} + g_t g_t^T, G_0 = lambda I, H_t = G_t^{-1} (Eq. 4): ||H_t^{1/2} g_t||^2 = "
              "g_t^T H_t g_t <= log det G_t - log det G_{t-1} at every step t",
    strategy=thm1_instances(),
    check=check_thm1_logdet,
    note="g^T H_t g = u / (1 + u) with u = g^T H_{t-1} g (Sherman-Morrison), det G_t / det G_{t-1} = 1 + u "
         "(matrix determinant lemma), and u / (1 + u) <= log(1 + u). Summed over t: the theorem's log-det term.",
))

register(Claim(
    id="mbag.thm1_logdet_step_stale_root",
    source=Source(PAPER, "Theorem 1 for Algorithm 1 as printed (root refreshed every T_sqr steps, lines 7-10)"),
    statement="Alg. 1 with T_sqr >= 1 applies H_s^{1/2}, s the last refresh <= t (H_0 before the first): "
              "||H_s^{1/2} g_t||^2 <= log det G_t - log det G_{t-1} at every step t",
    strategy=thm1_instances(t_sqr=(1, 4)),
    check=check_thm1_logdet,
    expected=FAILS,
    twin="mbag.thm1_logdet_step",
    note="A stale root is larger (H_s >= H_t), and already one step behind the inequality is u <= log(1 + u), false "
         "for every g != 0: tau = 1, lambda = 1, g = 1, T_sqr = 2 gives 1 > log 2 at t = 1. Theorem 1 is stated for "
         "Algorithm 1, whose T_sqr (50 in Sec. VI) the bound ignores; its log-det term covers T_sqr = 1 only.",
))


def check_thm1_roots(inst: Thm1Instance, *, dps: int):
    """H_t^{1/2} <= H_{t-1}^{1/2} and H_t^{1/2} <= I / sqrt(lambda) (Loewner), exact roots."""
    tau = inst.grads.shape[1]
    evs = []
    with mpmath.workdps(dps):
        half = mpmath.mpf(1) / 2
        top = mpmath.eye(tau) / mpmath.sqrt(M.to_mpf(inst.lam))
        prev = top  # H_0^{1/2} = I / sqrt(lambda)
        for k, (_, H, _) in enumerate(_sm_trajectory(SMInstance(inst.lam, inst.grads), dps), 1):
            root = M.mp_psd_power(H, half)
            # kappa(G_t) <= (lam + t) / lam: the mp root keeps > 40 digits, inside mp_tolerance
            evs.append(E.loewner(prev, root, dps=dps, n=tau, detail={"step": k, "bound": "H_t^{1/2} <= H_{t-1}^{1/2}"}))
            evs.append(E.loewner(top, root, dps=dps, n=tau, detail={"step": k, "bound": "H_t^{1/2} <= I/sqrt(lam)"}))
            prev = root
    return _worst(evs, {"tau": tau, "lam": inst.lam, "steps": len(inst.grads)})


register(Claim(
    id="mbag.thm1_root_monotone",
    source=Source(PAPER, "Theorem 1, its 2 G^2 eta (tr(H_0^{1/2}) + 1/sqrt(lambda)) term (per-step ingredients)"),
    statement="Along Eq. (4) (G_t = G_{t-1} + g_t g_t^T, G_0 = lambda I): H_t^{1/2} <= H_{t-1}^{1/2} and "
              "H_t^{1/2} <= I / sqrt(lambda) (Loewner) at every step t",
    strategy=thm1_instances(),
    check=check_thm1_roots,
    weight=0.3,  # one mp eigendecomposition per step (~80 ms per instance at tau = 5, six steps)
    note="G_t >= G_{t-1} >= lambda I, and t -> t^{-1/2} is operator monotone decreasing (Loewner-Heinz). Hence "
         "sum_t tr(H_{t-1}^{1/2} - H_t^{1/2}) telescopes to at most tr(H_0^{1/2}) and ||H_t^{1/2}||_2 <= "
         "1/sqrt(lambda): the two parts of the theorem's G^2 term. Does not hold for MBAG-EMA (Alg. 2), whose G_t "
         "is not monotone; Theorem 1 is stated for Alg. 1 only.",
))


# ---------------------------------------------------------------------------------------------------------
# Newton-Schulz instances

class NSInstance(NamedTuple):
    B: np.ndarray  # (n, n) SPD with lambda_max = 1
    c: float       # the input is A = c B, formed exactly in mp (dyadic c)
    N: int = 0     # step count for fixed-count claims (unused by limit claims)


@st.composite
def ns_instances(draw, factors=SCALES, max_n: int = MAX_N, max_log10_cond: float = MAX_LOG10_COND,
                 steps: tuple[int, int] | None = None):
    n = draw(S.dims(1, max_n))
    B = draw(S.spd_matrices(n, max_log10_cond=max_log10_cond))
    c = draw(st.sampled_from(factors))
    N = draw(st.integers(*steps)) if steps else 0
    return NSInstance(B, c, N)


def _A(inst: NSInstance, dps: int) -> mpmath.matrix:
    with mpmath.workdps(dps):
        return M.to_mp(inst.B) * M.to_mpf(inst.c)  # exact: a 53-bit entry times a dyadic c of <= 4 bits


def _detail(inst: NSInstance, ns: MpNS | None = None) -> dict:
    d = {"n": inst.B.shape[0], "c": inst.c, "kappa": _cond(inst.B)}
    if ns is not None:
        d.update(iterations=ns.iterations, residual=float(ns.residual), s=float(ns.s))
    return d


def _roots(A, dps: int):
    with mpmath.workdps(dps):
        half = mpmath.mpf(1) / 2
        return M.mp_psd_power(A, half), M.mp_psd_power(A, -half)


def _scaled(X, f, dps: int):
    with mpmath.workdps(dps):
        return X * f


def check_ns_limits(inst: NSInstance, *, dps: int):
    """Unnormalised Eq. (5) from X_0 = A with ||I - A||_2 < 1: X_t -> A^{1/2}, Y_t -> A^{-1/2}."""
    A = _A(inst, dps)
    n = inst.B.shape[0]
    ns = mp_newton_schulz(A, dps=dps, normalize=False)
    sq, isq = _roots(A, dps)
    evs = [E.identity(ns.X, sq, dps=dps, n=n, detail={"output": "X -> A^{1/2}"}),
           E.identity(ns.Y, isq, dps=dps, n=n, detail={"output": "Y -> A^{-1/2}"})]
    return _worst(evs, _detail(inst, ns))


register(Claim(
    id="mbag.ns_limits",
    source=Source(PAPER, "Eq. (5) and Sec. IV-B ('X_t and Y_t quadratically converge to G^{-1/2} and G^{1/2}'; "
                         "'sufficient condition ... ||I - G^{-1}||_p < 1 for p = 1, 2, or inf')"),
    statement="X_0 = A (A = G^{-1} in Alg. 1, A = G in Alg. 2), Y_0 = I, A SPD with ||I - A||_p < 1 for some p in "
              "{1, 2, inf}: X_t -> A^{1/2} and Y_t -> A^{-1/2} (for A = G^{-1}: G^{-1/2} and G^{1/2}; for A = G: "
              "Y_t -> G^{-1/2})",
    strategy=ns_instances(factors=COND_FACTORS),
    check=check_ns_limits,
    note="Instances satisfy the p = 2 condition (A = f B, lambda_max(B) = 1, f in (0, 2)); for SPD A this is the "
         "weakest of the three (rho(I - A) <= ||I - A||_p), so the p = 1 and inf conditions are covered. Without "
         "normalisation the paper's statements are right whenever the condition holds.",
))


def check_ns_quadratic(inst: NSInstance, *, dps: int):
    n = inst.B.shape[0]
    ns = mp_newton_schulz(_A(inst, dps), dps=dps, iters=inst.N, normalize=True)
    evs = []
    with mpmath.workdps(dps):
        for k in range(len(ns.residuals) - 1):
            e, e1 = ns.residuals[k], ns.residuals[k + 1]
            bound = (3 * e**2 + e**3) / 4
            # scale ||I||_F = sqrt(n): the residual is formed at dps digits with an absolute rounding ~ 10^-dps
            # (X, Y are bounded by kappa^{1/2} <= 1e3 here), so near convergence both sides are rounding-sized
            evs.append(Evidence(float(bound - e1), float(mpmath.sqrt(n)), M.mp_tolerance(dps, n),
                                {"k": k, "E_k": float(e), "E_k+1": float(e1)}))
    if not evs:
        return Evidence(0.0, 1.0, M.mp_tolerance(dps, n), _detail(inst))
    return _worst(evs, _detail(inst, ns))


register(Claim(
    id="mbag.ns_quadratic",
    source=Source(PAPER, "Sec. IV-B ('quadratically converges'), explicit form"),
    statement="For the Frobenius-normalised Eq. (5), E_k = I - Y_k X_k satisfies ||E_{k+1}||_F <= (3/4)||E_k||_F^2 "
              "+ (1/4)||E_k||_F^3 for every k",
    strategy=ns_instances(steps=(1, 12)),
    check=check_ns_quadratic,
    note="Exact algebra: all iterates commute, Y'X' = (3I - P)^2 P / 4 with P = YX, so E' = (3E^2 + E^3)/4; then "
         "sub-multiplicativity. (Per eigenvalue e in [0, 1): e' = (3e^2 + e^3)/4; with the Frobenius normalisation "
         "the smallest eigenvalues start near 1, which is why few steps are inaccurate: errata 6.)",
))


def check_fro_rescale(inst: NSInstance, *, dps: int, output: str):
    """Input H = c B (= G^{-1}); Frobenius-normalised limit of X or Y against the stated root of G."""
    n = inst.B.shape[0]
    H = _A(inst, dps)
    ns = mp_newton_schulz(H, dps=dps, normalize=True)
    sq, isq = _roots(H, dps)  # H^{1/2} = G^{-1/2}, H^{-1/2} = G^{1/2}
    with mpmath.workdps(dps):
        r = mpmath.sqrt(ns.s)
        if output == "x":
            lhs, rhs = ns.X * r, sq                 # sqrt(||G^{-1}||_F) X_N = G^{-1/2}
        elif output == "y_printed":
            lhs, rhs = ns.Y, isq                    # Y_N -> G^{1/2}, no rescaling
        else:
            lhs, rhs = ns.Y / r, isq                # Y_N / sqrt(||G^{-1}||_F) = G^{1/2}
    return E.identity(lhs, rhs, dps=dps, n=n, detail=_detail(inst, ns))


register(Claim(
    id="mbag.ns_fro_rescale_x",
    source=Source(PAPER, "Sec. IV-B ('G^{-1/2} = sqrt(||G^{-1}||_F) X_N')"),
    statement="With X_0 = A' = G^{-1} / ||G^{-1}||_F, Y_0 = I: sqrt(||G^{-1}||_F) X_N -> G^{-1/2} as N -> inf, "
              "for every SPD G",
    strategy=ns_instances(),
    check=lambda inst, *, dps: check_fro_rescale(inst, dps=dps, output="x"),
    note="X_N -> A'^{1/2} = H^{1/2} / sqrt(s). The formula krad_ref's MBAG uses (root of H).",
))

register(Claim(
    id="mbag.ns_fro_y_as_printed",
    source=Source(PAPER, "Sec. IV-B (Y_t -> G^{1/2}, read after the Frobenius normalisation)"),
    statement="With X_0 = A' = G^{-1} / ||G^{-1}||_F, Y_0 = I: Y_N -> G^{1/2} (the limit stated for Eq. (5), the "
              "normalisation applied to X only)",
    strategy=ns_instances(),
    check=lambda inst, *, dps: check_fro_rescale(inst, dps=dps, output="y_printed"),
    expected=FAILS,
    twin="mbag.ns_fro_rescale_y",
    note="Y_N -> A'^{-1/2} = sqrt(s) G^{1/2}, s = ||G^{-1}||_F: right only when s = 1. Shrinks to n = 1 (G^{-1} = "
         "[c], c != 1) or n = 2.",
))

register(Claim(
    id="mbag.ns_fro_rescale_y",
    source=Source(PAPER, "Sec. IV-B, Y rescaled (derived)"),
    statement="With X_0 = A' = G^{-1} / ||G^{-1}||_F, Y_0 = I: Y_N / sqrt(||G^{-1}||_F) -> G^{1/2}",
    strategy=ns_instances(),
    check=lambda inst, *, dps: check_fro_rescale(inst, dps=dps, output="y"),
))


def check_alg2(inst: NSInstance, *, dps: int, reading: str):
    """Input G = c B (Alg. 2); the stated limit of Y (and X) against G^{-1/2} (G^{1/2})."""
    n = inst.B.shape[0]
    G = _A(inst, dps)
    ns = mp_newton_schulz(G, dps=dps, normalize=reading != "literal")
    sq, isq = _roots(G, dps)
    with mpmath.workdps(dps):
        r = mpmath.sqrt(ns.s)
        if reading in ("literal", "normalized"):
            return E.identity(ns.Y, isq, dps=dps, n=n, detail=_detail(inst, ns))
        if reading == "analogy":
            return E.identity(ns.Y * r, isq, dps=dps, n=n, detail=_detail(inst, ns))
        evs = [E.identity(ns.Y / r, isq, dps=dps, n=n, detail={"output": "Y_N / sqrt(s) -> G^{-1/2}"}),
               E.identity(ns.X * r, sq, dps=dps, n=n, detail={"output": "sqrt(s) X_N -> G^{1/2}"})]
    return _worst(evs, _detail(inst, ns))


register(Claim(
    id="mbag.ns_alg2_literal",
    source=Source(PAPER, "Sec. IV-B ('if X_0 is initialized to G, Y_t in (5) converges to G^{-1/2}'), literal"),
    statement="Eq. (5) from X_0 = G (no normalisation), Y_0 = I: Y_t -> G^{-1/2} for every SPD G",
    strategy=ns_instances(),
    check=lambda inst, *, dps: check_alg2(inst, dps=dps, reading="literal"),
    expected=FAILS,
    twin="mbag.ns_alg2_rescaled",
    note="Needs the spectrum of G in (0, 3): G = [[4]] gives z_0 = 2, z_1 = -1, a fixed point (Y -> -G^{-1/2}); "
         "larger eigenvalues diverge. The sentence follows the normalisation paragraph, so the paper presumably "
         "means the normalised iteration: see mbag.ns_alg2_normalized and the twin.",
))

register(Claim(
    id="mbag.ns_alg2_normalized",
    source=Source(PAPER, "Sec. IV-B, Alg. 2 line 8, with the Frobenius normalisation of Sec. IV-B"),
    statement="Eq. (5) from X_0 = G / ||G||_F, Y_0 = I: Y_N -> G^{-1/2}",
    strategy=ns_instances(),
    check=lambda inst, *, dps: check_alg2(inst, dps=dps, reading="normalized"),
    expected=FAILS,
    twin="mbag.ns_alg2_rescaled",
    note="Y_N -> (G/s)^{-1/2} = sqrt(s) G^{-1/2}, s = ||G||_F.",
))

register(Claim(
    id="mbag.ns_alg2_rescaled_by_analogy",
    source=Source(PAPER, "Sec. IV-B, the X-rescaling 'sqrt(||.||_F) X_N' applied to Alg. 2's Y"),
    statement="Eq. (5) from X_0 = G / ||G||_F, Y_0 = I: sqrt(||G||_F) Y_N -> G^{-1/2}",
    strategy=ns_instances(),
    check=lambda inst, *, dps: check_alg2(inst, dps=dps, reading="analogy"),
    expected=FAILS,
    twin="mbag.ns_alg2_rescaled",
    note="Off by the factor s = ||G||_F: sqrt(s) Y_N -> s G^{-1/2}.",
))

register(Claim(
    id="mbag.ns_alg2_rescaled",
    source=Source(PAPER, "Sec. IV-B / Alg. 2, rescaling derived (errata 6)"),
    statement="Eq. (5) from X_0 = G / ||G||_F, Y_0 = I: Y_N / sqrt(||G||_F) -> G^{-1/2} and sqrt(||G||_F) X_N -> "
              "G^{1/2}, for every SPD G",
    strategy=ns_instances(),
    check=lambda inst, *, dps: check_alg2(inst, dps=dps, reading="rescaled"),
    note="What krad_ref's MBAG-EMA uses (root = Y_N / sqrt(||G||_F)).",
))


# ---------------------------------------------------------------------------------------------------------
# the convergence condition under the Frobenius normalisation

def _p_norms(A, dps: int) -> dict:
    """||I - A'||_p for p = 1, 2, inf, A' = A / ||A||_F (symmetric: the 1- and inf-norms coincide)."""
    with mpmath.workdps(dps):
        R = _rows(A)
        n = len(R)
        s = _fro(R)
        D = [[(1 if i == j else 0) - R[i][j] / s for j in range(n)] for i in range(n)]
        row = max(mpmath.fsum(abs(v) for v in r) for r in D)
        col = max(mpmath.fsum(abs(D[i][j]) for i in range(n)) for j in range(n))
        two = M.mp_norm_2(mpmath.matrix(D))
        return {"1": col, "2": two, "inf": row}


def check_fro_condition(inst: NSInstance, *, dps: int, which: str):
    A = _A(inst, dps)
    norms = _p_norms(A, dps)
    with mpmath.workdps(dps):
        if which == "2":
            worst_p, val = "2", norms["2"]
        else:  # every p: the largest of the three
            worst_p = max(norms, key=lambda k: norms[k])
            val = norms[worst_p]
        margin = 1 - val
    d = _detail(inst)
    d.update({f"||I - A'||_{k}": float(v) for k, v in norms.items()}, p=worst_p)
    return Evidence(float(margin), 1.0, M.mp_tolerance(dps, inst.B.shape[0]), d)


register(Claim(
    id="mbag.ns_fro_condition",
    source=Source(PAPER, "Sec. IV-B ('to satisfy the condition, we ... normalize by its Frobenius norm')"),
    statement="For every SPD A, A' = A / ||A||_F satisfies ||I - A'||_2 < 1, hence the sufficient condition "
              "'||I - A'||_p < 1 for p = 1, 2, or inf'",
    strategy=ns_instances(),
    check=lambda inst, *, dps: check_fro_condition(inst, dps=dps, which="2"),
    note="The spectrum of A' lies in (0, 1] (lambda_max <= ||A||_F), so 1 - ||I - A'||_2 = lambda_min(A) / ||A||_F "
         "> 0.",
))

register(Claim(
    id="mbag.ns_fro_condition_all_p",
    source=Source(PAPER, "Sec. IV-B, the condition read for each p"),
    statement="For every SPD A, A' = A / ||A||_F satisfies ||I - A'||_p < 1 for each of p = 1, 2 and inf",
    strategy=ns_instances(),
    check=lambda inst, *, dps: check_fro_condition(inst, dps=dps, which="all"),
    expected=FAILS,
    twin="mbag.ns_fro_condition",
    note="Fails in the 1-/inf-norm (equal for symmetric A) for A ~ v v^T + eps I with v dense: row i of I - A' sums "
         "to ~ 1 - v_i^2 + |v_i| (||v||_1 - |v_i|) > 1. The normalisation meets the condition through p = 2 only, "
         "which suffices ('for p = 1, 2, or inf').",
))


# ---------------------------------------------------------------------------------------------------------
# a fixed number of steps under-estimates both roots (our statement, behind errata 6)

def check_underestimate(inst: NSInstance, *, dps: int):
    n = inst.B.shape[0]
    A = _A(inst, dps)
    ns = mp_newton_schulz(A, dps=dps, iters=inst.N, normalize=True)
    sq, isq = _roots(A, dps)
    with mpmath.workdps(dps):
        r = mpmath.sqrt(ns.s)
        Xr, Yr = ns.X * r, ns.Y / r
    # kappa(A) <= 1e6: the mp roots carry ~ 1e6 10^-dps relative error, inside mp_tolerance (half the digits)
    evs = [E.loewner(sq, Xr, dps=dps, n=n, detail={"output": "sqrt(s) X_N <= A^{1/2}"}),
           E.loewner(isq, Yr, dps=dps, n=n, detail={"output": "Y_N / sqrt(s) <= A^{-1/2}"})]
    return _worst(evs, _detail(inst, ns) | {"N": inst.N})


register(Claim(
    id="mbag.ns_fixed_count_underestimates",
    source=Source("standard", "MBAG Eq. (5) with a fixed T_NS (derived here; errata 6)"),
    statement="For every SPD A and N >= 0, the Frobenius-normalised, rescaled iterates satisfy "
              "sqrt(s) X_N <= A^{1/2} and Y_N / sqrt(s) <= A^{-1/2} (Loewner), s = ||A||_F",
    strategy=ns_instances(steps=(0, 8)),
    check=check_underestimate,
    note="Per eigenvalue q of A/s in (0, 1], z = sqrt(q) y follows z -> z (3 - z^2)/2, which maps [0, 1] into itself "
         "and increases: z_N <= 1. So both outputs approach their roots from below, the smallest eigenvalues last.",
))
