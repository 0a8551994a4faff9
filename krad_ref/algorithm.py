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
"sgd" (and, later, "mbag", "mbag_ema", "mbag_n").
"""
from __future__ import annotations

import importlib
from typing import Any, Callable, NamedTuple

__all__ = ["Algorithm", "register", "get", "names", "shape_of"]


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
