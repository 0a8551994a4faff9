"""EGOP reparameterization: Monte-Carlo EGOP, its eigenbasis, reparameterized objectives, block / partial /
Kronecker bases and spectral diagnostics.

References:
  DePavia, Charisopoulos, Willett, "Faster Adaptive Optimization via Expected Gradient Outer Product
  Reparameterization", arXiv 2502.01594 v1 (``shared/papers/egop.md``): Sec. 2 (EGOP, Algorithm 1, Eq. 2),
  Sec. 3 (stable rank, Eq. 3; density beta), Sec. 5 / App. B (block EGOP, Eq. 5; partial basis; Kronecker
  variant); the rebuilt formulas of ``shared/notes/egop-formulas.md`` (sections cited as "notes §k" with their
  certainty tags); errata 2, 15, 23, 24. Each submodule cites the sections it implements.

The paper's names, once. f: R^d -> R is the objective, rho the sampling distribution, x_1..x_M iid ~ rho the
samples, g_k = grad f(x_k) the gradients and G = [g_1, ..., g_M] (d x M) the *gradient bundle*. Then
    EGOP_rho(f) = E_{x~rho}[grad f(x) grad f(x)^T] ~ (1/M) G G^T = V Lambda V^T,  lambda_1 >= ... >= lambda_d >= 0,
and the reparameterized objective is f~(y) = f(V y), grad f~(y) = V^T grad f(V y), started at y0 = V^T x0 and
mapped back by x = V y (notes §3 [seed + code]: the direction is f(V y), not f(V^T y)).

Where each idea lives (paper section -> submodule):
  * Sec. 2, Algorithm 1: the Monte-Carlo EGOP, its eigenbasis (SVD of the bundle, completion, signs), the sample
    size M -> :mod:`krad_ref.egop.estimate`
  * the sampling distribution rho and every random draw (NumPy Generator, float64, cast) ->
    :mod:`krad_ref.egop.sampling`
  * Sec. 2, the reparameterized objective f~ and the maps y = V^T x, x = V y -> :mod:`krad_ref.egop.reparam`
  * Sec. 5, Eq. (5), block EGOP (one basis per layer) -> :mod:`krad_ref.egop.block`
  * Sec. 5 / App. B, partial basis; randomized range finder (Halko-Martinsson-Tropp) -> :mod:`krad_ref.egop.partial`
  * Sec. 5 / App. B, Kronecker variant; nearest Kronecker product (Van Loan-Pitsianis; errata 23) ->
    :mod:`krad_ref.egop.kronecker`
  * Sec. 3, stable rank (Eq. 3) and density beta; normalized spectra (Figs. 2, 6, 7); principal angles ->
    :mod:`krad_ref.egop.spectra`
Every name of ``__all__`` is importable from this package, as before the split into submodules.

A convention shared by the block and Kronecker bases:
  * **Flattening of matrix parameters (errata 15, 24).** A weight matrix W (out x in) enters the flat parameter
    vector row-major, flat(W) = reshape(W, (-1,)) (PyTorch's order, used by the paper's network experiments),
    and the gradient bundle of a layer block has the columns flat(grad_W f(x_k)). Under row-major flattening
    flat(U X W) = (U kron W^T) flat(X), so a Kronecker basis V1 kron V2 of a layer acts with V1 on the output
    index and V2 on the input index. (errata 24: the later public code builds a layer's bundle by a reshape of
    the stacked gradients instead of this; it is not an oracle.)
"""
from __future__ import annotations

from .block import BlockBasis, BlockEgopResult, block_egop_from_gradients, block_slices, estimate_block_egop
from .estimate import METHODS, Array  # noqa: F401  (outside __all__, as before the split; tests read METHODS)
from .estimate import (
    EgopResult,
    egop_from_gradients,
    egop_from_samples,
    estimate_egop,
    fix_signs,
    recommended_samples,
)
from .kronecker import (
    KroneckerApprox,
    KroneckerBasis,
    kronecker_basis_of_V,
    kronecker_egop_basis,
    nearest_kronecker,
    nearest_orthogonal,
    rearrange,
)
from .partial import partial_basis, partial_egop_basis, randomized_leading_basis, randomized_range_finder
from .reparam import Reparameterized, from_reparam, reparameterize, to_reparam
from .sampling import Sampler, gaussian_sampler, rng_from_seed, standard_normal, uniform
from .spectra import (
    DENSITY_FORMS,
    STABLE_RANK_FORMS,
    EgopDiagnostics,
    density_measure,
    diagnostics,
    leading_density,
    normalized_spectrum,
    principal_angles,
    stable_rank,
)

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
