"""Render claim results: a text table for the terminal, Markdown, and JSON (a stable interface).

JSON layout (``schema`` 1): a top-level object with ``tool``, ``schema``, ``profile``, ``seed``, ``versions``,
``summary`` and ``claims``; each record in ``claims`` holds ``id``, ``source``, ``statement``, ``expected``,
``verdict`` ("holds" / "fails" / "error"), ``matches``, ``examples``, ``worst_margin`` (smallest margin/scale
seen), ``tol``, ``seconds``, ``seed``, ``counterexample`` (the shrunk instance as plain lists, or null),
``counterexample_detail``, ``error``, ``note`` and ``twin``. Fields may be added; none is renamed or removed
without bumping ``schema``. Added with certified verdicts (``--certify``; null when certification is off):
``certified`` (``within``, ``violated``, ``uncertified``, ``reasons`` {reason: count}, ``disagree``, ``seconds``)
and ``counterexample_certificate`` (``status``, ``reason``, ``margin`` [lo, hi] of margin/scale, ``prec``), and
``summary.certified`` (totals over claims); see :mod:`proofs_check.certify`.
"""
from __future__ import annotations

import json
import platform
import textwrap
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
        "python_flint": _flint_version(),
    }


def _flint_version() -> str | None:
    from . import certify

    return certify.flint.__version__ if certify.available() else None


def summary(results: Sequence[ClaimResult]) -> dict:
    out = {
        "claims": len(results),
        "holds": sum(r.verdict == "holds" for r in results),
        "fails": sum(r.verdict == "fails" for r in results),
        "errors": sum(r.verdict == "error" for r in results),
        "unexpected": [r.id for r in results if not r.matches],
        "seconds": round(sum(r.seconds for r in results), 3),
    }
    cert = certified_summary(results)
    if cert is not None:
        out["certified"] = cert
    return out


def certified_summary(results: Sequence[ClaimResult]) -> dict | None:
    """Totals of the certificates over claims (None when no result was certified): instances within tolerance,
    violated, uncertified, examples, claims with every instance certified, claims with no ball evaluation."""
    rs = [r for r in results if r.certified is not None]
    if not rs:
        return None
    tot = {k: sum(int(r.certified[k]) for r in rs) for k in ("within", "violated", "uncertified", "disagree")}
    tot["examples"] = sum(r.examples for r in rs)
    tot["claims_fully_certified"] = sum(r.certified["uncertified"] == 0 and r.examples > 0 for r in rs)
    tot["claims_without_ball_evaluation"] = sum(r.certified["within"] + r.certified["violated"] == 0 for r in rs)
    tot["seconds"] = round(sum(float(r.certified.get("seconds", 0.0)) for r in rs), 3)
    return tot


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


def _certified_cell(r: ClaimResult) -> str:
    """certified instances / examples, e.g. "98/100"; "-" when certification did not run for this claim."""
    if r.certified is None:
        return "-"
    return f"{r.certified['within'] + r.certified['violated']}/{r.examples}"


def _cex_certificate(c: dict | None) -> str:
    if c is None:
        return ""
    if c["status"] == "uncertified":
        return f"uncertified ({c['reason']})"
    what = "certified violated (a proved counterexample)" if c["status"] == "violated" else \
        "certified within tolerance (the mp verdict and the certificate disagree)"
    if c.get("margin"):
        what += f", margin/scale in [{c['margin'][0]:.6g}, {c['margin'][1]:.6g}]"
    return what


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width=width, subsequent_indent="    ", break_long_words=True,
                         break_on_hyphens=False) or [""]


#: The text report fits a terminal this wide (README; issue 14): sources wrap onto at most SOURCE_LINES lines
#: of the table, then are abridged; the lines below the table are wrapped.
TEXT_WIDTH = 120
SOURCE_LINES = 2


def to_text(results: Sequence[ClaimResult], *, width: int = TEXT_WIDTH) -> str:
    """A fixed-width table (claim, source, examples, worst margin, verdict, and certified/examples when
    certification ran) of at most ``width`` columns; counterexamples, errors and certificates follow it."""
    certified = any(r.certified is not None for r in results)
    head = ("claim", "source", "examples", "worst margin", "verdict") + (("certified",) if certified else ())
    rows = [
        (r.id, r.source, str(r.examples), _fmt_margin(r.worst_margin), _verdict_cell(r))
        + ((_certified_cell(r),) if certified else ())
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(head)]
    room = width - sum(w for i, w in enumerate(widths) if i != 1) - 2 * (len(head) - 1)
    widths[1] = min(widths[1], max(len(head[1]), room))
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [line(head), line(tuple("-" * w for w in widths))]
    for row in rows:  # a long source wraps onto a second line, then is abridged (JSON and Markdown keep it whole)
        src = textwrap.wrap(row[1], width=widths[1], max_lines=SOURCE_LINES, placeholder="...") or [""]
        out.append(line(row[:1] + (src[0],) + row[2:]))
        out += [line(("", more) + ("",) * (len(head) - 2)) for more in src[1:]]
    s = summary(results)
    out.append("")
    out += _wrap(f"{s['claims']} claims: {s['holds']} hold, {s['fails']} fail, {s['errors']} errors; "
                 f"{'all verdicts as expected' if not s['unexpected'] else 'UNEXPECTED: ' + ', '.join(s['unexpected'])}"
                 f" ({s['seconds']:.1f} s)", width)
    if "certified" in s:
        c = s["certified"]
        out += _wrap(f"certified: {c['within'] + c['violated']} of {c['examples']} instances ({c['within']} within "
                     f"tolerance, {c['violated']} violated), {c['uncertified']} uncertified; "
                     f"{c['claims_fully_certified']} claims fully certified, {c['claims_without_ball_evaluation']} "
                     f"with none certified; {c['disagree']} disagreements with mp ({c['seconds']:.1f} s)", width)
    for r in results:
        if r.verdict == "error":
            out.append("")
            out += _wrap(f"{r.id} ({r.source}) raised: {r.error}", width)
            if r.counterexample is not None:
                out += _wrap(f"  on: {_short(r.counterexample, 400)}", width)
    for r in (r for r in results if r.verdict == "fails"):
        out.append("")
        out += _wrap(f"{r.id} ({r.source}) fails as printed: {r.statement}", width)
        out += _wrap(f"  shrunk counterexample: {_short(r.counterexample, 400)}", width)
        if r.counterexample_detail:
            out += _wrap(f"  detail: {_short(r.counterexample_detail, 400)}", width)
        if r.counterexample_certificate is not None:
            out += _wrap(f"  certificate: {_cex_certificate(r.counterexample_certificate)}", width)
        if r.twin:
            out.append(f"  corrected statement: see {r.twin}")
    return "\n".join(out)


def to_markdown(results: Sequence[ClaimResult], *, profile: str, seed: int) -> str:
    v = versions()
    certified = any(r.certified is not None for r in results)
    out = [
        "# proofs_check report",
        "",
        f"Profile `{profile}`, seed {seed}; krad_ref {v['krad_ref']}, numpy {v['numpy']}, mpmath {v['mpmath']}, "
        f"hypothesis {v['hypothesis']}.",
        "",
        "| claim | source | statement | examples | worst margin | verdict | expected | counterexample |"
        + (" certified |" if certified else ""),
        "|---|---|---|---|---|---|---|---|" + ("---|" if certified else ""),
    ]
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    for r in results:
        cex = "" if r.counterexample is None else f"`{esc(_short(r.counterexample, 120))}`"
        cert = ""
        if certified:
            cert = f" {_certified_cell(r)}"
            if r.counterexample_certificate is not None:
                cert += f"; counterexample {esc(_cex_certificate(r.counterexample_certificate))}"
            cert += " |"
        out.append(f"| `{r.id}` | {esc(r.source)} | {esc(r.statement)} | {r.examples} | {_fmt_margin(r.worst_margin)} "
                   f"| {r.verdict}{'' if r.matches else ' **unexpected**'} | {r.expected} | {cex or esc(r.error or '')} |"
                   + cert)
    s = summary(results)
    out += ["", f"{s['claims']} claims: {s['holds']} hold, {s['fails']} fail, {s['errors']} errors."]
    if "certified" in s:
        c = s["certified"]
        out.append(f"Certified: {c['within'] + c['violated']} of {c['examples']} instances ({c['within']} within "
                   f"tolerance, {c['violated']} violated, {c['uncertified']} uncertified).")
    return "\n".join(out) + "\n"
