"""The algorithm registry and the shape helper."""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

from krad_ref import algorithm, backend, validate


def test_shape_of_accepts_tuples_and_arrays():
    assert algorithm.shape_of((3, 4)) == (3, 4)
    assert algorithm.shape_of(np.zeros((2, 5))) == (2, 5)
    with pytest.raises(ValueError, match="shape_or_array"):
        algorithm.shape_of((3, 0))
    with pytest.raises(ValueError, match="shape_or_array"):
        algorithm.shape_of((3, 2.0))
    with pytest.raises(TypeError, match="shape_or_array"):
        algorithm.shape_of(3)


def test_unknown_id_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown id 'nope'.*kradagrad_star"):
        algorithm.get("nope")


@pytest.fixture
def scratch_registry(monkeypatch):
    """The algorithm registry as it is now, restored after the test (mutation tools rerun tests in one process:
    a toy id left behind would change what the next run sees)."""
    monkeypatch.setattr(algorithm, "_REGISTRY", dict(algorithm._REGISTRY))
    return algorithm._REGISTRY


def test_duplicate_registration_is_refused(scratch_registry):
    alg = algorithm.Algorithm("toy_for_test", object, tuple, lambda *a, **k: None, lambda *a, **k: None)
    algorithm.register(alg)
    algorithm.register(alg)  # the same record again is harmless (module re-import)
    with pytest.raises(ValueError, match="registered twice"):
        algorithm.register(alg._replace(update=lambda *a, **k: 1))
    assert scratch_registry["toy_for_test"] is alg


def test_toy_registration_did_not_leak():
    # runs after test_duplicate_registration_is_refused in file order (the ci profile does not shuffle)
    assert "toy_for_test" not in algorithm._REGISTRY


# ---------------------------------------------------------------------------------------------------------
# the float32 overflow edge: each algorithm's documented gradient-norm limit (README "Conventions worth knowing")

F32 = float(np.finfo(np.float32).max)
#: the README's table, derived there (not read from the code): the largest ||grad||_F each update accepts
LIMITS = {
    "kradagrad_star": (math.sqrt(F32 / 2), {}),       # sym(G R G^T) = (A + A^T)/2, entries <= 2 ||G||^2
    "kradagrad": (math.sqrt(F32 / 2), {}),
    "shampoo": (math.sqrt(F32), {}),                  # G G^T, entries <= ||G||_F^2
    "adagrad_full": (math.sqrt(F32), {}),             # g g^T
    "adagrad_diag": (math.sqrt(F32), {}),             # g^2
    "adam": (math.sqrt(F32), {}),                     # g^2
    "mbag_ema": (math.sqrt(F32), {}),                 # g g^T
    "mbag": (0.01 * math.sqrt(F32), {}),              # (H g)(H g)^T with H <= I / lam, lam = 0.01
    "mbag_n": (0.01 * math.sqrt(F32), {}),
    "sgd": (F32 / 1.9, {"momentum": 0.9, "nesterov": True}),  # d + mu b = 1.9 d on the first step
}


def _spike(shape, norm, dtype):
    G = np.zeros(shape, dtype=np.float64)
    G.flat[0] = norm  # one entry: the gradient for which every bound of the table is attained
    return G.astype(dtype)


#: inverse-statistic updates (L - L A L / t, Sherman-Morrison H - (H g)(H g)^T / c): near the overflow limit the
#: new factor's smallest eigenvalue ~ lambda / t is far below its rounding (errata 11), so only the state is
#: normwise accurate there; the direction (and MBAG's momentum v of directions) is precision-limited long before
#: the range is (README table)
PRECISION_LIMITED = ("kradagrad", "kradagrad_star", "mbag", "mbag_n")


def _arrays(direction, state):
    out = [("direction", direction)]
    for f in state._fields:
        v = getattr(state, f)
        out.extend((f"{f}[{i}]", a) for i, a in enumerate(v)) if isinstance(v, tuple) else out.append((f, v))
    return [(k, np.asarray(backend.to_numpy(a), dtype=np.float64)) for k, a in out
            if hasattr(a, "dtype") and a.size and np.issubdtype(np.asarray(backend.to_numpy(a)).dtype, np.floating)]


@pytest.mark.parametrize("alg_id", sorted(LIMITS))
def test_float32_gradient_just_below_the_limit_is_accepted_and_right(xp, alg_id):
    """0.999 x the documented limit: the float32 update equals the float64 update of the same gradient (which has
    no range problem at 1e19) to float32 accuracy, normwise per array; no LinAlgError, no inf."""
    limit, kw = LIMITS[alg_id]
    alg = algorithm.get(alg_id)
    cfg = alg.Config(**kw)
    shape = (4, 3)
    outs = {}
    for dt in ("float32", "float64"):
        G = xp.asarray(_spike(shape, 0.999 * limit, dt))
        outs[dt] = _arrays(*alg.update(G, alg.init(shape, cfg, dtype=getattr(xp, dt), xp=xp), cfg))
    for (name, a32), (_, a64) in zip(outs["float32"], outs["float64"]):
        if name in ("direction", "v") and alg_id in PRECISION_LIMITED:  # v: MBAG's momentum of directions
            continue
        err = np.linalg.norm(a32 - a64) / max(np.linalg.norm(a64), np.finfo(np.float64).tiny)
        # one step from the initial state with a one-entry gradient: every statistic has one nonzero eigen-
        # direction (kappa_r = 1), so each array carries a few n u of float32 rounding; 64 n u with n = 12
        assert err <= 64 * 12 * 2.0**-24, (name, err)


@pytest.mark.parametrize("alg_id", sorted(LIMITS))
def test_float32_gradient_just_above_the_limit_raises_overflow_naming_grad(xp, alg_id):
    limit, kw = LIMITS[alg_id]
    alg = algorithm.get(alg_id)
    cfg = alg.Config(**kw)
    state = alg.init((4, 3), cfg, dtype=xp.float32, xp=xp)
    G = xp.asarray(_spike((4, 3), 1.001 * limit, "float32"))
    with pytest.raises(validate.OverflowLimitError, match=r"grad: \|\|grad\|\|_F = .* above the overflow limit "
                                                          + re.escape(f"{limit:.3g}") + " .* in float32"):
        alg.update(G, state, cfg)
    assert issubclass(validate.OverflowLimitError, ValueError)  # bad input: the project's ValueError convention


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # NumPy's, before our error
@pytest.mark.parametrize("alg_id, field", [("adagrad_diag", "state.v"), ("shampoo", r"state.stats\[0\]"),
                                           ("adagrad_full", "state.H")])
def test_accumulated_overflow_names_the_state_field(alg_id, field):
    """Each gradient is below the limit, but the sum of two squares of 0.8 F passes F on step 2: the error names the
    statistic that overflowed instead of returning inf (adagrad_diag would return a zero direction from 1/inf)."""
    limit, kw = LIMITS[alg_id]
    alg = algorithm.get(alg_id)
    cfg = alg.Config(**kw)
    state = alg.init((4, 3), cfg, dtype="float32")
    G = _spike((4, 3), 0.9 * limit, "float32")
    _, state = alg.update(G, state, cfg)
    with pytest.raises(validate.OverflowLimitError, match=rf"{field}: overflow"):
        alg.update(G, state, cfg)


def test_kradagrad_no_longer_leaks_linalgerror_at_1e15():
    """Issue 12: kradagrad (alternating) in float32 at ||G|| = 1e15 leaked numpy's LinAlgError from the spectral
    t-rule's Gram N^T N (||N||^4 ~ 1e60 overflowed); norm_2 now scales by a power of two first. The factors after
    three steps match float64 normwise (the direction is precision-limited here: errata 11)."""
    alg = algorithm.get("kradagrad")
    cfg = alg.Config()
    G = np.random.default_rng(0).standard_normal((4, 3))
    G *= 1e15 / np.linalg.norm(G)
    outs = []
    for dt in (np.float32, np.float64):
        state = alg.init((4, 3), cfg, dtype=dt)
        for _ in range(3):
            _, state = alg.update(G.astype(dt), state, cfg)
        outs.append([np.asarray(F, dtype=np.float64) for F in state.factors])
    for F32, F64 in zip(*outs):
        # each factor: I minus rank-one Woodbury terms, entries O(1): 3 steps of c n u normwise rounding, 64 n u
        assert np.linalg.norm(F32 - F64) <= 64 * 12 * 2.0**-24 * np.linalg.norm(F64)


def test_eigh_failure_is_a_valueerror_naming_A_on_every_backend(xp):
    """LAPACK's non-convergence (here: an all-inf matrix) surfaces as one ValueError naming A, never as
    numpy.linalg.LinAlgError (a subclass the caller would have to know about)."""
    A = xp.asarray(np.full((3, 3), np.inf, dtype=np.float32))
    for fn in (backend.eigh, backend.eigvalsh):
        with pytest.raises(ValueError, match="A: the symmetric eigendecomposition failed") as info:
            fn(A)
        assert type(info.value) is ValueError


def test_batched_eigh_failure_is_the_same_valueerror(xp):
    """Stacks (MBAG's groups) go through backend.eigh too: one translation of a solver failure for both."""
    A = xp.asarray(np.stack([np.eye(3), np.full((3, 3), np.inf)]).astype(np.float32))
    with pytest.raises(ValueError, match="A: the symmetric eigendecomposition failed") as info:
        backend.eigh(A)
    assert type(info.value) is ValueError
