"""Composition: :func:`chain` runs transforms (and optimizers) left to right, with one Config per part.

References:
  optax ``chain`` (combine.py): a chain's state is the tuple of its parts' states; shared/notes/kradagrad-code.md
  Sec. 2 (the code's driver is such a chain: graft, weight decay, momentum).
"""
from __future__ import annotations

from dataclasses import dataclass

from .protocol import Transform, _call, _check_config, _check_part, _nested


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
