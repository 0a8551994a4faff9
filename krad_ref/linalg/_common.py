"""Internal helpers of the linalg kernels (the namespace is passed down; nothing is validated here).

The symmetric part (KrADagrad Sec. 2.1), the scaled Frobenius norm and max|X| as Python floats, the identity, the
common namespace of several arguments, the symmetric-input check, the RuntimeError of a missed target, and
``DIVERGENCE_RATIO``, the divergence guard shared by the Denman-Beavers square root (``geomean``) and the
iterative roots (``roots``).
"""
from __future__ import annotations

import math

from .. import backend, validate


#: An iteration stops (and keeps its previous iterate) when its residual grows by more than this factor:
#: the error_tolerance guard of Google's scalable_shampoo ``ComputePower`` and Meta's Distributed Shampoo.
DIVERGENCE_RATIO = 1.2


def _eye(n: int, A, xp):
    return xp.eye(n, dtype=A.dtype, device=backend.device(A))


def _sym(A, xp):
    # halves first: the same value as (A + A^T) / 2 (scaling by 2 is exact, barring subnormals) without
    # overflowing for entries above F / 2 (a float32 statistic G G^T with ||G||_F near sqrt(F)). A^T / 2 is
    # (A / 2)^T entry for entry, so one halving serves both terms: H + H^T adds the same two numbers as
    # A / 2 + A^T / 2 did, one full-matrix pass fewer
    H = A / 2
    return H + backend.transpose_for_reading(H, xp)


def _fro(X, xp) -> float:
    """Frobenius norm as a Python float, scaled by max|X| so float32 squares cannot overflow."""
    if X.size == 0:
        return 0.0
    m = float(xp.max(xp.abs(X)))
    if m == 0.0 or not math.isfinite(m):
        return m
    return m * float(xp.linalg.vector_norm(X / m))


def _max_abs(X, xp) -> float:
    return float(backend.max_abs(X, xp)) if X.size != 0 else 0.0


def _namespace_of(**arrays):
    """The common namespace of named arrays; a TypeError naming the odd one out if libraries are mixed."""
    items = [(k, v) for k, v in arrays.items() if v is not None]
    xp = backend.namespace(items[0][1])
    for k, v in items[1:]:
        try:
            backend.namespace(items[0][1], v)
        except TypeError:
            raise TypeError(
                f"{k}: array library {type(v).__module__}.{type(v).__name__} does not match {items[0][0]}'s "
                f"{type(items[0][1]).__module__}.{type(items[0][1]).__name__}"
            ) from None
    return xp


def _check_symmetric_input(A, name: str, check: bool):
    if check:
        return validate.symmetric(A, name)
    return validate.square(A, name)


def _fail(func: str, residual: float, iterations: int, target: float, extra: str = "") -> RuntimeError:
    return RuntimeError(f"{func}: residual {residual:.1e} after {iterations} iterations (target {target:.1e}){extra}")
