"""Search for counterexamples with hypothesis, shrink them, time each claim.

One claim is searched by :func:`run_claim`, a pure function of (claim, examples, seed, dps, shrink budget):
the same arguments give the same :class:`ClaimResult` on any machine, which is what lets a campaign be split
into shards (claim id, shard index, seed) and merged later. :func:`run` loops over claims under a
:class:`Profile` and reports progress.

How a search goes: hypothesis draws instances from the claim's strategy (seeded, no example database), the
claim's check evaluates each in mp, and ``hypothesis.target`` steers generation toward small margins. An
instance whose margin is below ``-tol * scale`` is a counterexample; hypothesis then shrinks it to a simplest
failing instance, which the report prints as plain lists. Shrinking is capped by ``shrink_seconds``: past the
cap the search stops trying new candidates and keeps the smallest counterexample found so far.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import sys
import time
from typing import Any, Callable, Iterable

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as hyp_seed

from .claim import FAILS, HOLDS, Claim, Evidence

__all__ = ["Profile", "PROFILES", "ClaimResult", "derive_seed", "run_claim", "run", "plain"]


@dataclasses.dataclass(frozen=True)
class Profile:
    """How hard to search.

    quick: the default of ``python -m proofs_check``, 100 examples per claim (seconds to a minute in all);
    ci: 200; deep: a local campaign, 2000 examples per claim at 60 digits with a 5-minute shrink budget.
    Every profile is deterministic for a given ``--seed``; a claim's ``weight`` scales its examples. ``certify``:
    certified verdicts (``proofs_check.certify``) after each search, on in every profile (``--no-certify``).
    """

    name: str
    examples: int  # per claim of weight 1
    shrink_seconds: float
    dps: int
    certify: bool = False  # certified verdicts (proofs_check.certify) by default under this profile


# Certification is on in every profile: it runs after each search and adds well under 1.5x to the quick profile
# (12.7 s against 171 s of search on the loaded shared 2-core machine; README, "Certified verdicts").
PROFILES = {
    "quick": Profile("quick", examples=100, shrink_seconds=20.0, dps=50, certify=True),
    "ci": Profile("ci", examples=200, shrink_seconds=30.0, dps=50, certify=True),
    "deep": Profile("deep", examples=2000, shrink_seconds=300.0, dps=60, certify=True),
}

DEFAULT_SEED = 20240517


def derive_seed(base_seed: int, claim_id: str, shard: int = 0) -> int:
    """A 32-bit seed from (campaign seed, claim id, shard index): stable across machines and Python versions
    (sha256, not ``hash``, which is salted per process)."""
    digest = hashlib.sha256(f"{int(base_seed)}:{claim_id}:{int(shard)}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclasses.dataclass(frozen=True)
class ClaimResult:
    """The outcome of searching one claim; every field is a plain value (JSON- and pickle-friendly).

    ``worst_margin`` is the smallest ``margin / scale`` over all evaluated instances (the counterexample's when
    one was found). ``verdict`` is "holds", "fails" (a counterexample) or "error" (the check raised).
    With certification on (:mod:`proofs_check.certify`), ``certified`` counts the evaluated instances by
    certificate ("within", "violated", "uncertified" with its reasons, "disagree": certificates that contradict
    the mp verdict of the same instance, "seconds") and ``counterexample_certificate`` is the shrunk
    counterexample's certificate; both are None when certification is off.
    """

    id: str
    source: str
    statement: str
    expected: str
    verdict: str
    examples: int
    worst_margin: float | None
    tol: float | None
    seconds: float
    seed: int
    counterexample: Any = None
    counterexample_detail: dict | None = None
    error: str | None = None
    note: str = ""
    twin: str | None = None
    certified: dict | None = None
    counterexample_certificate: dict | None = None

    @property
    def matches(self) -> bool:
        return self.verdict == self.expected

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["matches"] = self.matches
        return d


def plain(obj: Any) -> Any:
    """Turn an instance into nested lists / dicts of Python numbers (arrays of any backend via ``tolist``)."""
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else repr(obj)
    if hasattr(obj, "_asdict"):
        return {k: plain(v) for k, v in obj._asdict().items()}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if hasattr(obj, "tolist"):
        return plain(obj.tolist())
    try:
        return float(obj)
    except (TypeError, ValueError):
        return repr(obj)


def _digest(instance: Any) -> str:
    return hashlib.sha256(repr(plain(instance)).encode()).hexdigest()


class _Counterexample(AssertionError):
    """Raised inside the hypothesis test to mark an instance whose margin is below -tol * scale."""


class _CheckError(Exception):
    """Raised inside the hypothesis test when the claim's check itself raised (a defect of the claim code or
    of an instance the strategy should not have produced); shrunk like a counterexample."""


@contextlib.contextmanager
def _without_local_constants():
    """Keep hypothesis from mixing constants mined from the loaded source modules into its draws.

    Since 6.131 hypothesis draws, with probability ~5 %, integers and floats found as literals in the user modules
    present in ``sys.modules``; which modules are loaded differs between a CLI run, a pytest worker and a campaign
    shard, so the same seed gave different instances (found by tests/test_campaign.py: worst margin 1000 vs 1033).
    The hook is internal, so its absence (older or newer hypothesis) is tolerated: there is nothing to undo then.
    """
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:  # pragma: no cover - hypothesis without local constants
        yield
        return
    if not (hasattr(providers, "_get_local_constants") and hasattr(providers, "CONSTANTS_CACHE")):
        yield  # pragma: no cover
        return
    empty = Constants()
    saved = providers._get_local_constants, providers.CONSTANTS_CACHE
    providers._get_local_constants = lambda: empty
    providers.CONSTANTS_CACHE = {}  # it caches the local pool per choice type: start from nothing, restore after
    try:
        yield
    finally:
        providers._get_local_constants, providers.CONSTANTS_CACHE = saved


def _certify_all(claim: Claim, seen: list, shrunk: Any, *, dps: int) -> tuple[dict, dict | None]:
    """Certificates of every evaluated instance (``seen``: (instance, mp verdict ok or None when the check
    raised)) and of the shrunk counterexample; run after the search so it cannot change what the search finds.
    A hook that raises is counted uncertified with the exception as its reason (a defect shown, not hidden)."""
    from . import certify as C

    t0 = time.perf_counter()
    tally, cache, disagree = C.Tally(), {}, 0

    def one(instance):
        key = _digest(instance)
        if key not in cache:
            try:
                cache[key] = C.certify_instance(claim, instance, dps=dps)
            except Exception as exc:  # noqa: BLE001 - reported in the reasons
                cache[key] = C.Certificate(C.UNCERTIFIED, f"certify hook raised {type(exc).__name__}: {exc}")
        return cache[key]

    for instance, ok in seen:
        cert = one(instance)
        tally.add(cert)
        if ok is not None and cert.status == (C.WITHIN if not ok else C.VIOLATED):
            disagree += 1
    cex = None if shrunk is None else one(shrunk).to_dict()
    out = tally.to_dict()
    out.update(disagree=disagree, seconds=round(time.perf_counter() - t0, 3))
    return out, cex


def run_claim(claim: Claim, *, examples: int, seed: int, dps: int = 50, shrink_seconds: float = 20.0,
              certify: bool = False) -> ClaimResult:
    """Search ``claim`` on ``examples`` instances drawn with ``seed``; shrink the first counterexample found.

    Deterministic for fixed arguments, in any process: no example database, an explicit seed, no deadline, and
    no constants mined from whatever modules happen to be loaded (:func:`_without_local_constants`). With
    ``certify``, every evaluated instance is certified in ball arithmetic after the search (:func:`_certify_all`).
    """
    if examples < 1:
        raise ValueError(f"examples: expected a positive count, got {examples}")
    calls = 0
    seen: list = []  # (instance, mp ok) of every evaluated instance, kept only when certifying
    worst: Evidence | None = None
    failing: dict[str, Any] = {}  # the last (= smallest) failing instance, its evidence or error, its digest
    t_first_fail: list[float] = []

    def body(instance):
        nonlocal calls, worst
        key = None
        if t_first_fail and time.perf_counter() - t_first_fail[0] > shrink_seconds:
            # Shrink budget spent: answer without computing. Only the smallest failing instance found so far
            # fails again, so hypothesis's final replay of its best example stays consistent.
            key = _digest(instance)
            if key == failing.get("digest"):
                raise failing["exc"]
            return
        calls += 1
        try:
            ev = claim.check(instance, dps=dps)
        except Exception as exc:  # noqa: BLE001 - reported as the claim's error, with the instance
            if certify:
                seen.append((instance, None))
            err = _CheckError(f"{type(exc).__name__}: {exc}")
            failing.update(instance=instance, evidence=None, error=str(err), digest=_digest(instance), exc=err)
            t_first_fail[:1] = t_first_fail[:1] or [time.perf_counter()]
            raise err from exc
        if certify:
            seen.append((instance, ev.ok))
        if worst is None or ev.relative_margin < worst.relative_margin or math.isnan(ev.margin):
            worst = ev
        hypothesis.target(-ev.relative_margin if math.isfinite(ev.relative_margin) else 1e300, label="-margin/scale")
        if not ev.ok:
            exc = _Counterexample(f"margin={ev.margin:.3g} < -tol*scale={-ev.tol * ev.scale:.3g} [{claim.id}]")
            failing.update(instance=instance, evidence=ev, error=None, digest=_digest(instance), exc=exc)
            t_first_fail[:1] = t_first_fail[:1] or [time.perf_counter()]
            raise exc

    test = given(claim.strategy)(body)
    test = settings(
        max_examples=int(examples),
        derandomize=False,
        database=None,
        deadline=None,
        print_blob=False,
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
        suppress_health_check=list(HealthCheck),
        # no Phase.explain: it replays ~100 variants of the shrunk example after shrinking, and the last failing
        # call (which this runner reports) would then be one of those variants instead of the minimal instance
        phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink),
    )(test)
    test = hyp_seed(seed)(test)

    t0 = time.perf_counter()
    outcome = HOLDS
    try:
        with _without_local_constants():
            test()
    except (_Counterexample, _CheckError):
        outcome = FAILS
    except Exception as exc:  # noqa: BLE001 - hypothesis' Flaky* (replay disagreed) or an error raised while drawing
        if failing:
            outcome = FAILS  # keep the smallest failing instance we saw ourselves
        else:
            failing.update(instance=None, evidence=None, error=f"{type(exc).__name__}: {exc}")
            outcome = "error"
    seconds = time.perf_counter() - t0

    verdict = outcome
    if outcome == FAILS and failing.get("evidence") is None:
        verdict = "error"  # the check raised: not a counterexample to the statement
    ev = failing.get("evidence") if failing else None
    shown = ev if ev is not None else worst
    describe = claim.describe or plain
    instance = failing.get("instance") if failing else None
    certified, cex_cert = _certify_all(claim, seen, instance, dps=dps) if certify else (None, None)
    return ClaimResult(
        id=claim.id,
        source=str(claim.source),
        statement=claim.statement,
        expected=claim.expected,
        verdict=verdict,
        examples=calls,
        worst_margin=None if shown is None else float(shown.relative_margin),
        tol=None if shown is None else float(shown.tol),
        seconds=round(seconds, 3),
        seed=int(seed),
        counterexample=None if instance is None else plain(describe(instance)),
        counterexample_detail=None if ev is None else plain(ev.detail),
        error=failing.get("error") if failing else None,
        note=claim.note,
        twin=claim.twin,
        certified=certified,
        counterexample_certificate=cex_cert,
    )


def run(
    claims: Iterable[Claim],
    *,
    profile: Profile,
    seed: int = DEFAULT_SEED,
    progress: Callable[[str], None] | None = None,
) -> list[ClaimResult]:
    """Run every claim under ``profile``; ``progress`` (default: stderr) gets one line per claim as it ends."""
    claims = list(claims)
    say = progress if progress is not None else (lambda line: print(line, file=sys.stderr, flush=True))
    results = []
    for i, claim in enumerate(claims, 1):
        say(f"[{i}/{len(claims)}] {claim.id} ...")
        res = run_claim(
            claim,
            examples=max(1, round(profile.examples * claim.weight)),
            seed=derive_seed(seed, claim.id),
            dps=profile.dps,
            shrink_seconds=profile.shrink_seconds,
            certify=profile.certify,
        )
        flag = "ok" if res.matches else "UNEXPECTED"
        margin = "-" if res.worst_margin is None else f"{res.worst_margin:.3g}"
        cert = "" if res.certified is None else (f", {res.certified['within'] + res.certified['violated']} certified"
                                                 f" ({res.certified['seconds']:.1f} s)")
        say(f"[{i}/{len(claims)}] {claim.id}: {res.verdict} ({flag}), {res.examples} examples, "
            f"worst margin {margin}, {res.seconds:.1f} s{cert}")
        results.append(res)
    return results
