"""MBAG against first-order AdaGrad/Adam and full-matrix AdaGrad on a small ill-conditioned problem.

    python examples/mbag.py                 # full run: 300 steps, 10 learning rates, 3 trials (~1 min on 2 cores)
    python examples/mbag.py --quick         # smoke run: 100 steps, 4 learning rates, 1 trial (~10 s)
    python examples/mbag.py --out DIR --steps 600 --trials 5 --noise 0

Problem (ours; the paper's CIFAR-10/ResNet-56 and FACES/CURVES autoencoders are out of reach of a reference
implementation). A linear model W in R^{m x n} (m = 8 outputs, n = 16 inputs, 128 parameters) fitted by generalized
least squares with a correlated output metric,

    f(W) = (1 / 2N) sum_i (W x_i - y_i)^T M (W x_i - y_i),   gradient  M (W X - Y) X^T / N,

x_i ~ N(0, C) with C = Q_C diag(10^{0 .. -3}) Q_C^T (n x n, dense eigenbasis), M = Q_M diag(10^{0 .. -2}) Q_M^T
(m x m), y_i = W* x_i + 0.1 e_i (Gaussian label noise, so the stochastic gradients stay noisy at the optimum as
in deep-learning training; ``--noise 0`` gives the interpolation regime), N = 1024 samples, mini-batches of 32.
In MBAG's row-major flat vec(W^T) the
Hessian is M kron C (kappa = 1e5, non-diagonal): tau = n groups (one per output neuron, the paper's choice for
fully-connected layers) capture the within-row blocks M_ii C but not the coupling across rows through M; tau = mn
(layer-wise) captures everything; tau = 1 is diagonal. So the MBAG ladder tau = 1, 4, 16, 128 interpolates between
a first-order method and full-matrix AdaGrad, which is the paper's claim (Sec. VII: "a smooth interpolation between
the first-order and second-order algorithms").

Optimizers (``krad_ref`` algorithm ids), every one from the same W_0 = 0 and the same mini-batch orders:
  * AdaGrad (diagonal): ``adagrad_diag``, eps = lam inside the root; full-matrix AdaGrad: ``adagrad_full``,
    (lam I + sum g g^T)^{-1/2} g (the form MBAG reduces to, errata 5), lam = 0.1 for both (MBAG's damping, so that
    only the block structure differs); Adam: ``adam`` (PyTorch defaults). The AdaGrads have no momentum, MBAG has
    beta = 0.9, so two momentum-matched full-matrix references run too: "full-matrix AdaGrad + momentum 0.9" = MBAG
    with one group of all mn weights, exact roots and T_sqr = 1 (errata 5's bridge, with beta = 0.9), and the same
    with MBAG's T_sqr = 10 ("MBAG tau=mn, exact roots"), which differs from MBAG tau = n in the block structure
    only: the reference for "MBAG lies between first-order and full-matrix".
  * MBAG (``mbag``) with the paper's autoencoder settings lam = 0.1, beta = 0.9, T_NS = 7, but T_sqr = 10 (the paper's
    50 would leave 300-step runs with 6 refreshes): tau in {1, 4, 16 = n, 128 = mn}; tau = 16 and 128 also with
    exact (eigh) roots; tau = 16 as MBAG-N (``mbag_n``, G^{-1}) and as MBAG-EMA (``mbag_ema``, alpha = 0.99).
Each optimizer runs a learning-rate sweep (a 1-3-10 log grid); per trial the excess loss f(W_t) - f* (f* from the
normal equations) is recorded on the full data after every step; the median over trials is the curve; the best
learning rate minimises the median of the last 10 % of the curve. A run whose loss becomes non-finite or exceeds 1e6
times the initial one is "diverged".

Outputs under ``--out`` (default out/mbag): ``mbag.png`` (best curves; final excess loss vs learning rate),
``results.md`` and ``results.csv`` (one row per optimizer), ``sweep.csv`` (every run), ``curves.csv``. matplotlib and
tqdm are optional (the examples extra): without matplotlib the tables are still written.
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
# The matrices here are at most 128 x 128: BLAS threads only add contention (on a loaded 2-core machine a 128 x 128
# eigh per step ran 100x slower with the default thread pool). Set before NumPy loads its BLAS; override from outside.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from krad_ref import algorithm, mbag  # noqa: E402,F401  (mbag registers "mbag", "mbag_ema", "mbag_n")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the examples' shared helpers (_common.py)
from _common import Progress, pyplot  # noqa: E402

SEED_PROBLEM = 2024
FULL = dict(steps=300, trials=3, lrs=[1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0, 10.0, 30.0])
QUICK = dict(steps=100, trials=1, lrs=[1e-2, 1e-1, 3e-1, 3.0])
NOISE = 0.1
LAM = 0.1


@dataclass(frozen=True)
class Spec:
    key: str
    label: str
    alg: Any
    config: Any
    family: str  # "first-order", "mbag", "full-matrix"


def make_specs(m: int, n: int, t_sqr: int = 10, t_ns: int = 7) -> list[Spec]:
    g = algorithm.get
    mb = g("mbag")
    common = dict(lam=LAM, beta=0.9, T_sqr=t_sqr, T_NS=t_ns)
    specs = [
        Spec("adagrad_diag", "AdaGrad (diagonal)", g("adagrad_diag"),
             g("adagrad_diag").Config(eps=LAM, eps_placement="inside"), "first-order"),
        Spec("adam", "Adam", g("adam"), g("adam").Config(), "first-order"),
    ]
    for tau in (1, 4, n, m * n):
        name = {1: "diagonal", n: "per output neuron", m * n: "layer-wise"}.get(tau, "")
        specs.append(Spec(f"mbag_tau{tau}", f"MBAG tau={tau}" + (f" ({name})" if name else ""), mb,
                          mb.Config(tau=tau, **common), "mbag"))
    specs += [
        Spec(f"mbag_tau{n}_eigh", f"MBAG tau={n}, exact roots", mb, mb.Config(tau=n, root_method="eigh", **common),
             "mbag"),
        # the full-matrix reference on MBAG's own schedule: one group of all mn weights, exact roots every T_sqr steps
        Spec(f"mbag_tau{m * n}_eigh", f"MBAG tau={m * n}, exact roots (full matrix, same schedule)", mb,
             mb.Config(tau=m * n, root_method="eigh", **common), "full-matrix"),
        Spec(f"mbag_n_tau{n}", f"MBAG-N tau={n}", g("mbag_n"), g("mbag_n").Config(tau=n, lam=LAM, beta=0.9), "mbag"),
        Spec(f"mbag_ema_tau{n}", f"MBAG-EMA tau={n}", g("mbag_ema"),
             g("mbag_ema").Config(tau=n, alpha=0.99, **common), "mbag"),
        Spec("adagrad_full", "AdaGrad (full matrix)", g("adagrad_full"),
             g("adagrad_full").Config(delta=LAM, form="kradagrad"), "full-matrix"),
        # one group of all mn weights, exact roots every step: full-matrix AdaGrad with MBAG's heavy-ball momentum
        Spec("adagrad_full_momentum", "AdaGrad (full matrix) + momentum 0.9", mb,
             mb.Config(tau=m * n, lam=LAM, beta=0.9, T_sqr=1, root_method="eigh"), "full-matrix"),
    ]
    return specs


# ---------------------------------------------------------------------------------------------------------
# the problem

def _rotated(d: int, lo_exp: float, rng) -> np.ndarray:
    Q, R = np.linalg.qr(rng.standard_normal((d, d)))
    Q = Q * np.sign(np.diag(R))
    A = (Q * np.logspace(0.0, lo_exp, d)) @ Q.T
    return (A + A.T) / 2


@dataclass
class Problem:
    X: np.ndarray   # (n, N)
    Y: np.ndarray   # (m, N)
    M: np.ndarray   # (m, m) SPD output metric
    f_star: float
    W_opt: np.ndarray

    def loss(self, W) -> float:
        R = W @ self.X - self.Y
        return 0.5 * float(np.sum(R * (self.M @ R))) / self.X.shape[1]

    def grad(self, W, idx) -> np.ndarray:
        Xb = self.X[:, idx]
        return self.M @ (W @ Xb - self.Y[:, idx]) @ Xb.T / len(idx)


def make_problem(m=8, n=16, N=1024, noise=0.0, seed=SEED_PROBLEM) -> Problem:
    rng = np.random.default_rng(seed)
    C = _rotated(n, -3.0, rng)
    M = _rotated(m, -2.0, rng)
    X = np.linalg.cholesky(C) @ rng.standard_normal((n, N))
    W_true = rng.standard_normal((m, n))
    Y = W_true @ X + noise * rng.standard_normal((m, N))
    W_opt = np.linalg.solve(X @ X.T, X @ Y.T).T  # normal equations (independent of M)
    p = Problem(X, Y, M, 0.0, W_opt)
    p.f_star = p.loss(W_opt)
    return p


# ---------------------------------------------------------------------------------------------------------
# running

@dataclass
class Run:
    key: str
    lr: float
    curves: np.ndarray  # (trials, steps + 1) excess loss f - f*; NaN after a divergence
    diverged: int       # trials that diverged
    seconds: float

    @property
    def median(self) -> np.ndarray:
        with np.errstate(all="ignore"):
            c = np.where(np.isnan(self.curves), np.inf, self.curves)
            return np.median(c, axis=0)

    @property
    def score(self) -> float:
        tail = self.median[-max(1, len(self.median) // 10):]
        return float(np.mean(tail)) if np.all(np.isfinite(tail)) else math.inf


def batch_orders(N: int, steps: int, batch: int, trials: int) -> list[np.ndarray]:
    return [np.random.default_rng(1000 + k).integers(0, N, size=(steps, batch)) for k in range(trials)]


def run_one(spec: Spec, lr: float, prob: Problem, orders, steps: int) -> Run:
    t0 = time.perf_counter()
    m, n = prob.M.shape[0], prob.X.shape[0]
    curves = np.full((len(orders), steps + 1), np.nan)
    diverged = 0
    for k, order in enumerate(orders):
        W = np.zeros((m, n))
        f0 = prob.loss(W) - prob.f_star
        state = spec.alg.init(W, spec.config)
        try:
            with np.errstate(over="ignore", invalid="ignore"):
                for t in range(steps + 1):
                    e = prob.loss(W) - prob.f_star
                    if not (math.isfinite(e) and e <= 1e6 * f0):
                        diverged += 1
                        break
                    curves[k, t] = max(e, 0.0)
                    if t == steps:
                        break
                    d, state = spec.alg.update(prob.grad(W, order[t]), state, spec.config)
                    W = W - lr * d
        except (ValueError, ArithmeticError, np.linalg.LinAlgError):
            diverged += 1
    return Run(spec.key, lr, curves, diverged, time.perf_counter() - t0)


def sweep(specs, lrs, prob, orders, steps, quiet=False) -> dict[str, list[Run]]:
    prog = Progress(len(specs) * len(lrs), quiet)
    out: dict[str, list[Run]] = {}
    try:
        for spec in specs:
            out[spec.key] = []
            for lr in lrs:
                r = run_one(spec, lr, prob, orders, steps)
                out[spec.key].append(r)
                prog.update(f"{r.key} lr={r.lr:.0e} score={r.score:.3g}" + (f" ({r.diverged} diverged)" if r.diverged else ""), r.seconds)
    finally:
        prog.close()
    return out


def _one_blas_thread(fn, *args, **kw):
    """Run fn with one BLAS thread (threadpoolctl, installed with scikit-learn), for when NumPy was loaded before
    this module could set the environment (e.g. under pytest); without threadpoolctl, as it is."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return fn(*args, **kw)
    with threadpool_limits(limits=1, user_api="blas"):
        return fn(*args, **kw)


def best_runs(runs: dict[str, list[Run]]) -> dict[str, Run]:
    return {k: min(rs, key=lambda r: (r.score, r.lr)) for k, rs in runs.items()}


# ---------------------------------------------------------------------------------------------------------
# outputs

def findings(specs, best: dict[str, Run], n: int, m: int) -> list[str]:
    """The paper's qualitative claims, checked on this run, as sentences with the numbers."""
    s = {k: r.score for k, r in best.items()}
    out = []
    first = min(s["adagrad_diag"], s["adam"])
    full_s, full_1, full = s[f"mbag_tau{m * n}_eigh"], s["adagrad_full_momentum"], s["adagrad_full"]
    mb = s[f"mbag_tau{n}"]
    t_sqr = next(sp.config.T_sqr for sp in specs if sp.key == f"mbag_tau{m * n}_eigh")
    out.append(f"MBAG (tau = n = {n}) lies between the first-order methods (best of diagonal AdaGrad and Adam) and "
               f"the full-matrix statistic with exact roots on the same schedule: "
               f"{'YES' if full_s <= mb <= first else 'NO'} "
               f"(final excess loss {first:.3g} >= {mb:.3g} >= {full_s:.3g}?)")
    out.append(f"MBAG (tau = {n}) vs full-matrix AdaGrad: {mb:.3g} vs {full:.3g} without momentum, {full_1:.3g} with "
               f"momentum 0.9 and roots every step (T_sqr = 1; with T_sqr = {t_sqr}: {full_s:.3g})")
    ladder = [s[f"mbag_tau{t}"] for t in (1, 4, n, m * n)]
    mono = all(a >= b for a, b in zip(ladder, ladder[1:]))
    out.append(f"Larger groups help monotonically (tau = 1, 4, {n}, {m * n}; 'a smooth interpolation between the first-"
               f"order and second-order algorithms'): {'YES' if mono else 'NO'} "
               f"({', '.join(f'{v:.3g}' for v in ladder)})")
    out.append(f"MBAG beats MBAG-N (the paper's FACES finding, 'the importance of taking square root'): "
               f"{'YES' if mb < s[f'mbag_n_tau{n}'] else 'NO'} ({mb:.3g} vs {s[f'mbag_n_tau{n}']:.3g})")
    ex = s[f"mbag_tau{n}_eigh"]
    out.append(f"Newton-Schulz roots (T_NS = 7) vs exact roots at tau = {n}: {mb:.3g} vs {ex:.3g} "
               f"(ratio {mb / ex:.3g})" if ex > 0 else "the exact-root run reached 0 loss")
    out.append(f"MBAG-EMA (alpha = 0.99, tau = {n}): {s[f'mbag_ema_tau{n}']:.3g}")
    return out


def write_tables(out: Path, specs, runs, best, meta) -> Path:
    rows = []
    lrs = [r.lr for r in next(iter(runs.values()))]
    for sp in specs:
        b = best[sp.key]
        med = b.median
        e0 = med[0]
        hit = np.nonzero(med <= 1e-2 * e0)[0]
        edge = b.lr in (lrs[0], lrs[-1])
        rows.append(dict(optimizer=sp.label, id=sp.key, family=sp.family, best_lr=b.lr, final_excess=b.score,
                         steps_to_1pct=int(hit[0]) if hit.size else -1,
                         diverged_runs=sum(r.diverged for r in runs[sp.key]),
                         note="best lr on grid edge" if edge else ""))
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6e}" if isinstance(v, float) else v) for k, v in r.items()})
    md = out / "results.md"
    lines = [
        f"# MBAG vs AdaGrad / Adam / full-matrix AdaGrad: GLS with W in R^{{{meta['m']}x{meta['n']}}}, "
        f"Hessian M kron C (kappa 1e5), label noise {meta['noise']:g}, {meta['steps']} steps, batch {meta['batch']}, "
        f"{meta['trials']} trial(s)",
        "",
        f"Learning rates: {', '.join(f'{x:g}' for x in lrs)}. Initial excess loss {meta['e0']:.4g}. MBAG: lam = {LAM}, "
        f"beta = 0.9, T_sqr = {meta['t_sqr']}, T_NS = {meta['t_ns']}.",
        "",
        "| optimizer | family | best lr | final excess loss (median, last 10 %) | steps to 1 % | diverged runs "
        "| note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['optimizer']} | {r['family']} | {r['best_lr']:g} | {r['final_excess']:.4e} | "
                     f"{r['steps_to_1pct'] if r['steps_to_1pct'] >= 0 else '-'} | {r['diverged_runs']} | {r['note']} |")
    lines += ["", "Findings (paper Sec. VI-VII):", ""] + [f"- {x}" for x in findings(specs, best, meta["n"], meta["m"])]
    lines += ["", f"Wall time {meta['seconds']:.0f} s. Written by examples/mbag.py."]
    md.write_text("\n".join(lines) + "\n")
    with open(out / "sweep.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "lr", "final_excess", "diverged_trials", "seconds"])
        for sp in specs:
            for r in runs[sp.key]:
                w.writerow([sp.key, f"{r.lr:.1e}", f"{r.score:.6e}", r.diverged, f"{r.seconds:.2f}"])
    with open(out / "curves.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step"] + [sp.key for sp in specs])
        for i in range(meta["steps"] + 1):
            w.writerow([i] + [f"{best[sp.key].median[i]:.6e}" for sp in specs])
    return md


def plot(out: Path, specs, runs, best, meta) -> Path | None:
    plt = pyplot()
    if plt is None:
        return None
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(13, 6.4))
    styles = {"first-order": "--", "mbag": "-", "full-matrix": ":"}
    cmap = plt.get_cmap("tab20")
    w = 10  # display only: a running mean over 10 steps (the tables use the raw medians)
    for i, sp in enumerate(specs):
        b = best[sp.key]
        color = cmap((2 * i) % 20 + (2 * i) // 20)  # the dark tab20 shades first, then the light ones
        kw = dict(ls=styles[sp.family], color=color, lw=2.0 if sp.family != "mbag" else 1.6)
        med = np.where(np.isfinite(b.median), b.median, np.nan)
        smooth = np.convolve(med, np.ones(w) / w, mode="valid")
        ax0.semilogy(np.arange(w - 1, len(med)), np.maximum(smooth, 1e-12), label=f"{sp.label} (lr {b.lr:g})", **kw)
        lrs = [r.lr for r in runs[sp.key]]
        sc = [r.score if math.isfinite(r.score) else np.nan for r in runs[sp.key]]
        ax1.loglog(lrs, np.maximum(sc, 1e-12), marker="o", ms=3, **kw)
    ax0.set_ylim(top=30 * meta["e0"])
    ax0.set_title(f"excess loss f(W_t) - f*, best lr, median over trials ({w}-step running mean)", fontsize=10)
    ax0.set_xlabel("step")
    ax1.set_title("final excess loss (last 10 %) vs learning rate (missing: diverged)", fontsize=10)
    ax1.set_xlabel("learning rate")
    for ax in (ax0, ax1):
        ax.grid(True, which="major", alpha=0.3)
    fig.legend(loc="lower center", ncol=3, fontsize=8.5, frameon=False)
    fig.suptitle(f"GLS, W in R^{{{meta['m']}x{meta['n']}}}, Hessian M kron C with kappa = 1e5, label noise "
                 f"{meta['noise']:g}; MBAG lam = {LAM}, beta = 0.9, T_sqr = {meta['t_sqr']}, T_NS = {meta['t_ns']}",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.17, 1, 1))
    path = out / "mbag.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 100 steps, 4 learning rates, 1 trial")
    ap.add_argument("--out", type=Path, default=Path("out/mbag"), help="output directory (default out/mbag)")
    ap.add_argument("--steps", type=int, help="steps per run (default 300; --quick 100)")
    ap.add_argument("--noise", type=float, default=NOISE, help="label noise (default 0.1; 0: interpolation regime)")
    ap.add_argument("--trials", type=int, help="mini-batch orders per run (default 3; --quick 1)")
    ap.add_argument("--lrs", type=float, nargs="+", help="learning-rate grid")
    ap.add_argument("--batch", type=int, default=32, help="mini-batch size (default 32)")
    ap.add_argument("--t-sqr", type=int, default=10, help="MBAG root interval T_sqr (default 10; paper 50)")
    ap.add_argument("--t-ns", type=int, default=7,
                    help="Newton-Schulz steps T_NS (default 7, the paper's autoencoders)")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    args = ap.parse_args(argv)
    base = QUICK if args.quick else FULL
    steps = args.steps or base["steps"]
    trials = args.trials or base["trials"]
    lrs = sorted(args.lrs or base["lrs"])
    t0 = time.perf_counter()
    prob = make_problem(noise=args.noise)
    m, n = prob.M.shape[0], prob.X.shape[0]
    specs = make_specs(m, n, args.t_sqr, args.t_ns)
    orders = batch_orders(prob.X.shape[1], steps, args.batch, trials)
    print(f"mbag example: W {m}x{n}, {steps} steps, {len(specs)} optimizers x {len(lrs)} learning rates x {trials} "
          f"trial(s)", file=sys.stderr)
    runs = _one_blas_thread(sweep, specs, lrs, prob, orders, steps, quiet=args.quiet)
    best = best_runs(runs)
    meta = dict(m=m, n=n, noise=args.noise, steps=steps, trials=trials, batch=args.batch, t_sqr=args.t_sqr,
                t_ns=args.t_ns,
                e0=prob.loss(np.zeros((m, n))) - prob.f_star, seconds=time.perf_counter() - t0)
    args.out.mkdir(parents=True, exist_ok=True)
    md = write_tables(args.out, specs, runs, best, meta)
    png = plot(args.out, specs, runs, best, meta)
    print(md.read_text())
    print(f"wrote {md}, {args.out / 'results.csv'}, {args.out / 'sweep.csv'}, {args.out / 'curves.csv'}"
          + (f", {png}" if png else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
