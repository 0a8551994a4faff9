"""Claim, Evidence and the registry.

A *claim* is one printed statement of a paper, encoded as printed:

  * ``source``: the paper and where it says it ("KrADagrad", "Sec. 3.3") so a reader can check the wording;
  * ``statement``: the statement in plain text, quantifiers included;
  * ``strategy``: a hypothesis strategy whose instances satisfy the statement's hypotheses *by construction*
    (array-api-tests habit: generate, do not filter);
  * ``check``: evaluates the conclusion on one instance in mpmath and returns :class:`Evidence`, a signed
    margin with a scale: the conclusion holds on the instance when ``margin >= -tol * scale``;
  * ``certify`` (optional): the same two sides in ball arithmetic, for certified verdicts
    (``proofs_check.certify``);
  * ``expected``: ``"holds"``, or ``"fails"`` for a statement known to be false as printed. A false printed
    statement is kept (its shrunk counterexample is the finding) and a corrected twin is registered beside it,
    named in ``twin``.

For a Loewner-order conclusion X >= Y the margin is lambda_min(sym(X - Y)) and the scale max(||X||_2, ||Y||_2);
for an identity X = Y it is -||X - Y||_F with scale ||X||_F + ||Y||_F. ``tol`` is tied to the working
precision of the mp evaluation (``proofs_check.mp.mp_tolerance``), never to float64: a float64-sized defect
is a real failure of an exact statement.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
from typing import Any, Callable

__all__ = ["Source", "Evidence", "Claim", "register", "get", "all_claims", "HOLDS", "FAILS"]

HOLDS = "holds"
FAILS = "fails"


@dataclasses.dataclass(frozen=True)
class Source:
    """Where a statement is printed: the paper's short name and its equation/lemma/section label."""

    paper: str  # "KrADagrad", "MBAG", "EGOP", or "standard" for textbook facts the papers lean on
    where: str  # "Lemma 3.1", "Eq. (5)", "Sec. 3.3", "P15 (our label; App. D lost)"

    def __str__(self) -> str:
        return f"{self.paper} {self.where}"


@dataclasses.dataclass(frozen=True)
class Evidence:
    """The outcome of checking one instance.

    Attributes:
      margin: signed margin of the conclusion, computed in mp and rounded to float once; >= 0 means it holds
        exactly, negative values within ``-tol * scale`` are rounding of the mp evaluation itself.
      scale: a positive magnitude the margin is measured against (a norm of the compared objects).
      tol: relative tolerance tied to the mp working precision.
      detail: small plain values that help read a counterexample (sizes, condition numbers, ...).
    """

    margin: float
    scale: float
    tol: float
    detail: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if not (self.scale > 0 and math.isfinite(self.scale)):
            object.__setattr__(self, "scale", 1.0 if not math.isfinite(self.scale) or self.scale <= 0 else self.scale)

    @property
    def relative_margin(self) -> float:
        """margin / scale: the number the report calls the instance's margin."""
        return self.margin / self.scale

    @property
    def ok(self) -> bool:
        """True when the conclusion holds on this instance within the mp working-precision tolerance."""
        return (not math.isnan(self.margin)) and self.margin >= -self.tol * self.scale


@dataclasses.dataclass(frozen=True)
class Claim:
    """One printed statement, its instances and its check (see the module docstring).

    ``check(instance, dps=...)`` must be deterministic and pure. ``describe(instance)`` turns an instance into
    plain JSON-able values for the report (default: arrays become nested lists). ``weight`` scales the number
    of examples a profile gives this claim (below 1 for claims whose mp check is expensive). ``certify(instance,
dps=...)``, optional, evaluates the conclusion's two sides in ball arithmetic and returns
``proofs_check.certify.Sides`` (or a list of them, one per part of the conclusion): see that module for what
the resulting certificate proves. Claims without it are reported uncertified.
    """

    id: str
    source: Source
    statement: str
    strategy: Any
    check: Callable[..., Evidence]
    expected: str = HOLDS
    note: str = ""
    twin: str | None = None
    weight: float = 1.0
    describe: Callable[[Any], Any] | None = None
    certify: Callable[..., Any] | None = None

    def __post_init__(self):
        if self.expected not in (HOLDS, FAILS):
            raise ValueError(f"expected: must be {HOLDS!r} or {FAILS!r}, got {self.expected!r}")
        if not self.id or " " in self.id:
            raise ValueError(f"id: must be a non-empty token without spaces, got {self.id!r}")
        if not self.weight > 0:
            raise ValueError(f"weight: must be positive, got {self.weight}")


_REGISTRY: dict[str, Claim] = {}

#: Modules under proofs_check.claims that hold registered claims, simplest first.
CLAIM_MODULES = ("matrix", "means", "kradagrad", "shampoo", "mbag", "egop")


def register(claim: Claim) -> Claim:
    """Add a claim to the registry; a second claim with the same id is an error (ids are a stable interface)."""
    if claim.id in _REGISTRY and _REGISTRY[claim.id] is not claim:
        raise ValueError(f"claim id {claim.id!r} is registered twice")
    _REGISTRY[claim.id] = claim
    return claim


def _load_all() -> None:
    for name in CLAIM_MODULES:
        importlib.import_module(f"proofs_check.claims.{name}")


def all_claims() -> list[Claim]:
    """Every registered claim, in registration order (claim modules are imported on first use)."""
    _load_all()
    return list(_REGISTRY.values())


def get(claim_id: str) -> Claim:
    """The claim with this id; ``KeyError`` lists the close ids when it is unknown."""
    _load_all()
    try:
        return _REGISTRY[claim_id]
    except KeyError:
        near = [k for k in _REGISTRY if claim_id.split(".")[0] in k][:8]
        raise KeyError(f"unknown claim id {claim_id!r}; known ids include: {', '.join(near or list(_REGISTRY)[:8])}") from None
