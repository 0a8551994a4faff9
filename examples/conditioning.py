"""The conditioning experiment of the KrADagrad paper (Sec. 5.1, Fig. 1): an ill-conditioned Kronecker quadratic.

    python examples/conditioning.py                      # the full run: n = 128, 250 steps, lr grid 1e-5 ... 10
    python examples/conditioning.py --quick              # CI smoke run: n = 32, 60 steps, 5 learning rates (~5 s)
    python examples/conditioning.py --out DIR --spectrum-exponent 1 --variant paper

Problem. X in R^{n x n} (n = 128), f(X) = tr(X^T A X B) with gradient 2 A X B (A, B symmetric), A = Q_A diag(lam)
Q_A^T and B = Q_B diag(lam) Q_B^T, Q_A, Q_B Haar-random orthogonal (seeded), kappa(A) = kappa(B) = 1e10. Every
optimizer starts from the same float32 X_0 (seeded standard normal), runs 250 steps in float32 (the loss and
the gradient are computed in float64 from the float32 X and the gradient is cast to float32, as the authors'
notebook does), over a log grid of learning rates; the learning rate with the lowest final loss is kept. The
script writes, under ``--out`` (default ``out/conditioning``):

  * ``conditioning.png``: left, the loss of each optimizer's best run (log scale); right, that loss divided by
    SGD's (the paper's Fig. 1, "each curve is divided by that of SGD"). Needs matplotlib; without it the tables
    are still written and a note says how to install it (``pip install -e '.[examples]'``).
  * ``results.md`` / ``results.csv``: per optimizer the best learning rate, final loss, final loss / SGD's,
    the minimum loss along the run, and how many grid points diverged; plus the two headline checks.
  * ``sweep.csv``: the final loss of every (optimizer, learning rate) run; ``curves.csv``: the best curves.

What comes from where (shared/notes/kradagrad-code.md Sec. 9, the authors' notebook
``experiments/quadratic_high_condition.ipynb`` at commit 1f566fc, the only commit with the paper's 128 x 128,
kappa = 1e10 configuration; Appendix G, which holds the paper's details, was not found):

  * spectrum: lam_i = 10^(-log10(kappa) (i / (n - 1))^q), rescaled to max 10, with the notebook's profile
    exponent q = 8 (most eigenvalues near 10, a tail falling to 1e-9). ``--spectrum-exponent 1`` gives a plain
    geometric spectrum instead (same kappa). Our RNG is NumPy's (seed 4750 for A, B; 95054 for X_0, the
    notebook's seeds), so the matrices are not the notebook's torch ones.
  * 250 steps; loss recorded before every step (and after the last one).
  * Kronecker methods, the authors' step driver (notes Sec. 2): norm grafting to ||G||_F (graft_type 0), the
    in-place "Nesterov" momentum with mu = 0.9 (M_k = mu^2 M_{k-1} + (1 + mu) U_k), start_preconditioning_step
    = 3 with the code's warm-up aliasing (W <- W - 2 mu lr G), roots every 3 steps (preconditioning_compute_steps
    = 3), statistics every step, beta2 = 1, matrix_eps = 1e-8, block_size = n + 1 (no blocking), eigh roots.
    ``transforms.shampoo_driver`` assembles exactly that around ``shampoo`` and ``kradagrad_star``.
  * Shampoo, ``variant="reference-code"`` (statistic eps I + sum G G^T, root eigh(S + 1e-8 I) with eigenvalues
    floored at eps): "shampoo32" all float32 (the code's double=False); "shampoo64" the code's double=True,
    i.e. ``stat_dtype="float64"`` (statistics, Grams, roots and preconditioning in float64: errata 19; roots
    follow the stat dtype). Extra curve "shampoo32/root64": float32 statistics with ``root_dtype="float64"``,
    the paper's *wording* ("double precision for negative matrix roots"), which the authors did not run.
  * KrADagrad* float32, ``variant="reference-code"``: L_0 = I / matrix_eps = 1e8 I, t = d (1 + tr(G G^T L)),
    roots eigh(L + 1e-8 I)^{1/4} clamped at 0, no damping.
  * KrADagrad float32 (``kradagrad``, the code's KradagradMM), ``variant="reference-code"``: its own driver, no
    grafting, the same in-place momentum; L_0 = I, damping matrix_eps = 1e-8, the code's sqrt(s) schedule;
    its counter starts at 0, so roots at s = 0, 3, 6, ... and preconditioning from s = 3. Built as
    ``chain(kradagrad, momentum)``. (At 1f566fc the notebook did not run KrADagrad; HEAD's notebook does.)
  * Adam: betas (0.9, 0.999), eps 1e-8 (``torch.optim.Adam`` defaults, as the notebook). SGD: no momentum (the
    notebook's ``torch.optim.SGD(lr=1e-3)``).
  * Learning rates: the notebook does not record its grid, only the values tried (Shampoo 1e-3, 5e-3, 1e-2;
    KrAD* 1e-3, 5e-3, 1e-2; KrAD 1e-2; Adam 1, 5; SGD 1e-3). We chose one 1-2-5 log grid 1e-5 ... 10 for every
    optimizer (19 values; it contains all of those), and flag a best value on the grid's edge.

Our choices beyond the notes: float32 X and state, the NumPy RNG, the common grid, the "shampoo32/root64" extra
curve, and ``--variant paper`` (every Kronecker method in its paper variant: Shampoo eps added at the root,
KrADagrad* L_0 = I with the Frobenius t, KrADagrad with strict alternation, spectral t and no damping, all inside
the same driver) as a sensitivity check. A run that produces a non-finite loss or raises inside an optimizer
counts as diverged for that learning rate.

The paper's headline (Sec. 5.1): Shampoo in double precision reaches the lowest final loss, and KrADagrad* in
single precision beats Shampoo in single precision; Adam is slower/worse. ``results.md`` states whether this run
reproduces the first two, with the numbers.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# NumPy and SciPy each bundle an OpenBLAS whose idle workers spin ~0.1 s after a call; alternating their GEMMs
# and eighs then runs several times slower (shared/notes/performance.md fact 2). Set before NumPy is imported.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402

from krad_ref import algorithm, transforms  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the examples' shared helpers (_common.py)
from _common import Progress, pyplot  # noqa: E402

SEED_PROBLEM = 4750  # the notebook's torch.manual_seed for A, B
SEED_START = 95054   # the notebook's seed for X_0
FULL = dict(n=128, steps=250, lrs=[m * 10.0**e for e in range(-5, 1) for m in (1, 2, 5)] + [10.0])
QUICK = dict(n=32, steps=60, lrs=[1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0])

#: display order and labels (the paper's names)
LABELS = {
    "sgd": "SGD",
    "adam": "Adam",
    "shampoo32": "Shampoo float32",
    "shampoo64": "Shampoo float64",
    "shampoo32_root64": "Shampoo float32, float64 roots",
    "kradagrad": "KrADagrad float32",
    "kradagrad_star": "KrADagrad* float32",
}


# ---------------------------------------------------------------------------------------------------------
# the problem

def spectrum(n: int, log10_kappa: float, q: float) -> np.ndarray:
    """lam_i = 10^(-log10_kappa (i/(n-1))^q) rescaled to max 10: kappa = 10^log10_kappa exactly (notebook)."""
    r = np.linspace(0.0, 1.0, n)
    lam = 10.0 ** (-log10_kappa * r**q)
    return lam * (10.0 / lam.max())


def haar_orthogonal(n: int, rng: np.random.Generator) -> np.ndarray:
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    return Q * np.sign(np.diag(R))


def make_problem(n: int, log10_kappa: float, q: float, seed: int = SEED_PROBLEM):
    """(A, B) float64 symmetric PD with the same spectrum and independent Haar eigenbases."""
    rng = np.random.default_rng(seed)
    lam = spectrum(n, log10_kappa, q)
    mats = []
    for _ in range(2):
        Q = haar_orthogonal(n, rng)
        H = (Q * lam) @ Q.T
        mats.append((H + H.T) / 2)
    return mats[0], mats[1]


def loss_and_grad(X32: np.ndarray, A: np.ndarray, B: np.ndarray):
    """f(X) = tr(X^T A X B) and 2 A X B, in float64 from the float32 X; the gradient is returned in float32."""
    X = X32.astype(np.float64)
    AXB = A @ X @ B
    return float(np.sum(X * AXB)), (2.0 * AXB).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# the optimizers

@dataclass(frozen=True)
class Spec:
    key: str
    transform: Any  # an Algorithm or a transforms.Transform (same init/update protocol)
    config: Any


def make_specs(n: int, variant: str, *, eps: float = 1e-8, root_freq: int = 3, start: int = 3,
               mu: float = 0.9) -> list[Spec]:
    """The optimizers of Fig. 1 with the notebook's hyperparameters (module docstring)."""
    shampoo = algorithm.get("shampoo")
    star = algorithm.get("kradagrad_star")
    alt = algorithm.get("kradagrad")
    adam = algorithm.get("adam")
    sgd = algorithm.get("sgd")
    code = variant == "reference-code"

    def driver(precond, cfg):
        t, c = transforms.shampoo_driver(precond, cfg, block_size=n + 1, start=start, mu=mu, nesterov=True,
                                         warmup="code-alias")
        return t, c

    specs = [Spec("sgd", sgd, sgd.Config()), Spec("adam", adam, adam.Config(eps=1e-8))]
    sh = dict(eps=eps, root_freq=root_freq, variant=variant)
    for key, extra in (("shampoo32", {}), ("shampoo64", dict(stat_dtype="float64")),
                       ("shampoo32_root64", dict(root_dtype="float64"))):
        specs.append(Spec(key, *driver(shampoo, shampoo.Config(**sh, **extra))))
    # KrADagrad (KradagradMM): its own step, no grafting, the code's in-place momentum
    alt_cfg = alt.Config(variant=variant, matrix_eps=eps, root_freq=root_freq, start_preconditioning_step=start,
                         **({} if code else dict(damping=0.0)))
    mom = transforms.momentum
    specs.append(Spec("kradagrad", transforms.chain(alt, mom),
                      transforms.ChainConfig((alt_cfg, transforms.MomentumConfig("inplace_nesterov", mu)))))
    star_cfg = star.Config(variant=variant, matrix_eps=eps, root_freq=root_freq)
    specs.append(Spec("kradagrad_star", *driver(star, star_cfg)))
    return specs


# ---------------------------------------------------------------------------------------------------------
# running

@dataclass
class Run:
    key: str
    lr: float
    losses: np.ndarray  # (steps + 1,), float64; NaN after a divergence
    final: float        # losses[-1] (inf when diverged)
    diverged: str       # "" or why
    seconds: float


def run_one(spec: Spec, lr: float, A, B, X0: np.ndarray, steps: int) -> Run:
    """steps updates X <- X - lr * direction from X0; loss recorded before each step and after the last."""
    t0 = time.perf_counter()
    losses = np.full(steps + 1, np.nan)
    X = X0.copy()
    why = ""
    try:
        state = spec.transform.init(X, spec.config)
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(steps + 1):
                f, G = loss_and_grad(X, A, B)
                if not (math.isfinite(f) and np.isfinite(G).all()):
                    why = f"non-finite loss or gradient at step {k}"
                    break
                losses[k] = f
                if k == steps:
                    break
                d, state = spec.transform.update(G, state, spec.config, params=X)
                X = X - np.float32(lr) * d
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:  # e.g. a factor lost definiteness
        why = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    final = losses[-1] if not why else math.inf
    return Run(spec.key, lr, losses, float(final), why, time.perf_counter() - t0)


def sweep(specs, lrs, A, B, X0, steps, quiet=False) -> dict[str, list[Run]]:
    prog = Progress(len(specs) * len(lrs), quiet)
    out = {}
    try:
        for spec in specs:
            out[spec.key] = []
            for lr in lrs:
                r = run_one(spec, lr, A, B, X0, steps)
                out[spec.key].append(r)
                prog.update(f"{r.key} lr={r.lr:.0e} final={r.final:.3g}" + (" (diverged)" if r.diverged else ""), r.seconds)
    finally:
        prog.close()
    return out


def best_runs(runs: dict[str, list[Run]]) -> dict[str, Run]:
    best = {}
    for key, rs in runs.items():
        ok = [r for r in rs if not r.diverged]
        best[key] = min(ok, key=lambda r: r.final) if ok else min(rs, key=lambda r: np.nanmin(r.losses))
    return best


# ---------------------------------------------------------------------------------------------------------
# outputs

def headline(best: dict[str, Run]) -> list[str]:
    """The two headline checks of Sec. 5.1, as sentences with the numbers."""
    lines = []
    s32, s64, ks = (best.get(k) for k in ("shampoo32", "shampoo64", "kradagrad_star"))
    if s32 and ks:
        yes = ks.final < s32.final
        below = ks.losses < s32.losses
        above = np.flatnonzero(~below)
        since = int(above[-1]) + 1 if above.size else 0
        when = (f"; lower at {int(below.sum())} of {below.size} recorded steps, continuously from step {since}"
                if since < below.size else f"; lower at {int(below.sum())} of {below.size} recorded steps")
        lines.append(f"KrADagrad* float32 beats Shampoo float32: {'YES' if yes else 'NO'} "
                     f"(final loss {ks.final:.4g} vs {s32.final:.4g}, ratio {ks.final / s32.final:.3g}{when})")
    if s64:
        others = {k: r.final for k, r in best.items() if k != "shampoo64"}
        k_min = min(others, key=others.get)
        yes = s64.final < others[k_min]
        lines.append(f"Shampoo float64 has the lowest final loss: {'YES' if yes else 'NO'} "
                     f"({s64.final:.4g}; best other: {LABELS[k_min]} {others[k_min]:.4g})")
    return lines


def write_tables(out: Path, runs, best, meta: dict) -> tuple[Path, Path]:
    sgd = best["sgd"].final
    keys = [k for k in LABELS if k in best]
    lrs = [r.lr for r in next(iter(runs.values()))]
    rows = []
    for k in keys:
        b = best[k]
        n_div = sum(1 for r in runs[k] if r.diverged)
        edge = b.lr in (lrs[0], lrs[-1]) and not b.diverged
        rows.append(dict(optimizer=LABELS[k], id=k, best_lr=b.lr, final_loss=b.final, final_over_sgd=b.final / sgd,
                         min_loss=float(np.nanmin(b.losses)), diverged_lrs=n_div, n_lrs=len(runs[k]),
                         note=("best lr on grid edge" if edge else "") + (b.diverged if b.diverged else "")))
    csv_path = out / "results.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6e}" if isinstance(v, float) else v) for k, v in r.items()})
    md = out / "results.md"
    lines = [
        f"# Conditioning experiment (KrADagrad Sec. 5.1): n = {meta['n']}, kappa = 1e{meta['log10_kappa']:g}, "
        f"profile q = {meta['q']:g}, {meta['steps']} steps, variant = {meta['variant']}, seeds = {meta['seeds']}",
        "",
        f"Learning-rate grid ({len(lrs)} values): {', '.join(f'{x:g}' for x in lrs)}. "
        f"Initial loss {best['sgd'].losses[0]:.4g}.",
        "",
        "| optimizer | best lr | final loss | final / SGD | min loss | diverged lrs | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['optimizer']} | {r['best_lr']:.0e} | {r['final_loss']:.4e} | {r['final_over_sgd']:.3e} "
                     f"| {r['min_loss']:.4e} | {r['diverged_lrs']}/{r['n_lrs']} | {r['note']} |")
    lines += ["", "Headline (paper Sec. 5.1):", ""] + [f"- {s}" for s in headline(best)]
    lines += ["", f"Wall time {meta['seconds']:.0f} s. Written by examples/conditioning.py."]
    md.write_text("\n".join(lines) + "\n")
    with open(out / "sweep.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "lr", "final_loss", "diverged", "seconds"])
        for k in keys:
            for r in runs[k]:
                w.writerow([k, f"{r.lr:.1e}", f"{r.final:.6e}", r.diverged, f"{r.seconds:.2f}"])
    with open(out / "curves.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["step"] + keys)
        for i in range(len(best["sgd"].losses)):
            w.writerow([i] + [f"{best[k].losses[i]:.6e}" for k in keys])
    return md, csv_path


def plot(out: Path, best: dict[str, Run], meta: dict) -> Path | None:
    plt = pyplot()
    if plt is None:
        return None
    keys = [k for k in LABELS if k in best]
    sgd = best["sgd"].losses
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 4.6))
    styles = {"shampoo32_root64": ":", "sgd": "--"}
    for k in keys:
        b = best[k]
        lab = f"{LABELS[k]} (lr {b.lr:g})"
        ls = styles.get(k, "-")
        ax0.semilogy(b.losses, ls, label=lab, lw=1.6)
        with np.errstate(divide="ignore", invalid="ignore"):
            ax1.semilogy(b.losses / sgd, ls, label=lab, lw=1.6)
    ax0.set_title("loss (best learning rate per optimizer)")
    ax1.set_title("loss / SGD loss (paper Fig. 1)")
    for ax in (ax0, ax1):
        ax.set_xlabel("step")
        ax.grid(True, which="major", alpha=0.3)
    ax0.set_ylabel("tr(X^T A X B)")
    ax0.legend(fontsize=8, loc="upper right", framealpha=0.9)
    fig.suptitle(f"X in R^{{{meta['n']}x{meta['n']}}}, kappa(A) = kappa(B) = 1e{meta['log10_kappa']:g} "
                 f"(profile q = {meta['q']:g}), variant {meta['variant']}", fontsize=10)
    fig.tight_layout()
    path = out / "conditioning.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="CI smoke run: n = 32, 60 steps, 6 learning rates")
    ap.add_argument("--out", type=Path, default=Path("out/conditioning"), help="output directory")
    ap.add_argument("--n", type=int, help="matrix size (default 128; --quick: 32)")
    ap.add_argument("--steps", type=int, help="number of steps (default 250; --quick: 60)")
    ap.add_argument("--lrs", type=float, nargs="+", help="learning-rate grid (default 1-2-5 grid 1e-5 ... 10)")
    ap.add_argument("--log10-kappa", type=float, default=10.0, help="log10 of kappa(A) = kappa(B) (default 10)")
    ap.add_argument("--spectrum-exponent", type=float, default=8.0,
                    help="profile exponent q of the spectrum (8: the authors' notebook; 1: geometric)")
    ap.add_argument("--variant", choices=["reference-code", "paper"], default="reference-code",
                    help="variant of every Kronecker method (default: the authors' code, which produced Fig. 1)")
    ap.add_argument("--optimizers", nargs="+", choices=list(LABELS), default=list(LABELS),
                    help="subset to run (sgd is always included: it is the reference curve)")
    ap.add_argument("--seed", type=int, default=None,
                    help="seed for A, B (X_0 uses seed + 1); default: the notebook's seeds 4750 and 95054")
    ap.add_argument("--threads", type=int, default=1,
                    help="BLAS threads (threadpoolctl, if installed; default 1: at n = 128 threads only add "
                         "synchronisation)")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    args = ap.parse_args(argv)
    base = QUICK if args.quick else FULL
    n = args.n or base["n"]
    steps = args.steps or base["steps"]
    lrs = sorted(args.lrs or base["lrs"])
    keys = ["sgd"] + [k for k in args.optimizers if k != "sgd"]
    seeds = (SEED_PROBLEM, SEED_START) if args.seed is None else (args.seed, args.seed + 1)
    t0 = time.perf_counter()
    A, B = make_problem(n, args.log10_kappa, args.spectrum_exponent, seed=seeds[0])
    X0 = np.random.default_rng(seeds[1]).standard_normal((n, n)).astype(np.float32)
    specs = [s for s in make_specs(n, args.variant) if s.key in keys]
    print(f"conditioning: n={n}, kappa=1e{args.log10_kappa:g}, q={args.spectrum_exponent:g}, steps={steps}, "
          f"{len(specs)} optimizers x {len(lrs)} learning rates, variant={args.variant}, seeds={seeds}",
          file=sys.stderr)
    try:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(limits=args.threads)
    except ImportError:
        limits = contextlib.nullcontext()
    with limits:
        runs = sweep(specs, lrs, A, B, X0, steps, quiet=args.quiet)
    best = best_runs(runs)
    meta = dict(n=n, steps=steps, log10_kappa=args.log10_kappa, q=args.spectrum_exponent, variant=args.variant,
                seeds=seeds, seconds=time.perf_counter() - t0)
    args.out.mkdir(parents=True, exist_ok=True)
    md, _ = write_tables(args.out, runs, best, meta)
    png = plot(args.out, best, meta)
    print(md.read_text())
    print(f"wrote {md}, {args.out / 'results.csv'}, {args.out / 'sweep.csv'}, {args.out / 'curves.csv'}"
          + (f", {png}" if png else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
