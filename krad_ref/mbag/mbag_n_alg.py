"""MBAG-N: MBAG preconditioned with H_t = G_t^{-1} itself (no root): v_t = beta v_{t-1} + H_t g_t.

References:
  J. Lee, MBAG (shared/papers/mbag.md) Sec. IV-B (last sentence) and Sec. VI (Table I, Fig. 3: "MBAG-N"); Eq. (4)
  (H_t from :mod:`krad_ref.mbag.inverse`); errata 28.

Convention the paper leaves open (errata 28), our choice: MBAG-N has no root to amortise, so it uses the exact H_t
(Sherman-Morrison, every step) on every step.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import algorithm
from ..algorithm import Algorithm, register
from .common import _apply, _check_common, _check_state, _direction, _init_arrays, _momentum, _next
from .grouping import group
from .inverse import _sm, _sm_limit

Array = Any


@dataclass(frozen=True)
class MbagNConfig:
    """MBAG-N hyperparameters: MBAG preconditioning with H = G^{-1} itself (no root).

    References:
      MBAG Sec. IV-B (last sentence) and Sec. VI (Table I, Fig. 3: "MBAG-N").

    Args:
      lam, beta, tau, remainder: as :class:`MbagConfig`. There is no root, hence no T_sqr / T_NS: the exact H_t
        from Eq. (4) is used on every step (the paper does not state MBAG-N's schedule; errata 28).
    """

    lam: float = 0.01
    beta: float = 0.9
    tau: int | None = None
    remainder: str = "error"

    def __post_init__(self):
        _check_common(self)


class MbagNState(NamedTuple):
    """MBAG-N state (immutable)."""

    count: Array     # shape (), int32: updates taken so far
    H: Array         # (g, tau, tau), param dtype: H_t = G_t^{-1} per group (Eq. 4)
    v: Array         # (g, tau), param dtype: momentum buffer (grouped)
    template: Array  # (0, *param_shape), param dtype, no data


def mbag_n_init(shape_or_array, config: MbagNConfig, *, dtype=None, xp=None) -> MbagNState:
    """Initial MBAG-N state: H_0 = I / lam per group, v = 0, count 0 (arguments as :func:`mbag_init`)."""
    if not isinstance(config, MbagNConfig):
        raise TypeError(f"config: expected MbagNConfig, got {type(config).__name__}")
    _, _, H, v, template, count = _init_arrays(shape_or_array, config, dtype, xp, 1.0 / config.lam)
    return MbagNState(count=count, H=H, v=v, template=template)


@algorithm.overflow_guard(MbagNConfig, _sm_limit, "the Sherman-Morrison term (H g)(H g)^T")
def mbag_n_update(grad, state: MbagNState, config: MbagNConfig, *, params=None):
    """One MBAG-N step: H_t by Eq. (4), v_t = beta v_{t-1} + H_t g_t.

    References:
      MBAG Sec. IV-B ("preconditions the gradient just with G^{-1}"), Eq. (4), Alg. 1 lines 11-12.

    Returns:
      ``(direction, new_state)``. H_t g_t = H_{t-1} g_t / (1 + g_t^T H_{t-1} g_t) exactly (Sherman-Morrison), so
      the step is bounded by ||H_0|| ||g|| = ||g|| / lam.
    """
    xp, shape, _ = _check_state(grad, state, config, MbagNState, MbagNConfig, ("H",))
    gb = group(grad, config.tau, remainder=config.remainder)
    H = _sm(state.H, gb, xp)
    v = _momentum(state.v, _apply(H, gb), config.beta)
    new = MbagNState(count=_next(state.count, xp), H=H, v=v, template=state.template)
    return _direction(v, shape, xp), new


mbag_n = register(Algorithm("mbag_n", MbagNConfig, MbagNState, mbag_n_init, mbag_n_update))
