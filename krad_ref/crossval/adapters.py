"""Adapters: candidates written for other array libraries, seen by the harness as NumPy candidates.

* :class:`KradRefCandidate`: krad_ref's own algorithm run under any array namespace (e.g. ``array_api_strict``),
  converted at the boundary: the harness's own sanity check and a template for adapters.
* :class:`TorchCandidate` (optional dependency, CPU): wraps an object whose ``init(shape, config, dtype=...)``
  and ``update(grad, state, config)`` work on ``torch.Tensor``; :func:`torch_step` wraps a step callable.

Dtype rule: an adapter never changes the candidate's dtype. Inputs are converted to the dtype the harness
promises (float64 -> ``torch.float64``); outputs are converted to NumPy *in the dtype the candidate returned*
(``torch.float32`` -> ``numpy.float32``), so the harness's dtype check sees a float32 result where float64 was
promised. A candidate that returns float64 but computed in float32 inside is caught by accuracy instead: its
errors are ~u(float32) and the float64 tolerances are ~u(float64) (see ``tolerance``).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

__all__ = ["KradRefCandidate", "TorchCandidate", "torch_step", "torch_to_numpy", "numpy_to_torch"]


class KradRefCandidate:
    """krad_ref's ``algorithm`` as a NumPy candidate computing under namespace ``xp`` (default NumPy).

    ``init``/``update`` follow the harness protocol (config as a dict of Config fields); the state is krad_ref's,
    holding ``xp`` arrays; ``quantities`` returns them as NumPy arrays in their own dtype.
    """

    def __init__(self, algorithm: str, xp: Any = None, name: str | None = None):
        from krad_ref import algorithm as registry
        from krad_ref import backend

        self.alg = registry.get(algorithm)
        self.algorithm = algorithm
        self.xp = backend.get_namespace("numpy") if xp is None else xp
        self.name = name or f"krad_ref.{algorithm}[{getattr(self.xp, '__name__', 'xp')}]"

    def _cfg(self, config: Mapping):
        from . import format as gformat

        return gformat.make_config(self.algorithm, dict(config))

    def init(self, shape, config, dtype="float64"):
        return self.alg.init(tuple(shape), self._cfg(config), dtype=getattr(self.xp, dtype), xp=self.xp)

    def update(self, grad, state, config):
        direction, state = self.alg.update(self.xp.asarray(grad), state, self._cfg(config))
        return self._np(direction), state

    def quantities(self, state) -> dict:
        from . import format as gformat

        factors, roots = gformat.state_quantities(self.algorithm, state)  # dtypes kept: the harness checks them
        return {"factors": tuple(self._np(a) for a in factors),
                "roots": None if roots is None else tuple(self._np(a) for a in roots)}

    @staticmethod
    def _np(x):
        from krad_ref import backend

        return backend.to_numpy(x)


def _torch():
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - exercised when torch is absent
        raise ImportError("the PyTorch adapter needs torch (pip install torch; CPU is enough)") from exc
    return torch


def numpy_to_torch(a: np.ndarray):
    """A NumPy array as a CPU tensor of the same dtype (a copy; float64 stays float64)."""
    torch = _torch()
    return torch.from_numpy(np.array(a, copy=True))


def torch_to_numpy(t: Any) -> Any:
    """A tensor as a NumPy array in the tensor's own dtype (never cast); non-tensors are returned as they are."""
    torch = _torch()
    if isinstance(t, torch.Tensor):
        return t.detach().to("cpu").numpy().copy()
    return t


def _torch_dtype(name: str):
    torch = _torch()
    try:
        return {"float64": torch.float64, "float32": torch.float32}[name]
    except KeyError:
        raise ValueError(f"dtype: expected float64 or float32, got {name!r}") from None


def _quantities_np(q: Mapping | None) -> dict | None:
    if q is None:
        return None
    return {k: None if q.get(k) is None else tuple(torch_to_numpy(t) for t in q[k]) for k in ("factors", "roots")}


class TorchCandidate:
    """A PyTorch candidate (CPU tensors) seen as a NumPy candidate by the harness.

    The wrapped object provides ``init(shape, config, dtype=torch.dtype)`` and ``update(grad, state, config)``
    over tensors (config: the harness's plain dict), and optionally ``quantities(state)`` returning
    ``{"factors": [tensors], "roots": [tensors]}`` (else the state's ``factors``/``roots`` attributes or keys).
    """

    def __init__(self, impl: Any, name: str | None = None):
        _torch()
        self.impl = impl
        self.name = name or f"torch:{type(impl).__qualname__}"

    def init(self, shape, config, dtype="float64"):
        return self.impl.init(tuple(shape), dict(config), dtype=_torch_dtype(dtype))

    def update(self, grad, state, config):
        direction, state = self.impl.update(numpy_to_torch(grad), state, dict(config))
        return torch_to_numpy(direction), state

    def quantities(self, state) -> dict:
        if callable(getattr(self.impl, "quantities", None)):
            return _quantities_np(self.impl.quantities(state))
        if isinstance(state, Mapping):
            return _quantities_np(state)
        return _quantities_np({"factors": getattr(state, "factors", None), "roots": getattr(state, "roots", None)})


def torch_step(fn: Callable, name: str | None = None) -> Callable:
    """Wrap a step callable over tensors, ``fn(grads: list[Tensor], config: dict, dtype: torch.dtype)``, returning
    a direction tensor or a mapping of tensors, as a NumPy step callable (dtypes preserved both ways)."""
    _torch()

    def step(grads, config, dtype="float64"):
        out = fn([numpy_to_torch(g) for g in grads], dict(config), dtype=_torch_dtype(dtype))
        if isinstance(out, Mapping):
            res = {"direction": torch_to_numpy(out["direction"])}
            res.update(_quantities_np(out) or {})
            return res
        return torch_to_numpy(out)

    step.name = name or f"torch:{getattr(fn, '__qualname__', 'step')}"
    return step
