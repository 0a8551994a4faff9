"""The reparameterized objective f~(y) = f(V y), grad f~(y) = V^T grad f(V y), and the maps y = V^T x, x = V y.

References:
  egop.md Sec. 2 and Algorithm 1 (its output f~); notes §3 [seed + code]: the direction is f(V y), not f(V^T y).

V is a dense (d x d) orthogonal array or a block-diagonal :class:`~krad_ref.egop.block.BlockBasis` (Eq. 5). The
checks of a basis (finite; orthonormal columns within 20 n u) live here; :mod:`krad_ref.egop.partial` uses them too.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

from .. import backend, validate
from .block import BlockBasis, _check_blocks

Array = Any


class Reparameterized(NamedTuple):
    """The reparameterized objective f~(y) = f(V y) and its gradient V^T grad f(V y)."""

    f: Callable[[Array], Array]      # y (d,) -> f(V y)
    grad: Callable[[Array], Array]   # y (d,) -> V^T grad f(V y), shape (d,)
    V: Any                           # the basis: (d, d) array or BlockBasis


def reparameterize(f, grad_f, V) -> Reparameterized:
    """f~(y) = f(V y), grad f~(y) = V^T grad f(V y) (Algorithm 1 output; notes §3 [seed + code]).

    Gradient descent is equivariant: GD on f~ from y0 = V^T x0 maps back (x_t = V y_t) to GD on f from x0,
    up to rounding; diagonal Adagrad/Adam are not.

    Args:
      f: x (d,) -> 0-d array (or None: then ``.f`` raises when called).
      grad_f: x (d,) -> (d,) gradient.
      V: (d, d) orthogonal array, or a :class:`BlockBasis` (block-diagonal V of Eq. 5).
    Returns:
      :class:`Reparameterized` (f, grad, V).
    """
    if not callable(grad_f):
        raise TypeError(f"grad_f: expected a callable, got {type(grad_f).__name__}")
    if f is not None and not callable(f):
        raise TypeError(f"f: expected a callable or None, got {type(f).__name__}")
    _check_basis(V, "V")

    def f_tilde(y):
        if f is None:
            raise TypeError("reparameterize: no objective f was given, only its gradient")
        return f(_apply(V, y, "y", transpose=False))

    def grad_tilde(y):  # V was checked above, once: every gradient evaluation skips the check
        return _apply(V, grad_f(_apply(V, y, "y", transpose=False)), "x", transpose=True)

    return Reparameterized(f=f_tilde, grad=grad_tilde, V=V)


def to_reparam(x, V):
    """y = V^T x: the reparameterized coordinates of x (start y0 = V^T x0, so f~(y0) = f(x0)).

    Args:
      x: (d,) array, or (d, k) columns. V: (d, d) orthogonal array or :class:`BlockBasis`; the basis a training
        loop keeps between steps, so a NaN or Inf in it (a damaged checkpoint) raises a ValueError naming ``V``
        (or ``V.bases[j]``), at one reduction per array.
    Returns: array of x's shape.
    """
    _check_basis_finite(V, "V")
    return _apply(V, x, "x", transpose=True)


def from_reparam(y, V):
    """x = V y: map reparameterized coordinates back (f(x) = f~(y)).

    Args:
      y: (d,) array, or (d, k) columns. V: (d, d) orthogonal array or :class:`BlockBasis` (finite, as
        :func:`to_reparam`).
    Returns: array of y's shape.
    """
    _check_basis_finite(V, "V")
    return _apply(V, y, "y", transpose=False)


def _orth_tol(n: int, dtype) -> float:
    # a computed orthogonal factor (Householder QR / SVD) has ||V^T V - I|| <~ c n u (Higham Sec. 19.3)
    return 20.0 * max(n, 1) * backend.unit_roundoff(dtype)


def _check_orthonormal_columns(Q, name: str, xp) -> None:
    k = Q.shape[1]
    if k == 0:
        return
    err = xp.max(xp.abs(xp.matrix_transpose(Q) @ Q - xp.eye(k, dtype=Q.dtype, device=backend.device(Q))))
    tol = _orth_tol(Q.shape[0], Q.dtype)
    if float(err) > tol:
        raise ValueError(f"{name}: expected orthonormal columns, but max|{name}^T {name} - I| = {float(err):.3g} "
                         f"> tol = {tol:.3g}")


def _check_basis(V, name: str) -> None:
    if isinstance(V, BlockBasis):
        blocks = _check_blocks(V.blocks, V.d)
        if len(V.bases) != len(blocks):
            raise ValueError(f"{name}: {len(blocks)} blocks but {len(V.bases)} bases")
        for j, (sl, Vj) in enumerate(zip(blocks, V.bases)):
            xp = validate.square(Vj, f"{name}.bases[{j}]")
            if Vj.shape[0] != sl.stop - sl.start:
                raise ValueError(f"{name}.bases[{j}]: expected shape ({sl.stop - sl.start},) * 2 for block "
                                 f"{sl.start}:{sl.stop}, got {tuple(Vj.shape)}")
            validate.finite(Vj, f"{name}.bases[{j}]", xp=xp)
            _check_orthonormal_columns(Vj, f"{name}.bases[{j}]", xp)
        return
    xp = validate.square(V, name)
    validate.finite(V, name, xp=xp)
    _check_orthonormal_columns(V, name, xp)


def _check_basis_finite(V, name: str) -> None:
    """Every array of the basis is finite (one reduction each); its orthogonality was judged when it was made."""
    if isinstance(V, BlockBasis):
        for j, Vj in enumerate(V.bases):
            validate.finite(Vj, f"{name}.bases[{j}]")
    elif hasattr(V, "shape") and hasattr(V, "dtype"):  # anything else is refused by _apply, naming V
        validate.finite(V, name)


def _apply(V, y, name: str, *, transpose: bool):
    """V y (or V^T y) for a dense V or a BlockBasis; y is (d,) or (d, k)."""
    xp = validate.float_array(y, name)
    if y.ndim not in (1, 2):
        raise ValueError(f"{name}: expected a (d,) or (d, k) array, got shape {tuple(y.shape)}")
    if isinstance(V, BlockBasis):
        d = V.d
        if y.shape[0] != d:
            raise ValueError(f"{name}: expected leading dimension d = {d}, got shape {tuple(y.shape)}")
        pieces, pos = [], 0
        for sl, Vj in zip(_check_blocks(V.blocks, d), V.bases):
            if sl.start > pos:
                pieces.append(y[pos:sl.start, ...])
            Mj = xp.matrix_transpose(Vj) if transpose else Vj
            pieces.append(Mj @ y[sl, ...])
            pos = sl.stop
        if pos < d:
            pieces.append(y[pos:, ...])
        return xp.concat(pieces, axis=0)
    validate.square(V, "V", xp=xp)
    if y.shape[0] != V.shape[0]:
        raise ValueError(f"{name}: expected leading dimension d = {V.shape[0]}, got shape {tuple(y.shape)}")
    return (xp.matrix_transpose(V) if transpose else V) @ y
