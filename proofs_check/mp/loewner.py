"""The Loewner order: ``loewner_margin(A, B)`` = lambda_min(sym(A - B)) (A >= B iff it is >= 0) and its
relative form, the margin in units of the operands' spectral norm. Accuracy: :mod:`.eigen`'s lambda_min.
"""
from __future__ import annotations

from typing import Any

import mpmath
import numpy as np

from .convert import _rows, to_mpf
from .eigen import _lambda_min_rows
from .matrices import _shape
from .precision import workdps


def loewner_margin(A: Any, B: Any, *, dps: int | None = None, method: str = "auto") -> mpmath.mpf:
    """lambda_min(sym(A - B)): A >= B (Loewner) iff the margin is >= 0.

    A and B may be float arrays of any backend (converted exactly) or mp matrices. A - B is formed at the
    working precision (exact for float64 inputs unless their exponents differ by more than ~80 bits); use
    :func:`mp_exact_sum` to build A itself exactly. Accuracy: :func:`mp_lambda_min`.
    """
    with workdps(dps):
        RA, RB = _rows(A, "A"), _rows(B, "B")
        n = len(RA)
        if any(len(r) != n for r in RA) or len(RB) != n or any(len(r) != n for r in RB):
            raise ValueError(f"A, B: expected square matrices of one size, got {_shape(RA)} and {_shape(RB)}")
        half = mpmath.mpf(0.5)
        D = [[a - b for a, b in zip(ra, rb)] for ra, rb in zip(RA, RB)]
        S = [[D[i][j] if i == j else (D[i][j] + D[j][i]) * half for j in range(n)] for i in range(n)]
        return _lambda_min_rows(S, method=method)


_TINY = mpmath.mpf(2) ** -1022


def _norm_2_scale(R) -> mpmath.mpf:
    """||R||_2 to float64 accuracy, as an mpf: float64 2-norm after exact power-of-two scaling, scaled back
    (a scale needs 16 digits, not 50; the scaling avoids overflow/underflow of mp entries)."""
    mx = max((abs(v) for row in R for v in row), default=mpmath.mpf(0))
    if not mx:
        return mpmath.mpf(0)
    e = int(mpmath.frexp(mx)[1])
    F = np.array([[float(mpmath.ldexp(v, -e)) for v in row] for row in R])
    return mpmath.ldexp(to_mpf(float(np.linalg.norm(F, 2))), e)


def relative_loewner_margin(A: Any, B: Any, *, dps: int | None = None) -> mpmath.mpf:
    """loewner_margin(A, B) / max(||A||_2, ||B||_2, 2^-1022): the margin in units of the operands' size.

    The scale is computed in float64 after exact power-of-two scaling (16 correct digits suffice for a scale;
    this keeps the call at the cost of one margin).
    """
    with workdps(dps):
        margin = loewner_margin(A, B)
        scale = max(_TINY, _norm_2_scale(_rows(A, "A")), _norm_2_scale(_rows(B, "B")))
        return margin / scale
