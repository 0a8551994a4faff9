"""Smoke test of examples/mbag.py: the --quick run writes its PNG and tables, and the tables are complete."""
from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(monkeypatch):
    spec = importlib.util.spec_from_file_location("examples_mbag", ROOT / "examples" / "mbag.py")
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "examples_mbag", mod)  # removed again after the test
    spec.loader.exec_module(mod)
    return mod


def test_quick_run_writes_png_and_tables(tmp_path, monkeypatch):
    ex = _load(monkeypatch)
    assert ex.main(["--quick", "--quiet", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "results.md").read_text()
    for label in ("AdaGrad (diagonal)", "Adam", "AdaGrad (full matrix)", "MBAG tau=16 (per output neuron)",
                  "MBAG tau=4", "MBAG-N tau=16", "MBAG-EMA tau=16"):
        assert f"| {label} |" in md
    assert "Findings" in md and "lies between the first-order methods" in md
    with open(tmp_path / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12
    for r in rows:
        assert float(r["final_excess"]) < float("inf")  # every optimizer has a finite best run
    with open(tmp_path / "sweep.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 12 * len(ex.QUICK["lrs"])
    pytest.importorskip("matplotlib")
    png = tmp_path / "mbag.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
