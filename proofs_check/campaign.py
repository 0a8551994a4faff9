"""Verification campaigns: claims x shards, run on Dask (or local processes), stored in SQLite, resumable.

A *campaign* searches each chosen claim with ``examples`` instances in all, split into ``shards`` pieces. A
:class:`Shard` is one unit of work, (claim id, shard index, examples, profile, seed), whose seed is
``runner.derive_seed(campaign_seed, claim_id, shard)``. :func:`run_shard` calls the pure
:func:`proofs_check.runner.run_claim` (search + shrink on the worker) and returns a small plain dict: examples
tried, worst margin and its instance, verdict, shrunk counterexample, seconds and the versions of krad_ref /
numpy / mpmath / hypothesis on the worker.

Merging (:func:`merge`) gives per claim:

  * ``verdict``: "error" if any shard's check raised, else "fails" if any shard found a counterexample, else
    "holds";
  * ``examples`` and ``seconds``: sums over shards; ``worst_margin`` (and its ``tol``): the smallest
    ``margin / scale`` over shards (NaN counts as smallest);
  * ``counterexample``: among the shards whose verdict is the merged verdict, the smallest by :func:`size_key`:
    (number of scalar entries in the instance, length of its compact sorted-key JSON text, shard index).

Every step is deterministic, so the merged report is the same on one laptop, on a cluster, in any completion
order, and after a resume: it equals, claim by claim, the serial run of the same shards in one process
(``executor="serial"``), seconds aside.

Executors: ``"dask"`` (``distributed.LocalCluster`` sized to the machine, one thread per worker process, or
``scheduler="tcp://HOST:PORT"`` for an existing cluster), ``"processes"`` (``concurrent.futures``), ``"serial"``
(in this process); ``"auto"`` is dask when ``distributed`` imports, else processes with a one-line note. This
is the only module of the package that imports dask, and only inside the executor.

The client writes each finished shard at once to ``DIR/campaign.sqlite`` (:mod:`proofs_check.store`); a
resumed campaign runs only the missing shards.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import math
import os
import sys
import threading
import time
from typing import Any, Callable, Iterable, Iterator, Sequence

from . import claim as claim_mod
from . import report, runner
from .claim import Claim
from .store import Store, StoreError, db_path, describe_difference

__all__ = ["Shard", "CampaignError", "CampaignOutcome", "plan", "run_shard", "size_key", "merge", "merge_all",
           "run_campaign", "load_report", "main_campaign", "main_report"]

VERDICT_ORDER = {"holds": 0, "fails": 1, "error": 2}  # the merged verdict is the largest over shards
_RUN_LOCK = threading.Lock()  # mpmath's precision and hypothesis' engine are process-global: one shard at a time


class CampaignError(RuntimeError):
    """A campaign cannot start or continue (unreachable scheduler, settings differ from the store, ...)."""


@dataclasses.dataclass(frozen=True)
class Shard:
    """One unit of work. ``module`` names the module whose globals hold the claim when it is not registered
    (claims from a plugin or a test module); the worker imports it."""

    claim_id: str
    shard: int
    examples: int
    profile: str
    seed: int
    dps: int
    shrink_seconds: float
    module: str | None = None
    certify: bool = False  # certified verdicts (proofs_check.certify) for every instance of the shard

    @property
    def key(self) -> tuple[str, int]:
        return (self.claim_id, self.shard)


# --- claims -------------------------------------------------------------------------------------------------

def _module_claims(module: str) -> dict[str, Claim]:
    mod = importlib.import_module(module)
    found = {}
    for value in vars(mod).values():
        items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else [value]
        for v in items:
            if isinstance(v, Claim):
                found.setdefault(v.id, v)
    return found


def resolve(claim_id: str, module: str | None = None) -> Claim:
    """The claim ``claim_id``: from ``module``'s globals when given, else from the registry."""
    if module:
        found = _module_claims(module)
        if claim_id in found:
            return found[claim_id]
        raise KeyError(f"claim {claim_id!r} not found in module {module!r}")
    return claim_mod.get(claim_id)


def _home_module(c: Claim) -> str | None:
    claim_mod.all_claims()
    if claim_mod._REGISTRY.get(c.id) is c:  # noqa: SLF001 - registry identity: registered claims need no module
        return None
    return getattr(c.check, "__module__", None)


def plan(claims: Sequence[Claim], *, shards: int, examples: int | None, profile: runner.Profile,
         seed: int, certify: bool = False) -> list[Shard]:
    """The shards of a campaign. ``examples`` is per claim over all its shards (default: the profile's count
    times the claim's weight), split as evenly as possible, earlier shards taking the remainder."""
    if shards < 1:
        raise ValueError(f"shards: expected a positive count, got {shards}")
    out = []
    for c in claims:
        total = examples if examples is not None else max(1, round(profile.examples * c.weight))
        if total < shards:
            raise ValueError(f"examples: {total} examples for claim {c.id} cannot fill {shards} shards")
        base, extra = divmod(total, shards)
        module = _home_module(c)
        for i in range(shards):
            out.append(Shard(c.id, i, base + (i < extra), profile.name, runner.derive_seed(seed, c.id, i),
                             profile.dps, profile.shrink_seconds, module, certify))
    return out


# --- one shard ----------------------------------------------------------------------------------------------

def _enc(x: float | None):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else repr(x)


def _dec(x) -> float | None:
    return None if x is None else float(x)


def _versions() -> dict:
    v = report.versions()
    return {k: v[k] for k in ("krad_ref", "proofs_check", "numpy", "mpmath", "hypothesis")}


def run_shard(shard: Shard) -> dict:
    """Run one shard (a top-level function, so any executor can ship it); never raises for a claim's fault."""
    t0 = time.perf_counter()
    base = {"claim_id": shard.claim_id, "shard": shard.shard, "seed": shard.seed,
            "examples_requested": shard.examples, "profile": shard.profile, "versions": _versions()}
    with _RUN_LOCK:
        try:
            c = resolve(shard.claim_id, shard.module)
        except Exception as exc:  # noqa: BLE001 - an unknown claim on this worker is a shard error
            return {**base, "verdict": "error", "examples": 0, "worst_margin": None, "tol": None,
                    "worst_instance": None, "counterexample": None, "counterexample_detail": None,
                    "error": f"{type(exc).__name__}: {exc}", "seconds": round(time.perf_counter() - t0, 3),
                    "source": "", "statement": "", "expected": "holds", "note": "", "twin": None}
        worst: dict[str, Any] = {}
        describe = c.describe or runner.plain

        def check(instance, *, dps):
            ev = c.check(instance, dps=dps)
            m = ev.relative_margin
            if not worst or m < worst["m"] or math.isnan(ev.margin):  # the runner's own rule for "worst"
                worst.update(m=m, instance=runner.plain(describe(instance)))
            return ev

        res = runner.run_claim(dataclasses.replace(c, check=check), examples=shard.examples, seed=shard.seed,
                               dps=shard.dps, shrink_seconds=shard.shrink_seconds, certify=shard.certify)
    certified = {} if res.certified is None else {"certified": res.certified,
                                                  "counterexample_certificate": res.counterexample_certificate}
    return {**base, "verdict": res.verdict, "examples": res.examples, "worst_margin": _enc(res.worst_margin),
            "tol": _enc(res.tol),
            "worst_instance": res.counterexample if res.counterexample is not None else worst.get("instance"),
            "counterexample": res.counterexample, "counterexample_detail": res.counterexample_detail,
            "error": res.error, "seconds": round(time.perf_counter() - t0, 3), "source": res.source,
            "statement": res.statement, "expected": res.expected, "note": res.note, "twin": res.twin, **certified}


# --- merging ------------------------------------------------------------------------------------------------

def _entries(obj) -> int:
    if isinstance(obj, dict):
        return sum(_entries(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_entries(v) for v in obj)
    return 1


def size_key(result: dict) -> tuple:
    """The documented size order of counterexamples: (scalar entries, compact JSON length, shard index)."""
    cex = result.get("counterexample")
    text = json.dumps(cex, sort_keys=True, separators=(",", ":"), default=str)
    return (_entries(cex) if cex is not None else 0, len(text), int(result["shard"]))


def _margin_key(result: dict) -> tuple:
    m = _dec(result.get("worst_margin"))
    return (-math.inf if math.isnan(m) else m, int(result["shard"]))


def merge(shard_results: Sequence[dict], *, seed: int, shards: int | None = None) -> runner.ClaimResult:
    """Merge the results of one claim's shards (see the module docstring) into a :class:`runner.ClaimResult`.
    With ``shards`` given and fewer results stored, the note says the claim is partial."""
    if not shard_results:
        raise ValueError("merge: no shard results")
    rs = sorted(shard_results, key=lambda r: int(r["shard"]))
    first = next((r for r in rs if r.get("statement")), rs[0])
    verdict = max((r["verdict"] for r in rs), key=VERDICT_ORDER.__getitem__)
    with_margin = [r for r in rs if r.get("worst_margin") is not None]
    worst = min(with_margin, key=_margin_key) if with_margin else None
    chosen = min((r for r in rs if r["verdict"] == verdict), key=size_key) if verdict != "holds" else None
    error = None
    if chosen is not None and chosen.get("error"):
        error = f"shard {chosen['shard']}: {chosen['error']}"
    note = first.get("note") or ""
    certified = _merge_certified(rs)
    if shards is not None and len(rs) < shards:
        note = (note + " " if note else "") + f"[partial: {len(rs)}/{shards} shards]"
    return runner.ClaimResult(
        id=first["claim_id"], source=first.get("source", ""), statement=first.get("statement", ""),
        expected=first.get("expected", "holds"), verdict=verdict, examples=sum(int(r["examples"]) for r in rs),
        worst_margin=None if worst is None else _dec(worst["worst_margin"]),
        tol=None if worst is None else _dec(worst.get("tol")),
        seconds=round(sum(float(r["seconds"]) for r in rs), 3), seed=int(seed),
        counterexample=None if chosen is None else chosen.get("counterexample"),
        counterexample_detail=None if chosen is None else chosen.get("counterexample_detail"),
        error=error, note=note, twin=first.get("twin"), certified=certified,
        counterexample_certificate=None if chosen is None else chosen.get("counterexample_certificate"),
    )


def _merge_certified(rs: Sequence[dict]) -> dict | None:
    """Certificate counts summed over the shards that were certified (None when none was)."""
    tallies = [r["certified"] for r in rs if r.get("certified")]
    if not tallies:
        return None
    out = {k: sum(int(t[k]) for t in tallies) for k in ("within", "violated", "uncertified", "disagree")}
    reasons: dict[str, int] = {}
    for t in tallies:
        for why, k in t.get("reasons", {}).items():
            reasons[why] = reasons.get(why, 0) + int(k)
    out["reasons"] = dict(sorted(reasons.items(), key=lambda kv: -kv[1]))
    out["seconds"] = round(sum(float(t.get("seconds", 0.0)) for t in tallies), 3)
    return out


def merge_all(claim_ids: Sequence[str], results: Iterable[dict], *, seed: int,
              shards: int | None = None) -> list[runner.ClaimResult]:
    """Merged results in ``claim_ids`` order; claims without any stored shard are left out."""
    by: dict[str, list[dict]] = {}
    for r in results:
        by.setdefault(r["claim_id"], []).append(r)
    return [merge(by[c], seed=seed, shards=shards) for c in claim_ids if c in by]


# --- executors ----------------------------------------------------------------------------------------------

def _have_dask() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def _iter_serial(todo: Sequence[Shard], **_) -> Iterator[dict]:
    for s in todo:
        yield run_shard(s)


def _iter_processes(todo: Sequence[Shard], *, workers: int | None, **_) -> Iterator[dict]:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # not "fork": the caller may hold threads (a BLAS pool, krad_ref.backend.map_modes' workers, a progress
    # thread) that a forked child inherits in whatever state they were (Python 3.12+ warns of deadlocks);
    # forkserver (POSIX) or spawn start clean interpreters, and run_shard and Shard pickle by reference
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(max_workers=workers or os.cpu_count() or 1,
                             mp_context=multiprocessing.get_context(method)) as pool:
        futures = [pool.submit(run_shard, s) for s in todo]
        for fut in as_completed(futures):
            yield fut.result()


def _connect(scheduler: str, timeout: float):
    from distributed import Client

    try:
        return Client(scheduler, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:  # distributed raises OSError("Timed out trying to connect ...")
        raise CampaignError(f"cannot reach the Dask scheduler at {scheduler} within {timeout:g} s "
                            f"({type(exc).__name__}: {exc}); start one with `dask scheduler` and "
                            f"`dask worker {scheduler} --nthreads 1`, or leave out --scheduler") from None


def _iter_dask(todo: Sequence[Shard], *, workers: int | None, scheduler: str | None, client=None,
               timeout: float = 10.0, say=None, **_) -> Iterator[dict]:
    import logging

    from distributed import LocalCluster, as_completed

    own = []
    try:
        if client is None:
            if scheduler:
                client = _connect(scheduler, timeout)
            else:
                cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                       processes=True, dashboard_address=None, silence_logs=logging.ERROR)
                own.append(cluster)
                from distributed import Client

                client = Client(cluster, set_as_default=False)
            own.insert(0, client)
        tag = f"{os.getpid()}-{time.time_ns()}"
        futures = [client.submit(run_shard, s, key=f"shard-{s.claim_id}-{s.shard}-{tag}", pure=False)
                   for s in todo]
        for fut in as_completed(futures, loop=client.loop):
            yield fut.result()
    finally:
        for obj in own:
            obj.close()


EXECUTORS = {"serial": _iter_serial, "processes": _iter_processes, "dask": _iter_dask}


# --- campaign -----------------------------------------------------------------------------------------------

def _certify_available() -> bool:
    from . import certify

    return certify.available()


@dataclasses.dataclass
class CampaignOutcome:
    results: list  # merged runner.ClaimResult, in claim order
    ran: int  # shards computed by this invocation
    reused: int  # shards found in the store and not recomputed
    directory: str | None
    executor: str
    seconds: float
    settings: dict


def _settings(claims: Sequence[Claim], shard_list: Sequence[Shard], shards: int, profile: runner.Profile,
              seed: int) -> dict:
    per_claim: dict[str, int] = {}
    modules: dict[str, str] = {}
    for s in shard_list:
        per_claim[s.claim_id] = per_claim.get(s.claim_id, 0) + s.examples
        if s.module:
            modules[s.claim_id] = s.module
    return {"claims": [c.id for c in claims], "modules": modules, "shards": shards, "examples": per_claim,
            "profile": profile.name, "dps": profile.dps, "shrink_seconds": profile.shrink_seconds, "seed": seed,
            "versions": _versions()} | ({"certify": True} if any(s.certify for s in shard_list) else {})


class _Progress:
    """One line per claim as its shards finish: done/total, examples/s, worst margin so far; failures at once."""

    def __init__(self, say, totals: dict[str, int], done: dict[str, list[dict]]):
        self.say, self.totals, self.done = say, totals, done
        self.t0 = time.perf_counter()

    def __call__(self, res: dict) -> None:
        rs = self.done.setdefault(res["claim_id"], [])
        rs.append(res)
        if self.say is None:
            return
        ex = sum(int(r["examples"]) for r in rs)
        busy = sum(float(r["seconds"]) for r in rs) or 1e-9
        margins = [r for r in rs if r.get("worst_margin") is not None]
        m = "-" if not margins else f"{_dec(min(margins, key=_margin_key)['worst_margin']):.3g}"
        line = (f"{res['claim_id']}: {len(rs)}/{self.totals[res['claim_id']]} shards, {ex} examples, "
                f"{ex / busy:.1f} examples/s per worker, worst margin {m}")
        if res["verdict"] != "holds":
            what = res.get("error") or json.dumps(res.get("counterexample"), default=str)[:200]
            line += f"; shard {res['shard']} {res['verdict'].upper()}: {what}"
        self.say(line)


def run_campaign(
    claims: Sequence[Claim],
    *,
    shards: int,
    examples: int | None = None,
    profile: runner.Profile | str = "quick",
    seed: int = runner.DEFAULT_SEED,
    directory: str | os.PathLike | None = None,
    resume: bool = False,
    force_new: bool = False,
    executor: str = "auto",
    workers: int | None = None,
    scheduler: str | None = None,
    client=None,
    timeout: float = 10.0,
    progress: Callable[[str], None] | None = None,
    on_result: Callable[[dict], None] | None = None,
    certify: bool | None = None,
) -> CampaignOutcome:
    """Plan, run (missing shards only when resuming), store and merge a campaign.

    Args:
      claims: Claim objects (registered, or module-level globals of an importable module).
      directory: the campaign directory holding ``campaign.sqlite``; None runs without a store.
      resume: continue the campaign in ``directory``; its stored settings and code versions must equal these,
        else :class:`CampaignError` (``force_new`` moves the old database aside and starts afresh).
      executor: "auto", "dask", "processes" or "serial"; ``client`` an existing ``distributed.Client``.
      progress: gets the progress lines (None: silent); ``on_result`` gets every finished shard's dict.
      certify: certified verdicts for every instance (None: the profile's default); stored with the settings
        (a campaign with certification records ``certify: true``; one without records nothing, as before).
    """
    prof = runner.PROFILES[profile] if isinstance(profile, str) else profile
    claims = list(claims)
    certify = prof.certify if certify is None else bool(certify)
    if certify and not _certify_available():
        if progress:
            progress("note: no certified verdicts: python-flint is not installed (pip install python-flint)")
        certify = False
    shard_list = plan(claims, shards=shards, examples=examples, profile=prof, seed=seed, certify=certify)
    settings = _settings(claims, shard_list, shards, prof, seed)
    say = progress
    if executor == "auto":
        if client is not None or scheduler or _have_dask():
            executor = "dask"
        else:
            executor = "processes"
            if say:
                say("note: dask.distributed is not installed; running on local processes "
                    "(pip install 'krad_ref[distributed]' for Dask)")
    if executor not in EXECUTORS:
        raise ValueError(f"executor: expected one of {sorted(EXECUTORS)} or 'auto', got {executor!r}")
    if scheduler and executor != "dask":
        raise ValueError("scheduler: only the dask executor connects to a scheduler")

    own_client = None
    if executor == "dask" and scheduler and client is None:
        client = own_client = _connect(scheduler, timeout)  # before touching the store: fail fast, leave nothing
    try:
        return _run(claims, shards, examples, prof, seed, directory, resume, force_new, executor, workers,
                    scheduler, client, timeout, say, on_result, shard_list, settings)
    finally:
        if own_client is not None:
            own_client.close()


def _run(claims, shards, examples, prof, seed, directory, resume, force_new, executor, workers, scheduler, client,
         timeout, say, on_result, shard_list, settings) -> CampaignOutcome:
    store = None
    if directory is not None:
        directory = os.fspath(directory)
        exists = os.path.exists(db_path(directory)) and os.path.getsize(db_path(directory)) > 0
        if exists and (resume or not force_new):
            if not resume:
                raise CampaignError(f"{db_path(directory)} already holds a campaign: continue it with "
                                    f"--resume {directory}, or start over with --force-new")
            try:
                store = Store.open(directory)
            except StoreError as exc:
                raise CampaignError(f"cannot resume: {exc}") from None
            diffs = describe_difference(store.settings(), settings)
            if diffs and not force_new:
                store.close()
                raise CampaignError("cannot resume: the campaign in " + directory + " was started with other "
                                    "settings or code versions:\n  " + "\n  ".join(diffs)
                                    + "\nrerun with the stored settings, or pass --force-new to start over")
            if diffs:
                store.close()
                store = None
        if store is None:
            if exists:
                aside = db_path(directory) + f".{time.strftime('%Y%m%d-%H%M%S')}.old"
                for suffix in ("", "-wal", "-shm"):
                    if os.path.exists(db_path(directory) + suffix):
                        os.replace(db_path(directory) + suffix, aside + suffix)
                if say:
                    say(f"note: --force-new: the previous database was moved to {aside}")
            elif resume:
                raise CampaignError(f"cannot resume: no campaign database at {db_path(directory)}")
            store = Store.create(directory, settings)

    done_keys = store.done() if store is not None else set()
    stored = store.results() if store is not None else []
    todo = [s for s in shard_list if s.key not in done_keys]
    session = store.next_session() if store is not None else 1
    totals: dict[str, int] = {}
    for s in shard_list:
        totals[s.claim_id] = totals.get(s.claim_id, 0) + 1
    by_claim: dict[str, list[dict]] = {}
    for r in stored:
        by_claim.setdefault(r["claim_id"], []).append(r)
    prog = _Progress(say, totals, by_claim)
    if say:
        where = scheduler or ("local cluster" if executor == "dask" else executor)
        say(f"campaign: {len(claims)} claims x {shards} shards, {len(todo)} to run"
            f"{f', {len(done_keys)} already stored' if done_keys else ''}, on {where}"
            f"{f', store {store.path}' if store else ''}")
    t0 = time.perf_counter()
    ran = 0
    warned: list = []
    try:
        if todo:
            for res in EXECUTORS[executor](todo, workers=workers, scheduler=scheduler, client=client,
                                           timeout=timeout, say=say):
                if store is not None:
                    store.add(res, session=session)
                ran += 1
                if res.get("versions") != settings["versions"] and say and not warned:
                    warned.append(res["shard"])
                    say(f"warning: a worker runs other code versions than this client: {res.get('versions')} vs "
                        f"{settings['versions']}; results may not reproduce")
                prog(res)
                if on_result is not None:
                    on_result(res)
    finally:
        if store is not None:
            store.close()
    wall = time.perf_counter() - t0
    all_results = [r for rs in by_claim.values() for r in rs]
    merged = merge_all([c.id for c in claims], all_results, seed=seed, shards=shards)
    if say:
        ex = sum(int(r["examples"]) for r in all_results if (r["claim_id"], r["shard"]) not in done_keys)
        say(f"campaign: {ran} shards run in {wall:.1f} s ({ex / max(wall, 1e-9):.1f} examples/s), "
            f"{len(done_keys)} reused from the store")
    return CampaignOutcome(merged, ran, len(done_keys), directory, executor, wall, settings)


def load_report(directory) -> tuple[list[runner.ClaimResult], dict, int, int]:
    """(merged results, stored settings, shards stored, shards planned) from a campaign directory; raises
    :class:`StoreError` for a missing or damaged store. Safe while the campaign is still writing."""
    with Store.open(directory) as store:
        settings = store.settings()
        results = store.results()
    ids = list(settings.get("claims", []))
    ids += sorted({r["claim_id"] for r in results} - set(ids))
    shards = int(settings.get("shards", 0)) or None
    merged = merge_all(ids, results, seed=int(settings.get("seed", 0)), shards=shards)
    return merged, settings, len(results), len(ids) * (shards or 0)


# --- command line -------------------------------------------------------------------------------------------

def _campaign_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m proofs_check campaign",
                                description="Run a sharded, resumable verification campaign.")
    p.add_argument("--shards", type=int, default=None, help="shards per claim (default 4)")
    p.add_argument("--examples", type=int, default=None,
                   help="examples per claim, split over its shards (default: the profile's)")
    p.add_argument("--claims", nargs="+", metavar="ID", default=None, help="claim ids (default: all)")
    p.add_argument("--claims-from", metavar="MODULE", default=None,
                   help="look the ids up among the Claim globals of this importable module (plugins, tests)")
    p.add_argument("--profile", default=None, choices=sorted(runner.PROFILES), help="search effort (default quick)")
    p.add_argument("--seed", type=int, default=None, help=f"campaign seed (default {runner.DEFAULT_SEED})")
    p.add_argument("--dir", default=None, help="campaign directory (default campaign-SEED-TIME)")
    p.add_argument("--resume", metavar="DIR", default=None, help="continue the campaign stored in DIR")
    p.add_argument("--force-new", action="store_true", help="start afresh even where DIR holds another campaign")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT", default=None, help="an existing Dask scheduler")
    p.add_argument("--workers", type=int, default=None, help="local workers (default: CPU count)")
    p.add_argument("--executor", default="auto", choices=("auto", "dask", "processes", "serial"),
                   help="default auto: Dask when installed, else local processes")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to reach --scheduler (default 10)")
    p.add_argument("--json", metavar="FILE", help="write the JSON report here")
    p.add_argument("--markdown", metavar="FILE", help="write the Markdown report here")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--certify", action=argparse.BooleanOptionalAction, default=None,
                   help="certified verdicts in ball arithmetic, stored with the campaign (default: the profile's)")
    return p


def _write_reports(results, args, profile: str, seed: int) -> None:
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(report.to_json(results, profile=profile, seed=seed))
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(report.to_markdown(results, profile=profile, seed=seed))


def main_campaign(argv=None) -> int:
    args = _campaign_parser().parse_args(argv)
    err = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    say = None if args.quiet else err
    stored: dict = {}
    directory = args.resume or args.dir
    if args.resume:
        if args.dir and os.path.abspath(args.dir) != os.path.abspath(args.resume):
            err("--dir and --resume name different directories")
            return 2
        try:
            with Store.open(args.resume) as st:
                stored = st.settings()
        except StoreError as exc:
            err(f"cannot resume: {exc}")
            return 2
    # on --resume, options left out are taken from the store; options given must match it (checked later)
    shards = args.shards if args.shards is not None else stored.get("shards", 4)
    profile = args.profile or stored.get("profile", "quick")
    seed = args.seed if args.seed is not None else stored.get("seed", runner.DEFAULT_SEED)
    ids = args.claims or stored.get("claims")
    modules = dict(stored.get("modules", {}))
    examples = args.examples
    certify = args.certify if args.certify is not None else (stored.get("certify", False) if args.resume else None)
    if examples is None and stored.get("examples"):
        vals = set(stored["examples"].values())
        examples = vals.pop() if len(vals) == 1 else None
    if (args.shards is not None and args.shards < 1) or (args.examples is not None and args.examples < 1):
        err("--shards and --examples must be positive")
        return 2
    try:
        if ids is None:
            claims = claim_mod.all_claims()
        else:
            claims = [resolve(i, args.claims_from or modules.get(i)) for i in ids]
    except (KeyError, ImportError) as exc:
        err(exc.args[0] if exc.args else str(exc))
        return 2
    if directory is None:
        directory = f"campaign-{seed}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        out = run_campaign(claims, shards=shards, examples=examples, profile=profile, seed=seed,
                           directory=directory, resume=bool(args.resume), force_new=args.force_new,
                           executor=args.executor, workers=args.workers, scheduler=args.scheduler,
                           timeout=args.timeout, progress=say, certify=certify)
    except (CampaignError, StoreError, ValueError) as exc:
        err(str(exc))
        return 2
    print(report.to_text(out.results))
    print(f"\nstore: {db_path(directory)} (report again with: python -m proofs_check report {directory})")
    _write_reports(out.results, args, profile, seed)
    return 0 if all(r.matches for r in out.results) else 1


def main_report(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m proofs_check report",
                                description="Render the merged report of a campaign directory (also while it runs).")
    p.add_argument("dir", help="campaign directory")
    p.add_argument("--json", metavar="FILE", help="write the JSON report here")
    p.add_argument("--markdown", metavar="FILE", help="write the Markdown report here")
    args = p.parse_args(argv)
    try:
        results, settings, have, want = load_report(args.dir)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.to_text(results))
    if have < want:
        print(f"\npartial: {have}/{want} shards stored", file=sys.stderr)
    _write_reports(results, args, settings.get("profile", "?"), int(settings.get("seed", 0)))
    return 0 if have >= want and all(r.matches for r in results) else 1
