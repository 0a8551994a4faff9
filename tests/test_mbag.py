"""Tests of krad_ref.mbag (MBAG, MBAG-EMA, MBAG-N, grouping) under every array namespace (``xp``).

Oracles are independent of the code under test: mpmath (Sherman-Morrison against the direct inverse; the same number
of Newton-Schulz steps done in mp, errata 6), closed forms for the first steps (scalar recurrences by hand), and
bridges (one group = full-matrix AdaGrad in the (delta I + sum g g^T)^{-1/2} form, errata 5; tau = 1 = diagonal
AdaGrad; tau = n = independent rows). Tolerances: u is the unit roundoff of the dtype; an n-term inner product is
within n u (Higham Sec. 3.1); an eigh-based root of a kappa-conditioned statistic within ~ n u kappa; t
Sherman-Morrison steps accumulate ~ t tau u kappa(G_t) relative error (measured <= 1.4e-3 of that bound); T
Newton-Schulz steps of rounded GEMMs ~ T tau u sqrt(kappa) (the iterates are bounded by kappa^{1/2}).
"""
from __future__ import annotations

import math
import warnings

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krad_ref import adagrad, algorithm, backend, linalg, mbag, validate
from proofs_check import mp as M
from proofs_check.claims.mbag import mp_newton_schulz

DTYPES = ("float32", "float64")
U = {"float32": 2.0**-24, "float64": 2.0**-53}
ALGS = ("mbag", "mbag_ema", "mbag_n")


def np_of(x) -> np.ndarray:
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def arr(xp, a, dtype="float64"):
    return xp.asarray(np.asarray(a, dtype=dtype))


def rel(a, b) -> float:
    a, b = np_of(a), np_of(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def run(xp, alg, config, grads, dtype="float64"):
    state = alg.init(np.shape(grads[0]), config, dtype=getattr(xp, dtype), xp=xp)
    out = []
    for G in grads:
        d, state = alg.update(arr(xp, G, dtype), state, config)
        out.append(d)
    return out, state


def ill_conditioned_grads(rng, tau, steps, log10_kappa=2.0, dtype="float64"):
    """Gradients Q D z with D geometric over log10_kappa decades: sum g g^T has a spread spectrum, dense basis."""
    Q, _ = np.linalg.qr(rng.standard_normal((tau, tau)))
    D = np.geomspace(1.0, 10.0 ** (-log10_kappa / 2), tau)
    return [((Q * D) @ rng.standard_normal(tau)).astype(dtype) for _ in range(steps)]


# ---------------------------------------------------------------------------------------------------------
# grouping

def test_group_fully_connected_rows_and_vec_wt(xp):
    """tau = n: one group per output neuron (row of W); tau = 2: consecutive pairs of vec(W^T) (errata 15)."""
    W = np.arange(12.0).reshape(3, 4)
    Wx = arr(xp, W)
    np.testing.assert_array_equal(np_of(mbag.group(Wx)), W)  # tau=None -> n = 4
    vec_wt = np_of(linalg.vec(xp.matrix_transpose(Wx)))  # column-major vec of W^T
    np.testing.assert_array_equal(vec_wt, W.flatten())
    np.testing.assert_array_equal(np_of(mbag.group(Wx, 2)), vec_wt.reshape(6, 2))
    np.testing.assert_array_equal(np_of(mbag.group(Wx, 12)), W.reshape(1, 12))  # layer-wise


def test_group_conv_kernel_per_filter_pair(xp):
    """C_out x C_in x k x k: groups are the k^2 weights of one (output, input) filter pair, C_out C_in of them."""
    K = np.random.default_rng(0).standard_normal((2, 3, 3, 3))
    B = np_of(mbag.group(arr(xp, K)))
    assert B.shape == (6, 9)
    for i in range(2):
        for j in range(3):
            np.testing.assert_array_equal(B[i * 3 + j], K[i, j].flatten())
    assert mbag.group_size((2, 3, 5, 5)) == 25
    assert mbag.group_size((7,)) == 7 and mbag.group_size(()) == 1  # bias / scalar: one group


def test_group_remainder_error_and_pad(xp):
    W = arr(xp, np.arange(10.0).reshape(2, 5))
    with pytest.raises(ValueError, match="tau: 4 does not divide the parameter size N = 10"):
        mbag.group(W, 4)
    B = np_of(mbag.group(W, 4, remainder="pad"))
    np.testing.assert_array_equal(B, np.r_[np.arange(10.0), 0.0, 0.0].reshape(3, 4))
    back = mbag.ungroup(arr(xp, B), (2, 5))
    np.testing.assert_array_equal(np_of(back), np.arange(10.0).reshape(2, 5))
    with pytest.raises(ValueError, match="cannot hold"):
        mbag.ungroup(arr(xp, np.zeros((4, 4))), (2, 5))  # a whole group of padding
    with pytest.raises(ValueError, match="remainder"):
        mbag.group(W, 5, remainder="drop")
    with pytest.raises(TypeError, match="tau"):
        mbag.group(W, 2.0)
    with pytest.raises(ValueError, match="tau"):
        mbag.group(W, 0)


@st.composite
def _grouping_cases(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=4)))
    N = math.prod(shape)
    kind = draw(st.sampled_from(("structural", "divisor", "any")))
    if kind == "structural":
        tau, remainder = None, "error"
    elif kind == "divisor":
        tau, remainder = draw(st.sampled_from([d for d in range(1, N + 1) if N % d == 0])), "error"
    else:
        tau, remainder = draw(st.integers(1, N + 3)), "pad"
    seed = draw(st.integers(0, 2**32 - 1))
    return shape, tau, remainder, seed


@settings(max_examples=60, deadline=None)
@given(_grouping_cases())
def test_group_ungroup_exact_inverses(case):
    """ungroup(group(W)) == W bit for bit; group(ungroup(B)) == B whenever B's padding is zero."""
    shape, tau, remainder, seed = case
    xp = backend.get_namespace("numpy")
    W = np.random.default_rng(seed).standard_normal(shape)
    B = mbag.group(xp.asarray(W), tau, remainder=remainder)
    g, t, pad = mbag.layout(shape, tau, remainder)
    assert tuple(B.shape) == (g, t) and g * t == W.size + pad and pad < t
    back = mbag.ungroup(B, shape)
    assert tuple(back.shape) == shape
    np.testing.assert_array_equal(np.asarray(back), W)
    B2 = np.random.default_rng(seed + 1).standard_normal((g, t))
    if pad:
        B2.reshape(-1)[W.size:] = 0.0
    regrouped = mbag.group(mbag.ungroup(xp.asarray(B2), shape), t, remainder=remainder)
    np.testing.assert_array_equal(np.asarray(regrouped), B2)


# ---------------------------------------------------------------------------------------------------------
# Sherman-Morrison (Eq. 4)

def _mp_direct_inverse(lam, grads):
    with mpmath.workdps(50):
        G = mpmath.eye(len(grads[0])) * M.to_mpf(lam)
        for g in grads:
            gm = M.to_mp(np.asarray(g, dtype=np.float64))
            G = G + gm * gm.T
        return mpmath.inverse(G), G


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lam", [1.0, 2.0**-7, 2.0**-14])
def test_sherman_morrison_matches_mp_inverse(xp, dtype, lam):
    """t steps of Eq. (4) vs the mp inverse of lam I + sum g g^T: rel error <= 4 t tau u kappa(G_t)."""
    rng = np.random.default_rng(1)
    tau, T = 6, 20
    grads = ill_conditioned_grads(rng, tau, T, dtype=dtype)
    H = arr(xp, np.eye(tau)[None] / lam, dtype)
    for g in grads:
        H = mbag.sherman_morrison(H, arr(xp, g[None], dtype))
    assert H.dtype == getattr(xp, dtype)
    Hm, Gm = _mp_direct_inverse(lam, grads)
    w = np.linalg.eigvalsh(M.from_mp(Gm))
    kappa = w[-1] / w[0]
    err = M.rel_error(np_of(H)[0], Hm)
    assert err <= 4 * T * tau * U[dtype] * kappa, (err, kappa)
    Hn = np_of(H)[0]
    np.testing.assert_array_equal(Hn, Hn.T)  # exactly symmetric by construction


def test_sherman_morrison_batched_and_checks(xp):
    rng = np.random.default_rng(2)
    Hs = np.stack([np.eye(3) * (i + 1.0) for i in range(4)])
    gs = rng.standard_normal((4, 3))
    out = np_of(mbag.sherman_morrison(arr(xp, Hs), arr(xp, gs)))
    for i in range(4):
        one = np_of(mbag.sherman_morrison(arr(xp, Hs[i]), arr(xp, gs[i])))
        np.testing.assert_allclose(out[i], one, rtol=0, atol=8 * 3 * U["float64"] * np.abs(one).max())
        np.testing.assert_allclose(out[i], np.linalg.inv(np.linalg.inv(Hs[i]) + np.outer(gs[i], gs[i])),
                                   rtol=0, atol=64 * U["float64"] * (i + 1))
    with pytest.raises(ValueError, match="g: expected shape"):
        mbag.sherman_morrison(arr(xp, Hs), arr(xp, gs[:, :2]))
    with pytest.raises(ValueError, match="H: expected symmetric"):
        mbag.sherman_morrison(arr(xp, np.array([[1.0, 0.5], [0.0, 1.0]])), arr(xp, np.ones(2)))
    with pytest.raises(ValueError, match="not positive semi-definite along g"):
        mbag.sherman_morrison(arr(xp, -np.eye(2)), arr(xp, np.ones(2)))
    with pytest.raises(TypeError, match="g: dtype float32"):
        mbag.sherman_morrison(arr(xp, np.eye(2)), arr(xp, np.ones(2), "float32"))
    with pytest.raises(ValueError, match="H: expected finite"):
        mbag.sherman_morrison(arr(xp, np.full((2, 2), np.nan)), arr(xp, np.ones(2)))


# ---------------------------------------------------------------------------------------------------------
# Newton-Schulz inside the optimizers vs the same number of steps in mp (errata 6)

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("T_NS", [5, 7])
def test_mbag_root_is_ns_of_H_same_steps_in_mp(xp, dtype, T_NS):
    """MBAG's root after step t = sqrt(||H_t||_F) X_N of T_NS mp steps on the state's own H_t (rounding-level)."""
    rng = np.random.default_rng(3)
    tau = 5
    cfg = mbag.MbagConfig(lam=2.0**-7, T_sqr=1, T_NS=T_NS, tau=tau, beta=0.0)
    grads = ill_conditioned_grads(rng, tau, 8, dtype=dtype)
    _, state = run(xp, mbag.mbag, cfg, grads, dtype)
    H = np_of(state.H)[0]
    ns = mp_newton_schulz(H, dps=50, iters=T_NS, normalize=True)
    with mpmath.workdps(50):
        want = ns.X * mpmath.sqrt(ns.s)
    w = np.linalg.eigvalsh(H)
    tol = 4 * T_NS * tau * U[dtype] * math.sqrt(w[-1] / w[0])
    assert M.rel_error(np_of(state.root)[0], want) <= tol
    assert abs(float(np_of(state.residual)[0]) - float(ns.residual)) <= 2 * tol


@pytest.mark.parametrize("dtype", DTYPES)
def test_mbag_ema_root_is_rescaled_y_same_steps_in_mp(xp, dtype):
    """MBAG-EMA's root = Y_N / sqrt(||G||_F) of T_NS mp steps on its own G (Alg. 2 rescaled; module docstring)."""
    rng = np.random.default_rng(4)
    tau, T_NS = 4, 6
    cfg = mbag.MbagEmaConfig(lam=0.5, alpha=0.9, T_sqr=1, T_NS=T_NS, tau=tau, beta=0.0)
    _, state = run(xp, mbag.mbag_ema, cfg, ill_conditioned_grads(rng, tau, 6, dtype=dtype), dtype)
    G = np_of(state.G)[0]  # the damping 0.9^6 * 0.5 is far above the automatic floor: no extra term
    ns = mp_newton_schulz(G, dps=50, iters=T_NS, normalize=True)
    with mpmath.workdps(50):
        want = ns.Y / mpmath.sqrt(ns.s)
    w = np.linalg.eigvalsh(G)
    assert M.rel_error(np_of(state.root)[0], want) <= 4 * T_NS * tau * U[dtype] * math.sqrt(w[-1] / w[0])


def test_batched_newton_schulz_agrees_with_linalg(xp):
    """Each matrix of the stack as linalg.newton_schulz(num_iters=T, on_fail='return') (same iteration)."""
    rng = np.random.default_rng(5)
    A = []
    for k in range(3):
        Q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
        A.append((Q * np.geomspace(1, 10.0 ** -(k + 1), 4)) @ Q.T)
    A = np.stack([(a + a.T) / 2 for a in A])
    res = mbag.batched_newton_schulz(arr(xp, A), 6)
    for k in range(3):
        one = linalg.newton_schulz(arr(xp, A[k]), num_iters=6, on_fail="return")
        tol = 4 * 6 * 4 * U["float64"] * 10 ** ((k + 1) / 2)
        assert rel(res.sqrt[k, ...], one.sqrt) <= tol
        assert rel(res.inv_sqrt[k, ...], one.inv_sqrt) <= tol
        assert abs(float(res.residual[k]) - one.residual) <= tol


def test_fixed_count_ns_underestimates_and_errata6_sizes():
    """Both rescaled outputs approach their roots from below (Loewner); at kappa = 1e2, T_NS = 5 the inverse root of
    G is ~30 % off while the root of H is a few % off (errata 6), and a long run converges to eigh."""
    rng = np.random.default_rng(6)
    Q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    A = (Q * np.geomspace(1, 1e-2, 8)) @ Q.T
    A = (A + A.T) / 2
    w, V = np.linalg.eigh(A)
    sq, isq = (V * np.sqrt(w)) @ V.T, (V / np.sqrt(w)) @ V.T
    r5 = mbag.batched_newton_schulz(np.asarray(A)[None], 5)
    assert np.linalg.eigvalsh(sq - r5.sqrt[0]).min() >= -1e-14
    assert np.linalg.eigvalsh(isq - r5.inv_sqrt[0]).min() >= -1e-12
    assert 0.01 < rel(r5.sqrt[0], sq) < 0.1 and 0.2 < rel(r5.inv_sqrt[0], isq) < 0.5
    r40 = mbag.batched_newton_schulz(np.asarray(A)[None], 40)
    assert rel(r40.sqrt[0], sq) <= 1e-13 and rel(r40.inv_sqrt[0], isq) <= 1e-12


# ---------------------------------------------------------------------------------------------------------
# first steps by hand

def _ns_scalar(q: float, T: int) -> tuple[float, float]:
    """Eq. (5) on one eigenvalue q of A' = A / s: (x_T, y_T)."""
    x, y = q, 1.0
    for _ in range(T):
        t = 3.0 - y * x
        x, y = 0.5 * x * t, 0.5 * t * y
    return x, y


@pytest.mark.parametrize("dtype", DTYPES)
def test_mbag_first_steps_by_hand(xp, dtype):
    """Step 1 with T_sqr = 2 uses H_0^{1/2} = I / sqrt(lam) (errata 28); step 2 refreshes. For g2 orthogonal to g1,
    H_2 has eigenvalues 1/(lam + |g1|^2), 1/(lam + |g2|^2) and 1/lam (twice), so both the exact root and the
    Newton-Schulz root act on g2 by a scalar: sqrt(s) x_T(h / s) with s = ||H_2||_F."""
    lam, beta = 0.5, 0.9
    g1 = np.array([1.0, 1.0, 1.0, 1.0])     # |g1|^2 = 4
    g2 = np.array([1.0, -1.0, 0.0, 0.0])    # orthogonal to g1, |g2|^2 = 2
    h = np.array([1 / (lam + 4), 1 / (lam + 2), 1 / lam, 1 / lam])
    s = float(np.sqrt(np.sum(h**2)))
    tol = 16 * 4 * U[dtype] * (1 + 4 / lam)  # eigh / 4 x 4 products, kappa(G_2) = (lam + 4) / lam
    for method, T_NS in (("eigh", 5), ("newton_schulz", 5), ("newton_schulz", 2)):
        cfg = mbag.MbagConfig(lam=lam, beta=beta, T_sqr=2, T_NS=T_NS, tau=4, root_method=method)
        (d1, d2), st_ = run(xp, mbag.mbag, cfg, [g1, g2], dtype)
        assert rel(d1, g1 / math.sqrt(lam)) <= tol
        r2 = 1 / math.sqrt(lam + 2) if method == "eigh" else math.sqrt(s) * _ns_scalar(h[1] / s, T_NS)[0]
        assert rel(d2, beta * g1 / math.sqrt(lam) + r2 * g2) <= tol, method
        assert int(st_.count) == 2 and d2.dtype == getattr(xp, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mbag_n_and_ema_first_steps_by_hand(xp, dtype):
    lam, beta, alpha = 0.5, 0.5, 0.75
    g1 = np.array([3.0, 4.0])            # |g1|^2 = 25
    g2 = np.array([-4.0, 3.0])           # orthogonal, |g2|^2 = 25
    tol = 32 * U[dtype] * (1 + 25 / lam)
    # MBAG-N: H_1 g1 = g1 / (lam + |g1|^2); step 2: H_2 g2 = g2 / (lam + |g2|^2)
    (d1, d2), _ = run(xp, mbag.mbag_n, mbag.MbagNConfig(lam=lam, beta=beta, tau=2), [g1, g2], dtype)
    assert rel(d1, g1 / (lam + 25)) <= tol
    assert rel(d2, beta * g1 / (lam + 25) + g2 / (lam + 25)) <= tol
    # MBAG-EMA, exact root every step: G_1 = alpha lam I + (1 - alpha) g1 g1^T; G_2 = alpha G_1 + (1 - alpha) g2 g2^T
    cfg = mbag.MbagEmaConfig(lam=lam, beta=beta, alpha=alpha, T_sqr=1, tau=2, root_method="eigh")
    (e1, e2), _ = run(xp, mbag.mbag_ema, cfg, [g1, g2], dtype)
    r1 = 1 / math.sqrt(alpha * lam + (1 - alpha) * 25)
    r2 = 1 / math.sqrt(alpha**2 * lam + (1 - alpha) * 25)  # along g2 only the current g2 g2^T and the damping
    assert rel(e1, r1 * g1) <= tol
    assert rel(e2, beta * r1 * g1 + r2 * g2) <= tol


def test_root_schedule_and_initial_root(xp):
    """The root changes only on steps t = 0 mod T_sqr; before the first refresh it is I / sqrt(lam)."""
    rng = np.random.default_rng(7)
    cfg = mbag.MbagConfig(lam=0.25, T_sqr=3, tau=3)
    state = mbag.mbag_init((2, 3), cfg, xp=xp)
    roots = []
    for _ in range(7):
        _, state = mbag.mbag_update(arr(xp, rng.standard_normal((2, 3))), state, cfg)
        roots.append(np_of(state.root))
    np.testing.assert_array_equal(roots[0], np.broadcast_to(2.0 * np.eye(3), (2, 3, 3)))
    np.testing.assert_array_equal(roots[0], roots[1])
    assert not np.array_equal(roots[2], roots[1])
    np.testing.assert_array_equal(roots[2], roots[3])
    np.testing.assert_array_equal(roots[3], roots[4])
    assert not np.array_equal(roots[5], roots[4])
    np.testing.assert_array_equal(roots[5], roots[6])


# ---------------------------------------------------------------------------------------------------------
# bridges

@pytest.mark.parametrize("shape", [(6,), (3, 2), (2, 3, 2)])
def test_single_group_exact_roots_is_full_matrix_adagrad(xp, shape):
    """errata 5: tau = N, beta = 0, T_sqr = 1, lam = delta, eigh roots == AdagradFullConfig(form="kradagrad").
    adagrad_full vectorises column-major, MBAG row-major; the matrix function commutes with that permutation, so the
    directions agree entry for entry. Tolerance 16 N u kappa(G_t) (two eigh-based roots of the same statistic)."""
    rng = np.random.default_rng(8)
    N = math.prod(shape)
    delta = 1e-2
    grads = [rng.standard_normal(shape) for _ in range(6)]
    cfg = mbag.MbagConfig(lam=delta, beta=0.0, T_sqr=1, tau=N, root_method="eigh")
    dm, _ = run(xp, mbag.mbag, cfg, grads)
    da, _ = run(xp, adagrad.adagrad_full, adagrad.AdagradFullConfig(delta=delta, form="kradagrad"), grads)
    dd, _ = run(xp, adagrad.adagrad_full, adagrad.AdagradFullConfig(delta=delta, form="duchi"), grads)
    S = np.zeros((N, N))
    for a, b, c, G in zip(dm, da, dd, grads):
        S += np.outer(G.reshape(-1), G.reshape(-1))
        w = np.linalg.eigvalsh(S + delta * np.eye(N))
        assert tuple(a.shape) == shape
        assert rel(a, b) <= 16 * N * U["float64"] * w[-1] / w[0]
        assert rel(a, c) > 1e-3  # Sec. I's Duchi form is a different preconditioner
    # Newton-Schulz run long enough to converge gives the same directions (an "exact root" by iteration)
    cfg_ns = mbag.MbagConfig(lam=delta, beta=0.0, T_sqr=1, tau=N, T_NS=60)
    dn, _ = run(xp, mbag.mbag, cfg_ns, grads)
    for a, b in zip(dn, da):
        assert rel(a, b) <= 1e-10


def test_tau_one_is_diagonal_adagrad(xp):
    """tau = 1: 1 x 1 groups, Newton-Schulz exact after one step; beta = 0 gives g / sqrt(lam + sum g^2), i.e.
    diagonal AdaGrad with eps = lam inside the root."""
    rng = np.random.default_rng(9)
    grads = [rng.standard_normal((2, 3)) for _ in range(5)]
    dm, _ = run(xp, mbag.mbag, mbag.MbagConfig(lam=0.1, beta=0.0, T_sqr=1, T_NS=1, tau=1), grads)
    da, _ = run(xp, adagrad.adagrad_diag, adagrad.AdagradDiagConfig(eps=0.1, eps_placement="inside"), grads)
    for a, b in zip(dm, da):
        assert rel(a, b) <= 16 * U["float64"]


def test_tau_n_groups_are_independent_rows(xp):
    """tau = n (structural): MBAG on W (m x n) == m independent single-group MBAG runs on the rows of W."""
    rng = np.random.default_rng(10)
    grads = [rng.standard_normal((3, 4)) for _ in range(5)]
    cfg = mbag.MbagConfig(lam=0.1, T_sqr=2, T_NS=5)
    dW, _ = run(xp, mbag.mbag, cfg, grads)
    for i in range(3):
        dr, _ = run(xp, mbag.mbag, cfg, [G[i] for G in grads])
        for a, b in zip(dW, dr):
            assert rel(np_of(a)[i], b) <= 64 * 4 * U["float64"]


def test_pad_remainder_is_a_separate_block_with_exact_roots(xp):
    """remainder='pad', tau = 2 on N = 5: the padded last group equals a separate 1 x 1 block (exact roots)."""
    rng = np.random.default_rng(11)
    grads = [rng.standard_normal(5) for _ in range(4)]
    cfg = mbag.MbagConfig(lam=0.3, T_sqr=1, tau=2, remainder="pad", root_method="eigh")
    d, state = run(xp, mbag.mbag, cfg, grads)
    assert tuple(state.H.shape) == (3, 2, 2)
    d4, _ = run(xp, mbag.mbag, mbag.MbagConfig(lam=0.3, T_sqr=1, tau=2, root_method="eigh"), [g[:4] for g in grads])
    d1, _ = run(xp, mbag.mbag, mbag.MbagConfig(lam=0.3, T_sqr=1, tau=1, root_method="eigh"), [g[4:] for g in grads])
    for a, b, c in zip(d, d4, d1):
        np.testing.assert_allclose(np_of(a), np.r_[np_of(b), np_of(c)], rtol=64 * U["float64"], atol=0)
    np.testing.assert_array_equal(np_of(state.H)[2, 1], [0.0, 1 / 0.3])  # the padded coordinate: untouched


# ---------------------------------------------------------------------------------------------------------
# MBAG-EMA's decaying damping (errata 29)

def _low_rank_stream(rng, tau, steps, rank=2, burst_every=100):
    B = rng.standard_normal((tau, rank))
    for t in range(steps):
        g = B @ rng.standard_normal(rank)
        if t % burst_every == burst_every - 1:  # a rare small excursion into the untouched directions
            g = g + 1e-3 * rng.standard_normal(tau)
        yield g


@pytest.mark.parametrize("method", ["newton_schulz", "eigh"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_ema_long_run_default_floor_is_finite_and_bounded(method, dtype):
    """alpha = 0.9 for 1000 steps (alpha^t lam underflows below any rounding level by t ~ 350): with the default floor
    no warning, finite directions, and ||direction|| <= 1 / sqrt(1 - alpha) (T_sqr = 1, beta = 0: G >= (1 - alpha) g g^T
    + d I gives g^T G^{-1} g <= 1 / (1 - alpha) by Sherman-Morrison, whatever g; 1e-3 relative slack for rounding
    and Newton-Schulz's under-estimate only shrinks it)."""
    rng = np.random.default_rng(12)
    xp = backend.get_namespace("numpy")
    tau, alpha = 6, 0.9
    cfg = mbag.MbagEmaConfig(alpha=alpha, T_sqr=1, tau=tau, beta=0.0, root_method=method)
    state = mbag.mbag_ema_init((tau,), cfg, dtype=dtype, xp=xp)
    worst = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for g in _low_rank_stream(rng, tau, 1000):
            g = xp.asarray(g.astype(dtype))
            d, state = mbag.mbag_ema_update(g, state, cfg)
            assert bool(np.isfinite(d).all())
            worst = max(worst, float(np.linalg.norm(d)))
    assert worst <= (1 + 1e-3) / math.sqrt(1 - alpha)
    damping, extra = mbag.ema_damping(1000, cfg, state.G)
    assert float(extra[0]) > 0 and float(damping[0]) == pytest.approx(
        16 * tau * U[dtype] * float(np.linalg.norm(np_of(state.G)[0])), rel=1e-5, abs=0)
    # abs=0: approx's default abs=1e-12 would dwarf this ~1e-14 value; rel=1e-5 covers ||G||_F summed over tau^2 = 36
    # entries in the dtype (error <= 36 u ~ 2e-6 in float32) against the float64 norm here


def test_ema_paper_exact_damping_warns_and_eigh_refuses():
    """damping_floor = 0 is Alg. 2 exactly: a RuntimeWarning once alpha^t lam < 4 tau u ||G||_F (the rank rule); Newton-Schulz stays
    finite; the exact root refuses once the damping underflows (a singular G has no inverse root)."""
    rng = np.random.default_rng(13)
    tau = 6
    cfg = mbag.MbagEmaConfig(alpha=0.9, T_sqr=1, tau=tau, beta=0.0, damping_floor=0.0)
    state = mbag.mbag_ema_init((tau,), cfg)
    worst = 0.0
    with pytest.warns(RuntimeWarning, match="numerically singular"):
        for g in _low_rank_stream(rng, tau, 400):
            d, state = mbag.mbag_ema_update(np.asarray(g), state, cfg)
            worst = max(worst, float(np.linalg.norm(d)))
    # the bound of the floored run above does not use the damping: ||G^{-1/2} g|| <= 1/sqrt(1 - alpha) for the
    # exact root, and a fixed-count Newton-Schulz root (a polynomial in G, so it commutes with G^{-1/2}) is smaller
    # in the Loewner order (claim mbag.ns_fixed_count_underestimates), so the bound holds here too, with the same
    # 1e-3 rounding allowance
    assert worst <= (1 + 1e-3) / math.sqrt(1 - 0.9)
    cfg_e = mbag.MbagEmaConfig(alpha=0.9, T_sqr=1, tau=tau, beta=0.0, damping_floor=0.0, root_method="eigh")
    state = mbag.mbag_ema_init((tau,), cfg_e)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(ValueError, match="damping_floor"):
            for g in _low_rank_stream(rng, tau, 8000, burst_every=10**9):
                _, state = mbag.mbag_ema_update(np.asarray(g), state, cfg_e)


def test_ema_absolute_floor_bounds_stale_roots():
    """With T_sqr > 1 the root is stale between refreshes; an absolute floor f bounds ||root||_2 by f^{-1/2}."""
    rng = np.random.default_rng(14)
    tau, f = 4, 1e-6
    cfg = mbag.MbagEmaConfig(alpha=0.9, T_sqr=5, tau=tau, damping_floor=f, root_method="eigh")
    state = mbag.mbag_ema_init((tau,), cfg)
    for g in _low_rank_stream(rng, tau, 600, rank=1):
        _, state = mbag.mbag_ema_update(np.asarray(g), state, cfg)
    assert np.linalg.norm(state.root[0], 2) <= (1 + 1e-6) / math.sqrt(f)


# ---------------------------------------------------------------------------------------------------------
# protocol: registration, dtypes, shapes, bad inputs, no mutation

@pytest.mark.parametrize("name", ALGS)
@pytest.mark.parametrize("shape,tau", [((), None), ((5,), None), ((3, 4), None), ((3, 4), 6), ((2, 2, 3, 3), None),
                                       ((7,), 3)])
def test_every_variant_runs_on_every_shape(xp, name, shape, tau):
    alg = algorithm.get(name)
    cfg = alg.Config(tau=tau, remainder="pad", **({} if name == "mbag_n" else {"T_sqr": 2}))
    rng = np.random.default_rng(15)
    for dtype in DTYPES:
        state = alg.init(shape, cfg, dtype=getattr(xp, dtype), xp=xp)
        for _ in range(3):
            d, state = alg.update(arr(xp, rng.standard_normal(shape), dtype), state, cfg)
            assert tuple(d.shape) == shape and d.dtype == getattr(xp, dtype)
            assert bool(xp.all(xp.isfinite(d)))
        assert int(state.count) == 3 and state.count.dtype == xp.int32
        assert backend.namespace(d) is backend.namespace(state.v)


def test_init_from_array_uses_its_dtype(xp):
    W = arr(xp, np.zeros((2, 3)), "float32")
    st_ = mbag.mbag_init(W, mbag.MbagConfig())
    assert st_.H.dtype == xp.float32 and tuple(st_.H.shape) == (2, 3, 3)


@pytest.mark.parametrize("name", ALGS)
def test_no_mutation_and_no_aliasing(name):
    alg = algorithm.get(name)
    cfg = alg.Config(tau=2, beta=0.5, **({} if name == "mbag_n" else {"T_sqr": 1}))
    rng = np.random.default_rng(16)
    state = alg.init((2, 2), cfg)
    _, state = alg.update(rng.standard_normal((2, 2)), state, cfg)
    g = rng.standard_normal((2, 2))
    g_copy = g.copy()
    before = [np.array(x, copy=True) for x in state]
    d, new = alg.update(g, state, cfg)
    np.testing.assert_array_equal(g, g_copy)
    for a, b in zip(state, before):
        np.testing.assert_array_equal(np.asarray(a), b)
    v = np.array(new.v, copy=True)
    d *= 100.0  # an in-place step on the direction must not touch the new state
    np.testing.assert_array_equal(np.asarray(new.v), v)


def test_config_validation():
    bad = [
        (mbag.MbagConfig, {"lam": 0.0}, ValueError, "lam"),
        (mbag.MbagConfig, {"lam": -1.0}, ValueError, "lam"),
        (mbag.MbagConfig, {"beta": 1.0}, ValueError, "beta"),
        (mbag.MbagConfig, {"T_sqr": 0}, ValueError, "T_sqr"),
        (mbag.MbagConfig, {"T_NS": 0}, ValueError, "T_NS"),
        (mbag.MbagConfig, {"T_NS": 2.5}, TypeError, "T_NS"),
        (mbag.MbagConfig, {"tau": 0}, ValueError, "tau"),
        (mbag.MbagConfig, {"tau": True}, TypeError, "tau"),
        (mbag.MbagConfig, {"root_method": "svd"}, ValueError, "root_method"),
        (mbag.MbagConfig, {"remainder": "drop"}, ValueError, "remainder"),
        (mbag.MbagEmaConfig, {"alpha": 1.0}, ValueError, "alpha"),
        (mbag.MbagEmaConfig, {"damping_floor": -1e-3}, ValueError, "damping_floor"),
        (mbag.MbagNConfig, {"beta": -0.1}, ValueError, "beta"),
    ]
    for cls, kw, exc, field in bad:
        with pytest.raises(exc, match=field):
            cls(**kw)


def test_bad_updates(xp):
    cfg = mbag.MbagConfig(tau=3)
    state = mbag.mbag_init((2, 3), cfg, xp=xp)
    with pytest.raises(ValueError, match="grad: shape"):
        mbag.mbag_update(arr(xp, np.zeros((3, 2))), state, cfg)
    with pytest.raises(TypeError, match="grad: dtype float32"):
        mbag.mbag_update(arr(xp, np.zeros((2, 3)), "float32"), state, cfg)
    with pytest.raises(ValueError, match="grad: expected finite"):
        mbag.mbag_update(arr(xp, np.full((2, 3), np.inf)), state, cfg)
    with pytest.raises(TypeError, match="grad"):
        mbag.mbag_update(xp.asarray(np.zeros((2, 3), dtype=np.int64)), state, cfg)
    with pytest.raises(TypeError, match="config: expected MbagConfig"):
        mbag.mbag_update(arr(xp, np.zeros((2, 3))), state, mbag.MbagNConfig(tau=3))
    with pytest.raises(TypeError, match="state: expected MbagState"):
        mbag.mbag_update(arr(xp, np.zeros((2, 3))), mbag.mbag_n_init((2, 3), mbag.MbagNConfig(tau=3), xp=xp), cfg)
    with pytest.raises(ValueError, match="made with another config"):
        mbag.mbag_update(arr(xp, np.zeros((2, 3))), state, mbag.MbagConfig(tau=2))
    with pytest.raises(ValueError, match="tau: 4 does not divide"):
        mbag.mbag_init((2, 3), mbag.MbagConfig(tau=4), xp=xp)
    with pytest.raises(TypeError, match="config: expected MbagEmaConfig"):
        mbag.mbag_ema_init((2, 3), cfg)


def test_grad_from_another_library_is_refused():
    xs = pytest.importorskip("array_api_strict")
    cfg = mbag.MbagConfig(tau=3)
    state = mbag.mbag_init((2, 3), cfg)
    with pytest.raises(TypeError, match="grad: array library"):
        mbag.mbag_update(xs.asarray(np.zeros((2, 3))), state, cfg)


def test_registered_ids():
    for name in ALGS:
        alg = algorithm.get(name)
        assert alg.name == name and alg is getattr(mbag, name)


# ---------------------------------------------------------------------------------------------------------
# values and messages at the edges (mutation testing, tests/mutation_mbag.md): every user-visible message in
# full (it opens with the argument's name), bounds at their edges, exact hand values where the arithmetic is exact

def _raises_exactly(exc, message, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("cls,kw,exc,message", [
    (mbag.MbagConfig, {"lam": 0.0}, ValueError, "lam: expected a value > 0.0, got 0.0"),
    (mbag.MbagConfig, {"lam": -1.0}, ValueError, "lam: expected a value > 0.0, got -1.0"),
    (mbag.MbagConfig, {"lam": "1"}, TypeError, "lam: expected a real number, got str"),
    (mbag.MbagConfig, {"beta": 1.0}, ValueError, "beta: expected a value < 1.0, got 1.0"),
    (mbag.MbagConfig, {"beta": -0.1}, ValueError, "beta: expected a value >= 0.0, got -0.1"),
    (mbag.MbagConfig, {"T_sqr": 0}, ValueError, "T_sqr: expected an integer >= 1, got 0"),
    (mbag.MbagConfig, {"T_sqr": 1.5}, TypeError, "T_sqr: expected an integer, got float"),
    (mbag.MbagConfig, {"T_NS": 0}, ValueError, "T_NS: expected an integer >= 1, got 0"),
    (mbag.MbagConfig, {"T_NS": 2.5}, TypeError, "T_NS: expected an integer, got float"),
    (mbag.MbagConfig, {"tau": 0}, ValueError, "tau: expected an integer >= 1, got 0"),
    (mbag.MbagConfig, {"tau": True}, TypeError, "tau: expected an integer, got bool"),
    (mbag.MbagConfig, {"root_method": "svd"}, ValueError,
     "root_method: expected one of ('newton_schulz', 'eigh'), got 'svd'"),
    (mbag.MbagConfig, {"remainder": "drop"}, ValueError, "remainder: expected one of ('error', 'pad'), got 'drop'"),
    (mbag.MbagEmaConfig, {"lam": 0.0}, ValueError, "lam: expected a value > 0.0, got 0.0"),
    (mbag.MbagEmaConfig, {"T_NS": 0}, ValueError, "T_NS: expected an integer >= 1, got 0"),
    (mbag.MbagEmaConfig, {"alpha": 1.0}, ValueError, "alpha: expected a value < 1.0, got 1.0"),
    (mbag.MbagEmaConfig, {"alpha": -0.5}, ValueError, "alpha: expected a value >= 0.0, got -0.5"),
    (mbag.MbagEmaConfig, {"alpha": "0.9"}, TypeError, "alpha: expected a real number, got str"),
    (mbag.MbagEmaConfig, {"damping_floor": -1e-3}, ValueError, "damping_floor: expected a value >= 0.0, got -0.001"),
    (mbag.MbagEmaConfig, {"damping_floor": "0"}, TypeError, "damping_floor: expected a real number, got str"),
    (mbag.MbagNConfig, {"lam": 0.0}, ValueError, "lam: expected a value > 0.0, got 0.0"),
    (mbag.MbagNConfig, {"beta": -0.1}, ValueError, "beta: expected a value >= 0.0, got -0.1"),
    (mbag.MbagNConfig, {"tau": 0}, ValueError, "tau: expected an integer >= 1, got 0"),
    (mbag.MbagNConfig, {"remainder": "drop"}, ValueError, "remainder: expected one of ('error', 'pad'), got 'drop'"),
])
def test_config_messages_name_the_field(cls, kw, exc, message):
    _raises_exactly(exc, message, cls, **kw)


def test_config_bounds_accept_their_edges():
    """The closed ends are accepted: beta = 0, alpha = 0, damping_floor = 0; lam just above 0 and above 1."""
    for cfg in (mbag.MbagConfig(lam=1e-300, beta=0.0, T_sqr=1, T_NS=1, tau=1),
                mbag.MbagConfig(lam=4.0, beta=0.99),
                mbag.MbagEmaConfig(alpha=0.0, beta=0.0, damping_floor=0.0),
                mbag.MbagEmaConfig(alpha=0.999, damping_floor=2.0),
                mbag.MbagNConfig(lam=1e-300, beta=0.0, tau=1)):
        assert cfg.lam > 0


def test_layout_messages_and_values():
    """tau must divide N under the default remainder="error"; the message lists N's divisors up to 64, the last
    six (hand: 10 -> 1, 2, 5, 10; 65 -> 1, 5, 13 (65 > 64); 60 -> 1, ..., 6, 10, 12, 15, 20, 30, 60)."""
    tail = ", tau=None for the paper's structural groups, or remainder='pad' for a zero-padded remainder block"
    _raises_exactly(ValueError, "tau: 4 does not divide the parameter size N = 10 (shape (2, 5)); use a divisor "
                    "(e.g. 1, 2, 5, 10)" + tail, mbag.layout, (2, 5), 4)
    _raises_exactly(ValueError, "tau: 2 does not divide the parameter size N = 65 (shape (65,)); use a divisor "
                    "(e.g. 1, 5, 13)" + tail, mbag.layout, (65,), 2, "error")
    _raises_exactly(ValueError, "tau: 7 does not divide the parameter size N = 60 (shape (60,)); use a divisor "
                    "(e.g. 10, 12, 15, 20, 30, 60)" + tail, mbag.layout, (60,), 7)
    _raises_exactly(ValueError, "remainder: expected one of ('error', 'pad'), got 'drop'", mbag.layout, (4,), 2, "drop")
    # (num_groups, tau, pad): pad = (-N) mod tau zeros complete the last group
    assert mbag.layout((3, 4)) == (3, 4, 0)
    assert mbag.layout((2, 5), 4, "pad") == (3, 4, 2)
    assert mbag.layout((10,), 3, "pad") == (4, 3, 2)
    assert mbag.layout((10,), 4, "pad") == (3, 4, 2)
    assert mbag.layout((7,), 7, "pad") == (1, 7, 0)
    assert mbag.layout(()) == (1, 1, 0)
    assert mbag.layout((2, 3, 5, 5)) == (6, 25, 0)
    assert mbag.group_size((4, 3, 2)) == 2


def test_group_and_ungroup_messages_and_edges(xp):
    _raises_exactly(TypeError, "W: expected an array, got list", mbag.group, [[1.0, 2.0]])
    _raises_exactly(TypeError, "W: expected a real floating array, got int64", mbag.group,
                    xp.asarray(np.zeros((2, 2), dtype=np.int64)))
    _raises_exactly(TypeError, "blocks: expected an array, got list", mbag.ungroup, [[1.0]], (1,))
    _raises_exactly(ValueError, "blocks: expected a 2-D array, got shape (6,)", mbag.ungroup, arr(xp, np.ones(6)), (6,))
    # a whole group of padding (N = 8 = 12 - 4) is refused; N = 9 (3 padded entries) and N = 12 are not
    _raises_exactly(ValueError, "blocks: shape (3, 4) cannot hold a parameter of shape (8,) (N = 8) with less than "
                    "one group of padding", mbag.ungroup, arr(xp, np.zeros((3, 4))), (8,))
    B = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(np_of(mbag.ungroup(arr(xp, B), (9,))), np.arange(9.0))
    np.testing.assert_array_equal(np_of(mbag.ungroup(arr(xp, B), (2, 6))), np.arange(12.0).reshape(2, 6))
    np.testing.assert_array_equal(np_of(mbag.ungroup(arr(xp, B.reshape(12, 1)), (12,))), np.arange(12.0))
    # float32 with padding stays float32 (the zeros take W's dtype)
    P = mbag.group(arr(xp, np.arange(5.0), "float32"), 2, remainder="pad")
    assert P.dtype == xp.float32
    np.testing.assert_array_equal(np_of(P), [[0.0, 1.0], [2.0, 3.0], [4.0, 0.0]])


# Sherman-Morrison: every refusal with its message, the symmetry tolerance 8 tau u max|H| at its edges, the
# 1 + g^T H g > 0 test at its edge, and the shapes a stack may have (1 x 1, empty, order 4)

def test_sherman_morrison_shape_messages(xp):
    sq = "H: expected a stack of square matrices (..., tau, tau), got shape "
    _raises_exactly(ValueError, sq + "(3,)", mbag.sherman_morrison, arr(xp, np.ones(3)), arr(xp, np.ones(3)))
    _raises_exactly(ValueError, sq + "(2, 3)", mbag.sherman_morrison, arr(xp, np.ones((2, 3))), arr(xp, np.ones(2)))
    _raises_exactly(ValueError, sq + "(0, 0)", mbag.sherman_morrison, arr(xp, np.ones((0, 0))), arr(xp, np.ones(0)))
    _raises_exactly(ValueError, "g: expected shape (4, 3) to match H (4, 3, 3), got (4, 2)", mbag.sherman_morrison,
                    arr(xp, np.ones((4, 3, 3))), arr(xp, np.ones((4, 2))))
    _raises_exactly(ValueError, "g: expected shape (4, 3) to match H (4, 3, 3), got (3,)", mbag.sherman_morrison,
                    arr(xp, np.ones((4, 3, 3))), arr(xp, np.ones(3)))
    _raises_exactly(TypeError, "H: expected an array, got list", mbag.sherman_morrison, [[1.0]], arr(xp, np.ones(1)))
    _raises_exactly(TypeError, "g: expected an array, got list", mbag.sherman_morrison, arr(xp, np.eye(1)), [1.0])
    _raises_exactly(TypeError, "g: dtype float32 does not match H's float64", mbag.sherman_morrison,
                    arr(xp, np.eye(2)), arr(xp, np.ones(2), "float32"))
    _raises_exactly(ValueError, "g: expected finite values, got 1 NaN or inf entry", mbag.sherman_morrison,
                    arr(xp, np.eye(2)), arr(xp, np.array([1.0, np.inf])))
    _raises_exactly(ValueError, "H: expected finite values, got 4 NaN or inf entries", mbag.sherman_morrison,
                    arr(xp, np.full((2, 2), np.nan)), arr(xp, np.ones(2)))


def test_sherman_morrison_refuses_another_array_library():
    xs = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError) as info:
        mbag.sherman_morrison(xs.asarray(np.eye(2)), np.ones(2))
    assert str(info.value) == "g: array library numpy does not match H's array_api_strict._array_object"


def test_sherman_morrison_symmetry_tolerance_at_its_edges(xp):
    """tol = 8 tau u max|H| = 8 * 2 * 2^-53 * 4 = 2^-47 for this H: an asymmetry 2^-48 passes (and the update is
    the rank-one formula), 2^-46 is refused with both numbers in the message."""
    g = np.array([1.0, 0.0])
    ok = np.array([[4.0, 1.0], [1.0 + 2.0**-48, 4.0]])
    out = np_of(mbag.sherman_morrison(arr(xp, ok), arr(xp, g)))
    # H g = (4, 1 + 2^-48), 1 + g^T H g = 5: H - (H g)(H g)^T / 5; the products below round once each (4 u)
    u = ok @ g
    np.testing.assert_allclose(out, ok - np.outer(u, u) / 5.0, rtol=0, atol=4 * U["float64"] * 4)
    bad = np.array([[4.0, 1.0], [1.0 + 2.0**-46, 4.0]])
    _raises_exactly(ValueError, "H: expected symmetric matrices, but max|H - H^T| = 1.42e-14 > tol = 7.11e-15",
                    mbag.sherman_morrison, arr(xp, bad), arr(xp, g))
    # tau is the matrix size of any stack: (1, 1, 2, 2) keeps tol = 2^-47, so an asymmetry 3 * 2^-49 passes
    ok4 = np.array([[4.0, 1.0], [1.0 + 3 * 2.0**-49, 4.0]])[None, None]
    assert tuple(mbag.sherman_morrison(arr(xp, ok4), arr(xp, g[None, None])).shape) == (1, 1, 2, 2)
    # H = 0: tol = 0 and max|H - H^T| = 0 pass; g^T H g = 0 and the update is H itself
    np.testing.assert_array_equal(np_of(mbag.sherman_morrison(arr(xp, np.zeros((2, 2))), arr(xp, g))),
                                  np.zeros((2, 2)))


def test_sherman_morrison_positivity_test_at_its_edge(xp):
    """1 + g^T H g > 0 is required, group by group: with g = (1, 1), H = h I gives 1 + 2h: h = -0.75 -> -0.5,
    h = -0.5 -> 0 exactly, h = -4 -> -7 (all refused); g = 0 gives 1 and returns H unchanged."""
    msg = "H: 1 + g^T H g <= 0, so H is not positive semi-definite along g"
    g = arr(xp, np.ones(2))
    for h in (-0.75, -0.5, -4.0):
        _raises_exactly(ValueError, msg, mbag.sherman_morrison, arr(xp, h * np.eye(2)), g)
    # one bad group in a stack is enough (the sum is per group: 1 - 1.5 and 1 + 2)
    _raises_exactly(ValueError, msg, mbag.sherman_morrison, arr(xp, np.stack([-0.75 * np.eye(2), np.eye(2)])),
                    arr(xp, np.ones((2, 2))))
    H = np.array([[2.0, 1.0], [1.0, 3.0]])
    np.testing.assert_array_equal(np_of(mbag.sherman_morrison(arr(xp, H), arr(xp, np.zeros(2)))), H)


def test_sherman_morrison_one_by_one_empty_and_order_four(xp):
    """1 x 1: (1/2 + 3^2)^{-1} = 2/19, 2 - 36/19 with one rounding in 36/19 and a cancellation by 19: 19 * 2 u.
    Empty stacks return empty stacks; an order-4 stack (2, 1, 3, 3) is the per-matrix update."""
    one = np_of(mbag.sherman_morrison(arr(xp, [[2.0]]), arr(xp, [3.0])))
    assert one.shape == (1, 1) and abs(one[0, 0] - 2 / 19) <= 19 * 2 * U["float64"] * (2 / 19)
    e = mbag.sherman_morrison(arr(xp, np.zeros((0, 3, 3))), arr(xp, np.zeros((0, 3))))
    assert tuple(e.shape) == (0, 3, 3)
    e = mbag.sherman_morrison(arr(xp, np.zeros((1, 0, 2, 2))), arr(xp, np.zeros((1, 0, 2))))
    assert tuple(e.shape) == (1, 0, 2, 2)
    rng = np.random.default_rng(17)
    Hs = np.stack([np.eye(3) * (i + 1.0) for i in range(2)])[:, None]       # (2, 1, 3, 3)
    gs = rng.standard_normal((2, 1, 3))
    out = np_of(mbag.sherman_morrison(arr(xp, Hs), arr(xp, gs)))
    assert out.shape == (2, 1, 3, 3)
    for i in range(2):
        want, _ = _mp_direct_inverse(1.0 / (i + 1.0), [gs[i, 0]])
        assert M.rel_error(out[i, 0], want) <= 8 * 3 * U["float64"] * (1 + (i + 1) * float(gs[i, 0] @ gs[i, 0]))


# Newton-Schulz: messages, exact 1 x 1 values, the power-of-two rescaling's exactness at the ends of the range

def test_batched_newton_schulz_messages_and_shapes(xp):
    _raises_exactly(ValueError, "A: expected a stack of square matrices, got shape (3,)", mbag.batched_newton_schulz,
                    arr(xp, np.ones(3)), 2)
    _raises_exactly(ValueError, "A: expected a stack of square matrices, got shape (2, 3)",
                    mbag.batched_newton_schulz, arr(xp, np.ones((2, 3))), 2)
    _raises_exactly(ValueError, "num_iters: expected an integer >= 1, got 0", mbag.batched_newton_schulz,
                    arr(xp, np.eye(2)), 0)
    _raises_exactly(TypeError, "A: expected an array, got list", mbag.batched_newton_schulz, [[1.0]], 2)
    # a matrix, a stack and an order-4 stack: the same per-matrix iteration (tolerance as in the mp comparisons)
    rng = np.random.default_rng(18)
    Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    A = (Q * np.array([1.0, 0.5, 0.1])) @ Q.T
    A = (A + A.T) / 2
    ref = mbag.batched_newton_schulz(arr(xp, A[None]), 4)
    tol = 4 * 4 * 3 * U["float64"] * math.sqrt(10.0)
    for stack in (A, np.stack([A, 2 * A])[:, None]):
        r = mbag.batched_newton_schulz(arr(xp, stack), 4)
        assert tuple(r.sqrt.shape) == stack.shape and tuple(r.residual.shape) == stack.shape[:-2]
        assert rel(np_of(r.sqrt).reshape(-1, 3, 3)[0], ref.sqrt[0, ...]) <= tol
        assert rel(np_of(r.inv_sqrt).reshape(-1, 3, 3)[0], ref.inv_sqrt[0, ...]) <= tol
    r32 = mbag.batched_newton_schulz(arr(xp, A[None], "float32"), 4)
    assert r32.sqrt.dtype == xp.float32 and r32.inv_sqrt.dtype == xp.float32 and r32.residual.dtype == xp.float32


@pytest.mark.parametrize("dtype", DTYPES)
def test_batched_newton_schulz_one_by_one_is_exact(xp, dtype):
    """A = [[4]]: s = 4, X_0 = Y_0 = 1 is the fixed point (T = 3 - 1 = 2, X = X T / 2 = 1), so sqrt = sqrt(4) * 1 = 2,
    inv_sqrt = 1 / 2 and the residual ||1 - 1||_F = 0, all exactly, for any T_NS."""
    r = mbag.batched_newton_schulz(arr(xp, [[[4.0]]], dtype), 3)
    np.testing.assert_array_equal(np_of(r.sqrt), [[[2.0]]])
    np.testing.assert_array_equal(np_of(r.inv_sqrt), [[[0.5]]])
    assert np_of(r.residual).tolist() == [0.0]


@pytest.mark.parametrize("dtype,k", [("float64", 300), ("float32", 50)])
def test_newton_schulz_scaling_is_exact_at_the_ends_of_the_range(xp, dtype, k):
    """s = ||A||_F is computed on A scaled by a power of two near max|A| (exact), so A and 4^{+-k} A (k = 300 in
    float64, 50 in float32: squares of the entries would under- or overflow without the scaling) give the same
    iterates; sqrt(s) and 1/sqrt(s) then scale by 2^{+-k} exactly: the outputs are equal bit for bit."""
    rng = np.random.default_rng(19)
    Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    A = (Q * np.array([1.0, 0.3, 0.05])) @ Q.T
    A = np.stack([(A + A.T) / 2, np.diag([2.0, 1.0, 0.5])]).astype(dtype)
    base = mbag.batched_newton_schulz(arr(xp, A, dtype), 5)
    for sign in (-1, 1):
        c = 2.0 ** (2 * sign * k)
        r = mbag.batched_newton_schulz(arr(xp, A * np.asarray(c, dtype=dtype), dtype), 5)
        h = 2.0 ** (sign * k)
        np.testing.assert_array_equal(np_of(r.sqrt), np_of(base.sqrt) * h)
        np.testing.assert_array_equal(np_of(r.inv_sqrt), np_of(base.inv_sqrt) / h)
        np.testing.assert_array_equal(np_of(r.residual), np_of(base.residual))
    # one stack holding both ends: each matrix gets its own power of two
    mixed = np.stack([A[0] * np.asarray(2.0 ** (-2 * k), dtype=dtype), A[1] * np.asarray(2.0 ** (2 * k), dtype=dtype)])
    r = mbag.batched_newton_schulz(arr(xp, mixed, dtype), 5)
    np.testing.assert_array_equal(np_of(r.sqrt), np_of(base.sqrt) * np.array([2.0**-k, 2.0**k])[:, None, None])
    np.testing.assert_array_equal(np_of(r.residual), np_of(base.residual))
    assert 0 < float(np_of(base.residual)[0]) < 1  # a real residual (T_NS = 5 has not converged at kappa 20)


# exact roots by eigh: refusals with their numbers, clipping at the numerical-rank tolerance

def test_eigh_root_of_H_values_and_refusals():
    """root_method="eigh": exact H^{1/2} of diagonal stacks (eigh of a diagonal matrix is exact); a tiny eigenvalue
    2^-60 (below 4 tau u lambda_max) is still a positive one and keeps its root 2^-30; H = 0 has root 0; a negative
    one within the rank tolerance is clipped to 0; beyond it, refused with lambda_min / lambda_max of the worst
    group (hand: -2^-42 / 0.25 = -2^-40 = -9.09e-13), each group against its own lambda_max."""
    cfg = mbag.MbagConfig(root_method="eigh")
    xp = backend.get_namespace("numpy")
    H = np.stack([np.diag([1.0, 2.0**-60]), np.zeros((2, 2)), np.diag([-2.0**-60, 1.0]), np.diag([4.0, 0.25])])
    root, residual = mbag._root_of_H(xp.asarray(H), cfg, xp)
    want = np.stack([np.diag([1.0, 2.0**-30]), np.zeros((2, 2)), np.diag([0.0, 1.0]), np.diag([2.0, 0.5])])
    np.testing.assert_allclose(np.asarray(root), want, rtol=4 * U["float64"], atol=0)
    np.testing.assert_array_equal(np.asarray(residual), np.zeros(4))
    bad = np.stack([2.0**20 * np.eye(2), np.zeros((2, 2)), np.diag([-2.0**-42, 0.25])])  # a zero group divides by 1
    _raises_exactly(ValueError, "H: a group's statistic is not positive semi-definite (lambda_min / lambda_max = "
                    "-9.09e-13); in float32 this happens once kappa(G) nears 1/(tau u): use float64 or a larger lam",
                    mbag._root_of_H, xp.asarray(bad), cfg, xp)


# MBAG-EMA's damping (errata 29)

@pytest.mark.parametrize("dtype,t", [("float64", 60), ("float32", 20)])
def test_ema_damping_exact_values(xp, dtype, t):
    """ema_damping = (max(alpha^t lam, f), max(0, f - alpha^t lam)) per group, by hand with powers of two:
    alpha = 1/2, lam = 3/4. Automatic floor f = 16 tau u ||G||_F: group diag(3, 4) (||.||_F = 5) gives
    f = 5 * 2^5 u (u = 2^-53: 5 * 2^-48; u = 2^-24: 5 * 2^-19) above alpha^t lam = 3 * 2^-(t+2), so damping = f and
    extra = f - 3 * 2^-(t+2); group diag(2^-70, 0) gives f = 2^5 u 2^-70 below it: damping = alpha^t lam, extra 0.
    Absolute floor 1/4: at t = 1, 3/8 is above (extra 0); at t = 3, 3/32 is below (extra 5/32, damping 1/4)."""
    cfg = mbag.MbagEmaConfig(alpha=0.5, lam=0.75)
    G = arr(xp, np.stack([np.diag([3.0, 4.0]), np.diag([2.0**-70, 0.0])]), dtype)
    f = 5.0 * 2.0**5 * U[dtype]
    paper = 3.0 * 2.0 ** -(t + 2)
    damping, extra = mbag.ema_damping(t, cfg, G)
    assert damping.dtype == getattr(xp, dtype) and tuple(damping.shape) == (2,) and tuple(extra.shape) == (2,)
    assert np_of(damping).tolist() == [f, paper]
    assert np_of(extra).tolist() == [f - paper, 0.0]
    fixed = mbag.MbagEmaConfig(alpha=0.5, lam=0.75, damping_floor=0.25)
    for step, d, e in ((1, 0.375, 0.0), (3, 0.25, 0.15625)):
        damping, extra = mbag.ema_damping(step, fixed, G, xp)
        assert damping.dtype == getattr(xp, dtype) and extra.dtype == getattr(xp, dtype)
        assert np_of(damping).tolist() == [d, d] and np_of(extra).tolist() == [e, e]


def test_ema_exact_root_with_a_floor_on_a_singular_statistic():
    """alpha = 0: G_1 = g g^T = diag(1, 0) for g = (1, 0) and alpha^1 lam = 0, so the damping is the floor alone.
    Floor 1e-30: the root (G + 1e-30 I)^{-1/2} = diag((1 + 1e-30)^{-1/2}, 1e15) is taken (an eigenvalue 1e-30 of
    G + extra I is positive however small; a RuntimeWarning says G is singular) and the direction is g. Floor 0:
    the exact root of a singular G does not exist and is refused."""
    g = np.array([1.0, 0.0])
    cfg = mbag.MbagEmaConfig(alpha=0.0, beta=0.0, T_sqr=1, root_method="eigh", damping_floor=1e-30)
    with pytest.warns(RuntimeWarning, match="numerically singular"):
        d, st_ = mbag.mbag_ema_update(g, mbag.mbag_ema_init((2,), cfg), cfg)
    np.testing.assert_array_equal(np.asarray(st_.G), np.diag([1.0, 0.0])[None])
    np.testing.assert_allclose(np.asarray(st_.root), np.diag([1.0, 1e15])[None], rtol=4 * U["float64"], atol=0)
    np.testing.assert_allclose(np.asarray(d), g, rtol=4 * U["float64"], atol=0)
    cfg0 = mbag.MbagEmaConfig(alpha=0.0, beta=0.0, T_sqr=1, root_method="eigh", damping_floor=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _raises_exactly(ValueError, "G: a group's statistic is singular (damping underflowed to 0); set "
                        "damping_floor > 0", mbag.mbag_ema_update, g, mbag.mbag_ema_init((2,), cfg0), cfg0)


def test_initial_states_exact(xp):
    """Init: H_0 = I / lam, root I / sqrt(lam) (MBAG); G_0 = lam I, root I / sqrt(lam) (MBAG-EMA); H_0 = I / lam
    (MBAG-N); v = 0, residual = 0, count 0 (int32), template (0, *shape). lam = 1/4: every entry exact."""
    shape = (2, 3)
    for name, Cfg, mats in (("mbag", mbag.MbagConfig, {"H": 4.0, "root": 2.0}),
                            ("mbag_ema", mbag.MbagEmaConfig, {"G": 0.25, "root": 2.0}),
                            ("mbag_n", mbag.MbagNConfig, {"H": 4.0})):
        for dtype in DTYPES:
            st_ = algorithm.get(name).init(shape, Cfg(lam=0.25), dtype=getattr(xp, dtype), xp=xp)
            for field, diag in mats.items():
                a = getattr(st_, field)
                assert a.dtype == getattr(xp, dtype)
                np.testing.assert_array_equal(np_of(a), np.broadcast_to(diag * np.eye(3), (2, 3, 3)))
            np.testing.assert_array_equal(np_of(st_.v), np.zeros((2, 3)))
            assert st_.v.dtype == getattr(xp, dtype) and st_.template.dtype == getattr(xp, dtype)
            assert tuple(st_.template.shape) == (0, 2, 3)
            assert int(st_.count) == 0 and st_.count.dtype == xp.int32
            if name != "mbag_n":
                assert st_.residual.dtype == getattr(xp, dtype)
                np.testing.assert_array_equal(np_of(st_.residual), np.zeros(2))


def test_init_refuses_another_config():
    _raises_exactly(TypeError, "config: expected MbagConfig, got MbagNConfig", mbag.mbag_init, (2, 3),
                    mbag.MbagNConfig())
    _raises_exactly(TypeError, "config: expected MbagEmaConfig, got MbagConfig", mbag.mbag_ema_init, (2, 3),
                    mbag.MbagConfig())
    _raises_exactly(TypeError, "config: expected MbagNConfig, got MbagEmaConfig", mbag.mbag_n_init, (2, 3),
                    mbag.MbagEmaConfig())


def test_update_messages_name_the_state_field(xp):
    cfg = mbag.MbagConfig(tau=3)
    state = mbag.mbag_init((2, 3), cfg, xp=xp)
    _raises_exactly(ValueError, "grad: shape (3, 2) does not match the state's parameter shape (2, 3) (from "
                    "state.template)", mbag.mbag_update, arr(xp, np.zeros((3, 2))), state, cfg)
    _raises_exactly(TypeError, "grad: dtype float32 does not match the state's float64 (from state.template); cast "
                    "the gradient or re-init the state", mbag.mbag_update, arr(xp, np.zeros((2, 3)), "float32"),
                    state, cfg)


def test_overflow_limits_at_their_edges():
    """MBAG's guard: ||g||^2 <= min(lam, lam^2) F (module inverse: (H g)(H g)^T has entries <= ||g||^2 / lam^2);
    lam = 2^-8: limit 2^-8 sqrt(F). 0.99 of it is accepted, and step 1 (before a refresh) returns R_0 g = 16 g
    exactly; 1.01 of it is refused by the guard. MBAG-EMA's g g^T: limit sqrt(F), the same two checks."""
    F = float(np.finfo(np.float64).max)
    for alg, cfg, limit, what in (
            (mbag.mbag, mbag.MbagConfig(lam=2.0**-8, T_sqr=2, tau=2), 2.0**-8 * math.sqrt(F),
             r"the Sherman-Morrison term \(H g\)\(H g\)\^T"),
            (mbag.mbag_ema, mbag.MbagEmaConfig(lam=2.0**-8, T_sqr=2, tau=2), math.sqrt(F), r"the statistic g g\^T")):
        state = alg.init((2,), cfg)
        g = np.full(2, 0.99 * limit / math.sqrt(2.0))
        d, _ = alg.update(g, state, cfg)
        np.testing.assert_array_equal(np.asarray(d), 16.0 * g)
        with pytest.raises(validate.OverflowLimitError, match=r"^grad: \|\|grad\|\|_F = .* is above the overflow "
                           r"limit .* of " + what + r" in float64$"):
            alg.update(np.full(2, 1.01 * limit / math.sqrt(2.0)), state, cfg)


# the optimizers against their mp twins on cases the shared twin tests (tests/test_twins.py) do not cover: an
# active absolute damping floor, a stale root with padding, Newton-Schulz with momentum, in float64 and float32

TWIN_CASES = [
    ("mbag_ema", {"T_sqr": 1, "alpha": 0.5, "lam": 0.1, "damping_floor": 0.02, "beta": 0.5, "root_method": "eigh"},
     (2, 3)),
    ("mbag_ema", {"T_sqr": 1, "alpha": 0.5, "lam": 0.1, "damping_floor": 0.02, "beta": 0.5, "T_NS": 6}, (2, 3)),
    ("mbag_ema", {"T_sqr": 3, "alpha": 0.8, "lam": 0.5, "tau": 4, "remainder": "pad", "T_NS": 6}, (7,)),
    ("mbag", {"T_sqr": 2, "lam": 0.5, "tau": 4, "remainder": "pad", "T_NS": 6, "beta": 0.5}, (7,)),
    ("mbag_n", {"lam": 0.5, "tau": 3, "remainder": "pad", "beta": 0.5}, (2, 4)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", TWIN_CASES, ids=[f"{a}-{i}" for i, (a, _, _) in enumerate(TWIN_CASES)])
def test_float_runs_match_twins(case, dtype):
    """Every step's statistic, root and direction against the mp twin (proofs_check.twins), within the MBAG rule
    of krad_ref.crossval.tolerance (tests/test_twins.py's stated tolerance; C = 32, n = tau, per group)."""
    from krad_ref.crossval import tolerance as TM
    from proofs_check import twins as T

    alg_id, kw, shape = case
    alg = algorithm.get(alg_id)
    cfg = alg.Config(**kw)
    rng = np.random.default_rng(20)
    grads = [rng.standard_normal(shape).astype(dtype) for _ in range(6)]
    twin = T.twin_trajectory(alg_id, cfg, grads, dps=50, floor_dtype=dtype) if alg_id == "mbag_ema" else \
        T.twin_trajectory(alg_id, cfg, grads, dps=50)
    expected = [{"factors": tuple(T.to_float(F) for F in r["factors"]),
                 "roots": tuple(T.to_float(R) for R in r["roots"]) if "roots" in r else None,
                 "direction": np.asarray(T.to_float(r["direction"]), dtype=np.float64)} for r in twin]
    init = alg.init(shape, cfg)
    F0 = init.G if alg_id == "mbag_ema" else init.H
    tols = TM.step_tolerances(alg_id, cfg, shape, expected, grads, dtype, init_factors=(F0,))
    state = alg.init(shape, cfg, dtype=dtype)
    for k, (G, rec, tol) in enumerate(zip(grads, twin, tols), 1):
        direction, state = alg.update(G, state, cfg)
        F = state.G if alg_id == "mbag_ema" else state.H
        checks = [("factors", T.rel_error(F, rec["factors"][0]), tol["factors"][0]),
                  ("direction", T.rel_error(direction, rec["direction"]), tol["direction"])]
        if alg_id != "mbag_n":
            checks.append(("roots", T.rel_error(state.root, rec["roots"][0]), tol["roots"][0]))
            assert state.root.dtype == np.dtype(dtype) and state.residual.dtype == np.dtype(dtype)
        for what, err, t in checks:
            assert err <= t, f"step {k} {what}: rel err {err:.3g} > tol {t:.3g}"
            if dtype == "float64":
                assert t < 1e-6, f"step {k} {what}: float64 tolerance {t:.3g} is no real check"
