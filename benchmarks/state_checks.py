"""Per-update cost of the corrupt-state checks (``krad_ref.algorithm.check_state``) on real updates.

    python benchmarks/state_checks.py                               # kradagrad_star, shampoo; 32x16, 1024x1024
    python benchmarks/state_checks.py --algorithms adam mbag --shapes 256x128 --repeat 20

What is timed. Each update of the registered algorithm (default Config, float32 gradient, after two warm-up
updates) runs with ``algorithm.check_state`` wrapped by a timer, so the figure is the time spent inside the checks
of that very update (one ``all(isfinite(.))`` per state array and one host synchronisation), not a difference
of two noisy step times. Printed: the minimum over ``--repeat`` updates of the check time and of the whole update,
and their ratio. The machine may be shared: compare rows of one run only.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from krad_ref import algorithm, backend


def _shape(text: str) -> tuple[int, ...]:
    return tuple(int(d) for d in text.split("x"))


def measure(name: str, shape, repeat: int, xp):
    alg = algorithm.get(name)
    cfg = alg.Config()
    rng = np.random.default_rng(0)
    grads = [xp.asarray(rng.standard_normal(shape).astype(np.float32)) for _ in range(repeat + 2)]
    state = alg.init(grads[0], cfg)
    for g in grads[:2]:
        state = alg.update(g, state, cfg)[1]
    inner = algorithm.check_state
    spent = []

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t0)

    checks, steps = [], []
    algorithm.check_state = timed
    try:
        for g in grads[2:]:
            spent.clear()
            t0 = time.perf_counter()
            state = alg.update(g, state, cfg)[1]
            steps.append(time.perf_counter() - t0)
            checks.append(sum(spent))
    finally:
        algorithm.check_state = inner
    return min(checks), min(steps)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--algorithms", nargs="+", default=["kradagrad_star", "shampoo"])
    ap.add_argument("--shapes", nargs="+", type=_shape, default=[(32, 16), (1024, 1024)])
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args(argv)
    xp = backend.get_namespace("numpy")
    print(f"{'algorithm':16s} {'shape':>10s} {'checks [us]':>12s} {'update [us]':>12s} {'ratio':>8s}")
    for name in args.algorithms:
        for shape in args.shapes:
            c, s = measure(name, shape, args.repeat, xp)
            print(f"{name:16s} {'x'.join(map(str, shape)):>10s} {c * 1e6:12.1f} {s * 1e6:12.1f} {c / s:8.2%}")


if __name__ == "__main__":
    main()
