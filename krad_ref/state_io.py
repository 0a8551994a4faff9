"""Save and load optimizer states with the Config that produced them: npz arrays plus a JSON header.

File format (version 1). An uncompressed ``.npz`` (zip) archive holding the state's arrays as ``a0, a1, ...`` (in
the order a depth-first walk of the state meets them) and one more entry, ``__header__``: the UTF-8 bytes of a
JSON object (as a uint8 array)::

    format            "krad_ref.state"          format_version  1
    krad_ref_version  krad_ref.__version__ at save time (informational)
    algorithm         the algorithm id (``save_state(..., algorithm=)``, else inferred from the registered
                      algorithms whose Config class is the config's; null when there is none, e.g. a transform)
    dtype             the dtype of the state's floating arrays ("float32", ...; "mixed"; null if none)
    arrays            [{"key", "dtype" (NumPy dtype.str, e.g. "<f4"), "shape"}, ...]
    config            {"module", "qualname", "fields": {name: value}}  (a frozen dataclass; nested dataclasses,
                      tuples, lists, dicts, dtypes and None are tagged: {"__dataclass__": ...}, {"__tuple__": [...]},
                      {"__dtype__": "float32"}, ...; floats are JSON numbers, which Python round-trips exactly)
    state             the state's tree: {"t": "namedtuple", "module", "qualname", "fields", "items"},
                      {"t": "tuple"|"list", "items"}, {"t": "array", "key"}, {"t": "none"},
                      {"t": "py", "value"} (Python bool/int/str; floats as {"t": "float", "hex"})
    sha256            hex digest over every array, in order: key, NUL, dtype.str, NUL, shape, NUL, raw C-order
                      bytes (so values, dtypes, shapes and order are all covered; the header text is not)

Guarantees. The round trip is bit-exact (NaN payloads and signed zeros included) for NamedTuple states with nested
tuples of arrays (order-p factor lists) and 0-d counters. A file that is truncated or not an npz archive, whose
header and arrays disagree (missing/extra array, dtype or shape), or whose arrays were altered (hash), raises a
``ValueError`` naming the problem. The zip container's own CRC catches most byte-level corruption first; the hash
catches arrays rewritten consistently (a valid archive with other values).

Host copies. ``save_state`` moves each array to the host with ``backend.to_numpy`` (the only host copy, STYLE S4);
``load_state`` returns NumPy arrays unless ``xp=`` names a namespace to move them to (``xp.asarray``, e.g. CuPy
puts them on the current device). Config fields that hold dtypes are restored in the same namespace.

Security. Classes (state NamedTuples, Config dataclasses) are looked up by module and qualified name from the
header, and only in modules under ``trusted`` (default: ``krad_ref`` and its submodules); any other module is
refused BEFORE it is imported. Arrays are read with ``allow_pickle=False``. The hash detects accidents and naive
edits, not an adversary (who can recompute it).
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
import os
import tempfile
import zipfile

import numpy as np

from . import __version__
from . import algorithm as _algorithm
from . import backend

__all__ = ["save_state", "load_state", "read_header", "FORMAT", "FORMAT_VERSION", "TRUSTED"]

FORMAT = "krad_ref.state"
FORMAT_VERSION = 1
HEADER_KEY = "__header__"
#: module prefixes whose classes load_state may import by default
TRUSTED = ("krad_ref",)

_DTYPE_NAMES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                "float16", "float32", "float64", "complex64", "complex128")


# ---------------------------------------------------------------------------------------------------------
# encoding

def _class_ref(cls, what: str) -> dict:
    module, qualname = cls.__module__, cls.__qualname__
    if "<locals>" in qualname:
        raise ValueError(f"{what}: class {qualname} is defined inside a function and cannot be looked up on load; "
                         f"define it at module level")
    return {"module": module, "qualname": qualname}


def _is_array(x) -> bool:
    if isinstance(x, (bool, int, float, complex, str, bytes)) or x is None:
        return False
    if isinstance(x, (np.ndarray, np.generic)):
        return True
    return hasattr(x, "__array_namespace__") or hasattr(x, "__dlpack__")


def _encode_state(x, arrays: list, where: str) -> dict:
    if _is_array(x):
        a = np.asarray(backend.to_numpy(x))  # the only host copy (np.asarray: a NumPy scalar -> 0-d array)
        if a.dtype.hasobject or a.dtype.kind not in "biufc":
            raise TypeError(f"{where}: cannot save an array of dtype {a.dtype}")
        key = f"a{len(arrays)}"
        arrays.append((key, a))
        return {"t": "array", "key": key}
    if x is None:
        return {"t": "none"}
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return {"t": "namedtuple", **_class_ref(type(x), where), "fields": list(x._fields),
                "items": [_encode_state(v, arrays, f"{where}.{f}") for f, v in zip(x._fields, x)]}
    if isinstance(x, (tuple, list)):
        return {"t": "tuple" if isinstance(x, tuple) else "list",
                "items": [_encode_state(v, arrays, f"{where}[{i}]") for i, v in enumerate(x)]}
    if isinstance(x, float):
        return {"t": "float", "hex": float.hex(x)}
    if isinstance(x, (bool, int, str)):
        return {"t": "py", "value": x}
    raise TypeError(f"{where}: cannot save an object of type {type(x).__name__} in a state "
                    f"(expected arrays, NamedTuples, tuples, None or Python scalars)")


def _dtype_name_of(v) -> str | None:
    """The dtype name when ``v`` is a dtype object of some array library, else None."""
    if isinstance(v, (bool, int, float, str, tuple, list, dict)) or v is None or dataclasses.is_dataclass(v):
        return None
    if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
        return np.dtype(v).name
    mod = type(v).__module__
    if mod.split(".")[0] in ("array_api_strict", "cupy", "numpy", "torch"):
        name = backend.dtype_name(v)
        if name in _DTYPE_NAMES:
            return name
    return None


def _encode_value(v, where: str):
    if v is None or isinstance(v, (bool, int, str)):
        return v
    if isinstance(v, float):
        return v  # json writes repr(v), which round-trips exactly (and NaN/Infinity as JSON extensions)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {"__dataclass__": _encode_config(v, where)}
    if isinstance(v, tuple) and not hasattr(v, "_fields"):
        return {"__tuple__": [_encode_value(x, f"{where}[{i}]") for i, x in enumerate(v)]}
    if isinstance(v, list):
        return {"__list__": [_encode_value(x, f"{where}[{i}]") for i, x in enumerate(v)]}
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise TypeError(f"{where}: only dicts with str keys can be saved")
        return {"__dict__": {k: _encode_value(x, f"{where}[{k!r}]") for k, x in v.items()}}
    name = _dtype_name_of(v)
    if name is not None:
        return {"__dtype__": name}
    raise TypeError(f"{where}: cannot save a config value of type {type(v).__name__}")


def _encode_config(config, where: str = "config") -> dict:
    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        raise TypeError(f"{where}: expected a dataclass instance (an algorithm's Config), got {type(config).__name__}")
    fields = {f.name: _encode_value(getattr(config, f.name), f"{where}.{f.name}")
              for f in dataclasses.fields(config) if f.init}
    return {**_class_ref(type(config), where), "fields": fields}


def _hash_arrays(items) -> str:
    h = hashlib.sha256()
    for key, a in items:
        a = np.ascontiguousarray(a)
        h.update(key.encode() + b"\0" + a.dtype.str.encode() + b"\0" + repr(tuple(a.shape)).encode() + b"\0")
        h.update(a.tobytes(order="C"))
    return h.hexdigest()


def _infer_algorithm(config) -> str | None:
    # the config's module was imported (its class exists), so its algorithms registered themselves
    registry = _algorithm.registered()
    matches = sorted(name for name, alg in registry.items() if alg.Config is type(config))
    if len(matches) > 1:
        raise ValueError(f"algorithm: config class {type(config).__qualname__} is shared by {matches}; "
                         f"pass algorithm= to save_state")
    return matches[0] if matches else None


def save_state(path, state, config, *, algorithm: str | None = None) -> None:
    """Write ``state`` and its ``config`` to ``path`` (npz + JSON header; see the module docstring).

    References:
      DESIGN.md ("state_io.py"); issue 3 item 8; STYLE O1 ("Don't copy": a saved state must say what produced
      it).

    Args:
      path: file path (str or os.PathLike); written atomically (temporary file + rename). No suffix is added.
      state: an optimizer or transform state: NamedTuples / tuples of arrays of any backend (0-d counters
        included), None, Python scalars.
      config: the frozen dataclass Config used with the state (nested Configs allowed).
      algorithm: the algorithm id to record; default: inferred from the registered algorithm whose Config
        class is ``type(config)`` (null when none, e.g. for transforms).

    Raises:
      TypeError: an object that cannot be saved (names where it sits in the state or config).
      ValueError: a class defined inside a function (cannot be looked up on load); an ambiguous algorithm.
    """
    if algorithm is None:
        algorithm = _infer_algorithm(config)
    elif not isinstance(algorithm, str):
        raise TypeError(f"algorithm: expected a str id, got {type(algorithm).__name__}")
    arrays: list = []
    tree = _encode_state(state, arrays, "state")
    cfg = _encode_config(config)
    floats = sorted({a.dtype.name for _, a in arrays if a.dtype.kind == "f"})
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "krad_ref_version": __version__,
        "algorithm": algorithm,
        "dtype": floats[0] if len(floats) == 1 else ("mixed" if floats else None),
        "arrays": [{"key": k, "dtype": a.dtype.str, "shape": list(a.shape)} for k, a in arrays],
        "config": cfg,
        "state": tree,
        "sha256": _hash_arrays(arrays),
    }
    raw = json.dumps(header, allow_nan=True, sort_keys=False).encode("utf-8")
    payload = {HEADER_KEY: np.frombuffer(raw, dtype=np.uint8), **{k: a for k, a in arrays}}
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".krad_state_", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ---------------------------------------------------------------------------------------------------------
# decoding

def _read(path):
    """(header dict, {key: ndarray}) with the archive-level checks; ValueError for anything unreadable."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, not a state file") from None
    try:
        z = np.load(io.BytesIO(data), allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an npz archive")
        with z:
            names = list(z.files)
            if HEADER_KEY not in names:
                raise ValueError(f"no {HEADER_KEY} entry (not written by save_state)")
            raw = z[HEADER_KEY]
            arrays = {k: z[k] for k in names if k != HEADER_KEY}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zipfile.LargeZipFile) as exc:
        raise ValueError(f"{path}: not a readable krad_ref state file (truncated or corrupt npz archive: "
                         f"{type(exc).__name__}: {exc})") from None
    try:
        header = json.loads(bytes(raw.astype(np.uint8)).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: the JSON header is corrupt ({exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path}: not a krad_ref state file (header format {header.get('format')!r} "
                         f"!= {FORMAT!r})" if isinstance(header, dict) else f"{path}: the header is not an object")
    version = header.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ValueError(f"{path}: unsupported state format_version {version!r} (this krad_ref reads "
                         f"1..{FORMAT_VERSION})")
    for key in ("arrays", "config", "state", "sha256"):
        if key not in header:
            raise ValueError(f"{path}: the header lacks {key!r}")
    return header, arrays


def _check_arrays(path, header, arrays):
    listed = header["arrays"]
    try:
        keys = [str(e["key"]) for e in listed]
        [(str(e["dtype"]), list(e["shape"])) for e in listed]
    except (KeyError, TypeError) as exc:
        raise ValueError(f"{path}: malformed 'arrays' list in the header ({type(exc).__name__}: {exc})") from None
    missing = [k for k in keys if k not in arrays]
    extra = sorted(set(arrays) - set(keys))
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"arrays listed in the header but missing from the file: {missing}")
        if extra:
            parts.append(f"arrays in the file not listed in the header: {extra}")
        raise ValueError(f"{path}: header and arrays do not match ({'; '.join(parts)})")
    for e in listed:
        a = arrays[e["key"]]
        if a.dtype.str != e["dtype"] or list(a.shape) != list(e["shape"]):
            raise ValueError(f"{path}: header and arrays do not match: array {e['key']} is "
                             f"{a.dtype.str} {tuple(a.shape)} in the file but {e['dtype']} {tuple(e['shape'])} "
                             f"in the header")
    digest = _hash_arrays([(k, arrays[k]) for k in keys])
    if digest != header["sha256"]:
        raise ValueError(f"{path}: sha256 of the array bytes does not match the header (the arrays were altered "
                         f"after saving): {digest} != {header['sha256']}")


def _trusted(module: str, trusted) -> bool:
    return any(module == p or module.startswith(p + ".") for p in trusted)


def _lookup(ref: dict, trusted, where: str):
    module, qualname = ref.get("module"), ref.get("qualname")
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise ValueError(f"{where}: the header names no class")
    if not _trusted(module, trusted):
        raise ValueError(f"{where}: refusing to load class {module}.{qualname}: module {module!r} is not under "
                         f"the trusted prefixes {tuple(trusted)} (pass trusted= to allow it)")
    try:
        obj = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"{where}: class {module}.{qualname} named in the header is not available "
                         f"({exc})") from None
    if not isinstance(obj, type):
        raise ValueError(f"{where}: {module}.{qualname} is not a class")
    return obj


def _dtype_from_name(name: str, xp):
    if name not in _DTYPE_NAMES:
        raise ValueError(f"unknown dtype name {name!r} in the header")
    return getattr(xp, name) if xp is not None else np.dtype(name)


def _decode_value(v, trusted, xp, where):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, dict) and len(v) == 1:
        (tag, body), = v.items()
        if tag == "__dataclass__":
            return _decode_config(body, trusted, xp, where)
        if tag == "__tuple__":
            return tuple(_decode_value(x, trusted, xp, f"{where}[{i}]") for i, x in enumerate(body))
        if tag == "__list__":
            return [_decode_value(x, trusted, xp, f"{where}[{i}]") for i, x in enumerate(body)]
        if tag == "__dict__":
            return {k: _decode_value(x, trusted, xp, f"{where}[{k!r}]") for k, x in body.items()}
        if tag == "__dtype__":
            return _dtype_from_name(body, xp)
    raise ValueError(f"{where}: unrecognised config value {v!r} in the header")


def _decode_config(enc, trusted, xp, where="config"):
    if not isinstance(enc, dict) or "fields" not in enc:
        raise ValueError(f"{where}: malformed config entry in the header")
    cls = _lookup(enc, trusted, where)
    if not dataclasses.is_dataclass(cls):
        raise ValueError(f"{where}: {cls.__qualname__} is not a dataclass Config")
    want = [f.name for f in dataclasses.fields(cls) if f.init]
    have = list(enc["fields"])
    if sorted(want) != sorted(have):
        raise ValueError(f"{where}: {cls.__qualname__} has fields {want} but the file holds {have} "
                         f"(saved by another krad_ref version?)")
    kwargs = {k: _decode_value(v, trusted, xp, f"{where}.{k}") for k, v in enc["fields"].items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {cls.__qualname__} rejected the saved fields: {exc}") from exc


def _decode_state(node, arrays, trusted, xp, where, used):
    if not isinstance(node, dict) or "t" not in node:
        raise ValueError(f"{where}: malformed state entry in the header")
    t = node["t"]
    if t == "array":
        key = node.get("key")
        if key not in arrays:
            raise ValueError(f"{where}: the header refers to array {key!r}, which is not in the file")
        used.append(key)
        a = arrays[key]
        return a if xp is None else xp.asarray(a)
    if t == "none":
        return None
    if t == "py":
        return node["value"]
    if t == "float":
        return float.fromhex(node["hex"])
    if t in ("tuple", "list"):
        items = [_decode_state(v, arrays, trusted, xp, f"{where}[{i}]", used) for i, v in enumerate(node["items"])]
        return tuple(items) if t == "tuple" else items
    if t == "namedtuple":
        cls = _lookup(node, trusted, where)
        fields = list(getattr(cls, "_fields", ()))
        if not issubclass(cls, tuple) or not hasattr(cls, "_fields"):
            raise ValueError(f"{where}: {cls.__qualname__} is not a NamedTuple state class")
        if fields != list(node["fields"]):
            raise ValueError(f"{where}: {cls.__qualname__} has fields {fields} but the file holds "
                             f"{node['fields']} (saved by another krad_ref version?)")
        items = [_decode_state(v, arrays, trusted, xp, f"{where}.{f}", used) for f, v in zip(fields, node["items"])]
        if len(items) != len(fields):
            raise ValueError(f"{where}: {len(node['items'])} items for the {len(fields)} fields of {cls.__qualname__}")
        return cls(*items)
    raise ValueError(f"{where}: unknown state entry type {t!r} in the header")


def read_header(path) -> dict:
    """The parsed JSON header of a state file (archive-level checks only; arrays are not verified)."""
    return _read(path)[0]


def load_state(path, *, xp=None, trusted=TRUSTED):
    """Read a state file written by :func:`save_state`; return ``(state, config)``.

    References:
      DESIGN.md ("state_io.py"); issue 3 item 8.

    Args:
      path: file path.
      xp: optional array namespace to move the arrays to (``xp.asarray``); default: NumPy arrays, exactly as
        saved (dtype, shape, bytes). Config dtype fields are restored in ``xp`` (NumPy dtypes by default).
      trusted: module prefixes from which classes may be imported (default ``("krad_ref",)``); classes from
        any other module are refused before import.

    Returns:
      (state, config): the state rebuilt with its NamedTuple classes (tuples stay tuples), the Config rebuilt
      through its class (so ``__post_init__`` validates it again).

    Raises:
      ValueError: truncated / not an npz / corrupt header; header and arrays disagree (missing or extra array,
        dtype, shape); sha256 mismatch (altered arrays); an untrusted or unavailable class; class fields that
        differ from the file's; an algorithm id whose registered Config is not the file's config class.
    """
    if isinstance(trusted, str):
        trusted = (trusted,)
    trusted = tuple(trusted)
    path_s = os.fspath(path)
    header, arrays = _read(path_s)
    _check_arrays(path_s, header, arrays)
    config = _decode_config(header["config"], trusted, xp, "config")
    used: list = []
    state = _decode_state(header["state"], arrays, trusted, xp, "state", used)
    if sorted(used) != sorted(arrays):
        raise ValueError(f"{path_s}: header and arrays do not match: the state tree uses {sorted(used)}, the file "
                         f"holds {sorted(arrays)}")
    alg = header.get("algorithm")
    registry = _algorithm.registered()
    if isinstance(alg, str) and alg in registry and registry[alg].Config is not type(config):
        raise ValueError(f"{path_s}: the header's algorithm {alg!r} uses Config {registry[alg].Config.__qualname__}, "
                         f"but the file's config is a {type(config).__qualname__}")
    return state, config

