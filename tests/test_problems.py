"""Tests of krad_ref.problems: every analytic gradient against central finite differences (NumPy and
array_api_strict) and against mpmath (the objective re-implemented in mp at 40 digits, differentiated by
mpmath.diff: an oracle independent of the gradient formulas), closed forms, data generators, samplers, digits.

Tolerances.
  * Finite differences, step h = 1e-5 (O(1) inputs): truncation h^2 |f'''| / 6 ~ 1e-10 and rounding u |f| / h ~ 1e-11,
    so 1e-7 (max(1, ||g||_inf)) leaves two orders of margin.
  * mp: the float64 gradient is a sum of <= n d products of O(1) terms at these sizes (n d <= 300), error
    <~ gamma_{nd} sum|terms| (Higham 3.1) <= 300 u * 10 ||g||-scale: we allow 1e3 u * 64 * max(1, ||g||_inf) ~ 1.4e-11.
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest

from krad_ref import backend, egop, problems

DPS = 40
U64 = 2.0**-53
MP_TOL = 64e3 * U64


def np_(x):
    return backend.to_numpy(x)


def asx(xp, a, dtype=None):
    return xp.asarray(np.asarray(a), dtype=xp.float64 if dtype is None else dtype)


def mpf(v):
    return mpmath.mpf(float(v))


# ---------------------------------------------------------------------------------------------------------
# instances: (Objective under xp, mp objective taking a list of d mpf, d)

def _convex_data(seed, n=9, d=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) / 2, rng.standard_normal(n) / 2, rng


def inst_least_squares(xp, normalization="half"):
    A, b, _ = _convex_data(0)
    n = A.shape[0]
    c = 1 if normalization == "half" else mpmath.mpf(1) / n

    def fmp(x):
        r = [sum(mpf(A[i, j]) * x[j] for j in range(len(x))) - mpf(b[i]) for i in range(n)]
        return c * sum(v * v for v in r) / 2
    return problems.least_squares(asx(xp, A), asx(xp, b), normalization=normalization), fmp


def inst_logistic(xp):
    A, _, rng = _convex_data(1)
    y = (rng.random(A.shape[0]) < 0.5).astype(float)

    def fmp(x):
        z = [sum(mpf(A[i, j]) * x[j] for j in range(len(x))) for i in range(A.shape[0])]
        return sum(mpmath.log1p(mpmath.exp(zi)) - mpf(yi) * zi for zi, yi in zip(z, y)) / A.shape[0]
    return problems.logistic_regression(asx(xp, A), asx(xp, y)), fmp


def inst_lse(xp, form):
    A, b, _ = _convex_data(2)

    def fmp(x):
        r = [sum(mpf(A[i, j]) * x[j] for j in range(len(x))) - mpf(b[i]) for i in range(A.shape[0])]
        if form == "squared":
            return mpmath.log(sum(mpmath.exp(v * v) for v in r))
        if form == "linear":
            return mpmath.log(sum(mpmath.exp(v) for v in r))
        return mpmath.log(sum(mpmath.exp(v) + mpmath.exp(-v) for v in r))
    return problems.log_sum_exp(asx(xp, A), asx(xp, b), form=form), fmp


def _mp_matmul(A, B):
    return [[sum(A[i][k] * B[k][j] for k in range(len(B))) for j in range(len(B[0]))] for i in range(len(A))]


def _mp_unflatten(x, shapes):
    out, pos = [], 0
    for s in shapes:
        if len(s) == 2:
            out.append([[x[pos + i * s[1] + j] for j in range(s[1])] for i in range(s[0])])   # row-major
        else:
            out.append([x[pos + i] for i in range(s[0])])
        pos += math.prod(s)
    return out


def inst_linear_net(xp, normalization="mse"):
    rng = np.random.default_rng(3)
    n, shapes = 6, [(3, 2), (2, 3), (2, 2)]
    X, Y = rng.standard_normal((n, 2)), rng.standard_normal((n, 2))
    c = mpmath.mpf(1) / n if normalization == "eq6" else mpmath.mpf(1) / (n * 2)

    def fmp(x):
        Ws = _mp_unflatten(x, shapes)
        H = [[mpf(v) for v in row] for row in X]
        for W in Ws:
            H = _mp_matmul(H, [list(r) for r in zip(*W)])
        return c * sum((H[i][j] - mpf(Y[i, j])) ** 2 for i in range(n) for j in range(2))
    return problems.linear_network(asx(xp, X), asx(xp, Y), shapes, normalization=normalization), fmp


def inst_relu(xp):
    rng = np.random.default_rng(4)
    sizes, n = (3, 4, 3), 7
    X = rng.standard_normal((n, 3))
    lab = rng.integers(0, 3, n)
    shapes = problems.relu_network_shapes(sizes)

    def fmp(x):
        W1, b1, W2, b2 = _mp_unflatten(x, shapes)
        tot = 0
        for i in range(n):
            h = [max(sum(W1[a][k] * mpf(X[i, k]) for k in range(3)) + b1[a], 0) for a in range(4)]
            z = [sum(W2[c][a] * h[a] for a in range(4)) + b2[c] for c in range(3)]
            tot += mpmath.log(sum(mpmath.exp(v) for v in z)) - z[int(lab[i])]
        return tot / n
    return problems.relu_network(asx(xp, X), xp.asarray(lab), sizes), fmp


INSTANCES = {
    "least_squares": inst_least_squares,
    "least_squares_mean": lambda xp: inst_least_squares(xp, "mean"),
    "logistic": inst_logistic,
    "lse_squared": lambda xp: inst_lse(xp, "squared"),
    "lse_linear": lambda xp: inst_lse(xp, "linear"),
    "lse_symmetric": lambda xp: inst_lse(xp, "symmetric"),
    "linear_net_mse": inst_linear_net,
    "linear_net_eq6": lambda xp: inst_linear_net(xp, "eq6"),
    "relu_net": inst_relu,
}


def _point(d, seed=10):
    return np.random.default_rng(seed).standard_normal(d) * 0.7


@pytest.mark.parametrize("name", sorted(INSTANCES))
def test_gradient_finite_differences(xp, name):
    obj, _ = INSTANCES[name](xp)
    x = _point(obj.d)
    g = np_(obj.grad(asx(xp, x)))
    assert g.shape == (obj.d,)
    h = 1e-5
    fd = np.empty(obj.d)
    for i in range(obj.d):
        e = np.zeros(obj.d)
        e[i] = h
        fd[i] = (float(obj.f(asx(xp, x + e))) - float(obj.f(asx(xp, x - e)))) / (2 * h)
    np.testing.assert_allclose(g, fd, rtol=0, atol=1e-7 * max(1.0, np.abs(fd).max()))


@pytest.mark.parametrize("name", sorted(INSTANCES))
def test_gradient_and_value_against_mp(name):
    xp = backend.get_namespace("numpy")
    obj, fmp = INSTANCES[name](xp)
    x = _point(obj.d)
    g = np_(obj.grad(asx(xp, x)))
    with mpmath.workdps(DPS):
        xm = [mpf(v) for v in x]
        f_mp = fmp(xm)
        g_mp = np.array([float(mpmath.diff(lambda t, i=i: fmp(xm[:i] + [t] + xm[i + 1:]), xm[i]))
                         for i in range(obj.d)])
    scale = max(1.0, np.abs(g_mp).max())
    np.testing.assert_allclose(g, g_mp, rtol=0, atol=MP_TOL * scale)
    np.testing.assert_allclose(float(obj.f(asx(xp, x))), float(f_mp), rtol=MP_TOL, atol=MP_TOL)


# ---------------------------------------------------------------------------------------------------------
# closed forms and minimizers

def test_minimizers_and_optimal_values(xp):
    n, d = 30, 5
    ls = problems.least_squares_problem(n, d, 1.0, 0, xp=xp)
    assert abs(float(ls.f(ls.x_star))) <= 1e-26 * n and ls.f_star == 0.0
    np.testing.assert_allclose(np_(ls.grad(ls.x_star)), 0, atol=1e-13)
    for form, fstar in (("squared", math.log(n)), ("symmetric", math.log(2 * n))):
        lse = problems.log_sum_exp_problem(n, d, 1.0, 1, form=form, xp=xp)
        assert lse.f_star == pytest.approx(fstar)
        assert float(lse.f(lse.x_star)) == pytest.approx(fstar, rel=1e-14)
        np.testing.assert_allclose(np_(lse.grad(lse.x_star)), 0, atol=1e-13)
        x = lse.x_star + asx(xp, _point(d) * 0.1)
        assert float(lse.f(x)) > fstar                       # x_star is the global minimum (convex, grad 0)
    assert problems.log_sum_exp_problem(n, d, 1.0, 1, form="linear", xp=xp).f_star is None
    lg = problems.logistic_problem(200, d, 0.5, 2, xp=xp)
    assert lg.x_star.shape == (d,) and lg.f_star is None


def test_log_sum_exp_and_logistic_do_not_overflow(xp):
    A = asx(xp, [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    b = asx(xp, [0.0, 0.0, 0.0])
    x = asx(xp, [40.0, -30.0])                               # r^2 up to 1600: exp overflows without the shift
    for form in problems.LSE_FORMS:
        obj = problems.log_sum_exp(A, b, form=form)
        f, g = float(obj.f(x)), np_(obj.grad(x))
        assert math.isfinite(f) and np.all(np.isfinite(g))
    assert float(problems.log_sum_exp(A, b).f(x)) == pytest.approx(1600.0 + math.log(1 + math.exp(100 - 1600)))
    lg = problems.logistic_regression(A, asx(xp, [1.0, 0.0, 1.0]))
    xx = asx(xp, [1000.0, -1000.0])                          # z = (1000, -1000, 0): softplus via logaddexp
    f = float(lg.f(xx))
    # exact: mean(softplus(z) - y z) = (log(1 + e^-1000) + log(1 + e^-1000) + log 2) / 3 = log(2) / 3 in float64
    assert f == pytest.approx(math.log(2) / 3, rel=1e-14)
    np.testing.assert_allclose(np_(lg.grad(xx)), [-1 / 6, -1 / 6], rtol=1e-14)   # A^T (sigma(z) - y) / 3


def test_least_squares_egop_closed_form(xp):
    A, b, _ = _convex_data(5)
    E = np_(problems.least_squares_egop(asx(xp, A), asx(xp, b)))
    want = (A.T @ A) @ (A.T @ A) + np.outer(A.T @ b, A.T @ b)           # Lemma 19 (with the 1/2)
    np.testing.assert_allclose(E, want, atol=100 * U64 * np.abs(want).max())
    n = A.shape[0]
    Em = np_(problems.least_squares_egop(asx(xp, A), asx(xp, b), normalization="mean"))
    np.testing.assert_allclose(Em, want / n**2, atol=100 * U64 * np.abs(want).max() / n**2)
    # Golub interlacing (25): sigma_i^4 <= lambda_i <= sigma_{i-1}^4, sigma_1^4 <= lambda_1 <= sigma_1^4 + ||A^T b||^2
    lam = np.sort(np.linalg.eigvalsh(E))[::-1]
    s4 = np.linalg.svd(A, compute_uv=False) ** 4
    tol = 100 * U64 * lam[0]
    assert np.all(lam >= s4 - tol) and np.all(lam[1:] <= s4[:-1] + tol)
    assert lam[0] <= s4[0] + np.sum((A.T @ b) ** 2) + tol


def test_linear_network_normalizations_and_exact_fit(xp):
    """errata 25: "eq6" (1/n sum ||.||^2) = d_out x "mse" (MSELoss mean); an exact factorization has f = 0, grad 0."""
    X, Y, Mstar = problems.linear_network_data(20, 3, 2, 1.0, 0, xp=xp)
    shapes = problems.linear_network_shapes(3, (3,), 2)
    mse = problems.linear_network(X, Y, shapes)
    eq6 = problems.linear_network(X, Y, shapes, normalization="eq6")
    x = asx(xp, _point(mse.d))
    assert float(eq6.f(x)) == pytest.approx(2 * float(mse.f(x)), rel=1e-14)
    np.testing.assert_allclose(np_(eq6.grad(x)), 2 * np_(mse.grad(x)), rtol=1e-13)
    exact = problems.flatten_params([asx(xp, np.eye(3)), Mstar])            # W2 W1 = M_star
    assert float(mse.f(exact)) < 1e-28
    np.testing.assert_allclose(np_(mse.grad(exact)), 0, atol=1e-14)
    assert sum(a * b for a, b in problems.linear_network_shapes()) == 2300       # notes §10 defaults
    s = np.linalg.svd(np_(X), compute_uv=False)
    np.testing.assert_allclose(s, [1, 2**-1, 3**-1], rtol=1e-13)                 # X = U_n diag(k^-alpha) Q^T
    np.testing.assert_allclose(np_(Y), np_(X) @ np_(Mstar).T, rtol=1e-13)       # y_i = M_star x_i
    with pytest.raises(ValueError, match="chaining"):
        problems.linear_network(X, Y, [(3, 3), (2, 2)])


def test_single_layer_gradient_is_row_major(xp):
    """errata 15: flat(W) is row-major; for f = (1/n)||X W^T - Y||^2 the gradient is flat(2/n (W X^T - Y^T) X)."""
    rng = np.random.default_rng(6)
    X, Y, W = rng.standard_normal((5, 3)), rng.standard_normal((5, 2)), rng.standard_normal((2, 3))
    obj = problems.linear_network(asx(xp, X), asx(xp, Y), [(2, 3)], normalization="eq6")
    g = np_(obj.grad(asx(xp, W.reshape(-1))))
    np.testing.assert_allclose(g, (2 / 5 * (W @ X.T - Y.T) @ X).reshape(-1), rtol=1e-13)
    flat = problems.flatten_params([asx(xp, W), asx(xp, np.arange(2.0))])
    np.testing.assert_array_equal(np_(flat), np.concatenate([W.reshape(-1), [0.0, 1.0]]))
    back = problems.unflatten_params(flat, [(2, 3), (2,)])
    np.testing.assert_array_equal(np_(back[0]), W)
    with pytest.raises(ValueError, match="length"):
        problems.unflatten_params(flat, [(2, 3)])


# ---------------------------------------------------------------------------------------------------------
# the ReLU network

def test_relu_network_structure(xp):
    shapes = problems.relu_network_shapes()
    assert shapes == [(32, 64), (32,), (10, 32), (10,)]
    blocks, d = problems.relu_network_blocks()
    assert d == 2410 and blocks == (slice(0, 2048), slice(2080, 2400))       # 2368 weights, notes §12
    rng = np.random.default_rng(7)
    X, lab = asx(xp, rng.integers(0, 17, (12, 64)).astype(float)), xp.asarray(rng.integers(0, 10, 12))
    x = problems.network_init_sampler(xp=xp)(1, 0)[0, :]
    loss, g = problems.relu_network_value_and_grad(x, X, lab)
    assert loss.shape == () and g.shape == (2410,)
    logits = problems.relu_network_predict(x, X)
    assert logits.shape == (12, 10)
    acc = problems.accuracy(x, X, lab)
    want = float(np.mean(np.argmax(np_(logits), axis=1) == np_(lab)))
    assert acc == want


def test_relu_network_kink_convention_and_stability(xp):
    """ReLU'(0) := 0 (PyTorch): with W1 = 0, b1 = 0 every hidden pre-activation is exactly 0, so the first layer's
    gradient is exactly 0. Huge logits do not overflow the log-softmax."""
    sizes = (3, 2, 2)
    d = sum(math.prod(s) for s in problems.relu_network_shapes(sizes))
    x = np.zeros(d)
    x[6 + 2:] = [1.0, -2.0, 0.5, 0.3, 0.1, -0.1]          # W2, b2
    X, lab = asx(xp, np.ones((4, 3))), xp.asarray(np.array([0, 1, 1, 0]))
    _, g = problems.relu_network_value_and_grad(asx(xp, x), X, lab, sizes)
    np.testing.assert_array_equal(np_(g)[:8], 0.0)
    big = np.zeros(d)
    big[8:12] = 0.0
    big[12:] = [1e4, -1e4]                                  # b2: logits +-1e4
    loss, g = problems.relu_network_value_and_grad(asx(xp, big), X, lab, sizes)
    assert float(loss) == pytest.approx(2e4 / 2)            # half the labels are the -1e4 class: loss 2e4 each
    assert np.all(np.isfinite(np_(g)))
    with pytest.raises(ValueError, match="classes"):
        problems.relu_network_value_and_grad(asx(xp, x), X, xp.asarray(np.array([0, 1, 2, 0])), sizes)
    with pytest.raises(TypeError, match="integer"):
        problems.relu_network_value_and_grad(asx(xp, x), X, asx(xp, np.zeros(4)), sizes)


# ---------------------------------------------------------------------------------------------------------
# data generators and samplers

@pytest.mark.parametrize("kind", problems.DECAYS)
def test_data_with_spectrum(xp, kind):
    n, d = 12, 8
    data = problems.data_with_spectrum(n, d, 1.5, 0, kind=kind, xp=xp)
    s = np.linalg.svd(np_(data.A), compute_uv=False)
    want = np.array(problems.singular_values(d, 1.5, kind=kind))
    np.testing.assert_allclose(s, want, rtol=0, atol=20 * n * U64)                # A = U diag(s) W^T, rounding only
    np.testing.assert_allclose(np_(data.U).T @ np_(data.U), np.eye(d), atol=20 * n * U64)
    np.testing.assert_allclose(np_(data.W).T @ np_(data.W), np.eye(d), atol=20 * n * U64)
    np.testing.assert_array_equal(np_(problems.data_with_spectrum(n, d, 1.5, 0, kind=kind, xp=xp).A), np_(data.A))


def test_singular_values_and_explicit_spectrum(xp):
    assert problems.singular_values(4, 2.0) == [1.0, 0.25, 1 / 9, 1 / 16]
    sh = problems.singular_values(8, 1.0, kind="shelf")
    assert sh[3] == pytest.approx(1 / 4) and sh[4] == pytest.approx(16 * 5.0**-3)   # k < 4: k^-1; after: 4^2 k^-3
    np.testing.assert_allclose(problems.singular_values(3, 0.5, kind="exponential"), np.exp(-0.5 * np.arange(3)))
    data = problems.data_with_spectrum(5, 3, [0.1, 2.0, 1.0], 1, xp=xp, dtype=xp.float32)
    assert data.A.dtype == xp.float32
    np.testing.assert_allclose(np.linalg.svd(np_(data.A), compute_uv=False), [2.0, 1.0, 0.1], rtol=1e-5)
    with pytest.raises(ValueError, match="decay"):
        problems.data_with_spectrum(5, 3, [1.0, 2.0], 1, xp=xp)
    with pytest.raises(ValueError, match="kind"):
        problems.singular_values(3, 1.0, kind="cubic")
    with pytest.raises(ValueError, match="n"):
        problems.data_with_spectrum(0, 3, 1.0, 0, xp=xp)


def test_logistic_labels():
    xp = backend.get_namespace("numpy")
    lg = problems.logistic_problem(4000, 3, 0.0, 3, xp=xp)
    thr = problems.logistic_problem(50, 3, 0.0, 3, labels="threshold", xp=xp)
    assert thr.x_star is not None
    with pytest.raises(ValueError, match="labels"):
        problems.logistic_problem(50, 3, 0.0, 3, labels="soft", xp=xp)
    with pytest.raises(ValueError, match=r"\{0, 1\}"):
        problems.logistic_regression(asx(xp, np.ones((2, 2))), asx(xp, [0.0, 0.5]))
    # Bernoulli labels: with A orthonormal-ish and x_star fixed, the gradient at x_star is the mean of
    # a_i (sigma_i - y_i), mean zero: it is small (CLT ~ ||A|| / n), unlike the threshold rule's.
    g = np.linalg.norm(np_(lg.grad(lg.x_star)))
    assert g < 5 / math.sqrt(4000)


def test_samplers(xp):
    shapes = [(30, 20), (10, 30)]
    s = problems.xavier_normal_sampler(shapes, xp=xp)
    X = np_(s(400, 0))
    assert X.shape == (400, 900)
    # sample std over 400 x 600 (resp. 300) entries: relative sd ~ 1/sqrt(2 N) < 0.2 %; allow 2 %
    assert np.std(X[:, :600]) == pytest.approx(math.sqrt(2 / 50), rel=0.02)
    assert np.std(X[:, 600:]) == pytest.approx(math.sqrt(2 / 40), rel=0.02)
    ni = problems.network_init_sampler((4, 3, 2), xp=xp)
    Z = np_(ni(500, 1))
    assert Z.shape == (500, 12 + 3 + 6 + 2)
    assert np.abs(Z[:, 12:15]).max() <= 1 / 2 and np.abs(Z[:, 21:]).max() <= 1 / math.sqrt(3)   # U(+-1/sqrt(fan_in))
    assert np.std(Z[:, :12]) == pytest.approx(math.sqrt(2 / 7), rel=0.05)
    assert isinstance(ni, egop.Sampler)


def test_load_digits_split():
    pytest.importorskip("sklearn", reason="scikit-learn (the examples extra) not installed")
    xp = backend.get_namespace("numpy")
    dd = problems.load_digits_split(xp=xp)
    assert [a.shape[0] for a in dd[0::2]] == [1198, 199, 400]          # errata 22: our split of the 1797 samples
    assert all(a.shape[1] == 64 for a in dd[0::2])
    Xall = np.concatenate([np_(a) for a in dd[0::2]])
    assert Xall.min() == 0 and Xall.max() == 16                          # raw pixels, no normalization
    for y in dd[1::2]:
        counts = np.bincount(np_(y), minlength=10) / y.shape[0]
        assert np.all(np.abs(counts - 0.1) < 0.02)                       # stratified (classes are ~10 % each)
    again = problems.load_digits_split(xp=xp)
    np.testing.assert_array_equal(np_(again.y_test), np_(dd.y_test))
    assert dd.y_train.dtype == xp.int64


def test_bad_inputs(xp):
    A, b = asx(xp, np.ones((3, 2))), asx(xp, np.ones(3))
    obj = problems.least_squares(A, b)
    with pytest.raises(ValueError, match="shape"):
        obj.grad(asx(xp, np.ones(3)))
    with pytest.raises(TypeError, match="dtype"):
        obj.f(asx(xp, np.ones(2), xp.float32))
    with pytest.raises(ValueError, match="length n"):
        problems.least_squares(A, asx(xp, np.ones(2)))
    with pytest.raises(TypeError, match="dtype"):
        problems.least_squares(A, asx(xp, np.ones(3), xp.float32))
    with pytest.raises(ValueError, match="normalization"):
        problems.least_squares(A, b, normalization="sum")
    with pytest.raises(ValueError, match="form"):
        problems.log_sum_exp(A, b, form="cosh")
    with pytest.raises(ValueError, match="finite"):
        problems.least_squares(asx(xp, [[np.nan, 1.0]]), asx(xp, [1.0]))
