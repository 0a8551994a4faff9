"""When to precondition: the warm-up before ``start_preconditioning_step`` and the every-f-steps schedule.

References:
  shared/notes/kradagrad-code.md Sec. 2 steps 2-5 and 10-11 (``start_preconditioning_step``, the
  ``k % statistics_compute_steps`` and ``k % preconditioning_compute_steps`` tests), Sec. 5.2; KrADagrad Sec. 5.2
  ("every 20 steps"); errata 20 (the code's warm-up aliasing: the package docstring, "Aliasing").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import algorithm as _algorithm
from .. import validate
from .blocking import BlockwiseState
from .protocol import (Array, Transform, _call, _check_config, _check_fitted, _check_part, _nested, _next_count,
                       _step_index, _template, _zero_count)


#: warm-up rules of :func:`start_preconditioning`
WARMUPS = ("gradient", "code-alias")


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
