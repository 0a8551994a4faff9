"""Norm grafting: rescale the preconditioned direction to the Frobenius norm of a reference direction.

References:
  shared/notes/kradagrad-code.md ("the notes") Sec. 2 steps 4 and 6 (the code's identity ``Graft``:
  ``shampoo_grad.mul_(graft_norm / (shampoo_norm + 1e-16))``), Sec. 4.2 and Sec. 8 (``AdagradGraft``/``AdamGraft``);
  Agarwal et al. 2020, "Disentangling adaptive gradient methods from learning rates". Not in the KrADagrad paper
  (notes Sec. 10 #6).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import algorithm as _algorithm
from .. import backend, validate
from .protocol import (Array, CountState, Transform, _call, _check_config, _check_fitted, _check_like, _check_part,
                       _count_init, _next_count, _template, _zero_count)


#: The constant the code adds to the norm of the direction before dividing (``shampoo_norm + 1e-16``).
GRAFT_EPS = 1e-16


def graft_norm(updates, reference, *, eps: float = GRAFT_EPS):
    """Rescale ``updates`` to the Frobenius norm of ``reference``: U * ||g~||_F / (||U||_F + eps).

    References:
      notes Sec. 2 step 6 (``shampoo_grad.mul_(graft_norm / (shampoo_norm + 1e-16))``, upstream PyTorch
      Shampoo); not in the KrADagrad paper (notes Sec. 10 #6).

    Args:
      updates: U, any shape, real floating.
      reference: g~, same shape and dtype (the norm is over the whole array, not per block).
      eps: added to ||U||_F (the code's 1e-16, in U's dtype: below float32's resolution for ||U|| >~ 1e-9).

    Returns:
      U scaled, same namespace and dtype. U = 0 stays 0. The norms are plain 2-norms of the flattened arrays,
      as torch.norm (no scaling: float32 squares overflow for entries beyond ~1e19).
    """
    xp = backend.namespace(updates, reference)
    unorm = xp.linalg.vector_norm(updates)
    gnorm = xp.linalg.vector_norm(reference)
    scale = xp.asarray(gnorm / (unorm + eps), dtype=updates.dtype)
    return updates * scale


@dataclass(frozen=True)
class NormGraftConfig:
    """Config of :data:`norm_graft`.

    Args:
      eps: added to ||U||_F before dividing (code: 1e-16).
    """

    eps: float = GRAFT_EPS

    def __post_init__(self):
        validate.real_scalar(self.eps, "eps", low=0.0)


def _norm_graft_init(shape_or_array, config, *, dtype=None, xp=None):
    _check_config(config, NormGraftConfig, "norm_graft")
    return _count_init(shape_or_array, config, dtype=dtype, xp=xp)


def _norm_graft_update(updates, state, config, *, params=None, grad=None):
    """Rescale the direction to ||grad||_F (the raw gradient entering the chain): the code's identity ``Graft``.

    References:
      notes Sec. 2 steps 4 and 6 (``Graft.precondition_gradient(G) = G``), Sec. 4.2 (KrAD* uses ``Graft`` for
      every graft_type but ADAM).

    Args:
      updates: U, the preconditioned direction, any shape.
      state: CountState.
      config: NormGraftConfig.
      params: unused.
      grad: G, same shape and dtype as U (required: :func:`chain` supplies it).

    Returns:
      (U ||G||_F / (||U||_F + eps), new state).
    """
    _check_config(config, NormGraftConfig, "norm_graft")
    xp = _check_fitted(updates, state, CountState, "norm_graft")
    if grad is None:
        raise ValueError("grad: norm_graft needs the reference gradient (pass grad=, or run it inside chain())")
    _check_like(grad, updates, "grad", "updates")
    return graft_norm(updates, grad, eps=config.eps), CountState(_next_count(state.count, xp), state.template)


def _norm_graft_aliased(x, state, config, *, params=None, momentum_alias=True):
    # graft direction and preconditioned direction are both p.grad: the ratio is ||x|| / (||x|| + eps)
    _check_config(config, NormGraftConfig, "norm_graft")
    xp = _check_fitted(x, state, CountState, "norm_graft")
    return graft_norm(x, x, eps=config.eps), CountState(_next_count(state.count, xp), state.template)


#: Norm grafting to the raw gradient (the code's ``Graft``): U <- U ||G||_F / (||U||_F + 1e-16).
norm_graft = Transform("norm_graft", NormGraftConfig, CountState, _norm_graft_init, _norm_graft_update,
                       _norm_graft_aliased)


@dataclass(frozen=True)
class NormGraftToConfig:
    """Config of :func:`norm_graft_to`.

    Args:
      reference: the reference optimizer's Config.
      eps: added to ||U||_F before dividing (code: 1e-16).
    """

    reference: Any
    eps: float = GRAFT_EPS

    def __post_init__(self):
        validate.real_scalar(self.eps, "eps", low=0.0)


class NormGraftToState(NamedTuple):
    count: Array      # shape (), int32; updates taken so far
    reference: Any    # the reference optimizer's state
    template: Array   # shape (0, *param_shape), param dtype, no data: the shape and dtype updates must have


def norm_graft_to(reference) -> Transform:
    """Norm grafting to another optimizer's direction: U <- U ||g~||_F / (||U||_F + eps), g~ = ref(G).

    References:
      notes Sec. 2 step 6 and Sec. 8 (the code's ``AdagradGraft``/``AdamGraft``: g~ = G/(sqrt(v) + eps));
      Agarwal et al. 2020, "Disentangling adaptive gradient methods from learning rates" (grafting).

    Args:
      reference: an :class:`~krad_ref.algorithm.Algorithm` (or Transform); it is run on the raw gradient
        ``grad`` every step and its state is kept here.

    Returns:
      A :class:`Transform` with Config :class:`NormGraftToConfig` and State ``NormGraftToState``. It has no
      ``aliased`` behaviour: the code's warm-up with Adagrad/Adam grafts keeps separate buffers (not modelled).
    """
    _check_part(reference, "reference")
    name = f"norm_graft_to({reference.name})"

    def init(shape_or_array, config, *, dtype=None, xp=None):
        _check_config(config, NormGraftToConfig, name)
        c = _algorithm.creation(shape_or_array, dtype, xp)
        return NormGraftToState(_zero_count(c), reference.init(shape_or_array, config.reference, dtype=dtype, xp=xp),
                                _template(c))

    def update(updates, state, config, *, params=None, grad=None):
        _check_config(config, NormGraftToConfig, name)
        xp = _check_fitted(updates, state, NormGraftToState, name)  # the reference's state: by its own update
        if grad is None:
            raise ValueError(f"grad: {name} needs the raw gradient (pass grad=, or run it inside chain())")
        _check_like(grad, updates, "grad", "updates")
        g_tilde, ref_state = _call(reference, grad, state.reference, config.reference, params=params, grad=grad,
                                   where="state.reference")
        return graft_norm(updates, g_tilde, eps=config.eps), NormGraftToState(_next_count(state.count, xp),
                                                                              ref_state, state.template)

    return Transform(name, NormGraftToConfig, NormGraftToState, init, update, None)
