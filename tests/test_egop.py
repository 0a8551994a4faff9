"""Tests of krad_ref.egop: Monte-Carlo EGOP against closed forms, the eigenbasis against mpmath, equivariance,
reparameterization, block / partial / randomized / Kronecker bases, diagnostics and bad inputs.

Tolerance model.
  * Rounding (float64, u = 2**-53): a product of d x M matrices carries errors <~ M u sum|terms| (Higham 3.1); an SVD
    or eigh of a d x d matrix is backward stable, so eigenvalues move by <~ p(d) u ||E||_2 (Weyl) and an eigenvector
    (or the invariant subspace of a cluster) turns by <~ p(d) u ||E||_2 / gap (Davis-Kahan sin-theta). We take
    p(d) = 20 d; each assertion names its constant.
  * Monte Carlo: (1/M) sum_k g_k g_k^T is a mean of iid matrices, so by the CLT each entry's error is
    ~ sd(g_i g_j) / sqrt(M). For a Gaussian rho and an affine gradient g = S z + mu (least squares) sd(g_i g_j) has a
    closed form (Isserlis): Var(g_i g_j) = C_ii C_jj + C_ij^2 + mu_i^2 C_jj + mu_j^2 C_ii + 2 mu_i mu_j C_ij with
    C = S S^T. We allow 5 sd per entry (two-sided normal tail 6e-7; with d^2 <= 64 entries a false alarm has
    probability < 4e-5, and the seeds are fixed, so the tests are deterministic anyway).
Ground truth: the float inputs are converted to mpmath exactly and eigendecomposed at 40 digits (mpmath.eigsy).
"""
from __future__ import annotations

import math
import re

import mpmath
import numpy as np
import pytest

from krad_ref import backend, egop, problems
from proofs_check import mp as PM
from proofs_check import strategies as PS

DPS = 40
U64 = 2.0**-53


def np_(x):
    return backend.to_numpy(x)


def asx(xp, a, dtype=None):
    return xp.asarray(np.asarray(a), dtype=xp.float64 if dtype is None else dtype)


#: haar(rng, n): strategies.orthogonal's builder (n Householder reflections of Gaussian vectors from the Generator)
def haar(rng, n):
    return PS.seeded_orthogonal(n, rng)


def mp_egop_eigsy_desc(G):
    """Descending eigenvalues and eigenvectors of the exact EGOP (1/M) G G^T of the float bundle G, at DPS digits
    (G converted exactly; the product and the eigendecomposition in mp)."""
    G = np.asarray(G, dtype=np.float64)
    n, M = G.shape
    with PM.workdps(DPS):
        Gm = PM.to_mp(G)
        E, Q = PM.mp_eigsy(Gm * Gm.T / M, dps=DPS)  # ascending; Gm Gm^T is exactly symmetric (same sums)
        w = np.array([float(v) for v in reversed(E)])
        V = np.array([[float(Q[r, i]) for i in reversed(range(n))] for r in range(n)])
    return w, V


def sin_theta(Vhat, Vtrue):
    """||(I - P_true) Vhat||_2: the sine of the largest principal angle between the two subspaces (equal dims)."""
    R = Vhat - Vtrue @ (Vtrue.T @ Vhat)
    return np.linalg.norm(R, 2)


def ls_mc_sd(A, b, M):
    """Per-entry CLT standard deviation of the M-sample EGOP estimate of 1/2||Ax - b||^2 under N(0, I)."""
    S = A.T @ A                      # g = S x - A^T b = S z + mu
    mu = -A.T @ b
    C = S @ S.T
    var = (np.outer(np.diag(C), np.diag(C)) + C**2 + np.outer(mu**2, np.diag(C)) + np.outer(np.diag(C), mu**2)
           + 2 * np.outer(mu, mu) * C)
    return np.sqrt(var / M)


# ---------------------------------------------------------------------------------------------------------
# sampling helpers

def test_rng_from_seed():
    g = np.random.default_rng(3)
    assert egop.rng_from_seed(g) is g
    assert egop.rng_from_seed(5).standard_normal() == np.random.default_rng(5).standard_normal()
    with pytest.raises(TypeError, match="seed"):
        egop.rng_from_seed(None)
    with pytest.raises(TypeError, match="seed"):
        egop.rng_from_seed(1.5)
    with pytest.raises(ValueError, match="seed"):
        egop.rng_from_seed(-1)


def test_gaussian_sampler_moments_and_dtype(xp):
    d, M = 4, 40000
    mean = asx(xp, [1.0, -2.0, 0.0, 0.5])
    s = egop.gaussian_sampler(mean, 2.0)
    X = s(M, 0)
    assert s.d == d and X.shape == (M, d) and X.dtype == xp.float64
    Xn = np_(X)
    # CLT: the sample mean has sd scale/sqrt(M) = 0.01; 5 sd.  The sample covariance entries have sd ~ scale^2
    # sqrt(2/M) = 0.028; 5 sd.
    np.testing.assert_allclose(Xn.mean(0), np_(mean), atol=5 * 2.0 / math.sqrt(M))
    np.testing.assert_allclose(np.cov(Xn.T), 4.0 * np.eye(d), atol=5 * 4.0 * math.sqrt(2 / M))
    np.testing.assert_array_equal(np_(s(3, 7)), np_(s(3, 7)))       # same seed, same draw
    s32 = egop.gaussian_sampler(0.0, 1.0, d=3, dtype=xp.float32, xp=xp)
    assert s32(2, 0).dtype == xp.float32
    with pytest.raises(TypeError, match="d= and xp="):
        egop.gaussian_sampler(0.0, 1.0)
    with pytest.raises(ValueError, match="scale"):
        egop.gaussian_sampler(mean, 0.0)


# ---------------------------------------------------------------------------------------------------------
# estimation: closed form (Lemma 19), mp eigenbasis, M < d, batched oracle

def test_least_squares_egop_monte_carlo_vs_lemma19(xp):
    """Lemma 19: under rho = N(0, I), EGOP(1/2||Ax - b||^2) = (A^T A)^2 + A^T b b^T A, within 5 CLT sd per entry."""
    rng = np.random.default_rng(0)
    n, d, M = 12, 6, 20000
    A = rng.standard_normal((n, d)) / 2
    b = rng.standard_normal(n)
    obj = problems.least_squares(asx(xp, A), asx(xp, b))
    sampler = egop.gaussian_sampler(0.0, 1.0, d=d, xp=xp)
    Ab, bb = asx(xp, A), asx(xp, b)

    def grad_batch(X):                      # rows x_k -> rows A^T (A x_k - b)
        return (X @ xp.matrix_transpose(Ab) - bb[None, :]) @ Ab

    res = egop.estimate_egop(grad_batch, sampler, M, seed=1, batched=True)
    exact = (A.T @ A) @ (A.T @ A) + np.outer(A.T @ b, A.T @ b)
    np.testing.assert_allclose(np_(problems.least_squares_egop(Ab, bb)), exact, rtol=0, atol=50 * n * U64 * np.abs(exact).max())
    err = np.abs(np_(res.egop) - exact)
    sd = ls_mc_sd(A, b, M)
    assert np.all(err <= 5 * sd), f"max z-score {np.max(err / sd):.2f} > 5"
    # the per-sample oracle gives the same bundle as the batched one (same samples)
    res1 = egop.estimate_egop(obj.grad, sampler, 50, seed=1)
    res2 = egop.estimate_egop(grad_batch, sampler, 50, seed=1, batched=True)
    # both evaluate A^T (A x_k - b): componentwise |error| <= gamma_{n+d} |A|^T (|A| |x_k| + |b|) (Higham 3.5),
    # cond 1 in that componentwise measure; c n u of proofs_check.mp.tolerance with DEFAULT_C covers both sides
    X1 = np.abs(np_(res1.samples))
    bound = ((X1 @ np.abs(A).T + np.abs(b)) @ np.abs(A)).T  # d x 50, the layout of the bundles
    assert np.all(np.abs(np_(res1.grads) - np_(res2.grads)) <= PM.tolerance("float64", n=n + d) * bound)
    assert res1.samples.shape == (50, d)


def test_monte_carlo_error_shrinks_like_one_over_sqrt_M():
    """CLT rate: the Frobenius error of the estimate, averaged over 8 seeds, drops by about 4x from M to 16 M
    (we require a factor within [2.5, 6.5]: the ratio of two 8-seed averages of a chi-like variable)."""
    rng = np.random.default_rng(4)
    A, b = rng.standard_normal((8, 4)) / 2, rng.standard_normal(8)
    exact = (A.T @ A) @ (A.T @ A) + np.outer(A.T @ b, A.T @ b)
    xp = backend.get_namespace("numpy")
    Ab, bb = asx(xp, A), asx(xp, b)
    sampler = egop.gaussian_sampler(0.0, 1.0, d=4, xp=xp)

    def errs(M):
        return np.mean([np.linalg.norm(np_(egop.estimate_egop(lambda X: (X @ Ab.T - bb) @ Ab, sampler, M, seed=s,
                                                             batched=True).egop) - exact) for s in range(8)])
    ratio = errs(500) / errs(8000)
    assert 2.5 <= ratio <= 6.5, ratio


def test_general_mean_and_scale_closed_form():
    """least_squares_egop with rho = N(mu, c^2 I) against Monte Carlo (5 CLT sd; C = c^2 S S^T, mu_g = A^T(A mu - b))."""
    xp = backend.get_namespace("numpy")
    rng = np.random.default_rng(7)
    A, b, mu = rng.standard_normal((7, 3)), rng.standard_normal(7), rng.standard_normal(3)
    c, M = 0.7, 30000
    exact = np_(problems.least_squares_egop(asx(xp, A), asx(xp, b), mean=asx(xp, mu), scale=c))
    res = egop.estimate_egop(lambda X: (X @ A.T - b) @ A, egop.gaussian_sampler(asx(xp, mu), c), M, seed=2,
                             batched=True)
    S = A.T @ A
    C = c * c * S @ S
    m = A.T @ (A @ mu - b)
    var = np.outer(np.diag(C), np.diag(C)) + C**2 + np.outer(m**2, np.diag(C)) + np.outer(np.diag(C), m**2) \
        + 2 * np.outer(m, m) * C
    assert np.all(np.abs(np_(res.egop) - exact) <= 5 * np.sqrt(var / M))


@pytest.mark.parametrize("method", egop.METHODS)
def test_eigenbasis_against_mp_with_clusters(xp, method):
    """Eigenvalues within 20 d u lambda_1 of mp eigsy (Weyl); each eigenvalue cluster's subspace within
    20 d u lambda_1 / gap (Davis-Kahan), compared by the largest principal angle, not vector by vector."""
    rng = np.random.default_rng(1)
    d, M = 8, 12
    s = np.array([3.0, 2.0, 2.0 * (1 + 1e-13), 2.0 * (1 - 1e-13), 1.0, 0.3, 0.3, 1e-3])  # a 3-cluster and a 2-cluster
    G = haar(rng, d) @ np.diag(s) @ haar(rng, M)[:d, :] * math.sqrt(M)
    res = egop.egop_from_gradients(asx(xp, G), method=method)
    lam, V = np_(res.eigenvalues), np_(res.V)
    w, Vmp = mp_egop_eigsy_desc(G)
    assert np.all(np.diff(lam) <= 0)
    lam1 = w[0]
    np.testing.assert_allclose(lam, w, rtol=0, atol=20 * d * U64 * lam1)
    np.testing.assert_allclose(V.T @ V, np.eye(d), atol=20 * d * U64)
    # clusters: eigenvalues closer than 1e-8 relative
    groups, start = [], 0
    for i in range(1, d + 1):
        if i == d or w[i - 1] - w[i] > 1e-8 * lam1:
            groups.append(list(range(start, i)))
            start = i
    assert [len(g) for g in groups] == [1, 3, 1, 2, 1]
    for g in groups:
        outside = [w[j] for j in range(d) if j not in g]
        gap = min(abs(w[g[0]] - o) for o in outside)
        st = sin_theta(V[:, g], Vmp[:, g])
        assert st <= 20 * d * U64 * lam1 / gap + 20 * d * U64, (g, st)
    # Eq. (2): lambda_i = mean_k <g_k, v_i>^2
    np.testing.assert_allclose(np.mean((G.T @ V) ** 2, axis=0), w, rtol=0, atol=20 * d * U64 * lam1)


def test_sign_convention(xp):
    V = asx(xp, [[0.6, -0.8], [-0.8, -0.6]])
    F = np_(egop.fix_signs(V))
    np.testing.assert_array_equal(F, [[-0.6, 0.8], [0.8, 0.6]])   # largest |entry| of each column made positive
    rng = np.random.default_rng(2)
    G = rng.standard_normal((5, 9))
    Vr = np_(egop.egop_from_gradients(asx(xp, G)).V)
    piv = Vr[np.argmax(np.abs(Vr), axis=0), np.arange(5)]
    assert np.all(piv > 0)
    # the basis does not depend on the sign of the gradients
    np.testing.assert_allclose(np_(egop.egop_from_gradients(asx(xp, -G)).V), Vr, atol=100 * U64)


def test_fewer_samples_than_dimensions(xp):
    """M < d: eigenvalues zero-padded, V still a full orthogonal basis whose tail spans null(G^T)."""
    rng = np.random.default_rng(3)
    d, M = 7, 3
    G = rng.standard_normal((d, M))
    for method in egop.METHODS:
        res = egop.egop_from_gradients(asx(xp, G), method=method)
        lam, V = np_(res.eigenvalues), np_(res.V)
        assert lam.shape == (d,) and np.all(lam >= 0)
        np.testing.assert_allclose(lam[M:], 0, atol=20 * d * U64 * lam[0])
        np.testing.assert_allclose(V.T @ V, np.eye(d), atol=20 * d * U64)
        np.testing.assert_allclose(G.T @ V[:, M:], 0, atol=20 * d * U64 * np.linalg.norm(G, 2))
        np.testing.assert_allclose(V @ np.diag(lam) @ V.T, G @ G.T / M, atol=20 * d * U64 * lam[0])


def test_float32_dtype_kept(xp):
    rng = np.random.default_rng(0)
    G = asx(xp, rng.standard_normal((4, 6)), xp.float32)
    res = egop.egop_from_gradients(G)
    assert res.egop.dtype == res.V.dtype == res.eigenvalues.dtype == xp.float32


# ---------------------------------------------------------------------------------------------------------
# equivariance (Lemma 14; errata 2)

def _lse(xp, A, b):
    return problems.log_sum_exp(asx(xp, A), asx(xp, b))


def test_finite_sample_equivariance(xp):
    """Samples rotated consistently (y_k = Q^T x_k): EGOP_hat(f o Q) = Q^T EGOP_hat(f) Q to rounding
    (each gradient is the same vector rotated; 20 d u ||E|| covers the rotations and the products)."""
    rng = np.random.default_rng(5)
    n, d, M = 9, 5, 40
    A, b = rng.standard_normal((n, d)) / 3, rng.standard_normal(n) / 3
    Q = asx(xp, haar(rng, d))
    obj = _lse(xp, A, b)
    X = asx(xp, rng.standard_normal((M, d)))
    rot = egop.reparameterize(obj.f, obj.grad, Q)          # f o Q
    E = egop.egop_from_samples(obj.grad, X)
    Eq = egop.egop_from_samples(rot.grad, X @ Q)          # rows x_k^T Q = (Q^T x_k)^T
    want = np_(xp.matrix_transpose(Q) @ E.egop @ Q)
    np.testing.assert_allclose(np_(Eq.egop), want, rtol=0, atol=20 * d * U64 * np.abs(want).max())
    # and its eigenvalues coincide
    np.testing.assert_allclose(np_(Eq.eigenvalues), np_(E.eigenvalues), rtol=0, atol=20 * d * U64 * float(E.eigenvalues[0]))


def test_exact_equivariance_gaussian_least_squares(xp):
    """Lemma 14 under N(0, I), exact: least squares with A Q has EGOP Q^T EGOP(A) Q (closed forms, rounding only)."""
    rng = np.random.default_rng(6)
    A, b, Q = rng.standard_normal((6, 4)), rng.standard_normal(6), haar(rng, 4)
    E = np_(problems.least_squares_egop(asx(xp, A), asx(xp, b)))
    EQ = np_(problems.least_squares_egop(asx(xp, A @ Q), asx(xp, b)))
    np.testing.assert_allclose(EQ, Q.T @ E @ Q, rtol=0, atol=100 * U64 * np.abs(E).max())


def test_rademacher_breaks_equivariance():
    """errata 2: with an isotropic but not rotation-invariant rho (Rademacher) Lemma 14 fails for f = sum x^4/4,
    d = 3; exact expectations by enumerating the 8 sign vectors. Under a Gaussian it holds (checked by Monte Carlo
    for the same f: the Gaussian EGOP of x^3 is 15 I, rotation-invariant)."""
    xp = backend.get_namespace("numpy")
    signs = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], dtype=float)
    Q = haar(np.random.default_rng(8), 3)

    def grad(x):
        return x**3

    def grad_rot(y):
        return Q.T @ (Q @ y) ** 3

    E = np_(egop.egop_from_samples(grad, asx(xp, signs)).egop)             # = I exactly
    Eq = np_(egop.egop_from_samples(grad_rot, asx(xp, signs)).egop)
    # I up to the rounding of the estimate (an SVD of the 3 x 8 bundle): c n u ||E||_2, n = 8 samples, cond 1
    np.testing.assert_allclose(E, np.eye(3), rtol=0, atol=PM.tolerance("float64", n=8))
    gap = np.linalg.norm(Eq - Q.T @ E @ Q)
    assert gap > 0.1, gap           # errata 2 reports 0.85 for their Q; any generic Q fails by O(1)


# ---------------------------------------------------------------------------------------------------------
# reparameterization

def test_reparameterize_and_maps(xp):
    rng = np.random.default_rng(9)
    n, d = 10, 4
    A, b = rng.standard_normal((n, d)), rng.standard_normal(n)
    obj = problems.least_squares(asx(xp, A), asx(xp, b))
    res = egop.estimate_egop(obj.grad, egop.gaussian_sampler(0.0, 1.0, d=d, xp=xp), 20, seed=0)
    V = res.V
    rep = egop.reparameterize(obj.f, obj.grad, V)
    x0 = asx(xp, rng.standard_normal(d))
    y0 = egop.to_reparam(x0, V)
    tol = 20 * d * U64
    np.testing.assert_allclose(np_(egop.from_reparam(y0, V)), np_(x0), atol=tol * np.abs(np_(x0)).max())
    np.testing.assert_allclose(float(rep.f(y0)), float(obj.f(x0)), rtol=100 * d * U64)
    np.testing.assert_allclose(np_(rep.grad(y0)), np_(xp.matrix_transpose(V) @ obj.grad(x0)),
                               atol=tol * np.abs(np_(obj.grad(x0))).max())
    # the reparameterized EGOP is diagonal (Cor. 15) for the same samples
    Ey = egop.egop_from_samples(rep.grad, res.samples @ V)
    E = np_(Ey.egop)
    np.testing.assert_allclose(E, np.diag(np_(res.eigenvalues)), atol=20 * d * U64 * np.abs(E).max())
    # GD equivariance: 30 steps on f~ from y0 map back to GD on f from x0 (rounding grows ~ steps * d u)
    lr = 0.5 / float(np.linalg.norm(A, 2) ** 2)
    x, y = x0, y0
    for _ in range(30):
        x = x - lr * obj.grad(x)
        y = y - lr * rep.grad(y)
    np.testing.assert_allclose(np_(egop.from_reparam(y, V)), np_(x), atol=30 * tol * np.abs(np_(x0)).max())
    # (d, k) column blocks are mapped too
    Y = egop.to_reparam(xp.stack([x0, x0], axis=1), V)
    assert Y.shape == (d, 2)


def test_reparameterize_bad_inputs(xp):
    V = asx(xp, [[1.0, 1.0], [0.0, 1.0]])
    g = lambda x: x  # noqa: E731
    with pytest.raises(ValueError, match="orthonormal"):
        egop.reparameterize(None, g, V)
    with pytest.raises(TypeError, match="grad_f"):
        egop.reparameterize(None, None, asx(xp, np.eye(2)))
    with pytest.raises(ValueError, match="leading dimension"):
        egop.to_reparam(asx(xp, np.ones(3)), asx(xp, np.eye(2)))
    rep = egop.reparameterize(None, g, asx(xp, np.eye(2)))
    with pytest.raises(TypeError, match="no objective"):
        rep.f(asx(xp, np.ones(2)))


# ---------------------------------------------------------------------------------------------------------
# block EGOP (Eq. 5)

def test_block_egop_matches_per_block(xp):
    rng = np.random.default_rng(10)
    d, M = 9, 15
    G = rng.standard_normal((d, M))
    blocks = (slice(0, 4), slice(5, 8))            # coordinates 4 and 8 are not reparameterized (like biases)
    res = egop.block_egop_from_gradients(asx(xp, G), blocks)
    for sl, r in zip(blocks, res.results):
        full = egop.egop_from_gradients(asx(xp, G[sl, :]))
        np.testing.assert_array_equal(np_(r.V), np_(full.V))  # the same call on the same block: bit for bit
        np.testing.assert_allclose(np_(r.egop), G[sl, :] @ G[sl, :].T / M, atol=20 * M * U64 * np.abs(G).max() ** 2)
    # the BlockBasis acts as the dense block-diagonal matrix
    Vd = np.eye(d)
    for sl, Vj in zip(res.basis.blocks, res.basis.bases):
        Vd[sl, sl] = np_(Vj)
    x = rng.standard_normal(d)
    # an entry of V x is an inner product of length <= 4 (the largest block) with a unit row of the orthogonal V:
    # error <= gamma_4 ||x||_2 on each side, cond 1 (c n u ||x||, DEFAULT_C = 4 covers both sides' rounding)
    tol = PM.tolerance("float64", n=4) * np.linalg.norm(x)
    np.testing.assert_allclose(np_(egop.from_reparam(asx(xp, x), res.basis)), Vd @ x, rtol=0, atol=tol)
    np.testing.assert_allclose(np_(egop.to_reparam(asx(xp, x), res.basis)), Vd.T @ x, rtol=0, atol=tol)
    rep = egop.reparameterize(None, lambda z: z * 2.0, res.basis)
    # V^T (2 V x): two such products of a vector of norm 2 ||x||, so twice the constant
    np.testing.assert_allclose(np_(rep.grad(asx(xp, x))), Vd.T @ (2 * (Vd @ x)), rtol=0, atol=2 * 2 * tol)


def test_estimate_block_egop_and_relu_blocks():
    """The digits network's blocks (weights only) with its init distribution as rho, tiny sizes (4-3-2)."""
    xp = backend.get_namespace("numpy")
    sizes = (4, 3, 2)
    rng = np.random.default_rng(11)
    X, lab = asx(xp, rng.standard_normal((10, 4))), xp.asarray(rng.integers(0, 2, 10))
    obj = problems.relu_network(X, lab, sizes)
    blocks, d = problems.relu_network_blocks(sizes)
    assert d == obj.d == 12 + 3 + 6 + 2 and blocks == (slice(0, 12), slice(15, 21))
    res = egop.estimate_block_egop(obj.grad, problems.network_init_sampler(sizes, xp=xp), 12, blocks, seed=0)
    assert [r.V.shape for r in res.results] == [(12, 12), (6, 6)]
    assert res.samples.shape == (12, d)
    x = res.samples[0, :]
    y = egop.to_reparam(x, res.basis)
    np.testing.assert_allclose(np_(y[12:15]), np_(x[12:15]))             # the bias stays as it is
    np.testing.assert_allclose(float(egop.reparameterize(obj.f, obj.grad, res.basis).f(y)), float(obj.f(x)),
                               rtol=1e-13)


def test_block_slices_and_bad_blocks(xp):
    assert egop.block_slices((2048, 32, 320, 10), (True, False, True, False)) == \
        ((slice(0, 2048), slice(2080, 2400)), 2410)
    G = asx(xp, np.ones((6, 3)))
    with pytest.raises(ValueError, match="overlap"):
        egop.block_egop_from_gradients(G, [slice(0, 3), slice(2, 5)])
    with pytest.raises(ValueError, match="0 <= start < stop <= d"):
        egop.block_egop_from_gradients(G, [slice(4, 8)])
    with pytest.raises(ValueError, match="step 1"):
        egop.block_egop_from_gradients(G, [slice(0, 4, 2)])
    with pytest.raises(ValueError, match="reparameterize"):
        egop.block_slices((1, 2), (True,))


# ---------------------------------------------------------------------------------------------------------
# partial basis, randomized range finder

@pytest.mark.parametrize("k", [0, 1, 3, 6])
def test_partial_basis_orthonormal(xp, k):
    rng = np.random.default_rng(12)
    d = 6
    Vk = haar(rng, d)[:, :k]
    P1 = np_(egop.partial_basis(asx(xp, Vk), seed=1))
    P2 = np_(egop.partial_basis(asx(xp, Vk), seed=1))
    P3 = np_(egop.partial_basis(asx(xp, Vk), seed=2))
    np.testing.assert_allclose(P1.T @ P1, np.eye(d), atol=20 * d * U64)     # Householder QR: ~ d u
    np.testing.assert_array_equal(P1[:, :k], Vk)                              # leading vectors untouched
    np.testing.assert_array_equal(P1, P2)                                     # reproducible from the seed
    if 0 < d - k:
        assert np.abs(P1[:, k:] - P3[:, k:]).max() > 1e-3                     # a different seed, a different completion
    with pytest.raises(ValueError, match="orthonormal"):
        egop.partial_basis(asx(xp, np.ones((d, 2))), seed=0)


def test_partial_egop_basis(xp):
    rng = np.random.default_rng(13)
    d, M, k = 10, 30, 3
    G = haar(rng, d) @ np.diag(0.5 ** np.arange(d)) @ rng.standard_normal((d, M))
    lam, V = egop.partial_egop_basis(asx(xp, G), k, seed=0)
    exact = egop.egop_from_gradients(asx(xp, G))
    np.testing.assert_allclose(np_(V).T @ np_(V), np.eye(d), atol=20 * d * U64)
    ang = np_(egop.principal_angles(V[:, :k], exact.V[:, :k]))
    assert ang.max() < 1e-6
    np.testing.assert_allclose(np_(lam), np_(exact.eigenvalues)[:k], rtol=1e-10)
    lam2, V2 = egop.partial_egop_basis(asx(xp, G), k, seed=0, randomized=False)
    # leading eigenvectors by two routes: Davis-Kahan, c n u lambda_1 / gap with n = d, gap the smallest gap
    # between the first k + 1 eigenvalues (cond = lambda_1 / gap), entrywise on unit vectors
    w = np_(exact.eigenvalues)
    np.testing.assert_allclose(np_(V2[:, :k]), np_(exact.V[:, :k]), rtol=0,
                               atol=PM.tolerance("float64", n=d, cond=w[0] / np.min(-np.diff(w[: k + 1]))))


def test_randomized_range_finder_accuracy(xp):
    """HMT Sec. 10 (power scheme): ||(I - Q Q^T) G||_2 <= [1 + 9 sqrt(ell min(m, n))]^(1/(2q+1)) s_{k+1} with
    probability >= 1 - 6 p^-p (p = ell - k oversampling; fixed seed here). Leading eigenpairs vs exact SVD."""
    rng = np.random.default_rng(14)
    d, M, k, p, q = 40, 60, 5, 5, 2
    s = np.concatenate([[10, 8, 6, 4, 3], 0.1 * 0.7 ** np.arange(d - 5)])
    G = haar(rng, d) @ np.diag(s) @ haar(rng, M)[:d, :]
    Q = np_(egop.randomized_range_finder(asx(xp, G), k + p, n_power_iter=q, seed=3))
    np.testing.assert_allclose(Q.T @ Q, np.eye(k + p), atol=20 * d * U64)
    resid = np.linalg.norm(G - Q @ (Q.T @ G), 2)
    bound = (1 + 9 * math.sqrt((k + p) * min(d, M))) ** (1 / (2 * q + 1)) * s[k]
    assert resid <= bound, (resid, bound)
    lam, Vk = egop.randomized_leading_basis(asx(xp, G), k, oversample=p, n_power_iter=q, seed=3)
    # Rayleigh-Ritz on a subspace with residual r: eigenvalue errors <~ r^2 / gap; here r <= bound ~ 0.2, gap >= 1
    np.testing.assert_allclose(np.sqrt(np_(lam) * M), s[:k], rtol=0, atol=bound**2 / 1.0)
    ang = np_(egop.principal_angles(Vk, asx(xp, np.linalg.svd(G)[0][:, :k])))
    assert ang.max() < 0.1, ang
    with pytest.raises(ValueError, match="ell"):
        egop.randomized_range_finder(asx(xp, G), d + 1, seed=0)


# ---------------------------------------------------------------------------------------------------------
# Kronecker approximations

def mp_singular_values(R):
    """Singular values at DPS digits, descending (mpmath.svd_r: proofs_check.mp has no SVD), R converted exactly."""
    with PM.workdps(DPS):
        return np.array([float(v) for v in sorted(mpmath.svd_r(PM.to_mp(R), compute_uv=False), reverse=True)])


@pytest.mark.parametrize("shapes", [((2, 3), (3, 2)), ((3, 3), (2, 2)), ((1, 4), (3, 1))])
def test_nearest_kronecker_optimality(xp, shapes):
    """Van Loan-Pitsianis: ||A - B kron C||_F^2 = sum_{i >= 2} s_i(R(A))^2, with s from mp at 40 digits;
    and no perturbed pair does better."""
    sB, sC = shapes
    rng = np.random.default_rng(15)
    A = rng.standard_normal((sB[0] * sC[0], sB[1] * sC[1]))
    ap = egop.nearest_kronecker(asx(xp, A), sB, sC)
    B, C = np_(ap.B), np_(ap.C)
    direct = np.linalg.norm(A - np.kron(B, C))
    R = np_(egop.rearrange(asx(xp, A), sB, sC))
    s = mp_singular_values(R)
    want = math.sqrt(float(np.sum(s[1:] ** 2)))
    # both residuals carry an absolute error ~ c n u ||A||_F (the n-term Frobenius sum of A - B kron C, or the
    # SVD's backward error); relative to the residual that is cond = ||A||_F / want (c n u cond, mp.tolerance)
    tol = PM.tolerance("float64", n=A.size, cond=max(1.0, np.linalg.norm(A) / want))
    np.testing.assert_allclose(direct, want, rtol=tol)
    np.testing.assert_allclose(float(ap.residual), want, rtol=tol)
    np.testing.assert_allclose(np_(ap.singular_values), s, atol=20 * A.size * U64 * s[0])
    for _ in range(20):
        dB, dC = 1e-3 * rng.standard_normal(B.shape), 1e-3 * rng.standard_normal(C.shape)
        assert np.linalg.norm(A - np.kron(B + dB, C + dC)) >= direct * (1 - tol)


def test_rearrangement_of_a_kronecker_product(xp):
    rng = np.random.default_rng(16)
    B, C = rng.standard_normal((2, 3)), rng.standard_normal((4, 2))
    R = np_(egop.rearrange(asx(xp, np.kron(B, C)), (2, 3), (4, 2)))
    np.testing.assert_allclose(R, np.outer(B.reshape(-1), C.reshape(-1)), atol=0)
    ap = egop.nearest_kronecker(asx(xp, np.kron(B, C)), (2, 3), (4, 2))
    # rank-one R recovered by an SVD of the 6 x 8 rearrangement: backward error p(n) u ||R||, cond 1 for the
    # dominant singular pair of an exact rank-one matrix (no gap issue: s_2 = 0); c n u ||A||_F with n = 8
    tol = PM.tolerance("float64", n=8) * np.linalg.norm(np.kron(B, C))
    np.testing.assert_allclose(np.kron(np_(ap.B), np_(ap.C)), np.kron(B, C), rtol=0, atol=tol)
    assert float(ap.residual) <= tol
    with pytest.raises(ValueError, match="expected shape"):
        egop.rearrange(asx(xp, np.ones((5, 6))), (2, 3), (4, 2))


def test_kronecker_egop_basis_psd_and_exact_case(xp):
    rng = np.random.default_rng(17)
    m, n = 3, 2
    Q1 = haar(rng, m)
    SB = Q1 @ np.diag([3.0, 1.0, 0.5]) @ Q1.T
    SB = (SB + SB.T) / 2
    SC = np.array([[2.0, 0.5], [0.5, 1.0]])
    E = np.kron(SB, SC)
    kb = egop.kronecker_egop_basis(asx(xp, E), (m, n))
    V = np_(kb.V)
    np.testing.assert_allclose(V.T @ V, np.eye(m * n), atol=20 * m * n * U64)
    D = V.T @ E @ V                                   # an exact Kronecker EGOP is diagonalized exactly
    np.testing.assert_allclose(D - np.diag(np.diag(D)), 0, atol=100 * m * n * U64 * np.abs(E).max())
    assert np.all(np_(kb.eigenvalues_1) >= 0) and np.all(np_(kb.eigenvalues_2) >= 0)
    # a generic PSD EGOP: B and C come out symmetric PSD (VLP Thm. 5.8), tr(B) >= 0
    Z = rng.standard_normal((m * n, 20))
    kb2 = egop.kronecker_egop_basis(asx(xp, Z @ Z.T / 20), (m, n))
    for F in (np_(kb2.approx.B), np_(kb2.approx.C)):
        np.testing.assert_allclose(F, F.T, atol=0)
        # PSD up to rounding: the exact VLP factor is PSD, the computed one is within c n u ||F|| of it (an SVD
        # of the m^2 x n^2 rearrangement, n = 9 its largest side, cond 1 for the dominant singular pair)
        assert np.linalg.eigvalsh(F).min() >= -PM.tolerance("float64", n=9) * np.abs(F).max()


def test_kronecker_basis_of_V_recovers_kronecker_V(xp):
    rng = np.random.default_rng(18)
    Q1, Q2 = haar(rng, 3), haar(rng, 2)
    V = np.kron(Q1, Q2)
    kb = egop.kronecker_basis_of_V(asx(xp, V), (3, 2))
    # nearest Kronecker pair of an exact Q1 kron Q2 (SVD of a 9 x 4 rearrangement, then polar factors of
    # well-conditioned, orthogonal B and C): c n u ||V||_max with n = 9 and cond 1, entrywise
    np.testing.assert_allclose(np_(kb.V), V, rtol=0, atol=PM.tolerance("float64", n=9))
    assert kb.eigenvalues_1 is None
    # the polar factor is the nearest orthogonal matrix
    A = rng.standard_normal((4, 4))
    P = np_(egop.nearest_orthogonal(asx(xp, A)))
    np.testing.assert_allclose(P.T @ P, np.eye(4), rtol=0, atol=PM.tolerance("float64", n=4))  # ~ n u (cond 1)
    for _ in range(10):
        W = haar(rng, 4)
        # slack: P's own rounding plus the 16-term norms, c n u (||A|| + ||P||) with n = 16 (cond 1)
        assert np.linalg.norm(A - W) >= np.linalg.norm(A - P) - PM.tolerance("float64", n=16) * (np.linalg.norm(A) + 2)


def test_layer_egop_row_major_convention():
    """errata 15: one linear layer f(W) = c ||X W^T||_F^2 (Y = 0), W ~ N(0, I) flattened row-major:
    grad_W = 2 c W S with S = X^T X, flat(W S) = (I kron S) flat(W), so EGOP = 4 c^2 (I kron S^2), NOT S^2 kron I.
    The Monte-Carlo EGOP (5 CLT sd per entry) and its nearest Kronecker product see that structure."""
    xp = backend.get_namespace("numpy")
    rng = np.random.default_rng(19)
    m, n, N, M = 2, 3, 5, 20000
    X = rng.standard_normal((N, n)) / 2
    obj = problems.linear_network(asx(xp, X), asx(xp, np.zeros((N, m))), [(m, n)], normalization="eq6")
    c = 1.0 / N
    S = X.T @ X
    exact = 4 * c * c * np.kron(np.eye(m), S @ S)
    res = egop.estimate_egop(obj.grad, egop.gaussian_sampler(0.0, 1.0, d=m * n, xp=xp), M, seed=0)
    # g = K w with K = 2c (I kron S): C = K K^T, mu = 0 in the Isserlis formula
    K = 2 * c * np.kron(np.eye(m), S)
    C = K @ K.T
    sd = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / M)
    assert np.all(np.abs(np_(res.egop) - exact) <= 5 * sd)
    assert np.abs(np.kron(S @ S, np.eye(m)) * 4 * c * c - exact).max() > 0.1 * np.abs(exact).max()
    kb = egop.kronecker_egop_basis(res.egop, (m, n))
    B = np_(kb.approx.B)
    np.testing.assert_allclose(B / np.trace(B) * m, np.eye(m), atol=0.05)   # B ~ I on the output index


# ---------------------------------------------------------------------------------------------------------
# diagnostics

def test_stable_rank_and_density(xp):
    def exact(want):  # hand values: ratios of sums of <= 16 positive terms (cond 1), c n u with n = 16
        return pytest.approx(want, rel=PM.tolerance("float64", n=16), abs=0)

    lam = asx(xp, [4.0, 1.0, 0.0])
    assert float(egop.stable_rank(lam)) == exact(1.5)                # (2 + 1 + 0) / 2, Eq. (3)
    assert float(egop.stable_rank(lam, form="frobenius")) == exact(1.25)
    assert float(egop.stable_rank(asx(xp, [2.0, 0, 0, 0]))) == exact(1.0)     # rank one
    assert float(egop.stable_rank(asx(xp, np.ones(7)))) == exact(7.0)        # flat
    assert float(egop.stable_rank(asx(xp, [1.0, 4.0]))) == exact(1.5)         # order does not matter
    d = 16
    assert float(egop.leading_density(asx(xp, np.eye(d)[0]))) == exact(1 / d)
    assert float(egop.leading_density(asx(xp, -np.ones(d) * 3))) == exact(1.0)
    v = np.random.default_rng(0).standard_normal(4000)
    assert float(egop.leading_density(asx(xp, v))) == pytest.approx(2 / math.pi, abs=0.02)   # sphere: 2/pi
    assert float(egop.leading_density(asx(xp, v), form="l1")) == pytest.approx(math.sqrt(2 / math.pi), abs=0.02)
    V = asx(xp, np.eye(2))
    assert float(egop.density_measure(asx(xp, [1.0, 0.5]), V)) == exact(0.5)
    np.testing.assert_allclose(np_(egop.normalized_spectrum(asx(xp, [1.0, 4.0, 2.0]))), [1, 0.5, 0.25])
    with pytest.raises(ValueError, match="all zero"):
        egop.stable_rank(asx(xp, np.zeros(3)))
    with pytest.raises(ValueError, match="PSD"):
        egop.stable_rank(asx(xp, [1.0, -0.5]))
    with pytest.raises(ValueError, match="non-zero"):
        egop.leading_density(asx(xp, np.zeros(3)))
    with pytest.raises(ValueError, match="form"):
        egop.stable_rank(lam, form="trace")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stable_rank_counts_eigenvalues_within_the_rank_rule_as_zero(xp, dtype):
    """A rank-one EGOP whose d - 1 zeros came out of eigh as tiny positives (cuSOLVER's habit, or LAPACK's on
    another matrix): 2 d u lambda_1 is inside tau = 4 d u lambda_1 (validate.zero_tolerance), so Eq. (3) gives
    exactly 1; at 8 d u (outside the band) each counts, sqrt(8 d u) apiece. Before the rule the former gave
    1 + (d - 1) sqrt(2 d u) = 1.035 in float32 at d = 100."""
    d = 100
    u = 2.0**-24 if dtype == "float32" else 2.0**-53
    for level, want in ((2 * d * u, 1.0), (8 * d * u, 1.0 + (d - 1) * math.sqrt(8 * d * u))):
        lam = asx(xp, np.r_[1.0, np.full(d - 1, level)], dtype=getattr(xp, dtype))
        # float sums of d square roots: relative rounding ~ d u (Higham Sec. 3.1); 4 d u of margin
        assert float(egop.stable_rank(lam)) == pytest.approx(want, rel=4 * d * u, abs=0)


def test_diagnostics_and_sample_size(xp):
    rng = np.random.default_rng(20)
    res = egop.egop_from_gradients(asx(xp, rng.standard_normal((5, 5))))
    dg = egop.diagnostics(res)
    assert dg.d == 5 and dg.M == 5 and 1.0 <= dg.stable_rank <= 5.0 and 0.2 <= dg.beta <= 1.0
    # gain = stable_rank / (beta d), each a ratio of d = 5-term sums: c n u with n = 5 (cond 1, positive terms)
    assert dg.gain == pytest.approx(dg.stable_rank / (dg.beta * 5), rel=PM.tolerance("float64", n=5), abs=0)
    # sum l/l1 <= sum sqrt(l/l1), each side a 5-term sum of terms in [0, 1]: slack c n u stable_rank, n = 5
    assert dg.stable_rank_frobenius <= dg.stable_rank * (1 + PM.tolerance("float64", n=5))
    assert egop.recommended_samples(2410) == 2410 and egop.recommended_samples(100, factor=2.5) == 250
    with pytest.raises(ValueError):
        egop.recommended_samples(0)


def test_principal_angles(xp):
    t = 1e-9
    A = asx(xp, [[1.0], [0.0], [0.0]])
    B = asx(xp, [[math.cos(t)], [math.sin(t)], [0.0]])
    ang = np_(egop.principal_angles(A, B))
    assert ang[0] == pytest.approx(t, rel=1e-6)                 # the sine branch keeps small angles accurate
    C = asx(xp, [[0.0], [0.0], [1.0]])
    assert float(egop.principal_angles(A, C)[0]) == pytest.approx(math.pi / 2)
    P = asx(xp, np.eye(3)[:, :2])
    np.testing.assert_array_equal(np_(egop.principal_angles(P, A)), [0.0])  # A in span(P), 0/1 entries: exact


# ---------------------------------------------------------------------------------------------------------
# bad inputs

def test_estimate_bad_inputs(xp):
    d = 3
    s = egop.gaussian_sampler(0.0, 1.0, d=d, xp=xp)
    good = lambda x: x  # noqa: E731
    with pytest.raises(ValueError, match="M"):
        egop.estimate_egop(good, s, 0, seed=0)
    with pytest.raises(TypeError, match="seed"):
        egop.estimate_egop(good, s, 2, seed=None)
    with pytest.raises(TypeError, match="sampler"):
        egop.estimate_egop(good, "gaussian", 2, seed=0)
    with pytest.raises(ValueError, match="rows"):
        egop.estimate_egop(good, lambda M, rng: s(M + 1, rng), 2, seed=0)
    with pytest.raises(ValueError, match="shape"):
        egop.estimate_egop(lambda x: x[:2], s, 2, seed=0)
    with pytest.raises(TypeError, match="dtype"):
        egop.estimate_egop(lambda x: xp.astype(x, xp.float32), s, 2, seed=0)
    with pytest.raises(ValueError, match="finite"):
        egop.estimate_egop(lambda x: x * float("nan"), s, 2, seed=0)
    with pytest.raises(TypeError, match="array"):
        egop.estimate_egop(lambda x: [1.0, 2.0, 3.0], s, 2, seed=0)
    with pytest.raises(TypeError, match="array library"):
        egop.estimate_egop(lambda x: np.zeros(d) if not backend.is_numpy(xp) else
                           backend.get_namespace("array_api_strict").zeros(d), s, 2, seed=0)
    with pytest.raises(ValueError, match="method"):
        egop.egop_from_gradients(asx(xp, np.ones((2, 2))), method="qr")
    with pytest.raises(ValueError, match="non-empty"):
        egop.egop_from_gradients(asx(xp, np.ones((2, 0))))
    with pytest.raises(TypeError, match="real floating"):
        egop.egop_from_gradients(xp.asarray([[1, 2]]))


# ---------------------------------------------------------------------------------------------------------
# value and contract tests added from the mutation run (issue 13): each pins a value, a boundary or a message
# that the tests above left free. Messages are matched from their start ("^name: ..."), since the argument's
# name is what tells the user which input was wrong.

def mp_gram_schmidt(Y):
    """Columns of Y (float, converted exactly) orthonormalized at DPS digits by Gram-Schmidt applied twice: the
    Q factor with a positive diagonal R, i.e. the unique orthonormal basis of range(Y) that a sign-normalized
    QR returns. Returns an mp matrix."""
    with PM.workdps(DPS):
        Ym = PM.to_mp(np.asarray(Y, dtype=np.float64))
        n, k = Ym.rows, Ym.cols
        cols = [[Ym[i, j] for i in range(n)] for j in range(k)]
        for _ in range(2):
            out = []
            for y in cols:
                for q in out:
                    c = mpmath.fdot(q, y)
                    y = [a - c * b for a, b in zip(y, q)]
                nrm = mpmath.sqrt(mpmath.fdot(y, y))
                out.append([a / nrm for a in y])
            cols = out
        Q = mpmath.matrix(n, k)
        for j in range(k):
            for i in range(n):
                Q[i, j] = cols[j][i]
        return Q


def test_sampling_helpers_are_the_generators_float64_draws(xp):
    """standard_normal / uniform: NumPy's draws from the seed in float64, cast once to the requested dtype
    (sampling module docstring), so bit for bit the Generator's numbers (and their float32 roundings)."""
    Z = np.random.default_rng(4).standard_normal((3, 2))
    got = egop.standard_normal(4, (3, 2), xp=xp)
    assert got.dtype == xp.float64
    np.testing.assert_array_equal(np_(got), Z)
    got32 = egop.standard_normal(np.random.default_rng(4), (3, 2), dtype=xp.float32, xp=xp)
    assert got32.dtype == xp.float32
    np.testing.assert_array_equal(np_(got32), Z.astype(np.float32))
    Uw = np.random.default_rng(5).uniform(-2.0, 3.0, size=(4,))
    got = egop.uniform(5, (4,), -2.0, 3.0, xp=xp)
    assert got.dtype == xp.float64
    np.testing.assert_array_equal(np_(got), Uw)
    np.testing.assert_array_equal(np_(egop.uniform(5, (4,), xp=xp)), np.random.default_rng(5).uniform(0.0, 1.0, 4))
    got32 = egop.uniform(5, (4,), -2.0, 3.0, dtype=xp.float32, xp=xp)
    assert got32.dtype == xp.float32
    np.testing.assert_array_equal(np_(got32), Uw.astype(np.float32))


def test_gaussian_sampler_values_and_names(xp):
    """Rows x_k = mean + scale * z_k, z = the Generator's (M, d) standard normals: one multiply and one add per
    entry in float64, the same operations as NumPy's mean + scale * Z, so equal bit for bit."""
    d, M = 3, 5
    Z = np.random.default_rng(6).standard_normal((M, d))
    mean = np.array([1.0, -2.0, 0.25])
    s = egop.gaussian_sampler(asx(xp, mean), 2.0, d=d)
    assert s.name == "gaussian(d=3, scale=2)" and s.d == d
    np.testing.assert_array_equal(np_(s(M, 6)), mean + 2.0 * Z)
    sc = np.array([0.5, 1.0, 3.0])
    s = egop.gaussian_sampler(asx(xp, mean), asx(xp, sc))
    assert s.name == "gaussian(d=3, scale=diag)"
    np.testing.assert_array_equal(np_(s(M, 6)), mean + sc * Z)
    s = egop.gaussian_sampler(-1.5, 0.5, d=d, xp=xp)                      # scalar mean: default dtype float64
    X = s(M, 6)
    assert X.dtype == xp.float64 and s.name == "gaussian(d=3, scale=0.5)"
    np.testing.assert_array_equal(np_(X), -1.5 + 0.5 * Z)
    # a float32 scale array is cast to the mean's float64 (exactly: float32 values are float64 values)
    X = egop.gaussian_sampler(asx(xp, mean), asx(xp, sc, xp.float32))(M, 6)
    assert X.dtype == xp.float64
    np.testing.assert_array_equal(np_(X), mean + sc * Z)
    s = egop.gaussian_sampler(asx(xp, mean), dtype=xp.float64)              # dtype equal to the mean's: accepted
    np.testing.assert_array_equal(np_(s(M, 6)), mean + Z)                   # default scale 1: mean + z exactly


def test_gaussian_sampler_bad_inputs_name_the_argument(xp):
    mean = asx(xp, [0.0, 1.0, 2.0])
    cases = [
        (dict(mean=mean, d=4), ValueError, r"^d: 4 does not match mean's length 3$"),
        (dict(mean=mean, dtype=xp.float32), TypeError, r"^dtype: float32 does not match mean's float64$"),
        (dict(mean=asx(xp, [0.0, float("nan")])), ValueError, r"^mean: expected finite values"),
        (dict(mean=asx(xp, np.zeros((2, 2)))), ValueError, r"^mean: expected a 1-D array"),
        (dict(mean="zero", d=2, xp=xp), TypeError, r"^mean: expected a real number"),
        (dict(mean=0.0, d=2), TypeError, r"^gaussian_sampler: a scalar mean needs d= and xp=$"),
        (dict(mean=0.0, xp=xp), TypeError, r"^gaussian_sampler: a scalar mean needs d= and xp=$"),
        (dict(mean=0.0, d=0, xp=xp), ValueError, r"^d: expected an integer >= 1"),
        (dict(mean=mean, scale=asx(xp, [1.0, 2.0])), ValueError, r"^scale: expected shape \(3,\), got \(2,\)$"),
        (dict(mean=mean, scale=asx(xp, np.ones((3, 1)))), ValueError, r"^scale: expected a 1-D array"),
        (dict(mean=mean, scale=asx(xp, [1.0, float("inf"), 1.0])), ValueError, r"^scale: expected finite values"),
        (dict(mean=mean, scale=asx(xp, [1.0, 0.0, 1.0])), ValueError,
         r"^scale: expected positive standard deviations$"),
        (dict(mean=mean, scale=0.0), ValueError, r"^scale: expected a value > 0.0"),
    ]
    for kw, err, msg in cases:
        with pytest.raises(err, match=msg):
            egop.gaussian_sampler(**kw)
    with pytest.raises(ValueError, match=r"^M: expected an integer >= 1"):
        egop.gaussian_sampler(mean)(0, 0)


def test_fix_signs_hand_values(xp):
    """The largest-|entry| rule on non-square, single-row, single-column and empty inputs; on a tie the first
    entry decides (column 1: -2 at row 0 before 2 at row 2). Negation is exact."""
    V = [[0.6, -2.0], [-0.8, 1.0], [0.0, 2.0]]
    np.testing.assert_array_equal(np_(egop.fix_signs(asx(xp, V))), [[-0.6, 2.0], [0.8, -1.0], [0.0, -2.0]])
    np.testing.assert_array_equal(np_(egop.fix_signs(asx(xp, [[-2.0, 3.0]]))), [[2.0, 3.0]])
    W = [[1.0, 0.5, -0.2], [-3.0, 0.1, 0.9], [0.5, -0.7, 0.3]]              # three columns: pivots -3, -0.7, 0.9
    np.testing.assert_array_equal(np_(egop.fix_signs(asx(xp, W))), np.array(W) * np.array([-1.0, -1.0, 1.0]))
    np.testing.assert_array_equal(np_(egop.fix_signs(asx(xp, [[-1.0], [0.5]]))), [[1.0], [-0.5]])
    for shape in ((0, 3), (3, 0)):
        assert egop.fix_signs(asx(xp, np.zeros(shape))).shape == shape
    with pytest.raises(ValueError, match=r"^V: expected a 2-D array"):
        egop.fix_signs(asx(xp, [1.0, -2.0]))


@pytest.mark.parametrize("route", ["samples", "estimate", "block", "estimate_block"])
def test_method_reaches_the_eigensolver(xp, route):
    """method="eigh" is passed through every entry point: the basis is bit for bit egop_from_gradients' eigh
    basis of the same bundle. With M < d the two methods complete null(G^T) differently (LAPACK's SVD vs eigh),
    which the first assertion checks, so the comparison tells them apart."""
    d, M = 6, 3
    sampler = egop.gaussian_sampler(0.0, 1.0, d=d, xp=xp)
    X = sampler(M, 8)

    def grad(x):                                                           # a fixed linear map of x
        return x * asx(xp, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])

    if route == "samples":
        res = egop.egop_from_samples(grad, X, method="eigh")
    elif route == "estimate":
        res = egop.estimate_egop(grad, sampler, M, seed=8, method="eigh")
    elif route == "block":
        res = egop.block_egop_from_gradients(egop.egop_from_samples(grad, X).grads, [slice(0, d)],
                                             method="eigh").results[0]
    else:
        res = egop.estimate_block_egop(grad, sampler, M, [slice(0, d)], seed=8, method="eigh").results[0]
    G = egop.egop_from_samples(grad, X).grads
    want, other = egop.egop_from_gradients(G, method="eigh"), egop.egop_from_gradients(G, method="svd")
    assert np.abs(np_(want.V) - np_(other.V)).max() > 0.1
    np.testing.assert_array_equal(np_(res.V), np_(want.V))
    np.testing.assert_array_equal(np_(res.eigenvalues), np_(want.eigenvalues))


def test_estimate_block_egop_batched_and_checked_samples(xp):
    """batched=True reaches the bundle (one call with all samples: the same bundle as per-sample calls, exactly,
    for an elementwise gradient); samples that are not finite are refused by name before any gradient."""
    d, M = 4, 5
    sampler = egop.gaussian_sampler(0.0, 1.0, d=d, xp=xp)
    calls = []

    def grad_batch(X):
        calls.append(X.shape)
        return X * 3.0

    res = egop.estimate_block_egop(grad_batch, sampler, M, [slice(1, 3)], seed=2, batched=True)
    assert calls == [(M, d)]
    np.testing.assert_array_equal(np_(res.results[0].grads), 3.0 * np_(sampler(M, 2)).T[1:3, :])
    bad = egop.Sampler(draw=lambda M, rng: asx(xp, np.full((M, d), np.nan)), d=d, name="nan")
    with pytest.raises(ValueError, match=r"^X: expected finite values"):
        egop.estimate_block_egop(lambda x: x, bad, M, [slice(0, 2)], seed=0)


def test_gradient_bundle_bad_inputs_name_the_argument(xp):
    X = asx(xp, np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"^grad_fn: expected a callable, got int$"):
        egop.egop_from_samples(3, X)
    for shape in ((0, 3), (3, 0)):
        with pytest.raises(ValueError, match=r"^X: expected a non-empty \(M, d\) array of samples"):
            egop.egop_from_samples(lambda x: x, asx(xp, np.ones(shape)))
    with pytest.raises(ValueError, match=r"^X: expected finite values"):
        egop.egop_from_samples(lambda x: x, asx(xp, [[1.0, float("nan")]]))
    with pytest.raises(ValueError, match=r"^X: expected a 2-D array"):
        egop.egop_from_samples(lambda x: x, asx(xp, [1.0, 2.0]))
    with pytest.raises(ValueError, match=r"^G: expected finite values"):
        egop.egop_from_gradients(asx(xp, [[1.0, float("inf")]]))
    with pytest.raises(ValueError, match=r"^G: expected a 2-D array"):
        egop.egop_from_gradients(asx(xp, [1.0, 2.0]))
    with pytest.raises(ValueError, match=r"^method: expected one of \('svd', 'eigh'\)"):
        egop.egop_from_gradients(asx(xp, np.ones((2, 2))), method="qr")
    with pytest.raises(ValueError, match=r"^grad_fn\(X\): expected shape \(2, 3\)"):
        egop.egop_from_samples(lambda Y: Y[:, :2], X, batched=True)
    with pytest.raises(ValueError, match=r"^sampler output: expected a 2-D array"):
        egop.estimate_egop(lambda x: x, lambda M, rng: asx(xp, np.ones(3)), 2, seed=0)


def test_recommended_samples_rounds_up():
    """M = ceil(factor d), at least 1 (notes §3: M = d); factor must be > 0."""
    assert egop.recommended_samples(3, factor=0.5) == 2          # ceil(1.5)
    assert egop.recommended_samples(1, factor=0.5) == 1          # ceil(0.5)
    assert egop.recommended_samples(7) == 7
    with pytest.raises(ValueError, match=r"^factor: expected a value > 0.0"):
        egop.recommended_samples(4, factor=0.0)
    with pytest.raises(ValueError, match=r"^d: expected an integer >= 1"):
        egop.recommended_samples(0)


def test_block_slices_start_and_defaults():
    assert egop.block_slices((2, 3)) == ((slice(0, 2), slice(2, 5)), 5)
    assert egop.block_slices((2, 3), start=5) == ((slice(5, 7), slice(7, 10)), 10)
    assert egop.block_slices((2, 3, 4), (False, True, False), start=1) == ((slice(3, 6),), 10)
    with pytest.raises(ValueError, match=r"^start: expected an integer >= 0"):
        egop.block_slices((2,), start=-1)
    with pytest.raises(ValueError, match=r"^sizes\[1\]: expected an integer >= 1"):
        egop.block_slices((2, 0))


def test_blocks_normalized_and_checked(xp):
    """_check_blocks: a single slice, (start, stop) pairs, open ends, any order (sorted), adjacent blocks and
    the bounds 0 and d are accepted; everything else is refused with the block's index."""
    G = asx(xp, np.arange(24, dtype=np.float64).reshape(6, 4))

    def blocks(b):
        return egop.block_egop_from_gradients(G, b).basis.blocks

    assert blocks(slice(1, 3)) == (slice(1, 3),)
    assert blocks([(3, 6), (0, 2)]) == (slice(0, 2), slice(3, 6))
    assert blocks([slice(None, 2), slice(4, None)]) == (slice(0, 2), slice(4, 6))
    assert blocks([slice(3, 6), slice(0, 3)]) == (slice(0, 3), slice(3, 6))
    assert blocks([(np.int64(0), np.int64(6))]) == (slice(0, 6),)
    bad = [
        ([slice(2, 2)], ValueError, r"^blocks\[0\]: expected 0 <= start < stop <= d = 6, got 2:2$"),
        ([slice(0, 2), (-1, 1)], ValueError, r"^blocks\[1\]: expected 0 <= start < stop <= d = 6, got -1:1$"),
        ([slice(4, 7)], ValueError, r"^blocks\[0\]: expected 0 <= start < stop <= d = 6, got 4:7$"),
        ([(True, 3)], TypeError, r"^blocks\[0\]: expected integer bounds, got True:3$"),
        ([(0, True)], TypeError, r"^blocks\[0\]: expected integer bounds, got 0:True$"),
        ([slice(0, 3), slice(0, 2)], ValueError, r"^blocks: 0:3 and 0:2 overlap$"),    # equal starts: input order
        ([(0, 2.0)], TypeError, r"^blocks\[0\]: expected integer bounds, got 0:2.0$"),
        ([3], TypeError, r"^blocks\[0\]: expected a slice or a \(start, stop\) pair, got int$"),
        ([(0, 1, 2)], TypeError, r"^blocks\[0\]: expected a slice or a \(start, stop\) pair, got tuple$"),
        ([], ValueError, r"^blocks: expected at least one block$"),
        ([slice(0, 3), slice(2, 5)], ValueError, r"^blocks: 0:3 and 2:5 overlap$"),
        ([slice(0, 4, 2)], ValueError, r"^blocks\[0\]: expected a contiguous slice \(step 1\), got step 2$"),
    ]
    for b, err, msg in bad:
        with pytest.raises(err, match=msg):
            egop.block_egop_from_gradients(G, b)
    with pytest.raises(ValueError, match=r"^G: expected a 2-D array"):
        egop.block_egop_from_gradients(asx(xp, np.ones(6)), [slice(0, 2)])


def test_orthonormality_tolerance_boundary(xp):
    """A basis is accepted when max|V^T V - I| <= 20 n u (reparam._orth_tol), tie included, refused above.
    diag(s, 1) with s = 1 - m u (exact) has fl(s^2) = 1 - 2 m u exactly (spacing u below 1), so the defect is
    2 m u: 40 u = 20 n u at n = 2 (the tie) and 42 u = 21 n u just above; at n = 1 the bound is 20 u."""
    def V(n, m):
        D = np.eye(n)
        D[0, 0] = 1.0 - m * U64
        return asx(xp, D)

    g = lambda x: x  # noqa: E731
    egop.reparameterize(None, g, V(2, 20))                                  # 40 u = 20 n u: accepted
    with pytest.raises(ValueError, match=r"^V: expected orthonormal columns, but max\|V\^T V - I\| = "):
        egop.reparameterize(None, g, V(2, 21))                              # 42 u > 40 u
    egop.reparameterize(None, g, V(1, 10))                                  # 20 u = 20 n u at n = 1
    with pytest.raises(ValueError, match=r"^V: expected orthonormal columns"):
        egop.reparameterize(None, g, V(1, 11))                              # 22 u > 20 u
    with pytest.raises(ValueError, match=r"^Vk: expected orthonormal columns"):
        egop.partial_basis(V(2, 21)[:, :1], seed=0)                          # one column: 42 u > 40 u
    assert egop.partial_basis(V(2, 15)[:, :1], seed=0).shape == (2, 2)      # 30 u <= 20 n u, n = d = 2 rows


def test_block_basis_checks_name_the_block(xp):
    I2, I3 = asx(xp, np.eye(2)), asx(xp, np.eye(3))
    g = lambda x: x  # noqa: E731
    cases = [
        (egop.BlockBasis(d=6, blocks=(slice(0, 2), slice(3, 6)), bases=(I2,)), r"^V: 2 blocks but 1 bases$"),
        (egop.BlockBasis(d=6, blocks=(slice(0, 2), slice(3, 6)), bases=(I2, I2)),
         r"^V\.bases\[1\]: expected shape \(3,\) \* 2 for block 3:6, got \(2, 2\)$"),
        (egop.BlockBasis(d=6, blocks=(slice(0, 2), slice(3, 6)), bases=(I2, asx(xp, np.diag([1.0, np.nan, 1.0])))),
         r"^V\.bases\[1\]: expected finite values"),
        (egop.BlockBasis(d=6, blocks=(slice(0, 2), slice(3, 6)), bases=(asx(xp, [[1.0, 1.0], [0.0, 1.0]]), I3)),
         r"^V\.bases\[0\]: expected orthonormal columns"),
        (egop.BlockBasis(d=6, blocks=(slice(0, 2), slice(3, 6)), bases=(asx(xp, np.ones((2, 3))), I3)),
         r"^V\.bases\[0\]: expected a square matrix"),
    ]
    for V, msg in cases:
        with pytest.raises(ValueError, match=msg):
            egop.reparameterize(None, g, V)
    Vnan = egop.BlockBasis(d=5, blocks=(slice(0, 2), slice(2, 5)), bases=(I2, asx(xp, np.full((3, 3), np.inf))))
    for fn in (egop.to_reparam, egop.from_reparam):
        with pytest.raises(ValueError, match=r"^V\.bases\[1\]: expected finite values"):
            fn(asx(xp, np.ones(5)), Vnan)
        with pytest.raises(ValueError, match=r"^V: expected finite values"):
            fn(asx(xp, np.ones(2)), asx(xp, [[1.0, 0.0], [0.0, np.nan]]))


def test_maps_name_the_coordinates_in_errors(xp):
    """to_reparam takes x, from_reparam and the reparameterized f / grad take y; grad_f's output is an x-space
    vector: each shape error names the one that is wrong."""
    I3 = asx(xp, np.eye(3))
    B = egop.BlockBasis(d=4, blocks=(slice(1, 3),), bases=(asx(xp, np.eye(2)),))
    bad3 = asx(xp, np.ones((3, 1, 1)))
    with pytest.raises(ValueError, match=r"^x: expected a \(d,\) or \(d, k\) array, got shape \(3, 1, 1\)$"):
        egop.to_reparam(bad3, I3)
    with pytest.raises(ValueError, match=r"^y: expected a \(d,\) or \(d, k\) array"):
        egop.from_reparam(bad3, I3)
    with pytest.raises(ValueError, match=r"^x: expected leading dimension d = 4, got shape \(3,\)$"):
        egop.to_reparam(asx(xp, np.ones(3)), B)
    with pytest.raises(ValueError, match=r"^y: expected leading dimension d = 3, got shape \(2,\)$"):
        egop.from_reparam(asx(xp, np.ones(2)), I3)
    rep = egop.reparameterize(lambda x: xp.sum(x), lambda x: x[:2], I3)
    with pytest.raises(ValueError, match=r"^x: expected leading dimension d = 3, got shape \(2,\)$"):
        rep.grad(asx(xp, np.ones(3)))                                       # grad_f returned 2 entries
    with pytest.raises(ValueError, match=r"^y: expected leading dimension d = 3"):
        rep.grad(asx(xp, np.ones(4)))
    with pytest.raises(ValueError, match=r"^y: expected leading dimension d = 3"):
        rep.f(asx(xp, np.ones(4)))
    with pytest.raises(TypeError, match=r"^f: expected a callable or None, got int$"):
        egop.reparameterize(3, lambda x: x, I3)
    with pytest.raises(TypeError, match=r"^grad_f: expected a callable, got int$"):
        egop.reparameterize(None, 3, I3)
    with pytest.raises(ValueError, match=r"^V: expected a square matrix"):
        egop.reparameterize(None, lambda x: x, asx(xp, np.ones((3, 2))))
    with pytest.raises(ValueError, match=r"^V: expected finite values"):
        egop.reparameterize(None, lambda x: x, asx(xp, np.diag([1.0, np.nan, 1.0])))
    with pytest.raises(TypeError, match=r"^x: expected an array, got list$"):
        egop.to_reparam([1.0, 2.0, 3.0], I3)
    assert egop.reparameterize(None, lambda x: x, I3).V is I3
    with pytest.raises(TypeError, match=r"^reparameterize: no objective f was given, only its gradient$"):
        egop.reparameterize(None, lambda x: x, I3).f(asx(xp, np.ones(3)))
    with pytest.raises(ValueError, match=r"^V: expected a square matrix"):
        egop.to_reparam(asx(xp, np.ones(3)), asx(xp, np.ones((3, 2))))


def test_block_basis_maps_columns_with_a_leading_gap(xp):
    """A BlockBasis whose first block starts after 0 and whose last ends before d, on (d, k) columns: the dense
    block-diagonal V (identity outside the blocks) times y, each entry an inner product of length <= 3 with a
    unit row (c n u ||y_col|| with n = 3, cond 1); the untouched rows exactly."""
    rng = np.random.default_rng(21)
    V1, V2 = haar(rng, 2), haar(rng, 3)
    B = egop.BlockBasis(d=7, blocks=(slice(1, 3), slice(3, 6)), bases=(asx(xp, V1), asx(xp, V2)))
    Vd = np.eye(7)
    Vd[1:3, 1:3], Vd[3:6, 3:6] = V1, V2
    Y = rng.standard_normal((7, 2))
    tol = PM.tolerance("float64", n=3) * np.linalg.norm(Y, axis=0).max()
    got = np_(egop.from_reparam(asx(xp, Y), B))
    np.testing.assert_allclose(got, Vd @ Y, rtol=0, atol=tol)
    np.testing.assert_array_equal(got[[0, 6], :], Y[[0, 6], :])
    np.testing.assert_allclose(np_(egop.to_reparam(asx(xp, Y), B)), Vd.T @ Y, rtol=0, atol=tol)


def test_partial_basis_completion_against_mp(xp):
    """The completion is the Q factor, with a positive diagonal R, of (I - Vk Vk^T)^2 Z, Z the seed's (d, d - k)
    standard normals (Sec. 5 "append any random orthonormal basis"; the sign rule makes it Haar). Ground truth:
    the same two projections and Gram-Schmidt at 40 digits. A Householder QR of a matrix with condition number
    kappa is accurate to c n u kappa entrywise (Higham 19.3), n = d."""
    rng = np.random.default_rng(22)
    d, k, seed = 6, 2, 5
    Vk = haar(rng, d)[:, :k]
    Z = np.random.default_rng(seed).standard_normal((d, d - k))
    with PM.workdps(DPS):
        Vm, Zm = PM.to_mp(Vk), PM.to_mp(Z)
        for _ in range(2):
            Zm = Zm - Vm * (Vm.T * Zm)
        Pf = np.array(Zm.tolist(), dtype=float)
    Q = np_(egop.partial_basis(asx(xp, Vk), seed=seed))
    want = PM.from_mp(mp_gram_schmidt(Pf))
    tol = PM.tolerance("float64", n=d, cond=np.linalg.cond(Pf))
    np.testing.assert_allclose(Q[:, k:], want, rtol=0, atol=tol)
    # d = 1: the completion of no vectors is z / |z| = sign(z) (the 1 x 1 Q of z = Q R with R > 0), exactly
    z = np.random.default_rng(seed).standard_normal((1, 1))
    np.testing.assert_array_equal(np_(egop.partial_basis(asx(xp, np.zeros((1, 0))), seed=seed)), np.sign(z))
    # float32 in, float32 out: the Gaussian block is cast to Vk's dtype
    P32 = egop.partial_basis(asx(xp, Vk, xp.float32), seed=seed)
    assert P32.dtype == xp.float32
    with pytest.raises(ValueError, match=r"^Vk: expected d >= 1 rows, got 0$"):
        egop.partial_basis(asx(xp, np.zeros((0, 0))), seed=0)
    with pytest.raises(ValueError, match=r"^Vk: expected at most d = 2 columns, got 3$"):
        egop.partial_basis(asx(xp, np.ones((2, 3))), seed=0)
    with pytest.raises(ValueError, match=r"^Vk: expected finite values"):
        egop.partial_basis(asx(xp, [[np.nan], [0.0]]), seed=0)
    with pytest.raises(ValueError, match=r"^Vk: expected a 2-D array"):
        egop.partial_basis(asx(xp, [1.0, 0.0]), seed=0)


def _mp_power_range(A, Omega, q):
    """(A A^T)^q A Omega at DPS digits (A, Omega converted exactly), as floats: the exact-arithmetic range that
    the range finder's re-orthonormalized iteration spans (re-orthonormalizing does not change the span)."""
    with PM.workdps(DPS):
        Am = PM.to_mp(A)
        Y = Am * PM.to_mp(Omega)
        for _ in range(q):
            Y = Am * (Am.T * Y)
        return Y


def _flat_spectrum_matrix(rng, m, n, top, bottom):
    s = np.linspace(top, bottom, min(m, n))
    return haar(rng, m)[:, : s.size] @ np.diag(s) @ haar(rng, n)[: s.size, :]


@pytest.mark.parametrize("q", [None, 0, 1])
def test_randomized_range_finder_subspace_against_mp(xp, q):
    """HMT Alg. 4.4 spans range((A A^T)^q A Omega) with Omega the seed's (n, ell) normals, q = n_power_iter
    (default 2). A flat spectrum (3 .. 1) keeps that subspace far from the dominant one, so q = 1, 2, 3 give
    different projectors. The projector Q Q^T against the mp one: c m u kappa(Y), Y the mp range (each QR of
    the iteration is backward stable; kappa bounds the subspace's sensitivity)."""
    rng = np.random.default_rng(23)
    m, n, ell, seed = 8, 10, 3, 4
    A = _flat_spectrum_matrix(rng, m, n, 3.0, 1.0)
    kw = {} if q is None else {"n_power_iter": q}
    Q = np_(egop.randomized_range_finder(asx(xp, A), ell, seed=seed, **kw))
    Omega = np.random.default_rng(seed).standard_normal((n, ell))
    Y = _mp_power_range(A, Omega, 2 if q is None else q)
    P = PM.from_mp(mp_gram_schmidt(np.array(Y.tolist(), dtype=float)))
    # the float Y only feeds kappa and Gram-Schmidt's input: GS of the float-rounded Y moves the projector by
    # ~ u kappa(Y), inside the tolerance below
    kappa = np.linalg.cond(np.array(Y.tolist(), dtype=float))
    tol = PM.tolerance("float64", n=m, cond=kappa)
    np.testing.assert_allclose(Q @ Q.T, P @ P.T, rtol=0, atol=tol)
    with pytest.raises(ValueError, match=r"^n_power_iter: expected an integer >= 0"):
        egop.randomized_range_finder(asx(xp, A), ell, n_power_iter=-1, seed=0)
    with pytest.raises(ValueError, match=r"^ell: expected 1 <= ell <= min\(m, n\) = 8, got 9$"):
        egop.randomized_range_finder(asx(xp, A), 9, seed=0)
    with pytest.raises(ValueError, match=r"^ell: expected an integer >= 1"):
        egop.randomized_range_finder(asx(xp, A), 0, seed=0)
    with pytest.raises(ValueError, match=r"^A: expected finite values"):
        egop.randomized_range_finder(asx(xp, np.full((2, 2), np.nan)), 1, seed=0)
    with pytest.raises(ValueError, match=r"^A: expected a 2-D array"):
        egop.randomized_range_finder(asx(xp, np.ones(3)), 1, seed=0)


def test_randomized_leading_basis_ritz_values_against_mp(xp):
    """HMT Alg. 5.1 on the range finder's Q: lambda_i = s_i(Q^T G)^2 / M, the Ritz values of G G^T / M on
    range((G G^T)^q G Omega), ell = k + oversample (defaults 10 and 2). The Ritz values depend only on that
    subspace; the mp ones are the eigenvalues of Q^T G G^T Q / M at 40 digits with the mp Q. A flat spectrum
    (1.3 .. 1) makes them move with ell and q. Tolerance: c d u kappa(Y) lambda_1 (the subspace's rounding,
    first order in the Ritz values)."""
    rng = np.random.default_rng(24)
    d, M, k, seed = 16, 20, 2, 9
    G = _flat_spectrum_matrix(rng, d, M, 1.3, 1.0)
    lam, Vk = egop.randomized_leading_basis(asx(xp, G), k, seed=seed)
    ell = k + 10
    Omega = np.random.default_rng(seed).standard_normal((M, ell))
    Y = _mp_power_range(G, Omega, 2)
    Yf = np.array(Y.tolist(), dtype=float)
    Qm = mp_gram_schmidt(Yf)
    with PM.workdps(DPS):
        T = Qm.T * PM.to_mp(G)
        w, _ = PM.mp_eigsy(T * T.T / M, dps=DPS)
        want = np.array([float(v) for v in reversed(w)])[:k]
    tol = PM.tolerance("float64", n=d, cond=np.linalg.cond(Yf)) * want[0]
    np.testing.assert_allclose(np_(lam), want, rtol=0, atol=tol)
    # partial_egop_basis with its defaults draws the same Omega first from the same seed: the same Ritz values
    lamp, _ = egop.partial_egop_basis(asx(xp, G), k, seed=seed)
    np.testing.assert_allclose(np_(lamp), want, rtol=0, atol=tol)
    # n_power_iter and oversample reach the range finder: q = 1, ell = k + 3 against their own mp Ritz values
    Y1 = np.array(_mp_power_range(G, np.random.default_rng(seed).standard_normal((M, k + 3)), 1).tolist(), dtype=float)
    with PM.workdps(DPS):
        T = mp_gram_schmidt(Y1).T * PM.to_mp(G)
        w1, _ = PM.mp_eigsy(T * T.T / M, dps=DPS)
        want1 = np.array([float(v) for v in reversed(w1)])[:k]
    tol1 = PM.tolerance("float64", n=d, cond=np.linalg.cond(Y1)) * want1[0]
    for fn in (egop.randomized_leading_basis, egop.partial_egop_basis):
        lam1 = fn(asx(xp, G), k, seed=seed, n_power_iter=1, oversample=3)[0]
        np.testing.assert_allclose(np_(lam1), want1, rtol=0, atol=tol1)
    V = np_(Vk)
    assert V.shape == (d, k) and np.all(V[np.argmax(np.abs(V), axis=0), np.arange(k)] > 0)   # fix_signs applied
    # M divides the squared singular values: doubling it halves lambda exactly (division by a power of 2)
    lam2, _ = egop.randomized_leading_basis(asx(xp, G), k, seed=seed, M=2 * M)
    np.testing.assert_array_equal(np_(lam2), np_(lam) / 2)
    with pytest.raises(ValueError, match=r"^k: expected 1 <= k <= min\(d, M\) = 16, got 17$"):
        egop.randomized_leading_basis(asx(xp, G), 17, seed=0)
    with pytest.raises(ValueError, match=r"^oversample: expected an integer >= 0"):
        egop.randomized_leading_basis(asx(xp, G), k, oversample=-1, seed=0)
    with pytest.raises(ValueError, match=r"^M: expected an integer >= 1"):
        egop.randomized_leading_basis(asx(xp, G), k, seed=0, M=0)
    with pytest.raises(ValueError, match=r"^k: expected an integer >= 1"):
        egop.randomized_leading_basis(asx(xp, G), 0, seed=0)
    with pytest.raises(ValueError, match=r"^G: expected a 2-D array"):
        egop.partial_egop_basis(asx(xp, np.ones(3)), 1, seed=0)
    with pytest.raises(ValueError, match=r"^G: expected a 2-D array"):
        egop.randomized_leading_basis(asx(xp, np.ones(3)), 1, seed=0)


def test_partial_egop_basis_one_seed_and_exact_route(xp):
    """One seed feeds both draws (partial_egop_basis docstring): the completion is partial_basis of the leading
    vectors with the Generator after the range finder's (M, ell) draw (bit for bit), or with the fresh Generator
    on the exact route. The exact route's eigenvalues s_i(G)^2 / M against mp eigsy (Weyl: 20 d u lambda_1)."""
    rng = np.random.default_rng(25)
    d, M, k, seed = 7, 9, 2, 11
    G = rng.standard_normal((d, M))
    lam, V = egop.partial_egop_basis(asx(xp, G), k, seed=seed, n_power_iter=1, oversample=2)
    g = np.random.default_rng(seed)
    g.standard_normal((M, k + 2))
    np.testing.assert_array_equal(np_(V), np_(egop.partial_basis(V[:, :k], seed=g)))
    lam2, V2 = egop.partial_egop_basis(asx(xp, G), k, seed=seed, randomized=False)
    np.testing.assert_array_equal(np_(V2), np_(egop.partial_basis(V2[:, :k], seed=seed)))
    w, _ = mp_egop_eigsy_desc(G)
    np.testing.assert_allclose(np_(lam2), w[:k], rtol=0, atol=20 * d * U64 * w[0])
    assert np.all(np_(V2)[np.argmax(np.abs(np_(V2[:, :k])), axis=0), np.arange(k)] > 0)      # fix_signs applied
    with pytest.raises(ValueError, match=r"^k: expected 1 <= k <= min\(d, M\) = 7, got 8$"):
        egop.partial_egop_basis(asx(xp, G), 8, seed=0)
    with pytest.raises(ValueError, match=r"^k: expected an integer >= 1"):
        egop.partial_egop_basis(asx(xp, G), 0, seed=0)
    with pytest.raises(ValueError, match=r"^G: expected finite values"):
        egop.partial_egop_basis(asx(xp, np.full((2, 2), np.nan)), 1, seed=0)


def test_nearest_kronecker_factors_of_an_exact_product(xp):
    """A = B0 kron C0: the leading singular pair of R(A) splits the scale evenly, ||B||_F = ||C||_F =
    sqrt(||B0||_F ||C0||_F), so B = sigma B0 sqrt(||C0||/||B0||), C = sigma C0 sqrt(||B0||/||C0||) with sigma
    the sign that makes B's largest |entry| positive (non-symmetric case). R(A) is rank one up to the rounding of
    the products, so the SVD recovers the pair to c n u (n = 6, the rearrangement's side; cond 1, gap = s_1)."""
    rng = np.random.default_rng(26)
    B0, C0 = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    B0 *= np.sign(B0.flat[np.argmax(np.abs(B0))])                    # sigma = +1 for B0 itself
    ap = egop.nearest_kronecker(asx(xp, np.kron(B0, C0)), (2, 3), (3, 2))
    nb, nc = np.linalg.norm(B0), np.linalg.norm(C0)
    tol = PM.tolerance("float64", n=6) * math.sqrt(nb * nc)
    np.testing.assert_allclose(np_(ap.B), B0 * math.sqrt(nc / nb), rtol=0, atol=tol)
    np.testing.assert_allclose(np_(ap.C), C0 * math.sqrt(nb / nc), rtol=0, atol=tol)
    ap = egop.nearest_kronecker(asx(xp, np.kron(-B0, C0)), (2, 3), (3, 2))   # -B0 kron C0: same B, C -> -C
    np.testing.assert_allclose(np_(ap.B), B0 * math.sqrt(nc / nb), rtol=0, atol=tol)
    np.testing.assert_allclose(np_(ap.C), -C0 * math.sqrt(nb / nc), rtol=0, atol=tol)


def test_nearest_kronecker_symmetry_detection_and_sign(xp):
    """symmetric_psd=None detects a symmetric A (max|A - A^T| <= 8 n u max|A|, validate.SYM_TOL_FACTOR, tie
    included) and then fixes the sign by tr(B) >= 0 and symmetrizes; otherwise by the largest |entry|. For
    B0 = [[-0.5, 1], [1, -0.25]] (trace < 0, largest entry > 0) the two rules give opposite signs. A = B0 kron
    diag(2, 1) has max|A| = 2, n = 4, so the threshold is 64 u; A[0, 1] is an exact zero set to 64 u or 65 u."""
    B0 = np.array([[-0.5, 1.0], [1.0, -0.25]])
    C0 = np.diag([2.0, 1.0])
    scale = math.sqrt(np.linalg.norm(C0) / np.linalg.norm(B0))
    tol = PM.tolerance("float64", n=4) * np.linalg.norm(B0) * scale
    for off, sign in ((64, -1.0), (65, 1.0)):
        A = np.kron(B0, C0)
        A[0, 1] = off * U64
        ap = egop.nearest_kronecker(asx(xp, A), (2, 2), (2, 2))
        B = np_(ap.B)
        np.testing.assert_allclose(B, sign * scale * B0, rtol=0, atol=tol)
        if sign < 0:
            np.testing.assert_array_equal(B, B.T)                   # symmetrized
            np.testing.assert_array_equal(np_(ap.C), np_(ap.C).T)
    ap = egop.nearest_kronecker(asx(xp, np.kron(B0, C0)), (2, 2), (2, 2), symmetric_psd=False)
    np.testing.assert_allclose(np_(ap.B), scale * B0, rtol=0, atol=tol)
    with pytest.raises(ValueError, match=r"^symmetric_psd: needs square factor shapes$"):
        egop.nearest_kronecker(asx(xp, np.ones((6, 6))), (2, 3), (3, 2), symmetric_psd=True)


def test_nearest_kronecker_without_a_tail(xp):
    """min(m1 n1, m2 n2) = 1: R(A) has one singular value, A = b C exactly representable as a Kronecker product,
    and the residual is an exact 0 in A's dtype. B = [[||A||_F]] up to c n u (n = 6)."""
    A = np.array([[1.0, -2.0, 0.5], [2.0, 0.0, -1.0]])
    for dtype in ("float32", "float64"):
        ap = egop.nearest_kronecker(asx(xp, A, getattr(xp, dtype)), (1, 1), (2, 3))
        assert ap.residual.dtype == getattr(xp, dtype) and float(ap.residual) == 0.0
        nrm = np.linalg.norm(A)
        assert float(ap.B[0, 0]) == pytest.approx(math.sqrt(nrm), rel=PM.tolerance(dtype, n=6), abs=0)
        np.testing.assert_allclose(np_(ap.singular_values), [nrm], rtol=PM.tolerance(dtype, n=6))


def test_kronecker_egop_basis_hand_values(xp):
    """E = SB kron SC: B, C = SB, SC rescaled to equal Frobenius norms, so eigenvalues_1 = (3, 1, 0.5)
    sqrt(||SC||/||SB||) and eigenvalues_2 = ((3 +- sqrt 2) / 2) sqrt(||SB||/||SC||), descending; SC's
    eigenvectors by hand, (1, sqrt 2 - 1) and (-1, 1 + sqrt 2) normalized (largest |entry| positive), SB's are
    Q1's columns (signs by the same rule). Eigenvalues to c n u lambda_max (n = 9, cond 1); eigenvectors to
    c n u lambda_max / gap (Davis-Kahan; gaps 0.5 and sqrt 2 before the rescaling)."""
    rng = np.random.default_rng(17)
    Q1 = haar(rng, 3)
    SB = Q1 @ np.diag([3.0, 1.0, 0.5]) @ Q1.T
    SB = (SB + SB.T) / 2
    SC = np.array([[2.0, 0.5], [0.5, 1.0]])
    kb = egop.kronecker_egop_basis(asx(xp, np.kron(SB, SC)), (3, 2))
    nb, nc = math.sqrt(9 + 1 + 0.25), math.sqrt(5.5)
    r2 = math.sqrt(2)
    w1, w2 = np.array([3.0, 1.0, 0.5]) * math.sqrt(nc / nb), np.array([(3 + r2) / 2, (3 - r2) / 2]) * math.sqrt(nb / nc)
    tol = PM.tolerance("float64", n=9)
    np.testing.assert_allclose(np_(kb.eigenvalues_1), w1, rtol=0, atol=tol * w1[0])
    np.testing.assert_allclose(np_(kb.eigenvalues_2), w2, rtol=0, atol=tol * w2[0])
    V2 = np.array([[1.0, -1.0], [r2 - 1, 1 + r2]]) / np.array([math.sqrt(4 - 2 * r2), math.sqrt(4 + 2 * r2)])
    np.testing.assert_allclose(np_(kb.V2), V2, rtol=0, atol=tol * (3 + r2) / 2 / r2)
    np.testing.assert_allclose(np_(kb.V1), np_(egop.fix_signs(asx(xp, Q1))), rtol=0, atol=tol * 3 / 0.5)
    with pytest.raises(ValueError, match=r"^egop: expected shape \(6, 6\) for a parameter of shape \(3, 2\), got \(4, 4\)$"):
        egop.kronecker_egop_basis(asx(xp, np.eye(4)), (3, 2))
    with pytest.raises(ValueError, match=r"^shape: expected an integer >= 1"):
        egop.kronecker_egop_basis(asx(xp, np.eye(4)), (0, 2))
    with pytest.raises(ValueError, match=r"^egop: expected a square matrix"):
        egop.kronecker_egop_basis(asx(xp, np.ones((4, 2))), (2, 2))


def test_kronecker_basis_of_V_sign_of_a_symmetric_V(xp):
    """kronecker_basis_of_V reads V as a general matrix (largest-|entry| sign rule), even when V is symmetric:
    for V = H1 kron H2 with H1 = 2 v v^T - I (v = 1/sqrt 3, trace -1, largest entry 2/3 > 0) and H2 = [[0, 1],
    [1, 0]] the factors are H1 and H2 themselves (the trace rule would return -H1, -H2). c n u with n = 9."""
    H1 = np.full((3, 3), 2.0 / 3.0) - np.eye(3)
    H2 = np.array([[0.0, 1.0], [1.0, 0.0]])
    kb = egop.kronecker_basis_of_V(asx(xp, np.kron(H1, H2)), (3, 2))
    tol = PM.tolerance("float64", n=9)
    np.testing.assert_allclose(np_(kb.V1), H1, rtol=0, atol=tol)
    np.testing.assert_allclose(np_(kb.V2), H2, rtol=0, atol=tol)
    assert float(kb.approx.residual) <= tol * 6                      # V is exactly H1 kron H2, ||V||_F = sqrt 6
    with pytest.raises(ValueError, match=r"^V: expected a square matrix"):
        egop.kronecker_basis_of_V(asx(xp, np.ones((6, 4))), (3, 2))
    with pytest.raises(ValueError, match=r"^A: expected a 2-D array"):
        egop.nearest_kronecker(asx(xp, np.ones(4)), (2, 2), (1, 1))
    with pytest.raises(ValueError, match=r"^A: expected shape \(8, 6\) for B \(2, 3\) kron C \(4, 2\), got \(5, 6\)$"):
        egop.rearrange(asx(xp, np.ones((5, 6))), (2, 3), (4, 2))
    with pytest.raises(ValueError, match=r"^V: expected shape \(6, 6\) for a parameter of shape \(3, 2\), got \(4, 4\)$"):
        egop.kronecker_basis_of_V(asx(xp, np.eye(4)), (3, 2))
    with pytest.raises(ValueError, match=r"^shape: expected an integer >= 1"):
        egop.kronecker_basis_of_V(asx(xp, np.eye(4)), (2, 0))
    with pytest.raises(ValueError, match=r"^A: expected finite values"):
        egop.nearest_orthogonal(asx(xp, [[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"^A: expected a square matrix"):
        egop.nearest_orthogonal(asx(xp, np.ones((2, 3))))
    with pytest.raises(ValueError, match=r"^A: expected finite values"):
        egop.nearest_kronecker(asx(xp, np.full((4, 4), np.inf)), (2, 2), (2, 2))
    with pytest.raises(ValueError, match=r"^shape_B: expected an integer >= 1"):
        egop.rearrange(asx(xp, np.ones((4, 4))), (0, 2), (2, 2))
    with pytest.raises(ValueError, match=r"^shape_C: expected an integer >= 1"):
        egop.rearrange(asx(xp, np.ones((4, 4))), (2, 2), (2, -1))
    with pytest.raises(ValueError, match=r"^A: expected a 2-D array"):
        egop.rearrange(asx(xp, np.ones(4)), (2, 2), (1, 1))


def test_density_measure_and_diagnostics_hand_values(xp):
    """density_measure normalizes V's columns and takes the largest eigenvalue wherever it is:
    lambda = (4, 1), V = (0.6, 0.8) and (-0.8, 0.6) scaled by (5, 2) gives max(0.98, 0.25 * 0.98) = 0.98; lambda =
    (1, 4) with v = (0.6, 0.8), (1, 0) gives max(0.245, 0.5) = 0.5. diagnostics of lambda = (4, 1, 0) and
    V = [(0.6, 0.8, 0), e3, (-0.8, 0.6, 0)]: sr_f = (2 + 1 + 0)/2 = 1.5 (Eq. 3), Frobenius form 5/4, beta =
    ||v_1||_1^2 / 3 = 1.96/3, the general measure max(1.96/3, (1/4)(1/3), 0) = 1.96/3, gain = 1.5 / 1.96,
    lambda_1 = 4, d = 3, M = the bundle's columns (None without one). Ratios of sums of <= 4 terms of the inexact
    0.6, 0.8: c n u with n = 4."""
    lam = asx(xp, [4.0, 1.0])

    def near(want):
        return pytest.approx(want, rel=PM.tolerance("float64", n=4), abs=0)

    V2 = np.array([[0.6, -0.8], [0.8, 0.6]])
    assert float(egop.density_measure(lam, asx(xp, V2 * np.array([5.0, 2.0])))) == near(0.98)
    assert float(egop.density_measure(asx(xp, [1.0, 4.0]), asx(xp, [[0.6, 1.0], [0.8, 0.0]]))) == near(0.5)
    V = np.array([[0.6, 0.0, -0.8], [0.8, 0.0, 0.6], [0.0, 1.0, 0.0]])
    res = egop.EgopResult(egop=None, grads=asx(xp, np.ones((3, 7))), eigenvalues=asx(xp, [4.0, 1.0, 0.0]),
                          V=asx(xp, V), samples=None)
    dg = egop.diagnostics(res)
    assert (dg.d, dg.M, dg.lambda_1) == (3, 7, 4.0)
    assert dg.stable_rank == near(1.5) and dg.stable_rank_frobenius == near(1.25)
    assert dg.beta == near(1.96 / 3) and dg.density_measure == near(1.96 / 3)
    assert dg.gain == near(1.5 / 1.96)
    assert egop.diagnostics(res._replace(grads=None)).M is None
    for shape in ((2, 3), (3, 2)):
        with pytest.raises(ValueError, match=r"^V: expected shape \(2, 2\), got \(%d, %d\)$" % shape):
            egop.density_measure(lam, asx(xp, np.ones(shape)))
    with pytest.raises(ValueError, match=r"^V: expected a 2-D array"):
        egop.density_measure(lam, asx(xp, np.ones(2)))


def test_leading_density_hand_values(xp):
    """v = (3, -4): ||v / 5||_1 = 7/5, so beta = (7/5)^2 / 2 = 0.98 and the l1 form 1.4 / sqrt 2 (2-term sums,
    c n u with n = 2)."""
    v = asx(xp, [3.0, -4.0])
    tol = PM.tolerance("float64", n=2)
    assert float(egop.leading_density(v)) == pytest.approx(0.98, rel=tol, abs=0)
    assert float(egop.leading_density(v, form="l1")) == pytest.approx(1.4 / math.sqrt(2), rel=tol, abs=0)
    assert float(egop.leading_density(asx(xp, [-2.0]))) == 1.0             # d = 1: |v / |v||_1 = 1 exactly
    assert float(egop.stable_rank(asx(xp, [3.0]))) == 1.0                  # one eigenvalue: sqrt(3)/sqrt(3)
    with pytest.raises(ValueError, match=r"^v: expected a non-zero vector$"):
        egop.leading_density(asx(xp, np.zeros(0)))
    with pytest.raises(ValueError, match=r"^v: expected a 1-D array"):
        egop.leading_density(asx(xp, np.ones((2, 2))))
    with pytest.raises(ValueError, match=r"^v: expected finite values"):
        egop.leading_density(asx(xp, [1.0, np.nan]))
    with pytest.raises(ValueError, match=r"^form: expected one of \('squared', 'l1'\)"):
        egop.leading_density(v, form="l2")


def test_spectrum_rank_rule_ties_and_messages(xp):
    """The band tau = 4 d u max|lambda| (validate.zero_tolerance), d = 2: 8 u. -8 u is rounding (accepted, counts
    0), -9 u is refused as not PSD; +8 u counts as 0, tie included (sr_f exactly 1, not 1 + sqrt(8 u))."""
    assert float(egop.stable_rank(asx(xp, [1.0, -8 * U64]))) == 1.0
    assert float(egop.stable_rank(asx(xp, [1.0, 8 * U64]))) == 1.0
    assert float(egop.stable_rank(asx(xp, [1.0, 9 * U64]))) == pytest.approx(1 + math.sqrt(9 * U64), rel=4 * U64, abs=0)
    msg = f"eigenvalues: expected >= 0 (a PSD spectrum), but min = {-9 * U64:.3g} < -tol = {-8 * U64:.3g}"
    with pytest.raises(ValueError, match="^" + re.escape(msg) + "$"):
        egop.stable_rank(asx(xp, [1.0, -9 * U64]))
    with pytest.raises(ValueError, match=r"^eigenvalues: expected a non-empty spectrum$"):
        egop.stable_rank(asx(xp, np.zeros(0)))
    with pytest.raises(ValueError, match=r"^eigenvalues: all zero \(no leading eigenvalue to normalize by\)$"):
        egop.normalized_spectrum(asx(xp, np.zeros(2)))
    with pytest.raises(ValueError, match=r"^eigenvalues: expected finite values"):
        egop.stable_rank(asx(xp, [1.0, np.inf]))
    with pytest.raises(ValueError, match=r"^eigenvalues: expected a 1-D array"):
        egop.stable_rank(asx(xp, np.ones((2, 2))))
    with pytest.raises(ValueError, match=r"^form: expected one of \('nuclear', 'frobenius'\)"):
        egop.stable_rank(asx(xp, [1.0]), form="trace")


def test_principal_angles_both_branches_and_unequal_dims(xp):
    """A = [e1, e2], B = [cos a e1 + sin a e3, cos b e2 + sin b e4] with a = 1e-8 and b = pi/2 - 1e-8: the angles
    are (a, b), ascending. a needs the sine branch (acos(1) = 0), b the cosine one (asin(1 - 5e-17) = pi/2);
    each branch is accurate to a few u relative on its side of pi/4 (c n u, n = 4). With A = e1 alone (k = 1,
    l = 2) the one angle is a: the smallest singular value of B - A A^T B, not the largest."""
    a, b = 1e-8, math.pi / 2 - 1e-8
    A = np.eye(4)[:, :2]
    B = np.zeros((4, 2))
    B[0, 0], B[2, 0], B[1, 1], B[3, 1] = math.cos(a), math.sin(a), math.cos(b), math.sin(b)
    tol = PM.tolerance("float64", n=4)
    np.testing.assert_allclose(np_(egop.principal_angles(asx(xp, A), asx(xp, B))), [a, b], rtol=tol, atol=0)
    np.testing.assert_allclose(np_(egop.principal_angles(asx(xp, A[:, :1]), asx(xp, B))), [a], rtol=tol, atol=0)
    np.testing.assert_allclose(np_(egop.principal_angles(asx(xp, B), asx(xp, A[:, :1]))), [a], rtol=tol, atol=0)
    empty = egop.principal_angles(asx(xp, np.zeros((4, 0)), xp.float32), asx(xp, B))
    assert empty.shape == (0,) and empty.dtype == xp.float32                  # no angles, in A's dtype
    with pytest.raises(ValueError, match=r"^B: expected 4 rows like A, got 3$"):
        egop.principal_angles(asx(xp, A), asx(xp, np.ones((3, 1))))
    with pytest.raises(ValueError, match=r"^A: expected a 2-D array"):
        egop.principal_angles(asx(xp, np.ones(4)), asx(xp, B))
    with pytest.raises(ValueError, match=r"^B: expected a 2-D array"):
        egop.principal_angles(asx(xp, A), asx(xp, np.ones(4)))


@pytest.mark.parametrize("method", egop.METHODS)
def test_egop_of_one_coordinate_and_of_one_sample(xp, method):
    """Hand values at the edges d = 1 and M = 1 (Algorithm 1 steps 3-4): G = [[3, -1]] gives the 1 x 1 EGOP
    (9 + 1)/2 = 5 with V = [[1]]; G = [[3], [4]] gives E = g g^T = [[9, 12], [12, 16]], lambda = (25, 0) and
    v_1 = (0.6, 0.8). A few roundings of O(1) values: c n u with n = 2 (cond 1; the eigenvector's gap is 25)."""
    tol = PM.tolerance("float64", n=2)
    r = egop.egop_from_gradients(asx(xp, [[3.0, -1.0]]), method=method)
    np.testing.assert_allclose(np_(r.egop), [[5.0]], rtol=tol)
    np.testing.assert_allclose(np_(r.eigenvalues), [5.0], rtol=tol)
    np.testing.assert_array_equal(np_(r.V), [[1.0]])
    r = egop.egop_from_gradients(asx(xp, [[3.0], [4.0]]), method=method)
    np.testing.assert_allclose(np_(r.egop), [[9.0, 12.0], [12.0, 16.0]], rtol=0, atol=tol * 25)
    np.testing.assert_allclose(np_(r.eigenvalues), [25.0, 0.0], rtol=0, atol=tol * 25)
    np.testing.assert_allclose(np_(r.V)[:, 0], [0.6, 0.8], rtol=0, atol=tol)
    np.testing.assert_allclose(np.abs(np_(r.V)[:, 1]), [0.8, 0.6], rtol=0, atol=tol)
    with pytest.raises(ValueError, match=r"^G: expected a non-empty \(d, M\) gradient bundle, got shape \(0, 2\)$"):
        egop.egop_from_gradients(asx(xp, np.ones((0, 2))), method=method)


def test_objects_with_a_shape_but_no_dtype_are_not_arrays(xp):
    """An array has both .shape and .dtype; a memoryview has only .shape and must take the non-array route
    everywhere, with the message of that route."""
    mv = memoryview(np.eye(2))
    with pytest.raises(TypeError, match=r"^mean: expected a real number, got memoryview$"):
        egop.gaussian_sampler(mv, d=2, xp=xp)
    with pytest.raises(TypeError, match=r"^scale: expected a real number, got memoryview$"):
        egop.gaussian_sampler(asx(xp, [0.0, 0.0]), mv)
    with pytest.raises(TypeError, match=r"^V: expected an array, got memoryview$"):
        egop.to_reparam(asx(xp, np.ones(2)), mv)
    with pytest.raises(TypeError, match=r"^grad_fn\(X\[0\]\): expected an array, got memoryview$"):
        egop.egop_from_samples(lambda x: memoryview(np.ones(2)), asx(xp, np.ones((2, 2))))


def test_egop_from_samples_with_one_sample_or_one_coordinate(xp):
    """grad = 2 x on X = [[1.5, -2]] (M = 1): G = [[3], [-4]], E = [[9, -12], [-12, 16]]; on X = [[1], [2], [3]]
    (d = 1): E = 4 (1 + 4 + 9) / 3 = 56/3. Rounding of O(1) sums: c n u with n = 3."""
    tol = PM.tolerance("float64", n=3)
    r = egop.egop_from_samples(lambda x: 2.0 * x, asx(xp, [[1.5, -2.0]]))
    np.testing.assert_allclose(np_(r.egop), [[9.0, -12.0], [-12.0, 16.0]], rtol=0, atol=tol * 16)
    r = egop.egop_from_samples(lambda x: 2.0 * x, asx(xp, [[1.0], [2.0], [3.0]]))
    np.testing.assert_allclose(np_(r.egop), [[56.0 / 3]], rtol=tol)


def test_randomized_bases_at_the_size_limits(xp):
    """ell = min(m, n) and k = min(d, M) are allowed: the range is then all of R^m, Q Q^T = I (c m u); ell is
    capped by d and by M separately (k + oversample = 12 > 4); float32 stays float32."""
    rng = np.random.default_rng(27)
    A = rng.standard_normal((4, 6))
    Q = np_(egop.randomized_range_finder(asx(xp, A), 4, seed=1))
    np.testing.assert_allclose(Q @ Q.T, np.eye(4), rtol=0, atol=PM.tolerance("float64", n=4))
    assert egop.randomized_range_finder(asx(xp, A, xp.float32), 2, seed=1).dtype == xp.float32
    for G in (A, A.T):                                   # d = 4 < M = 6, then M = 4 < d = 6
        lam, Vk = egop.randomized_leading_basis(asx(xp, G), 4, seed=2)
        w, _ = mp_egop_eigsy_desc(G)
        # ell = 4 = min(d, M): the subspace is the whole range of G, so lambda = s(G)^2 / M (Weyl, 20 d u lambda_1)
        np.testing.assert_allclose(np_(lam), w[:4], rtol=0, atol=20 * 6 * U64 * w[0])
        assert Vk.shape == (G.shape[0], 4)
    lam, V = egop.partial_egop_basis(asx(xp, A), 4, seed=3)
    assert V.shape == (4, 4)


def test_nearest_kronecker_signs_at_small_scale_and_shape_rules(xp):
    """The sign rules hold whatever the size of the entries: for A = 0.01 (B0 kron C0) (entries of B below 1)
    B's largest |entry| is positive in the general case, and for a symmetric PSD A = 0.01 (SB kron SC) (trace of
    B below 1) B is PSD with tr(B) > 0; B = 0.1 B0 sqrt(||C0||/||B0||) to c n u (n = 6 / 4, cond 1).
    symmetric_psd is decided from the factor shapes: a symmetric A with non-square factors takes the general
    route, and symmetric_psd=True with only one square factor is refused."""
    for seed in range(4):
        rng = np.random.default_rng(30 + seed)
        B0, C0 = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
        B0 *= np.sign(B0.flat[np.argmax(np.abs(B0))])
        want = 0.1 * B0 * math.sqrt(np.linalg.norm(C0) / np.linalg.norm(B0))
        B = np_(egop.nearest_kronecker(asx(xp, 0.01 * np.kron(B0, C0)), (2, 3), (3, 2)).B)
        np.testing.assert_allclose(B, want, rtol=0, atol=PM.tolerance("float64", n=6) * np.linalg.norm(want))
        Zb, Zc = rng.standard_normal((2, 3)), rng.standard_normal((2, 3))
        SB, SC = Zb @ Zb.T / 3, Zc @ Zc.T / 3
        want = 0.1 * SB * math.sqrt(np.linalg.norm(SC) / np.linalg.norm(SB))
        B = np_(egop.nearest_kronecker(asx(xp, 0.01 * np.kron(SB, SC)), (2, 2), (2, 2)).B)
        np.testing.assert_allclose(B, want, rtol=0, atol=PM.tolerance("float64", n=4) * np.linalg.norm(want))
    ap = egop.nearest_kronecker(asx(xp, np.eye(6)), (2, 3), (3, 2))          # symmetric A, non-square factors
    assert ap.B.shape == (2, 3) and ap.C.shape == (3, 2)
    with pytest.raises(ValueError, match=r"^symmetric_psd: needs square factor shapes$"):
        egop.nearest_kronecker(asx(xp, np.ones((2, 6))), (2, 2), (1, 3), symmetric_psd=True)


def test_kronecker_egop_basis_symmetrizes_its_factors(xp):
    """kronecker_egop_basis treats its input as the EGOP (symmetric PSD) whatever its rounding: an asymmetry of
    1e-10 (far outside the 8 n u detection band) still gives exactly symmetric B and C."""
    rng = np.random.default_rng(28)
    Z = rng.standard_normal((6, 10))
    E = Z @ Z.T / 10
    E[0, 1] += 1e-10
    kb = egop.kronecker_egop_basis(asx(xp, E), (3, 2))
    for F in (np_(kb.approx.B), np_(kb.approx.C)):
        np.testing.assert_array_equal(F, F.T)


def test_gradient_oracle_messages_in_full(xp):
    """Each refusal of a gradient names the call (grad_fn(X[k])) and says what was wrong, in full."""
    d = 3
    s = egop.gaussian_sampler(0.0, 1.0, d=d, xp=xp)
    X = asx(xp, np.ones((2, d)))
    with pytest.raises(TypeError, match=r"^grad_fn\(X\[0\]\): dtype float32 does not match the samples' float64$"):
        egop.egop_from_samples(lambda x: xp.astype(x, xp.float32), X)
    with pytest.raises(TypeError, match=r"^grad_fn\(X\[0\]\): expected a real floating array, got int64$"):
        egop.egop_from_samples(lambda x: xp.astype(x, xp.int64), X)
    with pytest.raises(ValueError, match=r"^grad_fn\(X\[1\]\): expected finite values, got 1 NaN or inf entry$"):
        egop.egop_from_samples(lambda x: x * asx(xp, [1.0, 1.0, np.inf]) if float(x[1]) == 2.0 else x,
                               asx(xp, [[1.0, 1.0, 1.0], [1.0, 2.0, 3.0]]))
    other = backend.get_namespace("array_api_strict" if backend.is_numpy(xp) else "numpy")
    mod_g, mod_x = type(other.zeros(1)).__module__, type(X).__module__
    msg = f"grad_fn(X[0]): array library {mod_g} does not match the samples' {mod_x}"
    with pytest.raises(TypeError, match="^" + re.escape(msg) + "$"):
        egop.egop_from_samples(lambda x: other.zeros(d), X)
    with pytest.raises(TypeError, match=r"^sampler: expected a callable \(M, rng\) -> \(M, d\) array, got str$"):
        egop.estimate_egop(lambda x: x, "gaussian", 2, seed=0)
    with pytest.raises(ValueError, match=r"^M: expected an integer >= 1, got 0$"):
        egop.estimate_egop(lambda x: x, s, 0, seed=0)
    with pytest.raises(ValueError, match=r"^sampler output: expected 2 rows \(one sample per row\), got shape \(3, 3\)$"):
        egop.estimate_egop(lambda x: x, lambda M, rng: s(M + 1, rng), 2, seed=0)


def test_svd_route_completes_with_lapacks_full_U(xp):
    """method="svd" with M < d: V is the full left singular factor of G / sqrt(M) (LAPACK's completion of
    range(G), as torch.svd(G, some=False) in the later code), signs by fix_signs; method="eigh" completes the
    null space differently. Same LAPACK call on the same matrix: equal to c n u (n = d). In float32 the zero
    padding of the eigenvalues is float32 too."""
    rng = np.random.default_rng(29)
    d, M = 6, 3
    G = rng.standard_normal((d, M))
    U = np.linalg.svd(G / math.sqrt(M), full_matrices=True)[0]
    U = U * np.where(U[np.argmax(np.abs(U), axis=0), np.arange(d)] < 0, -1.0, 1.0)
    tol = PM.tolerance("float64", n=d)
    np.testing.assert_allclose(np_(egop.egop_from_gradients(asx(xp, G)).V), U, rtol=0, atol=tol)
    assert np.abs(np_(egop.egop_from_gradients(asx(xp, G), method="eigh").V)[:, M:] - U[:, M:]).max() > 0.1
    r32 = egop.egop_from_gradients(asx(xp, G, xp.float32))
    assert r32.eigenvalues.dtype == xp.float32 and r32.V.dtype == xp.float32


def test_nearest_kronecker_trace_rule_below_one(xp):
    """The symmetric route flips by the sign of tr(B) alone, also when |tr(B)| < 1 and B[0, 0] < 0: for
    B0 = [[-0.1, 0.3], [0.3, 0.5]] (trace 0.4) and SC PSD, A = B0 kron SC gives B = +B0 sqrt(||SC||/||B0||)
    (c n u, n = 4) and never -B0, whichever sign the SVD returned."""
    B0 = np.array([[-0.1, 0.3], [0.3, 0.5]])
    for SC in (np.array([[1.0, 0.2], [0.2, 0.5]]), np.array([[0.3, -0.1], [-0.1, 0.2]])):
        for sgn in (1.0, -1.0):                        # A and -A (= -B0 kron SC): B = sgn * B0 * scale, by tr >= 0
            Bexp = B0 * math.sqrt(np.linalg.norm(SC) / np.linalg.norm(B0))
            ap = egop.nearest_kronecker(asx(xp, sgn * np.kron(B0, SC)), (2, 2), (2, 2))
            tol = PM.tolerance("float64", n=4) * np.linalg.norm(Bexp)
            np.testing.assert_allclose(np_(ap.B), Bexp, rtol=0, atol=tol)
