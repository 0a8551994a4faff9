"""The speed work of issue 14 changes no bit: each faster kernel against the formula it replaces.

Every comparison here is exact (``assert_array_equal``): the new code paths are claimed bit-identical to the old
ones, not close. Kernels covered: the direct LAPACK ?syevd call behind ``backend.eigh``/``eigvalsh`` (against
``scipy.linalg.eigh``), the NumPy fast path of ``backend.namespace``, Grams that skip a symmetrisation they do not
need, the unchecked Frobenius-norm kernel, the cached resolved configs, and ``backend.map_modes``' thread hand-off
(the updates' concurrent modes against the serial update at one BLAS thread: tests/test_concurrent_modes.py).
"""
from __future__ import annotations

import threading

import array_api_compat
import numpy as np
import pytest
import scipy.linalg

from krad_ref import algorithm, backend, krad, kradagrad, linalg, modes


def _sym_np(A):
    return (A + A.T) / 2


def _spectra(n, dtype, seed):
    """Representative symmetric inputs: generic SPD, indefinite, clustered (a factor after KrADagrad* steps:
    I minus small updates, where divide and conquer deflates), and rank-deficient."""
    rng = np.random.default_rng(seed)
    B = rng.standard_normal((n, n))
    G = rng.standard_normal((n, max(n // 3, 1)))
    out = [B @ B.T, B + B.T, np.eye(n) - 1e-3 * _sym_np(G @ G.T) / n, G @ G.T]
    return [M.astype(dtype) for M in out]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 2, 3, 17, 33, 65])
def test_direct_syevd_is_scipy_eigh_bit_for_bit(n, dtype):
    for i, A in enumerate(_spectra(n, dtype, seed=n)):
        for M in (A, np.asfortranarray(A), A[::-1, ::-1]):  # C order, Fortran order, a strided view
            w, V = backend.eigh(M)
            w_ref, V_ref = scipy.linalg.eigh(M, lower=True, driver="evd", check_finite=False)
            np.testing.assert_array_equal(w, w_ref, err_msg=f"input {i}")
            np.testing.assert_array_equal(V, V_ref, err_msg=f"input {i}")
            assert w.dtype == V.dtype == dtype
            w_only = scipy.linalg.eigh(M, lower=True, eigvals_only=True, driver="evd", check_finite=False)
            np.testing.assert_array_equal(backend.eigvalsh(M), w_only)


def test_direct_syevd_runs_without_the_gil_on_this_scipy():
    """The ?syevd behind backend.eigh is called through ctypes (which releases the GIL, so the modes' eighs on two
    threads overlap) whenever scipy exports the LP64 routine; the bit-for-bit test above then compares THAT route
    with scipy's wrapper. Every scipy the project supports (>= 1.13.1) exports it: its absence here would mean the
    concurrent modes silently serialise again."""
    for char in "fd":
        assert backend._nogil_syevd(char) is not None


def test_direct_syevd_leaves_its_input_alone_and_defers_other_dtypes_to_scipy():
    A = _spectra(8, np.float32, seed=1)[0]
    A0 = A.copy()
    backend.eigh(A)
    backend.eigvalsh(A)
    np.testing.assert_array_equal(A, A0)  # overwrite_a=False, as scipy.linalg.eigh on a caller's array
    assert backend._syevd(A.astype(np.float16), compute_v=1) is None  # scipy's own dtype handling decides
    w, _ = backend.eigh(A.astype(np.float16))
    w_ref = scipy.linalg.eigh(A.astype(np.float16), lower=True, driver="evd", check_finite=False)[0]
    np.testing.assert_array_equal(w, w_ref.astype(np.float16))


def test_numpy_namespace_fast_path_is_array_api_compat_answer():
    a, b = np.ones(3), np.ones((2, 2), dtype=np.float32)
    assert backend.namespace(a, None, 2.0, b) is array_api_compat.array_namespace(a, b)
    assert backend.namespace(np.float32(1.0)) is array_api_compat.array_namespace(np.float32(1.0))
    with pytest.raises(TypeError, match="expected at least one array"):
        backend.namespace(None, 1.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (5, 3), (3, 5), (64, 40), (40, 300)])
def test_numpy_gram_is_exactly_symmetric_so_its_symmetrisation_is_skipped(shape, dtype):
    """The property ``backend.gram_via_syrk`` claims for contiguous NumPy matrices (syrk plus a copied triangle),
    checked on this NumPy for C- and Fortran-order gradients; mode_statistic, which skips the symmetrisation
    then, equals the old symmetrised Gram bit for bit, also on a strided gradient, where it still symmetrises."""
    xp = backend.get_namespace("numpy")
    rng = np.random.default_rng(sum(shape))
    G0 = rng.standard_normal(shape).astype(dtype)
    strided = rng.standard_normal((shape[0], 2 * shape[1])).astype(dtype)[:, ::2]
    for G in (G0, np.asfortranarray(G0), strided):
        if G is not strided:
            assert modes.gram_is_exactly_symmetric(G, xp)
        for k in (0, 1):
            A = modes.mode_gram(G, k)
            if modes.gram_is_exactly_symmetric(G, xp):
                np.testing.assert_array_equal(A, A.T)
            np.testing.assert_array_equal(krad.mode_statistic(G, k), _sym_np(A))


def test_numpy_gram_of_a_strided_matrix_need_not_be_symmetric():
    """Why the strided case keeps its symmetrisation: NumPy copies it into two buffers and calls ?gemm."""
    G = np.random.default_rng(340).standard_normal((100, 600))[:, ::2]
    assert not modes.gram_is_exactly_symmetric(G, backend.get_namespace("numpy"))
    A = G.T @ G
    if np.array_equal(A, A.T):
        pytest.skip("this BLAS happens to return a symmetric GEMM here; the claim is only that it need not")


def test_gram_symmetry_is_claimed_only_where_it_holds_by_construction():
    xp = backend.get_namespace("numpy")
    assert modes.gram_is_exactly_symmetric(np.ones(4), xp)  # x_i x_j = x_j x_i
    assert not modes.gram_is_exactly_symmetric(np.ones((2, 3, 4)), xp)  # tensordot: a GEMM of two buffers
    strict = pytest.importorskip("array_api_strict")
    assert not modes.gram_is_exactly_symmetric(strict.ones((2, 3)), strict)
    T = np.random.default_rng(0).standard_normal((4, 3, 5))
    for k in range(3):  # the tensor path still symmetrises, as before
        np.testing.assert_array_equal(krad.mode_statistic(T, k), _sym_np(modes.mode_gram(T, k)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unchecked_frobenius_kernel_is_norm_fro_bit_for_bit_with_its_errors(dtype):
    xp = backend.get_namespace("numpy")
    rng = np.random.default_rng(2)
    for A in (rng.standard_normal((7, 5)).astype(dtype), np.zeros((3, 3), dtype), np.zeros((0, 4), dtype)):
        np.testing.assert_array_equal(linalg._norm_fro(A, xp), linalg.norm_fro(A))
    for bad in (np.inf, np.nan):
        A = np.ones((3, 3), dtype)
        A[1, 2] = bad
        with pytest.raises(ValueError, match=r"^A: expected finite values, got 1 NaN or inf entry$"):
            linalg._norm_fro(A, xp)


def test_resolved_config_cache_returns_what_resolved_returns():
    for cfg in (kradagrad.KradagradStarConfig(), kradagrad.KradagradStarConfig(variant="reference-code"),
                kradagrad.KradagradConfig(variant="reference-code", root_freq=2)):
        assert kradagrad._resolved(cfg) == cfg.resolved()
        assert kradagrad._resolved(cfg) is kradagrad._resolved(cfg)


# ---------------------------------------------------------------------------------------------------------
# concurrent modes

def _blas_threads(n):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    backend._controller()  # loads SciPy's OpenBLAS first, so the limit reaches it too
    return threadpoolctl.threadpool_limits(limits=n, user_api="blas")


def _needs_two_cores():
    if backend._cores() < 2:
        pytest.skip("concurrency needs two cores")


def test_map_modes_runs_tasks_on_pool_threads_in_mode_order(monkeypatch):
    _needs_two_cores()
    monkeypatch.setattr(backend, "PARALLEL_MODES", True)
    names = {}
    barrier = threading.Barrier(2, timeout=30)

    def task(i):
        barrier.wait()  # returns only when both tasks run at the same time: proves concurrency
        names[i] = threading.current_thread().name
        return 10 * i

    with _blas_threads(2):
        assert backend.map_modes(task, 2, like=np.ones(2), order=1) == [0, 10]
    assert all(name.startswith("krad_ref-modes") for name in names.values())


def test_map_modes_stays_serial_without_a_thread_budget_or_when_off(monkeypatch):
    caller = threading.current_thread().name
    ran_on = []

    def task(i):
        ran_on.append(threading.current_thread().name)
        return i

    monkeypatch.setattr(backend, "PARALLEL_MODES", True)
    with _blas_threads(1):  # the caller's budget of one BLAS thread: serial, in the caller's thread
        assert backend.map_modes(task, 3, like=np.ones(2), order=1) == [0, 1, 2]
    monkeypatch.setattr(backend, "PARALLEL_MODES", False)
    with _blas_threads(2):
        assert backend.map_modes(task, 3, like=np.ones(2), order=10_000) == [0, 1, 2]
    monkeypatch.setattr(backend, "PARALLEL_MODES", "auto")
    with _blas_threads(2):  # below PARALLEL_MIN_ORDER
        assert backend.map_modes(task, 3, like=np.ones(2), order=backend.PARALLEL_MIN_ORDER - 1) == [0, 1, 2]
    assert set(ran_on) == {caller}
    monkeypatch.setattr(backend, "PARALLEL_MODES", "yes")
    with pytest.raises(ValueError, match="PARALLEL_MODES: expected 'auto', True or False, got 'yes'"):
        backend.map_modes(task, 2, like=np.ones(2), order=1)


def test_map_modes_raises_the_first_error_in_mode_order(monkeypatch):
    _needs_two_cores()
    monkeypatch.setattr(backend, "PARALLEL_MODES", True)

    def task(i):
        raise ValueError(f"mode {i}")

    with _blas_threads(2), pytest.raises(ValueError, match="^mode 0$"):
        backend.map_modes(task, 2, like=np.ones(2), order=1)
