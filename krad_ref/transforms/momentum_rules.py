"""Momentum: heavy ball, PyTorch's Nesterov, and the in-place "Nesterov" of the authors' driver.

References:
  shared/notes/kradagrad-code.md Sec. 2 steps 8, 11, 12 and "Consequences" (the in-place rule is heavy ball with
  momentum mu^2 and gain 1 + mu); PyTorch ``torch.optim.SGD`` (heavy_ball, nesterov); errata 20 (warm-up aliasing).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .. import algorithm as _algorithm
from .. import validate
from .protocol import Array, Transform, _check_config, _check_own_arrays, _check_state, _next_count, _zero_count


#: momentum rules (see :class:`MomentumConfig`), simplest first
MOMENTUM_KINDS = ("heavy_ball", "nesterov", "inplace_nesterov")


@dataclass(frozen=True)
class MomentumConfig:
    """Config of :data:`momentum`.

    Args:
      kind: the momentum rule, with M the buffer (zero-initialised) and U the incoming direction:
        * ``"heavy_ball"``: M_k = mu M_{k-1} + U_k, output M_k (PyTorch SGD, nesterov=False; the code with
          ``nesterov=False``).
        * ``"nesterov"``: M_k = mu M_{k-1} + U_k, output U_k + mu M_k (PyTorch SGD, nesterov=True).
        * ``"inplace_nesterov"``: the upstream PyTorch Shampoo's "Nesterov" that the authors' code inherits
          (notes Sec. 2 steps 8 and 11): ``M <- mu M + U`` and then, on the same buffer, ``M <- mu M + U`` in
          place, so the stored buffer is M_k = mu^2 M_{k-1} + (1 + mu) U_k and the output is M_k: heavy ball
          with momentum mu^2 and gain 1 + mu, NOT Nesterov's method. Its value is computed with the code's two
          multiply-adds, in the code's order.
      mu: momentum in [0, 1) (code default 0.9).
    """

    kind: str
    mu: float = 0.9

    def __post_init__(self):
        validate.one_of(self.kind, "kind", MOMENTUM_KINDS)
        validate.real_scalar(self.mu, "mu", low=0.0, high=1.0, high_open=True)


class MomentumState(NamedTuple):
    count: Array  # shape (), int32; updates taken so far
    M: Array      # parameter shape, parameter dtype; the momentum buffer (zeros at init)


def _momentum_init(shape_or_array, config, *, dtype=None, xp=None):
    _check_config(config, MomentumConfig, "momentum")
    c = _algorithm.creation(shape_or_array, dtype, xp)
    return MomentumState(count=_zero_count(c), M=c.xp.zeros(c.shape, dtype=c.dtype, device=c.device))


def _momentum_check(updates, state, config):
    _check_config(config, MomentumConfig, "momentum")
    _check_state(state, MomentumState, "momentum")
    xp = _algorithm.check_grad(updates, state.M, name="updates", like_name="state.M")
    _check_own_arrays(state, updates, xp, M=(tuple(updates.shape), updates.dtype))
    return xp


def _momentum_update(updates, state, config, *, params=None, grad=None):
    """One momentum step of the chosen ``kind`` (see :class:`MomentumConfig`).

    References:
      notes Sec. 2 steps 8, 11, 12 and "Consequences" (inplace_nesterov); PyTorch ``torch.optim.SGD``
      (heavy_ball, nesterov).

    Args:
      updates: U, parameter shape and dtype.
      state: MomentumState.
      config: MomentumConfig.

    Returns:
      (direction, new state): heavy_ball -> M_k; nesterov -> U_k + mu M_k; inplace_nesterov -> M_k =
      mu^2 M_{k-1} + (1 + mu) U_k. The caller applies W <- W - eta * direction.
    """
    xp = _momentum_check(updates, state, config)
    mu = config.mu
    M = mu * state.M + updates                    # code step 8: M.mul_(mu).add_(U)
    if config.kind == "heavy_ball":
        out = M
    elif config.kind == "nesterov":
        out = updates + mu * M
    else:  # inplace_nesterov: code step 11 on the state buffer itself, M.mul_(mu).add_(U)
        M = mu * M + updates
        out = M
    return out, MomentumState(_next_count(state.count, xp), M)


def _momentum_aliased(x, state, config, *, params=None, momentum_alias=True):
    # warm-up (k < start) with the identity graft: the buffer accumulates x, while the step uses the graft
    # momentum, which IS p.grad = x: "V.mul_(mu).add_(D)" with V and D both x gives 2 mu x (errata 20).
    # momentum_alias=False (no statistics, k >= start): V is the state buffer, the ordinary update.
    if not momentum_alias:
        return _momentum_update(x, state, config, params=params)
    xp = _momentum_check(x, state, config)
    mu = config.mu
    M = mu * state.M + x
    if config.kind == "heavy_ball":
        out = x
    elif config.kind == "inplace_nesterov":
        out = (2.0 * mu) * x
    else:
        raise ValueError("config.kind: 'nesterov' (PyTorch) is not part of the code's driver; it has no "
                         "code-alias warm-up behaviour")
    return out, MomentumState(_next_count(state.count, xp), M)


#: Momentum: heavy ball, PyTorch Nesterov, or the code's in-place "Nesterov" (``MomentumConfig.kind``).
momentum = Transform("momentum", MomentumConfig, MomentumState, _momentum_init, _momentum_update,
                     _momentum_aliased)
