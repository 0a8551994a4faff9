"""Tests of krad_ref.shampoo under every array namespace (fixture ``xp``): closed forms, bridges, precision, errors.

Tolerance model (Higham, Accuracy and Stability, Ch. 3; Functions of Matrices, Ch. 3): u is the unit roundoff of
the dtype under test, n the matrix order, kappa = lambda_max / lambda_min of the regularised statistic. An inverse
root S^{-1/e} from a backward-stable eigh has relative error <~ C n u kappa / e; the preconditioned direction
multiplies two such roots into G (a few more n u). Each assertion states its constant and why.

Closed forms used (derived in the comments where used): for a rank-one G = sigma u v^T (unit u, v),
B = eps I + sigma^2 u u^T has B^{-1/4} u = (eps + sigma^2)^{-1/4} u, so B^{-1/4} G C^{-1/4} = G / sqrt(eps + sigma^2);
the same holds for an order-p rank-one tensor (p factors of (eps + sigma^2)^{-1/(2p)}) and for a vector (e = 2).
"""
from __future__ import annotations

import functools

import mpmath
import numpy as np
import pytest

from krad_ref import adagrad, algorithm, backend, linalg, shampoo

DTYPES = ("float32", "float64")


U = {"float32": 2.0**-24, "float64": 2.0**-53}  # unit roundoff (Higham Sec. 2.2)


def u_of(dtype: str) -> float:
    return U[dtype]


def np_of(x) -> np.ndarray:
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def arr(xp, a, dtype="float64"):
    return xp.asarray(np.asarray(a, dtype=dtype))


def run(xp, grads, config, dtype="float64", shape=None):
    """Feed ``grads`` (NumPy arrays) through init/update; return the directions (NumPy float64) and the state."""
    shape = grads[0].shape if shape is None else shape
    state = shampoo.init(shape, config, dtype=getattr(xp, dtype), xp=xp)
    out = []
    for G in grads:
        d, state = shampoo.update(arr(xp, G, dtype), state, config)
        out.append(d)
    return out, state


def rel(a, b) -> float:
    a, b = np_of(a), np_of(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# exactly representable orthonormal vectors (entries +-1/2, 0, 1): products are exact in both dtypes
U1 = np.array([1.0, 1.0, 1.0, 1.0]) / 2
U2 = np.array([1.0, -1.0, 1.0, -1.0]) / 2
V1 = np.array([1.0, 0.0])
V2 = np.array([0.0, 1.0])


# ---------------------------------------------------------------------------------------------------------
# closed forms for steps 1-2

@pytest.mark.parametrize("dtype", DTYPES)
def test_rank_one_steps_closed_form(xp, dtype):
    """Steps 1-2 with rank-one gradients on a 4 x 2 matrix: orthogonal and parallel second gradients."""
    eps, s1, s2 = 0.25, 3.0, 0.5
    cfg = shampoo.Config(eps=eps)
    G1 = s1 * np.outer(U1, V1)
    G2o = s2 * np.outer(U2, V2)  # u2 ⟂ u1, v2 ⟂ v1: B_2 acts on u2 with eps + s2^2 only
    G2p = s2 * np.outer(U1, V1)  # parallel: B_2 acts on u1 with eps + s1^2 + s2^2
    (d1, d2o), _ = run(xp, [G1, G2o], cfg, dtype)
    (_, d2p), _ = run(xp, [G1, G2p], cfg, dtype)
    kappa = (eps + s1**2 + s2**2) / eps
    tol = 8 * 4 * u_of(dtype) * kappa  # two roots of kappa-conditioned 4x4 / 2x2 statistics, C = 8
    assert rel(d1, G1 / np.sqrt(eps + s1**2)) <= tol
    assert rel(d2o, G2o / np.sqrt(eps + s2**2)) <= tol
    assert rel(d2p, G2p / np.sqrt(eps + s1**2 + s2**2)) <= tol
    assert d1.dtype == getattr(xp, dtype) and tuple(d1.shape) == (4, 2)


def test_tensor_order3_rank_one(xp):
    """Order-3 rank-one tensor: three roots of exponent -1/6 multiply to (eps + sigma^2)^{-1/2}."""
    eps, s = 0.5, 2.0
    a, b, c = U1, np.array([0.6, 0.8]), np.array([0.0, 1.0, 0.0])  # 0.6, 0.8 rounded: rank one up to u
    G = s * np.einsum("i,j,k->ijk", a, b, c)
    cfg = shampoo.Config(eps=eps)
    assert shampoo.exponent(3, cfg) == 6.0
    (d1, d2), state = run(xp, [G, G], cfg)
    assert [tuple(S.shape) for S in state.stats] == [(4, 4), (2, 2), (3, 3)]
    kappa = (eps + 2 * s**2) / eps
    tol = 8 * 4 * u_of("float64") * kappa  # three roots, C = 8 as above
    assert rel(d1, G / np.sqrt(eps + s**2)) <= tol
    assert rel(d2, G / np.sqrt(eps + 2 * s**2)) <= tol


def test_vector_closed_form(xp):
    """Order 1: (eps I + g g^T)^{-1/2} g = g / sqrt(eps + |g|^2) on step 1 (exponent -1/2)."""
    g = np.array([1.0, -2.0, 0.5])
    cfg = shampoo.Config(eps=0.1)
    (d,), _ = run(xp, [g], cfg)
    assert shampoo.exponent(1, cfg) == 2.0
    assert rel(d, g / np.sqrt(0.1 + g @ g)) <= 8 * 3 * u_of("float64") * (0.1 + g @ g) / 0.1


@pytest.mark.parametrize("variant", ["paper", "reference-code"])
def test_general_two_steps_vs_numpy_eigh(xp, variant):
    """Random 3 x 5 gradients, two steps, against the formulas written out with numpy.linalg.eigh (float64)."""
    rng = np.random.default_rng(7)
    Gs = [rng.standard_normal((3, 5)) for _ in range(2)]
    eps = 1e-2
    cfg = shampoo.Config(eps=eps, variant=variant)
    ds, state = run(xp, Gs, cfg)

    def root(S):
        if variant == "paper":  # Eq. (3) on B = eps I + S
            w, V = np.linalg.eigh(S + eps * np.eye(len(S)))
        else:  # code: eigh(S + 1e-8 I) with S = eps I + sum G G^T, eigenvalues floored at eps
            w, V = np.linalg.eigh(S + 1e-8 * np.eye(len(S)))
            w = np.maximum(w, eps)
        return (V * w**-0.25) @ V.T

    S0 = (eps * np.eye(3) if variant == "reference-code" else np.zeros((3, 3)))
    S1 = (eps * np.eye(5) if variant == "reference-code" else np.zeros((5, 5)))
    for G, d in zip(Gs, ds):
        S0, S1 = S0 + G @ G.T, S1 + G.T @ G
        want = root(S0) @ G @ root(S1)
        kappa = np.linalg.cond(S0 + eps * np.eye(3)) + np.linalg.cond(S1 + eps * np.eye(5))
        assert rel(d, want) <= 8 * 5 * u_of("float64") * kappa  # both sides carry eigh error; C = 8
    np.testing.assert_allclose(np_of(state.stats[0]), S0, rtol=0, atol=16 * u_of("float64") * np.abs(S0).max())


# ---------------------------------------------------------------------------------------------------------
# bridges (errata 4)

@pytest.mark.parametrize("dtype", DTYPES)
def test_vector_equals_full_matrix_adagrad(xp, dtype):
    """Shampoo on an order-1 parameter IS full-matrix AdaGrad (delta I + sum g g^T)^{-1/2} g with delta = eps.

    Both keep H = sum g g^T by the same outer products in the same order (compared bit for bit) and take the
    root by the same psd_power call; only the final matrix-vector product may round differently: <= 2 N u per
    entry of |P| |g| (Higham Eq. 3.4), N = 6.
    """
    rng = np.random.default_rng(3)
    gs = [rng.standard_normal(6) for _ in range(5)]
    delta = 1e-3
    cs, ca = shampoo.Config(eps=delta), adagrad.AdagradFullConfig(delta=delta)
    st_s = shampoo.init((6,), cs, dtype=getattr(xp, dtype), xp=xp)
    st_a = adagrad.adagrad_full_init((6,), ca, dtype=getattr(xp, dtype), xp=xp)
    for g in gs:
        gx = arr(xp, g, dtype)
        ds, st_s = shampoo.update(gx, st_s, cs)
        da, st_a = adagrad.adagrad_full_update(gx, st_a, ca)
        assert np.array_equal(np_of(st_s.stats[0]), np_of(st_a.H))
        bound = 2 * 6 * u_of(dtype) * (np.abs(np_of(st_s.roots[0])) @ np.abs(np_of(gx)))
        assert np.all(np.abs(np_of(ds) - np_of(da)) <= bound)


def test_row_matrix_is_not_full_matrix_adagrad(xp):
    """A 1 x n matrix gets B^{-1/4} g^T C^{-1/4} under the paper variant: equal to AdaGrad on step 1, not after.

    g_1 = e_1, g_2 = e_2 (n = 2). Step 2: B = eps + 2 (1 x 1), C = (1 + eps) I, so Shampoo gives
    e_2 (2 + eps)^{-1/4} (1 + eps)^{-1/4}; AdaGrad gives e_2 (1 + eps)^{-1/2}; ratio ((1 + eps)/(2 + eps))^{1/4}.
    """
    eps = 1e-3
    g1, g2 = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    (s1, s2), _ = run(xp, [g1, g2], shampoo.Config(eps=eps))
    ca = adagrad.AdagradFullConfig(delta=eps)
    st = adagrad.adagrad_full_init((1, 2), ca, xp=xp)
    a1, st = adagrad.adagrad_full_update(arr(xp, g1), st, ca)
    a2, st = adagrad.adagrad_full_update(arr(xp, g2), st, ca)
    tol = 32 * u_of("float64")  # 1x1 and 2x2 diagonal statistics, kappa <= 2e3 but eigh of a diagonal is exact
    assert rel(s1, a1) <= tol  # rank one: both g / sqrt(eps + |g|^2)
    assert rel(s2, g2 * (2 + eps) ** -0.25 * (1 + eps) ** -0.25) <= tol
    assert rel(a2, g2 * (1 + eps) ** -0.5) <= tol
    assert rel(s2, a2) > 0.1  # ((1 + eps) / (2 + eps))^{1/4} = 0.841: they differ by 16 %


def test_start_beyond_horizon_returns_gradient(xp):
    """With start_preconditioning_step past the run, every direction is G itself (a copy), = SGD without momentum,
    while the statistics still accumulate and the roots are refreshed."""
    rng = np.random.default_rng(11)
    Gs = [rng.standard_normal((3, 2)) for _ in range(4)]
    cfg = shampoo.Config(eps=0.1, start_preconditioning_step=10)
    ds, state = run(xp, Gs, cfg)
    sg_cfg = adagrad.SgdConfig()
    sg_state = adagrad.sgd_init((3, 2), sg_cfg, xp=xp)
    for G, d in zip(Gs, ds):
        assert np.array_equal(np_of(d), G)
        e, sg_state = adagrad.sgd_update(arr(xp, G), sg_state, sg_cfg)
        assert np.array_equal(np_of(d), np_of(e))
    S0 = sum(G @ G.T for G in Gs)
    np.testing.assert_allclose(np_of(state.stats[0]), S0, rtol=0, atol=16 * u_of("float64") * np.abs(S0).max())
    assert not np.allclose(np_of(state.roots[0]), np.eye(3))  # refreshed on schedule (root_freq = 1)
    assert int(state.count) == 4


# ---------------------------------------------------------------------------------------------------------
# options: schedules, beta2, exponent override, eps modes, the reference-code variant

def test_update_and_root_frequencies(xp):
    """update_freq = root_freq = 2: k = 1 skips both (identity roots: d = G), k = 2 uses G_2 alone, k = 3 reuses."""
    eps, s1, s2, s3 = 0.25, 3.0, 0.5, 1.5
    G1, G2, G3 = s1 * np.outer(U1, V1), s2 * np.outer(U2, V2), s3 * np.outer(U2, V2)
    cfg = shampoo.Config(eps=eps, update_freq=2, root_freq=2)
    (d1, d2, d3), state = run(xp, [G1, G2, G3], cfg)
    tol = 8 * 4 * u_of("float64") * (eps + s2**2) / eps
    assert np.array_equal(np_of(d1), G1)  # identity roots, multiplied exactly
    assert rel(d2, G2 / np.sqrt(eps + s2**2)) <= tol  # G_1 never entered the statistic
    assert rel(d3, G3 / np.sqrt(eps + s2**2)) <= tol  # stats and roots from step 2 (k = 3 is odd)
    np.testing.assert_array_equal(np_of(state.stats[0]), np.outer(U2, U2) * s2**2)  # exact: entries +-1/16

    cfg = shampoo.Config(eps=eps, root_freq=2)  # statistics every step, roots every other
    (e1, e2), _ = run(xp, [G1, G2], cfg)
    assert np.array_equal(np_of(e1), G1)
    assert rel(e2, G2 / np.sqrt(eps + s2**2)) <= tol  # u2 ⟂ u1: the G_1 part does not act on G_2


def test_beta2_decay(xp):
    """beta2 < 1: S_1 = (1 - b) s1^2 u u^T, S_2 = (b (1 - b) s1^2 + (1 - b) s2^2) u u^T (parallel gradients)."""
    eps, b, s1, s2 = 0.1, 0.9, 2.0, 1.0
    G1, G2 = s1 * np.outer(U1, V1), s2 * np.outer(U1, V1)
    (d1, d2), _ = run(xp, [G1, G2], shampoo.Config(eps=eps, beta2=b))
    lam1 = (1 - b) * s1**2
    lam2 = b * lam1 + (1 - b) * s2**2
    tol = 8 * 4 * u_of("float64") * (eps + lam1) / eps
    assert rel(d1, G1 / np.sqrt(eps + lam1)) <= tol
    assert rel(d2, G2 / np.sqrt(eps + lam2)) <= tol


def test_exponent_override(xp):
    """exponent_override = 2 on a matrix: B^{-1/2} G C^{-1/2} = G / (eps + sigma^2) for rank one."""
    eps, s = 0.5, 2.0
    G = s * np.outer(U1, V1)
    cfg = shampoo.Config(eps=eps, exponent_override=2)
    assert shampoo.exponent(2, cfg) == 2.0
    (d,), _ = run(xp, [G], cfg)
    assert rel(d, G / (eps + s**2)) <= 8 * 4 * u_of("float64") * (eps + s**2) / eps


def test_pinv_mode_rank_one(xp):
    """eps_mode = "pinv" (eps = 0): the zero eigenvalues are dropped, so d = G / sigma = G / ||G||_F."""
    G = 3.0 * np.outer(U1, V1)
    (d,), _ = run(xp, [G], shampoo.Config(eps=0.0, eps_mode="pinv"))
    assert rel(d, G / 3.0) <= 64 * 4 * u_of("float64")  # truncation at 4 n u lambda_max is clean: eigenvalues 0 and 9


def test_pinv_rcond_drops_the_weaker_direction(xp):
    """rcond (pinv only): G = 2 u1 v1^T + u2 v2^T has statistics with eigenvalues 4 and 1. The rule keeps both, so
    d = u1 v1^T + u2 v2^T (each s_i^{-1/2} s_i s_i^{-1/2} = 1); rcond = 0.5 drops 1 <= 0.5 * 4, so d = u1 v1^T."""
    G = 2.0 * np.outer(U1, V1) + np.outer(U2, V2)
    tol = 64 * 4 * u_of("float64")  # exact spectra 4, 1, 0, 0 (kappa_r = 4), far from the cutoffs: as above
    (d,), _ = run(xp, [G], shampoo.Config(eps=0.0, eps_mode="pinv"))
    assert rel(d, np.outer(U1, V1) + np.outer(U2, V2)) <= tol
    (d,), _ = run(xp, [G], shampoo.Config(eps=0.0, eps_mode="pinv", rcond=0.5))
    assert rel(d, np.outer(U1, V1)) <= tol


def test_relative_eps_mode(xp):
    """eps_mode = "relative": (S + eps lambda_max(S) I)^{-1/4}; rank one: lambda_max = sigma^2."""
    eps, s = 0.25, 2.0
    G = s * np.outer(U1, V1)
    (d,), _ = run(xp, [G], shampoo.Config(eps=eps, eps_mode="relative"))
    assert rel(d, G / np.sqrt(eps * s**2 + s**2)) <= 8 * 4 * u_of("float64") * (1 + eps) / eps


def test_singular_statistic_without_eps_raises(xp):
    """eps = 0 with the "absolute" mode: a rank-one statistic has no inverse root; the error says what to do."""
    with pytest.raises(ValueError, match="shampoo: inverse root"):
        run(xp, [np.outer(U1, V1)], shampoo.Config(eps=0.0))


def test_reference_code_variant(xp):
    """Code: S_0 = eps I, root V diag(max(lambda, eps)^{-1/e}) V^T of eigh(S + 1e-8 I).

    Step 1, rank one: d = G / sqrt(eps + 1e-8 + sigma^2). Floor: S = diag(4, 0) (as a statistic) gives
    eigenvalues 4 + 1e-8 and 1e-8 -> max(., eps) = 4 + 1e-8 and eps; the paper variant instead uses 4 + eps.
    """
    eps, s = 1e-4, 2.0
    G = s * np.outer(U1, V1)
    cfg = shampoo.Config(eps=eps, variant="reference-code")
    st0 = shampoo.init((4, 2), cfg, xp=xp)
    np.testing.assert_array_equal(np_of(st0.stats[0]), eps * np.eye(4))
    (d,), _ = run(xp, [G], cfg)
    kappa = (eps + s**2) / eps
    assert rel(d, G / np.sqrt(eps + 1e-8 + s**2)) <= 8 * 4 * u_of("float64") * kappa
    S = arr(xp, np.diag([4.0, 0.0]))
    P = shampoo.inverse_root(S, 4, cfg)
    np.testing.assert_allclose(np_of(P), np.diag([(4 + 1e-8) ** -0.25, eps**-0.25]), rtol=8 * u_of("float64"))
    Pp = shampoo.inverse_root(S, 4, shampoo.Config(eps=eps))
    np.testing.assert_allclose(np_of(Pp), np.diag([(4 + eps) ** -0.25, eps**-0.25]), rtol=8 * u_of("float64"))


def test_scalar_parameter(xp):
    """Order 0: no statistic; the direction is a copy of the gradient."""
    cfg = shampoo.Config()
    state = shampoo.init((), cfg, xp=xp)
    assert state.stats == () and state.roots == ()
    g = arr(xp, 1.5)
    d, state = shampoo.update(g, state, cfg)
    assert float(d) == 1.5 and d is not g and int(state.count) == 1


# ---------------------------------------------------------------------------------------------------------
# precision: stat_dtype / root_dtype on a kappa = 1e8 statistic, against mpmath

def ill_conditioned_statistic() -> np.ndarray:
    """S = B^T B with B = I + 10 J (4 x 4, J the shift): integer entries <= 101, det 1, kappa(S) = 1.18e8.

    Integer entries make S exactly representable in float32 AND float64, so both precisions see the same matrix and
    the mp reference needs no rounding model for the input (a rounded float32 copy of a generic kappa = 1e8 matrix
    would carry a perturbation u32 ||S|| larger than its smallest eigenvalue).
    """
    B = np.eye(4) + 10.0 * np.eye(4, k=1)
    return B.T @ B


DPS = 40


@functools.lru_cache(maxsize=None)
def mp_root(eps: float, e: int):
    """(S + eps I)^{-1/e} at 40 digits, S exact; also kappa(S + eps I)."""
    S = ill_conditioned_statistic()
    with mpmath.workdps(DPS):
        A = mpmath.matrix(S.tolist()) + mpmath.mpf(eps) * mpmath.eye(4)  # eps: the exact value of the double
        E, Q = mpmath.eigsy(A)
        w = [E[i] for i in range(4)]
        X = Q * mpmath.diag([x ** (mpmath.mpf(-1) / e) for x in w]) * Q.T
        return X, float(max(w) / min(w))


def mp_rel_err(X, Y_mp) -> float:
    Xm = mpmath.matrix(np_of(X).tolist())  # float -> mpf is exact
    with mpmath.workdps(DPS):
        return float(mpmath.mnorm(Xm - Y_mp, "f") / mpmath.mnorm(Y_mp, "f"))


@pytest.mark.parametrize("variant", ["paper", "reference-code"])
def test_root_dtype_on_kappa_1e8(xp, variant):
    """float32 statistics, roots in float64 vs float32 (the paper's comparison), and all-float64 (errata 19).

    The statistic is planted in the state (both modes of a 4 x 4 parameter) and a zero gradient leaves it
    unchanged, so the roots the update caches are S^{-1/4} computed by the path under test. eps = 1e-8 as Fig. 1;
    both variants then compute the same function here (paper: lambda + eps; code: lambda + 1e-8 floored at eps).
    """
    eps = 1e-8
    S = ill_conditioned_statistic()
    want, kappa = mp_root(eps, 4)
    assert 1e8 < kappa < 1.3e8
    u32, u64 = u_of("float32"), u_of("float64")
    G0 = np.zeros((4, 4))

    def cached_root(root_dtype, stat_dtype, grad_dtype="float32"):
        cfg = shampoo.Config(eps=eps, variant=variant, root_dtype=root_dtype, stat_dtype=stat_dtype)
        st = shampoo.init((4, 4), cfg, dtype=getattr(xp, grad_dtype), xp=xp)
        sdt = stat_dtype or grad_dtype
        st = st._replace(stats=(arr(xp, S, sdt), arr(xp, S, sdt)))
        _, st = shampoo.update(arr(xp, G0, grad_dtype), st, cfg)
        assert st.roots[0].dtype == getattr(xp, sdt)  # roots are cast back to the stat dtype
        return st.roots[0]

    # float64 root of the (exact) float32 statistic, cast back to float32: eigh error 4 n u64 kappa / e
    # (C = 4, e = 4) plus the final rounding to float32, <= u32 relative in the Frobenius norm; x2 for the sum.
    err64 = mp_rel_err(cached_root("float64", None), want)
    tol64 = 2 * (u32 + 4 * 4 * u64 * kappa / 4)
    assert err64 <= tol64, (err64, tol64)
    # all float64 (the authors' double=True): no float32 rounding at all
    err_double = mp_rel_err(cached_root(None, "float64"), want)
    assert err_double <= 4 * 4 * u64 * kappa / 4, err_double
    err32 = mp_rel_err(cached_root(None, None), want)
    if backend.is_strict(xp):
        # array_api_strict's eigh is numpy.linalg.eigh, which computes float32 input in float64 and rounds the
        # result (numpy.linalg._commonType): its "float32 root" is the float64 root rounded, tolerance as above.
        # The code's 1e-8 shift, added in float32, is absorbed by diagonal entries >= 61 (1e-8 < u32 * 61 / 2), so
        # there the exact reference is S^{-1/4} itself (floor eps = 1e-8 < lambda_min = 9.8e-7 is inactive)
        ref32 = mp_root(0.0, 4)[0] if variant == "reference-code" else want
        err32 = mp_rel_err(cached_root(None, None), ref32)
        assert err32 <= tol64, (err32, tol64)
    else:
        # a true float32 eigh (LAPACK ssyevd via backend.eigh; cuSOLVER on CuPy): n u32 kappa / e ~ 7 >> 1, the small
        # eigenvalues carry no digits; measured 2.6e-2 on this S. "Visibly worse" = above 1e-3, i.e. > 1e3 x the
        # float64 tolerance (an observed gap of 1e5, not a bound)
        assert err32 > 1e-3 and err32 > 1e3 * tol64, (err32, tol64)


def test_stat_dtype_float64_with_float32_gradients(xp):
    """stat_dtype = "float64" on float32 gradients = the float64 run on the same (exactly widened) gradients,
    with the direction rounded once to float32 at the end (bit for bit)."""
    rng = np.random.default_rng(5)
    Gs = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(3)]
    c64 = shampoo.Config(eps=1e-3, stat_dtype="float64")
    ds, st = run(xp, Gs, c64, dtype="float32")
    ref, st_ref = run(xp, [G.astype(np.float64) for G in Gs], shampoo.Config(eps=1e-3), dtype="float64")
    assert st.stats[0].dtype == xp.float64 and st.roots[1].dtype == xp.float64
    for d, r in zip(ds, ref):
        assert d.dtype == xp.float32
        np.testing.assert_array_equal(np_of(d), np_of(r).astype(np.float32).astype(np.float64))


def test_root_dtype_float64_keeps_float32_statistics(xp):
    cfg = shampoo.Config(eps=1e-3, root_dtype="float64")
    (d,), st = run(xp, [np.ones((2, 3))], cfg, dtype="float32")
    assert d.dtype == xp.float32 and st.stats[0].dtype == xp.float32 and st.roots[0].dtype == xp.float32


# ---------------------------------------------------------------------------------------------------------
# coupled Newton vs eigh

def test_coupled_newton_agrees_with_eigh(xp):
    """Paper variant: Newton stops on ||M - I||_F <= 4 (n + p) u, so its root agrees with eigh's to ~ n u kappa."""
    rng = np.random.default_rng(1)
    Gs = [rng.standard_normal((5, 3)) for _ in range(3)]
    eps = 1e-3
    _, se = run(xp, Gs, shampoo.Config(eps=eps))
    _, sn = run(xp, Gs, shampoo.Config(eps=eps, root_method="coupled_newton"))
    for S, Pe, Pn in zip(se.stats, se.roots, sn.roots):
        n = S.shape[0]
        kappa = np.linalg.cond(np_of(S) + eps * np.eye(n))
        assert rel(Pn, Pe) <= 16 * n * u_of("float64") * kappa  # both ~ n u kappa / 4 off the truth; C = 16


def test_reference_code_newton_is_a_different_regularisation(xp):
    """Code: ComputePower adds eps * lambda_max(S) I (relative ridge) and stops on max|M - I| <= 1e-6, so its root
    is (S + eps lambda_max I)^{-1/4} to ~ n 1e-6 / p, NOT the eigh path's max(lambda, eps)^{-1/4} (14 % apart at
    eps = 0.1 here)."""
    rng = np.random.default_rng(1)
    Gs = [rng.standard_normal((5, 3)) for _ in range(3)]
    eps = 0.1
    _, sn = run(xp, Gs, shampoo.Config(eps=eps, variant="reference-code", root_method="coupled_newton"))
    _, se = run(xp, Gs, shampoo.Config(eps=eps, variant="reference-code"))
    for S, Pn, Pe in zip(sn.stats, sn.roots, se.roots):
        Sn = np_of(S)
        n = Sn.shape[0]
        lam = np.linalg.eigvalsh(Sn).max()
        w, V = np.linalg.eigh(Sn + eps * lam * np.eye(n))
        want = (V * w**-0.25) @ V.T
        assert rel(Pn, want) <= n * shampoo.CODE_NEWTON_TOL / 4  # ||X - X*|| / ||X*|| <~ ||M - I||_2 / p
        assert rel(Pn, Pe) > 0.05


@pytest.mark.parametrize("on_fail", ["raise", "return", "eigh"])
def test_newton_on_fail(xp, on_fail):
    """One iteration cannot meet the target: raise, keep the iterate, or answer by eigh."""
    G = np.arange(12.0).reshape(4, 3) / 7
    cfg = shampoo.Config(eps=1e-3, root_method="coupled_newton", newton_max_iter=1, newton_on_fail=on_fail)
    if on_fail == "raise":
        with pytest.raises(RuntimeError, match="coupled_newton_inv_root"):
            run(xp, [G], cfg)
        return
    _, st = run(xp, [G], cfg)
    _, ref = run(xp, [G], shampoo.Config(eps=1e-3))
    if on_fail == "eigh":
        np.testing.assert_array_equal(np_of(st.roots[0]), np_of(ref.roots[0]))
    else:
        assert rel(st.roots[0], ref.roots[0]) > 1e-3


# ---------------------------------------------------------------------------------------------------------
# protocol: bad inputs, immutability, registry

def test_registry():
    assert algorithm.get("shampoo") is shampoo.shampoo
    assert shampoo.shampoo.Config is shampoo.Config and shampoo.shampoo.State is shampoo.ShampooState


@pytest.mark.parametrize("kwargs, exc", [
    ({"eps": -1.0}, ValueError),
    ({"eps": "1e-6"}, TypeError),
    ({"beta2": -0.1}, ValueError),  # 0 is accepted: the current gradient's statistic only
    ({"beta2": 1.5}, ValueError),
    ({"update_freq": 0}, ValueError),
    ({"root_freq": 1.5}, TypeError),
    ({"start_preconditioning_step": 0}, ValueError),
    ({"exponent_override": -2}, ValueError),
    ({"exponent_override": 2.5, "root_method": "coupled_newton"}, ValueError),
    ({"root_method": "qr"}, ValueError),
    ({"root_dtype": "float16"}, ValueError),
    ({"stat_dtype": "bfloat16"}, ValueError),
    ({"eps_mode": "floor"}, ValueError),
    ({"eps_mode": "pinv"}, ValueError),  # needs eps = 0
    ({"eps_mode": "pinv", "eps": 0.0, "root_method": "coupled_newton"}, ValueError),
    ({"rcond": 1e-3}, ValueError),  # pinv only
    ({"rcond": -1e-3, "eps_mode": "pinv", "eps": 0.0}, ValueError),
    ({"rcond": "1e-3", "eps_mode": "pinv", "eps": 0.0}, TypeError),
    ({"variant": "code"}, ValueError),
    ({"variant": "reference-code", "eps_mode": "relative"}, ValueError),
    ({"variant": "reference-code", "eps": 0.0}, ValueError),
    ({"newton_tol": 0.0}, ValueError),
    ({"newton_on_fail": "ignore"}, ValueError),
    ({"newton_max_iter": 0}, ValueError),
    # the conventions of the published implementations (Config docstring, "Conventions")
    ({"bias_correction": 1}, TypeError),
    ({"bias_correction": True}, ValueError),  # beta2 = 1: 1 - beta2^k = 0
    ({"eps_placement": "init"}, ValueError),
    ({"eps_placement": "statistic", "eps": 0.0, "eps_mode": "pinv"}, ValueError),
    ({"eps_placement": "statistic", "beta2": 0.0}, ValueError),
    ({"exponent_rule": "4"}, ValueError),
    ({"root_phase": "last"}, ValueError),
    ({"before_first_root": "none"}, ValueError),
    ({"newton_error": "inf"}, ValueError),
    ({"root_method": "svd", "variant": "reference-code"}, ValueError),
    ({"root_method": "svd", "eps": 0.0, "eps_mode": "pinv"}, ValueError),
])
def test_bad_config(kwargs, exc):
    field = next(iter(kwargs))  # the first key is the field the error must name
    with pytest.raises(exc) as info:
        shampoo.Config(**kwargs)
    assert field in str(info.value)


def test_bad_inputs(xp):
    cfg = shampoo.Config()
    st = shampoo.init((3, 2), cfg, xp=xp)
    with pytest.raises(ValueError, match="grad: shape"):
        shampoo.update(arr(xp, np.ones((2, 3))), st, cfg)
    with pytest.raises(TypeError, match="grad: dtype"):
        shampoo.update(arr(xp, np.ones((3, 2)), "float32"), st, cfg)
    with pytest.raises(TypeError, match="grad: expected a real floating"):
        shampoo.update(xp.asarray(np.ones((3, 2), dtype=np.int64)), st, cfg)
    bad = np.ones((3, 2))
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="grad: expected finite"):
        shampoo.update(arr(xp, bad), st, cfg)
    with pytest.raises(TypeError, match=r"state\.stats\[0\]"):  # config asks for float32 statistics, state has float64
        shampoo.update(arr(xp, np.ones((3, 2))), st, shampoo.Config(stat_dtype="float32"))
    with pytest.raises(TypeError, match="state"):
        shampoo.update(arr(xp, np.ones((3, 2))), tuple(st), cfg)
    with pytest.raises(TypeError, match="config"):
        shampoo.update(arr(xp, np.ones((3, 2))), st, adagrad.SgdConfig())
    with pytest.raises(ValueError, match="shape_or_array"):
        shampoo.init((3, 0), cfg, xp=xp)
    with pytest.raises(TypeError, match="dtype"):
        shampoo.init((3, 2), cfg, dtype=xp.int32, xp=xp)


def test_mixed_namespaces():
    strict = pytest.importorskip("array_api_strict")
    cfg = shampoo.Config()
    st = shampoo.init((2, 2), cfg, xp=strict)
    with pytest.raises(TypeError, match="array library"):
        shampoo.update(np.ones((2, 2)), st, cfg)


def _snapshot(tree):
    return [np.array(np_of(a)) for a in tree]


@pytest.mark.parametrize("variant", ["paper", "reference-code"])
def test_update_does_not_mutate_inputs(xp, variant):
    rng = np.random.default_rng(2)
    cfg = shampoo.Config(eps=1e-2, variant=variant)
    st = shampoo.init((3, 4), cfg, xp=xp)
    _, st = shampoo.update(arr(xp, rng.standard_normal((3, 4))), st, cfg)
    G = arr(xp, rng.standard_normal((3, 4)))
    before = _snapshot([G, st.count, *st.stats, *st.roots])
    d, new = shampoo.update(G, st, cfg)
    after = _snapshot([G, st.count, *st.stats, *st.roots])
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)
    assert int(new.count) == 2 and new is not st
    assert new.count.dtype == xp.int32 and new.count.shape == ()


def test_init_from_array_and_defaults(xp):
    W = arr(xp, np.zeros((2, 3)), "float32")
    st = shampoo.init(W, shampoo.Config())
    assert st.stats[0].dtype == xp.float32 and tuple(st.template.shape) == (0, 2, 3)
    st = shampoo.init((2, 3), shampoo.Config())  # shape tuple: NumPy, float64
    assert backend.is_numpy(backend.namespace(st.stats[0])) and st.stats[0].dtype == np.float64
    np.testing.assert_array_equal(np_of(st.roots[1]), np.eye(3))
    np.testing.assert_array_equal(np_of(st.stats[1]), np.zeros((3, 3)))


def test_float64_roots_of_a_rank_deficient_float32_statistic():
    """Regression: float32 statistics with root_dtype float64 raised 'not positive semi-definite' on step 1.

    S = G G^T (12 x 12, rank 8) is rounded in float32, so its zero eigenvalues come back as +-n u32 ||S||; the
    PSD tolerance must follow S's dtype, not the root dtype it is cast to. Reference: the same rounded S, cast to
    float64, (S + eps I)^(-1/4) by numpy eigh with the rounding negatives clipped. Both roots are float64
    computations of one matrix of condition ~ ||S|| / eps ~ 1e8, so they agree to ~ n u64 kappa ~ 1e-7; the
    direction is then rounded to float32 (u32 = 6e-8): rtol 1e-5 covers both with margin.
    """
    rng = np.random.default_rng(3)
    G = rng.standard_normal((12, 8)).astype(np.float32)
    cfg = shampoo.Config(root_dtype="float64")
    d, _ = shampoo.update(G, shampoo.init(G, cfg), cfg)
    assert d.dtype == np.float32

    def ref_root(S32):
        w, V = np.linalg.eigh(S32.astype(np.float64))
        w = np.clip(w, 0.0, None) + cfg.eps
        return (V * w ** -0.25) @ V.T

    L = ref_root(G @ G.T)
    R = ref_root(G.T @ G)
    want = (L @ G.astype(np.float64) @ R).astype(np.float32)
    np.testing.assert_allclose(d, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


# ---------------------------------------------------------------------------------------------------------
# mutation testing (README "Mutation score"): messages and value paths the tests above left open

@pytest.mark.parametrize("kwargs, message", [
    ({"eps_mode": "pinv", "eps": 0.0, "root_method": "coupled_newton"},
     "eps_mode: 'pinv' is an eigh option; coupled Newton takes 'absolute' or 'relative'"),
    ({"bias_correction": True},
     "bias_correction: needs beta2 < 1 (at beta2 = 1 the statistic is a sum and 1 - beta2^k = 0); got beta2 = 1"),
    ({"eps_placement": "statistic", "beta2": 0.0},
     "eps_placement: 'statistic' with beta2 = 0 drops eps I at the first update, leaving the root of a "
     "rank-deficient G G^T undefined; use eps_placement='root'"),
    ({"bias_correction": 1}, "bias_correction: expected a bool, got int"),
    ({"variant": "reference-code", "eps": 0.0},
     "eps: the reference-code variant needs eps > 0 (initial statistic, eigenvalue floor)"),
])
def test_bad_config_messages(kwargs, message):
    with pytest.raises((TypeError, ValueError)) as info:
        shampoo.Config(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("field, bad", [
    ("variant", "code"), ("root_method", "qr"), ("eps_mode", "floor"), ("newton_on_fail", "ignore"),
    ("eps", -1.0), ("beta2", 1.5), ("update_freq", 0), ("root_freq", 0), ("start_preconditioning_step", 0),
    ("newton_max_iter", 0), ("exponent_override", -2.0), ("newton_tol", 0.0), ("eps_placement", "init"),
    ("exponent_rule", "4"), ("root_phase", "last"), ("before_first_root", "none"), ("newton_error", "inf"),
])
def test_bad_config_message_opens_with_the_field(field, bad):
    """Every validation error opens with the exact field name and a colon (validate's convention), so that the
    field is named even where its name is a substring of another word of the message."""
    with pytest.raises(ValueError) as info:
        shampoo.Config(**{field: bad})
    assert str(info.value).startswith(f"{field}: ")


def test_bad_rcond_message_opens_with_rcond():
    with pytest.raises(ValueError) as info:
        shampoo.Config(rcond=-1e-3, eps_mode="pinv", eps=0.0)
    assert str(info.value).startswith("rcond: ")


def test_init_rejects_a_foreign_config():
    with pytest.raises(TypeError) as info:
        shampoo.init((2, 2), adagrad.SgdConfig())
    assert str(info.value) == "config: expected shampoo.Config, got SgdConfig"


def test_grad_dtype_error_names_the_state_field(xp):
    st = shampoo.init((3, 2), shampoo.Config(), xp=xp)
    with pytest.raises(TypeError, match=r"grad: dtype float32 .*\(from state\.template\)"):
        shampoo.update(arr(xp, np.ones((3, 2)), "float32"), st, shampoo.Config())


@pytest.mark.parametrize("root_method", ["eigh", "svd"])
def test_inverse_root_argument_errors(xp, root_method):
    cfg = shampoo.Config(root_method=root_method)
    with pytest.raises(ValueError, match=r"^S: expected a square matrix"):
        shampoo.inverse_root(arr(xp, np.ones((2, 3))), 4, cfg)
    with pytest.raises(ValueError, match=r"^S: expected a symmetric matrix"):
        shampoo.inverse_root(arr(xp, [[1.0, 0.5], [0.0, 1.0]]), 4, cfg)
    for e in (0, 0.0, -1.0):  # e > 0: the root S^{-1/e} (a ZeroDivisionError at e = 0 would be no clear message)
        with pytest.raises(ValueError, match=r"^e: expected a value > 0"):
            shampoo.inverse_root(arr(xp, np.eye(2)), e, cfg)


@pytest.mark.parametrize("e", [0.5, 1.0, 2.5])
def test_inverse_root_small_and_fractional_orders(xp, e):
    """(S + eps I)^{-1/e} of a diagonal S is the entrywise power of the diagonal, for every e > 0 (e <= 1 too).
    Tolerance: the eigh root of a diagonal matrix has relative error <= c n u |p| (kappa = 1 per eigenvector,
    the eigenvalues being exact), p = -1/e <= 2 in size: 64 u."""
    s = np.array([4.0, 0.25, 9.0])
    eps = 1e-3
    got = np_of(shampoo.inverse_root(arr(xp, np.diag(s)), e, shampoo.Config(eps=eps)))
    np.testing.assert_allclose(got, np.diag((s + eps) ** (-1.0 / e)), rtol=64 * U["float64"], atol=0)


@pytest.mark.parametrize("override", [0.5, 1.0, 2.5])
def test_exponent_override_at_most_one_and_fractional(xp, override):
    """exponent_override > 0 replaces the rule however small it is (0 < e <= 1 included), and a fractional e is
    fine for the eigh root (only coupled Newton needs an integer): one step of a diagonal G = diag(a) gives the
    diagonal direction a (a^2 + eps)^{-2/e} (both statistics diag(a^2), exact). Tolerance 64 u as in
    test_inverse_root_small_and_fractional_orders (two exact-eigenvalue roots and a product of 3 terms)."""
    cfg = shampoo.Config(eps=1e-2, exponent_override=override)
    assert shampoo.exponent(2, cfg) == override
    a = np.array([1.5, 0.5])
    (d,), _ = run(xp, [np.diag(a)], cfg)
    np.testing.assert_allclose(np_of(d), np.diag(a * (a**2 + 1e-2) ** (-2.0 / override)),
                               rtol=64 * U["float64"], atol=0)


def test_svd_root_refuses_an_exactly_singular_statistic(xp):
    """eps = 0 (allowed under "absolute") and an exactly zero singular value: a clear ValueError, not inf."""
    cfg = shampoo.Config(eps=0.0, root_method="svd")
    with pytest.raises(ValueError, match=r"^S: singular for the SVD root \(smallest singular value of S \+ "
                                         r"shift I = 0\); pass eps > 0$"):
        shampoo.inverse_root(arr(xp, np.diag([1.0, 0.0])), 4, cfg)


def test_newton_fallback_to_eigh_keeps_eps_mode(xp):
    """newton_on_fail="eigh" answers by the eigh root under the config's own eps_mode ("relative": ridge
    eps * lambda_max = 0.1 * 9 here, far from the absolute 0.1): the same call as root_method="eigh", so equal
    to the last bit."""
    S = arr(xp, np.diag([9.0, 1.0, 0.25]))
    kw = {"eps": 0.1, "eps_mode": "relative"}
    got = shampoo.inverse_root(S, 4, shampoo.Config(root_method="coupled_newton", newton_max_iter=1,
                                                    newton_on_fail="eigh", **kw))
    np.testing.assert_array_equal(np_of(got), np_of(shampoo.inverse_root(S, 4, shampoo.Config(**kw))))
    # hand value on the diagonal: (s + 0.9)^{-1/4}; tolerance 64 u as above
    np.testing.assert_allclose(np.diag(np_of(got)), (np.array([9.0, 1.0, 0.25]) + 0.9) ** -0.25,
                               rtol=64 * U["float64"], atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_newton_keep_without_previous_is_identity(xp, dtype):
    """newton_on_fail="keep" with no cached root returns I, exactly, in the statistic's dtype."""
    cfg = shampoo.Config(eps=1e-3, root_method="coupled_newton", newton_max_iter=1, newton_on_fail="keep")
    got = shampoo.inverse_root(arr(xp, np.diag([9.0, 1.0, 0.25]), dtype), 4, cfg)
    assert backend.dtype_name(got.dtype) == dtype
    np.testing.assert_array_equal(np_of(got), np.eye(3))


def test_reference_code_newton_uses_the_code_target(xp):
    """The code's ComputePower: tolerance 1e-6 on the ENTRYWISE max residual, 100 iterations (notes Sec. 7).
    linalg's coupled Newton with exactly those settings (and the ridge eps lambda_max) is the same computation,
    so equal to the last bit; linalg's defaults (4 (n + p) u, Frobenius) iterate further and differ."""
    S = np.diag([9.0, 1.0, 0.25]) + 0.1
    lam = float(np.linalg.eigvalsh(S).max())
    got = np_of(shampoo.inverse_root(arr(xp, S), 4, shampoo.Config(eps=0.1, variant="reference-code",
                                                                    root_method="coupled_newton")))
    want = linalg.coupled_newton_inv_root(arr(xp, S), 4, ridge=0.1 * lam, max_iter=100, tol=1e-6, error="max",
                                          on_fail="return")
    np.testing.assert_array_equal(got, np_of(want.root))
    tight = linalg.coupled_newton_inv_root(arr(xp, S), 4, ridge=0.1 * lam)
    assert not np.array_equal(got, np_of(tight.root))


@pytest.mark.parametrize("dtype, scale, stat_dtype", [("float64", 1e120, None), ("float32", 1e20, "float64")])
def test_huge_gradient_below_the_stat_dtype_overflow_limit(xp, dtype, scale, stat_dtype):
    """The overflow guard is sqrt(max) of the STAT dtype (the Grams G G^T are its largest intermediate): a
    G = s I_2 with s^2 representable there steps normally: both statistics are s^2 I (exact), the direction
    s (s^2 + eps)^{-1/2} I = I to rounding (a full-rank G: no null space where eps^{-1/4} would amplify
    rounding). Tolerance 64 u of the grad dtype (exact eigenvalues; one cast to the grad dtype)."""
    cfg = shampoo.Config(stat_dtype=stat_dtype)
    (d,), _ = run(xp, [scale * np.eye(2)], cfg, dtype=dtype)
    np.testing.assert_allclose(np_of(d), np.eye(2), rtol=0, atol=64 * U[dtype])


def test_svd_root_in_float32_absorbs_an_eps_below_the_diagonals_resolution():
    """The SVD root is formed in the root dtype, as the float32 peers form it (Config, root_method "svd"): in
    float32, 1 + 1e-9 rounds to 1 (u = 2^-24 ~ 6e-8), so S + 1e-9 I IS S and the root with eps = 1e-9 equals the
    root with eps = 0 to the last bit (or both refuse S as singular: whether LAPACK returns the zero singular
    value of this exactly singular S as 0 or as a tiny positive number is the library's). Formed in float64,
    the shift would survive and give the far smaller root (1e-9)^{-1/4} ~ 178 in the null direction."""
    S = np.array([[1.0, 1.0], [1.0, 1.0]], dtype=np.float32)  # eigenvalues 2 and 0, exact in float32

    def root(eps):
        try:
            return np.asarray(shampoo.inverse_root(S, 4, shampoo.Config(root_method="svd", eps=eps)))
        except ValueError as exc:
            return str(exc)

    absorbed, without = root(1e-9), root(0.0)
    if isinstance(without, str):
        assert absorbed == without
    else:
        assert absorbed.dtype == np.float32
        np.testing.assert_array_equal(absorbed, without)


def test_newton_fallback_to_eigh_judges_rounding_in_the_statistics_dtype():
    """newton_on_fail="eigh" with root_dtype float64 and a float32 statistic: the eigenvalue -1e-7 of
    S = diag(1, -1e-7) is inside float32's rounding band 4 n u lambda_max = 4 * 2 * 2^-24 ~ 4.8e-7
    (validate.zero_tolerance), so it is rounding of a float32 statistic and clipped to 0, although in float64 it
    would be a genuine negative eigenvalue (the root is computed in float64 but S was accumulated in float32).
    Hand value: diag((1 + eps)^{-1/4}, eps^{-1/4}), eps = 1e-3; tolerance 64 u of float32 (the root is cast back
    to the statistic's dtype: one rounding of exact eigenvalues, powered in float64)."""
    S = np.diag(np.array([1.0, -1e-7], dtype=np.float32))
    cfg = shampoo.Config(eps=1e-3, root_dtype="float64", root_method="coupled_newton", newton_max_iter=1,
                         newton_on_fail="eigh")
    got = np.asarray(shampoo.inverse_root(S, 4, cfg))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.diag([(1 + 1e-3) ** -0.25, 1e-3 ** -0.25]), rtol=64 * U["float32"],
                               atol=64 * U["float32"] * 1e-3 ** -0.25)


def _float32_spd(n: int, low: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    S = ((Q * np.geomspace(1.0, low, n)) @ Q.T).astype(np.float32)
    return (S + S.T) / 2  # exactly symmetric in float32


def test_reference_code_newton_stops_on_the_entrywise_residual():
    """The code's ComputePower stops when max_ij |M - I| < 1e-6 (notes Sec. 7). On a 64 x 64 float32 statistic
    (spectrum 1 .. 1e-2, ridge 1e-6 lambda_max) the entrywise residual passes 1e-6 one iteration before the
    Frobenius one would (9 against 10 iterations here; float32 rounding leaves ~1e-7 per entry), so the two
    stopping rules return different iterates: the root must be the entrywise one, to the last bit."""
    S = _float32_spd(64, 1e-2, seed=0)
    got = np.asarray(shampoo.inverse_root(S, 4, shampoo.Config(eps=1e-6, variant="reference-code",
                                                                root_method="coupled_newton")))
    lam = float(np.linalg.eigvalsh(S.astype(np.float64)).max())
    kw = dict(ridge=1e-6 * lam, max_iter=100, tol=1e-6, on_fail="return")
    entrywise = linalg.coupled_newton_inv_root(S, 4, error="max", **kw)
    frobenius = linalg.coupled_newton_inv_root(S, 4, error="fro", **kw)
    assert entrywise.converged and frobenius.converged
    assert not np.array_equal(np.asarray(entrywise.root), np.asarray(frobenius.root))
    np.testing.assert_array_equal(got, np.asarray(entrywise.root))


def test_reference_code_newton_returns_its_last_iterate_when_it_misses():
    """The code returns whatever ComputePower reached, never raises (on_fail "return"). A root of order 256 of
    S = diag(1, 1e-8): the coupled iteration's contraction per step is ~ 1 - 1/p in its first phase, so from the
    1/lambda_max start it cannot meet 1e-6 within the code's 100 iterations (residual still ~1 at 100); the code
    root is that last iterate, to the last bit, and no RuntimeError."""
    S = np.diag([1.0, 1e-8])
    cfg = shampoo.Config(eps=1e-30, variant="reference-code", root_method="coupled_newton")
    got = np.asarray(shampoo.inverse_root(S, 256, cfg))
    res = linalg.coupled_newton_inv_root(S, 256, ridge=1e-30, max_iter=100, tol=1e-6, error="max",
                                         on_fail="return")
    assert not res.converged
    np.testing.assert_array_equal(got, np.asarray(res.root))
