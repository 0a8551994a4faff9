"""Render claim results: a text table for the terminal, Markdown, and JSON (a stable interface).

JSON layout (``schema`` 1): a top-level object with ``tool``, ``schema``, ``profile``, ``seed``, ``versions``,
``summary`` and ``claims``; each record in ``claims`` holds ``id``, ``source``, ``statement``, ``expected``,
``verdict`` ("holds" / "fails" / "error"), ``matches``, ``examples``, ``worst_margin`` (smallest margin/scale
seen), ``tol``, ``seconds``, ``seed``, ``counterexample`` (the shrunk instance as plain lists, or null),
``counterexample_detail``, ``error``, ``note`` and ``twin``. Fields may be added; none is renamed or removed
without bumping ``schema``.
"""
from __future__ import annotations

import json
import platform
from typing import Sequence

from .runner import ClaimResult

__all__ = ["SCHEMA", "versions", "to_json", "to_markdown", "to_text", "summary"]

SCHEMA = 1


def versions() -> dict:
    import hypothesis
    import mpmath
    import numpy

    import krad_ref

    from . import __version__

    return {
        "krad_ref": krad_ref.__version__,
        "proofs_check": __version__,
        "numpy": numpy.__version__,
        "mpmath": mpmath.__version__,
        "hypothesis": hypothesis.__version__,
        "python": platform.python_version(),
    }


def summary(results: Sequence[ClaimResult]) -> dict:
    return {
        "claims": len(results),
        "holds": sum(r.verdict == "holds" for r in results),
        "fails": sum(r.verdict == "fails" for r in results),
        "errors": sum(r.verdict == "error" for r in results),
        "unexpected": [r.id for r in results if not r.matches],
        "seconds": round(sum(r.seconds for r in results), 3),
    }


def to_json(results: Sequence[ClaimResult], *, profile: str, seed: int) -> str:
    doc = {
        "tool": "proofs_check",
        "schema": SCHEMA,
        "profile": profile,
        "seed": seed,
        "versions": versions(),
        "summary": summary(results),
        "claims": [r.to_dict() for r in results],
    }
    return json.dumps(doc, indent=2, allow_nan=False, default=str)


def _fmt_margin(x) -> str:
    return "-" if x is None else f"{x:.2e}"


def _short(obj, width: int) -> str:
    if obj is None:
        return ""
    text = json.dumps(obj, separators=(",", ":"), default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


def _verdict_cell(r: ClaimResult) -> str:
    if r.matches:
        return r.verdict if r.verdict == "holds" else f"{r.verdict} (as expected)"
    return f"{r.verdict.upper()} (expected {r.expected})"


def to_text(results: Sequence[ClaimResult], *, cex_width: int = 60) -> str:
    """A fixed-width table: claim, source, examples, worst margin, verdict, counterexample (abridged)."""
    head = ("claim", "source", "examples", "worst margin", "verdict", "counterexample")
    rows = [
        (r.id, r.source, str(r.examples), _fmt_margin(r.worst_margin), _verdict_cell(r),
         _short(r.counterexample, cex_width) if r.counterexample is not None else (r.error or "")[:cex_width])
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [line(head), line(tuple("-" * w for w in widths))]
    out += [line(row) for row in rows]
    s = summary(results)
    out.append("")
    out.append(f"{s['claims']} claims: {s['holds']} hold, {s['fails']} fail, {s['errors']} errors; "
               f"{'all verdicts as expected' if not s['unexpected'] else 'UNEXPECTED: ' + ', '.join(s['unexpected'])}"
               f" ({s['seconds']:.1f} s)")
    failing = [r for r in results if r.verdict == "fails"]
    for r in failing:
        out.append("")
        out.append(f"{r.id} ({r.source}) fails as printed: {r.statement}")
        out.append(f"  shrunk counterexample: {_short(r.counterexample, 400)}")
        if r.counterexample_detail:
            out.append(f"  detail: {_short(r.counterexample_detail, 400)}")
        if r.twin:
            out.append(f"  corrected statement: see {r.twin}")
    return "\n".join(out)


def to_markdown(results: Sequence[ClaimResult], *, profile: str, seed: int) -> str:
    v = versions()
    out = [
        "# proofs_check report",
        "",
        f"Profile `{profile}`, seed {seed}; krad_ref {v['krad_ref']}, numpy {v['numpy']}, mpmath {v['mpmath']}, "
        f"hypothesis {v['hypothesis']}.",
        "",
        "| claim | source | statement | examples | worst margin | verdict | expected | counterexample |",
        "|---|---|---|---|---|---|---|---|",
    ]
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    for r in results:
        cex = "" if r.counterexample is None else f"`{esc(_short(r.counterexample, 120))}`"
        out.append(f"| `{r.id}` | {esc(r.source)} | {esc(r.statement)} | {r.examples} | {_fmt_margin(r.worst_margin)} "
                   f"| {r.verdict}{'' if r.matches else ' **unexpected**'} | {r.expected} | {cex or esc(r.error or '')} |")
    s = summary(results)
    out += ["", f"{s['claims']} claims: {s['holds']} hold, {s['fails']} fail, {s['errors']} errors."]
    return "\n".join(out) + "\n"
