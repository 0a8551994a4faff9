"""Every registered claim reaches its expected verdict on a small, deterministic search.

This is the test-suite twin of ``python -m proofs_check``: true statements hold on every instance drawn,
statements known to be false as printed are found failing with a shrunk counterexample. Examples are few
(each runs eigen-decompositions in mp at 50 digits); the CLI's profiles search harder.
"""
from __future__ import annotations

import pytest

from proofs_check import runner
from proofs_check.claim import all_claims, get

EXAMPLES = 12
CLAIMS = all_claims()


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.id for c in CLAIMS])
def test_claim_verdict_matches_expectation(claim):
    res = runner.run_claim(claim, examples=max(4, round(EXAMPLES * claim.weight)),
                           seed=runner.derive_seed(runner.DEFAULT_SEED, claim.id), dps=50, shrink_seconds=20)
    assert res.verdict == claim.expected, (
        f"{claim.id} ({claim.source}): verdict {res.verdict}, expected {claim.expected}; worst margin "
        f"{res.worst_margin}, tol {res.tol}, counterexample {res.counterexample}, error {res.error}")
    if claim.expected == "fails":
        assert res.counterexample is not None


def test_loewner_heinz_p2_shrinks_to_two_by_two():
    # A^2 >= B^2 holds for commuting pairs and for every 1 x 1 pair, so a minimal counterexample is 2 x 2.
    res = runner.run_claim(get("matrix.loewner_heinz_p2"), examples=30, seed=1, dps=50, shrink_seconds=30)
    assert res.verdict == "fails"
    B = res.counterexample["B"]
    assert len(B) == 2 and len(B[0]) == 2
    assert res.worst_margin < -1e-6  # a real failure, many orders above the mp tolerance (~1e-47)


def test_every_claim_names_its_source_and_statement():
    ids = [c.id for c in CLAIMS]
    assert len(ids) == len(set(ids))
    for c in CLAIMS:
        assert c.source.paper and c.source.where and c.statement
        if c.expected == "fails":
            assert c.twin in ids, f"{c.id} fails as printed but names no corrected twin"


def test_mbag_stale_root_shrinks_to_one_step_behind():
    # Alg. 1 with T_sqr > 1 at a step before the refresh applies H_0 = I / lambda: u = g^T H_0 g against
    # log(1 + u); the minimal counterexample is tau = 1, one step, T_sqr = 2, and its margin is log 2 - 1 at g = 1.
    res = runner.run_claim(get("mbag.thm1_logdet_step_stale_root"), examples=30, seed=1, dps=50, shrink_seconds=30)
    assert res.verdict == "fails"
    cex = res.counterexample
    assert len(cex["grads"]) == 1 and len(cex["grads"][0]) == 1 and cex["t_sqr"] == 2
    assert res.worst_margin < -1e-3  # a real failure: (u - log(1 + u)) / (u + log(1 + u)) ~ u / 4 for small u
