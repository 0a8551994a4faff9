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

import importlib
from typing import Any

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
    "eigh",
    "eigvalsh",
    "rng",
]

#: The backends a caller may select by name, simplest first.
BACKENDS = ("numpy", "array_api_strict", "cupy")


def namespace(*arrays: Any):
    """Return the array-API namespace of ``arrays`` (``array_api_compat.array_namespace``).

    Python scalars and ``None`` are ignored, as in the standard's type promotion rules.

    Raises:
      TypeError: if no argument is an array, or if they come from different libraries.
    """
    arrs = [a for a in arrays if a is not None and not isinstance(a, (bool, int, float, complex))]
    if not arrs:
        raise TypeError("namespace: expected at least one array argument, got none")
    try:
        return array_api_compat.array_namespace(*arrs)
    except TypeError as exc:
        kinds = sorted({type(a).__module__ + "." + type(a).__name__ for a in arrs})
        raise TypeError(f"namespace: arguments are not arrays of one library ({', '.join(kinds)}): {exc}") from None


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
    return array_api_compat.is_numpy_namespace(xp)


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
    name = dtype_name(dt)
    if name not in _UNIT_ROUNDOFF:
        raise TypeError(f"unit_roundoff: expected a real floating dtype, got {name}")
    return _UNIT_ROUNDOFF[name]


def is_real_floating(x, xp=None) -> bool:
    """True when the array ``x`` has a real floating dtype."""
    xp = namespace(x) if xp is None else xp
    return bool(xp.isdtype(x.dtype, "real floating"))


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

    xp = namespace(A)
    try:
        if is_numpy(xp) and A.ndim == 2:
            import scipy.linalg

            if A.shape[-1] == 0:
                return np.linalg.eigh(A)
            w, V = scipy.linalg.eigh(A, lower=True, driver="evd", check_finite=False)
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
            import scipy.linalg

            if A.shape[-1] == 0:
                return xp.linalg.eigvalsh(A)
            return scipy.linalg.eigh(A, lower=True, eigvals_only=True, driver="evd", check_finite=False).astype(
                A.dtype, copy=False
            )
        return xp.linalg.eigvalsh(A)
    except np.linalg.LinAlgError as exc:
        raise _eigh_failed(A, exc) from None


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
