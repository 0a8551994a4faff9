"""The differential-testing harness: run a candidate implementation against krad_ref and report where it differs.

Usage::

    from krad_ref import crossval
    report = crossval.check(MyKradagradStar(), "kradagrad_star", {"t_rule": "frobenius"}, dtype="float64")
    print(report)            # readable text; report.passed, report.first_divergence, report.shrunk

Candidate protocols (both over NumPy arrays; wrap other array libraries with ``krad_ref.crossval.adapters``):

1. **Object** with ``init`` and ``update`` (krad_ref's own protocol)::

       state = candidate.init(shape, config, dtype="float64")      # shape: tuple of ints; config: plain dict
       direction, state = candidate.update(grad, state, config)    # grad: NumPy array of ``shape`` in ``dtype``

   ``config`` is a plain ``dict`` of the fields of krad_ref's Config for the algorithm (``format.config_fields``:
   the resolved Config, tuples as lists), e.g. ``{"variant": "paper", "t_rule": "frobenius", "alpha": 0.5, ...}``.
   Fields added after golden format v1 (``algorithm.OMIT_WHEN_DEFAULT``, e.g. Shampoo's conventions) are absent
   while at their default: read them with ``config.get(name, default)``.
   A candidate that does not support a config raises :class:`Declined` (or any ``NotImplementedError``): that run
   is reported as skipped.
   The harness reads the state's quantities, in this order of preference: ``candidate.quantities(state)``
   returning a mapping with optional keys ``"factors"`` and ``"roots"`` (sequences of arrays, one per mode:
   matrix (L, R)); a mapping ``state`` with those keys; a state with attributes ``factors``/``roots`` (Shampoo:
   ``stats``/``roots``; AdaGrad full ``H``, diag ``v``; MBAG ``H``/``root``). Quantities a candidate does not
   expose are not compared (the report says so); the direction always is.
2. **Step callable** ``step(grads, config, dtype="float64")``: ``grads`` is the list of the gradients received so
   far (G_1 ... G_k, NumPy arrays in ``dtype``), and it returns the output of step k: the direction array, or a
   mapping with ``"direction"`` and optionally ``"factors"``/``"roots"``. It suits stateless or out-of-process
   implementations (it is called once per step with the whole prefix, so its cost is quadratic in the length).

Reference and tolerances. On the golden cases (``format.load_shipped``) the expected values are the case's
(mpmath twins, rounded once) and the tolerances the case's for ``dtype``; each case carries its own config (the
``config`` argument applies to generated sequences only). On generated sequences the reference is krad_ref's
own algorithm run in float64 on NumPy, and the tolerances come from ``tolerance.step_tolerances`` for
``dtype`` (every algorithm id, the MBAG family included).
A quantity passes a step when ``error / tolerance <= 1`` (relative Frobenius error, per mode); a tolerance
>= 1 means the dtype cannot resolve that quantity on that input: it is reported as unresolved, not judged.
Every returned array must have exactly the promised dtype (a float32 direction where float64 was promised
fails the ``dtype`` check even when its values happen to be accurate).

Outcomes. A check ends in one of three verdicts (``CheckReport.verdict``; exit status 0 / 1 / 2 of the ``check``
command): PASS, FAIL, or NOT CHECKED with its reason (every run skipped; a convention krad_ref cannot express,
set by the caller as ``not_checked``); each quantity has its own verdict, NOT CHECKED when never compared (not
exposed by the candidate, unresolvable in the dtype). An exception the candidate raises is a FAIL of that run at
the step it was raised (0 = ``init``), with the candidate's innermost own frame ("file:line in function": not the
harness, not an array library's internals). A config krad_ref's algorithm refuses raises ValueError naming the
config field. The first failing input, golden or generated, is shrunk (golden failures are judged, while
shrinking, against krad_ref's float64 run of the case's config, since the golden values exist only for the case).

Generated sequences and shrinking (no hypothesis at import or run time: errata 17). ``examples`` sequences are
drawn from a NumPy Generator (``krad_ref.backend.rng(seed)``): shapes with dimensions 1-5 (matrices, and
order-3 tensors where the algorithm supports them), 1-6 steps, gradients of spectral norm in [0.1, 1] that are
dense, rank one or partly zero, rounded to float32-representable values (so a float32 candidate consumes
exactly the same inputs). ``grad_scale=(lo, hi)`` draws the norms log-uniformly in [lo, hi] instead, and
``grad_rank`` fixes the rank ("full", "low", "one"; rank of the mode-0 unfolding, up to the float32 rounding of
the entries, which leaves singular values ~ u_32 sigma_1 beyond the rank). The first failing input is shrunk
greedily, keeping it failing: truncate after the first diverging step, drop single steps, drop one index of a
mode (a row/column), zero entries (half a gradient, then single entries), and round the remaining entries to one
significant digit; each pass repeats until nothing changes or ``shrink_budget`` candidate runs are used.
Shrinking never rescales: zeroing keeps the other entries and rounding is relative to each entry's own
magnitude, so a 1e4-scale failure stays at 1e4. The report shows the smallest failing input found.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
import traceback
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from . import format as gformat
from . import tolerance

__all__ = ["check", "run_candidate", "CheckReport", "RunResult", "QuantityResult", "Divergence", "ShrunkInput",
           "CandidateError", "Declined", "reference_run", "reference_tolerances", "candidate_kind", "DTYPE_CHECK", "PASS", "FAIL",
           "NOT_CHECKED", "EXIT_CODES"]

#: The three outcomes of a check (and of each quantity) and the exit status of ``python -m krad_ref.crossval check``.
PASS, FAIL, NOT_CHECKED = "PASS", "FAIL", "NOT CHECKED"
EXIT_CODES = {PASS: 0, FAIL: 1, NOT_CHECKED: 2}

#: The pseudo-quantity name under which a wrong returned dtype is reported.
DTYPE_CHECK = "dtype"
_QUANTS = ("factors", "roots", "direction")
_TENSOR_ALGS = ("kradagrad_star", "kradagrad", "shampoo", "adagrad_full", "adagrad_diag", "mbag", "mbag_ema",
                "mbag_n")


# ----------------------------------------------------------------------------------------------------------------
# report objects

@dataclasses.dataclass
class Divergence:
    """The first (step, quantity, mode) whose error exceeds its tolerance, or a dtype / exception failure."""

    step: int                 # 1-based step k
    quantity: str             # "factors", "roots", "direction", "dtype" or "exception"
    mode: int | None = None   # mode index for factors/roots
    error: float | None = None
    tol: float | None = None
    message: str = ""
    frame: str = ""           # "file:line in function" of the candidate's innermost frame (exceptions only)

    @property
    def ratio(self) -> float | None:
        return None if self.error is None or not self.tol else self.error / self.tol

    def __str__(self) -> str:
        if self.error is None:
            where = f" (raised at {self.frame})" if self.frame else ""
            return f"{'init' if self.step == 0 else f'step {self.step}'}: {self.quantity}: {self.message}{where}"
        where = f"{self.quantity}[mode {self.mode}]" if self.mode is not None else self.quantity
        return (f"step {self.step}: {where}: rel. error {self.error:.3e} > tol {self.tol:.3e} "
                f"(x{self.ratio:.3g}){' ' + self.message if self.message else ''}")


@dataclasses.dataclass
class RunResult:
    """One input sequence (a golden case or a generated sequence) run through the candidate."""

    source: str                       # "golden:<case id>" or "generated:<i>"
    shape: tuple
    steps: int
    config: dict
    ratios: list                      # per step {quantity: worst err/tol over modes or None}
    unresolved: dict                  # quantity -> number of (step, mode) entries with tol >= 1
    not_exposed: tuple = ()           # quantities the candidate does not return
    divergence: Divergence | None = None
    skipped: str | None = None        # reason (candidate declined the config, reference refused the input)

    @property
    def passed(self) -> bool:
        return self.skipped is not None or self.divergence is None


@dataclasses.dataclass
class QuantityResult:
    """A quantity aggregated over all runs: pass/fail and the worst error relative to its tolerance."""

    name: str
    passed: bool
    worst_ratio: float | None         # max err/tol over every judged step and mode (None: never compared)
    worst_at: str = ""                # "<source> step k"
    unresolved: int = 0
    compared: int = 0                 # number of (run, step) comparisons
    reason: str = ""                  # why it was not checked (compared == 0)

    @property
    def verdict(self) -> str:
        """PASS, FAIL or NOT CHECKED (never compared: ``reason`` says why)."""
        if not self.passed:
            return FAIL
        return NOT_CHECKED if self.compared == 0 else PASS


@dataclasses.dataclass
class ShrunkInput:
    """The smallest failing generated input found by shrinking."""

    shape: tuple
    grads: list                       # float64 NumPy arrays (float32-representable)
    divergence: Divergence
    original_shape: tuple
    original_steps: int
    evaluations: int
    source: str = ""                  # the run it was shrunk from ("golden:<case id>" or "generated:<i>")

    def grads_text(self, width: int = 100) -> str:
        lines = []
        for j, g in enumerate(self.grads, 1):
            txt = np.array2string(np.asarray(g), precision=6, separator=", ", max_line_width=width)
            lines.append(f"    G_{j} = " + txt.replace("\n", "\n" + " " * 10))
        return "\n".join(lines)


@dataclasses.dataclass
class CheckReport:
    """What :func:`check` found; ``str(report)`` is a readable summary.

    ``verdict`` is one of three outcomes (``EXIT_CODES`` maps them to the CLI's exit status 0 / 1 / 2):
    PASS (some run judged, none failed), FAIL (a run diverged, returned a wrong dtype or raised) or NOT CHECKED
    (nothing was judged; ``reason`` says why: every run skipped, or ``not_checked`` set by the caller, e.g. a
    convention krad_ref's config cannot express).
    """

    candidate: str
    algorithm: str
    dtype: str
    config: dict
    runs: list
    quantities: dict                  # name -> QuantityResult (factors, roots, direction, dtype)
    shrunk: ShrunkInput | None = None
    seed: int | None = None
    seconds: float = 0.0
    not_checked: str | None = None    # a reason that stopped the check before any run (verdict NOT CHECKED)

    @classmethod
    def declined(cls, candidate: str, algorithm: str, dtype: str, config: dict, reason: str) -> "CheckReport":
        """A report with no run: NOT CHECKED for ``reason``."""
        return cls(candidate, algorithm, dtype, dict(config), [], _aggregate([]), not_checked=reason)

    @property
    def passed(self) -> bool:
        return self.verdict == PASS

    @property
    def failures(self) -> list:
        return [r for r in self.runs if not r.passed]

    @property
    def verdict(self) -> str:
        if self.not_checked is not None:
            return NOT_CHECKED
        if self.failures:
            return FAIL
        return PASS if any(r.skipped is None for r in self.runs) else NOT_CHECKED

    @property
    def reason(self) -> str:
        """Why the verdict is NOT CHECKED ("" otherwise)."""
        if self.verdict != NOT_CHECKED:
            return ""
        if self.not_checked is not None:
            return self.not_checked
        if not self.runs:
            return "no run (no golden case and examples=0)"
        reasons = sorted({r.skipped for r in self.runs})
        return "every run skipped: " + "; ".join(reasons[:3]) + (" ..." if len(reasons) > 3 else "")

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    @property
    def first_divergence(self) -> Divergence | None:
        """The first divergence of the first failing run (golden cases come first)."""
        f = self.failures
        return f[0].divergence if f else None

    def __str__(self) -> str:
        judged = [r for r in self.runs if r.skipped is None]
        head = f"crossval check: {self.candidate} vs krad_ref {self.algorithm} [{self.dtype}]: {self.verdict}"
        lines = [head + (f" ({self.reason})" if self.reason else "")]
        if self.not_checked is not None:
            return lines[0]
        lines.append(f"  runs: {len(judged)} judged ({sum(r.source.startswith('golden') for r in judged)} golden, "
                     f"{sum(r.source.startswith('generated') for r in judged)} generated), "
                     f"{len(self.failures)} failed, {len(self.runs) - len(judged)} skipped"
                     f"{'' if self.seed is None else f'; seed {self.seed}'}; {self.seconds:.1f} s")
        lines.append("  quantity    verdict      worst err/tol  at")
        for q in (*_QUANTS, DTYPE_CHECK):
            r = self.quantities.get(q)
            if r is None:
                continue
            if r.verdict == NOT_CHECKED:
                lines.append(f"  {q:<11} {NOT_CHECKED:<12} ({r.reason})")
                continue
            w = "-" if r.worst_ratio is None else f"{r.worst_ratio:.3g}"
            extra = f"  ({r.unresolved} unresolvable in {self.dtype}: tol >= 1)" if r.unresolved else ""
            lines.append(f"  {q:<11} {r.verdict:<12} {w:>13}  {r.worst_at}{extra}")
        for r in self.failures:
            lines.append(f"  FAILED {r.source} shape {list(r.shape)}, {r.steps} steps: first divergence at "
                         f"{r.divergence}")
        skipped = [r for r in self.runs if r.skipped is not None]
        if skipped:
            reasons = sorted({r.skipped for r in skipped})
            lines.append(f"  skipped {len(skipped)}: " + "; ".join(reasons[:3]))
        if self.shrunk is not None:
            s = self.shrunk
            lines.append(f"  shrunk failing input (from {s.source or 'a failing run'}: shape "
                         f"{list(s.original_shape)}, {s.original_steps} steps; {s.evaluations} runs): shape "
                         f"{list(s.shape)}, {len(s.grads)} step(s), fails at {s.divergence}")
            lines.append(s.grads_text())
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------------------
# candidate protocol

def candidate_kind(candidate: Any) -> str:
    """``"object"`` (init/update) or ``"step"`` (callable); TypeError otherwise."""
    if callable(getattr(candidate, "init", None)) and callable(getattr(candidate, "update", None)):
        return "object"
    if callable(candidate):
        return "step"
    raise TypeError(f"candidate: expected an object with init/update or a step callable, got "
                    f"{type(candidate).__name__}")


def _name_of(candidate: Any) -> str:
    n = getattr(candidate, "name", None)
    if isinstance(n, str):
        return n
    n = getattr(candidate, "__qualname__", None) or type(candidate).__qualname__
    return n


_STATE_ATTRS = (("factors", "roots"), ("stats", "roots"), ("H", "root"), ("v", None))


def _extract(candidate: Any, state: Any) -> dict:
    """The candidate's raw (unconverted) factors/roots from its state (module docstring)."""
    q = None
    if callable(getattr(candidate, "quantities", None)):
        q = candidate.quantities(state)
    elif isinstance(state, Mapping):
        q = state
    if q is not None:
        return {"factors": q.get("factors"), "roots": q.get("roots")}
    for fa, ra in _STATE_ATTRS:
        if hasattr(state, fa):
            f = getattr(state, fa)
            r = getattr(state, ra, None) if ra else None
            return {"factors": tuple(f) if isinstance(f, (tuple, list)) else (f,),
                    "roots": None if r is None else (tuple(r) if isinstance(r, (tuple, list)) else (r,))}
    return {"factors": None, "roots": None}


def _dtype_of(x: Any) -> str:
    dt = getattr(x, "dtype", None)
    if dt is None:
        return type(x).__name__
    try:
        return np.dtype(dt).name
    except TypeError:
        return str(dt).replace("torch.", "")


def _as64(x: Any) -> np.ndarray:
    from krad_ref import backend

    if isinstance(x, np.ndarray):
        return np.asarray(x, dtype=np.float64)
    try:
        return np.asarray(backend.to_numpy(x), dtype=np.float64)
    except Exception:  # noqa: BLE001 - anything array-like the candidate returns
        return np.asarray(x, dtype=np.float64)


class Declined(NotImplementedError):
    """A candidate's way of declining a config or a parameter shape it does not support: the run is reported as
    skipped, with the message as the reason. A NotImplementedError subclass, so a candidate written against the
    protocol's plain ``NotImplementedError`` is treated the same; the name says it is a decision, not a gap."""


class CandidateError(Exception):
    """The candidate raised at ``step`` (0: in ``init``); ``frame`` is its innermost own frame, "file:line in fn"."""

    def __init__(self, step: int, exc: BaseException):
        self.step, self.exc, self.frame = step, exc, _candidate_frame(exc)
        super().__init__(f"{type(exc).__name__}: {exc}")


_CROSSVAL_DIR = os.path.dirname(os.path.abspath(__file__))
#: array libraries whose internals are never "the candidate's frame" (the call into them is)
_LIBRARY_DIRS = ("numpy", "torch", "scipy", "array_api_strict", "array_api_compat", "cupy", "jax")


def _candidate_frame(exc: BaseException) -> str:
    """The innermost traceback frame of ``exc`` that is the candidate's own code: not the harness or its
    adapters (this package) and not inside an array library; falls back to the innermost frame."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if not os.path.abspath(f.filename).startswith(_CROSSVAL_DIR + os.sep)]
    lib = [f for f in own if not set(os.path.normpath(f.filename).split(os.sep)[:-1]) & set(_LIBRARY_DIRS)]
    pick = (lib or own or frames or [None])[-1]
    return "" if pick is None else f"{pick.filename}:{pick.lineno} in {pick.name}"


def _call(step: int, fn: Callable, *args, **kwargs):
    """``fn(*args, **kwargs)``; an exception other than NotImplementedError becomes a CandidateError at ``step``."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the candidate raises is reported at its step
        raise CandidateError(step, exc) from exc


def run_candidate(candidate: Any, algorithm: str, config: dict, shape: Sequence[int], grads: Sequence[np.ndarray],
                  dtype: str) -> tuple[list, list]:
    """Run a candidate over ``grads`` (cast to ``dtype``); returns (quantity dicts in float64, raw dtypes).

    Raises NotImplementedError when the candidate declines the config, :class:`CandidateError` (with the step,
    0 for ``init``, and the candidate's frame) for anything else it raises."""
    kind = candidate_kind(candidate)
    outs, dts = [], []
    cast = [np.array(g, dtype=dtype) for g in grads]
    if kind == "object":
        state = _call(0, candidate.init, tuple(shape), dict(config), dtype=dtype)
        for k, G in enumerate(cast, 1):
            direction, state = _call(k, candidate.update, G.copy(), state, dict(config))
            raw = _call(k, _extract, candidate, state)
            raw["direction"] = direction
            outs.append(raw)
    else:
        for k in range(1, len(cast) + 1):
            out = _call(k, candidate, [g.copy() for g in cast[:k]], dict(config), dtype=dtype)
            raw = dict(out) if isinstance(out, Mapping) else {"direction": out}
            outs.append({"factors": raw.get("factors"), "roots": raw.get("roots"), "direction": raw["direction"]})
    res = []
    for raw in outs:
        d = {}
        types = {}
        for q in _QUANTS:
            v = raw.get(q)
            if v is None:
                d[q] = None
                continue
            if q == "direction":
                types[q] = [_dtype_of(v)]
                d[q] = _as64(v)
            else:
                v = tuple(v)
                types[q] = [_dtype_of(a) for a in v]
                d[q] = tuple(_as64(a) for a in v)
        res.append(d)
        dts.append(types)
    return res, dts


# ----------------------------------------------------------------------------------------------------------------
# reference and tolerances

def _quantities(algorithm: str, state: Any, direction: Any) -> dict:
    return gformat.quantities(algorithm, state, direction)


def reference_run(algorithm: str, cfg: Any, shape: Sequence[int], grads: Sequence[np.ndarray]) -> list:
    """krad_ref's own run in float64 on NumPy: one quantity dict per step."""
    from krad_ref import algorithm as registry
    from krad_ref import backend

    alg = registry.get(algorithm)
    xp = backend.get_namespace("numpy")
    state = alg.init(tuple(shape), cfg, dtype="float64", xp=xp)
    out = []
    for g in grads:
        direction, state = alg.update(np.array(g, dtype=np.float64), state, cfg)
        out.append(_quantities(algorithm, state, direction))
    return out


def reference_tolerances(algorithm: str, cfg: Any, shape: Sequence[int], steps: Sequence[Mapping],
                         grads: Sequence[np.ndarray], dtype: str) -> list:
    """Per-step tolerances for ``dtype`` around a float64 reference run (``steps``)."""
    if algorithm not in _TENSOR_ALGS:
        raise ValueError(f"algorithm: no tolerance model for {algorithm!r}; known: {', '.join(_TENSOR_ALGS)}")
    from krad_ref import algorithm as registry
    from krad_ref import backend

    st0 = registry.get(algorithm).init(tuple(shape), cfg, dtype="float64", xp=backend.get_namespace("numpy"))
    init = _quantities(algorithm, st0, np.zeros(tuple(shape)))["factors"]
    return tolerance.step_tolerances(algorithm, cfg, shape, steps, grads, dtype, init_factors=init)


# ----------------------------------------------------------------------------------------------------------------
# judging one run

def _judge(source: str, shape, config: dict, expected: Sequence[Mapping], tols: Sequence[Mapping],
           got: Sequence[Mapping], types: Sequence[Mapping], dtype: str) -> RunResult:
    ratios, unresolved = [], {q: 0 for q in _QUANTS}
    divergence = None
    not_exposed = tuple(q for q in ("factors", "roots") if expected and expected[0].get(q) is not None
                        and got and got[0].get(q) is None)
    for k, (e, t, g, ty) in enumerate(zip(expected, tols, got, types), 1):
        row = {}
        for q, dts in ty.items():
            bad = [d for d in dts if d != dtype]
            if bad and divergence is None:
                divergence = Divergence(k, DTYPE_CHECK, message=f"{q} returned as {bad[0]}, but {dtype} was promised")
        for q in _QUANTS:
            ev, gv, tv = e.get(q), g.get(q), t.get(q)
            if ev is None or gv is None or tv is None:
                row[q] = None
                continue
            if q == "direction":
                ev, gv, tv = (ev,), (gv,), (tv,)
            if len(ev) != len(gv) or any(a.shape != b.shape for a, b in zip(ev, gv)):
                row[q] = math.inf
                if divergence is None:
                    divergence = Divergence(k, q, message=f"shape mismatch: expected {[a.shape for a in ev]}, "
                                                          f"got {[b.shape for b in gv]}")
                continue
            worst = None
            for i, (a, b, ti) in enumerate(zip(ev, gv, tv)):
                err = tolerance.rel_error(b, a)
                if ti >= 1.0 and math.isfinite(err):
                    unresolved[q] += 1
                    continue
                r = err / ti
                worst = r if worst is None else max(worst, r)
                if r > 1.0 and divergence is None:
                    divergence = Divergence(k, q, None if q == "direction" else i, err, ti)
            row[q] = worst
        ratios.append(row)
    return RunResult(source, tuple(shape), len(expected), config, ratios, unresolved, not_exposed, divergence)


def _run_one(candidate, algorithm: str, cfg, shape, grads, dtype: str, source: str,
             expected=None, tols=None) -> RunResult:
    cfg_dict = gformat.config_fields(cfg)
    if expected is None:
        try:
            expected = reference_run(algorithm, cfg, shape, grads)
            tols = reference_tolerances(algorithm, cfg, shape, expected, grads, dtype)
        except (ValueError, TypeError) as exc:
            return RunResult(source, tuple(shape), len(grads), cfg_dict, [], {}, skipped=f"reference refused: {exc}")
    try:
        got, types = run_candidate(candidate, algorithm, cfg_dict, shape, grads, dtype)
    except NotImplementedError as exc:
        return RunResult(source, tuple(shape), len(grads), cfg_dict, [], {},
                         skipped=f"candidate declined: {exc or 'NotImplementedError'}")
    except CandidateError as exc:  # a crashing candidate is a finding, reported at its step and frame
        return RunResult(source, tuple(shape), len(grads), cfg_dict, [], {},
                         divergence=Divergence(exc.step, "exception", message=str(exc), frame=exc.frame))
    except Exception as exc:  # noqa: BLE001 - the harness converting the candidate's output (wrong types)
        return RunResult(source, tuple(shape), len(grads), cfg_dict, [], {},
                         divergence=Divergence(0, "exception", message=f"{type(exc).__name__}: {exc}",
                                               frame=_candidate_frame(exc)))
    if len(got) != len(expected):
        return RunResult(source, tuple(shape), len(grads), cfg_dict, [], {},
                         divergence=Divergence(len(got), "exception", message="wrong number of outputs"))
    return _judge(source, shape, cfg_dict, expected, tols, got, types, dtype)


# ----------------------------------------------------------------------------------------------------------------
# generated sequences and shrinking

def _gen_shape(rng, algorithm: str) -> tuple:
    if algorithm in ("kradagrad_star", "kradagrad", "shampoo") and rng.random() < 0.25:
        return tuple(int(d) for d in rng.integers(1, 4, size=3))
    return tuple(int(d) for d in rng.integers(1, 6, size=2))


#: ``check(grad_rank=...)``: "mixed" (the default draw: dense, rank one or partly zero), "full", "low", "one"
GRAD_RANKS = ("mixed", "full", "low", "one")


def generation_options(grad_scale: Any, grad_rank: str) -> tuple:
    """Validated ``(grad_scale, grad_rank)`` of :func:`check`: None or (lo, hi) with 0 < lo <= hi, finite."""
    if grad_rank not in GRAD_RANKS:
        raise ValueError(f"grad_rank: expected one of {GRAD_RANKS}, got {grad_rank!r}")
    if grad_scale is None:
        return None, grad_rank
    try:
        lo, hi = (float(v) for v in grad_scale)
    except (TypeError, ValueError):
        raise ValueError(f"grad_scale: expected None or a pair (lo, hi) of numbers, got {grad_scale!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi):
        raise ValueError(f"grad_scale: expected finite 0 < lo <= hi, got ({lo}, {hi})")
    return (lo, hi), grad_rank


def _ranked(rng, shape, rank: str) -> np.ndarray:
    """A gradient whose mode-0 unfolding (the matrix itself for matrices) has full rank, a rank r below
    min(d_0, prod d_rest) ("low"; rank 1 when that minimum is 1), or rank one in every mode ("one")."""
    if rank == "one" and len(shape) >= 2:
        G = rng.standard_normal(shape[0])
        for d in shape[1:]:
            G = np.multiply.outer(G, rng.standard_normal(d))
        return G
    rest = math.prod(shape[1:])
    if rank == "low" and len(shape) >= 2:
        r = int(rng.integers(1, min(shape[0], rest))) if min(shape[0], rest) >= 2 else 1
        return (rng.standard_normal((shape[0], r)) @ rng.standard_normal((r, rest))).reshape(shape)
    return rng.standard_normal(shape)


def _gen_grad(rng, shape, grad_scale=None, grad_rank: str = "mixed") -> np.ndarray:
    if grad_rank != "mixed":
        G = _ranked(rng, shape, grad_rank)
    else:  # the default draw (seeded runs reproduce it exactly)
        kind = rng.integers(0, 3)
        if kind == 1 and len(shape) >= 2:  # rank one
            G = np.multiply.outer(rng.standard_normal(shape[0]), rng.standard_normal(shape[1:]))
        else:
            G = rng.standard_normal(shape)
            if kind == 2:
                G = G * (rng.random(shape) < 0.5)
    mat = G.reshape(shape[0], -1) if G.ndim else G.reshape(1, 1)
    nrm = float(np.linalg.norm(mat, 2))
    if nrm > 0:
        # spectral norm uniform in [0.1, 1] (default) or log-uniform in grad_scale
        target = rng.uniform(0.1, 1.0) if grad_scale is None else \
            math.exp(rng.uniform(math.log(grad_scale[0]), math.log(grad_scale[1])))
        G = G * (target / nrm)
    return G.astype(np.float32).astype(np.float64)


def _generate(rng, algorithm: str, n: int, grad_scale=None, grad_rank: str = "mixed") -> list:
    out = []
    for _ in range(n):
        shape = _gen_shape(rng, algorithm)
        steps = int(rng.integers(1, 7))
        out.append((shape, [_gen_grad(rng, shape, grad_scale, grad_rank) for _ in range(steps)]))
    return out


def _simplify(x: float) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    e = math.floor(math.log10(abs(x)))
    return float(np.float32(round(x / 10.0 ** e) * 10.0 ** e))


def _shrink(candidate, algorithm: str, cfg, shape, grads, dtype: str, first: RunResult,
            budget: int, seconds: float) -> ShrunkInput:
    evals = 0
    t0 = time.perf_counter()
    best_shape, best = tuple(shape), [np.array(g) for g in grads]
    best_div = first.divergence

    def fails(shp, gs) -> Divergence | None:
        nonlocal evals
        evals += 1
        if not gs or min(shp, default=1) < 1:
            return None
        r = _run_one(candidate, algorithm, cfg, shp, gs, dtype, "shrink")
        d = None if r.skipped is not None else r.divergence
        # keep the failure's kind: a numerical divergence must not shrink into a crash (e.g. a shape error)
        return None if d is None or (d.quantity == "exception") != (first.divergence.quantity == "exception") else d

    def out_of_budget() -> bool:
        return evals >= budget or time.perf_counter() - t0 > seconds

    def attempt(shp, gs) -> bool:
        nonlocal best_shape, best, best_div
        if out_of_budget():
            return False
        d = fails(shp, gs)
        if d is not None:
            best_shape, best, best_div = tuple(shp), gs, d
            return True
        return False

    if best_div is not None and best_div.step >= 1:
        attempt(best_shape, best[:best_div.step])
    changed = True
    while changed and not out_of_budget():
        changed = False
        j = 0
        while j < len(best) and len(best) > 1:  # drop single steps
            if not attempt(best_shape, best[:j] + best[j + 1:]):
                j += 1
            else:
                changed = True
        for ax in range(len(best_shape)):  # drop one index of a mode
            i = 0
            while best_shape[ax] > 1 and i < best_shape[ax]:
                shp = best_shape[:ax] + (best_shape[ax] - 1,) + best_shape[ax + 1:]
                if attempt(shp, [np.delete(g, i, axis=ax) for g in best]):
                    changed = True
                else:
                    i += 1
        for j in range(len(best)):  # zero entries: half a gradient, then single entries
            flat = best[j].reshape(-1)
            nz = np.flatnonzero(flat)
            halves = [nz[: len(nz) // 2], nz[len(nz) // 2:]] if len(nz) > 1 else []
            for idx in [*halves, *([i] for i in nz)]:
                cur = best[j].reshape(-1)
                if not np.any(cur[idx]):
                    continue
                new = cur.copy()
                new[idx] = 0.0
                if attempt(best_shape, best[:j] + [new.reshape(best_shape)] + best[j + 1:]):
                    changed = True
        for j in range(len(best)):  # round to one significant digit
            new = np.vectorize(_simplify)(best[j]) if best[j].size else best[j]
            if not np.array_equal(new, best[j]) and attempt(best_shape, best[:j] + [new] + best[j + 1:]):
                changed = True
    return ShrunkInput(best_shape, best, best_div, tuple(shape), len(grads), evals)


# ----------------------------------------------------------------------------------------------------------------
# check

def _resolve_config(algorithm: str, config: Any):
    from krad_ref import algorithm as registry

    Config = registry.get(algorithm).Config
    if config is None:
        return Config()
    if isinstance(config, Mapping):
        return config_from_fields(algorithm, config)
    if not isinstance(config, Config):
        raise TypeError(f"config: expected a {Config.__name__}, a dict of its fields or None, got "
                        f"{type(config).__name__}")
    return config


def config_from_fields(algorithm: str, fields: Mapping):
    """``algorithm``'s Config from a dict of its fields; a refused value raises ValueError/TypeError naming the
    config field (``config field 'beta2': ...``), an unknown key names itself and the known fields."""
    from krad_ref import algorithm as registry

    Config = registry.get(algorithm).Config
    known = [f.name for f in dataclasses.fields(Config)]
    for key in fields:
        if key not in known:
            raise ValueError(f"config field {key!r}: not a field of {algorithm}'s Config (fields: {', '.join(known)})")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    try:
        return Config(**kwargs)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        name = msg.split(":", 1)[0].strip()
        if name in known:  # validate.py messages start with the argument's name
            raise type(exc)(f"config field {name!r}:{msg.split(':', 1)[1]}") from None
        raise type(exc)(f"config of {algorithm}: {msg}") from None


def _golden_cases(algorithm: str, cases: Any) -> list:
    if cases is None or cases == "none":
        return []
    if cases == "shipped":
        return [c for c in gformat.load_shipped() if c.algorithm == algorithm]
    out = []
    for c in cases:
        if isinstance(c, gformat.GoldenCase):
            out.append(c)
        else:
            got = gformat.load_shipped([c]) if not str(c).endswith((".json", ".npz")) else [gformat.load(c)]
            if not got:
                raise ValueError(f"cases: no golden case {c!r} (shipped: "
                                 f"{[p.stem for p in gformat.shipped_paths()]})")
            out += got
    bad = [c.case_id for c in out if c.algorithm != algorithm]
    if bad:
        raise ValueError(f"cases: {bad} are not {algorithm!r} cases")
    return out


def _not_compared_reason(q: str, runs: Sequence[RunResult], unresolved: int) -> str:
    judged = [r for r in runs if r.skipped is None]
    if not runs:
        return "no run"
    if not judged:
        return "every run skipped"
    if any(q in r.not_exposed for r in judged):
        return "quantity not exposed by the candidate"
    if unresolved:
        return "unresolvable in this dtype on every step (tol >= 1)"
    if all(not r.ratios for r in judged):
        return "every judged run crashed before producing it"
    return "not defined for this algorithm"


def _aggregate(runs: Sequence[RunResult]) -> dict:
    out = {}
    for q in _QUANTS:
        worst, at, unres, n, ok = None, "", 0, 0, True
        for r in runs:
            if r.skipped is not None:
                continue
            unres += r.unresolved.get(q, 0)
            for k, row in enumerate(r.ratios, 1):
                v = row.get(q)
                if v is None:
                    continue
                n += 1
                if worst is None or v > worst:
                    worst, at = v, f"{r.source} step {k}"
            if r.divergence is not None and r.divergence.quantity == q:
                ok = False
        out[q] = QuantityResult(q, ok and (worst is None or worst <= 1.0), worst, at, unres, n,
                                _not_compared_reason(q, runs, unres) if n == 0 else "")
    bad = [r for r in runs if r.skipped is None and r.divergence is not None and r.divergence.quantity == DTYPE_CHECK]
    judged = sum(r.skipped is None for r in runs)
    out[DTYPE_CHECK] = QuantityResult(DTYPE_CHECK, not bad, None,
                                      f"{bad[0].source}: {bad[0].divergence.message}" if bad else "", 0, judged,
                                      "" if judged else _not_compared_reason(DTYPE_CHECK, runs, 0))
    ex = [r for r in runs if r.divergence is not None and r.divergence.quantity == "exception"]
    if ex:
        out["exception"] = QuantityResult("exception", False, None, f"{ex[0].source}: {ex[0].divergence.message}",
                                          0, len(ex))
    return out


def check(candidate: Any, algorithm: str, config: Any = None, *, dtype: str = "float64",
          cases: Any = "shipped", examples: int = 20, seed: int = 0, shrink: bool = True,
          shrink_budget: int = 300, shrink_seconds: float = 20.0, grad_scale: Any = None,
          grad_rank: str = "mixed") -> CheckReport:
    """Run ``candidate`` against krad_ref's ``algorithm`` and report every step that leaves the tolerance model.

    References:
      ``krad_ref.crossval.tolerance`` (the model), ``krad_ref.crossval.format`` (golden vectors); this module's
      docstring defines the candidate protocols, the generated sequences and the shrinking.

    Args:
      candidate: an object with ``init``/``update`` over NumPy arrays, or a step callable (module docstring).
      algorithm: a krad_ref algorithm id ("kradagrad_star", "kradagrad", "shampoo", "adagrad_full",
        "adagrad_diag", "mbag", "mbag_ema", "mbag_n"; every one has golden cases).
      config: krad_ref Config instance, a dict of its fields, or None (defaults); used for generated sequences
        (each golden case carries its own config).
      dtype: "float64" or "float32": the dtype the candidate promises to compute in. Its inputs are cast to it,
        its outputs must come back in it, and the tolerances are those of this dtype.
      cases: "shipped" (the golden cases of ``algorithm`` shipped in the package), None / "none", or a list of
        case ids, file paths or GoldenCase objects.
      examples: number of generated gradient sequences (0: golden cases only).
      seed: seed of the generator (``krad_ref.backend.rng``); the same seed gives the same sequences.
      shrink: shrink the first failing input (a golden case or a generated sequence; a crash is not shrunk);
        ``shrink_budget`` candidate runs and ``shrink_seconds`` bound it.
      grad_scale: None (default: spectral norms uniform in [0.1, 1]) or (lo, hi): norms log-uniform in
        [lo, hi], e.g. (1e-3, 1e4), so that float32 effects of ||S|| >> 1/eps are reachable.
      grad_rank: "mixed" (default: dense, rank one or partly zero at random), "full", "low" (rank below the
        smallest dimension of the mode-0 unfolding) or "one" (rank one in every mode).

    Returns:
      :class:`CheckReport` (``verdict`` PASS / FAIL / NOT CHECKED with its ``reason``, ``exit_code``,
      ``quantities``, ``runs``, ``first_divergence``, ``shrunk``; ``str`` is the text report).

    Raises:
      ValueError/TypeError: a config krad_ref's ``algorithm`` does not accept, naming the config field
      (``config field 'beta2': expected a value <= 1.0, got 1.5``); a bad dtype, candidate or case list.
    """
    from krad_ref import backend

    t0 = time.perf_counter()
    if dtype not in gformat.DTYPES:
        raise ValueError(f"dtype: expected one of {gformat.DTYPES}, got {dtype!r}")
    candidate_kind(candidate)
    grad_scale, grad_rank = generation_options(grad_scale, grad_rank)
    cfg = _resolve_config(algorithm, config)
    runs: list = []
    inputs: list = []  # (config, shape, grads) of each run, for shrinking
    for case in _golden_cases(algorithm, cases):
        ccfg = gformat.make_config(case)
        runs.append(_run_one(candidate, algorithm, ccfg, case.shape, list(case.grads), dtype,
                             f"golden:{case.case_id}", case.expected(), case.tolerances(dtype)))
        inputs.append((ccfg, case.shape, list(case.grads)))
    if examples:
        rng = backend.rng(seed)
        for i, (shape, grads) in enumerate(_generate(rng, algorithm, int(examples), grad_scale, grad_rank)):
            runs.append(_run_one(candidate, algorithm, cfg, shape, grads, dtype, f"generated:{i}"))
            inputs.append((cfg, shape, grads))
    shrunk = None
    # the first numerical failure, golden or generated, is shrunk against krad_ref's float64 run of the same
    # config (a golden case's own config); a crash is reported as it is (shrinking must not turn it into another)
    first = next(((r, inp) for r, inp in zip(runs, inputs) if not r.passed and r.divergence.quantity != "exception"),
                 None)
    if shrink and first is not None:
        (r, (rcfg, shape, grads)) = first
        shrunk = _shrink(candidate, algorithm, rcfg, shape, grads, dtype, r, shrink_budget, shrink_seconds)
        shrunk.source = r.source
    return CheckReport(_name_of(candidate), algorithm, dtype, gformat.config_fields(cfg), runs, _aggregate(runs),
                       shrunk, seed if examples else None, time.perf_counter() - t0)
