"""Block EGOP reparameterization of a 64-32-10 ReLU network on the UCI digits (EGOP arXiv 2502.01594 v1, Fig. 1 right).

    python examples/egop_digits.py                # the full run: M = 2368 gradient samples, 200 epochs, 5 trials
    python examples/egop_digits.py --quick        # CI smoke run: M = 256, 12 epochs, 2 trials, one rate each (~20 s)
    python examples/egop_digits.py --out DIR --epochs 100 --trials 3 --optimizers adam adagrad sgd_momentum

Problem (``krad_ref.problems``): Linear(64 -> 32) -> ReLU -> Linear(32 -> 10) -> log-softmax, mean cross-entropy,
d = 2410 parameters in PyTorch order (W1, b1, W2, b2), weights flattened row-major. Data: scikit-learn's digits
(1797 images of 8 x 8 raw pixels 0..16) split stratified 1198 / 199 / 400 (``problems.load_digits_split``: the
paper trains on the 3823 images of optdigits.tra, which scikit-learn does not ship; errata 22).

Block reparameterization (Sec. 5, Eq. 5; notes Sec. 9 and 12): one orthogonal basis per weight matrix (2048 and 320
coordinates), biases not reparameterized. rho is the network's initialization (Xavier normal weights, PyTorch's
uniform biases: ``problems.network_init_sampler``); M = number of weight parameters (2368) samples, each a fresh
theta ~ rho with the next minibatch of 300 training images (``egop.estimate_block_egop``; the paper's stochastic
oracle). One basis is estimated per run and shared by the trials (our choice; the paper does not say).

Training (notes Sec. 12): minibatches of 300 in a fixed order (shuffle=False, as the authors' DataLoader), constant
learning rate, PyTorch's optimizer settings: Adam (0.9, 0.999, eps 1e-8), Adagrad g / (sqrt(v) + 1e-10) with
v_0 = 0 (errata 30), optionally SGD with momentum 0.9. Every trial starts from a fresh theta_0 ~ rho; the
reparameterized run starts from y_0 = V^T theta_0 and trains f~(y) = f(V y) with the same minibatches. Learning
rates: the full run sweeps ``--lrs`` in original coordinates and keeps, per optimizer, the rate with the best median
(over trials) maximum validation accuracy (ties: lower median final training loss), the paper's rule; the
reparameterized run uses the same rate. ``--quick`` skips the sweep (Adam 0.01, Adagrad 0.04).

Outputs under ``--out`` (default ``out/egop_digits``): ``egop_digits.png`` (training loss and validation accuracy by
epoch, median over trials; the block EGOP spectra), ``results.md`` / ``results.csv`` and ``curves.csv``.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import numpy as np  # noqa: E402

from krad_ref import adagrad, egop, problems  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the examples' shared helpers (_common.py)
from _common import Progress, pyplot  # noqa: E402

SIZES = (64, 32, 10)
BATCH = 300
OPTIMIZERS = ("adam", "adagrad", "sgd_momentum")
LABELS = {"adam": "Adam", "adagrad": "Adagrad", "sgd_momentum": "SGD + momentum"}
COLORS = {"adam": "tab:red", "adagrad": "tab:blue", "sgd_momentum": "tab:green"}
COORDS = ("original", "reparam")
QUICK_LRS = {"adam": 0.01, "adagrad": 0.04, "sgd_momentum": 0.004}
FULL = dict(M=None, epochs=200, trials=5, lrs=[0.0025, 0.005, 0.01, 0.02, 0.04, 0.08])
QUICK = dict(M=256, epochs=12, trials=2, lrs=None)
SEED = 342


def make_optimizer(key: str):
    if key == "adam":
        return adagrad.adam, adagrad.AdamConfig(b1=0.9, b2=0.999, eps=1e-8)
    if key == "adagrad":
        return adagrad.adagrad_diag, adagrad.AdagradDiagConfig(eps=1e-10, eps_placement="outside",
                                                               initial_accumulator=0.0)
    if key == "sgd_momentum":
        return adagrad.sgd, adagrad.SgdConfig(momentum=0.9)
    raise ValueError(key)


def minibatches(X, y, batch: int = BATCH):
    """The fixed-order minibatches of one epoch (shuffle=False; the last one may be smaller)."""
    return [(X[i:i + batch], y[i:i + batch]) for i in range(0, X.shape[0], batch)]


def estimate_basis(data, M: int, seed: int):
    """Block EGOP (Eq. 5) of the two weight matrices from M samples theta_k ~ rho, each with the next minibatch."""
    blocks, d = problems.relu_network_blocks(SIZES)
    batches = minibatches(data.X_train, data.y_train)
    k = [0]

    def grad_fn(theta):  # the stochastic oracle: sample k uses minibatch k mod (number of batches)
        Xb, yb = batches[k[0] % len(batches)]
        k[0] += 1
        return problems.relu_network_value_and_grad(theta, Xb, yb, SIZES)[1]

    res = egop.estimate_block_egop(grad_fn, problems.network_init_sampler(SIZES), M, blocks, seed=seed)
    return res, d


def train(key: str, lr: float, data, theta0: np.ndarray, epochs: int, basis=None):
    """Train T = theta0.shape[0] networks at once (rows), original coordinates (basis None) or f~(y) = f(V y).

    Returns dict of (epochs + 1, T) arrays: train_loss (full training set), val_acc; and test_acc (T,).
    Diverged runs (non-finite loss) keep NaN from then on.
    """
    alg, cfg = make_optimizer(key)
    T = theta0.shape[0]
    to_y = (lambda X: X) if basis is None else (lambda X: np.asarray(egop.to_reparam(X.T, basis)).T)  # noqa: E731
    to_x = (lambda Y: Y) if basis is None else (lambda Y: np.asarray(egop.from_reparam(Y.T, basis)).T)  # noqa: E731
    Y = to_y(theta0)
    state = alg.init(Y.shape, cfg, dtype=np.float64, xp=np)
    batches = minibatches(data.X_train, data.y_train)
    hist = dict(train_loss=np.full((epochs + 1, T), np.nan), val_acc=np.full((epochs + 1, T), np.nan))
    alive = np.ones(T, dtype=bool)

    def record(e, X):
        for t in range(T):
            if alive[t]:
                loss = float(problems.relu_network_value_and_grad(X[t], data.X_train, data.y_train, SIZES)[0])
                if not math.isfinite(loss):
                    alive[t] = False
                    continue
                hist["train_loss"][e, t] = loss
                hist["val_acc"][e, t] = problems.accuracy(X[t], data.X_val, data.y_val, SIZES)

    X = to_x(Y)
    record(0, X)
    with np.errstate(over="ignore", invalid="ignore"):
        for e in range(1, epochs + 1):
            for Xb, yb in batches:
                G = np.stack([problems.relu_network_value_and_grad(X[t], Xb, yb, SIZES)[1] if alive[t]
                              else np.zeros(X.shape[1]) for t in range(T)])
                bad = ~np.isfinite(G).all(axis=1)
                alive &= ~bad
                G[bad] = 0.0
                if basis is not None:
                    G = to_y(G)                       # grad f~(y) = V^T grad f(V y), one row per trial
                direction, state = alg.update(G, state, cfg)
                Y = Y - lr * alive[:, None] * direction
                Y = np.where(np.isfinite(Y), Y, 0.0)
                X = to_x(Y)
            record(e, X)
    hist["test_acc"] = np.array([problems.accuracy(X[t], data.X_test, data.y_test, SIZES) if alive[t] else np.nan
                                 for t in range(T)])
    return hist


def _score(h):
    """Selection key (larger is better): median over trials of max validation accuracy, then -median final loss."""
    acc = np.nanmedian(np.nanmax(np.where(np.isnan(h["val_acc"]), -1.0, h["val_acc"]), axis=0))
    fin = h["train_loss"][-1]
    loss = np.median(np.where(np.isnan(fin), np.inf, fin))
    return (float(acc), -float(loss))


def experiment(optimizers, *, M, epochs, trials, lrs, seed, quiet=False):
    data = problems.load_digits_split(seed=SEED)
    res, d = estimate_basis(data, M, seed)
    theta0 = np.asarray(problems.network_init_sampler(SIZES)(trials, np.random.default_rng(seed + 1)))
    sweep, chosen, runs = {}, {}, {}
    n_sweep = 0 if lrs is None else len(optimizers) * len(lrs)
    prog = Progress(n_sweep + 2 * len(optimizers), quiet)
    try:
        for key in optimizers:
            if lrs is None:
                chosen[key] = QUICK_LRS[key]
            else:
                for lr in lrs:
                    h = train(key, lr, data, theta0, epochs)
                    sweep[(key, lr)] = h
                    prog.update(f"{key} lr={lr:g} original (sweep)")
                chosen[key] = max(lrs, key=lambda lr: _score(sweep[(key, lr)]))
            lr = chosen[key]
            runs[(key, "original")] = sweep.get((key, lr)) or train(key, lr, data, theta0, epochs)
            prog.update(f"{key} lr={lr:g} original")
            runs[(key, "reparam")] = train(key, lr, data, theta0, epochs, basis=res.basis)
            prog.update(f"{key} lr={lr:g} reparameterized")
    finally:
        prog.close()
    return dict(data=data, egop=res, d=d, chosen=chosen, runs=runs, sweep=sweep)


def summarize(exp) -> list[dict]:
    rows = []
    for (key, coord), h in exp["runs"].items():
        fin = h["train_loss"][-1]
        rows.append(dict(optimizer=key, coordinates=coord, lr=exp["chosen"][key],
                         final_train_loss=float(np.nanmedian(fin)),
                         min_train_loss=float(np.nanmedian(np.nanmin(h["train_loss"], axis=0))),
                         max_val_acc=float(np.nanmedian(np.nanmax(h["val_acc"], axis=0))),
                         final_val_acc=float(np.nanmedian(h["val_acc"][-1])),
                         test_acc=float(np.nanmedian(h["test_acc"])),
                         diverged=int(np.isnan(fin).sum())))
    return rows


def findings(rows) -> list[str]:
    r = {(x["optimizer"], x["coordinates"]): x for x in rows}
    out = []
    for key in ("adam", "adagrad"):
        if (key, "original") in r:
            o, p = r[(key, "original")], r[(key, "reparam")]
            ratio = p["final_train_loss"] / o["final_train_loss"]
            out.append(f"reparameterized {LABELS[key]} reaches a lower training loss than in original coordinates: "
                       f"{'YES' if ratio < 1 else 'NO'} (final {p['final_train_loss']:.3g} vs "
                       f"{o['final_train_loss']:.3g}, ratio {ratio:.3g})")
    if r:
        best = min(r.values(), key=lambda x: x["final_train_loss"])
        out.append(f"reparameterized Adam achieves the best (lowest final) training loss: "
                   f"{'YES' if (best['optimizer'], best['coordinates']) == ('adam', 'reparam') else 'NO'} "
                   f"(best: {LABELS[best['optimizer']]} {best['coordinates']}, {best['final_train_loss']:.3g})")
        accs = [x["test_acc"] for x in r.values()]
        out.append(f"all methods reach comparable held-out accuracy (paper: 95-96% validation): test accuracy "
                   f"{min(accs):.1%} - {max(accs):.1%}; validation (max over epochs) "
                   f"{min(x['max_val_acc'] for x in r.values()):.1%} - {max(x['max_val_acc'] for x in r.values()):.1%}")
    return out


def write_tables(out: Path, exp, rows, meta) -> Path:
    with open(out / "results.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6e}" if isinstance(v, float) else v) for k, v in r.items()})
    keys = list(exp["runs"])
    with open(out / "curves.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch"] + [f"{k}_{c}_train_loss" for k, c in keys] + [f"{k}_{c}_val_acc" for k, c in keys])
        E = next(iter(exp["runs"].values()))["train_loss"].shape[0]
        for e in range(E):
            w.writerow([e] + [f"{np.nanmedian(exp['runs'][k]['train_loss'][e]):.6e}" for k in keys]
                       + [f"{np.nanmedian(exp['runs'][k]['val_acc'][e]):.4f}" for k in keys])
    md = out / "results.md"
    lines = [
        f"# Block EGOP reparameterization, 64-32-10 ReLU network on the digits (EGOP Fig. 1 right): "
        f"M = {meta['M']} gradient samples, {meta['epochs']} epochs, {meta['trials']} trials, seed {meta['seed']}",
        "",
        f"Data: scikit-learn digits split 1198 / 199 / 400 (errata 22; the paper: 3823 / 598 / 1199). Medians over "
        f"trials. Learning rates: {meta['lr_note']}.",
        "",
        "| optimizer | coordinates | lr | final train loss | min train loss | max val acc | final val acc | "
        "test acc | diverged |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {LABELS[r['optimizer']]} | {r['coordinates']} | {r['lr']:g} | {r['final_train_loss']:.4e} | "
                     f"{r['min_train_loss']:.4e} | {r['max_val_acc']:.3f} | {r['final_val_acc']:.3f} | "
                     f"{r['test_acc']:.3f} | {r['diverged']} |")
    lines += ["", "Block EGOP diagnostics (stable rank Eq. (3), beta = ||v_1||_1^2 / d_j, Thm. 3's sr / (beta d_j)):",
              "", "| block | d_j | stable rank | beta | sr / (beta d_j) |", "|---|---|---|---|---|"]
    for name, r in zip(("W1 (32 x 64)", "W2 (10 x 32)"), exp["egop"].results):
        dg = egop.diagnostics(r)
        lines.append(f"| {name} | {dg.d} | {dg.stable_rank:.3g} | {dg.beta:.3g} | {dg.gain:.3g} |")
    if exp["sweep"]:
        lines += ["", "Sweep in original coordinates (median max val acc / median final train loss):", "",
                  "| optimizer | lr | max val acc | final train loss |", "|---|---|---|---|"]
        for (key, lr), h in exp["sweep"].items():
            acc, negloss = _score(h)
            lines.append(f"| {LABELS[key]} | {lr:g}{' (chosen)' if exp['chosen'][key] == lr else ''} | {acc:.3f} | "
                         f"{-negloss:.4e} |")
    lines += ["", "Findings of the paper (Sec. 6, Fig. 1 right) on this run:", ""] + [f"- {s}" for s in findings(rows)]
    lines += ["", f"Wall time {meta['seconds']:.0f} s. Written by examples/egop_digits.py."]
    md.write_text("\n".join(lines) + "\n")
    return md


def plot(out: Path, exp, meta) -> Path | None:
    plt = pyplot()
    if plt is None:
        return None
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(16, 4.8))
    for (key, coord), h in exp["runs"].items():
        ls = "-" if coord == "reparam" else "--"
        lab = f"{LABELS[key]} {'reparam.' if coord == 'reparam' else 'original'} (lr {exp['chosen'][key]:g})"
        ax.semilogy(np.nanmedian(h["train_loss"], axis=1), ls, color=COLORS[key], lw=1.6, label=lab)
        bx.plot(np.nanmedian(h["val_acc"], axis=1), ls, color=COLORS[key], lw=1.4, label=lab)
    ax.set_title("training loss (median over trials)")
    bx.set_title("validation accuracy (median over trials)")
    for a in (ax, bx):
        a.set_xlabel("epoch")
        a.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    bx.set_ylim(0.8, 1.0)
    for name, r, c in zip(("W1 (2048)", "W2 (320)"), exp["egop"].results, ("tab:purple", "tab:orange")):
        lam = np.asarray(egop.normalized_spectrum(r.eigenvalues))
        cx.semilogy(np.arange(1, lam.size + 1), np.maximum(lam, 1e-18), color=c, label=name)
    cx.set_title(f"block EGOP spectra lambda_i / lambda_1 (M = {meta['M']})")
    cx.set_xlabel("index i")
    cx.grid(True, alpha=0.3)
    cx.legend(fontsize=8)
    fig.suptitle("UCI digits, 64-32-10 ReLU network: block EGOP reparameterization (solid) vs original (dashed)",
                 fontsize=10)
    fig.tight_layout()
    path = out / "egop_digits.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="CI smoke run: M = 256, 12 epochs, 2 trials, no sweep")
    ap.add_argument("--out", type=Path, default=Path("out/egop_digits"), help="output directory")
    ap.add_argument("--M", type=int, help="EGOP samples (default: the number of weight parameters, 2368)")
    ap.add_argument("--epochs", type=int, help="epochs (default 200; --quick 12)")
    ap.add_argument("--trials", type=int, help="trials (default 5; --quick 2)")
    ap.add_argument("--lrs", type=float, nargs="+", help="learning-rate grid swept in original coordinates")
    ap.add_argument("--optimizers", nargs="+", choices=OPTIMIZERS, default=["adam", "adagrad"])
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--threads", type=int, default=2, help="BLAS threads (threadpoolctl, if installed)")
    ap.add_argument("--quiet", action="store_true", help="no progress output")
    args = ap.parse_args(argv)
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("egop_digits needs scikit-learn for the digits data: pip install -e '.[examples]'", file=sys.stderr)
        return 2
    base = QUICK if args.quick else FULL
    blocks, _ = problems.relu_network_blocks(SIZES)
    M = args.M or base["M"] or sum(s.stop - s.start for s in blocks)
    epochs, trials = args.epochs or base["epochs"], args.trials or base["trials"]
    lrs = args.lrs or base["lrs"]
    t0 = time.perf_counter()
    print(f"egop_digits: M={M}, {epochs} epochs, {trials} trials, optimizers {args.optimizers}, "
          f"{'sweep ' + str(lrs) if lrs else 'fixed rates ' + str({k: QUICK_LRS[k] for k in args.optimizers})}",
          file=sys.stderr)
    try:
        from threadpoolctl import threadpool_limits
        limits = threadpool_limits(limits=args.threads)
    except ImportError:
        limits = contextlib.nullcontext()
    with limits:
        exp = experiment(args.optimizers, M=M, epochs=epochs, trials=trials, lrs=lrs, seed=args.seed,
                         quiet=args.quiet)
    rows = summarize(exp)
    meta = dict(M=M, epochs=epochs, trials=trials, seed=args.seed, seconds=time.perf_counter() - t0,
                lr_note=("swept " + ", ".join(f"{x:g}" for x in lrs) + " in original coordinates (best median max "
                         "val acc), same rate for the reparameterized run") if lrs else
                ("fixed (--quick): " + ", ".join(f"{LABELS[k]} {v:g}" for k, v in exp["chosen"].items())))
    args.out.mkdir(parents=True, exist_ok=True)
    md = write_tables(args.out, exp, rows, meta)
    png = plot(args.out, exp, meta)
    print(md.read_text())
    print(f"wrote {md}, {args.out / 'results.csv'}, {args.out / 'curves.csv'}" + (f", {png}" if png else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
