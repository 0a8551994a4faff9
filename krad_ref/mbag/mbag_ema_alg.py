"""MBAG-EMA, Algorithm 2: an exponential moving average G_t of g g^T, rooted by Newton-Schulz on G itself.

References:
  J. Lee, MBAG (shared/papers/mbag.md) Alg. 2 and Sec. IV-B ("if X_0 is initialized to G, Y_t converges to
  G^{-1/2}"); errata 6, 28, 29.

MBAG-EMA (Alg. 2) keeps G_t = alpha G_{t-1} + (1 - alpha) g g^T (G_0 = lambda I, never inverted) and takes
R_t = G_t^{-1/2} from Newton-Schulz with input G, correctly rescaled as R = Y_N / sqrt(||G||_F), which is not the
paper's wording: the derivation is in :mod:`krad_ref.mbag.roots` (its docstring is "the module docstring" that the
Newton-Schulz notes below cite). With a fixed T_NS, R under-estimates G^{-1/2} in the eigen-directions of G's
smallest eigenvalues. The groups are those of :mod:`krad_ref.mbag.grouping`.

Damping, a convention the paper leaves open (errata 29), our choice. MBAG-EMA's damping alpha^t lambda decays, and
after a few hundred steps G_t is numerically singular in directions no recent gradient touched. We FLOOR it: the
root is taken of G_t + max(0, f_t - alpha^t lambda) I, i.e. the damping is max(alpha^t lambda, f_t).
``damping_floor=None`` (default) sets f_t = 16 tau u ||G_t||_F per group (u the unit roundoff of the dtype), the
smallest damping that keeps G numerically positive definite; it changes nothing while alpha^t lambda is above it. A
float sets an absolute floor; 0.0 runs Alg. 2 exactly and emits a RuntimeWarning whenever the damping falls below
tau u ||G_t||_F (G numerically singular). The state keeps the paper's G_t (the floor is added at the root only).
With T_sqr = 1 and beta = 0 the direction is bounded whatever the damping: G_t >= (1 - alpha) g g^T gives
||G_t^{-1/2} g_t|| <= 1 / sqrt(1 - alpha). With T_sqr > 1 the root is stale, and a direction silent for many steps,
then excited between refreshes, is amplified by up to damping^{-1/2} (1e7 ||G||^{-1/2} under the automatic floor in
float64): set an absolute damping_floor f to bound every root by f^{-1/2}.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import algorithm, backend, validate
from ..algorithm import Algorithm, register
from .common import _apply, _check_common, _check_root_fields, _check_state, _direction, _init_arrays, _momentum, _next
from .grouping import group
from .inverse import _outer
from .roots import _eigh_power, _fro_stack, _ns

Array = Any


#: ``damping_floor=None`` floors MBAG-EMA's damping at AUTO_FLOOR_FACTOR * tau * u * ||G||_F per group: a product of
#: tau-term inner products carries ~ tau u ||G|| of rounding (Higham Sec. 3.1), so a damping 16x above it keeps the
#: computed G positive definite with a margin.
AUTO_FLOOR_FACTOR = 16.0


@dataclass(frozen=True)
class MbagEmaConfig:
    """MBAG-EMA hyperparameters (Alg. 2): an exponential moving average of g g^T, rooted by Newton-Schulz on G.

    References:
      MBAG Alg. 2 and Sec. IV-B ("if X_0 is initialized to G, Y_t converges to G^{-1/2}"); errata 6, 28, 29.

    Args:
      lam, beta, T_sqr, T_NS, tau, remainder: as :class:`MbagConfig` (G_0 = lam I; root before the first refresh
        G_0^{-1/2} = I / sqrt(lam)).
      alpha: decay in [0, 1): G_t = alpha G_{t-1} + (1 - alpha) g g^T. The paper gives no value; 0.99 is our choice
        (PyTorch RMSprop's alpha).
      damping_floor: None (default): floor the decaying damping alpha^t lam at 16 tau u ||G_t||_F per group (keeps G
        numerically PD; changes nothing while alpha^t lam is larger). A float >= 0: that absolute floor; 0.0 is
        Alg. 2 exactly and warns (RuntimeWarning) when G becomes numerically singular (errata 29).
      root_method: ``"newton_schulz"`` (Y_N / sqrt(||G||_F), the correctly rescaled Alg. 2 output) or ``"eigh"``
        (exact G^{-1/2}).
    """

    lam: float = 0.01
    beta: float = 0.9
    alpha: float = 0.99
    T_sqr: int = 50
    T_NS: int = 5
    tau: int | None = None
    remainder: str = "error"
    root_method: str = "newton_schulz"
    damping_floor: float | None = None

    def __post_init__(self):
        _check_common(self)
        _check_root_fields(self)
        validate.real_scalar(self.alpha, "alpha", low=0.0, high=1.0, high_open=True)
        if self.damping_floor is not None:
            validate.real_scalar(self.damping_floor, "damping_floor", low=0.0)


class MbagEmaState(NamedTuple):
    """MBAG-EMA state (immutable)."""

    count: Array     # shape (), int32: updates taken so far
    G: Array         # (g, tau, tau), param dtype: G_t = alpha G_{t-1} + (1 - alpha) g g^T, G_0 = lam I (no floor in it)
    root: Array      # (g, tau, tau), param dtype: R ~ (G + floor)^{-1/2} from the last refresh (I/sqrt(lam) before)
    v: Array         # (g, tau), param dtype: momentum buffer (grouped)
    residual: Array  # (g,), param dtype: ||I - Y X||_F of the last Newton-Schulz refresh (0: none yet, or eigh)
    template: Array  # (0, *param_shape), param dtype, no data


def mbag_ema_init(shape_or_array, config: MbagEmaConfig, *, dtype=None, xp=None) -> MbagEmaState:
    """Initial MBAG-EMA state: G_0 = lam I, root I / sqrt(lam), v = 0, count 0 (arguments as :func:`mbag_init`)."""
    if not isinstance(config, MbagEmaConfig):
        raise TypeError(f"config: expected MbagEmaConfig, got {type(config).__name__}")
    c, (g, tau), G, v, template, count = _init_arrays(shape_or_array, config, dtype, xp, config.lam)
    xp = c.xp
    root = xp.zeros_like(G) + (1.0 / math.sqrt(config.lam)) * xp.eye(tau, dtype=c.dtype, device=c.device)
    return MbagEmaState(count=count, G=G, root=root, v=v, residual=xp.zeros((g,), dtype=c.dtype, device=c.device),
                        template=template)


def ema_damping(t: int, config: MbagEmaConfig, G, xp=None):
    """The damping of step t's root, per group: max(alpha^t lam, floor), and the extra max(0, floor - alpha^t lam).

    References:
      MBAG Alg. 2 (G_0 = lam I, so G_t = alpha^t lam I + (1 - alpha) sum alpha^(t-i) g_i g_i^T); errata 29.

    Args:
      t: step number (>= 0).
      config: :class:`MbagEmaConfig`.
      G: (g, tau, tau) statistic G_t.

    Returns:
      ``(damping, extra)``, two (g,) arrays of G's dtype; the root is taken of G + extra I.
    """
    xp = backend.namespace(G) if xp is None else xp
    tau = G.shape[-1]
    paper = config.alpha ** t * config.lam  # Python float64; underflows to 0.0 gracefully
    if config.damping_floor is None:
        floor = AUTO_FLOOR_FACTOR * tau * backend.unit_roundoff(G.dtype) * _fro_stack(G, xp)
    else:
        floor = xp.full(G.shape[:-2], config.damping_floor, dtype=G.dtype, device=backend.device(G))
    extra = xp.maximum(floor - paper, xp.zeros_like(floor))
    return paper + extra, extra


def _outer_limit(config, grad, xp) -> float:
    # MBAG-EMA's g g^T: entries <= ||g||^2
    return algorithm.overflow_limit(grad.dtype, xp, power=2)


@algorithm.overflow_guard(MbagEmaConfig, _outer_limit, "the statistic g g^T")
def mbag_ema_update(grad, state: MbagEmaState, config: MbagEmaConfig, *, params=None):
    """One MBAG-EMA step (Alg. 2, lines 4-11): EMA statistic, root of G every T_sqr steps, momentum.

    References:
      MBAG Alg. 2; Sec. IV-B (X_0 = G; rescaling derived in the module docstring: R = Y_N / sqrt(||G||_F));
      errata 6, 28, 29.

    Args:
      grad: gradient g_t (the parameter's shape and dtype, finite).
      state: :class:`MbagEmaState` (never modified).
      config: :class:`MbagEmaConfig`.
      params: unused.

    Returns:
      ``(direction, new_state)``, direction = ungroup(v_t), v_t = beta v_{t-1} + R_t g_t.

    Warns:
      RuntimeWarning: with an explicit ``damping_floor`` below tau u ||G_t||_F on a refresh step (G numerically
      singular: its computed inverse root in untouched directions is rounding noise scaled by damping^{-1/2}).

    Raises:
      ValueError: ``root_method="eigh"`` and the damping is exactly 0 (alpha^t lam underflowed, damping_floor=0).
    """
    xp, shape, (g, tau) = _check_state(grad, state, config, MbagEmaState, MbagEmaConfig, ("G", "root"))
    t = int(state.count) + 1
    gb = group(grad, config.tau, remainder=config.remainder)
    a = config.alpha
    # alpha G and (1 - alpha) g_i g_j are each exactly symmetric, so G stays exactly symmetric
    G = a * state.G + (1.0 - a) * _outer(gb, gb)
    if t % config.T_sqr == 0:
        damping, extra = ema_damping(t, config, G, xp)
        if config.damping_floor is not None:
            level = validate.zero_tolerance(_fro_stack(G, xp), n=tau, dtype=G.dtype)  # below: numerically singular
            if bool(xp.any(damping < level)):
                warnings.warn(
                    f"mbag_ema: step {t}: damping max(alpha^t lam, damping_floor) = "
                    f"max({config.alpha ** t * config.lam:.3g}, {config.damping_floor:.3g}) is below 4 tau u ||G||_F in "
                    f"some group: G is numerically singular and its inverse root is unreliable there (errata 29); use "
                    f"damping_floor=None or a larger floor",
                    RuntimeWarning, stacklevel=2)
        if config.root_method == "eigh":
            root = _eigh_power(G, -0.5, extra, xp, "G")
            residual = xp.zeros((g,), dtype=G.dtype, device=backend.device(G))
        else:
            I = xp.eye(tau, dtype=G.dtype, device=backend.device(G))
            r = _ns(G + extra[:, None, None] * I, config.T_NS, xp)
            root, residual = r.inv_sqrt, r.residual
    else:
        root, residual = state.root, state.residual
    v = _momentum(state.v, _apply(root, gb), config.beta)
    new = MbagEmaState(count=_next(state.count, xp), G=G, root=root, v=v, residual=residual, template=state.template)
    return _direction(v, shape, xp), new


mbag_ema = register(Algorithm("mbag_ema", MbagEmaConfig, MbagEmaState, mbag_ema_init, mbag_ema_update))
