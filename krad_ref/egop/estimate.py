"""Algorithm 1: the Monte-Carlo EGOP (1/M) G G^T of a gradient bundle, its eigenbasis V, and the sample size M.

References:
  egop.md Sec. 2, Algorithm 1 (steps 3-4: the empirical EGOP and its eigendecomposition); notes §2-3.

Conventions chosen here:
  * **Eigenbasis by SVD of the bundle.** V is the full (d x d) left-singular-vector matrix of G / sqrt(M)
    (``xp.linalg.svd(..., full_matrices=True)``) and lambda_i = s_i^2, padded with zeros to length d. This is
    the better-conditioned route of notes §3 (the EGOP's eigenvalues are squared singular values, so small ones
    keep their relative accuracy ~ u * s_1 / s_i instead of u * s_1^2 / s_i^2) and it gives a full basis when M < d.
    ``method="eigh"`` is the paper's "full eigenvalue decomposition" of (1/M) G G^T, for comparison.
  * **Completion when M < d (or G is rank deficient).** The columns of V beyond rank(G) are an orthonormal basis
    of range(G)^perp = null(G^T): the EGOP's eigenspace for eigenvalue 0. The SVD's Householder completion (the
    LAPACK gesdd full-U columns) picks one such basis deterministically; any orthonormal basis of that complement
    is an equally valid EGOP eigenbasis, and the paper does not say which one it used (the later code takes
    torch.svd(G, some=False), i.e. the same LAPACK completion). Use :func:`~krad_ref.egop.partial.partial_basis`
    for a *random* completion instead.
  * **Sign convention.** Each column v_j of V is flipped so that its entry of largest magnitude is positive
    (the first such entry on exact ties), as scikit-learn's ``svd_flip``. Within a cluster of (nearly) equal
    eigenvalues the individual vectors are not determined, only their span: compare subspaces (principal
    angles, :func:`~krad_ref.egop.spectra.principal_angles`), not vectors.
  * **Sample size.** The paper uses M = d gradient samples (notes §3, inferred: "number of gradient samples
    drawn equals the number of model weight parameters"; code ``EGOP_oversampling_factor = 1.0``) and "a larger
    number" (an unknown multiple of d) for the spectrum figures: :func:`recommended_samples`.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

from .. import backend, validate
from .sampling import _draw

Array = Any


#: eigenbasis methods of egop_from_gradients.
METHODS = ("svd", "eigh")


class EgopResult(NamedTuple):
    """Monte-Carlo EGOP and its eigenbasis (immutable). d = dimension, M = number of samples."""

    egop: Array          # (d, d) symmetric PSD, (1/M) G G^T
    grads: Array         # (d, M) the gradient bundle G = [g_1, ..., g_M] (unscaled columns)
    eigenvalues: Array   # (d,) descending, >= 0; s_i(G)^2 / M, zero-padded beyond min(d, M)
    V: Array             # (d, d) orthogonal; column j is the eigenvector of eigenvalues[j] (sign: see fix_signs)
    samples: Array | None  # (M, d) the samples x_k (None when built from gradients only)


def fix_signs(V):
    """Flip the columns of V so that each column's largest-magnitude entry is positive (first one on ties).

    Args:
      V: (d, k) real floating array.
    Returns:
      (d, k) array, V times a diagonal of +-1. Eigenvectors/singular vectors are defined up to sign; this makes
      the output deterministic (up to rounding when two entries of one column have nearly equal magnitude).
    """
    xp = validate.matrix(V, "V")
    d, k = V.shape
    if d == 0 or k == 0:
        return V
    idx = xp.argmax(xp.abs(V), axis=0)                        # (k,), first maximum of each column
    flat = xp.reshape(xp.matrix_transpose(V), (-1,))          # column j occupies flat[j d:(j + 1) d]
    offs = xp.arange(k, dtype=idx.dtype, device=backend.device(V)) * d
    piv = xp.take(flat, idx + offs)
    one = xp.ones((k,), dtype=V.dtype, device=backend.device(V))
    return V * xp.where(piv < 0, -one, one)[None, :]


def egop_from_gradients(G, *, method: str = "svd") -> EgopResult:
    """Empirical EGOP (1/M) G G^T of a gradient bundle, with descending eigenvalues and a full eigenbasis.

    References: egop.md Algorithm 1 steps 3-4; notes §3 (SVD of the bundle, [code]).

    Args:
      G: (d, M) real floating array, column k = grad f(x_k). M may be smaller than d.
      method: "svd" (default): V = full left singular vectors of G / sqrt(M), lambda = s^2 zero-padded; the
        complement of range(G) is LAPACK's deterministic completion (module docstring). "eigh": eigendecomposition
        of sym((1/M) G G^T), re-sorted descending, tiny negative rounding clipped to 0.
    Returns:
      :class:`EgopResult` with ``samples=None``; arrays in G's namespace and dtype.
    Caveats: eigenvectors within clusters of equal eigenvalues are determined only as a subspace; the relative
      accuracy of lambda_i is about d u lambda_1 / lambda_i (eigh) or u sqrt(lambda_1 / lambda_i) (svd).
    """
    xp = validate.matrix(G, "G")
    validate.finite(G, "G", xp=xp)
    validate.one_of(method, "method", METHODS)
    d, M = G.shape
    if d == 0 or M == 0:
        raise ValueError(f"G: expected a non-empty (d, M) gradient bundle, got shape {(d, M)}")
    Gs = G / math.sqrt(M)
    E = Gs @ xp.matrix_transpose(Gs)
    E = (E + xp.matrix_transpose(E)) / 2
    if method == "svd":
        # U must be (d, d). For M >= d the thin SVD already gives it (and avoids the (M, M) right factor, which
        # for M >> d would cost M^2 memory); for M < d the full SVD completes U beyond rank (LAPACK gesdd).
        U, s, _ = xp.linalg.svd(Gs, full_matrices=M < d)
        lam = s * s
        r = lam.shape[0]
        if r < d:
            lam = xp.concat([lam, xp.zeros((d - r,), dtype=G.dtype, device=backend.device(G))])
        V = U
    else:
        w, Q = backend.eigh(E)                                # ascending
        lam = xp.flip(w)
        V = xp.flip(Q, axis=1)
        lam = xp.where(lam < 0, xp.zeros_like(lam), lam)      # rounding: |lambda| <~ d u lambda_1 (Weyl)
    return EgopResult(egop=E, grads=G, eigenvalues=lam, V=fix_signs(V), samples=None)


def egop_from_samples(grad_fn, X, *, batched: bool = False, method: str = "svd") -> EgopResult:
    """EGOP estimate from caller-given samples x_k (rows of X): no random numbers are drawn.

    Use this for common-random-number experiments, e.g. the finite-sample equivariance of Lemma 14: with the
    samples rotated consistently (y_k = Q^T x_k), the estimate for f o Q equals Q^T (estimate for f) Q exactly.

    Args:
      grad_fn: x (d,) -> grad f(x) (d,); or, with ``batched=True``, X (M, d) -> (M, d) gradients as rows.
        A stochastic (minibatch) oracle is allowed: it is called once per sample, in order k = 0..M-1.
      X: (M, d) real floating array of samples.
      batched: whether grad_fn takes the whole (M, d) batch.
      method: see :func:`egop_from_gradients`.
    Returns:
      :class:`EgopResult` with ``samples=X``.
    Raises:
      ValueError/TypeError: X not a finite 2-D float array; a gradient of the wrong shape, dtype or namespace,
        or non-finite.
    """
    xp = validate.matrix(X, "X")
    validate.finite(X, "X", xp=xp)
    G = _gradient_bundle(grad_fn, X, batched, xp)
    return egop_from_gradients(G, method=method)._replace(samples=X)


def estimate_egop(grad_fn, sampler, M: int, *, seed, batched: bool = False, method: str = "svd") -> EgopResult:
    """Monte-Carlo EGOP (1/M) sum_k grad f(x_k) grad f(x_k)^T, x_k iid ~ rho, and its eigenbasis (Algorithm 1).

    References: egop.md Sec. 2, Algorithm 1; notes §2-3. The paper uses M = d (:func:`recommended_samples`).
    In the paper's network experiments each sample is a fresh parameter draw x_k ~ rho (the initialization)
    paired with the k-th minibatch (notes §3 [code]): pass a grad_fn that steps through the minibatches (it is
    called once per sample, in order), or build the bundle yourself and call :func:`egop_from_gradients`.
    Cost: M gradient calls plus one SVD of the (d, M) bundle, O(d^2 M); at d = 2048, M = 2368 (the digits
    network's first layer) about 3 s with NumPy on 2 cores (``method="eigh"`` on the d x d EGOP is ~3x cheaper).

    Args:
      grad_fn: gradient oracle, x (d,) -> (d,) (or batched, see :func:`egop_from_samples`).
      sampler: a :class:`Sampler` (e.g. :func:`gaussian_sampler`) or any callable (M, rng) -> (M, d) array.
      M: number of samples, >= 1 (may be < d: the basis is still full, see :func:`egop_from_gradients`).
      seed: int or ``numpy.random.Generator`` (required; passed to ``sampler`` as a Generator).
      batched, method: see :func:`egop_from_samples` / :func:`egop_from_gradients`.
    Returns:
      :class:`EgopResult` (egop (d,d), grads (d,M), eigenvalues (d,) descending, V (d,d), samples (M,d)).
    """
    X = _draw(sampler, M, seed)
    return egop_from_samples(grad_fn, X, batched=batched, method=method)


def recommended_samples(d: int, *, factor: float = 1.0) -> int:
    """M = ceil(factor * d): the paper uses M = d for the reparameterization (notes §3, inferred) and an unknown
    multiple of d (factor > 1) for the spectrum plots (Figs. 2, 6, 7)."""
    d = validate.positive_int(d, "d")
    factor = validate.real_scalar(factor, "factor", low=0.0, low_open=True)
    return max(1, math.ceil(factor * d))


def _gradient_bundle(grad_fn, X, batched: bool, xp):
    """G (d, M) with column k = grad_fn(X[k]) (or the transpose of grad_fn(X) when batched), checked."""
    if not callable(grad_fn):
        raise TypeError(f"grad_fn: expected a callable, got {type(grad_fn).__name__}")
    M, d = X.shape
    if M == 0 or d == 0:
        raise ValueError(f"X: expected a non-empty (M, d) array of samples, got shape {(M, d)}")
    if batched:
        Gr = grad_fn(X)
        _check_grad_out(Gr, (M, d), X, "grad_fn(X)", xp)
        return xp.matrix_transpose(Gr)
    cols = []
    for k in range(M):
        g = grad_fn(X[k, :])
        _check_grad_out(g, (d,), X, f"grad_fn(X[{k}])", xp)
        cols.append(g)
    return xp.stack(cols, axis=1)


def _check_grad_out(g, shape, X, name, xp):
    if not (hasattr(g, "shape") and hasattr(g, "dtype")):
        raise TypeError(f"{name}: expected an array, got {type(g).__name__}")
    try:
        backend.namespace(g, X)
    except TypeError:
        raise TypeError(f"{name}: array library {type(g).__module__} does not match the samples' "
                        f"{type(X).__module__}") from None
    validate.float_array(g, name, xp=xp)
    if tuple(g.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(g.shape)}")
    if g.dtype != X.dtype:
        raise TypeError(f"{name}: dtype {backend.dtype_name(g.dtype)} does not match the samples' "
                        f"{backend.dtype_name(X.dtype)}")
    validate.finite(g, name, xp=xp)
