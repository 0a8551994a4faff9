"""Campaign throughput: examples/s of mp-bound claims on 1 and 2 Dask workers, and the per-shard overhead.

    python benchmarks/campaign.py [--examples 80] [--shards 8] [--empty-shards 200] [--executor dask|processes]

Cluster start-up is excluded (the cluster is started before the clock); the store (SQLite, one transaction per
shard) is included. The per-shard overhead is measured on an empty claim (one instance, a check that returns at
once): wall time per shard on one worker, next to the same shards run serially in this process, so that the
difference is the cost of scheduling, shipping and storing a shard.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # workers import this file as the module "campaign" to find EMPTY_CLAIM

from hypothesis import strategies as st  # noqa: E402

from proofs_check import campaign as cmp  # noqa: E402
from proofs_check.claim import Claim, Evidence, Source, get  # noqa: E402

MP_CLAIMS = ("matrix.p15_kron_monotone", "means.formulas_agree", "kradagrad.domination_star", "kradagrad.lemma3_5")


def _empty_check(n, *, dps):
    return Evidence(1.0, 1.0, 0.0)


EMPTY_CLAIM = Claim(id="bench.empty", source=Source("bench", "-"), statement="-", strategy=st.integers(0, 10),
                    check=_empty_check)


class _Pool:
    """A started executor: a Dask LocalCluster client, or None for the processes executor."""

    def __init__(self, kind: str, workers: int):
        self.kind, self.workers, self.client, self.cluster = kind, workers, None, None
        if kind == "dask":
            import logging

            from distributed import Client, LocalCluster

            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                        dashboard_address=None, silence_logs=logging.ERROR)
            self.client = Client(self.cluster)

    def run(self, claims, **kw):
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            out = cmp.run_campaign(claims, directory=os.path.join(d, "c"), executor=self.kind, client=self.client,
                                   workers=self.workers, **kw)
            return out, time.perf_counter() - t0

    def close(self):
        if self.client is not None:
            self.client.close()
            self.cluster.close()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--examples", type=int, default=80, help="examples per claim (default 80)")
    p.add_argument("--shards", type=int, default=8)
    p.add_argument("--empty-shards", type=int, default=200)
    p.add_argument("--executor", default="dask", choices=("dask", "processes"))
    args = p.parse_args(argv)
    if args.executor == "dask":
        try:
            import distributed  # noqa: F401
        except ImportError:
            print("dask.distributed is not installed; using --executor processes")
            args.executor = "processes"
    claims = [get(i) for i in MP_CLAIMS]
    print(f"machine: {os.cpu_count()} CPUs; executor {args.executor}; claims {', '.join(MP_CLAIMS)}; "
          f"{args.examples} examples per claim in {args.shards} shards")
    rates = {}
    for w in (1, 2):
        pool = _Pool(args.executor, w)
        try:
            pool.run([EMPTY_CLAIM], shards=2, examples=2, seed=0)  # warm the workers (imports)
            out, wall = pool.run(claims, shards=args.shards, examples=args.examples, seed=1)
            ex = sum(r.examples for r in out.results)
            busy = sum(r.seconds for r in out.results)
            rates[w] = ex / wall
            print(f"{w} worker(s): {ex} examples in {wall:.2f} s = {rates[w]:.1f} examples/s "
                  f"(shard compute {busy:.2f} s, {busy / ex * 1e3:.1f} ms/example)")
            if w == 1:
                n = args.empty_shards
                _, wall_e = pool.run([EMPTY_CLAIM], shards=n, examples=n, seed=2)
                t0 = time.perf_counter()
                cmp.run_campaign([EMPTY_CLAIM], shards=n, examples=n, seed=2, executor="serial")
                wall_s = time.perf_counter() - t0
                print(f"empty claim, {n} shards of 1 example: {wall_e / n * 1e3:.1f} ms/shard on 1 worker "
                      f"(incl. store), {wall_s / n * 1e3:.1f} ms/shard serial in-process; scheduling + store "
                      f"overhead {(wall_e - wall_s) / n * 1e3:.1f} ms/shard")
        finally:
            pool.close()
    ratio = rates[2] / rates[1]
    print(f"speed-up 2 vs 1 worker: {ratio:.2f}x (target >= 1.7x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
