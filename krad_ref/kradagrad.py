"""KrADagrad* (Alg. 1) and KrADagrad (the alternating scheme of Sec. 3.2), for matrices and order-p tensors.

References:
  Mei, Moreno, Walters, "KrADagrad", UAI 2023 (arXiv 2305.19416): Sec. 3.2 (Eq. 9-13, Prop. 3.2, Cor. 3.3),
  Sec. 3.3.2 and Alg. 1 (KrADagrad*), Lemma 3.5 (the KrADagrad preconditioner R^{1/2} kron L^{1/2});
  the authors' code (jonathanmei/kradagrad @ 9852c42) as specified in ``shared/notes/kradagrad-code.md``
  (Sec. 4: ``KradagradPP`` = KrADagrad*, Sec. 5: ``KradagradMM`` = KrADagrad); ``shared/notes/errata.md``.

Two algorithms, each a module-level :class:`~krad_ref.algorithm.Algorithm` record (registered at import):

  * :data:`kradagrad_star` (id ``"kradagrad_star"``): :class:`KradagradStarConfig`, :class:`KradagradStarState`,
    :func:`star_init`, :func:`star_update`. Every mode's inverse statistic L_i is updated on each statistics
    step with the plain mode Gram G_(i) G_(i)^T (the other factors held at I), and the direction is
    G x_0 L_0^e x_1 L_1^e ... (for a matrix, L^{alpha/2} G R^{alpha/2}).
  * :data:`kradagrad_alt` (id ``"kradagrad"``): :class:`KradagradConfig`, :class:`KradagradState`,
    :func:`alt_init`, :func:`alt_update`. One mode's factor is updated per statistics step with the other
    factors held (Eq. 13), and the direction is G x_i L_i^{1/2} over every mode (L^{1/2} G R^{1/2}).

Protocol (DESIGN.md, ``krad_ref.algorithm``)::

    state = init(shape_or_array, config, *, dtype=None, xp=None)
    direction, state = update(grad, state, config, *, params=None)
    W = W - lr * direction

No learning rate, grafting, momentum, weight decay, shape merging or blocking happens here: those are
transforms (``krad_ref.transforms``), composed around these updates to reproduce the authors' optimizer step.
``params`` is accepted for the protocol and ignored (no weight decay inside).

Tensors: a parameter of shape (d_0, ..., d_{p-1}) gets one (d_i, d_i) factor per mode (a 1-D parameter one
d x d factor; a 0-d parameter none, and its direction is the gradient). Mode products and Grams come from
``krad_ref.modes``; for a matrix, mode 0 is L (m x m) and mode 1 is R (n x n).

Counting (as the authors' code, so that its schedules reproduce): KrADagrad* numbers its steps k = 1, 2, ...
(k = count + 1: the per-parameter counter of ``Shampoo.step``); KrADagrad numbers them s = 0, 1, ... (s = count:
the global counter of ``KradagradMM.step``). ``update_freq``, ``root_freq`` and ``start_preconditioning_step``
are tested against k or s respectively, exactly as in the code.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

from . import algorithm, backend, krad, linalg, modes, validate

__all__ = [
    "VARIANTS",
    "ROOT_METHODS",
    "SCHEDULES",
    "REFERENCE_ROOT_SHIFT",
    "KradagradStarConfig",
    "KradagradStarState",
    "star_init",
    "star_update",
    "kradagrad_star",
    "KradagradConfig",
    "KradagradState",
    "alt_init",
    "alt_update",
    "alternating_mode",
    "kradagrad_alt",
]

Array = Any

VARIANTS = ("paper", "reference-code")
ROOT_METHODS = ("eigh", "iterative")
ROOT_DTYPES = ("float32", "float64")
#: KrADagrad's factor schedules: strict alternation (our "paper" reading, errata 21) or the code's sqrt(s) rule.
SCHEDULES = ("alternate", "sqrt")
#: The code's root: ``matrix_power_svd(L, 1/e)`` = eigh(L + 1e-8 I), eigenvalues clamped at 0 (hard-wired 1e-8).
REFERENCE_ROOT_SHIFT = 1e-8


# ---------------------------------------------------------------------------------------------------------
# shared validation and helpers

def _opt_real(value, name, **bounds):
    return None if value is None else validate.real_scalar(value, name, **bounds)


def _check_common(cfg) -> None:
    validate.one_of(cfg.variant, "variant", VARIANTS)
    if cfg.t_rule is not None:
        validate.one_of(cfg.t_rule, "t_rule", krad.T_RULES)
    _opt_real(cfg.init_scale, "init_scale", low=0.0, low_open=True)
    validate.real_scalar(cfg.matrix_eps, "matrix_eps", low=0.0, low_open=True)
    validate.real_scalar(cfg.beta2, "beta2", low=0.0, high=1.0, low_open=True)
    validate.positive_int(cfg.update_freq, "update_freq")
    validate.positive_int(cfg.root_freq, "root_freq")
    validate.one_of(cfg.root_method, "root_method", ROOT_METHODS)
    if cfg.root_dtype is not None:
        validate.one_of(cfg.root_dtype, "root_dtype", ROOT_DTYPES)
    _opt_real(cfg.root_shift, "root_shift", low=0.0)
    validate.positive_int(cfg.root_max_iter, "root_max_iter")


def _check_damping(damping: float, init_scale: float) -> None:
    """errata 13: L - eps L^2 is PD only if eps ||L||_2 < 1; with beta2 = 1, ||L_k||_2 <= ||L_0||_2 = init_scale."""
    if damping * init_scale >= 1.0:
        raise ValueError(
            f"damping: damping L - eps L^2 needs eps ||L||_2 < 1 (errata 13), but damping * init_scale = "
            f"{damping:.3g} * {init_scale:.3g} = {damping * init_scale:.3g} >= 1 (L_0 = init_scale I; the damped "
            f"first factor would not be positive definite)"
        )


def _check_iterative_exponent(exponent: float, name: str = "exponent") -> int:
    """The warm-started root iteration computes X = A^{1/q} for an integer q: exponent must be 1/q."""
    q = round(1.0 / exponent)
    if q < 1 or abs(q * exponent - 1.0) > 1e-12:
        raise ValueError(f"{name}: root_method='iterative' needs exponent = 1/q for an integer q, got {exponent!r}")
    return q


def _check_update(grad, state, config, Config, State, alg: str):
    """Validate the update's inputs (state included: ``algorithm.check_state``); return the grad's namespace."""
    if not isinstance(config, Config):
        raise TypeError(f"config: expected {Config.__name__} for {alg!r}, got {type(config).__name__}")
    if not isinstance(state, State):
        raise TypeError(f"state: expected {State.__name__} for {alg!r}, got {type(state).__name__}")
    factors, roots = state.factors, state.roots
    if not isinstance(factors, tuple) or not isinstance(roots, tuple) or len(factors) != len(roots):
        raise ValueError(f"state: expected tuples of factors and roots of one length, got {len(factors)} and "
                         f"{len(roots)}")
    # the parameter's shape and dtype are read from the factors (the state has no template): name the one that
    # disagrees with the gradient
    like = factors[0] if factors else state.count
    shape = tuple(int(F.shape[0]) for F in factors)
    odd = [i for i, (d, e) in enumerate(zip(shape, getattr(grad, "shape", ()))) if d != e]
    source = "state.factors" if len(shape) != getattr(grad, "ndim", -1) else f"state.factors[{(odd or [0])[0]}]"
    xp = algorithm.check_grad(grad, like, shape=shape, dtype=factors[0].dtype if factors else grad.dtype,
                              like_name=source)
    mats = [((d, d), grad.dtype) for d in shape]
    expected = {"count": ((), xp.int32), "factors": mats, "roots": mats}
    if State is KradagradState:
        expected["pending"] = ((len(shape),), xp.bool)
    algorithm.check_state(state, expected, grad, xp)
    return xp


def _resolved(config):
    """``config.resolved()``, once per config object: a frozen dataclass, so the replace-and-revalidate it costs
    (~20 us) is paid once, not on every update (twice per update: the overflow guard's limit and the update).
    Keyed by identity (hashing a dataclass hashes every field on each lookup); the entry holds the config, so its
    id cannot be reused while cached."""
    hit = _RESOLVED.get(id(config))
    if hit is not None and hit[0] is config:
        return hit[1]
    if len(_RESOLVED) >= 64:
        _RESOLVED.clear()
    r = config.resolved()
    _RESOLVED[id(config)] = (config, r)
    return r


_RESOLVED: dict = {}


def _count(k: int, like, xp):
    return xp.asarray(k, dtype=xp.int32, device=backend.device(like))


def _copy(x, xp):
    return xp.asarray(x, copy=True)


def _root(L, exponent: float, prev, *, method: str, root_dtype, shift: float, clamp: bool, max_iter: int,
          mode: int, xp):
    """L^exponent in ``root_dtype`` (None: L's dtype), cast back to L's dtype.

    ``clamp`` (reference-code): eigh(L + shift I) with eigenvalues clamped at 0, as ``matrix_power_svd``;
    otherwise ``linalg.psd_power`` (clips rounding negatives, refuses genuine ones). ``method="iterative"``:
    ``linalg.psd_root_iteration`` warm-started from the previous root ``prev`` (a seed only: errata 12).
    """
    dt = L.dtype
    # copy=False: a root_dtype equal to L's dtype is no cast at all (the same values, nothing here writes to A)
    A = L if root_dtype is None else xp.astype(L, getattr(xp, root_dtype), copy=False)
    n = A.shape[0]
    if exponent == 1.0:  # the code returns the statistic itself (no ridge, no eigh)
        X = (A + xp.matrix_transpose(A)) / 2
        return X if X.dtype == dt else xp.astype(X, dt)
    if shift:
        # the code's hard-wired 1e-8 ridge; in float32 it is lost against ||L|| >~ 1e-1 (as in the code)
        A = A + shift * xp.eye(n, dtype=A.dtype, device=backend.device(A))
    try:
        if method == "iterative":
            q = _check_iterative_exponent(exponent)
            X0 = prev if root_dtype is None else xp.astype(prev, A.dtype, copy=False)
            X = linalg.psd_root_iteration(A, q, X0=X0, max_iter=max_iter, on_fail="eigh", check=False).root
        elif clamp:
            w, V = backend.eigh((A + xp.matrix_transpose(A)) / 2)
            w = xp.where(w > 0, w, xp.zeros_like(w))
            X = (V * w**exponent) @ xp.matrix_transpose(V)
            X = (X + xp.matrix_transpose(X)) / 2
        else:  # psd_power(A, exponent, check=False) without re-validating the config's own options
            X = linalg._psd_power(A, exponent, xp)
    except ValueError as exc:
        raise ValueError(
            f"factor of mode {mode} is no longer positive semi-definite ({exc}); in float32 this happens when "
            f"||L G R G^T|| nears 1/u (errata 11): lower init_scale, or use variant='reference-code' (clamps)"
        ) from None
    return X if X.dtype == dt else xp.astype(X, dt)


# ---------------------------------------------------------------------------------------------------------
# KrADagrad*

@dataclasses.dataclass(frozen=True)
class KradagradStarConfig:
    """KrADagrad* hyperparameters (frozen). Fields left ``None`` take the ``variant``'s default (:meth:`resolved`).

    References:
      KrADagrad Alg. 1 and Sec. 3.3.2; the authors' ``KradagradPP`` (kradagrad-code.md Sec. 4.2, 8); errata 1,
      11, 12, 13, 18.

    Fields (paper default / reference-code default):
      variant: ``"paper"`` (Alg. 1 as intended) or ``"reference-code"`` (the authors' ``kradagrad.py``). When you
        reproduce a figure, check which one the authors ran (their Fig. 1 ran the code).
      t_rule: ``"frobenius"`` (Sec. 3.3.2: t_{k,L} = 1 + ||G G^T L||_F) / ``"code"`` (t = d (1 + tr(G G^T L)),
        d the factor's order). ``"spectral"`` and ``"trace"`` are accepted too (``krad.t_from_gram``).
      alpha: 1/2 (Alg. 1). The root exponent of an order-p parameter is alpha / p (matrix: alpha / 2 = 1/4,
        as Alg. 1's L^{alpha/2}; with alpha = 1/2 this is the code's 1/(2p) for every order, 1/2 for vectors).
      exponent: None (= alpha / p) / None. Overrides the root exponent for every order (the code's
        ``inverse_exponent_override > 0`` means exponent = 1/p).
      init_scale: 1 (L_0 = I) / 1 / matrix_eps (the code's ``eps_override``: L_0 = I / matrix_eps = 1e12 I).
      matrix_eps: 1e-12, the code's default; read only to derive init_scale in the reference-code variant.
      beta2: 1 (no decay). beta2 < 1 divides L by beta2 before each update (the code; no (1 - beta2) factor:
        ``krad.decay``). Cor. 3.3's monotonicity needs beta2 = 1.
      damping: 0. eps > 0 damps L' = L - eps L^2 before each update (paper Sec. 4 / App. C.4, lost; the code
        disables it for KrADagrad*). Refused when damping * init_scale >= 1 (errata 13).
      update_freq: 1. Statistics are updated on steps k with k % update_freq == 0 (code
        ``statistics_compute_steps``).
      root_freq: 1. Roots are recomputed on steps k with k % root_freq == 0 (code
        ``preconditioning_compute_steps``; paper Sec. 5.2 uses 20); in between the cached roots are used, and
        before the first recomputation they are the identity (as the code).
      start_preconditioning_step: 1. Steps k < start return the raw gradient G.
      root_method: ``"eigh"`` (both) or ``"iterative"``: ``linalg.psd_root_iteration`` warm-started from the
        previous root (Alg. 1's "from L_{k-1}^{alpha/2}"), accepted on its residual, else eigh (errata 12).
        Needs exponent = 1/q for an integer q.
      root_dtype: None (the statistics' dtype) or ``"float32"``/``"float64"``: the dtype the roots are computed
        in; they are cast back to the statistics' dtype.
      root_shift: 0 / 1e-8. Roots are taken of L + root_shift I (the code's hard-wired ``matrix_power_svd`` ridge).
      root_max_iter: 100, the iteration cap of ``root_method="iterative"``.

    The reference-code variant also clamps negative eigenvalues at 0 before the power (``matrix_power_svd``)
    where the paper variant refuses a genuinely indefinite factor with a ValueError.
    """

    variant: str = "paper"
    t_rule: str | None = None
    alpha: float = 0.5
    exponent: float | None = None
    init_scale: float | None = None
    matrix_eps: float = 1e-12
    beta2: float = 1.0
    damping: float = 0.0
    update_freq: int = 1
    root_freq: int = 1
    start_preconditioning_step: int = 1
    root_method: str = "eigh"
    root_dtype: str | None = None
    root_shift: float | None = None
    root_max_iter: int = 100

    def __post_init__(self):
        _check_common(self)
        validate.real_scalar(self.alpha, "alpha", low=0.0, low_open=True)
        _opt_real(self.exponent, "exponent", low=0.0, low_open=True)
        validate.real_scalar(self.damping, "damping", low=0.0)
        validate.positive_int(self.start_preconditioning_step, "start_preconditioning_step", minimum=0)
        if self.root_method == "iterative" and self.exponent is not None:
            _check_iterative_exponent(self.exponent)
        _check_damping(self.damping, self.resolved().init_scale)

    def resolved(self) -> "KradagradStarConfig":
        """A copy with every ``None`` field replaced by the variant's default (``exponent`` stays order-dependent)."""
        if all(v is not None for v in (self.t_rule, self.init_scale, self.root_shift)):
            return self
        code = self.variant == "reference-code"
        return dataclasses.replace(
            self,
            t_rule=self.t_rule if self.t_rule is not None else ("code" if code else "frobenius"),
            init_scale=self.init_scale if self.init_scale is not None else (1.0 / self.matrix_eps if code else 1.0),
            root_shift=self.root_shift if self.root_shift is not None else (REFERENCE_ROOT_SHIFT if code else 0.0),
        )

    def exponent_for(self, order: int) -> float:
        """The root exponent of an order-``order`` parameter: ``exponent`` if set, else alpha / order."""
        return float(self.exponent) if self.exponent is not None else self.alpha / order


class KradagradStarState(NamedTuple):
    """KrADagrad* state (immutable; ``star_update`` returns a new one)."""

    count: Array     # shape (), int32: updates taken so far (the next step is k = count + 1)
    factors: tuple   # p arrays (d_i, d_i), stat dtype: inverse statistics L_i (matrix: (L, R)), Alg. 1
    roots: tuple     # p arrays (d_i, d_i), stat dtype: cached L_i^exponent from the last root step (I before)

    @property
    def L(self):
        """The left factor (mode 0)."""
        return self.factors[0]

    @property
    def R(self):
        """The right factor (mode 1) of a matrix parameter."""
        return self.factors[1]


def star_init(shape_or_array, config: KradagradStarConfig, *, dtype=None, xp=None) -> KradagradStarState:
    """Initial KrADagrad* state: L_i = init_scale I_{d_i} for every mode, roots I, count 0.

    References:
      KrADagrad Alg. 1 ("Initialize (L_0, R_0) = (I_m, I_n)"); the code's L_0 = I / matrix_eps and P = I.

    Args:
      shape_or_array: the parameter's shape, or an array whose namespace, device and dtype are used.
      config: :class:`KradagradStarConfig`.
      dtype: statistics dtype (a dtype of the namespace, or ``"float32"``/``"float64"``); default the array's,
        else float64.
      xp: namespace when a shape is given (default NumPy).

    Returns:
      :class:`KradagradStarState`.
    """
    if not isinstance(config, KradagradStarConfig):
        raise TypeError(f"config: expected KradagradStarConfig, got {type(config).__name__}")
    shape, dtype, device, xp = algorithm.creation(shape_or_array, dtype, xp)
    cfg = config.resolved()
    if cfg.root_method == "iterative" and shape:
        _check_iterative_exponent(cfg.exponent_for(len(shape)))
    factors = tuple(cfg.init_scale * xp.eye(d, dtype=dtype, device=device) for d in shape)
    roots = tuple(xp.eye(d, dtype=dtype, device=device) for d in shape)
    return KradagradStarState(xp.asarray(0, dtype=xp.int32, device=device), factors, roots)


def _grad_limit(config, grad, xp) -> float:
    # the Gram A = G R G^T of Eq. 13, symmetrized as (A + A^T) / 2, and t_k = 1 + ||L A|| (Prop. 3.2): entries
    # <= 2 ||G||_F^2 ||L||_2 ||R||_2, ||L||_2, ||R||_2 <= s = max(1, init_scale) (beta2 = 1: the updates only shrink
    # the factors). Order p > 2 reaches the same s^2 (measured: the Grams of a (2, 3, 2) tensor overflow at the
    # matrix case's norm). Reference-code KrADagrad* (L_0 = 1e12 I) accepts ||G||_F <= 1.3e7 in float32.
    s = max(1.0, _resolved(config).init_scale)  # cached: resolving replaces and revalidates the config
    return algorithm.overflow_limit(grad.dtype, xp, power=2, factor=0.5 / s ** min(grad.ndim, 2))


@algorithm.overflow_guard(KradagradStarConfig, _grad_limit, "the Gram G R G^T of Eq. 13")
def star_update(grad, state: KradagradStarState, config: KradagradStarConfig, *, params=None):
    """One KrADagrad* step: update every mode's inverse statistic, refresh the roots, precondition G.

    References:
      KrADagrad Alg. 1 and Sec. 3.3.2. Errata 1: Alg. 1 prints (L_k, R_k) <- (R_{k-1} - Delta R_k,
      L_{k-1} - Delta L_k), which is ill-typed for m != n; this implements the intended
      (L_k, R_k) = (L_{k-1} - Delta L_k, R_{k-1} - Delta R_k), as the authors' code does (each mode updates its
      own statistic). The code's choices are the ``reference-code`` variant (:class:`KradagradStarConfig`).

    Step k = count + 1, for an order-p gradient G (matrix: p = 2, L = factors[0], R = factors[1]):
      1. if k % update_freq == 0, for every mode i (independently, from the pre-step factors):
         L <- krad.decay(L_i, beta2); L <- krad.damp(L, damping); A = G_(i) G_(i)^T;
         t = krad.t_from_gram(L, A, t_rule, scheme="star"); L_i <- L - L A L / t  (Delta L_k of Alg. 1);
      2. if k % root_freq == 0: P_i <- L_i^e (e = config.exponent_for(p), in root_dtype, by root_method);
      3. direction = G if k < start_preconditioning_step, else G x_0 P_0 ... x_{p-1} P_{p-1}
         (matrix: L^{alpha/2} G R^{alpha/2}).

    Args:
      grad: gradient, the state's shape and dtype, finite.
      state: :class:`KradagradStarState` from :func:`star_init` or a previous update.
      config: :class:`KradagradStarConfig`.
      params: ignored (no weight decay inside; see ``krad_ref.transforms``).

    Returns:
      ``(direction, new_state)``: direction in grad's namespace, dtype and shape; a new state (inputs untouched).

    Numerical caveats: float32 factors lose definiteness when ||L G G^T|| nears 1/u (errata 11; the paper
    variant then raises ValueError at the root, the reference-code variant clamps as the code); roots of L carry a
    relative error ~ d u kappa(L)^{1 - e}.
    """
    xp = _check_update(grad, state, config, KradagradStarConfig, KradagradStarState, "kradagrad_star")
    cfg = _resolved(config)
    k = int(state.count) + 1
    p = grad.ndim
    factors, roots = state.factors, state.roots
    if p == 0:
        return _copy(grad, xp), KradagradStarState(_count(k, state.count, xp), factors, roots)
    # the modes are independent (each reads its own pre-step factor): backend.map_mode_stages may run each
    # mode's factor update and root as one task, concurrently with the others (a mode's products then overlap
    # another's eigh); serially, and for errors, all factor updates come first, then the roots
    update, root_step = k % cfg.update_freq == 0, k % cfg.root_freq == 0
    if update or root_step:
        old, old_roots, e = factors, roots, cfg.exponent_for(p)
        stages = [(lambda i, _: krad.mode_update(old, grad, i, cfg.t_rule, scheme="star", beta2=cfg.beta2,
                                                 damping=cfg.damping, check=False))
                  if update else (lambda i, _: old[i])]
        if root_step:
            stages.append(lambda i, F: _root(F, e, old_roots[i], method=cfg.root_method, root_dtype=cfg.root_dtype,
                                             shift=cfg.root_shift, clamp=cfg.variant == "reference-code",
                                             max_iter=cfg.root_max_iter, mode=i, xp=xp))
        done = backend.map_mode_stages(stages, p, like=grad, order=max(grad.shape), sizes=grad.shape)
        factors = tuple(values[0] for values in done)
        if root_step:
            roots = tuple(values[1] for values in done)
    if k < cfg.start_preconditioning_step:
        direction = _copy(grad, xp)
    else:
        direction = modes._multi_mode_product(grad, roots, xp)  # checked: roots match grad (_check_update)
    return direction, KradagradStarState(_count(k, state.count, xp), factors, roots)


kradagrad_star = algorithm.register(
    algorithm.Algorithm("kradagrad_star", KradagradStarConfig, KradagradStarState, star_init, star_update)
)


# ---------------------------------------------------------------------------------------------------------
# KrADagrad (alternating)

@dataclasses.dataclass(frozen=True)
class KradagradConfig:
    """KrADagrad (alternating) hyperparameters (frozen). ``None`` fields take the variant's default (:meth:`resolved`).

    References:
      KrADagrad Sec. 3.2 (Eq. 9-13, Prop. 3.2), Lemma 3.4-3.5 (preconditioner R^{1/2} kron L^{1/2}); App. C.1
      (the exact alternation) was not found; the authors' ``KradagradMM`` (kradagrad-code.md Sec. 5.2, 8);
      errata 13, 18, 21.

    Fields (paper default / reference-code default):
      variant: ``"paper"`` or ``"reference-code"`` (``kradagradmm.py``). The reference-code variant builds the
        update's Gram from the gradient preconditioned by the other modes' CURRENT ROOTS (G-hat = G x_j P_j,
        A = G-hat_(i) G-hat_(i)^T, equal to the paper's G R G^T only when the roots are fresh) and reproduces the
        code's direction quirks (below); the paper variant uses the other factors themselves (Eq. 13).
      t_rule: ``"spectral"`` (Prop. 3.2: 1 + ||L G R G^T||_2) / ``"code"`` (1 + ||L' A||_F on the damped L': the
        Frobenius rule, since t is always evaluated on the damped factor here). ``"frobenius"`` and ``"trace"``
        are accepted too.
      exponent: 1/2 for every order (Lemma 3.5; the code's e = 2 for all p).
      init_scale: 1 (L_0 = I; the code's ``eps_override = 1``, independent of matrix_eps).
      matrix_eps: 1e-12, the code's default; read only to derive damping in the reference-code variant.
      damping: 0 / matrix_eps. L' = L - eps L^2 before each update, and L' is what is stored (the code).
        Refused when damping * init_scale >= 1 (errata 13).
      beta2: 1. beta2 < 1 divides L by beta2 before each update (no (1 - beta2) factor: ``krad.decay``).
      schedule: ``"alternate"`` / ``"sqrt"``. Which mode a statistics step updates (:func:`alternating_mode`):
        strict alternation 0, 1, ..., p-1, 0, ... over statistics steps (errata 21: App. C.1, which specified the
        paper's alternation, is lost; this is our reading), or the code's sqrt(s) rule (kradagrad-code.md 5.2).
      update_freq: 1. Statistics on steps s with s % update_freq == 0 (s = count, from 0, as the code).
      root_freq: 1. On steps s with s % root_freq == 0 the roots of every factor updated since the last root
        step are recomputed (the code's ``updated`` set; roots are I before).
      start_preconditioning_step: 0 / 1. Steps s < start do not precondition: the paper variant returns G, the
        reference-code variant returns G-hat (G preconditioned on the other modes) on statistics steps and G
        otherwise, as the code.
      root_method, root_dtype, root_shift (0 / 1e-8), root_max_iter: as :class:`KradagradStarConfig`.

    Direction (s >= start): paper: G x_0 P_0 ... x_{p-1} P_{p-1} with the current roots (L^{1/2} G R^{1/2});
    reference-code on a statistics step: G-hat x_i P_i (other modes with the pre-step roots, mode i with its
    possibly just recomputed root), as the code.
    """

    variant: str = "paper"
    t_rule: str | None = None
    exponent: float = 0.5
    init_scale: float = 1.0
    matrix_eps: float = 1e-12
    damping: float | None = None
    beta2: float = 1.0
    schedule: str | None = None
    update_freq: int = 1
    root_freq: int = 1
    start_preconditioning_step: int | None = None
    root_method: str = "eigh"
    root_dtype: str | None = None
    root_shift: float | None = None
    root_max_iter: int = 100

    def __post_init__(self):
        _check_common(self)
        validate.real_scalar(self.exponent, "exponent", low=0.0, low_open=True)
        validate.real_scalar(self.init_scale, "init_scale", low=0.0, low_open=True)
        _opt_real(self.damping, "damping", low=0.0)
        if self.schedule is not None:
            validate.one_of(self.schedule, "schedule", SCHEDULES)
        if self.start_preconditioning_step is not None:
            validate.positive_int(self.start_preconditioning_step, "start_preconditioning_step", minimum=0)
        if self.root_method == "iterative":
            _check_iterative_exponent(self.exponent)
        r = self.resolved()
        _check_damping(r.damping, r.init_scale)

    def resolved(self) -> "KradagradConfig":
        """A copy with every ``None`` field replaced by the variant's default."""
        if all(v is not None for v in (self.t_rule, self.damping, self.schedule, self.start_preconditioning_step,
                                       self.root_shift)):
            return self
        code = self.variant == "reference-code"
        return dataclasses.replace(
            self,
            t_rule=self.t_rule if self.t_rule is not None else ("code" if code else "spectral"),
            damping=self.damping if self.damping is not None else (self.matrix_eps if code else 0.0),
            schedule=self.schedule if self.schedule is not None else ("sqrt" if code else "alternate"),
            start_preconditioning_step=(self.start_preconditioning_step if self.start_preconditioning_step is not None
                                        else (1 if code else 0)),
            root_shift=self.root_shift if self.root_shift is not None else (REFERENCE_ROOT_SHIFT if code else 0.0),
        )


class KradagradState(NamedTuple):
    """KrADagrad (alternating) state (immutable; ``alt_update`` returns a new one)."""

    count: Array     # shape (), int32: updates taken so far (= the code's global counter s of the next step)
    factors: tuple   # p arrays (d_i, d_i), stat dtype: inverse statistics L_i (matrix: (L, R)), Eq. 13
    roots: tuple     # p arrays (d_i, d_i), stat dtype: cached L_i^exponent (I before the first root step)
    pending: Array   # (p,), bool: factor i updated since its root was last computed (the code's ``updated``)

    @property
    def L(self):
        """The left factor (mode 0)."""
        return self.factors[0]

    @property
    def R(self):
        """The right factor (mode 1) of a matrix parameter."""
        return self.factors[1]


def alternating_mode(step: int, shape, schedule: str = "alternate", update_freq: int = 1) -> int:
    """The mode whose factor KrADagrad updates on statistics step ``step`` (s, counted from 0).

    References:
      errata 21; the authors' ``KradagradMM.step`` (kradagrad-code.md Sec. 5.2).

    Args:
      step: the global step s >= 0 (a statistics step: s % update_freq == 0).
      shape: the parameter's shape (order p >= 1).
      schedule: ``"alternate"``: mode (s // update_freq) mod p, i.e. 0, 1, ..., p-1, 0, ... over statistics steps
        (for a matrix L, R, L, R). ``"sqrt"`` (the code): s < p^2: s mod p; else with r = floor(sqrt(s)),
        x = s - r^2: x if x < p, else i* = the first index of the largest dimension. The non-largest modes are
        then updated about sqrt(s) times, the largest on every other step.
      update_freq: the statistics frequency (only ``"alternate"`` reads it).

    Returns:
      The mode index in [0, p).
    """
    shape = tuple(shape)
    p = len(shape)
    if p == 0:
        raise ValueError("shape: a 0-d parameter has no factors to update")
    step = validate.positive_int(step, "step", minimum=0)
    validate.one_of(schedule, "schedule", SCHEDULES)
    update_freq = validate.positive_int(update_freq, "update_freq")
    if schedule == "alternate":
        return (step // update_freq) % p
    if step < p * p:
        return step % p
    r = math.isqrt(step)
    x = step - r * r
    return x if x < p else shape.index(max(shape))


def alt_init(shape_or_array, config: KradagradConfig, *, dtype=None, xp=None) -> KradagradState:
    """Initial KrADagrad state: L_i = init_scale I (default I) for every mode, roots I, nothing pending, count 0.

    References:
      KrADagrad Sec. 3.2 (L_0, R_0 PD; the paper's experiments and the code start from I: ``eps_override=1``).

    Args:
      shape_or_array, dtype, xp: as :func:`star_init`.
      config: :class:`KradagradConfig`.

    Returns:
      :class:`KradagradState`.
    """
    if not isinstance(config, KradagradConfig):
        raise TypeError(f"config: expected KradagradConfig, got {type(config).__name__}")
    shape, dtype, device, xp = algorithm.creation(shape_or_array, dtype, xp)
    factors = tuple(config.init_scale * xp.eye(d, dtype=dtype, device=device) for d in shape)
    roots = tuple(xp.eye(d, dtype=dtype, device=device) for d in shape)
    pending = xp.zeros((len(shape),), dtype=xp.bool, device=device)
    return KradagradState(xp.asarray(0, dtype=xp.int32, device=device), factors, roots, pending)


@algorithm.overflow_guard(KradagradConfig, _grad_limit, "the Gram G R G^T of Eq. 13")
def alt_update(grad, state: KradagradState, config: KradagradConfig, *, params=None):
    """One KrADagrad step: update one mode's factor with the others held (Eq. 13), refresh roots, precondition.

    References:
      KrADagrad Sec. 3.2, Eq. (9)-(13), Prop. 3.2 (t_k), Cor. 3.3 (0 < L_k <= L_{k-1}), Lemma 3.5
      (P = R^{1/2} kron L^{1/2}); errata 21 (schedule); the authors' ``KradagradMM`` for the reference-code
      variant (kradagrad-code.md Sec. 5.2).

    Step s = count, for an order-p gradient G:
      1. if s % update_freq == 0: i = alternating_mode(s, shape, schedule, update_freq);
         A = G_(i) (kron_{j != i} L_j) G_(i)^T (paper; matrix, i = 0: G R G^T) or G-hat_(i) G-hat_(i)^T with
         G-hat = G x_{j != i} P_j (reference-code); L <- krad.decay(L_i, beta2); L <- krad.damp(L, damping);
         t = krad.t_from_gram(L, A, t_rule, scheme="alternating"); L_i <- L - L A L / t; mark i pending;
      2. if s % root_freq == 0: P_j <- L_j^exponent for every pending j; clear pending;
      3. direction (see :class:`KradagradConfig`): s >= start: L^{1/2} G R^{1/2} (G x_j P_j over all modes).

    Args:
      grad: gradient, the state's shape and dtype, finite.
      state: :class:`KradagradState`.
      config: :class:`KradagradConfig`.
      params: ignored (no weight decay inside).

    Returns:
      ``(direction, new_state)``: direction in grad's namespace, dtype and shape; a new state.
    """
    xp = _check_update(grad, state, config, KradagradConfig, KradagradState, "kradagrad")
    p = grad.ndim
    cfg = _resolved(config)
    code = cfg.variant == "reference-code"
    s = int(state.count)
    factors, roots = list(state.factors), list(state.roots)
    pending = [bool(state.pending[j]) for j in range(p)]
    if p == 0:
        return _copy(grad, xp), KradagradState(_count(s + 1, state.count, xp), (), (), state.pending)
    ix = alternating_mode(s, grad.shape, cfg.schedule, cfg.update_freq) if s % cfg.update_freq == 0 else None
    G_hat = None
    if ix is not None and code:
        G_hat = modes.multi_mode_product(grad, [None if j == ix else roots[j] for j in range(p)])
    old = tuple(factors)

    def update_factor(j):  # Eq. (13) for the mode updated this step; the others keep their factor
        if j != ix:
            return old[j]
        A = krad.mode_statistic(G_hat, ix, check=False) if code else krad.mode_statistic(grad, ix, old, check=False)
        L = krad.decay(old[ix], cfg.beta2, check=False)
        L = krad.damp(L, cfg.damping, check=False)
        t = krad.t_from_gram(L, A, cfg.t_rule, scheme="alternating", check=False)
        return krad.gram_update(L, A, t, check=False)

    if ix is not None:
        pending[ix] = True
    due = [j for j in range(p) if pending[j]] if s % cfg.root_freq == 0 else []
    if due:
        # the roots due (root_freq > 1: several) are independent, and those of modes not updated now need not
        # wait for the update: backend.map_mode_stages may run each mode's update and root as one task
        old_roots = tuple(roots)
        done = backend.map_mode_stages(
            [lambda i, _: update_factor(due[i]),
             lambda i, F: _root(F, cfg.exponent, old_roots[due[i]], method=cfg.root_method, root_dtype=cfg.root_dtype,
                                shift=cfg.root_shift, clamp=code, max_iter=cfg.root_max_iter, mode=due[i], xp=xp)],
            len(due), like=grad, order=max(grad.shape), sizes=[grad.shape[j] for j in due])
        for j, (F, P) in zip(due, done):
            factors[j], roots[j] = F, P
            pending[j] = False
    elif ix is not None:
        factors[ix] = update_factor(ix)
    if s >= cfg.start_preconditioning_step:
        if G_hat is not None:
            direction = modes.mode_product(G_hat, roots[ix], ix)
        else:
            direction = modes._multi_mode_product(grad, roots, xp)
    else:
        direction = G_hat if G_hat is not None else _copy(grad, xp)
    new_pending = xp.asarray(pending, dtype=xp.bool, device=backend.device(state.pending))
    return direction, KradagradState(_count(s + 1, state.count, xp), tuple(factors), tuple(roots), new_pending)


kradagrad_alt = algorithm.register(
    algorithm.Algorithm("kradagrad", KradagradConfig, KradagradState, alt_init, alt_update)
)
