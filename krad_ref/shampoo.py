"""Shampoo (Gupta et al. 2018), the Kronecker-factored baseline of KrADagrad, with inverse roots in a chosen precision.

References:
  Mei, Moreno, Walters, "KrADagrad" (UAI 2023), Sec. 2.4, Eqs. (2)-(3); Gupta, Koren, Singer, "Shampoo:
  Preconditioned Stochastic Tensor Optimization" (ICML 2018), Alg. 1 (matrices) and Alg. 2 (order-p tensors);
  the authors' PyTorch code (``third_party/shampoo/shampoo.py``), shared/notes/kradagrad-code.md Secs. 1-3 and 7;
  errata 4, 19.

The paper's names, once. For a matrix parameter W (m x n) with gradients G_1, G_2, ...
    B_k = eps I_m + sum_i G_i G_i^T,   C_k = eps I_n + sum_i G_i^T G_i               (Eq. 2, the "statistics")
    (L_k, R_k) = (B_k^{-1/4}, C_k^{-1/4}),   W <- W - lr L_k G_k R_k                 (Eq. 3)
For an order-p tensor there is one statistic per mode k, B^(k) = eps I + sum_i G_i(k) G_i(k)^T (mode-k unfolding,
``modes.mode_gram``), and the direction is G x_0 (B^(0))^{-1/(2p)} x_1 ... x_{p-1} (B^(p-1))^{-1/(2p)}. A vector
(p = 1) has one d x d statistic and exponent -1/2: that is full-matrix AdaGrad (errata 4); a 1 x n matrix is NOT
(it gets B^{-1/4} g^T C^{-1/4}; the authors' code merges [1, n] -> [n] first, which is ``transforms``' job here).
A scalar (p = 0) has no statistic: the direction is the gradient (the code's behaviour for a merged shape []).

Two variants (``Config.variant``):
  * ``"paper"``: Eqs. (2)-(3) exactly. The state keeps S = sum_i G G^T (beta2-weighted if beta2 < 1) and the root is
    (S + eps I)^{-1/e} through ``linalg.psd_power(S, -1/e, eps=eps, eps_mode=...)``: eps is added to the
    eigenvalues of S, which is the same matrix function as (eps I + S)^{-1/e} in exact arithmetic and more accurate
    in floating point (rounding negatives of the PSD S are clipped to 0 first, and eps is never lost against large
    diagonal entries of S). ``eps_mode`` picks the regularisation of the peers: "absolute" (the paper's eps I),
    "relative" (eps lambda_max(S) I, Google's scalable_shampoo), "pinv" (eigenvalues <= n u lambda_max dropped,
    Meta's Distributed Shampoo; needs eps = 0).
  * ``"reference-code"``: the authors' code (``Preconditioner`` with ``iterative_matrix_roots=False``): the
    statistic starts at eps I (their ``matrix_eps``) and the root is V diag(max(lambda, eps)^{-1/e}) V^T with
    (lambda, V) = eigh(S + 1e-8 I) (``matrix_power_svd``; the 1e-8 shift is hard-wired and lost in float32 once
    ||S|| >~ 1e-8 / u). Roots are applied transposed, as their ``tensordot`` does (P_k^T; P_k is symmetric up to
    rounding). With ``root_method="coupled_newton"`` it follows their ``ComputePower``: ridge eps * lambda_max(S),
    entrywise-max residual, tolerance 1e-6, 100 iterations, last iterate kept when the target is missed; the code
    also adds that ridge to the statistic IN PLACE, a side effect not reproduced here.
  Both share the step driver of the code (notes Sec. 2): with k = count + 1, the statistics are updated when
  k % update_freq == 0, the roots recomputed when k % root_freq == 0 (identities before the first computation),
  and the direction is G itself while k < start_preconditioning_step. Grafting, momentum, weight decay, shape
  merging and blocking are separate pieces (``krad_ref.transforms``); the direction here is the preconditioned
  gradient only.

Precision (errata 19). ``stat_dtype`` holds the statistics, the Gram products and the preconditioning; ``root_dtype``
the eigendecomposition (or Newton iteration) only; each defaults to the one before it (grad dtype -> stat dtype ->
root dtype). The roots are cast back to the stat dtype, the direction to the grad dtype.
  * Fig. 1's "shampoo64" curve is the authors' ``double=True``: ``stat_dtype="float64"`` (roots follow). That is
    the setting that reproduces it.
  * ``root_dtype="float64"`` with float32 statistics is the paper's *wording* (Sec. 2.4 / 5.2: "double precision
    for negative matrix roots") and the comparison the issue asks for; the authors did not run it.
  * Defaults with float32 gradients = "shampoo32" (the code's ``double=False``: all float32).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from . import algorithm, backend, linalg, modes, validate
from .algorithm import Algorithm, register, shape_of

__all__ = ["Config", "ShampooState", "State", "init", "update", "inverse_root", "exponent", "shampoo",
           "VARIANTS", "ROOT_METHODS", "DTYPES", "CODE_EIGH_SHIFT"]

Array = Any

VARIANTS = ("paper", "reference-code")
ROOT_METHODS = ("eigh", "coupled_newton")
DTYPES = ("float32", "float64")
NEWTON_ON_FAIL = ("raise", "return", "eigh")

#: the authors' ``matrix_power_svd`` adds this before eigh, whatever matrix_eps is (notes Sec. 3)
CODE_EIGH_SHIFT = 1e-8
#: the code's ``ComputePower`` defaults (iter_count, error_tolerance; notes Sec. 7)
CODE_NEWTON_MAX_ITER = 100
CODE_NEWTON_TOL = 1e-6


@dataclass(frozen=True)
class Config:
    """Shampoo hyperparameters (frozen; validated on construction).

    References:
      KrADagrad Eqs. (2)-(3); the authors' ``ShampooHyperParams`` (notes Sec. 8) for the fields the paper lacks.

    Args:
      eps: epsilon of Eq. (2), > 0 (0 allowed only with eps_mode="pinv", which requires it). The paper gives no
        value; 1e-6 is the default of the authors' ``utils.get_optimizer`` (their class default is 1e-12, Fig. 1
        used 1e-8). Under "reference-code" it is their ``matrix_eps``: initial statistic eps I and eigenvalue floor.
      beta2: statistic decay in (0, 1]; S <- beta2 S + (1 - beta2) G G^T when beta2 < 1, S <- S + G G^T at 1 (the
        paper's sum; the code's weights). Under "paper" eps does not decay with S (it is added at the root).
      update_freq: statistics are updated when k % update_freq == 0 (code: statistics_compute_steps).
      root_freq: roots recomputed when k % root_freq == 0 (code: preconditioning_compute_steps).
      start_preconditioning_step: the direction is G while k < start (k = 1, 2, ... counts updates); 1 = always
        precondition (the paper).
      exponent_override: 0 = the paper's rule e = 2p (matrix 4, vector 2, order-p tensor 2p); > 0 uses -1/e for
        every mode (code: inverse_exponent_override). Must be an integer for coupled Newton.
      root_method: "eigh" (``linalg.psd_power``) or "coupled_newton" (``linalg.coupled_newton_inv_root``).
      root_dtype: None (= stat dtype), "float32" or "float64": precision of the root computation only.
      stat_dtype: None (= grad dtype), "float32" or "float64": precision of statistics, Grams and preconditioning.
      eps_mode: "paper" variant only: "absolute", "relative" or "pinv" (module docstring; ``linalg.psd_power``).
        Coupled Newton takes "absolute" (ridge eps) or "relative" (ridge eps * lambda_max).
      variant: "paper" or "reference-code" (module docstring). When you reproduce Fig. 1, the authors ran the
        code: use "reference-code" with stat_dtype="float64" (shampoo64) or defaults (shampoo32).
      newton_tol, newton_max_iter: "paper" coupled Newton target on ||M - I||_F (None: linalg's 4 (n + p) u) and
        iteration cap.
      newton_on_fail: "paper" coupled Newton missing its target: "raise" (RuntimeError), "return" (keep the last
        iterate, as the code does) or "eigh" (answer by the eigh root instead).
    """

    eps: float = 1e-6
    beta2: float = 1.0
    update_freq: int = 1
    root_freq: int = 1
    start_preconditioning_step: int = 1
    exponent_override: float = 0
    root_method: str = "eigh"
    root_dtype: str | None = None
    stat_dtype: str | None = None
    eps_mode: str = "absolute"
    variant: str = "paper"
    newton_tol: float | None = None
    newton_max_iter: int = 100
    newton_on_fail: str = "raise"

    def __post_init__(self):
        validate.one_of(self.variant, "variant", VARIANTS)
        validate.one_of(self.root_method, "root_method", ROOT_METHODS)
        validate.one_of(self.eps_mode, "eps_mode", linalg.EPS_MODES)
        validate.one_of(self.newton_on_fail, "newton_on_fail", NEWTON_ON_FAIL)
        for name in ("root_dtype", "stat_dtype"):
            value = getattr(self, name)
            if value is not None:
                validate.one_of(value, name, DTYPES)
        eps = validate.real_scalar(self.eps, "eps", low=0.0)
        validate.real_scalar(self.beta2, "beta2", low=0.0, high=1.0, low_open=True)
        validate.positive_int(self.update_freq, "update_freq")
        validate.positive_int(self.root_freq, "root_freq")
        validate.positive_int(self.start_preconditioning_step, "start_preconditioning_step")
        validate.positive_int(self.newton_max_iter, "newton_max_iter")
        override = validate.real_scalar(self.exponent_override, "exponent_override", low=0.0)
        if self.newton_tol is not None:
            validate.real_scalar(self.newton_tol, "newton_tol", low=0.0, low_open=True)
        if self.root_method == "coupled_newton" and override != 0 and override != int(override):
            raise ValueError(f"exponent_override: coupled Newton needs an integer root order, got {override}")
        if self.variant == "reference-code":
            if self.eps_mode != "absolute":
                raise ValueError(f"eps_mode: the reference-code variant has the code's fixed rule (floor at eps); "
                                 f"got {self.eps_mode!r}, leave it 'absolute'")
            if not eps > 0:
                raise ValueError("eps: the reference-code variant needs eps > 0 (initial statistic, eigenvalue floor)")
        else:
            if self.eps_mode == "pinv" and eps != 0.0:
                raise ValueError(f"eps: must be 0 with eps_mode='pinv' (truncation replaces it), got {eps}")
            if self.eps_mode == "pinv" and self.root_method == "coupled_newton":
                raise ValueError("eps_mode: 'pinv' is an eigh option; coupled Newton takes 'absolute' or 'relative'")


class ShampooState(NamedTuple):
    """Shampoo state (immutable; ``update`` returns a new one)."""

    count: Array              # shape (), int32: updates taken so far
    stats: tuple[Array, ...]  # one (d_k, d_k) per mode, stat dtype: "paper": sum G_(k) G_(k)^T (eps added at the
                              # root); "reference-code": eps I + sum G_(k) G_(k)^T
    roots: tuple[Array, ...]  # one (d_k, d_k) per mode, stat dtype: cached inverse roots (identity before the first)
    template: Array           # shape (0, *param_shape), grad dtype, no data: records shape and dtype for checks


State = ShampooState


def _dtype_of(name: str | None, default, xp):
    return default if name is None else getattr(xp, name)


def exponent(ndim: int, config: Config) -> float:
    """The root order e of every mode: the root is S^{-1/e}.

    References:
      KrADagrad Eq. (3) (e = 4 for matrices), Gupta et al. Alg. 2 (e = 2p for order p); code
      ``inverse_exponent_override`` (notes Sec. 3).

    Args:
      ndim: the parameter's order p >= 1.
      config: its ``exponent_override`` > 0 replaces 2p.

    Returns:
      e as a float (an integer value unless overridden by a non-integer).
    """
    override = float(config.exponent_override)
    return override if override > 0 else float(2 * ndim)


def init(shape_or_array, config: Config, *, dtype=None, xp=None) -> ShampooState:
    """Initial Shampoo state: statistics 0 ("paper") or eps I ("reference-code"), identity roots, count 0.

    References:
      KrADagrad Eq. (2) (B_0 = eps I); code ``Preconditioner.__init__`` (S_0 = matrix_eps I, P = I).

    Args:
      shape_or_array: the parameter's shape (d_0, ..., d_{p-1}) or the parameter itself (its namespace, device
        and dtype are used). p = 0 (a scalar) gives no statistics.
      config: a :class:`Config`.
      dtype: the gradient dtype (default: the array's, else float64). Statistics use ``config.stat_dtype`` or this.
      xp: namespace for a shape tuple (default NumPy via array_api_compat).

    Returns:
      :class:`ShampooState`.
    """
    if not isinstance(config, Config):
        raise TypeError(f"config: expected shampoo.Config, got {type(config).__name__}")
    shape, dtype, dev, xp = algorithm.creation(shape_or_array, dtype, xp)
    sdt = _dtype_of(config.stat_dtype, dtype, xp)
    scale = config.eps if config.variant == "reference-code" else 0.0
    stats = tuple(scale * xp.eye(d, dtype=sdt, device=dev) for d in shape)
    roots = tuple(xp.eye(d, dtype=sdt, device=dev) for d in shape)
    return ShampooState(
        count=xp.asarray(0, dtype=xp.int32, device=dev),
        stats=stats,
        roots=roots,
        template=xp.zeros((0, *shape), dtype=dtype, device=dev),
    )


def inverse_root(S, e, config: Config):
    """The inverse root of one statistic as Shampoo uses it, computed in ``config.root_dtype``.

    References:
      KrADagrad Eq. (3) (B^{-1/4}); code ``matrix_power_svd`` / ``ComputePower`` (notes Secs. 3, 7).

    Args:
      S: (d, d) symmetric PSD statistic as stored in the state (stat dtype; see :class:`ShampooState`).
      e: root order > 0 (:func:`exponent`).
      config: variant, root_method, root_dtype, eps, eps_mode and the Newton options.

    Returns:
      (d, d) array in S's dtype: "paper": (S + eps I)^{-1/e} ("absolute"; "relative" / "pinv" as ``psd_power``);
      "reference-code": V diag(max(lambda, eps)^{-1/e}) V^T, (lambda, V) = eigh(S + 1e-8 I), or the code's
      coupled Newton.

    Numerical caveats:
      The eigh root of a statistic with kappa = lambda_max / lambda_min has relative error ~ n u kappa / e in the
      root dtype: in float32, kappa >~ 1e6 leaves the small eigenvalues (the directions Shampoo amplifies most)
      with no correct digits, the effect Sec. 4 / Fig. 1 of the paper is about. The "paper" variant then clips
      rounding negatives to 0 (so the root is at most eps^{-1/e} there); the code floors at eps.

    Raises:
      ValueError: S numerically singular with eps = 0 ("absolute") in the root dtype, or not PSD beyond rounding.
      RuntimeError: "paper" coupled Newton missed its target with newton_on_fail="raise".
    """
    xp = validate.square(S, "S")
    e = validate.real_scalar(e, "e", low=0.0, low_open=True)
    out_dtype = S.dtype
    # the one cast that decides the root's precision (stat dtype -> root dtype)
    A = xp.astype(S, _dtype_of(config.root_dtype, S.dtype, xp), copy=False)
    if config.variant == "reference-code":
        P = _code_root(A, e, config, xp)
    elif config.root_method == "eigh":
        # S is checked in its own dtype; the eigenvalue tolerances follow S's rounding, not the root dtype's
        # (a float32 statistic cast to float64 keeps its float32-sized negative eigenvalues)
        validate.symmetric(S, "S", xp=xp)
        P = linalg.psd_power(A, -1.0 / e, eps=config.eps, eps_mode=config.eps_mode, check=False,
                             source_dtype=S.dtype)
    else:
        ridge = config.eps
        if config.eps_mode == "relative":
            ridge = config.eps * float(linalg.norm_2(A, assume_symmetric=True))
        on_fail = "raise" if config.newton_on_fail == "raise" else "return"
        res = linalg.coupled_newton_inv_root(A, int(e), ridge=ridge, max_iter=config.newton_max_iter,
                                             tol=config.newton_tol, on_fail=on_fail, check=False)
        P = res.root
        if not res.converged and config.newton_on_fail == "eigh":
            P = linalg.psd_power(A, -1.0 / e, eps=config.eps, eps_mode=config.eps_mode, check=False,
                                 source_dtype=S.dtype)
    return xp.astype(P, out_dtype, copy=False)  # roots live in the stat dtype (the code casts back to the statistic's)


def _code_root(A, e, config, xp):
    """The authors' roots: ``matrix_power_svd(S, -1/e, eig_eps=matrix_eps)`` or ``ComputePower``."""
    n = A.shape[0]
    I = xp.eye(n, dtype=A.dtype, device=backend.device(A))
    if config.root_method == "coupled_newton":
        # the code estimates lambda_max by power iteration (tol 1e-6); eigvalsh gives it exactly
        lam_max = float(linalg.norm_2(A, assume_symmetric=True))
        res = linalg.coupled_newton_inv_root(A, int(e), ridge=config.eps * lam_max, max_iter=CODE_NEWTON_MAX_ITER,
                                             tol=CODE_NEWTON_TOL, error="max", on_fail="return", check=False)
        return res.root
    # eigh reads the lower triangle only, as torch.linalg.eigh(UPLO='L') does; no symmetrization, as in the code
    w, V = backend.eigh(A + CODE_EIGH_SHIFT * I)
    w = xp.where(w > config.eps, w, xp.full_like(w, config.eps))  # torch.clamp(min=matrix_eps)
    return (V * w ** (-1.0 / e)) @ xp.matrix_transpose(V)


def _check_grad(grad, state: ShampooState, config: Config):
    algorithm.check_types(state, config, ShampooState, Config)
    shape = tuple(state.template.shape[1:])
    xp = algorithm.check_grad(grad, state.template, shape=shape)
    if len(state.stats) != len(shape) or len(state.roots) != len(shape):
        raise ValueError(f"state: expected {len(shape)} statistics and roots (one per mode), got "
                         f"{len(state.stats)} and {len(state.roots)}")
    want = _dtype_of(config.stat_dtype, grad.dtype, xp)
    for k, (S, P) in enumerate(zip(state.stats, state.roots)):
        for label, X in (("stats", S), ("roots", P)):
            if tuple(X.shape) != (shape[k], shape[k]):
                raise ValueError(f"state: {label}[{k}] has shape {tuple(X.shape)}, expected {(shape[k], shape[k])}")
            if X.dtype != want:
                raise TypeError(f"state: {label}[{k}] is {backend.dtype_name(X.dtype)} but the config asks for "
                                f"stat dtype {backend.dtype_name(want)}")
    return xp


def update(grad, state: ShampooState, config: Config, *, params=None):
    """One Shampoo step: update the statistics, refresh the roots on schedule, precondition the gradient.

    References:
      KrADagrad Eqs. (2)-(3); Gupta et al. 2018, Alg. 1-2; code ``Shampoo.step`` / ``Preconditioner``
      (notes Secs. 2-3); errata 4, 19.

    Args:
      grad: gradient G, an order-p real floating array of the state's shape and dtype, finite.
      state: :class:`ShampooState` from :func:`init` or a previous update (never modified).
      config: the :class:`Config` the state was made with.
      params: unused (Shampoo has no weight decay of its own: the code adds lambda W after grafting, which is
        ``transforms``' job); accepted for the common protocol.

    Returns:
      ``(direction, new_state)``: direction G x_0 P_0 ... x_{p-1} P_{p-1} (P_k the cached roots) in the grad's dtype
      and namespace, or a copy of G while k < start_preconditioning_step or for p = 0. The caller steps
      W <- W - lr * direction.

    Numerical caveats:
      see :func:`inverse_root`. Statistics grow like k ||G||^2; in float32 the eps of Eq. (2) is kept at the
      root under "paper" (added to eigenvalues), but under "reference-code" eps I is absorbed by the statistic and
      only the eigenvalue floor keeps the root finite.

    Raises:
      TypeError/ValueError: grad not a finite real floating array of the state's shape/dtype; state and config
      disagree (number of modes, stat dtype); errors of :func:`inverse_root`.
    """
    xp = _check_grad(grad, state, config)
    k = int(state.count) + 1  # the code's per-parameter step counter (first update: k = 1); a host read
    p = grad.ndim
    sdt = state.stats[0].dtype if p else grad.dtype
    # errata 19: Grams and preconditioning in the stat dtype (all float64 for the code's double=True)
    G = xp.astype(grad, sdt, copy=False)
    stats = state.stats
    order = max(grad.shape, default=0)
    # per-mode Grams and roots are independent: backend.map_modes may run them concurrently (in mode order
    # for errors, as the serial loop)
    if k % config.update_freq == 0:
        b2 = config.beta2
        old = stats

        def accumulate(mode):
            gram = modes._mode_gram(G, mode, xp)  # G checked by _check_grad, cast above
            return old[mode] + gram if b2 == 1.0 else b2 * old[mode] + (1.0 - b2) * gram

        stats = tuple(backend.map_modes(accumulate, p, like=G, order=order))
    roots = state.roots
    if p and k % config.root_freq == 0:
        e = exponent(p, config)
        try:
            roots = tuple(backend.map_modes(lambda mode: inverse_root(stats[mode], e, config), p, like=G,
                                            order=order))
        except ValueError as exc:
            rdt = config.root_dtype or backend.dtype_name(sdt)
            raise ValueError(f"shampoo: inverse root of a statistic failed in {rdt} at step {k}: {exc}. Use eps > 0, "
                             f"root_dtype='float64', eps_mode='pinv' or variant='reference-code' (eigenvalue floor)"
                             ) from exc
    if p == 0 or k < config.start_preconditioning_step:
        direction = xp.asarray(grad, copy=True)  # a copy: the code's G aliasing is errata 20's quirk
    else:
        X = G
        code = config.variant == "reference-code"
        for mode, P in enumerate(roots):
            X = modes._mode_product(X, xp.matrix_transpose(P) if code else P, mode, xp)
        direction = xp.astype(X, grad.dtype, copy=False)
    count = xp.asarray(state.count + 1, dtype=xp.int32)  # NumPy 0-d arithmetic gives a scalar: wrap it
    new_state = ShampooState(count=count, stats=stats, roots=roots, template=state.template)
    return direction, new_state


shampoo = register(Algorithm("shampoo", Config, ShampooState, init, update))
