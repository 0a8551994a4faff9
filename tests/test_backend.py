"""Tests of krad_ref.backend: namespace detection, backend selection, creation helpers, unit roundoff, eigh."""
from __future__ import annotations

import array_api_compat
import numpy as np
import pytest

from krad_ref import backend


def _strict():
    return pytest.importorskip("array_api_strict", reason="array_api_strict not installed (pip install '.[test]')")


# ---------------------------------------------------------------------------------------------------------
# namespace(*arrays)

def test_namespace_of_numpy_and_strict_arrays():
    xp = backend.namespace(np.ones(2))
    assert backend.is_numpy(xp) and not backend.is_strict(xp) and not backend.is_cupy(xp)
    strict = _strict()
    xs = backend.namespace(strict.ones(2))
    assert backend.is_strict(xs) and not backend.is_numpy(xs)
    assert xs is strict


def test_namespace_ignores_python_scalars_and_none():
    xp = backend.namespace(None, 1, 2.5, True, 1j, np.ones(3))
    assert backend.is_numpy(xp)


def test_namespace_without_arrays_raises_type_error():
    with pytest.raises(TypeError, match="namespace: expected at least one array argument, got none"):
        backend.namespace()
    with pytest.raises(TypeError, match="namespace: expected at least one array argument"):
        backend.namespace(None, 1.0)


def test_namespace_of_mixed_libraries_raises_type_error_naming_them():
    strict = _strict()
    with pytest.raises(TypeError, match=r"namespace: arguments are not arrays of one library \(.*array_api_strict.*numpy"):
        backend.namespace(np.ones(2), strict.ones(2))


# ---------------------------------------------------------------------------------------------------------
# get_namespace / available

def test_get_namespace_by_name():
    assert backend.get_namespace("numpy") is array_api_compat.numpy
    strict = _strict()
    assert backend.get_namespace("array_api_strict") is strict
    assert backend.available("numpy")
    assert backend.available("array_api_strict")
    assert backend.BACKENDS == ("numpy", "array_api_strict", "cupy")


@pytest.mark.parametrize("name", ["torch", "NumPy", "", "jax"])
def test_get_namespace_unknown_name_raises_value_error(name):
    with pytest.raises(ValueError, match="backend name must be one of"):
        backend.get_namespace(name)


def test_cupy_unavailable_is_module_not_found_and_available_false():
    if backend.available("cupy"):
        pytest.skip("cupy and a GPU are present: the unavailable path cannot be exercised here")
    with pytest.raises(ModuleNotFoundError, match="backend 'cupy' is unavailable"):
        backend.get_namespace("cupy")
    assert backend.available("cupy") is False


@pytest.mark.cupy
def test_cupy_namespace_when_present():
    if not backend.available("cupy"):
        pytest.skip("cupy not installed or no GPU available")
    xp = backend.get_namespace("cupy")
    assert backend.is_cupy(xp)
    a = xp.eye(3, dtype=xp.float32)
    assert backend.is_cupy(backend.namespace(a))
    np.testing.assert_array_equal(backend.to_numpy(a), np.eye(3, dtype=np.float32))


# ---------------------------------------------------------------------------------------------------------
# creation helpers, device, to_numpy, dtype names

def test_creation_helpers_honour_dtype_and_device(xp):
    dev = backend.device(xp.ones(1))
    for dtype in (xp.float32, xp.float64):
        e = backend.eye(3, dtype=dtype, device=dev, xp=xp)
        z = backend.zeros((2, 3), dtype=dtype, device=dev, xp=xp)
        f = backend.full((2,), 1.5, dtype=dtype, device=dev, xp=xp)
        a = backend.asarray([1.0, 2.0], dtype=dtype, device=dev, xp=xp)
        for arr in (e, z, f, a):
            assert arr.dtype == dtype
            assert backend.namespace(arr) is backend.namespace(xp.ones(1))
            assert backend.device(arr) == dev
        np.testing.assert_array_equal(backend.to_numpy(e), np.eye(3))
        np.testing.assert_array_equal(backend.to_numpy(z), np.zeros((2, 3)))
        np.testing.assert_array_equal(backend.to_numpy(f), [1.5, 1.5])
        np.testing.assert_array_equal(backend.to_numpy(a), [1.0, 2.0])


def test_to_numpy_returns_host_ndarray(xp):
    a = xp.asarray(np.arange(6.0).reshape(2, 3))
    h = backend.to_numpy(a)
    assert isinstance(h, np.ndarray)
    np.testing.assert_array_equal(h, np.arange(6.0).reshape(2, 3))


def test_to_numpy_passes_numpy_through_unchanged():
    a = np.arange(3.0)
    assert backend.to_numpy(a) is a


def test_dtype_name_across_backends(xp):
    assert backend.dtype_name(xp.float32) == "float32"
    assert backend.dtype_name(xp.float64) == "float64"
    assert backend.dtype_name(np.dtype("float16")) == "float16"
    assert backend.dtype_name(xp.asarray([1.0]).dtype) == "float64"


class _FakeBF16:
    """A dtype object with no ``.name`` whose str mentions bfloat16 (as torch's and jax's do)."""

    def __str__(self):
        return "torch.bfloat16"


def test_dtype_name_bfloat16_is_not_float16():
    assert backend.dtype_name(_FakeBF16()) == "bfloat16"
    assert backend.unit_roundoff(_FakeBF16()) == 2.0**-8


def test_dtype_name_of_strict_integer_dtypes():
    strict = _strict()
    assert backend.dtype_name(strict.int64) == "int64"
    assert backend.dtype_name(strict.bool) == "bool"


def test_is_real_floating(xp):
    assert backend.is_real_floating(xp.ones(2, dtype=xp.float32))
    assert backend.is_real_floating(xp.ones(2, dtype=xp.float64), xp)
    assert not backend.is_real_floating(xp.ones(2, dtype=xp.int64))
    assert not backend.is_real_floating(xp.ones(2, dtype=xp.bool))


# ---------------------------------------------------------------------------------------------------------
# unit_roundoff

def test_unit_roundoff_values(xp):
    # u = eps / 2: exact powers of two, compared exactly
    assert backend.unit_roundoff(xp.ones(2, dtype=xp.float32).dtype) == 2.0**-24
    assert backend.unit_roundoff(xp.ones(2, dtype=xp.float64).dtype) == 2.0**-53
    assert backend.unit_roundoff(np.dtype("float16")) == 2.0**-11
    assert backend.unit_roundoff(xp.ones(2, dtype=xp.float32)) == 2.0**-24  # an array: its dtype is used
    assert backend.unit_roundoff(np.dtype(np.float32)) == np.finfo(np.float32).eps / 2
    assert backend.unit_roundoff(np.dtype(np.float64)) == np.finfo(np.float64).eps / 2


def test_unit_roundoff_of_namespace_dtype_objects(xp, request):
    """``unit_roundoff(xp.float32)`` as algorithm code writes it (``init(..., dtype=xp.float32, xp=xp)``)."""
    assert backend.unit_roundoff(xp.float32) == 2.0**-24
    assert backend.unit_roundoff(xp.float64) == 2.0**-53


@pytest.mark.parametrize("dtype_name", ["int32", "int64", "bool", "complex128"])
def test_unit_roundoff_rejects_non_real_floating(dtype_name):
    with pytest.raises(TypeError, match=f"unit_roundoff: expected a real floating dtype, got {dtype_name}"):
        backend.unit_roundoff(np.dtype(dtype_name))


def test_unit_roundoff_rejects_int_arrays(xp):
    with pytest.raises(TypeError, match="unit_roundoff: expected a real floating dtype"):
        backend.unit_roundoff(xp.ones(2, dtype=xp.int64))


# ---------------------------------------------------------------------------------------------------------
# eigh / eigvalsh

def _spd(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    w = 10.0 ** (-np.arange(n) / max(n - 1, 1) * 3)
    A = (Q * w) @ Q.T
    return ((A + A.T) / 2).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n", [1, 2, 7, 40])
def test_eigh_matches_numpy_and_satisfies_its_identity(xp, dtype, n):
    A_np = _spd(n, dtype, seed=n)
    u = backend.unit_roundoff(np.dtype(dtype))
    w, V = backend.eigh(xp.asarray(A_np))
    assert w.dtype == xp.asarray(A_np).dtype and V.dtype == w.dtype  # float32 in, float32 out
    assert backend.namespace(w) is backend.namespace(xp.asarray(A_np))
    w_np, V_np = backend.to_numpy(w).astype(np.float64), backend.to_numpy(V).astype(np.float64)
    assert np.all(np.diff(w_np) >= 0)  # ascending
    ref = np.linalg.eigvalsh(A_np.astype(np.float64))
    lam_max = np.abs(ref).max()
    # both are backward stable: |w - w_ref| <= c n u ||A||_2 (Weyl); c = 4 covers LAPACK's constants
    assert np.abs(w_np - ref).max() <= 4 * n * u * lam_max
    A64 = A_np.astype(np.float64)
    assert np.linalg.norm(A64 @ V_np - V_np * w_np) <= 4 * n * u * lam_max  # residual O(n u ||A||)
    assert np.linalg.norm(V_np.T @ V_np - np.eye(n)) <= 4 * n * u  # orthogonality O(n u)
    wv = backend.to_numpy(backend.eigvalsh(xp.asarray(A_np))).astype(np.float64)
    assert np.abs(wv - w_np).max() <= 4 * n * u * lam_max  # same driver family, same bound


def test_eigh_reads_only_the_lower_triangle_on_numpy():
    A = _spd(5, "float64", seed=3)
    garbage = A.copy()
    garbage[np.triu_indices(5, 1)] = 99.0
    w1, _ = backend.eigh(A)
    w2, _ = backend.eigh(garbage)
    np.testing.assert_array_equal(w1, w2)  # the same lower triangle gives bitwise the same eigenvalues
    np.testing.assert_array_equal(backend.eigvalsh(garbage), backend.eigvalsh(A))


def test_eigh_does_not_mutate_and_handles_empty():
    A = _spd(4, "float32", seed=4)
    A0 = A.copy()
    backend.eigh(A)
    backend.eigvalsh(A)
    np.testing.assert_array_equal(A, A0)
    w, V = backend.eigh(np.zeros((0, 0)))
    assert w.shape == (0,) and V.shape == (0, 0)
    assert backend.eigvalsh(np.zeros((0, 0))).shape == (0,)
