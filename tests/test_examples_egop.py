"""Smoke tests of examples/egop_convex.py and examples/egop_digits.py: the --quick runs write their PNG and tables,
and every number in the tables parses.

The quick runs are small (convex: d = 20, 150 iterations, 4 learning rates, 2 trials, a few seconds; digits:
M = 256 EGOP samples, 12 epochs, 2 trials, ~20 s) and their numbers are not compared with the paper here (the
full runs' job, reported in the README). matplotlib and scikit-learn are the optional ``examples`` extra: the PNG
check is skipped without matplotlib, and the digits run needs scikit-learn's copy of the data.
"""
from __future__ import annotations

import csv
import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONVEX = ROOT / "examples" / "egop_convex.py"
DIGITS = ROOT / "examples" / "egop_digits.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _run(args, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)


def _md_rows(md: str, header_start: str) -> list[list[str]]:
    """Cells of the Markdown table whose header line starts with ``header_start``."""
    lines = md.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[i + 2:]:
        if not line.startswith("| "):
            break
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def _check_png(path: Path, stderr: str):
    if _has("matplotlib"):
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 10_000
    else:
        assert not path.exists() and "matplotlib is not installed" in stderr


def test_egop_convex_quick(tmp_path):
    res = _run([CONVEX, "--quick", "--quiet", "--out", tmp_path])
    assert res.returncode == 0, res.stderr[-3000:]
    _check_png(tmp_path / "egop_convex.png", res.stderr)

    with open(tmp_path / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["objective"], r["optimizer"]) for r in rows} == {
        (o, k) for o in ("log_sum_exp", "logistic", "least_squares") for k in ("adagrad", "adam", "gd", "gd_momentum")}
    for r in rows:
        assert float(r["lr"]) > 0 and float(r["best_lr_reparam"]) > 0
        for key in ("original", "reparam", "reparam_at_own_best"):
            v = float(r[key])
            assert v >= 0 and not math.isnan(v)
        if r["optimizer"] in ("gd", "gd_momentum"):
            # GD is equivariant: the two coordinate systems agree up to float64 rounding of the rotation
            assert float(r["reparam"]) == pytest.approx(float(r["original"]), rel=1e-6, abs=1e-12)

    md = (tmp_path / "results.md").read_text()
    table = _md_rows(md, "| objective | optimizer |")
    assert len(table) == 12
    for cells in table:
        float(cells[2].split()[0]), float(cells[3]), float(cells[4]), float(cells[5])
    assert len(_md_rows(md, "| objective | stable rank |")) == 3
    assert "Findings of the paper" in md and "(c) least squares: reparameterization improves Adam:" in md

    with open(tmp_path / "sweep.csv", newline="") as fh:
        sweep = list(csv.DictReader(fh))
    assert len(sweep) == 3 * 4 * 2 * 4
    for r in sweep:
        float(r["lr"]), float(r["median_final_suboptimality"])
    with open(tmp_path / "egop.csv", newline="") as fh:
        diag = list(csv.DictReader(fh))
    assert len(diag) == 3 * 2
    for r in diag:
        assert 1.0 <= float(r["stable_rank"]) <= float(r["d"])
        assert 0 < float(r["beta"]) <= 1


@pytest.mark.skipif(not _has("sklearn"), reason="scikit-learn not installed (the digits data): "
                                                "pip install -e '.[examples]'")
def test_egop_digits_quick(tmp_path):
    res = _run([DIGITS, "--quick", "--quiet", "--out", tmp_path], timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    _check_png(tmp_path / "egop_digits.png", res.stderr)

    with open(tmp_path / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["optimizer"], r["coordinates"]) for r in rows} == {
        (k, c) for k in ("adam", "adagrad") for c in ("original", "reparam")}
    for r in rows:
        assert float(r["lr"]) > 0
        assert 0 < float(r["final_train_loss"]) < math.log(10) * 10
        assert 0 <= float(r["test_acc"]) <= 1 and 0 <= float(r["max_val_acc"]) <= 1
        assert int(r["diverged"]) == 0

    md = (tmp_path / "results.md").read_text()
    table = _md_rows(md, "| optimizer | coordinates |")
    assert len(table) == 4
    for cells in table:
        float(cells[2]), float(cells[3]), float(cells[5]), float(cells[7])
    blocks = _md_rows(md, "| block | d_j |")
    assert [int(c[1]) for c in blocks] == [2048, 320]
    assert "Findings of the paper" in md

    with open(tmp_path / "curves.csv", newline="") as fh:
        curves = list(csv.DictReader(fh))
    assert len(curves) == 13  # epochs 0..12
    for r in curves:
        for k, v in r.items():
            float(v)
