"""The transform protocol: the :class:`Transform` record, :class:`CountState`, and the checks every part shares.

References:
  optax's ``GradientTransformation`` (init/update over an explicit state) and ``chain`` (combine.py); the authors'
  step driver that these parts reproduce: shared/notes/kradagrad-code.md Sec. 2 (``Shampoo.step``).

Protocol. Each transform is a :class:`Transform` record with the fields of :class:`krad_ref.algorithm.Algorithm`
(``name, Config, State, init, update``) plus ``aliased`` (the code's in-place aliasing: the package docstring,
"Aliasing"). Transforms are NOT registered as algorithm ids. Hyperparameters live in a frozen ``Config`` passed to
every call (never in closures, STYLE O1, so that ``state_io`` can save them)::

    state = t.init(shape_or_array, config, *, dtype=None, xp=None)
    updates, state = t.update(updates, state, config, *, params=None, grad=None)

``updates`` is the direction flowing through a chain; ``grad`` is the raw gradient that entered the outermost
chain (grafting's default reference; :func:`~krad_ref.transforms.chain` passes it to every part, and defaults it
to its own input); ``params`` (W) is needed only for weight decay (errata 16). States are NamedTuples whose
``count`` field is a 0-d int32 array of the updates taken and whose ``template`` field, a (0, *shape) array without
data, records the parameter's shape and dtype: ``updates`` of another shape or dtype are refused, and so is a state
holding NaN, Inf or arrays of the wrong shape (``algorithm.check_state``); a chain's state is a plain tuple of its
parts' states (optax's ``chain``). No function mutates its inputs; every array result has the namespace, device and
dtype of ``updates``. An :class:`~krad_ref.algorithm.Algorithm` (an optimizer) can be a part of a chain or the
inner optimizer of ``blockwise`` / ``start_preconditioning``: it receives the current updates as its ``grad``.
"""
from __future__ import annotations

import contextlib
import re
from typing import Any, Callable, NamedTuple

from .. import algorithm as _algorithm
from .. import backend, validate


Array = Any


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


def _template(c: "_algorithm.Creation"):
    """The no-data (0, *shape) array that records the parameter's shape and dtype in a state."""
    return c.xp.zeros((0, *c.shape), dtype=c.dtype, device=c.device)


def _count_init(shape_or_array, config, *, dtype=None, xp=None):
    c = _algorithm.creation(shape_or_array, dtype, xp)
    return CountState(count=_zero_count(c), template=_template(c))
