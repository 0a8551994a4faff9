"""Exact conversion between floats and mp: ``to_mpf``, ``to_mp`` (in, no rounding) and ``from_mp`` (out, once).

* **Inputs are converted exactly.** A binary float (float16/32/64, longdouble) is a dyadic rational; it
  becomes the mpf with the same value, bit for bit, whatever the working precision (:func:`to_mpf`). Integers
  are exact too. Only genuinely non-dyadic inputs (a ``Fraction`` exponent such as 1/3) are rounded, once, at
  the working precision.
* **Results are rounded once, at the end.** Functions return mp objects; :func:`from_mp` rounds each entry once
  (round-half-even) to the target format, with no double rounding through float64 for float32/float16.

The private row-list helpers (``_rows``: any input as rows of mpf; ``_matrix``: rows back to an
``mpmath.matrix``) are what every other submodule computes on.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
from mpmath.libmp import from_man_exp

from krad_ref import backend

from .precision import workdps


_make_mpf = mpmath.mp.make_mpf


def _mpf_from_dyadic(v) -> mpmath.mpf:
    """The mpf equal to the binary float / integer ``v`` (no rounding at any precision)."""
    if isinstance(v, (int, np.integer)):
        return _make_mpf(from_man_exp(int(v), 0))
    num, den = v.as_integer_ratio()  # den is a power of two for binary floats
    return _make_mpf(from_man_exp(num, 1 - den.bit_length()))


def to_mpf(x: Any) -> mpmath.mpf:
    """One real number as an mpf: exact for floats (any binary format) and integers.

    Accepts Python/NumPy floats and integers, 0-d arrays and one-element arrays of any backend, ``Fraction``
    (rounded once at the working precision when not dyadic) and mpf (returned unchanged).

    Raises:
      TypeError: complex, bool, or another type; ValueError: NaN or infinity.
    """
    if isinstance(x, mpmath.mpf):
        return x
    if isinstance(x, (bool, np.bool_)):
        raise TypeError("to_mpf: expected a real number, got bool")
    if isinstance(x, (int, np.integer)):
        return _mpf_from_dyadic(x)
    if isinstance(x, (float, np.floating)):
        if not np.isfinite(x):
            raise ValueError(f"to_mpf: expected a finite number, got {x!r}")
        return _mpf_from_dyadic(x)
    if isinstance(x, Fraction):
        if x.denominator & (x.denominator - 1) == 0:  # dyadic: exact
            return _make_mpf(from_man_exp(x.numerator, 1 - x.denominator.bit_length()))
        with workdps(None):
            return mpmath.mpf(x.numerator) / x.denominator
    if isinstance(x, (complex, np.complexfloating, mpmath.mpc)):
        raise TypeError(f"to_mpf: expected a real number, got {type(x).__name__}")
    if isinstance(x, mpmath.matrix):
        if x.rows * x.cols != 1:
            raise ValueError(f"to_mpf: expected a single number, got a {x.rows}x{x.cols} matrix")
        return to_mpf(x[0, 0])
    arr = _host_array(x, "x")
    if arr.size != 1:
        raise ValueError(f"to_mpf: expected a single number, got an array of shape {arr.shape}")
    return to_mpf(arr.reshape(())[()])  # a NumPy scalar of the array's dtype (longdouble stays exact)


def _host_array(x: Any, name: str) -> np.ndarray:
    """x as a NumPy array of reals (any backend via backend.to_numpy; lists via np.asarray)."""
    if isinstance(x, np.ndarray):
        arr = x
    elif isinstance(x, (list, tuple)):
        arr = np.asarray(x)
    else:
        try:
            arr = backend.to_numpy(x)
        except Exception as exc:  # noqa: BLE001 - report the type, whatever the library raised
            raise TypeError(f"{name}: cannot convert {type(x).__name__} to an array ({exc})") from None
        arr = np.asarray(arr)
    if arr.dtype.kind == "c":
        raise TypeError(f"{name}: expected a real array, got {arr.dtype}")
    if arr.dtype.kind == "b":
        raise TypeError(f"{name}: expected a real array, got bool")
    if arr.dtype.kind not in "iufO":
        raise TypeError(f"{name}: expected a real array, got {arr.dtype}")
    return arr


def _rows(x: Any, name: str = "A") -> list[list[mpmath.mpf]]:
    """x (array of any backend, scalar, or mpmath.matrix) as a list of rows of mpf, exactly. 1-D -> column."""
    if isinstance(x, mpmath.matrix):
        return [[to_mpf(x[i, j]) for j in range(x.cols)] for i in range(x.rows)]
    if isinstance(x, (int, float, np.integer, np.floating, Fraction, mpmath.mpf)):
        return [[to_mpf(x)]]
    arr = _host_array(x, name)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    elif arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    elif arr.ndim != 2:
        raise ValueError(f"{name}: expected a scalar, vector or matrix, got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}: expected finite entries (NaN or inf found)")
        if arr.dtype.itemsize <= 8:  # float16/32/64 -> float64 is exact; tolist gives Python floats
            return [[_mpf_from_dyadic(v) for v in row] for row in arr.astype(np.float64).tolist()]
        return [[_mpf_from_dyadic(arr[i, j]) for j in range(arr.shape[1])] for i in range(arr.shape[0])]
    if arr.dtype.kind in "iu":
        return [[_mpf_from_dyadic(int(v)) for v in row] for row in arr.tolist()]
    return [[to_mpf(v) for v in row] for row in arr.tolist()]  # object arrays (mpf, Fraction, ...)


def _matrix(rows: list[list[Any]]) -> mpmath.matrix:
    M = mpmath.matrix(len(rows), len(rows[0]) if rows else 0)
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            if v:
                M[i, j] = v
    return M


def to_mp(x: Any) -> mpmath.matrix:
    """x as an ``mpmath.matrix`` with exactly the same values (no rounding at any working precision).

    Args:
      x: a float or integer array of any backend (via ``krad_ref.backend.to_numpy``), a nested list, a Python
        or NumPy scalar (-> 1x1), or an mpmath.matrix (returned unchanged). A 1-D array becomes a column.

    Raises:
      TypeError: complex/bool/non-numeric input; ValueError: NaN/inf entries or ndim > 2.
    """
    if isinstance(x, mpmath.matrix):
        return x
    return _matrix(_rows(x, "x"))


# (p, emin, emax) of the binary formats from_mp rounds to: precision in bits, exponent range of normals.
_FORMATS = {"float16": (11, -14, 15), "float32": (24, -126, 127), "float64": (53, -1022, 1023)}


def _round_to_format(v: mpmath.mpf, p: int, emin: int, emax: int) -> float:
    """v rounded once (nearest, ties to even) to a binary format with p-bit significands, gradual underflow."""
    sgn, man, exp, _ = v._mpf_  # libmp's raw tuple: v = (-1)^sgn * man * 2^exp, man odd (0 for 0, inf, nan)
    if not man:
        return 0.0 if v == 0 else float(v)  # zero, or +-inf / nan passed through
    sign = -1 if sgn else 1
    top = exp + man.bit_length() - 1  # v in [2^top, 2^(top+1))
    q = max(top, emin) - p + 1  # exponent of the unit in the last place
    shift = q - exp
    if shift > 0:
        kept, rem = man >> shift, man & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and kept & 1):
            kept += 1
        man, exp = kept, q
    if man and exp + man.bit_length() - 1 > emax:
        return sign * math.inf
    return sign * math.ldexp(man, exp) if man else 0.0 * sign


def from_mp(M: Any, dtype: Any = "float64", *, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """An mp matrix (or mpf, or nested list of numbers) as a NumPy array, each entry rounded once.

    Rounding is to nearest, ties to even, directly to ``dtype`` (float16/32/64): float32 results are not
    rounded through float64 first. Values beyond the format's range become +-inf. A 1x1 matrix keeps shape
    (1, 1) and an mpf gives a 0-d array; pass ``shape`` to reshape (``shape=(n,)`` undoes to_mp's column).
    """
    name = backend.dtype_name(np.dtype(dtype)) if not isinstance(dtype, str) else dtype
    if name not in _FORMATS:
        raise TypeError(f"dtype: expected one of {sorted(_FORMATS)}, got {name}")
    fmt = _FORMATS[name]
    if isinstance(M, mpmath.matrix):
        vals = [[_round_to_format(to_mpf(M[i, j]), *fmt) for j in range(M.cols)] for i in range(M.rows)]
        out = np.array(vals, dtype=np.float64).reshape(M.rows, M.cols)
    elif isinstance(M, (list, tuple)):
        out = np.array(_nested_round(M, fmt), dtype=np.float64)
    else:
        out = np.array(_round_to_format(to_mpf(M), *fmt), dtype=np.float64)
    out = out.astype(name)  # exact: every value is representable in the target format
    return out.reshape(shape) if shape is not None else out


def _nested_round(x, fmt):
    if isinstance(x, (list, tuple)):
        return [_nested_round(v, fmt) for v in x]
    return _round_to_format(to_mpf(x), *fmt)
