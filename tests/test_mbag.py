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

from krad_ref import adagrad, algorithm, backend, linalg, mbag
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
        16 * tau * U[dtype] * float(np.linalg.norm(np_of(state.G)[0])), rel=1e-5)


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
