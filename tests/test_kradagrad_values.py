"""Value and message tests for krad_ref.kradagrad that close mutation-testing gaps (issue 13).

Exact hand values where the inputs make them exact; otherwise the float32 tolerance of a root (a few u32) or
bit-exact equality where the code path performs no rounding at all.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from krad_ref import kradagrad as K

U32 = float(np.finfo(np.float32).eps)


def _root(L, exponent, prev=None, *, method="eigh", root_dtype=None, shift=0.0, clamp=False, max_iter=100, mode=0):
    prev = np.eye(L.shape[0], dtype=L.dtype) if prev is None else prev
    return K._root(L, exponent, prev, method=method, root_dtype=root_dtype, shift=shift, clamp=clamp,
                   max_iter=max_iter, mode=mode, xp=np)


# --- the root step (_root) --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype,root_dtype", [(np.float64, None), (np.float64, "float32"),
                                              (np.float32, "float64")])
def test_root_exponent_one_returns_the_statistic_itself(dtype, root_dtype):
    # exponent 1 is the code's identity path: sym(L) of a symmetric L is L bit for bit (no shift, no eigh), and
    # the entries are exact in float32 too, so a root_dtype round trip keeps them; the result has L's dtype.
    L = np.array([[2.0, 1.0], [1.0, 3.0]], dtype=dtype)
    X = _root(L, 1.0, root_dtype=root_dtype, shift=0.5)
    assert X.dtype == dtype
    assert np.array_equal(X, L)


@pytest.mark.parametrize("method,clamp", [("eigh", False), ("eigh", True), ("iterative", False)])
def test_root_dtype_float32_computes_in_float32(method, clamp):
    # L float64, root_dtype float32: the root of diag(2, 3) + 0.5 I is computed in float32 and cast back, so
    # every entry is a float32 number (sqrt(2.5) is not: a float64 computation would show) within a few u32
    # of the exact sqrt (eigh of a diagonal matrix, one power or Newton's iteration: <= 4 u32 relative).
    L = np.diag([2.0, 3.0])
    X = _root(L, 0.5, method=method, clamp=clamp, root_dtype="float32", shift=0.5)
    assert X.dtype == np.float64
    assert np.array_equal(X, X.astype(np.float32).astype(np.float64))
    want = np.diag([math.sqrt(2.5), math.sqrt(3.5)])
    assert np.max(np.abs(X - want)) <= 4 * U32 * math.sqrt(3.5)


def test_root_eigh_accepts_any_exponent():
    # eigh takes any power: diag(4, 9)^0.3 by hand, float64 eigh of a diagonal + one pow: <= 4 u64 relative
    X = _root(np.diag([4.0, 9.0]), 0.3)
    assert X == pytest.approx(np.diag([4.0**0.3, 9.0**0.3]), rel=4 * np.finfo(np.float64).eps, abs=0)


def test_root_iterative_refuses_a_non_unit_fraction_naming_the_mode():
    with pytest.raises(ValueError, match=r"^factor of mode 2 is no longer positive semi-definite \(exponent: "
                                         r"root_method='iterative' needs exponent = 1/q"):
        _root(np.diag([4.0, 9.0]), 0.3, method="iterative", mode=2)


def test_root_refuses_an_indefinite_factor_naming_the_mode():
    with pytest.raises(ValueError, match=r"^factor of mode 1 is no longer positive semi-definite .*errata 11"):
        _root(np.diag([4.0, -1.0]), 0.5, mode=1)


# --- exponent checks -------------------------------------------------------------------------------------

def test_iterative_exponent_one_is_q_one():
    # q = 1 (exponent 1) is a valid integer root for the iteration
    assert K._check_iterative_exponent(1.0) == 1
    assert K.KradagradConfig(root_method="iterative", exponent=1.0).exponent == 1.0


def test_iterative_exponent_message_names_the_argument():
    with pytest.raises(ValueError, match=r"^exponent: root_method='iterative' needs exponent = 1/q"):
        K._check_iterative_exponent(0.3)


def test_star_init_eigh_accepts_a_non_unit_fraction():
    # only root_method="iterative" needs 1/q; eigh takes exponent 0.3 (the init factors are I)
    st = K.star_init((2, 3), K.KradagradStarConfig(exponent=0.3))
    assert [np.array_equal(F, np.eye(d)) for F, d in zip(st.factors, (2, 3))] == [True, True]


# --- config validation: messages name the argument -------------------------------------------------------

BAD_FIELDS = [
    ("variant", "nope"), ("t_rule", "nope"), ("init_scale", 0.0), ("init_scale", -1.0), ("matrix_eps", 0.0),
    ("beta2", 0.0), ("update_freq", 0), ("root_freq", 0), ("root_method", "nope"), ("root_dtype", "int8"),
    ("root_shift", -1.0), ("root_max_iter", 0), ("exponent", 0.0), ("damping", -1.0),
    ("start_preconditioning_step", -1),
]


@pytest.mark.parametrize("Config", [K.KradagradConfig, K.KradagradStarConfig])
@pytest.mark.parametrize("field,value", BAD_FIELDS)
def test_config_refuses_bad_field_naming_it(Config, field, value):
    with pytest.raises(ValueError, match=rf"^{field}: expected"):
        Config(**{field: value})


def test_alt_config_init_scale_is_required():
    # KradagradConfig's init_scale has no variant default: None is refused by name
    with pytest.raises(TypeError, match=r"^init_scale: expected a real number, got NoneType$"):
        K.KradagradConfig(init_scale=None)


def test_star_config_alpha_and_schedule_messages():
    with pytest.raises(ValueError, match=r"^alpha: expected a value > 0"):
        K.KradagradStarConfig(alpha=0.0)
    with pytest.raises(ValueError, match=r"^schedule: expected one of"):
        K.KradagradConfig(schedule="nope")


def test_star_config_start_step_zero_is_allowed():
    assert K.KradagradStarConfig(start_preconditioning_step=0).start_preconditioning_step == 0


def test_damping_message_states_the_product():
    # 0.5 * 4 = 2 >= 1: the message shows the product the rule tests (errata 13)
    with pytest.raises(ValueError, match=r"^damping: .* = 0\.5 \* 4 = 2 >= 1 "):
        K.KradagradConfig(damping=0.5, init_scale=4.0)


@pytest.mark.parametrize("Config", [K.KradagradConfig, K.KradagradStarConfig])
def test_resolved_keeps_explicit_root_shift(Config):
    assert Config(variant="reference-code", root_shift=0.25).resolved().root_shift == 0.25


def test_resolved_keeps_explicit_schedule_and_start():
    r = K.KradagradConfig(variant="reference-code", schedule="alternate", start_preconditioning_step=3).resolved()
    assert (r.schedule, r.start_preconditioning_step) == ("alternate", 3)


# --- alternating_mode ---------------------------------------------------------------------------------------

def test_alternating_mode_messages():
    with pytest.raises(ValueError, match=r"^shape: a 0-d parameter has no factors to update$"):
        K.alternating_mode(0, ())
    with pytest.raises(ValueError, match=r"^step: expected an integer >= 0"):
        K.alternating_mode(-1, (2, 3))
    with pytest.raises(ValueError, match=r"^schedule: expected one of"):
        K.alternating_mode(0, (2, 3), "nope")
    with pytest.raises(ValueError, match=r"^update_freq: expected an integer >= 1"):
        K.alternating_mode(0, (2, 3), "alternate", 0)


# --- the overflow limit -----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape,init_scale,s2", [((2, 3), None, 1.0), ((2, 3, 2), 4.0, 16.0), ((3,), 4.0, 4.0)])
def test_grad_limit_value(shape, init_scale, s2):
    # sqrt(0.5 F / s^min(p, 2)), s = max(1, init_scale): one sqrt and two scalings, <= 2 u64 relative
    cfg = K.KradagradStarConfig(init_scale=init_scale)
    want = math.sqrt(0.5 * float(np.finfo(np.float64).max) / s2)
    assert K._grad_limit(cfg, np.zeros(shape), np) == pytest.approx(want, rel=2 * np.finfo(np.float64).eps, abs=0)


# --- update input checks ---------------------------------------------------------------------------------

def _states():
    return [(K.star_update, K.star_init, K.KradagradStarConfig()), (K.alt_update, K.alt_init, K.KradagradConfig())]


@pytest.mark.parametrize("update,init,cfg", _states())
def test_update_type_errors_name_the_given_type(update, init, cfg):
    st = init((2, 3), cfg)
    with pytest.raises(TypeError, match=r"^config: expected .* got str$"):
        update(np.zeros((2, 3)), st, "x")
    with pytest.raises(TypeError, match=r"^state: expected .* got tuple$"):
        update(np.zeros((2, 3)), tuple(st), cfg)
    with pytest.raises(TypeError, match=r"^config: expected .* got str$"):
        init((2, 3), "x")


@pytest.mark.parametrize("update,init,cfg", _states())
def test_update_names_the_factor_that_disagrees(update, init, cfg):
    st = init((2, 3), cfg)
    with pytest.raises(ValueError, match=r"\(from state\.factors\[1\]\)"):
        update(np.ones((2, 4)), st, cfg)
    with pytest.raises(ValueError, match=r"\(from state\.factors\)"):
        update(np.ones((2, 3, 2)), st, cfg)
    with pytest.raises(TypeError, match=r"\(from state\.factors\[0\]\)"):
        update(np.ones((2, 3), dtype=np.float32), st, cfg)


@pytest.mark.parametrize("update,init,cfg", _states())
def test_update_refuses_malformed_state_tuples(update, init, cfg):
    st = init((2, 3), cfg)
    for bad in (st._replace(roots=list(st.roots)), st._replace(factors=list(st.factors))):
        with pytest.raises(ValueError, match=r"^state: expected tuples of factors and roots of one length, got 2 "
                                             r"and 2$"):
            update(np.ones((2, 3)), bad, cfg)
    with pytest.raises(ValueError, match=r"state\.roots"):
        update(np.ones((2, 3)), st._replace(roots=(np.eye(3), np.eye(3))), cfg)


def test_alt_update_checks_pending():
    cfg = K.KradagradConfig()
    st = K.alt_init((2, 3), cfg)
    with pytest.raises(ValueError, match=r"state\.pending"):
        K.alt_update(np.ones((2, 3)), st._replace(pending=np.zeros((3,), dtype=bool)), cfg)


@pytest.mark.parametrize("update,init,cfg", _states())
def test_update_refuses_a_non_array_gradient(update, init, cfg):
    # the factor-naming step reads grad.shape / grad.ndim with defaults: a list must still reach the array check
    with pytest.raises(TypeError, match=r"^grad: expected an array, got list$"):
        update([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], init((2, 3), cfg), cfg)
