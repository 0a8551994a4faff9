"""Ground-truth twins: the KrAD / KrADagrad* / KrADagrad / Shampoo / AdaGrad updates recomputed in mpmath.

A *twin* re-computes one optimizer's statistics, roots and preconditioned direction step by step at ``dps``
decimal digits from the same float inputs (gradients and initial factors are converted exactly, see
``proofs_check.mp``), so a test can measure how far a float64 or float32 trajectory of ``krad_ref`` drifts from
the exact one. The formulas are written here from the paper, the code notes and the errata, independently of
``krad_ref``'s algorithm modules (never imported here); a krad_ref ``Config`` is read only through its field
values (``params_from_config``), so the twin follows the same options: variant, t_rule, alpha / exponent,
init_scale, beta2, damping, schedule, update_freq, root_freq, start_preconditioning_step, root_shift, Shampoo's
eps / eps_mode / exponent_override and its conventions (bias_correction, eps_placement, exponent_rule, root_phase,
before_first_root; coupled Newton run in mp when newton_tol is set), AdaGrad's delta / form / eps_placement /
initial_accumulator. Options that change only float accuracy (root_method, root_dtype, stat_dtype) have no
exact counterpart and are ignored.

Formulas (matrix G, m x n; order-p tensors use the mode-i unfolding G_(i) and one factor per mode):

* KrAD factor update, KrADagrad Eq. (13):  L <- L - (1/t) L A L,  A = G R G^T (the Gram of G with the other
  factor(s) applied), after the optional decay L <- L / beta2 (the authors' code) and damping
  L <- L - eps L^2 (KrADagrad code; errata 13), with t from a t-rule evaluated on that L (errata 18):
    "spectral"  t = 1 + ||L A||_2        (Prop. 3.2)
    "frobenius" t = 1 + ||L A||_F        (Prop. 3.2, Sec. 3.3.2 / Alg. 1 text)
    "trace"     t = 1 + tr(L A)
    "code"      KrADagrad*: t = d (1 + tr(L A)), d = size of the factor (notes 4.2); KrADagrad: the Frobenius
                rule on the damped factor (notes 5.2)
* KrADagrad* (Alg. 1 with errata 1's intended update line (L_k, R_k) = (L - dL, R - dR)), k = count + 1: on
  statistics steps (k % update_freq == 0) every factor is updated with its plain mode Gram A_i = G_(i) G_(i)^T;
  on root steps (k % root_freq == 0) P_i = (L_i + root_shift I)^{e}, e = alpha / p (matrix L^{1/4}, vector
  L^{1/2}) unless ``exponent`` is set, roots I before the first; direction G x_1 P_1 ... x_p P_p (matrix
  L^{1/4} G R^{1/4}), or G while k < start_preconditioning_step.
* KrADagrad (alternating, Sec. 3.2 / App. C.1), s = count from 0: one mode i per statistics step (schedule
  "alternate", errata 21, or the code's "sqrt", notes 5.2); "paper": A = G_(i) (kron_{j != i} L_j) G_(i)^T
  (matrix, i = 0: G R G^T, exactly Eq. 13); "reference-code": A = Ghat_(i) Ghat_(i)^T with Ghat = G x_{j != i} P_j,
  the cached roots, and the code's direction Ghat x_i P_i on statistics steps; roots L^{1/2} of the factors
  updated since the last root step (s % root_freq == 0).
* Shampoo (Eqs. 2-3), k = count + 1: "paper" S_i = sum w G_(i) G_(i)^T (w = 1, or beta2 decay with 1 - beta2),
  P_i = (S_i + eps I)^{-1/e} ("relative": + eps lambda_max(S_i) I; "pinv": exact zeros dropped), e = 2p unless
  ``exponent_override``; "reference-code" S_i(0) = eps I, P_i = V diag(max(lambda + 1e-8, eps)^{-1/e}) V^T
  (``matrix_power_svd``). Vectors: (eps I + sum g g^T)^{-1/2} g = full AdaGrad (errata 4).
* AdaGrad, Sec. 2.3: full  H = sum g g^T (g = vec(G) column-major), direction (delta I + H)^{-1/2} g
  ("kradagrad") or (delta I + H^{1/2})^{-1} g ("duchi"); diagonal  v = v0 + sum g^2, direction g / sqrt(v + eps)
  ("inside") or g / (sqrt(v) + eps) ("outside"), 0 where the denominator is 0.

Representation: internally object ndarrays of mpf (numpy's matmul on object arrays adds and multiplies at the
current mpmath precision, so everything runs inside ``mp.workdps(dps)``). Returned factors and roots are
``mpmath.matrix``; a direction is an ``mpmath.matrix`` for a matrix gradient and an object ndarray of mpf (the
gradient's shape) otherwise: :func:`rel_error` compares either with a float array, :func:`to_float` rounds once.

Precision: every operation is rounded at ``dps`` digits (default 50); over k steps on factors with condition
number kappa the twin's relative error is ~ k kappa 10^-dps, far below any float32/float64 effect.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any, Mapping, Sequence

import mpmath
import numpy as np

from . import mp as M

__all__ = [
    "ALGORITHMS",
    "T_RULES",
    "SCHEDULES",
    "VARIANTS",
    "CODE_EIGH_SHIFT",
    "params_from_config",
    "twin_trajectory",
    "krad_factor",
    "t_value",
    "krad_update",
    "mode_gram",
    "mode_product",
    "psd_fn",
    "schedule_mode",
    "rel_error",
    "to_float",
    "mbag_newton_schulz",
]

ALGORITHMS = ("kradagrad_star", "kradagrad", "shampoo", "adagrad_full", "adagrad_diag", "mbag", "mbag_ema", "mbag_n")
T_RULES = ("spectral", "frobenius", "trace", "code")
SCHEDULES = ("alternate", "sqrt")
VARIANTS = ("paper", "reference-code")

#: The authors' root ridge (``matrix_power_svd``: eigh(A + 1e-8 I)), used by every reference-code root.
CODE_EIGH_SHIFT = 1e-8

# Twin parameters per algorithm with their defaults, which are krad_ref's "paper" defaults; a krad_ref Config
# (resolved for its variant) supplies values by the same names (params_from_config).
_DEFAULTS: dict[str, dict[str, Any]] = {
    # Alg. 1: L_0 = R_0 = I, alpha = 1/2, Sec. 3.3.2's Frobenius t; "code": t = d (1 + tr)
    "kradagrad_star": dict(variant="paper", t_rule="frobenius", alpha=Fraction(1, 2), exponent=None,
                           init_scale=1.0, beta2=1.0, damping=0.0, update_freq=1, root_freq=1,
                           start_preconditioning_step=1, root_shift=0.0),
    # Sec. 3.2: Prop. 3.2's spectral t, roots L^{1/2}, strict alternation (errata 21); "code": Frobenius t on
    # the damped factor, the sqrt(s) schedule, damping matrix_eps, Grams from the current roots
    "kradagrad": dict(variant="paper", t_rule="spectral", exponent=Fraction(1, 2), init_scale=1.0, beta2=1.0,
                      damping=0.0, schedule="alternate", update_freq=1, root_freq=1,
                      start_preconditioning_step=0, root_shift=0.0),
    # Eqs. 2-3. "paper": statistic S = sum G G^T, root (S + eps I)^{-1/e} ("absolute"), (S + eps lambda_max I)
    # ("relative"); "reference-code": S_0 = eps I, root eigh(S + 1e-8 I) floored at eps. e = 2p unless overridden.
    "shampoo": dict(variant="paper", eps=1e-6, beta2=1.0, exponent_override=0, eps_mode="absolute",
                    root_method="eigh", update_freq=1, root_freq=1, start_preconditioning_step=1, rcond=None),
    # Sec. 2.3: "kradagrad" (delta I + H)^{-1/2} g, "duchi" (delta I + H^{1/2})^{-1} g; H = sum g g^T, g = vec(G)
    "adagrad_full": dict(delta=1e-6, form="kradagrad"),
    "adagrad_diag": dict(eps=1e-6, eps_placement="inside", initial_accumulator=0.0),
    # MBAG Alg. 1 / Alg. 2 / MBAG-N (krad_ref.mbag defaults). root_method changes the exact value here: a fixed
    # T_NS Newton-Schulz root is compared with the same T_NS steps in mp (errata 6). floor_dtype: the u of
    # MBAG-EMA's automatic damping floor 16 tau u ||G||_F (damping_floor=None); a twin-only parameter.
    "mbag": dict(lam=0.01, beta=0.9, T_sqr=50, T_NS=5, tau=None, remainder="error", root_method="newton_schulz"),
    "mbag_ema": dict(lam=0.01, beta=0.9, alpha=0.99, T_sqr=50, T_NS=5, tau=None, remainder="error",
                     root_method="newton_schulz", damping_floor=None, floor_dtype="float64"),
    "mbag_n": dict(lam=0.01, beta=0.9, tau=None, remainder="error"),
}


# Shampoo's conventions of the published implementations (krad_ref.shampoo.Config, "Conventions"); the defaults
# are the paper's. The Newton options change the exact value only when newton_tol is set (``_shampoo_newton``).
_DEFAULTS["shampoo"].update(bias_correction=False, eps_placement="root", exponent_rule="2p", root_phase="multiple",
                            before_first_root="identity", newton_tol=None, newton_error="fro",
                            newton_on_fail="raise", newton_max_iter=100)


def params_from_config(algorithm_id: str, config: Any = None, **overrides: Any) -> dict[str, Any]:
    """The twin's parameters for ``algorithm_id``: defaults, then a Config's fields, then ``overrides``.

    A Config is read only through its attribute values (``config.resolved()`` first when it has one, so that
    ``None`` fields take their variant's default), by the krad_ref field names of ``_DEFAULTS``. Fields the twin
    does not model change nothing exact: root method and dtypes (float accuracy only). A nonzero
    ``weight_decay`` raises (the twins take no parameters W). Unknown override names raise ``TypeError``.
    """
    if algorithm_id not in ALGORITHMS:
        raise ValueError(f"algorithm_id: expected one of {ALGORITHMS}, got {algorithm_id!r}")
    params = dict(_DEFAULTS[algorithm_id])
    if config is not None:
        cfg = config.resolved() if callable(getattr(config, "resolved", None)) else config
        for key in params:
            if getattr(cfg, key, None) is not None:
                params[key] = getattr(cfg, key)
        if getattr(cfg, "weight_decay", 0):
            # weight decay adds lambda W, and a twin sees gradients only (no parameters): refuse, do not ignore it
            raise ValueError(f"config: weight_decay = {cfg.weight_decay:g} is outside the twins' scope "
                             f"(they take gradients, not the parameters W that weight decay needs); use 0")
    bad = sorted(set(overrides) - set(params))
    if bad:
        raise TypeError(f"{algorithm_id}: unknown twin parameter(s) {bad}; known: {sorted(params)}")
    params.update(overrides)
    if "variant" in params and params["variant"] not in VARIANTS:
        raise ValueError(f"variant: expected one of {VARIANTS}, got {params['variant']!r}")
    if "t_rule" in params and params["t_rule"] not in T_RULES:
        raise ValueError(f"t_rule: expected one of {T_RULES}, got {params['t_rule']!r}")
    sched = params.get("schedule")
    if sched is not None and not isinstance(sched, (list, tuple)) and sched not in SCHEDULES:
        raise ValueError(f"schedule: expected one of {SCHEDULES} or a sequence of modes, got {sched!r}")
    if params.get("eps_mode", "absolute") not in ("absolute", "relative", "pinv"):
        raise ValueError(f"eps_mode: expected 'absolute', 'relative' or 'pinv', got {params['eps_mode']!r}")
    return params


# --------------------------------------------------------------------------------------------------------------
# object-array helpers (all arithmetic at the current mpmath precision)
# --------------------------------------------------------------------------------------------------------------
_to_mpf_u = np.frompyfunc(M.to_mpf, 1, 1)


def _obj(x: Any) -> np.ndarray:
    """x (float array of any backend, mpmath.matrix, object array) as an object ndarray of mpf, exactly."""
    if isinstance(x, np.ndarray) and x.dtype == object:
        return x
    if isinstance(x, mpmath.matrix):
        return np.array(x.tolist(), dtype=object).reshape(x.rows, x.cols)
    arr = np.asarray(x) if isinstance(x, (np.ndarray, list, tuple, float, int)) else np.asarray(_host(x))
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"expected a real float array, got {arr.dtype}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError("expected finite entries (NaN or inf found)")
    if arr.ndim == 0:
        return np.array(M.to_mpf(arr[()]), dtype=object)
    return _to_mpf_u(arr.astype(np.float64) if arr.dtype.itemsize <= 8 and arr.dtype.kind == "f" else arr)


def _host(x: Any) -> np.ndarray:
    from krad_ref import backend

    return backend.to_numpy(x)


def _eye(n: int) -> np.ndarray:
    out = np.empty((n, n), dtype=object)
    zero, one = mpmath.mpf(0), mpmath.mpf(1)
    for i in range(n):
        for j in range(n):
            out[i, j] = one if i == j else zero
    return out


def _sym(A: np.ndarray) -> np.ndarray:
    half = mpmath.mpf(0.5)
    return (A + A.T) * half


def _to_matrix(A: np.ndarray) -> mpmath.matrix:
    return mpmath.matrix(A.tolist())


def _trace(A: np.ndarray):
    return mpmath.fsum(A[i, i] for i in range(A.shape[0]))


def _fro(A: np.ndarray):
    return mpmath.sqrt(mpmath.fsum(A.ravel().tolist(), squared=True))


def mode_gram(T: np.ndarray, i: int) -> np.ndarray:
    """G_(i) G_(i)^T: the mode-i Gram of a tensor (object array), d_i x d_i. For a matrix, i = 0: G G^T, i = 1:
    G^T G; for a vector, g g^T."""
    U = np.moveaxis(T, i, 0).reshape(T.shape[i], -1)
    return _sym(U @ U.T)


def mode_product(T: np.ndarray, P: np.ndarray, i: int) -> np.ndarray:
    """T x_i P: mode-i product, (T x_i P)_(i) = P T_(i). For a matrix, i = 0: P G; i = 1: G P^T."""
    out = np.tensordot(P, np.moveaxis(T, i, 0), axes=([1], [0]))
    return np.moveaxis(out, 0, i)


def psd_fn(A: Any, e: Any, *, shift: Any = 0, floor: Any = 0) -> np.ndarray:
    """Q diag(max(w + shift, floor)^e) Q^T for symmetric A (eigendecomposition in mp, ``mp.mp_eigsy``).

    ``shift``/``floor`` mirror the authors' code (eigh(A + 1e-8 I); Shampoo's max(lambda, eps)); both 0 is A^e.
    Eigenvalues <= 0 after shift and floor give 0 for e > 0 and raise for e < 0.
    """
    A = _obj(A)
    n = A.shape[0]
    em = M.to_mpf(e) if not isinstance(e, mpmath.mpf) else e
    w, Q = M.mp_eigsy(_sym(A))
    sh, fl = M.to_mpf(shift), M.to_mpf(floor)
    vals = []
    for v in w:
        v = max(v + sh, fl)
        if v <= 0:
            if em < 0:
                raise ValueError(f"psd_fn: negative power {mpmath.nstr(em, 5)} of a singular matrix")
            vals.append(mpmath.mpf(0))
        else:
            vals.append(mpmath.power(v, em))
    Qo = _obj(Q)
    return _sym((Qo * np.array(vals, dtype=object)) @ Qo.T) if n else Qo


def _exponent(e: Any):
    if isinstance(e, Fraction):
        return mpmath.mpf(e.numerator) / e.denominator
    return M.to_mpf(e)


# --------------------------------------------------------------------------------------------------------------
# KrAD pieces (krad_ref/krad.py's twins)
# --------------------------------------------------------------------------------------------------------------
def krad_factor(C: Any, U: Sequence[Any], *, dps: int | None = None) -> mpmath.matrix:
    """Lemma 3.1: B = sum_i U_i C^{-1} U_i^T for PD C (n x n) and matrices U_i (m x n), in mp."""
    with M.workdps(dps):
        Ci = _obj(mpmath.inverse(M.to_mp(C)))
        mats = [_obj(u) for u in U]
        B = sum((X @ Ci @ X.T for X in mats[1:]), mats[0] @ Ci @ mats[0].T)
        return _to_matrix(_sym(B))


def _t(rule: str, L: np.ndarray, A: np.ndarray, scheme: str):
    N = L @ A
    if rule == "spectral":
        return 1 + M.mp_norm_2(N)
    if rule == "frobenius" or (rule == "code" and scheme == "alternating"):
        return 1 + _fro(N)
    tr = _trace(N)
    return 1 + tr if rule == "trace" else L.shape[0] * (1 + tr)


def t_value(rule: str, L: Any, A: Any, *, scheme: str = "star", dps: int | None = None) -> mpmath.mpf:
    """t from a t-rule (module docstring) for the factor L and the Gram A = G R G^T, in mp.

    ``rule="code"`` depends on the scheme, as in the authors' two codes (errata 18): ``"star"`` (KrADagrad*)
    t = d (1 + tr(L A)), ``"alternating"`` (KrADagrad) the Frobenius rule on the (damped) L passed in.
    """
    if rule not in T_RULES:
        raise ValueError(f"rule: expected one of {T_RULES}, got {rule!r}")
    if scheme not in ("star", "alternating"):
        raise ValueError(f"scheme: expected 'star' or 'alternating', got {scheme!r}")
    with M.workdps(dps):
        return _t(rule, _obj(L), _obj(A), scheme)


def _krad_step(L: np.ndarray, A: np.ndarray, rule: str, *, scheme: str = "star", beta2=1.0, damping=0.0, t=None):
    """One Eq. (13) update of factor L with Gram A (object arrays): decay L / beta2, damping L - eps L^2, then
    L - L A L / t. Returns (L_new, t, L_used)."""
    if beta2 != 1:
        L = L / M.to_mpf(beta2)
    if damping:
        L = _sym(L - M.to_mpf(damping) * (L @ L))
    t = _t(rule, L, A, scheme) if t is None else (t if isinstance(t, mpmath.mpf) else M.to_mpf(t))
    return _sym(L - (L @ A @ L) / t), t, L


def krad_update(L: Any, G: Any, R: Any = None, *, t_rule: str = "frobenius", t: Any = None, beta2: float = 1.0,
                damping: float = 0.0, scheme: str = "star", dps: int | None = None) -> tuple[mpmath.matrix, mpmath.mpf]:
    """Eq. (13): L_k = L - (1/t) L G R G^T L (R = I when None), t from ``t_rule`` unless given. Returns (L_k, t)."""
    with M.workdps(dps):
        Gm = _obj(G)
        if Gm.ndim == 1:
            Gm = Gm.reshape(-1, 1)
        A = _sym(Gm @ Gm.T) if R is None else _sym(Gm @ _obj(R) @ Gm.T)
        Lk, tk, _ = _krad_step(_obj(L), A, t_rule, scheme=scheme, beta2=beta2, damping=damping, t=t)
        return _to_matrix(Lk), tk


def schedule_mode(schedule: Any, step: int, dims: Sequence[int], update_freq: int = 1) -> int:
    """The mode KrADagrad updates at (statistics) step ``step`` = s, counted from 0 (the code's global counter).

    "alternate": (s // update_freq) mod p, i.e. L, R, L, R over statistics steps (errata 21). "sqrt": the reference
    code (notes 5.2): s < p^2: s mod p; else r = floor(sqrt(s)), x = s - r^2: x if x < p else the first largest
    mode. A sequence of modes is an explicit schedule, indexed by s.
    """
    p = len(dims)
    if isinstance(schedule, (list, tuple)):
        ix = int(schedule[step])
        if not 0 <= ix < p:
            raise ValueError(f"schedule[{step}] = {ix}: expected a mode in 0..{p - 1}")
        return ix
    if schedule == "alternate":
        return (step // update_freq) % p
    if schedule != "sqrt":
        raise ValueError(f"schedule: expected one of {SCHEDULES}, got {schedule!r}")
    if step < p * p:
        return step % p
    r = math.isqrt(step)
    x = step - r * r
    return x if x < p else int(np.argmax(dims))


# --------------------------------------------------------------------------------------------------------------
# trajectories
# --------------------------------------------------------------------------------------------------------------
def _init_factors(init: Any, dims: Sequence[int], scale: Any) -> list[np.ndarray]:
    if init is None:
        s = M.to_mpf(scale)
        return [_eye(d) * s for d in dims]
    if isinstance(init, Mapping):
        keys = [k for k in ("L", "R") if k in init] or list(init)
        init = [init[k] for k in keys]
    elif hasattr(init, "_fields"):  # a krad_ref State NamedTuple: its factors / stats
        for name in ("factors", "stats"):
            if name in init._fields:
                init = getattr(init, name)
                break
        else:
            raise ValueError(f"init: a state without factors/stats fields ({init._fields})")
    mats = [_obj(x) for x in init]
    if len(mats) != len(dims) or any(A.shape != (d, d) for A, d in zip(mats, dims)):
        raise ValueError(f"init: expected {len(dims)} square factors of sizes {tuple(dims)}, got "
                         f"{[A.shape for A in mats]}")
    return mats


def _grad_list(grads: Sequence[Any]) -> list[np.ndarray]:
    out = []
    for k, g in enumerate(grads):
        arr = g if isinstance(g, np.ndarray) else np.asarray(_host(g))
        if arr.dtype.kind != "f":
            raise TypeError(f"grads[{k}]: expected a real float array, got {arr.dtype}")
        out.append(arr)
    if out and any(g.shape != out[0].shape for g in out):
        raise ValueError(f"grads: expected one shape, got {sorted({g.shape for g in out})}")
    return out


def _direction(T: np.ndarray, roots: Sequence[np.ndarray]) -> np.ndarray:
    for i, P in enumerate(roots):
        T = mode_product(T, P, i)
    return T


def _out_dir(D: np.ndarray):
    return _to_matrix(D) if D.ndim == 2 else D


def _star_steps(G_list, p, init, roots):
    """KrADagrad* (krad_ref.kradagrad.star_update): step k = count + 1; statistics when k % update_freq == 0,
    roots when k % root_freq == 0 (identity before), direction G while k < start_preconditioning_step."""
    dims = G_list[0].shape
    order = len(dims)
    e = _exponent(p["exponent"]) if p["exponent"] is not None else _exponent(Fraction(p["alpha"]) / order)
    Ls = _init_factors(init, dims, p["init_scale"])
    Ps = [_eye(d) for d in dims]
    out = []
    for k, Gf in enumerate(G_list, 1):
        T = _obj(Gf)
        ts = None
        if k % p["update_freq"] == 0:
            ts = []
            for i in range(order):
                Ls[i], t, _ = _krad_step(Ls[i], mode_gram(T, i), p["t_rule"], scheme="star", beta2=p["beta2"],
                                         damping=p["damping"])
                ts.append(t)
            ts = tuple(ts)
        rec = {"count": k, "factors": tuple(_to_matrix(L) for L in Ls), "t": ts}
        if roots:
            if k % p["root_freq"] == 0:
                Ps = [psd_fn(L, e, shift=p["root_shift"]) for L in Ls]
            rec["roots"] = tuple(_to_matrix(P) for P in Ps)
            rec["direction"] = _out_dir(T if k < p["start_preconditioning_step"] else _direction(T, Ps))
        out.append(rec)
    return out


def _alt_steps(G_list, p, init, roots):
    """KrADagrad (krad_ref.kradagrad.alt_update): step s = count (from 0), one mode per statistics step.

    "paper": A = G_(i) (kron_{j != i} L_j) G_(i)^T (Eq. 13 with the other factors themselves). "reference-code":
    A = Ghat_(i) Ghat_(i)^T with Ghat = G x_{j != i} P_j, the *cached* roots (as the code), and the code's
    direction Ghat x_i P_i on statistics steps. Roots of factors updated since the last root step are refreshed
    when s % root_freq == 0.
    """
    dims = G_list[0].shape
    order = len(dims)
    code = p["variant"] == "reference-code"
    e = _exponent(p["exponent"])
    Ls = _init_factors(init, dims, p["init_scale"])
    Ps = [_eye(d) for d in dims]
    pending = [False] * order
    out = []
    for s, Gf in enumerate(G_list):
        T = _obj(Gf)
        ix, t, Ghat = None, None, None
        if s % p["update_freq"] == 0:
            ix = schedule_mode(p["schedule"], s, dims, p["update_freq"])
            if code:
                Ghat = T
                for j in range(order):
                    if j != ix:
                        Ghat = mode_product(Ghat, Ps[j], j)
                A = mode_gram(Ghat, ix)
            else:
                H = T
                for j in range(order):
                    if j != ix:
                        H = mode_product(H, Ls[j], j)
                Ti = np.moveaxis(T, ix, 0).reshape(dims[ix], -1)
                Hi = np.moveaxis(H, ix, 0).reshape(dims[ix], -1)
                A = _sym(Ti @ Hi.T)
            Ls[ix], t, _ = _krad_step(Ls[ix], A, p["t_rule"], scheme="alternating", beta2=p["beta2"],
                                      damping=p["damping"])
            pending[ix] = True
        if roots and s % p["root_freq"] == 0:
            for j in range(order):
                if pending[j]:
                    Ps[j] = psd_fn(Ls[j], e, shift=p["root_shift"])
                    pending[j] = False
        rec = {"count": s + 1, "mode": ix, "t": t, "factors": tuple(_to_matrix(L) for L in Ls)}
        if roots:
            if s >= p["start_preconditioning_step"]:
                D = mode_product(Ghat, Ps[ix], ix) if Ghat is not None else _direction(T, Ps)
            else:
                D = Ghat if Ghat is not None else T
            rec["roots"] = tuple(_to_matrix(P) for P in Ps)
            rec["direction"] = _out_dir(D)
        out.append(rec)
    return out


def _shampoo_root(S: np.ndarray, e, p) -> np.ndarray:
    eps = M.to_mpf(p["eps"])
    if p["eps_placement"] == "statistic" and p["variant"] == "paper" and p["eps_mode"] == "absolute":
        return psd_fn(S, e)  # eps I is inside S (krad_ref.shampoo._root_eps)
    if p["variant"] == "reference-code":
        if p["root_method"] == "coupled_newton":  # the code's ComputePower: ridge eps * lambda_max(S)
            return psd_fn(S, e, shift=eps * M.mp_lambda_max(_to_matrix(S)))
        return psd_fn(S, e, shift=CODE_EIGH_SHIFT, floor=eps)
    mode = p["eps_mode"]
    if mode == "absolute":
        return psd_fn(S, e, shift=eps)
    if mode == "relative":
        return psd_fn(S, e, shift=eps * M.mp_lambda_max(_to_matrix(S)))
    # "pinv": exact pseudo-power; eigenvalues below 10^-(dps/2) lambda_max count as the exact zeros they are, or,
    # with an explicit rcond, every eigenvalue <= rcond lambda_max is dropped as krad_ref's psd_power does
    w, Q = M.mp_eigsy(_to_matrix(S))
    rel = mpmath.mpf(10) ** (-(mpmath.mp.dps // 2)) if p["rcond"] is None else M.to_mpf(p["rcond"])
    thr = rel * max(abs(x) for x in w)
    f = [mpmath.power(v, e) if v > thr else mpmath.mpf(0) for v in w]
    Qo = _obj(Q)
    return _sym((Qo * np.array(f, dtype=object)) @ Qo.T)


def _shampoo_newton(S: np.ndarray, e, p, prev: np.ndarray) -> np.ndarray | None:
    """The "paper" coupled Newton root run in mp with krad_ref's stopping rule, when newton_tol is set (else None:
    the exact root stands for it). (linalg.coupled_newton_inv_root, Guo-Higham Eq. 3.2): G = S + ridge I,
    z = (1 + q) / (2 ||G||_F), X_0 = z^{1/q} I, M_0 = z G, T = ((q + 1) I - M) / q, X <- X T, M <- T^q M, while
    ||M - I|| > tol ("fro" or entrywise "max") and fewer than newton_max_iter steps; a step whose residual grows
    past 1.2x is not taken. A missed target answers by newton_on_fail: "return" the iterate, "keep" ``prev``,
    "eigh" the exact root, "raise" a RuntimeError."""
    if p["root_method"] != "coupled_newton" or p["variant"] != "paper" or p["newton_tol"] is None:
        return None
    q = int(round(float(-1 / e)))
    eps = M.to_mpf(p["eps"])
    ridge = mpmath.mpf(0) if p["eps_placement"] == "statistic" and p["eps_mode"] == "absolute" else eps
    if p["eps_mode"] == "relative":
        ridge = eps * M.mp_lambda_max(_to_matrix(S))
    n = S.shape[0]
    I = _eye(n)
    G = S + I * ridge
    measure = (lambda A: _fro(A)) if p["newton_error"] == "fro" else (lambda A: max(abs(x) for x in A.ravel()))
    tol = M.to_mpf(p["newton_tol"])
    z = (1 + q) / (2 * _fro(G))
    X, Mm = I * mpmath.power(z, mpmath.mpf(1) / q), G * z
    err, k = measure(Mm - I), 0
    while err > tol and k < int(p["newton_max_iter"]):
        Tm = (I * (q + 1) - Mm) / q
        Tq = I
        for _ in range(q):
            Tq = Tq @ Tm
        Xn, Mn = X @ Tm, Tq @ Mm
        err_n = measure(Mn - I)
        if not err_n <= mpmath.mpf(1.2) * err:
            break
        X, Mm, err, k = Xn, Mn, err_n, k + 1
    if err <= tol or p["newton_on_fail"] == "return":
        return _sym(X)
    if p["newton_on_fail"] == "keep":
        return prev
    if p["newton_on_fail"] == "eigh":
        return None
    raise RuntimeError(f"twin coupled Newton: residual {mpmath.nstr(err, 5)} > tol after {k} iterations")


def _shampoo_exponent(p, order: int):
    ov = p["exponent_override"]
    if ov and float(ov) > 0:
        return -1 / _exponent(ov)
    return mpmath.mpf(-1) / (2 * order if p["exponent_rule"] == "2p" else order)


def _shampoo_steps(G_list, p, init, roots):
    """Shampoo (krad_ref.shampoo.update): k = count + 1; "paper" keeps S = sum G G^T (beta2-weighted) and takes
    (S + eps I)^{-1/e}; "reference-code" starts from S = eps I and floors eigenvalues at eps (module docstring).

    Conventions (krad_ref.shampoo.Config): eps_placement="statistic" starts S at eps I, decays it with S and adds
    no eps at the root ("absolute"); bias_correction divides S by 1 - beta2^n (n statistic updates so far) before
    the root; exponent_rule "p" takes S^{-1/p}; root_phase "first" computes roots when (k - 1) % root_freq == 0;
    before_first_root: roots I ("identity"), or 0 with the direction G ("gradient") or 0 ("zero")."""
    dims = G_list[0].shape
    order = len(dims)
    e = _shampoo_exponent(p, order)
    code = p["variant"] == "reference-code"
    Ss = _init_factors(init, dims, p["eps"] if code or p["eps_placement"] == "statistic" else 0)
    before = p["before_first_root"]
    Ps = [_eye(d) * (1 if before == "identity" else 0) for d in dims]
    b2 = M.to_mpf(p["beta2"])
    phase = 0 if p["root_phase"] == "multiple" else 1
    n_upd, rooted = 0, False
    out = []
    for k, Gf in enumerate(G_list, 1):
        T = _obj(Gf)
        if k % p["update_freq"] == 0:
            n_upd += 1
            for i in range(order):
                gram = mode_gram(T, i)
                Ss[i] = Ss[i] + gram if p["beta2"] == 1 else Ss[i] * b2 + gram * (1 - b2)
        rec = {"count": k, "factors": tuple(_to_matrix(S) for S in Ss)}
        if roots:
            if (k - phase) % p["root_freq"] == 0:
                scale = 1 / (1 - b2 ** n_upd) if p["bias_correction"] and n_upd else 1
                new = []
                for S, P in zip(Ss, Ps):
                    R = _shampoo_newton(S * scale, e, p, P)
                    new.append(_shampoo_root(S * scale, e, p) if R is None else R)
                Ps, rooted = new, True
            rec["roots"] = tuple(_to_matrix(P) for P in Ps)
            raw = k < p["start_preconditioning_step"] or (before == "gradient" and not rooted)
            rec["direction"] = _out_dir(T if raw else _direction(T, Ps))
        out.append(rec)
    return out


def _vec(T: np.ndarray) -> np.ndarray:
    """Column-major vec of an object array of any order (krad_ref.adagrad's _flat)."""
    return T.reshape(-1, order="F")


def _adagrad_full_steps(G_list, p, init, roots):
    shape = G_list[0].shape
    N = int(np.prod(shape))
    if init is None:
        H = _eye(N) * mpmath.mpf(0)
    else:
        H = _obj(init.H if hasattr(init, "H") else (init[0] if isinstance(init, (list, tuple)) else init))
    delta = M.to_mpf(p["delta"])
    out = []
    for k, Gf in enumerate(G_list, 1):
        g = _vec(_obj(Gf))
        H = H + np.outer(g, g)
        rec = {"count": k, "factors": (_to_matrix(H),)}
        if roots:
            if p["form"] == "kradagrad":
                P = psd_fn(H, mpmath.mpf(-0.5), shift=delta)
            else:
                w, Q = M.mp_eigsy(_to_matrix(H))
                Qo = _obj(Q)
                f = np.array([1 / (delta + mpmath.sqrt(max(v, 0))) for v in w], dtype=object)
                P = _sym((Qo * f) @ Qo.T)
            rec["roots"] = (_to_matrix(P),)
            rec["direction"] = _out_dir((P @ g).reshape(shape, order="F"))
        out.append(rec)
    return out


def _adagrad_diag_steps(G_list, p, init, roots):
    shape = G_list[0].shape
    if init is None:
        v = np.full(shape, M.to_mpf(p["initial_accumulator"]), dtype=object)
    else:
        v = _obj(init.v if hasattr(init, "v") else (init[0] if isinstance(init, (list, tuple)) else init))
    d = M.to_mpf(p["eps"])
    if p["eps_placement"] not in ("inside", "outside"):
        raise ValueError(f"eps_placement: expected 'inside' or 'outside', got {p['eps_placement']!r}")
    inside = p["eps_placement"] == "inside"
    den_fn = np.frompyfunc((lambda x: mpmath.sqrt(x + d)) if inside else (lambda x: mpmath.sqrt(x) + d), 1, 1)
    div = np.frompyfunc(lambda a, b: a / b if b > 0 else mpmath.mpf(0), 2, 1)
    out = []
    for k, Gf in enumerate(G_list, 1):
        g = _obj(Gf)
        v = v + g * g
        rec = {"count": k, "factors": (v.copy(),)}
        if roots:
            rec["direction"] = _out_dir(div(g, den_fn(v)))
        out.append(rec)
    return out


# --------------------------------------------------------------------------------------------------------------
# MBAG family (the twins of krad_ref/mbag/): per-group Sherman-Morrison inverse, Newton-Schulz / exact roots
# --------------------------------------------------------------------------------------------------------------
_MBAG_U = {"float64": 2.0 ** -53, "float32": 2.0 ** -24}
#: krad_ref.mbag.AUTO_FLOOR_FACTOR (MBAG-EMA's automatic damping floor 16 tau u ||G||_F), restated here
MBAG_AUTO_FLOOR_FACTOR = 16


def _mbag_layout(shape: tuple, tau: Any, remainder: str) -> tuple[int, int, int]:
    """(num_groups, tau, pad) as krad_ref.mbag.layout: tau None is structural (2-D: n; order >= 3: the product of
    the trailing dims; 1-D: the whole vector; 0-D: 1); the row-major flat parameter is cut into runs of tau."""
    if tau is None:
        tau = 1 if len(shape) == 0 else shape[0] if len(shape) == 1 else shape[1] if len(shape) == 2 \
            else math.prod(shape[2:])
    tau = int(tau)
    N = math.prod(shape)
    pad = (-N) % tau
    if pad and remainder != "pad":
        raise ValueError(f"tau: {tau} does not divide N = {N} (remainder={remainder!r})")
    return (N + pad) // tau, tau, pad


def _mbag_group(T: np.ndarray, tau: int, pad: int) -> np.ndarray:
    flat = list(T.reshape(-1).tolist()) + [mpmath.mpf(0)] * pad  # row-major (C order): the paper's vec(W^T)
    return np.array(flat, dtype=object).reshape(-1, tau)


def _mbag_ungroup(V: np.ndarray, shape: tuple) -> np.ndarray:
    N = math.prod(shape)
    return np.array(V.reshape(-1).tolist()[:N], dtype=object).reshape(shape)


def mbag_newton_schulz(A: Any, num_iters: int, *, dps: int | None = None) -> tuple[np.ndarray, np.ndarray, Any]:
    """``num_iters`` coupled Newton-Schulz steps in mp (krad_ref.mbag.batched_newton_schulz for one matrix):
    s = ||A||_F, X_0 = A / s, Y_0 = I, T = 3I - Y X, X <- X T / 2, Y <- T Y / 2; returns
    (sqrt(s) sym(X_N), sym(Y_N) / sqrt(s), ||I - Y_N X_N||_F) as (object array, object array, mpf). The same fixed
    count as the float code (errata 6): the truncation error of the iteration is part of the exact value."""
    with M.workdps(dps):
        A = _obj(A)
        n = A.shape[0]
        I = _eye(n)
        s = _fro(A)
        X, Y = A / s, I.copy()
        half = mpmath.mpf(0.5)
        for _ in range(int(num_iters)):
            Tm = 3 * I - Y @ X
            X, Y = (X @ Tm) * half, (Tm @ Y) * half
        r = mpmath.sqrt(s)
        return _sym(X) * r, _sym(Y) / r, _fro(I - Y @ X)


def _mbag_stack(mats: Sequence[np.ndarray], tau: int) -> np.ndarray:
    out = np.empty((len(mats), tau, tau), dtype=object)
    for i, A in enumerate(mats):
        out[i] = A
    return out


def _mbag_init_stack(init: Any, name: str, g: int, tau: int, diag) -> list[np.ndarray]:
    if init is None:
        return [_eye(tau) * diag for _ in range(g)]
    arr = _obj(getattr(init, name) if hasattr(init, name) else init)
    if arr.shape != (g, tau, tau):
        raise ValueError(f"init: expected a ({g}, {tau}, {tau}) stack, got {arr.shape}")
    return [arr[i] for i in range(g)]


def _mbag_steps(alg: str):
    """The MBAG family (krad_ref.mbag): t = count + 1; per group i (row-major runs of tau, zero padded):
    "mbag"     H_t = H - (H g)(H g)^T / (1 + g^T H g), H_0 = I / lam; root refreshed when t % T_sqr == 0,
               eigh: H^{1/2}; newton_schulz: sqrt(||H||_F) X_{T_NS}; before the first refresh I / sqrt(lam)
    "mbag_ema" G_t = alpha G + (1 - alpha) g g^T, G_0 = lam I; root (G + extra I)^{-1/2} (eigh) or
               Y_{T_NS} / sqrt(||G + extra I||_F), extra = max(0, floor - alpha^t lam) (``ema_damping``)
    "mbag_n"   H_t as "mbag", R = H_t every step
    and v_t = beta v + R g (v = R g when beta == 0), direction ungroup(v_t)."""

    def steps(G_list, p, init, roots):
        shape = tuple(G_list[0].shape)
        g, tau, pad = _mbag_layout(shape, p["tau"], p["remainder"])
        lam = M.to_mpf(p["lam"])
        beta = M.to_mpf(p["beta"])
        ema = alg == "mbag_ema"
        S = _mbag_init_stack(init, "G" if ema else "H", g, tau, lam if ema else 1 / lam)
        R0 = _eye(tau) / mpmath.sqrt(lam)
        Rs = [R0.copy() for _ in range(g)]
        res = [mpmath.mpf(0)] * g
        v = np.array([mpmath.mpf(0)] * (g * tau), dtype=object).reshape(g, tau)
        out = []
        for t, Gf in enumerate(G_list, 1):
            gb = _mbag_group(_obj(Gf), tau, pad)
            for i in range(g):
                x = gb[i]
                if ema:
                    a = M.to_mpf(p["alpha"])
                    S[i] = _sym(S[i] * a + np.outer(x, x) * (1 - a))
                else:
                    u = S[i] @ x
                    S[i] = _sym(S[i] - np.outer(u, u) / (1 + mpmath.fsum(x * u)))
            refreshed = False
            if alg == "mbag_n":
                Rs = [A.copy() for A in S]
            elif t % int(p["T_sqr"]) == 0:
                refreshed = True
                for i in range(g):
                    if ema:
                        paper = M.to_mpf(p["alpha"]) ** t * lam
                        if p["damping_floor"] is None:
                            floor = MBAG_AUTO_FLOOR_FACTOR * tau * M.to_mpf(_MBAG_U[p["floor_dtype"]]) * _fro(S[i])
                        else:
                            floor = M.to_mpf(p["damping_floor"])
                        extra = max(floor - paper, mpmath.mpf(0))
                        if p["root_method"] == "eigh":
                            Rs[i], res[i] = psd_fn(S[i], mpmath.mpf(-0.5), shift=extra), mpmath.mpf(0)
                        else:
                            _, Rs[i], res[i] = mbag_newton_schulz(S[i] + _eye(tau) * extra, p["T_NS"])
                    elif p["root_method"] == "eigh":
                        Rs[i], res[i] = psd_fn(S[i], mpmath.mpf(0.5)), mpmath.mpf(0)
                    else:
                        Rs[i], _, res[i] = mbag_newton_schulz(S[i], p["T_NS"])
            pg = np.array([Rs[i] @ gb[i] for i in range(g)], dtype=object).reshape(g, tau)
            v = pg if p["beta"] == 0 else v * beta + pg
            rec = {"count": t, "factors": (_mbag_stack(S, tau),)}
            if alg != "mbag_n":
                rec["refreshed"] = refreshed
                rec["residual"] = tuple(res)
            if roots:
                if alg != "mbag_n":
                    rec["roots"] = (_mbag_stack(Rs, tau),)
                rec["direction"] = _out_dir(_mbag_ungroup(v, shape))
            out.append(rec)
        return out

    return steps


_STEPS = {
    "kradagrad_star": _star_steps,
    "kradagrad": _alt_steps,
    "shampoo": _shampoo_steps,
    "adagrad_full": _adagrad_full_steps,
    "adagrad_diag": _adagrad_diag_steps,
    "mbag": _mbag_steps("mbag"),
    "mbag_ema": _mbag_steps("mbag_ema"),
    "mbag_n": _mbag_steps("mbag_n"),
}


def twin_trajectory(algorithm_id: str, config: Any = None, grads: Sequence[Any] = (), *, dps: int | None = None,
                    init: Any = None, roots: bool = True, **overrides: Any) -> list[dict]:
    """The exact (mp) trajectory of one optimizer on the gradients ``grads``: one dict per step.

    Args:
      algorithm_id: one of ``ALGORITHMS`` (krad_ref's ids).
      config: a krad_ref Config (or any object); only its field values are read (:func:`params_from_config`).
      grads: float arrays of one shape (any dtype, converted exactly), order >= 1 (order 0 is rejected).
      dps: working precision (>= 40; default 50).
      init: initial factors (float arrays, one per mode) or a krad_ref State (its ``factors``/``stats``, AdaGrad's
        ``H``/``v``); default: ``init_scale * I`` (KrAD family), 0 or ``eps * I`` (Shampoo paper / code),
        0 (AdaGrad full), ``initial_accumulator`` (AdaGrad diag). Roots start at I (a fresh state).
      roots: False skips roots and directions (cheaper: the claims on factors need none).
      overrides: twin parameters by name (``t_rule="spectral"``, ``beta2=0.99``, ``schedule=(0, 1, 1)``, ...).

    Returns:
      ``[{"count": k, "factors": (...), "roots": (...), "direction": D, ...}, ...]``, one per gradient, in the
      state layout of krad_ref: KrADagrad*/KrADagrad factors L_i, Shampoo statistics ("paper": sum G G^T without
      eps; "reference-code" or eps_placement="statistic": eps I + sum, decayed with it), AdaGrad full (H,)
      with H = sum g g^T (g = vec(G) column-major), AdaGrad diag (v,) (an object array of the gradient's
      shape); "roots" are the cached roots the direction used.
      KrADagrad* adds ``"t"`` (one per mode, None on steps without statistics); KrADagrad adds ``"mode"`` (the
      factor updated, None if none) and ``"t"``. For matrices ``rec["L"]``/``rec["R"]`` alias the two factors
      (Shampoo: ``"B"``, ``"C"``).
    """
    p = params_from_config(algorithm_id, config, **overrides)
    G_list = _grad_list(grads)
    if not G_list:
        return []
    if G_list[0].ndim == 0 and not algorithm_id.startswith("mbag"):
        raise ValueError("grads: order-0 (scalar) parameters have no factors")
    with M.workdps(dps):
        recs = _STEPS[algorithm_id](G_list, p, init, roots)
    if G_list[0].ndim == 2 and algorithm_id in ("kradagrad_star", "kradagrad", "shampoo"):
        names = ("B", "C") if algorithm_id == "shampoo" else ("L", "R")
        for rec in recs:
            rec[names[0]], rec[names[1]] = rec["factors"]
    return recs


# --------------------------------------------------------------------------------------------------------------
# comparing float results with the twin
# --------------------------------------------------------------------------------------------------------------
def _rows_of(X: Any) -> list:
    if isinstance(X, mpmath.matrix):
        return [X[i, j] for i in range(X.rows) for j in range(X.cols)]
    if isinstance(X, np.ndarray) and X.dtype == object:
        return X.ravel().tolist()
    return _obj(X).ravel().tolist()


def rel_error(x: Any, X: Any, *, dps: int | None = None) -> float:
    """||x - X||_F / ||X||_F (absolute ||x|| when X = 0), computed in mp; x a float array of any backend,
    X a twin value (mpmath.matrix or object array) of the same number of entries (matrices: same shape)."""
    with M.workdps(dps):
        a = _rows_of(x if isinstance(x, (mpmath.matrix, np.ndarray)) else _host(x))
        b = _rows_of(X)
        if len(a) != len(b):
            raise ValueError(f"x, X: {len(a)} vs {len(b)} entries")
        num = mpmath.sqrt(mpmath.fsum((u - v for u, v in zip(a, b)), squared=True))
        den = mpmath.sqrt(mpmath.fsum(b, squared=True))
        return float(num / den) if den else float(num)


def to_float(X: Any, dtype: Any = "float64") -> np.ndarray:
    """A twin value rounded once to ``dtype`` (``mp.from_mp``); object arrays keep their shape."""
    if isinstance(X, np.ndarray) and X.dtype == object:
        flat = M.from_mp(X.ravel().tolist(), dtype)
        return flat.reshape(X.shape)
    return M.from_mp(X, dtype)
