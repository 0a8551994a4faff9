"""Tests of krad_ref.kradagrad: KrADagrad* (Alg. 1) and KrADagrad (alternating), under every array namespace.

Expected values come from the printed formulas, re-derived in this file with NumPy (first steps, tensors,
schedules) or mpmath at DPS = 40 on exactly converted float inputs (whole trajectories), never from the code
under test. Tolerances: u = unit roundoff, n = factor order, K = steps, kappa = condition number of the final
factor (from its mp eigenvalues); each assertion states its constant and why.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re

import mpmath
import numpy as np
import pytest

from krad_ref import algorithm, backend, validate
from krad_ref import kradagrad as K
from krad_ref.crossval import tolerance as CT
from proofs_check import mp as PM

DPS = 40
RULES = ("spectral", "frobenius", "trace", "code")


# ---------------------------------------------------------------------------------------------------------
# helpers

def asx(xp, a, dtype="float64"):
    return xp.asarray(np.asarray(a, dtype=dtype))


def np_of(X):
    return np.asarray(backend.to_numpy(X), dtype=np.float64)


def u_of(dtype) -> float:
    return backend.unit_roundoff(np.dtype(dtype))


def np_root(L, e):
    """L^e by numpy's eigh (eigenvalues clipped at 0): the hand reference for roots."""
    w, V = np.linalg.eigh((L + L.T) / 2)
    return (V * np.clip(w, 0, None) ** e) @ V.T


def unfold(G, k):
    """Mode-k unfolding, remaining modes row-major in increasing order (pairs with np.kron of their factors)."""
    return np.moveaxis(G, k, 0).reshape(G.shape[k], -1)


def kron_all(mats):
    out = np.ones((1, 1))
    for M in mats:
        out = np.kron(out, M)
    return out


def precondition(G, Ps):
    """G x_0 P_0 x_1 P_1 ... by einsum (independent of krad_ref.modes)."""
    letters = "abcdef"[: G.ndim]
    out = G
    for k, P in enumerate(Ps):
        src = letters
        dst = letters[:k] + "z" + letters[k + 1:]
        out = np.einsum(f"z{letters[k]},{src}->{dst}", P, out)
    return out


def run(alg, cfg, Gs, xp, dtype="float64", shape=None):
    shape = Gs[0].shape if shape is None else shape
    state = alg.init(shape, cfg, dtype=dtype, xp=xp)
    dirs, states = [], [state]
    for G in Gs:
        d, state = alg.update(asx(xp, G, dtype), state, cfg)
        dirs.append(d)
        states.append(state)
    return dirs, states


def assert_model_close(got, want, *, n, factors=(), steps=1, c=PM.DEFAULT_C):
    """got (a backend array) against a float64 hand reference, entrywise within tol * max|want| with
    tol = k c n u kappa (proofs_check.mp.tolerance): kappa the largest condition number of ``factors`` (float64
    eigvalsh, accurate for kappa << 1/u; 1 without factors), k = ``steps`` over which per-step errors add up.
    A root L^e (0 < e < 1) has condition <= kappa^(1-e) <= kappa, so kappa covers factors and directions."""
    kap = max([1.0] + [float(w[-1] / w[0]) for w in (np.linalg.eigvalsh(np.asarray(F, np.float64)) for F in factors)])
    tol = steps * PM.tolerance("float64", n=n, cond=kap, c=c)
    np.testing.assert_allclose(np_of(got), want, rtol=0, atol=tol * np.abs(want).max())


def assert_steps_within_crossval_model(alg_id, cfg, Gs, dirs, states, ref_steps):
    """Each step's factors, roots and direction against a float64 reference run, within the golden vectors'
    tolerance model (krad_ref.crossval.tolerance: c n u cond k, cond read from the reference: kappa_F of the
    factors, the root's conditioning, the Frechet gain of the direction). Both runs carry errors of that size."""
    shape = tuple(Gs[0].shape)
    tols = CT.step_tolerances(alg_id, cfg, shape, ref_steps, Gs, "float64", init_factors=[np.eye(d) for d in shape])
    for k, (ref, tol, d, s) in enumerate(zip(ref_steps, tols, dirs, states[1:]), 1):
        got = {"factors": tuple(np_of(F) for F in s.factors), "roots": tuple(np_of(P) for P in s.roots),
               "direction": np_of(d)}
        ratios = CT.compare(ref, got, tol)  # error / tolerance per quantity, worst mode
        assert all(r <= 1 for r in ratios.values() if r is not None), (k, ratios)


# mp ground truth from proofs_check.mp at DPS digits, bound to the names used below: exact float -> mp conversion,
# L^e of a PSD factor, ascending eigenvalues, and ||X - Y||_F / ||Y||_F with X converted exactly
to_mp = PM.to_mp
mp_root = functools.partial(PM.mp_psd_power, dps=DPS)
mp_eig = functools.partial(PM.mp_eigvalsh, dps=DPS)
mp_rel = functools.partial(PM.rel_error, dps=DPS)


def mp_t(L, A, rule):
    """t_k of Eq. (13) for the two rules the trajectories use (proofs_check.mp has the norms, not the rules)."""
    with PM.workdps(DPS):
        N = L * A
        if rule == "frobenius":
            return 1 + PM.mp_norm_fro(N)
        if rule == "spectral":
            return 1 + PM.mp_norm_2(N)
    raise ValueError(rule)


# ---------------------------------------------------------------------------------------------------------
# registry, init

def test_registered_records():
    assert algorithm.get("kradagrad_star") is K.kradagrad_star
    assert algorithm.get("kradagrad") is K.kradagrad_alt
    assert K.kradagrad_star.Config is K.KradagradStarConfig and K.kradagrad_star.State is K.KradagradStarState
    assert K.kradagrad_alt.Config is K.KradagradConfig and K.kradagrad_alt.State is K.KradagradState
    assert K.kradagrad_star.init is K.star_init and K.kradagrad_alt.update is K.alt_update


def test_init_defaults_per_variant(xp):
    s = K.star_init((2, 3), K.KradagradStarConfig(), xp=xp)
    assert int(s.count) == 0 and s.count.dtype == xp.int32 and s.count.ndim == 0
    np.testing.assert_array_equal(np_of(s.L), np.eye(2))
    np.testing.assert_array_equal(np_of(s.R), np.eye(3))
    assert s.L.dtype == xp.float64 and all(np.array_equal(np_of(P), np.eye(P.shape[0])) for P in s.roots)
    s = K.star_init(asx(xp, np.zeros((4,)), "float32"), K.KradagradStarConfig(variant="reference-code"))
    assert s.L.dtype == xp.float32 and len(s.factors) == 1
    np.testing.assert_array_equal(np_of(s.L), np.float32(1e12) * np.eye(4))  # I / matrix_eps, matrix_eps = 1e-12
    np.testing.assert_array_equal(np_of(s.roots[0]), np.eye(4))            # identity before the first root
    a = K.alt_init((2, 3, 4), K.KradagradConfig(variant="reference-code"), dtype="float32", xp=xp)
    assert [tuple(F.shape) for F in a.factors] == [(2, 2), (3, 3), (4, 4)] and a.factors[0].dtype == xp.float32
    np.testing.assert_array_equal(np_of(a.factors[2]), np.eye(4))  # the code's eps_override = 1
    assert a.pending.shape == (3,) and not bool(xp.any(a.pending))
    assert K.star_init((), K.KradagradStarConfig(), xp=xp).factors == ()


def test_resolved_defaults_paper_vs_reference_code():
    p, c = K.KradagradStarConfig().resolved(), K.KradagradStarConfig(variant="reference-code").resolved()
    assert (p.t_rule, p.init_scale, p.root_shift) == ("frobenius", 1.0, 0.0)
    assert (c.t_rule, c.init_scale, c.root_shift) == ("code", 1e12, 1e-8)
    assert K.KradagradStarConfig().exponent_for(2) == 0.25 and K.KradagradStarConfig().exponent_for(3) == 1 / 6
    assert K.KradagradStarConfig(exponent=0.5).exponent_for(3) == 0.5
    p, c = K.KradagradConfig().resolved(), K.KradagradConfig(variant="reference-code").resolved()
    assert (p.t_rule, p.damping, p.schedule, p.start_preconditioning_step) == ("spectral", 0.0, "alternate", 0)
    assert (c.t_rule, c.damping, c.schedule, c.start_preconditioning_step) == ("code", 1e-12, "sqrt", 1)
    # explicit values win over the variant's defaults
    assert K.KradagradConfig(variant="reference-code", t_rule="trace").resolved().t_rule == "trace"


# ---------------------------------------------------------------------------------------------------------
# KrADagrad*: first steps by hand

def star_by_hand(Gs, *, c=1.0, e=0.25, rule="frobenius", beta2=1.0):
    """Alg. 1 with the intended (L, R) update (errata 1), written out for matrices."""
    m, n = Gs[0].shape
    L, R = c * np.eye(m), c * np.eye(n)
    dirs = []
    for G in Gs:
        L, R = L / beta2, R / beta2
        AL, AR = G @ G.T, G.T @ G
        if rule == "frobenius":
            tL, tR = 1 + np.linalg.norm(AL @ L, "fro"), 1 + np.linalg.norm(AR @ R, "fro")
        else:  # the code's d (1 + tr(A L))
            tL, tR = m * (1 + np.trace(AL @ L)), n * (1 + np.trace(AR @ R))
        L, R = L - L @ AL @ L / tL, R - R @ AR @ R / tR
        dirs.append(np_root(L, e) @ G @ np_root(R, e))
    return dirs, L, R


def test_star_paper_first_steps_by_hand(xp):
    rng = np.random.default_rng(0)
    Gs = [rng.standard_normal((2, 3)) for _ in range(3)]
    dirs, states = run(K.kradagrad_star, K.KradagradStarConfig(), Gs, xp)
    want_dirs, L, R = star_by_hand(Gs)
    # two float64 evaluations of the same formulas in different orders: each step adds O(n u kappa), n <= 3,
    # kappa of the final factors (< 30); roots L^{1/4} add ~ n u kappa^{3/4}: k c n u kappa, k = 3 steps
    tol = dict(n=3, factors=(L, R), steps=3)
    assert_model_close(states[-1].L, L, **tol)
    assert_model_close(states[-1].R, R, **tol)
    for d, w in zip(dirs, want_dirs):
        assert d.dtype == xp.float64 and tuple(d.shape) == (2, 3)
        assert_model_close(d, w, **tol)
    assert [int(s.count) for s in states] == [0, 1, 2, 3]


def test_star_beta2_decay_one_step_by_hand(xp):
    G = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]])
    _, states = run(K.kradagrad_star, K.KradagradStarConfig(beta2=0.8), [G, G], xp)
    _, L, R = star_by_hand([G, G], beta2=0.8)
    # same formulas, two orders: k c n u kappa with n = 3, k = 2 steps (the decay 1/0.8 scales, cond 1)
    assert_model_close(states[-1].L, L, n=3, factors=(L, R), steps=2)
    assert_model_close(states[-1].R, R, n=3, factors=(L, R), steps=2)


def test_star_reference_code_steps_by_hand_and_root_cache(xp):
    """L_0 = 1e12 I, t = d (1 + tr(G G^T L)), roots eigh(L + 1e-8 I) clamped, every root_freq = 2 steps (k = 2, 4),
    identity before; steps k < start = 2 return G itself."""
    rng = np.random.default_rng(1)
    Gs = [rng.standard_normal((2, 3)) for _ in range(4)]
    cfg = K.KradagradStarConfig(variant="reference-code", root_freq=2, start_preconditioning_step=2)
    dirs, states = run(K.kradagrad_star, cfg, Gs, xp)
    _, L2, R2 = star_by_hand(Gs[:2], c=1e12, rule="code")
    _, L4, R4 = star_by_hand(Gs, c=1e12, rule="code")
    np.testing.assert_array_equal(np_of(dirs[0]), Gs[0])  # k = 1 < start: the raw gradient
    for P in states[1].roots:
        np.testing.assert_array_equal(np_of(P), np.eye(P.shape[0]))  # no root step yet: identity
    # L ~ 1e12 with t ~ d 1e12 tr(A): relative update error O(n u kappa) per step, n = 3, k = steps so far
    tol = dict(n=3, factors=(L2, R2), steps=2)
    assert_model_close(states[2].L, L2, **tol)
    assert_model_close(states[2].R, R2, **tol)
    PL = np_root(L2 + 1e-8 * np.eye(2), 0.25)
    PR = np_root(R2 + 1e-8 * np.eye(3), 0.25)
    assert_model_close(states[2].roots[0], PL, **tol)
    assert_model_close(dirs[1], PL @ Gs[1] @ PR, **tol)
    # k = 3: no root step: the cached k = 2 roots are used, the factors move on
    for a, b in zip(states[3].roots, states[2].roots):
        np.testing.assert_array_equal(np_of(a), np_of(b))
    assert not np.array_equal(np_of(states[3].L), np_of(states[2].L))
    assert_model_close(dirs[2], PL @ Gs[2] @ PR, **tol)
    tol = dict(n=3, factors=(L4, R4), steps=4)
    assert_model_close(states[4].L, L4, **tol)
    assert_model_close(dirs[3], np_root(L4 + 1e-8 * np.eye(2), 0.25) @ Gs[3] @ np_root(R4 + 1e-8 * np.eye(3), 0.25),
                       **tol)


def test_star_update_freq_skips_statistics(xp):
    rng = np.random.default_rng(2)
    Gs = [rng.standard_normal((2, 2)) for _ in range(4)]
    _, states = run(K.kradagrad_star, K.KradagradStarConfig(update_freq=2), Gs, xp)
    np.testing.assert_array_equal(np_of(states[1].L), np.eye(2))  # k = 1: no statistics step
    _, L, _ = star_by_hand([Gs[1], Gs[3]])                       # statistics at k = 2 and 4 only
    assert_model_close(states[4].L, L, n=2, factors=(L,), steps=2)  # two statistics steps of order 2


# ---------------------------------------------------------------------------------------------------------
# KrADagrad*: degenerate-case bridges (errata 3, 4)

@pytest.mark.parametrize("rule", RULES)
def test_star_m1_closed_forms_errata_4(xp, rule):
    """m = 1: the left factor is 1 x 1 and every rule gives t = 1 + L ||g||^2 (d = 1), so
    L_k = 1 / (1/L_0 + sum ||g_i||^2) exactly. The right factor (n x n, rank-1 steps g g^T) is the exact
    Sherman-Morrison inverse (I / c + sum g g^T)^{-1} only for t = 1 + tau (the trace rule); the code rule
    t = n (1 + tau) gives R_k^{-1} = R^{-1} + g g^T / (n (1 + tau) - tau) (errata 3); spectral/Frobenius
    (t = 1 + ||g|| ||R g|| >= 1 + tau) give R_k >= Sherman-Morrison."""
    rng = np.random.default_rng(3)
    n, c, steps = 4, 2.0, 6
    Gs = [rng.standard_normal((1, n)) for _ in range(steps)]
    _, states = run(K.kradagrad_star, K.KradagradStarConfig(t_rule=rule, init_scale=c), Gs, xp)
    u = u_of("float64")
    want_L = 1.0 / (1.0 / c + sum(float((g @ g.T)[0, 0]) for g in Gs))
    # a scalar recursion of `steps` steps, each a few roundings: 8 steps u
    assert float(np_of(states[-1].L)[0, 0]) == pytest.approx(want_L, rel=8 * steps * u, abs=0)
    sm = np.linalg.inv(np.eye(n) / c + sum(g.T @ g for g in Gs))
    R = np_of(states[-1].R)
    # each step's update L - L A L / t has absolute error <~ 2 n u ||R_{k-1}||_2 <= 2 n u ||R_0||_2 (Cor. 3.3);
    # summed over the steps and relative to max|R_K|: 2 K n u c / max|sm| (measured 4 u against ~50 u);
    # numpy's inverse in the reference adds n u kappa(sm) of its own
    tol = 2 * steps * n * u * c / np.abs(sm).max() + n * u * np.linalg.cond(sm)
    if rule == "trace":
        np.testing.assert_allclose(R, sm, rtol=0, atol=tol * np.abs(sm).max())
    elif rule == "code":
        Binv = np.eye(n) / c
        for g in Gs:
            Rk = np.linalg.inv(Binv)
            tau = float((g @ Rk @ g.T)[0, 0])
            Binv = Binv + g.T @ g / (n * (1 + tau) - tau)
        np.testing.assert_allclose(R, np.linalg.inv(Binv), rtol=0, atol=tol * np.abs(sm).max())
    else:
        w = np.linalg.eigvalsh(R - sm)
        assert w.min() >= -tol * np.abs(sm).max() and w.max() > 1e-6


def test_star_order_1_trace_rule_is_full_matrix_adagrad(xp):
    """A vector parameter: one factor, exponent alpha / 1 = 1/2, trace rule (exact Sherman-Morrison):
    direction_k = (I / c + sum_{i<=k} g_i g_i^T)^{-1/2} g_k, full-matrix AdaGrad with delta = 1/c (Sec. 2.3)."""
    rng = np.random.default_rng(4)
    n, c = 5, 4.0
    Gs = [rng.standard_normal(n) for _ in range(5)]
    dirs, _ = run(K.kradagrad_star, K.KradagradStarConfig(t_rule="trace", init_scale=c), Gs, xp)
    S = np.eye(n) / c
    for g, d in zip(Gs, dirs):
        S = S + np.outer(g, g)
        want = np_root(np.linalg.inv(S), 0.5) @ g
        kap = np.linalg.cond(S)
        # both sides carry ~ n u kappa(S): the reference through numpy's inverse, the code through its
        # cancelling updates; the square root does not amplify it. 4 n u kappa (measured <= 65 u vs ~500-1000 u)
        np.testing.assert_allclose(np_of(d), want, rtol=0, atol=4 * n * u_of("float64") * kap * np.abs(want).max())


# ---------------------------------------------------------------------------------------------------------
# Cor. 3.3 along trajectories

@pytest.mark.parametrize("alg_name", ["kradagrad_star", "kradagrad"])
@pytest.mark.parametrize("rule", RULES)
def test_cor_3_3_along_trajectories(xp, alg_name, rule):
    """0 < L_k <= L_{k-1} for every factor after every step (beta2 = 1), float64 eigenvalues."""
    alg = algorithm.get(alg_name)
    rng = np.random.default_rng(6)
    Gs = [rng.standard_normal((3, 4)) * (4.0 if i % 4 == 0 else 1.0) for i in range(12)]
    _, states = run(alg, alg.Config(t_rule=rule), Gs, xp)
    u = u_of("float64")
    for prev, new in zip(states, states[1:]):
        for Fp, Fn in zip(prev.factors, new.factors):
            a, b = np_of(Fp), np_of(Fn)
            wb = np.linalg.eigvalsh(b)
            assert wb.min() > 0
            # update error ~ d u ||L_{k-1}||, far below the smallest eigenvalue (>~ 1e-3 here)
            assert np.linalg.eigvalsh(a - b).min() >= -16 * a.shape[0] * u * np.abs(a).max()


# ---------------------------------------------------------------------------------------------------------
# order-3 tensors against a matricized reference

def test_star_order_3_against_matricized(xp):
    rng = np.random.default_rng(7)
    shape = (2, 3, 4)
    Gs = [rng.standard_normal(shape) for _ in range(3)]
    cfg = K.KradagradStarConfig()
    dirs, states = run(K.kradagrad_star, cfg, Gs, xp)
    Ls, ref = [np.eye(d) for d in shape], []
    for G in Gs:
        new = []
        for k, L in enumerate(Ls):
            A = unfold(G, k) @ unfold(G, k).T
            t = 1 + np.linalg.norm(A @ L, "fro")
            new.append(L - L @ A @ L / t)
        Ls = new
        roots = tuple(np_root(L, 0.5 / 3) for L in Ls)  # exponent alpha / p = 1/6
        ref.append({"factors": tuple(Ls), "roots": roots, "direction": precondition(G, roots)})
    assert_steps_within_crossval_model("kradagrad_star", cfg, Gs, dirs, states, ref)


def test_alt_order_3_against_matricized(xp):
    rng = np.random.default_rng(8)
    shape = (2, 3, 4)
    Gs = [rng.standard_normal(shape) for _ in range(5)]
    cfg = K.KradagradConfig()
    dirs, states = run(K.kradagrad_alt, cfg, Gs, xp)
    Ls, ref = [np.eye(d) for d in shape], []
    for s, G in enumerate(Gs):
        k = s % 3  # strict alternation over the modes
        rest = [Ls[j] for j in range(3) if j != k]
        A = unfold(G, k) @ kron_all(rest) @ unfold(G, k).T  # G_(k) (kron of the other factors) G_(k)^T
        t = 1 + np.linalg.norm(Ls[k] @ A, 2)
        Ls[k] = Ls[k] - Ls[k] @ A @ Ls[k] / t
        roots = tuple(np_root(L, 0.5) for L in Ls)
        ref.append({"factors": tuple(Ls), "roots": roots, "direction": precondition(G, roots)})
    assert_steps_within_crossval_model("kradagrad", cfg, Gs, dirs, states, ref)


# ---------------------------------------------------------------------------------------------------------
# KrADagrad (alternating): schedules and first steps

def test_alternating_mode_schedules_by_hand():
    # paper reading (errata 21): L, R, L, R over statistics steps
    assert [K.alternating_mode(s, (4, 4)) for s in range(6)] == [0, 1, 0, 1, 0, 1]
    assert [K.alternating_mode(s, (2, 3, 4), update_freq=2) for s in (0, 2, 4, 6, 8)] == [0, 1, 2, 0, 1]
    # code: s < p^2: s mod p; else r = isqrt(s), x = s - r^2: x if x < p else i* (first largest dim).
    # (4, 4): i* = 0, R is updated at s = 1, 3 and s = r^2 + 1 = 5, 10, 17.
    sq = [K.alternating_mode(s, (4, 4), "sqrt") for s in range(18)]
    assert [s for s, i in enumerate(sq) if i == 1] == [1, 3, 5, 10, 17]
    # (3, 5): i* = 1 (the larger dim): L is updated only at s = 0, 2, 4, 9, 16 in [0, 18)
    sq = [K.alternating_mode(s, (3, 5), "sqrt") for s in range(18)]
    assert [s for s, i in enumerate(sq) if i == 0] == [0, 2, 4, 9, 16]
    # order 3, (2, 6, 3): i* = 1; s = 9..15: r = 3, x = 0..6 -> 0, 1, 2, then i* = 1
    assert [K.alternating_mode(s, (2, 6, 3), "sqrt") for s in range(9, 16)] == [0, 1, 2, 1, 1, 1, 1]
    with pytest.raises(ValueError, match="schedule"):
        K.alternating_mode(0, (2, 2), "random")


@pytest.mark.parametrize("variant", ["paper", "reference-code"])
def test_alt_updates_follow_the_schedule(xp, variant):
    rng = np.random.default_rng(9)
    shape = (3, 5)
    Gs = [rng.standard_normal(shape) for _ in range(12)]
    _, states = run(K.kradagrad_alt, K.KradagradConfig(variant=variant), Gs, xp)
    changed = []
    for prev, new in zip(states, states[1:]):
        diff = [not np.array_equal(np_of(a), np_of(b)) for a, b in zip(prev.factors, new.factors)]
        assert sum(diff) == 1  # exactly one factor per step
        changed.append(diff.index(True))
    schedule = "alternate" if variant == "paper" else "sqrt"
    assert changed == [K.alternating_mode(s, shape, schedule) for s in range(12)]


def test_alt_paper_first_two_steps_by_hand(xp):
    """s = 0: L_1 = I - A / (1 + ||A||_2), A = G_1 G_1^T (R = I); direction L_1^{1/2} G_1 (root of R is I).
    s = 1: R_1 = I - A / (1 + ||A||_2), A = G_2^T L_1 G_2; direction L_1^{1/2} G_2 R_1^{1/2}."""
    G1 = np.array([[1.0, 0.5, -1.0], [0.0, 2.0, 1.0]])
    G2 = np.array([[0.5, -1.0, 0.0], [1.0, 1.0, 1.0]])
    dirs, states = run(K.kradagrad_alt, K.KradagradConfig(), [G1, G2], xp)
    A = G1 @ G1.T
    L1 = np.eye(2) - A / (1 + np.linalg.norm(A, 2))
    # one step, n <= 3: c n u kappa(L1); then one more with R1 (k = 2); roots L^{1/2} have cond <= kappa^{1/2}
    assert_model_close(states[1].L, L1, n=3, factors=(L1,))
    np.testing.assert_array_equal(np_of(states[1].R), np.eye(3))
    assert_model_close(dirs[0], np_root(L1, 0.5) @ G1, n=3, factors=(L1,))
    A = G2.T @ L1 @ G2
    R1 = np.eye(3) - A / (1 + np.linalg.norm(A, 2))
    assert_model_close(states[2].R, R1, n=3, factors=(L1, R1), steps=2)
    assert_model_close(dirs[1], np_root(L1, 0.5) @ G2 @ np_root(R1, 0.5), n=3, factors=(L1, R1), steps=2)


def test_alt_reference_code_steps_by_hand(xp):
    """The code (kradagrad-code.md 5.2): G-hat = G preconditioned by the other modes' current roots,
    L' = L - eps L^2 (stored), t = 1 + ||L' A||_F, L <- L' - L' A L' / t, root eigh(L + 1e-8 I)^{1/2};
    s = 0 < start = 1 returns G-hat; from s = 1 the direction is G-hat x_ix P_ix."""
    eps = 1e-3
    rng = np.random.default_rng(10)
    Gs = [rng.standard_normal((2, 3)) for _ in range(3)]
    dirs, states = run(K.kradagrad_alt, K.KradagradConfig(variant="reference-code", damping=eps), Gs, xp)
    root = lambda X: np_root(X + 1e-8 * np.eye(X.shape[0]), 0.5)  # noqa: E731

    def upd(F, A):
        Fd = F - eps * F @ F
        return Fd - Fd @ A @ Fd / (1 + np.linalg.norm(Fd @ A, "fro"))

    L, R = np.eye(2), np.eye(3)
    PL, PR = np.eye(2), np.eye(3)
    # s = 0 (mode 0): G-hat = G PR = G
    Gh = Gs[0] @ PR
    L = upd(L, Gh @ Gh.T)
    PL = root(L)
    want0 = Gh
    # s = 1 (mode 1): G-hat = PL G
    Gh = PL @ Gs[1]
    R = upd(R, Gh.T @ Gh)
    PR = root(R)
    want1 = Gh @ PR
    # s = 2 (mode 0): G-hat = G PR
    Gh = Gs[2] @ PR
    L = upd(L, Gh @ Gh.T)
    PL = root(L)
    want2 = PL @ Gh
    # three steps of order <= 3 (damping, update, root): k c n u kappa of the final factors
    tol = dict(n=3, factors=(L, R), steps=3)
    for d, w in zip(dirs, (want0, want1, want2)):
        assert_model_close(d, w, **tol)
    assert_model_close(states[-1].L, L, **tol)
    assert_model_close(states[-1].R, R, **tol)


def test_alt_root_freq_recomputes_pending_roots_only_on_root_steps(xp):
    rng = np.random.default_rng(11)
    Gs = [rng.standard_normal((2, 3)) for _ in range(4)]
    _, states = run(K.kradagrad_alt, K.KradagradConfig(root_freq=3), Gs, xp)
    # s = 0: L updated and rooted (0 % 3 == 0); s = 1: R updated, root pending; s = 2: L updated, pending;
    # s = 3: R updated, and both pending roots recomputed
    # the root of the same float factor by two eigh routes: c n u kappa^{1/2} <= c n u kappa, n = 2
    assert_model_close(states[1].roots[0], np_root(np_of(states[1].L), 0.5), n=2, factors=(np_of(states[1].L),))
    assert [bool(b) for b in np_of(states[2].pending)] == [False, True]
    assert [bool(b) for b in np_of(states[3].pending)] == [True, True]
    np.testing.assert_array_equal(np_of(states[3].roots[1]), np.eye(3))
    assert [bool(b) for b in np_of(states[4].pending)] == [False, False]
    for P, F in zip(states[4].roots, states[4].factors):
        assert_model_close(P, np_root(np_of(F), 0.5), n=F.shape[0], factors=(np_of(F),))  # as above


# ---------------------------------------------------------------------------------------------------------
# trajectories against mpmath, float64 and float32

def mp_star(Gs, e=0.25):
    m, n = Gs[0].shape
    with mpmath.workdps(DPS):
        L, R = mpmath.eye(m), mpmath.eye(n)
        dirs = []
        for G in Gs:
            Gm = to_mp(G)
            AL, AR = Gm * Gm.T, Gm.T * Gm
            tL, tR = mp_t(L, AL, "frobenius"), mp_t(R, AR, "frobenius")
            L, R = L - L * AL * L / tL, R - R * AR * R / tR
            dirs.append(mp_root(L, e) * Gm * mp_root(R, e))
        return dirs, [L, R]


def mp_alt(Gs):
    m, n = Gs[0].shape
    with mpmath.workdps(DPS):
        L, R = mpmath.eye(m), mpmath.eye(n)
        PL, PR = mpmath.eye(m), mpmath.eye(n)
        dirs = []
        for s, G in enumerate(Gs):
            Gm = to_mp(G)
            if s % 2 == 0:
                A = Gm * R * Gm.T
                L = L - L * A * L / mp_t(L, A, "spectral")
                PL = mp_root(L, 0.5)
            else:
                A = Gm.T * L * Gm
                R = R - R * A * R / mp_t(R, A, "spectral")
                PR = mp_root(R, 0.5)
            dirs.append(PL * Gm * PR)
        return dirs, [L, R]


@pytest.mark.parametrize("spread", [1.0, 100.0])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("alg_name", ["kradagrad_star", "kradagrad"])
def test_trajectory_against_mpmath(xp, dtype, alg_name, spread):
    """Eight steps from the same float gradients (converted exactly; rows scaled by diag(spread, 1, 1/spread)
    so the factors reach kappa ~ 2e4 at spread = 100). Error model: each step adds O(n u) relative error to a
    factor (two GEMMs and a subtraction); the subtraction, and the other factor's Gram in KrADagrad, amplify
    earlier errors by at most kappa_max = the largest condition number among the final factors; roots have
    relative condition <= kappa^{1-e} <= kappa. Tolerance K n u kappa_max (constant 1): measured errors sit
    20-40x below it in both dtypes (e.g. spread = 100, float64: directions 2e4 u against 7e5 u)."""
    alg = algorithm.get(alg_name)
    rng = np.random.default_rng(12)
    steps, shape = 8, (3, 4)
    D = np.diag([spread, 1.0, 1.0 / spread])
    Gs = [(D @ rng.standard_normal(shape)).astype(dtype) for _ in range(steps)]
    dirs, states = run(alg, alg.Config(), Gs, xp, dtype=dtype)
    mp_dirs, mp_factors = (mp_star if alg_name == "kradagrad_star" else mp_alt)([g.astype(np.float64) for g in Gs])
    u = u_of(dtype)
    n = max(shape)
    kap = max(float(mp_eig(Fm)[-1] / mp_eig(Fm)[0]) for Fm in mp_factors)
    tol = steps * n * u * kap
    for F, Fm in zip(states[-1].factors, mp_factors):
        assert F.dtype == (xp.float32 if dtype == "float32" else xp.float64)
        assert mp_rel(F, Fm) <= tol
    for d, dm in zip(dirs, mp_dirs):
        assert mp_rel(d, dm) <= tol


# ---------------------------------------------------------------------------------------------------------
# root methods and root dtype

def test_iterative_roots_match_eigh(xp):
    rng = np.random.default_rng(13)
    Gs = [rng.standard_normal((3, 4)) for _ in range(5)]
    for alg, it, ei in ((K.kradagrad_star, K.KradagradStarConfig(root_method="iterative"), K.KradagradStarConfig()),
                        (K.kradagrad_alt, K.KradagradConfig(root_method="iterative"), K.KradagradConfig())):
        d_it, _ = run(alg, it, Gs, xp)
        d_ei, s_ei = run(alg, ei, Gs, xp)
        # both accepted on residual <= 4 p (n + 1) u; forward error ~ n u kappa^{1-e} <= n u kappa per root,
        # accumulated over the k = 5 steps (kappa of the final factors, n = 4; c = 4 p = 16 from the residual test)
        for a, b in zip(d_it, d_ei):
            assert_model_close(a, np_of(b), n=4, factors=tuple(np_of(F) for F in s_ei[-1].factors), steps=5, c=16.0)


def test_root_dtype_float64_for_float32_statistics(xp):
    rng = np.random.default_rng(14)
    Gs = [rng.standard_normal((3, 3)).astype(np.float32) for _ in range(3)]
    _, states = run(K.kradagrad_star, K.KradagradStarConfig(root_dtype="float64"), Gs, xp, dtype="float32")
    for F, P in zip(states[-1].factors, states[-1].roots):
        assert F.dtype == xp.float32 and P.dtype == xp.float32
        want = np_root(np_of(F), 0.25).astype(np.float32)  # the float32 factor's root in float64, rounded once
        np.testing.assert_allclose(np_of(P), want, rtol=4 * u_of("float32"), atol=4 * u_of("float32"))


# ---------------------------------------------------------------------------------------------------------
# degenerate gradients and shapes

@pytest.mark.parametrize("variant", ["paper", "reference-code"])
def test_zero_gradient_leaves_factors_unchanged(xp, variant):
    rng = np.random.default_rng(15)
    for alg, cfg in ((K.kradagrad_star, K.KradagradStarConfig(variant=variant)),
                     (K.kradagrad_alt, K.KradagradConfig(variant=variant, damping=0.0))):
        _, states = run(alg, cfg, [rng.standard_normal((2, 3))], xp)
        d, new = alg.update(asx(xp, np.zeros((2, 3))), states[-1], cfg)
        for a, b in zip(states[-1].factors, new.factors):
            np.testing.assert_array_equal(np_of(a), np_of(b))
        np.testing.assert_array_equal(np_of(d), np.zeros((2, 3)))


def test_scalar_parameter_direction_is_the_gradient(xp):
    for alg in (K.kradagrad_star, K.kradagrad_alt):
        state = alg.init((), alg.Config(), xp=xp)
        g = asx(xp, 3.5)
        d, state = alg.update(g, state, alg.Config())
        assert float(d) == 3.5 and int(state.count) == 1 and d is not g


# ---------------------------------------------------------------------------------------------------------
# bad inputs, immutability

@pytest.mark.parametrize(
    "Config, kwargs, exc, match",
    [
        (K.KradagradStarConfig, {"variant": "torch"}, ValueError, "variant"),
        (K.KradagradStarConfig, {"t_rule": "l1"}, ValueError, "t_rule"),
        (K.KradagradStarConfig, {"alpha": 0.0}, ValueError, "alpha"),
        (K.KradagradStarConfig, {"alpha": "half"}, TypeError, "alpha"),
        (K.KradagradStarConfig, {"exponent": -0.25}, ValueError, "exponent"),
        (K.KradagradStarConfig, {"beta2": 0.0}, ValueError, "beta2"),
        (K.KradagradStarConfig, {"beta2": 1.5}, ValueError, "beta2"),
        (K.KradagradStarConfig, {"damping": -1e-3}, ValueError, "damping"),
        (K.KradagradStarConfig, {"damping": 0.5, "init_scale": 2.0}, ValueError, "damping: .*errata 13"),
        (K.KradagradStarConfig, {"variant": "reference-code", "damping": 1e-12}, ValueError, "damping: .*errata 13"),
        (K.KradagradStarConfig, {"init_scale": 0.0}, ValueError, "init_scale"),
        (K.KradagradStarConfig, {"update_freq": 0}, ValueError, "update_freq"),
        (K.KradagradStarConfig, {"update_freq": 1.5}, TypeError, "update_freq"),
        (K.KradagradStarConfig, {"root_freq": 0}, ValueError, "root_freq"),
        (K.KradagradStarConfig, {"start_preconditioning_step": -1}, ValueError, "start_preconditioning_step"),
        (K.KradagradStarConfig, {"root_method": "svd"}, ValueError, "root_method"),
        (K.KradagradStarConfig, {"root_dtype": "float16"}, ValueError, "root_dtype"),
        (K.KradagradStarConfig, {"root_method": "iterative", "exponent": 0.3}, ValueError, "exponent"),
        (K.KradagradStarConfig, {"root_shift": -1.0}, ValueError, "root_shift"),
        (K.KradagradConfig, {"schedule": "random"}, ValueError, "schedule"),
        (K.KradagradConfig, {"damping": 1.0}, ValueError, "damping: .*errata 13"),
        (K.KradagradConfig, {"exponent": 0.0}, ValueError, "exponent"),
        (K.KradagradConfig, {"start_preconditioning_step": -2}, ValueError, "start_preconditioning_step"),
        (K.KradagradConfig, {"root_method": "iterative", "exponent": 0.4}, ValueError, "exponent"),
        (K.KradagradConfig, {"matrix_eps": 0.0}, ValueError, "matrix_eps"),
        (K.KradagradStarConfig, {"root_max_iter": 0}, ValueError, "root_max_iter: expected an integer >= 1"),
        (K.KradagradStarConfig, {"exponent": 0.0}, ValueError, "exponent: expected a value > 0.0"),
        (K.KradagradStarConfig, {"init_scale": -1.0}, ValueError, "init_scale: expected a value > 0.0"),
        (K.KradagradConfig, {"init_scale": 0.0}, ValueError, "init_scale: expected a value > 0.0, got 0.0"),
        (K.KradagradConfig, {"damping": -1e-3}, ValueError, "damping: expected a value >= 0.0"),
        (K.KradagradConfig, {"root_method": "iterative", "exponent": 1.5}, ValueError,
         "exponent: root_method='iterative' needs exponent = 1/q"),
        (K.KradagradStarConfig, {"damping": 0.5, "init_scale": 4.0}, ValueError,
         r"damping: .* = 0\.5 \* 4 = 2 >= 1 "),
    ],
)
def test_bad_config_values(Config, kwargs, exc, match):
    # anchored: the message opens with the field's name, as every validation message does
    with pytest.raises(exc, match="^" + match):
        Config(**kwargs)


def test_bad_init_arguments(xp):
    with pytest.raises(ValueError, match="shape_or_array"):
        K.star_init((0, 3), K.KradagradStarConfig(), xp=xp)
    with pytest.raises(TypeError, match="dtype"):
        K.star_init((2, 3), K.KradagradStarConfig(), dtype=xp.int32, xp=xp)
    with pytest.raises(TypeError, match="config: expected KradagradStarConfig"):
        K.star_init((2, 3), K.KradagradConfig(), xp=xp)
    with pytest.raises(TypeError, match="config: expected KradagradConfig"):
        K.alt_init((2, 3), K.KradagradStarConfig(), xp=xp)
    with pytest.raises(ValueError, match="exponent"):  # alpha / p = 0.3 / 2 is not 1/q
        K.star_init((2, 3), K.KradagradStarConfig(alpha=0.3, root_method="iterative"), xp=xp)


@pytest.mark.parametrize("alg_name", ["kradagrad_star", "kradagrad"])
def test_bad_update_inputs(xp, alg_name):
    alg = algorithm.get(alg_name)
    other = K.kradagrad_alt if alg is K.kradagrad_star else K.kradagrad_star
    cfg = alg.Config()
    state = alg.init((2, 3), cfg, xp=xp)
    G = asx(xp, np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"grad: shape \(3, 2\) does not match"):
        alg.update(asx(xp, np.ones((3, 2))), state, cfg)
    with pytest.raises(TypeError, match="grad: dtype float32 does not match"):
        alg.update(asx(xp, np.ones((2, 3)), "float32"), state, cfg)
    with pytest.raises(ValueError, match="grad: expected finite values"):
        alg.update(asx(xp, [[1.0, np.nan, 0.0], [0.0, 0.0, 0.0]]), state, cfg)
    with pytest.raises(TypeError, match="grad: expected a real floating array"):
        alg.update(xp.ones((2, 3), dtype=xp.int32), state, cfg)
    with pytest.raises(TypeError, match="state: expected"):
        alg.update(G, other.init((2, 3), other.Config(), xp=xp), cfg)
    with pytest.raises(TypeError, match="config: expected"):
        alg.update(G, state, other.Config())
    if backend.is_strict(xp):
        with pytest.raises(TypeError, match="grad: array library"):
            alg.update(np.ones((2, 3)), state, cfg)


@pytest.mark.parametrize("variant", ["paper", "reference-code"])
@pytest.mark.parametrize("alg_name", ["kradagrad_star", "kradagrad"])
def test_update_does_not_mutate_its_inputs(xp, alg_name, variant):
    alg = algorithm.get(alg_name)
    cfg = alg.Config(variant=variant)
    rng = np.random.default_rng(16)
    _, states = run(alg, cfg, [rng.standard_normal((2, 3, 2)) for _ in range(2)], xp)
    state = states[-1]
    G_np = rng.standard_normal((2, 3, 2))
    G = asx(xp, G_np)
    before = [np_of(a) for a in (state.count, *state.factors, *state.roots)]
    _, new = alg.update(G, state, cfg)
    assert new is not state and isinstance(new, alg.State)
    np.testing.assert_array_equal(np_of(G), G_np)
    for a, b in zip(before, (state.count, *state.factors, *state.roots)):
        np.testing.assert_array_equal(np_of(b), a)
    assert int(new.count) == int(state.count) + 1


def test_config_is_frozen_and_replace_keeps_none_defaults():
    cfg = K.KradagradStarConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.alpha = 1.0  # type: ignore[misc]
    code = dataclasses.replace(cfg, variant="reference-code")
    assert code.t_rule is None and code.resolved().t_rule == "code"
    assert math.isclose(code.resolved().init_scale, 1e12)


# ---------------------------------------------------------------------------------------------------------
# validation edges, resolved defaults, error messages (each assertion pins the exact boundary or text)

def test_validation_edges_accept_what_the_bounds_allow():
    # start_preconditioning_step = 0 is allowed (minimum 0); exponent = 1 = 1/1 is an iterative exponent (q = 1)
    assert K.KradagradStarConfig(start_preconditioning_step=0).start_preconditioning_step == 0
    assert K.KradagradStarConfig(root_method="iterative", exponent=1.0).exponent == 1.0
    assert K.KradagradConfig(root_method="iterative", exponent=1.0).exponent == 1.0
    # an eigh config never needs exponent = 1/q: alpha / 2 = 0.15 is fine for the default root method
    s = K.star_init((2, 3), K.KradagradStarConfig(alpha=0.3))
    np.testing.assert_array_equal(s.factors[0], np.eye(2))


def test_resolved_keeps_explicit_fields():
    # one field left None forces the replace path; the explicit ones must survive it
    a = K.KradagradConfig(schedule="sqrt", start_preconditioning_step=5, root_shift=1e-3).resolved()
    assert (a.schedule, a.start_preconditioning_step, a.root_shift, a.t_rule) == ("sqrt", 5, 1e-3, "spectral")
    s = K.KradagradStarConfig(root_shift=1e-3).resolved()
    assert (s.root_shift, s.t_rule, s.init_scale) == (1e-3, "frobenius", 1.0)


def test_alternating_mode_errors_name_the_argument():
    with pytest.raises(ValueError, match=r"^shape: a 0-d parameter has no factors to update$"):
        K.alternating_mode(0, ())
    with pytest.raises(ValueError, match=r"^step: expected an integer >= 0, got -1$"):
        K.alternating_mode(-1, (2, 3))
    with pytest.raises(ValueError, match=r"^schedule: expected one of"):
        K.alternating_mode(0, (2, 3), schedule="random")
    with pytest.raises(ValueError, match=r"^update_freq: expected an integer >= 1, got 0$"):
        K.alternating_mode(0, (2, 3), update_freq=0)


def test_init_and_update_type_errors_name_the_wrong_type():
    with pytest.raises(TypeError, match=r"^config: expected KradagradStarConfig, got KradagradConfig$"):
        K.star_init((2, 3), K.KradagradConfig())
    with pytest.raises(TypeError, match=r"^config: expected KradagradConfig, got KradagradStarConfig$"):
        K.alt_init((2, 3), K.KradagradStarConfig())
    cfg = K.KradagradStarConfig()
    state = K.star_init((2, 3), cfg)
    with pytest.raises(TypeError, match=r"^config: expected KradagradStarConfig for 'kradagrad_star', got str$"):
        K.star_update(np.ones((2, 3)), state, "paper")
    with pytest.raises(TypeError, match=r"^state: expected KradagradStarState for 'kradagrad_star', got tuple$"):
        K.star_update(np.ones((2, 3)), tuple(state), cfg)


def test_update_names_the_state_field_that_disagrees():
    cfg = K.KradagradStarConfig()
    s = K.star_init((2, 3), cfg)
    G = np.ones((2, 3))
    msg = r"^state: expected tuples of factors and roots of one length, got 2 and {}$"
    with pytest.raises(ValueError, match=msg.format(1)):
        K.star_update(G, s._replace(roots=s.roots[:1]), cfg)
    with pytest.raises(ValueError, match=msg.format(2)):  # a list is not a tuple, even of the right length
        K.star_update(G, s._replace(roots=list(s.roots)), cfg)
    # the grad's shape against the factors': the order differs -> all factors; one mode differs -> that factor
    shape_msg = r"^grad: shape {} does not match the state's parameter shape \(2, 3\) \(from state\.factors{}\)$"
    with pytest.raises(ValueError, match=shape_msg.format(r"\(2, 3, 1\)", "")):
        K.star_update(np.ones((2, 3, 1)), s, cfg)
    with pytest.raises(ValueError, match=shape_msg.format(r"\(2, 4\)", r"\[1\]")):
        K.star_update(np.ones((2, 4)), s, cfg)
    with pytest.raises(ValueError, match=shape_msg.format(r"\(3, 3\)", r"\[0\]")):
        K.star_update(np.ones((3, 3)), s, cfg)
    with pytest.raises(ValueError, match=r"^state\.factors\[1\]: shape \(3, 2\) does not match the \(3, 3\)"):
        K.star_update(G, s._replace(factors=(s.factors[0], np.eye(3)[:, :2])), cfg)
    with pytest.raises(ValueError, match=r"^state\.roots\[1\]: shape \(2, 2\) does not match the \(3, 3\)"):
        K.star_update(G, s._replace(roots=(s.roots[0], np.eye(2))), cfg)
    # same shape, other dtype: the dtype was read from the first factor
    with pytest.raises(TypeError, match=r"^grad: dtype float32 does not match the state's float64 \(from "
                                        r"state\.factors\[0\]\); cast the gradient or re-init the state$"):
        K.star_update(np.ones((2, 3), dtype=np.float32), s, cfg)
    with pytest.raises(TypeError, match=r"^grad: expected an array, got list$"):
        K.star_update([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], s, cfg)
    a_cfg = K.KradagradConfig()
    a = K.alt_init((2, 3), a_cfg)
    with pytest.raises(ValueError, match=r"^state\.pending: shape \(3,\) does not match the \(2,\)"):
        K.alt_update(G, a._replace(pending=np.zeros(3, dtype=bool)), a_cfg)


@pytest.mark.parametrize("alg_name, cfg, shape, s", [
    ("kradagrad_star", K.KradagradStarConfig(), (2, 3), 1.0),
    ("kradagrad_star", K.KradagradStarConfig(init_scale=4.0), (2, 3), 4.0),
    ("kradagrad_star", K.KradagradStarConfig(init_scale=4.0), (2, 3, 2), 4.0),
    ("kradagrad", K.KradagradConfig(init_scale=4.0), (2, 3), 4.0),
])
def test_float32_gradient_limit_at_its_edge(alg_name, cfg, shape, s):
    """The Gram's overflow limit sqrt(F / (2 s^2)), s = max(1, init_scale), F = float32's max, for every order
    >= 2 (the s^2 is capped at the matrix case): a gradient 2 % below is taken, 2 % above is refused."""
    alg = algorithm.get(alg_name)
    F = float(np.finfo(np.float32).max)
    lim = math.sqrt(0.5 * F / s**2)
    state = alg.init(shape, cfg, dtype="float32")
    unit = np.full(shape, 1.0 / math.sqrt(math.prod(shape)))  # ||unit||_F = 1
    d, _ = alg.update((0.98 * lim * unit).astype(np.float32), state, cfg)
    assert d.dtype == np.float32
    limit_text = re.escape(f"{lim:.3g}")
    with pytest.raises(validate.OverflowLimitError,
                       match=rf"^grad: \|\|grad\|\|_F = \S+ is above the overflow limit {limit_text} of the Gram"):
        alg.update((1.02 * lim * unit).astype(np.float32), state, cfg)


def test_indefinite_float32_factor_is_refused_naming_the_mode():
    # errata 11: a rank-1 float32 gradient of norm ~1e6 repeated: L - L A L / t cancels to a clearly negative
    # eigenvalue (-0.06 against a rounding tolerance ~1e-6) on the second step
    x, y = np.array([1.0, 2.0, 3.0]), np.array([1.0, -1.0, 2.0, 1.0])
    G = (1e5 * np.outer(x, y)).astype(np.float32)
    cfg = K.KradagradStarConfig()
    _, state = K.star_update(G, K.star_init((3, 4), cfg, dtype="float32"), cfg)
    with pytest.raises(ValueError, match=r"^factor of mode 0 is no longer positive semi-definite \(A: expected a "
                                         r"positive semi-definite matrix, but lambda_min = -\S+ < -tol = -\S+\); "
                                         r"in float32 this happens when"):
        K.star_update(G, state, cfg)


# ---------------------------------------------------------------------------------------------------------
# the root's exponent-1 shortcut, its dtype, and exponents that are not 1/q

def test_exponent_one_root_is_the_symmetrized_factor_exactly(xp):
    """Exponent 1 (the code's override for order 1, here forced): the root is (L + L^T) / 2 itself, no eigh:
    bit for bit the symmetrized factor, in the statistics' dtype or rounded once through root_dtype."""
    rng = np.random.default_rng(31)
    Gs = [rng.standard_normal((2, 3)) for _ in range(2)]
    _, states = run(K.kradagrad_star, K.KradagradStarConfig(exponent=1.0), Gs, xp)
    for F, P in zip(states[-1].factors, states[-1].roots):
        Fn = np_of(F)
        np.testing.assert_array_equal(np_of(P), (Fn + Fn.T) / 2)
    _, states = run(K.kradagrad_star, K.KradagradStarConfig(exponent=1.0, root_dtype="float32"), Gs, xp)
    for F, P in zip(states[-1].factors, states[-1].roots):
        assert P.dtype == xp.float64
        F32 = np_of(F).astype(np.float32)
        np.testing.assert_array_equal(np_of(P), ((F32 + F32.T) / np.float32(2)).astype(np.float64))


@pytest.mark.parametrize("method", ["eigh", "iterative"])
@pytest.mark.parametrize("variant", ["paper", "reference-code"])
def test_float32_root_dtype_rounds_the_roots_to_float32(xp, variant, method):
    """root_dtype='float32' on float64 statistics: the root is computed in float32 (the reference-code ridge
    1e-8 I included, in float32) and cast back: every entry is a float32 value, within float32's root error
    4 n u32 kappa of the float64 root of the float32-rounded factor."""
    rng = np.random.default_rng(32)
    Gs = [rng.standard_normal((3, 3)) for _ in range(2)]
    # iterative: the warm seed (the previous root, float64) is cast to float32 with the factor
    cfg = K.KradagradStarConfig(variant=variant, root_dtype="float32", root_method=method)
    _, states = run(K.kradagrad_star, cfg, Gs, xp)
    shift = cfg.resolved().root_shift
    for F, P in zip(states[-1].factors, states[-1].roots):
        Pn = np_of(P)
        assert P.dtype == xp.float64
        np.testing.assert_array_equal(Pn.astype(np.float32).astype(np.float64), Pn)
        F32 = np_of(F).astype(np.float32).astype(np.float64) + shift * np.eye(3)
        w = np.linalg.eigvalsh(F32)
        want = np_root(F32, 0.25)
        tol = 4 * 3 * u_of("float32") * w[-1] / w[0]
        np.testing.assert_allclose(Pn, want, rtol=0, atol=tol * np.abs(want).max())


def test_star_trajectory_with_an_exponent_that_is_not_one_over_q(xp):
    """alpha = 0.3: the root exponent 0.15 is no 1/q, which only the iterative method needs; eigh takes it.
    Against the mp trajectory, within K n u kappa as test_trajectory_against_mpmath."""
    rng = np.random.default_rng(33)
    Gs = [rng.standard_normal((3, 4)) for _ in range(3)]
    dirs, states = run(K.kradagrad_star, K.KradagradStarConfig(alpha=0.3), Gs, xp)
    mp_dirs, mp_factors = mp_star(Gs, e=0.15)
    kap = max(float(mp_eig(Fm)[-1] / mp_eig(Fm)[0]) for Fm in mp_factors)
    tol = 3 * 4 * u_of("float64") * kap
    for d, dm in zip(dirs, mp_dirs):
        assert mp_rel(d, dm) <= tol


def test_iterative_root_with_one_iteration_falls_back_to_eigh(xp):
    """root_max_iter = 1 cannot take the identity seed to L^{1/4}: the root falls back to eigh (on_fail='eigh'),
    never raises, and matches the eigh run within its n u kappa root error (c = 16 as test_iterative_roots_match_eigh)."""
    rng = np.random.default_rng(34)
    Gs = [3.0 * rng.standard_normal((3, 4)) for _ in range(2)]
    d_it, _ = run(K.kradagrad_star, K.KradagradStarConfig(root_method="iterative", root_max_iter=1), Gs, xp)
    d_ei, s_ei = run(K.kradagrad_star, K.KradagradStarConfig(), Gs, xp)
    for a, b in zip(d_it, d_ei):
        assert_model_close(a, np_of(b), n=4, factors=tuple(np_of(F) for F in s_ei[-1].factors), steps=2, c=16.0)


def test_state_count_of_another_library_is_named():
    """The grad is checked against the factors' library and the count against the grad's: a numpy count in an
    array_api_strict state is named as state.count, not blamed on the grad."""
    xs = pytest.importorskip("array_api_strict")
    cfg = K.KradagradStarConfig()
    s = K.star_init((2, 3), cfg, xp=xs)
    with pytest.raises(TypeError, match=r"^state\.count: expected an array of the gradient's library"):
        K.star_update(xs.ones((2, 3), dtype=xs.float64), s._replace(count=np.asarray(0, dtype=np.int32)), cfg)
