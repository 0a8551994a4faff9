"""L2 weight decay added to the direction after grafting: U <- U + lambda W.

References:
  shared/notes/kradagrad-code.md Sec. 2 step 7 (``shampoo_grad.add_(p.data, alpha=weight_decay)``); errata 16
  (the update needs the parameters W); errata 20 (in the code's warm-up the decay is added twice).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import validate
from .protocol import CountState, Transform, _check_config, _check_fitted, _check_like, _count_init, _next_count


@dataclass(frozen=True)
class WeightDecayConfig:
    """Config of :data:`weight_decay`.

    Args:
      weight_decay: lambda >= 0 (code ``weight_decay``, default 0; the autoencoders used 5e-6).
    """

    weight_decay: float = 0.0

    def __post_init__(self):
        validate.real_scalar(self.weight_decay, "weight_decay", low=0.0)


def _wd_init(shape_or_array, config, *, dtype=None, xp=None):
    _check_config(config, WeightDecayConfig, "weight_decay")
    return _count_init(shape_or_array, config, dtype=dtype, xp=xp)


def _wd_params(updates, config, params):
    if config.weight_decay != 0.0 and params is None:
        raise ValueError("params: weight_decay != 0 needs the parameters W (errata 16); pass params=")
    if params is not None:
        _check_like(params, updates, "params", "updates")


def _wd_update(updates, state, config, *, params=None, grad=None):
    """Add L2 weight decay to the direction: U <- U + lambda W (after grafting, as the code does).

    References:
      notes Sec. 2 step 7 (``shampoo_grad.add_(p.data, alpha=weight_decay)``); errata 16.

    Args:
      updates: U, any shape.
      state: CountState.
      config: WeightDecayConfig.
      params: W, same shape and dtype as U; required when lambda != 0 (ValueError otherwise).
      grad: unused.

    Returns:
      (U + lambda W, new state); U unchanged (same object) when lambda = 0.
    """
    _check_config(config, WeightDecayConfig, "weight_decay")
    xp = _check_fitted(updates, state, CountState, "weight_decay")
    _wd_params(updates, config, params)
    out = updates if config.weight_decay == 0.0 else updates + config.weight_decay * params
    return out, CountState(_next_count(state.count, xp), state.template)


def _wd_aliased(x, state, config, *, params=None, momentum_alias=True):
    # the code adds lambda W to the preconditioned direction AND to the graft direction; in warm-up both are
    # p.grad, so p.grad receives 2 lambda W (errata 20)
    _check_config(config, WeightDecayConfig, "weight_decay")
    xp = _check_fitted(x, state, CountState, "weight_decay")
    _wd_params(x, config, params)
    out = x if config.weight_decay == 0.0 else x + (2.0 * config.weight_decay) * params
    return out, CountState(_next_count(state.count, xp), state.template)


#: L2 weight decay U <- U + lambda W (needs ``params``; errata 16).
weight_decay = Transform("weight_decay", WeightDecayConfig, CountState, _wd_init, _wd_update, _wd_aliased)
_weight_decay = weight_decay  # shampoo_driver's keyword of the same name shadows it
