"""Computing the matrix square root (Sec. IV-B, Eq. 5): batched coupled Newton-Schulz, and exact roots by eigh.

References:
  J. Lee, MBAG (shared/papers/mbag.md) Eq. (5) and Sec. IV-B; Higham, *Functions of Matrices* (2008), Eq. (6.35)
  (coupled Newton-Schulz); errata 6.

Newton-Schulz and its rescaling (Eq. 5; errata 6). On A' = A / s, s = ||A||_F, with X_0 = A', Y_0 = I the iterates
are polynomials in A' and X_t = A' Y_t; the scalar map y -> y (3 - q y^2) / 2 (q an eigenvalue of A' in (0, 1])
increases y monotonically from 1 to q^{-1/2}. Hence X_t -> A'^{1/2} = A^{1/2} / sqrt(s) and
Y_t -> A'^{-1/2} = sqrt(s) A^{-1/2}, so
    A^{1/2} = sqrt(s) X_N        and        A^{-1/2} = Y_N / sqrt(s).
MBAG feeds A = H: R = sqrt(||H||_F) X_N, the paper's formula (correct). MBAG-EMA feeds A = G: R = Y_N / sqrt(||G||_F).
Where this differs from the paper's wording: Sec. IV-B says "if X_0 is initialized to G, Y_t converges to G^{-1/2}";
after its own Frobenius normalisation Y_N converges to sqrt(||G||_F) G^{-1/2}, so Y_N must be DIVIDED by
sqrt(||G||_F) (multiplying it, by analogy with X, is off by the factor ||G||_F). With a fixed T_NS both outputs
UNDER-estimate their roots (the scalar map never overshoots: X_N <= A^{1/2}, Y_N / sqrt(s) <= A^{-1/2} in the Loewner
order), and the eigen-directions of the smallest eigenvalues of A' converge last, only by a factor 3/2 per step.
Measured (Frobenius, tau = 4-32): at kappa = 1e2, T_NS = 5 / 7, the root of H (MBAG) is 3-6 % / 0.3-0.8 % off and
the inverse root of G (MBAG-EMA) 31-35 % / 3-7 %; at kappa = 1e4, 3-7 % / 2-3 % and 89-91 % / 77-81 %. The error
sits in the eigen-directions of the smallest eigenvalues of the input: for MBAG (input H) those of the LARGEST
eigenvalues of G, for MBAG-EMA (input G) those of the smallest; either way the step is too short there.
``root_method="eigh"`` gives exact roots (one batched eigendecomposition).
"""
from __future__ import annotations

from typing import Any, NamedTuple

from .. import backend, validate

Array = Any


ROOT_METHODS = ("newton_schulz", "eigh")


class GroupRoots(NamedTuple):
    """Outputs of :func:`batched_newton_schulz`, already rescaled for the normalisation."""

    sqrt: Array      # (..., tau, tau): sqrt(s) X_N ~ A^{1/2}, symmetrized
    inv_sqrt: Array  # (..., tau, tau): Y_N / sqrt(s) ~ A^{-1/2}, symmetrized
    residual: Array  # (...,): ||I - Y_N X_N||_F (scale-free: X_N Y_N -> I), A's dtype


def _fro_stack(A, xp):
    # per matrix, scaled by a power of two near max|A| (exact, so the same digits as the plain norm) so that the
    # squares cannot overflow: a float32 statistic of entries ~1e20 has a finite norm
    m = xp.max(xp.abs(A), axis=(-2, -1))
    ok = (m > 0) & xp.isfinite(m)
    s = xp.where(ok, 2.0 ** xp.ceil(xp.log2(xp.where(ok, m, xp.ones_like(m)))), xp.ones_like(m))
    return xp.linalg.vector_norm(A / s[..., None, None], axis=(-2, -1)) * s


def _sym(A, xp):
    return (A + xp.matrix_transpose(A)) / 2


def _ns(A, num_iters: int, xp) -> GroupRoots:
    tau = A.shape[-1]
    I = xp.eye(tau, dtype=A.dtype, device=backend.device(A))
    s = _fro_stack(A, xp)[..., None, None]
    X = A / s
    Y = xp.zeros_like(A) + I  # a fresh stack of identities
    for _ in range(num_iters):
        T = 3.0 * I - Y @ X
        X, Y = 0.5 * (X @ T), 0.5 * (T @ Y)
    res = _fro_stack(I - Y @ X, xp)
    r = xp.sqrt(s)
    return GroupRoots(_sym(X, xp) * r, _sym(Y, xp) / r, res)


def batched_newton_schulz(A, num_iters: int) -> GroupRoots:
    """A fixed number of coupled Newton-Schulz steps on each matrix of a stack, both outputs rescaled.

    References:
      MBAG Eq. (5) and Sec. IV-B (Frobenius normalisation); Higham, Functions of Matrices, Eq. (6.35); errata 6;
      the same iteration as ``linalg.newton_schulz(A, num_iters=..., on_fail="return")``, for stacks.

    On A' = A / s (s = ||A||_F per matrix): X_0 = A', Y_0 = I, T = 3I - Y X, X <- X T / 2, Y <- T Y / 2, then
    sqrt = sqrt(s) X_N -> A^{1/2} and inv_sqrt = Y_N / sqrt(s) -> A^{-1/2} (module docstring for the derivation and
    for where this differs from the paper's wording).

    Args:
      A: (..., tau, tau) symmetric positive definite matrices (not checked: the optimizers call this on their own
        statistics).
      num_iters: T_NS >= 1, run exactly (no early stop, no divergence guard: with the Frobenius normalisation every
        eigenvalue of A' lies in (0, 1], inside the convergence region, and the iterates stay bounded).

    Returns:
      :class:`GroupRoots`. Both outputs under-estimate their roots (Loewner) until converged; ``residual`` tells how
      far: the relative error of each eigen-component is |1 - z| with z^2 = q y^2 in (0, 1].
    """
    xp = validate.float_array(A, "A")
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"A: expected a stack of square matrices, got shape {tuple(A.shape)}")
    num_iters = validate.positive_int(num_iters, "num_iters")
    return _ns(A, num_iters, xp)


def _eigh_power(A, p: float, shift, xp, what: str):
    """A^p (or (A + shift I)^p) for a stack of symmetric PSD A by one batched eigh; rounding negatives clipped."""
    w, V = _eigh(_sym(A, xp), xp)
    tau = A.shape[-1]
    lam_max = xp.max(xp.abs(w), axis=-1)
    tol = validate.zero_tolerance(lam_max, n=tau, dtype=A.dtype)  # the numerical-rank rule, one tau per group
    if bool(xp.any(w[..., 0] < -tol)):
        worst = float(xp.min(w[..., 0] / xp.where(lam_max > 0, lam_max, xp.ones_like(lam_max))))
        raise ValueError(f"{what}: a group's statistic is not positive semi-definite (lambda_min / lambda_max = "
                         f"{worst:.3g}); in float32 this happens once kappa(G) nears 1/(tau u): use float64 or a "
                         f"larger lam")
    w = xp.where(w > 0, w, xp.zeros_like(w))
    if shift is not None:
        w = w + shift[..., None]
    if p < 0 and not bool(xp.all(w > (tol[..., None] if shift is None else 0))):
        raise ValueError(f"{what}: a group's statistic is singular (damping underflowed to 0); set damping_floor > 0")
    f = w ** p
    return _sym((V * f[..., None, :]) @ xp.matrix_transpose(V), xp)


def _eigh(A, xp):
    # batched: backend.eigh sends stacks to xp.linalg.eigh, and turns a solver failure into its ValueError
    return backend.eigh(A)
