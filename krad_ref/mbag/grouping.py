"""Grouping parameters (Sec. IV-C): a parameter cut into MBAG's groups pi_i of tau entries, and back.

References:
  J. Lee, MBAG (shared/papers/mbag.md) Sec. IV-C ("Fully-connected layers", "Convolutional layers") and Fig. 1;
  errata 15 (row-major flattening = vec(W^T)), errata 28 (a bias is its own parameter group).

Grouping (Sec. IV-C; errata 15). A parameter is flattened ROW-major (the array API's ``reshape``, NumPy's
``flatten()``): for a fully-connected W (m x n, m outputs, n inputs) that is the paper's vec(W^T) (vec itself is
column-major), and consecutive runs of tau entries form the groups. ``tau=None`` is the paper's structural choice:
  * 2-D (m x n): tau = n, one group per output neuron (a row of W);
  * order >= 3, e.g. a convolution kernel C_out x C_in x k x k: tau = k*k (the product of the trailing dims), one
    group per input-output filter pair, C_out*C_in groups (the paper reshapes to (C_out C_in) x k^2 and fixes tau);
  * 1-D (a bias) and 0-D: one group holding the whole parameter. The paper does not say how a bias is grouped;
    since every parameter gets its own state here, "a bias is its own parameter group" (errata 28).
An integer tau groups every shape the same way (tau = mn: the layer-wise block-diagonal approximation; tau = 1:
diagonal AdaGrad with momentum). When tau does not divide the size N of the parameter, ``remainder="error"``
(default) raises a ValueError; ``remainder="pad"`` zero-pads the last group to tau entries. The padded coordinates
always get a zero gradient, so their block of the statistic stays lambda I (alpha^t lambda I for MBAG-EMA) and
never couples to the real ones: with exact roots this IS a separate remainder block of size N mod tau. With a fixed
T_NS its Frobenius normalisation includes the padded identity block, so the last group's approximate root differs
from that of a separate small block (both approximate the same exact root).
"""
from __future__ import annotations

import math

from .. import algorithm, backend, validate


REMAINDERS = ("error", "pad")


def _check_tau(tau) -> int | None:
    if tau is None:
        return None
    return validate.positive_int(tau, "tau")


def group_size(shape, tau=None) -> int:
    """The group size tau for a parameter of ``shape``: ``tau`` itself, or the paper's structural choice.

    References:
      MBAG Sec. IV-C ("Fully-connected layers", "Convolutional layers"); errata 28 (bias).

    Args:
      shape: the parameter shape (tuple of positive ints, () for a scalar).
      tau: a positive int, or None for the structural choice: 2-D (m, n) -> n (one group per output neuron);
        order >= 3 (C_out, C_in, k1, k2, ...) -> k1 k2 ... (one group per input-output filter pair); 1-D (d,) -> d
        and 0-D -> 1 (the whole parameter one group).

    Returns:
      tau as an int (not checked against the size: see :func:`layout`).
    """
    shape = algorithm.shape_of(shape)
    tau = _check_tau(tau)
    if tau is not None:
        return tau
    if len(shape) == 0:
        return 1
    if len(shape) == 1:
        return shape[0]
    if len(shape) == 2:
        return shape[1]
    return math.prod(shape[2:])


def layout(shape, tau=None, remainder: str = "error") -> tuple[int, int, int]:
    """How a parameter of ``shape`` is split: ``(num_groups, tau, pad)``.

    The row-major flat parameter (N = prod(shape) entries) is cut into runs of tau; ``pad`` zeros complete the last
    group (only with ``remainder="pad"``; 0 when tau divides N).

    Raises:
      ValueError: tau does not divide N and ``remainder="error"`` (the message names the divisors to use).
    """
    validate.one_of(remainder, "remainder", REMAINDERS)
    shape = algorithm.shape_of(shape)
    tau = group_size(shape, tau)
    N = math.prod(shape)
    pad = (-N) % tau
    if pad and remainder == "error":
        divisors = [d for d in range(1, min(N, 64) + 1) if N % d == 0]
        raise ValueError(
            f"tau: {tau} does not divide the parameter size N = {N} (shape {shape}); use a divisor "
            f"(e.g. {', '.join(map(str, divisors[-6:]))}), tau=None for the paper's structural groups, or "
            f"remainder='pad' for a zero-padded remainder block"
        )
    return (N + pad) // tau, tau, pad


def group(W, tau=None, *, remainder: str = "error"):
    """Split a parameter (or gradient) into MBAG's groups: the (num_groups, tau) array of its row-major flat form.

    References:
      MBAG Sec. IV-C and Fig. 1: vec(W^T) split into groups of size tau; errata 15 (row-major flat = vec(W^T)).

    Args:
      W: real floating array of any shape (a scalar, a bias, an m x n weight, a C_out x C_in x k x k kernel).
      tau: group size (see :func:`group_size`; None: the paper's structural choice).
      remainder: ``"error"`` (tau must divide W.size) or ``"pad"`` (zero-pad the last group).

    Returns:
      (num_groups, tau) array, W's namespace and dtype; row i holds flat(W)[i tau : (i + 1) tau]. It may share
      memory with W (a reshape); never write into it. :func:`ungroup` inverts it exactly.
    """
    xp = validate.float_array(W, "W")
    g, tau, pad = layout(tuple(W.shape), tau, remainder)
    flat = xp.reshape(W, (-1,))
    if pad:
        flat = xp.concat([flat, xp.zeros((pad,), dtype=W.dtype, device=backend.device(W))])
    return xp.reshape(flat, (g, tau))


def ungroup(blocks, shape):
    """Inverse of :func:`group`: the (num_groups, tau) blocks back to an array of ``shape`` (padding dropped).

    Args:
      blocks: (num_groups, tau) real floating array with num_groups * tau - tau < N <= num_groups * tau,
        N = prod(shape).
      shape: the parameter shape.

    Returns:
      Array of ``shape`` (may share memory with ``blocks``). ungroup(group(W, tau), W.shape) == W exactly, and
      group(ungroup(B, shape), tau) == B whenever B's padded entries are zero.
    """
    xp = validate.float_array(blocks, "blocks", ndim=2)
    shape = algorithm.shape_of(shape)
    g, tau = blocks.shape
    N = math.prod(shape)
    if not (g * tau >= N > g * tau - tau):
        raise ValueError(f"blocks: shape {(g, tau)} cannot hold a parameter of shape {shape} (N = {N}) with less "
                         f"than one group of padding")
    flat = xp.reshape(blocks, (-1,))
    if g * tau != N:
        flat = flat[:N]
    return xp.reshape(flat, shape)
