"""Conformance of published Shampoo implementations: each one run UNMODIFIED against krad_ref's ``shampoo``.

One module per implementation (``peer_pytorch_optimizer``, ``peer_torch_optimizer``, ``peer_heavyball``); each
declares :class:`Peer` objects whose :class:`Configuration` list maps the library's constructor options onto
krad_ref's ``shampoo.Config`` fields, with the file and line of the pinned version that justify every mapping.
``python -m krad_ref.crossval peers`` (``run`` here) checks every configuration of every installed peer in
each dtype and prints the conformance matrix.

How a torch optimizer becomes a harness candidate (:class:`OptimizerCandidate`): one parameter tensor of the
gradient's shape and dtype, on the CPU, starting at 0; before every step the parameter is reset to 0 and its
``.grad`` set to G_k; after ``optimizer.step()`` with lr = 1 the parameter is exactly ``-direction`` (0 - 1 * d
rounds to -d), so the direction is recovered without rounding. Weight decay, momentum and grafting are turned
off where the library allows (they are ``transforms``' business in krad_ref, not Shampoo's); where the library
cannot turn one off, the configurations say so. Statistics and roots are read from the optimizer's state
(``Peer.quantities``) and compared too.

Verdicts. A configuration whose convention krad_ref cannot express (a ``shampoo.Config`` field or value this
krad_ref lacks) is NOT CHECKED with the reason "convention not expressible: ..."; so is one the library cannot
be put into (``Configuration.reason``) and a peer whose package is not installed. A FAIL is therefore always a
step where the implementation leaves krad_ref's tolerance model on a configuration both sides express: a
verified deviation, never a mapping gap.

Matrix exit status (``matrix_exit_code``): 1 when any row FAILs; else 0 when at least one row PASSes; else 2
(nothing could be checked). NOT CHECKED rows next to passing ones do not turn the exit status to 2: they are
documented gaps, listed with their reasons.
"""
from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import json
import sys
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .. import harness

__all__ = ["Configuration", "Peer", "OptimizerCandidate", "Row", "PEER_MODULES", "all_peers", "expressible",
           "check_configuration", "run", "matrix_text", "matrix_markdown", "rows_json", "matrix_exit_code",
           "CONVENTIONS"]

#: the peer modules, in the order of the matrix
PEER_MODULES = ("peer_pytorch_optimizer", "peer_torch_optimizer", "peer_heavyball")

#: what each shampoo.Config field a peer needs beyond today's defaults stands for (used in NOT CHECKED reasons)
CONVENTIONS = {
    "eps_placement": "eps I inside the statistic from initialisation, decayed with it",
    "exponent_rule": "root exponent -1/p instead of the paper's -1/(2p)",
    "root_method": "inverse roots by SVD",
    "root_phase": "roots at steps 1, 1 + f, 1 + 2f, ...",
    "before_first_root": "what preconditions before the first root",
    "beta2": "statistic decay",
    "rcond": "pseudo-inverse cutoff",
    "newton_on_fail": "what a diverging Newton iteration returns",
}


@dataclasses.dataclass(frozen=True)
class Configuration:
    """One way of constructing the peer, and the krad_ref shampoo config it maps to.

    ``kwargs``: constructor options besides ``lr`` (always 1). ``config``: the ``shampoo.Config`` fields (only
    those that differ from krad_ref's defaults), or None when the library cannot be put into a state krad_ref's
    Shampoo describes; then ``reason`` says why. ``min_dim``: shapes with a smaller dimension are declined (the
    library treats them differently, ``min_dim_reason``); ``dtype_reasons``: dtypes in which the row is NOT
    CHECKED and why; ``inputs``: ``harness.check``'s ``grad_scale`` / ``grad_rank`` for this row.
    """

    name: str
    description: str
    kwargs: dict
    config: dict | None
    reason: str = ""
    min_dim: int = 1                  # shapes with a smaller dimension are declined (``min_dim_reason`` says why)
    min_dim_reason: str = ""
    dtype_reasons: dict = dataclasses.field(default_factory=dict)   # dtype -> why it is NOT CHECKED in it
    inputs: dict = dataclasses.field(default_factory=dict)  # harness.check's grad_scale / grad_rank for this row


@dataclasses.dataclass(frozen=True)
class Peer:
    """A published optimizer: where it lives, how to read its state, the configurations to check."""

    package: str                      # pip distribution name (``importlib.metadata.version``)
    module: str                       # import path of the module holding the class
    optimizer: str                    # class name
    configurations: tuple
    quantities: Callable[[Any, Any], dict] | None = None   # (optimizer, param) -> {"factors", "roots"} tensors
    orders: tuple = (2, 3)            # parameter orders the mapping holds for (others are declined)
    note: str = ""                    # shown under the matrix

    @property
    def key(self) -> str:
        return f"{self.package}:{self.optimizer}"

    def version(self) -> str | None:
        try:
            return importlib.metadata.version(self.package)
        except importlib.metadata.PackageNotFoundError:
            return None

    def load(self):
        """The optimizer class (ImportError when the package or torch is missing)."""
        return getattr(importlib.import_module(self.module), self.optimizer)


def all_peers() -> list:
    """Every declared peer, in matrix order (declaring one imports nothing of the peer's package)."""
    out = []
    for name in PEER_MODULES:
        out += list(importlib.import_module(f"{__name__}.{name}").PEERS)
    return out


def expressible(config: Mapping) -> str | None:
    """None when krad_ref's ``shampoo.Config`` accepts these fields, else the NOT CHECKED reason."""
    from krad_ref import shampoo

    known = {f.name for f in dataclasses.fields(shampoo.Config)}
    for key in config:
        if key not in known:
            what = CONVENTIONS.get(key, key)
            return f"convention not expressible: krad_ref's shampoo.Config has no field {key!r} ({what})"
    try:
        harness.config_from_fields("shampoo", config)
    except (ValueError, TypeError) as exc:
        return f"convention not expressible: {exc}"
    return None


# ----------------------------------------------------------------------------------------------------------------
# the candidate

class _Run:
    """Mutable state of one run: the parameter and the optimizer (the harness threads it through update)."""

    def __init__(self, param, opt):
        self.param, self.opt, self.steps = param, opt, []


class OptimizerCandidate:
    """``peer`` constructed with ``configuration`` as a harness candidate (object protocol; module docstring).

    ``init`` declines (:class:`harness.Declined`, reported as a skipped run) a krad_ref config other than the one the
    configuration maps to (e.g. a golden case with another eps convention) and parameter orders the mapping
    does not cover.
    """

    def __init__(self, peer: Peer, configuration: Configuration, cls: type | None = None):
        from .. import format as gformat

        if configuration.config is None:
            raise ValueError(f"configuration: {configuration.name!r} does not map onto krad_ref "
                             f"({configuration.reason})")
        self.peer, self.configuration = peer, configuration
        self.cls = peer.load() if cls is None else cls  # ``cls``: a patched class for a reproduction
        self.expected = gformat.config_fields(harness.config_from_fields("shampoo", configuration.config))
        label = "" if cls is None else f" ({cls.__name__})"
        self.name = f"{peer.package} {peer.version()} {peer.optimizer}{label} [{configuration.name}]"

    def init(self, shape, config, dtype="float64"):
        import torch

        if dict(config) != self.expected:
            diff = sorted(k for k in self.expected if config.get(k) != self.expected[k])
            raise harness.Declined(f"{self.peer.key} [{self.configuration.name}] maps to another config "
                                      f"(differs in {', '.join(diff)})")
        if len(shape) not in self.peer.orders:
            raise harness.Declined(f"{self.peer.key}: parameter order {len(shape)} not mapped "
                                      f"(orders {self.peer.orders})")
        if min(shape) < self.configuration.min_dim:
            raise harness.Declined(f"{self.peer.key} [{self.configuration.name}]: dimensions < "
                                      f"{self.configuration.min_dim} not mapped: {self.configuration.min_dim_reason}")
        param = torch.zeros(tuple(shape), dtype={"float64": torch.float64, "float32": torch.float32}[dtype],
                            requires_grad=True)
        return _Run(param, self.cls([param], lr=1.0, **self.configuration.kwargs))

    def update(self, grad, state, config):
        import torch

        with torch.no_grad():
            state.param.zero_()  # the step from 0 with lr = 1 leaves exactly -direction
        state.param.grad = torch.from_numpy(np.array(grad, copy=True))
        # a peer drawing random numbers (a power iteration's start) gets the same ones in every run, and the
        # caller's global torch RNG is left as it was
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(len(state.steps))
            state.opt.step()
        state.steps.append(None)
        return (-state.param.detach()).numpy().copy(), state

    def quantities(self, state) -> dict:
        if self.peer.quantities is None:
            return {}
        q = self.peer.quantities(state.opt, state.param)
        return {k: None if q.get(k) is None else tuple(t.detach().numpy().copy() for t in q[k])
                for k in ("factors", "roots")}


# ----------------------------------------------------------------------------------------------------------------
# rows of the matrix

@dataclasses.dataclass
class Row:
    """One (peer, configuration, dtype) cell of the conformance matrix (``as_json`` is the --json row)."""

    package: str
    version: str | None
    optimizer: str
    configuration: str
    dtype: str
    verdict: str
    reason: str = ""
    quantities: dict = dataclasses.field(default_factory=dict)   # name -> {"verdict", "worst_err_over_tol"}
    first_divergence: dict | None = None
    shrunk_input: dict | None = None
    description: str = ""
    kwargs: dict = dataclasses.field(default_factory=dict)
    krad_ref_config: dict | None = None
    seconds: float = 0.0
    report: Any = None                # the harness.CheckReport (not serialised)

    def as_json(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "report"}


def _divergence_json(d: harness.Divergence | None) -> dict | None:
    if d is None:
        return None
    return {"step": d.step, "quantity": d.quantity, "mode": d.mode, "error": d.error, "tol": d.tol,
            "message": d.message, "frame": d.frame, "text": str(d)}


def _row_from_report(peer: Peer, conf: Configuration, dtype: str, rep: harness.CheckReport) -> dict:
    quantities = {q: {"verdict": r.verdict, "worst_err_over_tol": r.worst_ratio, "reason": r.reason}
                  for q, r in rep.quantities.items()}
    shrunk = None
    if rep.shrunk is not None:
        s = rep.shrunk
        shrunk = {"shape": list(s.shape), "grads": [np.asarray(g).tolist() for g in s.grads],
                  "divergence": str(s.divergence), "source": s.source}
    return dict(verdict=rep.verdict, reason=rep.reason, quantities=quantities,
                first_divergence=_divergence_json(rep.first_divergence), shrunk_input=shrunk, report=rep)


def check_configuration(peer: Peer, conf: Configuration, dtype: str, *, examples: int = 6, seed: int = 0,
                        shrink_seconds: float = 8.0) -> Row:
    """Check one configuration of one peer in ``dtype`` (generated sequences and the shipped golden cases whose
    config the configuration maps to); NOT CHECKED rows carry their reason."""
    t0 = time.perf_counter()
    base = dict(package=peer.package, version=peer.version(), optimizer=peer.optimizer, configuration=conf.name,
                dtype=dtype, description=conf.description, kwargs=dict(conf.kwargs), krad_ref_config=conf.config)
    if base["version"] is None:
        reason = f"package {peer.package} not installed (pip install -e '.[peers]')"
    elif conf.config is None:
        reason = conf.reason
    elif dtype in conf.dtype_reasons:
        reason = conf.dtype_reasons[dtype]
    else:
        reason = expressible(conf.config)
    if reason is None:
        try:
            candidate = OptimizerCandidate(peer, conf)
        except ImportError as exc:
            reason = f"{peer.module}.{peer.optimizer} not importable: {exc}"
    if reason is not None:
        return Row(**base, verdict=harness.NOT_CHECKED, reason=reason, seconds=time.perf_counter() - t0)
    rep = harness.check(candidate, "shampoo", conf.config, dtype=dtype, cases="shipped", examples=examples,
                        seed=seed, shrink_seconds=shrink_seconds, **conf.inputs)
    return Row(**base, **_row_from_report(peer, conf, dtype, rep), seconds=time.perf_counter() - t0)


def run(only: Sequence[str] | None = None, dtypes: Sequence[str] = ("float64", "float32"), *, examples: int = 6,
        seed: int = 0, shrink_seconds: float = 8.0, progress: Any = "stderr") -> list:
    """Every configuration of every peer (``only``: names matched against package, optimizer or
    "package:optimizer", case-insensitive) in every dtype; progress lines go to ``progress`` (a file; "stderr":
    ``sys.stderr`` at call time; None: silent)."""
    progress = sys.stderr if progress == "stderr" else progress
    peers = all_peers()
    if only:
        want = [o.lower() for o in only]
        peers = [p for p in peers if any(w in (p.package.lower(), p.optimizer.lower(), p.key.lower())
                                         for w in want)]
        if not peers:
            raise ValueError(f"--only: no peer matches {list(only)}; known: {[p.key for p in all_peers()]}")
    jobs = [(p, c, dt) for p in peers for c in p.configurations for dt in dtypes]
    rows = []
    for i, (p, c, dt) in enumerate(jobs, 1):
        row = check_configuration(p, c, dt, examples=examples, seed=seed, shrink_seconds=shrink_seconds)
        rows.append(row)
        if progress is not None:
            print(f"[{i}/{len(jobs)}] {p.key} [{c.name}] {dt}: {row.verdict} ({row.seconds:.1f} s)", file=progress,
                  flush=True)
    return rows


def matrix_exit_code(rows: Sequence[Row]) -> int:
    """1 if any row FAILs, else 0 if any row PASSes, else 2 (module docstring)."""
    verdicts = {r.verdict for r in rows}
    if harness.FAIL in verdicts:
        return harness.EXIT_CODES[harness.FAIL]
    return harness.EXIT_CODES[harness.PASS if harness.PASS in verdicts else harness.NOT_CHECKED]


# ----------------------------------------------------------------------------------------------------------------
# rendering

def _q(row: Row, name: str) -> str:
    q = row.quantities.get(name)
    if not q:
        return "-"
    if q["verdict"] == harness.NOT_CHECKED:
        return "n/c"
    w = q["worst_err_over_tol"]
    return f"{'ok' if q['verdict'] == harness.PASS else 'FAIL'} {'-' if w is None else f'{w:.2g}'}"


def _div(row: Row) -> str:
    d = row.first_divergence
    if d is None:
        return "-"
    where = d["quantity"] + (f"[{d['mode']}]" if d["mode"] is not None else "")
    return f"step {d['step']} {where}"


_COLUMNS = ("implementation", "configuration", "dtype", "verdict", "factors", "roots", "direction",
            "first divergence")


def _cells(row: Row) -> list:
    return [f"{row.package} {row.version or '(not installed)'} {row.optimizer}", row.configuration, row.dtype,
            row.verdict, _q(row, "factors"), _q(row, "roots"), _q(row, "direction"), _div(row)]


def _notes(rows: Sequence[Row]) -> list:
    """(row label, text) for every row that is not a plain PASS: reasons (one line for all dtypes sharing one)
    and, for a FAIL, its first divergence and shrunk input."""
    grouped: dict = {}
    for r in rows:
        if r.verdict == harness.NOT_CHECKED:
            text = f"NOT CHECKED: {r.reason}"
        elif r.verdict == harness.FAIL:
            text = f"FAIL: first divergence {r.first_divergence['text'] if r.first_divergence else '-'}"
            if r.shrunk_input is not None:
                s = r.shrunk_input
                text += (f"; shrunk input (from {s['source']}): shape {s['shape']}, {len(s['grads'])} step(s): "
                         + " ".join(f"G_{j}={json.dumps(g)}" for j, g in enumerate(s["grads"], 1)))
        else:
            continue
        grouped.setdefault((f"{r.package} {r.optimizer} [{r.configuration}]", text), []).append(r.dtype)
    return [(f"{label} {'/'.join(dts)}", text) for (label, text), dts in grouped.items()]


def matrix_text(rows: Sequence[Row]) -> str:
    """The conformance matrix as aligned text (quantity cells: ok/FAIL and the worst err/tol; n/c: not checked),
    then one line per row that is not a PASS."""
    table = [list(_COLUMNS)] + [_cells(r) for r in rows]
    widths = [max(len(t[i]) for t in table) for i in range(len(_COLUMNS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip() for t in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = _notes(rows)
    if notes:
        lines.append("")
        lines += [f"* {label}: {text}" for label, text in notes]
    return "\n".join(lines)


def matrix_markdown(rows: Sequence[Row]) -> str:
    """The same matrix as a Markdown table, then the notes as a list."""
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in _cells(r)) + " |" for r in rows]
    notes = _notes(rows)
    if notes:
        lines.append("")
        lines += [f"- {label}: {text}" for label, text in notes]
    return "\n".join(lines) + "\n"


def rows_json(rows: Sequence[Row], seconds: float | None = None) -> dict:
    """The ``--json`` document: ``{"format": "krad_ref-peers", "version": 1, "exit_code", "seconds", "rows"}``."""
    return {"format": "krad_ref-peers", "version": 1, "exit_code": matrix_exit_code(rows), "seconds": seconds,
            "rows": [r.as_json() for r in rows]}
