"""Composable step transforms: the authors' step driver (grafting, weight decay, momentum quirks, warm-up,
shape merging and blocking) as small pieces around any preconditioner.

The KrADagrad paper describes preconditioners only. The authors' code (``shared/notes/kradagrad-code.md``,
"the notes") runs every Kronecker preconditioner inside the step driver of the upstream PyTorch Shampoo
(``Shampoo.step``, notes Sec. 2), which also merges small dimensions, cuts large ones into blocks (Sec. 1),
rescales the preconditioned direction to the norm of the gradient ("grafting"), adds weight decay and applies a
momentum rule with an aliasing quirk. None of that is in the paper. This package provides each of those steps as
a separate, tested piece, optax-style, so that a full step of the authors' code is a composition::

    step = start_preconditioning(blockwise(kradagrad_star),
                                 post=chain(norm_graft, weight_decay, momentum))

(:func:`shampoo_driver` builds exactly that, with its Config.)

Where each piece lives (every name is re-exported here, so ``krad_ref.transforms.NAME`` is the one import path):
  * ``protocol``: :class:`Transform`, :class:`CountState` and the checks the parts share; its docstring states
    the init/update protocol (optax-style, hyperparameters in a frozen Config, states with a step counter).
  * ``compose``: :func:`chain`, :class:`ChainConfig` (optax ``chain``).
  * ``grafting``: :func:`graft_norm`, :data:`norm_graft`, :func:`norm_graft_to`, ``GRAFT_EPS`` (notes Sec. 2
    steps 4 and 6, Sec. 8).
  * ``decay``: :data:`weight_decay` (notes Sec. 2 step 7; errata 16).
  * ``momentum_rules``: :data:`momentum`, :class:`MomentumConfig`, ``MOMENTUM_KINDS`` (notes Sec. 2 steps 8,
    11, 12: heavy ball, PyTorch Nesterov, the code's in-place "Nesterov").
  * ``schedule``: :func:`start_preconditioning`, :func:`every_f_steps`, ``WARMUPS`` (notes Sec. 2 steps 2-5 and
    10-11; errata 20).
  * ``blocking``: :func:`merge_small_dims`, :class:`BlockPartitioner`, :func:`blockwise` (notes Sec. 1 items 1-3).
  * ``driver``: :func:`shampoo_driver`, the composition above with the code's defaults (notes Sec. 2, Sec. 4.2).

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

from .blocking import BlockPartitioner, BlockwiseConfig, BlockwiseState, blockwise, merge_small_dims
from .compose import ChainConfig, chain
from .decay import WeightDecayConfig, weight_decay
from .driver import shampoo_driver
from .grafting import GRAFT_EPS, NormGraftConfig, NormGraftToConfig, graft_norm, norm_graft, norm_graft_to
from .grafting import NormGraftToState  # noqa: F401 - public state class (state_io), not in __all__ as before
from .momentum_rules import MOMENTUM_KINDS, MomentumConfig, MomentumState, momentum
from .protocol import Array  # noqa: F401 - the old module's annotation alias, still importable from here
from .protocol import CountState, Transform
from .schedule import (WARMUPS, StartPreconditioningConfig, StartPreconditioningState, every_f_steps,
                       start_preconditioning)

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
