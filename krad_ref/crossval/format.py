"""Golden-vector format v1: one JSON document per case (schema ``schema/golden-v1.json``) plus an .npz twin.

A *case* is (algorithm id, full config, initial state, gradient sequence); its document holds, for every step,
the expected state quantities, roots and direction computed by the mpmath twins (``proofs_check.golden``) and
rounded once to float64, with the tolerance each quantity must meet in float64 and in float32
(``krad_ref.crossval.tolerance``) and residuals an implementer can reproduce. This module only loads, writes,
validates and replays (errata 17: no mpmath, no hypothesis).

Document (JSON object, keys in this order; ``A`` = array, ``s`` = decimal string)::

    {"format": "krad_ref-golden", "version": 1,
     "case": "kradagrad_star/well_5x3",          # unique id, [a-z0-9_./-]
     "description": "...",
     "algorithm": "kradagrad_star",              # krad_ref.algorithm id
     "config": {...},                            # every field of the resolved krad_ref Config (JSON scalars)
     "shape": [5, 3],                            # parameter shape, order >= 1
     "dps": 50,                                  # mpmath digits of the twin
     "inputs": {"init": {"factors": [A, ...], "roots": [A, ...] | null}, "grads": [A, ...]},
     "steps": [{"count": 1,                      # updates taken after this step (k)
                "factors": [A, ...],             # state statistics (see ``quantities``)
                "roots": [A, ...] | null,        # cached roots the direction used (null: adagrad_diag); for
                                                 # adagrad_full (P,), P = (delta I + H)^(-1/2), not a state field
                "direction": A,                  # the gradient's shape
                "aux": {"t": [s | null, ...] | null, "mode": int | null},
                "residuals": {"roots": [s | null, ...] | null},
                "tolerance": {"float64": {"factors": [s, ...], "roots": [s, ...] | null, "direction": s},
                              "float32": {...}}}, ...]}

Arrays are nested lists (one level per axis, row-major as written) of decimal strings, each ``repr(float)`` of a
float64, so ``float(s)`` (or strtod) recovers the float64 exactly. Conventions: a matrix gradient G is m x n;
factor i belongs to mode i (matrix: L = mode 0, m x m; R = mode 1, n x n); AdaGrad-full's H acts on vec(G)
column-major. Every gradient and initial value is exactly representable in float32, so a float32 implementation
consumes exactly the same inputs (config scalars such as eps are rounded by the implementation itself).

Errors: each quantity is compared by its relative Frobenius error ``||x - X||_F / ||X||_F`` (``||x||_F`` when
X = 0), per mode for factors/roots; the tolerance lists are per mode too (see ``tolerance``).

The .npz twin (same stem) holds the same arrays as binary float64 under keys ``inputs/grads/<j>``,
``inputs/init/factors/<i>``, ``inputs/init/roots/<i>``, ``steps/<j>/factors/<i>``, ``steps/<j>/roots/<i>``,
``steps/<j>/direction``, plus ``__document__``: the JSON document's UTF-8 bytes (uint8), so the .npz alone is
complete; :func:`load` of an .npz checks that both agree bit for bit.

Both files are byte-deterministic, independent of the NumPy, Python and zlib versions that write them: the values
come from the mp twins (rounded once), JSON is printed with fixed separators and key order, and the .npz is a zip
of *stored* (uncompressed: deflate output differs between zlib implementations) entries with fixed metadata,
whose .npy headers are written here (:func:`npy_bytes`) rather than by ``numpy.lib.format``.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import re
import struct
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

FORMAT = "krad_ref-golden"
VERSION = 1
QUANTITIES = ("factors", "roots", "direction")
DTYPES = ("float64", "float32")
SCHEMA_PATH = Path(__file__).with_name("schema") / "golden-v1.json"
GOLDEN_DIR = Path(__file__).with_name("golden")
DECIMAL_RE = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$")

__all__ = ["FORMAT", "VERSION", "QUANTITIES", "DTYPES", "SCHEMA_PATH", "GOLDEN_DIR", "GoldenFormatError",
           "GoldenStep", "GoldenCase", "encode_float", "decode_float", "encode_array", "decode_array",
           "load_schema", "check_schema", "to_document", "to_json", "from_document", "loads", "load", "dump",
           "npz_bytes", "npy_bytes", "shipped_paths", "load_shipped", "make_config", "config_fields", "quantities",
           "replay"]


class GoldenFormatError(ValueError):
    """A golden document that does not follow format v1; the message starts with the JSON path ($.steps[2]...)."""


# ----------------------------------------------------------------------------------------------------------------
# data model

@dataclasses.dataclass(frozen=True)
class GoldenStep:
    """One step of a case: expected float64 quantities after update k = ``count``, tolerances and residuals.

    ``tolerance[dtype][q]``: a tuple of per-mode floats for ``q`` in ("factors", "roots") (roots: None when the
    algorithm has none) and a float for "direction". ``residuals["roots"]``: per-mode floats (or None) of the
    rounded expected roots (``proofs_check.golden`` documents each formula). ``aux``: ``{"t": per-mode t or
    None, "mode": the factor KrADagrad updated or None}``.
    """

    count: int
    factors: tuple
    roots: tuple | None
    direction: np.ndarray
    aux: dict
    residuals: dict
    tolerance: dict

    def expected(self) -> dict:
        """``{"factors": tuple, "roots": tuple | None, "direction": array}``: the input of ``tolerance.compare``."""
        return {"factors": self.factors, "roots": self.roots, "direction": self.direction}


@dataclasses.dataclass(frozen=True)
class GoldenCase:
    """A loaded golden case (arrays are float64 NumPy arrays, read-only)."""

    case_id: str
    description: str
    algorithm: str
    config: dict
    shape: tuple
    dps: int
    init: dict            # {"factors": tuple of arrays, "roots": tuple of arrays or None}
    grads: tuple          # float64 arrays of ``shape`` (exactly float32-representable)
    steps: tuple          # GoldenStep, one per gradient

    def tolerances(self, dtype: str = "float64") -> list[dict]:
        """Per step ``{"factors": (...), "roots": (...) | None, "direction": float}`` for ``dtype``."""
        if dtype not in DTYPES:
            raise ValueError(f"dtype: expected one of {DTYPES}, got {dtype!r}")
        return [s.tolerance[dtype] for s in self.steps]

    def expected(self) -> list[dict]:
        """Per step the expected quantities (``GoldenStep.expected``)."""
        return [s.expected() for s in self.steps]


# ----------------------------------------------------------------------------------------------------------------
# numbers and arrays

def encode_float(x: Any) -> str:
    """A float64 as its shortest round-tripping decimal string (``repr``); non-finite values raise."""
    v = float(x)
    if not math.isfinite(v):
        raise ValueError(f"golden values must be finite, got {v}")
    return repr(v)


def decode_float(s: Any, where: str = "$") -> float:
    """A decimal string (format v1) as float64; a clear GoldenFormatError otherwise."""
    if not isinstance(s, str) or not DECIMAL_RE.match(s):
        raise GoldenFormatError(f"{where}: expected a decimal string such as '0.125' or '-1e-06', got {s!r}")
    return float(s)


def encode_array(a: Any) -> Any:
    """A float array (order >= 0) as nested lists of decimal strings (0-d: one string), exact for float64."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 0:
        return encode_float(arr[()])
    if not np.all(np.isfinite(arr)):
        raise ValueError("golden arrays must be finite")
    return _nest(arr)


def _nest(arr: np.ndarray) -> list:
    if arr.ndim == 1:
        return [repr(float(v)) for v in arr.tolist()]
    return [_nest(sub) for sub in arr]


def decode_array(obj: Any, where: str = "$", *, ndim: int | None = None) -> np.ndarray:
    """Nested lists of decimal strings as a read-only float64 array; checks rectangularity (and ``ndim``)."""
    if isinstance(obj, str):
        out = np.array(decode_float(obj, where))
    else:
        shape = _shape_of(obj, where)
        flat: list[float] = []
        _flatten(obj, where, flat)
        out = np.array(flat, dtype=np.float64).reshape(shape)
    if ndim is not None and out.ndim != ndim:
        raise GoldenFormatError(f"{where}: expected an array of order {ndim}, got order {out.ndim}")
    out.setflags(write=False)
    return out


def _shape_of(obj: Any, where: str) -> tuple:
    shape = []
    cur = obj
    while isinstance(cur, list):
        shape.append(len(cur))
        if not cur:
            break
        cur = cur[0]
    if not shape:
        raise GoldenFormatError(f"{where}: expected an array (nested lists of decimal strings), got "
                                f"{type(obj).__name__}")
    return tuple(shape)


def _flatten(obj: Any, where: str, out: list, depth: int = 0, shape: tuple | None = None) -> None:
    shape = _shape_of(obj, where) if shape is None else shape
    if not isinstance(obj, list) or len(obj) != shape[depth]:
        raise GoldenFormatError(f"{where}: ragged array (expected {shape[depth]} entries on axis {depth})")
    last = depth == len(shape) - 1
    for i, item in enumerate(obj):
        if last:
            out.append(decode_float(item, f"{where}{'[' + str(i) + ']'}"))
        else:
            _flatten(item, f"{where}[{i}]", out, depth + 1, shape)


# ----------------------------------------------------------------------------------------------------------------
# schema (a small validator for the subset of JSON Schema the v1 schema uses; no new dependency)

def load_schema() -> dict:
    """The published JSON schema of format v1 (``krad_ref/crossval/schema/golden-v1.json``)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is_type(value: Any, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def check_schema(doc: Any, schema: Mapping | None = None, *, where: str = "$", root: Mapping | None = None) -> None:
    """Validate ``doc`` against ``schema`` (default: v1). Supported keywords: type, enum, const, pattern,
    minimum, minItems, maxItems, required, properties, additionalProperties (bool or schema), items, anyOf,
    $ref ("#/definitions/NAME"). Raises GoldenFormatError naming the JSON path."""
    schema = load_schema() if schema is None else schema
    root = schema if root is None else root
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        return check_schema(doc, root["definitions"][name], where=where, root=root)
    if "anyOf" in schema:
        errors = []
        for sub in schema["anyOf"]:
            try:
                check_schema(doc, sub, where=where, root=root)
                break
            except GoldenFormatError as exc:
                errors.append(str(exc))
        else:
            raise GoldenFormatError(f"{where}: matches none of the allowed forms: " + " | ".join(errors[:3]))
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(doc, t) for t in types):
            raise GoldenFormatError(f"{where}: expected {' or '.join(types)}, got {type(doc).__name__}")
    if "const" in schema and doc != schema["const"]:
        raise GoldenFormatError(f"{where}: expected {schema['const']!r}, got {doc!r}")
    if "enum" in schema and doc not in schema["enum"]:
        raise GoldenFormatError(f"{where}: expected one of {schema['enum']}, got {doc!r}")
    if isinstance(doc, str) and "pattern" in schema and not re.search(schema["pattern"], doc):
        raise GoldenFormatError(f"{where}: {doc!r} does not match {schema['pattern']!r}")
    if _is_type(doc, "number") and "minimum" in schema and doc < schema["minimum"]:
        raise GoldenFormatError(f"{where}: expected >= {schema['minimum']}, got {doc}")
    if isinstance(doc, list):
        if len(doc) < schema.get("minItems", 0):
            raise GoldenFormatError(f"{where}: expected at least {schema['minItems']} items, got {len(doc)}")
        if "maxItems" in schema and len(doc) > schema["maxItems"]:
            raise GoldenFormatError(f"{where}: expected at most {schema['maxItems']} items, got {len(doc)}")
        if "items" in schema:
            for i, item in enumerate(doc):
                check_schema(item, schema["items"], where=f"{where}[{i}]", root=root)
    if isinstance(doc, dict):
        for key in schema.get("required", ()):
            if key not in doc:
                raise GoldenFormatError(f"{where}: missing required key {key!r}")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, value in doc.items():
            if key in props:
                check_schema(value, props[key], where=f"{where}.{key}", root=root)
            elif extra is False:
                raise GoldenFormatError(f"{where}: unknown key {key!r} (allowed: {sorted(props)})")
            elif isinstance(extra, dict):
                check_schema(value, extra, where=f"{where}.{key}", root=root)
    return None


# ----------------------------------------------------------------------------------------------------------------
# document <-> GoldenCase

def _enc_tuple(arrs) -> list | None:
    return None if arrs is None else [encode_array(a) for a in arrs]


def _enc_opt(values) -> list | None:
    return None if values is None else [None if v is None else encode_float(v) for v in values]


def _enc_tol(tol: Mapping) -> dict:
    out = {}
    for dt in DTYPES:
        t = tol[dt]
        out[dt] = {"factors": [encode_float(v) for v in t["factors"]],
                   "roots": None if t["roots"] is None else [encode_float(v) for v in t["roots"]],
                   "direction": encode_float(t["direction"])}
    return out


def to_document(case: GoldenCase) -> dict:
    """The JSON document (a dict with keys in the documented order) of ``case``."""
    steps = []
    for s in case.steps:
        steps.append({
            "count": int(s.count),
            "factors": _enc_tuple(s.factors),
            "roots": _enc_tuple(s.roots),
            "direction": encode_array(s.direction),
            "aux": {"t": _enc_opt(s.aux.get("t")), "mode": s.aux.get("mode")},
            "residuals": {"roots": _enc_opt(s.residuals.get("roots"))},
            "tolerance": _enc_tol(s.tolerance),
        })
    return {
        "format": FORMAT,
        "version": VERSION,
        "case": case.case_id,
        "description": case.description,
        "algorithm": case.algorithm,
        "config": dict(case.config),
        "shape": [int(d) for d in case.shape],
        "dps": int(case.dps),
        "inputs": {"init": {"factors": _enc_tuple(case.init["factors"]), "roots": _enc_tuple(case.init["roots"])},
                   "grads": [encode_array(g) for g in case.grads]},
        "steps": steps,
    }


def to_json(case: GoldenCase) -> str:
    """The canonical JSON text of ``case``: one line per step and per gradient, trailing newline, ASCII.
    Deterministic (identical inputs give identical bytes)."""
    doc = to_document(case)
    enc = lambda x: json.dumps(x, separators=(",", ":"), ensure_ascii=True)  # noqa: E731
    head = {k: v for k, v in doc.items() if k not in ("inputs", "steps")}
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"{enc(k)}:{enc(v)},")
    lines.append('"inputs":{"init":' + enc(doc["inputs"]["init"]) + ',"grads":[')
    grads = doc["inputs"]["grads"]
    lines += [enc(g) + ("," if i < len(grads) - 1 else "") for i, g in enumerate(grads)]
    lines.append("]},")
    lines.append('"steps":[')
    steps = doc["steps"]
    lines += [enc(s) + ("," if i < len(steps) - 1 else "") for i, s in enumerate(steps)]
    lines.append("]}")
    return "\n".join(lines) + "\n"


def _dec_tuple(obj, where, ndim=None):
    return None if obj is None else tuple(decode_array(a, f"{where}[{i}]", ndim=ndim) for i, a in enumerate(obj))


def _dec_opt(obj, where):
    return None if obj is None else tuple(None if v is None else decode_float(v, f"{where}[{i}]")
                                          for i, v in enumerate(obj))


def from_document(doc: Any) -> GoldenCase:
    """Validate a parsed JSON document (schema, then shapes and consistency) and build the GoldenCase."""
    if not isinstance(doc, dict):
        raise GoldenFormatError(f"$: expected a JSON object, got {type(doc).__name__}")
    if doc.get("format") != FORMAT:
        raise GoldenFormatError(f"$.format: expected {FORMAT!r}, got {doc.get('format')!r} (not a golden document)")
    if doc.get("version") != VERSION:
        raise GoldenFormatError(f"$.version: this krad_ref reads version {VERSION}, got {doc.get('version')!r}")
    check_schema(doc)
    shape = tuple(doc["shape"])
    grads = tuple(decode_array(g, f"$.inputs.grads[{j}]") for j, g in enumerate(doc["inputs"]["grads"]))
    for j, g in enumerate(grads):
        if g.shape != shape:
            raise GoldenFormatError(f"$.inputs.grads[{j}]: shape {g.shape} does not match $.shape {list(shape)}")
    if len(doc["steps"]) != len(grads):
        raise GoldenFormatError(f"$.steps: {len(doc['steps'])} steps for {len(grads)} gradients")
    init = {"factors": _dec_tuple(doc["inputs"]["init"]["factors"], "$.inputs.init.factors"),
            "roots": _dec_tuple(doc["inputs"]["init"]["roots"], "$.inputs.init.roots")}
    fshapes = tuple(f.shape for f in init["factors"])
    steps = []
    for j, s in enumerate(doc["steps"]):
        w = f"$.steps[{j}]"
        factors = _dec_tuple(s["factors"], f"{w}.factors")
        roots = _dec_tuple(s["roots"], f"{w}.roots")
        direction = decode_array(s["direction"], f"{w}.direction")
        if tuple(f.shape for f in factors) != fshapes:
            raise GoldenFormatError(f"{w}.factors: shapes {[f.shape for f in factors]} differ from the initial "
                                    f"state's {list(fshapes)}")
        if roots is not None and len(roots) != len(factors) and len(roots) != 1:
            raise GoldenFormatError(f"{w}.roots: {len(roots)} roots for {len(factors)} factors")
        if direction.shape != shape:
            raise GoldenFormatError(f"{w}.direction: shape {direction.shape} does not match $.shape {list(shape)}")
        if s["count"] != j + 1:
            raise GoldenFormatError(f"{w}.count: expected {j + 1}, got {s['count']}")
        tol = {}
        for dt in DTYPES:
            t = s["tolerance"][dt]
            tf = _dec_opt(t["factors"], f"{w}.tolerance.{dt}.factors")
            tr = _dec_opt(t["roots"], f"{w}.tolerance.{dt}.roots")
            if len(tf) != len(factors) or (tr is None) != (roots is None) or (tr is not None and len(tr) != len(roots)):
                raise GoldenFormatError(f"{w}.tolerance.{dt}: one tolerance per factor and per root expected")
            tol[dt] = {"factors": tf, "roots": tr, "direction": decode_float(t["direction"], f"{w}.tolerance.{dt}")}
        aux = {"t": _dec_opt(s["aux"]["t"], f"{w}.aux.t"), "mode": s["aux"]["mode"]}
        residuals = {"roots": _dec_opt(s["residuals"]["roots"], f"{w}.residuals.roots")}
        steps.append(GoldenStep(s["count"], factors, roots, direction, aux, residuals, tol))
    return GoldenCase(doc["case"], doc["description"], doc["algorithm"], dict(doc["config"]), shape, doc["dps"],
                      init, grads, tuple(steps))


def loads(text: str | bytes) -> GoldenCase:
    """Parse and validate a JSON golden document."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise GoldenFormatError(f"$: not valid JSON ({exc})") from None
    return from_document(doc)


# ----------------------------------------------------------------------------------------------------------------
# files

def _array_items(case: GoldenCase) -> list[tuple[str, np.ndarray]]:
    items = [(f"inputs/grads/{j}", g) for j, g in enumerate(case.grads)]
    items += [(f"inputs/init/factors/{i}", f) for i, f in enumerate(case.init["factors"])]
    if case.init["roots"] is not None:
        items += [(f"inputs/init/roots/{i}", r) for i, r in enumerate(case.init["roots"])]
    for j, s in enumerate(case.steps):
        items += [(f"steps/{j}/factors/{i}", f) for i, f in enumerate(s.factors)]
        if s.roots is not None:
            items += [(f"steps/{j}/roots/{i}", r) for i, r in enumerate(s.roots)]
        items.append((f"steps/{j}/direction", s.direction))
    return items


_NPY_DESCR = {np.dtype(np.float64): "<f8", np.dtype(np.uint8): "|u1"}


def npy_bytes(arr: np.ndarray) -> bytes:
    """A float64 or uint8 array as .npy format 1.0 bytes, written here so that they do not depend on the NumPy
    version: the magic ``\\x93NUMPY``, version 1.0, the header length (uint16, little-endian), the header dict
    literal padded with spaces and a newline to a 64-byte boundary (the layout ``numpy.lib.format`` documents and
    ``np.load`` reads), then the C-order little-endian data."""
    arr = np.asarray(arr)
    if arr.dtype not in _NPY_DESCR:
        raise TypeError(f"arr: expected float64 or uint8, got {arr.dtype}")
    descr = _NPY_DESCR[arr.dtype]
    header = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, tuple(int(d) for d in arr.shape))
    header += " " * (-(10 + len(header) + 1) % 64) + "\n"
    data = np.ascontiguousarray(arr, dtype=np.dtype(descr)).tobytes()
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + data


def npz_bytes(case: GoldenCase, json_text: str | None = None) -> bytes:
    """The .npz twin of ``case`` as bytes (module docstring: stored entries in a fixed order with fixed time stamp,
    permissions and creator system, .npy bodies from :func:`npy_bytes`; ``np.load`` reads it)."""
    text = to_json(case) if json_text is None else json_text
    items = [("__document__", np.frombuffer(text.encode("utf-8"), dtype=np.uint8))]
    items += [(k, np.asarray(v, dtype=np.float64)) for k, v in _array_items(case)]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, arr in items:
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # Unix: ZipInfo's default depends on the writing platform
            info.external_attr = 0o644 << 16
            zf.writestr(info, npy_bytes(arr))
    return buf.getvalue()


def file_stem(case_id: str) -> str:
    """The file name stem of a case id ('/' becomes '__')."""
    return case_id.replace("/", "__")


def dump(case: GoldenCase, directory: str | Path) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.npz`` of ``case`` into ``directory`` (created); return both paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    text = to_json(case)
    jp, npp = d / f"{file_stem(case.case_id)}.json", d / f"{file_stem(case.case_id)}.npz"
    jp.write_bytes(text.encode("utf-8"))
    npp.write_bytes(npz_bytes(case, text))
    return jp, npp


def load(path: str | Path) -> GoldenCase:
    """Load and validate a golden case from its .json document or its .npz twin.

    An .npz is checked against the document it embeds: every binary array must equal the decoded decimal strings
    bit for bit (GoldenFormatError otherwise)."""
    p = Path(path)
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            if "__document__" not in z.files:
                raise GoldenFormatError(f"{p}: an .npz golden twin needs a '__document__' entry")
            case = loads(z["__document__"].tobytes().decode("utf-8"))
            for key, arr in _array_items(case):
                if key not in z.files:
                    raise GoldenFormatError(f"{p}: missing array {key!r}")
                got = z[key]
                if got.dtype != np.float64 or got.shape != arr.shape or not np.array_equal(
                        got.view(np.uint64), np.ascontiguousarray(arr).view(np.uint64)):
                    raise GoldenFormatError(f"{p}: array {key!r} differs from the embedded JSON document")
        return case
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise GoldenFormatError(f"{p}: cannot read ({exc})") from None
    try:
        return loads(text)
    except GoldenFormatError as exc:
        raise GoldenFormatError(f"{p}: {exc}") from None


def shipped_paths() -> list[Path]:
    """The .json documents of the curated set shipped in ``krad_ref/crossval/golden`` (sorted)."""
    return sorted(GOLDEN_DIR.glob("*.json"))


def load_shipped(names: Iterable[str] | None = None) -> list[GoldenCase]:
    """Load the shipped cases (all, or those whose case id or file stem is in ``names``)."""
    wanted = None if names is None else {file_stem(n) for n in names}
    return [load(p) for p in shipped_paths() if wanted is None or p.stem in wanted]


# ----------------------------------------------------------------------------------------------------------------
# krad_ref side: configs, state quantities and a replay of the reference

def config_fields(config: Any) -> dict:
    """A Config (resolved when it has ``resolved()``) as a JSON-ready dict of its fields (tuples become lists).

    A field marked ``algorithm.OMIT_WHEN_DEFAULT`` (added after format v1, its default being the behaviour from
    before) is left out while it holds its default: absent means default, so older vectors stay byte-identical.
    """
    from krad_ref import algorithm

    cfg = config.resolved() if callable(getattr(config, "resolved", None)) else config
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dict(f.metadata) == algorithm.OMIT_WHEN_DEFAULT and v == f.default:
            continue
        if isinstance(v, tuple):
            v = list(v)
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"config.{f.name}: non-finite value")
        out[f.name] = v
    return out


def make_config(case: GoldenCase | str, config: Mapping | None = None):
    """The krad_ref Config instance of a case (or of an algorithm id and a config dict)."""
    from krad_ref import algorithm

    alg_id, fields = (case.algorithm, case.config) if isinstance(case, GoldenCase) else (case, config)
    Config = algorithm.get(alg_id).Config
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    try:
        return Config(**kwargs)
    except TypeError as exc:
        raise GoldenFormatError(f"$.config: not a valid {alg_id} config ({exc})") from None


def _np64(x) -> np.ndarray:
    from krad_ref import backend

    return np.asarray(backend.to_numpy(x), dtype=np.float64)


def state_quantities(algorithm_id: str, state: Any) -> tuple:
    """``(factors, roots)`` of a krad_ref state as stored (no copy, no cast): the one map from each algorithm's
    state fields to the compared quantities.

    factors: KrADagrad*/KrADagrad ``state.factors`` (L_i), Shampoo ``state.stats``, AdaGrad full ``(H,)``,
    AdaGrad diag ``(v,)``, MBAG / MBAG-N ``(H,)`` and MBAG-EMA ``(G,)`` (the (groups, tau, tau) stack); roots:
    ``state.roots`` (MBAG, MBAG-EMA ``(state.root,)``; None for AdaGrad and MBAG-N, whose states keep no root).
    """
    if algorithm_id in ("kradagrad_star", "kradagrad"):
        return state.factors, state.roots
    if algorithm_id == "shampoo":
        return state.stats, state.roots
    if algorithm_id == "adagrad_full":
        return (state.H,), None
    if algorithm_id == "adagrad_diag":
        return (state.v,), None
    if algorithm_id == "mbag":
        return (state.H,), (state.root,)
    if algorithm_id == "mbag_ema":
        return (state.G,), (state.root,)
    if algorithm_id == "mbag_n":
        return (state.H,), None
    raise ValueError(f"algorithm_id: no golden quantities defined for {algorithm_id!r}")


def quantities(algorithm_id: str, state: Any, direction: Any) -> dict:
    """The compared quantities of a krad_ref state after a step, as float64 NumPy arrays (see
    :func:`state_quantities` for which state fields they are), plus the direction."""
    factors, roots = state_quantities(algorithm_id, state)
    return {"factors": tuple(_np64(f) for f in factors),
            "roots": None if roots is None else tuple(_np64(r) for r in roots),
            "direction": _np64(direction)}


def replay(case: GoldenCase, dtype: str = "float64", *, xp: Any = None) -> list[dict]:
    """Run krad_ref's own implementation on the case's gradients in ``dtype`` (namespace ``xp``, default NumPy):
    one ``quantities`` dict per step. The initial state comes from ``init`` with the case's config."""
    from krad_ref import algorithm, backend

    alg = algorithm.get(case.algorithm)
    cfg = make_config(case)
    xp = backend.get_namespace("numpy") if xp is None else xp
    state = alg.init(tuple(case.shape), cfg, dtype=dtype, xp=xp)
    out = []
    for g in case.grads:
        G = xp.asarray(np.asarray(g, dtype=dtype))
        direction, state = alg.update(G, state, cfg)
        out.append(quantities(case.algorithm, state, direction))
    return out


def initial_quantities(case: GoldenCase, dtype: str = "float64") -> dict:
    """krad_ref's initial state for the case as ``{"factors", "roots"}`` (compare with ``case.init``)."""
    from krad_ref import algorithm, backend

    alg = algorithm.get(case.algorithm)
    state = alg.init(tuple(case.shape), make_config(case), dtype=dtype, xp=backend.get_namespace("numpy"))
    q = quantities(case.algorithm, state, np.zeros(case.shape))
    return {"factors": q["factors"], "roots": q["roots"]}


