"""Iterative matrix roots: coupled Newton-Schulz, coupled Newton inverse p-th roots, warm-started Newton p-th roots.

References:
  MBAG, Eq. (5) and Sec. III-B (:func:`newton_schulz`: A^{1/2} and A^{-1/2} by GEMMs only; errata 6).
  Shampoo, Eqs. 2-3, as Google's scalable_shampoo ``ComputePower`` and the KrADagrad authors' ``mat_inv_root``
  compute it: Guo and Higham, SIMAX 28 (2006), Eq. (3.2) (:func:`coupled_newton_inv_root`).
  KrADagrad, Alg. 1 (L_k^{alpha/2} from (L_k, L_{k-1}^{alpha/2})): Iannazzo, SIMAX 28 (2006), the stable coupled
  Newton iteration, warm-started from a seed (:func:`psd_root_iteration`; errata 12).

Convention: each returns a small frozen NamedTuple carrying the iteration count, the residual it stopped on and a
``converged`` flag; default tolerances scale with the unit roundoff u of the input dtype (STYLE M2), and an
iteration stops early when its residual grows by more than ``DIVERGENCE_RATIO`` = 1.2x (the divergence guard of
Google's and Meta's Shampoo). On failure they raise
``RuntimeError("newton_schulz: residual 3.2e-03 after 50 iterations (target 1.1e-13)")`` unless told
``on_fail="return"``; :func:`psd_root_iteration` defaults to ``on_fail="eigh"`` (answer by eigh, flagged
``fallback=True``), the policy errata 12 prescribes for warm starts. Residuals inside the results are Python
floats: the stopping decisions are taken on the host anyway.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

from .. import backend, validate
from ._common import DIVERGENCE_RATIO, _check_symmetric_input, _eye, _fail, _fro, _max_abs, _namespace_of, _sym
from .psd import psd_power


Array = Any


def _matpow(T, p: int, xp):
    """T^p for an integer p >= 1 by binary powering (repeated squaring; 2 GEMMs for p = 4)."""
    result = None
    base = T
    while True:
        if p & 1:
            result = base if result is None else result @ base
        p >>= 1
        if not p:
            return result
        base = base @ base


def _check_pd_cholesky(A, name: str, xp, *, what: str | None = None) -> None:
    """Refuse a matrix that is not numerically positive definite, for the price of one Cholesky (n^3/3 flops).

    Cholesky succeeds iff every pivot is positive; being backward stable, success means A + E is PD for some
    ||E||_2 <= c n u ||A||_2. NumPy and array_api_strict raise LinAlgError (a ValueError) on failure; CuPy
    returns NaN instead, which the finiteness test catches.
    """
    label = what or name
    try:
        C = xp.linalg.cholesky(A)
    except ValueError:
        ok = False
    else:
        ok = bool(xp.all(xp.isfinite(C)))
    if not ok:
        raise ValueError(f"{name}: expected a positive definite matrix, but the Cholesky factorization of {label} failed")


class RootResult(NamedTuple):
    """Result of an iterative matrix root (immutable)."""

    root: Array        # (n, n), input dtype: the root that was asked for
    iterations: int    # iterations performed (0 when a warm start was accepted as is)
    residual: float    # the residual the method stops on, in the norm its docstring states
    converged: bool    # residual <= target, reached by the iteration itself
    fallback: bool = False  # True when ``root`` came from the eigh fallback (psd_root_iteration)


class NewtonSchulzResult(NamedTuple):
    """Result of :func:`newton_schulz` (immutable): both rescaled outputs of the coupled iteration."""

    sqrt: Array        # (n, n), input dtype: sqrt(s) X_N -> A^{1/2}
    inv_sqrt: Array    # (n, n), input dtype: Y_N / sqrt(s) -> A^{-1/2}
    iterations: int    # iterations performed
    residual: float    # ||I - Y_N X_N||_F (scale-free: Y_N X_N -> I)
    converged: bool    # residual <= target


def _on_fail_option(on_fail, options=("raise", "return")):
    validate.one_of(on_fail, "on_fail", options)
    return on_fail


def newton_schulz(A, *, num_iters=None, tol=None, max_iter: int = 100, normalize: str = "fro",
                  on_fail: str = "raise", check: bool = True) -> NewtonSchulzResult:
    """Coupled Newton-Schulz iteration for A^{1/2} and A^{-1/2} together (GEMMs only, no inverse).

    References:
      MBAG (mini-block adaptive gradient), Eq. (5) and Sec. III-B; Higham, Functions of Matrices, Eq. (6.35);
      errata 6.

    The iteration, on the normalized input A' = A / s (s = ||A||_F for ``normalize="fro"``, the paper's choice;
    s = tr(A) for ``"trace"``; either puts the spectrum of A' in (0, 1], inside the convergence region
    ||I - A'|| < 1):
        X_0 = A', Y_0 = I,  T_t = 3I - Y_{t-1} X_{t-1},  X_t = X_{t-1} T_t / 2,  Y_t = T_t Y_{t-1} / 2.
    Every iterate is a polynomial in A', so all commute and X_t = A' Y_t; with q = lambda(Y X) the scalar
    map q -> q (3 - q)^2 / 4 drives q -> 1, hence Y_t^2 -> A'^{-1} and
        X_t -> A'^{1/2} = A^{1/2} / sqrt(s),    Y_t -> A'^{-1/2} = sqrt(s) A^{-1/2}.
    The outputs are rescaled accordingly: ``sqrt = sqrt(s) X_N`` and ``inv_sqrt = Y_N / sqrt(s)``.

    Where this differs from the paper's wording: MBAG feeds X_0 = G^{-1} = H, says X_t -> G^{-1/2} and
    Y_t -> G^{1/2} (true for that input: X -> H^{1/2}, Y -> H^{-1/2}), and states the rescaling only for X
    (G^{-1/2} = sqrt(||H||_F) X_N, correct). For the Alg. 2 variant (X_0 = G) it says only that "Y_t converges
    to G^{-1/2}": with the normalization Y_N converges to sqrt(s) G^{-1/2}, so Y_N must be DIVIDED by sqrt(s);
    multiplying it, by analogy with X, is off by a factor s. This function returns both outputs already rescaled.

    Args:
      A: (n, n) symmetric positive definite matrix (MBAG: H = G^{-1}; MBAG-EMA/Alg. 2: G).
      num_iters: fixed iteration count (MBAG's T_NS): run exactly that many, no early stop, no guard.
        None (default): residual-controlled, stop when the residual <= target.
      tol: absolute target for ||I - Y X||_F. Default: 4 u ||X_t||_F ||Y_t||_F, re-evaluated each iteration;
        this is >= 4 n u and tracks the rounding floor of the residual (~ n u kappa^{1/2}), so it is reachable.
      max_iter: iteration cap of the residual-controlled mode.
      normalize: ``"fro"`` (s = ||A||_F) or ``"trace"`` (s = tr A).
      on_fail: ``"raise"`` a RuntimeError when the residual misses the target, or ``"return"`` the result
        with ``converged=False`` (MBAG's fixed T_NS passes ``on_fail="return"`` and reports the residual).
      check: verify symmetry and finiteness, and definiteness by one Cholesky (n^3/3 flops).

    Returns:
      :class:`NewtonSchulzResult` ``(sqrt, inv_sqrt, iterations, residual, converged)``; both roots symmetrized.

    Identity: sqrt @ inv_sqrt = I and sqrt @ sqrt = A at convergence. The residual ||I - Y X||_F is what it stops
    on; forward errors are ~ n u kappa^{1/2} for sqrt and ~ n u kappa for inv_sqrt (kappa = kappa(A)). Converges
    quadratically once q is near 1, but only linearly (by 9/4 per step) for the smallest eigenvalues first: about
    log(kappa sqrt(n)) / log(2.25) + 5 iterations, each 3 GEMMs. With a few fixed iterations (T_NS = 5-7) and
    kappa >= 1e2 the outputs are far from the roots (errata 6).

    Raises:
      ValueError/TypeError: bad A or options. RuntimeError: not converged and ``on_fail="raise"``.
    """
    xp = _check_symmetric_input(A, "A", check)
    validate.one_of(normalize, "normalize", ("fro", "trace"))
    _on_fail_option(on_fail)
    if num_iters is not None:
        num_iters = validate.positive_int(num_iters, "num_iters", minimum=0)
    max_iter = validate.positive_int(max_iter, "max_iter")
    if tol is not None:
        tol = validate.real_scalar(tol, "tol", low=0.0, low_open=True)
    if check:
        _check_pd_cholesky(A, "A", xp)
    n = A.shape[0]
    u = backend.unit_roundoff(A.dtype)
    s = _fro(A, xp) if normalize == "fro" else float(xp.linalg.trace(A))
    if not s > 0:
        raise ValueError(f"A: expected a positive definite matrix, but its normalizing {normalize} norm is {s:.3g}")
    I = _eye(n, A, xp)

    def target(X, Y):
        return tol if tol is not None else 4.0 * u * _fro(X, xp) * _fro(Y, xp)

    X = A / s
    Y = I
    if num_iters is not None:
        for _ in range(num_iters):
            T = 3.0 * I - Y @ X
            X, Y = 0.5 * (X @ T), 0.5 * (T @ Y)
        k = num_iters
        res = _fro(I - Y @ X, xp)
        goal = target(X, Y)
    else:
        k = 0
        YX = Y @ X
        res = _fro(I - YX, xp)
        goal = target(X, Y)
        while not res <= goal and k < max_iter:
            T = 3.0 * I - YX
            Xn, Yn = 0.5 * (X @ T), 0.5 * (T @ Y)
            YXn = Yn @ Xn
            res_n = _fro(I - YXn, xp)
            if not res_n <= DIVERGENCE_RATIO * res:  # divergence guard (also catches NaN): keep the previous
                break
            X, Y, YX, res = Xn, Yn, YXn, res_n
            k += 1
            goal = target(X, Y)
    converged = bool(res <= goal)
    if not converged and on_fail == "raise":
        raise _fail("newton_schulz", res, k, goal)
    r = math.sqrt(s)
    return NewtonSchulzResult(_sym(X, xp) * r, _sym(Y, xp) / r, k, res, converged)


def coupled_newton_inv_root(A, p, *, ridge=0.0, max_iter: int = 100, tol=None, error: str = "fro",
                            on_fail: str = "raise", check: bool = True) -> RootResult:
    """Inverse p-th root (A + ridge I)^{-1/p} by the coupled Newton iteration, as the Shampoo code does it.

    References:
      Guo and Higham, "A Schur-Newton method for the matrix p-th root and its inverse", SIMAX 28 (2006),
      Eq. (3.2); Google scalable_shampoo ``ComputePower`` and the KrADagrad authors' ``mat_inv_root``
      (shared/notes/kradagrad-code.md Sec. 7); Shampoo, Eqs. 2-3.

    The iteration (G = A + ridge I, z = (1 + p) / (2 ||G||_F), so the spectrum of z G lies in (0, (p+1)/2]):
        X_0 = z^{1/p} I,  M_0 = z G,  T_k = ((p + 1) I - M_k) / p,  X_{k+1} = X_k T_k,  M_{k+1} = T_k^p M_k.
    All iterates are polynomials in G, and M_k = X_k^p G is invariant, so M_k -> I gives X_k -> G^{-1/p}.

    Args:
      A: (n, n) symmetric PSD matrix; A + ridge I must be positive definite.
      p: root order, a positive integer (Shampoo: 4 for matrices, 2k for order-k tensors).
      ridge: absolute shift >= 0. The Shampoo code uses ridge_epsilon * lambda_max(A); pass
        ``ridge=eps * float(norm_2(A))`` for that.
      max_iter: iteration cap (the code's iter_count = 100).
      tol: target for the residual ||M_k - I|| in the ``error`` norm. Default 4 (n + p) u, reachable (the
        floors observed are ~ p u for "max" and ~ n u for "fro"); the code's fixed 1e-6 is below float32's
        reach at large n and far above float64's.
      error: the residual norm, which is also what the 1.2x guard watches.
        * ``"fro"`` (default): ||M_k - I||_F. M_k is symmetric with eigenvalues mu_i, and the scalar map
          mu -> mu ((p + 1 - mu) / p)^p moves every mu_i in (0, (p+1)/2] strictly closer to 1, so this norm
          decreases monotonically in exact arithmetic and the guard fires only on rounding or real divergence.
        * ``"max"``: max_ij |M_k - I|_ij, the error of Google's ``ComputePower`` and the KrADagrad code. It is
          NOT monotone: when one eigenvalue dominates ||A||_F, M_0 has an eigenvalue near (p+1)/2 whose
          eigenvector is spread over many entries, the first step maps it below 1 and the entrywise max grows
          past 1.2x; the guard then stops at iteration 0 and returns X_0 = z^{1/p} I (relative error ~ 1).
          Observed on A = B^{-4}, B unimodular 4 x 4 (kappa(A) = 3.7e4). Kept to reproduce the code.
      on_fail: ``"raise"`` (RuntimeError) or ``"return"`` (``converged=False``) when the target is missed.
      check: verify symmetry and finiteness of A, and definiteness of A + ridge I by one Cholesky.

    Returns:
      :class:`RootResult` ``(root, iterations, residual, converged, fallback=False)``; root symmetrized.

    Identity: root^p (A + ridge I) = I. ``residual`` is ||M_k - I|| for the TRACKED M_k, which equals
    X_k^p G in exact arithmetic but is never recomputed from X_k: it measures convergence, not the rounding
    drift of X. The recomputed residual ||root^p G - I||_2 and the forward error are ~ n u kappa(G) (tests
    check both against mpmath). Stops early, keeping the previous iterate, when the residual grows by more
    than 1.2x (the code's guard). Convergence is linear (factor ~ ((p+1)/p)^p per step on the smallest
    eigenvalues) until quadratic: about log(kappa)/log(2.4) + 5 iterations for p = 4, each 1 + log2(p) + 1 GEMMs.

    Raises:
      ValueError/TypeError: bad A, p (not an integer >= 1) or options. RuntimeError: not converged and
      ``on_fail="raise"``.
    """
    xp = _check_symmetric_input(A, "A", check)
    p = validate.positive_int(p, "p")
    ridge = validate.real_scalar(ridge, "ridge", low=0.0)
    max_iter = validate.positive_int(max_iter, "max_iter")
    _on_fail_option(on_fail)
    validate.one_of(error, "error", ("fro", "max"))
    if tol is not None:
        tol = validate.real_scalar(tol, "tol", low=0.0, low_open=True)
    n = A.shape[0]
    u = backend.unit_roundoff(A.dtype)
    I = _eye(n, A, xp)
    G = A + ridge * I if ridge != 0.0 else A
    measure = _fro if error == "fro" else _max_abs
    if check:
        _check_pd_cholesky(G, "A", xp, what="A + ridge*I" if ridge else "A")
    goal = 4.0 * (n + p) * u if tol is None else tol
    z = (1.0 + p) / (2.0 * _fro(G, xp))
    X = z ** (1.0 / p) * I
    M = z * G
    err = measure(M - I, xp)
    k = 0
    while err > goal and k < max_iter:
        T = ((p + 1.0) * I - M) / p
        Xn = X @ T
        Mn = _matpow(T, p, xp) @ M
        err_n = measure(Mn - I, xp)
        if not err_n <= DIVERGENCE_RATIO * err:  # the code's guard (and NaN): stop, keep the previous iterate
            break
        X, M, err = Xn, Mn, err_n
        k += 1
    converged = bool(err <= goal)
    if not converged and on_fail == "raise":
        raise _fail("coupled_newton_inv_root", err, k, goal)
    return RootResult(_sym(X, xp), k, err, converged)


def psd_root_iteration(A, p, *, X0=None, max_iter: int = 100, tol=None, on_fail: str = "eigh",
                       check: bool = True) -> RootResult:
    """Positive p-th root A^{1/p} of a symmetric PD matrix by Newton's method, optionally from a warm start.

    References:
      KrADagrad Alg. 1 ("compute L_k^{alpha/2} from (L_k, L_{k-1}^{alpha/2})"); Iannazzo, "On the Newton method
      for the matrix p-th root", SIMAX 28 (2006) (stable coupled form, Higham, Functions of Matrices, Eq. (7.19));
      errata 12.

    Cold start (``X0=None``): the stable coupled Newton iteration on A' = A / c, c = ||A||_F (spectrum in (0, 1]):
        X_0 = I, M_0 = A',  T_k = ((p - 1) I + M_k) / p,  X_{k+1} = X_k T_k,  M_{k+1} = T_k^{-p} M_k
    (M_{k+1} by one linear solve), so M_k = X_k^{-p} A' -> I and X_k -> A'^{1/p}; root = c^{1/p} X_N. It stops on
    ||M_k - I||_F <= 4 (n + p) u (monotone: M_k - I is negative semi-definite with eigenvalues rising to 0; the
    1.2x guard catches rounding), then the result is judged on the true residual below.

    Warm start (``X0`` given, e.g. L_{k-1}^{alpha/2}): X0 is a SEED only (errata 12). It is accepted as is when
    its residual meets ``tol``; otherwise the same coupled iteration runs from X_0 = X0, M_0 = X0^{-p} A, whose
    limit is X0 (X0^{-p} A)^{1/p}. That equals A^{1/p} exactly when X0 commutes with A (same eigenvectors, e.g.
    A a rescaled or spectrally shifted previous statistic), and converges in a few steps when X0 is close; from a
    non-commuting seed (the previous root of a different matrix, the KrADagrad* case) the limit is a different,
    non-symmetric matrix, the residual test below fails and the fallback answers. A seed whose relative commutator
    ||X0 A - A X0||_F / (||X0||_F ||A||_F) exceeds 2 ``tol`` goes to ``on_fail`` at once, without iterating (one
    GEMM; a seed that meets ``tol`` has X0^p = A + E, so its commutator [X0, E] is at most 2 ``tol``: the
    shortcut never refuses an acceptable seed, and the final residual test is what decides). The coupled form
    is used because
    the simplified Newton step X <- ((p - 1) X + X^{1-p} A) / p is numerically unstable (Higham, Functions of
    Matrices, Sec. 7.3): from a commuting seed it lost convergence at kappa = 1e2 (float32) and 1e3 (float64)
    in our runs, and from a non-commuting one it stalls at the commutator error and diverges. No published warm
    start converges in general.

    Args:
      A: (n, n) symmetric positive definite matrix.
      p: root order, a positive integer (KrADagrad*: alpha/2 = 1/4, so p = 4).
      X0: optional (n, n) symmetric PD seed, same dtype/shape as A.
      max_iter: iteration cap.
      tol: acceptance target for the relative residual ||X^p - A||_F / ||A||_F (a backward error, scale free).
        Default 8 p sqrt(n + 1) u: the probabilistic rounding bound (sums of n terms err ~ sqrt(n) u; Higham and
        Mary, SISC 2019), 2-4x above the residuals of eigh roots measured at n = 1..2048. The worst-case bound
        p n u is too loose here: at n = 1024 in float32 it is ~1e-3 and accepted, as is, a seed whose forward
        error was 40x that of the eigh root (benchmarks/roots.py).
      on_fail: ``"eigh"`` (default) returns ``psd_power(A, 1/p)`` with ``fallback=True``; ``"raise"`` raises
        RuntimeError; ``"return"`` returns the last iterate with ``converged=False``.
      check: verify symmetry/finiteness of A (and X0) and definiteness by Cholesky.

    Returns:
      :class:`RootResult` ``(root, iterations, residual, converged, fallback)``: ``residual`` is the relative
      residual of the returned root (also after a fallback); ``converged`` says whether the iteration itself met
      the target; root symmetrized.

    Identity: root^p = A, demonstrated by ||root^p - A||_F / ||A||_F <= tol. The forward error is then
    ~ n u kappa^{1-1/p} (the conditioning of A^{1/p}), the same as the eigh route.

    Raises:
      ValueError/TypeError: bad A, X0, p or options. RuntimeError: not converged and ``on_fail="raise"``.
    """
    xp = _check_symmetric_input(A, "A", check)
    p = validate.positive_int(p, "p")
    max_iter = validate.positive_int(max_iter, "max_iter")
    _on_fail_option(on_fail, ("eigh", "raise", "return"))
    if tol is not None:
        tol = validate.real_scalar(tol, "tol", low=0.0, low_open=True)
    if X0 is not None:
        _check_symmetric_input(X0, "X0", check)
        xp = _namespace_of(A=A, X0=X0)
        validate.same_dtype(A=A, X0=X0)
        validate.same_shape(A=A, X0=X0)
    if check:
        _check_pd_cholesky(A, "A", xp)
        if X0 is not None:
            _check_pd_cholesky(X0, "X0", xp)
    n = A.shape[0]
    u = backend.unit_roundoff(A.dtype)
    goal = 8.0 * p * math.sqrt(n + 1) * u if tol is None else tol
    normA = _fro(A, xp)
    I = _eye(n, A, xp)

    def rel_residual(X):
        return _fro(_matpow(X, p, xp) - A, xp) / normA

    if p == 1:
        return RootResult(_sym(A, xp), 0, 0.0, True)

    k = 0
    if X0 is None:
        scale = normA ** (1.0 / p)
        X = I
        M = A / normA
    else:
        X = _sym(X0, xp)
        XA = X @ A  # A X = (X A)^T for symmetric X, A: the commutator costs one GEMM
        commutator = _fro(XA - xp.matrix_transpose(XA), xp) / (_fro(X, xp) * normA)
        if commutator > 2.0 * goal:  # cannot reach A^{1/p} (see above): no iteration, on_fail at once
            res = rel_residual(X) if on_fail != "eigh" else math.nan
            return _root_iteration_failed(A, p, X, res, 0, goal, on_fail, warm=True,
                                          extra=f"; seed does not commute with A (relative commutator {commutator:.1e})")
        Xp = _matpow(X, p, xp)
        res = _fro(Xp - A, xp) / normA
        if res <= goal:  # the seed already meets the target: accept it as is
            return RootResult(X, 0, res, True)
        scale = 1.0
        M = xp.linalg.solve(Xp, A)  # M_0 = X_0^{-p} A: similar to an SPD matrix, eigenvalues real positive
        c = _fro(M, xp)
        if _fro(M - I, xp) > 1.0:  # a poor seed: rescale so the spectrum of M_0 lies in (0, 1] (X_0^{-p} M_0 kept)
            X, M, scale = X, M / c, c ** (1.0 / p)
    track_goal = 4.0 * (n + p) * u
    err = _fro(M - I, xp)
    while err > track_goal and k < max_iter:
        T = ((p - 1.0) * I + M) / p
        Xn = X @ T
        try:
            Mn = xp.linalg.solve(_matpow(T, p, xp), M)
        except ValueError:  # LinAlgError (singular T^p): overflow from a non-normal M_0; treat as divergence
            break
        err_n = _fro(Mn - I, xp)
        if not err_n <= DIVERGENCE_RATIO * err:  # divergence guard (and NaN): keep the previous iterate
            break
        X, M, err = Xn, Mn, err_n
        k += 1
    X = _sym(X, xp) * scale if scale != 1.0 else _sym(X, xp)
    res = rel_residual(X)
    if res <= goal:
        return RootResult(X, k, res, True)
    return _root_iteration_failed(A, p, X, res, k, goal, on_fail, warm=X0 is not None)


def _root_iteration_failed(A, p, X, res, k, goal, on_fail, *, warm: bool, extra: str = "") -> RootResult:
    """psd_root_iteration's ``on_fail`` policy: return the iterate, raise, or answer by eigh (``fallback=True``)."""
    if on_fail == "return":
        return RootResult(X, k, res, False)
    if on_fail == "raise":
        raise _fail("psd_root_iteration", res, k, goal, (" (warm start)" if warm else "") + extra)
    xp = backend.namespace(A)
    Xe = psd_power(A, 1.0 / p, check=False)
    res_e = _fro(_matpow(Xe, p, xp) - A, xp) / _fro(A, xp)
    return RootResult(Xe, k, res_e, False, True)
