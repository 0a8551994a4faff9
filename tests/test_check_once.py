"""Each array is checked once per update (issue 14, item 2), and the cheaper kernels give the same bits (item 3).

A guarded update verifies the gradient by its overflow guard's max|grad|, the state by ``algorithm.check_state``
and its own new arrays by ``algorithm.check_finite_result``; a state array the update allocated is sealed
read-only, so the next update does not scan it again. None of this may lose or delay an error: every corrupt
input is refused at the update that receives it, with the message it had before (tests/test_state_validation.py
drives every field of every algorithm; here the paths that the sealing adds).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from krad_ref import algorithm, backend, krad, kradagrad, linalg, shampoo, validate
from krad_ref.linalg import _common

SHAPE = (5, 3)
ALGS = ["kradagrad_star", "kradagrad", "shampoo", "adagrad_full", "adam", "mbag"]


def grads(n, shape=SHAPE, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for _ in range(n)]


def float_leaves(state):
    out = []
    for v in state:
        for a in (v if isinstance(v, tuple) else (v,)):
            if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size:
                out.append(a)
    return out


@pytest.fixture
def scans(monkeypatch):
    """The arrays handed to ``backend.all_finite`` (every finiteness scan of the checks goes through it)."""
    seen = []
    real = backend.all_finite

    def counting(x, xp):
        seen.append(x)
        return real(x, xp)

    monkeypatch.setattr(backend, "all_finite", counting)
    return seen


# ---------------------------------------------------------------------------------------------------------
# once per update

@pytest.mark.parametrize("name", ALGS)
def test_each_array_is_scanned_at_most_once_per_update(name, scans):
    a = algorithm.get(name)
    cfg = a.Config()
    state = a.init(SHAPE, cfg)
    for g in grads(4):
        scans.clear()
        direction, new = a.update(g, state, cfg)
        ids = [id(x) for x in scans]
        assert len(ids) == len(set(ids)), "an array was scanned twice in one update"
        assert not any(x is g for x in scans), "the guard's max|grad| already verified the gradient"
        state = new


@pytest.mark.parametrize("name", ALGS)
def test_a_state_made_by_update_is_not_scanned_again(name, scans):
    a = algorithm.get(name)
    cfg = a.Config()
    state = start = a.init(SHAPE, cfg)
    *gs, last = grads(4)
    for g in gs:  # KrADagrad updates one factor per step: after 3 steps every array is the updates' own
        _, state = a.update(g, state, cfg)
    made = [x for x in float_leaves(state) if not any(x is y for y in float_leaves(start))]
    assert made and all(not x.flags.writeable for x in made)
    scans.clear()
    a.update(last, state, cfg)
    assert not any(x is s for x in scans for s in made)


def test_kradagrad_star_scans_exactly_its_new_arrays(scans):
    """A matrix step of KrADagrad* makes 2 factors, 2 roots and the direction: 5 scans, the old state none."""
    a = algorithm.get("kradagrad_star")
    cfg = a.Config()
    _, state = a.update(grads(1)[0], a.init(SHAPE, cfg), cfg)
    scans.clear()
    direction, new = a.update(grads(1, seed=1)[0], state, cfg)
    assert {id(x) for x in scans} == {id(direction), *map(id, new.factors), *map(id, new.roots)}


# ---------------------------------------------------------------------------------------------------------
# nothing lost: the errors of a corrupt input, at the update that receives it, with their messages

@pytest.mark.parametrize("name", ["kradagrad_star", "shampoo"])
def test_a_sealed_array_written_after_unsealing_is_refused(name):
    a = algorithm.get(name)
    cfg = a.Config()
    g1, g2 = grads(2)
    _, state = a.update(g1, a.init(SHAPE, cfg), cfg)
    field = "factors" if name == "kradagrad_star" else "stats"
    target = getattr(state, field)[1]
    with pytest.raises(ValueError, match="read-only"):
        target[0, 0] = np.nan  # sealed: NumPy refuses the write
    target.flags.writeable = True  # a deliberate unseal: the array is scanned again
    target[0, 0] = np.nan
    with pytest.raises(ValueError, match=re.escape(f"state.{field}[1]: expected finite values, got 1 NaN or inf "
                                                   f"entry")):
        a.update(g2, state, cfg)


def test_a_nan_gradient_keeps_its_message():
    a = algorithm.get("kradagrad_star")
    cfg = a.Config()
    g = grads(1)[0]
    g[1, 2] = np.nan
    g[0, 0] = np.inf
    with pytest.raises(ValueError, match=r"^grad: expected finite values, got 2 NaN or inf entries$"):
        a.update(g, a.init(SHAPE, cfg), cfg)


def test_a_nan_gradient_with_the_wrong_shape_names_the_shape_first():
    """The guard learns that grad is not finite but raises nothing: the update's own checks keep their order."""
    a = algorithm.get("shampoo")
    cfg = a.Config()
    g = np.full((3, 5), np.nan)
    with pytest.raises(ValueError, match=r"^grad: shape \(3, 5\) does not match"):
        a.update(g, a.init(SHAPE, cfg), cfg)


def test_overflow_of_a_new_statistic_is_still_refused_in_its_step():
    """float32 Shampoo statistics pass F = 3.4e38 after a few steps of ||G||_F ~ 1.2e19 (below the limit
    sqrt(F) = 1.8e19 of one step's Gram): the step that overflows raises, naming the statistic."""
    cfg = shampoo.Config()
    state = shampoo.init((2, 2), cfg, dtype=np.float32)
    g = np.full((2, 2), 6e18, dtype=np.float32)  # ||G||_F = 1.2e19; each G G^T entry 7.2e37; F / 7.2e37 = 4.7
    with pytest.raises(validate.OverflowLimitError, match=r"^state\.stats\[0\]: overflow"), \
            np.errstate(over="ignore"):  # the overflow itself is what the update refuses
        for _ in range(6):
            _, state = shampoo.update(g, state, cfg)


def test_a_non_symmetric_statistic_keeps_its_message():
    cfg = shampoo.Config()
    _, state = shampoo.update(grads(1)[0], shampoo.init(SHAPE, cfg), cfg)
    S = np.array(state.stats[0])
    S[0, 1] += 1.0  # off by far more than 8 n u max|S| (~1e-14 here)
    bad = state._replace(stats=(S, state.stats[1]))
    with pytest.raises(ValueError, match=r"expected a symmetric matrix, but max\|S - S\^T\| = 1 > tol"):
        shampoo.update(grads(1, seed=1)[0], bad, cfg)


def test_inverse_root_outside_an_update_still_checks_finiteness():
    S = np.eye(3)
    S[2, 2] = np.inf
    with pytest.raises(ValueError, match=r"^S: expected finite values, got 1 NaN or inf entry$"):
        shampoo.inverse_root(S, 4, shampoo.Config())


# ---------------------------------------------------------------------------------------------------------
# sealing touches only what the update allocated

def test_inputs_and_the_direction_stay_writeable():
    a = algorithm.get("shampoo")
    cfg = a.Config(update_freq=2)  # step 1 updates no statistic: the input stats pass through unchanged
    state = a.init(SHAPE, cfg)
    g = grads(1)[0]
    direction, new = a.update(g, state, cfg)
    assert new.stats[0] is state.stats[0]
    assert all(x.flags.writeable for x in float_leaves(state))  # the caller's arrays: flags untouched
    assert g.flags.writeable and direction.flags.writeable
    direction *= 2.0  # the caller may scale its direction in place


def test_sealed_and_unsealed_updates_give_the_same_bits(monkeypatch):
    """Sealing changes a flag, never a value: a run with it switched off gives identical directions and states."""
    def run():
        out = []
        for name in ALGS:
            a = algorithm.get(name)
            cfg = a.Config()
            state = a.init(SHAPE, cfg, dtype=np.float32)
            for g in grads(3, dtype=np.float32):
                d, state = a.update(g, state, cfg)
                out.append(d.copy())
                out.extend(x.copy() for x in float_leaves(state))
        return out

    sealed = run()
    monkeypatch.setattr(algorithm, "_seal", lambda *args: None)
    plain = run()
    assert len(sealed) == len(plain)
    for x, y in zip(sealed, plain):
        assert x.dtype == y.dtype and x.tobytes() == y.tobytes()


# ---------------------------------------------------------------------------------------------------------
# cheaper kernels, the same bits

def _awkward(n, dtype, seed):
    """Entries spanning subnormals, large values near F/2 and signed zeros: where a rewritten sum could differ."""
    info = np.finfo(dtype)
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n)).astype(dtype)
    A[0, 1], A[1, 0] = info.smallest_subnormal * 3, -info.smallest_subnormal
    A[2, 3], A[3, 2] = info.max / 1.5, info.max / 1.7
    A[4, 4] = -0.0
    return A


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_symmetric_parts_are_the_old_formulas_bit_for_bit(dtype):
    """Orders on both sides of backend.TRANSPOSE_PAD_MIN_ORDER (384), where float32 reads A^T from a padded copy;
    the layout (strides) must match too, since a GEMM on the result may round differently on another layout."""
    xp = backend.get_namespace("numpy")
    for seed, n in enumerate((5, 33, 130, 384, 512)):
        A = _awkward(n, dtype, seed)
        old_linalg = A / 2 + np.swapaxes(A, -1, -2) / 2
        new_linalg = _common._sym(A, xp)
        assert new_linalg.tobytes() == old_linalg.tobytes() and new_linalg.strides == old_linalg.strides
        with np.errstate(over="ignore"):
            old_krad = (A + np.swapaxes(A, -1, -2)) / 2
            new_krad = krad._sym(A, xp)
        assert new_krad.tobytes() == old_krad.tobytes() and new_krad.strides == old_krad.strides


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vector_norm_is_numpys_own_bit_for_bit(dtype):
    xp = backend.get_namespace("numpy")
    rng = np.random.default_rng(3)
    for shape in [(1,), (7, 5), (300, 301), (4, 5, 6)]:
        x = (rng.standard_normal(shape) * 1e3).astype(dtype)
        for v in (x, x.T, x[::2]):
            want = np.linalg.vector_norm(v)
            got = backend.vector_norm(v, xp)
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes()


def test_exactly_symmetric_shortcut_agrees_with_the_tolerance_test():
    """validate.symmetric settles an exactly symmetric matrix by one comparison; a matrix symmetric only within
    the tolerance 8 n u max|A| still passes, and one outside it keeps its message."""
    A = np.array([[2.0, 1.0], [1.0, 3.0]])
    validate.symmetric(A, "A")
    near = A.copy()
    near[0, 1] += 2.0 ** -52  # max|A - A^T| = 2.2e-16 < tol = 8 * 2 * 2^-53 * 3 = 5.3e-15
    validate.symmetric(near, "A")
    far = A.copy()
    far[0, 1] += 1e-3
    with pytest.raises(ValueError, match=r"^A: expected a symmetric matrix, but max\|A - A\^T\| = 0\.001 > tol = "
                                         r"5\.33e-15$"):
        validate.symmetric(far, "A")


def test_psd_power_kernel_matches_the_checked_function():
    rng = np.random.default_rng(4)
    B = rng.standard_normal((6, 6))
    A = B @ B.T  # exactly symmetric (?syrk)
    xp = backend.get_namespace("numpy")
    for p in (0.25, -0.5, 1.0):
        assert linalg._psd_power(A, p, xp).tobytes() == linalg.psd_power(A, p, check=False).tobytes()
    with pytest.raises(ValueError, match="singular for p = -0.5"):
        linalg._psd_power(np.zeros((3, 3)), -0.5, xp)


def test_kradagrad_grad_limit_reads_the_cached_resolved_config():
    cfg = kradagrad.KradagradStarConfig(variant="reference-code")
    assert kradagrad._resolved(cfg) is kradagrad._resolved(cfg)
    g = np.ones((2, 2), dtype=np.float32)
    # reference-code: L_0 = I / 1e-12, s = 1e12, limit (F / 2 / s^2)^(1/2) = 1.3e7 in float32 (the README's table)
    limit = kradagrad._grad_limit(cfg, g, backend.namespace(g))
    assert limit == pytest.approx((float(np.finfo(np.float32).max) * 0.5 / 1e24) ** 0.5, rel=1e-15, abs=0)


def test_an_indefinite_factor_keeps_its_message_through_the_root_kernel():
    """KrADagrad*'s roots call psd_power's kernel without re-validating options; a factor that is not PSD (here
    -I from a hand-made state: check_state reads shapes, dtypes and finiteness, not definiteness) is still refused
    with the message of psd_power inside the update's own."""
    a = algorithm.get("kradagrad_star")
    cfg = a.Config()
    state = a.init(SHAPE, cfg)
    state = state._replace(factors=(-np.eye(SHAPE[0]), state.factors[1]))
    with pytest.raises(ValueError, match=r"^factor of mode 0 is no longer positive semi-definite \(A: expected a "
                                         r"positive semi-definite matrix, but lambda_min = -1\.\d+ < -tol = "):
        a.update(grads(1)[0], state, cfg)
