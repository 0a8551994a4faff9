"""The working precision of the ground truth: ``resolve_dps``, ``workdps``, ``mp_call``.

* **Working precision.** All arithmetic runs inside ``mpmath.workdps(dps)`` (a context manager: the global
  precision is restored on exit, never changed for good). ``dps=None`` means ``max(DEFAULT_DPS, mp.dps)``:
  50 digits at mpmath's default setting, or the caller's precision when it already works higher (so helpers
  called from inside :func:`mp_call` follow the caller). An explicit ``dps`` below ``MIN_DPS = 40`` raises
  ``ValueError``: at 40 digits the rounding of the mp evaluation is 24 orders below float64's unit roundoff,
  so a float64-sized defect of an exact statement can never hide in it.
* **Arithmetic on returned mp objects** must itself run under ``workdps`` (or :func:`mp_call`): at mpmath's
  default 15 digits, ``X - Y`` on two 50-digit matrices would round to float64 precision.
"""
from __future__ import annotations

from typing import Any, Callable

import mpmath
import numpy as np


#: Default working precision in decimal digits.
DEFAULT_DPS = 50
#: Lowest precision a caller may ask for (DESIGN.md: "Ground truth runs at mp.dps of at least 40").
MIN_DPS = 40


def resolve_dps(dps: int | None = None) -> int:
    """The working precision: ``dps`` itself (checked), or ``max(DEFAULT_DPS, mp.dps)`` when None.

    Raises:
      TypeError: if dps is not an integer.
      ValueError: if dps < MIN_DPS (40).
    """
    if dps is None:
        return max(DEFAULT_DPS, int(mpmath.mp.dps))
    if isinstance(dps, bool) or not isinstance(dps, (int, np.integer)):
        raise TypeError(f"dps: expected an integer number of decimal digits, got {type(dps).__name__}")
    if dps < MIN_DPS:
        raise ValueError(f"dps: ground truth needs at least {MIN_DPS} digits, got {dps}")
    return int(dps)


def workdps(dps: int | None = None):
    """``mpmath.workdps(resolve_dps(dps))``: a context manager; the global precision is restored on exit."""
    return mpmath.workdps(resolve_dps(dps))


def mp_call(fn: Callable[..., Any], *args: Any, dps: int | None = None, **kw: Any) -> Any:
    """Run ``fn(*args, **kw)`` under ``workdps(dps)`` and return its result (still an mp object)."""
    with workdps(dps):
        return fn(*args, **kw)


def _eps() -> mpmath.mpf:
    """2^(1 - prec) at the current working precision (mpmath's ``mp.eps``)."""
    return mpmath.mp.eps
