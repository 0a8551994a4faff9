"""Tests of krad_ref.validate: every check's pass and fail cases, with messages naming the argument."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krad_ref import backend, validate
from proofs_check import strategies as PS


def _spd(n, kappa=10.0, seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = (Q * kappa ** (-np.arange(n) / max(n - 1, 1))) @ Q.T
    return (A + A.T) / 2


# ---------------------------------------------------------------------------------------------------------
# float_array / matrix / square

def test_float_array_accepts_real_floating_and_returns_namespace(xp):
    for dtype in (xp.float32, xp.float64):
        x = xp.ones((2, 3), dtype=dtype)
        assert validate.float_array(x, "G") is backend.namespace(x)
        assert validate.float_array(x, "G", ndim=2) is backend.namespace(x)
        assert validate.float_array(x, "G", xp=xp) is xp


def test_float_array_rejections_name_the_argument(xp):
    with pytest.raises(TypeError, match="G: expected an array, got None"):
        validate.float_array(None, "G")
    with pytest.raises(TypeError, match="G: expected an array, got list"):
        validate.float_array([[1.0, 2.0]], "G")
    with pytest.raises(TypeError, match="G: expected an array, got float"):
        validate.float_array(1.5, "G")
    # dtype names: "int64" for NumPy, "array_api_strict.int64" for strict (see test_backend's xfail)
    with pytest.raises(TypeError, match=r"G: expected a real floating array, got (array_api_strict\.)?int64"):
        validate.float_array(xp.ones(3, dtype=xp.int64), "G")
    with pytest.raises(TypeError, match=r"G: expected a real floating array, got (array_api_strict\.)?bool"):
        validate.float_array(xp.ones(3, dtype=xp.bool), "G")
    with pytest.raises(ValueError, match=r"G: expected a 2-D array, got shape \(3,\)"):
        validate.float_array(xp.ones(3, dtype=xp.float64), "G", ndim=2)


def test_matrix_and_square(xp):
    A = xp.ones((3, 3), dtype=xp.float64)
    assert validate.matrix(xp.ones((2, 5), dtype=xp.float64), "W") is backend.namespace(A)
    assert validate.square(A, "L") is backend.namespace(A)
    with pytest.raises(ValueError, match=r"W: expected a 2-D array, got shape \(2, 2, 2\)"):
        validate.matrix(xp.ones((2, 2, 2), dtype=xp.float64), "W")
    with pytest.raises(ValueError, match=r"L: expected a square matrix, got shape \(2, 3\)"):
        validate.square(xp.ones((2, 3), dtype=xp.float64), "L")
    with pytest.raises(ValueError, match=r"L: expected a non-empty matrix, got shape \(0, 0\)"):
        validate.square(xp.ones((0, 0), dtype=xp.float64), "L")
    with pytest.raises(TypeError, match=r"L: expected a real floating array, got (array_api_strict\.)?int32"):
        validate.square(xp.ones((2, 2), dtype=xp.int32), "L")


# ---------------------------------------------------------------------------------------------------------
# finite

def test_finite(xp):
    ok = xp.asarray(np.array([[1.0, -2.0], [3.0, 1e300]]))
    assert validate.finite(ok, "G") is backend.namespace(ok)
    with pytest.raises(ValueError, match="G: expected finite values, got 1 NaN or inf entry$"):
        validate.finite(xp.asarray(np.array([1.0, np.nan])), "G")
    with pytest.raises(ValueError, match="G: expected finite values, got 2 NaN or inf entries"):
        validate.finite(xp.asarray(np.array([np.inf, -np.inf, 0.0])), "G")


# ---------------------------------------------------------------------------------------------------------
# symmetric

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_symmetric_tolerance_is_8_n_u_max_abs(xp, dtype):
    n = 6
    u = backend.unit_roundoff(np.dtype(dtype))
    A = _spd(n).astype(dtype)
    tol = validate.SYM_TOL_FACTOR * n * u * np.abs(A).max()
    assert validate.symmetric(xp.asarray(A), "L") is backend.namespace(xp.asarray(A))
    # an asymmetry of a tenth of the tolerance (rounding of a product of symmetric matrices) passes
    B = A.astype(np.float64)
    B[0, 1] += 0.1 * tol
    validate.symmetric(xp.asarray(B.astype(dtype)), "L")
    # ten times the tolerance is a defect, reported with the measured asymmetry and the tolerance
    C = A.astype(np.float64)
    C[0, 1] += 10 * tol
    with pytest.raises(ValueError, match=r"L: expected a symmetric matrix, but max\|L - L\^T\| = .* > tol = "):
        validate.symmetric(xp.asarray(C.astype(dtype)), "L")


def test_symmetric_custom_rtol_and_prior_checks(xp):
    A = xp.asarray(np.array([[1.0, 0.5], [0.4, 1.0]]))
    with pytest.raises(ValueError, match="R: expected a symmetric matrix"):
        validate.symmetric(A, "R")
    validate.symmetric(A, "R", rtol=0.2)  # |0.1| <= 0.2 * max|A| = 0.2
    with pytest.raises(ValueError, match="R: expected finite values"):
        validate.symmetric(xp.asarray(np.array([[1.0, np.nan], [np.nan, 1.0]])), "R")
    with pytest.raises(ValueError, match="R: expected a square matrix"):
        validate.symmetric(xp.ones((2, 3), dtype=xp.float64), "R")


# ---------------------------------------------------------------------------------------------------------
# psd_eigenvalues / symmetric_pd

def test_psd_eigenvalues_boundaries(xp):
    n, dtype = 4, np.dtype("float64")
    u = backend.unit_roundoff(dtype)
    tol = 4.0 * n * u * 2.0  # 4 n u lambda_max with lambda_max = 2
    w = lambda lo: xp.asarray(np.array([lo, 0.5, 1.0, 2.0]))  # noqa: E731
    validate.psd_eigenvalues(w(0.1), "L", n=n, dtype=dtype, strict=True)
    validate.psd_eigenvalues(w(-0.5 * tol), "L", n=n, dtype=dtype, strict=False)  # rounding: PSD
    with pytest.raises(ValueError, match=r"L: expected a positive semi-definite matrix, but lambda_min = .* < -tol"):
        validate.psd_eigenvalues(w(-2 * tol), "L", n=n, dtype=dtype, strict=False)
    pd_tol = u * 2.0  # PD: lambda_min > u lambda_max (condition number below 1/u), no factor n
    with pytest.raises(ValueError, match=r"L: expected a positive definite matrix, but lambda_min = .* <= tol = .*"
                                         r"\(lambda_max = 2\)"):
        validate.psd_eigenvalues(w(0.5 * pd_tol), "L", n=n, dtype=dtype, strict=True)
    validate.psd_eigenvalues(w(2 * pd_tol), "L", n=n, dtype=dtype, strict=True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_symmetric_pd(xp, dtype):
    A = _spd(5, kappa=1e3).astype(dtype)
    assert validate.symmetric_pd(xp.asarray(A), "R") is backend.namespace(xp.asarray(A))
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    singular = ((Q * np.array([1.0, 0.5, 0.25, 0.1, 0.0])) @ Q.T)
    singular = ((singular + singular.T) / 2).astype(dtype)
    with pytest.raises(ValueError, match="R: expected a positive definite matrix"):
        validate.symmetric_pd(xp.asarray(singular), "R")
    validate.symmetric_pd(xp.asarray(singular), "R", strict=False)  # PSD: rounding of the zero passes
    indefinite = xp.asarray(np.array([[1.0, 2.0], [2.0, 1.0]], dtype=dtype))
    for strict in (True, False):
        with pytest.raises(ValueError, match="R: expected a positive (semi-)?definite matrix"):
            validate.symmetric_pd(indefinite, "R", strict=strict)
    with pytest.raises(ValueError, match="R: expected a symmetric matrix"):
        validate.symmetric_pd(xp.asarray(np.array([[2.0, 1.0], [0.0, 2.0]], dtype=dtype)), "R")


# ---------------------------------------------------------------------------------------------------------
# same_dtype / same_shape

def test_same_dtype(xp):
    a32, b32 = xp.ones(2, dtype=xp.float32), xp.ones(3, dtype=xp.float32)
    a64 = xp.ones(2, dtype=xp.float64)
    validate.same_dtype(L=a32, R=b32, G=None)
    validate.same_dtype()
    validate.same_dtype(L=None)
    with pytest.raises(TypeError, match="R: dtype float64 does not match L's float32"):
        validate.same_dtype(L=a32, R=a64)
    with pytest.raises(TypeError, match="G: dtype float64 does not match L's float32"):
        validate.same_dtype(L=a32, R=b32, G=a64)


def test_same_shape(xp):
    a, b = xp.ones((2, 3), dtype=xp.float64), xp.ones((2, 3), dtype=xp.float32)
    validate.same_shape(W=a, G=b, M=None)
    validate.same_shape()
    with pytest.raises(ValueError, match=r"G: shape \(3, 2\) does not match W's \(2, 3\)"):
        validate.same_shape(W=a, G=xp.ones((3, 2), dtype=xp.float64))


# ---------------------------------------------------------------------------------------------------------
# scalars

def test_positive_int():
    assert validate.positive_int(3, "k") == 3
    assert validate.positive_int(np.int64(5), "k") == 5 and type(validate.positive_int(np.int64(5), "k")) is int
    assert validate.positive_int(0, "k", minimum=0) == 0
    with pytest.raises(ValueError, match="k: expected an integer >= 1, got 0"):
        validate.positive_int(0, "k")
    with pytest.raises(ValueError, match="k: expected an integer >= 2, got 1"):
        validate.positive_int(1, "k", minimum=2)
    with pytest.raises(TypeError, match="k: expected an integer, got bool"):
        validate.positive_int(True, "k")
    with pytest.raises(TypeError, match="k: expected an integer, got float"):
        validate.positive_int(2.0, "k")
    with pytest.raises(TypeError, match="k: expected an integer, got str"):
        validate.positive_int("2", "k")


def test_real_scalar():
    assert validate.real_scalar(2, "eta") == 2.0 and type(validate.real_scalar(2, "eta")) is float
    assert validate.real_scalar(np.float32(0.5), "eta") == 0.5
    assert validate.real_scalar(0.0, "eps", low=0.0) == 0.0  # closed bound includes the end point
    with pytest.raises(ValueError, match="eps: expected a value > 0.0, got 0.0"):
        validate.real_scalar(0.0, "eps", low=0.0, low_open=True)
    with pytest.raises(ValueError, match="eps: expected a value >= 0.0, got -1.0"):
        validate.real_scalar(-1.0, "eps", low=0.0)
    with pytest.raises(ValueError, match="beta: expected a value <= 1.0, got 1.5"):
        validate.real_scalar(1.5, "beta", high=1.0)
    with pytest.raises(ValueError, match="beta: expected a value < 1.0, got 1.0"):
        validate.real_scalar(1.0, "beta", high=1.0, high_open=True)
    validate.real_scalar(1.0, "beta", high=1.0)
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError, match="eta: expected a finite number"):
            validate.real_scalar(bad, "eta")
    with pytest.raises(TypeError, match="eta: expected a real number, got bool"):
        validate.real_scalar(False, "eta")
    with pytest.raises(TypeError, match="eta: expected a real number, got str"):
        validate.real_scalar("0.1", "eta")
    with pytest.raises(TypeError, match="eta: expected a real number, got complex"):
        validate.real_scalar(1j, "eta")


def test_one_of():
    validate.one_of("spectral", "t_rule", ("spectral", "frobenius"))
    with pytest.raises(ValueError, match=r"t_rule: expected one of \('spectral', 'frobenius'\), got 'trace'"):
        validate.one_of("trace", "t_rule", ["spectral", "frobenius"])


# ---------------------------------------------------------------------------------------------------------
# the numerical-rank rule

def test_zero_tolerance_formula_and_rcond():
    u64, u32 = 2.0**-53, 2.0**-24
    assert validate.zero_tolerance(3.0, n=5, dtype=np.float64) == 4.0 * 5 * u64 * 3.0  # exact: powers of 2 times ints
    assert validate.zero_tolerance(3.0, n=5, dtype=np.float32) == 4.0 * 5 * u32 * 3.0
    lam = np.array([1.0, 2.0])  # a stack of spectra: one tau per matrix
    np.testing.assert_array_equal(validate.zero_tolerance(lam, n=2, dtype=np.float64), 8.0 * u64 * lam)
    assert validate.zero_tolerance(3.0, n=5, dtype=np.float64, rcond=0.25) == 0.75
    with pytest.raises(ValueError, match="rcond: expected a value >= 0"):
        validate.zero_tolerance(1.0, n=2, dtype=np.float64, rcond=-1.0)
    with pytest.raises(TypeError, match="rcond: expected a real number"):
        validate.zero_tolerance(1.0, n=2, dtype=np.float64, rcond="0.1")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_rank_rule_separates_exact_zeros_from_nonzeros_on_every_namespace(xp, dtype, data):
    """The premise of the rule, checked where it is used: for an exactly rank-r statistic (exact in dtype, so its
    null space is exact), eigh on every namespace returns the n - r zeros within tau = 4 n u lambda_max (either
    sign) and the r nonzero eigenvalues above tau, so rank = #{|lambda| > tau} = r everywhere."""
    max_lc = {"float32": 3, "float64": 8}[dtype]  # lambda_r >> tau, so the rank is decidable at all
    stat = data.draw(PS.rank_deficient_statistics(PS.dims(2, 8), dtype=dtype, max_log10_cond=max_lc), label="S")
    n = stat.S.shape[0]
    w = backend.to_numpy(backend.eigvalsh(xp.asarray(stat.S.astype(dtype))))  # the driver psd_power uses
    tau = validate.zero_tolerance(float(np.max(np.abs(w))), n=n, dtype=np.dtype(dtype))
    small = np.sort(np.abs(w))
    assert np.all(small[: n - stat.r] <= tau), (small, tau)
    assert np.all(small[n - stat.r:] > tau), (small, tau)
    validate.psd_eigenvalues(xp.asarray(np.sort(w)), "S", n=n, dtype=np.dtype(dtype), strict=False)  # PSD verdict


def test_norm_limit_refuses_above_names_the_argument_and_leaves_nan_to_finite(xp):
    # ||x||_F = 5e19 for x = (3e19, 4e19): its square overflows float32, the norm computed here must not
    x = xp.asarray(np.array([3.0, 4.0], dtype=np.float32) * np.float32(1e19))
    validate.norm_limit(x, "grad", limit=5.01e19, what="g^2")  # 5e19 (to float32 rounding, 1e-7) < 5.01e19
    with pytest.raises(validate.OverflowLimitError, match=r"grad: \|\|grad\|\|_F = 5e\+19 is above the overflow "
                                                          r"limit 4.9e\+19 of g\^2 in float32"):
        validate.norm_limit(x, "grad", limit=4.9e19, what="g^2")
    validate.norm_limit(xp.asarray(np.array([np.nan, 3e19], dtype=np.float32)), "grad", limit=1.0, what="g^2")
