"""The tolerance model of the golden vectors, and the comparison of a run with its expected values.

Error measure. Each quantity is compared by its relative Frobenius error, per mode for tuples:
``err(x, X) = ||x - X||_F / ||X||_F`` (``||x||_F`` when X = 0). A step passes a quantity when
``err / tol <= 1`` for every mode.

Model. For quantity q of mode i after step k, computed in a dtype of unit roundoff u (float64 2^-53,
float32 2^-24)::

    tol = c * n * u * cond(q) * k

with c = ``C`` (= 32, a fixed constant covering the few dozen rounded operations per matrix entry of one step,
chosen once; not fitted per case), n the size the rounding errors add up over, and cond(q) the amplification
of relative perturbations by the case's own conditioning, read from the expected values:

* factors (L_i, Shampoo S_i, AdaGrad H or v): n = d_i (H: N = prod(shape); v: 1) and
  cond = kappa_F = gamma_i * max_{0<=j<=k} ||F^(j)||_2 / ||F^(k)||_2: the cancellation of the KrAD update
  L - L A L / t (an absolute error u ||L^(j)|| relative to the shrunk ||L^(k)||; 1 for accumulated sums), times,
  for KrADagrad's paper variant, the cancellation of its Gram A_i = G_(i) (kron_{j != i} L_j) G_(i)^T,
  gamma_i = max over the updates of mode i of ||G_(i)||_2^2 prod_{j != i} ||L_j||_2 / ||A_i||_2 (1 otherwise:
  plain Grams G_(i) G_(i)^T have no cancellation).
* roots P_i = A_i^e of the argument A_i (F_i plus its shift, e.g. S + eps I): n = d_i and
  cond = kappa_F * cond_e(kappa_A), where kappa_A = kappa(A_i) is recovered from the expected root
  (kappa(P)^(1/|e|)) and
    e < 0 (inverse roots, Shampoo/AdaGrad):  cond_e = kappa_A               (|p| kappa, |p| <= 1 dropped)
    0 < e < 1 (KrAD roots L^(1/4), L^(1/2)): cond_e = min(kappa_A^(1-e), u^(e-1))  (the eigenvalue lambda_min
      perturbed by u lambda_max moves lambda_min^e by at most (u lambda_max)^e, whence the cap u^e on the error)
  AdaGrad full keeps no root in its state: its P = (delta I + H)^(-1/2) is used for the direction only.
* direction D = G x_0 P_0 ... x_{p-1} P_{p-1} (AdaGrad full: P vec(G); AdaGrad diag: elementwise g/sqrt(v+eps)):
  n = sum_i d_i (diag: 1) and cond = max(1, sum_i kappa_F,i * phi_i), where phi_i is the first-order gain of
  D under a perturbation of A_i of size u ||A_i||_2 (the backward error of eigh), through the Frechet derivative
  of f(A) = A^e in the eigenbasis A_i = V diag(lambda) V^T:
      phi_i = || Q |V^T X_(i)| ||_F / ||D||_F,   Q_jk = lambda_max |f[lambda_j, lambda_k]|  (divided differences)
  with X = G x_{j != i} P_j, so that D_(i) = P_i X_(i) (e > 0: lambda floored at u lambda_max). Unlike
  rho * cond(P_i), this does not charge the ill-conditioned directions of A_i that the gradient does not reach.
  AdaGrad diag: cond = kappa_F; cond = 1 while k < start_preconditioning_step (D = G).

MBAG family (krad_ref.mbag; errata 6). The quantities are stacks over the g groups: factors (H,) (MBAG, MBAG-N:
H = G^{-1} per group) or (G,) (MBAG-EMA), roots (R,) (none for MBAG-N), and the direction ungroup(v_k),
v_k = beta v_{k-1} + R_k g_k. n = tau (every product is a tau-term inner product), the worst group taken.
* factors: Sherman-Morrison H - (H g)(H g)^T / (1 + g^T H g) subtracts a rank-one term of norm <= ||H_{j-1}||_2,
  so each step adds an absolute error ~ tau u ||H_{j-1}||_2; relative to the shrunk ||H_k||_2 that is
  cond = kappa_F = max_{j<=k} ||F^(j)||_2 / ||F^(k)||_2 per group, as for the KrAD factors (for H this is
  lambda_min(G_k) / lambda, the cancellation of Eq. 4; bounded by kappa(G_k) lambda_max(G_k) / lambda and, unlike
  kappa(H_k), charged also by a uniform shrink). MBAG-EMA's G is a sum of PSD terms: kappa_F ~ 1, its decay only.
* roots, on refresh steps (else the cached root keeps the tolerance of its refresh): cond = kappa_F *
  cond_e(kappa) with kappa the largest condition number of a group statistic so far and the rule above
  (e = 1/2 for MBAG: min(kappa^(1/2), u^(-1/2)); e = -1/2 for MBAG-EMA: kappa). With root_method="newton_schulz"
  the expected root is the same T_NS Newton-Schulz steps in exact arithmetic (errata 6: the truncation error is
  not charged); the iteration's own rounding adds T_NS * min(kappa^(1/2), 1.5^T_NS) (each step rounds ~ tau u
  relative to ||X|| <= 1, and the under-converged components grow by at most 3/2 per step).
* direction: each step's R_j g_j carries the root's error ~ cond_R,j u ||R_j||_2 ||g_j|| (plus the product's own
  rounding), weighted by the momentum: cond = max(1, B_k / ||D_k||_F), B_k = beta B_{k-1} +
  (cond_R,k + 1) ||R_k||_2 ||g_k||_F (MBAG-N: R = H, cond_R = kappa_F).

The factor k (steps) bounds the linear accumulation of per-step errors. A tolerance >= 1 says that the dtype
cannot resolve the quantity on this case (e.g. float32 roots of a factor with kappa 1e10): ``compare`` still
reports err / tol, and a harness may call the quantity unresolvable. The model is an upper estimate, not a
proof: the tests check that krad_ref's float64 and float32 runs of every shipped case stay within it, with
margin, and that a perturbation of 100 tol is reported.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from krad_ref import backend

C = 32.0
QUANTITIES = ("factors", "roots", "direction")

__all__ = ["C", "QUANTITIES", "MBAG_ALGORITHMS", "unit_roundoff", "root_exponents", "step_tolerances", "rel_error", "rel_errors",
           "compare"]


def unit_roundoff(dtype: Any) -> float:
    """u of "float64" / "float32" (a dtype of any backend, or its name): ``krad_ref.backend.unit_roundoff``,
    restricted to the two dtypes golden vectors carry tolerances for."""
    name = backend.dtype_name(dtype)
    if name not in ("float64", "float32"):
        raise ValueError(f"dtype: expected float64 or float32, got {dtype!r}")
    return backend.unit_roundoff(name)


def root_exponents(algorithm_id: str, config: Any, shape: Sequence[int]) -> tuple[float, ...] | None:
    """The exponent e of each mode's root P_i = A_i^e (None: the algorithm has no roots in its state).

    kradagrad_star: ``config.exponent_for(p)`` (alpha / p); kradagrad: ``config.exponent``; shampoo: -1/(2p)
    (-1/p with exponent_rule="p") or -1/exponent_override; adagrad_full: -1/2 (the direction's root);
    adagrad_diag: None; mbag: 1/2 (R = H^{1/2}, one stacked root); mbag_ema: -1/2 (R = G^{-1/2}); mbag_n: None
    (H itself, no root in the state)."""
    p = len(shape)
    if algorithm_id == "kradagrad_star":
        cfg = config.resolved() if hasattr(config, "resolved") else config
        return (float(cfg.exponent_for(p)),) * p
    if algorithm_id == "kradagrad":
        return (float(config.exponent),) * p
    if algorithm_id == "shampoo":
        from krad_ref import shampoo

        return (-1.0 / shampoo.exponent(p, config),) * p
    if algorithm_id == "adagrad_full":
        return (-0.5,)
    if algorithm_id in ("adagrad_diag", "mbag_n"):
        return None
    if algorithm_id == "mbag":
        return (0.5,)
    if algorithm_id == "mbag_ema":
        return (-0.5,)
    raise ValueError(f"algorithm_id: no tolerance model for {algorithm_id!r}")


def _unrooted(algorithm_id: str, cfg: Any, k: int) -> bool:
    """Shampoo before its first root with before_first_root "gradient" (D = G) or "zero" (D = 0)."""
    if algorithm_id != "shampoo" or getattr(cfg, "before_first_root", "identity") == "identity":
        return False
    from krad_ref import shampoo

    return k < shampoo.first_root_step(cfg)


def _norm2(A: np.ndarray) -> float:
    return float(np.linalg.norm(A, 2)) if A.ndim == 2 else float(np.max(np.abs(A), initial=0.0))


def _kappa_of_root(P: np.ndarray, e: float) -> float:
    w = np.linalg.eigvalsh((P + P.T) / 2)
    lo, hi = float(w[0]), float(w[-1])
    if hi <= 0:
        return 1.0
    if lo <= 0:
        return math.inf
    return (hi / lo) ** (1.0 / abs(e))


def _cond_root(kappa_a: float, e: float, u: float) -> float:
    if e < 0:
        return kappa_a
    if e < 1:
        cap = u ** (e - 1.0)
        return cap if not math.isfinite(kappa_a) else min(kappa_a ** (1.0 - e), cap)
    return 1.0


def _gram_cancellation(G: np.ndarray, factors: Sequence[np.ndarray], i: int) -> float:
    """||G_(i)||_2^2 prod_{j != i} ||L_j||_2 / ||A_i||_2 for KrADagrad's (paper) A_i = G_(i) (kron L_j) G_(i)^T."""
    H = G
    for j, L in enumerate(factors):
        if j != i:
            H = np.moveaxis(np.tensordot(L, np.moveaxis(H, j, 0), axes=([1], [0])), 0, j)
    Gi = np.moveaxis(G, i, 0).reshape(G.shape[i], -1)
    Hi = np.moveaxis(H, i, 0).reshape(G.shape[i], -1)
    A = Gi @ Hi.T
    a = float(np.linalg.norm((A + A.T) / 2, 2))
    bound = float(np.linalg.norm(Gi, 2)) ** 2 * math.prod(_norm2(L) for j, L in enumerate(factors) if j != i)
    return bound / a if a > 0 else 1.0


def _frechet_gain(lam: np.ndarray, V: np.ndarray, e: float, X: np.ndarray, dnorm: float, u: float) -> float:
    """|| Q |V^T X| ||_F / ||D||_F with Q_jk = lambda_max |f[lambda_j, lambda_k]| (f = lambda^e, divided
    differences; for e > 0 eigenvalues floored at u lambda_max, the resolution of a backward-stable eigh): the first-order
    relative change of D = f(A) X under a perturbation of A of norm u ||A||_2 per unit u (module docstring)."""
    lam_max = float(np.max(lam)) if lam.size else 0.0
    if lam_max <= 0 or dnorm <= 0:
        return 1.0
    lam = np.maximum(lam, u * lam_max if e > 0 else 1e-300)  # e > 0: lambda = 0 is resolved as u lambda_max
    f = lam ** e
    dl = lam[:, None] - lam[None, :]
    df = f[:, None] - f[None, :]
    close = np.abs(dl) <= 1e-9 * lam_max
    deriv = np.abs(e) * np.maximum(lam[:, None], lam[None, :]) ** (e - 1.0)
    Q = lam_max * np.where(close, deriv, np.abs(df) / np.where(close, 1.0, np.abs(dl)))
    Y = np.abs(V.T @ X)
    return float(np.linalg.norm(Q @ Y)) / dnorm


def step_tolerances(algorithm_id: str, config: Any, shape: Sequence[int], steps: Sequence[Mapping],
                    grads: Sequence[Any], dtype: Any = "float64", *, init_factors: Sequence[Any] | None = None,
                    c: float = C) -> list[dict]:
    """The model's tolerances for each step of a run (module docstring).

    Args:
      algorithm_id, config: the krad_ref algorithm id and its Config instance.
      shape: the parameter shape.
      steps: per step a mapping with float64 "factors" (tuple), "roots" (tuple or None) and "direction": the
        expected values (golden) or a trusted float64 reference run.
      grads: the gradients (same length as ``steps``).
      dtype: "float64" or "float32": the dtype the run under test computes in.
      init_factors: the initial factors (for kappa_F); default: the first step's factors.
      c: the model constant.

    Returns:
      Per step ``{"factors": (tol per mode), "roots": (tol per mode) | None, "direction": tol}``.
    """
    u = unit_roundoff(dtype)
    shape = tuple(int(d) for d in shape)
    exps = root_exponents(algorithm_id, config, shape)
    cfg = config.resolved() if hasattr(config, "resolved") else config
    if algorithm_id in MBAG_ALGORITHMS:
        return _mbag_step_tolerances(algorithm_id, cfg, steps, grads, u, init_factors, c) if steps else []
    start = int(getattr(cfg, "start_preconditioning_step", 0) or 0)
    k_offset = 1 if algorithm_id == "kradagrad" else 0  # KrADagrad counts from s = 0: step k has s = k - 1
    if algorithm_id in ("kradagrad_star", "kradagrad", "shampoo"):
        sizes = shape
    elif algorithm_id == "adagrad_full":
        sizes = (math.prod(shape),)
    else:
        sizes = (1,)
    hist = None if init_factors is None else [_norm2(np.asarray(f, dtype=np.float64)) for f in init_factors]
    prev = None if init_factors is None else [np.asarray(f, dtype=np.float64) for f in init_factors]
    paper_alt = algorithm_id == "kradagrad" and getattr(cfg, "variant", "paper") == "paper"
    gamma = [1.0] * len(sizes)
    out = []
    for k, (st, G) in enumerate(zip(steps, grads), 1):
        G = np.asarray(G, dtype=np.float64)
        cur = [np.asarray(f, dtype=np.float64) for f in st["factors"]]
        if paper_alt and prev is not None:
            for i in range(len(cur)):
                if not np.array_equal(cur[i], prev[i]):
                    gamma[i] = max(gamma[i], _gram_cancellation(G, prev, i))
        prev = cur
        norms = [_norm2(f) for f in cur]
        hist = list(norms) if hist is None else [max(h, v) for h, v in zip(hist, norms)]
        kf = [g * (h / v if v > 0 else 1.0) for g, h, v in zip(gamma, hist, norms)]
        tf = tuple(c * n * u * kap * k for n, kap in zip(sizes, kf))
        roots = st.get("roots")
        conds = None
        if exps is not None:
            if algorithm_id == "adagrad_full" and roots is None:
                H = np.asarray(st["factors"][0], dtype=np.float64)
                delta = float(cfg.delta)
                w = np.linalg.eigvalsh((H + H.T) / 2)
                conds = (max(float(w[-1]), 0.0) + delta) / delta,
            elif roots is not None:
                conds = tuple(kf[min(i, len(kf) - 1)] * _cond_root(_kappa_of_root(np.asarray(P, np.float64), e), e, u)
                              for i, (P, e) in enumerate(zip(roots, exps)))
        tr = None if roots is None or conds is None else tuple(c * n * u * cd * k for n, cd in zip(sizes, conds))
        D = np.asarray(st["direction"], dtype=np.float64)
        dnorm = float(np.linalg.norm(D))
        if algorithm_id == "adagrad_diag":
            cond_d, n_d = max(kf), 1
        elif k - k_offset < start or _unrooted(algorithm_id, cfg, k):
            cond_d, n_d = 1.0, 1  # D = G (or exactly 0): no root in it
        elif algorithm_id == "adagrad_full":
            H = np.asarray(st["factors"][0], dtype=np.float64)
            w, V = np.linalg.eigh((H + H.T) / 2)
            lam = np.maximum(w, 0.0) + float(cfg.delta)
            g = G.reshape(-1, order="F")[:, None]
            cond_d = max(1.0, kf[0] * _frechet_gain(lam, V, -0.5, g, dnorm, u))
            n_d = sizes[0]
        elif roots is None:
            cond_d, n_d = max(kf), sum(sizes)
        else:
            gains = []
            for i, (P, e) in enumerate(zip(roots, exps)):
                P = np.asarray(P, dtype=np.float64)
                w, V = np.linalg.eigh((P + P.T) / 2)
                lam = np.where(w > 0, np.abs(w) ** (1.0 / e), 0.0) if e > 0 else np.maximum(w, 1e-300) ** (1.0 / e)
                X = G
                for j, Pj in enumerate(roots):
                    if j != i:
                        X = np.moveaxis(np.tensordot(np.asarray(Pj, np.float64), np.moveaxis(X, j, 0),
                                                     axes=([1], [0])), 0, j)
                Xi = np.moveaxis(X, i, 0).reshape(X.shape[i], -1)
                gains.append(kf[i] * _frechet_gain(lam, V, e, Xi, dnorm, u))
            cond_d, n_d = max(1.0, sum(gains)), sum(sizes)
        out.append({"factors": tf, "roots": tr, "direction": c * n_d * u * cond_d * k})
    return out


# ----------------------------------------------------------------------------------------------------------------
# MBAG family (krad_ref.mbag): stacks of per-group statistics, one root stack, momentum directions

MBAG_ALGORITHMS = ("mbag", "mbag_ema", "mbag_n")


def _mbag_step_tolerances(algorithm_id: str, cfg: Any, steps: Sequence[Mapping], grads: Sequence[Any], u: float,
                          init_factors: Sequence[Any] | None, c: float) -> list[dict]:
    """MBAG's rule (module docstring, "MBAG"): n = tau, per group, the worst group taken (the relative Frobenius
    error of a stack is at most the largest relative error of its groups)."""
    F0 = np.asarray(steps[0]["factors"][0] if init_factors is None else init_factors[0], dtype=np.float64)
    tau = F0.shape[-1]
    hist = np.max(np.abs(np.linalg.eigvalsh(F0)), axis=-1)
    e = None if algorithm_id == "mbag_n" else (0.5 if algorithm_id == "mbag" else -0.5)
    ns = algorithm_id != "mbag_n" and getattr(cfg, "root_method", "eigh") == "newton_schulz"
    T_ns = int(getattr(cfg, "T_NS", 0) or 0)
    beta = float(cfg.beta)
    kappa_max, cond_r, kf_r = 1.0, 0.0, 1.0
    budget = 0.0
    out = []
    for k, (st, G) in enumerate(zip(steps, grads), 1):
        F = np.asarray(st["factors"][0], dtype=np.float64)
        w = np.linalg.eigvalsh((F + np.swapaxes(F, -1, -2)) / 2)
        norms = np.max(np.abs(w), axis=-1)
        hist = np.maximum(hist, norms)
        with np.errstate(divide="ignore", invalid="ignore"):
            kf = float(np.max(np.where(norms > 0, hist / norms, 1.0)))
            kap = float(np.max(np.where(w[..., 0] > 0, w[..., -1] / w[..., 0], np.inf)))
        kf = min(kf, 1.0 / u) if math.isfinite(kf) else 1.0 / u
        kappa_max = max(kappa_max, kap if math.isfinite(kap) else 1.0 / u)
        tf = (c * tau * u * kf * k,)
        roots = st.get("roots")
        if e is None:  # MBAG-N: the preconditioner is H itself
            cond_r, R = kf, F
            tr = None
        else:
            R = np.asarray(roots[0], dtype=np.float64)
            prev = steps[k - 2].get("roots") if k > 1 else None
            if k == 1 or prev is None or not np.array_equal(R, np.asarray(prev[0])):
                kf_r = kf  # a refresh (or the first step): the root is of this step's statistic
                cond_r = kf_r * _cond_root(kappa_max, e, u)
                if ns:
                    cond_r += T_ns * min(math.sqrt(kappa_max), 1.5 ** T_ns)
            tr = (c * tau * u * max(cond_r, 1.0) * k,)
        rn = float(np.max(np.abs(np.linalg.eigvalsh((R + np.swapaxes(R, -1, -2)) / 2))))
        budget = beta * budget + (max(cond_r, 1.0) + 1.0) * rn * float(np.linalg.norm(np.asarray(G, np.float64)))
        dnorm = float(np.linalg.norm(np.asarray(st["direction"], dtype=np.float64)))
        cond_d = max(1.0, budget / dnorm) if dnorm > 0 else 1.0
        out.append({"factors": tf, "roots": tr, "direction": c * tau * u * cond_d * k})
    return out


def rel_error(x: Any, X: Any) -> float:
    """||x - X||_F / ||X||_F in float64 (||x||_F when X = 0); shapes must match."""
    a = np.asarray(x, dtype=np.float64)
    b = np.asarray(X, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: got {a.shape}, expected {b.shape}")
    if not np.all(np.isfinite(a)):
        return math.inf
    den = float(np.linalg.norm(b))
    num = float(np.linalg.norm(a - b))
    return num / den if den > 0 else num


def rel_errors(expected: Mapping, got: Mapping) -> dict:
    """Per quantity the relative errors of ``got`` against ``expected``: tuples per mode for factors/roots, a
    float for direction; None where either side lacks the quantity (e.g. a candidate exposing no roots)."""
    out = {}
    for q in QUANTITIES:
        e, g = expected.get(q), got.get(q)
        if e is None or g is None:
            out[q] = None
        elif q == "direction":
            out[q] = rel_error(g, e)
        else:
            if len(e) != len(g):
                raise ValueError(f"{q}: expected {len(e)} arrays, got {len(g)}")
            out[q] = tuple(rel_error(gi, ei) for gi, ei in zip(g, e))
    return out


def compare(expected: Mapping, got: Mapping, tol: Mapping) -> dict:
    """Per quantity the worst ``error / tolerance`` over modes (<= 1 passes; None: not compared).

    Args:
      expected: ``{"factors": tuple, "roots": tuple | None, "direction": array}`` (``GoldenStep.expected()``).
      got: the same keys from the run under test (missing keys or None: not compared).
      tol: ``{"factors": tuple, "roots": tuple | None, "direction": float}`` (``GoldenStep.tolerance[dtype]`` or
        one entry of :func:`step_tolerances`).

    Returns:
      ``{"factors": float | None, "roots": float | None, "direction": float | None}``; ``inf`` for non-finite
      results.
    """
    errs = rel_errors(expected, got)
    out = {}
    for q in QUANTITIES:
        err, t = errs[q], tol.get(q)
        if err is None or t is None:
            out[q] = None
        elif q == "direction":
            out[q] = err / float(t)
        else:
            ts = tuple(t)
            out[q] = max(e / float(ti) for e, ti in zip(err, ts)) if err else 0.0
    return out
