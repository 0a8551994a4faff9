"""Composable step transforms: the authors' step driver (grafting, weight decay, momentum quirks, warm-up,
shape merging and blocking) as small pieces around any preconditioner.

The KrADagrad paper describes preconditioners only. The authors' code (``shared/notes/kradagrad-code.md``,
"the notes") runs every Kronecker preconditioner inside the step driver of the upstream PyTorch Shampoo
(``Shampoo.step``, notes Sec. 2), which also merges small dimensions, cuts large ones into blocks (Sec. 1),
rescales the preconditioned direction to the norm of the gradient ("grafting"), adds weight decay and applies a
momentum rule with an aliasing quirk. None of that is in the paper. This module provides each of those steps as
a separate, tested piece, optax-style, so that a full step of the authors' code is a composition::

    step = start_preconditioning(blockwise(kradagrad_star),
                                 post=chain(norm_graft, weight_decay, momentum))

(:func:`shampoo_driver` builds exactly that, with its Config.)

Protocol. Each transform is a :class:`Transform` record with the fields of :class:`krad_ref.algorithm.Algorithm`
(``name, Config, State, init, update``) plus ``aliased`` (below). Transforms are NOT registered as algorithm
ids. Hyperparameters live in a frozen ``Config`` passed to every call (never in closures, STYLE O1, so that
``state_io`` can save them)::

    state = t.init(shape_or_array, config, *, dtype=None, xp=None)
    updates, state = t.update(updates, state, config, *, params=None, grad=None)

``updates`` is the direction flowing through a chain; ``grad`` is the raw gradient that entered the outermost
chain (grafting's default reference; :func:`chain` passes it to every part, and defaults it to its own input);
``params`` (W) is needed only for weight decay (errata 16). States are NamedTuples whose ``count`` field is a
0-d int32 array of the updates taken and whose ``template`` field, a (0, *shape) array without data, records the
parameter's shape and dtype: ``updates`` of another shape or dtype are refused, and so is a state holding NaN, Inf
or arrays of the wrong shape (``algorithm.check_state``); a chain's state is a plain tuple of its parts' states
(optax's ``chain``). No function mutates its inputs; every array result has the namespace, device and dtype of
``updates``. An :class:`~krad_ref.algorithm.Algorithm` (an optimizer) can be a part of a chain or the inner
optimizer of :func:`blockwise` / :func:`start_preconditioning`: it receives the current updates as its ``grad``.

Aliasing (``Transform.aliased``). The code's driver (identity ``Graft``) works in place on tensors that may be
one and the same object ``p.grad``:
  * warm-up steps (k < start_preconditioning_step): the gradient, the graft direction, the "preconditioned"
    direction and the momentum output all alias ``p.grad``; the composed effect (errata 20; notes Sec. 2) is
    ``M <- mu M + X`` and ``W <- W - 2 mu eta X`` with ``X = G ||G||/(||G|| + 1e-16) + 2 lambda W``;
  * a parameter without statistics (merged shape (), e.g. shape (1,) or (1, 1); notes Sec. 1 item 2) on steps
    k >= start: ``Preconditioner.preconditioned_grad`` returns ``p.grad`` itself, so the preconditioned and the
    graft direction alias and weight decay is added twice (X = G' + 2 lambda W), while the momentum uses its
    own buffer as usual. [INF: the notes say "plain (grafted) SGD update"; the doubling follows from the
    upstream ``if not self.preconditioners: return grad``.]
Each part of the code's driver therefore carries ``aliased(x, state, config, *, params, momentum_alias=True)``
giving its in-place-aliased behaviour (``momentum_alias=False``: only the directions alias, the second case),
and :func:`start_preconditioning` with ``warmup="code-alias"`` runs them in both cases.

Names (notes Sec. 2): k is the per-parameter step counter (the code increments it first, so the first step has
k = 1); mu is the momentum, eta the learning rate (the caller's), lambda the weight decay, G the gradient,
U the (preconditioned) direction, M the momentum buffer, g~ the graft direction (= G for the code's ``Graft``).
"""
from __future__ import annotations

import contextlib
import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from . import algorithm as _algorithm
from . import backend, validate

__all__ = [
    "Transform",
    "chain",
    "ChainConfig",
    "norm_graft",
    "NormGraftConfig",
    "norm_graft_to",
    "NormGraftToConfig",
    "graft_norm",
    "weight_decay",
    "WeightDecayConfig",
    "momentum",
    "MomentumConfig",
    "MomentumState",
    "MOMENTUM_KINDS",
    "start_preconditioning",
    "StartPreconditioningConfig",
    "StartPreconditioningState",
    "WARMUPS",
    "every_f_steps",
    "merge_small_dims",
    "BlockPartitioner",
    "blockwise",
    "BlockwiseConfig",
    "BlockwiseState",
    "shampoo_driver",
    "CountState",
    "GRAFT_EPS",
]

Array = Any

#: The constant the code adds to the norm of the direction before dividing (``shampoo_norm + 1e-16``).
GRAFT_EPS = 1e-16

#: momentum rules (see :class:`MomentumConfig`), simplest first
MOMENTUM_KINDS = ("heavy_ball", "nesterov", "inplace_nesterov")

#: warm-up rules of :func:`start_preconditioning`
WARMUPS = ("gradient", "code-alias")


class Transform(NamedTuple):
    """One step transform: the :class:`~krad_ref.algorithm.Algorithm` fields plus ``aliased``.

    ``aliased(x, state, config, *, params, momentum_alias=True)`` -> ``(x, state)`` is the part's behaviour
    when the code's buffers alias ``p.grad`` (module docstring, "Aliasing"; errata 20), or None when the code
    has no such part.
    """

    name: str
    Config: type
    State: type
    init: Callable[..., Any]
    update: Callable[..., Any]
    aliased: Callable[..., Any] | None = None


class CountState(NamedTuple):
    """State of a transform that keeps no arrays but its step counter (and the template of its parameter)."""

    count: Array            # shape (), int32; updates taken so far
    template: Array = None  # shape (0, *param_shape), param dtype, no data: the shape and dtype updates must have
                            # (None only in a hand-made CountState(count), which update refuses)


# ---------------------------------------------------------------------------------------------------------
# helpers

def _zero_count(c: "_algorithm.Creation"):
    """The 0-d int32 step counter of a new state, on the parameter's device."""
    return c.xp.zeros((), dtype=c.xp.int32, device=c.device)


def _next_count(count, xp):
    # xp.asarray: NumPy returns a scalar for 0-d arithmetic; the protocol wants a 0-d array
    return xp.asarray(count + 1, dtype=xp.int32)


def _step_index(count) -> int:
    """The code's per-parameter step k of the update about to be taken (= updates taken + 1)."""
    return int(count) + 1


def _check_config(config, cls, name: str):
    if not isinstance(config, cls):
        raise TypeError(f"config: expected {cls.__name__} for {name}, got {type(config).__name__}")


def _check_state(state, cls, name: str):
    if not isinstance(state, cls):
        raise ValueError(f"state: expected {cls.__name__} for {name}, got {type(state).__name__}")


def _check_fitted(updates, state, cls, name: str):
    """A transform state (it has a ``template``): ``updates`` must have the template's shape and dtype
    (``algorithm.check_grad``), and the state's own arrays must fit too (``algorithm.check_state``; nested states
    are checked by their own update). Returns the namespace."""
    _check_state(state, cls, name)
    t = state.template
    if not (hasattr(t, "shape") and hasattr(t, "dtype")):
        raise ValueError(f"state.template: expected the (0, *shape) array that init makes, got {type(t).__name__} "
                         f"(re-init the state)")
    shape = tuple(t.shape[1:])
    xp = _algorithm.check_grad(updates, t, shape=shape, name="updates", like_name="state.template")
    _check_own_arrays(state, updates, xp, template=((0, *shape), updates.dtype))
    return xp


def _check_own_arrays(state, updates, xp, **specs):
    """``algorithm.check_state`` on ``state``'s counter and the arrays in ``specs``; other fields are nested states."""
    expected = dict.fromkeys(state._fields)
    expected.update(count=((), xp.int32), **specs)
    _algorithm.check_state(state, expected, updates, xp)


def _check_like(x, ref, name: str, ref_name: str):
    """``x`` is a finite float array of ``ref``'s library, shape and dtype."""
    validate.float_array(x, name)
    try:
        backend.namespace(x, ref)
    except TypeError:
        raise TypeError(f"{name}: array library {type(x).__module__} does not match {ref_name}'s "
                        f"{type(ref).__module__}") from None
    if tuple(x.shape) != tuple(ref.shape):
        raise ValueError(f"{name}: shape {tuple(x.shape)} does not match {ref_name}'s {tuple(ref.shape)}")
    if x.dtype != ref.dtype:
        raise TypeError(f"{name}: dtype {backend.dtype_name(x.dtype)} does not match {ref_name}'s "
                        f"{backend.dtype_name(ref.dtype)}")
    validate.finite(x, name)


@contextlib.contextmanager
def _nested(where: str):
    """Errors about a nested state name its field from the outer state: ``state.factors[1]`` raised by the
    optimizer of block 0 reads ``state.blocks[0].factors[1]`` (``where`` = ``"state.blocks[0]"``)."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        msg = _STATE_REF.sub(where, str(exc))
        if type(exc) in (ValueError, TypeError) and msg != str(exc):
            raise type(exc)(msg).with_traceback(exc.__traceback__) from None  # the inner frames stay
        raise


#: a reference to the state in an error message: ``state.field``, ``state[i]`` or a leading ``state:``
_STATE_REF = re.compile(r"(?<![\w.])state(?=\.[A-Za-z_]|\[)|^state(?=:)")


def _call(part, updates, state, config, *, params, grad, where: str):
    """Run one part (its state at ``where``): a Transform gets ``grad``; an Algorithm (optimizer) sees ``updates``
    as its gradient."""
    with _nested(where):
        if isinstance(part, Transform):
            return part.update(updates, state, config, params=params, grad=grad)
        return part.update(updates, state, config, params=params)


def _check_part(part, name: str):
    if not (isinstance(part, (Transform, _algorithm.Algorithm))):
        raise TypeError(f"{name}: expected a Transform or an Algorithm record, got {type(part).__name__}")


# ---------------------------------------------------------------------------------------------------------
# chain

@dataclass(frozen=True)
class ChainConfig:
    """Config of a :func:`chain`: one Config per part, in order.

    Args:
      parts: tuple of the parts' Configs (a list is converted to a tuple).
    """

    parts: tuple = ()

    def __post_init__(self):
        if isinstance(self.parts, list):
            object.__setattr__(self, "parts", tuple(self.parts))
        if not isinstance(self.parts, tuple):
            raise TypeError(f"parts: expected a tuple of Configs, got {type(self.parts).__name__}")


def chain(*parts) -> Transform:
    """Compose transforms (and optimizers) left to right: each part's output is the next part's input.

    References:
      optax ``chain`` (combine.py): a state is the tuple of the parts' states, and a state that does not fit
      the chain is refused with a ValueError.

    Args:
      *parts: :class:`Transform` or :class:`~krad_ref.algorithm.Algorithm` records.

    Returns:
      A :class:`Transform` named ``chain(a, b, ...)``; Config :class:`ChainConfig` (one Config per part);
      State a plain tuple of the parts' states. ``update`` passes ``grad`` (default: the chain's own input)
      and ``params`` to every part. ``aliased`` composes the parts' ``aliased`` (a part without one makes the
      chain's ``aliased`` raise).

    Raises (at update):
      ValueError: the state is not a tuple of len(parts) states, or a part's state has the wrong class.
      TypeError: the config is not a ChainConfig with one Config of the right class per part.
    """
    for i, p in enumerate(parts):
        _check_part(p, f"parts[{i}]")
    parts = tuple(parts)
    name = "chain(" + ", ".join(p.name for p in parts) + ")"

    def check(state, config):
        _check_config(config, ChainConfig, name)
        if len(config.parts) != len(parts):
            raise TypeError(f"config: {name} has {len(parts)} parts but the ChainConfig holds "
                            f"{len(config.parts)} Configs")
        for i, (p, c) in enumerate(zip(parts, config.parts)):
            if not isinstance(c, p.Config):
                raise TypeError(f"config.parts[{i}]: expected {p.Config.__name__} for {p.name}, "
                                f"got {type(c).__name__}")
        if state is None:
            return
        if not isinstance(state, tuple) or hasattr(state, "_fields"):
            raise ValueError(f"state: expected a tuple of {len(parts)} part states for {name}, "
                             f"got {type(state).__name__}")
        if len(state) != len(parts):
            raise ValueError(f"state: {name} expects {len(parts)} part states, got {len(state)}")
        for i, (p, s) in enumerate(zip(parts, state)):
            if isinstance(p.State, type) and p.State is not tuple and not isinstance(s, p.State):
                raise ValueError(f"state[{i}]: expected {p.State.__name__} for {p.name}, got {type(s).__name__}")
            if p.State is tuple and (not isinstance(s, tuple) or hasattr(s, "_fields")):
                raise ValueError(f"state[{i}]: expected a tuple of part states for {p.name}, got {type(s).__name__}")

    def init(shape_or_array, config, *, dtype=None, xp=None):
        check(None, config)
        return tuple(p.init(shape_or_array, c, dtype=dtype, xp=xp) for p, c in zip(parts, config.parts))

    def update(updates, state, config, *, params=None, grad=None):
        check(state, config)
        grad = updates if grad is None else grad
        new_states = []
        for i, (p, s, c) in enumerate(zip(parts, state, config.parts)):
            updates, s = _call(p, updates, s, c, params=params, grad=grad, where=f"state[{i}]")
            new_states.append(s)
        return updates, tuple(new_states)

    def aliased(x, state, config, *, params=None, momentum_alias=True):
        check(state, config)
        new_states = []
        for i, (p, s, c) in enumerate(zip(parts, state, config.parts)):
            fn = getattr(p, "aliased", None)
            if fn is None:
                raise ValueError(f"parts[{i}] ({p.name}) has no aliased (code warm-up) behaviour; "
                                 f"warmup='code-alias' needs parts of the code's driver only")
            with _nested(f"state[{i}]"):
                x, s = fn(x, s, c, params=params, momentum_alias=momentum_alias)
            new_states.append(s)
        return x, tuple(new_states)

    return Transform(name, ChainConfig, tuple, init, update, aliased)


# ---------------------------------------------------------------------------------------------------------
# grafting

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


def _template(c: "_algorithm.Creation"):
    """The no-data (0, *shape) array that records the parameter's shape and dtype in a state."""
    return c.xp.zeros((0, *c.shape), dtype=c.dtype, device=c.device)


def _count_init(shape_or_array, config, *, dtype=None, xp=None):
    c = _algorithm.creation(shape_or_array, dtype, xp)
    return CountState(count=_zero_count(c), template=_template(c))


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


# ---------------------------------------------------------------------------------------------------------
# weight decay

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


# ---------------------------------------------------------------------------------------------------------
# momentum

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


# ---------------------------------------------------------------------------------------------------------
# start_preconditioning and the update-frequency schedule

def every_f_steps(k, f: int) -> bool:
    """True when step ``k`` is a multiple of ``f``: the code's every-f-steps schedule.

    References:
      notes Sec. 2 steps 2-3 (``if k % statistics_compute_steps == 0``, ``if k % preconditioning_compute_steps
      == 0``), Sec. 5.2 (KrADagrad's ``s % f == 0``), paper Sec. 5.2 ("every 20 steps").

    Args:
      k: the step counter as the caller counts it (an int or a 0-d integer array). Shampoo/KrAD* count from 1
        (the first step is k = 1: refreshes at f, 2f, ...; before step f the initial identities are used);
        the code's KrADagrad counts from 0 (s = 0 is due).
      f: the frequency, a positive int (f = 1: every step).

    Returns:
      bool. (A 0-d array ``k`` is read with ``int()``: a device synchronisation on CuPy.)
    """
    f = validate.positive_int(f, "f")
    k = int(k)
    if k < 0:
        raise ValueError(f"k: expected a step counter >= 0, got {k}")
    return k % f == 0


@dataclass(frozen=True)
class StartPreconditioningConfig:
    """Config of :func:`start_preconditioning`.

    Args:
      precond: the preconditioner's Config.
      post: the ``post`` transform's Config (None when there is no ``post``).
      start: ``start_preconditioning_step`` (code default 1: preconditioned from the first step; the
        conditioning experiment used 3). Steps k < start use the gradient.
      warmup: ``"gradient"`` (steps k < start run ``post`` on U = G, the clean reading) or ``"code-alias"``:
        the code's in-place aliasing of p.grad (module docstring, "Aliasing"; errata 20): steps k < start run
        ``post.aliased``, and so do steps k >= start of a parameter without statistics (a :func:`blockwise`
        preconditioner with no blocks, or a 0-d parameter), there with ``momentum_alias=False``.
    """

    precond: Any
    post: Any = None
    start: int = 1
    warmup: str = "gradient"

    def __post_init__(self):
        validate.positive_int(self.start, "start")
        validate.one_of(self.warmup, "warmup", WARMUPS)


class StartPreconditioningState(NamedTuple):
    count: Array     # shape (), int32; updates taken so far (the code's k = count + 1 at the next update)
    precond: Any     # the preconditioner's state (updated on every step, warm-up included)
    post: Any        # the post transform's state (None without post)
    template: Array  # shape (0, *param_shape), param dtype, no data: the shape and dtype updates must have


def start_preconditioning(precond, post=None) -> Transform:
    """Use G before step ``start`` and the preconditioned direction from step ``start`` on.

    References:
      notes Sec. 2 steps 2-5 and 10-11 (``start_preconditioning_step``), errata 20.

    Args:
      precond: the preconditioner (Algorithm or Transform). Its state advances on EVERY step, warm-up steps
        included, as in the code (statistics accumulate from k = 1); its direction is discarded for k < start.
      post: optional Transform applied after the choice (the rest of the driver: graft, weight decay,
        momentum). Needed for ``warmup="code-alias"``, which runs ``post.aliased`` on the warm-up steps.

    Returns:
      A :class:`Transform` with Config :class:`StartPreconditioningConfig` and State
      :class:`StartPreconditioningState`. With the code's counter, step k = count + 1 is preconditioned iff
      k >= start. Warm-up with ``warmup="code-alias"``, the code's identity graft, weight decay lambda and the
      in-place Nesterov gives direction 2 mu (G ||G||/(||G|| + 1e-16) + 2 lambda W) (errata 20).
    """
    _check_part(precond, "precond")
    if post is not None:
        _check_part(post, "post")
    name = f"start_preconditioning({precond.name}" + (f", post={post.name})" if post is not None else ")")

    def check(config):
        _check_config(config, StartPreconditioningConfig, name)
        if not isinstance(config.precond, precond.Config):
            raise TypeError(f"config.precond: expected {precond.Config.__name__} for {precond.name}, "
                            f"got {type(config.precond).__name__}")
        if post is None and config.post is not None:
            raise TypeError(f"config.post: {name} has no post transform; expected None")
        if post is not None and not isinstance(config.post, post.Config):
            raise TypeError(f"config.post: expected {post.Config.__name__} for {post.name}, "
                            f"got {type(config.post).__name__}")
        if config.warmup == "code-alias" and post is not None and getattr(post, "aliased", None) is None:
            raise ValueError(f"config.warmup: 'code-alias' needs a post transform with aliased behaviour; "
                             f"{post.name} has none")

    def init(shape_or_array, config, *, dtype=None, xp=None):
        check(config)
        c = _algorithm.creation(shape_or_array, dtype, xp)
        ps = precond.init(shape_or_array, config.precond, dtype=dtype, xp=xp)
        qs = None if post is None else post.init(shape_or_array, config.post, dtype=dtype, xp=xp)
        return StartPreconditioningState(_zero_count(c), ps, qs, _template(c))

    def update(updates, state, config, *, params=None, grad=None):
        check(config)
        xp = _check_fitted(updates, state, StartPreconditioningState, name)  # precond, post: by their own updates
        grad = updates if grad is None else grad
        k = _step_index(state.count)
        U, ps = _call(precond, updates, state.precond, config.precond, params=params, grad=grad,
                      where="state.precond")
        warm = k < config.start
        if warm:
            U = updates
        qs = state.post
        if post is not None:
            no_stats = updates.ndim == 0 or (isinstance(ps, BlockwiseState) and ps.blocks == ())
            if config.warmup == "code-alias" and (warm or no_stats):
                with _nested("state.post"):
                    U, qs = post.aliased(U, state.post, config.post, params=params, momentum_alias=warm)
            else:
                U, qs = _call(post, U, state.post, config.post, params=params, grad=grad, where="state.post")
        return U, StartPreconditioningState(_next_count(state.count, xp), ps, qs, state.template)

    return Transform(name, StartPreconditioningConfig, StartPreconditioningState, init, update, None)


# ---------------------------------------------------------------------------------------------------------
# shape handling: merging small dims, blocking large ones

def merge_small_dims(shape, max_dim: int) -> tuple[int, ...]:
    """Merge adjacent dimensions while their product stays <= ``max_dim``; drop size-1 dimensions.

    References:
      notes Sec. 1 item 1 (the code's ``_merge_small_dims(shape, max_dim=block_size)``, called when
      ``best_effort_shape_interpretation`` is True, the default).

    Algorithm (exactly the code's): scan left to right with a running product ``prod = 1``; for each d, if
    ``prod * d <= max_dim`` then ``prod *= d``, else append ``prod`` if ``prod > 1`` and set ``prod = d``; at
    the end append ``prod`` if ``prod > 1``. Examples (max_dim = 128): (128, 64, 3, 3) -> (128, 64, 9);
    (1, 10) -> (10,); (1,) -> () (an order-0 parameter: no statistics).

    Args:
      shape: sequence of positive ints (a parameter's shape; () allowed).
      max_dim: positive int (the code passes ``block_size``).

    Returns:
      The merged shape as a tuple; its product equals the product of ``shape``, so a row-major reshape maps
      one onto the other.
    """
    shape = _algorithm.shape_of(tuple(shape)) if not isinstance(shape, tuple) else _algorithm.shape_of(shape)
    max_dim = validate.positive_int(max_dim, "max_dim")
    out = []
    prod = 1
    for d in shape:
        if prod * d <= max_dim:
            prod *= d
        else:
            if prod > 1:
                out.append(prod)
            prod = d
    if prod > 1:
        out.append(prod)
    return tuple(out)


@dataclass(frozen=True)
class BlockPartitioner:
    """Cut a tensor into blocks: every dimension d > ``block_size`` into chunks of ``block_size``, the last
    chunk the remainder; blocks are the Cartesian product of the chunks, first dimension outermost.

    References:
      notes Sec. 1 item 3 (the code's ``BlockPartitioner``: ``nsplit = (d - 1) // block_size`` cut points at
      block_size, 2 block_size, ...; ``partition`` splits dimension by dimension, ``merge_partitions``
      concatenates back in the reverse order of the splits). The code stores per-block, per-mode statistics at
      flat index j * p + i (block j, mode i); :func:`blockwise` keeps one inner state per block, in block order.

    Args:
      shape: the (merged) tensor shape, positive ints; () gives one block of shape ().
      block_size: positive int.

    Attributes:
      sizes: per dimension, the tuple of chunk sizes.
      block_shapes: the shape of each block, in block order.
      num_blocks: len(block_shapes).

    ``merge(partition(X)) == X`` exactly (slicing and concatenation copy values).
    """

    shape: tuple
    block_size: int
    sizes: tuple = field(init=False, repr=False)
    block_shapes: tuple = field(init=False, repr=False)

    def __post_init__(self):
        shape = _algorithm.shape_of(tuple(self.shape))
        bs = validate.positive_int(self.block_size, "block_size")
        sizes = []
        for d in shape:
            if d > bs:
                nsplit = (d - 1) // bs
                sizes.append(tuple([bs] * nsplit + [d - nsplit * bs]))
            else:
                sizes.append((d,))
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "block_size", bs)
        object.__setattr__(self, "sizes", tuple(sizes))
        object.__setattr__(self, "block_shapes", tuple(itertools.product(*sizes)))

    @property
    def num_blocks(self) -> int:
        return len(self.block_shapes)

    def block_slices(self) -> tuple:
        """Per block (in block order), the tuple of slices selecting it."""
        per_dim = []
        for sz in self.sizes:
            starts = [0]
            for s in sz[:-1]:
                starts.append(starts[-1] + s)
            per_dim.append(tuple(slice(a, a + s) for a, s in zip(starts, sz)))
        return tuple(itertools.product(*per_dim))

    def partition(self, X) -> tuple:
        """The blocks of ``X`` (shape ``self.shape``), in block order (first dimension outermost)."""
        if tuple(X.shape) != self.shape:
            raise ValueError(f"X: shape {tuple(X.shape)} does not match the partitioner's {self.shape}")
        if self.num_blocks == 1:
            return (X,)
        return tuple(X[s] for s in self.block_slices())

    def merge(self, blocks):
        """Inverse of :meth:`partition`: concatenate the blocks back, last split dimension first (the code's
        ``merge_partitions``)."""
        blocks = list(blocks)
        if len(blocks) != self.num_blocks:
            raise ValueError(f"blocks: expected {self.num_blocks} blocks, got {len(blocks)}")
        for j, (b, s) in enumerate(zip(blocks, self.block_shapes)):
            if tuple(b.shape) != tuple(s):
                raise ValueError(f"blocks[{j}]: expected shape {tuple(s)}, got {tuple(b.shape)}")
        if self.num_blocks == 1:
            return blocks[0]
        xp = backend.namespace(*blocks)
        for i in reversed(range(len(self.shape))):
            n = len(self.sizes[i])
            if n == 1:
                continue
            blocks = [xp.concat(blocks[j:j + n], axis=i) for j in range(0, len(blocks), n)]
        assert len(blocks) == 1
        return blocks[0]


@dataclass(frozen=True)
class BlockwiseConfig:
    """Config of :func:`blockwise`.

    Args:
      inner: the inner optimizer's Config (shared by every block).
      block_size: the code's ``block_size`` (default 128): dimensions are merged up to it and cut above it.
      merge_dims: the code's ``best_effort_shape_interpretation`` (default True): apply
        :func:`merge_small_dims` first. False keeps the shape as is (size-1 dimensions included).
    """

    inner: Any
    block_size: int = 128
    merge_dims: bool = True

    def __post_init__(self):
        validate.positive_int(self.block_size, "block_size")
        if not isinstance(self.merge_dims, bool):
            raise TypeError(f"merge_dims: expected a bool, got {type(self.merge_dims).__name__}")


class BlockwiseState(NamedTuple):
    count: Array     # shape (), int32; updates taken so far
    blocks: tuple    # one inner state per block, in BlockPartitioner block order; () for an order-0 shape
    template: Array  # shape (0, *param_shape), param dtype, no data: the shape and dtype updates must have


def _blockwise_layout(shape, config):
    merged = merge_small_dims(shape, config.block_size) if config.merge_dims else tuple(shape)
    return merged, (BlockPartitioner(merged, config.block_size) if merged else None)


def blockwise(optimizer) -> Transform:
    """Run ``optimizer`` independently on each block of the merged, partitioned parameter.

    References:
      notes Sec. 1 items 1-3 and ``Preconditioner.preconditioned_grad`` (reshape the gradient to the merged
      shape, partition, precondition each block, merge, reshape back).

    Args:
      optimizer: an :class:`~krad_ref.algorithm.Algorithm` (or Transform) run per block, with the block's
        shape at ``init`` and the block of the gradient (and of ``params``) at ``update``.

    Returns:
      A :class:`Transform` with Config :class:`BlockwiseConfig` and State :class:`BlockwiseState`. The reshape
      is row-major (torch's and the array API's). A parameter whose merged shape is () (e.g. shape (1,) or
      a scalar) has no blocks and its gradient passes unchanged (the code keeps no statistics for it: notes
      Sec. 1 item 2). Grafting is NOT applied here: the code grafts over the whole parameter (put
      :data:`norm_graft` after this transform).
    """
    _check_part(optimizer, "optimizer")
    name = f"blockwise({optimizer.name})"

    def check(config):
        _check_config(config, BlockwiseConfig, name)
        if not isinstance(config.inner, optimizer.Config):
            raise TypeError(f"config.inner: expected {optimizer.Config.__name__} for {optimizer.name}, "
                            f"got {type(config.inner).__name__}")

    def init(shape_or_array, config, *, dtype=None, xp=None):
        check(config)
        c = _algorithm.creation(shape_or_array, dtype, xp)
        shape, dtype, xp = c.shape, c.dtype, c.xp
        _, part = _blockwise_layout(shape, config)
        blocks = () if part is None else tuple(
            optimizer.init(bshape, config.inner, dtype=dtype, xp=xp) for bshape in part.block_shapes)
        return BlockwiseState(_zero_count(c), blocks, _template(c))

    def update(updates, state, config, *, params=None, grad=None):
        check(config)
        xp = _check_fitted(updates, state, BlockwiseState, name)
        shape = tuple(updates.shape)
        merged, part = _blockwise_layout(shape, config)
        n_blocks = 0 if part is None else part.num_blocks
        if not isinstance(state.blocks, tuple) or len(state.blocks) != n_blocks:
            raise ValueError(f"state: {name} expects {n_blocks} block states for shape {shape} "
                             f"(merged {merged}), got {len(state.blocks)}")
        if params is not None:
            _check_like(params, updates, "params", "updates")
        count = _next_count(state.count, xp)
        if part is None:
            return updates, BlockwiseState(count, (), state.template)
        gb = part.partition(xp.reshape(updates, merged))
        gr = None if grad is None else part.partition(xp.reshape(grad, merged))
        pb = None if params is None else part.partition(xp.reshape(params, merged))
        outs, states = [], []
        for j, (g, s) in enumerate(zip(gb, state.blocks)):
            w = None if pb is None else pb[j]
            r = None if gr is None else gr[j]
            d, s = _call(optimizer, g, s, config.inner, params=w, grad=r, where=f"state.blocks[{j}]")
            outs.append(d)
            states.append(s)
        out = xp.reshape(part.merge(outs), shape)
        return out, BlockwiseState(count, tuple(states), state.template)

    return Transform(name, BlockwiseConfig, BlockwiseState, init, update, None)


# ---------------------------------------------------------------------------------------------------------
# the authors' driver, assembled

def shampoo_driver(precond, precond_config, *, block_size: int = 128, merge_dims: bool = True,
                   start: int = 1, weight_decay: float = 0.0, mu: float = 0.9, nesterov: bool = True,
                   warmup: str = "code-alias", graft_eps: float = GRAFT_EPS):
    """The authors' (upstream PyTorch Shampoo's) step driver around ``precond``, with its Config.

    References:
      notes Sec. 2 (``Shampoo.step``) with the identity ``Graft`` (Sec. 4.2: KrAD* for every graft_type but
      ADAM), Sec. 1 (merging, blocking); errata 20. Defaults are the code's ``ShampooHyperParams``
      (block_size 128, start 1, weight decay 0, momentum 0.9, nesterov True).

    Composition::

        start_preconditioning(blockwise(precond),
                              post=chain(norm_graft, weight_decay, momentum))

    Args:
      precond: the preconditioner (e.g. ``kradagrad.kradagrad_star``) and ``precond_config`` its Config.
      block_size, merge_dims: see :class:`BlockwiseConfig`.
      start, warmup: see :class:`StartPreconditioningConfig` (``"code-alias"`` copies the code's warm-up).
      weight_decay: lambda (the update then needs ``params``).
      mu, nesterov: momentum; nesterov=True is the code's in-place "Nesterov" (``inplace_nesterov``), False
        plain heavy ball.
      graft_eps: the code's 1e-16.

    Returns:
      (transform, config). The step is W <- W - eta * direction.
    """
    post = chain(norm_graft, _weight_decay, momentum)
    t = start_preconditioning(blockwise(precond), post=post)
    cfg = StartPreconditioningConfig(
        precond=BlockwiseConfig(precond_config, block_size=block_size, merge_dims=merge_dims),
        post=ChainConfig((NormGraftConfig(graft_eps), WeightDecayConfig(weight_decay),
                          MomentumConfig("inplace_nesterov" if nesterov else "heavy_ball", mu))),
        start=start, warmup=warmup)
    return t, cfg

