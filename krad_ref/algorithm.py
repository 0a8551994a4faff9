"""The optimizer protocol shared by every algorithm module, and the registry of algorithm ids.

An optimizer is a pair of pure functions over a frozen ``Config`` (optax's shape, with the hyperparameters
passed in rather than captured in closures, so a saved state can say what produced it):

    state = init(shape_or_array, config, *, dtype=None, xp=None)
    direction, state = update(grad, state, config, *, params=None)
    W = W - lr * direction                     # the caller applies the step

Every ``update`` is wrapped by :func:`overflow_guard` (its float range limit, README "Conventions worth
knowing"), which also lets each array be checked once per update: the NumPy arrays an update allocates for the
state it returns are read-only, so the next update need not scan them again. ``update`` never mutates its
inputs; ``params`` is needed only for weight decay (errata 16: an update with weight_decay != 0 and params=None
raises). States are NamedTuples of arrays (and small Python tuples of them);
a ``count`` field holds the number of updates taken, as a 0-d int32 array. Every ``update`` first checks its
gradient (:func:`check_grad`) and its state (:func:`check_state`: shapes and dtypes as ``init`` makes them, finite
values), and names the field at fault (``state.factors[1]``).

Algorithm ids (errata 18): "kradagrad_star", "kradagrad", "shampoo", "adagrad_full", "adagrad_diag", "adam",
"sgd", "mbag", "mbag_ema", "mbag_n".
"""
from __future__ import annotations

import functools
import importlib
import math
import operator
import weakref
from typing import Any, Callable, NamedTuple

from . import backend, validate

__all__ = ["Algorithm", "Creation", "register", "get", "names", "registered", "shape_of", "creation", "check_grad",
           "check_types", "OMIT_WHEN_DEFAULT", "overflow_limit", "check_finite_result",
           "check_finite_arrays", "overflow_guard", "check_state"]

#: ``dataclasses.field`` metadata of a Config field added after the golden-vector format v1 was frozen, whose
#: default leaves the algorithm exactly as it was before the field existed: ``crossval.format.config_fields``
#: writes such a field only when it holds another value, so every vector written before stays valid and
#: regenerates byte-identically, and ``make_config`` fills the default back in (absent = default).
OMIT_WHEN_DEFAULT = {"golden": "omit_when_default"}


class Algorithm(NamedTuple):
    """One optimizer: its id, Config class, State class and its two pure functions."""

    name: str
    Config: type
    State: type
    init: Callable[..., Any]
    update: Callable[..., Any]


_REGISTRY: dict[str, Algorithm] = {}

# module that registers each id, imported on first lookup
_HOME = {
    "kradagrad_star": "kradagrad",
    "kradagrad": "kradagrad",
    "shampoo": "shampoo",
    "adagrad_full": "adagrad",
    "adagrad_diag": "adagrad",
    "adam": "adagrad",
    "sgd": "adagrad",
    "mbag": "mbag",
    "mbag_ema": "mbag",
    "mbag_n": "mbag",
}


def register(alg: Algorithm) -> Algorithm:
    if alg.name in _REGISTRY and _REGISTRY[alg.name] is not alg:
        raise ValueError(f"algorithm id {alg.name!r} is registered twice")
    _REGISTRY[alg.name] = alg
    return alg


def get(name: str) -> Algorithm:
    """The algorithm registered under ``name`` (see the module docstring for the ids)."""
    if name not in _REGISTRY and name in _HOME:
        importlib.import_module(f"krad_ref.{_HOME[name]}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"algorithm: unknown id {name!r}; known ids: {', '.join(sorted(_HOME))}") from None


def names() -> tuple[str, ...]:
    return tuple(sorted(_HOME))


def registered() -> dict[str, Algorithm]:
    """Every algorithm registered so far (a copy), after importing the modules of all known ids."""
    for name in _HOME:
        get(name)
    return dict(_REGISTRY)


def shape_of(shape_or_array) -> tuple[int, ...]:
    """The parameter shape from either a shape tuple or an array; validates positive integer sizes."""
    shape = getattr(shape_or_array, "shape", shape_or_array)
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(f"shape_or_array: expected a shape tuple or an array, got {type(shape_or_array).__name__}") from None
    for d in shape:
        if isinstance(d, bool) or not isinstance(d, int) or d < 1:
            raise ValueError(f"shape_or_array: expected positive integer sizes, got {shape}")
    return shape


class Creation(NamedTuple):
    """What ``init`` needs to build a state: the parameter shape and where and how to allocate."""

    shape: tuple[int, ...]
    dtype: Any
    device: Any
    xp: Any


def creation(shape_or_array, dtype=None, xp=None) -> Creation:
    """Resolve ``init``'s arguments under the protocol's defaults.

    An array gives its namespace, device and dtype (``dtype`` overrides the dtype); a shape tuple uses ``xp``
    (default: NumPy through array_api_compat) and ``dtype`` (default float64). ``dtype`` may also be the
    string ``"float32"`` or ``"float64"``.
    """
    shape = shape_of(shape_or_array)
    device = None
    if hasattr(shape_or_array, "shape") and hasattr(shape_or_array, "dtype"):
        xp = backend.namespace(shape_or_array) if xp is None else xp
        device = backend.device(shape_or_array)
        dtype = shape_or_array.dtype if dtype is None else dtype
    if xp is None:
        xp = backend.get_namespace("numpy")
    if dtype is None:
        dtype = xp.float64
    if isinstance(dtype, str):
        if dtype not in ("float32", "float64"):
            raise TypeError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
        dtype = getattr(xp, dtype)
    try:
        ok = xp.isdtype(dtype, "real floating")
    except Exception:  # noqa: BLE001 - a dtype of another library
        ok = False
    if not ok:
        raise TypeError(f"dtype: expected a real floating dtype, got {backend.dtype_name(dtype)}")
    return Creation(shape, dtype, device, xp)


def check_types(state, config, State: type, Config: type) -> None:
    """``state`` and ``config`` must be instances of the algorithm's own classes (a TypeError names which)."""
    if not isinstance(config, Config):
        raise TypeError(f"config: expected {Config.__name__}, got {type(config).__name__}")
    if not isinstance(state, State):
        raise TypeError(f"state: expected {State.__name__}, got {type(state).__name__}")


def overflow_limit(dtype, xp, *, power: int, factor: float = 1.0) -> float:
    """(factor * F)^(1/power), F the largest finite number of ``dtype``: the largest ||grad||_F for which an update
    whose biggest intermediate is ~ ||grad||^power / factor stays finite (e.g. power 2, factor 1/2 for
    sym(S + G G^T), whose entries are <= 2 ||G||_F^2 by Cauchy-Schwarz). The README's float32 limits table lists
    each algorithm's power and factor; update refuses a larger gradient with :class:`validate.OverflowLimitError`.
    """
    try:
        return _overflow_limit(dtype, xp, power, factor)
    except TypeError:  # an unhashable dtype or namespace: nothing to remember it by
        return _overflow_limit.__wrapped__(dtype, xp, power, factor)


@functools.lru_cache(maxsize=256)
def _overflow_limit(dtype, xp, power, factor) -> float:
    # a pure function of its arguments, asked on every update: finfo and the power cost more than the update's
    # own small-problem arithmetic, so each (dtype, power, factor) is computed once
    return (factor * float(xp.finfo(dtype).max)) ** (1.0 / power)


# ---------------------------------------------------------------------------------------------------------
# checking each array once per update
#
# A guarded update (:func:`overflow_guard`) keeps a frame: the arrays it has verified finite so far in this
# update (id -> array; the array is held so that its id cannot be reused by a temporary while the update runs).
# The gradient is verified by the guard's own max|grad| (NaN and inf propagate through max), the state's arrays by
# :func:`check_state`, a statistic consumed mid-update by :func:`check_finite_arrays`; the final
# :func:`check_finite_result` then scans only what the update newly made. Nothing verified can have changed
# before the end of the update: an update never writes to its inputs, and every array in a frame is an input or a
# result the update has finished computing.
#
# Across updates: a state array that the guard has verified finite and that the update itself allocated (a NumPy
# ndarray owning its memory, neither an input nor the base of another output's view) is made read-only and
# remembered (sealed). The next update's check_state skips a sealed array that is still that object and still
# read-only: with no writeable view of its memory, its values cannot have changed since they were verified
# unless someone sets ``flags.writeable`` back to True (then it is scanned again). States are documented as
# immutable (the update returns a new one); sealing makes NumPy enforce it. CuPy and array_api_strict arrays have
# no read-only flag: they are scanned on every update, as before.

def _top_arrays(state) -> list:
    """The arrays :func:`check_finite_result` reads: a NamedTuple's fields and the items of tuple fields."""
    out = []
    for v in state:
        if isinstance(v, tuple):
            out.extend(v)
        else:
            out.append(v)
    return out


def _seal(frame, new_state, direction, state, grad, params) -> None:
    """Make read-only and remember (see above) the arrays of ``new_state`` that the update has verified finite
    (``frame``) and allocated: an ndarray owning its memory, not an input array, not the base of an output's
    view, not the direction."""
    nd = backend._NDARRAY  # set once NumPy arrays have gone through backend.namespace
    if nd is None:
        return
    outputs = _top_arrays(new_state)
    inputs = {id(a) for a in _top_arrays(state)} if isinstance(state, tuple) else set()
    inputs.update((id(grad), id(params)))
    bases = {id(a.base) for a in outputs + [direction] if type(a) is nd and a.base is not None}
    for a in outputs:
        if (frame.get(id(a)) is a and type(a) is nd and a.base is None and a.flags.writeable
                and a is not direction and id(a) not in inputs and id(a) not in bases):
            a.flags.writeable = False
            key = id(a)
            validate._SEALED[key] = weakref.ref(a, lambda ref, key=key: validate._forget(key, ref))


def check_finite_result(direction, state, *, name: str = "state") -> None:
    """Refuse an update's result that overflowed: an inf or NaN in ``direction`` or any array field of ``state``
    (a NamedTuple; tuples of arrays are searched) raises :class:`validate.OverflowLimitError` naming the first
    such field, e.g. ``state.v``. One reduction per array (none for an array already verified in this update:
    an unchanged input, a statistic checked before its root). A finite gradient below the algorithm's
    :func:`overflow_limit` still overflows here once a statistic accumulated over many steps passes F."""
    items = [("direction", direction)]
    for field, v in zip(state._fields, state):
        if isinstance(v, tuple):
            items.extend((f"{name}.{field}[{i}]", a) for i, a in enumerate(v))
        else:
            items.append((f"{name}.{field}", v))
    check_finite_arrays(items)


def check_finite_arrays(items) -> None:
    """``items``: (label, array) pairs; the first array holding inf or NaN raises :class:`validate.OverflowLimitError`
    naming its label (used where a statistic is consumed in the same step, before :func:`check_finite_result`).

    One ``all(isfinite(a))`` per real floating array not yet verified in this update and ONE host synchronisation
    for all of them, as :func:`check_state` does; only on failure are the arrays visited again, in order, to name
    the first bad one.
    """
    frame = validate._frame()
    flags = []
    spaces = {}  # array type -> namespace: asked once per update, not per array
    for label, a in items:
        if not hasattr(a, "dtype") or not hasattr(a, "shape") or a.size == 0 or validate._known_finite(a, frame):
            continue
        xp = spaces.get(type(a))
        if xp is None:
            xp = spaces[type(a)] = backend.namespace(a)
        if backend.is_real_floating(a, xp):
            flags.append((label, a, xp, backend.all_finite(a, xp)))
    if not flags:
        return
    if bool(functools.reduce(operator.and_, [ok for *_, ok in flags])):  # the one host sync
        if frame is not None:
            frame.update((id(a), a) for _, a, _, _ in flags)
        return
    for label, a, xp, ok in flags:
        if not bool(ok):
            raise validate.OverflowLimitError(
                f"{label}: overflow: the update produced inf or NaN (beyond the largest {backend.dtype_name(a.dtype)}"
                f" {float(xp.finfo(a.dtype).max):.3g}): the statistics accumulated past the dtype's range; use "
                f"float64, or smaller gradients")


def overflow_guard(Config: type, limit: Callable[[Any, Any, Any], float], what: str):
    """Decorator of an ``update(grad, state, config, *, params=None)``: the float range guard, once per algorithm.

    Before the update: a gradient with ||grad||_F > ``limit(config, grad, xp)`` (the algorithm's
    :func:`overflow_limit`) raises :class:`validate.OverflowLimitError` naming ``grad`` and saying ``what`` would
    overflow. The test costs one reduction (max|grad|) below the limit, which also tells :func:`check_grad` that
    the gradient is finite; it is skipped for anything the update's own checks refuse anyway (not an array, not
    real floating, inf/NaN, a config of another class). After the update: :func:`check_finite_result` (an
    overflow accumulated over many steps names the state field). The update runs in a frame that lets each array
    be checked once (see "checking each array once per update" above); a state it returns has its new NumPy
    arrays sealed read-only.
    """
    def decorate(update):
        @functools.wraps(update)
        def guarded(grad, state, config, *, params=None):
            frame = {}
            if isinstance(config, Config) and hasattr(grad, "dtype") and hasattr(grad, "shape"):
                try:
                    xp = backend.namespace(grad)
                    real = backend.is_real_floating(grad, xp)
                except TypeError:
                    real = False
                if real:
                    m = validate._norm_limit(grad, "grad", limit=limit(config, grad, xp), what=what, xp=xp)
                    if math.isfinite(m):  # max|grad| is NaN or inf exactly when grad holds a NaN or inf
                        frame[id(grad)] = grad
            frames = getattr(validate._LOCAL, "frames", None)
            if frames is None:
                frames = validate._LOCAL.frames = []
            frames.append(frame)
            try:
                direction, new_state = update(grad, state, config, params=params)
                check_finite_result(direction, new_state)
            finally:
                frames.pop()
            _seal(frame, new_state, direction, state, grad, params)
            return direction, new_state
        return guarded
    return decorate


def check_grad(grad, like, *, shape=None, dtype=None, name: str = "grad", like_name: str | None = None):
    """Validate an ``update``'s gradient against the state; return the gradient's namespace.

    ``grad`` must be a finite real floating array of ``like``'s library, with ``shape`` and ``dtype``
    (defaults: ``like``'s). Nothing is converted or copied: a float32 gradient for a float64 state is an error,
    not a silent promotion. ``name`` is the argument's name in messages (a transform's ``updates``), and
    ``like_name`` the state field the shape and dtype were read from (``state.v``), so that a mismatch names both
    sides: either may be the one at fault.
    """
    xp = validate.float_array(grad, name)
    try:
        backend.namespace(grad, like)
    except TypeError:
        raise TypeError(f"{name}: array library {type(grad).__module__} does not match the state's "
                        f"{type(like).__module__}") from None
    shape = tuple(like.shape) if shape is None else tuple(shape)
    dtype = like.dtype if dtype is None else dtype
    source = "" if like_name is None else f" (from {like_name})"
    if tuple(grad.shape) != shape:
        raise ValueError(f"{name}: shape {tuple(grad.shape)} does not match the state's parameter shape "
                         f"{shape}{source}")
    if grad.dtype != dtype:
        raise TypeError(f"{name}: dtype {backend.dtype_name(grad.dtype)} does not match the state's "
                        f"{backend.dtype_name(dtype)}{source}; cast the gradient or re-init the state")
    validate.finite(grad, name, xp=xp)  # free when the guard's max|grad| has verified it
    frame = validate._frame()
    if frame is not None:
        frame[id(grad)] = grad
    return xp


def check_state(state, expected: dict, like, xp, *, name: str = "state") -> None:
    """Validate an ``update``'s state against what ``init`` makes for this gradient and config.

    Every field of the NamedTuple ``state`` must have an entry in ``expected``:
      * ``(shape, dtype)``: an array of exactly that shape and dtype, of ``like``'s library (``like``: the
        gradient, already checked by :func:`check_grad`);
      * a list of such pairs: a tuple of that many arrays (field ``factors`` gives ``state.factors[1]``);
      * None: not this update's to check (a nested state, which its own update checks).
    Values: a real floating array must be finite (a NaN or Inf from a damaged checkpoint or a bug upstream would
    otherwise flow into the direction and the new state without a word); an integer array (a step counter) must
    be >= 0; a bool array has no value to check; an empty array (a ``template``) is not read.

    Cost: one reduction per array, ``all(isfinite(a))`` (``all(a >= 0)`` for a counter), and ONE host
    synchronisation for all of them; none for a real floating array already verified (in this update, or sealed
    read-only by the update that made it: "checking each array once per update" above). ``all(isfinite(a))`` is
    the cheapest EXACT test: one elementwise pass with no arithmetic on the values and a bool temporary. A finite
    sum, ``isfinite(sum(a))``, is one pass too but not exact: the sum of finite entries can overflow to Inf (a
    false alarm; accumulating float32 in float64 only moves the threshold), and a NaN test on a sum says nothing
    about which field to name. Only on failure is the field located and its bad entries counted
    (``validate.finite``).

    Raises:
      ValueError: a field missing, of the wrong shape or length, not finite, or a negative counter; TypeError: a
      field of another dtype or array library. Each message names the field as the user sees it
      (``state.factors[1]``, ``state.v``).
    """
    arrays = []
    for field in state._fields:
        spec = expected[field]
        if spec is None:
            continue
        label = f"{name}.{field}"
        value = getattr(state, field)
        if isinstance(spec, list):
            arrays.extend(_state_tuple(value, spec, label, like))
        else:
            arrays.append((label, _state_array(value, spec, label, like)))
    frame = validate._frame()
    flags = []
    for label, a in arrays:
        # only real floating arrays are ever known finite: verified in this update, or sealed by the update
        # that made them
        if validate._known_finite(a, frame) or math.prod(a.shape) == 0:
            continue
        if backend.is_real_floating(a, xp):
            flags.append((label, a, True, backend.all_finite(a, xp)))
        elif a.dtype != xp.bool:
            ok = a >= 0
            flags.append((label, a, False, xp.all(ok) if a.ndim else ok))  # a 0-d counter needs no reduction
    if not flags:
        return
    if bool(functools.reduce(operator.and_, [ok for *_, ok in flags])):  # the one host sync
        if frame is not None:
            frame.update((id(a), a) for _, a, real, _ in flags if real)
        return
    for label, a, real, ok in flags:
        if not bool(ok):
            if real:
                validate.finite(a, label, xp=xp)
            raise ValueError(f"{label}: expected a step counter >= 0, got {int(xp.min(a))}")


def _state_tuple(value, specs: list, label: str, like) -> list:
    if not isinstance(value, tuple) or hasattr(value, "_fields"):
        raise ValueError(f"{label}: expected a tuple of {len(specs)} arrays, got {type(value).__name__}")
    if len(value) != len(specs):
        raise ValueError(f"{label}: expected {len(specs)} arrays (what init makes for this gradient and config), "
                         f"got {len(value)}")
    return [(f"{label}[{i}]", _state_array(v, s, f"{label}[{i}]", like)) for i, (v, s) in enumerate(zip(value, specs))]


def _state_array(a, spec, label: str, like):
    shape, dtype = tuple(spec[0]), spec[1]
    if not isinstance(a, type(like)):
        raise TypeError(f"{label}: expected an array of the gradient's library ({type(like).__module__}), got "
                        f"{type(a).__module__}.{type(a).__name__}")
    if tuple(a.shape) != shape:
        raise ValueError(f"{label}: shape {tuple(a.shape)} does not match the {shape} that init makes for this "
                         f"gradient and config (was the state made with another config, or for another parameter?)")
    if a.dtype != dtype:
        raise TypeError(f"{label}: dtype {backend.dtype_name(a.dtype)} does not match the "
                        f"{backend.dtype_name(dtype)} that init makes for this gradient and config")
    return a
