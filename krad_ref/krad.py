"""The KrAD pieces: the Lemma 3.1 factorization, the t_k rules, the Eq. (13) factor update, damping and decay.

References:
  Mei, Moreno, Walters, "KrADagrad: Kronecker Approximation-Domination Gradient Preconditioned Stochastic
  Optimization", UAI 2023 (arXiv 2305.19416), Sec. 3.1-3.3 and Alg. 1; the authors' code as summarised in
  ``shared/notes/kradagrad-code.md`` (Sec. 4.2, 5.2); ``shared/notes/errata.md`` items 1, 3, 4, 11, 13, 18.

The paper's names, once:
  G        the gradient of an (m, n) matrix parameter W (or of an order-p tensor, one mode at a time);
  B, C     the (never stored) Kronecker factors of the statistic Q = C kron B, which dominates the gradient
           outer products: Q >= (1/(n t)) sum g g^T (Eq. 7), g = vec(G) column-major;
  L, R     their inverses, L = B^{-1} (m x m) and R = C^{-1} (n x n): the "inverse statistics" the algorithms
           store and update without any inversion (Eq. 8);
  t_k      the scalar of Prop. 3.2 that keeps the update positive definite;
  A        in this module, the Gram matrix that the factor update sees: A = G R G^T for KrADagrad's left factor
           (Eq. 13), A = G G^T for KrADagrad* (Alg. 1, the other factor held at I), and for an order-p tensor
           the mode-k form A_k = G_(k) (kron_{j != k} F_j) G_(k)^T (:func:`mode_statistic`).

Every function works in its input dtype, through ``xp = backend.namespace(...)`` of its arrays (NumPy, CuPy,
array_api_strict), and never mutates its arguments. ``check=True`` (the default) validates shapes, dtypes,
finiteness and symmetry (O(n^2)); the optimizers call these functions with ``check=False`` on their own state.

Numerical caveat (errata 11): L_k = L - L A L / t is computed by subtraction. When ||L A|| approaches 1/u (u the
unit roundoff: 6e-8 in float32), the subtraction cancels and the computed L_k can lose definiteness, whichever
dtype t itself is computed in. With the authors' L_0 = I / 1e-8 in float32 this happens on the first steps.
"""
from __future__ import annotations

import math
from numbers import Real
from typing import Any, Sequence

from . import backend, linalg, modes, validate

__all__ = [
    "T_RULES",
    "SCHEMES",
    "krad_factor",
    "mode_statistic",
    "t_from_gram",
    "t_k",
    "gram_update",
    "left_update",
    "mode_update",
    "damp",
    "decay",
]

Array = Any

#: t_k rule names (errata 18), simplest first.
T_RULES = ("spectral", "frobenius", "trace", "code")
#: "star": KrADagrad* (Alg. 1; the other factor held at I); "alternating": KrADagrad (Sec. 3.2, Eq. 13).
SCHEMES = ("star", "alternating")


# ---------------------------------------------------------------------------------------------------------
# helpers

def _sym(A, xp):
    """(A + A^T) / 2 of a matrix. The sum is a new array, so it is halved in place: the same division, without
    allocating a second result (a full-matrix buffer per factor update at large orders)."""
    S = A + backend.transpose_for_reading(A, xp)
    S /= 2
    return S


def _check_factor(L, name: str):
    xp = validate.symmetric(L, name)
    return xp


def _check_same(**arrays):
    """Same library and same dtype for the named arrays (TypeError naming the odd one out)."""
    items = [(k, v) for k, v in arrays.items() if v is not None]
    k0, v0 = items[0]
    for k, v in items[1:]:
        try:
            backend.namespace(v0, v)
        except TypeError:
            raise TypeError(f"{k}: array library {type(v).__module__} does not match {k0}'s {type(v0).__module__}") from None
    validate.same_dtype(**dict(items))


def _t_value(t, name: str = "t"):
    """Check t > 0 (a Python real or a 0-d array); return it unchanged."""
    if isinstance(t, bool):
        raise TypeError(f"{name}: expected a real number or a 0-d array, got bool")
    if isinstance(t, Real):
        v = float(t)
    else:
        if getattr(t, "ndim", None) != 0:
            raise TypeError(f"{name}: expected a real number or a 0-d array, got {type(t).__name__}")
        v = float(t)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name}: expected a finite positive number, got {v}")
    return t


# ---------------------------------------------------------------------------------------------------------
# Lemma 3.1

def krad_factor(C, U, m: int, n: int):
    """Lemma 3.1's left factor B = sum_i U_i C^{-1} U_i^T, with U_i = unvec_{m,n}(u_i) (by solves, not inverses).

    References:
      KrADagrad Lemma 3.1: for PD C (n x n) and U (mn x r), B = sum_i U_i C^{-1} U_i^T >= 0 and
      C kron B >= (1/n) U U^T; errata 8 (the constant 1/n is sharp only when some U_i can have rank n).

    Args:
      C: (n, n) symmetric positive definite matrix.
      U: (m n, r) matrix whose columns u_i = vec(U_i) (column-major, Sec. 2.1), same dtype and namespace as C.
      m, n: the shape of each U_i (m n must equal U's row count; n must equal C's order).

    Returns:
      (m, m) symmetric PSD matrix B in C's dtype (symmetrized). All r right-hand sides go through one
      ``linalg.solve`` with C (r m columns), then one (m, r n) x (r n, m) product.

    Numerical caveat: the solve carries a relative error ~ n u kappa(C); B is PSD in exact arithmetic, its
    computed small eigenvalues can be O(n u kappa(C) ||B||) negative.

    Raises:
      ValueError/TypeError: C not symmetric PD, U of the wrong shape, dtype or library, bad m or n.
    """
    m = validate.positive_int(m, "m")
    n = validate.positive_int(n, "n")
    xp = validate.symmetric_pd(C, "C")
    validate.matrix(U, "U")
    validate.finite(U, "U")
    _check_same(C=C, U=U)
    if C.shape[0] != n:
        raise ValueError(f"C: expected shape ({n}, {n}) for n = {n}, got {tuple(C.shape)}")
    if U.shape[0] != m * n:
        raise ValueError(f"U: expected {m * n} = m*n rows, got shape {tuple(U.shape)}")
    r = U.shape[1]
    if r == 0:
        return xp.zeros((m, m), dtype=C.dtype, device=backend.device(C))
    # Ut3[i] = U_i^T (n, m): row i of U^T is u_i = vec(U_i), and reshape (row-major) of a column-major vec
    # into (n, m) gives the transpose of U_i.
    Ut3 = xp.reshape(xp.matrix_transpose(U), (r, n, m))
    rhs = xp.reshape(xp.permute_dims(Ut3, (1, 0, 2)), (n, r * m))       # [U_1^T ... U_r^T], (n, r m)
    Z = xp.linalg.solve(C, rhs)                                          # [C^-1 U_1^T ... C^-1 U_r^T]
    Zv = xp.reshape(xp.permute_dims(xp.reshape(Z, (n, r, m)), (1, 0, 2)), (r * n, m))  # stacked vertically
    UhT = xp.reshape(Ut3, (r * n, m))                                    # [U_1 ... U_r]^T, (r n, m)
    return _sym(xp.matrix_transpose(UhT) @ Zv, xp)


# ---------------------------------------------------------------------------------------------------------
# the Gram matrix a factor update sees

def mode_statistic(G, k: int, others: Sequence | None = None, *, check: bool = True):
    """Mode-k statistic A_k = G_(k) (kron_{j != k} F_j) G_(k)^T of an order-p gradient.

    References:
      KrADagrad Eq. (9)/(13): the left factor of a matrix sees A = G R G^T (R = C^{-1}, the other factor held);
      Alg. 1 / Sec. 3.3.2 (KrADagrad*): A = G G^T, the other factor being I; App. C.5 (tensors, lost) rebuilt
      from the authors' code (kradagrad-code.md Sec. 1, 5.2): the mode-k unfolding G_(k) with every other mode
      multiplied by its factor.

    Args:
      G: order-p gradient, shape (d_0, ..., d_{p-1}), p >= 1.
      k: the mode whose factor is updated (0 <= k < p; for a matrix, 0 = left L, 1 = right R).
      others: None (every other factor is I: the KrADagrad* mode Gram G_(k) G_(k)^T), or a sequence of p
        entries, each a (d_j, d_j) symmetric matrix or None (= I); entry k is ignored.
      check: validate G and the factors.

    Returns:
      (d_k, d_k) symmetric PSD matrix in G's dtype: cross_gram(G, G x_{j != k} F_j, k), symmetrized. For a
      matrix this is G R G^T (k = 0) or G^T L G (k = 1). The result does not depend on the unfolding order.
    """
    if check:
        xp = validate.float_array(G, "G")
        validate.finite(G, "G", xp=xp)
        if G.ndim < 1:
            raise ValueError("G: expected an array with at least one mode, got a 0-d array")
    xp = backend.namespace(G)
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < G.ndim:
        raise ValueError(f"k: expected a mode in [0, {G.ndim}), got {k!r}")
    if others is None:
        return _plain_gram(G, k, xp)
    others = tuple(others)
    if len(others) != G.ndim:
        raise ValueError(f"others: expected {G.ndim} entries (one per mode), got {len(others)}")
    mats = [None if j == k else F for j, F in enumerate(others)]
    if check:
        for j, F in enumerate(mats):
            if F is None:
                continue
            _check_factor(F, f"others[{j}]")
            _check_same(G=G, **{f"others[{j}]": F})
            if F.shape[0] != G.shape[j]:
                raise ValueError(f"others[{j}]: expected shape ({G.shape[j]}, {G.shape[j]}), got {tuple(F.shape)}")
    if all(F is None for F in mats):
        return _plain_gram(G, k, xp)
    H = modes._multi_mode_product(G, mats, xp)
    return _sym(modes._cross_gram(G, H, k, xp), xp)


def _plain_gram(G, k: int, xp):
    """G_(k) G_(k)^T, symmetrized only where it is not exactly symmetric already (modes.gram_is_exactly_symmetric:
    then (A + A^T) / 2 == A bit for bit and the pass is skipped; the one difference is an entry |a| above half
    the dtype's largest number, where the skipped a + a would have overflowed to inf)."""
    A = modes._mode_gram(G, k, xp)
    return A if modes.gram_is_exactly_symmetric(G, xp) else _sym(A, xp)


# ---------------------------------------------------------------------------------------------------------
# t_k

def t_from_gram(L, A, rule: str = "spectral", *, scheme: str = "alternating", check: bool = True):
    """The scalar t_k for the update of factor L by the Gram matrix A (0-d array, L's dtype).

    References and rules (N = L A, which is L_{k-1} G R_{k-1} G^T in Prop. 3.2; Alg. 1 writes G G^T L = (L A)^T
    for KrADagrad*, which has the same 2-norm, F-norm and trace):
      * ``"spectral"``: t = 1 + ||N||_2, Prop. 3.2 (the largest singular value of the non-symmetric N).
      * ``"frobenius"``: t = 1 + ||N||_F, Prop. 3.2's "looser but more computationally friendly" choice and the
        t_{k,L}, t_{k,R} of Sec. 3.3.2 / Alg. 1.
      * ``"trace"``: t = 1 + tr(N) = 1 + tr(L^{1/2} A L^{1/2}) (errata 18). Not in the paper. Valid because
        tr(N) >= lambda_max(L^{1/2} A L^{1/2}), with equality for rank-1 A: then t = 1 + tau is the smallest valid
        t and the step is the exact Sherman-Morrison update of L^{-1} (errata 3). Neither it nor the spectral t
        dominates the other: ||N||_2 >= rho(N) can exceed tr(N) when L is ill conditioned (and tr(N) exceeds
        ||N||_2 for well-spread A).
      * ``"code"``: the authors' code. scheme ``"star"`` (KrADagrad*, ``kradagrad.py`` since 2023-01-31):
        t = d (1 + tr(N)), d = L's order (kradagrad-code.md Sec. 4.2 step 5); scheme ``"alternating"``
        (KrADagrad, ``kradagradmm.py``): t = 1 + ||N||_F on the damped L' = L - eps L^2, i.e. the Frobenius
        rule evaluated on whatever (damped) L the caller passes (Sec. 5.2 step 3).
    All four give M_k = (1/t) L^{1/2} A L^{1/2} < I (Prop. 3.2), hence 0 < L_k <= L (Cor. 3.3), for PSD L, A.

    Args:
      L: (d, d) symmetric PSD factor (L_{k-1}, after decay/damping if the caller applies them).
      A: (d, d) symmetric PSD Gram matrix (:func:`mode_statistic`), same dtype and namespace.
      rule: one of :data:`T_RULES`.
      scheme: one of :data:`SCHEMES`; only ``rule="code"`` reads it.
      check: validate the arguments.

    Returns:
      0-d array t >= 1 in L's dtype (namespace and device of L).
    """
    if check:
        validate.one_of(rule, "rule", T_RULES)
        validate.one_of(scheme, "scheme", SCHEMES)
        _check_factor(L, "L")
        _check_factor(A, "A")
        _check_same(L=L, A=A)
        validate.same_shape(L=L, A=A)
    return _t_value_of(L, A, None, rule, scheme, backend.namespace(L, A))


def _t_value_of(L, A, N, rule, scheme, xp):
    """t from L, A and (when the rule needs it and the caller has it) N = L A, so an update forms N once."""
    return xp.asarray(_t_scalar(L, A, N, rule, scheme, xp))


def _t_scalar(L, A, N, rule, scheme, xp):
    """:func:`_t_value_of` before its conversion to a 0-d array: a scalar (or 0-d array) of L's dtype, which
    divides an array to the same bits as the 0-d array would (mode_update's L A L / t)."""
    if rule == "trace" or (rule == "code" and scheme == "star"):
        tr = xp.sum(L * A)  # tr(L A) = sum_ij L_ij A_ji = sum(L * A) for symmetric A: O(d^2), no product formed
        t = 1.0 + tr
        if rule == "code":
            t = L.shape[0] * t
        return t
    N = L @ A if N is None else N
    if rule == "spectral":
        nrm = linalg.norms._norm_2_general(N, xp)  # norm_2(N, assume_symmetric=False), its checks folded in
    else:  # "frobenius", or "code" with the alternating scheme
        nrm = linalg.norms._fro_value(N, xp)  # N is formed here from checked L, A: checked by the kernel's own max
    return 1.0 + nrm


def t_k(L, G, R=None, rule: str = "spectral", *, scheme: str | None = None, check: bool = True):
    """t_k for a matrix gradient: the KrADagrad form (R given) or the KrADagrad* form (R = None, i.e. R = I).

    References:
      KrADagrad Prop. 3.2: t_k = 1 + ||L_{k-1} G_k R_{k-1} G_k^T||_2 (or ||.||_F); Sec. 3.3.2 / Alg. 1:
      t_{k,L} = 1 + ||G_k G_k^T L_{k-1}||_F (the R = I case); the authors' code (rule ``"code"``). The rules are
      documented in :func:`t_from_gram`.

    Args:
      L: (m, m) symmetric PSD left factor L_{k-1}.
      G: (m, n) gradient.
      R: (n, n) symmetric PSD right factor R_{k-1}, or None for I (KrADagrad*). For the right factor's t, call
        ``t_k(R, G^T, L)`` (or ``t_k(R, G^T)`` in KrADagrad*).
      rule: one of :data:`T_RULES`.
      scheme: ``"star"`` or ``"alternating"``; only ``rule="code"`` reads it. Default: ``"star"`` when R is None,
        else ``"alternating"``.
      check: validate the arguments.

    Returns:
      0-d array, L's dtype.
    """
    if scheme is None:
        scheme = "star" if R is None else "alternating"
    if check:
        validate.one_of(rule, "rule", T_RULES)
        validate.one_of(scheme, "scheme", SCHEMES)
        _check_matrix_operands(L, G, R)
    A = mode_statistic(G, 0, None if R is None else (None, R), check=False)
    return t_from_gram(L, A, rule, scheme=scheme, check=False)


def _check_matrix_operands(L, G, R):
    _check_factor(L, "L")
    validate.matrix(G, "G")
    validate.finite(G, "G")
    _check_same(L=L, G=G, R=R)
    if G.shape[0] != L.shape[0]:
        raise ValueError(f"G: expected {L.shape[0]} rows to match L's shape {tuple(L.shape)}, got {tuple(G.shape)}")
    if R is not None:
        _check_factor(R, "R")
        if R.shape[0] != G.shape[1]:
            raise ValueError(f"R: expected shape ({G.shape[1]}, {G.shape[1]}) to match G's {tuple(G.shape)}, "
                             f"got {tuple(R.shape)}")


# ---------------------------------------------------------------------------------------------------------
# Eq. (13)

def gram_update(L, A, t, *, check: bool = True):
    """Eq. (13) in Gram form: L_k = L - (1/t) L A L, symmetrized.

    References:
      KrADagrad Eq. (13) (A = G R G^T), Alg. 1 (Delta L_k = (1/t_{k,L}) L G G^T L); Cor. 3.3 (0 < L_k <= L when
      t satisfies Prop. 3.2); errata 3 (rank-1 closed form: L_k^{-1} = L^{-1} + A / (t - tau), tau = tr(L A)).

    Args:
      L: (d, d) symmetric PSD factor.
      A: (d, d) symmetric PSD Gram matrix, same dtype and namespace.
      t: the scalar t_k > 0 (Python real or 0-d array), e.g. from :func:`t_from_gram`.
      check: validate the arguments.

    Returns:
      (d, d) symmetric matrix (L - L A L / t + its transpose) / 2 in L's dtype; L itself (unchanged values) when
      A = 0. Computed as (L A) L: two GEMMs.

    Numerical caveat: cancellation in L - L A L / t (module docstring; errata 11). The relative error of the
    result in a direction where L_k << L is ~ d u ||L A|| / (lambda_min(L_k) / lambda_max(L)).
    """
    if check:
        _check_factor(L, "L")
        _check_factor(A, "A")
        _check_same(L=L, A=A)
        validate.same_shape(L=L, A=A)
        _t_value(t)
    xp = backend.namespace(L, A)
    return _sym(L - ((L @ A) @ L) / t, xp)


def left_update(L, G, R, t, *, check: bool = True):
    """Eq. (13): L_k = L - (1/t) L G R G^T L, symmetrized (R = None means I: the KrADagrad* Delta L of Alg. 1).

    References:
      KrADagrad Eq. (12)-(13) (the Woodbury lower bound of (B + Delta B)^{-1}); Alg. 1; errata 1 (the printed
      Alg. 1 assigns R_{k-1} - Delta R_k to L_k; this function computes the intended L_{k-1} - Delta L_k).

    Args:
      L: (m, m) symmetric PSD left factor L_{k-1}.
      G: (m, n) gradient G_k.
      R: (n, n) symmetric PSD right factor (held fixed), or None for I. The right factor's update is
        ``left_update(R, G^T, L, t)``.
      t: t_k > 0, e.g. ``t_k(L, G, R, rule)``.
      check: validate the arguments.

    Returns:
      (m, m) symmetric matrix in L's dtype. G = 0 returns L's values unchanged.
    """
    if check:
        _check_matrix_operands(L, G, R)
        _t_value(t)
    A = mode_statistic(G, 0, None if R is None else (None, R), check=False)
    return gram_update(L, A, t, check=False)


def mode_update(factors: Sequence, G, k: int, t_rule: str = "spectral", *, scheme: str = "alternating",
                beta2: float = 1.0, damping: float = 0.0, check: bool = True):
    """New factor of mode k of an order-p tensor: decay, damping, t_k and Eq. (13) on A_k.

    References:
      KrADagrad Eq. (13) and Prop. 3.2 (scheme ``"alternating"``: A_k = G_(k) (kron_{j != k} F_j) G_(k)^T, the
      other modes' factors held); Alg. 1 / Sec. 3.3.2 (scheme ``"star"``: A_k = G_(k) G_(k)^T, the other
      factors being I); the authors' code for decay and damping (kradagrad-code.md Sec. 4.2 step 1, 5.2 step 3).

    Steps, in the code's order: L' = :func:`decay` (L_k, beta2); L'' = :func:`damp` (L', damping);
    t = :func:`t_from_gram` (L'', A_k, t_rule, scheme); return L'' - L'' A_k L'' / t.

    Args:
      factors: p symmetric PSD factors, factors[j] of shape (d_j, d_j), the same dtype as G.
      G: gradient of shape (d_0, ..., d_{p-1}).
      k: the mode to update.
      t_rule: one of :data:`T_RULES`.
      scheme: ``"alternating"`` (other factors used) or ``"star"`` (other factors ignored, i.e. I).
      beta2: decay in (0, 1]; 1 = none (Cor. 3.3 needs beta2 = 1: errata 13).
      damping: eps >= 0 with eps ||L'||_2 < 1 (errata 13).
      check: validate the arguments.

    Returns:
      (d_k, d_k) symmetric matrix, G's dtype.
    """
    factors = tuple(factors)
    if check:
        validate.one_of(t_rule, "t_rule", T_RULES)
        validate.one_of(scheme, "scheme", SCHEMES)
        validate.float_array(G, "G")
        if len(factors) != G.ndim:
            raise ValueError(f"factors: expected {G.ndim} factors (one per mode of G), got {len(factors)}")
        for j, F in enumerate(factors):
            _check_factor(F, f"factors[{j}]")
            _check_same(G=G, **{f"factors[{j}]": F})
            if F.shape[0] != G.shape[j]:
                raise ValueError(f"factors[{j}]: expected shape ({G.shape[j]}, {G.shape[j]}), got {tuple(F.shape)}")
    others = factors if scheme == "alternating" else None
    A = mode_statistic(G, k, others, check=check)
    L = decay(factors[k], beta2, check=check)
    L = damp(L, damping, check=check)
    xp = backend.namespace(L, A)
    N = L @ A  # formed once: t's norm and Eq. (13)'s L - N L / t both need it
    t = _t_scalar(L, A, N, t_rule, scheme, xp)
    return _sym(L - (N @ L) / t, xp)


# ---------------------------------------------------------------------------------------------------------
# damping and decay

def damp(L, eps: float, *, check: bool = True):
    """Diagonal damping of an inverse statistic: L' = L - eps L^2 (first order of (L^{-1} + eps I)^{-1}).

    References:
      KrADagrad Sec. 4 ("diagonal damping", App. C.4, lost); the authors' KrADagrad code
      (``kradagradmm.py``: L' = L - eps L L^T, stored: damping accumulates; kradagrad-code.md Sec. 5.2 step 3);
      errata 13.

    For symmetric PSD L with eigenvalues lambda, L' has eigenvalues lambda (1 - eps lambda): PD iff
    eps ||L||_2 < 1, and then 0 < L' <= L. (L^{-1} + eps I)^{-1} = L - eps L^2 + O(eps^2 L^3).

    Args:
      L: (d, d) symmetric PSD matrix.
      eps: damping >= 0 (0 returns L).
      check: validate L (symmetry, finiteness).

    Returns:
      (d, d) symmetric matrix in L's dtype.

    Raises:
      ValueError: eps ||L||_2 >= 1 (errata 13: with the KrADagrad* code's L_0 = I/eps the damped factor is 0).
        The test costs nothing when eps ||L||_F < 1 (||L||_2 <= ||L||_F); otherwise one eigvalsh decides.
    """
    if eps.__class__ is float and eps == 0.0 and not check:  # what the checks below would pass and return
        return L
    eps = validate.real_scalar(eps, "eps", low=0.0)
    if check:
        _check_factor(L, "L")
    if eps == 0.0:
        return L
    xp = backend.namespace(L)
    if not eps * float(linalg.norm_fro(L)) < 1.0:
        nrm2 = float(linalg.norm_2(L, assume_symmetric=True))
        if not eps * nrm2 < 1.0:
            raise ValueError(
                f"eps: damping L - eps L^2 needs eps ||L||_2 < 1 to stay positive definite (errata 13), but "
                f"eps = {eps:.3g} and ||L||_2 = {nrm2:.3g} (eps ||L||_2 = {eps * nrm2:.3g})"
            )
    return _sym(L - eps * (L @ L), xp)


def decay(L, beta2: float, *, check: bool = True):
    """Exponential forgetting of an inverse statistic as the authors' code does it: L <- L / beta2.

    References:
      The authors' code (``kradagrad.py``, ``kradagradmm.py``: ``if beta2 < 1: L /= beta2``; kradagrad-code.md
      Sec. 4.2 step 1 and Sec. 10 row 10). Not in the paper.

    Dividing L = B^{-1} by beta2 multiplies the statistic B by beta2, so together with the following update the
    statistic becomes beta2 B + G ... G^T: there is NO (1 - beta2) factor on the new term (unlike Shampoo's
    beta2 B + (1 - beta2) G G^T). L grows by 1/beta2 per step, so Cor. 3.3's monotonicity L_k <= L_{k-1} holds
    only for beta2 = 1 (errata 13).

    Args:
      L: (d, d) symmetric matrix.
      beta2: in (0, 1]; 1 returns L.
      check: validate L.

    Returns:
      (d, d) matrix in L's dtype.
    """
    if beta2.__class__ is float and beta2 == 1.0 and not check:  # what the checks below would pass and return
        return L
    beta2 = validate.real_scalar(beta2, "beta2", low=0.0, high=1.0, low_open=True)
    if check:
        _check_factor(L, "L")
    if beta2 == 1.0:
        return L
    return L / beta2
