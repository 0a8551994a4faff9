"""The optimizer protocol shared by every algorithm module, and the registry of algorithm ids.

An optimizer is a pair of pure functions over a frozen ``Config`` (optax's shape, with the hyperparameters
passed in rather than captured in closures, so a saved state can say what produced it):

    state = init(shape_or_array, config, *, dtype=None, xp=None)
    direction, state = update(grad, state, config, *, params=None)
    W = W - lr * direction                     # the caller applies the step

``update`` never mutates its inputs; ``params`` is needed only for weight decay (errata 16: an update with
weight_decay != 0 and params=None raises). States are NamedTuples of arrays (and small Python tuples of them);
a ``count`` field holds the number of updates taken, as a 0-d int32 array.

Algorithm ids (errata 18): "kradagrad_star", "kradagrad", "shampoo", "adagrad_full", "adagrad_diag", "adam",
"sgd", "mbag", "mbag_ema", "mbag_n".
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, NamedTuple

from . import backend, validate

__all__ = ["Algorithm", "Creation", "register", "get", "names", "registered", "shape_of", "creation", "check_grad",
           "check_types", "OMIT_WHEN_DEFAULT"]

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


def check_grad(grad, like, *, shape=None, dtype=None):
    """Validate an ``update``'s gradient against the state; return the gradient's namespace.

    ``grad`` must be a finite real floating array of ``like``'s library, with ``shape`` and ``dtype``
    (defaults: ``like``'s). Nothing is converted or copied: a float32 gradient for a float64 state is an error,
    not a silent promotion.
    """
    xp = validate.float_array(grad, "grad")
    try:
        backend.namespace(grad, like)
    except TypeError:
        raise TypeError(f"grad: array library {type(grad).__module__} does not match the state's "
                        f"{type(like).__module__}") from None
    shape = tuple(like.shape) if shape is None else tuple(shape)
    dtype = like.dtype if dtype is None else dtype
    if tuple(grad.shape) != shape:
        raise ValueError(f"grad: shape {tuple(grad.shape)} does not match the state's parameter shape {shape}")
    if grad.dtype != dtype:
        raise TypeError(f"grad: dtype {backend.dtype_name(grad.dtype)} does not match the state's "
                        f"{backend.dtype_name(dtype)}; cast the gradient or re-init the state")
    validate.finite(grad, "grad", xp=xp)
    return xp
