"""The statement ledger: every numbered statement and equation of the three papers, and what checks it.

``python -m proofs_check coverage [--markdown F] [--json F] [--run [--profile P]]``

Each :class:`Entry` is one numbered item of ``papers/kradagrad.md``, ``papers/mbag.md`` or ``papers/egop.md``, in
the papers' order: the statements (Lemma, Proposition, Theorem, Corollary) and every numbered equation. An entry
names the registered claims that bear on it (``claims``), the subset that encodes the statement *as printed*
(``printed``: the statement is "encoded" when this is non-empty, and "fails as printed" when one of these is
expected to fail), or the reason it is not encoded (``reason``, one of :data:`REASONS`, with ``note`` saying
which words or constants are missing). Expected verdicts come from the registry; ``--run`` adds the verdicts of
a search. ``tests/test_coverage.py`` checks the ledger against the registry and against the headings and
equation tags parsed from the paper texts, so a statement cannot be forgotten silently.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections import Counter
from typing import Sequence

from . import claim as claim_mod

__all__ = ["Entry", "LEDGER", "REASONS", "PAPERS", "statement_labels", "rows", "summary_line", "to_markdown",
           "to_json", "main"]

PAPERS = ("KrADagrad", "MBAG", "EGOP")

#: Why a numbered item is not encoded as a claim.
REASONS = {
    "definition": "a definition or an update rule, not a statement (krad_ref implements it; its tests check it)",
    "constants_lost": "the statement's constants or smallness conditions are lost in our copy and not recoverable "
                      "(notes/egop-formulas.md Sec. 5-7)",
    "text_lost": "the statement's text is lost in our copy and the notes do not rebuild it",
    "expectation": "a bound in expectation over gradient noise with run-dependent constants: no instance to check "
                   "without a noise model",
    "asymptotic": "an asymptotic rate (O, O-tilde) whose constant is not given",
    "cited": "a result quoted from another paper, used but not stated by this one",
    "proof_step": "an intermediate step of a proof whose statement is not encoded (same reason as the statement)",
}


@dataclasses.dataclass(frozen=True)
class Entry:
    """One numbered item of a paper (see the module docstring)."""

    paper: str             # one of PAPERS
    label: str             # "Lemma 3.1", "Theorem 1", "Eq. (4)"
    summary: str           # a few words saying what it states
    claims: tuple = ()     # every registered claim that bears on it (variants, corrected twins)
    printed: tuple = ()    # the claims that encode it as printed (subset of claims)
    reason: str = ""       # key of REASONS when printed is empty
    note: str = ""

    @property
    def kind(self) -> str:
        return "equation" if self.label.startswith("Eq.") else "statement"

    @property
    def number(self) -> str:
        return re.search(r"(\d+(?:\.\d+)?)", self.label).group(1)


def _e(paper, label, summary, claims=(), printed=(), reason="", note=""):
    claims = tuple(claims)
    printed = tuple(printed)
    return Entry(paper, label, summary, printed + tuple(c for c in claims if c not in printed), printed, reason, note)


K, MB, EG = PAPERS

LEDGER: tuple[Entry, ...] = (
    # ---------------------------------------------------------------------------------------------- KrADagrad
    _e(K, "Eq. (1)", "preconditioned step w_{k+1} = w_k - eta_k P_k g_k", reason="definition"),
    _e(K, "Eq. (2)", "Shampoo's statistics B_k, C_k", reason="definition"),
    _e(K, "Eq. (3)", "Shampoo's factors (L_k, R_k) = (B_k^{-1/4}, C_k^{-1/4})", reason="definition"),
    _e(K, "Eq. (4)", "Shampoo's first condition R_k^{-2} kron L_k^{-2} >= eps I + sum g g^T",
       claims=("shampoo.eq4",), printed=("shampoo.eq4_as_printed",)),
    _e(K, "Eq. (5)", "Shampoo's second condition (monotone preconditioner)", printed=("shampoo.eq5",)),
    _e(K, "Eq. (6)", "Shampoo's third condition tr(L_k), tr(R_k) = O(k^{1/4})",
       claims=("shampoo.eq6_explicit", "shampoo.eq6_literal_bounded"), printed=("shampoo.eq6_as_printed",),
       note="an O(.) rate, checked in an explicit form"),
    _e(K, "Lemma 3.1", "C kron U C^{-1} U^T >= (1/n) vec(U) vec(U)^T for PD C",
       claims=("kradagrad.lemma3_1_min_dim", "kradagrad.lemma3_1_sharp_1_over_n", "kradagrad.lemma3_1_best_constant"),
       printed=("kradagrad.lemma3_1",)),
    _e(K, "Eq. (7)", "Q_{k-1} = C kron B dominates G G^T / (n t)",
       printed=("kradagrad.domination_alt", "kradagrad.domination_star")),
    _e(K, "Eq. (8)", "P = R kron L = C^{-1} kron B^{-1} = Q^{-1}", reason="definition",
       note="the Kronecker inverse rule it uses is matrix.kron_power"),
    _e(K, "Eq. (9)", "Delta B_k = G_k C_k^{-1} G_k^T / t_k", reason="definition"),
    _e(K, "Eq. (10)", "C_k kron Delta B_k >= g_k g_k^T / (n t_k), by Lemma 3.1", printed=("kradagrad.lemma3_1",),
       note="Lemma 3.1 with C = C_k, U = G_k / sqrt(t_k)"),
    _e(K, "Eq. (11)", "C_k kron (B_{k-1} + Delta B_k) >= g_k g_k^T / (n t), by (P15)",
       claims=("matrix.p15_kron_monotone",), printed=("kradagrad.domination_alt", "kradagrad.domination_star")),
    _e(K, "Eq. (12)", "L~_k = (B_{k-1} + Delta B_k)^{-1}", printed=("kradagrad.woodbury_12_13",)),
    _e(K, "Eq. (13)", "L~_k >= L_k = L_{k-1} - L_{k-1} G_k R_k G_k^T L_{k-1} / t_k",
       claims=("kradagrad.rank1_closed_form",), printed=("kradagrad.woodbury_12_13",)),
    _e(K, "Proposition 3.2", "the t_k rules keep L_k, R_k PD",
       claims=("kradagrad.prop3_2_trace_code",), printed=("kradagrad.prop3_2_spectral", "kradagrad.prop3_2_frobenius")),
    _e(K, "Corollary 3.3", "0 < L_k <= L_{k-1}", claims=("kradagrad.cor3_3_beta2",),
       printed=("kradagrad.cor3_3_alt", "kradagrad.cor3_3_star")),
    _e(K, "Lemma 3.4", "trace bounds (14)-(15) on B_k, C_k", claims=("kradagrad.lemma3_4_alt", "kradagrad.lemma3_4_star"),
       printed=("kradagrad.lemma3_4_alt_as_printed", "kradagrad.lemma3_4_star_as_printed")),
    _e(K, "Eq. (14)", "tr(B_k) <= tr(B_0) + k' m s ||R_0||_2", claims=("kradagrad.lemma3_4_alt", "kradagrad.lemma3_4_star"),
       printed=("kradagrad.lemma3_4_alt_as_printed", "kradagrad.lemma3_4_star_as_printed")),
    _e(K, "Eq. (15)", "tr(C_k) <= tr(C_0) + (k - k') n s ||L_0||_2",
       claims=("kradagrad.lemma3_4_alt", "kradagrad.lemma3_4_star"),
       printed=("kradagrad.lemma3_4_alt_as_printed", "kradagrad.lemma3_4_star_as_printed")),
    _e(K, "Lemma 3.5", "regret bound of Gupta et al. 2018 (Thm. 7) in KrADagrad's notation",
       printed=("kradagrad.lemma3_5",), note="quoted from Gupta et al.; checked on float64 runs"),
    _e(K, "Theorem 3.6", "KrADagrad*'s regret is O(sqrt K)", printed=("kradagrad.thm3_6",),
       note="checked in its explicit (non-asymptotic) form from Lemmas 3.4-3.5"),
    # ---------------------------------------------------------------------------------------------- MBAG
    _e(MB, "Eq. (1)", "natural-gradient step theta - eta G^{-1} grad L", reason="definition"),
    _e(MB, "Eq. (2)", "full-matrix AdaGrad statistic G_t = G_{t-1} + g g^T", reason="definition",
       claims=("mbag.single_group_adagrad", "mbag.intro_adagrad_form")),
    _e(MB, "Eq. (3)", "AdaGrad step theta - eta G_t^{-1/2} g_t", reason="definition",
       claims=("mbag.single_group_adagrad", "mbag.intro_adagrad_form")),
    _e(MB, "Eq. (4)", "Sherman-Morrison update of H_t = G_t^{-1}", claims=("mbag.single_group_adagrad",),
       printed=("mbag.eq4_sherman_morrison",)),
    _e(MB, "Eq. (5)", "coupled Newton-Schulz iteration and the limits Sec. IV-B states for it",
       claims=("mbag.ns_quadratic", "mbag.ns_fro_rescale_x", "mbag.ns_fro_rescale_y", "mbag.ns_alg2_normalized",
               "mbag.ns_alg2_rescaled_by_analogy", "mbag.ns_alg2_rescaled", "mbag.ns_fro_condition",
               "mbag.ns_fro_condition_all_p", "mbag.ns_fixed_count_underestimates"),
       printed=("mbag.ns_limits", "mbag.ns_fro_y_as_printed", "mbag.ns_alg2_literal")),
    _e(MB, "Eq. (6)", "per-group statistic G_t^{l,pi_i}", reason="definition"),
    _e(MB, "Theorem 1", "min_t E||grad f(theta_t)||^2 bound with log-det and G^2 terms (Alg. 1)",
       claims=("mbag.thm1_logdet_step", "mbag.thm1_logdet_step_stale_root", "mbag.thm1_root_monotone"),
       reason="expectation",
       note="its deterministic per-step ingredients are encoded: the log-det step holds for T_sqr = 1 and fails "
            "for Alg. 1 with T_sqr > 1 (mbag.thm1_logdet_step_stale_root); the root monotonicity and bound hold"),
    # ---------------------------------------------------------------------------------------------- EGOP
    _e(EG, "Eq. (1)", "coordinate-wise smoothness with constants L_i (definition; notes Sec. 1)",
       claims=("egop.lemma10_if", "egop.lemma10_only_if"), reason="definition"),
    _e(EG, "Eq. (2)", "E<grad f, v_i>^2 = lambda_i for each EGOP eigenpair", printed=("egop.cor15_diagonal",)),
    _e(EG, "Eq. (3)", "stable rank sr_f = sum sqrt(lambda_i) / sqrt(lambda_1) (definition)", reason="definition"),
    _e(EG, "Theorem 3", "reparameterized Adagrad converges faster (informal, O-tilde rates)", reason="asymptotic",
       note="the rates are O-tilde with lost constants (notes Sec. 5)"),
    _e(EG, "Eq. (4)", "EGOP(l(A x)) = A^T E[grad l grad l^T] A", printed=("egop.eq4_chain_rule",)),
    _e(EG, "Eq. (5)", "block EGOP (definition)", reason="definition"),
    _e(EG, "Eq. (6)", "linear-network objective (definition)", reason="definition"),
    _e(EG, "Eq. (7)", "log-sum-exp objective (definition, form uncertain)", reason="definition"),
    _e(EG, "Eq. (8)", "Adagrad's rate in terms of sum L_i (Jiang et al., Liu et al.)", reason="cited",
       note="also an O-tilde rate"),
    _e(EG, "Theorem 4", "formal Theorem 3", reason="constants_lost"),
    _e(EG, "Theorem 5", "sum of smoothness constants before / after reparameterization", reason="constants_lost"),
    _e(EG, "Lemma 6", "lower bound on sum L_i for dense EGOP eigenvectors", reason="constants_lost",
       note="only its first words survive"),
    _e(EG, "Corollary 7", "L_f >~ beta d sqrt(lambda_1) / c", reason="constants_lost",
       note="the proofs call it Lemma 7 and Claim 7"),
    _e(EG, "Lemma 8", "upper bound on sum L~_i after reparameterization", reason="constants_lost"),
    _e(EG, "Lemma 9", "Assumption 2's consequences for the Hessian and third derivative", reason="text_lost",
       note="the rebuilt form (notes Sec. 6) is Assumption 2 restated (Weyl); checking it needs an exactly known "
            "Hessian-Lipschitz constant, which no objective here has"),
    _e(EG, "Lemma 10", "Eq. (1) with L iff -D_L <= Hess f <= D_L", printed=("egop.lemma10_if", "egop.lemma10_only_if")),
    _e(EG, "Eq. (9)", "twice-differentiability expansion used in Lemma 10's proof", reason="definition"),
    _e(EG, "Lemma 11", "c^2 H^2 - delta I <= EGOP <= 2 c^2 H^2 + delta I at a local minimum", reason="constants_lost",
       note="delta's exact form is not recoverable (notes Sec. 5); for quadratic f (delta = 0) it is "
            "c^2 H^2 <= H (c^2 I + x* x*^T) H <= 2 c^2 H^2, not encoded yet"),
    _e(EG, "Lemma 12", "v^T A^2 v <= lambda_max(A) v^T A v for PSD A", printed=("egop.lemma12",)),
    _e(EG, "Lemma 13", "0 <= A <= B implies A^{1/2} <= B^{1/2}", claims=("matrix.loewner_heinz",),
       printed=("egop.lemma13_sqrt_monotone",)),
    _e(EG, "Eq. (10)", "Lemma 13's conclusion", claims=("matrix.loewner_heinz",),
       printed=("egop.lemma13_sqrt_monotone",)),
    _e(EG, "Eq. (11)", "eigenpair equation in Lemma 13's proof", claims=("egop.lemma13_sqrt_monotone",),
       reason="proof_step", note="a step of a proof whose conclusion is encoded"),
    _e(EG, "Eq. (12)", "chained bound in Corollary 7's proof", reason="proof_step"),
    _e(EG, "Lemma 14", "EGOP(f o V) = V^T EGOP(f) V for isotropic rho",
       claims=("egop.lemma14_gaussian", "egop.lemma14_sample"), printed=("egop.lemma14_isotropic_reading",),
       note="false for 'isotropic' = mean 0, covariance c^2 I (errata 2); true for rotation-invariant rho"),
    _e(EG, "Corollary 15", "EGOP(f o V) = Lambda in the EGOP eigenbasis", printed=("egop.cor15_diagonal",)),
    _e(EG, "Eq. (13)", "per-coordinate bound in Lemma 8's proof", reason="proof_step"),
    _e(EG, "Eq. (14)", "smallness condition in Theorem 5's proof", reason="proof_step"),
    _e(EG, "Eq. (18)", "matrix-factorization objective 1/2 ||A(U W^T) - y||^2 (definition; the 1/2 is assumed)",
       claims=("egop.lemma17",), reason="definition"),
    _e(EG, "Lemma 16", "Eq. (18) has an L_H-Lipschitz Hessian on B_R, L_H <= C ||A||^2 R", reason="constants_lost",
       note="the paper's C is unknown (notes Sec. 7)"),
    _e(EG, "Lemma 17", "Hessian quadratic form of Eq. (18)", printed=("egop.lemma17",),
       note="rebuilt in notes Sec. 7 [REC]; the printed formula is lost"),
    _e(EG, "Eq. (19)", "U-U term in Lemma 16's proof", reason="proof_step"),
    _e(EG, "Eq. (20)", "W-W term in Lemma 16's proof", reason="proof_step"),
    _e(EG, "Eq. (21)", "cross term in Lemma 16's proof", reason="proof_step"),
    _e(EG, "Eq. (22)", "residual term in Lemma 16's proof", reason="proof_step"),
    _e(EG, "Eq. (23)", "operator-norm bound in Lemma 16's proof", reason="proof_step"),
    _e(EG, "Eq. (24)", "= Eq. (4)", printed=("egop.eq4_chain_rule",)),
    _e(EG, "Lemma 18", "lambda_k / lambda_1 <= kappa(S) sigma_k^2 / sigma_1^2", printed=("egop.lemma18_decay",)),
    _e(EG, "Lemma 19", "least-squares EGOP and its spectrum", printed=("egop.lemma19_formula", "egop.lemma19_interlacing")),
    _e(EG, "Eq. (25)", "Golub interlacing of Lemma 19", printed=("egop.lemma19_interlacing",)),
    _e(EG, "Lemma 20", "Kronecker-structured orthogonal V: (i) always a V, (ii) not conversely",
       claims=("egop.lemma20_ii",), printed=("egop.lemma20_i", "egop.lemma20_ii_as_printed")),
)

#: Numbered items the paper texts lack: equations (15)-(17) of the EGOP paper are not in our copy (the numbering
#: jumps from (14) to (18)); they cannot be listed.
ABSENT = {EG: ("Eq. (15)", "Eq. (16)", "Eq. (17)")}


# --------------------------------------------------------------------------------------------------------------
# reading the paper texts

_HEADING = re.compile(r"^\**(Lemma|Theorem|Proposition|Corollary)\s+(\d+(?:\.\d+)?)(?=\.|\*\*| \()", re.M)
_EQ_TAG = re.compile(r"\\quad \((\d+)\)\s*\$\$|\| \((\d+)\) \|")


def statement_labels(text: str) -> list[str]:
    """The numbered statements a paper's markdown defines (headings such as '**Lemma 3.1.**', 'Lemma 6.',
    'Theorem 3 (Informal).') and its equation tags ('\\quad (4)$$', '| (4) |'), in order of first appearance."""
    found = [(m.start(), f"{m.group(1)} {m.group(2)}") for m in _HEADING.finditer(text)]
    found += [(m.start(), f"Eq. ({m.group(1) or m.group(2)})") for m in _EQ_TAG.finditer(text)]
    out = []
    for _, label in sorted(found):
        if label not in out:
            out.append(label)
    return out


# --------------------------------------------------------------------------------------------------------------
# rendering

def _verdict(entry: Entry, expected: dict, actual: dict | None) -> str:
    if not entry.printed:
        return "not encoded"
    source = actual if actual is not None else expected
    return "fails as printed" if any(source.get(c) == claim_mod.FAILS for c in entry.printed) else "holds"


def rows(results=None) -> list[dict]:
    """One plain dict per ledger entry; ``results`` (runner.ClaimResult list) adds the verdicts of a search."""
    expected = {c.id: c.expected for c in claim_mod.all_claims()}
    actual = None if results is None else {r.id: r.verdict for r in results}
    out = []
    for e in LEDGER:
        rec = {"paper": e.paper, "label": e.label, "kind": e.kind, "summary": e.summary,
               "claims": [{"id": c, "expected": expected[c]} | ({} if actual is None else {"verdict": actual.get(c)})
                          for c in e.claims],
               "printed": list(e.printed), "status": _verdict(e, expected, None),
               "reason": e.reason if not e.printed else "", "note": e.note}
        if actual is not None:
            rec["status_found"] = _verdict(e, expected, actual)
        out.append(rec)
    return out


def summary(recs: Sequence[dict] | None = None) -> dict:
    recs = rows() if recs is None else recs
    out = {}
    for kind in ("statement", "equation"):
        sel = [r for r in recs if r["kind"] == kind]
        out[kind] = {"total": len(sel), "holds": sum(r["status"] == "holds" for r in sel),
                     "fails_as_printed": sum(r["status"] == "fails as printed" for r in sel),
                     "not_encoded": dict(Counter(r["reason"] for r in sel if r["status"] == "not encoded"))}
    return out


def summary_line(recs: Sequence[dict] | None = None) -> str:
    s = summary(recs)
    parts = []
    for kind, word in (("statement", "numbered statements"), ("equation", "numbered equations")):
        d = s[kind]
        enc = d["holds"] + d["fails_as_printed"]
        why = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(d["not_encoded"].items(), key=lambda kv: -kv[1]))
        parts.append(f"{d['total']} {word}: {enc} encoded ({d['holds']} hold, {d['fails_as_printed']} fail as "
                     f"printed), {sum(d['not_encoded'].values())} not encoded ({why})")
    return "; ".join(parts)


def _claims_cell(rec: dict) -> str:
    cells = []
    for c in rec["claims"]:
        mark = "*" if c["id"] in rec["printed"] else ""
        v = c["expected"] + (f" / found {c['verdict']}" if "verdict" in c else "")
        cells.append(f"`{c['id']}`{mark} ({v})")
    return ", ".join(cells)


def to_markdown(recs: Sequence[dict] | None = None) -> str:
    recs = rows() if recs is None else recs
    found = any("status_found" in r for r in recs)
    out = ["# Statement ledger", "", summary_line(recs) + ".", "",
           "Claims marked * encode the statement as printed; the others are variants and corrected twins. "
           "Verdicts are the registry's expectations" + (" and those found by the search." if found else "."), "",
           "Reasons: " + "; ".join(f"**{k.replace('_', ' ')}**: {v}" for k, v in REASONS.items()) + ".", ""]
    for paper in PAPERS:
        out += [f"## {paper}", "", "| item | states | status | claims | reason / note |", "|---|---|---|---|---|"]
        for r in recs:
            if r["paper"] != paper:
                continue
            status = r["status"] + (f" (found: {r['status_found']})" if found and r["status_found"] != r["status"]
                                    else "")
            why = "; ".join(x for x in (r["reason"].replace("_", " "), r["note"]) if x)
            out.append(f"| {r['label']} | {r['summary'].replace('|', '/')} | {status} | {_claims_cell(r)} | "
                       f"{why.replace('|', '/')} |")
        out.append("")
    return "\n".join(out)


def to_json(recs: Sequence[dict] | None = None) -> str:
    recs = rows() if recs is None else recs
    return json.dumps({"tool": "proofs_check coverage", "schema": 1, "summary": summary(recs),
                       "summary_line": summary_line(recs), "reasons": REASONS, "entries": list(recs)}, indent=2)


def _text(recs: Sequence[dict]) -> str:
    lines = []
    for r in recs:
        ids = ", ".join(c["id"] for c in r["claims"]) or "-"
        lines.append(f"{r['paper']:9s} {r['label']:16s} {r['status']:17s} {r['reason'] or ids}")
    return "\n".join(lines + ["", summary_line(recs)])


def main(argv=None) -> int:
    """``python -m proofs_check coverage``: the ledger on stdout (text), optionally as Markdown / JSON files."""
    from . import runner

    p = argparse.ArgumentParser(prog="python -m proofs_check coverage", description=__doc__.split("\n")[0])
    p.add_argument("--markdown", metavar="FILE", help="write the ledger as Markdown")
    p.add_argument("--json", metavar="FILE", help="write the ledger as JSON")
    p.add_argument("--run", action="store_true", help="also run the ledger's claims and show the verdicts found")
    p.add_argument("--profile", default="quick", choices=sorted(runner.PROFILES), help="profile for --run")
    p.add_argument("--seed", type=int, default=runner.DEFAULT_SEED, help="seed for --run")
    args = p.parse_args(argv)
    results = None
    if args.run:
        ids = list(dict.fromkeys(c for e in LEDGER for c in e.claims))
        results = runner.run([claim_mod.get(i) for i in ids], profile=runner.PROFILES[args.profile], seed=args.seed)
    recs = rows(results)
    print(_text(recs))
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(to_markdown(recs))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(to_json(recs))
    return 0 if results is None or all(r.matches for r in results) else 1
