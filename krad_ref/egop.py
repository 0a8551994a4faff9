"""EGOP reparameterization: Monte-Carlo EGOP, its eigenbasis, reparameterized objectives, block / partial /
Kronecker bases and spectral diagnostics.

References:
  DePavia, Charisopoulos, Willett, "Faster Adaptive Optimization via Expected Gradient Outer Product
  Reparameterization", arXiv 2502.01594 v1 (``shared/papers/egop.md``): Sec. 2 (EGOP, Algorithm 1, Eq. 2),
  Sec. 3 (stable rank, Eq. 3; density beta), Sec. 5 / App. B (block EGOP, Eq. 5; partial basis; Kronecker
  variant); the rebuilt formulas of ``shared/notes/egop-formulas.md`` (sections cited as "notes §k" with their
  certainty tags); errata 2, 15, 23, 24.
  Halko, Martinsson, Tropp, "Finding structure with randomness", SIAM Review 53 (2011), Alg. 4.4 and 5.1
  (randomized range finder with subspace iteration). Van Loan, Pitsianis, "Approximation with Kronecker products"
  (1993) (nearest Kronecker product by rearrangement).

The paper's names, once. f: R^d -> R is the objective, rho the sampling distribution, x_1..x_M iid ~ rho the
samples, g_k = grad f(x_k) the gradients and G = [g_1, ..., g_M] (d x M) the *gradient bundle*. Then
    EGOP_rho(f) = E_{x~rho}[grad f(x) grad f(x)^T] ~ (1/M) G G^T = V Lambda V^T,  lambda_1 >= ... >= lambda_d >= 0,
and the reparameterized objective is f~(y) = f(V y), grad f~(y) = V^T grad f(V y), started at y0 = V^T x0 and
mapped back by x = V y (notes §3 [seed + code]: the direction is f(V y), not f(V^T y)).

Conventions chosen here (each also stated where it applies):
  * **Eigenbasis by SVD of the bundle.** V is the full (d x d) left-singular-vector matrix of G / sqrt(M)
    (``xp.linalg.svd(..., full_matrices=True)``) and lambda_i = s_i^2, padded with zeros to length d. This is
    the better-conditioned route of notes §3 (the EGOP's eigenvalues are squared singular values, so small ones
    keep their relative accuracy ~ u * s_1 / s_i instead of u * s_1^2 / s_i^2) and it gives a full basis when M < d.
    ``method="eigh"`` is the paper's "full eigenvalue decomposition" of (1/M) G G^T, for comparison.
  * **Completion when M < d (or G is rank deficient).** The columns of V beyond rank(G) are an orthonormal basis
    of range(G)^perp = null(G^T): the EGOP's eigenspace for eigenvalue 0. The SVD's Householder completion (the
    LAPACK gesdd full-U columns) picks one such basis deterministically; any orthonormal basis of that complement
    is an equally valid EGOP eigenbasis, and the paper does not say which one it used (the later code takes
    torch.svd(G, some=False), i.e. the same LAPACK completion). Use :func:`partial_basis` for a *random*
    completion instead.
  * **Sign convention.** Each column v_j of V is flipped so that its entry of largest magnitude is positive
    (the first such entry on exact ties), as scikit-learn's ``svd_flip``. Within a cluster of (nearly) equal
    eigenvalues the individual vectors are not determined, only their span: compare subspaces (principal
    angles, :func:`principal_angles`), not vectors.
  * **Randomness.** Only the *sampling helpers* (section "sampling helpers" below: :func:`gaussian_sampler`,
    :func:`rng_from_seed`, the Gaussian test matrices of :func:`randomized_leading_basis` and the random
    completion of :func:`partial_basis`) draw random numbers, with NumPy's ``Generator`` (PCG64) seeded by the
    caller's ``seed`` (an int or a ``numpy.random.Generator``), in float64, then cast with ``xp.asarray`` to the
    requested namespace, dtype and device. Everything else is array-API code with no NumPy. A caller who wants
    its own random numbers passes samples (:func:`egop_from_samples`) or gradients (:func:`egop_from_gradients`).
  * **Flattening of matrix parameters (errata 15, 24).** A weight matrix W (out x in) enters the flat parameter
    vector row-major, flat(W) = reshape(W, (-1,)) (PyTorch's order, used by the paper's network experiments),
    and the gradient bundle of a layer block has the columns flat(grad_W f(x_k)). Under row-major flattening
    flat(U X W) = (U kron W^T) flat(X), so a Kronecker basis V1 kron V2 of a layer acts with V1 on the output
    index and V2 on the input index. (errata 24: the later public code builds a layer's bundle by a reshape of
    the stacked gradients instead of this; it is not an oracle.)
  * **Sample size.** The paper uses M = d gradient samples (notes §3, inferred: "number of gradient samples
    drawn equals the number of model weight parameters"; code ``EGOP_oversampling_factor = 1.0``) and "a larger
    number" (an unknown multiple of d) for the spectrum figures: :func:`recommended_samples`.
"""
from __future__ import annotations

import math
from numbers import Integral
from typing import Any, Callable, NamedTuple, Sequence

import array_api_extra as xpx

from . import backend, validate

__all__ = [
    # sampling helpers (NumPy random numbers)
    "rng_from_seed",
    "standard_normal",
    "uniform",
    "Sampler",
    "gaussian_sampler",
    # estimation
    "EgopResult",
    "egop_from_gradients",
    "egop_from_samples",
    "estimate_egop",
    "fix_signs",
    # reparameterization
    "Reparameterized",
    "reparameterize",
    "to_reparam",
    "from_reparam",
    # block EGOP (Eq. 5)
    "BlockBasis",
    "BlockEgopResult",
    "block_slices",
    "block_egop_from_gradients",
    "estimate_block_egop",
    # partial basis and randomized range finder
    "partial_basis",
    "partial_egop_basis",
    "randomized_range_finder",
    "randomized_leading_basis",
    # Kronecker approximations
    "KroneckerApprox",
    "KroneckerBasis",
    "rearrange",
    "nearest_kronecker",
    "kronecker_egop_basis",
    "kronecker_basis_of_V",
    "nearest_orthogonal",
    # diagnostics
    "stable_rank",
    "leading_density",
    "density_measure",
    "normalized_spectrum",
    "EgopDiagnostics",
    "diagnostics",
    "recommended_samples",
    "principal_angles",
    "STABLE_RANK_FORMS",
    "DENSITY_FORMS",
]

Array = Any

#: stable_rank forms: "nuclear" = sum sqrt(lambda_i) / sqrt(lambda_1) (Eq. 3 as rebuilt, notes §4 [REC,
#: confident]); "frobenius" = sum lambda_i / lambda_1 (the numerical-linear-algebra stable rank of G; NOT Eq. 3).
STABLE_RANK_FORMS = ("nuclear", "frobenius")
#: leading_density forms: "squared" = ||v||_1^2 / d (notes §4 [REC]); "l1" = ||v||_1 / sqrt(d) (the less likely reading).
DENSITY_FORMS = ("squared", "l1")
#: eigenbasis methods of egop_from_gradients.
METHODS = ("svd", "eigh")


# =========================================================================================================
# sampling helpers: the ONLY code in this module that draws random numbers (NumPy Generator, float64, cast)
# =========================================================================================================

def rng_from_seed(seed):
    """A ``numpy.random.Generator`` from ``seed`` (an int >= 0, or a Generator, returned as is).

    Sampling helper; the Generator comes from :func:`krad_ref.backend.rng`, which owns the NumPy import.
    ``None`` is refused: every random draw in krad_ref is reproducible from a seed.

    Raises:
      TypeError: ``seed`` is neither an integer nor a ``numpy.random.Generator``.
      ValueError: a negative integer.
    """
    return backend.rng(seed)


def standard_normal(rng, shape, *, dtype=None, device=None, xp):
    """Sampling helper: iid N(0, 1) of ``shape``, drawn by NumPy in float64 from ``rng`` (seed or Generator),
    then cast to ``xp`` / ``dtype`` (default float64) / ``device`` with ``xp.asarray``."""
    Z = rng_from_seed(rng).standard_normal(shape)
    return xp.asarray(Z, dtype=xp.float64 if dtype is None else dtype, device=device)


def uniform(rng, shape, low: float = 0.0, high: float = 1.0, *, dtype=None, device=None, xp):
    """Sampling helper: iid U(low, high) of ``shape`` (NumPy, float64), cast like :func:`standard_normal`."""
    Z = rng_from_seed(rng).uniform(low, high, size=shape)
    return xp.asarray(Z, dtype=xp.float64 if dtype is None else dtype, device=device)


class Sampler(NamedTuple):
    """A sampling distribution rho for :func:`estimate_egop`: ``draw(M, rng) -> X`` of shape (M, d).

    Any callable with the signature ``sampler(M, rng) -> (M, d) array`` works where a Sampler is expected;
    ``rng`` is the ``numpy.random.Generator`` made from the caller's seed. This NamedTuple adds a name and d.
    """

    draw: Callable[[int, Any], Array]   # (M, rng) -> (M, d) array in the sampler's namespace and dtype
    d: int                              # dimension of one sample
    name: str                           # e.g. "gaussian(mean, scale=1)"

    def __call__(self, M, rng):
        return self.draw(M, rng)


def gaussian_sampler(mean, scale=1.0, *, d: int | None = None, dtype=None, xp=None) -> Sampler:
    """rho = N(mean, scale^2 I_d): the isotropic Gaussian of the paper's convex experiments (scale = 1, mean 0).

    Sampling helper (NumPy draws, cast to the namespace). A rotation-invariant rho (mean 0) is what Lemma 14's
    equivariance needs (errata 2); Assumption 1 also wants scale >= ||x_star|| (notes §5).

    References: egop.md Sec. 2, Sec. 6 ("EGOP is estimated with a standard Gaussian"); notes §3, §5.

    Args:
      mean: (d,) real floating array (its namespace, dtype and device are used), or a real number (then ``d``,
        ``xp`` and optionally ``dtype`` (default float64) must be given).
      scale: standard deviation c > 0 of each coordinate (float), or a (d,) array of per-coordinate standard
        deviations (a diagonal, non-isotropic Gaussian; for block distributions such as Xavier init).
    Returns:
      a :class:`Sampler` drawing X (M, d) with rows x_k = mean + scale * z_k, z_k ~ N(0, I_d).
    """
    if hasattr(mean, "shape") and hasattr(mean, "dtype"):
        xp = validate.float_array(mean, "mean", ndim=1)
        validate.finite(mean, "mean", xp=xp)
        if d is not None and d != mean.shape[0]:
            raise ValueError(f"d: {d} does not match mean's length {mean.shape[0]}")
        d = int(mean.shape[0])
        if dtype is not None and dtype != mean.dtype:
            raise TypeError(f"dtype: {backend.dtype_name(dtype)} does not match mean's {backend.dtype_name(mean.dtype)}")
        mean_arr = mean
    else:
        m0 = validate.real_scalar(mean, "mean")
        if d is None or xp is None:
            raise TypeError("gaussian_sampler: a scalar mean needs d= and xp=")
        d = validate.positive_int(d, "d")
        dtype = xp.float64 if dtype is None else dtype
        mean_arr = xp.full((d,), m0, dtype=dtype)
    dtype, dev = mean_arr.dtype, backend.device(mean_arr)
    if hasattr(scale, "shape") and hasattr(scale, "dtype"):
        validate.float_array(scale, "scale", ndim=1, xp=xp)
        validate.finite(scale, "scale", xp=xp)
        if scale.shape[0] != d:
            raise ValueError(f"scale: expected shape ({d},), got {tuple(scale.shape)}")
        if bool(xp.any(scale <= 0)):
            raise ValueError("scale: expected positive standard deviations")
        scale_v = xp.astype(scale, dtype)
        label = "diag"
    else:
        scale_v = validate.real_scalar(scale, "scale", low=0.0, low_open=True)
        label = f"{scale_v:g}"

    def draw(M, rng):
        M = validate.positive_int(M, "M")
        Z = standard_normal(rng, (M, d), dtype=dtype, device=dev, xp=xp)
        return mean_arr[None, :] + scale_v * Z

    return Sampler(draw=draw, d=d, name=f"gaussian(d={d}, scale={label})")


# =========================================================================================================
# estimation (Algorithm 1)
# =========================================================================================================

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


# =========================================================================================================
# reparameterization
# =========================================================================================================

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


# =========================================================================================================
# block EGOP (Eq. 5)
# =========================================================================================================

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


# =========================================================================================================
# partial basis and the randomized range finder
# =========================================================================================================

def partial_basis(Vk, *, seed):
    """Complete k orthonormal leading vectors to a full orthogonal basis with a *random* orthonormal basis of
    their complement (egop.md Sec. 5 / notes §9 "partial basis" [seed]).

    Sampling helper: draws a (d, d-k) standard Gaussian Z with NumPy from ``seed``, projects it onto
    span(Vk)^perp twice (classical Gram-Schmidt with re-orthogonalization, "twice is enough") and takes the Q
    factor of a QR decomposition: a Haar-distributed orthonormal basis of the complement.

    Args:
      Vk: (d, k) array with orthonormal columns, 0 <= k <= d.
      seed: int or numpy Generator.
    Returns:
      (d, d) orthogonal array [Vk, Q], first k columns exactly Vk.
    Raises: ValueError when Vk's columns are not orthonormal within ~ d u.
    """
    xp = validate.matrix(Vk, "Vk")
    validate.finite(Vk, "Vk", xp=xp)
    d, k = Vk.shape
    if d == 0:
        raise ValueError("Vk: expected d >= 1 rows, got 0")
    if k > d:
        raise ValueError(f"Vk: expected at most d = {d} columns, got {k}")
    _check_orthonormal_columns(Vk, "Vk", xp)
    if k == d:
        return Vk
    Z = standard_normal(rng_from_seed(seed), (d, d - k), dtype=Vk.dtype, device=backend.device(Vk), xp=xp)
    Vt = xp.matrix_transpose(Vk)
    for _ in range(2):                                        # "twice is enough" (Giraud et al. 2005)
        Z = Z - Vk @ (Vt @ Z)
    Q, R = xp.linalg.qr(Z)                                    # reduced: Q (d, d - k)
    rd = xp.linalg.diagonal(R)
    one = xp.ones_like(rd)
    Q = Q * xp.where(rd < 0, -one, one)[None, :]              # sign(diag R) > 0: Haar on the complement
    return xp.concat([Vk, Q], axis=1)


def randomized_range_finder(A, ell: int, *, n_power_iter: int = 2, seed):
    """Orthonormal Q (m, ell) with range(Q) ~ the leading ell-dimensional range of A (HMT Alg. 4.4).

    Randomized subspace iteration: Y = A Omega with a Gaussian Omega (n, ell) (sampling helper), then
    ``n_power_iter`` rounds of Q <- qr(A qr(A^T Q)) (re-orthonormalized at each half step, as Alg. 4.4, to keep
    the small singular directions from being lost to rounding).

    Args:
      A: (m, n) real floating array (for the EGOP: the gradient bundle G, d x M).
      ell: number of columns, 1 <= ell <= min(m, n).
      n_power_iter: q >= 0; the error bound shrinks like (s_{ell+1}/s_k)^(2q+1) (HMT Thm. 10.6 / Cor. 10.10).
      seed: int or numpy Generator.
    Returns: (m, ell) array with orthonormal columns.
    """
    xp = validate.matrix(A, "A")
    validate.finite(A, "A", xp=xp)
    m, n = A.shape
    ell = validate.positive_int(ell, "ell")
    if ell > min(m, n):
        raise ValueError(f"ell: expected 1 <= ell <= min(m, n) = {min(m, n)}, got {ell}")
    q = validate.positive_int(n_power_iter, "n_power_iter", minimum=0)
    Omega = standard_normal(rng_from_seed(seed), (n, ell), dtype=A.dtype, device=backend.device(A), xp=xp)
    At = xp.matrix_transpose(A)
    Q, _ = xp.linalg.qr(A @ Omega)
    for _ in range(q):                                        # HMT Alg. 4.4: re-orthonormalize each half step
        W, _ = xp.linalg.qr(At @ Q)
        Q, _ = xp.linalg.qr(A @ W)
    return Q


def randomized_leading_basis(G, k: int, *, oversample: int = 10, n_power_iter: int = 2, seed, M=None):
    """Leading k EGOP eigenpairs from the gradient bundle by randomized SVD (HMT Alg. 4.4 + Alg. 5.1).

    Q = randomized_range_finder(G, k + oversample); B = Q^T G; B = U_B S W^T; V_k = Q U_B[:, :k];
    lambda_i = s_i^2 / M. Signs fixed as :func:`fix_signs`.

    Args:
      G: (d, M) gradient bundle. k: 1 <= k <= min(d, M). oversample: p >= 0 (ell = min(k + p, d, M)).
      M: divisor for the eigenvalues (default G.shape[1]).
    Returns: (eigenvalues (k,) descending, Vk (d, k) orthonormal).
    """
    xp = validate.matrix(G, "G")
    d, Mc = G.shape
    k = validate.positive_int(k, "k")
    if k > min(d, Mc):
        raise ValueError(f"k: expected 1 <= k <= min(d, M) = {min(d, Mc)}, got {k}")
    p = validate.positive_int(oversample, "oversample", minimum=0)
    Mdiv = Mc if M is None else validate.positive_int(M, "M")
    ell = min(k + p, d, Mc)
    Q = randomized_range_finder(G, ell, n_power_iter=n_power_iter, seed=seed)
    B = xp.matrix_transpose(Q) @ G                            # (ell, M)
    UB, s, _ = xp.linalg.svd(B, full_matrices=False)          # HMT Alg. 5.1
    Vk = fix_signs(Q @ UB[:, :k])
    return (s[:k] * s[:k]) / Mdiv, Vk


def partial_egop_basis(G, k: int, *, seed, randomized: bool = True, oversample: int = 10, n_power_iter: int = 2):
    """Partial EGOP basis: the leading k EGOP eigenvectors of the bundle G, completed at random to an orthogonal
    (d x d) basis (egop.md Sec. 5; notes §9 "partial basis" [seed]).

    The leading vectors come from :func:`randomized_leading_basis` (``randomized=True``; the "e.g. randomized
    SVD" of the notes) or from the exact SVD of G (``randomized=False``); the completion is :func:`partial_basis`.
    One seed feeds both: the range finder draws first, then the completion, from the same Generator.

    Args: G (d, M) gradient bundle; k, 1 <= k <= min(d, M); seed; randomized, oversample, n_power_iter.
    Returns: (eigenvalues (k,) descending: the EGOP's leading eigenvalue estimates, V (d, d) orthogonal).
    """
    xp = validate.matrix(G, "G")
    validate.finite(G, "G", xp=xp)
    d, Mc = G.shape
    k = validate.positive_int(k, "k")
    if k > min(d, Mc):
        raise ValueError(f"k: expected 1 <= k <= min(d, M) = {min(d, Mc)}, got {k}")
    rng = rng_from_seed(seed)
    if randomized:
        lam, Vk = randomized_leading_basis(G, k, oversample=oversample, n_power_iter=n_power_iter, seed=rng)
    else:
        U, s, _ = xp.linalg.svd(G, full_matrices=False)
        lam, Vk = (s[:k] * s[:k]) / Mc, fix_signs(U[:, :k])
    return lam, partial_basis(Vk, seed=rng)


# =========================================================================================================
# Kronecker approximations (Sec. 5, App. B; errata 23)
# =========================================================================================================

class KroneckerApprox(NamedTuple):
    """A ~ B kron C (nearest in Frobenius norm) and what the rearrangement says about it."""

    B: Array                  # (m1, n1)
    C: Array                  # (m2, n2)
    residual: Array           # 0-d, ||A - B kron C||_F
    singular_values: Array    # (min(m1 n1, m2 n2),) descending singular values of rearrange(A)


class KroneckerBasis(NamedTuple):
    """An orthogonal Kronecker basis V = V1 kron V2 of a matrix parameter (m, n) flattened row-major (errata 15)."""

    V1: Array                    # (m, m) orthogonal, acts on the output (row) index of W
    V2: Array                    # (n, n) orthogonal, acts on the input (column) index of W
    approx: KroneckerApprox      # the nearest-Kronecker-product fit it came from
    eigenvalues_1: Array | None  # (m,) descending eigenvalues of B (kronecker_egop_basis), else None
    eigenvalues_2: Array | None  # (n,) descending eigenvalues of C, else None

    @property
    def V(self):
        """The (m n, m n) matrix V1 kron V2 (array_api_extra.kron; materialized on each access)."""
        return xpx.kron(self.V1, self.V2)


def rearrange(A, shape_B, shape_C):
    """Van Loan-Pitsianis rearrangement R(A) with ||A - B kron C||_F = ||R(A) - b c^T||_F.

    Row-major convention (matches ``array_api_extra.kron`` and row-major flattening): A is viewed as an
    (m1 x n1) grid of (m2 x n2) blocks A_{ij} = A[i m2:(i+1) m2, j n2:(j+1) n2]; row i n1 + j of R(A) is the
    row-major flattening of A_{ij}; b = reshape(B, (-1,)), c = reshape(C, (-1,)).

    Args: A (m1 m2, n1 n2); shape_B = (m1, n1); shape_C = (m2, n2).
    Returns: (m1 n1, m2 n2) array.
    """
    xp = validate.matrix(A, "A")
    m1, n1 = (validate.positive_int(v, "shape_B") for v in shape_B)
    m2, n2 = (validate.positive_int(v, "shape_C") for v in shape_C)
    if tuple(A.shape) != (m1 * m2, n1 * n2):
        raise ValueError(f"A: expected shape ({m1 * m2}, {n1 * n2}) for B {(m1, n1)} kron C {(m2, n2)}, "
                         f"got {tuple(A.shape)}")
    A4 = xp.reshape(A, (m1, m2, n1, n2))                      # A[i m2 + p, j n2 + q] = A4[i, p, j, q]
    return xp.reshape(xp.permute_dims(A4, (0, 2, 1, 3)), (m1 * n1, m2 * n2))


def nearest_kronecker(A, shape_B, shape_C, *, symmetric_psd: bool | None = None) -> KroneckerApprox:
    """Nearest Kronecker product min ||A - B kron C||_F (Van Loan-Pitsianis): the leading singular pair of R(A).

    b = sqrt(s1) u1, c = sqrt(s1) v1; the squared residual is the sum of the remaining squared singular values
    of R(A) (Eckart-Young). For symmetric PSD A (an EGOP) with square shapes the optimal B, C are symmetric and
    can be taken PSD (Van Loan-Pitsianis Thm. 5.8 / the Perron-Frobenius argument on R(A)); the sign is fixed so
    that tr(B) >= 0 and tr(C) >= 0, and B, C are symmetrized.

    Args:
      A: (m1 m2, n1 n2) real floating array.
      shape_B, shape_C: factor shapes.
      symmetric_psd: symmetrize the factors (default: True when both shapes are square and A is symmetric).
    Returns: :class:`KroneckerApprox`.
    """
    xp = validate.matrix(A, "A")
    validate.finite(A, "A", xp=xp)
    R = rearrange(A, shape_B, shape_C)
    m1, n1 = shape_B
    m2, n2 = shape_C
    U, s, Vh = xp.linalg.svd(R, full_matrices=False)
    root = xp.sqrt(s[0])
    b, c = root * U[:, 0], root * Vh[0, :]
    square = m1 == n1 and m2 == n2
    if symmetric_psd is None:
        symmetric_psd = square and _is_symmetric(A, xp)
    if symmetric_psd and not square:
        raise ValueError("symmetric_psd: needs square factor shapes")
    B, C = xp.reshape(b, (m1, n1)), xp.reshape(c, (m2, n2))
    if symmetric_psd:
        flip = float(xp.sum(xp.linalg.diagonal(B))) < 0       # tr(B) >= 0 makes both factors PSD for PSD A
        B = (B + xp.matrix_transpose(B)) / 2
        C = (C + xp.matrix_transpose(C)) / 2
    else:
        flip = float(xp.take(b, xp.argmax(xp.abs(b))[None])[0]) < 0
    if flip:
        B, C = -B, -C
    tail = s[1:]
    residual = xp.sqrt(xp.sum(tail * tail)) if tail.shape[0] else xp.zeros((), dtype=A.dtype,
                                                                           device=backend.device(A))
    return KroneckerApprox(B=B, C=C, residual=residual, singular_values=s)


def kronecker_egop_basis(egop, shape: tuple[int, int]):
    """OUR Kronecker-factored EGOP basis (not the paper's, errata 23): NKP of the EGOP, then eigenbases of factors.

    For a matrix parameter W (out x in) = (m, n) flattened row-major (errata 15), EGOP ~ B kron C with B (m, m),
    C (n, n) = :func:`nearest_kronecker`; then B = V1 diag(b) V1^T, C = V2 diag(c) V2^T (descending, signs by
    :func:`fix_signs`) and V = V1 kron V2 is orthogonal with storage m^2 + n^2 instead of (mn)^2. The columns of
    V are in Kronecker order (not sorted by b_i c_j); diagonal adaptive methods are permutation-equivariant, so
    the order does not matter to them. It coincides with SOAP's/Shampoo's one-sided bases only when the EGOP is
    exactly Kronecker (notes §9, App. E).

    Args:
      egop: (m n, m n) symmetric PSD array.
      shape: (m, n) of the parameter matrix.
    Returns: :class:`KroneckerBasis` (V1, V2, approx, eigenvalues_1, eigenvalues_2); ``.V`` = V1 kron V2.
    """
    xp = validate.square(egop, "egop")
    m, n = (validate.positive_int(v, "shape") for v in shape)
    if egop.shape[0] != m * n:
        raise ValueError(f"egop: expected shape ({m * n}, {m * n}) for a parameter of shape {(m, n)}, "
                         f"got {tuple(egop.shape)}")
    approx = nearest_kronecker(egop, (m, m), (n, n), symmetric_psd=True)
    wB, V1 = _eigh_desc(approx.B, xp)
    wC, V2 = _eigh_desc(approx.C, xp)
    return KroneckerBasis(V1=V1, V2=V2, approx=approx, eigenvalues_1=wB, eigenvalues_2=wC)


def kronecker_basis_of_V(V, shape: tuple[int, int]):
    """The paper's Kronecker variant read literally (Sec. 5, notes §9 [REC]): V ~ V1 kron V2 with V1, V2 orthogonal.

    Our construction of that approximation: the nearest Kronecker product B kron C of V itself, then the nearest
    orthogonal matrix (polar factor, :func:`nearest_orthogonal`) of each factor. The paper does not say how it
    finds V1, V2. Caveat: V's column order and signs are arbitrary within eigenvalue clusters, and the result
    depends on them (it is a property of the matrix V, not of the EGOP).

    Args: V (m n, m n) orthogonal; shape (m, n).
    Returns: :class:`KroneckerBasis` (V1, V2, approx of V, None, None); ``.V`` = V1 kron V2.
    """
    xp = validate.square(V, "V")
    m, n = (validate.positive_int(v, "shape") for v in shape)
    if V.shape[0] != m * n:
        raise ValueError(f"V: expected shape ({m * n}, {m * n}) for a parameter of shape {(m, n)}, "
                         f"got {tuple(V.shape)}")
    approx = nearest_kronecker(V, (m, m), (n, n), symmetric_psd=False)
    return KroneckerBasis(V1=nearest_orthogonal(approx.B), V2=nearest_orthogonal(approx.C), approx=approx,
                          eigenvalues_1=None, eigenvalues_2=None)


def nearest_orthogonal(A):
    """Polar factor U W^T of A = U S W^T: the orthogonal matrix nearest to square A in Frobenius norm.

    Args: A (n, n). Returns: (n, n) orthogonal.
    """
    xp = validate.square(A, "A")
    validate.finite(A, "A", xp=xp)
    U, _, Vh = xp.linalg.svd(A, full_matrices=False)
    return U @ Vh


# =========================================================================================================
# diagnostics
# =========================================================================================================

def stable_rank(eigenvalues, *, form: str = "nuclear"):
    """Stable rank of the EGOP, Eq. (3): sr_f = sum_i sqrt(lambda_i) / sqrt(lambda_1) (``form="nuclear"``).

    References: egop.md Sec. 3, Eq. (3) and footnote 3; notes §4 [REC, confident]: the square roots make it
    ||G||_* / ||G||_op of the scaled bundle; 1 for rank one, d for a flat spectrum.
    ``form="frobenius"``: sum lambda_i / lambda_1 = ||G||_F^2 / ||G||_2^2, the usual numerical stable rank (not Eq. 3).

    Args: eigenvalues (d,) >= 0 (any order; |lambda| <= 4 d u lambda_1, rounding of an exact zero by the
      numerical-rank rule ``validate.zero_tolerance``, counts as 0), not all zero.
    Returns: 0-d array in the input's dtype.
    """
    validate.one_of(form, "form", STABLE_RANK_FORMS)
    lam, xp = _spectrum(eigenvalues)
    lam1 = xp.max(lam)
    if form == "nuclear":
        return xp.sum(xp.sqrt(lam)) / xp.sqrt(lam1)
    return xp.sum(lam) / lam1


def leading_density(v, *, form: str = "squared"):
    """Density beta of the leading eigenvector: ||v||_1^2 / d in [1/d, 1] (notes §4 [REC]).

    beta -> 1 for a maximally dense unit v (|v_i| = 1/sqrt(d)); about 2/pi for v uniform on the sphere;
    1/d for a coordinate vector. ``form="l1"``: ||v||_1 / sqrt(d) (the less likely reading; = sqrt of the other).

    Args: v (d,) unit vector (normalized here if it is not). Returns: 0-d array.
    """
    validate.one_of(form, "form", DENSITY_FORMS)
    xp = validate.float_array(v, "v", ndim=1)
    validate.finite(v, "v", xp=xp)
    d = v.shape[0]
    nrm = xp.linalg.vector_norm(v)
    if d == 0 or float(nrm) == 0.0:
        raise ValueError("v: expected a non-zero vector")
    l1 = xp.sum(xp.abs(v / nrm))
    return l1 * l1 / d if form == "squared" else l1 / math.sqrt(d)


def density_measure(eigenvalues, V):
    """max_k (lambda_k / lambda_1) * ||v_k||_1^2 / d, the general measure after Thm. 3 (notes §4 [REC]).

    Args: eigenvalues (d,) descending >= 0; V (d, d) with v_k = V[:, k]. Returns: 0-d array.
    """
    lam, xp = _spectrum(eigenvalues)
    validate.matrix(V, "V", xp=xp)
    d = lam.shape[0]
    if V.shape[0] != d or V.shape[1] != d:
        raise ValueError(f"V: expected shape ({d}, {d}), got {tuple(V.shape)}")
    l1 = xp.sum(xp.abs(V), axis=0) / xp.linalg.vector_norm(V, axis=0)
    return xp.max(lam / xp.max(lam) * l1 * l1 / d)


def normalized_spectrum(eigenvalues):
    """lambda_i / lambda_1, sorted descending (the quantity of the paper's Figs. 2, 6, 7). Returns (d,)."""
    lam, xp = _spectrum(eigenvalues)
    return xp.flip(xp.sort(lam)) / xp.max(lam)


class EgopDiagnostics(NamedTuple):
    """Scalar summaries of an EGOP spectrum (Python floats)."""

    d: int
    M: int | None
    stable_rank: float          # Eq. (3), "nuclear" form
    stable_rank_frobenius: float
    beta: float                 # ||v_1||_1^2 / d
    density_measure: float      # max_k lambda_k/lambda_1 ||v_k||_1^2 / d
    gain: float                 # sr_f / (beta d): the factor in Thm. 3's reparameterized bound (< 1 means a gain)
    lambda_1: float


def diagnostics(result: EgopResult) -> EgopDiagnostics:
    """Stable rank, density beta, the general density measure and Thm. 3's factor sr_f / (beta d)."""
    lam, V = result.eigenvalues, result.V
    d = int(lam.shape[0])
    sr = float(stable_rank(lam))
    beta = float(leading_density(V[:, 0]))
    return EgopDiagnostics(
        d=d, M=None if result.grads is None else int(result.grads.shape[1]), stable_rank=sr,
        stable_rank_frobenius=float(stable_rank(lam, form="frobenius")), beta=beta,
        density_measure=float(density_measure(lam, V)), gain=sr / (beta * d), lambda_1=float(lam[0]),
    )


def recommended_samples(d: int, *, factor: float = 1.0) -> int:
    """M = ceil(factor * d): the paper uses M = d for the reparameterization (notes §3, inferred) and an unknown
    multiple of d (factor > 1) for the spectrum plots (Figs. 2, 6, 7)."""
    d = validate.positive_int(d, "d")
    factor = validate.real_scalar(factor, "factor", low=0.0, low_open=True)
    return max(1, math.ceil(factor * d))


def principal_angles(A, B):
    """Principal angles (radians, ascending) between range(A) and range(B); A (d, k), B (d, l) orthonormal columns.

    cos(theta_i) = s_i(A^T B), computed from the SVD and clipped to [0, 1]. For subspace comparison when
    eigenvalues cluster: by Davis-Kahan, sin(theta_max) <= ||E - E_hat||_2 / gap.
    Returns: (min(k, l),) array.
    """
    xp = validate.matrix(A, "A")
    validate.matrix(B, "B", xp=xp)
    if A.shape[0] != B.shape[0]:
        raise ValueError(f"B: expected {A.shape[0]} rows like A, got {B.shape[0]}")
    r = min(A.shape[1], B.shape[1])
    if r == 0:
        return xp.zeros((0,), dtype=A.dtype, device=backend.device(A))
    AtB = xp.matrix_transpose(A) @ B
    cos = xp.clip(xp.linalg.svdvals(AtB), 0.0, 1.0)                          # descending
    sin = xp.sort(xp.clip(xp.linalg.svdvals(B - A @ AtB), 0.0, 1.0))[:r]     # ascending, the r smallest
    th_c = xp.acos(cos)                                                        # ascending
    th_s = xp.asin(sin)
    # acos loses half the digits for small angles (theta ~ sqrt(2 (1 - cos))), asin for angles near pi/2
    return xp.where(th_s < math.pi / 4, th_s, th_c)


# =========================================================================================================
# private helpers
# =========================================================================================================

def _draw(sampler, M, seed):
    """Call the sampler (M, rng) and check it returned an (M, d) array."""
    M = validate.positive_int(M, "M")
    if not callable(sampler):
        raise TypeError(f"sampler: expected a callable (M, rng) -> (M, d) array, got {type(sampler).__name__}")
    rng = rng_from_seed(seed)
    X = sampler(M, rng)
    validate.matrix(X, "sampler output")
    if X.shape[0] != M:
        raise ValueError(f"sampler output: expected {M} rows (one sample per row), got shape {tuple(X.shape)}")
    return X


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


def _is_symmetric(A, xp) -> bool:
    if A.shape[0] != A.shape[1]:
        return False
    scale = float(xp.max(xp.abs(A))) if A.shape[0] else 0.0
    asym = float(xp.max(xp.abs(A - xp.matrix_transpose(A)))) if A.shape[0] else 0.0
    return asym <= validate.SYM_TOL_FACTOR * A.shape[0] * backend.unit_roundoff(A.dtype) * scale


def _eigh_desc(A, xp):
    w, Q = backend.eigh((A + xp.matrix_transpose(A)) / 2)
    return xp.flip(w), fix_signs(xp.flip(Q, axis=1))


def _spectrum(eigenvalues):
    """Validate a spectrum (1-D, finite, >= -tau, not all zero); return it with |lambda| <= tau set to 0, and xp.

    tau = 4 d u max|lambda| is the numerical-rank rule (``validate.zero_tolerance``): an eigenvalue that small is
    an exact zero as far as eigh can tell, so it must not count towards a stable rank or a density (in float32 a
    rank-one EGOP's d - 1 rounding eigenvalues of ~d u lambda_1 would add ~d sqrt(d u) to Eq. (3)'s sum of roots).
    """
    xp = validate.float_array(eigenvalues, "eigenvalues", ndim=1)
    validate.finite(eigenvalues, "eigenvalues", xp=xp)
    d = eigenvalues.shape[0]
    if d == 0:
        raise ValueError("eigenvalues: expected a non-empty spectrum")
    top = float(xp.max(xp.abs(eigenvalues)))
    low = float(xp.min(eigenvalues))
    tol = validate.zero_tolerance(top, n=d, dtype=eigenvalues.dtype)
    if low < -tol:
        raise ValueError(f"eigenvalues: expected >= 0 (a PSD spectrum), but min = {low:.3g} < -tol = {-tol:.3g}")
    if top == 0.0:
        raise ValueError("eigenvalues: all zero (no leading eigenvalue to normalize by)")
    return xp.where(eigenvalues <= tol, xp.zeros_like(eigenvalues), eigenvalues), xp
