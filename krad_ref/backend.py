"""The array layer: which library an array comes from, and the few things the standard leaves out.

This is the only module of ``krad_ref`` that knows which array libraries exist. Everything else takes
``xp`` from its array arguments (``xp = backend.namespace(A, B)``) and uses only the Python array API
standard (https://data-apis.org/array-api/) through it, so the same source runs on NumPy (CPU), CuPy (GPU)
and ``array_api_strict`` (the standard and nothing more; the tests use it to prove that).

Conventions, after SciPy's and scikit-learn's array-API code:
  * "array type in equals array type out": results have the namespace, device and dtype of the inputs
    unless a function documents a ``dtype`` option;
  * there is no process-wide switch: the namespace always comes from the arguments;
  * nothing moves between devices silently: only :func:`to_numpy` copies to the host.
"""
from __future__ import annotations

import contextvars
import importlib
import importlib.util
import os
import sys
import threading
from typing import Any, Callable, NamedTuple

import array_api_compat

__all__ = [
    "BACKENDS",
    "namespace",
    "get_namespace",
    "available",
    "is_numpy",
    "is_cupy",
    "is_strict",
    "device",
    "asarray",
    "eye",
    "zeros",
    "full",
    "to_numpy",
    "unit_roundoff",
    "dtype_name",
    "is_real_floating",
    "all_finite",
    "vector_norm",
    "astype",
    "zeros_like",
    "transpose_for_reading",
    "max_abs",
    "eigh",
    "eigvalsh",
    "rng",
    "PARALLEL_MODES",
    "PARALLEL_MIN_ORDER",
    "PARALLEL_SERIAL_SPEEDUP",
    "ModeCheck",
    "map_modes",
    "map_mode_stages",
    "gram_via_syrk",
]

#: The backends a caller may select by name, simplest first.
BACKENDS = ("numpy", "array_api_strict", "cupy")


def namespace(*arrays: Any):
    """Return the array-API namespace of ``arrays`` (``array_api_compat.array_namespace``).

    Python scalars and ``None`` are ignored, as in the standard's type promotion rules.

    Raises:
      TypeError: if no argument is an array, or if they come from different libraries.
    """
    # plain ndarrays (the common case, asked several times per update): what array_namespace returns for them,
    # without its per-call inspection (~10 us; issue 14's small-problem overhead)
    nd = _NDARRAY
    if nd is not None:
        seen = False
        for a in arrays:
            if type(a) is nd:
                seen = True
            elif a is not None:
                break
        else:
            if seen:
                return _NUMPY_NS
    arrs = [a for a in arrays if a is not None and not isinstance(a, (bool, int, float, complex))]
    if not arrs:
        raise TypeError("namespace: expected at least one array argument, got none")
    np = sys.modules.get("numpy")
    if np is not None and all(type(a) is np.ndarray for a in arrs):
        return _numpy_namespace()
    try:
        return array_api_compat.array_namespace(*arrs)
    except TypeError as exc:
        kinds = sorted({type(a).__module__ + "." + type(a).__name__ for a in arrs})
        raise TypeError(f"namespace: arguments are not arrays of one library ({', '.join(kinds)}): {exc}") from None


_NUMPY_NS = None
_NDARRAY = None  # numpy.ndarray once the NumPy namespace has been asked for (the fast path above)


def _numpy_namespace():
    global _NUMPY_NS, _NDARRAY
    if _NUMPY_NS is None:
        _NUMPY_NS = importlib.import_module("array_api_compat.numpy")
        _NDARRAY = sys.modules["numpy"].ndarray
    return _NUMPY_NS


def get_namespace(name: str):
    """Select a backend by name: ``"numpy"``, ``"cupy"`` or ``"array_api_strict"``.

    Raises:
      ValueError: for an unknown name.
      ModuleNotFoundError: if the library is not installed (CuPy also needs a usable GPU).
    """
    if name == "numpy":
        return importlib.import_module("array_api_compat.numpy")
    if name == "array_api_strict":
        return importlib.import_module("array_api_strict")
    if name == "cupy":
        try:
            import cupy  # noqa: F401

            cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # ImportError, or CUDA runtime errors when no GPU is present
            raise ModuleNotFoundError(f"backend 'cupy' is unavailable: {exc}") from None
        return importlib.import_module("array_api_compat.cupy")
    raise ValueError(f"backend name must be one of {BACKENDS}, got {name!r}")


def available(name: str) -> bool:
    """True when :func:`get_namespace` would succeed for ``name``."""
    try:
        get_namespace(name)
    except ModuleNotFoundError:
        return False
    return True


def is_numpy(xp) -> bool:
    # the namespace that namespace() hands out for ndarrays, recognised without array_api_compat's name lookup
    return (xp is _NUMPY_NS and xp is not None) or array_api_compat.is_numpy_namespace(xp)


def is_cupy(xp) -> bool:
    return array_api_compat.is_cupy_namespace(xp)


def is_strict(xp) -> bool:
    return array_api_compat.is_array_api_strict_namespace(xp)


def device(x):
    """The device an array lives on (``array_api_compat.device``)."""
    return array_api_compat.device(x)


def asarray(obj, *, dtype=None, device=None, xp):
    """``xp.asarray`` honouring ``dtype`` and ``device``; never changes the library of ``obj`` silently."""
    return xp.asarray(obj, dtype=dtype, device=device)


def eye(n: int, *, dtype, device=None, xp):
    """The n x n identity in ``dtype`` on ``device``."""
    return xp.eye(n, dtype=dtype, device=device)


def zeros(shape, *, dtype, device=None, xp):
    return xp.zeros(shape, dtype=dtype, device=device)


def full(shape, fill_value, *, dtype, device=None, xp):
    return xp.full(shape, fill_value, dtype=dtype, device=device)


def to_numpy(x):
    """Copy an array of any supported backend to a NumPy ``ndarray`` on the host.

    This is the only sanctioned device-to-host transfer (reports and crossval call it, algorithms never do).
    """
    import numpy as np

    if isinstance(x, np.ndarray):
        return x
    if array_api_compat.is_cupy_array(x):
        return x.get()
    try:
        return np.from_dlpack(x)
    except (TypeError, AttributeError, BufferError, RuntimeError):
        return np.asarray(x)


_DTYPE_NAMES = ("bfloat16", "float16", "float32", "float64", "complex64", "complex128",
                "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool")


def dtype_name(dtype) -> str:
    """``"float32"``/``"float64"``/... for a dtype of any backend (a dtype object, or a scalar type such as
    ``np.float32``, which is what ``array_api_compat.numpy.float32`` is)."""
    name = getattr(dtype, "name", None)
    if isinstance(name, str):
        return name
    if isinstance(dtype, type) and hasattr(dtype, "dtype"):  # NumPy/CuPy scalar type
        import numpy as np

        return np.dtype(dtype).name
    text = str(dtype)
    # longest names first: "bfloat16" contains "float16", "uint8" contains "int8"
    for cand in sorted(_DTYPE_NAMES, key=len, reverse=True):
        if text.endswith(cand) or f"'{cand}'" in text or f".{cand}" in text:
            return cand
    return text


_UNIT_ROUNDOFF = {"float16": 2.0**-11, "bfloat16": 2.0**-8, "float32": 2.0**-24, "float64": 2.0**-53}


def unit_roundoff(dtype) -> float:
    """Unit roundoff u = eps/2 of a real floating dtype (2**-24 for float32, 2**-53 for float64).

    Accepts a dtype of any backend, or an array (its dtype is used). Tolerances throughout krad_ref are
    written as (small constant) x n x u x (condition number), after Higham, *Accuracy and Stability of
    Numerical Algorithms*, 2nd ed., Sec. 2.2 and 3.1.
    """
    # an array (anything with a shape) stands for its dtype; a scalar type like np.float32 is a dtype itself
    is_array = hasattr(dtype, "shape") and hasattr(dtype, "dtype") and not isinstance(dtype, type)
    dt = dtype.dtype if is_array else dtype
    key = (type(dt), dt)  # the type first: dtypes of two libraries are never compared with each other
    try:
        return _UNIT_ROUNDOFF_OF[key]  # the answer below, remembered per dtype object (hashable dtypes only)
    except (KeyError, TypeError):
        pass
    name = dtype_name(dt)
    if name not in _UNIT_ROUNDOFF:
        raise TypeError(f"unit_roundoff: expected a real floating dtype, got {name}")
    try:
        _UNIT_ROUNDOFF_OF[key] = _UNIT_ROUNDOFF[name]
    except TypeError:  # an unhashable dtype object
        pass
    return _UNIT_ROUNDOFF[name]


_UNIT_ROUNDOFF_OF: dict = {}


def is_real_floating(x, xp=None) -> bool:
    """True when the array ``x`` has a real floating dtype."""
    if type(x) is _NDARRAY:
        return x.dtype.kind == "f"  # NumPy's real floating kinds: what isdtype(., "real floating") tests, faster
    xp = namespace(x) if xp is None else xp
    if is_numpy(xp) and hasattr(x.dtype, "kind"):
        return x.dtype.kind == "f"
    return bool(xp.isdtype(x.dtype, "real floating"))


def vector_norm(x, xp):
    """``xp.linalg.vector_norm(x)`` (2-norm over all entries), the same bits.

    For an ndarray, NumPy's own computation without its two Python wrappers (``vector_norm`` ravels x and calls
    ``norm(x, axis=0, ord=2)``, which returns ``sqrt(add.reduce((x.conj() * x).real, axis=0))``; for real x,
    x.conj() * x is x * x exactly): the same ufuncs on the same operands, in the same order."""
    if type(x) is _NDARRAY and x.dtype.kind == "f":
        np = sys.modules["numpy"]
        r = x.ravel()
        return np.sqrt(np.add.reduce(r * r, axis=0))
    return xp.linalg.vector_norm(x)


def astype(x, dtype, xp, *, copy: bool = True):
    """``xp.astype(x, dtype, copy=copy)``; for an ndarray, ``x.astype(dtype, copy=copy)`` directly (what the
    compatibility layer's astype calls after its device check, which a host array always passes)."""
    if type(x) is _NDARRAY:
        return x.astype(dtype, copy=copy)
    return xp.astype(x, dtype, copy=copy)


def zeros_like(x, xp):
    """``xp.zeros_like(x)``; for an ndarray, NumPy's own (the compatibility layer's adds only a device check)."""
    if type(x) is _NDARRAY:
        return sys.modules["numpy"].zeros_like(x)
    return xp.zeros_like(x)


def max_abs(x, xp):
    """``xp.max(xp.abs(x))`` of a non-empty array, as the reduction returns it (NaN if x holds a NaN).

    For an ndarray, ``np.maximum.reduce``: what ``np.max`` calls after its Python argument handling, so the same
    value, a third of the cost on a small array."""
    if type(x) is _NDARRAY:
        np = sys.modules["numpy"]
        return np.maximum.reduce(np.abs(x), axis=None)
    return xp.max(xp.abs(x))


#: transpose_for_reading pads float32 matrices of at least this order (below, reading A.T is as fast; for
#: float64 the padded copy measured slower at 512 and barely faster above)
TRANSPOSE_PAD_MIN_ORDER = 384
_ROW_PAD = 48  # float32 entries (192 bytes): rows of n + 48 entries no longer map a column onto a few cache sets


def transpose_for_reading(A, xp):
    """An array equal to A^T, entry for entry, for an elementwise operation with A (``A + A^T``, ``A == A^T``:
    the symmetrisations' and the symmetry test's one pass that reads A transposed), so the operation's results are
    the plain expression's bit for bit.

    Reading A^T walks down the columns of A; with a power-of-two row length (512 float32 = 2048 bytes) the
    entries of a column fall into a few cache sets and evict each other. For a C-contiguous float32 ndarray of
    order >= :data:`TRANSPOSE_PAD_MIN_ORDER`, A is first copied into rows padded by 192 bytes (one contiguous pass)
    and the transposed view of that copy is returned: ``A + A^T`` measured 3x faster at 512, 1024 and 2048 (0.63
    -> 0.17 ms, 4.5 -> 1.3 ms, 27 -> 9 ms on this machine), and its result is C-ordered as before. Otherwise
    ``A.T`` (``matrix_transpose`` for a stack).
    """
    if (type(A) is _NDARRAY and A.ndim == 2 and A.dtype.char == "f" and A.flags.c_contiguous
            and A.shape[0] == A.shape[1] and A.shape[0] >= TRANSPOSE_PAD_MIN_ORDER):
        n = A.shape[0]
        padded = sys.modules["numpy"].empty((n, n + _ROW_PAD), dtype=A.dtype)
        padded[:, :n] = A
        return padded[:, :n].T
    return A.T if A.ndim == 2 else xp.matrix_transpose(A)


def all_finite(x, xp):
    """``all(isfinite(x))`` as a 0-d boolean of ``x``'s library (not synchronised: callers combine several).

    For an ndarray, the same two ufuncs without the compatibility layer's wrapper of ``all`` (a third of the
    cost of a small array's test)."""
    if type(x) is _NDARRAY:
        np = sys.modules["numpy"]
        return np.logical_and.reduce(np.isfinite(x), axis=None)
    return xp.all(xp.isfinite(x))


def _eigh_failed(A, exc) -> ValueError:
    """The one translation of a symmetric eigensolver's failure (numpy.linalg.LinAlgError from LAPACK, also what
    array_api_strict and CuPy raise) into krad_ref's error: a ValueError naming ``A``, never a library's own."""
    xp = namespace(A)
    big = float(xp.max(xp.abs(A))) if A.size else 0.0
    return ValueError(f"A: the symmetric eigendecomposition failed ({exc}); max|A| = {big:.3g} in "
                      f"{dtype_name(A.dtype)}: a non-finite entry, or entries near the overflow (or underflow) "
                      f"threshold {float(xp.finfo(A.dtype).max):.3g} ({float(xp.finfo(A.dtype).smallest_normal):.3g})")


def eigh(A):
    """Symmetric eigendecomposition ``(w, V)`` with ascending ``w`` and ``A = V diag(w) V^T``.

    NumPy arrays go to LAPACK's divide-and-conquer driver (``scipy.linalg.eigh(driver="evd")``): at 1024^2
    float32 it is 1.6-1.9x faster than ``numpy.linalg.eigh`` and scipy's default ``evr`` (see
    ``shared/notes/performance.md``), with the same backward stability (residual O(n u ||A||_2)). Other
    namespaces, and stacks (..., n, n) on every backend, keep their own batched ``linalg.eigh``. Only the lower
    triangle is read; callers symmetrize first. A solver failure (no convergence: in practice inf/NaN or entries near the dtype's range limits) raises a
    ValueError naming ``A`` (:func:`_eigh_failed`), the same on every backend.
    """
    import numpy as np

    xp = _NUMPY_NS if type(A) is _NDARRAY else namespace(A)
    try:
        if is_numpy(xp) and A.ndim == 2:
            if A.shape[-1] == 0:
                return np.linalg.eigh(A)
            res = _syevd(A, compute_v=1)
            if res is None:  # not float32/64, or LAPACK reported a failure: scipy answers or raises its error
                import scipy.linalg

                res = scipy.linalg.eigh(A, lower=True, driver="evd", check_finite=False)
            w, V = res
            return w.astype(A.dtype, copy=False), V.astype(A.dtype, copy=False)
        res = xp.linalg.eigh(A)
    except np.linalg.LinAlgError as exc:
        raise _eigh_failed(A, exc) from None
    return res.eigenvalues, res.eigenvectors


def eigvalsh(A):
    """Ascending eigenvalues of symmetric ``A`` (see :func:`eigh` for the driver choice and failures)."""
    import numpy as np

    xp = namespace(A)
    try:
        if is_numpy(xp):
            if A.shape[-1] == 0:
                return xp.linalg.eigvalsh(A)
            res = _syevd(A, compute_v=0)
            if res is None:
                import scipy.linalg

                w = scipy.linalg.eigh(A, lower=True, eigvals_only=True, driver="evd", check_finite=False)
            else:
                w = res[0]
            return w.astype(A.dtype, copy=False)
        return xp.linalg.eigvalsh(A)
    except np.linalg.LinAlgError as exc:
        raise _eigh_failed(A, exc) from None


#: (dtype char, n, compute_v) -> (LAPACK ?syevd, its lwork/liwork), filled on first use
_SYEVD: dict = {}


def _syevd(A, *, compute_v: int):
    """``scipy.linalg.eigh(A, lower=True, driver="evd", check_finite=False)`` without its per-call set-up.

    The same LAPACK routine, called with the same arguments scipy passes (lower=1, compute_v, the workspace
    sizes from the same ``?syevd_lwork`` query, which depends on (dtype, n, compute_v) only, so it is cached),
    hence the same bits; what is skipped is scipy's argument inspection and the workspace query, ~40 us of a
    32 x 32 float32 eigh's ~100 us. The call itself goes through :func:`_nogil_syevd` where it is available (the
    GIL released, so the modes' eighs overlap on threads). Returns None (the caller then asks scipy, which raises
    scipy's own error or handles the dtype) for anything but a 2-D float32/float64 ndarray, for a failed LAPACK
    call (info != 0) and when this scipy lacks the helper used here.
    """
    import numpy as np

    if type(A) is not np.ndarray or A.ndim != 2 or A.dtype.char not in "fd":
        return None
    key = (A.dtype.char, A.shape[0], compute_v)
    entry = _SYEVD.get(key)
    if entry is None:
        try:
            from scipy.linalg import lapack

            drv, drvlw = lapack.get_lapack_funcs(("syevd", "syevd_lwork"), (A,))
            lwork, liwork = lapack._compute_lwork(drvlw, n=A.shape[0], lower=True, compute_v=compute_v)
        except (ImportError, AttributeError, TypeError, ValueError):  # a scipy without these: use its eigh
            return None
        entry = _SYEVD[key] = (drv, {"lwork": lwork, "liwork": liwork})
    drv, work = entry
    nogil = _nogil_syevd(A.dtype.char) if A.shape[0] else None
    if nogil is not None:
        return nogil(A, compute_v, work["lwork"], work["liwork"])
    w, V, info = drv(a=A, overwrite_a=False, lower=True, compute_v=compute_v, **work)
    return (w, V) if info == 0 else None


#: dtype char -> a GIL-free caller of LAPACK ?syevd, or None where it is unavailable or failed its self-check
_NOGIL: dict = {}
_SYEVD_SIGNATURE = "void (char *, char *, int *, {t} *, int *, {t} *, {t} *, int *, int *, int *, int *)"


def _nogil_syevd(char: str):
    """The same LAPACK ?syevd as scipy's wrapper, called without holding the GIL, or None.

    Why: scipy.linalg.lapack's f2py wrappers hold the GIL for the whole LAPACK call, so the modes' eighs, handed to
    two threads by :func:`map_mode_stages`, ran one after the other (measured: two 1024 float32 eighs at one BLAS
    thread, 251 ms in a row, 301 ms on two threads). ctypes releases the GIL around a foreign call, so this calls
    the very routine scipy's wrapper calls (the pointer ``scipy.linalg.cython_lapack`` exports, same library),
    with the same arguments (jobz, uplo "L", a Fortran-ordered copy of A, the same lwork/liwork): the same bits.
    Used only when the exported signature is the LP64 one written here and a self-check on a fixed 5 x 5 matrix
    gives scipy's wrapper's result to the last bit; otherwise None and the caller keeps scipy's wrapper.
    """
    if char in _NOGIL:
        return _NOGIL[char]
    _NOGIL[char] = None
    try:
        import ctypes

        import numpy as np
        from scipy.linalg import cython_lapack, lapack

        capsule = cython_lapack.__pyx_capi__[("s" if char == "f" else "d") + "syevd"]
        get_name, get_pointer = ctypes.pythonapi.PyCapsule_GetName, ctypes.pythonapi.PyCapsule_GetPointer
        get_name.restype, get_name.argtypes = ctypes.c_char_p, [ctypes.py_object]
        get_pointer.restype, get_pointer.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
        name = get_name(capsule)
        real = "float" if char == "f" else "double"
        if name.decode().replace("__pyx_t_5scipy_6linalg_13cython_lapack_" + ("s" if char == "f" else "d"),
                                 real) != _SYEVD_SIGNATURE.format(t=real):
            return None
        intp, voidp = ctypes.POINTER(ctypes.c_int), ctypes.c_void_p
        routine = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, intp, voidp, intp, voidp, voidp, intp,
                                   voidp, intp, intp)(get_pointer(capsule, name))

        def call(A, compute_v, lwork, liwork):
            n = A.shape[0]
            a = np.array(A, order="F", copy=True)  # f2py's overwrite_a=False copy; LAPACK writes V into it
            w = np.empty(n, dtype=A.dtype)
            work, iwork = np.empty(max(lwork, 1), dtype=A.dtype), np.empty(max(liwork, 1), dtype=np.intc)
            args = [ctypes.c_int(v) for v in (n, n, lwork, liwork, 0)]
            routine(b"V" if compute_v else b"N", b"L", ctypes.byref(args[0]), a.ctypes.data, ctypes.byref(args[1]),
                    w.ctypes.data, work.ctypes.data, ctypes.byref(args[2]), iwork.ctypes.data,
                    ctypes.byref(args[3]), ctypes.byref(args[4]))
            return (w, a) if args[4].value == 0 else None

        probe = np.array([[4, 1, 0, 2, 1], [1, 5, 1, 0, 0], [0, 1, 6, 1, 3], [2, 0, 1, 7, 1], [1, 0, 3, 1, 8]],
                         dtype=char)
        drv, drvlw = lapack.get_lapack_funcs(("syevd", "syevd_lwork"), (probe,))
        lwork, liwork = lapack._compute_lwork(drvlw, n=5, lower=True, compute_v=1)
        w0, V0, info = drv(a=probe, overwrite_a=False, lower=True, compute_v=1, lwork=lwork, liwork=liwork)
        got = call(probe, 1, lwork, liwork)
        if info != 0 or got is None or not (np.array_equal(got[0], w0) and np.array_equal(got[1], V0)):
            return None
    except Exception:  # noqa: BLE001 - any failure here only means: keep scipy's wrapper
        return None
    _NOGIL[char] = call
    return call


def gram_via_syrk(G, xp) -> bool:
    """True when NumPy computes ``G @ G.T`` and ``G.T @ G`` of the matrix ``G`` by BLAS ?syrk, whose result is
    exactly symmetric: its matmul passes one buffer as both operands to ?syrk (half a GEMM's flops) and copies the
    computed triangle onto the other (numpy/_core/src/umath/matmul.c.src: "Use syrk if we have a case of a matrix
    times its transpose"). That path is taken for a C- or F-contiguous float32/float64 ndarray within BLAS's
    integer range; a strided G is copied into two separate buffers first and goes to ?gemm, whose result need
    not be symmetric (tests/test_perf.py has one that is not). False for every other namespace.
    """
    import numpy as np

    return (is_numpy(xp) and type(G) is np.ndarray and G.ndim == 2 and G.dtype.char in "fd"
            and (G.flags.c_contiguous or G.flags.f_contiguous) and max(G.shape) < 2**31 and G.size < 2**31)


# ---------------------------------------------------------------------------------------------------------
# concurrent per-mode work

#: Whether the independent per-mode work of one update (each factor's Gram, statistic update and root: two
#: tasks for a matrix, p for an order-p tensor) runs concurrently on a thread pool, each task with ONE BLAS
#: thread. ``"auto"`` (default): for NumPy arrays, when ``threadpoolctl`` is installed, the largest factor
#: has order >= :data:`PARALLEL_MIN_ORDER` and the modes are balanced enough to gain (see
#: :data:`PARALLEL_SERIAL_SPEEDUP`); ``True``: for NumPy arrays whatever the orders (needs threadpoolctl);
#: ``False``: never. Either way at most as many modes run at once as the BLAS thread count in force
#: (threadpoolctl's limit, OPENBLAS_NUM_THREADS, at most the cores available), so a caller who limits BLAS to
#: one thread gets the serial update. Set it as ``krad_ref.backend.PARALLEL_MODES = False``.
#: Why: LAPACK's divide-and-conquer eigh barely uses a second thread (performance.md: 0.113 s at 1 thread,
#: 0.102 s at 2 for 1024^2 float32), while two eighs on two cores overlap (LAPACK and BLAS release the GIL).
#: Results: each task runs the serial code at one BLAS thread, so the new statistics, factors and roots are
#: bit-identical to the serial update's at one BLAS thread (tests/test_concurrent_modes.py). The direction's
#: products come after the tasks, at the caller's thread count, as in a serial update at that count: equal to
#: the one-thread direction wherever the BLAS's GEMM gives the same bits at 1 and 2 threads (OpenBLAS 0.3.30:
#: at the tests' shapes, not at 1000 x 1000). OpenBLAS's eigh (and some GEMMs) at n >~ 300 give other last
#: bits at 1 and at 2 threads, so against a serial run at 2 BLAS threads the bits differ by rounding, as
#: between any two thread counts. The BLAS limit is process-wide while the tasks run (that is how
#: threadpoolctl works): when several Python threads call krad_ref at once, set False.
PARALLEL_MODES = "auto"
#: "auto" runs modes concurrently from this factor order on (below, thread hand-off costs more than it saves:
#: ~50-100 us per update against per-mode work of ~100 us at order 128 on 2 cores; benchmarks/steps.py).
PARALLEL_MIN_ORDER = 256
#: "auto" also needs balanced modes: with one BLAS thread per task, the largest mode's pipeline (at one thread)
#: is the concurrent update's critical path, while the serial update runs every mode at the full thread count,
#: which makes a KrADagrad*/Shampoo step about this much faster than at one thread (eigh ~1.07x, GEMM ~1.85x
#: at 1024^2 float32 on 2 cores: shared/notes/performance.md). So the modes run concurrently only when the
#: predicted makespan (per-mode work ~ d_i^3, the eigh and the d_i x d_i products; modes handed largest first
#: to the free worker) times this speedup is at most the serial work: always for a square matrix, never for
#: (2048, 512) or (512, 256), where one mode holds ~90 % of the work.
PARALLEL_SERIAL_SPEEDUP = 1.25

_POOLS: dict = {}
_CONTROLLER = None
_PARALLEL_LOCK = threading.Lock()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _parallel_ok(like, order: int) -> bool:
    setting = PARALLEL_MODES
    if setting not in ("auto", True, False):
        raise ValueError(f"PARALLEL_MODES: expected 'auto', True or False, got {setting!r}")
    if setting is False or not is_numpy(namespace(like)):
        return False
    if setting == "auto":
        if order < PARALLEL_MIN_ORDER or _cores() < 2:
            return False
        return _have_threadpoolctl()
    return True


def _balanced(sizes, workers: int) -> bool:
    """Whether ``workers`` one-thread tasks of work ~ d^3 (largest first, each to the least loaded worker) beat
    the serial update at :data:`PARALLEL_SERIAL_SPEEDUP`."""
    work = sorted((float(d) ** 3 for d in sizes), reverse=True)
    loads = [0.0] * workers
    for w in work:
        loads[loads.index(min(loads))] += w
    return max(loads) * PARALLEL_SERIAL_SPEEDUP <= sum(work)


_HAVE_TPC = None


def _have_threadpoolctl() -> bool:
    global _HAVE_TPC
    if _HAVE_TPC is None:
        _HAVE_TPC = importlib.util.find_spec("threadpoolctl") is not None
    return _HAVE_TPC


def _controller():
    """threadpoolctl's view of the loaded BLAS libraries, made once (after scipy.linalg has loaded its own)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        try:
            import scipy.linalg  # noqa: F401 - load SciPy's OpenBLAS before threadpoolctl looks
            from threadpoolctl import ThreadpoolController
        except ImportError as exc:
            raise ModuleNotFoundError(f"PARALLEL_MODES=True needs threadpoolctl (pip install threadpoolctl): "
                                      f"{exc}") from None
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


class ModeCheck(NamedTuple):
    """A stage of :func:`map_mode_stages` that only checks the previous stage's values and passes them on.

    ``fn(pairs)`` gets ``[(mode, value), ...]`` in mode order and raises for the first bad one. Serially it is
    called once with every mode (e.g. ``algorithm.check_finite_arrays``: one host synchronisation for all);
    concurrently each mode's task calls it with its own pair, so a mode's later stages wait only for its own check.
    """

    fn: Callable


def map_modes(task, count: int, *, like, order: int, sizes=None):
    """``[task(0), ..., task(count - 1)]``, the independent per-mode tasks of one update, maybe concurrently.

    Args:
      task: a function of the mode index; the tasks must not depend on each other (each reads the pre-step
        state and writes nothing shared).
      count: the number of modes.
      like: an array of the update (its namespace decides: only NumPy runs concurrently).
      order: the largest factor order (the ``"auto"`` threshold, :data:`PARALLEL_MIN_ORDER`).
      sizes: the factor order of each task (the ``"auto"`` balance rule, :data:`PARALLEL_SERIAL_SPEEDUP`);
        default: all ``order``.

    Returns:
      The list of results in mode order. A task's exception propagates, the first in mode order, as serially.

    See :data:`PARALLEL_MODES` for when it runs concurrently and what that means for the bits.
    """
    done = map_mode_stages([lambda i, _: task(i)], count, like=like, order=order, sizes=sizes)
    return [values[0] for values in done]


def map_mode_stages(stages, count: int, *, like, order: int, sizes=None):
    """Run a pipeline of stages for every mode: ``v_s(i) = stages[s](i, v_{s-1}(i))`` (``v_{-1} = None``).

    Serially the stages run one after another, each over all modes in mode order (the order of the update's
    formulas). Concurrently (see :data:`PARALLEL_MODES`) each mode is one task that runs all its stages, so
    one mode's products overlap another's eigh instead of waiting for every mode at a stage boundary.

    Args:
      stages: functions ``(mode, previous value) -> value``, or :class:`ModeCheck` stages; a stage of mode i
        must read only mode i's earlier values and the pre-step state.
      count, like, order, sizes: as :func:`map_modes`.

    Returns:
      For every mode the list of its stage values (a :class:`ModeCheck` stage repeats the value it checked).

    Raises:
      The exception the serial order meets first: of the earliest stage that failed in any mode, the one of
      the lowest such mode (each mode's pipeline stops at its own first failure).
    """
    workers = _workers(count, like, order, sizes)
    if workers < 2:
        return _stages_serial(stages, count)
    try:
        pool = _POOLS.get(workers)
        if pool is None:  # one pool per worker count (at most the number of cores), so at most `workers` at once
            from concurrent.futures import ThreadPoolExecutor

            pool = _POOLS[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="krad_ref-modes")
        # each task runs in a copy of the caller's context: numpy.errstate (a context variable) holds there too
        contexts = [contextvars.copy_context() for _ in range(count)]
        with _controller().limit(limits=1, user_api="blas"):
            outcomes = list(pool.map(lambda i: contexts[i].run(_stages_of_mode, stages, i), range(count)))
    finally:
        _PARALLEL_LOCK.release()
    failed = [(stage, i, exc) for i, (_, (stage, exc)) in enumerate(outcomes) if exc is not None]
    if failed:
        raise min(failed, key=lambda f: f[:2])[2]
    return [values for values, _ in outcomes]


def _workers(count: int, like, order: int, sizes) -> int:
    """How many modes run at once (< 2: serial); when >= 2, the caller holds _PARALLEL_LOCK and releases it."""
    if count < 2 or not _parallel_ok(like, order):
        return 1
    # the BLAS thread budget the caller set (threadpoolctl, OPENBLAS_NUM_THREADS) is the number of cores
    # krad_ref may use: n BLAS threads let n modes run at once with one each; a budget of 1 stays serial
    ctl = _controller()
    budget = min([lib.num_threads for lib in ctl.lib_controllers if lib.user_api == "blas"] or [1])
    workers = min(count, budget, _cores())
    if workers < 2 or not (PARALLEL_MODES is True or _balanced([order] * count if sizes is None else sizes, workers)):
        return 1
    # another update running its modes concurrently holds the pool and the process-wide BLAS limit: stay serial
    return workers if _PARALLEL_LOCK.acquire(blocking=False) else 1


def _stages_serial(stages, count: int):
    values, columns = [None] * count, []
    for stage in stages:
        if isinstance(stage, ModeCheck):
            stage.fn(list(enumerate(values)))
        else:
            values = [stage(i, values[i]) for i in range(count)]
        columns.append(values)
    return [list(row) for row in zip(*columns)]


def _stages_of_mode(stages, i: int):
    """(values, (failed stage, exception) or (None, None)): mode i's pipeline, stopped at its first failure."""
    value, done = None, []
    for s, stage in enumerate(stages):
        try:
            if isinstance(stage, ModeCheck):
                stage.fn([(i, value)])
            else:
                value = stage(i, value)
        except Exception as exc:  # noqa: BLE001 - re-raised by the caller, the first in the serial order
            return done, (s, exc)
        done.append(value)
    return done, (None, None)


def rng(seed):
    """A ``numpy.random.Generator`` from ``seed`` (an int >= 0, or a Generator, returned as is).

    All random numbers in krad_ref are drawn on the host in float64 from such a Generator and then cast into
    the caller's namespace and dtype, so a seed gives the same draws on every backend. ``None`` is refused:
    every random draw must be reproducible.
    """
    from numbers import Integral

    import numpy as np

    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        raise TypeError("seed: expected an int >= 0 or a numpy.random.Generator, got None "
                        "(every random draw in krad_ref must be reproducible)")
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise TypeError(f"seed: expected an int >= 0 or a numpy.random.Generator, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed: expected an int >= 0, got {seed}")
    return np.random.default_rng(int(seed))
