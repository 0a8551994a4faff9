"""Shampoo's conventions of the published implementations (``krad_ref.shampoo.Config``, "Conventions"): each one
against its mp twin (``proofs_check.twins``), in float64 and float32, plus the config plumbing (golden config
dicts, ``format.make_config``, ``state_io``).

Tolerance of every twin comparison: the golden vectors' model, ``crossval.tolerance.step_tolerances`` (tol =
32 n u cond k per quantity, cond read from the twin's own statistics and roots: kappa of the root's argument for
roots, the Frechet gain of the direction), evaluated on the twin's values rounded once to float64, exactly as a
golden case would carry them. A convention is only tested where it matters: every case first checks that the
convention moves the exact trajectory by far more than the tolerance, so the comparison can fail.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from krad_ref import shampoo, state_io
from krad_ref.crossval import format as gformat
from krad_ref.crossval import tolerance
from proofs_check import twins

# (convention fields, base fields shared with the default it is told apart from, shape, steps)
CASES = {
    "bias_correction": ({"bias_correction": True}, {"beta2": 0.9}, (4, 3), 4),
    "beta2_zero": ({"beta2": 0.0}, {}, (3, 4), 3),
    "beta2_zero_bias": ({"beta2": 0.0, "bias_correction": True}, {}, (3, 3), 3),
    "eps_statistic": ({"eps_placement": "statistic"}, {"beta2": 0.5, "eps": 1e-2}, (4, 3), 4),
    "eps_statistic_sum": ({"eps_placement": "statistic", "eps_mode": "relative"}, {"eps": 1e-2}, (3, 3), 3),
    "exponent_p": ({"exponent_rule": "p"}, {}, (4, 3), 3),
    "exponent_p_tensor": ({"exponent_rule": "p"}, {}, (2, 3, 2), 2),
    "phase_first": ({"root_phase": "first"}, {"root_freq": 2}, (3, 4), 4),
    "before_zero": ({"before_first_root": "zero"}, {"root_freq": 3}, (4, 3), 4),
    "before_gradient": ({"before_first_root": "gradient"}, {"root_freq": 3}, (4, 3), 4),
    "newton_return": ({"newton_tol": 1e-3, "newton_error": "max", "newton_on_fail": "return",
                       "newton_max_iter": 3}, {"root_method": "coupled_newton"}, (4, 3), 3),
    "newton_keep": ({"newton_tol": 1e-3, "newton_error": "max", "newton_on_fail": "keep",
                     "newton_max_iter": 3}, {"root_method": "coupled_newton"}, (4, 3), 3),
    "newton_scalable": ({"newton_tol": 1e-3, "newton_error": "max", "newton_on_fail": "return",
                         "eps_mode": "relative", "eps_placement": "statistic"},
                        {"root_method": "coupled_newton", "beta2": 0.9}, (4, 3), 3),
}


def _grads(shape, steps, seed):
    """Dense gradients of spectral norm in [0.3, 1] (the KrADagrad unit ball), float32-representable."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        G = rng.standard_normal(shape)
        G *= rng.uniform(0.3, 1.0) / np.linalg.norm(G.reshape(shape[0], -1), 2)
        out.append(G.astype(np.float32).astype(np.float64))
    return out


def _expected(cfg, grads):
    """The twin's trajectory rounded once to float64: the golden-case form of the expected values."""
    out = []
    for r in twins.twin_trajectory("shampoo", cfg, grads):
        out.append({"factors": tuple(twins.to_float(F) for F in r["factors"]),
                    "roots": tuple(twins.to_float(P) for P in r["roots"]),
                    "direction": np.asarray(twins.to_float(r["direction"]), dtype=np.float64)})
    return out


def _run(cfg, shape, grads, dtype):
    st = shampoo.init(shape, cfg, dtype=dtype)
    out = []
    for g in grads:
        d, st = shampoo.update(np.asarray(g, dtype=dtype), st, cfg)
        out.append(gformat.quantities("shampoo", st, d))
    return out


def _worst_ratio(expected, tols, got):
    worst = 0.0
    for e, t, g in zip(expected, tols, got):
        pairs = [(g["direction"], e["direction"], t["direction"])]
        pairs += list(zip(g["factors"], e["factors"], t["factors"]))
        pairs += list(zip(g["roots"], e["roots"], t["roots"]))
        for x, X, tol in pairs:
            if tol < 1.0:  # tol >= 1: the dtype cannot resolve it (the harness's "unresolved")
                worst = max(worst, tolerance.rel_error(x, X) / tol)
    return worst


@pytest.mark.parametrize("name", sorted(CASES))
def test_convention_matches_its_twin(name):
    fields, base, shape, steps = CASES[name]
    cfg = shampoo.Config(**base, **fields)
    grads = _grads(shape, steps, seed=len(name))
    exp = _expected(cfg, grads)
    tol64 = tolerance.step_tolerances("shampoo", cfg, shape, exp, grads, "float64")
    # the convention must matter: the default's exact trajectory is > 100 tolerances away from this one
    other = _expected(shampoo.Config(**base), grads)
    assert _worst_ratio(exp, tol64, other) > 100, f"{name}: the convention does not change the trajectory"
    for dtype in ("float64", "float32"):
        tols = tolerance.step_tolerances("shampoo", cfg, shape, exp, grads, dtype)
        ratio = _worst_ratio(exp, tols, _run(cfg, shape, grads, dtype))
        assert ratio <= 1.0, f"{name} [{dtype}]: worst err/tol = {ratio:.3g}"


def test_svd_root_matches_the_twin_and_eigh():
    """root_method="svd" has no exact counterpart of its own (SVD = eigh for PSD input): the twin's exact root is
    the reference, in both dtypes, with and without eps inside the statistic."""
    for fields in ({"root_method": "svd"}, {"root_method": "svd", "eps_placement": "statistic", "beta2": 0.9},
                   {"root_method": "svd", "eps_mode": "relative", "exponent_rule": "p"}):
        cfg = shampoo.Config(**fields)
        shape = (4, 3)
        grads = _grads(shape, 3, seed=7)
        exp = _expected(cfg, grads)
        for dtype in ("float64", "float32"):
            tols = tolerance.step_tolerances("shampoo", cfg, shape, exp, grads, dtype)
            ratio = _worst_ratio(exp, tols, _run(cfg, shape, grads, dtype))
            assert ratio <= 1.0, f"{fields} [{dtype}]: worst err/tol = {ratio:.3g}"


def test_svd_root_sees_rounding_negatives_as_positive():
    """The documented float difference: a PSD matrix with a rounding-negative eigenvalue -delta (no eps) gets
    -(delta)^{-1/e} from the SVD root, where eigh clips and (with eps = 0) refuses it as singular."""
    v = np.array([1.0, 2.0, 2.0]) / 3.0
    delta = 2e-15  # below eigh's rounding tolerance 4 n u ||S||_2 = 5.3e-15: a PSD matrix to working accuracy
    S = 4.0 * np.outer(v, v) - delta * (np.eye(3) - np.outer(v, v))  # eigenvalues 4, -delta, -delta
    S = (S + S.T) / 2
    cfg = shampoo.Config(root_method="svd", eps_placement="statistic", eps=1e-30)  # no shift at the root
    w = np.linalg.eigvalsh(shampoo.inverse_root(S, 4.0, cfg))
    # two eigenvalues -(delta')^{-1/4}, delta' = delta +- u ||S|| ~ 2e-15 +- 1e-15: below -(1e-14)^{-1/4} = -3e3
    assert np.all(w[:2] < -3e3) and w[2] > 0, w
    with pytest.raises(ValueError, match="singular"):
        shampoo.inverse_root(S, 4.0, shampoo.Config(eps=0.0))


def test_keep_returns_the_previous_root_and_return_the_iterate():
    """newton_on_fail: with 1 iteration against tol 1e-12, "keep" leaves the cached root untouched (identity at
    the first root step, the previous root later) and "return" gives the first Newton iterate, != the root."""
    rng = np.random.default_rng(3)
    S = rng.standard_normal((4, 4))
    S = S @ S.T + 0.1 * np.eye(4)
    prev = np.diag([1.0, 2.0, 3.0, 4.0])
    base = dict(root_method="coupled_newton", newton_tol=1e-12, newton_max_iter=1)
    kept = shampoo.inverse_root(S, 4.0, shampoo.Config(**base, newton_on_fail="keep"), previous=prev)
    assert np.array_equal(kept, prev)
    first = shampoo.inverse_root(S, 4.0, shampoo.Config(**base, newton_on_fail="return"))
    exact = shampoo.inverse_root(S, 4.0, shampoo.Config())
    # one step from z^{1/4} I is far from the root (the iteration needs ~10 steps at kappa ~ 1e2)
    assert np.linalg.norm(first - exact) > 1e-3 * np.linalg.norm(exact)
    with pytest.raises(RuntimeError):
        shampoo.inverse_root(S, 4.0, shampoo.Config(**base))


def test_bias_correction_counts_statistic_updates():
    """The factor is 1 / (1 - beta2^n) with n = k // update_freq (statistic updates), 1 before the first."""
    cfg = shampoo.Config(beta2=0.5, bias_correction=True, update_freq=2)
    assert shampoo.bias_correction_factor(1, cfg) == 1.0
    assert shampoo.bias_correction_factor(2, cfg) == 2.0      # 1 / (1 - 0.5)
    assert shampoo.bias_correction_factor(5, cfg) == 4.0 / 3.0  # n = 2: 1 / (1 - 0.25)
    assert shampoo.bias_correction_factor(5, shampoo.Config(beta2=0.5)) == 1.0


def test_schedule_helpers():
    first = shampoo.Config(root_freq=3, root_phase="first")
    mult = shampoo.Config(root_freq=3)
    assert [k for k in range(1, 9) if shampoo.is_root_step(k, first)] == [1, 4, 7]
    assert [k for k in range(1, 9) if shampoo.is_root_step(k, mult)] == [3, 6]
    assert shampoo.first_root_step(first) == 1 and shampoo.first_root_step(mult) == 3
    assert shampoo.exponent(3, shampoo.Config(exponent_rule="p")) == 3.0
    assert shampoo.exponent(3, shampoo.Config(exponent_rule="p", exponent_override=5)) == 5.0


def test_before_first_root_states():
    """"gradient" exposes zero roots (not computed yet) with the direction G; "zero" uses them: direction 0."""
    G = _grads((3, 2), 1, seed=1)[0]
    for mode, want_dir in (("identity", G), ("gradient", G), ("zero", 0 * G)):
        cfg = shampoo.Config(root_freq=2, before_first_root=mode)
        d, st = shampoo.update(G, shampoo.init((3, 2), cfg), cfg)
        assert np.array_equal(d, want_dir), mode
        assert all(np.array_equal(P, np.eye(P.shape[0]) * (mode == "identity")) for P in st.roots), mode


# ------------------------------------------------------------------------------------------------------------------
# config plumbing: golden dicts, make_config, state_io

ALL_CONVENTIONS = {"bias_correction": True, "beta2": 0.0, "eps_placement": "root", "exponent_rule": "p",
                   "root_phase": "first", "before_first_root": "zero", "newton_error": "max",
                   "root_method": "coupled_newton", "newton_on_fail": "keep"}


def test_config_dict_round_trip_and_defaults_are_left_out():
    cfg = shampoo.Config(**ALL_CONVENTIONS)
    d = gformat.config_fields(cfg)
    for key in ("bias_correction", "exponent_rule", "root_phase", "before_first_root", "newton_error"):
        assert d[key] == getattr(cfg, key)
    assert gformat.make_config("shampoo", d) == cfg
    # at their defaults the convention fields are absent (golden JSON of before these fields stays byte-identical)
    d0 = gformat.config_fields(shampoo.Config())
    new = {"bias_correction", "eps_placement", "exponent_rule", "root_phase", "before_first_root", "newton_error"}
    assert not new & set(d0)
    assert gformat.make_config("shampoo", d0) == shampoo.Config()


def test_golden_case_written_before_the_fields_still_loads():
    case = gformat.load_shipped(["shampoo/rank1_5x3"])[0]
    assert "bias_correction" not in case.config  # written before the conventions existed
    cfg = gformat.make_config(case)
    assert cfg == shampoo.Config(**{k: v for k, v in case.config.items()})
    assert cfg.eps_placement == "root" and cfg.before_first_root == "identity"
    with pytest.raises(gformat.GoldenFormatError, match="config"):
        gformat.make_config("shampoo", {**case.config, "bias_corection": True})  # a misspelt field is refused


def test_state_io_round_trips_the_convention_fields(tmp_path):
    cfg = shampoo.Config(**ALL_CONVENTIONS)
    st = shampoo.init((3, 2), cfg)
    _, st = shampoo.update(_grads((3, 2), 1, seed=2)[0], st, cfg)
    path = tmp_path / "state.npz"
    state_io.save_state(path, st, cfg)
    st2, cfg2 = state_io.load_state(path)
    assert cfg2 == cfg and dataclasses.asdict(cfg2) == dataclasses.asdict(cfg)
    assert all(np.array_equal(a, b) for a, b in zip(st2.stats, st.stats))
