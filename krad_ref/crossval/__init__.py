"""Cross-validation toolkit: golden vectors (``format``), the tolerance model (``tolerance``) and the harness.

Errata 17: this package only loads, compares and reports; it never imports mpmath or hypothesis at import
time, and never imports proofs_check. Golden vectors are *generated* by ``proofs_check.golden`` (mpmath twins:
``python -m proofs_check golden --out DIR``).

Public API (golden vectors and tolerances):
  format.load(path) -> GoldenCase              (.json or .npz; validated; GoldenFormatError on bad input)
  format.loads(text) / format.from_document(doc)
  format.dump(case, directory) -> (json_path, npz_path)   (byte-deterministic)
  format.shipped_paths() / format.load_shipped(names=None) -> list[GoldenCase]   (the set in golden/)
  format.make_config(case) -> the krad_ref Config instance
  format.quantities(algorithm_id, state, direction) -> {"factors", "roots", "direction"}   (float64 NumPy)
  format.replay(case, dtype="float64", xp=None) -> list of quantity dicts, one per step (krad_ref's own run)
  tolerance.step_tolerances(...), tolerance.rel_errors(expected, got), tolerance.compare(expected, got, tol)
"""
from __future__ import annotations

from . import format, tolerance  # noqa: A004 - module name chosen by the issue ("format")
from .format import GoldenCase, GoldenFormatError, GoldenStep, load, load_shipped, loads
from .tolerance import compare, rel_errors

__all__ = ["format", "tolerance", "GoldenCase", "GoldenStep", "GoldenFormatError", "load", "loads", "load_shipped",
           "compare", "rel_errors"]


def __getattr__(name: str):
    # the differential harness (krad_ref/crossval/harness.py) exposes ``check`` etc.; imported on first use
    if name in ("check", "harness"):
        import importlib

        harness = importlib.import_module(f"{__name__}.harness")
        return harness if name == "harness" else harness.check
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
