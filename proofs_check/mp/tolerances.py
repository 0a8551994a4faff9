"""Comparing float results with mp truth: ``rel_error``, ``tolerance``, ``compare``, and ``mp_tolerance`` for
margins computed in mp.

Tolerances
----------
* :func:`tolerance` (float results against mp truth): c * n * u(dtype) * cond. Higham, *Accuracy and Stability
  of Numerical Algorithms* (2nd ed.): inner products and matrix products carry gamma_n = n u/(1 - n u)
  (Sec. 3.1, 3.5); backward-stable symmetric eigensolvers give |delta lambda| <= p(n) u ||A||_2 (Weyl's
  inequality with LAPACK's backward error bound, LAPACK Users' Guide, Sec. 4.7); the forward error of a
  computed f(A) is its backward error times the condition number of f at A (Sec. 1.6; Higham, *Functions of
  Matrices*, Sec. 3.1). ``cond`` is that condition number.
* :func:`mp_tolerance` (margins computed here): n * 10^-(dps // 2). Half of the working digits are guard
  digits that absorb the amplification of the mp rounding (n 10^-dps) by an instance's conditioning: the
  strategies keep kappa <= 1e12, and the rule leaves room for kappa up to 10^(dps/2) (1e25 at 50 digits).
  The other half resolve the claim: at dps >= 40 the tolerance is at most n * 1e-20, four orders below
  float64's u = 1.1e-16, so no float64-sized defect passes. It shrinks as dps grows (re-running a borderline
  instance at higher dps tells rounding from a genuine failure).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import mpmath
import numpy as np

from krad_ref import backend

from .convert import _matrix, _rows
from .eigen import mp_norm_2
from .matrices import _shape
from .precision import resolve_dps, workdps


def _norm_rows(R, norm: str) -> mpmath.mpf:
    if norm == "fro":
        return mpmath.sqrt(mpmath.fsum((v for row in R for v in row), squared=True))
    if norm == "max":
        return max((abs(v) for row in R for v in row), default=mpmath.mpf(0))
    if norm == "2":
        return mp_norm_2(_matrix(R))
    raise ValueError(f"norm: expected 'fro', '2' or 'max', got {norm!r}")


def rel_error(x: Any, X_mp: Any, *, norm: str = "fro", dps: int | None = None) -> float:
    """||x - X|| / ||X|| computed in mp (x converted exactly), rounded once to float.

    Args:
      x: the computed result (array of any backend, scalar, or mp matrix).
      X_mp: the mp ground truth (same shape; 1-D inputs are columns on both sides).
      norm: "fro" (default), "2" (spectral) or "max" (largest entry).
    When X = 0 the absolute error ||x|| is returned.
    """
    with workdps(dps):
        Rx, RX = _rows(x, "x"), _rows(X_mp, "X_mp")
        if _shape(Rx) != _shape(RX):
            raise ValueError(f"x, X_mp: shapes differ, {_shape(Rx)} vs {_shape(RX)}")
        diff = [[a - b for a, b in zip(ra, rb)] for ra, rb in zip(Rx, RX)]
        num, den = _norm_rows(diff, norm), _norm_rows(RX, norm)
        return float(num / den) if den else float(num)


#: Default constant of :func:`tolerance`: a few units of n u, as in Higham's gamma_n with a margin for the
#: handful of operations each entry goes through.
DEFAULT_C = 4.0


def tolerance(dtype: Any, *, n: int, cond: float = 1.0, c: float = DEFAULT_C) -> float:
    """The accuracy expected of a float computation: c * n * u(dtype) * cond.

    u is the unit roundoff (2^-53 for float64, 2^-24 for float32; ``krad_ref.backend.unit_roundoff``), n the
    length of the inner products (or the matrix dimension), cond the condition number of the computed function
    at the input (1 for products; kappa(A) for A^{-1}; |p| kappa(A) for A^p with p < 0). Higham, *Accuracy and
    Stability of Numerical Algorithms*, 2nd ed., Sec. 2.2 (u), 3.1 (gamma_n = n u / (1 - n u)), 1.6 (forward
    error <~ condition number x backward error).
    """
    if n < 1:
        raise ValueError(f"n: expected a positive dimension, got {n}")
    if not cond >= 1.0:
        raise ValueError(f"cond: expected a condition number >= 1, got {cond}")
    try:  # "float32", np.float32, np.dtype: NumPy's spelling; other backends' dtypes go to backend as they are
        dt = np.dtype(dtype)
    except TypeError:
        dt = dtype
    return float(c) * int(n) * backend.unit_roundoff(dt) * float(cond)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The outcome of comparing a float result with mp truth: ``ok`` iff ``error <= tol``."""

    error: float
    tol: float
    ok: bool
    why: str = ""

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        rel = "<=" if self.ok else ">"
        return f"rel_error={self.error:.3e} {rel} tol={self.tol:.3e} [{self.why}]"


def compare(
    x: Any,
    X_mp: Any,
    *,
    dtype: Any,
    n: int,
    cond: float = 1.0,
    c: float = DEFAULT_C,
    why: str = "",
    norm: str = "fro",
) -> Comparison:
    """rel_error(x, X_mp) against tolerance(dtype, n=n, cond=cond, c=c); ``why`` says what the tolerance models."""
    err = rel_error(x, X_mp, norm=norm)
    tol = tolerance(dtype, n=n, cond=cond, c=c)
    return Comparison(error=err, tol=tol, ok=bool(err <= tol), why=why)


def mp_tolerance(dps: int | None = None, n: int = 1) -> float:
    """Relative tolerance of a margin computed here at dps digits: n * 10^-(dps // 2) (module docstring).

    A claim holds on an instance when ``margin >= -mp_tolerance(dps, n) * scale``. dps=None resolves like every
    function here (50 at mpmath's default precision): n * 1e-25.
    """
    d = resolve_dps(dps)
    if n < 1:
        raise ValueError(f"n: expected a positive dimension, got {n}")
    return float(n) * 10.0 ** (-(d // 2))
