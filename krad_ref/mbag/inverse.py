"""Computing the inverse of the preconditioner (Sec. IV-A, Eq. 4): Sherman-Morrison updates of H = G^{-1}, batched.

References:
  J. Lee, MBAG (shared/papers/mbag.md) Eqs. (2), (4) and Sec. IV-A; Sherman and Morrison (1950).

Per group, on a stack of shape (g, tau, tau):
    G_t = G_{t-1} + g_t g_t^T,  G_0 = lambda I                         (Eq. 2, the statistic; lambda = ``lam``)
    H_t = G_t^{-1} = H_{t-1} - H g g^T H / (1 + g^T H g),  H_0 = I/lambda (Eq. 4, Sherman-Morrison)
Also here: the float-range limit of a gradient for the Sherman-Morrison term, the overflow guard of MBAG and MBAG-N.
"""
from __future__ import annotations

from .. import algorithm, backend, validate


def _outer(a, b):
    return a[..., :, None] * b[..., None, :]


def _sm(H, g, xp):
    """Eq. (4) without validation; H (..., tau, tau), g (..., tau)."""
    u = (H @ g[..., None])[..., 0]                  # H g: tau-term inner products
    c = 1.0 + xp.sum(g * u, axis=-1)                # 1 + g^T H g >= 1 for PSD H
    # u u^T is exactly symmetric (u_i u_j = u_j u_i in floating point), so H stays exactly symmetric
    return H - _outer(u, u) / c[..., None, None]


def _max_abs(x, xp) -> float:
    return float(xp.max(xp.abs(x))) if x.size else 0.0


def sherman_morrison(H, g, *, check: bool = True):
    """Rank-one inverse update: (H^{-1} + g g^T)^{-1} = H - (H g)(H g)^T / (1 + g^T H g), for one or a stack.

    References:
      MBAG Eq. (4) (H_t = G_t^{-1} after G_t = G_{t-1} + g_t g_t^T); Sherman and Morrison (1950).

    Args:
      H: (..., tau, tau) symmetric positive (semi)definite matrices (MBAG: H_{t-1} = G_{t-1}^{-1} per group).
      g: (..., tau) vectors, same leading shape, namespace and dtype as H.
      check: verify finiteness, exact-enough symmetry (8 tau u max|H|) and 1 + g^T H g > 0.

    Returns:
      (..., tau, tau) array H_t, exactly symmetric when H is, in H's namespace and dtype. H and g are not modified.

    Numerical caveats:
      O(tau^2) per group. The subtraction cancels in the directions g excites: an eigenvalue 1/lambda of H drops to
      1/(lambda + |g|^2), so after t steps the computed H_t carries an absolute error ~ c t tau u ||H_0||_2, i.e. a
      relative error ~ c t tau u kappa(G_t) on its smallest eigenvalues. In float32 with kappa(G_t) >~ 1/(tau u)
      those eigenvalues have no correct digits and may even turn (slightly) negative: use float64 statistics or a
      larger lambda there.

    Raises:
      TypeError/ValueError: bad arrays (naming ``H`` or ``g``), or 1 + g^T H g <= 0 (H not PSD along g).
    """
    xp = validate.float_array(H, "H")
    validate.float_array(g, "g")
    try:
        backend.namespace(H, g)
    except TypeError:
        raise TypeError(f"g: array library {type(g).__module__} does not match H's {type(H).__module__}") from None
    if H.ndim < 2 or H.shape[-1] != H.shape[-2] or H.shape[-1] == 0:
        raise ValueError(f"H: expected a stack of square matrices (..., tau, tau), got shape {tuple(H.shape)}")
    if tuple(g.shape) != tuple(H.shape[:-1]):
        raise ValueError(f"g: expected shape {tuple(H.shape[:-1])} to match H {tuple(H.shape)}, got {tuple(g.shape)}")
    validate.same_dtype(H=H, g=g)
    if check:
        validate.finite(H, "H", xp=xp)
        validate.finite(g, "g", xp=xp)
        tau = H.shape[-1]
        tol = validate.SYM_TOL_FACTOR * tau * backend.unit_roundoff(H.dtype) * _max_abs(H, xp)
        asym = _max_abs(H - xp.matrix_transpose(H), xp)
        if asym > tol:
            raise ValueError(f"H: expected symmetric matrices, but max|H - H^T| = {asym:.3g} > tol = {tol:.3g}")
        c = 1.0 + xp.sum(g * (H @ g[..., None])[..., 0], axis=-1)
        if not bool(xp.all(c > 0)):
            raise ValueError("H: 1 + g^T H g <= 0, so H is not positive semi-definite along g")
    return _sm(H, g, xp)


def _sm_limit(config, grad, xp) -> float:
    # Sherman-Morrison (H g)(H g)^T / (1 + g^T H g) with H <= I / lam (H_t = (lam I + sum g g^T)^{-1}): entries
    # <= ||g||^2 / lam^2 and g^T H g <= ||g||^2 / lam, so ||g||^2 <= min(lam, lam^2) F keeps both finite
    return algorithm.overflow_limit(grad.dtype, xp, power=2, factor=min(config.lam, config.lam ** 2))
