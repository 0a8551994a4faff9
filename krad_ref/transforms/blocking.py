"""Shape handling of the authors' driver: merge small dimensions, cut large ones into blocks, precondition per block.

References:
  shared/notes/kradagrad-code.md Sec. 1 items 1-3 (``_merge_small_dims``, ``BlockPartitioner``,
  ``Preconditioner.preconditioned_grad``: reshape to the merged shape, partition, precondition each block, merge,
  reshape back). Not in the KrADagrad paper.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .. import algorithm as _algorithm
from .. import backend, validate
from .protocol import (Array, Transform, _call, _check_config, _check_fitted, _check_like, _check_part, _next_count,
                       _template, _zero_count)


def merge_small_dims(shape, max_dim: int) -> tuple[int, ...]:
    """Merge adjacent dimensions while their product stays <= ``max_dim``; drop size-1 dimensions.

    References:
      notes Sec. 1 item 1 (the code's ``_merge_small_dims(shape, max_dim=block_size)``, called when
      ``best_effort_shape_interpretation`` is True, the default).

    Algorithm (exactly the code's): scan left to right with a running product ``prod = 1``; for each d, if
    ``prod * d <= max_dim`` then ``prod *= d``, else append ``prod`` if ``prod > 1`` and set ``prod = d``; at
    the end append ``prod`` if ``prod > 1``. Examples (max_dim = 128): (128, 64, 3, 3) -> (128, 64, 9);
    (1, 10) -> (10,); (1,) -> () (an order-0 parameter: no statistics).

    Args:
      shape: sequence of positive ints (a parameter's shape; () allowed).
      max_dim: positive int (the code passes ``block_size``).

    Returns:
      The merged shape as a tuple; its product equals the product of ``shape``, so a row-major reshape maps
      one onto the other.
    """
    shape = _algorithm.shape_of(tuple(shape)) if not isinstance(shape, tuple) else _algorithm.shape_of(shape)
    max_dim = validate.positive_int(max_dim, "max_dim")
    out = []
    prod = 1
    for d in shape:
        if prod * d <= max_dim:
            prod *= d
        else:
            if prod > 1:
                out.append(prod)
            prod = d
    if prod > 1:
        out.append(prod)
    return tuple(out)


@dataclass(frozen=True)
class BlockPartitioner:
    """Cut a tensor into blocks: every dimension d > ``block_size`` into chunks of ``block_size``, the last
    chunk the remainder; blocks are the Cartesian product of the chunks, first dimension outermost.

    References:
      notes Sec. 1 item 3 (the code's ``BlockPartitioner``: ``nsplit = (d - 1) // block_size`` cut points at
      block_size, 2 block_size, ...; ``partition`` splits dimension by dimension, ``merge_partitions``
      concatenates back in the reverse order of the splits). The code stores per-block, per-mode statistics at
      flat index j * p + i (block j, mode i); :func:`blockwise` keeps one inner state per block, in block order.

    Args:
      shape: the (merged) tensor shape, positive ints; () gives one block of shape ().
      block_size: positive int.

    Attributes:
      sizes: per dimension, the tuple of chunk sizes.
      block_shapes: the shape of each block, in block order.
      num_blocks: len(block_shapes).

    ``merge(partition(X)) == X`` exactly (slicing and concatenation copy values).
    """

    shape: tuple
    block_size: int
    sizes: tuple = field(init=False, repr=False)
    block_shapes: tuple = field(init=False, repr=False)

    def __post_init__(self):
        shape = _algorithm.shape_of(tuple(self.shape))
        bs = validate.positive_int(self.block_size, "block_size")
        sizes = []
        for d in shape:
            if d > bs:
                nsplit = (d - 1) // bs
                sizes.append(tuple([bs] * nsplit + [d - nsplit * bs]))
            else:
                sizes.append((d,))
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "block_size", bs)
        object.__setattr__(self, "sizes", tuple(sizes))
        object.__setattr__(self, "block_shapes", tuple(itertools.product(*sizes)))

    @property
    def num_blocks(self) -> int:
        return len(self.block_shapes)

    def block_slices(self) -> tuple:
        """Per block (in block order), the tuple of slices selecting it."""
        per_dim = []
        for sz in self.sizes:
            starts = [0]
            for s in sz[:-1]:
                starts.append(starts[-1] + s)
            per_dim.append(tuple(slice(a, a + s) for a, s in zip(starts, sz)))
        return tuple(itertools.product(*per_dim))

    def partition(self, X) -> tuple:
        """The blocks of ``X`` (shape ``self.shape``), in block order (first dimension outermost)."""
        if tuple(X.shape) != self.shape:
            raise ValueError(f"X: shape {tuple(X.shape)} does not match the partitioner's {self.shape}")
        if self.num_blocks == 1:
            return (X,)
        return tuple(X[s] for s in self.block_slices())

    def merge(self, blocks):
        """Inverse of :meth:`partition`: concatenate the blocks back, last split dimension first (the code's
        ``merge_partitions``)."""
        blocks = list(blocks)
        if len(blocks) != self.num_blocks:
            raise ValueError(f"blocks: expected {self.num_blocks} blocks, got {len(blocks)}")
        for j, (b, s) in enumerate(zip(blocks, self.block_shapes)):
            if tuple(b.shape) != tuple(s):
                raise ValueError(f"blocks[{j}]: expected shape {tuple(s)}, got {tuple(b.shape)}")
        if self.num_blocks == 1:
            return blocks[0]
        xp = backend.namespace(*blocks)
        for i in reversed(range(len(self.shape))):
            n = len(self.sizes[i])
            if n == 1:
                continue
            blocks = [xp.concat(blocks[j:j + n], axis=i) for j in range(0, len(blocks), n)]
        assert len(blocks) == 1
        return blocks[0]


@dataclass(frozen=True)
class BlockwiseConfig:
    """Config of :func:`blockwise`.

    Args:
      inner: the inner optimizer's Config (shared by every block).
      block_size: the code's ``block_size`` (default 128): dimensions are merged up to it and cut above it.
      merge_dims: the code's ``best_effort_shape_interpretation`` (default True): apply
        :func:`merge_small_dims` first. False keeps the shape as is (size-1 dimensions included).
    """

    inner: Any
    block_size: int = 128
    merge_dims: bool = True

    def __post_init__(self):
        validate.positive_int(self.block_size, "block_size")
        if not isinstance(self.merge_dims, bool):
            raise TypeError(f"merge_dims: expected a bool, got {type(self.merge_dims).__name__}")


class BlockwiseState(NamedTuple):
    count: Array     # shape (), int32; updates taken so far
    blocks: tuple    # one inner state per block, in BlockPartitioner block order; () for an order-0 shape
    template: Array  # shape (0, *param_shape), param dtype, no data: the shape and dtype updates must have


def _blockwise_layout(shape, config):
    merged = merge_small_dims(shape, config.block_size) if config.merge_dims else tuple(shape)
    return merged, (BlockPartitioner(merged, config.block_size) if merged else None)


def blockwise(optimizer) -> Transform:
    """Run ``optimizer`` independently on each block of the merged, partitioned parameter.

    References:
      notes Sec. 1 items 1-3 and ``Preconditioner.preconditioned_grad`` (reshape the gradient to the merged
      shape, partition, precondition each block, merge, reshape back).

    Args:
      optimizer: an :class:`~krad_ref.algorithm.Algorithm` (or Transform) run per block, with the block's
        shape at ``init`` and the block of the gradient (and of ``params``) at ``update``.

    Returns:
      A :class:`Transform` with Config :class:`BlockwiseConfig` and State :class:`BlockwiseState`. The reshape
      is row-major (torch's and the array API's). A parameter whose merged shape is () (e.g. shape (1,) or
      a scalar) has no blocks and its gradient passes unchanged (the code keeps no statistics for it: notes
      Sec. 1 item 2). Grafting is NOT applied here: the code grafts over the whole parameter (put
      :data:`norm_graft` after this transform).
    """
    _check_part(optimizer, "optimizer")
    name = f"blockwise({optimizer.name})"

    def check(config):
        _check_config(config, BlockwiseConfig, name)
        if not isinstance(config.inner, optimizer.Config):
            raise TypeError(f"config.inner: expected {optimizer.Config.__name__} for {optimizer.name}, "
                            f"got {type(config.inner).__name__}")

    def init(shape_or_array, config, *, dtype=None, xp=None):
        check(config)
        c = _algorithm.creation(shape_or_array, dtype, xp)
        shape, dtype, xp = c.shape, c.dtype, c.xp
        _, part = _blockwise_layout(shape, config)
        blocks = () if part is None else tuple(
            optimizer.init(bshape, config.inner, dtype=dtype, xp=xp) for bshape in part.block_shapes)
        return BlockwiseState(_zero_count(c), blocks, _template(c))

    def update(updates, state, config, *, params=None, grad=None):
        check(config)
        xp = _check_fitted(updates, state, BlockwiseState, name)
        shape = tuple(updates.shape)
        merged, part = _blockwise_layout(shape, config)
        n_blocks = 0 if part is None else part.num_blocks
        if not isinstance(state.blocks, tuple) or len(state.blocks) != n_blocks:
            raise ValueError(f"state: {name} expects {n_blocks} block states for shape {shape} "
                             f"(merged {merged}), got {len(state.blocks)}")
        if params is not None:
            _check_like(params, updates, "params", "updates")
        count = _next_count(state.count, xp)
        if part is None:
            return updates, BlockwiseState(count, (), state.template)
        gb = part.partition(xp.reshape(updates, merged))
        gr = None if grad is None else part.partition(xp.reshape(grad, merged))
        pb = None if params is None else part.partition(xp.reshape(params, merged))
        outs, states = [], []
        for j, (g, s) in enumerate(zip(gb, state.blocks)):
            w = None if pb is None else pb[j]
            r = None if gr is None else gr[j]
            d, s = _call(optimizer, g, s, config.inner, params=w, grad=r, where=f"state.blocks[{j}]")
            outs.append(d)
            states.append(s)
        out = xp.reshape(part.merge(outs), shape)
        return out, BlockwiseState(count, tuple(states), state.template)

    return Transform(name, BlockwiseConfig, BlockwiseState, init, update, None)
