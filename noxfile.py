"""The tested version matrix (README "Supported versions"): nox sessions, each in its own uv-built environment.

    tests-floor   the oldest Python the project supports (3.10) with every direct dependency at the floor
                  pyproject.toml declares (uv's ``--resolution lowest-direct``): numpy, scipy, mpmath,
                  hypothesis, array-api-compat, array-api-extra, pytest, pytest-xdist, array-api-strict, and
                  the extras examples, distributed, bench (``FLOOR_EXTRA_TESTS`` run on top).
    tests-latest  the newest Python found (3.13) with the newest release of everything.

Both run ``MATRIX_TESTS`` (the version-sensitive part of the suite, chosen to keep ``.ci/run`` under 10 minutes
on 2 cores); ``nox -s tests-floor -- tests`` runs the whole suite instead (arguments after ``--`` replace the
selection). An interpreter that is not installed skips its session with a note: nothing is downloaded
(``download_python = "never"``, ``UV_PYTHON_DOWNLOADS=never``).

Run from the repository root: ``.venv/bin/python -m pip install -q -e '.[matrix]' && .venv/bin/python -m nox``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import nox

nox.options.default_venv_backend = "uv"
nox.options.download_python = "never"
nox.options.error_on_missing_interpreters = False  # a newcomer's machine may only have one Python
nox.options.sessions = ["tests-floor", "tests-latest", "peers"]

FLOOR_PYTHON = "3.10"
LATEST_PYTHON = "3.13"

# What differs between versions: the mp ground truth and twins (mpmath 1.3's matrices), golden-vector regeneration,
# the numerical core (eigh drivers, NumPy 2.0's array-API namespace, array-api-compat/extra), state files, the
# optimizers and transforms, and the hypothesis strategies (hypothesis' own API). Each floor failure found so far
# shows up here. Left to the main environment: the claim search and runner, the MBAG and cross-validation harness
# tests, the examples and the campaigns (about 80 % of the summed test durations; consumers of the above, and of
# matplotlib/scikit-learn/dask, which these environments do not install).
MATRIX_TESTS = (
    "tests/test_mp.py", "tests/test_twins.py", "tests/test_golden.py", "tests/test_backend.py",
    "tests/test_validate.py", "tests/test_linalg.py", "tests/test_modes.py", "tests/test_state_io.py",
    "tests/test_krad.py", "tests/test_kradagrad.py", "tests/test_shampoo.py", "tests/test_adagrad.py",
    "tests/test_transforms.py", "tests/test_reference_step.py", "tests/test_strategies.py",
    "tests/test_certify.py", "tests/test_shampoo_conventions.py", "tests/test_state_validation.py",
)

# tests-floor also installs the optional extras at their floors (matplotlib, tqdm, scikit-learn, dask, threadpoolctl)
# and runs the tests that import them: the campaigns (dask.distributed), the smoke tests of an example and the
# benchmarks (matplotlib, tqdm, threadpoolctl) and the problems (scikit-learn's digits).
FLOOR_EXTRA_TESTS = ("tests/test_campaign.py", "tests/test_examples.py", "tests/test_benchmarks_roots.py",
                     "tests/test_problems.py")


def _runs_as(path: str, version: str) -> bool:
    """True when ``path`` starts and reports ``version`` (a pyenv shim of an inactive version does not)."""
    try:
        out = subprocess.run([path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30)
    except OSError:
        return False
    return out.returncode == 0 and out.stdout.strip() == version


def interpreter(version: str) -> str:
    """An installed interpreter of ``version`` ("3.10"): ``pythonX.Y`` on PATH, else a pyenv installation
    (``$PYENV_ROOT/versions/X.Y.*``, newest patch first). Returns the bare version when none is found, so that
    nox reports the session as skipped for a missing interpreter."""
    candidates = [shutil.which(f"python{version}")]
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += [str(p) for p in sorted(root.glob(f"versions/{version}.*/bin/python{version}"), reverse=True)]
    for c in candidates:
        if c and _runs_as(c, version):
            return c
    return version


def _run_tests(session: nox.Session, extra: tuple[str, ...] = (), base: tuple[str, ...] = MATRIX_TESTS) -> None:
    session.run("python", "-c", "import sys, numpy, scipy, mpmath, hypothesis, array_api_compat, array_api_extra; "
                "print('python', sys.version.split()[0], '| numpy', numpy.__version__, '| scipy', scipy.__version__, "
                "'| mpmath', mpmath.__version__, '| hypothesis', hypothesis.__version__, '| array-api-compat', "
                "array_api_compat.__version__, '| array-api-extra', array_api_extra.__version__)")
    args = session.posargs or [*base, *extra]
    session.run("python", "-m", "pytest", "-q", "-n", os.environ.get("MATRIX_WORKERS", "auto"), *args,
                env={"CI": "true"}, success_codes=[0, 5])


@nox.session(name="tests-floor", python=interpreter(FLOOR_PYTHON))
def tests_floor(session: nox.Session) -> None:
    """Python 3.10, every direct dependency (optional extras included) at its declared floor."""
    session.env["UV_PYTHON_DOWNLOADS"] = "never"
    session.install("--resolution", "lowest-direct", "-e", ".[test,examples,distributed,bench]")
    _run_tests(session, FLOOR_EXTRA_TESTS)


@nox.session(name="tests-latest", python=interpreter(LATEST_PYTHON))
def tests_latest(session: nox.Session) -> None:
    """The newest Python found, the newest release of every dependency."""
    session.env["UV_PYTHON_DOWNLOADS"] = "never"
    session.install("--resolution", "highest", "-e", ".[test]")
    _run_tests(session)


#: the published Shampoo implementations' tests (``.[peers]``: CPU torch 2.13.0 and the pinned libraries)
PEERS_TESTS = ("tests/test_crossval_peers.py", "tests/test_crossval_outcomes.py", "tests/test_mp.py")


@nox.session(name="peers", python=interpreter("3.11"), venv_backend="venv")
def peers(session: nox.Session) -> None:
    """The ``peers`` extra (README "Conformance of published implementations"): its tests, including the patched
    torch-optimizer reproduction, plus the mp tests under the mpmath 1.3.0 that torch's sympy pins.

    Built with pip, not uv: pip takes the CPU build of torch 2.13.0 that this project's machines keep on disk
    (and honours their pip constraints); uv would resolve a multi-GB CUDA build from the index instead. Python 3.11
    because that is the build on disk.
    """
    session.install("-e", ".[test,peers]")
    _run_tests(session, base=PEERS_TESTS)


#: the mutation tool and version the README's mutation score was measured with (``[tool.mutmut]`` in pyproject.toml)
MUTMUT = "mutmut==3.8.1"


@nox.session(name="mutation", python=interpreter("3.11"))
def mutation(session: nox.Session) -> None:
    """The mutation score (issue 13; tests/mutation_equivalents.md): mutmut over ``[tool.mutmut]``'s modules and
    test selection. Local only, never in CI (about 2 hours of 2 free cores for the whole core).

    ``nox -s mutation -- "krad_ref.mbag.*"`` runs one module's mutants (a glob of mutant names; default: every
    mutant), then lists the survivors; ``mutmut show NAME`` in the session's venv prints one's diff. mutmut keeps
    its results in ``mutants/``: delete that folder before a clean re-measure (its test map predates new tests).
    """
    session.env["UV_PYTHON_DOWNLOADS"] = "never"
    session.env["CI"] = "true"  # hypothesis derandomized: a mutant is killed or not, the same on every run
    session.install("-e", ".[test]", MUTMUT)
    session.run("mutmut", "run", "--max-children", str(os.cpu_count() or 1), *session.posargs)
    session.run("mutmut", "results")
