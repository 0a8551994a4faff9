"""Pieces shared by the three optimizers (Alg. 1, Alg. 2, MBAG-N): config checks, state creation and validation,
the per-group products R_i g_i, the momentum v_t = beta v_{t-1} + R_t g_t and the returned direction.

References:
  J. Lee, MBAG (shared/papers/mbag.md) Alg. 1 and Alg. 2 (momentum; theta_t = theta_{t-1} - eta v_t, taken by the
  caller), Sec. IV-C (the statistics as (g, tau, tau) stacks, one block per group).
"""
from __future__ import annotations

from .. import algorithm, validate
from .grouping import REMAINDERS, _check_tau, layout, ungroup
from .roots import ROOT_METHODS


def _check_common(cfg) -> None:
    validate.real_scalar(cfg.lam, "lam", low=0.0, low_open=True)
    validate.real_scalar(cfg.beta, "beta", low=0.0, high=1.0, high_open=True)
    _check_tau(cfg.tau)
    validate.one_of(cfg.remainder, "remainder", REMAINDERS)


def _check_root_fields(cfg) -> None:
    validate.positive_int(cfg.T_sqr, "T_sqr")
    validate.positive_int(cfg.T_NS, "T_NS")
    validate.one_of(cfg.root_method, "root_method", ROOT_METHODS)


def _init_arrays(shape_or_array, config, dtype, xp, diag: float):
    """(creation, layout, stack of diag * I, zero momentum, template)."""
    c = algorithm.creation(shape_or_array, dtype, xp)
    g, tau, _ = layout(c.shape, config.tau, config.remainder)
    xp, dev, dt = c.xp, c.device, c.dtype
    stack = xp.zeros((g, tau, tau), dtype=dt, device=dev) + diag * xp.eye(tau, dtype=dt, device=dev)
    v = xp.zeros((g, tau), dtype=dt, device=dev)
    template = xp.zeros((0, *c.shape), dtype=dt, device=dev)
    count = xp.asarray(0, dtype=xp.int32, device=dev)
    return c, (g, tau), stack, v, template, count


def _check_state(grad, state, config, State, Config, mats: tuple[str, ...]):
    """Validate an update's inputs (the state through ``algorithm.check_state``); return (xp, shape, (g, tau))."""
    algorithm.check_types(state, config, State, Config)
    like = state.template
    shape = tuple(like.shape[1:])
    xp = algorithm.check_grad(grad, like, shape=shape, dtype=like.dtype, like_name="state.template")
    g, tau, _ = layout(shape, config.tau, config.remainder)
    dt = grad.dtype
    expected = {"count": ((), xp.int32), "v": ((g, tau), dt), "residual": ((g,), dt), "template": ((0, *shape), dt)}
    expected.update({name: ((g, tau, tau), dt) for name in mats})
    algorithm.check_state(state, expected, grad, xp)
    return xp, shape, (g, tau)


def _apply(R, gb):
    """R_i g_i for every group: (g, tau, tau) @ (g, tau) -> (g, tau)."""
    return (R @ gb[..., None])[..., 0]


def _momentum(v, pg, beta: float):
    return pg if beta == 0.0 else beta * v + pg


def _direction(v, shape, xp):
    # a copy: v goes into the new state, and an in-place step on the direction must not alias it
    return xp.asarray(ungroup(v, shape), copy=True)


def _next(count, xp):
    return xp.asarray(count + 1, dtype=xp.int32)
