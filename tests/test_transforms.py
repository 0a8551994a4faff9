"""Tests of krad_ref.transforms: the authors' step driver as composable pieces (notes Sec. 1-2; errata 16, 20).

Tolerances. The transforms do O(1) flops per entry (multiply-adds) plus one or two 2-norms over n entries, so a
value computed two different ways (the transform vs a hand-written closed form) differs by a few rounding errors
per entry: we allow 8 u relative per entry (a handful of multiply-adds, Higham Sec. 3.1) and, where a norm
enters, 4 n u (an n-term sum of squares, Higham Sec. 3.1). Exact equalities (partition/merge, reshapes,
identical operation sequences) are asserted bit for bit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from krad_ref import algorithm, backend
from krad_ref import transforms as T

U64 = 2.0**-53
DTYPES = ("float32", "float64")


def npy(x):
    return np.asarray(backend.to_numpy(x))


def u_of(dtype_name: str) -> float:
    return {"float32": 2.0**-24, "float64": 2.0**-53}[dtype_name]


def rand(xp, shape, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    return xp.asarray(rng.standard_normal(shape).astype(dtype))


def assert_close(got, want, rtol, why: str):
    got, want = npy(got), npy(want)
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape} [{why}]"
    scale = max(float(np.max(np.abs(want))) if want.size else 0.0, np.finfo(np.float64).tiny)
    err = float(np.max(np.abs(got - want))) if want.size else 0.0
    assert err <= rtol * scale, f"max err {err:.3g} > {rtol:.3g} * {scale:.3g} [{why}]"


# ---------------------------------------------------------------------------------------------------------
# a tiny preconditioner for composition tests: direction = c * G (count kept), so every step is checkable

@dataclass(frozen=True)
class ScaleConfig:
    c: float = 3.0


class ScaleState(NamedTuple):
    count: Any  # shape (), int32
    seen: Any   # parameter shape: the last gradient seen (to check blocking hands the right block)


def _scale_init(shape_or_array, config, *, dtype=None, xp=None):
    shape = algorithm.shape_of(shape_or_array)
    xp = backend.get_namespace("numpy") if xp is None else xp
    dtype = xp.float64 if dtype is None else dtype
    return ScaleState(xp.zeros((), dtype=xp.int32), xp.zeros(shape, dtype=dtype))


def _scale_update(grad, state, config, *, params=None):
    xp = backend.namespace(grad)
    if tuple(grad.shape) != tuple(state.seen.shape):
        raise ValueError("grad: shape mismatch")
    return config.c * grad, ScaleState(xp.asarray(state.count + 1, dtype=xp.int32), grad)


scale_alg = algorithm.Algorithm("test_scale", ScaleConfig, ScaleState, _scale_init, _scale_update)


@dataclass(frozen=True)
class BlockNormConfig:
    pass


class BlockNormState(NamedTuple):
    count: Any


def _bn_init(shape_or_array, config, *, dtype=None, xp=None):
    xp = backend.get_namespace("numpy") if xp is None else xp
    return BlockNormState(xp.zeros((), dtype=xp.int32))


def _bn_update(grad, state, config, *, params=None):
    xp = backend.namespace(grad)
    return grad / xp.linalg.vector_norm(grad), BlockNormState(xp.asarray(state.count + 1, dtype=xp.int32))


#: direction = G_block / ||G_block||_F: differs from the whole-tensor version, so blocking is visible
blocknorm_alg = algorithm.Algorithm("test_blocknorm", BlockNormConfig, BlockNormState, _bn_init, _bn_update)


# ---------------------------------------------------------------------------------------------------------
# merge_small_dims

@pytest.mark.parametrize("shape, max_dim, want", [
    ((128, 64, 3, 3), 128, (128, 64, 9)),   # notes Sec. 1 item 1 examples
    ((1, 10), 128, (10,)),
    ((1,), 128, ()),
    ((), 128, ()),
    ((2, 3, 4), 128, (24,)),
    ((2, 3, 4), 6, (6, 4)),
    ((300, 1, 2), 128, (300, 2)),           # a dim above max_dim stands alone; size-1 dims vanish
    ((1, 1, 1), 1, ()),
])
def test_merge_small_dims_examples(shape, max_dim, want):
    assert T.merge_small_dims(shape, max_dim) == want


def _merge_reference(shape, max_dim):
    """Straight transcription of the code's ``_merge_small_dims`` (notes Sec. 1 item 1)."""
    resulting_shape = []
    product = 1
    for d in shape:
        if product * d <= max_dim:
            product *= d
        else:
            if product > 1:
                resulting_shape.append(product)
            product = d
    if product > 1:
        resulting_shape.append(product)
    return tuple(resulting_shape)


@given(shape=st.lists(st.integers(1, 40), max_size=6), max_dim=st.integers(1, 200))
def test_merge_small_dims_properties(shape, max_dim):
    merged = T.merge_small_dims(tuple(shape), max_dim)
    assert merged == _merge_reference(shape, max_dim)
    assert math.prod(merged) == math.prod(shape)          # a row-major reshape maps one onto the other
    assert all(d > 1 for d in merged)                      # size-1 dims vanish
    for a, b in zip(merged, merged[1:]):                   # greedy: no two neighbours could have merged
        assert a * b > max_dim
    assert all(d <= max_dim or d in shape for d in merged)  # only an original dim may exceed max_dim


def test_merge_small_dims_bad_args():
    with pytest.raises(ValueError, match="shape_or_array"):
        T.merge_small_dims((3, 0), 4)
    with pytest.raises(ValueError, match="max_dim"):
        T.merge_small_dims((3,), 0)
    with pytest.raises(TypeError, match="max_dim"):
        T.merge_small_dims((3,), 2.5)


# ---------------------------------------------------------------------------------------------------------
# BlockPartitioner

def _partition_reference(X, block_size):
    """The code's ``BlockPartitioner.partition``: split dimension by dimension (np.split for torch.split)."""
    tensors = [X]
    for i, d in enumerate(X.shape):
        if d > block_size:
            nsplit = (d - 1) // block_size
            indices = (np.arange(nsplit) + 1) * block_size
            tensors = [piece for t in tensors for piece in np.split(t, indices, axis=i)]
    return tensors


@given(shape=st.lists(st.integers(1, 13), max_size=4), block_size=st.integers(1, 6))
def test_partition_merge_exact_inverses(shape, block_size):
    shape = tuple(shape)
    part = T.BlockPartitioner(shape, block_size)
    X = np.asarray(np.arange(math.prod(shape), dtype=np.float64).reshape(shape) * 1.5 - 7.0)
    blocks = part.partition(X)
    ref = _partition_reference(X, block_size)
    assert len(blocks) == len(ref) == part.num_blocks == math.prod(len(s) for s in part.sizes)
    for b, r, s in zip(blocks, ref, part.block_shapes):   # same blocks, same (first-dim-outermost) order
        assert b.shape == r.shape == tuple(s)
        np.testing.assert_array_equal(b, r)
    for d, sz in zip(shape, part.sizes):                    # chunks of block_size, remainder last
        assert sum(sz) == d and all(c == block_size for c in sz[:-1]) and 1 <= sz[-1] <= block_size
    merged = part.merge(blocks)
    assert merged.shape == X.shape and np.array_equal(merged, X)
    # and the other way round: partition(merge(blocks)) == blocks
    again = part.partition(merged)
    assert all(np.array_equal(a, b) for a, b in zip(again, blocks))


def test_partitioner_under_xp(xp):
    part = T.BlockPartitioner((5, 7), 3)
    assert part.sizes == ((3, 2), (3, 3, 1))
    assert part.block_shapes == ((3, 3), (3, 3), (3, 1), (2, 3), (2, 3), (2, 1))
    X = rand(xp, (5, 7))
    blocks = part.partition(X)
    assert [tuple(b.shape) for b in blocks] == list(part.block_shapes)
    np.testing.assert_array_equal(npy(part.merge(blocks)), npy(X))
    with pytest.raises(ValueError, match="X: shape"):
        part.partition(rand(xp, (5, 6)))
    with pytest.raises(ValueError, match="expected 6 blocks"):
        part.merge(blocks[:-1])
    with pytest.raises(ValueError, match=r"blocks\[0\]"):
        part.merge((blocks[2],) + tuple(blocks[1:]))


# ---------------------------------------------------------------------------------------------------------
# blockwise

def test_blockwise_runs_the_optimizer_per_block(xp):
    shape = (10, 3, 2)                      # merged with block 8: (10, 6); blocks (8, 6), (2, 6)
    cfg = T.BlockwiseConfig(BlockNormConfig(), block_size=8)
    bw = T.blockwise(blocknorm_alg)
    G = rand(xp, shape, seed=1)
    state = bw.init(shape, cfg, xp=xp)
    assert len(state.blocks) == 2
    out, state2 = bw.update(G, state, cfg)
    g = npy(G).reshape(10, 6)
    want = np.concatenate([g[:8] / np.linalg.norm(g[:8]), g[8:] / np.linalg.norm(g[8:])], axis=0).reshape(shape)
    assert_close(out, want, 4 * 48 * U64, "per-block normalisation (48-entry norms)")
    assert int(state2.count) == 1 and all(int(s.count) == 1 for s in state2.blocks)
    assert int(state.count) == 0                                       # input state untouched


def test_blockwise_hands_each_block_its_slice(xp):
    shape = (7, 5)
    cfg = T.BlockwiseConfig(ScaleConfig(2.0), block_size=3)
    bw = T.blockwise(scale_alg)
    G = rand(xp, shape, seed=2)
    out, st_ = bw.update(G, bw.init(shape, cfg, xp=xp), cfg)
    np.testing.assert_array_equal(npy(out), 2.0 * npy(G))              # one multiply per entry: exact
    part = T.BlockPartitioner((7, 5), 3)
    for s, b in zip(st_.blocks, part.partition(npy(G))):
        np.testing.assert_array_equal(npy(s.seen), b)


def test_blockwise_order0_and_no_merge(xp):
    cfg = T.BlockwiseConfig(ScaleConfig(2.0), block_size=4)
    bw = T.blockwise(scale_alg)
    G = rand(xp, (1,), seed=3)                                          # merged (): no statistics, G unchanged
    st0 = bw.init((1,), cfg, xp=xp)
    assert st0.blocks == ()
    out, _ = bw.update(G, st0, cfg)
    np.testing.assert_array_equal(npy(out), npy(G))
    cfg_nm = T.BlockwiseConfig(ScaleConfig(2.0), block_size=4, merge_dims=False)
    st1 = bw.init((1, 6), cfg_nm, xp=xp)                                # kept as (1, 6): blocks (1,4), (1,2)
    assert [tuple(s.seen.shape) for s in st1.blocks] == [(1, 4), (1, 2)]
    with pytest.raises(ValueError, match=r"updates: shape \(1, 6\) does not match"):  # st0 was made for (1,)
        bw.update(rand(xp, (1, 6)), st0, cfg_nm)
    with pytest.raises(ValueError, match="block states"):
        bw.update(rand(xp, (1, 6)), st0._replace(template=st1.template), cfg_nm)
    with pytest.raises(TypeError, match="config.inner"):
        bw.init((3,), T.BlockwiseConfig(BlockNormConfig()), xp=xp)


# ---------------------------------------------------------------------------------------------------------
# norm grafting

@pytest.mark.parametrize("dtype", DTYPES)
def test_norm_graft_matches_gradient_norm(xp, dtype):
    G = rand(xp, (6, 4), dtype, seed=4)
    U = rand(xp, (6, 4), dtype, seed=5) * 1e3
    st0 = T.norm_graft.init(G, T.NormGraftConfig())
    out, st1 = T.norm_graft.update(U, st0, T.NormGraftConfig(), grad=G)
    assert out.dtype == G.dtype and int(st1.count) == 1
    n, u = 24, u_of(dtype)
    g, o, uu = npy(G).astype(np.float64), npy(out).astype(np.float64), npy(U).astype(np.float64)
    assert abs(np.linalg.norm(o) - np.linalg.norm(g)) <= 8 * n * u * np.linalg.norm(g)  # two n-term norms
    assert_close(o, uu * (np.linalg.norm(g) / np.linalg.norm(uu)), 8 * n * u, "same direction as U")


def test_norm_graft_edge_cases(xp):
    G = rand(xp, (3,), seed=6)
    Z = xp.zeros((3,), dtype=xp.float64)
    cfg = T.NormGraftConfig()
    out, _ = T.norm_graft.update(Z, T.norm_graft.init(G, cfg), cfg, grad=G)
    np.testing.assert_array_equal(npy(out), np.zeros(3))               # 0 / (0 + 1e-16) = 0
    with pytest.raises(ValueError, match="grad"):
        T.norm_graft.update(G, T.norm_graft.init(G, cfg), cfg)          # no reference outside a chain
    with pytest.raises(ValueError, match="grad: shape"):
        T.norm_graft.update(G, T.norm_graft.init(G, cfg), cfg, grad=rand(xp, (4,)))
    with pytest.raises(ValueError, match="eps"):
        T.NormGraftConfig(eps=-1.0)


def test_norm_graft_to_reference_optimizer(xp):
    t = T.norm_graft_to(scale_alg)                                      # reference direction g~ = 5 G
    cfg = T.NormGraftToConfig(ScaleConfig(5.0))
    G, U = rand(xp, (4, 3), seed=7), rand(xp, (4, 3), seed=8)
    st0 = t.init((4, 3), cfg, xp=xp)
    out, st1 = t.update(U, st0, cfg, grad=G)
    assert abs(np.linalg.norm(npy(out)) - 5 * np.linalg.norm(npy(G))) <= 8 * 12 * U64 * 5 * np.linalg.norm(npy(G))
    assert int(st1.reference.count) == 1
    assert t.aliased is None


# ---------------------------------------------------------------------------------------------------------
# weight decay

def test_weight_decay(xp):
    U, W = rand(xp, (3, 2), seed=9), rand(xp, (3, 2), seed=10)
    cfg = T.WeightDecayConfig(0.25)
    st0 = T.weight_decay.init(U, cfg)
    out, st1 = T.weight_decay.update(U, st0, cfg, params=W)
    np.testing.assert_array_equal(npy(out), npy(U) + 0.25 * npy(W))   # one fused-free multiply-add: exact
    with pytest.raises(ValueError, match="params"):                    # errata 16
        T.weight_decay.update(U, st0, cfg)
    out0, _ = T.weight_decay.update(U, st0, T.WeightDecayConfig(0.0))  # lambda = 0 needs no params
    np.testing.assert_array_equal(npy(out0), npy(U))
    with pytest.raises(ValueError, match="params: shape"):
        T.weight_decay.update(U, st0, cfg, params=rand(xp, (2, 3)))
    with pytest.raises(ValueError, match="weight_decay"):
        T.WeightDecayConfig(-1.0)


# ---------------------------------------------------------------------------------------------------------
# momentum

@pytest.mark.parametrize("dtype", DTYPES)
def test_momentum_two_steps_by_hand(xp, dtype):
    mu = 0.9
    U1, U2 = rand(xp, (4, 3), dtype, seed=11), rand(xp, (4, 3), dtype, seed=12)
    u1, u2 = npy(U1).astype(np.float64), npy(U2).astype(np.float64)
    want = {
        # kind: (out1, out2, M2)
        "heavy_ball": (u1, mu * u1 + u2, mu * u1 + u2),
        "nesterov": ((1 + mu) * u1, u2 + mu * (mu * u1 + u2), mu * u1 + u2),
        # the code's in-place "Nesterov": M_k = mu^2 M_{k-1} + (1 + mu) U_k, output M_k (notes Sec. 2)
        "inplace_nesterov": ((1 + mu) * u1, mu**2 * (1 + mu) * u1 + (1 + mu) * u2,
                             mu**2 * (1 + mu) * u1 + (1 + mu) * u2),
    }
    rtol = 16 * u_of(dtype)  # <= 4 multiply-adds per entry, each with relative error u, on O(1) values
    for kind, (o1, o2, m2) in want.items():
        cfg = T.MomentumConfig(kind, mu)
        st0 = T.momentum.init(U1, cfg)
        out1, st1 = T.momentum.update(U1, st0, cfg)
        out2, st2 = T.momentum.update(U2, st1, cfg)
        assert out1.dtype == U1.dtype
        assert_close(out1, o1, rtol, f"{kind} step 1")
        assert_close(out2, o2, rtol, f"{kind} step 2")
        assert_close(st2.M, m2, rtol, f"{kind} buffer after step 2")
        assert int(st2.count) == 2 and int(st0.count) == 0
        assert float(np.max(np.abs(npy(st0.M)))) == 0.0                  # input state untouched


@settings(max_examples=20)
@given(mu=st.floats(0.0, 0.99), seeds=st.lists(st.integers(0, 2**16), min_size=1, max_size=6))
def test_inplace_nesterov_closed_form(mu, seeds):
    xp = backend.get_namespace("numpy")
    cfg = T.MomentumConfig("inplace_nesterov", mu)
    state = T.momentum.init((3,), cfg, xp=xp)
    M = np.zeros(3)
    for s in seeds:
        U = np.random.default_rng(s).standard_normal(3)
        out, state = T.momentum.update(U, state, cfg)
        M = mu**2 * M + (1 + mu) * U
        # |M| <= sum (1+mu) mu^(2j) |U| <= (1+mu)/(1-mu^2) max|U|: relative error grows ~ 4 u per step
        assert_close(out, M, 8 * len(seeds) * U64 / (1 - mu), "M_k = mu^2 M_{k-1} + (1+mu) U_k")


def test_momentum_config_and_state_errors(xp):
    with pytest.raises(ValueError, match="kind"):
        T.MomentumConfig("adam")
    with pytest.raises(ValueError, match="mu"):
        T.MomentumConfig("heavy_ball", 1.0)
    cfg = T.MomentumConfig("heavy_ball")
    st0 = T.momentum.init((3,), cfg, xp=xp)
    with pytest.raises(ValueError, match="updates: shape"):
        T.momentum.update(rand(xp, (4,)), st0, cfg)
    with pytest.raises(TypeError, match="dtype"):
        T.momentum.update(rand(xp, (3,), "float32"), st0, cfg)
    with pytest.raises(ValueError, match="finite"):
        T.momentum.update(xp.asarray([1.0, float("nan"), 0.0]), st0, cfg)
    with pytest.raises(ValueError, match="state: expected MomentumState"):
        T.momentum.update(rand(xp, (3,)), T.CountState(st0.count), cfg)


# ---------------------------------------------------------------------------------------------------------
# chain

def _post_chain():
    return T.chain(T.norm_graft, T.weight_decay, T.momentum)


def _post_cfg(lam=0.1, kind="inplace_nesterov", mu=0.9):
    return T.ChainConfig((T.NormGraftConfig(), T.WeightDecayConfig(lam), T.MomentumConfig(kind, mu)))


def test_chain_composes_left_to_right(xp):
    ch = T.chain(scale_alg, T.norm_graft, T.weight_decay, T.momentum)
    cfg = T.ChainConfig((ScaleConfig(4.0), T.NormGraftConfig(), T.WeightDecayConfig(0.1),
                         T.MomentumConfig("heavy_ball", 0.5)))
    G, W = rand(xp, (3, 3), seed=13), rand(xp, (3, 3), seed=14)
    state = ch.init((3, 3), cfg, xp=xp)
    assert isinstance(state, tuple) and len(state) == 4 and not hasattr(state, "_fields")
    out, state = ch.update(G, state, cfg, params=W)
    g, w = npy(G), npy(W)
    # scale then graft back to ||G||: the direction is G ||G|| / (||4G|| + 1e-16) * 4, i.e. G to rounding
    want = g + 0.1 * w                                                   # heavy ball from M = 0: M_1 = U_1
    assert_close(out, want, 8 * 9 * U64, "chain(scale, graft, wd, heavy ball) first step")
    assert ch.name == "chain(test_scale, norm_graft, weight_decay, momentum)"


def test_chain_state_and_config_mismatch(xp):
    ch = _post_chain()
    cfg = _post_cfg()
    G, W = rand(xp, (3,), seed=15), rand(xp, (3,), seed=16)
    state = ch.init((3,), cfg, xp=xp)
    with pytest.raises(ValueError, match="expects 3 part states, got 2"):
        ch.update(G, state[:2], cfg, params=W)
    with pytest.raises(ValueError, match=r"state\[2\]: expected MomentumState"):
        ch.update(G, (state[0], state[1], state[1]), cfg, params=W)
    with pytest.raises(ValueError, match="expected a tuple"):
        ch.update(G, state[2], cfg, params=W)                            # a NamedTuple is not a chain state
    with pytest.raises(TypeError, match="3 parts but the ChainConfig holds 2"):
        ch.update(G, state, T.ChainConfig(cfg.parts[:2]), params=W)
    with pytest.raises(TypeError, match=r"config.parts\[1\]"):
        ch.update(G, state, T.ChainConfig((cfg.parts[0], cfg.parts[0], cfg.parts[2])), params=W)
    with pytest.raises(TypeError, match="ChainConfig"):
        ch.update(G, state, cfg.parts[0], params=W)
    with pytest.raises(ValueError, match="params"):                      # weight decay without params (errata 16)
        ch.update(G, state, cfg)
    with pytest.raises(TypeError, match="parts"):
        T.chain(T.norm_graft, "momentum")


def test_nested_chain_passes_the_outer_gradient(xp):
    inner = T.chain(T.norm_graft)
    outer = T.chain(scale_alg, inner)
    cfg = T.ChainConfig((ScaleConfig(7.0), T.ChainConfig((T.NormGraftConfig(),))))
    G = rand(xp, (5,), seed=17)
    out, _ = outer.update(G, outer.init((5,), cfg, xp=xp), cfg)
    assert_close(out, G, 8 * 5 * U64, "graft to the outer chain's input, not to 7 G")


# ---------------------------------------------------------------------------------------------------------
# start_preconditioning and the schedule

def test_every_f_steps():
    assert [k for k in range(1, 13) if T.every_f_steps(k, 3)] == [3, 6, 9, 12]
    assert T.every_f_steps(np.asarray(4, dtype=np.int32), 2)
    assert all(T.every_f_steps(k, 1) for k in range(5))
    with pytest.raises(ValueError, match="f"):
        T.every_f_steps(3, 0)
    with pytest.raises(ValueError, match="k"):
        T.every_f_steps(-1, 2)


def test_start_preconditioning_gradient_warmup(xp):
    t = T.start_preconditioning(scale_alg)
    cfg = T.StartPreconditioningConfig(ScaleConfig(3.0), start=3)
    G = rand(xp, (2, 2), seed=18)
    state = t.init((2, 2), cfg, xp=xp)
    outs = []
    for _ in range(4):
        out, state = t.update(G, state, cfg)
        outs.append(npy(out))
    g = npy(G)
    np.testing.assert_array_equal(outs[0], g)          # k = 1, 2 < start: the gradient
    np.testing.assert_array_equal(outs[1], g)
    np.testing.assert_array_equal(outs[2], 3.0 * g)    # k = 3, 4: preconditioned
    np.testing.assert_array_equal(outs[3], 3.0 * g)
    assert int(state.precond.count) == 4 and int(state.count) == 4   # the preconditioner advanced every step


@pytest.mark.parametrize("dtype", DTYPES)
def test_start_preconditioning_code_alias(xp, dtype):
    """errata 20: warm-up with Graft, weight decay lambda and the in-place Nesterov steps by 2 mu (G' + 2 lambda W),
    G' = G ||G|| / (||G|| + 1e-16), while the buffer accumulates M <- mu M + (G' + 2 lambda W)."""
    mu, lam = 0.9, 0.05
    t = T.start_preconditioning(scale_alg, post=_post_chain())
    cfg = T.StartPreconditioningConfig(ScaleConfig(3.0), _post_cfg(lam, "inplace_nesterov", mu), start=3,
                                       warmup="code-alias")
    G1, G2, G3 = (rand(xp, (3, 2), dtype, seed=s) for s in (19, 20, 21))
    W = rand(xp, (3, 2), dtype, seed=22)
    state = t.init((3, 2), cfg, dtype=G1.dtype, xp=xp)
    d1, state = t.update(G1, state, cfg, params=W)
    d2, state = t.update(G2, state, cfg, params=W)
    d3, state = t.update(G3, state, cfg, params=W)
    g1, g2, g3, w = (npy(a).astype(np.float64) for a in (G1, G2, G3, W))
    x1 = g1 * np.linalg.norm(g1) / (np.linalg.norm(g1) + 1e-16) + 2 * lam * w
    x2 = g2 * np.linalg.norm(g2) / (np.linalg.norm(g2) + 1e-16) + 2 * lam * w
    M2 = mu * x1 + x2
    # k = 3 >= start: U = graft(3 G3) to ||G3||, + lambda W, then the in-place Nesterov on the stored buffer
    U3 = 3 * g3 * np.linalg.norm(g3) / (np.linalg.norm(3 * g3) + 1e-16) + lam * w
    M3 = mu * (mu * M2 + U3) + U3
    rtol = 16 * 6 * u_of(dtype)  # 6-entry norms and a few multiply-adds
    assert_close(d1, 2 * mu * x1, rtol, "warm-up step 1 = 2 mu (G' + 2 lambda W)")
    assert_close(d2, 2 * mu * x2, rtol, "warm-up step 2")
    assert_close(state.post[2].M, M3, rtol, "buffer after step 3")
    assert_close(d3, M3, rtol, "step 3 = M_3 = mu^2 M_2 + (1 + mu) U_3")
    # the "gradient" warm-up runs the same post chain on U = G instead (no aliasing)
    cfg_g = T.StartPreconditioningConfig(ScaleConfig(3.0), _post_cfg(lam, "inplace_nesterov", mu), start=3)
    e1, _ = t.update(G1, t.init((3, 2), cfg_g, dtype=G1.dtype, xp=xp), cfg_g, params=W)
    assert_close(e1, (1 + mu) * (x1 - lam * w), rtol, "gradient warm-up: (1 + mu)(G' + lambda W)")


def test_start_preconditioning_config_errors(xp):
    with pytest.raises(ValueError, match="warmup"):
        T.StartPreconditioningConfig(ScaleConfig(), start=2, warmup="torch")
    with pytest.raises(ValueError, match="start"):
        T.StartPreconditioningConfig(ScaleConfig(), start=0)
    t = T.start_preconditioning(scale_alg, post=T.chain(T.norm_graft, T.momentum))
    cfg = T.StartPreconditioningConfig(ScaleConfig(), T.ChainConfig((T.NormGraftConfig(),
                                                                      T.MomentumConfig("nesterov"))),
                                       start=2, warmup="code-alias")
    G = rand(xp, (2,), seed=23)
    with pytest.raises(ValueError, match="nesterov"):                   # PyTorch Nesterov is not in the code
        t.update(G, t.init((2,), cfg, xp=xp), cfg)
    t2 = T.start_preconditioning(scale_alg, post=T.chain(scale_alg))
    cfg2 = T.StartPreconditioningConfig(ScaleConfig(), T.ChainConfig((ScaleConfig(),)), start=2,
                                        warmup="code-alias")
    with pytest.raises(ValueError, match="aliased"):
        t2.update(G, t2.init((2,), cfg2, xp=xp), cfg2)
    with pytest.raises(TypeError, match="config.post"):
        T.start_preconditioning(scale_alg).init((2,), cfg2, xp=xp)


# ---------------------------------------------------------------------------------------------------------
# the assembled driver

def test_shampoo_driver_structure(xp):
    t, cfg = T.shampoo_driver(scale_alg, ScaleConfig(2.0), block_size=4, start=2, weight_decay=0.01)
    assert t.name == ("start_preconditioning(blockwise(test_scale), "
                      "post=chain(norm_graft, weight_decay, momentum))")
    assert cfg.post.parts[2] == T.MomentumConfig("inplace_nesterov", 0.9) and cfg.warmup == "code-alias"
    G, W = rand(xp, (6, 3), seed=24), rand(xp, (6, 3), seed=25)
    state = t.init((6, 3), cfg, xp=xp)
    assert len(state.precond.blocks) == 2                                # (6, 3) -> merged (6, 3) -> (4|2) x 3
    for _ in range(3):
        out, state = t.update(G, state, cfg, params=W)
    assert out.shape == G.shape and out.dtype == G.dtype
    with pytest.raises(ValueError, match="params"):
        t.update(G, state, cfg)


def test_transforms_are_not_registered():
    for name in ("norm_graft", "weight_decay", "momentum", "chain"):
        with pytest.raises(ValueError, match="unknown id"):
            algorithm.get(name)


def test_code_alias_parameter_without_statistics(xp):
    """A parameter whose merged shape is () (here (1, 1)) has no statistics; the code returns p.grad as the
    "preconditioned" gradient, so on steps k >= start weight decay lands twice (U and g~ alias) while the
    momentum is the ordinary in-place Nesterov on its own buffer."""
    mu, lam = 0.9, 0.1
    t, cfg = T.shampoo_driver(scale_alg, ScaleConfig(3.0), block_size=4, start=1, weight_decay=lam, mu=mu)
    G, W = rand(xp, (1, 1), seed=26), rand(xp, (1, 1), seed=27)
    state = t.init((1, 1), cfg, xp=xp)
    assert state.precond.blocks == ()
    d1, state = t.update(G, state, cfg, params=W)
    d2, state = t.update(G, state, cfg, params=W)
    g, w = npy(G), npy(W)
    x = g * (np.abs(g) / (np.abs(g) + 1e-16)) + 2 * lam * w
    assert_close(d1, (1 + mu) * x, 16 * U64, "k = 1: M_1 = (1 + mu) X")
    assert_close(d2, mu**2 * (1 + mu) * x + (1 + mu) * x, 16 * U64, "k = 2: M_2 = mu^2 M_1 + (1 + mu) X")
    t_g, cfg_g = T.shampoo_driver(scale_alg, ScaleConfig(3.0), block_size=4, weight_decay=lam, mu=mu,
                                  warmup="gradient")
    e1, _ = t_g.update(G, t_g.init((1, 1), cfg_g, xp=xp), cfg_g, params=W)
    assert_close(e1, (1 + mu) * (x - lam * w), 16 * U64, "clean reading: weight decay once")


def test_init_accepts_the_protocols_dtype_strings():
    """Regression: transforms resolved init's arguments with their own copy of algorithm.creation, which refused
    dtype="float32" (accepted by every optimizer's init) and put counters on the default device."""
    import numpy as np

    from krad_ref import transforms as T

    st = T.momentum.init((3, 2), T.MomentumConfig(kind="heavy_ball"), dtype="float32")
    assert st.M.dtype == np.float32 and st.M.shape == (3, 2) and int(st.count) == 0
