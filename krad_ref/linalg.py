"""Matrix kernels shared by every algorithm: vec/kron, PSD matrix functions, the geometric mean, iterative roots, norms.

Written once against the Python array API: every function takes ``xp = backend.namespace(...)`` from its array
arguments and uses only the standard through it (plus ``array_api_extra.kron`` and the backend's ``eigh``, which
sends NumPy to LAPACK's divide-and-conquer driver). Results have the namespace, device and dtype of the inputs;
no function mutates its arguments.

Conventions
  * ``vec`` is column-major (KrADagrad Sec. 2.1; errata 15): vec(L G R) = (R^T kron L) vec(G).
  * PSD matrix functions go through one symmetric eigendecomposition of ``sym(A) = (A + A^T)/2``
    (KrADagrad Sec. 2.1: f(A) = V f(Lambda) V^T). A computed eigenvalue is within about n u ||A||_2 of the exact
    one, so eigenvalues in [-tau, 0), tau = 4 n u lambda_max (the numerical-rank rule,
    ``validate.zero_tolerance``), are rounding (clipped or refused, ``negative=``) and anything below is a
    genuine defect (ValueError naming ``A``); |lambda| <= tau counts as zero (pinv, singular check). Relative forward error of A^p:
    ~ |p| n u kappa for p < 0, ~ p n u kappa^(1-p) for 0 < p < 1, ~ p n u for p >= 1.
  * Iterative roots (Newton-Schulz, coupled Newton) return small frozen NamedTuples carrying the iteration
    count, the residual they stopped on and a ``converged`` flag; their default tolerances scale with the unit
    roundoff u of the input dtype (STYLE M2) and they stop early when the residual grows by more than 1.2x
    (the divergence guard of Google's and Meta's Shampoo). On failure they raise
    ``RuntimeError("newton_schulz: residual 3.2e-03 after 50 iterations (target 1.1e-13)")`` unless told
    ``on_fail="return"``; :func:`psd_root_iteration` defaults to ``on_fail="eigh"`` (answer by eigh, flagged
    ``fallback=True``), the policy errata 12 prescribes for warm starts.
  * Norms return 0-d arrays of the input's namespace, device and dtype (``float(x)`` turns one into a Python
    float; on CuPy that is a device synchronisation). Residuals inside the result NamedTuples are Python floats:
    the stopping decisions are taken on the host anyway.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import array_api_extra as xpx

from . import backend, validate

__all__ = [
    "vec",
    "unvec",
    "kron",
    "sym",
    "eigh_psd",
    "psd_power",
    "sqrt_psd",
    "inv_root_psd",
    "geometric_mean",
    "RootResult",
    "NewtonSchulzResult",
    "newton_schulz",
    "coupled_newton_inv_root",
    "psd_root_iteration",
    "norm_2",
    "norm_fro",
    "norm_trace",
    "EPS_MODES",
    "DIVERGENCE_RATIO",
]

Array = Any

#: psd_power's eps modes (see its docstring).
EPS_MODES = ("absolute", "relative", "pinv")

#: An iteration stops (and keeps its previous iterate) when its residual grows by more than this factor:
#: the error_tolerance guard of Google's scalable_shampoo ``ComputePower`` and Meta's Distributed Shampoo.
DIVERGENCE_RATIO = 1.2

# ---------------------------------------------------------------------------------------------------------
# small internal helpers (namespace passed down, no validation)

def _eye(n: int, A, xp):
    return xp.eye(n, dtype=A.dtype, device=backend.device(A))


def _sym(A, xp):
    # halves first: the same value as (A + A^T) / 2 (scaling by 2 is exact, barring subnormals) without
    # overflowing for entries above F / 2 (a float32 statistic G G^T with ||G||_F near sqrt(F))
    return A / 2 + xp.matrix_transpose(A) / 2


def _fro(X, xp) -> float:
    """Frobenius norm as a Python float, scaled by max|X| so float32 squares cannot overflow."""
    if X.size == 0:
        return 0.0
    m = float(xp.max(xp.abs(X)))
    if m == 0.0 or not math.isfinite(m):
        return m
    return m * float(xp.linalg.vector_norm(X / m))


def _max_abs(X, xp) -> float:
    return float(xp.max(xp.abs(X))) if X.size != 0 else 0.0


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


def _namespace_of(**arrays):
    """The common namespace of named arrays; a TypeError naming the odd one out if libraries are mixed."""
    items = [(k, v) for k, v in arrays.items() if v is not None]
    xp = backend.namespace(items[0][1])
    for k, v in items[1:]:
        try:
            backend.namespace(items[0][1], v)
        except TypeError:
            raise TypeError(
                f"{k}: array library {type(v).__module__}.{type(v).__name__} does not match {items[0][0]}'s "
                f"{type(items[0][1]).__module__}.{type(items[0][1]).__name__}"
            ) from None
    return xp


def _as_0d(x, xp):
    """A reduction's result as a true 0-d array (NumPy reductions return scalars, not 0-d ndarrays)."""
    return xp.asarray(x)


def _check_symmetric_input(A, name: str, check: bool):
    if check:
        return validate.symmetric(A, name)
    return validate.square(A, name)


def _fail(func: str, residual: float, iterations: int, target: float, extra: str = "") -> RuntimeError:
    return RuntimeError(f"{func}: residual {residual:.1e} after {iterations} iterations (target {target:.1e}){extra}")


# ---------------------------------------------------------------------------------------------------------
# vec / kron / sym

def vec(X):
    """Column-major vectorization: stack the columns of X.

    References:
      KrADagrad (Mei et al.), Sec. 2.1: vec(A) = (a_1^T ... a_n^T)^T, a_i the i-th column; errata 15.

    Args:
      X: (m, n) real floating matrix.

    Returns:
      (m n,) array, ``vec(X)[i + j m] == X[i, j]``; written as ``reshape(matrix_transpose(X), (-1,))`` because
      the array API's reshape has no ``order=`` (NumPy's row-major ``X.reshape(-1)`` is vec(X^T)).

    Identity: vec(L G R) = (R^T kron L) vec(G) for L (m, m), G (m, n), R (n, n) (KrADagrad's P18). A pure
    permutation of entries: exact, no rounding.
    """
    xp = validate.matrix(X, "X")
    return xp.reshape(xp.matrix_transpose(X), (-1,))


def unvec(x, m: int, n: int):
    """Inverse of :func:`vec`: fold an (m n,) vector column by column into an (m, n) matrix.

    References:
      KrADagrad, Sec. 2.1: vec^{-1}_{m,n}(a) = (a_{1:m} ... a_{m(n-1)+1:mn}).

    Args:
      x: (m n,) real floating vector.
      m, n: the target shape, positive integers.

    Returns:
      (m, n) array with ``unvec(vec(X), m, n) == X`` and ``vec(unvec(x, m, n)) == x`` exactly.
    """
    xp = validate.float_array(x, "x", ndim=1)
    m = validate.positive_int(m, "m")
    n = validate.positive_int(n, "n")
    if x.shape[0] != m * n:
        raise ValueError(f"x: expected length m*n = {m * n}, got {x.shape[0]}")
    return xp.matrix_transpose(xp.reshape(x, (n, m)))


def kron(A, B):
    """Kronecker product A kron B: the (m q, n r) block matrix with blocks a_ij B.

    References:
      KrADagrad, Sec. 2.1 (definition); ``array_api_extra.kron`` (the standard has no kron).

    Args:
      A: (m, n) real floating matrix.
      B: (q, r) real floating matrix of the same dtype and namespace.

    Returns:
      (m q, n r) array. Each entry is one rounded product a_ij b_kl (relative error <= u).

    Identity: vec(L G R) = (R^T kron L) vec(G) (column-major :func:`vec`); with NumPy's row-major flattening
    instead, flat(U X W) = (U kron W^T) flat(X) (errata 15).
    """
    validate.matrix(A, "A")
    validate.matrix(B, "B")
    xp = _namespace_of(A=A, B=B)
    validate.same_dtype(A=A, B=B)
    return xpx.kron(A, B, xp=xp)


def sym(A):
    """Symmetric part (A + A^T)/2.

    References:
      KrADagrad authors' code, ``symmetrize``; used before every eigh (which reads only one triangle).

    Args:
      A: (n, n) real floating, finite matrix.

    Returns:
      (n, n) array S with S == S^T exactly (floating-point addition commutes). For a symmetric A, S == A
      exactly; otherwise ||S - A||_F = ||A - A^T||_F / 2.
    """
    xp = validate.square(A, "A")
    validate.finite(A, "A", xp=xp)
    return _sym(A, xp)


# ---------------------------------------------------------------------------------------------------------
# eigendecomposition-based PSD functions

def eigh_psd(A, *, check: bool = True):
    """Eigendecomposition (w, V) of the symmetric positive semi-definite matrix sym(A).

    References:
      KrADagrad, Sec. 2.1 (A = V Lambda V^T for PSD A); errata 18 (naming). NumPy uses LAPACK syevd
      (``backend.eigh``, shared/notes/performance.md fact 1).

    Args:
      A: (n, n) symmetric PSD real floating matrix.
      check: verify symmetry and finiteness first (O(n^2)); the PSD test on the computed eigenvalues is free
        and always done.

    Returns:
      ``(w, V)``: w (n,) ascending eigenvalues, V (n, n) orthonormal eigenvectors (columns), input dtype.
      Eigenvalues in [-tol, 0), tol = 4 n u lambda_max, are rounding of a PSD matrix and are returned as
      computed (not clipped); see :func:`psd_power` for clipping.

    Identity (mpmath style): sym(A) V = V diag(w) and V^T V = I, exactly for some A + E with
    ||E||_2 <= c n u ||A||_2 (backward stability). The residuals that demonstrate it,
    ||sym(A) V - V diag(w)||_F / ||A||_2 and ||V^T V - I||_F, are O(n u). Eigenvalues carry absolute error
    <= c n u ||A||_2 (Weyl); eigenvectors are accurate only up to u ||A|| / gap, so compare subspaces, not
    columns, when eigenvalues cluster.

    Raises:
      ValueError: ``A`` not square, not finite, not symmetric, or lambda_min < -tol.
    """
    xp = _check_symmetric_input(A, "A", check)
    S = _sym(A, xp)
    w, V = backend.eigh(S)
    validate.psd_eigenvalues(w, "A", n=A.shape[0], dtype=A.dtype, strict=False, xp=xp)
    return w, V


def psd_power(A, p, *, eps=0.0, eps_mode: str = "absolute", rcond=None, atol=None, negative: str = "clip",
              check: bool = True, source_dtype=None):
    """Real power A^p of a symmetric PSD matrix by one eigendecomposition (negative p: inverse roots).

    References:
      KrADagrad, Sec. 2.1 (f(A) = V f(Lambda) V^T) and Alg. 1 (L^{alpha/2}); Shampoo, Eqs. 2-3 (L^{-1/4});
      epsilon placements of the peers: shared/notes/peers-lessons.md Sec. 8 item 5.

    Args:
      A: (n, n) symmetric PSD real floating matrix.
      p: real exponent (any sign; p = 0 gives I, or the range projector under ``"pinv"``).
      eps: regularisation >= 0, its meaning set by ``eps_mode``.
      eps_mode: how eigenvalues lambda (after the clipping below) are regularised:
        * ``"absolute"`` (Meta Distributed Shampoo, SOAP): lambda -> lambda + eps, i.e. (A + eps I)^p;
        * ``"relative"`` (Google scalable_shampoo): lambda -> lambda + eps * lambda_max, i.e.
          (A + eps ||A||_2 I)^p (lambda_max from the same eigh, not a power iteration);
        * ``"pinv"`` (Meta ``PseudoInverseConfig``): eigenvalues <= max(atol, tau) are treated as exactly zero
          and map to 0 for every p; the others map to lambda^p. For p = -1 this is the Moore-Penrose
          pseudo-inverse of the truncated matrix. ``eps`` must be 0.
      rcond: ``"pinv"`` only: None (default) drops |lambda| <= tau = 4 n u lambda_max, the numerical-rank rule
        (``validate.zero_tolerance``: the eigensolver's backward error); a real >= 0 drops lambda <= rcond *
        lambda_max instead (numpy.linalg.pinv's rcond, Meta's rank_rtol). Refused by other modes.
      atol: ``"pinv"`` only: an absolute cutoff (default 0), combined as max(atol, tau).
      negative: what to do with eigenvalues in [-tau, 0), which are rounding of a PSD matrix: ``"clip"`` sets
        them to 0, ``"raise"`` refuses them. Eigenvalues below -tau always raise.
      check: verify symmetry and finiteness of A first (O(n^2)); with False the caller guarantees both, and A
        must then be exactly symmetric (eigh reads its lower triangle only).
      source_dtype: the dtype A was computed in, when it was cast up just for this call (Shampoo's float32
        statistic with a float64 root): the rule's tau above (negative eigenvalues, "pinv", singular check)
        uses its unit roundoff, since that is where A's rounding came from. Default: A's dtype.

    Returns:
      (n, n) symmetric array X = V diag(f(lambda)) V^T (symmetrized, so X == X^T exactly), input dtype.

    Identity: X = f(A_hat) exactly for the computed (w, V), which diagonalize A_hat = A + E with
    ||E||_2 <= c n u ||A||_2. Hence ||X - A^p||_F / ||A^p||_F <~ c n u |p| kappa for p < 0,
    c n u p kappa^(1-p) for 0 < p < 1 and c n u p for p >= 1 (kappa = lambda_max / lambda_min of the
    regularised spectrum). For p = -1/q with q integer the residual ||X^q A - I||_2 <~ c q n u kappa shows it.

    Numerical caveats:
      For p < 0 with no regularisation (eps = 0, mode not ``"pinv"``) lambda_min <= tau (numerically zero,
      whatever its sign: cuSOLVER returns an exact zero as a tiny positive, LAPACK often as a tiny negative)
      raises a ValueError (asking for ``eps > 0`` or ``eps_mode="pinv"``) instead of returning rounding noise
      times 1/tau, the same verdict on every backend. Positive eigenvalues just above tau are accepted, but they
      carry few correct digits (the bound c n u |p| kappa above nears 1). Regularise rather than trust them.

    Raises:
      ValueError: bad A (shape, finiteness, symmetry, lambda_min < -tol), singular A for p < 0, bad options.
      TypeError: A not a real floating array; p or eps not real numbers.
    """
    xp = _check_symmetric_input(A, "A", check)
    p = validate.real_scalar(p, "p")
    eps = validate.real_scalar(eps, "eps", low=0.0)
    validate.one_of(eps_mode, "eps_mode", EPS_MODES)
    validate.one_of(negative, "negative", ("clip", "raise"))
    n = A.shape[0]
    # the rule's dtype: the coarser of A's and the one A was computed in (where its rounding came from)
    rule_dtype = A.dtype if source_dtype is None or backend.unit_roundoff(A.dtype) >= backend.unit_roundoff(
        source_dtype) else source_dtype
    if eps_mode == "pinv":
        if eps != 0.0:
            raise ValueError(f"eps: must be 0 with eps_mode='pinv' (truncation is set by rcond/atol), got {eps}")
        rcond = None if rcond is None else validate.real_scalar(rcond, "rcond", low=0.0)
        atol = 0.0 if atol is None else validate.real_scalar(atol, "atol", low=0.0)
    else:
        if rcond is not None:
            raise ValueError(f"rcond: only used with eps_mode='pinv', got eps_mode={eps_mode!r}")
        if atol is not None:
            raise ValueError(f"atol: only used with eps_mode='pinv', got eps_mode={eps_mode!r}")

    # eigh reads one triangle; averaging the two only matters for an input checked as symmetric within rounding
    # (check=True), so with check=False the caller's exactly symmetric A goes in as it is (saves an O(n^2) pass)
    w, V = backend.eigh(_sym(A, xp) if check else A)
    lam_min = float(w[0])
    lam_max = _max_abs(w, xp)
    tol = validate.zero_tolerance(lam_max, n=n, dtype=rule_dtype)
    if lam_min < -tol:
        raise ValueError(
            f"A: expected a positive semi-definite matrix, but lambda_min = {lam_min:.3g} < -tol = {-tol:.3g}"
        )
    if lam_min < 0 and negative == "raise":
        raise ValueError(
            f"A: lambda_min = {lam_min:.3g} < 0 (rounding: within tol = {tol:.3g}); pass negative='clip' to treat it as 0"
        )
    zero = xp.zeros_like(w)
    wc = xp.where(w > 0, w, zero)  # clip rounding negatives to 0

    if eps_mode == "pinv":
        thresh = max(atol, validate.zero_tolerance(lam_max, n=n, dtype=rule_dtype, rcond=rcond))
        keep = wc > thresh
        if p == 0:
            f = xp.where(keep, xp.ones_like(w), zero)
        else:
            safe = xp.where(keep, wc, xp.ones_like(w))
            f = xp.where(keep, safe ** p, zero)
    else:
        shift = eps if eps_mode == "absolute" else eps * lam_max
        wf = wc + shift if shift != 0.0 else wc
        if p < 0:
            wf_min = float(xp.min(wf))
            if shift == 0.0 and not lam_min > tol:
                raise ValueError(
                    f"A: singular for p = {p:g} < 0: lambda_min = {lam_min:.3g} <= tau = {tol:.3g}, numerically "
                    f"zero (4 n u lambda_max, lambda_max = {lam_max:.3g}); pass eps > 0 or eps_mode='pinv'"
                )
            if not wf_min > 0:  # shift underflowed against a zero eigenvalue
                raise ValueError(f"A: regularised lambda_min = {wf_min:.3g} is not positive; increase eps")
        f = xp.ones_like(w) if p == 0 else wf ** p
    X = (V * f) @ xp.matrix_transpose(V)
    return _sym(X, xp)


def sqrt_psd(A, **kwargs):
    """Principal square root A^{1/2} of a symmetric PSD matrix (``psd_power(A, 0.5, **kwargs)``).

    References:
      KrADagrad, Sec. 2.1 and Sec. 3.3 (the square roots inside the geometric mean).

    Args:
      A: (n, n) symmetric PSD matrix. kwargs: as :func:`psd_power` (eps, eps_mode, rcond, atol, negative, check).

    Returns:
      (n, n) symmetric PSD X with X X = A up to ||X X - A||_F <= c n u ||A||_2 (X^2 is backward stable even
      where X's small eigenvalues have relative error ~ n u kappa^{1/2}).
    """
    return psd_power(A, 0.5, **kwargs)


def inv_root_psd(A, p, **kwargs):
    """Inverse p-th root A^{-1/p} of a symmetric PD matrix (``psd_power(A, -1/p, **kwargs)``).

    References:
      Shampoo, Eqs. 2-3 (L^{-1/4}, R^{-1/4}); MBAG Eq. 3 (G^{-1/2}); errata 14 (exact test instances).

    Args:
      A: (n, n) symmetric PD matrix (PSD with ``eps > 0`` or ``eps_mode="pinv"``).
      p: real root order > 0 (p = 4 for Shampoo's matrix case, p = 2 for full-matrix AdaGrad).
      kwargs: as :func:`psd_power`.

    Returns:
      (n, n) symmetric PD X with X^p A = I (integer p) up to ||X^p A - I||_2 <~ c n u kappa(A) and
      ||X - A^{-1/p}||_F / ||A^{-1/p}||_F <~ c n u kappa(A) / p.

    Raises:
      ValueError: p <= 0 (message names ``p``), or as :func:`psd_power`.
    """
    p = validate.real_scalar(p, "p", low=0.0, low_open=True)
    return psd_power(A, -1.0 / p, **kwargs)


# ---------------------------------------------------------------------------------------------------------
# geometric mean

def _denman_beavers_sqrt(Z, xp, *, tol: float | None, max_iter: int):
    """Principal square root of a matrix with real positive eigenvalues: scaled product-form Denman-Beavers.

    Higham, Functions of Matrices (2008), Eq. (6.17) with determinant scaling (Sec. 6.5):
      M_0 = Y_0 = Z;  mu_k = |det M_k|^{-1/(2n)} while ||M_k - I||_F > 1e-2, else 1;
      Y_{k+1} = (mu_k / 2) Y_k (I + mu_k^{-2} M_k^{-1});  M_{k+1} = (I + (mu_k^2 M_k + mu_k^{-2} M_k^{-1}) / 2) / 2.
    Y_k -> Z^{1/2} and M_k -> I quadratically; one inverse per iteration. Stops on ||M_k - I||_F <= tol.
    """
    n = Z.shape[0]
    u = backend.unit_roundoff(Z.dtype)
    tol = 4.0 * n * u if tol is None else tol
    I = _eye(n, Z, xp)
    Y = Z
    M = Z
    res = _fro(M - I, xp)
    prev = math.inf
    k = 0
    while res > tol:
        if k >= max_iter or not math.isfinite(res) or res > DIVERGENCE_RATIO * prev:
            raise _fail("geometric_mean", res, k, tol, " in the Denman-Beavers square root of A^-1 B")
        Minv = xp.linalg.inv(M)
        mu = 1.0
        if res > 1e-2:
            logabsdet = float(xp.linalg.slogdet(M)[1])
            mu = math.exp(-logabsdet / (2 * n))
        Y = (0.5 * mu) * (Y @ (I + Minv / mu**2))
        M = 0.5 * (I + (mu**2 * M + Minv / mu**2) / 2)
        k += 1
        # determinant-scaled steps may raise the residual transiently; guard only once scaling is off
        prev = res if res <= 1e-2 else math.inf
        res = _fro(M - I, xp)
    return Y


def geometric_mean(A, B, *, formula: int = 1, tol=None, max_iter: int = 100, check: bool = True):
    """Ando's matrix geometric mean M_g(A, B) of two symmetric positive definite matrices.

    References:
      KrADagrad, Sec. 3.3: M_g(A, B) = A^{1/2} (A^{-1/2} B A^{-1/2})^{1/2} A^{1/2} = A (A^{-1} B)^{1/2}
      (Ando, Li and Mathias 2004); errata 10.

    Args:
      A, B: (n, n) symmetric positive definite matrices, same dtype and namespace.
      formula: 1 = the symmetric form by two eigendecompositions (A, then C = A^{-1/2} B A^{-1/2});
        2 = A (A^{-1} B)^{1/2}, where the principal square root of the NON-symmetric Z = A^{-1} B (real positive
        eigenvalues, Z similar to C) is computed by a scaled Denman-Beavers iteration (never eigh on Z:
        errata 10). Formula 2 is here to test formula 1 and the paper's equality, not for production.
      tol: Denman-Beavers stopping tolerance on ||M_k - I||_F (default 4 n u); formula 2 only.
      max_iter: Denman-Beavers iteration cap; formula 2 only.
      check: verify symmetry and definiteness of A and B (one eigvalsh each; formula 1 reuses A's eigh).

    Returns:
      (n, n) symmetric PD X = M_g(A, B), input dtype (symmetrized: X == X^T exactly).

    Identity: X is the unique SPD solution of the Riccati equation X A^{-1} X = B; also M_g(A, B) = M_g(B, A),
    M_g(A, I) = A^{1/2}, and M_g(A, B)^{-1} = M_g(A^{-1}, B^{-1}). The residual that demonstrates it,
    ||X A^{-1} X - B||_F / ||B||_F, is <~ c n u kappa(A). Forward error of formula 1 <~ c n u (kappa(A) + kappa(B));
    formula 2 loses more (the solve costs kappa(A), the non-normal square root up to (kappa(A) kappa(B))^{1/2}).

    Raises:
      ValueError: A or B not symmetric PD (names the argument); shapes differ; bad formula.
      TypeError: dtype mismatch between A and B.
      RuntimeError: formula 2's iteration did not converge.
    """
    _check_symmetric_input(A, "A", check)
    _check_symmetric_input(B, "B", check)
    xp = _namespace_of(A=A, B=B)
    validate.same_dtype(A=A, B=B)
    validate.same_shape(A=A, B=B)
    validate.one_of(formula, "formula", (1, 2))
    max_iter = validate.positive_int(max_iter, "max_iter")
    if tol is not None:
        tol = validate.real_scalar(tol, "tol", low=0.0, low_open=True)
    n = A.shape[0]
    if check:
        validate.symmetric_pd(B, "B", xp=xp)
    if formula == 1:
        w, V = backend.eigh(_sym(A, xp))
        validate.psd_eigenvalues(w, "A", n=n, dtype=A.dtype, strict=True, xp=xp)
        s = xp.sqrt(w)
        Vt = xp.matrix_transpose(V)
        A_half = (V * s) @ Vt
        A_mhalf = (V / s) @ Vt
        C = _sym(A_mhalf @ (_sym(B, xp) @ A_mhalf), xp)
        wc, Vc = backend.eigh(C)
        sc = xp.sqrt(xp.where(wc > 0, wc, xp.zeros_like(wc)))
        C_half = (Vc * sc) @ xp.matrix_transpose(Vc)
        return _sym(A_half @ (C_half @ A_half), xp)
    if check:
        validate.symmetric_pd(A, "A", xp=xp)
    Z = xp.linalg.solve(_sym(A, xp), _sym(B, xp))
    Y = _denman_beavers_sqrt(Z, xp, tol=tol, max_iter=max_iter)
    return _sym(A @ Y, xp)


# ---------------------------------------------------------------------------------------------------------
# iterative roots

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


# ---------------------------------------------------------------------------------------------------------
# norms

def _zero_d(value, A, xp):
    return xp.asarray(value, dtype=A.dtype, device=backend.device(A))


def norm_2(A, *, assume_symmetric=None):
    """Spectral norm ||A||_2, the largest singular value.

    References:
      KrADagrad, Sec. 2.1 (||A||_2) and Prop. 3.2 (t_k = 1 + ||L G R G^T||_2).

    Args:
      A: (m, n) real floating, finite matrix.
      assume_symmetric: True: A is symmetric, use max|lambda| from one eigvalsh (reads one triangle, ~3x
        cheaper than an SVD); False: sqrt(lambda_max(A^T A)) from the smaller Gram matrix (one GEMM and one
        eigvalsh: 3.7x faster than svdvals at 1024^2); None (default): decide by an exact test A == A^T.

    Returns:
      0-d array (A's namespace, device and dtype). Relative error <= c n u: the Gram route squares the condition
      of the *small* singular values only; the largest, lambda_max(A^T A) = ||A||_2^2, is computed with
      absolute error c n u ||A||_2^2, i.e. relative error c n u / 2 after the square root.

    Identity: ||A||_2 = max_i sigma_i(A) = max_{||x||=1} ||A x||; for symmetric A, = max|lambda_i|.
    """
    xp = validate.matrix(A, "A")
    validate.finite(A, "A", xp=xp)
    if A.size == 0:
        return _zero_d(0.0, A, xp)
    if assume_symmetric is None:
        assume_symmetric = A.shape[0] == A.shape[1] and bool(xp.all(A == xp.matrix_transpose(A)))
    if assume_symmetric:
        validate.square(A, "A", xp=xp)
        w = backend.eigvalsh(A)
        return _as_0d(xp.max(xp.abs(xp.stack([w[0], w[-1]]))), xp)
    m, n = A.shape
    # scaled by a power of two s ~ max|A| (exact: same digits) so that the Gram's squares cannot overflow
    s = _pow2_scale(_max_abs(A, xp))
    As = A / s if s != 1.0 else A
    At = xp.matrix_transpose(As)
    gram = At @ As if n <= m else As @ At
    w = backend.eigvalsh(_sym(gram, xp))
    return _as_0d(xp.sqrt(xp.clip(w[-1], 0.0, None)) * s, xp)


def _pow2_scale(m: float) -> float:
    """A power of two near m > 0 (1.0 for 0 or non-finite m): dividing by it is exact in binary floating point."""
    return math.ldexp(1.0, math.frexp(m)[1]) if m > 0 and math.isfinite(m) else 1.0


def norm_fro(A):
    """Frobenius norm ||A||_F = sqrt(sum_ij a_ij^2) = sqrt(tr(A^T A)).

    References:
      KrADagrad, Sec. 2.1; MBAG Sec. III-B (Newton-Schulz normalization).

    Args:
      A: (m, n) real floating, finite matrix.

    Returns:
      0-d array (A's namespace, device and dtype), computed as max|A| * ||A / max|A|||_F so that float32
      squares cannot overflow (LAPACK's xLANGE does the same); relative error <= c n u.

    Identity: ||A||_2 <= ||A||_F <= sqrt(rank A) ||A||_2.
    """
    xp = validate.matrix(A, "A")
    validate.finite(A, "A", xp=xp)
    return _norm_fro(A, xp)


def _norm_fro(A, xp):
    """:func:`norm_fro` of a 2-D real floating A whose finiteness the caller has not checked: max|A| is NaN or
    inf exactly when A has a NaN or inf entry, and then ``validate.finite`` raises norm_fro's own error, so the
    kernel costs no separate finiteness pass and returns the same bits and messages as norm_fro."""
    if A.size == 0:
        return _zero_d(0.0, A, xp)
    m = xp.max(xp.abs(A))
    mf = float(m)
    if not math.isfinite(mf):
        validate.finite(A, "A", xp=xp)
    if mf == 0.0:
        return _zero_d(0.0, A, xp)
    return _as_0d(m * xp.linalg.vector_norm(A / m), xp)


def norm_trace(A):
    """Trace tr(A) = sum_i a_ii, the "trace norm" of the KrADagrad code (``matrices_norm(norm='tr')``).

    References:
      KrADagrad, Sec. 2.1 (tr), Sec. 3 (trace growth rates, Eq. 6); authors' ``matrices_norm``.

    Args:
      A: (n, n) real floating, finite matrix.

    Returns:
      0-d array (A's namespace, device and dtype).

    Caveat: this is the trace, not the nuclear norm ||A||_* = sum_i sigma_i: the two agree exactly when A is
    PSD (then tr A = sum lambda_i = sum sigma_i); for indefinite A the trace can be 0 or negative. Nothing here
    checks PSD. For PSD A: ||A||_2 <= ||A||_F <= tr A <= n ||A||_2.
    """
    xp = validate.square(A, "A")
    validate.finite(A, "A", xp=xp)
    return _as_0d(xp.linalg.trace(A), xp)
