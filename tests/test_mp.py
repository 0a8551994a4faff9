"""proofs_check.mp: exact conversion, the precision policy, and each ground-truth function against an
independent route (closed forms, mpmath.eigsy, integer arithmetic). Tolerances are stated at each assert."""
from __future__ import annotations

import dataclasses
import math
import re
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from proofs_check import mp
from proofs_check import strategies as S

# Each example runs mp linear algebra at 50 digits: scale the profile's example count down (conftest).
MP = settings(max_examples=max(8, settings().max_examples // 2), deadline=None)

DPS = mp.DEFAULT_DPS
EPS45 = mpmath.mpf(10) ** -45  # "to 1e-45": 5 digits of slack at 50 digits for n <= 6 and short chains


def _max_abs(M) -> mpmath.mpf:
    return max(abs(M[i, j]) for i in range(M.rows) for j in range(M.cols))


def _rel_max(X, Y) -> mpmath.mpf:
    """max|X - Y| / max|Y| in mp (both mp matrices), at the working precision."""
    with mp.workdps(None):
        d = _max_abs(X - Y)
        s = _max_abs(Y)
        return d / s if s else d


# ----------------------------------------------------------------------------------------------------------------
# precision policy
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fn",
    [
        lambda: mp.mp_eigsy(np.eye(2), dps=39),
        lambda: mp.loewner_margin(np.eye(2), np.eye(2), dps=30),
        lambda: mp.mp_psd_power(np.eye(2), 0.5, dps=15),
        lambda: mp.mp_call(lambda: 1, dps=20),
        lambda: mp.mp_tolerance(39),
        lambda: mp.mp_lambda_min(np.eye(2), dps=10),
    ],
)
def test_dps_below_40_raises(fn):
    with pytest.raises(ValueError, match="at least 40"):
        fn()


def test_resolve_dps_and_global_precision_restored():
    before = mpmath.mp.dps
    assert mp.resolve_dps(None) == max(mp.DEFAULT_DPS, before)
    assert mp.resolve_dps(60) == 60
    with pytest.raises(TypeError):
        mp.resolve_dps(50.0)
    assert mp.mp_call(lambda: mpmath.mp.dps, dps=70) == 70
    with mp.workdps(80):
        assert mp.mp_call(lambda: mpmath.mp.dps) == 80  # dps=None follows a caller that works higher
    assert mpmath.mp.dps == before  # never changed for good


# ----------------------------------------------------------------------------------------------------------------
# conversion
# ----------------------------------------------------------------------------------------------------------------
_any_float64 = st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True, width=64)


@settings(deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=2, max_side=5), elements=_any_float64))
def test_to_mp_from_mp_round_trip_is_bit_exact(x):
    x = x + 0.0  # -0.0 -> +0.0: mpf has no signed zero (the one value that cannot round-trip bit for bit)
    back = mp.from_mp(mp.to_mp(x), shape=x.shape)
    assert back.dtype == np.float64
    assert np.array_equal(back.view(np.uint64), x.view(np.uint64))


@settings(deadline=None)
@given(hnp.arrays(np.float32, (3, 2), elements=st.floats(allow_nan=False, allow_infinity=False, width=32)))
def test_float32_round_trip_is_bit_exact(x):
    x = x + np.float32(0.0)
    back = mp.from_mp(mp.to_mp(x), "float32")
    assert back.dtype == np.float32 and np.array_equal(back.view(np.uint32), x.view(np.uint32))


def test_to_mpf_is_exact_at_any_precision():
    v = 0.1  # 3602879701896397 / 2^55
    with mpmath.workdps(5):  # even at low precision: the conversion itself never rounds
        x = mp.to_mpf(v)
    assert x.man_exp == (3602879701896397, -55)
    assert mp.to_mpf(2**80 + 1).man_exp == (2**80 + 1, 0)
    assert mp.to_mpf(np.float32(0.1)).man_exp == (13421773, -27)
    assert mp.to_mpf(Fraction(3, 8)) == mpmath.mpf(0.375)
    with pytest.raises(ValueError):
        mp.to_mpf(float("nan"))
    with pytest.raises(TypeError):
        mp.to_mpf(1j)


def test_from_mp_rounds_once_to_nearest_even():
    with mp.workdps(None):
        one = mpmath.mpf(1)
        # just above the float64 midpoint -> up; exactly the midpoint -> even (down)
        assert mp.from_mp(one + mpmath.mpf(2) ** -53 + mpmath.mpf(2) ** -80)[()] == 1 + 2.0**-52
        assert mp.from_mp(one + mpmath.mpf(2) ** -53)[()] == 1.0
        # float32 directly: via float64 this would round twice (to 1 + 2^-24, then tie -> 1.0)
        v = one + mpmath.mpf(2) ** -24 + mpmath.mpf(2) ** -60
        assert mp.from_mp(v, "float32")[()] == np.float32(1 + 2.0**-23)
        # gradual underflow and overflow
        assert mp.from_mp(mpmath.mpf(2) ** -1075)[()] == 0.0  # tie between 0 and 2^-1074: even is 0
        assert mp.from_mp(3 * mpmath.mpf(2) ** -1076)[()] == 2.0**-1074
        assert mp.from_mp(mpmath.mpf(2) ** 1024)[()] == math.inf
        assert mp.from_mp(-mpmath.mpf(2) ** 128, "float32")[()] == -np.inf


def test_to_mp_accepts_other_backends_and_columns():
    xp = pytest.importorskip("array_api_strict")
    a = xp.asarray([[1.5, -2.0], [0.25, 3.0]], dtype=xp.float64)
    M = mp.to_mp(a)
    assert (M.rows, M.cols) == (2, 2) and M[1, 0] == mpmath.mpf(0.25)
    v = mp.to_mp(np.array([1.0, 2.0, 3.0]))
    assert (v.rows, v.cols) == (3, 1)
    assert mp.to_mp(2.5).rows == 1
    with pytest.raises(TypeError):
        mp.to_mp(np.array([1 + 1j]))
    with pytest.raises(ValueError):
        mp.to_mp(np.array([[np.inf]]))


# ----------------------------------------------------------------------------------------------------------------
# kron / vec
# ----------------------------------------------------------------------------------------------------------------
@MP
@given(st.data())
def test_vec_LGR_equals_kron_RT_L_vec_G(data):
    m, n = data.draw(S.shapes(max_dim=4), label="(m, n)")
    L = data.draw(S.spd_matrices(m), label="L")
    R = data.draw(S.spd_matrices(n), label="R")
    G = data.draw(S.gradients(m, n), label="G")
    with mp.workdps(None):
        lhs = mp.mp_vec(mp.to_mp(L) * mp.to_mp(G) * mp.to_mp(R))
        rhs = mp.mp_kron(mp.to_mp(R).T, L) * mp.mp_vec(G)
        # both sides are n*m-term sums of exact products, each rounded at 50 digits: error ~ 2 m n 1e-50
        assert _max_abs(lhs - rhs) <= EPS45 * max(_max_abs(lhs), mpmath.mpf(1) / 2**60)


def test_kron_ordering_and_vec_are_column_major():
    A = np.array([[1.0, 2.0], [3.0, 4.0]])
    B = np.array([[0.0, 5.0, 1.0]])
    assert np.array_equal(mp.from_mp(mp.mp_kron(A, B)), np.kron(A, B))  # block (i, j) = a_ij B, exact
    X = np.arange(6.0).reshape(2, 3)
    assert np.array_equal(mp.from_mp(mp.mp_vec(X), shape=(6,)), X.T.reshape(-1))
    assert np.array_equal(mp.from_mp(mp.mp_unvec(mp.mp_vec(X), 2, 3)), X)


def test_trace_and_norms():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4, 3))
    S_ = X @ X.T - np.eye(4)
    assert abs(float(mp.mp_trace(S_)) - np.trace(S_)) <= 8 * 2.0**-53 * np.abs(S_).sum()
    assert abs(float(mp.mp_norm_fro(X)) / np.linalg.norm(X) - 1) <= 4e-16  # float64 norm: relative ~n u
    assert abs(float(mp.mp_norm_2(X)) / np.linalg.norm(X, 2) - 1) <= 1e-14  # LAPACK SVD: relative ~p(n) u
    assert abs(float(mp.mp_norm_2(S_)) / np.linalg.norm(S_, 2) - 1) <= 1e-14


# ----------------------------------------------------------------------------------------------------------------
# eigenproblems and the fast lambda_min
# ----------------------------------------------------------------------------------------------------------------
def test_eigsy_identity_residuals():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((5, 5))
    A = X + X.T
    w, Q = mp.mp_eigsy(A)
    assert all(a <= b for a, b in zip(w, w[1:]))
    with mp.workdps(None):
        Am = mp.to_mp(A)
        # M1: Q^T A Q = diag(w), Q^T Q = I, to O(n 10^-dps ||A||)
        assert _max_abs(Q.T * Am * Q - mpmath.diag(w)) <= EPS45 * _max_abs(Am)
        assert _max_abs(Q.T * Q - mpmath.eye(5)) <= EPS45
    assert max(abs(a - b) for a, b in zip(mp.mp_eigvalsh(A), w)) <= EPS45 * max(abs(w[0]), abs(w[-1]))
    with pytest.raises(ValueError, match="symmetric"):
        mp.mp_eigsy(np.array([[1.0, 2.0], [0.0, 1.0]]))


def _eigsy_lambda_min_ref(A, B=None, dps=90):
    with mpmath.workdps(dps):
        M = mp.to_mp(A) if B is None else mp.to_mp(A) - mp.to_mp(B)
        M = (M + M.T) / 2
        return min(mpmath.eigsy(M, eigvals_only=True)), _max_abs(M)


@MP
@given(st.data())
def test_loewner_margin_matches_eigsy(data):
    n = data.draw(S.dims(1, 8), label="n")
    A = data.draw(S.psd_matrices(n), label="A")
    B = data.draw(S.psd_matrices(n), label="B")
    got = mp.loewner_margin(A, B)
    want, scale = _eigsy_lambda_min_ref(A, B)
    # contract: |error| <= 4 * 2^-prec * max|M_ij| (prec = 169 bits at 50 digits): 4 * 1.3e-51
    assert abs(got - want) <= 4 * mpmath.mpf(2) ** -166 * scale


@pytest.mark.parametrize("n", [2, 5, 12])
@pytest.mark.parametrize(
    "case", ["identity", "zero_tail", "cluster_1e-20", "pair_1e-40", "graded", "tiny_scale", "negative_definite"]
)
def test_lambda_min_hard_spectra(case, n):
    """Clusters, exact multiplicities, grading and extreme scales: the fast path (block inverse iteration +
    Cholesky certificate) or its eigsy fallback must agree with a 90-digit eigsy."""
    rng = np.random.default_rng(n)
    with mpmath.workdps(90):
        Q = mpmath.matrix(np.linalg.qr(rng.standard_normal((n, n)))[0].tolist())
        one, ten = mpmath.mpf(1), mpmath.mpf(10)
        d = {
            "identity": [one] * n,
            "zero_tail": [mpmath.mpf(0)] * (n // 2) + [one + k for k in range(n - n // 2)],
            "cluster_1e-20": [one + k * ten**-20 for k in range(n)],
            "pair_1e-40": [-one, -one + ten**-40] + [mpmath.mpf(k) for k in range(n - 2)],
            "graded": [ten ** (-40 * k / (n - 1)) for k in range(n)],
            "tiny_scale": [ten**-300 * (k + 1) for k in range(n)],
            "negative_definite": [-(k + one) for k in range(n)],
        }[case]
        M = Q * mpmath.diag(d) * Q.T
        want = min(mpmath.eigsy(M, eigvals_only=True))
        scale = _max_abs(M)
    info: dict = {}
    with mp.workdps(None):
        got = mp._lambda_min_rows(mp._sym_rows(mp._rows(M)), info=info)
    assert abs(got - want) <= 8 * mpmath.mpf(2) ** -166 * scale, info


def test_lambda_min_fast_path_is_taken_on_generic_input():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((24, 24))
    info: dict = {}
    with mp.workdps(None):
        mp._lambda_min_rows(mp._sym_rows(mp._rows(X + X.T)), info=info)
    assert info["path"].startswith("seeded"), info
    A = X @ X.T
    neg_top = _eigsy_lambda_min_ref(-A)[0]
    hi, lo, lo_eigsy = mp.mp_lambda_max(A), mp.mp_lambda_min(A), mp.mp_lambda_min(A, method="eigsy")
    with mp.workdps(None):  # arithmetic on 50-digit results must run at 50 digits (even unary minus)
        top = -neg_top
        assert abs(hi - top) <= EPS45 * top
        assert abs(lo_eigsy - lo) <= EPS45 * top  # absolute accuracy ~ eps ||A||


def test_relative_loewner_margin_scale():
    B = np.diag([4.0, 1.0])
    A = np.diag([4.0, 2.0])
    assert mp.loewner_margin(A, B) == 0  # diag(0, 1): exact
    assert mp.relative_loewner_margin(B, A) == pytest.approx(-0.25, rel=1e-15)  # -1 / max(||A||, ||B||) = -1/4
    assert mp.relative_loewner_margin(np.zeros((2, 2)), np.zeros((2, 2))) == 0


# ----------------------------------------------------------------------------------------------------------------
# matrix functions
# ----------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [Fraction(1, 2), Fraction(-1, 2), Fraction(-1, 4), Fraction(1, 3), 2, -1, 0.75])
def test_psd_power_closed_forms(p):
    d = [3.0, 0.5, 2.0**-20]
    with mp.workdps(None):
        pm = mpmath.mpf(p.numerator) / p.denominator if isinstance(p, Fraction) else mp.to_mpf(p)
        got = mp.mp_psd_power(np.diag(d), p)
        assert _rel_max(got, mpmath.diag([mpmath.mpf(x) ** pm for x in d])) <= EPS45  # diag: entrywise power
        # 2x2 rotation R(theta) diag(a, b) R^T, theta = 0.3 (cos/sin at 50 digits; the input is that mp matrix)
        c, s = mpmath.cos(mpmath.mpf("0.3")), mpmath.sin(mpmath.mpf("0.3"))
        R = mpmath.matrix([[c, -s], [s, c]])
        a, b = mpmath.mpf(5), mpmath.mpf("0.01")
        A = R * mpmath.diag([a, b]) * R.T
        want = R * mpmath.diag([a**pm, b**pm]) * R.T
        assert _rel_max(mp.mp_psd_power(A, p), want) <= EPS45 * 10  # kappa = 500 amplifies p<0 errors


def test_psd_power_psd_and_errors():
    X = np.array([[1.0, 2.0], [2.0, 4.0]])  # rank one, exactly PSD: eigenvalues 5 and 0
    with mp.workdps(None):
        half = mp.mp_psd_power(X, Fraction(1, 2))
        assert _rel_max(half * half, mp.to_mp(X)) <= EPS45  # the zero eigenvalue clipped, not NaN
    with pytest.raises(ValueError, match="positive definite"):
        mp.mp_psd_power(X, -0.5)
    with pytest.raises(ValueError, match="semidefinite"):
        mp.mp_psd_power(np.diag([1.0, -1e-3]), 0.5)
    assert mp.mp_psd_power(np.diag([2.0, 0.0]), 0) == mpmath.eye(2)


@MP
@given(st.data())
def test_inverse_root_of_known_instance_is_exact(data):
    """errata 14: A = B^{-p}, B unimodular, so A^{-1/p} = B. The eigen-route error is ~kappa(A) 10^-dps
    (absolute eigenvalue error eps ||A||, Higham Sec. 1.18), so the root is taken at dps + log10(kappa(A))
    guard digits and must then match B to 10^-(dps - 5) relative; at plain dps the contract is n kappa 10^-dps."""
    p = data.draw(st.sampled_from((1, 2, 3, 4)), label="p")
    A, B = data.draw(S.known_inverse_root(S.dims(1, 5), p), label="(A, B)")
    kappa = float(np.linalg.cond(A))
    guard = int(math.ceil(math.log10(kappa))) + 2
    X = mp.mp_inv_root(A, p, dps=DPS + guard)
    with mp.workdps(DPS + guard):
        assert _rel_max(X, mp.to_mp(B)) <= mpmath.mpf(10) ** -(DPS - 5)
    X50 = mp.mp_inv_root(A, p)
    with mp.workdps(None):
        assert _rel_max(X50, mp.to_mp(B)) <= 10 * A.shape[0] * mpmath.mpf(kappa) * mpmath.mpf(10) ** -DPS


@MP
@given(st.data())
def test_geometric_mean_formulas_agree_and_solve_riccati(data):
    n = data.draw(S.dims(1, 4), label="n")
    A = data.draw(S.spd_matrices(n, max_log10_cond=6), label="A")
    B = data.draw(S.spd_matrices(n, max_log10_cond=6), label="B")
    M1 = mp.mp_geometric_mean(A, B, formula=1)
    M2 = mp.mp_geometric_mean(A, B, formula=2)
    with mp.workdps(None):
        # both routes lose ~kappa(A) kappa(B) digits' worth at most: 1e-50 * 1e12 << 1e-30
        assert _rel_max(M2, M1) <= mpmath.mpf(10) ** -30
        Am = mp.to_mp(A)
        assert _rel_max(M1 * mpmath.inverse(Am) * M1, mp.to_mp(B)) <= mpmath.mpf(10) ** -30  # M A^{-1} M = B
        assert _max_abs(M1 - M1.T) <= mpmath.mpf(10) ** -30 * _max_abs(M1)


def test_geometric_mean_formula_2_with_a_spread_spectrum():
    """A^{-1} B with eigenvalues 9e-5 and 8e4: mpmath.sqrtm raises NoConvergence here (its unscaled
    Denman-Beavers gives up after 7 steps); the scaled iteration of mp_sqrtm_general converges."""
    A = np.array([[0.86642438, -0.34019383], [-0.34019383, 0.13358562]])
    B = np.array([[0.51093747, 0.49984367], [0.49984367, 0.48913752]])
    M1, M2 = mp.mp_geometric_mean(A, B, formula=1), mp.mp_geometric_mean(A, B, formula=2)
    with mp.workdps(None):
        assert _rel_max(M2, M1) <= mpmath.mpf(10) ** -30  # kappa(A) kappa(B) ~ 1e9 amplification of 1e-50


def test_sqrtm_general_nonsymmetric():
    rng = np.random.default_rng(5)
    A = S._rotate(np.linalg.qr(rng.standard_normal((3, 3)))[0], np.array([1.0, 2.0, 5.0]))
    B = np.diag([1.0, 3.0, 0.5])
    with mp.workdps(None):
        M = mpmath.inverse(mp.to_mp(A)) * mp.to_mp(B)  # A^{-1} B: non-symmetric, positive real spectrum
        X = mp.mp_sqrtm_general(M)
        assert _rel_max(X * X, M) <= EPS45
        assert _rel_max(X, mpmath.sqrtm(M)) <= EPS45  # mpmath's unscaled iteration converges at kappa = 15
    with pytest.raises(RuntimeError):
        mp.mp_sqrtm_general(np.diag([-1.0, 1.0]))  # the second iterate has a zero column


@pytest.mark.parametrize("M", [[[0.0, 1.0], [0.0, 1.0]], [[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 3.0]]])
def test_sqrtm_general_singular_input_raises_on_every_mpmath(M):
    """A zero column makes mpmath 1.3's LU fail with a TypeError (unset pivot) where 1.4 raises
    ZeroDivisionError: both must surface as the documented RuntimeError."""
    with pytest.raises(RuntimeError, match="singular"):
        mp.mp_sqrtm_general(np.array(M))


# ----------------------------------------------------------------------------------------------------------------
# comparisons and tolerances
# ----------------------------------------------------------------------------------------------------------------
def test_rel_error_tolerance_compare():
    X = np.array([[1.0, 2.0], [3.0, 4.0]])
    with mp.workdps(None):
        Xm = mp.to_mp(X) * (1 + mpmath.mpf(10) ** -12)
    err = mp.rel_error(X, Xm)
    assert err == pytest.approx(1e-12, rel=1e-6)
    assert mp.rel_error(X, Xm, norm="max") == pytest.approx(1e-12, rel=1e-6)
    assert mp.rel_error(np.zeros((2, 2)), mp.to_mp(np.zeros((2, 2)))) == 0.0
    assert mp.tolerance("float64", n=10) == 4 * 10 * 2.0**-53
    assert mp.tolerance(np.float32, n=3, cond=100.0, c=2) == 2 * 3 * 2.0**-24 * 100
    c = mp.compare(X, Xm, dtype="float64", n=2, cond=1e4, why="kappa-scaled")
    assert c.ok and bool(c) and "kappa-scaled" in str(c)
    assert not mp.compare(X, Xm, dtype="float64", n=2, why="plain")
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.ok = False  # type: ignore[misc]


def test_mp_tolerance_rule():
    assert mp.mp_tolerance(50) == 1e-25
    assert mp.mp_tolerance(50, n=64) == 64 * 1e-25
    assert mp.mp_tolerance(41) == 1e-20
    assert mp.mp_tolerance(None) == mp.mp_tolerance(mp.DEFAULT_DPS)
    assert mp.mp_tolerance(40, n=64) < 2.0**-53  # never as loose as float64


# ================================================================================================================
# Value tests added for the mutation score of proofs_check/mp (issue 13): exact hand values, independent oracles
# (CPython's correctly rounded int / int division, NumPy's float64 -> float32/float16 cast, python-flint's arb)
# and the messages a user sees.
# ================================================================================================================
_LONGDOUBLE_64 = np.finfo(np.longdouble).nmant >= 63  # x87 80-bit extended: 64-bit significand


def test_resolve_dps_messages_and_edges():
    with pytest.raises(TypeError, match=r"^dps: expected an integer number of decimal digits, got float$"):
        mp.resolve_dps(50.0)
    with pytest.raises(TypeError, match=r"^dps: expected an integer number of decimal digits, got bool$"):
        mp.resolve_dps(True)
    with pytest.raises(ValueError, match=r"^dps: ground truth needs at least 40 digits, got 39$"):
        mp.resolve_dps(39)
    assert mp.resolve_dps(40) == 40  # MIN_DPS itself is allowed
    got = mp.resolve_dps(np.int64(45))
    assert got == 45 and type(got) is int
    with mpmath.workdps(20):  # below the default: None still means 50
        assert mp.resolve_dps(None) == 50
        with mp.workdps(None):
            assert mpmath.mp.dps == 50
        assert mp.mp_call(lambda x, y=0: (mpmath.mp.dps, x + y), 1, y=2, dps=41) == (41, 3)
        assert mpmath.mp.dps == 20


def test_to_mpf_messages():
    with pytest.raises(TypeError, match=r"^to_mpf: expected a real number, got bool$"):
        mp.to_mpf(True)
    with pytest.raises(TypeError, match=r"^to_mpf: expected a real number, got bool$"):
        mp.to_mpf(np.bool_(False))
    with pytest.raises(TypeError, match=r"^to_mpf: expected a real number, got complex$"):
        mp.to_mpf(1j)
    with pytest.raises(TypeError, match=r"^to_mpf: expected a real number, got mpc$"):
        mp.to_mpf(mpmath.mpc(1, 2))
    with pytest.raises(ValueError, match=r"^to_mpf: expected a finite number, got inf$"):
        mp.to_mpf(math.inf)
    with pytest.raises(ValueError, match=r"^to_mpf: expected a single number, got a 2x2 matrix$"):
        mp.to_mpf(mpmath.eye(2))
    with pytest.raises(ValueError, match=r"^to_mpf: expected a single number, got a 1x2 matrix$"):
        mp.to_mpf(mpmath.matrix([[1, 2]]))
    with pytest.raises(ValueError, match=r"^to_mpf: expected a single number, got an array of shape \(2,\)$"):
        mp.to_mpf(np.array([1.0, 2.0]))
    with pytest.raises(TypeError, match=r"^x: expected a real array, got <U3$"):
        mp.to_mpf("abc")
    with pytest.raises(TypeError, match=r"^x: expected a real array, got bool$"):
        mp.to_mpf(np.array([True]))
    with pytest.raises(TypeError, match=r"^x: expected a real array, got complex128$"):
        mp.to_mpf(np.array([1j]))


def test_to_mpf_exact_values_of_every_input_kind():
    with mpmath.workdps(5):  # exact conversions do not depend on the working precision
        assert mp.to_mpf(mpmath.matrix([[0.1]])).man_exp == (3602879701896397, -55)
        assert mp.to_mpf(np.array([[0.1]])).man_exp == (3602879701896397, -55)
        assert mp.to_mpf(np.array(-3)) == -3
        assert mp.to_mpf([0.375]).man_exp == (3, -3)
        assert mp.to_mpf((0.375,)).man_exp == (3, -3)
        assert mp.to_mpf(np.uint8(200)).man_exp == (25, 3)
        # a dyadic Fraction with 201 significant bits: exact (a rounded route keeps <= 169 bits at 50 digits)
        assert mp.to_mpf(Fraction(2**200 + 1, 2**10)).man_exp == (2**200 + 1, -10)
        assert mp.to_mpf(Fraction(-7, 1)) == -7
        assert mp.to_mpf(Fraction(2**200 + 1)).man_exp == (2**200 + 1, 0)  # denominator 1 = 2^0: dyadic, exact
    if _LONGDOUBLE_64:
        x = np.longdouble(1) + np.longdouble(2) ** -60  # 61 bits: not a float64
        assert mp.to_mpf(x).man_exp == (2**60 + 1, -60)
        assert mp.to_mpf(np.array([x])).man_exp == (2**60 + 1, -60)
    with mpmath.workdps(80):  # a non-dyadic Fraction: rounded once, at max(50, mp.dps) digits
        third = mp.to_mpf(Fraction(1, 3))
        assert abs(third * 3 - 1) <= mpmath.mpf(10) ** -79
    third50 = mp.to_mpf(Fraction(1, 3))
    with mpmath.workdps(50):
        assert third50 == mpmath.mpf(1) / 3  # rounded at 50 digits, not at mpmath's default 15


class _NoArray:
    """An object that refuses conversion to an array, as a device array without a host copy would."""

    def __array__(self, *args, **kwargs):
        raise RuntimeError("no host copy")


def test_rows_and_to_mp_inputs_and_messages():
    with pytest.raises(ValueError, match=r"^x: expected a scalar, vector or matrix, got shape \(1, 1, 1\)$"):
        mp.to_mp(np.zeros((1, 1, 1)))
    with pytest.raises(ValueError, match=r"^x: expected finite entries \(NaN or inf found\)$"):
        mp.to_mp(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"^x: expected finite entries \(NaN or inf found\)$"):
        mp.to_mp(np.array([[np.float32(-np.inf)]]))
    with pytest.raises(TypeError, match=r"^x: cannot convert _NoArray to an array \(no host copy\)$"):
        mp.to_mp(_NoArray())
    M = mp.to_mp(np.array([[3, -4], [0, 2**70]], dtype=object))  # object array of Python ints: exact
    assert (M.rows, M.cols) == (2, 2) and M[0, 1] == -4 and M[1, 1].man_exp == (1, 70) and M[1, 0] == 0
    M = mp.to_mp(np.array([[Fraction(1, 4), mpmath.mpf(2.5)]], dtype=object))  # each entry by to_mpf, not int()
    assert M[0, 0] == 0.25 and M[0, 1] == 2.5
    assert mp.to_mp(np.zeros((0, 2))).rows == 0  # an empty input gives an empty matrix (no IndexError)
    M = mp.to_mp(np.array([[2**62 + 1, -5]], dtype=np.int64))  # 63 bits: exact, not through float64
    assert M[0, 0].man_exp == (2**62 + 1, 0) and M[0, 1] == -5
    M = mp.to_mp(np.array(0.75, dtype=np.float16))  # 0-d -> 1x1
    assert (M.rows, M.cols) == (1, 1) and M[0, 0] == 0.75
    M = mp.to_mp(Fraction(1, 4))
    assert (M.rows, M.cols) == (1, 1) and M[0, 0] == 0.25
    M = mp.to_mp([[0.5, 1.5, 2.0]])  # nested list: a 1x3 row, not a column
    assert (M.rows, M.cols) == (1, 3) and [M[0, j] for j in range(3)] == [0.5, 1.5, 2.0]
    if _LONGDOUBLE_64:
        x = np.array([[np.longdouble(1) + np.longdouble(2) ** -60, 2.0, 3.0], [0.0, -(np.longdouble(2) ** -63), 4.0]])
        M = mp.to_mp(x)  # 2x3: the longdouble route walks rows and columns separately
        assert (M.rows, M.cols) == (2, 3) and M[0, 0].man_exp == (2**60 + 1, -60) and M[0, 2] == 3
        assert M[1, 1] == -mpmath.mpf(2) ** -63 and M[1, 2] == 4 and M[0, 1] == 2


def _float32_oracle(v: float) -> np.float32:
    """NumPy's float64 -> float32 cast: correctly rounded (nearest, ties to even), gradual underflow, overflow
    to inf. Exact for the float64 inputs used here, so it is an independent reference for _round_to_format."""
    with np.errstate(over="ignore"):
        return np.float64(v).astype(np.float32)


@settings(deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=True, width=64))
def test_from_mp_float32_and_float16_match_numpys_cast(v):
    x = mp.to_mpf(v + 0.0)
    got32 = mp.from_mp(x, "float32")
    assert got32.dtype == np.float32 and got32.shape == ()
    assert got32.view(np.uint32) == _float32_oracle(v + 0.0).view(np.uint32)
    with np.errstate(over="ignore"):
        want16 = np.float64(v + 0.0).astype(np.float16)
    assert mp.from_mp(x, np.float16).view(np.uint16) == want16.view(np.uint16)


@pytest.mark.parametrize(
    "v",
    [
        1.0 + 2.0**-24,  # float32 tie -> even (1.0)
        1.0 + 3 * 2.0**-24,  # tie -> even (up)
        1.0 + 2.0**-24 + 2.0**-52,  # just above the tie -> up
        -(1.0 + 2.0**-24 - 2.0**-52),  # just below the tie -> down (negative)
        2.0**-149,  # smallest float32 subnormal
        2.0**-150,  # half of it: tie -> 0
        3 * 2.0**-150,  # tie between 1 and 2 units of 2^-149 -> 2 units
        2.0**-150 + 2.0**-200,  # above the underflow tie -> 2^-149
        2.0**-126 - 2.0**-150,  # rounds up to the smallest normal
        1.5 * 2.0**-140,  # subnormal, exact
        float(np.finfo(np.float32).max),
        float(np.finfo(np.float32).max) * (1 + 2.0**-25),  # below max + ulp/2 -> max
        2.0**128 - 2.0**103,  # max + ulp/2: the tie rounds to even, i.e. 2^128 -> inf
        -(2.0**128),
        1e300,
        0.1,
        -0.0,
    ],
)
def test_from_mp_float32_edge_values(v):
    assert mp.from_mp(mp.to_mpf(v), "float32").view(np.uint32) == _float32_oracle(v + 0.0).view(np.uint32)


def _ratio_to_float(x: mpmath.mpf) -> float:
    """x rounded to float64 by CPython's int / int true division (correctly rounded, ties to even, gradual
    underflow; OverflowError beyond the range): independent of mpmath and of _round_to_format."""
    sgn, man, exp, _ = x._mpf_
    num, den = (man << exp, 1) if exp >= 0 else (man, 1 << -exp)
    try:
        q = num / den
    except OverflowError:
        q = math.inf
    return -q if sgn else q


@settings(deadline=None)
@given(
    st.integers(min_value=1, max_value=2**120 - 1),
    st.integers(min_value=-1250, max_value=1000),
    st.booleans(),
)
def test_from_mp_float64_of_long_mpf_matches_int_division(man, exp, neg):
    with mp.workdps(None):
        x = mpmath.mpf((-man if neg else man, exp))  # up to 120 bits: rounding to 53 bits is exercised
    assert mp.from_mp(x)[()] == _ratio_to_float(x)
    assert mp.from_mp(mpmath.matrix([[x]]))[0, 0] == _ratio_to_float(x)


def test_from_mp_shapes_dtypes_and_messages():
    M = mpmath.matrix([[1, 2], [3, 4]])
    out = mp.from_mp(M, np.dtype("float32"))
    assert out.dtype == np.float32 and out.shape == (2, 2) and out.tolist() == [[1, 2], [3, 4]]
    col = mp.from_mp(mpmath.matrix([[1], [2], [3]]), np.float64, shape=(3,))
    assert col.shape == (3,) and col.tolist() == [1.0, 2.0, 3.0]
    assert mp.from_mp(mpmath.matrix([[5]])).shape == (1, 1)
    nested = mp.from_mp([[mpmath.mpf(1) / 4, 0.5], (Fraction(3, 4), 1)], "float16")
    assert nested.dtype == np.float16 and nested.tolist() == [[0.25, 0.5], [0.75, 1.0]]
    with mp.workdps(None):
        third = mpmath.mpf(1) / 3
    assert mp.from_mp([third], "float32")[0] == np.float32(1 / 3)  # 1/3 rounds once to float32, as NumPy does
    with pytest.raises(TypeError, match=r"^dtype: expected one of \['float16', 'float32', 'float64'\], got int32$"):
        mp.from_mp(M, np.int32)
    with pytest.raises(TypeError, match=r"^dtype: expected one of .*, got bfloat16$"):
        mp.from_mp(M, "bfloat16")
    assert mp.from_mp(mpmath.mpf(0))[()] == 0.0
    # mp's own infinities and NaN pass through (to any format)
    assert mp.from_mp(mpmath.inf)[()] == math.inf and mp.from_mp(-mpmath.inf, "float16")[()] == -np.inf
    assert np.isnan(mp.from_mp(mpmath.nan, "float32")[()])
    tiny = mp.from_mp(-mpmath.mpf(2) ** -1100)[()]  # a negative value below half the smallest subnormal
    assert tiny == 0.0 and np.signbit(tiny)  # rounds to -0.0, as IEEE round-to-nearest does


@pytest.mark.parametrize(
    "man, exp",
    [
        (2**53 + 1, -53),  # 1 + 2^-53: tie -> even (1.0)
        (2**53 + 3, -53),  # tie -> even (up)
        (2**80 + 2**27 + 1, -80),  # just above the tie -> up
        (-(2**80 + 2**27 - 1), -80),  # just below the tie -> down
        (1, -1075),  # half the smallest subnormal: tie -> 0
        (3, -1076),  # 0.75 units: -> 1 unit
        (2**60 - 1, -1082),  # just below 2^-1022: rounds up to the smallest normal
        (2**54 - 1, 970),  # max + ulp/2: tie to even, i.e. 2^1024 -> inf
        (2**55 - 3, 969),  # below max + ulp/2 -> max
    ],
)
def test_from_mp_float64_edge_values(man, exp):
    with mp.workdps(None):
        x = mpmath.mpf((man, exp))
    want = _ratio_to_float(x)
    assert mp.from_mp(x)[()] == want
    assert mp.from_mp([x])[0] == want


def test_exact_sum_keeps_every_bit():
    a = np.array([[1.0, -2.0**600], [0.5, 3.0]])
    b = np.array([[2.0**-200, 2.0**600], [-0.5, 2.0**-1074]])
    c = np.array([[0.0, 1.0], [0.0, 0.0]])
    S_ = mp.mp_exact_sum(a, b, c)
    assert (S_.rows, S_.cols) == (2, 2)
    # 1 + 2^-200 needs 201 bits (50 digits hold ~169): exact only without rounding
    assert S_[0, 0].man_exp == (2**200 + 1, -200)
    assert S_[0, 1] == 1 and S_[1, 0] == 0  # -2^600 + 2^600 + 1 and 0.5 - 0.5, exactly
    assert S_[1, 1].man_exp == (3 * 2**1074 + 1, -1074)  # 3 + 2^-1074
    tall = mp.mp_exact_sum(np.ones((3, 2)), np.arange(6.0).reshape(3, 2))  # not square: rows and columns apart
    assert (tall.rows, tall.cols) == (3, 2) and tall.tolist() == [[1, 2], [3, 4], [5, 6]]
    assert mp.mp_eye(3).tolist() == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    one = mp.mp_exact_sum(mpmath.matrix([[mpmath.mpf(0.25)]]))
    assert one[0, 0] == 0.25
    with pytest.raises(ValueError, match=r"^mp_exact_sum: expected at least one term$"):
        mp.mp_exact_sum()
    with pytest.raises(ValueError, match=r"^mp_exact_sum: terms\[2\] has shape \(2, 1\), expected \(2, 2\)$"):
        mp.mp_exact_sum(a, b, np.ones(2))
    with pytest.raises(ValueError, match=r"^mp_exact_sum: terms\[1\] has shape \(1, 2\), expected \(2, 2\)$"):
        mp.mp_exact_sum(a, np.ones((1, 2)))
    with pytest.raises(ValueError, match=r"^terms\[1\]: expected finite entries"):
        mp.mp_exact_sum(a, np.full((2, 2), np.nan))


def test_symmetric_part_and_the_symmetry_check():
    # asymmetry at exactly SYMMETRY_RTOL * max|A| is rounding (accepted; the symmetric part is used)
    r = 2.0**-20
    A = np.array([[4.0, 1.0 + 4 * r], [1.0, 2.0]])  # max|A| = 4: |a12 - a21| = 4 r, the limit itself
    w = mp.mp_eigvalsh(A)
    with mp.workdps(None):
        b = 1 + 2 * r  # the symmetric part's off-diagonal
        want = [3 - mpmath.sqrt(1 + b * b), 3 + mpmath.sqrt(1 + b * b)]  # eigenvalues of [[4, b], [b, 2]]
        assert max(abs(x - y) for x, y in zip(w, want)) <= EPS45
    A_over = np.array([[4.0, 1.0 + 4 * r + 2.0**-50], [1.0, 2.0]])  # just above the limit
    msg = r"^A: expected a symmetric matrix, max\|A - A\^T\| = 3\.81e-6 > 9\.5e-07 \* max\|A\| = 3\.81e-6$"
    with pytest.raises(ValueError, match=msg):
        mp.mp_eigvalsh(A_over)
    with pytest.raises(ValueError, match=r"^A: expected a square matrix, got 2x3$"):
        mp.mp_eigsy(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^A: expected a square matrix, got 3x2$"):
        mp.mp_lambda_min(np.ones((3, 2)))
    # the operator sym itself: no check, any square matrix
    got = mp.mp_sym(np.array([[1.0, 2.0, 0.0], [4.0, 3.0, -1.0], [0.5, 0.0, 7.0]]))
    assert got.tolist() == [[1, 3, 0.25], [3, 3, -0.5], [0.25, -0.5, 7]]
    with pytest.raises(ValueError, match=r"^A: expected a square matrix, got 2x3$"):
        mp.mp_sym(np.ones((2, 3)))


def test_kron_vec_unvec_trace_fro_exact_values():
    A = np.array([[1.0, 2.0, -1.0], [3.0, 4.0, 0.5]])  # 2x3
    B = np.array([[0.0, 5.0], [1.0, -2.0], [7.0, 0.25], [1.5, 3.0]])  # 4x2
    K = mp.mp_kron(A, B)
    assert (K.rows, K.cols) == (8, 6)
    assert np.array_equal(mp.from_mp(K), np.kron(A, B))  # products of float64 entries: exact
    assert np.array_equal(mp.from_mp(mp.mp_kron(B, A)), np.kron(B, A))
    X = np.arange(12.0).reshape(3, 4)
    v = mp.mp_vec(X)
    assert (v.rows, v.cols) == (12, 1) and [v[i, 0] for i in range(12)] == X.T.reshape(-1).tolist()
    U = mp.mp_unvec(v, 3, 4)
    assert (U.rows, U.cols) == (3, 4) and mp.from_mp(U).tolist() == X.tolist()
    assert mp.from_mp(mp.mp_unvec(X.T.reshape(-1), 3, 4)).tolist() == X.tolist()  # a 1-D vector works too
    with pytest.raises(ValueError, match=r"^v: expected 12 entries for a 4x3 matrix, got 11$"):
        mp.mp_unvec(np.ones(11), 4, 3)
    T = np.array([[1.0, 9.0, 9.0], [9.0, 2.0**-80, 9.0], [9.0, 9.0, 2.0**60]])
    tr = mp.mp_trace(T)
    assert tr.man_exp == (2**140 + 2**80 + 1, -80)  # 1 + 2^-80 + 2^60: exact within 169 bits
    with pytest.raises(ValueError, match=r"^A: expected a square matrix, got 2x3$"):
        mp.mp_trace(A)
    assert mp.mp_norm_fro(np.array([[3.0, 0.0], [0.0, -4.0]])) == 5
    assert mp.mp_norm_fro(np.array([[1.0, 2.0, 2.0]])) == 3
    with mp.workdps(None):
        assert abs(mp.mp_norm_fro(np.ones((2, 2))) - 2) == 0
        assert abs(mp.mp_norm_fro(np.array([[1.0, 1.0]])) - mpmath.sqrt(2)) <= EPS45


_TRIDIAG = np.array([[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]])  # eigenvalues 2 - sqrt2, 2, 2 + sqrt2
_LAM_TOL = 4 * mpmath.mpf(2) ** -166  # mp_lambda_min's contract at 50 digits (169 bits), times max|M_ij|


def test_eigsy_exact_spectrum_and_eigenvectors():
    w, Q = mp.mp_eigsy(np.array([[2.0, 1.0], [1.0, 2.0]]))
    with mp.workdps(None):
        h = 1 / mpmath.sqrt(2)
        assert abs(w[0] - 1) <= EPS45 and abs(w[1] - 3) <= EPS45
        # eigenvector of 1 is +-(1, -1)/sqrt2, of 3 is +-(1, 1)/sqrt2: the columns follow the sorted w
        assert abs(abs(Q[0, 0]) - h) <= EPS45 and abs(Q[0, 0] + Q[1, 0]) <= EPS45
        assert abs(abs(Q[0, 1]) - h) <= EPS45 and abs(Q[0, 1] - Q[1, 1]) <= EPS45
    w, Q = mp.mp_eigsy(_TRIDIAG[::-1, ::-1] * 0.5)  # eigenvalues 1 - sqrt2/2, 1, 1 + sqrt2/2
    with mp.workdps(None):
        r = mpmath.sqrt(2) / 2
        assert max(abs(a - b) for a, b in zip(w, [1 - r, 1, 1 + r])) <= EPS45
        # eigenvectors (1, sqrt2, 1)/2, (1, 0, -1)/sqrt2, (1, -sqrt2, 1)/2 up to sign
        for j, vec in enumerate([[0.5, r, 0.5], [r, 0, -r], [0.5, -r, 0.5]]):
            s = 1 if Q[0, j] > 0 else -1
            assert max(abs(s * Q[i, j] - vec[i]) for i in range(3)) <= EPS45
    assert mp.mp_eigvalsh(np.diag([3.0, -1.0, 2.0])) == [-1, 2, 3]


def test_lambda_min_max_exact_values_every_route():
    with mp.workdps(None):
        lo, hi = 2 - mpmath.sqrt(2), 2 + mpmath.sqrt(2)
        for method in ("auto", "eigsy"):
            assert abs(mp.mp_lambda_min(_TRIDIAG, method=method) - lo) <= _LAM_TOL * 2
            assert abs(mp.mp_lambda_max(_TRIDIAG, method=method) - hi) <= _LAM_TOL * 2
            assert abs(mp.mp_lambda_min(-_TRIDIAG, method=method) + hi) <= _LAM_TOL * 2
        assert mp.mp_lambda_min(np.zeros((3, 3))) == 0 and mp.mp_lambda_max(np.zeros((2, 2))) == 0
        assert mp.mp_lambda_min(np.array([[-2.5]])) == -2.5 and mp.mp_lambda_max(np.array([[-2.5]])) == -2.5
        assert mp.loewner_margin(np.array([[1.0]]), np.array([[3.0]])) == -2
    # a 1x1 mp input is rounded once to the working precision, as every result here is
    x = mpmath.mpf(1) + mpmath.mpf(2) ** -200
    assert mp.mp_lambda_min(mpmath.matrix([[x]])) == 1
    with pytest.raises(ValueError, match=r"^method: expected 'auto' or 'eigsy', got 'fast'$"):
        mp.mp_lambda_min(_TRIDIAG, method="fast")
    with pytest.raises(ValueError, match=r"^method: expected 'auto' or 'eigsy', got None$"):
        mp.mp_lambda_max(_TRIDIAG, method=None)
    with pytest.raises(ValueError, match=r"^A: expected a symmetric matrix"):
        mp.mp_lambda_max(np.array([[1.0, 1.0], [0.0, 1.0]]))


def test_norm_2_exact_values():
    assert mp.mp_norm_2(np.diag([-5.0, 1.0])) == 5  # symmetric: |lambda_min| wins
    assert mp.mp_norm_2(np.diag([0.5, -0.25])) == 0.5  # symmetric: lambda_max wins
    assert mp.mp_norm_2(np.zeros((2, 3))) == 0
    A = np.array([[1.0, 2.0], [0.0, 1.0], [1.0, 0.0]])  # A^T A = [[2, 2], [2, 5]]: eigenvalues 1 and 6
    with mp.workdps(None):
        s6 = mpmath.sqrt(6)
        assert abs(mp.mp_norm_2(A) - s6) <= EPS45 and abs(mp.mp_norm_2(A.T) - s6) <= EPS45
        B = np.array([[1.0, 2.0], [3.0, 4.0]])  # ||B||_2^2 = 15 + sqrt(221)
        assert abs(mp.mp_norm_2(B) - mpmath.sqrt(15 + mpmath.sqrt(221))) <= EPS45


def _arb_lambda_min(A: np.ndarray, prec: int = 300):
    """lambda_min of symmetric float A as an arb ball (python-flint: Arb's certified eigenvalue enclosure),
    an oracle that shares no code with mpmath."""
    flint = pytest.importorskip("flint")
    old = flint.ctx.prec
    flint.ctx.prec = prec
    try:
        M = flint.arb_mat([[float(v) for v in row] for row in A])
        lam = flint.acb_mat(M).eig(multiple=True, nonstop=True)
        lo = min((z.real for z in lam), key=lambda b: b.mid())
        with mpmath.workdps(90):  # parse the 80 printed digits without rounding them to mpmath's default 15
            return mpmath.mpf(lo.mid().str(80, radius=False)), mpmath.mpf(lo.rad().str(5, radius=False))
    finally:
        flint.ctx.prec = old


@pytest.mark.parametrize("n", [1, 2, 3, 6, 10])
def test_lambda_min_against_arb(n):
    rng = np.random.default_rng(100 + n)
    X = rng.standard_normal((n, n))
    for A in (X + X.T, X @ X.T, X @ X.T - 3 * np.eye(n)):
        want, rad = _arb_lambda_min(A)
        assert rad <= mpmath.mpf(10) ** -70  # the oracle resolves far below the contract
        scale = mpmath.mpf(float(np.abs(A).max()))
        for method in ("auto", "eigsy"):
            with mp.workdps(None):
                got = mp.mp_lambda_min(A, method=method)
                assert abs(got - want) <= _LAM_TOL * scale + rad
                top = mp.mp_lambda_max(-A, method=method)
                assert abs(top + want) <= _LAM_TOL * scale + rad


def test_loewner_margins_exact_values():
    A, B = np.diag([3.0, 1.0]), np.ones((2, 2))  # A - B = [[2, -1], [-1, 0]]: eigenvalues 1 +- sqrt2
    with mp.workdps(None):
        want = 1 - mpmath.sqrt(2)
        assert abs(mp.loewner_margin(A, B) - want) <= _LAM_TOL * 2
        assert abs(mp.loewner_margin(A, B, method="eigsy") - want) <= _LAM_TOL * 2
        assert abs(mp.loewner_margin(B, A) - (-1 - mpmath.sqrt(2))) <= _LAM_TOL * 2
        # a non-symmetric difference is judged by its symmetric part: sym([[3, 4], [0, 1]]) has 2 +- sqrt5
        assert abs(mp.loewner_margin(np.array([[3.0, 4.0], [0.0, 1.0]]), np.zeros((2, 2))) - (2 - mpmath.sqrt(5))) \
            <= _LAM_TOL * 3
        # relative: / max(||A||_2, ||B||_2) = 3, the scale taken in float64 (exact here: diag(0.75, 0.25) * 4)
        assert abs(mp.relative_loewner_margin(A, B) - want / 3) <= 2.0**-52 * abs(want)
        assert abs(mp.relative_loewner_margin(B, A) - (-1 - mpmath.sqrt(2)) / 3) <= 2.0**-51
    got = mp.loewner_margin(A, B, dps=80)  # called at mpmath's default precision: dps alone sets 80 digits
    rel = mp.relative_loewner_margin(A, B, dps=80)  # the scale 3 is exact in float64, so the quotient has 80 digits
    with mp.workdps(80):
        assert abs(got - (1 - mpmath.sqrt(2))) <= mpmath.mpf(10) ** -78
        assert abs(rel - (1 - mpmath.sqrt(2)) / 3) <= mpmath.mpf(10) ** -78
    with pytest.raises(ValueError, match=r"^A, B: expected square matrices of one size, got \(2, 2\) and \(3, 3\)$"):
        mp.loewner_margin(A, np.eye(3))
    with pytest.raises(ValueError, match=r"^A, B: expected square matrices of one size, got \(2, 3\) and \(2, 3\)$"):
        mp.loewner_margin(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^A, B: expected square matrices of one size, got \(2, 2\) and \(2, 3\)$"):
        mp.loewner_margin(A, np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^A, B: expected square matrices of one size, got \(2, 3\) and \(2, 2\)$"):
        mp.loewner_margin(np.ones((2, 3)), A)
    with pytest.raises(ValueError, match=r"^A: expected finite entries \(NaN or inf found\)$"):
        mp.relative_loewner_margin(np.full((2, 2), np.inf), A)
    with pytest.raises(ValueError, match=r"^B: expected finite entries \(NaN or inf found\)$"):
        mp.relative_loewner_margin(A, np.full((2, 2), np.nan))


def test_relative_loewner_margin_at_the_ends_of_the_range():
    big = 1.5e308
    A = np.diag([big, big])
    B = np.array([[big, 1e308], [1e308, big]])  # ||B||_2 = 2.5e308: beyond float64, fine after the 2^-e scaling
    rel = mp.relative_loewner_margin(A, B)  # margin -1e308, so -1e308 / 2.5e308 = -0.4
    assert abs(rel + mpmath.mpf(0.4)) <= 2.0**-50  # float64 scale: a few u
    with mp.workdps(None):
        ten = mpmath.mpf(10)
        Am = mpmath.diag([3 * ten**400, ten**400])  # mp entries outside float64's range altogether
        assert abs(mp.relative_loewner_margin(Am, mpmath.zeros(2, 2)) - mpmath.mpf(1) / 3) <= 2.0**-50
        Bm = mpmath.diag([ten**-400, 0])
        # below 2^-1022 the scale is 2^-1022 (_TINY), so the relative margin is the absolute one times 2^1022
        got = mp.relative_loewner_margin(mpmath.zeros(2, 2), Bm)
        assert abs(got + ten**-400 * mpmath.mpf(2) ** 1022) <= EPS45 * ten**-92
        tiny = np.diag([2.0**-1060, 0.0])  # subnormal-range entries: scale 2^-1022
        assert mp.relative_loewner_margin(np.zeros((2, 2)), tiny) == -(mpmath.mpf(2) ** -38)
        assert mp.relative_loewner_margin(np.diag([2.0**-1000, 0.0]), np.diag([0.0, 2.0**-1001])) == -0.5


def test_psd_power_thresholds_and_messages():
    with mp.workdps(None):
        # an eigenvalue in [-tiny, 0) (tiny = 16 n eps ||A||_2 ~ 8.6e-50 here) is a rounding zero: clipped for p > 0
        got = mp.mp_psd_power(np.diag([4.0, -1e-50]), Fraction(1, 2))
        assert got.tolist() == [[2, 0], [0, 0]]
        assert mp.mp_psd_power(np.diag([4.0, 0.0]), 3).tolist() == [[64, 0], [0, 0]]
        assert mp.mp_psd_power(np.diag([1.0, -3.0]), 0) == mpmath.eye(2)  # p = 0 is I, before any check
        # p < 0 needs lambda_min > tiny: 1e-45 passes (and is inverted exactly), 1e-50 is singular here
        got = mp.mp_psd_power(np.diag([1.0, 1e-45]), -1)
        assert got[0, 0] == 1 and abs(got[1, 1] * mpmath.mpf(1e-45) - 1) <= EPS45
    # tiny = 16 n eps ||A||_2 = 16 * 2 * 2^-168 * 4 = 3.42e-49 at 50 digits (169 bits)
    msg = r"^A: a negative power p = -1\.0 needs positive definite A, lambda_min = 1\.0e-50 \(<= 3\.42e-49, singular at 50 digits\)$"
    with pytest.raises(ValueError, match=msg):
        mp.mp_psd_power(np.diag([4.0, 1e-50]), -1)
    with mp.workdps(None):  # 1x1: the spectrum is its entry
        assert mp.mp_psd_power(np.array([[4.0]]), Fraction(-1, 2))[0, 0] == 0.5
        assert mp.mp_pinv_power(np.array([[4.0]]), -1)[0, 0] == 0.25
        assert mp.mp_pinv_power(np.array([[4.0]]), -1, rcond=0.5)[0, 0] == 0.25  # 4 > 0.5 * 4: kept
    with pytest.raises(ValueError, match=r"^A: expected positive semidefinite, lambda_min = -1\.0e-48$"):
        mp.mp_psd_power(np.diag([1.0, -1e-48]), 2)
    with pytest.raises(ValueError, match=r"^A: a negative power p = -0\.5 needs positive definite A, "):
        mp.mp_psd_power(np.array([[1.0, 2.0], [2.0, 4.0]]), -0.5)
    # the messages print lambda_min and p to 5 significant digits
    with pytest.raises(ValueError, match=r"^A: expected positive semidefinite, lambda_min = -0\.12346$"):
        mp.mp_psd_power(np.diag([1.0, -0.123456789]), 2)
    with pytest.raises(ValueError, match=r"^A: expected positive semidefinite, lambda_min = -0\.12346$"):
        mp.mp_pinv_power(np.diag([1.0, -0.123456789]), 2)
    msg = r"^A: a negative power p = -0\.12346 needs positive definite A, lambda_min = 1\.2346e-50 \(<= 3\.42e-49, "
    with pytest.raises(ValueError, match=msg):
        mp.mp_psd_power(np.diag([4.0, 1.23456789e-50]), -0.123456789)
    with pytest.raises(TypeError, match=r"^p: expected a real exponent, got bool$"):
        mp.mp_psd_power(np.eye(2), True)
    with pytest.raises(TypeError, match=r"^p: expected a real exponent \(int, float, Fraction, mpf\), got str$"):
        mp.mp_psd_power(np.eye(2), "1/2")


def test_psd_power_is_exactly_symmetric_and_honours_dps():
    A = np.array([[2.0, 1.0], [1.0, 3.0]])
    X = mp.mp_psd_power(A, Fraction(1, 3))
    assert all(X[i, j] == X[j, i] for i in range(2) for j in range(2))
    with mp.workdps(None):
        assert _rel_max(X * X * X, mp.to_mp(A)) <= EPS45
    X80 = mp.mp_psd_power(A, -1, dps=80)
    with mp.workdps(80):  # [[2, 1], [1, 3]]^{-1} = [[3, -1], [-1, 2]] / 5, to 80 digits
        assert _rel_max(X80, mpmath.matrix([[3, -1], [-1, 2]]) / 5) <= mpmath.mpf(10) ** -76


def test_pinv_power_exact_values():
    X = np.array([[1.0, 2.0], [2.0, 4.0]])  # 5 v v^T with v = (1, 2)/sqrt5: rank one
    with mp.workdps(None):
        Xm = mp.to_mp(X)
        assert _rel_max(mp.mp_pinv_power(X, -1), Xm / 25) <= EPS45  # Moore-Penrose pseudo-inverse
        assert _rel_max(mp.mp_pinv_power(X, 0), Xm / 5) <= EPS45  # projector onto range(X)
        assert _rel_max(mp.mp_pinv_power(X, 0.5), Xm / mpmath.sqrt(5)) <= EPS45
        D = np.diag([4.0, 2.0**-10, 0.0])  # thr = rcond * 4; an eigenvalue is kept iff it is > thr
        assert mp.mp_pinv_power(D, -1, rcond=2.0**-12).tolist() == [[0.25, 0, 0], [0, 0, 0], [0, 0, 0]]  # = thr: cut
        assert mp.mp_pinv_power(D, -1, rcond=2.0**-13).tolist() == [[0.25, 0, 0], [0, 1024, 0], [0, 0, 0]]
        assert mp.mp_pinv_power(D, -1).tolist() == [[0.25, 0, 0], [0, 1024, 0], [0, 0, 0]]  # only exact zeros cut
        # an eigenvalue in [-tiny, 0) is a rounding zero: dropped, not an error (tiny = 16 * 2 * 2^-168 * 4 = 3.42e-49)
        assert mp.mp_pinv_power(np.diag([2.0, -1e-50]), -1).tolist() == [[0.5, 0], [0, 0]]
        assert mp.mp_pinv_power(np.diag([4.0, -2e-49]), -1).tolist() == [[0.25, 0], [0, 0]]
    with pytest.raises(ValueError, match=r"^A: expected positive semidefinite, lambda_min = -3\.5e-49$"):
        mp.mp_pinv_power(np.diag([4.0, -3.5e-49]), -1)
    X80 = mp.mp_pinv_power(np.array([[1.0, 2.0], [2.0, 4.0]]), 0.5, dps=80)  # X / sqrt5, to 80 digits
    with mp.workdps(80):
        assert _rel_max(X80, mpmath.matrix([[1, 2], [2, 4]]) / mpmath.sqrt(5)) <= mpmath.mpf(10) ** -76
    with pytest.raises(ValueError, match=r"^A: expected positive semidefinite, lambda_min = -1\.0$"):
        mp.mp_pinv_power(np.diag([2.0, -1.0]), -1)
    with pytest.raises(TypeError, match=r"^p: expected a real exponent"):
        mp.mp_pinv_power(np.eye(2), None)


def test_inv_root_exact_values_and_messages():
    with mp.workdps(None):
        assert _rel_max(mp.mp_inv_root(np.diag([4.0, 9.0]), 2), mpmath.diag([0.5, mpmath.mpf(1) / 3])) <= EPS45
        assert _rel_max(mp.mp_inv_root(np.diag([8.0, 27.0]), np.int64(3)), mpmath.diag([0.5, mpmath.mpf(1) / 3])) \
            <= EPS45
        assert _rel_max(mp.mp_inv_root(np.diag([4.0, 9.0]), 0.5), mpmath.diag([0.0625, mpmath.mpf(1) / 81])) \
            <= EPS45  # float p: A^(-1/p) = A^-2
        assert _rel_max(mp.mp_inv_root(np.diag([4.0, 9.0]), Fraction(1, 2)), mpmath.diag([0.0625, mpmath.mpf(1) / 81])) \
            <= EPS45
    X = mp.mp_inv_root(np.diag([8.0, 27.0]), 3, dps=80)  # -1/3 rounded at 80 digits: the root good to ~1e-79
    with mp.workdps(80):
        assert _rel_max(X, mpmath.diag([0.5, mpmath.mpf(1) / 3])) <= mpmath.mpf(10) ** -76
    with pytest.raises(ValueError, match=r"^p: expected a nonzero root order$"):
        mp.mp_inv_root(np.eye(2), 0)
    with pytest.raises(ValueError, match=r"^A: a negative power p = -0\.5 needs positive definite A"):
        mp.mp_inv_root(np.diag([1.0, 0.0]), 2)


def _bhatia_mean_2x2(A, B):
    """A # B of 2x2 SPD A, B in closed form: (sqrt(det B) A + sqrt(det A) B) (det A det B)^(1/4) / sqrt(det C),
    C the bracket (Bhatia, *Positive Definite Matrices*, Prop. 4.1.12). Independent of both formulas."""
    A, B = mp.to_mp(A), mp.to_mp(B)
    dA, dB = mpmath.det(A), mpmath.det(B)
    C = A * mpmath.sqrt(dB) + B * mpmath.sqrt(dA)
    return C * (mpmath.root(dA * dB, 4) / mpmath.sqrt(mpmath.det(C)))


@pytest.mark.parametrize("formula", [1, 2])
def test_geometric_mean_exact_values(formula):
    A, B = np.array([[2.0, 1.0], [1.0, 3.0]]), np.array([[1.0, 0.5], [0.5, 2.0]])
    with mp.workdps(None):
        assert _rel_max(mp.mp_geometric_mean(A, B, formula=formula), _bhatia_mean_2x2(A, B)) <= EPS45
        assert _rel_max(mp.mp_geometric_mean(np.diag([4.0, 1.0]), np.diag([1.0, 4.0]), formula=formula),
                        2 * mpmath.eye(2)) <= EPS45
        s3 = mpmath.sqrt(3)  # I # B = B^{1/2}; [[2, 1], [1, 2]] has eigenvalues 1, 3
        want = mpmath.matrix([[(1 + s3) / 2, (s3 - 1) / 2], [(s3 - 1) / 2, (1 + s3) / 2]])
        assert _rel_max(mp.mp_geometric_mean(np.eye(2), np.array([[2.0, 1.0], [1.0, 2.0]]), formula=formula),
                        want) <= EPS45
    got = mp.mp_geometric_mean(A, B, formula=formula, dps=80)
    with mp.workdps(80):
        assert _rel_max(got, _bhatia_mean_2x2(A, B)) <= mpmath.mpf(10) ** -75
    # A must be positive definite: formula 1 fails at A^(-1/2), formula 2 at its check A^-1
    with pytest.raises(ValueError, match=rf"^A: a negative power p = {('-0.5', '-1.0')[formula - 1]} needs positive"):
        mp.mp_geometric_mean(np.diag([1.0, 0.0]), np.eye(2), formula=formula)


def test_geometric_mean_formula_message():
    with pytest.raises(ValueError, match=r"^formula: expected 1 or 2, got 3$"):
        mp.mp_geometric_mean(np.eye(2), np.eye(2), formula=3)
    with pytest.raises(ValueError, match=r"^formula: expected 1 or 2, got '1'$"):
        mp.mp_geometric_mean(np.eye(2), np.eye(2), formula="1")


def test_sqrtm_general_exact_values_and_messages():
    with mp.workdps(None):
        X = mp.mp_sqrtm_general(np.array([[4.0, 1.0], [0.0, 9.0]]))  # [[2, b], [0, 3]], 2b + 3b = 1
        assert _rel_max(X, mpmath.matrix([[2, mpmath.mpf(1) / 5], [0, 3]])) <= EPS45
        X = mp.mp_sqrtm_general(np.array([[0.0, -1.0], [1.0, 0.0]]))  # eigenvalues +-i: a rotation by pi/4
        h = 1 / mpmath.sqrt(2)
        assert _rel_max(X, mpmath.matrix([[h, -h], [h, h]])) <= EPS45
        assert _rel_max(mp.mp_sqrtm_general(np.array([[7.0]])), mpmath.matrix([[mpmath.sqrt(7)]])) <= EPS45
    X = mp.mp_sqrtm_general(np.array([[4.0, 1.0], [0.0, 9.0]]), dps=80)
    with mp.workdps(80):
        assert _rel_max(X, mpmath.matrix([[2, mpmath.mpf(1) / 5], [0, 3]])) <= mpmath.mpf(10) ** -76
    with pytest.raises(ValueError, match=r"^M: expected a square matrix, got 2x3$"):
        mp.mp_sqrtm_general(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"^M: expected finite entries \(NaN or inf found\)$"):
        mp.mp_sqrtm_general(np.array([[1.0, np.inf], [0.0, 1.0]]))
    # a real iteration cannot reach sqrt(-1/3): it ends with |x| << 1, so the residual |x^2 + 1/3| prints as 0.333
    # (3 significant digits), above the bound 10^-25 x^2
    msg = (r"^mp_sqrtm_general: residual \|\|X\^2 - M\|\|_F = 0\.333 > \d(\.\d{1,2})?e-\d+ \(no principal real "
           r"square root: eigenvalues on or near the negative real axis\?\)$")
    with pytest.raises(RuntimeError, match=msg):
        mp.mp_sqrtm_general(np.array([[-1 / 3]]))
    # diag(-2, 1): the iterates stay diagonal, X = diag(y, x), so res = ||diag(y^2 + 2, x^2 - 1)||_F >= 2 and the
    # bound n^2 10^-25 (x^2 + y^2) <= 4e-25 (2 res + 1); a bound that grows with 10^(dps/2) would let X through
    with pytest.raises(RuntimeError, match=r"^mp_sqrtm_general: residual") as err:
        mp.mp_sqrtm_general(np.diag([-2.0, 1.0]))
    res, bound = (float(v) for v in re.match(r".*_F = (\S+) > (\S+) ", str(err.value)).groups())
    assert res >= 2 and 0 < bound <= 4e-25 * (2 * res + 1) * 1.01  # 1 %: the 3 printed digits
    with pytest.raises(RuntimeError, match=r"^mp_sqrtm_general: singular iterate \(M singular or with eigenvalues <= 0\)$"):
        mp.mp_sqrtm_general(np.diag([0.0, 1.0]))


def test_lu_call_turns_mpmath_13s_unset_pivot_into_zero_division():
    def unset_pivot(_):  # what mpmath 1.3's LU_decomp raises on a zero column (swap_row compares None to int)
        raise TypeError("'<' not supported between instances of 'NoneType' and 'int'")

    with pytest.raises(ZeroDivisionError, match=r"^matrix is numerically singular \(no pivot in a zero column\)$"):
        mp._lu_call(unset_pivot, mpmath.eye(2))
    with mp.workdps(None):
        assert mp._lu_call(mpmath.det, mpmath.matrix([[2, 1], [1, 3]])) == 5


def test_rel_error_norms_and_messages():
    x, X = np.array([[2.0, 1.0], [1.0, 2.0]]), np.ones((2, 2))  # x - X = I; ||X||: fro 2, 2-norm 2, max 1
    assert mp.rel_error(x, X) == math.sqrt(2) / 2
    assert mp.rel_error(x, X, norm="2") == 0.5
    assert mp.rel_error(x, X, norm="max") == 1.0
    assert mp.rel_error(np.array([[3.0, 4.0]]), np.zeros((1, 2))) == 5.0  # X = 0: the absolute error
    assert mp.rel_error(np.array([[3.0, 4.0]]), np.zeros((1, 2)), norm="max") == 4.0
    assert mp.rel_error(np.array([1.0, 3.0]), mpmath.matrix([[1.0], [2.0]]), norm="max") == 0.5  # 1-D: a column
    with pytest.raises(ValueError, match=r"^x, X_mp: shapes differ, \(2, 2\) vs \(1, 2\)$"):
        mp.rel_error(x, np.zeros((1, 2)))
    with pytest.raises(ValueError, match=r"^x, X_mp: shapes differ, \(0, "):  # an empty x: a message, no IndexError
        mp.rel_error(np.zeros((0, 2)), np.ones((1, 1)))
    with pytest.raises(ValueError, match=r"^norm: expected 'fro', '2' or 'max', got 'inf'$"):
        mp.rel_error(x, X, norm="inf")
    with pytest.raises(ValueError, match=r"^x: expected finite entries \(NaN or inf found\)$"):
        mp.rel_error(np.full((2, 2), np.nan), X)
    with pytest.raises(ValueError, match=r"^X_mp: expected finite entries \(NaN or inf found\)$"):
        mp.rel_error(x, np.full((2, 2), np.inf))


def test_tolerance_compare_and_mp_tolerance_values_and_messages():
    assert mp.tolerance("float16", n=1) == 4 * 2.0**-11
    assert mp.tolerance(np.dtype("float64"), n=3, cond=2.0) == 4 * 3 * 2.0**-53 * 2
    assert mp.tolerance("float32", n=2, c=1) == 2 * 2.0**-24
    xp = pytest.importorskip("array_api_strict")
    assert mp.tolerance(xp.float32, n=2) == 4 * 2 * 2.0**-24  # another backend's dtype object
    with pytest.raises(ValueError, match=r"^n: expected a positive dimension, got 0$"):
        mp.tolerance("float64", n=0)
    with pytest.raises(ValueError, match=r"^cond: expected a condition number >= 1, got 0\.5$"):
        mp.tolerance("float64", n=1, cond=0.5)
    with pytest.raises(ValueError, match=r"^cond: expected a condition number >= 1, got nan$"):
        mp.tolerance("float64", n=1, cond=math.nan)
    assert mp.tolerance("float64", n=1, cond=1.0) == 4 * 2.0**-53  # cond = 1 is allowed
    x, X = np.array([[2.0, 1.0], [1.0, 2.0]]), np.ones((2, 2))
    c = mp.compare(x, X, dtype="float16", n=64, cond=4.0, c=1.0, why="w", norm="max")  # error 1 vs 64*4*2^-11
    assert (c.error, c.tol, c.ok, c.why) == (1.0, 0.125, False, "w")
    assert str(c) == "rel_error=1.000e+00 > tol=1.250e-01 [w]"
    c = mp.compare(x, X, dtype="float16", n=2048, cond=4.0, c=0.5, norm="2")  # error 0.5 vs 0.5*2048*4*2^-11
    assert (c.error, c.tol, c.ok, c.why) == (0.5, 2.0, True, "")
    assert str(c) == "rel_error=5.000e-01 <= tol=2.000e+00 []"
    c = mp.compare(x, X, dtype="float16", n=1024, c=1.0, norm="2")  # error 0.5 = tol 1024 * 2^-11: inclusive
    assert (c.error, c.tol, c.ok) == (0.5, 0.5, True)
    assert mp.compare(x, X, dtype="float16", n=1024, c=1.0).error == math.sqrt(2) / 2  # fro by default
    assert not mp.compare(x, X, dtype="float16", n=1024, c=1.0)  # tol 0.5 < 0.707: default cond is 1
    assert mp.compare(x, X, dtype="float16", n=1449).tol == 4 * 1449 * 2.0**-11  # DEFAULT_C = 4
    assert mp.compare(x, X, dtype="float16", n=1, cond=1449.0, c=1.0).tol == 1449 * 2.0**-11
    assert mp.mp_tolerance(51) == 1e-25 and mp.mp_tolerance(40, n=4) == 4e-20
    with pytest.raises(ValueError, match=r"^n: expected a positive dimension, got 0$"):
        mp.mp_tolerance(50, n=0)


def test_eigen_routes_name_their_argument_and_honour_dps():
    for fn in (mp.mp_eigsy, mp.mp_eigvalsh, mp.mp_lambda_min, mp.mp_lambda_max, mp.mp_norm_2):
        with pytest.raises(ValueError, match=r"^A: expected finite entries \(NaN or inf found\)$"):
            fn(np.array([[1.0, np.nan], [np.nan, 1.0]]))
    # each call at mpmath's default precision, so dps=80 alone must set the 80 digits
    w1 = mp.mp_eigvalsh(_TRIDIAG, dps=80)
    w2, _ = mp.mp_eigsy(_TRIDIAG, dps=80)
    lo, hi = mp.mp_lambda_min(_TRIDIAG, dps=80), mp.mp_lambda_max(_TRIDIAG, dps=80)
    n_sym, n_gen = mp.mp_norm_2(_TRIDIAG, dps=80), mp.mp_norm_2(np.array([[1.0, 2.0], [0.0, 1.0], [1.0, 0.0]]), dps=80)
    with mp.workdps(80):
        r, tol = mpmath.sqrt(2), mpmath.mpf(10) ** -78
        for w in (w1, w2):
            assert max(abs(a - b) for a, b in zip(w, [2 - r, 2, 2 + r])) <= tol
        assert abs(lo - (2 - r)) <= tol and abs(hi - (2 + r)) <= tol and abs(n_sym - (2 + r)) <= tol
        assert abs(n_gen - mpmath.sqrt(6)) <= tol


def test_cholesky_certificate_is_strict():
    """The certificate's Sylvester argument needs a factor only for a positive DEFINITE shift: a shift that
    leaves T - sigma I exactly singular (a zero pivot) must fail, or lambda_min > sigma would be 'proved' with
    lambda_min = sigma."""
    with mp.workdps(None):
        T = [[mpmath.mpf(2), mpmath.mpf(1)], [mpmath.mpf(1), mpmath.mpf(2)]]  # eigenvalues 1 and 3
        assert mp._cholesky_shifted(T, mpmath.mpf(1)) is None  # T - I = [[1, 1], [1, 1]]: singular
        assert mp._cholesky_shifted(T, mpmath.mpf(3)) is None  # indefinite
        L = mp._cholesky_shifted(T, mpmath.mpf(0.5))  # [[1.5, 1], [1, 1.5]] = L L^T
        assert abs(L[0][0] ** 2 - 1.5) <= EPS45 and abs(L[1][0] * L[0][0] - 1) <= EPS45
        assert abs(L[1][0] ** 2 + L[1][1] ** 2 - 1.5) <= EPS45 and len(L[0]) == 1 and len(L[1]) == 2
        y = mp._cholesky_solve(L, [mpmath.mpf(1), mpmath.mpf(0)])  # [[1.5, 1], [1, 1.5]]^{-1} e_1 = (1.2, -0.8)
        assert abs(y[0] - mpmath.mpf(6) / 5) <= EPS45 and abs(y[1] + mpmath.mpf(4) / 5) <= EPS45


def _rotated(d, seed: int = 7) -> mpmath.matrix:
    """Q diag(d) Q^T at 90 digits, Q a fixed random orthogonal matrix: a symmetric matrix with spectrum d."""
    rng = np.random.default_rng(seed)
    n = len(d)
    with mpmath.workdps(90):
        Q = mpmath.matrix(np.linalg.qr(rng.standard_normal((n, n)))[0].tolist())
        return Q * mpmath.diag([mpmath.mpf(x) for x in d]) * Q.T


@pytest.mark.parametrize(
    "d, path",
    [
        # isolated lambda_min: the float64 seed is off by ~u/gap, one inverse step with sigma ~1e-15 below lambda_1
        # shrinks that by ~1e-15, and Kato-Temple (r^2 <= tol * gap) stops there
        ([1, 2, 3, 4, 5], "seeded(k=1, steps=1)"),
        ([-3, -1, 0.5, 2], "seeded(k=1, steps=1)"),
        # a second eigenvalue 1e-10 above (inside 2^20 delta ~ 1e-8): a block of 2, one step
        ([1, "1.0000000001", 2, 3, 4], "seeded(k=2, steps=1)"),
        # 1e-6 above: outside the cluster window, so k = 1; the rate ~1e-6/1 per step needs a second step
        ([1, "1.000001", 2, 3], "seeded(k=1, steps=2)"),
        ([1, 1, 1, 2, 3, 4], "seeded(k=3, steps=1)"),  # a triple eigenvalue: block of 3
        ([1] * 8 + [2, 3], "seeded(k=8, steps=1)"),  # a cluster of exactly _MAX_BLOCK = 8 is still a block
        ([1] * 9 + [2], "eigsy-fallback"),  # a cluster of 9 > _MAX_BLOCK: one vector cannot converge; fallback
        ([2, 2, 2], "seeded(k=3, steps=1)"),  # the whole spectrum one cluster (k = n): no lambda_{k+1}
    ],
)
def test_lambda_min_route_follows_the_documented_algorithm(d, path):
    """Which route mp_lambda_min takes (module docstring): the block size k is the float eigenvalues' cluster
    at lambda_min, convergence takes the steps Kato-Temple predicts, and a cluster wider than 8 goes to eigsy.
    The value is checked as well, against a 90-digit eigsy."""
    M = _rotated(d)
    with mpmath.workdps(90):
        want = min(mpmath.eigsy(M, eigvals_only=True))
    for method, route in (("auto", path), ("eigsy", "eigsy")):
        info: dict = {}
        with mp.workdps(None):
            got = mp._lambda_min_rows(mp._sym_rows(mp._rows(M)), method=method, info=info)
            assert abs(got - want) <= _LAM_TOL * _max_abs(M)
        assert info == {"path": route}


def test_matrix_operations_name_their_argument_and_honour_dps():
    bad = np.array([[1.0, np.nan], [0.0, 1.0]])
    for call, name in (
        (lambda: mp.mp_sym(bad), "A"),
        (lambda: mp.mp_kron(bad, np.eye(2)), "A"),
        (lambda: mp.mp_kron(np.eye(2), bad), "B"),
        (lambda: mp.mp_vec(bad), "X"),
        (lambda: mp.mp_unvec(bad, 2, 2), "v"),
        (lambda: mp.mp_trace(bad), "A"),
        (lambda: mp.mp_norm_fro(bad), "A"),
    ):
        with pytest.raises(ValueError, match=rf"^{name}: expected finite entries \(NaN or inf found\)$"):
            call()
    # mp inputs with 201-bit entries: exact at 80 digits (~269 bits), rounded at 50 (~169 bits), so each result
    # shows which precision it ran at; every call is made at mpmath's default precision
    x = mp.to_mpf(Fraction(2**200 + 1, 2**200))  # exact (a dyadic Fraction), whatever the precision
    with mpmath.workdps(90):
        M, X1, T = mpmath.matrix([[0, x], [1, 0]]), mpmath.matrix([[x]]), mpmath.matrix([[x, 0], [0, 1]])
    assert M[0, 1] == x and T[0, 0] == x
    S_ = mp.mp_sym(M, dps=80)
    K = mp.mp_kron(X1, X1, dps=80)
    tr = mp.mp_trace(T, dps=80)
    fro = mp.mp_norm_fro(np.ones((1, 2)), dps=80)
    with mp.workdps(80):
        assert S_[0, 1] == 1 + mpmath.mpf(2) ** -201 and S_[1, 0] == S_[0, 1]  # (x + 1) / 2, exactly
        assert abs(K[0, 0] - (1 + mpmath.mpf(2) ** -199)) <= mpmath.mpf(2) ** -260  # x^2 = 1 + 2^-199 + 2^-400
        assert tr == 2 + mpmath.mpf(2) ** -200
        assert abs(fro - mpmath.sqrt(2)) <= mpmath.mpf(10) ** -78
