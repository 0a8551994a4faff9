"""Tests of krad_ref.adagrad (full-matrix and diagonal AdaGrad, Adam, SGD) under every array namespace (``xp``).

Closed forms for steps 1-2 are written out by hand; bridges are exact identities (diagonal = full-matrix AdaGrad on
axis-aligned gradients; full-matrix on a matrix = full-matrix on its column-major vec). Tolerances: u is the unit
roundoff of the dtype; elementwise formulas are within a few u (each operation rounds once, Higham Sec. 2.2); an
eigh-based inverse root of an N x N statistic is within ~ N u kappa (Higham, Functions of Matrices, Ch. 3).
"""
from __future__ import annotations

import numpy as np
import pytest

from krad_ref import adagrad, algorithm, backend, linalg, shampoo, validate

DTYPES = ("float32", "float64")
U = {"float32": 2.0**-24, "float64": 2.0**-53}  # unit roundoff


def np_of(x) -> np.ndarray:
    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def arr(xp, a, dtype="float64"):
    return xp.asarray(np.asarray(a, dtype=dtype))


def rel(a, b) -> float:
    a, b = np_of(a), np_of(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def run(xp, alg, config, grads, dtype="float64", params=None):
    state = alg.init(grads[0].shape, config, dtype=getattr(xp, dtype), xp=xp)
    out = []
    for G in grads:
        d, state = alg.update(arr(xp, G, dtype), state, config,
                              params=None if params is None else arr(xp, params, dtype))
        out.append(d)
    return out, state


# ---------------------------------------------------------------------------------------------------------
# full-matrix AdaGrad

@pytest.mark.parametrize("dtype", DTYPES)
def test_full_closed_forms(xp, dtype):
    """H = g g^T has eigenvalue |g|^2 on g: "kradagrad" g / sqrt(delta + |g|^2), "duchi" g / (delta + |g|).
    Step 2 parallel (g2 = c g1): |g1|^2 + |g2|^2 replaces |g|^2; orthogonal: |g2|^2 alone."""
    delta = 0.25
    g1 = np.array([1.0, 1.0, 1.0, 1.0])  # |g1| = 2
    g2o = np.array([0.5, -0.5, 0.5, -0.5])  # ⟂ g1, |g2o| = 1
    g2p = 0.5 * g1  # |g2p| = 1
    kappa = (delta + 8.0) / delta
    tol = 8 * 4 * U[dtype] * kappa  # inverse root of a kappa-conditioned 4 x 4 statistic; C = 8
    for form, f in (("kradagrad", lambda s2: 1 / np.sqrt(delta + s2)), ("duchi", lambda s2: 1 / (delta + np.sqrt(s2)))):
        cfg = adagrad.AdagradFullConfig(delta=delta, form=form)
        (d1, d2), st = run(xp, adagrad.adagrad_full, cfg, [g1, g2o], dtype)
        assert rel(d1, g1 * f(4.0)) <= tol
        assert rel(d2, g2o * f(1.0)) <= tol
        (_, d2), _ = run(xp, adagrad.adagrad_full, cfg, [g1, g2p], dtype)
        assert rel(d2, g2p * f(5.0)) <= tol
        assert d2.dtype == getattr(xp, dtype)


def test_full_matrix_parameter_uses_column_major_vec(xp):
    """A (3, 2) parameter: H = sum vec(G) vec(G)^T (vec column-major, linalg.vec) and the direction is
    unvec(P vec(G)): the same run as on the vectors vec(G_i), entry for entry (identical arithmetic)."""
    rng = np.random.default_rng(0)
    Gs = [rng.standard_normal((3, 2)) for _ in range(3)]
    cfg = adagrad.AdagradFullConfig(delta=1e-2)
    dm, sm = run(xp, adagrad.adagrad_full, cfg, Gs)
    dv, sv = run(xp, adagrad.adagrad_full, cfg, [G.flatten(order="F") for G in Gs])
    np.testing.assert_array_equal(np_of(sm.H), np_of(sv.H))
    H = sum(np.outer(G.flatten(order="F"), G.flatten(order="F")) for G in Gs)
    np.testing.assert_allclose(np_of(sm.H), H, rtol=0, atol=8 * U["float64"] * np.abs(H).max())
    for a, b in zip(dm, dv):
        assert tuple(a.shape) == (3, 2)
        np.testing.assert_array_equal(np_of(a), np_of(b).reshape(3, 2, order="F"))
        np.testing.assert_array_equal(np_of(linalg.vec(a)), np_of(b))


def test_full_order3_parameter(xp):
    """An order-3 parameter is vectorised column-major too (first index fastest), and unvectorised back."""
    rng = np.random.default_rng(1)
    Gs = [rng.standard_normal((2, 3, 2)) for _ in range(2)]
    cfg = adagrad.AdagradFullConfig(delta=1e-2)
    dt, st = run(xp, adagrad.adagrad_full, cfg, Gs)
    dv, sv = run(xp, adagrad.adagrad_full, cfg, [G.flatten(order="F") for G in Gs])
    np.testing.assert_array_equal(np_of(st.H), np_of(sv.H))
    for a, b in zip(dt, dv):
        np.testing.assert_array_equal(np_of(a), np_of(b).reshape(2, 3, 2, order="F"))


def test_full_forms_differ():
    """errata 5: the two forms are different preconditioners (equal only as delta -> 0)."""
    g = np.array([1.0, 2.0])
    a = run(np, adagrad.adagrad_full, adagrad.AdagradFullConfig(delta=0.5), [g])[0][0]
    b = run(np, adagrad.adagrad_full, adagrad.AdagradFullConfig(delta=0.5, form="duchi"), [g])[0][0]
    assert rel(a, b) > 0.1


# ---------------------------------------------------------------------------------------------------------
# diagonal AdaGrad

@pytest.mark.parametrize("dtype", DTYPES)
def test_diag_closed_forms(xp, dtype):
    """Steps 1-2 of each placement, by hand: inside g / sqrt(v0 + sum g^2 + eps), outside g / (sqrt(v) + eps)."""
    g1 = np.array([3.0, -4.0, 0.0])
    g2 = np.array([1.0, 2.0, -0.5])
    cases = [
        ({"eps": 1e-10, "eps_placement": "outside"}, lambda v, g: g / (np.sqrt(v) + 1e-10), 0.0),  # PyTorch
        ({"eps": 1e-7, "eps_placement": "inside", "initial_accumulator": 0.1}, lambda v, g: g / np.sqrt(v + 1e-7), 0.1),
        ({}, lambda v, g: g / np.sqrt(v + 1e-6), 0.0),  # defaults: the paper's (delta I + diag)^{-1/2}, delta 1e-6
    ]
    for kwargs, f, v0 in cases:
        cfg = adagrad.AdagradDiagConfig(**kwargs)
        (d1, d2), st = run(xp, adagrad.adagrad_diag, cfg, [g1, g2], dtype)
        v1 = v0 + g1**2
        v2 = v1 + g2**2
        tol = 8 * U[dtype]  # a square, two adds, a root and a divide per entry
        want1, want2 = f(v1, g1), f(v2, g2)
        np.testing.assert_allclose(np_of(d1), want1, rtol=tol, atol=tol * np.abs(want1).max())
        np.testing.assert_allclose(np_of(d2), want2, rtol=tol, atol=tol * np.abs(want2).max())
        np.testing.assert_allclose(np_of(st.v), v2, rtol=tol)


@pytest.mark.parametrize("placement", ["inside", "outside"])
def test_diag_zero_denominator_gives_zero(xp, placement):
    """eps = 0 and a coordinate never touched: 0, not 0/0 = NaN (Optax's where(v > 0, ., 0))."""
    cfg = adagrad.AdagradDiagConfig(eps=0.0, eps_placement=placement)
    (d,), _ = run(xp, adagrad.adagrad_diag, cfg, [np.array([2.0, 0.0])])
    np.testing.assert_array_equal(np_of(d), [1.0, 0.0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_diag_equals_full_on_axis_aligned_gradients(xp, dtype):
    """Gradients each supported on one coordinate (different coordinates over time) make sum g g^T diagonal, so
    (delta I + H)^{-1/2} g = g / sqrt(delta + v) ("kradagrad" = diag "inside", v0 = 0) and
    (delta I + H^{1/2})^{-1} g = g / (delta + sqrt(v)) ("duchi" = diag "outside"), exactly in exact arithmetic.
    eigh of a diagonal matrix returns its entries and a permutation; what remains is the rounding of the power
    versus the elementwise sqrt/divide: a few u (C = 16 covers the N-term products with exact zeros)."""
    delta = 1e-2
    grads = [np.array([0.0, 2.0, 0.0, 0.0]), np.array([-1.0, 0.0, 0.0, 0.0]),
             np.array([0.0, 0.5, 0.0, 0.0]), np.array([0.0, 0.0, 0.0, 3.0])]
    for form, placement in (("kradagrad", "inside"), ("duchi", "outside")):
        df, _ = run(xp, adagrad.adagrad_full, adagrad.AdagradFullConfig(delta=delta, form=form), grads, dtype)
        dd, _ = run(xp, adagrad.adagrad_diag, adagrad.AdagradDiagConfig(eps=delta, eps_placement=placement), grads,
                    dtype)
        for a, b in zip(df, dd):
            np.testing.assert_allclose(np_of(a), np_of(b), rtol=16 * U[dtype], atol=0)


# ---------------------------------------------------------------------------------------------------------
# Adam

@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_steps_closed_form(xp, dtype):
    """Step 1: m_hat = g, v_hat = g^2, direction g / (|g| + eps) (sign-like). Step 2 written out."""
    b1, b2, eps = 0.9, 0.999, 1e-8
    g1 = np.array([1e-3, -2.0, 0.0, 5.0])
    g2 = np.array([1.0, 1.0, -1.0, 0.5])
    (d1, d2), st = run(xp, adagrad.adam, adagrad.AdamConfig(), [g1, g2], dtype)
    tol = 16 * U[dtype]  # moments, bias corrections (float64, then rounded), root, add, divide: ~ 10 roundings
    want1 = g1 / (np.abs(g1) + eps)
    np.testing.assert_allclose(np_of(d1), want1, rtol=tol, atol=0)
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    want2 = (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)
    np.testing.assert_allclose(np_of(d2), want2, rtol=tol, atol=tol * np.abs(want2).max())
    np.testing.assert_allclose(np_of(st.m), m, rtol=tol, atol=0)
    assert int(st.count) == 2 and st.count.dtype == xp.int32


def test_adam_eps_root(xp):
    """Optax's eps_root sits inside the root: step 1 gives g / (sqrt(g^2 + eps_root) + eps)."""
    g = np.array([0.5, -1.0])
    (d,), _ = run(xp, adagrad.adam, adagrad.AdamConfig(eps=1e-3, eps_root=0.25), [g])
    np.testing.assert_allclose(np_of(d), g / (np.sqrt(g**2 + 0.25) + 1e-3), rtol=16 * U["float64"])


def test_adam_zero_gradient_with_zero_eps(xp):
    (d,), _ = run(xp, adagrad.adam, adagrad.AdamConfig(eps=0.0), [np.array([0.0, 2.0])])
    np.testing.assert_array_equal(np_of(d), [0.0, 1.0])


# ---------------------------------------------------------------------------------------------------------
# SGD

def test_sgd_plain_returns_gradient(xp):
    g = arr(xp, [1.0, -2.0])
    cfg = adagrad.SgdConfig()
    st = adagrad.sgd_init(g, cfg)
    d, st2 = adagrad.sgd_update(g, st, cfg)
    np.testing.assert_array_equal(np_of(d), [1.0, -2.0])
    assert d is not g  # a copy: an in-place step on the direction cannot reach the caller's gradient


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_closed_form(xp, nesterov):
    """torch.optim.SGD: b_1 = g_1, b_2 = mu b_1 + g_2; direction b, or g + mu b (Nesterov)."""
    mu = 0.9
    g1, g2 = np.array([1.0, 2.0]), np.array([-0.5, 4.0])
    (d1, d2), st = run(xp, adagrad.sgd, adagrad.SgdConfig(momentum=mu, nesterov=nesterov), [g1, g2])
    b1, b2 = g1, mu * g1 + g2
    w1, w2 = (g1 + mu * b1, g2 + mu * b2) if nesterov else (b1, b2)
    tol = 4 * U["float64"]
    np.testing.assert_allclose(np_of(d1), w1, rtol=tol)
    np.testing.assert_allclose(np_of(d2), w2, rtol=tol)
    np.testing.assert_allclose(np_of(st.momentum), b2, rtol=tol)


def test_sgd_dampening_not_on_first_step(xp):
    mu, damp = 0.5, 0.25
    g1, g2 = np.array([1.0, 2.0]), np.array([2.0, -1.0])
    (d1, d2), _ = run(xp, adagrad.sgd, adagrad.SgdConfig(momentum=mu, dampening=damp), [g1, g2])
    np.testing.assert_array_equal(np_of(d1), g1)  # b_1 = g_1, undamped
    np.testing.assert_allclose(np_of(d2), mu * g1 + (1 - damp) * g2, rtol=4 * U["float64"])


# ---------------------------------------------------------------------------------------------------------
# weight decay, the family invariants, bad inputs, immutability

ALGOS = [
    ("adagrad_full", adagrad.AdagradFullConfig),
    ("adagrad_diag", adagrad.AdagradDiagConfig),
    ("adam", adagrad.AdamConfig),
    ("sgd", adagrad.SgdConfig),
]


def test_registry():
    for name, cfg_cls in ALGOS:
        alg = algorithm.get(name)
        assert alg is getattr(adagrad, name) and alg.Config is cfg_cls and alg.name == name


@pytest.mark.parametrize("name, cfg_cls", ALGOS)
def test_weight_decay_is_l2_in_the_gradient(xp, name, cfg_cls):
    """weight_decay lambda = running on g + lambda W (the same arithmetic: bit for bit); params are required."""
    alg = algorithm.get(name)
    rng = np.random.default_rng(4)
    W = rng.standard_normal((2, 3))
    Gs = [rng.standard_normal((2, 3)) for _ in range(2)]
    lam = 0.1
    kwargs = {"momentum": 0.9} if name == "sgd" else {}
    dw, _ = run(xp, alg, cfg_cls(weight_decay=lam, **kwargs), Gs, params=W)
    Wx = arr(xp, W)
    d0, _ = run(xp, alg, cfg_cls(**kwargs), [np_of(arr(xp, G) + lam * Wx) for G in Gs])
    for a, b in zip(dw, d0):
        np.testing.assert_array_equal(np_of(a), np_of(b))
    cfg = cfg_cls(weight_decay=lam)
    st = alg.init((2, 3), cfg, xp=xp)
    with pytest.raises(ValueError, match="params: weight_decay"):
        alg.update(arr(xp, Gs[0]), st, cfg)
    with pytest.raises(ValueError, match="params: shape"):
        alg.update(arr(xp, Gs[0]), st, cfg, params=arr(xp, np.ones((3, 2))))
    with pytest.raises(TypeError, match="params: dtype"):
        alg.update(arr(xp, Gs[0]), st, cfg, params=arr(xp, W, "float32"))


@pytest.mark.parametrize("name, cfg_cls", ALGOS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_family_invariants(xp, name, cfg_cls, dtype):
    """Every optimizer: finite direction of the grad's shape/dtype/namespace, count 0-d int32 incremented."""
    alg = algorithm.get(name)
    rng = np.random.default_rng(6)
    cfg = cfg_cls()
    Gs = [rng.standard_normal((3, 2)) for _ in range(3)]
    ds, st = run(xp, alg, cfg, Gs, dtype)
    for d in ds:
        assert tuple(d.shape) == (3, 2) and d.dtype == getattr(xp, dtype)
        assert backend.namespace(d) is backend.namespace(arr(xp, Gs[0], dtype))
        assert np.all(np.isfinite(np_of(d)))
    assert st.count.shape == () and st.count.dtype == xp.int32 and int(st.count) == 3
    for a in st:
        assert np.all(np.isfinite(np_of(a)))


@pytest.mark.parametrize("name, cfg_cls", ALGOS)
def test_bad_inputs(xp, name, cfg_cls):
    alg = algorithm.get(name)
    cfg = cfg_cls()
    st = alg.init((3, 2), cfg, xp=xp)
    with pytest.raises(ValueError, match="grad: shape"):
        alg.update(arr(xp, np.ones((2, 3))), st, cfg)
    with pytest.raises(TypeError, match="grad: dtype"):
        alg.update(arr(xp, np.ones((3, 2)), "float32"), st, cfg)
    with pytest.raises(TypeError, match="grad: expected a real floating"):
        alg.update(xp.asarray(np.ones((3, 2), dtype=np.int64)), st, cfg)
    for bad_value in (np.nan, np.inf):
        bad = np.ones((3, 2))
        bad[2, 0] = bad_value
        with pytest.raises(ValueError, match="grad: expected finite"):
            alg.update(arr(xp, bad), st, cfg)
    with pytest.raises(TypeError, match="state"):
        alg.update(arr(xp, np.ones((3, 2))), tuple(st), cfg)
    other = [c for n, c in ALGOS if n != name][0]
    with pytest.raises(TypeError, match="config"):
        alg.update(arr(xp, np.ones((3, 2))), st, other())
    with pytest.raises(TypeError, match="dtype"):
        alg.init((3, 2), cfg, dtype=xp.int32, xp=xp)


@pytest.mark.parametrize("cfg_cls, kwargs, exc", [
    (adagrad.AdagradFullConfig, {"delta": 0.0}, ValueError),
    (adagrad.AdagradFullConfig, {"delta": -1.0}, ValueError),
    (adagrad.AdagradFullConfig, {"form": "sqrt"}, ValueError),
    (adagrad.AdagradFullConfig, {"weight_decay": -0.1}, ValueError),
    (adagrad.AdagradDiagConfig, {"eps": -1e-8}, ValueError),
    (adagrad.AdagradDiagConfig, {"eps_placement": "middle"}, ValueError),
    (adagrad.AdagradDiagConfig, {"initial_accumulator": -0.1}, ValueError),
    (adagrad.AdagradDiagConfig, {"eps": None}, TypeError),
    (adagrad.AdamConfig, {"b1": 1.0}, ValueError),
    (adagrad.AdamConfig, {"b2": -0.1}, ValueError),
    (adagrad.AdamConfig, {"eps": float("nan")}, ValueError),
    (adagrad.AdamConfig, {"eps_root": -1.0}, ValueError),
    (adagrad.SgdConfig, {"momentum": -0.5}, ValueError),
    (adagrad.SgdConfig, {"dampening": 2.0}, ValueError),
    (adagrad.SgdConfig, {"nesterov": 1}, TypeError),
    (adagrad.SgdConfig, {"nesterov": True}, ValueError),  # needs momentum > 0
    (adagrad.SgdConfig, {"weight_decay": "0"}, TypeError),
])
def test_bad_config(cfg_cls, kwargs, exc):
    field = next(iter(kwargs))
    with pytest.raises(exc, match=field):
        cfg_cls(**kwargs)


@pytest.mark.parametrize("name, cfg_cls", ALGOS)
def test_update_does_not_mutate_inputs(xp, name, cfg_cls):
    alg = algorithm.get(name)
    rng = np.random.default_rng(8)
    kwargs = {"momentum": 0.9} if name == "sgd" else {}
    cfg = cfg_cls(weight_decay=0.01, **kwargs)
    W = arr(xp, rng.standard_normal((2, 2)))
    st = alg.init(W, cfg)
    _, st = alg.update(arr(xp, rng.standard_normal((2, 2))), st, cfg, params=W)
    G = arr(xp, rng.standard_normal((2, 2)))
    before = [np.array(np_of(a)) for a in (G, W, *st)]
    d, new = alg.update(G, st, cfg, params=W)
    after = [np.array(np_of(a)) for a in (G, W, *st)]
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a, b)
    # the direction shares no memory with the new state (an in-place step on it cannot corrupt the state)
    if backend.is_numpy(backend.namespace(d)):
        for a in new:
            assert not np.shares_memory(d, a)


def test_init_defaults_and_from_array(xp):
    W = arr(xp, np.zeros((2, 3)), "float32")
    st = adagrad.adagrad_full_init(W, adagrad.AdagradFullConfig())
    assert tuple(st.H.shape) == (6, 6) and st.H.dtype == xp.float32 and tuple(st.template.shape) == (0, 2, 3)
    st = adagrad.adagrad_diag_init((2,), adagrad.AdagradDiagConfig(initial_accumulator=0.1))
    assert backend.is_numpy(backend.namespace(st.v)) and st.v.dtype == np.float64
    np.testing.assert_array_equal(st.v, [0.1, 0.1])


# mutation testing (README "Mutation score"): each validation error opens with its field's exact name (the test
# above only looks for the name anywhere, which "XXdeltaXX" also contains), bounds at their edges

@pytest.mark.parametrize("cfg_cls, field, bad", [
    (adagrad.AdagradFullConfig, "delta", 0.0), (adagrad.AdagradFullConfig, "form", "sqrt"),
    (adagrad.AdagradFullConfig, "weight_decay", -0.1), (adagrad.AdagradDiagConfig, "eps", -1e-8),
    (adagrad.AdagradDiagConfig, "eps_placement", "middle"), (adagrad.AdagradDiagConfig, "initial_accumulator", -0.1),
    (adagrad.AdamConfig, "b1", -0.1), (adagrad.AdamConfig, "b1", 1.0), (adagrad.AdamConfig, "b2", -0.1),
    (adagrad.AdamConfig, "b2", 1.0), (adagrad.AdamConfig, "b2", 1.5), (adagrad.AdamConfig, "eps", -1.0),
    (adagrad.AdamConfig, "eps_root", -1.0), (adagrad.SgdConfig, "momentum", -0.5),
    (adagrad.SgdConfig, "dampening", -0.1), (adagrad.SgdConfig, "dampening", 2.0),
])
def test_bad_config_message_opens_with_the_field(cfg_cls, field, bad):
    with pytest.raises(ValueError) as info:
        cfg_cls(**{field: bad})
    assert str(info.value).startswith(f"{field}: ")


@pytest.mark.parametrize("kwargs, message", [
    ({"nesterov": True}, "nesterov: needs momentum > 0 and dampening = 0 (as torch.optim.SGD)"),
    ({"nesterov": 1}, "nesterov: expected a bool, got int"),
])
def test_bad_sgd_config_messages(kwargs, message):
    with pytest.raises((TypeError, ValueError)) as info:
        adagrad.SgdConfig(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("init, expected", [
    (adagrad.adagrad_full_init, "AdagradFullConfig"), (adagrad.adagrad_diag_init, "AdagradDiagConfig"),
    (adagrad.adam_init, "AdamConfig"), (adagrad.sgd_init, "SgdConfig"),
])
def test_init_rejects_a_foreign_config(init, expected):
    with pytest.raises(TypeError) as info:
        init((2, 2), shampoo.Config())
    assert str(info.value) == f"config: expected {expected}, got Config"


def test_weight_decay_params_errors_name_params(xp):
    cfg = adagrad.SgdConfig(weight_decay=0.1)
    st = adagrad.sgd_init((2, 2), cfg, xp=xp)
    g = xp.asarray(np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"^params: expected a real floating"):
        adagrad.sgd_update(g, st, cfg, params=xp.asarray(np.ones((2, 2), dtype=np.int64)))
    bad = np.ones((2, 2))
    bad[0, 1] = np.inf
    with pytest.raises(ValueError, match=r"^params: expected finite"):
        adagrad.sgd_update(g, st, cfg, params=xp.asarray(bad))


def test_weight_decay_params_from_another_library():
    strict = pytest.importorskip("array_api_strict")
    cfg = adagrad.SgdConfig(weight_decay=0.1)
    st = adagrad.sgd_init((2, 2), cfg, xp=strict)
    with pytest.raises(TypeError) as info:
        adagrad.sgd_update(strict.ones((2, 2), dtype=strict.float64), st, cfg, params=np.ones((2, 2)))
    assert str(info.value) == "params: array library numpy does not match grad's array_api_strict._array_object"


def test_overflow_limits_at_their_edges(xp):
    """SGD with momentum mu = 1 refuses ||g|| > F / (1 + mu) = F / 2 (its direction d + mu b = 2 g), accepts
    0.4 F and returns g exactly on the first step (b_1 = g); diagonal AdaGrad refuses ||g|| > sqrt(F) only
    (g^2 representable): g = 1e120 in float64 steps to g / (sqrt(g^2) + eps) = +-1; tolerance 4 u (g^2, its
    sqrt, the sum and the division each round once)."""
    F = float(np.finfo(np.float64).max)
    cfg = adagrad.SgdConfig(momentum=1.0)
    st = adagrad.sgd_init((2,), cfg, xp=xp)
    g = np.array([0.4 * F, -0.3 * F])
    d, _ = adagrad.sgd_update(xp.asarray(g), st, cfg)
    np.testing.assert_array_equal(np.asarray(backend.to_numpy(d)), g)
    with pytest.raises(validate.OverflowLimitError):
        adagrad.sgd_update(xp.asarray(np.array([0.6 * F, 0.0])), st, cfg)
    dcfg = adagrad.AdagradDiagConfig()
    d, _ = adagrad.adagrad_diag_update(xp.asarray(np.array([1e120, -1e120])),
                                       adagrad.adagrad_diag_init((2,), dcfg, xp=xp), dcfg)
    np.testing.assert_allclose(np.asarray(backend.to_numpy(d)), [1.0, -1.0], rtol=4 * 2.0**-53, atol=0)


def test_state_arrays_checked_against_the_gradient(xp):
    """Every array field of an elementwise state must have the gradient's shape and dtype, named in the error:
    Adam's grad is checked against state.m, so state.v is only checked by the state spec; a (1, 2) v would
    broadcast silently against a (2, 2) gradient."""
    cfg = adagrad.AdamConfig()
    st = adagrad.adam_init((2, 2), cfg, xp=xp)
    g = xp.asarray(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"state\.v"):
        adagrad.adam_update(g, st._replace(v=xp.asarray(np.ones((1, 2)))), cfg)
    with pytest.raises(TypeError, match=r"state\.v"):
        adagrad.adam_update(g, st._replace(v=xp.asarray(np.ones((2, 2), dtype=np.float32))), cfg)
