"""Smoke tests of the example and benchmark scripts: they run, write what they promise, and parse.

``examples/conditioning.py --quick`` runs the whole Sec. 5.1 pipeline on a small problem (n = 32, 60 steps,
6 learning rates: a few seconds); its numbers are not checked against the paper here (that is the full run's
job, reported in the README), only that every file is written and every number parses. matplotlib, tqdm and
threadpoolctl are optional extras, absent in CI: the tests check the no-matplotlib path too, and
``benchmarks/steps.py --help`` must work without threadpoolctl.
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
EXAMPLE = ROOT / "examples" / "conditioning.py"
BENCH = ROOT / "benchmarks" / "steps.py"
OPTIMIZERS = {"sgd", "adam", "shampoo32", "shampoo64", "shampoo32_root64", "kradagrad", "kradagrad_star"}


def _run(args, timeout=60):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _load_example(monkeypatch, name="_conditioning_example"):
    """Import examples/conditioning.py as a module (registered in sys.modules for its dataclasses)."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLE)
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, mod)
    spec.loader.exec_module(mod)
    return mod


def _check_tables(out: Path):
    """results.csv / results.md / sweep.csv / curves.csv exist and their numbers parse."""
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["id"] for r in rows} == OPTIMIZERS
    for r in rows:
        lr = float(r["best_lr"])
        assert lr > 0
        final = float(r["final_loss"])
        assert final >= 0 and not math.isnan(final)
        float(r["final_over_sgd"])
        assert float(r["min_loss"]) >= 0
        assert 0 <= int(r["diverged_lrs"]) <= int(r["n_lrs"]) == 6
    sgd = next(r for r in rows if r["id"] == "sgd")
    assert math.isfinite(float(sgd["final_loss"])) and float(sgd["final_over_sgd"]) == pytest.approx(1.0)

    md = (out / "results.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| optimizer")]
    assert len(table) == len(OPTIMIZERS)
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        float(cells[1]), float(cells[2]), float(cells[3]), float(cells[4])  # lr, final, / SGD, min: all parse
    assert "KrADagrad* float32 beats Shampoo float32:" in md
    assert "Shampoo float64 has the lowest final loss:" in md

    with open(out / "sweep.csv", newline="") as fh:
        sweep = list(csv.DictReader(fh))
    assert len(sweep) == 6 * len(OPTIMIZERS)
    for r in sweep:
        float(r["lr"]), float(r["final_loss"])
    with open(out / "curves.csv", newline="") as fh:
        curves = list(csv.DictReader(fh))
    assert len(curves) == 61  # loss before each of the 60 steps and after the last
    assert set(curves[0]) == {"step"} | OPTIMIZERS
    first = {float(v) for k, v in curves[0].items() if k != "step"}
    assert len(first) == 1  # every optimizer starts from the same X_0


def test_conditioning_quick(tmp_path):
    out = tmp_path / "cond"
    res = _run([EXAMPLE, "--quick", "--out", out])
    assert res.returncode == 0, res.stderr[-3000:]
    _check_tables(out)
    png = out / "conditioning.png"
    if _has("matplotlib"):
        assert png.stat().st_size > 10_000
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert not png.exists()
        assert "matplotlib is not installed" in res.stderr


def test_conditioning_without_matplotlib(tmp_path, monkeypatch, capsys):
    """matplotlib missing: the tables are written, a note is printed, nothing crashes."""
    mod = _load_example(monkeypatch)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    out = tmp_path / "nompl"
    assert mod.main(["--quick", "--quiet", "--out", str(out),
                     "--optimizers", "sgd", "shampoo32", "kradagrad_star", "--steps", "20", "--lrs", "1e-3", "1e-2"]
                    ) == 0
    assert not (out / "conditioning.png").exists()
    assert "matplotlib is not installed" in capsys.readouterr().err
    with open(out / "results.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["id"] for r in rows} == {"sgd", "shampoo32", "kradagrad_star"}
    for r in rows:
        float(r["final_loss"])


def test_conditioning_problem(monkeypatch):
    """A and B are symmetric PD with the requested condition number, and the gradient is 2 A X B."""
    import numpy as np

    mod = _load_example(monkeypatch)
    A, B = mod.make_problem(24, 6.0, 8.0)
    for M in (A, B):
        assert np.array_equal(M, M.T)
        w = np.linalg.eigvalsh(M)
        assert w[0] > 0 and w[-1] / w[0] == pytest.approx(1e6, rel=1e-3)
        assert np.abs(M - np.diag(np.diag(M))).max() > 1e-2  # not diagonal
    X = np.random.default_rng(0).standard_normal((24, 24)).astype(np.float32)
    f, G = mod.loss_and_grad(X, A, B)
    X64 = X.astype(np.float64)
    assert f == pytest.approx(np.trace(X64.T @ A @ X64 @ B), rel=1e-10)
    assert G.dtype == np.float32
    np.testing.assert_allclose(G, 2 * A @ X64 @ B, rtol=1e-5, atol=1e-5 * np.abs(G).max())


def test_steps_benchmark_help():
    res = _run([BENCH, "--help"], timeout=60)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "--sizes" in res.stdout and "--threads" in res.stdout and "--repeat" in res.stdout


@pytest.mark.skipif(not _has("threadpoolctl"), reason="threadpoolctl not installed (pip install -e '.[bench]')")
def test_steps_benchmark_tiny():
    """One tiny row per algorithm: the table prints with a parseable ratio and a verdict."""
    res = _run([BENCH, "--sizes", "16", "24", "--shapes", "--threads", "1", "--repeat", "1", "--freqs", "1", "3",
                "--warmup", "2"], timeout=60)
    assert res.returncode == 0, res.stderr[-3000:]
    lines = [ln for ln in res.stdout.splitlines() if ln.strip().startswith(("16x16", "24x24"))]
    assert len(lines) == 2 * 5 * 2
    for ln in lines:
        parts = ln.split()
        # ratio, then (with torch installed) the torch budget and step / torch budget, then the verdict
        assert float(parts[8]) > 0 and ("PASS" in parts[9:12] or "MISS" in parts[9:12])
    small = [ln.split() for ln in res.stdout.splitlines() if ln.strip().startswith("32x16")]
    assert [row[1] for row in small] == ["kradagrad_star", "shampoo32"]  # the default small-problem rows
    for row in small:  # update us, bare NumPy us, overhead us = their difference (rounded to 1 us each)
        assert float(row[2]) > 0 and float(row[3]) > 0 and abs(float(row[2]) - float(row[3]) - float(row[4])) <= 1


def test_steps_benchmark_cupy_backend_says_when_cupy_is_missing():
    pytest.importorskip("threadpoolctl")
    from krad_ref import backend

    if backend.available("cupy"):
        pytest.skip("CuPy and a GPU are present: the message is for machines without them")
    res = _run([BENCH, "--backend", "cupy", "--sizes", "16", "--shapes"], timeout=60)
    assert res.returncode == 2
    assert "--backend cupy needs CuPy and a usable GPU" in res.stderr
