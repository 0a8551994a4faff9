"""Speed and accuracy of krad_ref.linalg's matrix roots, each against one bare eigh measured in the same run.

    python benchmarks/roots.py                       # sizes 256 512 1024 2048, float32 and float64, 1 and 2 threads
    python benchmarks/roots.py --sizes 256 512 --dtypes float32 --threads 1 --repeat 5
    python benchmarks/roots.py --backend cupy --sizes 1024 2048 4096   # on a GPU: pip install -e '.[gpu,bench]'

For each (n, dtype, thread count) the script builds one SPD matrix with kappa = 1e4 and a gradient-statistic-like
spectrum, times ``backend.eigh`` on it, then every root method on the same matrix, and prints seconds, the ratio to
that eigh, and the relative Frobenius error against a float64 eigh reference. Timings are the minimum over
``--repeat`` runs (n = 2048 runs once unless ``--repeat-large`` says otherwise). Compare rows of one run only:
the machine is shared and noisy (shared/notes/performance.md: treat any figure as +-30 %).

``--backend cupy`` runs the same methods on the GPU. The kernel budget is CuPy's own: the baseline rows are a bare
``cupy.linalg.eigh`` (cuSOLVER syevd) and one n x n GEMM (``A @ A``) of the same matrix, and each eigh-based root is
also reported against eigh + GEMM (the two kernels it cannot avoid). Every timing is device-synchronised
(``cupy.cuda.Device().synchronize()`` before the clock starts and before it stops, so it covers the kernels and not
only their launch), and each kernel runs once untimed first (cuSOLVER handles, workspace and kernel compilation are
not part of any figure). Thread counts do not apply on the GPU. Without CuPy or a GPU the script exits with status 2
and says so.

Why these settings (shared/notes/performance.md):
  * OPENBLAS_THREAD_TIMEOUT=4 is set before NumPy is imported: NumPy and SciPy each bundle an OpenBLAS whose idle
    workers spin ~0.1 s after a call, which made alternating GEMM/eigh steps 1.35-9.6x slower at 2 threads.
  * threadpoolctl limits every loaded BLAS pool to 1 and then 2 threads, and both figures are printed.
  * The spectrum is not a generic random one: divide-and-conquer eigh deflates clustered spectra, so a realistic
    statistic is cheaper to decompose than a random SPD matrix. Here: a power-law head over half the spectrum
    (like the Gram matrix of a gradient history) falling to a clustered floor at lambda_max / kappa (the ridge).
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")  # before numpy is imported (performance.md fact 2)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import scipy  # noqa: E402

from krad_ref import backend  # noqa: E402
from krad_ref import linalg as la  # noqa: E402

KAPPA = 1e4
LARGE = 2048


def statistic_like_spd(n: int, kappa: float, seed: int = 0) -> np.ndarray:
    """U diag(lambda) U^T, U random orthogonal; lambda: power law on the top half, clustered floor below.

    lambda_max = 1, lambda_min = 1/kappa exactly; the floor carries a 1e-3 relative jitter so it is clustered,
    not exactly repeated.
    """
    rng = np.random.default_rng(seed)
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    Q *= np.sign(np.diag(R))
    h = max(n // 2, 1)
    alpha = np.log(kappa) / np.log(h) if h > 1 else 1.0
    head = (1.0 + np.arange(h)) ** (-alpha)  # 1 ... 1/kappa
    floor = (1.0 / kappa) * (1.0 + 1e-3 * rng.random(n - h))
    lam = np.sort(np.concatenate([head, floor]))[::-1]
    lam[-1] = 1.0 / kappa
    A = (Q * lam) @ Q.T
    return (A + A.T) / 2


def reference_powers(A64: np.ndarray, powers):
    """float64 eigh reference A^p for each p, from one eigendecomposition (mp is far too slow at n >= 256)."""
    w, V = backend.eigh(A64)
    w = np.clip(w, 0, None)
    return {p: ((V * w**p) @ V.T) for p in powers}


def rel_err(X, ref) -> float:
    X = np.asarray(backend.to_numpy(X), dtype=np.float64)
    return float(np.linalg.norm(X - ref) / np.linalg.norm(ref))


def timed(fn, repeat: int, sync=None):
    """Minimum wall time of ``fn`` over ``repeat`` runs; ``sync`` (the device's synchronize) runs before the clock
    starts and before it stops, so asynchronous GPU work is inside the measurement."""
    best, out = np.inf, None
    for _ in range(repeat):
        if sync is not None:
            sync()
        t0 = time.perf_counter()
        out = fn()
        if sync is not None:
            sync()
        best = min(best, time.perf_counter() - t0)
    return best, out


class Host:
    """The NumPy run: backend.eigh as the baseline, BLAS thread counts from --threads."""

    name = "numpy"
    sync = None
    warm = False

    def __init__(self, args):
        self.threads = args.threads

    @staticmethod
    def put(a: np.ndarray):
        return a

    @staticmethod
    def limits(threads):
        from threadpoolctl import threadpool_limits  # imported here: --help and the CuPy message do not need it

        return threadpool_limits(limits=threads)

    def baselines(self, A, repeat):
        t_eigh, _ = timed(lambda: backend.eigh(A), repeat)
        return [("backend.eigh (baseline)", t_eigh)]


class Device:
    """The CuPy run: CuPy's own eigh and GEMM as the kernel budget, device-synchronised timings, one row per case
    (no BLAS threads)."""

    name = "cupy"
    warm = True
    threads = ("gpu",)

    def __init__(self, args):
        import cupy

        self.cupy = cupy
        self.sync = cupy.cuda.Device().synchronize

    def put(self, a: np.ndarray):
        return self.cupy.asarray(a)

    @staticmethod
    def limits(threads):
        return contextlib.nullcontext()

    def baselines(self, A, repeat):
        cp = self.cupy
        rows = []
        kernels = (("cupy.linalg.eigh (baseline)", lambda: cp.linalg.eigh(A)), ("GEMM A @ A (cupy)", lambda: A @ A))
        for name, fn in kernels:
            fn()  # untimed: handles, workspace, kernel compilation
            rows.append((name, timed(fn, repeat, self.sync)[0]))
        return rows


def platform_for(args):
    """Host() or Device(); exits with a message (status 2) when --backend cupy has no CuPy or no GPU."""
    if args.backend == "numpy":
        return Host(args)
    try:
        backend.get_namespace("cupy")
    except ModuleNotFoundError as exc:
        print(f"benchmarks/roots.py --backend cupy: {exc}. Install CuPy on a machine with a CUDA GPU "
              "(pip install -e '.[gpu,bench]'), or run without --backend for the NumPy figures.", file=sys.stderr)
        raise SystemExit(2) from None
    return Device(args)


def methods(A, A_prev_root):
    """(name, callable, exponent of the result (for the reference), how to read the result) rows."""
    return [
        ("psd_power(-1/4) [eigh]", lambda: la.psd_power(A, -0.25), -0.25, lambda r: (r, "")),
        ("inv_root_psd(p=4) [eigh]", lambda: la.inv_root_psd(A, 4), -0.25, lambda r: (r, "")),
        ("newton_schulz -> A^-1/2", lambda: la.newton_schulz(A, on_fail="return"), -0.5,
         lambda r: (r.inv_sqrt, f"it={r.iterations} conv={r.converged} sqrt_err={{sqrt_err}}")),
        ("coupled_newton_inv_root p=4", lambda: la.coupled_newton_inv_root(A, 4, on_fail="return"), -0.25,
         lambda r: (r.root, f"it={r.iterations} conv={r.converged}")),
        ("psd_root_iteration p=4 cold", lambda: la.psd_root_iteration(A, 4), 0.25,
         lambda r: (r.root, f"it={r.iterations} conv={r.converged} fallback={r.fallback}")),
        ("psd_root_iteration p=4 warm", lambda: la.psd_root_iteration(A, 4, X0=A_prev_root), 0.25,
         lambda r: (r.root, f"it={r.iterations} conv={r.converged} fallback={r.fallback}")),
    ]


def run(args, plat) -> list[dict]:
    rows = []
    for n in args.sizes:
        t0 = time.perf_counter()
        A64 = statistic_like_spd(n, KAPPA, seed=n)
        g = np.random.default_rng(n + 1).standard_normal((n, 1))
        A64_prev = A64 + 1e-3 * (g @ g.T) / n  # the previous statistic: a small rank-1 step away (KrADagrad-like)
        refs = {}
        for dtype in args.dtypes:
            A_in = A64.astype(dtype).astype(np.float64)  # the exact matrix the dtype run sees
            refs[dtype] = reference_powers(A_in, (-0.25, -0.5, 0.5, 0.25))
        print(f"# n={n}: matrix and float64 references ready in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr, flush=True)
        repeat = args.repeat if n < LARGE else args.repeat_large
        for dtype in args.dtypes:
            A = plat.put(A64.astype(dtype))
            A_prev_root = la.psd_power(plat.put(A64_prev.astype(dtype)), 0.25)
            for threads in plat.threads:
                with plat.limits(threads):
                    base = plat.baselines(A, repeat)
                    t_eigh = base[0][1]
                    for bname, t in base:
                        rows.append(dict(n=n, dtype=dtype, threads=threads, method=bname, seconds=t,
                                         ratio=t / t_eigh, err=float("nan"), note=""))
                        print(f"  n={n} {dtype} threads={threads} {bname} {t:.3f} s", file=sys.stderr, flush=True)
                    for name, fn, p, read in methods(A, A_prev_root):
                        if plat.warm:
                            fn()
                        t, res = timed(fn, repeat, plat.sync)
                        X, note = read(res)
                        if len(base) > 1 and "[eigh]" in name:
                            note = f"{t / (t_eigh + base[1][1]):.2f}x eigh+GEMM {note}".rstrip()
                        if "{sqrt_err}" in note:
                            note = note.format(sqrt_err=f"{rel_err(res.sqrt, refs[dtype][0.5]):.1e}")
                        err = rel_err(X, refs[dtype][p])
                        rows.append(dict(n=n, dtype=dtype, threads=threads, method=name, seconds=t,
                                         ratio=t / t_eigh, err=err, note=note))
                        print(f"  n={n} {dtype} threads={threads} {name}: {t:.3f} s ({t / t_eigh:.2f}x eigh) "
                              f"err {err:.1e} {note}", file=sys.stderr, flush=True)
    return rows


def header(args) -> str:
    from threadpoolctl import threadpool_info

    u64 = 2.0**-53
    blas = sorted({f"{i.get('internal_api')} {i.get('version')} ({i.get('filepath', '').split('/')[-3]})"
                   for i in threadpool_info() if i.get("user_api") == "blas"})
    lines = [
        "# krad_ref root benchmark (benchmarks/roots.py)",
        f"# python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}, "
        f"cpus {os.cpu_count()}, OPENBLAS_THREAD_TIMEOUT={os.environ.get('OPENBLAS_THREAD_TIMEOUT')}",
        *device_lines(args),
        f"# BLAS pools: {'; '.join(blas)}",
        f"# matrix: SPD, kappa = {KAPPA:.0e}, power-law head + clustered floor (statistic-like), seed = n",
        f"# seconds: min over {args.repeat} runs ({args.repeat_large} at n >= {LARGE}); ratio = seconds / bare "
        "backend.eigh of the same matrix, same run, same thread count",
        "# err: ||X - X_ref||_F / ||X_ref||_F; X_ref = float64 eigh of the same (exactly upcast) input, because mp "
        "at n >= 256 is far too slow;",
        f"#      the reference's own error is ~ n u64 kappa |p| (= {256 * u64 * KAPPA * 0.25:.0e} at n = 256, "
        f"{2048 * u64 * KAPPA * 0.5:.0e} at n = 2048), so float64 rows at that level are at the reference's "
        "resolution.",
        "# newton_schulz err is for A^-1/2 (sqrt_err for A^1/2); the eigh rows compute A^-1/4; psd_root_iteration "
        "A^+1/4.",
        "# warm start: seed = psd_power(A_prev, 1/4), A_prev = A + 1e-3 g g^T / n (does not commute with A).",
    ]
    return "\n".join(lines)


def device_lines(args) -> list[str]:
    if args.backend != "cupy":
        return []
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    return [f"# backend cupy {cupy.__version__} on {name} (CUDA runtime {cupy.cuda.runtime.runtimeGetVersion()}); "
            "timings device-synchronised, each kernel warmed once; x eigh is against cupy.linalg.eigh"]


def table(rows) -> str:
    out = [f"{'n':>5} {'dtype':<8} {'thr':>3} {'method':<30} {'seconds':>9} {'x eigh':>7} {'rel err':>9}  note"]
    for r in rows:
        err = "-" if np.isnan(r["err"]) else f"{r['err']:.1e}"
        out.append(f"{r['n']:>5} {r['dtype']:<8} {r['threads']:>3} {r['method']:<30} {r['seconds']:>9.3f} "
                   f"{r['ratio']:>7.2f} {err:>9}  {r['note']}")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    ap.add_argument("--repeat", type=int, default=3, help="timing repeats below n = 2048 (minimum is reported)")
    ap.add_argument("--repeat-large", type=int, default=1, help="timing repeats at n >= 2048")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="BLAS thread counts (threadpoolctl)")
    ap.add_argument("--backend", choices=["numpy", "cupy"], default="numpy",
                    help="where the roots run (cupy: on the GPU, device-synchronised; see the module docstring)")
    args = ap.parse_args(argv)
    plat = platform_for(args)
    # warm the libraries (first-call loading is not part of any kernel's time)
    W = plat.put(statistic_like_spd(32, 10.0))
    backend.eigh(W)
    la.newton_schulz(W)
    rows = run(args, plat)
    print(header(args))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
