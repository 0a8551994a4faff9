"""MBAG, the Mini-Block Adaptive Gradient method, and its variants MBAG-EMA and MBAG-N.

References:
  J. Lee, "MBAG: A Scalable Mini-Block Adaptive Gradient Method for Deep Neural Networks" (shared/papers/mbag.md):
  Eqs. (2)-(6), Alg. 1 (MBAG), Alg. 2 (MBAG-EMA), Sec. IV-B (Newton-Schulz, MBAG-N), Sec. IV-C (grouping);
  Higham, *Functions of Matrices* (2008), Eq. (6.35) (coupled Newton-Schulz); errata 5, 6, 15, 28, 29.
  No public implementation exists: every convention the paper leaves open is chosen here and stated below.

The paper's names, once. theta is the parameter, g_t its stochastic gradient, split into groups pi_i of tau
parameters each (``group``); for each group, independently (the block-diagonal approximation, Eq. (6)):
    G_t = G_{t-1} + g_t g_t^T,  G_0 = lambda I                         (Eq. 2, the statistic; lambda = ``lam``)
    H_t = G_t^{-1} = H_{t-1} - H g g^T H / (1 + g^T H g),  H_0 = I/lambda (Eq. 4, Sherman-Morrison)
    R_t = H_t^{1/2} = G_t^{-1/2}  refreshed when t = 0 mod T_sqr by T_NS Newton-Schulz steps, else R_{t-1}
    v_t = beta v_{t-1} + R_t g_t,  theta_t = theta_{t-1} - eta v_t    (Alg. 1, lines 6-12; v is the direction)
MBAG-EMA (Alg. 2) keeps G_t = alpha G_{t-1} + (1 - alpha) g g^T (G_0 = lambda I, never inverted) and takes
R_t = G_t^{-1/2} from Newton-Schulz with input G. MBAG-N preconditions with G^{-1} itself: v_t = beta v + H_t g_t.

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

Conventions the paper leaves open (errata 28, 29), our choices:
  * the root used before the first refresh (T_sqr > 1) is the root of the initial statistic, H_0^{1/2} = I / sqrt(lam);
  * MBAG-N has no root to amortise: it uses the exact H_t (Sherman-Morrison, every step) on every step;
  * MBAG-EMA's damping alpha^t lambda decays, and after a few hundred steps G_t is numerically singular in directions
    no recent gradient touched. We FLOOR it: the root is taken of G_t + max(0, f_t - alpha^t lambda) I, i.e. the
    damping is max(alpha^t lambda, f_t). ``damping_floor=None`` (default) sets f_t = 16 tau u ||G_t||_F per group
    (u the unit roundoff of the dtype), the smallest damping that keeps G numerically positive definite; it changes
    nothing while alpha^t lambda is above it. A float sets an absolute floor; 0.0 runs Alg. 2 exactly and emits a
    RuntimeWarning whenever the damping falls below tau u ||G_t||_F (G numerically singular). The state keeps the
    paper's G_t (the floor is added at the root only). With T_sqr = 1 and beta = 0 the direction is bounded whatever
    the damping: G_t >= (1 - alpha) g g^T gives ||G_t^{-1/2} g_t|| <= 1 / sqrt(1 - alpha). With T_sqr > 1 the root is
    stale, and a direction silent for many steps, then excited between refreshes, is amplified by up to
    damping^{-1/2} (1e7 ||G||^{-1/2} under the automatic floor in float64): set an absolute damping_floor f to bound
    every root by f^{-1/2}.
  * weight decay is not part of the paper's MBAG: compose with ``transforms.weight_decay``; ``params`` is unused.

Registered ids and module-level :class:`~krad_ref.algorithm.Algorithm` records: "mbag" (:data:`mbag`), "mbag_ema"
(:data:`mbag_ema`), "mbag_n" (:data:`mbag_n`). A single group with exact roots, beta = 0, T_sqr = 1 and lam = delta
is full-matrix AdaGrad in the (delta I + sum g g^T)^{-1/2} form (``adagrad.AdagradFullConfig(form="kradagrad")``),
not Duchi's (delta I + (sum g g^T)^{1/2})^{-1} of the paper's introduction (errata 5); the vec conventions differ
(row-major here, column-major there) but a matrix function commutes with the permutation, so the directions agree
entry for entry as arrays of the parameter's shape.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

from . import algorithm, backend, validate
from .algorithm import Algorithm, register

__all__ = [
    "layout", "group_size", "group", "ungroup",
    "sherman_morrison", "GroupRoots", "batched_newton_schulz", "ema_damping",
    "MbagConfig", "MbagState", "mbag_init", "mbag_update", "mbag",
    "MbagEmaConfig", "MbagEmaState", "mbag_ema_init", "mbag_ema_update", "mbag_ema",
    "MbagNConfig", "MbagNState", "mbag_n_init", "mbag_n_update", "mbag_n",
    "ROOT_METHODS", "REMAINDERS", "AUTO_FLOOR_FACTOR",
]

Array = Any

ROOT_METHODS = ("newton_schulz", "eigh")
REMAINDERS = ("error", "pad")

#: ``damping_floor=None`` floors MBAG-EMA's damping at AUTO_FLOOR_FACTOR * tau * u * ||G||_F per group: a product of
#: tau-term inner products carries ~ tau u ||G|| of rounding (Higham Sec. 3.1), so a damping 16x above it keeps the
#: computed G positive definite with a margin.
AUTO_FLOOR_FACTOR = 16.0


# ---------------------------------------------------------------------------------------------------------
# grouping (Sec. IV-C)

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


# ---------------------------------------------------------------------------------------------------------
# Sherman-Morrison (Eq. 4) and batched roots

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


# ---------------------------------------------------------------------------------------------------------
# shared pieces of the three optimizers

def _check_common(cfg) -> None:
    validate.real_scalar(cfg.lam, "lam", low=0.0, low_open=True)
    validate.real_scalar(cfg.beta, "beta", low=0.0, high=1.0, high_open=True)
    _check_tau(cfg.tau)
    validate.one_of(cfg.remainder, "remainder", REMAINDERS)


def _check_root_fields(cfg) -> None:
    validate.positive_int(cfg.T_sqr, "T_sqr")
    validate.positive_int(cfg.T_NS, "T_NS")
    validate.one_of(cfg.root_method, "root_method", ROOT_METHODS)


def _init_arrays(shape_or_array, config, dtype, xp, diag: float):
    """(creation, layout, stack of diag * I, zero momentum, template)."""
    c = algorithm.creation(shape_or_array, dtype, xp)
    g, tau, _ = layout(c.shape, config.tau, config.remainder)
    xp, dev, dt = c.xp, c.device, c.dtype
    stack = xp.zeros((g, tau, tau), dtype=dt, device=dev) + diag * xp.eye(tau, dtype=dt, device=dev)
    v = xp.zeros((g, tau), dtype=dt, device=dev)
    template = xp.zeros((0, *c.shape), dtype=dt, device=dev)
    count = xp.asarray(0, dtype=xp.int32, device=dev)
    return c, (g, tau), stack, v, template, count


def _check_state(grad, state, config, State, Config, mats: tuple[str, ...]):
    """Validate an update's inputs (the state through ``algorithm.check_state``); return (xp, shape, (g, tau))."""
    algorithm.check_types(state, config, State, Config)
    like = state.template
    shape = tuple(like.shape[1:])
    xp = algorithm.check_grad(grad, like, shape=shape, dtype=like.dtype, like_name="state.template")
    g, tau, _ = layout(shape, config.tau, config.remainder)
    dt = grad.dtype
    expected = {"count": ((), xp.int32), "v": ((g, tau), dt), "residual": ((g,), dt), "template": ((0, *shape), dt)}
    expected.update({name: ((g, tau, tau), dt) for name in mats})
    algorithm.check_state(state, expected, grad, xp)
    return xp, shape, (g, tau)


def _apply(R, gb):
    """R_i g_i for every group: (g, tau, tau) @ (g, tau) -> (g, tau)."""
    return (R @ gb[..., None])[..., 0]


def _momentum(v, pg, beta: float):
    return pg if beta == 0.0 else beta * v + pg


def _direction(v, shape, xp):
    # a copy: v goes into the new state, and an in-place step on the direction must not alias it
    return xp.asarray(ungroup(v, shape), copy=True)


def _next(count, xp):
    return xp.asarray(count + 1, dtype=xp.int32)


# ---------------------------------------------------------------------------------------------------------
# MBAG (Alg. 1)

@dataclass(frozen=True)
class MbagConfig:
    """MBAG hyperparameters (Alg. 1). Defaults: the paper's CIFAR-10 run (Sec. VI-A).

    References:
      MBAG Alg. 1, Eqs. (2)-(5), Sec. IV-C, Sec. VI (lambda = 0.01, beta = 0.9, T_sqr = 50, T_NS = 5, tau = 32 on
      CIFAR-10; lambda = 0.1, T_NS = 7 on the autoencoders).

    Args:
      lam: lambda > 0; G_0 = lambda I, H_0 = I / lambda (damping and initial inverse).
      beta: momentum in [0, 1); v_t = beta v_{t-1} + R_t g_t (no dampening, no bias correction).
      T_sqr: root refresh interval >= 1: the root is recomputed on steps t with t % T_sqr == 0 (t = 1, 2, ...);
        before the first refresh it is H_0^{1/2} = I / sqrt(lam) (errata 28).
      T_NS: Newton-Schulz iterations per refresh (fixed count, as the paper; errata 6 for its accuracy).
      tau: group size (None: structural, see :func:`group_size`; the paper ran 32 on fully-connected layers).
      remainder: ``"error"`` or ``"pad"`` when tau does not divide the parameter size (module docstring).
      root_method: ``"newton_schulz"`` (the paper: sqrt(||H||_F) X_N) or ``"eigh"`` (exact H^{1/2}).
    """

    lam: float = 0.01
    beta: float = 0.9
    T_sqr: int = 50
    T_NS: int = 5
    tau: int | None = None
    remainder: str = "error"
    root_method: str = "newton_schulz"

    def __post_init__(self):
        _check_common(self)
        _check_root_fields(self)


class MbagState(NamedTuple):
    """MBAG state (immutable); g groups of tau parameters (``layout``)."""

    count: Array     # shape (), int32: updates taken so far (t after an update)
    H: Array         # (g, tau, tau), param dtype: H_t = G_t^{-1} per group (Eq. 4), exactly symmetric
    root: Array      # (g, tau, tau), param dtype: R ~ H^{1/2} in use (last refresh; I/sqrt(lam) before the first)
    v: Array         # (g, tau), param dtype: momentum buffer v_t (grouped)
    residual: Array  # (g,), param dtype: ||I - Y X||_F of the last Newton-Schulz refresh (0: none yet, or eigh)
    template: Array  # (0, *param_shape), param dtype, no data: records the parameter shape and dtype


def mbag_init(shape_or_array, config: MbagConfig, *, dtype=None, xp=None) -> MbagState:
    """Initial MBAG state: H_0 = I / lam and root I / sqrt(lam) per group, v = 0, count 0.

    Args:
      shape_or_array: the parameter shape or the parameter (its namespace, device, dtype).
      config: :class:`MbagConfig`.
      dtype, xp: as ``algorithm.creation`` (default float64, NumPy).

    Returns:
      :class:`MbagState`. Memory 2 g tau^2 + g tau entries (g tau = N, rounded up with padding).

    Raises:
      ValueError: tau does not divide the size and remainder="error".
    """
    if not isinstance(config, MbagConfig):
        raise TypeError(f"config: expected MbagConfig, got {type(config).__name__}")
    c, (g, tau), H, v, template, count = _init_arrays(shape_or_array, config, dtype, xp, 1.0 / config.lam)
    xp = c.xp
    root = xp.zeros_like(H) + (1.0 / math.sqrt(config.lam)) * xp.eye(tau, dtype=c.dtype, device=c.device)
    return MbagState(count=count, H=H, root=root, v=v, residual=xp.zeros((g,), dtype=c.dtype, device=c.device),
                     template=template)


def _root_of_H(H, config, xp):
    if config.root_method == "eigh":
        return _eigh_power(H, 0.5, None, xp, "H"), xp.zeros(H.shape[:-2], dtype=H.dtype, device=backend.device(H))
    r = _ns(H, config.T_NS, xp)
    return r.sqrt, r.residual


def _sm_limit(config, grad, xp) -> float:
    # Sherman-Morrison (H g)(H g)^T / (1 + g^T H g) with H <= I / lam (H_t = (lam I + sum g g^T)^{-1}): entries
    # <= ||g||^2 / lam^2 and g^T H g <= ||g||^2 / lam, so ||g||^2 <= min(lam, lam^2) F keeps both finite
    return algorithm.overflow_limit(grad.dtype, xp, power=2, factor=min(config.lam, config.lam ** 2))


def _outer_limit(config, grad, xp) -> float:
    # MBAG-EMA's g g^T: entries <= ||g||^2
    return algorithm.overflow_limit(grad.dtype, xp, power=2)


@algorithm.overflow_guard(MbagConfig, _sm_limit, "the Sherman-Morrison term (H g)(H g)^T")
def mbag_update(grad, state: MbagState, config: MbagConfig, *, params=None):
    """One MBAG step (Alg. 1, lines 4-11): Sherman-Morrison update, root refresh every T_sqr steps, momentum.

    References:
      MBAG Alg. 1; Eq. (4) (H update); Eq. (5) + Sec. IV-B (root sqrt(||H||_F) X_N); Sec. IV-C (groups); errata 6, 28.

    Args:
      grad: gradient g_t, the parameter's shape and dtype, finite.
      state: :class:`MbagState` (never modified).
      config: :class:`MbagConfig` (the one the state was made with).
      params: unused (MBAG has no weight decay; compose with ``transforms.weight_decay``).

    Returns:
      ``(direction, new_state)``: direction = ungroup(v_t), v_t = beta v_{t-1} + R_t g_t; the caller steps
      theta <- theta - eta * direction.

    Numerical caveats:
      See :func:`sherman_morrison` (H accumulates ~ t tau u ||H_0|| of rounding) and the module docstring (a fixed
      T_NS under-estimates H^{1/2} in the directions of large gradients; ``state.residual`` says by how much).
    """
    xp, shape, _ = _check_state(grad, state, config, MbagState, MbagConfig, ("H", "root"))
    t = int(state.count) + 1
    gb = group(grad, config.tau, remainder=config.remainder)
    H = _sm(state.H, gb, xp)
    if t % config.T_sqr == 0:
        root, residual = _root_of_H(H, config, xp)
    else:
        root, residual = state.root, state.residual
    v = _momentum(state.v, _apply(root, gb), config.beta)
    new = MbagState(count=_next(state.count, xp), H=H, root=root, v=v, residual=residual, template=state.template)
    return _direction(v, shape, xp), new


mbag = register(Algorithm("mbag", MbagConfig, MbagState, mbag_init, mbag_update))


# ---------------------------------------------------------------------------------------------------------
# MBAG-EMA (Alg. 2)

@dataclass(frozen=True)
class MbagEmaConfig:
    """MBAG-EMA hyperparameters (Alg. 2): an exponential moving average of g g^T, rooted by Newton-Schulz on G.

    References:
      MBAG Alg. 2 and Sec. IV-B ("if X_0 is initialized to G, Y_t converges to G^{-1/2}"); errata 6, 28, 29.

    Args:
      lam, beta, T_sqr, T_NS, tau, remainder: as :class:`MbagConfig` (G_0 = lam I; root before the first refresh
        G_0^{-1/2} = I / sqrt(lam)).
      alpha: decay in [0, 1): G_t = alpha G_{t-1} + (1 - alpha) g g^T. The paper gives no value; 0.99 is our choice
        (PyTorch RMSprop's alpha).
      damping_floor: None (default): floor the decaying damping alpha^t lam at 16 tau u ||G_t||_F per group (keeps G
        numerically PD; changes nothing while alpha^t lam is larger). A float >= 0: that absolute floor; 0.0 is
        Alg. 2 exactly and warns (RuntimeWarning) when G becomes numerically singular (errata 29).
      root_method: ``"newton_schulz"`` (Y_N / sqrt(||G||_F), the correctly rescaled Alg. 2 output) or ``"eigh"``
        (exact G^{-1/2}).
    """

    lam: float = 0.01
    beta: float = 0.9
    alpha: float = 0.99
    T_sqr: int = 50
    T_NS: int = 5
    tau: int | None = None
    remainder: str = "error"
    root_method: str = "newton_schulz"
    damping_floor: float | None = None

    def __post_init__(self):
        _check_common(self)
        _check_root_fields(self)
        validate.real_scalar(self.alpha, "alpha", low=0.0, high=1.0, high_open=True)
        if self.damping_floor is not None:
            validate.real_scalar(self.damping_floor, "damping_floor", low=0.0)


class MbagEmaState(NamedTuple):
    """MBAG-EMA state (immutable)."""

    count: Array     # shape (), int32: updates taken so far
    G: Array         # (g, tau, tau), param dtype: G_t = alpha G_{t-1} + (1 - alpha) g g^T, G_0 = lam I (no floor in it)
    root: Array      # (g, tau, tau), param dtype: R ~ (G + floor)^{-1/2} from the last refresh (I/sqrt(lam) before)
    v: Array         # (g, tau), param dtype: momentum buffer (grouped)
    residual: Array  # (g,), param dtype: ||I - Y X||_F of the last Newton-Schulz refresh (0: none yet, or eigh)
    template: Array  # (0, *param_shape), param dtype, no data


def mbag_ema_init(shape_or_array, config: MbagEmaConfig, *, dtype=None, xp=None) -> MbagEmaState:
    """Initial MBAG-EMA state: G_0 = lam I, root I / sqrt(lam), v = 0, count 0 (arguments as :func:`mbag_init`)."""
    if not isinstance(config, MbagEmaConfig):
        raise TypeError(f"config: expected MbagEmaConfig, got {type(config).__name__}")
    c, (g, tau), G, v, template, count = _init_arrays(shape_or_array, config, dtype, xp, config.lam)
    xp = c.xp
    root = xp.zeros_like(G) + (1.0 / math.sqrt(config.lam)) * xp.eye(tau, dtype=c.dtype, device=c.device)
    return MbagEmaState(count=count, G=G, root=root, v=v, residual=xp.zeros((g,), dtype=c.dtype, device=c.device),
                        template=template)


def ema_damping(t: int, config: MbagEmaConfig, G, xp=None):
    """The damping of step t's root, per group: max(alpha^t lam, floor), and the extra max(0, floor - alpha^t lam).

    References:
      MBAG Alg. 2 (G_0 = lam I, so G_t = alpha^t lam I + (1 - alpha) sum alpha^(t-i) g_i g_i^T); errata 29.

    Args:
      t: step number (>= 0).
      config: :class:`MbagEmaConfig`.
      G: (g, tau, tau) statistic G_t.

    Returns:
      ``(damping, extra)``, two (g,) arrays of G's dtype; the root is taken of G + extra I.
    """
    xp = backend.namespace(G) if xp is None else xp
    tau = G.shape[-1]
    paper = config.alpha ** t * config.lam  # Python float64; underflows to 0.0 gracefully
    if config.damping_floor is None:
        floor = AUTO_FLOOR_FACTOR * tau * backend.unit_roundoff(G.dtype) * _fro_stack(G, xp)
    else:
        floor = xp.full(G.shape[:-2], config.damping_floor, dtype=G.dtype, device=backend.device(G))
    extra = xp.maximum(floor - paper, xp.zeros_like(floor))
    return paper + extra, extra


@algorithm.overflow_guard(MbagEmaConfig, _outer_limit, "the statistic g g^T")
def mbag_ema_update(grad, state: MbagEmaState, config: MbagEmaConfig, *, params=None):
    """One MBAG-EMA step (Alg. 2, lines 4-11): EMA statistic, root of G every T_sqr steps, momentum.

    References:
      MBAG Alg. 2; Sec. IV-B (X_0 = G; rescaling derived in the module docstring: R = Y_N / sqrt(||G||_F));
      errata 6, 28, 29.

    Args:
      grad: gradient g_t (the parameter's shape and dtype, finite).
      state: :class:`MbagEmaState` (never modified).
      config: :class:`MbagEmaConfig`.
      params: unused.

    Returns:
      ``(direction, new_state)``, direction = ungroup(v_t), v_t = beta v_{t-1} + R_t g_t.

    Warns:
      RuntimeWarning: with an explicit ``damping_floor`` below tau u ||G_t||_F on a refresh step (G numerically
      singular: its computed inverse root in untouched directions is rounding noise scaled by damping^{-1/2}).

    Raises:
      ValueError: ``root_method="eigh"`` and the damping is exactly 0 (alpha^t lam underflowed, damping_floor=0).
    """
    xp, shape, (g, tau) = _check_state(grad, state, config, MbagEmaState, MbagEmaConfig, ("G", "root"))
    t = int(state.count) + 1
    gb = group(grad, config.tau, remainder=config.remainder)
    a = config.alpha
    # alpha G and (1 - alpha) g_i g_j are each exactly symmetric, so G stays exactly symmetric
    G = a * state.G + (1.0 - a) * _outer(gb, gb)
    if t % config.T_sqr == 0:
        damping, extra = ema_damping(t, config, G, xp)
        if config.damping_floor is not None:
            level = validate.zero_tolerance(_fro_stack(G, xp), n=tau, dtype=G.dtype)  # below: numerically singular
            if bool(xp.any(damping < level)):
                warnings.warn(
                    f"mbag_ema: step {t}: damping max(alpha^t lam, damping_floor) = "
                    f"max({config.alpha ** t * config.lam:.3g}, {config.damping_floor:.3g}) is below 4 tau u ||G||_F in "
                    f"some group: G is numerically singular and its inverse root is unreliable there (errata 29); use "
                    f"damping_floor=None or a larger floor",
                    RuntimeWarning, stacklevel=2)
        if config.root_method == "eigh":
            root = _eigh_power(G, -0.5, extra, xp, "G")
            residual = xp.zeros((g,), dtype=G.dtype, device=backend.device(G))
        else:
            I = xp.eye(tau, dtype=G.dtype, device=backend.device(G))
            r = _ns(G + extra[:, None, None] * I, config.T_NS, xp)
            root, residual = r.inv_sqrt, r.residual
    else:
        root, residual = state.root, state.residual
    v = _momentum(state.v, _apply(root, gb), config.beta)
    new = MbagEmaState(count=_next(state.count, xp), G=G, root=root, v=v, residual=residual, template=state.template)
    return _direction(v, shape, xp), new


mbag_ema = register(Algorithm("mbag_ema", MbagEmaConfig, MbagEmaState, mbag_ema_init, mbag_ema_update))


# ---------------------------------------------------------------------------------------------------------
# MBAG-N (precondition with G^{-1})

@dataclass(frozen=True)
class MbagNConfig:
    """MBAG-N hyperparameters: MBAG preconditioning with H = G^{-1} itself (no root).

    References:
      MBAG Sec. IV-B (last sentence) and Sec. VI (Table I, Fig. 3: "MBAG-N").

    Args:
      lam, beta, tau, remainder: as :class:`MbagConfig`. There is no root, hence no T_sqr / T_NS: the exact H_t
        from Eq. (4) is used on every step (the paper does not state MBAG-N's schedule; errata 28).
    """

    lam: float = 0.01
    beta: float = 0.9
    tau: int | None = None
    remainder: str = "error"

    def __post_init__(self):
        _check_common(self)


class MbagNState(NamedTuple):
    """MBAG-N state (immutable)."""

    count: Array     # shape (), int32: updates taken so far
    H: Array         # (g, tau, tau), param dtype: H_t = G_t^{-1} per group (Eq. 4)
    v: Array         # (g, tau), param dtype: momentum buffer (grouped)
    template: Array  # (0, *param_shape), param dtype, no data


def mbag_n_init(shape_or_array, config: MbagNConfig, *, dtype=None, xp=None) -> MbagNState:
    """Initial MBAG-N state: H_0 = I / lam per group, v = 0, count 0 (arguments as :func:`mbag_init`)."""
    if not isinstance(config, MbagNConfig):
        raise TypeError(f"config: expected MbagNConfig, got {type(config).__name__}")
    _, _, H, v, template, count = _init_arrays(shape_or_array, config, dtype, xp, 1.0 / config.lam)
    return MbagNState(count=count, H=H, v=v, template=template)


@algorithm.overflow_guard(MbagNConfig, _sm_limit, "the Sherman-Morrison term (H g)(H g)^T")
def mbag_n_update(grad, state: MbagNState, config: MbagNConfig, *, params=None):
    """One MBAG-N step: H_t by Eq. (4), v_t = beta v_{t-1} + H_t g_t.

    References:
      MBAG Sec. IV-B ("preconditions the gradient just with G^{-1}"), Eq. (4), Alg. 1 lines 11-12.

    Returns:
      ``(direction, new_state)``. H_t g_t = H_{t-1} g_t / (1 + g_t^T H_{t-1} g_t) exactly (Sherman-Morrison), so
      the step is bounded by ||H_0|| ||g|| = ||g|| / lam.
    """
    xp, shape, _ = _check_state(grad, state, config, MbagNState, MbagNConfig, ("H",))
    gb = group(grad, config.tau, remainder=config.remainder)
    H = _sm(state.H, gb, xp)
    v = _momentum(state.v, _apply(H, gb), config.beta)
    new = MbagNState(count=_next(state.count, xp), H=H, v=v, template=state.template)
    return _direction(v, shape, xp), new


mbag_n = register(Algorithm("mbag_n", MbagNConfig, MbagNState, mbag_n_init, mbag_n_update))
