"""Per-step time of KrADagrad*, KrADagrad and Shampoo, each against its own kernel budget measured in the same run.

    python benchmarks/steps.py                                # m = n in 128 256 512 1024, plus 512 x 256
    python benchmarks/steps.py --sizes 256 1024 --shapes 1024x512 --threads 1 --repeat 5
    python benchmarks/steps.py --variant reference-code --algorithms kradagrad_star shampoo32
    python benchmarks/steps.py --profile kradagrad --sizes 1024 --threads 1    # where one step's time goes
    python benchmarks/steps.py --sizes 512 1024 --shapes --freqs 1 --small 32x16   # + torch budget, small rows
    python benchmarks/steps.py --backend cupy --sizes 1024 2048 4096 --shapes --threads 1
    python benchmarks/steps.py --sizes 1024 --shapes --freqs 1 --small --against /work/main   # two checkouts
    python benchmarks/steps.py --phases kradagrad_star --sizes 1024 --threads 1 2 --repeat 2  # per-phase timeline

What is timed. One optimizer ``update`` (the registered algorithm, ``krad_ref.algorithm.get(id)``, default Config
of ``--variant`` with ``root_freq = f``) on a float32 (m, n) gradient, after a warm-up of ``--warmup`` steps so
the statistics are not the initial identities. Roots every step (f = 1) and every 3rd step (f = 3, amortized:
the time of a window of steps that contains every phase of the schedule, divided by its length). Seconds are
the minimum over ``--repeat`` rounds; each round times one window and then each bare kernel of the budget once,
so that the step and its budget see the same machine load. Rows:

  kradagrad_star     KrADagrad* (Alg. 1), float32 factors and roots
  kradagrad          KrADagrad (alternating, Sec. 3.2), float32 (one factor updated per step)
  shampoo32          Shampoo, float32 statistics and roots
  shampoo32_root64   Shampoo, float32 statistics, float64 roots (``root_dtype="float64"``)
  shampoo64          Shampoo, float64 statistics, Grams, roots and preconditioning (``stat_dtype="float64"``:
                     the authors' ``double=True``, errata 19)

The kernel budget (shared/notes/performance.md, "Where the time goes"). Each row's budget is the sum of the bare
kernels its step cannot avoid, each timed here on the same shapes and dtypes, at the same thread count:
  * eigh: ``krad_ref.backend.eigh`` (LAPACK divide and conquer, the call the roots use) on the row's own
    statistics taken from the warmed-up state (divide and conquer deflates clustered spectra, so a random SPD
    matrix would not be a fair reference: performance.md fact 3);
  * GEMM: ``A @ B`` on random matrices of the step's shapes (GEMM time does not depend on the data).
  Per step, for an (m, n) gradient with roots every f steps (X_d: a d x d matrix):
  * KrADagrad*: per side the Gram G G^T, L A and (L A) L (3 GEMMs), two GEMMs to apply L^{1/4} G R^{1/4};
    every f steps per side one eigh and one GEMM V diag(w^{1/4}) V^T. f = 1: 2 eigh + 10 GEMMs.
  * KrADagrad: for the side updated this step (L: G R, (G R) G^T, L A, (L A) L; R likewise), two GEMMs to
    apply; the root of every factor updated since the last root step is recomputed (eigh + one GEMM). The side
    alternates, so a step costs on average half of each side's update; roots: f = 1 half of each side's eigh,
    f >= 2 one eigh per side every f steps. f = 1: 1 eigh + 7 GEMMs on average.
  * Shampoo: G G^T, G^T G and two GEMMs to apply (stat dtype); every f steps per side one eigh and one GEMM
    (root dtype). f = 1: 2 eigh + 6 GEMMs.
  Element-wise work (sums, symmetrization, scaling by t), the t_k norms, casts, checks and Python are overhead:
  the ratio step / budget measures them. Target (performance.md): ratio <= 1.1 at every size, 1 and 2 threads
  (the issue asks 1.25 at 1024). PASS/MISS is printed per row; nothing is asserted.

Beside krad_ref's own budget, when torch is installed, a torch kernel budget: the same plan timed with
``torch.linalg.eigh``/``eigvalsh`` and ``torch.matmul`` on the same shapes, dtypes and thread count
(``torch.set_num_threads``): what a PyTorch user's step is built from, so ``vs torch`` <= 1.0 means the
NumPy step is as fast as torch's kernels alone (issue 14's target at 2 threads, 512-2048).

``--against CHECKOUT`` times another checkout's updates (its ``krad_ref`` imported as ``krad_ref_against``)
in the same rounds as this one's, on its own state: a before/after comparison under one machine load.
``--parallel auto|on|off`` sets ``krad_ref.backend.PARALLEL_MODES`` (both checkouts). ``--phases ALG`` prints,
instead of the table, where each step's time goes: every Gram, factor update, eigh, root and product call with
its thread, its wall interval and that thread's CPU time (concurrent modes: one BLAS thread per task, so a
task's CPU time is its kernels' whole work; compare it with the wall interval to see waiting or contention).

Small problems (``--small``, default 32x16): per-update time of krad_ref's ``update`` against the same operations
written as bare NumPy/SciPy (Gram, t, Eq. 13, ``scipy.linalg.eigh(driver="evd")`` roots, the two-sided product;
no checks, no state objects), at one thread; the difference is krad_ref's per-update overhead.

``--backend cupy``: gradients, state and kernels on the GPU (CuPy); every timed region starts and ends with a
device synchronisation, and the kernel budget is CuPy's own ``cupy.linalg.eigh`` (cuSOLVER syevd) and GEMM;
``--threads`` is ignored (no BLAS pools), the torch budget and the small-problem rows are NumPy-only. Without
CuPy and a GPU the script says so and exits with status 2. (Written without a GPU at hand: untested.)

Conventions as benchmarks/roots.py: OPENBLAS_THREAD_TIMEOUT=4 is set before NumPy is imported (NumPy's and
SciPy's OpenBLAS pools otherwise spin against each other: performance.md fact 2); threadpoolctl limits every
BLAS pool per run (``--threads``; both figures are printed); compare rows of one run only (the machine is
shared and noisy: +-30 %). Needs threadpoolctl (``pip install -e '.[bench]'``).
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # before numpy is imported (performance.md fact 2)

import argparse  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, NamedTuple  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from krad_ref import algorithm, backend  # noqa: E402

TARGET = 1.1        # performance.md
#: the timer (``--clock``): wall time, or process CPU time (1-thread rows on a loaded machine: CPU time is the
#: work done, which other processes' load inflates far less than wall time; meaningless for 2 threads or GPUs)
CLOCK = time.perf_counter
ISSUE_TARGET = 1.25  # the issue's figure at 1024
ALGORITHMS = ("kradagrad_star", "kradagrad", "shampoo32", "shampoo32_root64", "shampoo64")


# ---------------------------------------------------------------------------------------------------------
# the optimizers under test

def make(alg: str, variant: str, f: int, registry=algorithm):
    """(Algorithm record, Config) for a row id, from ``registry`` (a ``krad_ref.algorithm`` module)."""
    if alg.startswith("shampoo"):
        a = registry.get("shampoo")
        extra = {"shampoo32": {}, "shampoo32_root64": dict(root_dtype="float64"),
                 "shampoo64": dict(stat_dtype="float64")}[alg]
        return a, a.Config(variant=variant, root_freq=f, **extra)
    a = registry.get(alg)
    return a, a.Config(variant=variant, root_freq=f)


def dtypes(alg: str) -> tuple[str, str]:
    """(stat dtype, root dtype) of a row."""
    return {"shampoo32_root64": ("float32", "float64"), "shampoo64": ("float64", "float64")}.get(
        alg, ("float32", "float32"))


def gradients(m: int, n: int, count: int, seed: int) -> list[np.ndarray]:
    """float32 gradients with an anisotropic column spectrum (power law), like a layer's: G^T G is far from I."""
    rng = np.random.default_rng(seed)
    scale = (1.0 + np.arange(n)) ** -0.5
    return [(rng.standard_normal((m, n)) * scale).astype(np.float32) for _ in range(count)]


def period(alg: str, f: int) -> int:
    """Length of a timing window that holds every phase of the row's schedule (KrADagrad alternates sides)."""
    return math.lcm(f, 2) if alg == "kradagrad" else f


def statistics_of(alg: str, state) -> list[np.ndarray]:
    """The matrices the row's root step decomposes (per mode), in the root dtype."""
    root_dt = dtypes(alg)[1]
    mats = state.stats if alg.startswith("shampoo") else state.factors
    return [np.ascontiguousarray(backend.to_numpy(M).astype(root_dt)) for M in mats]


# ---------------------------------------------------------------------------------------------------------
# kernel budget

def kernel_plan(alg: str, m: int, n: int, f: int, t_rule: str = "frobenius") -> list[tuple[float, tuple]]:
    """[(count per step, kernel)]; kernel = ("gemm", a, b, c, dtype) for (a x b) @ (b x c), ("eigh", mode) or
    ("eigvalsh", mode).

    KrADagrad's spectral t rule (Prop. 3.2, the paper variant's default) needs ||N||_2 of the non-symmetric
    N = L A on every factor update: one Gram product N^T N and one eigvalsh (linalg.norm_2), kernels the
    Frobenius rule does not have; they are part of that rule's irreducible cost and so of its budget.
    """
    s, r = dtypes(alg)
    g = lambda a, b, c, dt=s: ("gemm", a, b, c, dt)  # noqa: E731
    if alg == "kradagrad_star":
        plan = [(1, g(m, n, m)), (1, g(n, m, n)),                     # G G^T, G^T G
                (2, g(m, m, m)), (2, g(n, n, n)),                     # L A, (L A) L; R likewise
                (1, g(m, m, n)), (1, g(m, n, n))]                     # L^{1/4} G, (.) R^{1/4}
        roots = 1.0 / f
        plan += [(roots, ("eigh", 0)), (roots, ("eigh", 1)), (roots, g(m, m, m, r)), (roots, g(n, n, n, r))]
    elif alg == "kradagrad":
        half = 0.5
        plan = [(half, g(m, n, n)), (half, g(m, n, m)), (2 * half, g(m, m, m)),   # L side: G R, (G R) G^T, L A, (L A) L
                (half, g(n, m, m)), (half, g(n, m, n)), (2 * half, g(n, n, n)),   # R side: G^T L, (G^T L) G, ...
                (1, g(m, m, n)), (1, g(m, n, n))]                                 # apply
        roots = 0.5 if f == 1 else 1.0 / f
        plan += [(roots, ("eigh", 0)), (roots, ("eigh", 1)), (roots, g(m, m, m, r)), (roots, g(n, n, n, r))]
        if t_rule == "spectral":
            plan += [(half, g(m, m, m)), (half, ("eigvalsh", 0)), (half, g(n, n, n)), (half, ("eigvalsh", 1))]
    else:
        plan = [(1, g(m, n, m)), (1, g(n, m, n)), (1, g(m, m, n)), (1, g(m, n, n))]
        roots = 1.0 / f
        plan += [(roots, ("eigh", 0)), (roots, ("eigh", 1)), (roots, g(m, m, m, r)), (roots, g(n, n, n, r))]
    return plan


class Engine(NamedTuple):
    """The library a kernel budget is timed with: conversion of NumPy operands, the kernels, a synchronisation."""

    name: str
    convert: Callable
    gemm: Callable
    eigh: Callable
    eigvalsh: Callable
    sync: Callable


def numpy_engine() -> Engine:
    return Engine("numpy", lambda a: a, lambda x, y: x @ y, backend.eigh, backend.eigvalsh, lambda: None)


def torch_engine():
    """torch's CPU kernels (None when torch is not installed)."""
    try:
        import torch
    except ImportError:
        return None
    return Engine("torch", torch.from_numpy, torch.matmul, torch.linalg.eigh, torch.linalg.eigvalsh, lambda: None)


def cupy_engine() -> Engine:
    import cupy

    def sync():
        cupy.cuda.Device().synchronize()

    return Engine("cupy", cupy.asarray, cupy.matmul, cupy.linalg.eigh, cupy.linalg.eigvalsh, sync)


class Kernels:
    """The bare kernels of one row's plan in one engine: random GEMM operands (cached per shape) and the row's
    statistics."""

    _operands: dict = {}

    def __init__(self, plan, engine: Engine):
        self.plan = plan
        self.engine = engine
        self.gemms = sorted({k for _, k in plan if k[0] == "gemm"})
        self.modes = sorted({k[1] for _, k in plan if k[0] == "eigh"})
        self.vmodes = sorted({k[1] for _, k in plan if k[0] == "eigvalsh"})
        for k in self.gemms:
            if (engine.name, k) not in self._operands:
                _, a, b, c, dt = k
                rng = np.random.default_rng(a * 7 + b * 11 + c)
                self._operands[(engine.name, k)] = (engine.convert(rng.standard_normal((a, b)).astype(dt)),
                                                    engine.convert(rng.standard_normal((b, c)).astype(dt)))
        self.best = {k: math.inf for k in self.gemms}
        self.best.update({("eigh", i): math.inf for i in self.modes})
        self.best.update({("eigvalsh", i): math.inf for i in self.vmodes})

    def _time(self, key, fn, *args):
        sync = self.engine.sync
        sync()
        t0 = CLOCK()
        fn(*args)
        sync()
        self.best[key] = min(self.best[key], CLOCK() - t0)

    def time_once(self, stats):
        """Time every kernel once (eigh on the current statistics, host arrays); keep each kernel's minimum."""
        e = self.engine
        for k in self.gemms:
            self._time(k, e.gemm, *self._operands[(e.name, k)])
        for i in self.modes:
            self._time(("eigh", i), e.eigh, e.convert(stats[i]))
        for i in self.vmodes:
            self._time(("eigvalsh", i), e.eigvalsh, e.convert(stats[i]))

    def budget(self) -> tuple[float, float, float]:
        """(total, eigh part, gemm part) seconds per step."""
        t_e = sum(c * self.best[k] for c, k in self.plan if k[0] in ("eigh", "eigvalsh"))
        t_g = sum(c * self.best[k] for c, k in self.plan if k[0] == "gemm")
        return t_e + t_g, t_e, t_g


# ---------------------------------------------------------------------------------------------------------
# timing one row

def time_row(alg: str, variant: str, m: int, n: int, f: int, repeat: int, warmup: int, grads, engines,
             registries=(algorithm,)):
    """([seconds per step per registry], [(budget, eigh, gemm) per engine]) for one row.

    Rounds alternate one timing window of period(alg, f) steps of each registry's update (``--against``: this
    checkout's and another's, each on its own state) with one bare run of every kernel of each engine's budget,
    so all see the same machine load; each is the minimum over ``repeat`` rounds. The window is aligned on the
    schedule (count % period == 0), so every window holds the same phases. ``grads`` live in the first engine's
    library (the one krad_ref runs on).
    """
    P = period(alg, f)
    runs = []  # [algorithm record, config, state, gradient index] per registry
    for reg in registries:
        a, cfg = make(alg, variant, f, reg)
        xp = backend.namespace(grads[0])
        state = a.init((m, n), cfg, dtype=xp.float32, xp=xp)
        i = 0
        for _ in range(max(warmup, P)):
            _, state = a.update(grads[i % len(grads)], state, cfg)
            i += 1
        while int(state.count) % P:
            _, state = a.update(grads[i % len(grads)], state, cfg)
            i += 1
        runs.append([a, cfg, state, i])
    cfg = runs[0][1]
    t_rule = getattr(cfg.resolved(), "t_rule", "frobenius") if hasattr(cfg, "resolved") else "frobenius"
    kernels = [Kernels(kernel_plan(alg, m, n, f, t_rule), e) for e in engines]
    for k in kernels:
        k.time_once(statistics_of(alg, runs[0][2]))  # warm the kernels' first call
        k.best = dict.fromkeys(k.best, math.inf)
    sync = engines[0].sync
    best = [math.inf] * len(runs)
    for _ in range(repeat):
        for r, run_ in enumerate(runs):
            a, cfg, state, i = run_
            sync()
            t0 = CLOCK()
            for _ in range(P):
                _, state = a.update(grads[i % len(grads)], state, cfg)
                i += 1
            sync()
            best[r] = min(best[r], (CLOCK() - t0) / P)
            run_[2:] = [state, i]
        stats = statistics_of(alg, runs[0][2])
        for k in kernels:
            k.time_once(stats)
    return best, [k.budget() for k in kernels]


def other_checkout(path: str):
    """``krad_ref.algorithm`` of another checkout (``--against /work/main``), imported as the package
    ``krad_ref_against`` beside this one (the core modules import each other relatively), with its KrADagrad and
    Shampoo modules loaded so that their ids are registered in its own registry."""
    import importlib
    import importlib.util

    root = Path(path).resolve() / "krad_ref"
    spec = importlib.util.spec_from_file_location("krad_ref_against", root / "__init__.py",
                                                  submodule_search_locations=[str(root)])
    pkg = importlib.util.module_from_spec(spec)
    sys.modules["krad_ref_against"] = pkg
    spec.loader.exec_module(pkg)
    for name in ("kradagrad", "shampoo"):
        importlib.import_module(f"krad_ref_against.{name}")
    return importlib.import_module("krad_ref_against.algorithm")


def run(args) -> list[dict]:
    from threadpoolctl import threadpool_limits

    shapes = [(s, s) for s in args.sizes] + [tuple(int(x) for x in sh.lower().split("x")) for sh in args.shapes]
    engines = [cupy_engine()] if args.backend == "cupy" else [numpy_engine()]
    torch_e = torch_engine() if args.backend == "numpy" else None
    if torch_e is not None:
        engines.append(torch_e)
    thread_counts = args.threads if args.backend == "numpy" else [0]
    registries = (algorithm,) if not args.against else (algorithm, other_checkout(args.against))
    if args.against:
        sys.modules["krad_ref_against.backend"].PARALLEL_MODES = backend.PARALLEL_MODES  # --parallel for both
    rows = []
    for (m, n) in shapes:
        grads = [engines[0].convert(g) for g in gradients(m, n, 4, seed=m * 1000 + n)]
        for threads in thread_counts:
            with threadpool_limits(limits=threads or None):
                _torch_threads(torch_e, threads)
                for alg in args.algorithms:
                    for f in args.freqs:
                        try:
                            t_steps, budgets = time_row(alg, args.variant, m, n, f, args.repeat, args.warmup,
                                                        grads, engines, registries)
                        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:  # report, go on
                            msg = f"{type(exc).__name__}: {str(exc).splitlines()[0][:150]}"
                            rows.append(dict(shape=f"{m}x{n}", alg=alg, f=f, threads=threads, error=msg))
                            print(f"  {m}x{n} thr={threads} {alg:<17} f={f}: ERROR {msg}", file=sys.stderr,
                                  flush=True)
                            continue
                        t_step, t_other = t_steps[0], (t_steps[1] if len(t_steps) > 1 else math.nan)
                        budget, t_e, t_g = budgets[0]
                        torch_budget = budgets[1][0] if len(budgets) > 1 else math.nan
                        ratio = t_step / budget
                        rows.append(dict(shape=f"{m}x{n}", alg=alg, f=f, threads=threads, step=t_step,
                                         budget=budget, eigh=t_e, gemm=t_g, ratio=ratio, torch=torch_budget,
                                         other=t_other, error=""))
                        print(f"  {m}x{n} thr={threads} {alg:<17} f={f}: step {t_step * 1e3:8.2f} ms, budget "
                              f"{budget * 1e3:8.2f} ms (eigh {t_e * 1e3:.2f} + gemm {t_g * 1e3:.2f}), ratio "
                              f"{ratio:.2f}, torch budget {torch_budget * 1e3:.2f} ms, against {t_other * 1e3:.2f} "
                              f"ms  [load "
                              f"{os.getloadavg()[0]:.1f}]", file=sys.stderr, flush=True)
    return rows


def _torch_threads(engine, threads: int) -> None:
    if engine is not None and threads:
        import torch

        torch.set_num_threads(threads)


# ---------------------------------------------------------------------------------------------------------
# small problems: krad_ref's update against the same operations in bare NumPy

def _bare_root(X, e):
    """V diag(max(w, 0)^e) V^T, symmetrised: the eigh root as a NumPy user writes it (same LAPACK driver)."""
    import scipy.linalg

    w, V = scipy.linalg.eigh(X, driver="evd", check_finite=False)
    P = (V * np.maximum(w, 0) ** e) @ V.T
    return (P + P.T) / 2


def bare_kradagrad_star(G, L, R):
    """Alg. 1 (paper variant defaults: Frobenius t, L_0 = I, roots L^{1/4}, every step), no checks."""
    A = G @ G.T
    N = L @ A
    L = L - (N @ L) / (1 + np.linalg.norm(N))
    L = (L + L.T) / 2
    B = G.T @ G
    M = R @ B
    R = R - (M @ R) / (1 + np.linalg.norm(M))
    R = (R + R.T) / 2
    return _bare_root(L, 0.25) @ G @ _bare_root(R, 0.25), L, R


def bare_shampoo(G, L, R, eps=1e-6):
    """Shampoo (paper variant defaults: (S + eps I)^{-1/4} by eigh, every step), no checks."""
    L = L + G @ G.T
    R = R + G.T @ G
    return _bare_root(L + eps * np.eye(L.shape[0], dtype=L.dtype), -0.25) @ G @ \
        _bare_root(R + eps * np.eye(R.shape[0], dtype=R.dtype), -0.25), L, R


SMALL = {"kradagrad_star": (bare_kradagrad_star, 1.0), "shampoo32": (bare_shampoo, 0.0)}


def time_small(shape, repeat: int, reps: int = 200, algorithms=algorithm) -> list[dict]:
    """Per-update seconds of krad_ref and of the bare NumPy step (minimum over ``repeat`` rounds of ``reps``
    updates, the two interleaved round by round), one BLAS thread, in process CPU time (``time.process_time``:
    with one thread it is the update's own time, which other processes' load inflates far less than wall time).
    ``algorithms``: the registry to take the updates from (another checkout's ``krad_ref.algorithm`` compares
    versions)."""
    from threadpoolctl import threadpool_limits

    m, n = shape
    grads = gradients(m, n, 4, seed=1)
    rows = []
    with threadpool_limits(limits=1):
        for alg, (bare, init) in SMALL.items():
            a = algorithms.get(alg.removesuffix("32"))
            cfg = a.Config()
            state = a.init((m, n), cfg, dtype=np.float32)
            L, R = init * np.eye(m, dtype=np.float32), init * np.eye(n, dtype=np.float32)
            best_k = best_b = math.inf
            for _ in range(repeat):
                t0 = time.process_time()
                for i in range(reps):
                    _, state = a.update(grads[i % 4], state, cfg)
                best_k = min(best_k, (time.process_time() - t0) / reps)
                t0 = time.process_time()
                for i in range(reps):
                    _, L, R = bare(grads[i % 4], L, R)
                best_b = min(best_b, (time.process_time() - t0) / reps)
            rows.append(dict(shape=f"{m}x{n}", alg=alg, step=best_k, bare=best_b))
    return rows


def small_table(rows) -> str:
    out = [f"{'shape':>10} {'algorithm':<17} {'update us':>10} {'bare NumPy us':>14} {'overhead us':>12}"]
    for r in rows:
        out.append(f"{r['shape']:>10} {r['alg']:<17} {r['step'] * 1e6:>10.0f} {r['bare'] * 1e6:>14.0f} "
                   f"{(r['step'] - r['bare']) * 1e6:>12.0f}")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------------
# report

def header(args) -> str:
    from threadpoolctl import threadpool_info

    import scipy

    blas = sorted({f"{i.get('internal_api')} {i.get('version')} ({i.get('filepath', '').split('/')[-3]})"
                   for i in threadpool_info() if i.get("user_api") == "blas"})
    return "\n".join([
        "# krad_ref per-step benchmark (benchmarks/steps.py)",
        f"# python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, cpus "
        f"{os.cpu_count()}, OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')}",
        f"# BLAS pools: {'; '.join(blas)}; krad_ref.backend.PARALLEL_MODES={backend.PARALLEL_MODES!r}",
        f"# backend {args.backend}; clock {args.clock}; torch budget: {_torch_version()}",
        f"# variant {args.variant}; float32 gradients; warm-up {args.warmup} steps; seconds = min over "
        f"{args.repeat} windows, per step",
        "# budget = the row's eigh calls (on its own statistics) + its GEMMs, timed bare in this run, same "
        "shapes, dtypes, threads",
        f"# verdict: PASS if ratio <= {TARGET} (performance.md), else MISS; (issue target {ISSUE_TARGET} at 1024)",
        f"# load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cpus (other processes "
        "inflate both columns, and 2-thread rows most)",
    ])


def _torch_version() -> str:
    try:
        import torch
    except ImportError:
        return "torch not installed"
    return f"torch {torch.__version__} (torch.linalg.eigh + torch.matmul, same shapes, dtypes, threads)"


def table(rows) -> str:
    torch_col = any(not r["error"] and not math.isnan(r["torch"]) for r in rows)
    extra = f" {'torch ms':>9} {'vs torch':>8}" if torch_col else ""
    out = [f"{'shape':>10} {'algorithm':<17} {'f':>2} {'thr':>3} {'step ms':>9} {'budget ms':>10} "
           f"{'eigh ms':>8} {'gemm ms':>8} {'ratio':>6}{extra}  verdict"]
    for r in rows:
        if r["error"]:
            out.append(f"{r['shape']:>10} {r['alg']:<17} {r['f']:>2} {r['threads']:>3} {'-':>9} {'-':>10} {'-':>8} "
                       f"{'-':>8} {'-':>6}  ERROR {r['error']}")
            continue
        verdict = "PASS" if r["ratio"] <= TARGET else "MISS"
        if verdict == "MISS" and r["ratio"] <= ISSUE_TARGET:
            verdict += " (<= 1.25)"
        if torch_col:
            extra = f" {r['torch'] * 1e3:>9.2f} {r['step'] / r['torch']:>8.2f}"
        against = "" if math.isnan(r["other"]) else (f"  against {r['other'] * 1e3:.2f} ms "
                                                     f"(this / against {r['step'] / r['other']:.2f})")
        out.append(f"{r['shape']:>10} {r['alg']:<17} {r['f']:>2} {r['threads']:>3} {r['step'] * 1e3:>9.2f} "
                   f"{r['budget'] * 1e3:>10.2f} {r['eigh'] * 1e3:>8.2f} {r['gemm'] * 1e3:>8.2f} "
                   f"{r['ratio']:>6.2f}{extra}  {verdict}{against}")
    return "\n".join(out)


def profile(args) -> None:
    """cProfile of --repeat steps of one algorithm at the first size (after warm-up), top functions."""
    import cProfile
    import pstats

    from threadpoolctl import threadpool_limits

    if args.sizes:
        m = n = args.sizes[0]
    else:
        m, n = (int(x) for x in args.shapes[0].lower().split("x"))
    f = args.freqs[0]
    grads = gradients(m, n, 4, seed=0)
    with threadpool_limits(limits=args.threads[0]):
        a, cfg = make(args.profile, args.variant, f)
        state = a.init((m, n), cfg, dtype=np.float32)
        for i in range(max(args.warmup, 2)):
            _, state = a.update(grads[i % 4], state, cfg)
        prof = cProfile.Profile()
        prof.enable()
        for i in range(args.repeat * period(args.profile, f)):
            _, state = a.update(grads[i % 4], state, cfg)
        prof.disable()
    print(f"# profile: {args.profile} {m}x{n} f={f} threads={args.threads[0]} variant={args.variant}, "
          f"{args.repeat * period(args.profile, f)} steps")
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


#: (module, function name, phase label) instrumented by ``--phases``: module-level names the updates look up at
#: call time, so replacing them for the run times every call
PHASES = (("krad_ref.krad", "mode_statistic", "statistic"), ("krad_ref.modes", "_mode_gram", "Gram"),
          ("krad_ref.krad", "mode_update", "factor update"), ("krad_ref.backend", "eigh", "eigh"),
          ("krad_ref.kradagrad", "_root", "root"), ("krad_ref.shampoo", "inverse_root", "root"),
          ("krad_ref.modes", "_multi_mode_product", "product"), ("krad_ref.modes", "_mode_product", "product"))


def phases(args) -> None:
    """Per-phase timeline of --repeat steps (after warm-up) at each thread count: every instrumented call's wall
    interval (from the step's start) and the CPU time of the thread that made it (``time.thread_time``: with
    one BLAS thread per task that is the kernel's whole work, which other processes' load inflates far less
    than wall time; with two BLAS threads the pool's helper thread is not counted)."""
    import importlib
    import threading

    from threadpoolctl import threadpool_limits

    m, n = (args.sizes[0],) * 2 if args.sizes else (int(x) for x in args.shapes[0].lower().split("x"))
    f = args.freqs[0]
    log = []

    def timed(fn, label):
        def wrapper(*a, **kw):
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*a, **kw)
            finally:
                log.append((label, threading.current_thread().name, t0, time.perf_counter(), time.thread_time() - c0))
        return wrapper

    saved = []
    for mod_name, fn_name, label in PHASES:
        mod = importlib.import_module(mod_name)
        saved.append((mod, fn_name, getattr(mod, fn_name)))
        setattr(mod, fn_name, timed(getattr(mod, fn_name), label))
    try:
        grads = gradients(m, n, 4, seed=0)
        for threads in args.threads:
            with threadpool_limits(limits=threads):
                a, cfg = make(args.phases, args.variant, f)
                state = a.init((m, n), cfg, dtype=np.float32)
                for i in range(max(args.warmup, 2)):
                    _, state = a.update(grads[i % 4], state, cfg)
                for r in range(args.repeat):
                    log.clear()
                    t0, c0 = time.perf_counter(), time.process_time()
                    _, state = a.update(grads[r % 4], state, cfg)
                    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                    print(f"# {args.phases} {m}x{n} f={f} threads={threads} PARALLEL_MODES={backend.PARALLEL_MODES!r}"
                          f" step {r}: wall {wall * 1e3:.1f} ms, process CPU {cpu * 1e3:.1f} ms, load "
                          f"{os.getloadavg()[0]:.2f}")
                    print(timeline(log, t0))
                if threads >= 2:
                    print(overlap_check(statistics_of(args.phases, state), args.repeat))
    finally:
        for mod, fn_name, fn in saved:
            setattr(mod, fn_name, fn)


def overlap_check(stats, repeat: int) -> str:
    """Whether two eighs overlap on two cores: the row's first two statistics decomposed one after the other at
    one BLAS thread, at two BLAS threads, and concurrently (two Python threads, one BLAS thread each, as the
    concurrent modes run them), and torch's eigh at one and two threads; minimum wall seconds over ``repeat``.
    Perfect overlap: concurrent = max of the two alone; memory-bandwidth or cache contention shows as more."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    A, B = stats[0], stats[-1]

    def best(fn):
        out = math.inf
        for _ in range(max(repeat, 2)):
            t0 = time.perf_counter()
            fn()
            out = min(out, time.perf_counter() - t0)
        return out

    rows = []
    with ThreadPoolExecutor(2) as pool:
        for thr in (1, 2):
            with threadpool_limits(limits=thr):
                rows.append((f"one after the other, {thr} BLAS thread(s)", best(lambda: (backend.eigh(A),
                                                                                        backend.eigh(B)))))
        with threadpool_limits(limits=1):
            rows.append(("A alone, 1 BLAS thread", best(lambda: backend.eigh(A))))
            rows.append(("concurrently, 1 BLAS thread each", best(
                lambda: [f.result() for f in [pool.submit(backend.eigh, A), pool.submit(backend.eigh, B)]])))
    torch_e = torch_engine()
    if torch_e is not None:
        import torch

        tA, tB = torch.from_numpy(A), torch.from_numpy(B)
        for thr in (1, 2):
            torch.set_num_threads(thr)
            rows.append((f"torch, one after the other, {thr} thread(s)", best(lambda: (torch.linalg.eigh(tA),
                                                                                      torch.linalg.eigh(tB)))))
    head = f"# two eighs of order {A.shape[0]} and {B.shape[0]} ({A.dtype}), min wall ms over {max(repeat, 2)}"
    return "\n".join([head] + [f"  {label:<45} {t * 1e3:9.1f}" for label, t in rows])


def timeline(log, t0: float) -> str:
    """``--phases``' table: one line per instrumented call, in order of start (nested calls follow their caller)."""
    out = [f"  {'phase':<14} {'thread':<17} {'from ms':>8} {'to ms':>8} {'wall ms':>8} {'thr CPU ms':>10}"]
    for label, thread, s0, s1, c in sorted(log, key=lambda e: (e[2], e[1], -e[3])):
        out.append(f"  {label:<14} {thread:<17} {(s0 - t0) * 1e3:>8.1f} {(s1 - t0) * 1e3:>8.1f} "
                   f"{(s1 - s0) * 1e3:>8.1f} {c * 1e3:>10.1f}")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=None)
    ap.add_argument("--sizes", type=int, nargs="*", default=[128, 256, 512, 1024], help="square sizes m = n")
    ap.add_argument("--shapes", nargs="*", default=["512x256"], help="extra m x n shapes, e.g. 512x256")
    ap.add_argument("--algorithms", nargs="+", choices=ALGORITHMS, default=list(ALGORITHMS))
    ap.add_argument("--variant", choices=["paper", "reference-code"], default="paper",
                    help="Config variant of every algorithm (default: the library default, 'paper')")
    ap.add_argument("--freqs", type=int, nargs="+", default=[1, 3], help="root frequencies f (default 1 3)")
    ap.add_argument("--repeat", type=int, default=3, help="timing windows per row (minimum is reported)")
    ap.add_argument("--warmup", type=int, default=4, help="optimizer steps before timing")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="BLAS thread counts (threadpoolctl)")
    ap.add_argument("--backend", choices=["numpy", "cupy"], default="numpy",
                    help="where krad_ref and the budget's kernels run (cupy: GPU, device-synchronised timing)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="timer of the main table: wall time, or process CPU time (only for --threads 1)")
    ap.add_argument("--small", nargs="*", default=["32x16"],
                    help="shapes of the small-problem rows (krad_ref vs bare NumPy, 1 thread); none: skip")
    ap.add_argument("--against", default=None, metavar="CHECKOUT",
                    help="also time another checkout's updates (e.g. /work/main), interleaved with this one's in the "
                         "same rounds; printed after the verdict")
    ap.add_argument("--parallel", choices=["auto", "on", "off"], default=None,
                    help="krad_ref.backend.PARALLEL_MODES for this run (and the --against checkout's): auto, True, "
                         "False (default: the library's)")
    ap.add_argument("--phases", choices=ALGORITHMS, default=None,
                    help="instead of the table: where one step's wall time goes, phase by phase and thread by thread "
                         "(wall interval and thread CPU time of each Gram, factor update, eigh, root and product), "
                         "--repeat steps of this algorithm at the first size, first f, each thread count")
    ap.add_argument("--profile", choices=ALGORITHMS, default=None,
                    help="instead of the table: cProfile --repeat windows of this algorithm at the first size (else "
                         "the first shape), first f, first thread count")
    args = ap.parse_args(argv)
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        print("error: benchmarks/steps.py needs threadpoolctl (pip install -e '.[bench]')", file=sys.stderr)
        return 2
    if args.backend == "cupy" and not backend.available("cupy"):
        print("error: --backend cupy needs CuPy and a usable GPU (pip install -e '.[gpu]'); neither was found",
              file=sys.stderr)
        return 2
    if args.clock == "cpu":
        if args.backend != "numpy" or args.threads != [1]:
            print("error: --clock cpu measures one thread on the CPU: use it with --threads 1 and the numpy backend",
                  file=sys.stderr)
            return 2
        global CLOCK
        CLOCK = time.process_time
    if args.parallel:
        backend.PARALLEL_MODES = {"auto": "auto", "on": True, "off": False}[args.parallel]
    if args.phases:
        phases(args)
        return 0
    if args.profile:
        profile(args)
        return 0
    # warm the libraries (first-call loading is not part of any kernel's time)
    W = np.eye(16, dtype=np.float32)
    backend.eigh(W)
    backend.eigh(W.astype(np.float64))
    t0 = time.perf_counter()
    rows = run(args)
    small = []
    if args.backend == "numpy":
        for sh in args.small:
            small += time_small(tuple(int(x) for x in sh.lower().split("x")), args.repeat)
    print(header(args))
    print(table(rows))
    if small:
        print("# small problems: one update, 1 thread, process CPU time, krad_ref vs the same operations in bare "
              "NumPy/SciPy")
        print(small_table(small))
    print(f"# wall time {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
