"""PSD matrix functions by one symmetric eigendecomposition, and the numerical-rank rule they apply.

References:
  KrADagrad, Sec. 2.1 (f(A) = V f(Lambda) V^T) and Alg. 1 (L^{alpha/2}); Shampoo, Eqs. 2-3 (L^{-1/4}); MBAG Eq. 3
  (G^{-1/2}); errata 14 and 18; the peers' epsilon placements: shared/notes/peers-lessons.md Sec. 8 item 5.

Convention: every function goes through one symmetric eigendecomposition of ``sym(A) = (A + A^T)/2`` (NumPy:
LAPACK's divide-and-conquer driver through ``backend.eigh``). A computed eigenvalue is within about n u ||A||_2 of
the exact one, so eigenvalues in [-tau, 0), tau = 4 n u lambda_max (the numerical-rank rule,
``validate.zero_tolerance``), are rounding (clipped or refused, ``negative=``) and anything below is a genuine
defect (ValueError naming ``A``); |lambda| <= tau counts as zero (pinv, singular check). Relative forward error of
A^p: ~ |p| n u kappa for p < 0, ~ p n u kappa^(1-p) for 0 < p < 1, ~ p n u for p >= 1.
"""
from __future__ import annotations

from .. import backend, validate
from ._common import _check_symmetric_input, _max_abs, _sym


#: psd_power's eps modes (see its docstring).
EPS_MODES = ("absolute", "relative", "pinv")


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
    return _psd_power(_sym(A, xp) if check else A, p, xp, eps=eps, eps_mode=eps_mode, rcond=rcond, atol=atol,
                      negative=negative, rule_dtype=rule_dtype)


def _psd_power(A, p: float, xp, *, eps: float = 0.0, eps_mode: str = "absolute", rcond=None, atol=None,
               negative: str = "clip", rule_dtype=None):
    """:func:`psd_power`'s kernel for checked options and an A that is exactly symmetric (eigh reads its lower
    triangle): the optimizers' roots call it with their own validated state and config, so that the options are
    not validated again on every root. ``rule_dtype``: the dtype of the numerical-rank rule (default A's)."""
    n = A.shape[0]
    rule_dtype = A.dtype if rule_dtype is None else rule_dtype
    w, V = backend.eigh(A)
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
    zero = backend.zeros_like(w, xp)
    wc = xp.where(w > 0, w, zero)  # clip rounding negatives to 0

    if eps_mode == "pinv":
        tau = validate.zero_tolerance(lam_max, n=n, dtype=rule_dtype, rcond=rcond)
        thresh = max(0.0 if atol is None else atol, tau)
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
    X = (V * f) @ V.T  # V is (n, n): .T is matrix_transpose, without the compatibility layer's call
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
