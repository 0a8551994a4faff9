"""The authors' step driver assembled from the parts: :func:`shampoo_driver`.

References:
  shared/notes/kradagrad-code.md Sec. 2 (``Shampoo.step`` of the upstream PyTorch Shampoo) with the identity
  ``Graft`` (Sec. 4.2), Sec. 1 (merging, blocking); errata 20 (warm-up aliasing: the package docstring,
  "Aliasing").
"""
from __future__ import annotations

from .blocking import BlockwiseConfig, blockwise
from .compose import ChainConfig, chain
from .decay import WeightDecayConfig, _weight_decay
from .grafting import GRAFT_EPS, NormGraftConfig, norm_graft
from .momentum_rules import MomentumConfig, momentum
from .schedule import StartPreconditioningConfig, start_preconditioning


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
