"""The statement ledger (proofs_check.coverage) against the registry and against the paper texts."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from proofs_check import __main__ as cli
from proofs_check import claim as claim_mod
from proofs_check import coverage

PAPER_FILES = {"KrADagrad": "kradagrad.md", "MBAG": "mbag.md", "EGOP": "egop.md"}


def _papers_dir() -> Path | None:
    for base in (Path(__file__).resolve().parents[1], *Path(__file__).resolve().parents):
        cand = base / "shared" / "papers"
        if (cand / "egop.md").is_file():
            return cand
    return None


def test_every_ledger_claim_is_registered():
    known = {c.id for c in claim_mod.all_claims()}
    for e in coverage.LEDGER:
        assert set(e.claims) <= known, (e.label, set(e.claims) - known)
        assert set(e.printed) <= set(e.claims), e.label


def test_every_entry_is_encoded_or_says_why():
    for e in coverage.LEDGER:
        assert e.paper in coverage.PAPERS
        if e.printed:
            assert not e.reason, (e.paper, e.label)
        else:
            assert e.reason in coverage.REASONS, (e.paper, e.label, e.reason)
    keys = [(e.paper, e.label) for e in coverage.LEDGER]
    assert len(keys) == len(set(keys)), "an item is listed twice"


_EQS = re.compile(r"Eqs?\.\s*\((\d+)\)((?:\s*(?:-|,|=|and)\s*\(\d+\))*)")
_STMT = re.compile(r"\b(Lemma|Theorem|Thm\.|Proposition|Prop\.|Corollary|Cor\.)\s*(\d+(?:\.\d+)?)")
_LONG = {"Thm.": "Theorem", "Prop.": "Proposition", "Cor.": "Corollary"}


def source_labels(where: str) -> set[str]:
    """The paper's numbered items a Source.where names: 'Eqs. (12)-(13)' -> Eq. (12), Eq. (13); 'Prop. 3.2' ->
    Proposition 3.2. Parenthesised remarks ('(Gupta et al. 2018, Thm. 7)', '(Lemma 8)') cite other papers and
    are skipped."""
    out = set()
    for m in _EQS.finditer(where):
        nums = [int(m.group(1))] + [int(x) for x in re.findall(r"\((\d+)\)", m.group(2))]
        if "-" in m.group(2) and len(nums) == 2:
            nums = list(range(nums[0], nums[1] + 1))
        out |= {f"Eq. ({n})" for n in nums}
    bare = where
    while re.search(r"\([^()]*\)", bare):
        bare = re.sub(r"\([^()]*\)", "", bare)
    out |= {f"{_LONG.get(k, k)} {n}" for k, n in _STMT.findall(bare)}
    return out


def test_source_label_parser():
    assert source_labels("Eqs. (12)-(13)") == {"Eq. (12)", "Eq. (13)"}
    assert source_labels("Eqs. (2)-(4) with one group (errata 5)") == {"Eq. (2)", "Eq. (3)", "Eq. (4)"}
    assert source_labels("Eq. (4) = (24) (notes Sec. 8 [REC])") == {"Eq. (4)", "Eq. (24)"}
    assert source_labels("Lemma 3.5 (Gupta et al. 2018, Thm. 7); float64") == {"Lemma 3.5"}
    assert source_labels("Prop. 3.2") == {"Proposition 3.2"}


def test_every_claim_naming_a_numbered_item_is_in_the_ledger():
    listed = {(e.paper, e.label): set(e.claims) for e in coverage.LEDGER}
    missing = []
    for c in claim_mod.all_claims():
        if c.source.paper not in coverage.PAPERS:
            continue  # "standard" facts the papers lean on
        for label in source_labels(c.source.where):
            if c.id not in listed.get((c.source.paper, label), set()):
                missing.append((c.id, c.source.paper, label))
    assert not missing, missing


def test_the_parser_finds_headings_and_tags():
    text = ("**Lemma 3.1.** *Let*\nTheorem 1. Suppose\nTheorem 1 shows that\nLemma 13 (Order-preserving).\n"
            "Proof of Lemma 10.\n$$x \\quad (4)$$\n| (18) |\n**Lemma 3.5** (From Gupta)\n")
    assert coverage.statement_labels(text) == ["Lemma 3.1", "Theorem 1", "Lemma 13", "Eq. (4)", "Eq. (18)",
                                               "Lemma 3.5"]


@pytest.mark.skipif(_papers_dir() is None, reason="the paper texts (shared/papers) are not next to this checkout")
@pytest.mark.parametrize("paper", sorted(PAPER_FILES))
def test_ledger_lists_exactly_the_numbered_items_of_the_paper_in_order(paper):
    text = (_papers_dir() / PAPER_FILES[paper]).read_text(encoding="utf-8")
    parsed = coverage.statement_labels(text)
    ledger = [e.label for e in coverage.LEDGER if e.paper == paper]
    assert ledger == parsed
    for absent in coverage.ABSENT.get(paper, ()):
        assert absent not in parsed


def test_summary_counts_add_up():
    s = coverage.summary()
    for kind, d in s.items():
        total = sum(1 for e in coverage.LEDGER if e.kind == kind)
        assert d["total"] == total
        assert d["holds"] + d["fails_as_printed"] + sum(d["not_encoded"].values()) == total
    # the new encodings: EGOP Lemma 17 holds; MBAG Theorem 1 stays an expectation bound with its ingredients listed
    recs = {(r["paper"], r["label"]): r for r in coverage.rows()}
    assert recs[("EGOP", "Lemma 17")]["status"] == "holds"
    thm1 = recs[("MBAG", "Theorem 1")]
    assert thm1["status"] == "not encoded" and thm1["reason"] == "expectation"
    assert {c["id"] for c in thm1["claims"]} >= {"mbag.thm1_logdet_step", "mbag.thm1_root_monotone"}


def test_cli_writes_markdown_and_json(tmp_path, capsys):
    md, js = tmp_path / "ledger.md", tmp_path / "ledger.json"
    assert cli.main(["coverage", "--markdown", str(md), "--json", str(js)]) == 0
    out = capsys.readouterr().out
    assert coverage.summary_line() in out
    doc = json.loads(js.read_text())
    assert len(doc["entries"]) == len(coverage.LEDGER) and doc["summary_line"] == coverage.summary_line()
    text = md.read_text()
    assert "| Lemma 17 |" in text and "`egop.lemma17`*" in text


def test_readme_quotes_the_current_summary_line():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Statement ledger", 1)[1].split("\n#", 1)[0]
    quoted = " ".join(line[1:].strip() for line in section.splitlines() if line.startswith(">"))
    assert quoted == coverage.summary_line() + ".", "README's ledger summary is stale: rerun the coverage command"


def test_found_verdicts_change_the_status_they_contradict():
    # a search that found the as-printed Lemma 17 failing (or Lemma 14's false reading holding) shows it beside
    # the expectation, and the markdown marks the difference
    from types import SimpleNamespace

    found = [SimpleNamespace(id="egop.lemma17", verdict="fails"),
             SimpleNamespace(id="egop.lemma14_isotropic_reading", verdict="holds")]
    recs = {(r["paper"], r["label"]): r for r in coverage.rows(found)}
    assert recs[("EGOP", "Lemma 17")]["status"] == "holds"
    assert recs[("EGOP", "Lemma 17")]["status_found"] == "fails as printed"
    assert recs[("EGOP", "Lemma 14")]["status_found"] == "holds"
    assert recs[("EGOP", "Lemma 12")]["claims"][0]["verdict"] is None  # not run: no verdict
    md = coverage.to_markdown(list(recs.values()))
    assert "holds (found: fails as printed)" in md and "found fails" in md
