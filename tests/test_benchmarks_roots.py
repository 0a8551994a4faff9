"""benchmarks/roots.py: the NumPy path runs and measures, and ``--backend cupy`` without a GPU says why it cannot.

Smoke tests of the script only (tiny sizes, one repeat); no figure is asserted, the machine is shared.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from krad_ref import backend

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "roots.py"


def _run(*args, timeout=120):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT)


def test_numpy_path_prints_every_method_against_eigh():
    pytest.importorskip("threadpoolctl", reason="benchmarks need threadpoolctl (pip install -e '.[bench]')")
    r = _run("--sizes", "24", "--dtypes", "float64", "--threads", "1", "--repeat", "1")
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("   24 float64")]
    assert len(rows) == 7, r.stdout  # the eigh baseline and six root methods
    assert "backend.eigh (baseline)" in rows[0]
    # float64 eigh-based roots of a kappa = 1e4 matrix against a float64 eigh reference: at the reference's own
    # resolution, n u kappa |p| ~ 24 * 1.1e-16 * 1e4 / 4 = 7e-12; 1e-9 leaves room for the BLAS's summation order
    eigh_rows = [line for line in rows if "[eigh]" in line]
    assert len(eigh_rows) == 2
    for line in eigh_rows:
        assert float(line.split()[-1]) < 1e-9, line


@pytest.mark.skipif(backend.available("cupy"), reason="CuPy and a GPU are present: the message path cannot run")
def test_cupy_backend_without_a_gpu_exits_2_with_the_reason():
    r = _run("--backend", "cupy", "--sizes", "24", timeout=60)
    assert r.returncode == 2
    assert "--backend cupy" in r.stderr and "unavailable" in r.stderr and "pip install" in r.stderr
    assert r.stdout == ""
