"""First-order baselines and full-matrix AdaGrad: the reference points of the KrADagrad family.

References:
  Mei, Moreno, Walters, "KrADagrad" (UAI 2023), Sec. 2.3 (full and diagonal AdaGrad) and Sec. 5 (SGD, Adam
  baselines); Duchi, Hazan, Singer, "Adaptive Subgradient Methods" (JMLR 2011); Kingma and Ba, "Adam" (ICLR 2015);
  PyTorch ``torch.optim.{Adagrad, Adam, SGD}`` and Optax ``adagrad`` / ``scale_by_adam`` for the conventions the
  papers leave open; errata 5, 16, 30.

The paper's names, once. g_k is the gradient (for a matrix or tensor parameter, g = vec(G), column-major as in
KrADagrad Sec. 2.1; ``linalg.vec``), the stacked history is G'_k = (g_k ... g_1) and delta = eps^2:
    full-matrix AdaGrad   (delta I + G'_k G'_k^T)^{-1/2} g_k       ("kradagrad" form, Sec. 2.3)
                          (delta I + (G'_k G'_k^T)^{1/2})^{-1} g_k  ("duchi" form, Duchi et al. 2011; errata 5)
    diagonal AdaGrad      (delta I + diag(G'_k G'_k^T))^{-1/2} g_k = g / sqrt(delta + v),  v = sum g^2.
On an eigenvalue lambda of H = G'G'^T the two full forms scale by (delta + lambda)^{-1/2} and 1 / (delta + sqrt(lambda)):
different for every delta > 0, equal only in the limit delta -> 0. MBAG with one group equals the "kradagrad" form
(errata 5); Shampoo on an order-1 parameter equals it with delta = eps (errata 4).

Registered ids and module-level :class:`~krad_ref.algorithm.Algorithm` records: "adagrad_full"
(:data:`adagrad_full`), "adagrad_diag" (:data:`adagrad_diag`), "adam" (:data:`adam`), "sgd" (:data:`sgd`).
Every update returns the direction only (no learning rate; the caller does W - lr * direction) and takes
``weight_decay`` as L2 added to the gradient (PyTorch's ``weight_decay``, not AdamW's decoupled form), which needs
``params`` (errata 16: a ValueError when weight_decay != 0 and params is None).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from . import algorithm, backend, linalg, validate
from .algorithm import Algorithm, register, shape_of

__all__ = [
    "AdagradFullConfig", "AdagradFullState", "adagrad_full_init", "adagrad_full_update", "adagrad_full",
    "AdagradDiagConfig", "AdagradDiagState", "adagrad_diag_init", "adagrad_diag_update", "adagrad_diag",
    "AdamConfig", "AdamState", "adam_init", "adam_update", "adam",
    "SgdConfig", "SgdState", "sgd_init", "sgd_update", "sgd",
    "FULL_FORMS", "EPS_PLACEMENTS",
]

Array = Any

FULL_FORMS = ("kradagrad", "duchi")
EPS_PLACEMENTS = ("inside", "outside")


# ---------------------------------------------------------------------------------------------------------
# shared helpers: creation from shape_or_array, gradient and weight-decay checks, column-major vec of tensors

def _with_weight_decay(grad, params, weight_decay: float, xp):
    """g + lambda W (L2 in the gradient); errata 16: W is required when lambda != 0."""
    if weight_decay == 0.0:
        return grad
    if params is None:
        raise ValueError(f"params: weight_decay = {weight_decay:g} needs the parameters W (errata 16); "
                         f"pass update(..., params=W)")
    validate.float_array(params, "params")
    try:
        backend.namespace(grad, params)
    except TypeError:
        raise TypeError(f"params: array library {type(params).__module__} does not match grad's "
                        f"{type(grad).__module__}") from None
    validate.same_shape(grad=grad, params=params)
    validate.same_dtype(grad=grad, params=params)
    validate.finite(params, "params", xp=xp)
    return grad + weight_decay * params


def _flat(X, xp):
    """Column-major vec of an order-p array (``linalg.vec`` for matrices; vec(X)[i + j m] = X[i, j])."""
    if X.ndim == 2:
        return linalg.vec(X)
    if X.ndim <= 1:
        return xp.reshape(X, (-1,))
    return xp.reshape(xp.permute_dims(X, tuple(reversed(range(X.ndim)))), (-1,))


def _unflat(x, shape, xp):
    """Inverse of :func:`_flat`."""
    if len(shape) == 2:
        return linalg.unvec(x, shape[0], shape[1])
    if len(shape) <= 1:
        return xp.reshape(x, shape)
    rev = tuple(reversed(shape))
    return xp.permute_dims(xp.reshape(x, rev), tuple(reversed(range(len(shape)))))


def _next(count, xp):
    """count + 1 as a 0-d int32 array (NumPy's 0-d arithmetic returns a scalar; wrap it back)."""
    return xp.asarray(count + 1, dtype=xp.int32)


def _elementwise_spec(state, grad, xp) -> dict:
    """``algorithm.check_state``'s spec of a state of a step counter and arrays of the gradient's shape and dtype."""
    like = (tuple(grad.shape), grad.dtype)
    return {f: ((), xp.int32) if f == "count" else like for f in state._fields}


def _weight_decay_field(value) -> float:
    return validate.real_scalar(value, "weight_decay", low=0.0)


# ---------------------------------------------------------------------------------------------------------
# full-matrix AdaGrad

@dataclass(frozen=True)
class AdagradFullConfig:
    """Full-matrix AdaGrad hyperparameters.

    References:
      KrADagrad Sec. 2.3; Duchi et al. 2011 (full-matrix update); errata 5.

    Args:
      delta: > 0, the identity added to the statistic (delta = eps^2 in the paper's augmented G). The paper gives
        no value; 1e-6 matches :class:`krad_ref.shampoo.Config`'s eps, so the two agree on vectors by default.
      form: "kradagrad" = (delta I + H)^{-1/2} g (Sec. 2.3, the form MBAG and Shampoo-on-vectors reduce to);
        "duchi" = (delta I + H^{1/2})^{-1} g (Duchi et al.'s). H = sum g g^T.
      weight_decay: lambda >= 0, g <- g + lambda W before the statistic (needs params).
    """

    delta: float = 1e-6
    form: str = "kradagrad"
    weight_decay: float = 0.0

    def __post_init__(self):
        validate.real_scalar(self.delta, "delta", low=0.0, low_open=True)
        validate.one_of(self.form, "form", FULL_FORMS)
        _weight_decay_field(self.weight_decay)


class AdagradFullState(NamedTuple):
    """Full-matrix AdaGrad state (immutable)."""

    count: Array     # shape (), int32: updates taken so far
    H: Array         # (N, N), grad dtype, N = prod(shape): sum_i g_i g_i^T, g = vec(G) column-major (delta not in)
    template: Array  # shape (0, *param_shape), grad dtype, no data: records shape and dtype for checks


def adagrad_full_init(shape_or_array, config: AdagradFullConfig, *, dtype=None, xp=None) -> AdagradFullState:
    """Initial full-matrix AdaGrad state: H = 0 (N x N), count 0.

    Args:
      shape_or_array: parameter shape (any order; N = product of the sizes) or the parameter.
      config: an :class:`AdagradFullConfig`.
      dtype, xp: as :func:`krad_ref.shampoo.init`.

    Returns:
      :class:`AdagradFullState`. Memory O(N^2): meant for small parameters and bridges.
    """
    if not isinstance(config, AdagradFullConfig):
        raise TypeError(f"config: expected AdagradFullConfig, got {type(config).__name__}")
    shape, dtype, dev, xp = algorithm.creation(shape_or_array, dtype, xp)
    N = math.prod(shape)
    return AdagradFullState(
        count=xp.asarray(0, dtype=xp.int32, device=dev),
        H=xp.zeros((N, N), dtype=dtype, device=dev),
        template=xp.zeros((0, *shape), dtype=dtype, device=dev),
    )


def _squares_limit(config, grad, xp) -> float:
    # g g^T (full), g^2 (diagonal, Adam): every entry <= ||g||_2^2, so ||grad||_F <= sqrt(F) keeps them finite
    return algorithm.overflow_limit(grad.dtype, xp, power=2)


def _sgd_limit(config, grad, xp) -> float:
    # the direction d + mu b on a fresh buffer (b_1 = d): entries <= (1 + mu) ||grad||_F
    return algorithm.overflow_limit(grad.dtype, xp, power=1, factor=1.0 / (1.0 + config.momentum))


@algorithm.overflow_guard(AdagradFullConfig, _squares_limit, "the statistic g g^T")
def adagrad_full_update(grad, state: AdagradFullState, config: AdagradFullConfig, *, params=None):
    """One full-matrix AdaGrad step on g = vec(G): H <- H + g g^T, direction unvec(P g).

    References:
      KrADagrad Sec. 2.3: w <- w - lr (delta I + G' G'^T)^{-1/2} g ("kradagrad" form); Duchi et al. 2011, Sec. 1:
      (delta I + (G' G'^T)^{1/2})^{-1} g ("duchi" form); errata 4, 5.

    Args:
      grad: gradient, the state's shape and dtype, finite.
      state: :class:`AdagradFullState` (never modified).
      config: :class:`AdagradFullConfig`.
      params: the parameters W (same shape/dtype), required when weight_decay != 0.

    Returns:
      ``(direction, new_state)``, direction of the grad's shape and dtype.

    Numerical caveats:
      "kradagrad": ``linalg.psd_power(H, -1/2, eps=delta)``, i.e. delta added to the eigenvalues of H after
      rounding negatives are clipped; relative error ~ N u kappa / 2 with kappa = (lambda_max(H) + delta) / delta.
      "duchi": V diag(1 / (delta + sqrt(max(lambda, 0)))) V^T from one eigh of H, error ~ N u kappa_duchi.
      The same computation as Shampoo on an order-1 parameter with eps = delta ("paper" variant), so the two agree
      to the rounding of the final matrix-vector product (errata 4).
    """
    algorithm.check_types(state, config, AdagradFullState, AdagradFullConfig)
    like = state.template
    shape = tuple(like.shape[1:])
    xp = algorithm.check_grad(grad, like, shape=shape, dtype=like.dtype, like_name="state.template")
    N = math.prod(shape)
    expected = {"count": ((), xp.int32), "H": ((N, N), grad.dtype), "template": ((0, *shape), grad.dtype)}
    algorithm.check_state(state, expected, grad, xp)
    g = _flat(_with_weight_decay(grad, params, config.weight_decay, xp), xp)
    H = state.H + g[:, None] * g[None, :]  # outer product: each entry one rounded product, exactly symmetric
    algorithm.check_finite_arrays([("state.H", H)])  # accumulated past F: say so before the root sees it
    if config.form == "kradagrad":
        P = linalg.psd_power(H, -0.5, eps=config.delta, eps_mode="absolute")
    else:
        w, V = backend.eigh(H)
        w = xp.where(w > 0, w, xp.zeros_like(w))  # rounding negatives of the PSD H are 0
        P = (V * (1.0 / (config.delta + xp.sqrt(w)))) @ xp.matrix_transpose(V)
    direction = _unflat(P @ g, shape, xp)
    return direction, AdagradFullState(count=_next(state.count, xp), H=H, template=like)


adagrad_full = register(Algorithm("adagrad_full", AdagradFullConfig, AdagradFullState, adagrad_full_init,
                                  adagrad_full_update))


# ---------------------------------------------------------------------------------------------------------
# diagonal AdaGrad

@dataclass(frozen=True)
class AdagradDiagConfig:
    """Diagonal AdaGrad hyperparameters; the libraries disagree on where eps goes (errata 30).

    References:
      KrADagrad Sec. 2.3 (diagonal form); PyTorch ``torch.optim.Adagrad`` (g / (sqrt(v) + eps), v_0 = 0,
      eps = 1e-10); Optax ``adagrad`` / ``scale_by_rss`` (g / sqrt(v + eps), v_0 = 0.1, eps = 1e-7).

    Args:
      eps: >= 0. With "inside" it is the paper's delta. Default 1e-6, as ``AdagradFullConfig.delta``.
      eps_placement: "inside" = g / sqrt(v + eps) (the paper's (delta I + diag)^{-1/2}, and Optax's);
        "outside" = g / (sqrt(v) + eps) (PyTorch's; the diagonal of Duchi's full form).
      initial_accumulator: v_0 >= 0 (paper and PyTorch 0; Optax 0.1). Check which one the authors you compare
        with used: EGOP's convex experiments used Optax's form (errata 30).
      weight_decay: lambda >= 0, g <- g + lambda W before accumulating (PyTorch's order; needs params).
    """

    eps: float = 1e-6
    eps_placement: str = "inside"
    initial_accumulator: float = 0.0
    weight_decay: float = 0.0

    def __post_init__(self):
        validate.real_scalar(self.eps, "eps", low=0.0)
        validate.one_of(self.eps_placement, "eps_placement", EPS_PLACEMENTS)
        validate.real_scalar(self.initial_accumulator, "initial_accumulator", low=0.0)
        _weight_decay_field(self.weight_decay)


class AdagradDiagState(NamedTuple):
    """Diagonal AdaGrad state (immutable)."""

    count: Array  # shape (), int32: updates taken so far
    v: Array      # parameter shape, grad dtype: initial_accumulator + sum_i g_i^2 (elementwise)


def adagrad_diag_init(shape_or_array, config: AdagradDiagConfig, *, dtype=None, xp=None) -> AdagradDiagState:
    """Initial diagonal AdaGrad state: v = initial_accumulator everywhere, count 0."""
    if not isinstance(config, AdagradDiagConfig):
        raise TypeError(f"config: expected AdagradDiagConfig, got {type(config).__name__}")
    shape, dtype, dev, xp = algorithm.creation(shape_or_array, dtype, xp)
    return AdagradDiagState(count=xp.asarray(0, dtype=xp.int32, device=dev),
                            v=xp.full(shape, config.initial_accumulator, dtype=dtype, device=dev))


@algorithm.overflow_guard(AdagradDiagConfig, _squares_limit, "the accumulator g^2")
def adagrad_diag_update(grad, state: AdagradDiagState, config: AdagradDiagConfig, *, params=None):
    """One diagonal AdaGrad step: v <- v + g^2, direction g / sqrt(v + eps) or g / (sqrt(v) + eps).

    References:
      KrADagrad Sec. 2.3: (delta I + diag(G' G'^T))^{-1/2} g; PyTorch / Optax placements (errata 30).

    Args:
      grad: gradient of the state's shape and dtype, finite.
      state, config: :class:`AdagradDiagState`, :class:`AdagradDiagConfig`.
      params: W, required when weight_decay != 0.

    Returns:
      ``(direction, new_state)``. Where the denominator is 0 (eps = 0 and v = 0, hence g = 0 there) the direction
      is 0, as Optax's ``where(v > 0, ..., 0)``; elementwise, relative error a few u.
    """
    algorithm.check_types(state, config, AdagradDiagState, AdagradDiagConfig)
    xp = algorithm.check_grad(grad, state.v, like_name="state.v")
    algorithm.check_state(state, _elementwise_spec(state, grad, xp), grad, xp)
    g = _with_weight_decay(grad, params, config.weight_decay, xp)
    v = state.v + g * g
    if config.eps_placement == "inside":
        denom = xp.sqrt(v + config.eps)
    else:
        denom = xp.sqrt(v) + config.eps
    positive = denom > 0
    direction = xp.where(positive, g / xp.where(positive, denom, xp.ones_like(denom)), xp.zeros_like(g))
    return direction, AdagradDiagState(count=_next(state.count, xp), v=v)


adagrad_diag = register(Algorithm("adagrad_diag", AdagradDiagConfig, AdagradDiagState, adagrad_diag_init,
                                  adagrad_diag_update))


# ---------------------------------------------------------------------------------------------------------
# Adam

@dataclass(frozen=True)
class AdamConfig:
    """Adam hyperparameters, PyTorch's and Optax's defaults.

    References:
      Kingma and Ba 2015, Alg. 1; ``torch.optim.Adam`` (betas (0.9, 0.999), eps 1e-8); ``optax.scale_by_adam``
      (same, plus eps_root = 0).

    Args:
      b1, b2: moment decays in [0, 1).
      eps: >= 0, added OUTSIDE the root after bias correction: m_hat / (sqrt(v_hat) + eps). PyTorch and Optax
        both do this (PyTorch as sqrt(v) / sqrt(1 - b2^t) + eps). Kingma and Ba's "efficient" form adds eps to
        sqrt(v) before the correction (eps_hat = eps sqrt(1 - b2^t)); not offered.
      eps_root: >= 0, Optax's eps inside the root: m_hat / (sqrt(v_hat + eps_root) + eps).
      weight_decay: lambda >= 0, L2 added to the gradient (torch.optim.Adam's weight_decay, not AdamW).
    """

    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8
    eps_root: float = 0.0
    weight_decay: float = 0.0

    def __post_init__(self):
        validate.real_scalar(self.b1, "b1", low=0.0, high=1.0, high_open=True)
        validate.real_scalar(self.b2, "b2", low=0.0, high=1.0, high_open=True)
        validate.real_scalar(self.eps, "eps", low=0.0)
        validate.real_scalar(self.eps_root, "eps_root", low=0.0)
        _weight_decay_field(self.weight_decay)


class AdamState(NamedTuple):
    """Adam state (immutable)."""

    count: Array  # shape (), int32: updates taken so far (t after an update)
    m: Array      # parameter shape, grad dtype: first moment, b1 m + (1 - b1) g (no bias correction)
    v: Array      # parameter shape, grad dtype: second moment, b2 v + (1 - b2) g^2 (no bias correction)


def adam_init(shape_or_array, config: AdamConfig, *, dtype=None, xp=None) -> AdamState:
    """Initial Adam state: m = v = 0, count 0."""
    if not isinstance(config, AdamConfig):
        raise TypeError(f"config: expected AdamConfig, got {type(config).__name__}")
    shape, dtype, dev, xp = algorithm.creation(shape_or_array, dtype, xp)
    return AdamState(count=xp.asarray(0, dtype=xp.int32, device=dev),
                     m=xp.zeros(shape, dtype=dtype, device=dev), v=xp.zeros(shape, dtype=dtype, device=dev))


@algorithm.overflow_guard(AdamConfig, _squares_limit, "the second moment g^2")
def adam_update(grad, state: AdamState, config: AdamConfig, *, params=None):
    """One Adam step: moments, bias correction, m_hat / (sqrt(v_hat + eps_root) + eps).

    References:
      Kingma and Ba 2015, Alg. 1; PyTorch / Optax eps placement (see :class:`AdamConfig`).

    Args:
      grad: gradient of the state's shape and dtype, finite.
      state, config: :class:`AdamState`, :class:`AdamConfig`.
      params: W, required when weight_decay != 0.

    Returns:
      ``(direction, new_state)``. Step 1: m_hat = g, v_hat = g^2, so direction = g / (|g| + eps) (sign-like,
      up to a few u of rounding in the moments and corrections).
    """
    algorithm.check_types(state, config, AdamState, AdamConfig)
    xp = algorithm.check_grad(grad, state.m, like_name="state.m")
    algorithm.check_state(state, _elementwise_spec(state, grad, xp), grad, xp)
    g = _with_weight_decay(grad, params, config.weight_decay, xp)
    b1, b2 = config.b1, config.b2
    m = b1 * state.m + (1.0 - b1) * g
    v = b2 * state.v + (1.0 - b2) * (g * g)
    count = _next(state.count, xp)
    # bias corrections 1 - b^t in float64 on the array's device, then cast: in float32, 1 - 0.999^t loses
    # ~ t u / (1 - 0.999^t) relative (1e-4 at t = 1) if the power is taken in the low precision
    t = xp.astype(count, xp.float64)
    bc1 = xp.astype(1.0 - b1 ** t, grad.dtype)
    bc2 = xp.astype(1.0 - b2 ** t, grad.dtype)
    m_hat = m / bc1
    v_hat = v / bc2
    denom = (xp.sqrt(v_hat + config.eps_root) if config.eps_root else xp.sqrt(v_hat)) + config.eps
    positive = denom > 0
    direction = xp.where(positive, m_hat / xp.where(positive, denom, xp.ones_like(denom)), xp.zeros_like(g))
    return direction, AdamState(count=count, m=m, v=v)


adam = register(Algorithm("adam", AdamConfig, AdamState, adam_init, adam_update))


# ---------------------------------------------------------------------------------------------------------
# SGD with momentum

@dataclass(frozen=True)
class SgdConfig:
    """SGD with (heavy-ball or Nesterov) momentum, PyTorch's formula.

    References:
      ``torch.optim.SGD`` (Sutskever et al. 2013 form): b_1 = d_1, b_t = mu b_{t-1} + (1 - dampening) d_t,
      direction b_t, or d_t + mu b_t with nesterov; d_t = g_t + lambda W_t.

    Args:
      momentum: mu >= 0; 0 = plain SGD (direction = g + lambda W).
      dampening: in [0, 1]; PyTorch's dampening (default 0). Not applied to the first step (b_1 = d_1).
      nesterov: PyTorch's Nesterov (needs mu > 0 and dampening 0). NOT the in-place "Nesterov" of the Shampoo
        code (M_k = mu^2 M_{k-1} + (1 + mu) U_k, notes Sec. 2); that lives in ``krad_ref.transforms``.
      weight_decay: lambda >= 0, L2 in the gradient (needs params).
    """

    momentum: float = 0.0
    dampening: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0

    def __post_init__(self):
        validate.real_scalar(self.momentum, "momentum", low=0.0)
        validate.real_scalar(self.dampening, "dampening", low=0.0, high=1.0)
        if not isinstance(self.nesterov, bool):
            raise TypeError(f"nesterov: expected a bool, got {type(self.nesterov).__name__}")
        if self.nesterov and (self.momentum == 0.0 or self.dampening != 0.0):
            raise ValueError("nesterov: needs momentum > 0 and dampening = 0 (as torch.optim.SGD)")
        _weight_decay_field(self.weight_decay)


class SgdState(NamedTuple):
    """SGD state (immutable)."""

    count: Array     # shape (), int32: updates taken so far
    momentum: Array  # parameter shape, grad dtype: the buffer b_t (zeros while momentum = 0)


def sgd_init(shape_or_array, config: SgdConfig, *, dtype=None, xp=None) -> SgdState:
    """Initial SGD state: zero momentum buffer, count 0."""
    if not isinstance(config, SgdConfig):
        raise TypeError(f"config: expected SgdConfig, got {type(config).__name__}")
    shape, dtype, dev, xp = algorithm.creation(shape_or_array, dtype, xp)
    return SgdState(count=xp.asarray(0, dtype=xp.int32, device=dev), momentum=xp.zeros(shape, dtype=dtype, device=dev))


@algorithm.overflow_guard(SgdConfig, _sgd_limit, "the direction d + momentum b")
def sgd_update(grad, state: SgdState, config: SgdConfig, *, params=None):
    """One SGD step: d = g + lambda W; with momentum b = mu b + (1 - dampening) d (b = d on the first step).

    References:
      ``torch.optim.SGD`` (see :class:`SgdConfig`); KrADagrad Sec. 5 baselines.

    Args:
      grad: gradient of the state's shape and dtype, finite.
      state, config: :class:`SgdState`, :class:`SgdConfig`.
      params: W, required when weight_decay != 0.

    Returns:
      ``(direction, new_state)``: d (a copy of g when mu = lambda = 0), b, or d + mu b (nesterov).
    """
    algorithm.check_types(state, config, SgdState, SgdConfig)
    xp = algorithm.check_grad(grad, state.momentum, like_name="state.momentum")
    algorithm.check_state(state, _elementwise_spec(state, grad, xp), grad, xp)
    d = _with_weight_decay(grad, params, config.weight_decay, xp)
    mu = config.momentum
    if mu == 0.0:
        direction = xp.asarray(d, copy=True) if d is grad else d  # never hand out the caller's own array
        return direction, SgdState(count=_next(state.count, xp), momentum=state.momentum)
    running = mu * state.momentum + (1.0 - config.dampening) * d
    buf = xp.where(state.count == 0, d, running)  # torch: the buffer starts as a copy of d (no dampening)
    # the buffer goes into the state: hand out a copy so that an in-place step on the direction cannot alias it
    direction = d + mu * buf if config.nesterov else xp.asarray(buf, copy=True)
    return direction, SgdState(count=_next(state.count, xp), momentum=buf)


sgd = register(Algorithm("sgd", SgdConfig, SgdState, sgd_init, sgd_update))
