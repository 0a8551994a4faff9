"""Corrupt states are refused at every update, naming the field (issue 12, part 2; ``algorithm.check_state``).

Every registered optimizer and every transform is driven one step, so that its state holds live values, and then
each array of the state is damaged in turn: one NaN, one Inf, another shape, another dtype (a counter: a negative
value). The next update must raise, and the message must name the field as the user sees it from the state they
passed (``state.factors[1]``, ``state.v``; ``state.precond.blocks[0].factors[1]`` in the authors' driver, and
``state[2].M`` in a chain). A valid state must give bit-identical results with and without the checks: they read the state and
never convert it. Transforms must refuse an ``updates`` array of another shape or dtype than the state's parameter.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from krad_ref import algorithm, backend, egop, kradagrad, shampoo
from krad_ref import transforms as T

SHAPE = (3, 4)


def npy(x):
    return np.asarray(backend.to_numpy(x))


def rand(xp, shape=SHAPE, dtype="float64", seed=0):
    return xp.asarray(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


# ---------------------------------------------------------------------------------------------------------
# walking a (nested) state

def leaves(x, path=(), label="state"):
    """(path, label, array) for every array in a state; the label is the field's name from the outermost state."""
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        for f in x._fields:
            yield from leaves(getattr(x, f), path + (f,), f"{label}.{f}")
    elif isinstance(x, tuple):
        for i, v in enumerate(x):
            yield from leaves(v, path + (i,), f"{label}[{i}]")
    elif hasattr(x, "shape") and hasattr(x, "dtype"):
        yield path, label, x


def replaced(x, path, value):
    """A copy of the state ``x`` with the array at ``path`` replaced by ``value``."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, str):
        return x._replace(**{head: replaced(getattr(x, head), rest, value)})
    items = list(x)
    items[head] = replaced(items[head], rest, value)
    return tuple(items)


def damaged(xp, a, how: str):
    """``a`` with one defect, as an array of ``xp``; None when the defect does not apply to ``a``."""
    v = npy(a).copy()
    floating = np.issubdtype(v.dtype, np.floating)
    if how in ("nan", "inf"):
        if not floating or v.size == 0:
            return None
        v.reshape(-1)[v.size // 2] = np.nan if how == "nan" else np.inf  # any one entry: a single bad value
        return xp.asarray(v)
    if how == "negative":
        return xp.asarray(np.asarray(-1, dtype=v.dtype)) if v.dtype.kind == "i" else None
    if how == "shape":
        # a state made for another parameter: every nonzero size one larger (an empty template stays empty)
        shape = tuple(d + 1 if d else 0 for d in v.shape) if v.shape else (1,)
        return xp.asarray(np.zeros(shape, dtype=v.dtype))
    other = {"f": np.float32, "i": np.int64, "b": np.int32}[v.dtype.kind]  # "dtype": the gradient is float64
    return xp.asarray(v.astype(other))


# ---------------------------------------------------------------------------------------------------------
# what is driven: every registered optimizer and every transform

ALGORITHM_IDS = algorithm.names()


def algorithm_case(name):
    alg = algorithm.get(name)
    cfg = alg.Config()
    return (lambda xp: alg.init(SHAPE, cfg, xp=xp)), (lambda g, state: alg.update(g, state, cfg))


def _driver(start):
    return T.shampoo_driver(kradagrad.kradagrad_star, kradagrad.KradagradStarConfig(), weight_decay=0.1, start=start)


def transform_cases():
    """name -> (transform, config, needs params); each update also gets ``grad`` (the grafts need it)."""
    wd = T.WeightDecayConfig(0.1)
    post = T.chain(T.norm_graft, T.weight_decay, T.momentum)
    post_cfg = T.ChainConfig((T.NormGraftConfig(), wd, T.MomentumConfig("inplace_nesterov")))
    adam = algorithm.get("adam")
    return {
        "norm_graft": (T.norm_graft, T.NormGraftConfig()),
        "weight_decay": (T.weight_decay, wd),
        "momentum": (T.momentum, T.MomentumConfig("heavy_ball")),
        "chain": (post, post_cfg),
        "norm_graft_to": (T.norm_graft_to(adam), T.NormGraftToConfig(adam.Config())),
        "blockwise": (T.blockwise(shampoo.shampoo), T.BlockwiseConfig(shampoo.Config(), block_size=2)),
        # start=1: every step preconditioned; start=3: the warm-up runs the parts' aliased functions
        "driver": _driver(1),
        "driver_warmup": _driver(3),
    }


TRANSFORM_IDS = tuple(transform_cases())


def transform_case(name):
    t, cfg = transform_cases()[name]

    def step(g, state):
        return t.update(g, state, cfg, params=g * 0.5, grad=g)

    return (lambda xp: t.init(SHAPE, cfg, xp=xp)), step


CASES = [pytest.param("alg", n, id=n) for n in ALGORITHM_IDS] + [pytest.param("tr", n, id=f"T.{n}")
                                                                   for n in TRANSFORM_IDS]


def case(kind, name):
    return algorithm_case(name) if kind == "alg" else transform_case(name)


def live_state(xp, init, step):
    """The state after one update (so that roots, moments and buffers hold data, not their initial values)."""
    return step(rand(xp, seed=1), init(xp))[1]


# ---------------------------------------------------------------------------------------------------------
# tests

def test_every_registered_algorithm_is_covered():
    assert set(ALGORITHM_IDS) == set(algorithm.registered())


@pytest.mark.parametrize("kind,name", CASES)
@pytest.mark.parametrize("how", ["nan", "inf", "shape", "dtype", "negative"])
def test_damaged_state_field_is_named(xp, kind, name, how):
    init, step = case(kind, name)
    state = live_state(xp, init, step)
    g = rand(xp, seed=2)
    tried = 0
    for path, label, a in list(leaves(state)):
        bad = damaged(xp, a, how)
        if bad is None:
            continue
        tried += 1
        exc = ValueError if how in ("nan", "inf", "shape", "negative") else TypeError
        with pytest.raises(exc, match=re.escape(label)) as info:
            step(g, replaced(state, path, bad))
        if how in ("nan", "inf"):
            assert "expected finite values, got 1 NaN or inf entry" in str(info.value), path
    assert tried > 0 or how in ("nan", "inf")  # every state has a counter; some transforms have no float data


@pytest.mark.parametrize("kind,name", CASES)
def test_valid_state_gives_bit_identical_results_with_and_without_checks(xp, kind, name, monkeypatch):
    init, step = case(kind, name)
    grads = [rand(xp, seed=s) for s in (1, 2, 3)]

    def run():
        state, out = init(xp), []
        for g in grads:
            before = [npy(a).copy() for _, _, a in leaves(state)]
            d, new = step(g, state)
            after = [npy(a) for _, _, a in leaves(state)]
            for b, c in zip(before, after):  # the checks read the state, never write it
                np.testing.assert_array_equal(b, c)
            out.append(npy(d))
            out.extend(npy(a) for _, _, a in leaves(new))
            state = new
        return out

    checked = run()
    monkeypatch.setattr(algorithm, "check_state", lambda *a, **k: None)
    unchecked = run()
    assert len(checked) == len(unchecked)
    for a, b in zip(checked, unchecked):
        np.testing.assert_array_equal(a, b)  # the same operations on the same values: bit for bit


@pytest.mark.parametrize("lam", [0.0, 0.1])
@pytest.mark.parametrize("bad_shape", [(5, 4), (4, 3), (1, 4), (12,), (3, 4, 1), ()],
                         ids=["other_shape", "transposed", "broadcastable", "other_rank", "extra_mode", "0d"])
def test_weight_decay_refuses_updates_of_another_shape(xp, lam, bad_shape):
    cfg = T.WeightDecayConfig(lam)
    state = T.weight_decay.init(SHAPE, cfg, xp=xp)
    bad = rand(xp, bad_shape)
    with pytest.raises(ValueError, match=re.escape(f"updates: shape {bad_shape} does not match the state's "
                                                   f"parameter shape {SHAPE}")):
        T.weight_decay.update(bad, state, cfg, params=bad if lam else None)


@pytest.mark.parametrize("lam", [0.0, 0.1])
def test_weight_decay_refuses_updates_of_another_dtype(xp, lam):
    # float16 where the namespace has it (array_api_strict has not: float32 stands in for a narrower dtype)
    narrow = "float32" if backend.is_strict(xp) else "float16"
    cfg = T.WeightDecayConfig(lam)
    state = T.weight_decay.init(SHAPE, cfg, xp=xp)
    bad = rand(xp, dtype=narrow)
    with pytest.raises(TypeError, match=f"updates: dtype {narrow} does not match the state's float64"):
        T.weight_decay.update(bad, state, cfg, params=bad if lam else None)


@pytest.mark.parametrize("name", TRANSFORM_IDS)
@pytest.mark.parametrize("bad_shape", [(4, 3), (1, 4), (12,), ()],
                         ids=["transposed", "broadcastable", "other_rank", "0d"])
def test_every_transform_refuses_updates_of_another_shape(xp, name, bad_shape):
    init, step = transform_case(name)
    with pytest.raises(ValueError, match=re.escape(f"updates: shape {bad_shape} does not match")):
        step(rand(xp, bad_shape), init(xp))


@pytest.mark.parametrize("name", TRANSFORM_IDS)
def test_every_transform_refuses_updates_of_another_dtype(xp, name):
    init, step = transform_case(name)
    with pytest.raises(TypeError, match="updates: dtype float32 does not match the state's float64"):
        step(rand(xp, dtype="float32"), init(xp))


def test_tuple_field_of_another_length_is_named(xp):
    cfg = shampoo.Config()
    state = shampoo.init(SHAPE, cfg, xp=xp)
    with pytest.raises(ValueError, match=re.escape("state.stats: expected 2 arrays")):
        shampoo.update(rand(xp), state._replace(stats=state.stats[:1]), cfg)


def test_array_of_another_library_is_named(xp):
    if not backend.is_strict(xp):
        pytest.skip("needs a namespace whose arrays are not NumPy's")
    alg = algorithm.get("adam")
    state = alg.init(SHAPE, alg.Config(), xp=xp)
    with pytest.raises(TypeError, match=re.escape("state.v: expected an array of the gradient's library")):
        alg.update(rand(xp), state._replace(v=np.zeros(SHAPE)), alg.Config())


def test_transform_state_without_template_is_refused(xp):
    # CountState(count) alone (the class before it recorded its parameter) cannot say what updates must be
    cfg = T.WeightDecayConfig(0.0)
    with pytest.raises(ValueError, match="state.template: expected the"):
        T.weight_decay.update(rand(xp), T.CountState(xp.zeros((), dtype=xp.int32)), cfg)


# ---------------------------------------------------------------------------------------------------------
# EGOP: the basis V is what a reparameterized training loop keeps between steps

def _orthogonal(xp, d, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return xp.asarray(q)


@pytest.mark.parametrize("how", ["nan", "inf"])
def test_egop_basis_with_nonfinite_entries_is_named(xp, how):
    V = _orthogonal(xp, 4, 0)
    x = rand(xp, (4,))
    bad = damaged(xp, V, how)
    for fn in (egop.to_reparam, egop.from_reparam):
        with pytest.raises(ValueError, match="V: expected finite values"):
            fn(x, bad)
    blocks = egop.BlockBasis(6, (slice(0, 2), slice(2, 6)), (_orthogonal(xp, 2, 1), damaged(xp, V, how)))
    for fn in (egop.to_reparam, egop.from_reparam):
        with pytest.raises(ValueError, match=re.escape("V.bases[1]: expected finite values")):
            fn(rand(xp, (6,)), blocks)
    with pytest.raises(ValueError, match=re.escape("V.bases[1]: expected finite values")):
        egop.reparameterize(None, lambda z: z, blocks)
