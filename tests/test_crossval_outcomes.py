"""Reports a user can act on (issue 11, part 3): three outcomes with three exit codes, NOT CHECKED with its reason,
a candidate's exception at its step and frame, a refused config named by its field, golden failures shrunk.
Budget: a few seconds (examples=0..3 per check)."""
from __future__ import annotations

import numpy as np
import pytest

from krad_ref import crossval
from krad_ref.crossval import harness
from krad_ref.crossval.__main__ import main as cli_main


def _inv_root(S, eps, e):
    w, V = np.linalg.eigh(S)
    return (V * (np.maximum(w, 0.0) + eps) ** (-e)) @ V.T


class MatrixShampoo:
    """Shampoo (paper variant, eps added at the root), matrices only; ``bug`` picks one mistake."""

    def __init__(self, bug: str | None = None, crash_at: int = 0, expose: bool = True):
        self.bug, self.crash_at, self.expose = bug, crash_at, expose
        self.name = f"MatrixShampoo(bug={bug}, crash_at={crash_at})"

    def init(self, shape, config, dtype="float64"):
        if len(shape) != 2 or config["variant"] != "paper" or config["eps_mode"] != "absolute":
            raise NotImplementedError("matrices, paper variant, absolute eps")
        m, n = shape
        return {"k": 0, "stats": [np.zeros((m, m), dtype), np.zeros((n, n), dtype)]}

    def _roots(self, L, R, eps, k):
        if k == self.crash_at:
            np.linalg.cholesky(-np.eye(2))  # CRASH-LINE: raises LinAlgError inside numpy
        e = 1 / 2 if self.bug == "sqrt" else 1 / 4
        return _inv_root(L, eps, e), _inv_root(R, eps, e)

    def update(self, G, state, config):
        k = state["k"] + 1
        L, R = state["stats"]
        L, R = L + G @ G.T, R + G.T @ G
        P, Q = self._roots(L, R, config["eps"], k)
        return P @ G @ Q, {"k": k, "stats": [L, R], "roots": [P, Q]}

    def quantities(self, state):
        return {"factors": state["stats"], "roots": state["roots"]} if self.expose else {}


class DeclinesAll(MatrixShampoo):
    def init(self, shape, config, dtype="float64"):
        raise NotImplementedError("this candidate supports nothing")


def _factory_declines():
    return DeclinesAll()


def _factory_good():
    return MatrixShampoo()


def test_three_outcomes_and_exit_codes():
    cfg = {"root_freq": 1}
    good = crossval.check(MatrixShampoo(), "shampoo", cfg, examples=3, seed=1)
    bad = crossval.check(MatrixShampoo("sqrt"), "shampoo", cfg, cases=None, examples=2, seed=1)
    none = crossval.check(DeclinesAll(), "shampoo", cfg, examples=2, seed=1)
    assert (good.verdict, good.exit_code, good.reason) == ("PASS", 0, ""), str(good)
    assert (bad.verdict, bad.exit_code) == ("FAIL", 1), str(bad)
    assert (none.verdict, none.exit_code) == ("NOT CHECKED", 2)
    assert none.reason.startswith("every run skipped") and "supports nothing" in none.reason
    assert "NOT CHECKED (every run skipped" in str(none)
    # a NOT CHECKED report is never a pass
    assert not none.passed and good.passed
    # the CLI's exit status is the verdict's
    assert cli_main(["check", "--candidate", "test_crossval_outcomes:_factory_good", "--algorithm", "shampoo",
                     "--examples", "1"]) == 0
    assert cli_main(["check", "--candidate", "test_crossval_outcomes:_factory_declines", "--algorithm",
                     "shampoo", "--examples", "1"]) == 2


def test_quantity_not_exposed_is_not_checked_with_reason():
    rep = crossval.check(MatrixShampoo(expose=False), "shampoo", cases=None, examples=2, seed=2)
    assert rep.verdict == "PASS", str(rep)  # the direction is compared and right
    for q in ("factors", "roots"):
        assert rep.quantities[q].verdict == "NOT CHECKED"
        assert rep.quantities[q].reason == "quantity not exposed by the candidate"
    assert rep.quantities["direction"].verdict == "PASS"
    assert "NOT CHECKED  (quantity not exposed by the candidate)" in str(rep)


class DeclinesByName(MatrixShampoo):
    def init(self, shape, config, dtype="float64"):
        raise harness.Declined("order-2 parameters only")


def test_declined_exception_is_a_skip_not_a_crash():
    """harness.Declined (what the peers' adapters raise) is a NotImplementedError: a skipped run with its message
    as the reason, never a CandidateError (FAIL)."""
    rep = crossval.check(DeclinesByName(), "shampoo", {"root_freq": 1}, examples=2, seed=1)
    assert (rep.verdict, rep.exit_code) == ("NOT CHECKED", 2), str(rep)
    assert rep.reason.startswith("every run skipped") and "order-2 parameters only" in rep.reason
    assert issubclass(harness.Declined, NotImplementedError)


def test_declined_report_carries_its_reason():
    rep = harness.CheckReport.declined("peer", "shampoo", "float64", {}, "convention not expressible: x")
    assert (rep.verdict, rep.exit_code, rep.reason) == ("NOT CHECKED", 2, "convention not expressible: x")
    assert str(rep).endswith("NOT CHECKED (convention not expressible: x)")


def test_exception_reported_at_its_step_with_the_candidates_frame():
    rep = crossval.check(MatrixShampoo(crash_at=3), "shampoo", cases=None, examples=6, seed=3)
    crashed = [r for r in rep.runs if r.divergence is not None]
    assert rep.verdict == "FAIL" and crashed
    # the crash happens at step 3 of every run with >= 3 steps; shorter runs pass
    judged_ok = [r for r in rep.runs if r.divergence is None and r.skipped is None]
    assert all(r.steps >= 3 for r in crashed) and all(r.steps < 3 for r in judged_ok)
    div = crashed[0].divergence
    line = next(i for i, t in enumerate(open(__file__, encoding="utf-8"), 1) if "# CRASH-LINE" in t)
    assert div.step == 3 and div.quantity == "exception"
    # the innermost frame that is the candidate's own: this file's line, not numpy's internals, not the harness
    assert div.frame == f"{__file__}:{line} in _roots", div.frame
    assert "LinAlgError" in div.message
    assert f"step 3: exception: LinAlgError" in str(rep) and f"test_crossval_outcomes.py:{line}" in str(rep)
    assert rep.shrunk is None  # a crash is reported as it is, not shrunk into another failure


def test_exception_in_init_is_step_zero():
    class InitCrash(MatrixShampoo):
        def init(self, shape, config, dtype="float64"):
            return {"k": 0, "stats": [np.zeros(shape[0])]}[None]  # KeyError

    rep = crossval.check(InitCrash(), "shampoo", cases=None, examples=1, seed=4)
    div = rep.first_divergence
    assert div.step == 0 and "KeyError" in div.message and "in init" in div.frame
    assert str(div).startswith("init: exception")


@pytest.mark.parametrize("fields, field", [({"beta2": 1.5}, "beta2"), ({"root_method": "qr"}, "root_method"),
                                           ({"not_a_field": 1}, "not_a_field")])
def test_refused_config_names_the_field(fields, field, capsys):
    with pytest.raises(ValueError, match=f"^config field '{field}'") as info:
        crossval.check(MatrixShampoo(), "shampoo", fields, examples=1)
    assert "golden" not in str(info.value) and "$." not in str(info.value)
    import json

    assert cli_main(["check", "--candidate", "test_crossval_outcomes:_factory_good", "--algorithm", "shampoo",
                     "--config", json.dumps(fields)]) == 2
    err = capsys.readouterr().err
    assert f"config field '{field}'" in err and "NOT CHECKED" in err


def test_golden_failure_is_shrunk_and_prints_its_gradients():
    rep = crossval.check(MatrixShampoo("sqrt"), "shampoo", cases="shipped", examples=0)
    assert rep.verdict == "FAIL" and rep.failures[0].source == "golden:shampoo/rank1_5x3"
    s = rep.shrunk
    assert s is not None and s.source == "golden:shampoo/rank1_5x3"
    # an inverse square root for a fourth root is wrong from the first root on: one step of a smaller input
    assert len(s.grads) == 1 and s.divergence.quantity == "roots"
    assert s.shape[0] * s.shape[1] < 5 * 3
    text = str(rep)
    assert "shrunk failing input (from golden:shampoo/rank1_5x3" in text and "G_1 = " in text
