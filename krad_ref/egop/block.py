"""Block EGOP, Eq. (5): one EGOP and one eigenbasis per block of coordinates (a layer), from one set of samples.

References:
  egop.md Sec. 5, Eq. (5) ("block reparameterization ... each layer forms a parameter block; further savings can be
  obtained by only reparameterizing a subset of blocks"); notes §9 [seed + code]. The block-diagonal basis
  :class:`BlockBasis` is accepted wherever a dense V is (:mod:`krad_ref.egop.reparam`); a layer's coordinates are
  its row-major flattening (errata 15; package docstring).
"""
from __future__ import annotations

from numbers import Integral
from typing import Any, NamedTuple, Sequence

from .. import validate
from .estimate import _gradient_bundle, egop_from_gradients
from .sampling import _draw

Array = Any


class BlockBasis(NamedTuple):
    """A block-diagonal orthogonal basis: V_j acts on x[blocks[j]]; coordinates in no block are left as they are.

    (Biases are not reparameterized in the paper's networks: notes §9 [code].)
    """

    d: int                          # total dimension
    blocks: tuple                   # tuple of Python ``slice(start, stop)`` (step 1), disjoint, sorted
    bases: tuple                    # tuple of (d_j, d_j) orthogonal arrays, d_j = stop - start


class BlockEgopResult(NamedTuple):
    """Per-block EGOPs of Eq. (5) from one set of samples."""

    basis: BlockBasis               # the block-diagonal eigenbasis (V_1, ..., V_B)
    results: tuple                  # one EgopResult per block (grads = rows of the full bundle in that block)
    samples: Array | None           # (M, d) the samples, when drawn here


def block_slices(sizes: Sequence[int], reparameterize: Sequence[bool] | None = None, *, start: int = 0):
    """Contiguous slices for consecutive blocks of the given sizes, keeping only those to be reparameterized.

    Example: a 64-32-10 network with torch parameter order (W1, b1, W2, b2) has sizes (2048, 32, 320, 10) and
    reparameterize (True, False, True, False) -> (slice(0, 2048), slice(2080, 2400)).

    Returns: (tuple of slices, d = start + sum(sizes)).
    """
    sizes = [validate.positive_int(s, f"sizes[{i}]") for i, s in enumerate(sizes)]
    start = validate.positive_int(start, "start", minimum=0)
    if reparameterize is None:
        reparameterize = [True] * len(sizes)
    if len(reparameterize) != len(sizes):
        raise ValueError(f"reparameterize: expected {len(sizes)} flags, got {len(reparameterize)}")
    out, pos = [], start
    for s, flag in zip(sizes, reparameterize):
        if flag:
            out.append(slice(pos, pos + s))
        pos += s
    return tuple(out), pos


def block_egop_from_gradients(G, blocks, *, method: str = "svd", samples=None) -> BlockEgopResult:
    """Block EGOPs EGOP_j = (1/M) G_j G_j^T with G_j = G[blocks[j], :], and their eigenbases (Eq. 5).

    References: egop.md Sec. 5, Eq. (5); notes §9 [seed + code]. The same M samples serve every block.

    Args:
      G: (d, M) gradient bundle. blocks: sequence of ``slice`` objects (step 1), disjoint, within [0, d).
      method: see :func:`egop_from_gradients`.
    Returns: :class:`BlockEgopResult`.
    """
    xp = validate.matrix(G, "G")
    d = G.shape[0]
    blocks = _check_blocks(blocks, d)
    results = tuple(egop_from_gradients(G[sl, :], method=method) for sl in blocks)
    basis = BlockBasis(d=d, blocks=blocks, bases=tuple(r.V for r in results))
    return BlockEgopResult(basis=basis, results=results, samples=samples)


def estimate_block_egop(grad_fn, sampler, M: int, blocks, *, seed, batched: bool = False,
                        method: str = "svd") -> BlockEgopResult:
    """Monte-Carlo block EGOP (Eq. 5): one draw of M samples, one gradient per sample, one basis per block.

    Args: as :func:`estimate_egop`, plus ``blocks`` (see :func:`block_egop_from_gradients`).
    Returns: :class:`BlockEgopResult` (use ``.basis`` with :func:`reparameterize`, :func:`to_reparam`, ...).
    """
    X = _draw(sampler, M, seed)
    xp = validate.matrix(X, "X")
    validate.finite(X, "X", xp=xp)
    G = _gradient_bundle(grad_fn, X, batched, xp)
    return block_egop_from_gradients(G, blocks, method=method, samples=X)


def _check_blocks(blocks, d: int) -> tuple:
    """Normalize blocks to sorted, disjoint slice(start, stop) within [0, d); ValueError otherwise."""
    if isinstance(blocks, slice):
        blocks = (blocks,)
    out = []
    for i, b in enumerate(blocks):
        if isinstance(b, slice):
            if b.step not in (None, 1):
                raise ValueError(f"blocks[{i}]: expected a contiguous slice (step 1), got step {b.step}")
            start, stop = b.start, b.stop
        elif isinstance(b, tuple) and len(b) == 2:
            start, stop = b
        else:
            raise TypeError(f"blocks[{i}]: expected a slice or a (start, stop) pair, got {type(b).__name__}")
        start = 0 if start is None else start
        stop = d if stop is None else stop
        if isinstance(start, bool) or isinstance(stop, bool) or not isinstance(start, Integral) \
                or not isinstance(stop, Integral):
            raise TypeError(f"blocks[{i}]: expected integer bounds, got {start!r}:{stop!r}")
        if not 0 <= start < stop <= d:
            raise ValueError(f"blocks[{i}]: expected 0 <= start < stop <= d = {d}, got {start}:{stop}")
        out.append(slice(int(start), int(stop)))
    if not out:
        raise ValueError("blocks: expected at least one block")
    out.sort(key=lambda s: s.start)
    for a, b in zip(out, out[1:]):
        if b.start < a.stop:
            raise ValueError(f"blocks: {a.start}:{a.stop} and {b.start}:{b.stop} overlap")
    return tuple(out)
