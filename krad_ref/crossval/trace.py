"""Trace files: what an implementation in any language consumed and produced, checked against krad_ref.

Format ``krad_ref-trace`` version 1: a JSON object, or JSON lines (the header object on the first line, then
one step object per line)::

    {"format": "krad_ref-trace", "version": 1,
     "implementation": "my-cuda-kradagrad 0.3",   # free text (optional)
     "algorithm": "kradagrad_star",              # krad_ref algorithm id
     "config": {"t_rule": "frobenius", ...},     # krad_ref Config fields (missing fields: krad_ref's defaults)
     "dtype": "float32",                         # the dtype the implementation computed in: float64 | float32
     "shape": [5, 3],                            # parameter shape
     "steps": [                                  # one object per update, in order (JSON lines: one per line)
        {"grad": A,                              # the gradient it consumed at this step (required)
         "direction": A,                         # the direction it produced (required)
         "factors": [A, ...],                    # optional: statistics after the step, one per mode (L, R, ...)
         "roots": [A, ...]}                      # optional: roots after the step
     ]}

``A`` is an array as nested lists (row-major, one level per axis) of JSON numbers or decimal strings
(``"0.1"``). Print float64 values with 17 significant digits (``%.17g``) so they round-trip exactly; float32
values with 9. Quantity conventions are those of the golden vectors (``krad_ref.crossval.format``): a matrix
gradient G is m x n, factor i belongs to mode i (L: m x m, R: n x n), AdaGrad-full's H acts on column-major
vec(G), Shampoo's factors are its statistics (``stats``).

``verify_trace(path)`` replays krad_ref's algorithm in float64 on the trace's gradients, derives the tolerances
of the trace's dtype (``tolerance.step_tolerances``) and compares every step: the result is a
``harness.CheckReport`` (one run, ``source`` = the file name; no shrinking, the input is fixed).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import format as gformat
from . import harness

FORMAT = "krad_ref-trace"
VERSION = 1

__all__ = ["FORMAT", "VERSION", "TraceFormatError", "load_trace", "write_trace", "verify_trace"]


class TraceFormatError(ValueError):
    """A trace file that does not follow the format (the message names the place)."""


def _array(obj: Any, where: str) -> np.ndarray:
    def conv(x):
        if isinstance(x, list):
            return [conv(v) for v in x]
        if isinstance(x, str):
            return gformat.decode_float(x, where)
        if isinstance(x, (int, float)) and not isinstance(x, bool):
            return float(x)
        raise TraceFormatError(f"{where}: expected numbers or decimal strings, got {type(x).__name__}")

    try:
        a = np.array(conv(obj), dtype=np.float64)
    except ValueError as exc:
        raise TraceFormatError(f"{where}: not a rectangular array ({exc})") from None
    return a


def _parse(text: str) -> dict:
    text = text.strip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    lines = [ln for ln in text.splitlines() if ln.strip()]
    try:
        objs = [json.loads(ln) for ln in lines]
    except json.JSONDecodeError as exc:
        raise TraceFormatError(f"not JSON nor JSON lines ({exc})") from None
    head = dict(objs[0])
    head["steps"] = list(head.get("steps", [])) + objs[1:]
    return head


def load_trace(path: str | Path) -> dict:
    """Read and validate a trace: ``{"algorithm", "config", "dtype", "shape", "implementation", "grads",
    "outputs"}`` with float64 NumPy arrays (outputs: per step {"direction", "factors", "roots"})."""
    p = Path(path)
    doc = _parse(p.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise TraceFormatError(f"{p}: $.format must be {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise TraceFormatError(f"{p}: $.version: this krad_ref reads version {VERSION}, got {doc.get('version')!r}")
    for key in ("algorithm", "dtype", "shape", "steps"):
        if key not in doc:
            raise TraceFormatError(f"{p}: missing $.{key}")
    if doc["dtype"] not in gformat.DTYPES:
        raise TraceFormatError(f"{p}: $.dtype must be one of {gformat.DTYPES}, got {doc['dtype']!r}")
    shape = tuple(int(d) for d in doc["shape"])
    grads, outs = [], []
    for j, st in enumerate(doc["steps"]):
        w = f"{p}: $.steps[{j}]"
        if "grad" not in st or "direction" not in st:
            raise TraceFormatError(f"{w}: 'grad' and 'direction' are required")
        g = _array(st["grad"], f"{w}.grad")
        d = _array(st["direction"], f"{w}.direction")
        if g.shape != shape or d.shape != shape:
            raise TraceFormatError(f"{w}: grad {g.shape} / direction {d.shape} do not match $.shape {list(shape)}")
        grads.append(g)
        outs.append({"direction": d,
                     "factors": None if st.get("factors") is None else
                     tuple(_array(a, f"{w}.factors[{i}]") for i, a in enumerate(st["factors"])),
                     "roots": None if st.get("roots") is None else
                     tuple(_array(a, f"{w}.roots[{i}]") for i, a in enumerate(st["roots"]))})
    if not grads:
        raise TraceFormatError(f"{p}: $.steps is empty")
    return {"algorithm": doc["algorithm"], "config": dict(doc.get("config") or {}), "dtype": doc["dtype"],
            "shape": shape, "implementation": doc.get("implementation", p.name), "grads": grads, "outputs": outs}


def write_trace(path: str | Path, algorithm: str, config: dict, dtype: str, grads, outputs,
                implementation: str = "", *, lines: bool = False) -> Path:
    """Write a trace (for tests and Python implementations); ``outputs``: per step a direction or a mapping."""
    def enc(a):
        return None if a is None else np.asarray(a, dtype=np.float64).tolist()

    steps = []
    for g, o in zip(grads, outputs):
        o = o if isinstance(o, dict) else {"direction": o}
        st = {"grad": enc(g), "direction": enc(o["direction"])}
        for q in ("factors", "roots"):
            if o.get(q) is not None:
                st[q] = [enc(a) for a in o[q]]
        steps.append(st)
    head = {"format": FORMAT, "version": VERSION, "implementation": implementation, "algorithm": algorithm,
            "config": config, "dtype": dtype, "shape": list(np.shape(grads[0]))}
    p = Path(path)
    if lines:
        p.write_text("\n".join(json.dumps(x) for x in [head, *steps]) + "\n", encoding="utf-8")
    else:
        p.write_text(json.dumps({**head, "steps": steps}), encoding="utf-8")
    return p


def verify_trace(path: str | Path) -> harness.CheckReport:
    """Check a trace file against krad_ref (module docstring); returns a ``harness.CheckReport``."""
    t0 = time.perf_counter()
    tr = load_trace(path)
    alg, dtype = tr["algorithm"], tr["dtype"]
    cfg = harness._resolve_config(alg, tr["config"])
    outs = tr["outputs"]

    def replay(grads, config, dtype="float64"):  # a step callable returning the recorded outputs
        return dict(outs[len(grads) - 1])

    replay.name = f"trace {Path(path).name} ({tr['implementation']})"
    run = harness._run_one(replay, alg, cfg, tr["shape"], tr["grads"], "float64", f"trace:{Path(path).name}",
                           *_expected(alg, cfg, tr, dtype))
    return harness.CheckReport(replay.name, alg, dtype, gformat.config_fields(cfg), [run],
                               harness._aggregate([run]), None, None, time.perf_counter() - t0)


def _expected(alg, cfg, tr, dtype):
    steps = harness.reference_run(alg, cfg, tr["shape"], tr["grads"])
    return steps, harness.reference_tolerances(alg, cfg, tr["shape"], steps, tr["grads"], dtype)
