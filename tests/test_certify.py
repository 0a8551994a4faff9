"""Certified verdicts (proofs_check.certify): what a certificate proves, on instances whose truth is known.

Every instance here has exact float64 inputs, so the statement's truth on it is a fact about rationals: a true
instance must be certified within tolerance, a false one violated (with an enclosure of its margin that
contains the mp margin), and an instance whose sides need a matrix function with no enclosure is uncertified
with the reason. The last tests check the wiring: runner, report (120 columns, JSON fields), campaign, CLI.
"""
from __future__ import annotations

import json
from fractions import Fraction

import numpy as np
import pytest

from proofs_check import __main__ as cli
from proofs_check import campaign, certify, report, runner
from proofs_check.claim import get
from proofs_check.claims import matrix as MX
from proofs_check.claims import means as MEANS

pytestmark = pytest.mark.skipif(not certify.available(), reason="python-flint is not installed")

# matrix.loewner_heinz_p2's shrunk counterexample under the default seed (README, "The theorem-check report").
P2_B = np.array([[0.8776734560937318, 0.1250231724091702], [0.1250231724091702, 0.8722207532387242]])
P2_D = np.array([[0.997565659732053, -0.049200774339030195], [-0.049200774339030195, 0.0055966179281152755]])


def _spd(n: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, n))
    return X @ X.T + n * np.eye(n)  # float64 entries; the statement is about these exact values


def test_true_loewner_instance_is_certified_within_tolerance():
    # P15 with a rank-one D: C kron (B + D) - C kron B = C kron D has an 8-fold exact zero eigenvalue, which Arb's
    # eigensolver cannot isolate; the congruence route must still prove lambda_min >= -tol * scale.
    d = np.array([[1.0], [0.5], [-0.25]])
    inst = MX.P15Instance(C=_spd(4, 1), B=_spd(3, 2), D=d @ d.T)
    cert = certify.certify_instance(get("matrix.p15_kron_monotone"), inst, dps=50)
    assert cert.status == certify.WITHIN, cert


def test_true_identity_with_fractional_powers_is_certified_and_encloses_zero():
    inst = MX.KronPowerInstance(_spd(3, 3), _spd(2, 4), Fraction(1, 3))
    cert = certify.certify_instance(get("matrix.kron_power"), inst, dps=50)
    assert cert.status == certify.WITHIN, cert
    # the identity holds exactly, so the margin enclosure must contain 0 and be far narrower than the tolerance
    # (1/3 is enclosed exactly as a rational ball, the eigen-enclosures carry ~2^-231 relative radii)
    lo, hi = cert.margin
    assert lo <= 0.0 <= hi and hi - lo < 1e-40


def test_printed_counterexample_is_certified_violated_and_encloses_the_mp_margin():
    inst = MX.LoewnerHeinzInstance(P2_B, P2_D, Fraction(2))
    claim = get("matrix.loewner_heinz_p2")
    cert = certify.certify_instance(claim, inst, dps=50)
    ev = claim.check(inst, dps=50)
    assert cert.status == certify.VIOLATED, cert
    lo, hi = cert.margin
    # mp's margin is correct to ~1e-45 relative (50 digits, kappa ~ 20): inside the enclosure up to the two
    # float roundings of its ends (1 ulp each, ~1e-20 absolute at 3.4e-5)
    assert lo - 1e-19 <= ev.relative_margin <= hi + 1e-19
    assert hi < -1e-6  # a proved O(1e-5) counterexample, not a rounding artefact


def test_margin_below_float64_resolution_is_certified_from_the_exact_inputs():
    # A = B + D with D = 2^-70 e1 e1^T: in float64, B + D rounds back to B (2^-70 is below half an ulp of 1), so
    # a float evaluation sees A^2 - B^2 = 0 and calls the instance fine. Exactly, A^2 - B^2 = BD + DB + D^2 has
    # lambda_min = delta (1 - sqrt(1.25)) + O(delta^2) ~ -1.0e-22, i.e. -4.4e-23 relative to ||A^2||_F ~ 2.3,
    # two orders below -tol = -2e-25 (mp_tolerance(50, 2)).
    B = np.array([[1.0, 0.5], [0.5, 1.0]])
    D = np.array([[2.0**-70, 0.0], [0.0, 0.0]])
    inst = MX.LoewnerHeinzInstance(B, D, Fraction(2))
    A_float = B + D
    assert np.array_equal(A_float, B)  # float64 lost D entirely: its margin is exactly 0
    assert np.linalg.eigvalsh(A_float @ A_float - B @ B).min() == 0.0
    claim = get("matrix.loewner_heinz_p2")
    assert not claim.check(inst, dps=50).ok  # mp, with D added exactly, already sees the violation
    cert = certify.certify_instance(claim, inst, dps=50)
    assert cert.status == certify.VIOLATED, cert
    want = 2.0**-70 * (1 - 1.25**0.5) / np.linalg.norm(B @ B)  # first order in delta; D^2 is 2^-140
    lo, hi = cert.margin
    assert lo <= hi < -1e-24 and abs(lo / want - 1) < 1e-6  # 1e-6 covers the O(delta) second-order term


def test_zero_eigenvalues_under_a_fractional_power_are_uncertified_with_the_reason():
    # B = diag(1, 0, 0): B^{1/2} needs t^(1/2) at an eigenvalue 0 (and a repeated one); no enclosure is attempted
    inst = MX.LoewnerHeinzInstance(np.diag([1.0, 0.0, 0.0]), np.diag([0.0, 1.0, 0.0]), Fraction(1, 2))
    cert = certify.certify_instance(get("matrix.loewner_heinz"), inst, dps=50)
    assert cert.status == certify.UNCERTIFIED
    assert cert.reason.startswith("A^1/2: ")


def test_claim_without_ball_evaluation_is_uncertified_with_the_reason():
    cert = certify.certify_instance(get("egop.lemma12"), None, dps=50)
    assert (cert.status, cert.reason) == (certify.UNCERTIFIED, certify.NO_HOOK)


def test_missing_python_flint_degrades_to_uncertified(monkeypatch):
    monkeypatch.setattr(certify, "flint", None)
    inst = MX.LoewnerHeinzInstance(P2_B, P2_D, Fraction(2))
    cert = certify.certify_instance(get("matrix.loewner_heinz_p2"), inst, dps=50)
    assert (cert.status, cert.reason) == (certify.UNCERTIFIED, certify.MISSING)


def test_geometric_mean_formula_two_encloses_formula_one():
    # a non-symmetric principal square root (A^{-1} B)^{1/2} by eigen-enclosure: the two printed formulas agree
    inst = MEANS.Pair(_spd(3, 5), _spd(3, 6))
    cert = certify.certify_instance(get("means.formulas_agree"), inst, dps=50)
    assert cert.status == certify.WITHIN, cert


def test_runner_certifies_every_instance_and_the_shrunk_counterexample():
    claim = get("matrix.loewner_heinz_p2")
    plain = runner.run_claim(claim, examples=30, seed=3)
    res = runner.run_claim(claim, examples=30, seed=3, certify=True)
    # certification runs after the search: the search itself is unchanged
    assert (res.verdict, res.examples, res.counterexample) == (plain.verdict, plain.examples, plain.counterexample)
    assert plain.certified is None and plain.counterexample_certificate is None
    c = res.certified
    assert c["within"] + c["violated"] + c["uncertified"] == res.examples
    assert c["violated"] >= 1 and c["disagree"] == 0  # p = 2 is polynomial: nothing needs an eigen-enclosure
    assert res.counterexample_certificate["status"] == certify.VIOLATED


def _long_source_results():
    claim = get("matrix.loewner_heinz_p2")
    res = runner.run_claim(claim, examples=30, seed=3, certify=True)
    long = runner.ClaimResult(**{**res.__dict__, "id": "toy.long_source", "source": "S " * 120,
                                 "statement": "a statement " * 30, "certified": None,
                                 "counterexample_certificate": None})
    return [res, long]


def test_text_report_fits_120_columns_and_json_keeps_every_field():
    results = _long_source_results()
    text = report.to_text(results)
    assert max(len(line) for line in text.splitlines()) <= 120
    assert "certified violated (a proved counterexample)" in text
    doc = json.loads(report.to_json(results, profile="quick", seed=0))
    rec = doc["claims"][0]
    for key in ("id", "source", "statement", "expected", "verdict", "matches", "examples", "worst_margin", "tol",
                "seconds", "seed", "counterexample", "counterexample_detail", "error", "note", "twin"):
        assert key in rec
    assert doc["claims"][1]["source"] == "S " * 120  # abridged in the table only
    assert rec["counterexample_certificate"]["status"] == "violated"
    assert doc["summary"]["certified"]["violated"] == rec["certified"]["violated"]
    md = report.to_markdown(results, profile="quick", seed=0)
    assert "| certified |" in md and "counterexample certified violated" in md


def test_campaign_stores_the_setting_and_sums_certificates_over_shards(tmp_path):
    claim = get("matrix.kron_trace")
    out = campaign.run_campaign([claim], shards=2, examples=12, executor="serial", directory=tmp_path / "c",
                                certify=True)
    (res,) = out.results
    assert out.settings["certify"] is True
    assert res.certified["within"] + res.certified["violated"] + res.certified["uncertified"] == res.examples == 12
    assert res.certified["within"] == 12  # tr(A kron B) = tr A tr B is polynomial: every instance is proved
    plain = campaign.run_campaign([claim], shards=2, examples=12, executor="serial", certify=False)
    assert "certify" not in plain.settings and plain.results[0].certified is None


def test_cli_certify_flag(capsys):
    rc = cli.main(["run", "matrix.kron_trace", "--examples", "10", "--certify", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and "certified" in out.splitlines()[0] and "10/10" in out


@pytest.mark.parametrize("scheme", ["star", "alt"])
def test_ball_trajectory_encloses_the_mp_twin(scheme):
    # The KrADagrad ball twin (claims/kradagrad/_common.py) is a second implementation of twins.twin_trajectory: each of
    # its enclosures must contain the mp factors up to the mp rounding (50 digits, kappa <= 1e4: ~1e-45 relative).
    import flint
    import mpmath

    from proofs_check.claims import kradagrad as KR

    rng = np.random.default_rng(7)
    G = [rng.standard_normal((2, 3)) / 4 for _ in range(3)]
    inst = KR.Traj(_spd(2, 8), _spd(3, 9), G, "spectral", (0, 1, 0))
    recs = KR._star(inst, dps=50) if scheme == "star" else KR._alt(inst, dps=50)
    saved, flint.ctx.prec = flint.ctx.prec, certify.prec_bits(50)
    try:
        balls = list(KR._ball_factors(inst, scheme))
    finally:
        flint.ctx.prec = saved
    for rec, (L, R, _) in zip(recs, balls):
        for mp_f, ball in zip(rec["factors"], (L, R)):
            for i in range(ball.nrows()):
                for j in range(ball.ncols()):
                    x, b = mp_f[i, j], ball[i, j]
                    assert float(b.rad()) < 1e-50  # 231 bits, a few steps: far tighter than the mp rounding
                    assert b.overlaps(flint.arb(mpmath.nstr(x, 60)) + flint.arb(0, 1e-45))
