"""Concurrent per-mode work (issue 14 part 1): ``backend.map_mode_stages`` runs each mode's whole pipeline
(statistic, factor update, root) as one task, one BLAS thread each.

Claims checked here, all exactly (``assert_array_equal`` / exception identity, no tolerance): the bit-identity
claim of ``backend.PARALLEL_MODES`` is that every task runs the serial code at one BLAS thread, so the concurrent
update's statistics, factors and roots ARE the serial update's at one BLAS thread, not an approximation of them;
and an update raises the error the serial order (all factor updates, then the checks, then the roots, each in
mode order) meets first. The direction's products run after the tasks at the caller's two BLAS threads; at the
shapes below OpenBLAS's two-thread GEMM gives the one-thread bits, so the directions are compared exactly too.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

from krad_ref import algorithm, backend, kradagrad, validate

threadpoolctl = pytest.importorskip("threadpoolctl")


def _blas_threads(n):
    backend._controller()  # loads SciPy's OpenBLAS first, so the limit reaches it too
    return threadpoolctl.threadpool_limits(limits=n, user_api="blas")


@pytest.fixture
def two_cores():
    if backend._cores() < 2:
        pytest.skip("concurrency needs two cores")


def _run(alg_id, shape, cfg, steps, dtype=np.float32):
    a = algorithm.get(alg_id)
    rng = np.random.default_rng(7)
    state = a.init(shape, cfg, dtype=dtype)
    out = []
    for _ in range(steps):
        d, state = a.update(rng.standard_normal(shape).astype(dtype), state, cfg)
        out.append(d)
    return out, state


def _arrays(state):
    for field in state:
        yield from (field if isinstance(field, tuple) else (field,))


Shampoo = algorithm.get("shampoo").Config
CASES = [
    # (algorithm, shape, config, steps). (320, 96): OpenBLAS's eigh of order 320 gives other bits at 1 and 2
    # threads, so equality also shows that the tasks ran at one BLAS thread each
    ("kradagrad_star", (320, 96), kradagrad.KradagradStarConfig(), 3),
    ("kradagrad_star", (6, 5, 4), kradagrad.KradagradStarConfig(), 3),
    ("kradagrad_star", (6, 5, 4), kradagrad.KradagradStarConfig(variant="reference-code"), 3),
    # update_freq 2: steps whose first stage passes the factor through to the root
    ("kradagrad_star", (48, 40), kradagrad.KradagradStarConfig(update_freq=2), 4),
    # root_freq 2 / 3: several roots due at once, the updated mode's pipeline beside the others' roots
    ("kradagrad", (40, 24), kradagrad.KradagradConfig(root_freq=2), 4),
    ("kradagrad", (6, 5, 4), kradagrad.KradagradConfig(root_freq=3), 6),
    ("kradagrad", (6, 5, 4), kradagrad.KradagradConfig(variant="reference-code", root_freq=3), 6),
    ("shampoo", (320, 96), Shampoo(), 3),
    ("shampoo", (6, 5, 4), Shampoo(), 3),
    ("shampoo", (6, 5, 4), Shampoo(variant="reference-code"), 3),
    ("shampoo", (48, 40), Shampoo(root_freq=2, beta2=0.9), 4),  # Gram-and-check-only steps, then root steps
    ("shampoo", (48, 40), Shampoo(update_freq=2), 4),  # root-only steps on the kept statistics
]


@pytest.mark.parametrize("alg_id, shape, cfg, steps", CASES,
                         ids=[f"{c[0]}-{'x'.join(map(str, c[1]))}-{i}" for i, c in enumerate(CASES)])
def test_concurrent_update_is_the_serial_update_at_one_blas_thread_bit_for_bit(monkeypatch, two_cores, alg_id,
                                                                               shape, cfg, steps):
    monkeypatch.setattr(backend, "PARALLEL_MODES", False)
    with _blas_threads(1):
        ref_dirs, ref_state = _run(alg_id, shape, cfg, steps)
    monkeypatch.setattr(backend, "PARALLEL_MODES", True)
    ran_on = []
    real = backend._stages_of_mode

    def spy(stages, i):
        ran_on.append(threading.current_thread().name)
        return real(stages, i)

    monkeypatch.setattr(backend, "_stages_of_mode", spy)
    with _blas_threads(2):
        dirs, state = _run(alg_id, shape, cfg, steps)
    assert len(ran_on) >= 2 and all(name.startswith("krad_ref-modes") for name in ran_on)  # really concurrent
    for d, r in zip(dirs, ref_dirs, strict=True):
        np.testing.assert_array_equal(d, r)
    for x, r in zip(_arrays(state), _arrays(ref_state), strict=True):
        np.testing.assert_array_equal(x, r)


# ---------------------------------------------------------------------------------------------------------
# errors: the one the serial order meets first

def test_stages_raise_the_earliest_stage_error_even_when_a_later_stage_of_a_lower_mode_failed(monkeypatch,
                                                                                             two_cores):
    """Mode 1 fails its first stage, mode 0 its second: serially the first stage runs for every mode before any
    second stage, so mode 1's error is the one raised, and concurrently too (though mode 0 got further)."""
    reached = []

    def first(i, _):
        if i == 1:
            raise ValueError("stage 0 of mode 1")
        return i

    def second(i, v):
        reached.append(i)
        raise ValueError(f"stage 1 of mode {i}")

    for setting, blas in ((False, 1), (True, 2)):
        monkeypatch.setattr(backend, "PARALLEL_MODES", setting)
        reached.clear()
        with _blas_threads(blas), pytest.raises(ValueError, match="^stage 0 of mode 1$"):
            backend.map_mode_stages([first, second], 2, like=np.ones(2), order=1)
        assert reached == ([0] if setting else [])  # concurrently mode 0 ran on to its own failure


def test_mode_check_sees_all_modes_at_once_serially_and_its_own_mode_concurrently(monkeypatch, two_cores):
    seen = []

    def check(pairs):
        seen.append(list(pairs))
        for i, v in pairs:
            if v < 0:
                raise ValueError(f"mode {i} negative")

    stages = [lambda i, _: 10 * i - 5, backend.ModeCheck(check), lambda i, v: v + 1]
    monkeypatch.setattr(backend, "PARALLEL_MODES", False)
    with _blas_threads(1):
        with pytest.raises(ValueError, match="^mode 0 negative$"):
            backend.map_mode_stages(stages, 3, like=np.ones(2), order=1)
    assert seen == [[(0, -5), (1, 5), (2, 15)]]  # one call: one host synchronisation for all statistics
    stages[0] = lambda i, _: 10 * i
    seen.clear()
    with _blas_threads(1):
        assert backend.map_mode_stages(stages, 3, like=np.ones(2), order=1) == [[0, 0, 1], [10, 10, 11],
                                                                                [20, 20, 21]]
    monkeypatch.setattr(backend, "PARALLEL_MODES", True)
    seen.clear()
    with _blas_threads(2):
        assert backend.map_mode_stages(stages, 3, like=np.ones(2), order=1) == [[0, 0, 1], [10, 10, 11],
                                                                                [20, 20, 21]]
    assert sorted(seen) == [[(0, 0)], [(1, 10)], [(2, 20)]]  # each task checks its own mode


def test_kradagrad_star_names_mode_0_when_both_factors_are_indefinite(monkeypatch, two_cores):
    """Both roots fail (factors -I stay negative definite under Eq. 13); mode 0, the larger, finishes last when
    concurrent, yet its error is raised, as serially."""
    a = algorithm.get("kradagrad_star")
    cfg = a.Config()
    state = a.init((200, 8), cfg, dtype=np.float32)
    state = state._replace(factors=tuple(-F for F in state.factors))
    G = np.random.default_rng(0).standard_normal((200, 8)).astype(np.float32)
    for setting, blas in ((False, 1), (True, 2)):
        monkeypatch.setattr(backend, "PARALLEL_MODES", setting)
        with _blas_threads(blas), pytest.raises(ValueError, match="^factor of mode 0 is no longer positive semi"):
            a.update(G, state, cfg)


def test_shampoo_names_the_overflowed_statistic_before_another_modes_failed_root(monkeypatch, two_cores):
    """stats[0] = -3e38 I stays negative definite after its Gram (~1e33): its root fails; stats[1] = max I plus a
    Gram of ~1e33 overflows to inf. Serially the finiteness check of all statistics comes before any root, so
    the overflow of stats[1] is what is raised, concurrently too."""
    sh = algorithm.get("shampoo")
    cfg = sh.Config()
    f32 = np.float32
    state = sh.init((40, 24), cfg, dtype=f32)
    G = (np.random.default_rng(0).standard_normal((40, 24)) * 1e16).astype(f32)
    bad_root = state._replace(stats=(f32(-3e38) * np.eye(40, dtype=f32), np.eye(24, dtype=f32)))
    both = bad_root._replace(stats=(bad_root.stats[0], np.finfo(f32).max * np.eye(24, dtype=f32)))
    for setting, blas in ((False, 1), (True, 2)):
        monkeypatch.setattr(backend, "PARALLEL_MODES", setting)
        with _blas_threads(blas):
            with pytest.raises(ValueError, match="^shampoo: inverse root of a statistic failed in float32 at step 1"):
                sh.update(G, bad_root, cfg)  # mode 0's root does fail on its own
            with pytest.raises(validate.OverflowLimitError, match=r"^state\.stats\[1\]: overflow"), \
                    np.errstate(over="ignore"):
                sh.update(G, both, cfg)


# ---------------------------------------------------------------------------------------------------------
# the tasks' environment and when "auto" goes concurrent

def test_tasks_run_in_the_callers_context(monkeypatch, two_cores):
    """numpy.errstate is a context variable: a caller's setting holds inside the tasks, as it does serially."""
    monkeypatch.setattr(backend, "PARALLEL_MODES", True)
    names = []

    def task(i):
        names.append(threading.current_thread().name)
        return np.geterr()["over"]

    with _blas_threads(2), np.errstate(over="raise"):
        assert backend.map_modes(task, 2, like=np.ones(2), order=1) == ["raise", "raise"]
    assert all(name.startswith("krad_ref-modes") for name in names)


@pytest.mark.parametrize("sizes, expected", [
    # work ~ d^3, two workers, concurrent iff max load * 1.25 <= total (hand computed, in units of 256^3)
    ((1024, 1024), True),    # 64 * 1.25 = 80 <= 128
    ((1024, 768), True),     # 64 * 1.25 = 80 <= 64 + 27 = 91
    ((1024, 512), False),    # 80 > 64 + 8
    ((512, 256), False),     # 8 * 1.25 = 10 > 8 + 1
    ((2048, 512), False),    # 512 * 1.25 = 640 > 512 + 8
    ((512, 512, 512), True),  # loads 16 and 8: 20 <= 24
    ((1024, 512, 512), True),  # loads 64 and 8 + 8: 80 <= 80, the edge
    ((1024, 512, 511), False),  # just below the edge: 80 > 64 + 8 + 7.96
])
def test_balance_rule(sizes, expected):
    assert backend._balanced(sizes, 2) is expected


def test_auto_runs_unbalanced_modes_serially_and_balanced_ones_concurrently(monkeypatch, two_cores):
    monkeypatch.setattr(backend, "PARALLEL_MODES", "auto")
    ran_on = []

    def task(i):
        ran_on.append(threading.current_thread().name)
        return i

    caller = threading.current_thread().name
    with _blas_threads(2):
        assert backend.map_modes(task, 2, like=np.ones(2), order=2048, sizes=(2048, 512)) == [0, 1]
        assert ran_on == [caller, caller]
        ran_on.clear()
        assert backend.map_modes(task, 2, like=np.ones(2), order=512, sizes=(512, 512)) == [0, 1]
        assert all(name.startswith("krad_ref-modes") for name in ran_on)
