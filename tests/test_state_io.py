"""Tests of krad_ref.state_io: bit-exact round trips, clear errors for truncated / mismatched / tampered files.

All value comparisons here are bitwise (``tobytes()`` equality, which also distinguishes -0.0 from 0.0 and keeps
NaN payloads): the format stores raw array bytes, so nothing may change in a round trip.
"""
from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from typing import Any, NamedTuple

import numpy as np
import pytest

from krad_ref import __version__, algorithm, backend, state_io
from krad_ref import transforms as T

HERE = __name__
TRUSTED = ("krad_ref", HERE)


# ---------------------------------------------------------------------------------------------------------
# small states and configs defined here (module level, so the loader can find them by qualname)

@dataclasses.dataclass(frozen=True)
class InnerConfig:
    eps: float = 1e-12


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    variant: str = "paper"
    lr_like: float = 0.1
    freq: int = 3
    flag: bool = True
    maybe: Any = None
    sizes: tuple = (2, 3)
    inner: InnerConfig = InnerConfig()
    root_dtype: Any = None
    tiny: float = 5e-324           # denormal: JSON repr must round-trip it exactly
    third: float = 1.0 / 3.0

    def __post_init__(self):
        if self.freq < 1:
            raise ValueError(f"freq: expected >= 1, got {self.freq}")


class ToyState(NamedTuple):
    count: Any        # shape (), int32
    factors: tuple    # p arrays (d_i, d_i)
    extra: Any        # None or an array


class Outer(NamedTuple):
    count: Any
    nested: tuple     # tuple of ToyStates


def bits(x):
    a = np.asarray(backend.to_numpy(x))
    return a.dtype.str, a.shape, a.tobytes()


def assert_same_tree(a, b):
    if isinstance(a, tuple):
        assert type(a) is type(b) and len(a) == len(b), (type(a), type(b))
        for x, y in zip(a, b):
            assert_same_tree(x, y)
    elif a is None:
        assert b is None
    else:
        assert bits(a) == bits(b)


def toy_state(xp, dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    L = rng.standard_normal((3, 3)).astype(dtype)
    L[0, 0] = -0.0
    L[1, 1] = np.nan
    R = rng.standard_normal((2, 2)).astype(dtype)
    R[0, 1] = np.inf
    return ToyState(xp.asarray(np.asarray(7, dtype=np.int32)), (xp.asarray(L), xp.asarray(R)), None)


def save_toy(path, xp=None, config=None):
    xp = xp or backend.get_namespace("numpy")
    state = Outer(xp.asarray(np.asarray(2, dtype=np.int32)), (toy_state(xp, seed=1), toy_state(xp, seed=2)))
    config = config or ToyConfig()
    state_io.save_state(path, state, config, algorithm="toy")
    return state, config


# ---------------------------------------------------------------------------------------------------------
# round trips

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_bit_exact(tmp_path, xp, dtype):
    state = toy_state(xp, dtype)
    cfg = ToyConfig(maybe=(1, "a", None), root_dtype=xp.float32 if dtype == "float32" else None)
    path = tmp_path / "s.npz"
    state_io.save_state(path, state, cfg, algorithm="toy")
    got, got_cfg = state_io.load_state(path, trusted=TRUSTED)
    assert type(got) is ToyState and isinstance(got.factors, tuple) and got.extra is None
    assert isinstance(got.count, np.ndarray) and got.count.shape == () and got.count.dtype == np.int32
    assert all(isinstance(F, np.ndarray) for F in got.factors)      # NumPy by default
    assert_same_tree(state, got)
    assert dataclasses.replace(got_cfg, root_dtype=None) == dataclasses.replace(cfg, root_dtype=None)
    assert got_cfg.tiny == 5e-324 and got_cfg.third == 1.0 / 3.0 and got_cfg.maybe == (1, "a", None)
    if dtype == "float32":
        assert backend.dtype_name(got_cfg.root_dtype) == "float32"
    # xp= moves the arrays (and dtype fields) to the namespace, values unchanged
    moved, moved_cfg = state_io.load_state(path, xp=xp, trusted=TRUSTED)
    assert backend.namespace(moved.count, *moved.factors) is backend.namespace(state.factors[0])
    assert_same_tree(state, moved)
    if dtype == "float32":
        assert moved_cfg.root_dtype == xp.float32


def test_nested_states_and_header(tmp_path):
    path = tmp_path / "nested.npz"
    state, cfg = save_toy(path)
    got, got_cfg = state_io.load_state(path, trusted=TRUSTED)
    assert_same_tree(state, got)
    assert got_cfg == cfg
    h = state_io.read_header(path)
    assert h["format"] == "krad_ref.state" and h["format_version"] == 1
    assert h["krad_ref_version"] == __version__ and h["algorithm"] == "toy" and h["dtype"] == "float32"
    assert [a["shape"] for a in h["arrays"]] == [[], [], [3, 3], [2, 2], [], [3, 3], [2, 2]]
    assert h["state"]["qualname"] == "Outer" and h["state"]["fields"] == ["count", "nested"]
    assert h["config"]["qualname"] == "ToyConfig" and h["config"]["fields"]["freq"] == 3
    assert len(h["sha256"]) == 64


def test_path_kept_as_given(tmp_path):
    path = tmp_path / "state.bin"                 # np.savez would append .npz to a str path; we do not
    save_toy(str(path))
    assert path.exists() and not (tmp_path / "state.bin.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.bin"]   # no temporary file left behind


# ---------------------------------------------------------------------------------------------------------
# damaged files

def _rewrite(path, mutate):
    """Rebuild the archive (a valid zip) after ``mutate(entries)``: what a consistent edit looks like."""
    with np.load(path, allow_pickle=False) as z:
        entries = {k: z[k] for k in z.files}
    mutate(entries)
    with open(path, "wb") as f:
        np.savez(f, **entries)


def _header(entries):
    return json.loads(bytes(entries["__header__"]).decode())


def _set_header(entries, h):
    entries["__header__"] = np.frombuffer(json.dumps(h).encode(), dtype=np.uint8)


def test_truncated_or_not_npz(tmp_path):
    path = tmp_path / "t.npz"
    save_toy(path)
    data = path.read_bytes()
    for cut in (0, 10, len(data) // 2, len(data) - 5):
        path.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated or corrupt"):
            state_io.load_state(path, trusted=TRUSTED)
    path.write_bytes(b"hello, not a zip")
    with pytest.raises(ValueError, match="not a readable krad_ref state file"):
        state_io.load_state(path, trusted=TRUSTED)
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(ValueError, match="not an npz archive"):
        state_io.load_state(path, trusted=TRUSTED)
    with open(path, "wb") as f:
        np.savez(f, a0=np.zeros(3))
    with pytest.raises(ValueError, match="no __header__"):
        state_io.load_state(path, trusted=TRUSTED)


def test_byte_flip_is_caught(tmp_path):
    path = tmp_path / "f.npz"
    save_toy(path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("a2.npy")
    # flip one byte inside a2's stored data (past the local header and the .npy header)
    pos = info.header_offset + 30 + len(info.filename) + len(info.extra) + info.file_size - 3
    data[pos] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt|sha256"):
        state_io.load_state(path, trusted=TRUSTED)


def test_tampered_values_hash(tmp_path):
    path = tmp_path / "h.npz"
    save_toy(path)

    def edit(e):
        a = e["a2"].copy()
        a[0, 1] = a[0, 1] + 1
        e["a2"] = a
    _rewrite(path, edit)
    with pytest.raises(ValueError, match="sha256 of the array bytes does not match"):
        state_io.load_state(path, trusted=TRUSTED)


@pytest.mark.parametrize("kind", ["shape", "dtype", "missing", "extra", "header_shape"])
def test_header_array_mismatch(tmp_path, kind):
    path = tmp_path / "m.npz"
    save_toy(path)

    def edit(e):
        if kind == "shape":
            e["a2"] = e["a2"][:, :2]
        elif kind == "dtype":
            e["a2"] = e["a2"].astype(np.float64)
        elif kind == "missing":
            del e["a3"]
        elif kind == "extra":
            e["a99"] = np.zeros(2)
        else:
            h = _header(e)
            h["arrays"][2]["shape"] = [9, 1]
            _set_header(e, h)
    _rewrite(path, edit)
    match = {"shape": r"array a2 is <f4 \(3, 2\) in the file but <f4 \(3, 3\)",
             "dtype": "array a2 is <f8", "missing": r"missing from the file: \['a3'\]",
             "extra": r"not listed in the header: \['a99'\]", "header_shape": r"\(9, 1\) in the header"}[kind]
    with pytest.raises(ValueError, match=match):
        state_io.load_state(path, trusted=TRUSTED)


def test_corrupt_header_and_version(tmp_path):
    path = tmp_path / "c.npz"
    save_toy(path)

    def bad_json(e):
        e["__header__"] = np.frombuffer(b"{not json", dtype=np.uint8)
    _rewrite(path, bad_json)
    with pytest.raises(ValueError, match="JSON header is corrupt"):
        state_io.load_state(path, trusted=TRUSTED)
    save_toy(path)

    def future(e):
        h = _header(e)
        h["format_version"] = 99
        _set_header(e, h)
    _rewrite(path, future)
    with pytest.raises(ValueError, match="format_version 99"):
        state_io.load_state(path, trusted=TRUSTED)


# ---------------------------------------------------------------------------------------------------------
# class lookup

def test_untrusted_modules_are_refused(tmp_path):
    path = tmp_path / "u.npz"
    save_toy(path)
    with pytest.raises(ValueError, match=f"refusing to load class {HERE}.ToyConfig"):
        state_io.load_state(path)                  # default trusted = ("krad_ref",)

    def evil(e):
        h = _header(e)
        h["config"]["module"], h["config"]["qualname"] = "os", "system"
        _set_header(e, h)
    _rewrite(path, evil)
    with pytest.raises(ValueError, match="refusing to load class os.system"):
        state_io.load_state(path, trusted=TRUSTED)


def test_class_field_drift(tmp_path):
    path = tmp_path / "d.npz"
    save_toy(path)

    def drift(e):
        h = _header(e)
        h["config"]["fields"]["renamed"] = h["config"]["fields"].pop("freq")
        h["state"]["fields"] = ["count", "stack"]
        _set_header(e, h)
    _rewrite(path, drift)
    with pytest.raises(ValueError, match="ToyConfig has fields"):
        state_io.load_state(path, trusted=TRUSTED)


def test_invalid_saved_config_is_revalidated(tmp_path):
    path = tmp_path / "v.npz"
    save_toy(path)

    def bad(e):
        h = _header(e)
        h["config"]["fields"]["freq"] = 0
        _set_header(e, h)
    _rewrite(path, bad)
    with pytest.raises(ValueError, match="rejected the saved fields: freq"):
        state_io.load_state(path, trusted=TRUSTED)


def test_unsaveable_inputs(tmp_path):
    class Local(NamedTuple):
        count: Any
    with pytest.raises(ValueError, match="inside a function"):
        state_io.save_state(tmp_path / "x.npz", Local(np.zeros((), np.int32)), ToyConfig())
    with pytest.raises(TypeError, match="state.extra"):
        state_io.save_state(tmp_path / "x.npz", ToyState(np.zeros((), np.int32), (), object()), ToyConfig())
    with pytest.raises(TypeError, match="config"):
        state_io.save_state(tmp_path / "x.npz", ToyState(np.zeros((), np.int32), (), None), {"a": 1})
    with pytest.raises(TypeError, match="config.maybe"):
        state_io.save_state(tmp_path / "x.npz", ToyState(np.zeros((), np.int32), (), None), ToyConfig(maybe=object()))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------
# the real algorithms and transforms

def _alg_or_skip(name):
    try:
        return algorithm.get(name)
    except (ValueError, ImportError) as exc:
        pytest.skip(f"algorithm {name!r} not importable yet: {exc}")


@pytest.mark.parametrize("name", algorithm.names())
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_algorithm_states_round_trip(tmp_path, xp, name, dtype):
    alg = _alg_or_skip(name)
    cfg = alg.Config()
    rng = np.random.default_rng(3)
    shape = (4, 3)
    W = xp.asarray(rng.standard_normal(shape).astype(dtype))
    state = alg.init(shape, cfg, dtype=getattr(xp, dtype), xp=xp)
    for _ in range(2):
        G = xp.asarray(rng.standard_normal(shape).astype(dtype))
        _, state = alg.update(G, state, cfg, params=W)
    path = tmp_path / f"{name}.npz"
    state_io.save_state(path, state, cfg)
    assert state_io.read_header(path)["algorithm"] == name
    got, got_cfg = state_io.load_state(path, xp=xp)
    assert got_cfg == cfg
    assert_same_tree(state, got)
    # the loaded state continues exactly as the original
    G = xp.asarray(rng.standard_normal(shape).astype(dtype))
    d1, s1 = alg.update(G, state, cfg, params=W)
    d2, s2 = alg.update(G, got, got_cfg, params=W)
    assert bits(d1) == bits(d2)
    assert_same_tree(s1, s2)


def test_transform_states_round_trip(tmp_path, xp):
    kstar = _alg_or_skip("kradagrad_star")
    kcfg = kstar.Config(variant="reference-code", matrix_eps=1e-6)
    t, cfg = T.shampoo_driver(kstar, kcfg, block_size=4, start=2, weight_decay=1e-3)
    rng = np.random.default_rng(5)
    shape = (6, 3, 1)
    W = xp.asarray(rng.standard_normal(shape))
    state = t.init(shape, cfg, xp=xp)
    for _ in range(3):
        _, state = t.update(xp.asarray(rng.standard_normal(shape)), state, cfg, params=W)
    path = tmp_path / "driver.npz"
    state_io.save_state(path, state, cfg)
    assert state_io.read_header(path)["algorithm"] is None      # transforms are not algorithm ids
    got, got_cfg = state_io.load_state(path, xp=xp)
    assert got_cfg == cfg and isinstance(got.post, tuple) and not hasattr(got.post, "_fields")
    assert_same_tree(state, got)
    G = xp.asarray(rng.standard_normal(shape))
    d1, _ = t.update(G, state, cfg, params=W)
    d2, _ = t.update(G, got, got_cfg, params=W)
    assert bits(d1) == bits(d2)
    state_io.save_state(path, state, cfg, algorithm="shampoo_driver(kradagrad_star)")
    assert state_io.read_header(path)["algorithm"] == "shampoo_driver(kradagrad_star)"


def test_algorithm_id_must_match_config(tmp_path):
    alg = _alg_or_skip("sgd")
    cfg = alg.Config()
    state = alg.init((2,), cfg)
    path = tmp_path / "a.npz"
    state_io.save_state(path, state, cfg, algorithm="adam")
    with pytest.raises(ValueError, match="header's algorithm 'adam' uses Config"):
        state_io.load_state(path)
