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
    "relative" (eps lambda_max(S) I, Google's scalable_shampoo), "pinv" (eigenvalues <= 4 n u lambda_max dropped,
    Meta's Distributed Shampoo; needs eps = 0).
  * ``"reference-code"``: the authors' code (``Preconditioner`` with ``iterative_matrix_roots=False``): the
    statistic starts at eps I (their ``matrix_eps``) and the root is V diag(max(lambda, eps)^{-1/e}) V^T with
    (lambda, V) = eigh(S + 1e-8 I) (``matrix_power_svd``; the 1e-8 shift is hard-wired and lost in float32 once
    ||S|| >~ 1e-8 / u). Roots are applied transposed, as their ``tensordot`` does (P_k^T; P_k is symmetric up to
    rounding). With ``root_method="coupled_newton"`` it follows their ``ComputePower``: ridge eps * lambda_max(S),
    entrywise-max residual, tolerance 1e-6, 100 iterations, last iterate kept when the target is missed; the code
    also adds that ridge to the statistic IN PLACE, a side effect not reproduced here.
  Both share the step driver of the code (notes Sec. 2): with k = count + 1, the statistics are updated when
  k % update_freq == 0, the roots recomputed when k % root_freq == 0 (identities before the first computation;
  ``Config.root_phase`` / ``before_first_root`` give the peers' other conventions),
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

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from . import algorithm, backend, linalg, modes, validate
from .algorithm import Algorithm, register, shape_of

__all__ = ["Config", "ShampooState", "State", "init", "update", "inverse_root", "exponent", "shampoo",
           "VARIANTS", "ROOT_METHODS", "DTYPES", "CODE_EIGH_SHIFT", "EPS_PLACEMENTS", "EXPONENT_RULES",
           "ROOT_PHASES", "BEFORE_FIRST_ROOT", "NEWTON_ERRORS", "is_root_step", "first_root_step",
           "bias_correction_factor"]

Array = Any

VARIANTS = ("paper", "reference-code")
ROOT_METHODS = ("eigh", "coupled_newton", "svd")
DTYPES = ("float32", "float64")
NEWTON_ON_FAIL = ("raise", "return", "eigh", "keep")
#: the conventions of the published implementations (``Config`` docstring, "Conventions")
EPS_PLACEMENTS = ("root", "statistic")
EXPONENT_RULES = ("2p", "p")
ROOT_PHASES = ("multiple", "first")
BEFORE_FIRST_ROOT = ("identity", "gradient", "zero")
NEWTON_ERRORS = ("fro", "max")

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
      beta2: statistic decay in [0, 1]; S <- beta2 S + (1 - beta2) G G^T when beta2 < 1, S <- S + G G^T at 1 (the
        paper's sum; the code's weights); 0 keeps the current gradient's G G^T only. Under "paper" eps does not
        decay with S (it is added at the root) unless eps_placement="statistic".
      update_freq: statistics are updated when k % update_freq == 0 (code: statistics_compute_steps).
      root_freq: roots recomputed when k % root_freq == 0 (code: preconditioning_compute_steps; root_phase).
      start_preconditioning_step: the direction is G while k < start (k = 1, 2, ... counts updates); 1 = always
        precondition (the paper).
      exponent_override: 0 = the rule of exponent_rule (default: the paper's e = 2p, matrix 4, vector 2, order-p
        tensor 2p); > 0 uses -1/e for every mode (code: inverse_exponent_override). Must be an integer for
        coupled Newton.
      root_method: "eigh" (``linalg.psd_power``), "coupled_newton" (``linalg.coupled_newton_inv_root``) or
        "svd" (Conventions below).
      root_dtype: None (= stat dtype), "float32" or "float64": precision of the root computation only.
      stat_dtype: None (= grad dtype), "float32" or "float64": precision of statistics, Grams and preconditioning.
      eps_mode: "paper" variant only: "absolute", "relative" or "pinv" (module docstring; ``linalg.psd_power``).
        Coupled Newton takes "absolute" (ridge eps) or "relative" (ridge eps * lambda_max).
      rcond: "pinv" only: None (default) drops the eigenvalues of S that are numerically zero by the rank rule,
        |lambda| <= 4 d u lambda_max (``validate.zero_tolerance``; u of the stat dtype); a real >= 0 drops
        lambda <= rcond * lambda_max instead, the cutoff of Meta's ``PseudoInverseConfig.rank_rtol`` (whose
        default, d eps = 2 d u, is half the rule's). Left out of golden vectors while None
        (``algorithm.OMIT_WHEN_DEFAULT``).
      variant: "paper" or "reference-code" (module docstring). When you reproduce Fig. 1, the authors ran the
        code: use "reference-code" with stat_dtype="float64" (shampoo64) or defaults (shampoo32).
      newton_tol, newton_max_iter: "paper" coupled Newton target on ||M - I||_F (None: linalg's 4 (n + p) u) and
        iteration cap.
      newton_on_fail: "paper" coupled Newton missing its target: "raise" (RuntimeError), "return" (keep the last
        iterate, as the code does) or "eigh" (answer by the eigh root instead).

    Conventions of the published implementations (each default is the behaviour from before these fields existed,
    so every result, golden vector and claim is unchanged; all are left out of golden vectors while at their
    default, ``algorithm.OMIT_WHEN_DEFAULT``). k = 1, 2, ... counts updates, n_k = k // update_freq the statistic
    updates so far, f = root_freq.
      bias_correction: False (default; the paper, torch-optimizer, pytorch-optimizer, Google's scalable_shampoo)
        or True: the root is taken of the debiased statistic S_k / (1 - beta2^{n_k}) (Adam's correction of an
        EMA started at 0; Meta's Distributed Shampoo ``use_bias_correction``). The state keeps the raw S_k
        (implementations storing the debiased average itself, e.g. heavyball's ``beta_debias``, hold
        S_k / (1 - beta2^{n_k})). Under eps_placement="statistic" the eps I inside S_k is divided too. No
        correction while n_k = 0. Needs beta2 < 1 (at beta2 = 1, 1 - beta2^n = 0: refused, not a no-op);
        at beta2 = 0 the factor is 1.
      eps_placement: "paper" variant: where eps I lives. "root" (default; the paper's Eq. 2 read as
        (S + eps I)^{-1/e}, Meta): S_0 = 0, eps added to the eigenvalues at root time, never decayed.
        "statistic" (torch-optimizer's ``epsilon``, pytorch-optimizer's ``matrix_eps`` in Shampoo and
        ScalableShampoo, Google's scalable_shampoo): S_0 = eps I and every update decays it,
        S_k = beta2 S_{k-1} + (1 - beta2) G G^T (beta2 = 1: eps I + sum G G^T), and the root takes S_k with no
        further eps ("absolute"; "relative" still adds eps lambda_max(S_k) I, ScalableShampoo's Newton ridge).
        Needs eps > 0 (so not "pinv"), and beta2 > 0 with "absolute" (beta2 = 0 drops eps I at the first
        update). The "reference-code" variant always starts at eps I (it is this placement with the authors'
        own root rule: eigh(S + 1e-8 I) floored at eps) and does not read this field.
      exponent_rule: the root order e as a function of the tensor order p when exponent_override = 0: "2p"
        (default; the paper, pytorch-optimizer, Google, Meta: S^{-1/(2p)}) or "p" (torch-optimizer's
        ``-1 / order``: S^{-1/p}, matrices S^{-1/2}). exponent_override > 0 still overrides both.
      root_phase: roots are recomputed at k = f, 2f, ... ("multiple", default: k % f == 0; pytorch-optimizer,
        Google, the KrADagrad code) or at k = 1, 1 + f, 1 + 2f, ... ("first": (k - 1) % f == 0;
        torch-optimizer, whose step counter starts at 0).
      before_first_root: what preconditions while no root has been computed (k < f under "multiple"; never
        under "first"). "identity" (default; Google, the KrADagrad code, ScalableShampoo): roots start as I and
        are exposed as I; the direction I G I is G exactly. "gradient": the direction is a copy of G and the
        roots are exposed as zero matrices, i.e. "not computed yet" (the directions equal "identity"'s: only the
        exposed roots differ; implementations that gate preconditioning on a computed root). "zero": roots
        start as 0 and are used, so the direction is exactly 0 (pytorch-optimizer's ``Shampoo``, whose
        ``inv_pre_cond`` is zero-initialised; torch-optimizer's is too, but its "first" phase computes a root
        at k = 1). k < start_preconditioning_step (direction G) takes precedence over all three.
      root_method "svd" (torch-optimizer; pytorch-optimizer's ``compute_power_svd``, ScalableShampoo
        ``use_svd=True``): U diag(sigma^{-1/e}) V^T from the SVD of A = S + shift I, formed explicitly as
        those peers' statistics hold it (shift: eps or eps lambda_max(S) as eps_mode; 0 under
        eps_placement="statistic" with "absolute"), symmetrized. Equal to eigh in exact arithmetic (A is PD, so
        U = V). In floating point the SVD sees |lambda|: once eps is lost against ||S|| (u ||S|| >~ eps, a
        rank-deficient S), an eigenvalue that rounding made negative (-delta) becomes a singular value delta
        with U = -V there, and the root carries -delta^{-1/e} (huge and negative) where eigh clips to 0 and
        adds eps. Taking the SVD of S and adding eps to sigma afterwards is NOT this: for singular S the
        null-space block U_0 V_0^T is any orthogonal matrix LAPACK picks (a reflection, e.g.), not I.
        "paper" variant, "absolute"/"relative" only.
      newton_on_fail "keep": when the coupled Newton root misses newton_tol (including the 1.2x
        residual-growth guard stopping it early, or a NaN), the previous cached root is kept (Google's and
        Meta's policy on a failed root; before the first root that is the before_first_root value).
      newton_error: the norm of the Newton residual ||M - I|| that newton_tol and the 1.2x guard use: "fro"
        (default) or "max" (entrywise max, ``torch.dist(p=inf)``; pytorch-optimizer's ScalableShampoo:
        newton_tol=1e-3, newton_error="max", newton_on_fail="return", eps_mode="relative",
        eps_placement="statistic": it returns the iterate before a >1.2x growth, else the converged or last one;
        it tests the tolerance only after a first step, krad_ref also before it, which differs only if
        M_0 = (q + 1) / (2 ||G||_F) G is already within tol = 1e-3 of I: never for even q <= 20 and d >= 2,
        since that needs G ~ c I with d within 0.2% of (q + 1)^2 / 4 = integer + 1/4; its 1 x 1 statistics
        take a closed form that Newton reaches too).
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
    rcond: float | None = field(default=None, metadata=algorithm.OMIT_WHEN_DEFAULT)
    variant: str = "paper"
    newton_tol: float | None = None
    newton_max_iter: int = 100
    newton_on_fail: str = "raise"
    bias_correction: bool = field(default=False, metadata=algorithm.OMIT_WHEN_DEFAULT)
    eps_placement: str = field(default="root", metadata=algorithm.OMIT_WHEN_DEFAULT)
    exponent_rule: str = field(default="2p", metadata=algorithm.OMIT_WHEN_DEFAULT)
    root_phase: str = field(default="multiple", metadata=algorithm.OMIT_WHEN_DEFAULT)
    before_first_root: str = field(default="identity", metadata=algorithm.OMIT_WHEN_DEFAULT)
    newton_error: str = field(default="fro", metadata=algorithm.OMIT_WHEN_DEFAULT)

    def __post_init__(self):
        validate.one_of(self.variant, "variant", VARIANTS)
        validate.one_of(self.root_method, "root_method", ROOT_METHODS)
        validate.one_of(self.eps_mode, "eps_mode", linalg.EPS_MODES)
        validate.one_of(self.newton_on_fail, "newton_on_fail", NEWTON_ON_FAIL)
        if self.rcond is not None:
            validate.real_scalar(self.rcond, "rcond", low=0.0)
            if self.eps_mode != "pinv":
                raise ValueError(f"rcond: only used with eps_mode='pinv', got eps_mode={self.eps_mode!r}")
        for name in ("root_dtype", "stat_dtype"):
            value = getattr(self, name)
            if value is not None:
                validate.one_of(value, name, DTYPES)
        eps = validate.real_scalar(self.eps, "eps", low=0.0)
        validate.real_scalar(self.beta2, "beta2", low=0.0, high=1.0)
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
        self._check_conventions(eps)

    def _check_conventions(self, eps: float) -> None:
        """The convention fields (class docstring, "Conventions"); each error names its field."""
        if not isinstance(self.bias_correction, bool):
            raise TypeError(f"bias_correction: expected a bool, got {type(self.bias_correction).__name__}")
        validate.one_of(self.eps_placement, "eps_placement", EPS_PLACEMENTS)
        validate.one_of(self.exponent_rule, "exponent_rule", EXPONENT_RULES)
        validate.one_of(self.root_phase, "root_phase", ROOT_PHASES)
        validate.one_of(self.before_first_root, "before_first_root", BEFORE_FIRST_ROOT)
        validate.one_of(self.newton_error, "newton_error", NEWTON_ERRORS)
        if self.bias_correction and self.beta2 == 1.0:
            raise ValueError("bias_correction: needs beta2 < 1 (at beta2 = 1 the statistic is a sum and "
                             "1 - beta2^k = 0); got beta2 = 1")
        if self.root_method == "svd" and (self.variant != "paper" or self.eps_mode == "pinv"):
            raise ValueError(f"root_method: 'svd' is a 'paper'-variant root with eps_mode 'absolute' or 'relative'; "
                             f"got variant={self.variant!r}, eps_mode={self.eps_mode!r}")
        if self.eps_placement == "statistic" and self.variant == "paper":
            if not eps > 0:
                raise ValueError(f"eps_placement: 'statistic' starts the statistic at eps I and needs eps > 0, "
                                 f"got eps = {eps}")
            if self.beta2 == 0.0 and self.eps_mode == "absolute":
                raise ValueError("eps_placement: 'statistic' with beta2 = 0 drops eps I at the first update, "
                                 "leaving the root of a rank-deficient G G^T undefined; use eps_placement='root'")


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
      config: its ``exponent_override`` > 0 replaces the rule; else ``exponent_rule`` "2p" (the paper) or "p"
        (torch-optimizer's -1/order).

    Returns:
      e as a float (an integer value unless overridden by a non-integer).
    """
    override = float(config.exponent_override)
    if override > 0:
        return override
    return float(2 * ndim if config.exponent_rule == "2p" else ndim)


def is_root_step(k: int, config: Config) -> bool:
    """Whether update k (k = 1, 2, ...) recomputes the roots: k % f == 0 ("multiple") or (k - 1) % f == 0
    ("first"), f = root_freq (``Config.root_phase``)."""
    shift = 0 if config.root_phase == "multiple" else 1
    return (k - shift) % config.root_freq == 0


def first_root_step(config: Config) -> int:
    """The first update that computes roots: root_freq ("multiple") or 1 ("first")."""
    return config.root_freq if config.root_phase == "multiple" else 1


def bias_correction_factor(k: int, config: Config) -> float:
    """1 / (1 - beta2^n), n = k // update_freq statistic updates after update k; 1 without bias correction or
    before the first statistic update (``Config.bias_correction``)."""
    n = k // config.update_freq
    if not config.bias_correction or n == 0:
        return 1.0
    return 1.0 / (1.0 - float(config.beta2) ** n)


def _eps_in_statistic(config: Config) -> bool:
    return config.variant == "reference-code" or config.eps_placement == "statistic"


def init(shape_or_array, config: Config, *, dtype=None, xp=None) -> ShampooState:
    """Initial Shampoo state: statistics 0 ("paper") or eps I ("reference-code", eps_placement="statistic"),
    roots I (before_first_root="identity") or 0, count 0.

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
    scale = config.eps if _eps_in_statistic(config) else 0.0
    stats = tuple(scale * xp.eye(d, dtype=sdt, device=dev) for d in shape)
    # roots before the first computation: I ("identity") or 0 ("gradient": not computed yet; "zero": used as 0)
    root0 = 1.0 if config.before_first_root == "identity" else 0.0
    roots = tuple(root0 * xp.eye(d, dtype=sdt, device=dev) for d in shape)
    return ShampooState(
        count=xp.asarray(0, dtype=xp.int32, device=dev),
        stats=stats,
        roots=roots,
        template=xp.zeros((0, *shape), dtype=dtype, device=dev),
    )


def inverse_root(S, e, config: Config, *, previous=None):
    """The inverse root of one statistic as Shampoo uses it, computed in ``config.root_dtype``.

    References:
      KrADagrad Eq. (3) (B^{-1/4}); code ``matrix_power_svd`` / ``ComputePower`` (notes Secs. 3, 7).

    Args:
      S: (d, d) symmetric PSD statistic as stored in the state (stat dtype; see :class:`ShampooState`).
      e: root order > 0 (:func:`exponent`).
      config: variant, root_method, root_dtype, eps, eps_mode, eps_placement and the Newton options.
      previous: the cached root (d, d) that newton_on_fail="keep" returns when the Newton root fails (default:
        the identity).

    Returns:
      (d, d) array in S's dtype: "paper": (S + eps I)^{-1/e} ("absolute"; "relative" / "pinv" as ``psd_power``;
      eps_placement="statistic": S^{-1/e}, the eps being inside S); "reference-code": V diag(max(lambda,
      eps)^{-1/e}) V^T, (lambda, V) = eigh(S + 1e-8 I), or the code's coupled Newton.

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
    A = backend.astype(S, _dtype_of(config.root_dtype, S.dtype, xp), xp, copy=False)
    if config.variant == "reference-code":
        P = _code_root(A, e, config, xp)
    elif config.root_method == "eigh":
        # S is checked in its own dtype; the eigenvalue tolerances follow S's rounding, not the root dtype's
        # (a float32 statistic cast to float64 keeps its float32-sized negative eigenvalues)
        _check_symmetric(S, xp)
        P = _eigh_root(A, e, config, S.dtype, xp)
    elif config.root_method == "svd":
        _check_symmetric(S, xp)
        P = _svd_root(A, e, config, xp)
    else:
        P = _newton_root(A, S, e, config, xp, previous)
    return backend.astype(P, out_dtype, xp, copy=False)  # roots live in the stat dtype (the code casts back)


def _check_symmetric(S, xp) -> None:
    """``validate.symmetric(S, "S")`` for a square S (its finiteness test is free for a statistic the running
    update has verified before the roots, ``algorithm.check_finite_arrays``)."""
    validate.finite(S, "S", xp=xp)
    validate._symmetric_within(S, "S", None, xp)


def _eigh_root(A, e, config, source_dtype, xp):
    """``linalg.psd_power(A, -1/e, eps=..., eps_mode, rcond, check=False, source_dtype)``: a :class:`Config` has
    validated these options at construction (the same bounds), so they go to the kernel without a second check."""
    if not isinstance(config, Config):
        return linalg.psd_power(A, -1.0 / e, eps=_root_eps(config), eps_mode=config.eps_mode, rcond=config.rcond,
                                check=False, source_dtype=source_dtype)
    rule_dtype = A.dtype if backend.unit_roundoff(A.dtype) >= backend.unit_roundoff(source_dtype) else source_dtype
    rcond = None if config.rcond is None else float(config.rcond)
    return linalg._psd_power(A, -1.0 / e, xp, eps=float(_root_eps(config)), eps_mode=config.eps_mode, rcond=rcond,
                             rule_dtype=rule_dtype)


def _root_eps(config: Config) -> float:
    """The eps the "paper" root adds: none when eps I already sits in the statistic with the absolute rule."""
    return 0.0 if config.eps_placement == "statistic" and config.eps_mode == "absolute" else config.eps


def _svd_root(A, e, config, xp):
    """root_method="svd": U diag(sigma^{-1/e}) V^T from svd(A + shift I) (Config docstring), symmetrized."""
    eps = _root_eps(config)
    shift = eps * float(linalg.norm_2(A, assume_symmetric=True)) if config.eps_mode == "relative" else eps
    if shift:
        A = A + shift * xp.eye(A.shape[0], dtype=A.dtype, device=backend.device(A))
    U, sig, Vh = xp.linalg.svd(A, full_matrices=False)
    if sig.shape[0] and not float(xp.min(sig)) > 0:
        raise ValueError(f"S: singular for the SVD root (smallest singular value of S + shift I = "
                         f"{float(xp.min(sig)):.3g}); pass eps > 0")
    return linalg.sym((U * sig ** (-1.0 / e)) @ Vh)


def _newton_root(A, S, e, config, xp, previous):
    """"paper" coupled Newton with newton_tol / newton_error / newton_max_iter and the newton_on_fail policy."""
    eps = _root_eps(config)
    ridge = eps * float(linalg.norm_2(A, assume_symmetric=True)) if config.eps_mode == "relative" else eps
    on_fail = "raise" if config.newton_on_fail == "raise" else "return"
    res = linalg.coupled_newton_inv_root(A, int(e), ridge=ridge, max_iter=config.newton_max_iter,
                                         tol=config.newton_tol, error=config.newton_error, on_fail=on_fail,
                                         check=False)
    if res.converged:
        return res.root
    if config.newton_on_fail == "eigh":
        return linalg.psd_power(A, -1.0 / e, eps=eps, eps_mode=config.eps_mode, check=False, source_dtype=S.dtype)
    if config.newton_on_fail == "keep":
        if previous is None:
            return xp.eye(A.shape[0], dtype=A.dtype, device=backend.device(A))
        return xp.astype(previous, A.dtype, copy=False)
    return res.root


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
    xp = algorithm.check_grad(grad, state.template, shape=shape, like_name="state.template")
    mats = [((d, d), _dtype_of(config.stat_dtype, grad.dtype, xp)) for d in shape]
    expected = {"count": ((), xp.int32), "stats": mats, "roots": mats, "template": ((0, *shape), grad.dtype)}
    algorithm.check_state(state, expected, grad, xp)
    return xp


def _grad_limit(config, grad, xp) -> float:
    # the mode Grams G_(k) G_(k)^T in the stat dtype: entries <= ||G||_F^2 (Cauchy-Schwarz)
    return algorithm.overflow_limit(_dtype_of(config.stat_dtype, grad.dtype, xp), xp, power=2)


@algorithm.overflow_guard(Config, _grad_limit, "the statistics G G^T")
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
    stats, roots = state.stats, state.roots
    update, root_step = k % config.update_freq == 0, bool(p) and is_root_step(k, config)
    if p and (update or root_step):
        # per-mode Grams and roots are independent: backend.map_mode_stages may run each mode's Gram, finiteness
        # check and root as one task, concurrently with the others; errors come in the serial order (all Grams,
        # then the checks, then the roots, each in mode order)
        b2, old = config.beta2, stats

        def accumulate(mode, _):
            gram = modes._mode_gram(G, mode, xp)  # G checked by _check_grad, cast above
            return old[mode] + gram if b2 == 1.0 else b2 * old[mode] + (1.0 - b2) * gram

        stages = [accumulate if update else (lambda mode, _: old[mode])]
        if update:  # an overflowed statistic is named before its root fails on it
            stages.append(backend.ModeCheck(
                lambda pairs: algorithm.check_finite_arrays((f"state.stats[{i}]", S) for i, S in pairs)))
        if root_step:
            e = exponent(p, config)
            c = bias_correction_factor(k, config)

            def root(mode, S):
                try:
                    return inverse_root(S * c if c != 1.0 else S, e, config, previous=state.roots[mode])
                except ValueError as exc:
                    rdt = config.root_dtype or backend.dtype_name(sdt)
                    raise ValueError(f"shampoo: inverse root of a statistic failed in {rdt} at step {k}: {exc}. Use "
                                     f"eps > 0, root_dtype='float64', eps_mode='pinv' or variant='reference-code' "
                                     f"(eigenvalue floor)") from exc

            stages.append(root)
        done = backend.map_mode_stages(stages, p, like=G, order=max(grad.shape), sizes=grad.shape)
        stats = tuple(values[0] for values in done)
        if root_step:
            roots = tuple(values[-1] for values in done)
    unrooted = config.before_first_root == "gradient" and k < first_root_step(config)
    if p == 0 or k < config.start_preconditioning_step or unrooted:
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
