"""Tests of krad_ref.krad (Lemma 3.1, t_k rules, Eq. 13, damping, decay) under every array namespace.

Expected values are derived here by hand (small integer instances whose t_k and updates are exact) or
recomputed from the formulas in NumPy/mpmath, never copied from the code under test.

Tolerance model (Higham, Accuracy and Stability, Ch. 3): u = unit roundoff of the dtype, n = matrix order;
products and solves of order n carry relative errors ~ n u times the condition number of the problem. Each
assertion states its constant and reason. mp ground truth runs at DPS = 40 on exactly converted float inputs.
"""
from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
import pytest

from krad_ref import backend, krad
from proofs_check import mp as PM
from proofs_check import strategies as PS

DPS = 40


# ---------------------------------------------------------------------------------------------------------
# helpers: mp ground truth and test matrices come from proofs_check (mp: exact conversion, eigenvalues, relative
# errors at DPS digits; strategies: the seeded builder of spd_matrices), bound to the names used below

def asx(xp, a, dtype="float64"):
    return xp.asarray(np.asarray(a, dtype=dtype))


def np_of(X):
    return np.asarray(backend.to_numpy(X), dtype=np.float64)


def u_of(dtype) -> float:
    return backend.unit_roundoff(np.dtype(dtype))


#: spd(n, kappa, rng, scale=s): s Q diag(kappa^(-i/(n-1))) Q^T, Q from the test's seeded Generator
spd = PS.seeded_spd
#: exact float -> mp conversion
to_mp = PM.to_mp
#: ||X - Y||_F / ||Y||_F in mp at DPS digits, X converted exactly
mp_rel = functools.partial(PM.rel_error, dps=DPS)
#: eigenvalues of a symmetric mp matrix at DPS digits, ascending
mp_eigvals = functools.partial(PM.mp_eigvalsh, dps=DPS)


def unvec_by_hand(u, m, n):
    """U_i with U_i[a, b] = u[a + b m] (column-major, Sec. 2.1), written out entry by entry."""
    return np.array([[u[a + b * m] for b in range(n)] for a in range(m)])


# ---------------------------------------------------------------------------------------------------------
# Lemma 3.1

@pytest.mark.parametrize("dtype, kappa", [("float64", 1e6), ("float32", 1e3)])
def test_krad_factor_against_mp_and_lemma_3_1_domination(xp, dtype, kappa):
    rng = np.random.default_rng(1)
    m, n, r = 2, 3, 4
    C_np = spd(n, kappa, rng, scale=2.0).astype(dtype)
    C_np = (C_np + C_np.T) / 2
    U_np = rng.standard_normal((m * n, r)).astype(dtype)
    B = krad.krad_factor(asx(xp, C_np, dtype), asx(xp, U_np, dtype), m, n)
    assert B.dtype == asx(xp, C_np, dtype).dtype and tuple(B.shape) == (m, m)
    with mpmath.workdps(DPS):
        Cinv = to_mp(C_np) ** -1
        B_mp = mpmath.zeros(m, m)
        for i in range(r):
            Ui = to_mp(unvec_by_hand(U_np[:, i].astype(np.float64), m, n))
            B_mp += Ui * Cinv * Ui.T
    # the solve with C has forward error <~ n u kappa(C) (Higham Thm 7.2), the products add O(n u):
    # tolerance n u kappa; measured 0.001-0.09 u kappa over seeds 0-3
    assert mp_rel(B, B_mp) <= n * u_of(dtype) * kappa
    # Lemma 3.1 on the computed B: C kron B - (1/n) U U^T >= 0, up to ||C||_2 times B's absolute error
    Bn = np_of(B)
    Cn, Un = C_np.astype(np.float64), U_np.astype(np.float64)
    K = np.kron(Cn, Bn) - Un @ Un.T / n
    err = n * u_of(dtype) * kappa * np.linalg.norm(Bn, 2) * np.linalg.norm(Cn, 2)
    assert np.linalg.eigvalsh(K).min() >= -err - 8 * m * n * u_of("float64") * np.linalg.norm(K, 2)


def test_krad_factor_sharp_constant_for_rank_n_column(xp):
    """errata 8: with m >= n and U_1 of rank n (U_1 = [I_n; 0], C = I), lambda_min(C kron B - c U U^T) = 0 at c = 1/n."""
    m, n = 3, 2
    U1 = np.zeros((m, n))
    U1[:n, :n] = np.eye(n)
    u = U1.T.reshape(-1)  # column-major vec, written as the rows of U1^T
    B = np_of(krad.krad_factor(asx(xp, np.eye(n)), asx(xp, u[:, None]), m, n))
    np.testing.assert_array_equal(B, U1 @ U1.T)  # exact: entries are 0/1 sums
    K = np.kron(np.eye(n), B)
    uu = np.outer(u, u)
    # holds with equality (K - uu/n is exact, lambda_min = 0): eigvalsh's backward error c n u ||K||_2, cond 1
    assert np.linalg.eigvalsh(K - uu / n).min() >= -PM.tolerance("float64", n=m * n) * np.linalg.norm(K, 2)
    assert np.linalg.eigvalsh(K - uu / n * (1 + 1e-6)).min() < -1e-7  # ... and any larger constant fails


def test_krad_factor_bad_inputs(xp):
    C = asx(xp, np.eye(3))
    U = asx(xp, np.ones((6, 2)))
    with pytest.raises(ValueError, match="U: expected 6"):
        krad.krad_factor(C, asx(xp, np.ones((5, 2))), 2, 3)
    with pytest.raises(ValueError, match="C: expected shape"):
        krad.krad_factor(C, asx(xp, np.ones((8, 2))), 2, 4)
    with pytest.raises(ValueError, match="C: expected a positive definite"):
        krad.krad_factor(asx(xp, np.diag([1.0, 0.0, -1.0])), U, 2, 3)
    with pytest.raises(TypeError, match="U: dtype float32"):
        krad.krad_factor(C, asx(xp, np.ones((6, 2)), "float32"), 2, 3)
    with pytest.raises(TypeError, match="m: expected an integer"):
        krad.krad_factor(C, U, 2.0, 3)


# ---------------------------------------------------------------------------------------------------------
# t_k rules

def test_t_rules_hand_values(xp):
    """L = diag(2, 1/2), G = [[1, 0, 1], [0, 2, 0]], R = diag(1, 1/2, 2):
    G R G^T = diag(3, 2), N = L G R G^T = diag(6, 1): ||N||_2 = 6, ||N||_F = sqrt(37), tr N = 7.
    KrADagrad* (R = I): G G^T = diag(2, 4), N = diag(4, 2): ||N||_F = sqrt(20), tr = 6, d = 2."""
    L = asx(xp, np.diag([2.0, 0.5]))
    G = asx(xp, [[1.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    R = asx(xp, np.diag([1.0, 0.5, 2.0]))
    alt = {"spectral": 7.0, "frobenius": 1 + math.sqrt(37), "trace": 8.0, "code": 1 + math.sqrt(37)}
    star = {"spectral": 5.0, "frobenius": 1 + math.sqrt(20), "trace": 7.0, "code": 2 * 7.0}
    for rule in krad.T_RULES:
        t = krad.t_k(L, G, R, rule)
        assert t.ndim == 0 and t.dtype == L.dtype
        # diagonal instance: t is an exact integer or one correctly rounded sqrt; SVD adds a few ulps
        assert float(t) == pytest.approx(alt[rule], rel=8 * u_of("float64"), abs=0)
        assert float(krad.t_k(L, G, None, rule)) == pytest.approx(star[rule], rel=8 * u_of("float64"), abs=0)
    # the right factor's t: t_k(R, G^T, L): G^T L G = diag(2, 2, 2), N = R G^T L G = diag(2, 1, 4)
    # integer products and a 3-term trace: c n u with n = 3, cond 1 (every partial sum is exact here)
    t_right = float(krad.t_k(R, xp.matrix_transpose(G), L, "trace"))
    assert t_right == pytest.approx(8.0, rel=PM.tolerance("float64", n=3), abs=0)  # abs=0: approx's 1e-12 default


def test_trace_rule_can_undercut_spectral_rule_yet_keeps_M_below_I(xp):
    """N = L A is not symmetric: ||N||_2 >= rho(N) can exceed tr(N) = tr(L^1/2 A L^1/2).

    L = diag(1, 1e-4), A = [[0.01, 1], [1, 100]] (PSD, rank 1): L^1/2 A L^1/2 = [[.01, .01], [.01, .01]] has
    eigenvalues 0.02 and 0, so tr N = 0.02 = lambda_max, while ||N||_2 >= |N_12| = 1."""
    L = asx(xp, np.diag([1.0, 1e-4]))
    A = asx(xp, [[0.01, 1.0], [1.0, 100.0]])
    t_tr = float(krad.t_from_gram(L, A, "trace"))
    t_sp = float(krad.t_from_gram(L, A, "spectral"))
    # 1 + tr(L A), 2-term products and sum of positive terms (cond 1): c n u with n = 2
    assert t_tr == pytest.approx(1.02, rel=PM.tolerance("float64", n=2), abs=0) and t_sp > 2.0
    Lh = np.diag([1.0, 1e-2])
    M = Lh @ np_of(A) @ Lh
    for t in (t_tr, t_sp):
        assert np.linalg.eigvalsh(M / t).max() < 1.0


@pytest.mark.parametrize("scheme", krad.SCHEMES)
def test_prop_3_2_M_below_identity_on_random_instances(xp, scheme):
    rng = np.random.default_rng(7)
    u = u_of("float64")
    for trial in range(6):
        m, n = 3, 4
        L_np = spd(m, 10.0 ** trial, rng, scale=3.0)
        R_np = spd(n, 10.0, rng)
        G_np = rng.standard_normal((m, n)) * 2.0
        L, G, R = asx(xp, L_np), asx(xp, G_np), asx(xp, R_np)
        A_np = G_np @ (R_np if scheme == "alternating" else np.eye(n)) @ G_np.T
        w, V = np.linalg.eigh(L_np)
        Lh = (V * np.sqrt(w)) @ V.T
        lam = np.linalg.eigvalsh(Lh @ A_np @ Lh).max()
        ts = {rule: float(krad.t_k(L, G, R if scheme == "alternating" else None, rule, scheme=scheme))
              for rule in krad.T_RULES}
        for rule, t in ts.items():
            assert lam / t < 1.0, (rule, trial)  # Prop. 3.2: M_k < I
        N = L_np @ A_np
        assert ts["spectral"] == pytest.approx(1 + np.linalg.norm(N, 2), rel=16 * m * u, abs=0)
        assert ts["frobenius"] == pytest.approx(1 + np.linalg.norm(N, "fro"), rel=16 * m * u, abs=0)
        assert ts["frobenius"] >= ts["spectral"] * (1 - 16 * m * u)
        # trace rule: exactly 1 + sum of the eigenvalues of L^1/2 A L^1/2 >= 1 + lambda_max
        assert ts["trace"] == pytest.approx(1 + np.trace(N), rel=16 * m * u, abs=0)
        assert ts["trace"] >= (1 + lam) * (1 - 16 * m * u)


def test_t_rule_float32_against_mp(xp):
    rng = np.random.default_rng(3)
    m = 4
    L_np = spd(m, 1e2, rng, scale=2.0).astype(np.float32)
    L_np = (L_np + L_np.T) / 2
    G_np = rng.standard_normal((m, 3)).astype(np.float32)
    A = krad.mode_statistic(asx(xp, G_np, "float32"), 0)
    A_np = np_of(A)  # the float32 Gram actually used: compare t given this A
    with mpmath.workdps(DPS):
        N = to_mp(L_np) * to_mp(A_np)
        fro = 1 + mpmath.mnorm(N, "f")
        tr = 1 + sum(N[i, i] for i in range(m))
    u = u_of("float32")
    # t is a norm of one m-term product: relative error <= (m + 2) u; factor 4 for the norm's own rounding
    assert abs(float(krad.t_from_gram(asx(xp, L_np, "float32"), A, "frobenius")) - float(fro)) <= 4 * (m + 2) * u * float(fro)
    assert abs(float(krad.t_from_gram(asx(xp, L_np, "float32"), A, "trace")) - float(tr)) <= 4 * (m + 2) * u * float(tr)


# ---------------------------------------------------------------------------------------------------------
# Eq. (13)

def test_left_update_hand_values_and_zero_gradient(xp):
    """Diagonal instance of test_t_rules_hand_values with t = 8 (trace rule):
    L A L = diag(2, 1/2) diag(3, 2) diag(2, 1/2) = diag(12, 1/2), so L_k = diag(2 - 12/8, 1/2 - 1/16)."""
    L = asx(xp, np.diag([2.0, 0.5]))
    G = asx(xp, [[1.0, 0.0, 1.0], [0.0, 2.0, 0.0]])
    R = asx(xp, np.diag([1.0, 0.5, 2.0]))
    Lk = krad.left_update(L, G, R, 8.0)
    np.testing.assert_array_equal(np_of(Lk), np.diag([0.5, 0.4375]))  # dyadic values: exact
    t = krad.t_k(L, G, R, "trace")
    np.testing.assert_array_equal(np_of(krad.left_update(L, G, R, t)), np.diag([0.5, 0.4375]))
    # G = 0 leaves L unchanged, exactly, for every rule and both schemes
    rng = np.random.default_rng(0)
    L2_np = spd(3, 1e3, rng)
    L2, Z = asx(xp, L2_np), asx(xp, np.zeros((3, 4)))
    for rule in krad.T_RULES:
        for Rr in (None, asx(xp, spd(4, 10.0, rng))):
            t0 = krad.t_k(L2, Z, Rr, rule)
            assert float(t0) == (3.0 if (rule == "code" and Rr is None) else 1.0)
            np.testing.assert_array_equal(np_of(krad.left_update(L2, Z, Rr, t0)), L2_np)
        factors = (L2, asx(xp, spd(4, 10.0, rng)))
        np.testing.assert_array_equal(np_of(krad.mode_update(factors, Z, 0, rule)), L2_np)


@pytest.mark.parametrize("which", ["trace", "spectral", "frobenius", "bigger"])
def test_rank_one_step_closed_form_errata_3(xp, which):
    """G = a b^T: L_k^{-1} = L^{-1} + G R G^T / (t - tau), tau = tr(L G R G^T) = (a^T L a)(b^T R b).
    For t = 1 + tau (the trace rule) this is the exact Sherman-Morrison inverse (L^{-1} + G R G^T)^{-1};
    spectral/Frobenius (identical for rank 1: ||L a|| ||a|| b^T R b >= tau) give L_k >= Sherman-Morrison."""
    rng = np.random.default_rng(11)
    m, n = 3, 4
    L_np, R_np = spd(m, 50.0, rng, scale=1.5), spd(n, 20.0, rng)
    a, b = rng.standard_normal(m), rng.standard_normal(n)
    G_np = np.outer(a, b)
    L, G, R = asx(xp, L_np), asx(xp, G_np), asx(xp, R_np)
    tau = float((a @ L_np @ a) * (b @ R_np @ b))
    t = tau * 2 + 3.0 if which == "bigger" else float(krad.t_k(L, G, R, which))
    Lk = krad.left_update(L, G, R, t)
    with mpmath.workdps(DPS):
        Lm, Gm, Rm = to_mp(L_np), to_mp(G_np), to_mp(R_np)
        tau_m = mpmath.fsum((Lm * Gm * Rm * Gm.T)[i, i] for i in range(m))
        t_m = 1 + tau_m if which == "trace" else mpmath.mpf(t)
        want = (Lm ** -1 + Gm * Rm * Gm.T / (t_m - tau_m)) ** -1
        sm = (Lm ** -1 + Gm * Rm * Gm.T) ** -1
    # L_k = L - L A L / t: two GEMMs of order m with ||L A|| / t < 1, so the absolute error is <~ 2 m u ||L||
    # and the normwise relative error <~ 2 m u ||L||_F / ||L_k||_F (no kappa: Frobenius, not entrywise);
    # constant 4 on top; measured ~2 u against ~30 u
    ratio = np.linalg.norm(L_np) / float(mpmath.mnorm(want, "f"))
    tol = 8 * m * u_of("float64") * ratio
    assert mp_rel(Lk, want) <= tol
    if which == "trace":
        assert mp_rel(Lk, sm) <= tol
    else:
        # strictly larger t: a strictly smaller decrement L A L / t, so L_k >= Sherman-Morrison (t - tau > 1
        # shrinks the rank-1 term added to L^{-1}). errata 3's wording "a strictly smaller L_k" has it backwards.
        assert t > 1 + tau
        with mpmath.workdps(DPS):
            diff = to_mp(np_of(Lk)) - sm
        assert float(mp_eigvals(diff)[0]) >= -tol * float(mp_eigvals(sm)[-1]) * math.sqrt(m)
        assert float(mp_eigvals(diff)[-1]) > 1e-6  # and genuinely larger
    # first step from L = I: spectral t = 1 + ||a||^2 b^T R b = 1 + tau, the exact Sherman-Morrison update
    I = asx(xp, np.eye(m))
    t_sp = float(krad.t_k(I, G, R, "spectral"))
    assert t_sp == pytest.approx(1 + (a @ a) * (b @ R_np @ b), rel=32 * m * u_of("float64"), abs=0)


@pytest.mark.parametrize("rule", krad.T_RULES)
def test_cor_3_3_along_an_alternating_trajectory(xp, rule):
    """0 < L_k <= L_{k-1} (Cor. 3.3), checked with float64 eigenvalues after every step, both factors."""
    rng = np.random.default_rng(5)
    m, n = 3, 4
    L, R = asx(xp, np.eye(m)), asx(xp, np.eye(n))
    u = u_of("float64")
    for k in range(16):
        G = asx(xp, rng.standard_normal((m, n)) * (3.0 if k % 5 == 0 else 1.0))
        if k % 2 == 0:
            prev, L = L, krad.left_update(L, G, R, krad.t_k(L, G, R, rule))
            new = L
        else:
            Gt = xp.matrix_transpose(G)
            prev, R = R, krad.left_update(R, Gt, L, krad.t_k(R, Gt, L, rule))
            new = R
        w_new = np.linalg.eigvalsh(np_of(new))
        d = np_of(prev).shape[0]
        # computed update error ~ d u ||L_{k-1}||; L_k's eigenvalues stay far above that (>~ 1/(1 + sum ||G||^2))
        assert w_new.min() > 0
        assert np.linalg.eigvalsh(np_of(prev) - np_of(new)).min() >= -16 * d * u * np.abs(w_new).max()


def test_mode_statistic_and_mode_update_order_3_against_matricized(xp):
    rng = np.random.default_rng(2)
    shape = (2, 3, 4)
    G_np = rng.standard_normal(shape)
    F_np = [spd(d, 10.0, rng, scale=1.3) for d in shape]
    G = asx(xp, G_np)
    F = [asx(xp, f) for f in F_np]
    u = u_of("float64")
    for k in range(3):
        rest = [j for j in range(3) if j != k]
        Gk = np.moveaxis(G_np, k, 0).reshape(shape[k], -1)  # row-major over the remaining modes, in order
        K = np.kron(F_np[rest[0]], F_np[rest[1]])            # matches that row-major flattening
        A_ref = Gk @ K @ Gk.T
        A = krad.mode_statistic(G, k, F)
        np.testing.assert_allclose(np_of(A), A_ref, rtol=0, atol=64 * 24 * u * np.abs(A_ref).max())  # 24-term sums
        np.testing.assert_allclose(np_of(krad.mode_statistic(G, k)), Gk @ Gk.T, rtol=0,
                                   atol=64 * 24 * u * np.abs(Gk @ Gk.T).max())
        for scheme, A_use in (("alternating", A_ref), ("star", Gk @ Gk.T)):
            L = F_np[k]
            t = 1 + np.linalg.norm(L @ A_use, 2)
            want = L - L @ A_use @ L / t
            got = np_of(krad.mode_update(F, G, k, "spectral", scheme=scheme))
            np.testing.assert_allclose(got, want, rtol=0, atol=256 * 24 * u * np.abs(L).max() * 10.0)


def test_mode_update_matrix_modes_equal_left_update(xp):
    rng = np.random.default_rng(4)
    L, R, G = asx(xp, spd(3, 5.0, rng)), asx(xp, spd(4, 5.0, rng)), asx(xp, rng.standard_normal((3, 4)))
    Gt = xp.matrix_transpose(G)
    # two orderings of the same float64 update F - F A F / t: each product of order <= 4 rounds by ~4 u, and
    # ||F A F|| / t <= ||F||, so they differ by <~ c n u ||F|| with n = 4, cond 1 (c = 16: three products and t)
    tol = PM.tolerance("float64", n=4, c=16.0)
    for rule in ("spectral", "frobenius", "trace"):
        want_L = krad.left_update(L, G, R, krad.t_k(L, G, R, rule))
        want_R = krad.left_update(R, Gt, L, krad.t_k(R, Gt, L, rule))
        np.testing.assert_allclose(np_of(krad.mode_update((L, R), G, 0, rule)), np_of(want_L), rtol=0,
                                   atol=tol * np.abs(np_of(L)).max())
        np.testing.assert_allclose(np_of(krad.mode_update((L, R), G, 1, rule)), np_of(want_R), rtol=0,
                                   atol=tol * np.abs(np_of(R)).max())


# ---------------------------------------------------------------------------------------------------------
# damping and decay

def test_damp_hand_values_and_errata_13(xp):
    L = asx(xp, np.diag([4.0, 2.0, 1.0]))
    np.testing.assert_array_equal(np_of(krad.damp(L, 0.125)), np.diag([4 - 2.0, 2 - 0.5, 1 - 0.125]))
    assert krad.damp(L, 0.0) is L
    with pytest.raises(ValueError, match=r"eps: .*errata 13.*eps \|\|L\|\|_2 = 1"):
        krad.damp(L, 0.25)  # eps ||L||_2 = 1: the damped factor is singular
    # ||L||_F = 2 >= 1/eps but ||L||_2 = 1 < 1/eps: the cheap Frobenius test is inconclusive, eigvalsh accepts
    I4 = asx(xp, np.eye(4))
    np.testing.assert_array_equal(np_of(krad.damp(I4, 0.75)), 0.25 * np.eye(4))
    with pytest.raises(ValueError, match="eps: expected a value >= 0"):
        krad.damp(L, -1e-3)


def test_decay_and_mode_update_order_decay_damp_t_update(xp):
    L_np = np.diag([2.0, 1.0])
    L = asx(xp, L_np)
    np.testing.assert_array_equal(np_of(krad.decay(L, 0.5)), 2 * L_np)  # L / beta2: no (1 - beta2) factor
    assert krad.decay(L, 1.0) is L
    for bad in (0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="beta2"):
            krad.decay(L, bad)
    # mode_update = decay, then damp, then t on the damped factor, then Eq. 13 (the code's order), by hand:
    # L' = L / 0.5 = diag(4, 2); L'' = L' - 0.0625 L'^2 = diag(3, 1.75); G = diag(1, 1) as (2, 2): A = I;
    # trace t = 1 + 4.75 = 5.75; L_k = L'' - L''^2 / 5.75.
    G = asx(xp, np.eye(2))
    got = np_of(krad.mode_update((L, asx(xp, np.eye(2))), G, 0, "trace", scheme="star", beta2=0.5, damping=0.0625))
    d = np.array([3.0, 1.75])
    np.testing.assert_allclose(np.diag(got), d - d**2 / 5.75, rtol=4 * u_of("float64"))


# ---------------------------------------------------------------------------------------------------------
# bad inputs, no mutation

def test_bad_inputs_name_the_argument(xp):
    L = asx(xp, np.eye(2))
    A = asx(xp, np.eye(2))
    G = asx(xp, np.ones((2, 3)))
    with pytest.raises(ValueError, match="rule: expected one of"):
        krad.t_from_gram(L, A, "nuclear")
    with pytest.raises(ValueError, match="scheme: expected one of"):
        krad.t_k(L, G, None, "code", scheme="both")
    with pytest.raises(ValueError, match="A: shape"):
        krad.t_from_gram(L, asx(xp, np.eye(3)), "spectral")
    with pytest.raises(TypeError, match="A: dtype float32"):
        krad.t_from_gram(L, asx(xp, np.eye(2), "float32"), "spectral")
    with pytest.raises(ValueError, match="L: expected a symmetric matrix"):
        krad.gram_update(asx(xp, [[1.0, 0.5], [0.0, 1.0]]), A, 2.0)
    with pytest.raises(ValueError, match="t: expected a finite positive"):
        krad.gram_update(L, A, 0.0)
    with pytest.raises(ValueError, match="t: expected a finite positive"):
        krad.gram_update(L, A, float("nan"))
    with pytest.raises(ValueError, match="G: expected 2 rows"):
        krad.left_update(L, asx(xp, np.ones((3, 3))), None, 2.0)
    with pytest.raises(ValueError, match="R: expected shape"):
        krad.left_update(L, G, asx(xp, np.eye(2)), 2.0)
    with pytest.raises(ValueError, match="G: expected finite values"):
        krad.t_k(L, asx(xp, [[1.0, float("nan"), 0.0], [0.0, 0.0, 0.0]]))
    with pytest.raises(TypeError, match="G: expected a real floating array"):
        krad.mode_statistic(xp.ones((2, 3), dtype=xp.int32), 0)
    with pytest.raises(ValueError, match="k: expected a mode"):
        krad.mode_statistic(G, 2)
    with pytest.raises(ValueError, match="factors: expected 2 factors"):
        krad.mode_update((L,), G, 0)
    with pytest.raises(ValueError, match=r"factors\[1\]: expected shape \(3, 3\)"):
        krad.mode_update((L, L), G, 0)
    with pytest.raises(ValueError, match="t_rule: expected one of"):
        krad.mode_update((L, asx(xp, np.eye(3))), G, 0, "l1")


def test_no_function_mutates_its_inputs(xp):
    rng = np.random.default_rng(9)
    L_np, R_np, G_np = spd(3, 10.0, rng), spd(4, 10.0, rng), rng.standard_normal((3, 4))
    L, R, G = asx(xp, L_np), asx(xp, R_np), asx(xp, G_np)
    calls = [
        lambda: krad.krad_factor(R, asx(xp, G_np.T.reshape(-1)[:, None]), 3, 4),
        lambda: krad.t_k(L, G, R, "spectral"), lambda: krad.t_k(L, G, None, "code"),
        lambda: krad.left_update(L, G, R, 10.0), lambda: krad.mode_update((L, R), G, 1, "frobenius", beta2=0.9,
                                                                        damping=1e-3),
        lambda: krad.damp(L, 1e-2), lambda: krad.decay(L, 0.5), lambda: krad.mode_statistic(G, 0, (L, R)),
    ]
    for call in calls:
        call()
        np.testing.assert_array_equal(np_of(L), L_np)
        np.testing.assert_array_equal(np_of(R), R_np)
        np.testing.assert_array_equal(np_of(G), G_np)


def test_every_operand_check_names_its_argument():
    """Each check of t_k / gram_update / krad_factor names the argument it refused (mutation-testing kills:
    a check that reports the wrong name, or skips an operand, fails here)."""
    L, G = np.eye(2), np.ones((2, 3))
    nonsym = np.array([[1.0, 2.0], [0.0, 1.0]])
    cases = [
        (lambda: krad.t_k(L, np.ones(2)), ValueError, r"^G: expected a 2-D array"),
        (lambda: krad.t_k(nonsym, G), ValueError, r"^L: expected a symmetric matrix"),
        (lambda: krad.t_k(L, G, np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])), ValueError,
         r"^R: expected a symmetric matrix"),
        (lambda: krad.t_k(L.astype(np.float32), G), TypeError, r"^G: dtype float64 does not match L's float32$"),
        (lambda: krad.t_k(L, G, np.eye(3, dtype=np.float32)), TypeError, r"^R: dtype float32 does not match L's"),
        (lambda: krad.t_k(L, G, rule="l1"), ValueError, r"^rule: expected one of"),
        (lambda: krad.gram_update(L, np.eye(3), 2.0), ValueError, r"^A: shape \(3, 3\) does not match L's \(2, 2\)$"),
        (lambda: krad.gram_update(L, nonsym, 2.0), ValueError, r"^A: expected a symmetric matrix"),
        (lambda: krad.gram_update(L, np.eye(2, dtype=np.float32), 2.0), TypeError, r"^A: dtype float32 does not "
                                                                                      r"match L's float64$"),
        (lambda: krad.gram_update(L, L, True), TypeError, r"^t: expected a real number or a 0-d array, got bool$"),
        (lambda: krad.gram_update(L, L, [2.0]), TypeError, r"^t: expected a real number or a 0-d array, got list$"),
        (lambda: krad.gram_update(L, L, np.ones(1)), TypeError, r"^t: expected a real number or a 0-d array, "
                                                                r"got ndarray$"),
        (lambda: krad.krad_factor(np.eye(3), np.ones(6), 2, 3), ValueError, r"^U: expected a 2-D array"),
        (lambda: krad.krad_factor(np.eye(3), np.full((6, 1), np.nan), 2, 3), ValueError, r"^U: expected finite"),
        (lambda: krad.krad_factor(np.eye(3), np.ones((6, 1)), 2, 0), ValueError, r"^n: expected an integer >= 1"),
    ]
    for call, exc, match in cases:
        with pytest.raises(exc, match=match):
            call()
    xs = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match=r"^G: array library array_api_strict\S* does not match L's numpy$"):
        krad.t_k(L, xs.asarray(G))


def test_krad_factor_of_no_columns_is_zero_in_c_dtype():
    # r = 0: the empty sum B = 0 (m x m), in C's dtype (exact)
    B = krad.krad_factor(np.eye(3, dtype=np.float32), np.ones((6, 0), dtype=np.float32), 2, 3)
    assert B.shape == (2, 2) and B.dtype == np.float32 and not np.any(B)


def test_mode_statistic_and_t_defaults_against_mp():
    """Value checks of paths the other tests reach only through wrappers (mutation-testing kills)."""
    from proofs_check import mp as M

    rng = np.random.default_rng(31)
    g = rng.standard_normal(3)
    # a vector gradient is an order-1 array: its mode-0 statistic is g g^T (each entry one rounded product: exact
    # equality with NumPy's outer product, which rounds the same products)
    np.testing.assert_array_equal(krad.mode_statistic(g, 0), np.outer(g, g))
    # t_from_gram's default rule is the spectral one: t = 1 + ||L A||_2 (mp twin; rtol 8 n u for the eigen-solver)
    L, A = spd(3, 10.0, rng), spd(3, 10.0, rng)
    with mpmath.workdps(DPS):
        want = 1 + M.mp_norm_2(to_mp(L) * to_mp(A))
    t = float(krad.t_from_gram(L, A))
    assert abs(t - float(want)) <= 8 * 3 * u_of("float64") * float(want)


def test_mode_statistic_checks_every_factor_and_names_it():
    G = np.ones((2, 3))
    nonsym3 = np.array([[1.0, 2.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    cases = [
        (lambda: krad.mode_statistic(G, 0, (None, nonsym3)), ValueError, r"^others\[1\]: expected a symmetric"),
        (lambda: krad.mode_statistic(G, 0, (None, np.eye(3, dtype=np.float32))), TypeError,
         r"^others\[1\]: dtype float32 does not match G's float64$"),
        (lambda: krad.mode_statistic(G, 0, (None, np.eye(2))), ValueError,
         r"^others\[1\]: expected shape \(3, 3\), got \(2, 2\)$"),
        (lambda: krad.mode_statistic(G, 0, (None,)), ValueError, r"^others: expected 2 entries \(one per mode\), "
                                                                 r"got 1$"),
        (lambda: krad.mode_statistic(G, True), ValueError, r"^k: expected a mode"),
        (lambda: krad.mode_statistic(np.asarray(1.0), 0), ValueError, r"^G: expected an array with at least one "
                                                                      r"mode, got a 0-d array$"),
        (lambda: krad.mode_statistic(np.array([[1.0, np.inf]]), 0), ValueError, r"^G: expected finite values"),
        (lambda: krad.t_from_gram(np.eye(2), np.eye(2), "code", scheme="both"), ValueError, r"^scheme: expected"),
        (lambda: krad.t_from_gram(nonsym3, np.eye(3)), ValueError, r"^L: expected a symmetric"),
        (lambda: krad.t_from_gram(np.eye(3), nonsym3), ValueError, r"^A: expected a symmetric"),
        (lambda: krad.mode_update((np.eye(2), np.eye(3)), G, 0, scheme="both"), ValueError, r"^scheme: expected"),
        (lambda: krad.mode_update((np.eye(2), np.eye(3)), np.ones((2, 3), dtype=np.int64), 0), TypeError,
         r"^G: expected a real floating array"),
        (lambda: krad.mode_update((np.eye(2), np.eye(3, dtype=np.float32)), G, 0), TypeError,
         r"^factors\[1\]: dtype float32 does not match G's float64$"),
        (lambda: krad.mode_update((np.eye(2), np.eye(3)), np.array([[1.0, np.nan, 0.0], [0.0, 0.0, 0.0]]), 0),
         ValueError, r"^G: expected finite values"),  # checked by mode_statistic, which mode_update passes check to
        (lambda: krad.damp(np.array([[1.0, 2.0], [0.0, 1.0]]), 0.1), ValueError, r"^L: expected a symmetric"),
        (lambda: krad.decay(np.array([[1.0, 2.0], [0.0, 1.0]]), 0.5), ValueError, r"^L: expected a symmetric"),
        (lambda: krad.decay(np.eye(2), 0.0), ValueError, r"^beta2: expected a value > 0"),
    ]
    for call, exc, match in cases:
        with pytest.raises(exc, match=match):
            call()


def test_damp_boundary_and_spectral_test():
    # eps ||L||_F = 1 exactly (L = I/2 in 4-D: ||L||_F = 1, eps = 1) is not < 1, so the spectral test decides:
    # ||L||_2 = 1/2, eps ||L||_2 = 1/2 < 1, and L - eps L^2 = I/4 (exact in binary)
    L = np.eye(4) / 2
    np.testing.assert_array_equal(krad.damp(L, 1.0), np.eye(4) / 4)
    # a non-symmetric-looking but symmetric L with ||L||_F >= 1/eps and ||L||_2 < 1/eps: the symmetric spectral
    # norm (eigenvalues 1.5 and -0.5 -> 1.5) is what is compared, not the largest singular value of a general
    # matrix (equal here) nor the Frobenius norm (1.58 > 1/0.65 = 1.54)
    L2 = np.array([[0.5, 1.0], [1.0, 0.5]])
    np.testing.assert_allclose(krad.damp(L2, 0.65), L2 - 0.65 * (L2 @ L2), rtol=0, atol=4 * u_of("float64"))
    # rank one: ||L||_F = ||L||_2 = 1, eps = 1 sits on the boundary eps ||L||_F = 1, and the spectral test refuses
    # it (L - L^2 = 0 would not be positive definite)
    with pytest.raises(ValueError, match=r"^eps: damping L - eps L\^2 needs eps \|\|L\|\|_2 < 1"):
        krad.damp(np.diag([1.0, 0.0]), 1.0)
