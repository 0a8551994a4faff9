"""Tests of krad_ref.linalg against mpmath ground truth, under every array namespace (fixture ``xp``).

Tolerance model (Higham, Accuracy and Stability, Ch. 3; Functions of Matrices, Ch. 3):
  u      unit roundoff of the dtype under test (2**-24 float32, 2**-53 float64);
  n      the matrix order: eigh, GEMM and solve are backward stable with errors ~ n u ||A||;
  kappa  lambda_max / lambda_min of the float matrix actually tested (taken from its mp eigenvalues).
A matrix function f(A) computed from a backward-stable eigh has relative forward error <~ C n u cond_f, with
cond_f the relative condition number: |p| kappa for A^p with p < 0, p kappa^(1-p) for 0 < p < 1, p for p >= 1
(``cond_power`` below). Each assertion states its constant C and why. Ground truth: the float inputs are
converted to mpmath EXACTLY (every binary float is a finite decimal) and the exact-input answer is computed at
DPS = 40 digits, so the comparison sees only the error of the code under test.

The mp helpers are proofs_check.mp's (exact conversion, eigendecomposition, relative error) bound to the names
used below; only ``mp_func`` (any scalar function on an mp spectrum) and ``mp_pow_scalar`` are local.
"""
from __future__ import annotations

import functools
import math

import mpmath
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from krad_ref import backend
from krad_ref import linalg as la
from proofs_check import mp as PM
from proofs_check import strategies as PS

DPS = 40
DTYPES = ("float32", "float64")
#: largest condition numbers whose small eigenvalues still carry digits at n = 8: n u kappa <~ 1e-2
KAPPAS = {"float32": (1e2, 1e4), "float64": (1e2, 1e8)}


# ---------------------------------------------------------------------------------------------------------
# mp ground truth (exact float -> mpf conversion, eigen-based matrix functions at DPS digits)

#: exact float -> mp conversion (1-D -> column)
to_mp = PM.to_mp
#: (ascending eigenvalues, eigenvectors) of a symmetric matrix at DPS digits
mp_eigsy = functools.partial(PM.mp_eigsy, dps=DPS)


def mp_func(E, Q, f):
    """Q diag(f(E)) Q^T for any scalar f (shifts, thresholds, 1/sqrt): proofs_check.mp offers powers only
    (mp_psd_power, which also recomputes the eigendecomposition on every call)."""
    with mpmath.workdps(DPS):
        n = len(E)
        D = mpmath.diag([f(e) for e in E])
        return Q * D * Q.T if n else Q


def mp_pow_scalar(e, p):
    e = max(e, mpmath.mpf(0))
    if p < 0 and e == 0:
        return mpmath.inf
    return e ** mpmath.mpf(p) if e != 0 else mpmath.mpf(0)


#: ||X - Y||_F / ||Y||_F in mp at DPS digits, X converted exactly from the backend's array
mp_rel_err = functools.partial(PM.rel_error, dps=DPS)
mp_eye = PM.mp_eye


def np_of(X):
    return np.asarray(backend.to_numpy(X), dtype=np.float64)


# ---------------------------------------------------------------------------------------------------------
# test matrices: U diag(kappa^{-i/(n-1)}) U^T with a seeded random orthogonal U (never identity/diagonal only)

def random_orthogonal(n: int, rng) -> np.ndarray:
    """Kept local (spd_case uses strategies.seeded_spd): the PSD test of coupled_newton_inv_root needs its exact
    zeros to round NEGATIVE so the Cholesky check rejects A, which holds for this draw and not for the
    Householder builder's (its zeros round to +7e-17: numerically PD, and the iteration fails instead)."""
    Q, R = np.linalg.qr(rng.standard_normal((n, n)))
    return Q * np.sign(np.diag(R))


@functools.lru_cache(maxsize=None)
def spd_case(n: int, kappa: float, dtype: str, seed: int = 0, scale: float = 7.3):
    """(A as float array, mp eigenvalues, mp eigenvectors, kappa of the ROUNDED A) for a controlled spectrum.

    The scale 7.3 keeps ||A|| away from 1 so a forgotten rescaling in an iteration shows (peers-lessons 10).
    """
    A = PS.seeded_spd(n, kappa, np.random.default_rng(seed), scale=scale).astype(dtype)  # symmetric after the cast
    E, Q = mp_eigsy(to_mp(A))
    kap = float(max(E) / min(E))
    return A, E, Q, kap


def cond_power(p: float, kappa: float) -> float:
    """Relative condition number (up to a constant) of A -> A^p on SPD matrices with condition kappa."""
    if p < 0:
        return abs(p) * kappa
    if p < 1:
        return p * kappa ** (1 - p)
    return max(p, 1.0)


def unimodular_B() -> np.ndarray:
    """B = U^T U with U unit upper triangular integer (det 1): B and B^{-1} are integer SPD, kappa(B) = 13.9."""
    U = np.eye(4, dtype=np.int64)
    U[np.triu_indices(4, 1)] = (-1, -1, 0, 0, -1, 1)
    return U.T @ U


def int_matpow(B: np.ndarray, p: int) -> np.ndarray:
    out = np.eye(B.shape[0], dtype=np.int64)
    for _ in range(p):
        out = out @ B
    return out


def int_inv(B: np.ndarray) -> np.ndarray:
    Bi = np.rint(np.linalg.inv(B.astype(np.float64))).astype(np.int64)
    assert (Bi @ B == np.eye(B.shape[0], dtype=np.int64)).all()
    return Bi


def asx(xp, a, dtype=None):
    a = np.asarray(a)
    return xp.asarray(a.astype(dtype) if dtype is not None else a)


def u_of(dtype: str) -> float:
    return backend.unit_roundoff(np.dtype(dtype))


def assert_same_kind(X, A, xp):
    """Array type in equals array type out: namespace, dtype and shape conventions."""
    assert backend.namespace(X) is backend.namespace(A) or type(X) is type(A)
    assert X.dtype == A.dtype


# ---------------------------------------------------------------------------------------------------------
# vec / unvec / kron / sym

@pytest.mark.parametrize("dtype", DTYPES)
def test_vec_is_column_major_and_unvec_inverts_it_exactly(xp, dtype):
    X_np = np.arange(12, dtype=dtype).reshape(3, 4) / 7
    X = asx(xp, X_np)
    v = la.vec(X)
    assert_same_kind(v, X, xp)
    # vec stacks columns: a permutation, so compare exactly (tolerance 0)
    np.testing.assert_array_equal(backend.to_numpy(v), X_np.flatten(order="F"))
    np.testing.assert_array_equal(backend.to_numpy(la.unvec(v, 3, 4)), X_np)
    x = asx(xp, np.arange(6, dtype=dtype))
    np.testing.assert_array_equal(backend.to_numpy(la.vec(la.unvec(x, 2, 3))), np.arange(6, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n", [(1, 2), (3, 2), (2, 4)])
def test_vec_kron_identity_against_mp(xp, dtype, m, n):
    rng = np.random.default_rng(10 * m + n)
    L_np, G_np, R_np = (rng.standard_normal(s).astype(dtype) for s in ((m, m), (m, n), (n, n)))
    L, G, R = asx(xp, L_np), asx(xp, G_np), asx(xp, R_np)
    lhs = la.vec(L @ G @ R)
    K = la.kron(xp.matrix_transpose(R), L)
    rhs = K @ la.vec(G)
    with mpmath.workdps(DPS):
        Lm, Gm, Rm = to_mp(L_np), to_mp(G_np), to_mp(R_np)
        exact = Lm * Gm * Rm
        exact_vec = mpmath.matrix([exact[i, j] for j in range(n) for i in range(m)])
        # |L||G||R| bounds the rounding of both sides entrywise (Higham Sec. 3.5)
        absprod = to_mp(np.abs(L_np)) * to_mp(np.abs(G_np)) * to_mp(np.abs(R_np))
        scale = float(mpmath.mnorm(absprod, "f"))
        for side in (lhs, rhs):
            err = float(mpmath.mnorm(to_mp(np_of(side)) - exact_vec, "f"))
            # rtol = 2 (m + n) u: two chained products of lengths m and n (gamma_{m+n}), normwise on |L||G||R|
            assert err <= 2 * (m + n) * u_of(dtype) * scale, (err, scale)
    # kron entries are single products: each exact to one rounding (relative u)
    Kx = np_of(K)
    for (a, b), kv in zip([(i, j) for i in range(m * n) for j in range(m * n)], Kx.ravel()):
        want = R_np.T.astype(np.float64)[a // m, b // m] * L_np.astype(np.float64)[a % m, b % m]
        assert abs(kv - want) <= u_of(dtype) * abs(want)  # one rounding of an exact product


def test_kron_is_blockwise_a_ij_B(xp):
    A = asx(xp, np.array([[1.0, 2.0], [3.0, 4.0]]))
    B = asx(xp, np.array([[0.0, 5.0, 1.0]]))
    K = np_of(la.kron(A, B))
    assert K.shape == (2, 6)
    # small integers: exact, tolerance 0
    np.testing.assert_array_equal(K, np.kron(np_of(A), np_of(B)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sym_is_exactly_symmetric_and_fixes_symmetric_input(xp, dtype):
    rng = np.random.default_rng(3)
    M_np = rng.standard_normal((5, 5)).astype(dtype)
    S = np_of(la.sym(asx(xp, M_np)))
    np.testing.assert_array_equal(S, S.T)  # (a + b) == (b + a) in floating point: exactly symmetric
    A_np = ((M_np + M_np.T) / 2).astype(dtype)
    np.testing.assert_array_equal(np_of(la.sym(asx(xp, A_np))), A_np.astype(np.float64))  # (a + a)/2 == a exactly


# ---------------------------------------------------------------------------------------------------------
# eigh_psd and psd_power

@pytest.mark.parametrize("dtype", DTYPES)
def test_eigh_psd_residuals_and_eigenvalues_against_mp(xp, dtype):
    n = 8
    A_np, E, _, kap = spd_case(n, KAPPAS[dtype][1], dtype)
    u = u_of(dtype)
    w, V = la.eigh_psd(asx(xp, A_np))
    assert_same_kind(w, asx(xp, A_np), xp)
    w_np, V_np, A64 = np_of(w), np_of(V), A_np.astype(np.float64)
    lam_max = float(max(E))
    # backward stability: residual and orthogonality O(n u ||A||_2); C = 4 covers LAPACK's constants at n = 8
    assert np.linalg.norm(A64 @ V_np - V_np * w_np) <= 4 * n * u * lam_max
    assert np.linalg.norm(V_np.T @ V_np - np.eye(n)) <= 4 * n * u
    # Weyl: |w_i - lambda_i| <= ||E||_2 <= c n u lambda_max (absolute, not relative, for the small ones)
    assert np.all(np.abs(w_np - np.array([float(e) for e in sorted(E)])) <= 4 * n * u * lam_max)


POWERS = (-1.0, -0.5, -0.25, 0.25, 0.5, 2.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kappa_idx", (0, 1))
def test_psd_power_against_mp(xp, dtype, kappa_idx):
    n = 8
    A_np, E, Q, kap = spd_case(n, KAPPAS[dtype][kappa_idx], dtype)
    A = asx(xp, A_np)
    u = u_of(dtype)
    for p in POWERS:
        X = la.psd_power(A, p)
        assert_same_kind(X, A, xp)
        Xn = np_of(X)
        assert np.array_equal(Xn, Xn.T)  # symmetrized output
        err = mp_rel_err(X, mp_func(E, Q, lambda e: mp_pow_scalar(e, p)))
        # rtol = 8 n u cond_power(p, kappa): eigh backward error n u ||A||, amplified by the condition of x^p
        assert err <= 8 * n * u * cond_power(p, kap), (p, err, kap)


@pytest.mark.parametrize("dtype", DTYPES)
def test_psd_power_p_zero_is_identity_and_sqrt_inv_root_wrappers(xp, dtype):
    n = 5
    A_np, E, Q, kap = spd_case(n, 1e2, dtype, seed=1)
    A = asx(xp, A_np)
    u = u_of(dtype)
    np.testing.assert_allclose(np_of(la.psd_power(A, 0.0)), np.eye(n), atol=4 * n * u)  # V V^T = I to n u
    # the wrappers are the same computation: bitwise equal
    np.testing.assert_array_equal(np_of(la.sqrt_psd(A)), np_of(la.psd_power(A, 0.5)))
    np.testing.assert_array_equal(np_of(la.inv_root_psd(A, 4)), np_of(la.psd_power(A, -0.25)))
    # sqrt_psd squares back to A: backward stable, rtol 8 n u (no kappa)
    S = np_of(la.sqrt_psd(A))
    assert np.linalg.norm(S @ S - A_np) <= 8 * n * u * np.linalg.norm(A_np, 2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", (2, 4))
def test_inverse_roots_on_exact_unimodular_instance(xp, dtype, p):
    """errata 14: A = B^{-p}, B SPD unimodular integer, so A^{-1/p} = B exactly (identity could not tell p apart)."""
    B = unimodular_B()
    A_int = int_matpow(int_inv(B), p)
    assert np.abs(A_int).max() < 2**24  # exactly representable in float32 too
    A = asx(xp, A_int, dtype)
    n, u = 4, u_of(dtype)
    kapA = float(np.linalg.cond(B.astype(np.float64))) ** p
    for X in (la.inv_root_psd(A, p), la.psd_power(A, -1.0 / p),
              la.coupled_newton_inv_root(A, p).root):
        # rtol = 8 n u kappa(A) / p: A^{-1/p} has relative condition kappa/p (cond_power)
        err = np.linalg.norm(np_of(X) - B) / np.linalg.norm(B)
        assert err <= 8 * n * u * kapA / p, (err, kapA)
    # the positive root of B^p is B: relative condition of A^{1/p} is ~ (1/p) kappa^{1-1/p}
    Ap = asx(xp, int_matpow(B, p), dtype)
    kap_p = float(np.linalg.cond(B.astype(np.float64))) ** p
    for X in (la.psd_root_iteration(Ap, p).root, la.psd_power(Ap, 1.0 / p)):
        err = np.linalg.norm(np_of(X) - B) / np.linalg.norm(B)
        assert err <= 8 * n * u * cond_power(1.0 / p, kap_p), err


@pytest.mark.parametrize("dtype", DTYPES)
def test_psd_power_eps_modes_against_mp(xp, dtype):
    n = 6
    A_np, E, Q, kap = spd_case(n, KAPPAS[dtype][1], dtype, seed=2)
    A = asx(xp, A_np)
    u = u_of(dtype)
    lam_max = max(E)
    for mode, eps, shift in (("absolute", 1e-2, mpmath.mpf(1e-2)), ("relative", 1e-3, mpmath.mpf(1e-3) * lam_max)):
        X = la.psd_power(A, -0.5, eps=eps, eps_mode=mode)
        with mpmath.workdps(DPS):
            want = mp_func(E, Q, lambda e: (e + shift) ** mpmath.mpf(-0.5))  # (A + shift I)^{-1/2}, exact shift in mp
            kap_reg = float((lam_max + shift) / (min(E) + shift))
        err = mp_rel_err(X, want)
        # rtol = 8 n u cond_power(-1/2, kappa of the regularised spectrum): the shift is what makes it well posed
        assert err <= 8 * n * u * cond_power(-0.5, kap_reg), (mode, err)


@pytest.mark.parametrize("dtype", DTYPES)
def test_psd_power_pinv_mode_on_rank_deficient_matrix(xp, dtype):
    n, r = 6, 3
    rng = np.random.default_rng(4)
    U = random_orthogonal(n, rng)
    w = np.array([4.0, 2.0, 1.0, 0.0, 0.0, 0.0])
    A_np = (U * w) @ U.T
    A_np = ((A_np + A_np.T) / 2).astype(dtype)
    A = asx(xp, A_np)
    u = u_of(dtype)
    E, Q = mp_eigsy(to_mp(A_np))
    thresh = n * u * max(abs(e) for e in E)  # the default rtol = n u, times lambda_max
    assert sum(1 for e in E if e > thresh) == r  # the rounded zeros stay below the threshold
    # no regularisation: a zero or clipped eigenvalue is refused, never turned into inf. The rounded zeros of A
    # may come out as tiny positives (then A^-1 is rounding noise, as documented); an exactly singular A is not:
    S = asx(xp, np.array([[2.0, 2.0, 0.0], [2.0, 2.0, 0.0], [0.0, 0.0, 1.0]], dtype=dtype))
    with pytest.raises(ValueError, match="A: singular for p = -1 < 0"):
        la.psd_power(S, -1.0)
    # ... while a regularisation or pinv answers: (S + I)^{-1/2} and S^+ (exact small rationals, rtol 8 n u kappa)
    Sp = np_of(la.psd_power(S, -1.0, eps_mode="pinv"))
    np.testing.assert_allclose(Sp, [[0.125, 0.125, 0], [0.125, 0.125, 0], [0, 0, 1]], atol=8 * 3 * u_of(dtype) * 4)
    # (S + eps I)^{-1/2} in closed form: S = 4 v v^T + 0 w w^T + 1 e3 e3^T, v = (1, 1, 0)/sqrt2, w = (1, -1, 0)/sqrt2.
    # Relative error of a p = -1/2 power ~ |p| n u kappa with kappa = (4 + eps) / eps = 4001: rtol 8 n u kappa.
    eps = 1e-3
    v, wv, e3 = np.array([1.0, 1.0, 0.0]) / np.sqrt(2), np.array([1.0, -1.0, 0.0]) / np.sqrt(2), np.eye(3)[2]
    want_half = ((4 + eps) ** -0.5 * np.outer(v, v) + eps ** -0.5 * np.outer(wv, wv)
                 + (1 + eps) ** -0.5 * np.outer(e3, e3))
    got_half = np_of(la.psd_power(S, -0.5, eps=eps)).astype(np.float64)
    kappa = (4 + eps) / eps
    assert np.linalg.norm(got_half - want_half) <= 8 * 3 * u_of(dtype) * kappa * np.linalg.norm(want_half)
    X = la.psd_power(A, -1.0, eps_mode="pinv")
    want = mp_func(E, Q, lambda e: 1 / e if e > thresh else mpmath.mpf(0))
    # rtol = 8 n u kappa_r, kappa_r = 4 / 1 over the kept eigenvalues; the kept subspace has gap 1 to the zeros
    assert mp_rel_err(X, want) <= 8 * n * u * 4.0
    Xn, A64 = np_of(X), A_np.astype(np.float64)
    # Moore-Penrose identities A X A = A and X A X = X, residual 8 n u kappa_r (relative)
    assert np.linalg.norm(A64 @ Xn @ A64 - A64) <= 8 * n * u * 4.0 * np.linalg.norm(A64)
    assert np.linalg.norm(Xn @ A64 @ Xn - Xn) <= 8 * n * u * 4.0 * np.linalg.norm(Xn)
    # p = 0 under pinv: the orthogonal projector onto the kept eigenvectors, rank r
    P = np_of(la.psd_power(A, 0.0, eps_mode="pinv"))
    assert abs(np.trace(P) - r) <= 8 * n * u  # trace of a projector = its rank, to rounding
    # atol above every eigenvalue keeps nothing: the zero matrix
    np.testing.assert_array_equal(np_of(la.psd_power(A, -0.5, eps_mode="pinv", atol=10.0)), np.zeros((n, n)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiny_negative_eigenvalue_clipped_or_refused_genuine_negative_always_refused(xp, dtype):
    n = 8
    u = u_of(dtype)
    rng = np.random.default_rng(5)
    U = random_orthogonal(n, rng)
    tol = 4 * n * u  # validate/psd_power's sign tolerance 4 n u lambda_max, lambda_max = 1 here
    w = np.array([1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, -tol / 2])
    A_np = (U * w) @ U.T
    A_np = ((A_np + A_np.T) / 2).astype(dtype)
    E, _ = mp_eigsy(to_mp(A_np))
    assert -tol < float(min(E)) < 0  # the rounded matrix really has a tiny negative eigenvalue (test premise)
    A = asx(xp, A_np)
    X = np_of(la.psd_power(A, 0.5))  # clipped to 0, then the root
    assert np.linalg.eigvalsh(X).min() >= -8 * n * u  # PSD to rounding (clipped eigenvalue -> 0)
    # X^2 = A with the tiny negative eigenvalue replaced by 0: residual <= |lambda_neg| + 8 n u
    assert np.linalg.norm(X @ X - A_np) <= tol + 8 * n * u
    with pytest.raises(ValueError, match="A: lambda_min = .* < 0"):
        la.psd_power(A, 0.5, negative="raise")
    w[-1] = -1e-2  # genuinely negative: far below -tol
    B_np = (((U * w) @ U.T + ((U * w) @ U.T).T) / 2).astype(dtype)
    for neg in ("clip", "raise"):
        with pytest.raises(ValueError, match="A: expected a positive semi-definite"):
            la.psd_power(asx(xp, B_np), 0.5, negative=neg)
    with pytest.raises(ValueError, match="A: expected a positive semi-definite"):
        la.eigh_psd(asx(xp, B_np))


# ---------------------------------------------------------------------------------------------------------
# geometric mean

def mp_geometric_mean(A_np, B_np):
    """M_g(A, B) = A^{1/2} (A^{-1/2} B A^{-1/2})^{1/2} A^{1/2} at DPS digits (formula 1 in mp)."""
    EA, QA = mp_eigsy(to_mp(A_np))
    with mpmath.workdps(DPS):
        Ah = mp_func(EA, QA, mpmath.sqrt)
        Aih = mp_func(EA, QA, lambda e: 1 / mpmath.sqrt(e))
        C = Aih * to_mp(B_np) * Aih
        C = (C + C.T) / 2
        EC, QC = mp_eigsy(C)
        return Ah * mp_func(EC, QC, mpmath.sqrt) * Ah


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kappas", [(10.0, 10.0), (1e3, 1e2)])
def test_geometric_mean_formulas_against_mp_and_each_other(xp, dtype, kappas):
    n = 5
    kA, kB = kappas
    A_np, EA, _, kapA = spd_case(n, kA, dtype, seed=6, scale=2.0)
    B_np, EB, _, kapB = spd_case(n, kB, dtype, seed=7, scale=0.3)
    A, B = asx(xp, A_np), asx(xp, B_np)
    u = u_of(dtype)
    want = mp_geometric_mean(A_np, B_np)
    G1 = la.geometric_mean(A, B, formula=1)
    G2 = la.geometric_mean(A, B, formula=2)
    assert_same_kind(G1, A, xp)
    assert_same_kind(G2, A, xp)
    e1, e2 = mp_rel_err(G1, want), mp_rel_err(G2, want)
    # formula 1: two eighs and square roots; A^{-1/2} costs kappa(A), C's root kappa(C)^{1/2} <= (kA kB)^{1/2}
    rtol1 = 8 * n * u * (kapA + math.sqrt(kapA * kapB))
    # formula 2: the solve A^{-1}B costs kappa(A), the non-normal square root (eigenvector condition of
    # A^{-1}B up to kappa(A)^{1/2}) multiplies it again by (kappa(A) kappa(B))^{1/2}
    rtol2 = 8 * n * u * kapA * math.sqrt(kapA * kapB)
    assert e1 <= rtol1, (e1, rtol1)
    assert e2 <= rtol2, (e2, rtol2)
    # the two formulas agree within the sum of their bounds (paper Sec. 3.3 equality, checked numerically)
    g1, g2 = np_of(G1), np_of(G2)
    assert np.linalg.norm(g1 - g2) / np.linalg.norm(g1) <= rtol1 + rtol2
    # Riccati residual X A^{-1} X = B (X the unique SPD solution): rtol 8 n u kappa(A) kappa(X)^{1/2}
    A64 = A_np.astype(np.float64)
    ric = np.linalg.norm(g1 @ np.linalg.solve(A64, g1) - B_np) / np.linalg.norm(B_np)
    assert ric <= 8 * n * u * kapA * math.sqrt(kapA * kapB), ric


@pytest.mark.parametrize("dtype", DTYPES)
def test_geometric_mean_with_identity_is_square_root(xp, dtype):
    n = 4
    A_np, E, Q, kap = spd_case(n, 1e2, dtype, seed=8)
    A = asx(xp, A_np)
    I = xp.eye(n, dtype=A.dtype)
    u = u_of(dtype)
    want = mp_func(E, Q, mpmath.sqrt)
    for formula in (1, 2):
        for X in (la.geometric_mean(A, I, formula=formula), la.geometric_mean(I, A, formula=formula)):
            # M_g(A, I) = M_g(I, A) = A^{1/2}; rtol = 8 n u kappa (formula bounds above with kappa(I) = 1)
            assert mp_rel_err(X, want) <= 8 * n * u * kap


# ---------------------------------------------------------------------------------------------------------
# Newton-Schulz (MBAG Eq. 5)

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("normalize", ("fro", "trace"))
def test_newton_schulz_both_rescaled_outputs_against_mp(xp, dtype, normalize):
    n = 8
    A_np, E, Q, kap = spd_case(n, KAPPAS[dtype][1], dtype, seed=9, scale=350.0)  # scale != 1 tests the rescaling
    A = asx(xp, A_np)
    u = u_of(dtype)
    res = la.newton_schulz(A, normalize=normalize)
    assert res.converged and res.iterations <= 60
    assert_same_kind(res.sqrt, A, xp)
    assert_same_kind(res.inv_sqrt, A, xp)
    e_sqrt = mp_rel_err(res.sqrt, mp_func(E, Q, mpmath.sqrt))
    e_isqrt = mp_rel_err(res.inv_sqrt, mp_func(E, Q, lambda e: 1 / mpmath.sqrt(e)))
    # rtol = 8 n u cond: A^{1/2} has cond ~ kappa^{1/2}, A^{-1/2} ~ kappa (cond_power); the iteration's own
    # rounding floor ||I - YX|| ~ n u kappa^{1/2} stays inside these
    assert e_sqrt <= 8 * n * u * cond_power(0.5, kap) * 2, e_sqrt
    assert e_isqrt <= 8 * n * u * cond_power(-0.5, kap) * 2, e_isqrt


@pytest.mark.parametrize("dtype", DTYPES)
def test_newton_schulz_on_exact_instance_and_mbag_input(xp, dtype):
    B = unimodular_B()
    A = asx(xp, B @ B, dtype)  # A^{1/2} = B and A^{-1/2} = B^{-1}, both integer
    n, u = 4, u_of(dtype)
    kapA = float(np.linalg.cond(B.astype(np.float64))) ** 2
    res = la.newton_schulz(A)
    assert np.linalg.norm(np_of(res.sqrt) - B) / np.linalg.norm(B) <= 8 * n * u * kapA  # cond(A^{1/2}) <= kappa
    Bi = int_inv(B)
    assert np.linalg.norm(np_of(res.inv_sqrt) - Bi) / np.linalg.norm(Bi) <= 8 * n * u * kapA  # cond(A^{-1/2}) ~ kappa
    # MBAG feeds H = G^{-1} and takes X: G^{-1/2} = sqrt(||H||_F) X_N, i.e. our .sqrt of H. With H = B^{-2}:
    H = asx(xp, Bi @ Bi, dtype)
    assert np.linalg.norm(np_of(la.newton_schulz(H).sqrt) - Bi) / np.linalg.norm(Bi) <= 8 * n * u * kapA


@pytest.mark.parametrize("dtype", DTYPES)
def test_newton_schulz_fixed_iterations_reports_or_raises(xp, dtype):
    n = 8
    A_np, E, Q, kap = spd_case(n, 1e4, dtype, seed=10)
    A = asx(xp, A_np)
    res = la.newton_schulz(A, num_iters=5, on_fail="return")  # MBAG's T_NS = 5
    assert res.iterations == 5 and not res.converged
    # errata 6: a few fixed iterations at kappa = 1e4 are far from the roots (not a rounding question)
    assert mp_rel_err(res.inv_sqrt, mp_func(E, Q, lambda e: 1 / mpmath.sqrt(e))) > 0.1
    with pytest.raises(RuntimeError, match=r"newton_schulz: residual .* after 5 iterations \(target .*\)"):
        la.newton_schulz(A, num_iters=5)
    with pytest.raises(RuntimeError, match=r"after 3 iterations"):
        la.newton_schulz(A, max_iter=3)
    # fixed count reproduces the printed recursion exactly (same operations, same order): bitwise equal
    A64 = np.asarray(A_np, dtype=dtype)
    s = np.linalg.norm(A64.astype(np.float64))
    X, Y = A64 / np.asarray(s, dtype=dtype), np.eye(n, dtype=dtype)
    for _ in range(3):
        T = 3 * np.eye(n, dtype=dtype) - Y @ X
        X, Y = 0.5 * (X @ T), 0.5 * (T @ Y)
    got = la.newton_schulz(A, num_iters=3, on_fail="return")
    want = (X + X.T) / 2 * np.sqrt(s)
    # not bitwise (scaling s is computed with max|A| pre-scaling): rtol 16 n u on a well-conditioned iterate
    assert np.linalg.norm(np_of(got.sqrt) - want) <= 16 * n * u_of(dtype) * np.linalg.norm(want)


# ---------------------------------------------------------------------------------------------------------
# coupled Newton inverse root (Shampoo code, Guo & Higham 2006 Eq. 3.2)

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", (2, 4))
def test_coupled_newton_inv_root_against_mp(xp, dtype, p):
    n = 8
    A_np, E, Q, kap = spd_case(n, KAPPAS[dtype][1], dtype, seed=11)
    A = asx(xp, A_np)
    u = u_of(dtype)
    res = la.coupled_newton_inv_root(A, p)
    assert res.converged and not res.fallback
    assert res.residual <= 4 * (n + p) * u  # the documented default target on ||M - I||_F
    assert_same_kind(res.root, A, xp)
    err = mp_rel_err(res.root, mp_func(E, Q, lambda e: e ** mpmath.mpf(-1.0 / p)))
    # rtol = 8 n u kappa: cond(A^{-1/p}) = kappa/p, times p for the p-fold products of the iteration
    assert err <= 8 * n * u * kap, err
    X = np_of(res.root)
    # recomputed residual ||X^p A - I||_2 <~ c n u kappa (the tracked M is not recomputed by the code)
    assert np.linalg.norm(np.linalg.matrix_power(X, p) @ A_np - np.eye(n), 2) <= 8 * n * u * kap


@pytest.mark.parametrize("dtype", DTYPES)
def test_coupled_newton_ridge_handles_psd_and_matches_shifted_root(xp, dtype):
    n = 6
    rng = np.random.default_rng(12)
    U = random_orthogonal(n, rng)
    A_np = (U * np.array([3.0, 2.0, 1.0, 0.5, 0.0, 0.0])) @ U.T
    A_np = ((A_np + A_np.T) / 2).astype(dtype)
    A = asx(xp, A_np)
    u = u_of(dtype)
    with pytest.raises(ValueError, match="A: expected a positive definite"):
        la.coupled_newton_inv_root(A, 4)
    ridge = 1e-2
    res = la.coupled_newton_inv_root(A, 4, ridge=ridge)
    E, Q = mp_eigsy(to_mp(A_np))
    with mpmath.workdps(DPS):
        want = mp_func(E, Q, lambda e: (max(e, 0) + mpmath.mpf(ridge)) ** mpmath.mpf(-0.25))
    kap = 3.0 / ridge
    # rtol = 8 n u kappa(A + ridge I) (the ridge itself is exact in mp and rounds once in float)
    assert mp_rel_err(res.root, want) <= 8 * n * u * kap
    # same answer as the eigh route with the same absolute shift; rtol = sum of both bounds
    Y = np_of(la.psd_power(A, -0.25, eps=ridge))
    assert np.linalg.norm(np_of(res.root) - Y) / np.linalg.norm(Y) <= 16 * n * u * kap


def test_coupled_newton_code_error_measure_stops_at_iteration_zero(xp):
    """Finding: the code's entrywise max|M - I| is not monotone; with its 1.2x guard it gives up at once here."""
    B = unimodular_B()
    A = asx(xp, int_matpow(int_inv(B), 4), "float64")
    res = la.coupled_newton_inv_root(A, 4, error="max", on_fail="return")
    assert res.iterations == 0 and not res.converged
    assert np.linalg.norm(np_of(res.root) - B) / np.linalg.norm(B) > 0.5  # X_0 = z^{1/4} I: no digit right
    assert la.coupled_newton_inv_root(A, 4).converged  # the monotone Frobenius measure converges


def test_coupled_newton_nonconvergence(xp):
    A_np, *_ = spd_case(8, 1e6, "float64", seed=13)
    A = asx(xp, A_np)
    with pytest.raises(RuntimeError, match=r"coupled_newton_inv_root: residual .* after 2 iterations"):
        la.coupled_newton_inv_root(A, 4, max_iter=2)
    res = la.coupled_newton_inv_root(A, 4, max_iter=2, on_fail="return")
    assert not res.converged and res.iterations == 2


# ---------------------------------------------------------------------------------------------------------
# positive root iteration and the warm start (errata 12)

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", (2, 4))
def test_psd_root_iteration_cold_against_mp(xp, dtype, p):
    n = 8
    A_np, E, Q, kap = spd_case(n, KAPPAS[dtype][1], dtype, seed=14)
    A = asx(xp, A_np)
    u = u_of(dtype)
    res = la.psd_root_iteration(A, p)
    assert res.converged and not res.fallback
    assert res.residual <= 8 * p * math.sqrt(n + 1) * u  # documented default target (relative ||X^p - A||_F)
    err = mp_rel_err(res.root, mp_func(E, Q, lambda e: e ** mpmath.mpf(1.0 / p)))
    # rtol = 8 n u cond_power(1/p, kappa) = the eigh route's bound: the iteration is as accurate
    assert err <= 8 * n * u * cond_power(1.0 / p, kap), err


@pytest.mark.parametrize("dtype", DTYPES)
def test_psd_root_iteration_warm_start_seed_accept_refine_or_fallback(xp, dtype):
    n, p = 8, 4
    A_np, E, Q, kap = spd_case(n, 1e3, dtype, seed=15)
    A = asx(xp, A_np)
    u = u_of(dtype)
    want = mp_func(E, Q, lambda e: e ** mpmath.mpf(0.25))
    bound = 8 * n * u * cond_power(0.25, kap)  # the eigh route's forward error bound, as above

    # 1. a seed that already meets the target is accepted as is (0 iterations)
    exact = la.psd_power(A, 0.25)
    r = la.psd_root_iteration(A, p, X0=exact)
    assert r.converged and r.iterations == 0 and not r.fallback

    # 2. a commuting seed (same eigenvectors, eigenvalues off by 5 %) is refined by Newton, no fallback
    Vd = np_of(la.eigh_psd(A)[1])
    lam = np.linalg.eigvalsh(A_np.astype(np.float64))
    seed = (Vd * (1.05 * np.clip(lam, 0, None)) ** 0.25) @ Vd.T
    r = la.psd_root_iteration(A, p, X0=asx(xp, (seed + seed.T) / 2, dtype))
    assert r.converged and not r.fallback and 1 <= r.iterations <= 8
    assert mp_rel_err(r.root, want) <= bound

    # 3. a previous root of a DIFFERENT matrix (KrADagrad*: L_{k-1}^{1/4}, L_k = L_{k-1} - rank-1) does not
    #    commute with A: Newton stalls and the eigh fallback answers, flagged
    g = np.random.default_rng(16).standard_normal((n, 1))
    A_prev = (A_np.astype(np.float64) + 0.05 * (g @ g.T) / n).astype(dtype)
    seed_nc = la.psd_power(asx(xp, A_prev), 0.25)
    r = la.psd_root_iteration(A, p, X0=seed_nc)
    assert r.fallback and not r.converged
    assert mp_rel_err(r.root, want) <= bound
    assert r.residual <= 8 * p * math.sqrt(n + 1) * u  # residual of the returned (fallback) root meets the target
    r = la.psd_root_iteration(A, p, X0=seed_nc, on_fail="return")
    assert not r.fallback and not r.converged and r.residual > 8 * p * math.sqrt(n + 1) * u
    with pytest.raises(RuntimeError, match=r"psd_root_iteration: residual .* after \d+ iterations .*warm start"):
        la.psd_root_iteration(A, p, X0=seed_nc, on_fail="raise")


# ---------------------------------------------------------------------------------------------------------
# norms

@pytest.mark.parametrize("dtype", DTYPES)
def test_norms_against_mp(xp, dtype):
    u = u_of(dtype)
    n = 6
    A_np, E, _, kap = spd_case(n, 1e3, dtype, seed=17)
    A = asx(xp, A_np)
    rng = np.random.default_rng(18)
    M_np = rng.standard_normal((3, 5)).astype(dtype)
    M = asx(xp, M_np)
    for val in (la.norm_2(A), la.norm_fro(A), la.norm_trace(A), la.norm_2(M), la.norm_fro(M)):
        assert val.ndim == 0 and val.dtype == A.dtype and backend.namespace(val) is backend.namespace(A)
    with mpmath.workdps(DPS):
        Am, Mm = to_mp(A_np), to_mp(M_np)
        lam_max = max(abs(e) for e in E)
        sv = mpmath.svd_r(Mm, compute_uv=False)
        fro_A, fro_M = mpmath.mnorm(Am, "f"), mpmath.mnorm(Mm, "f")
        tr = sum(Am[i, i] for i in range(n))
    # spectral norm: backward-stable eigvalsh/svd, absolute error c n u ||A||_2 -> rtol 4 n u
    assert abs(float(la.norm_2(A)) - float(lam_max)) <= 4 * n * u * float(lam_max)
    assert abs(float(la.norm_2(A, assume_symmetric=False)) - float(lam_max)) <= 4 * n * u * float(lam_max)
    assert abs(float(la.norm_2(M)) - float(max(sv))) <= 4 * 5 * u * float(max(sv))
    # Frobenius: a sum of m n squares (gamma_{mn}) plus the max|A| pre-scaling: rtol (m n + 2) u
    assert abs(float(la.norm_fro(A)) - float(fro_A)) <= (n * n + 2) * u * float(fro_A)
    assert abs(float(la.norm_fro(M)) - float(fro_M)) <= (15 + 2) * u * float(fro_M)
    # trace: n - 1 additions, rtol n u (all terms positive here, so relative error <= gamma_{n-1})
    assert abs(float(la.norm_trace(A)) - float(tr)) <= n * u * float(tr)
    # for PSD A the trace equals the nuclear norm sum(sigma) = sum(lambda): same bound plus eigenvalue error
    assert abs(float(la.norm_trace(A)) - float(sum(E))) <= 4 * n * u * float(sum(E))


def test_norm_caveats_trace_is_not_nuclear_and_fro_does_not_overflow(xp):
    # indefinite: trace 0 while the nuclear norm is 2 (the documented caveat; exact small integers)
    D = asx(xp, np.array([[1.0, 0.0], [0.0, -1.0]]))
    assert float(la.norm_trace(D)) == 0.0
    assert float(la.norm_2(D)) == 1.0
    big = asx(xp, np.full((4, 4), 1e30, dtype=np.float32))  # squares overflow float32 (3.4e38)
    val = float(la.norm_fro(big))
    assert math.isfinite(val) and abs(val - 4e30) <= 16 * 2**-24 * 4e30  # rtol (m n) u
    assert float(la.norm_fro(asx(xp, np.zeros((3, 3))))) == 0.0


# ---------------------------------------------------------------------------------------------------------
# inputs are never mutated; bad inputs are refused with the argument's name

def test_no_function_mutates_its_inputs(xp):
    A_np, *_ = spd_case(5, 1e2, "float64", seed=19)
    B_np, *_ = spd_case(5, 1e2, "float64", seed=20)
    A, B = asx(xp, A_np), asx(xp, B_np)
    calls = [
        lambda: la.vec(A), lambda: la.kron(A, B), lambda: la.sym(A), lambda: la.eigh_psd(A),
        lambda: la.psd_power(A, -0.25), lambda: la.geometric_mean(A, B, formula=1),
        lambda: la.geometric_mean(A, B, formula=2), lambda: la.newton_schulz(A),
        lambda: la.coupled_newton_inv_root(A, 4, ridge=0.1), lambda: la.psd_root_iteration(A, 4, X0=B),
        lambda: la.norm_2(A), lambda: la.norm_fro(A), lambda: la.norm_trace(A),
    ]
    for call in calls:
        call()
        np.testing.assert_array_equal(np_of(A), A_np)
        np.testing.assert_array_equal(np_of(B), B_np)


def _bad_inputs():
    """(function taking one matrix, label, bad matrix maker, exception, message regex) rows."""
    funcs = {
        "sym": lambda A: la.sym(A),
        "eigh_psd": lambda A: la.eigh_psd(A),
        "psd_power": lambda A: la.psd_power(A, 0.5),
        "sqrt_psd": lambda A: la.sqrt_psd(A),
        "inv_root_psd": lambda A: la.inv_root_psd(A, 2),
        "geometric_mean(A)": lambda A: la.geometric_mean(A, _good(A)),
        "newton_schulz": lambda A: la.newton_schulz(A),
        "coupled_newton_inv_root": lambda A: la.coupled_newton_inv_root(A, 2),
        "psd_root_iteration": lambda A: la.psd_root_iteration(A, 2),
        "norm_trace": lambda A: la.norm_trace(A),
    }
    return funcs


def _good(A):
    xp = backend.namespace(A)
    n = A.shape[-1] if A.ndim >= 1 else 1
    return xp.eye(max(n, 1), dtype=xp.float64)


BAD_CASES = {
    # label: (numpy array maker, exception, regex); every message names the argument "A:"
    "1-D": (lambda: np.ones(3), ValueError, "A: expected a 2-D array"),
    "3-D": (lambda: np.ones((2, 2, 2)), ValueError, "A: expected a 2-D array"),
    "non-square": (lambda: np.ones((2, 3)), ValueError, "A: expected a square matrix"),
    "int dtype": (lambda: np.eye(3, dtype=np.int64), TypeError, "A: expected a real floating array"),
    "NaN": (lambda: np.array([[1.0, np.nan], [np.nan, 1.0]]), ValueError, "A: expected finite values"),
    "inf": (lambda: np.array([[np.inf, 0.0], [0.0, 1.0]]), ValueError, "A: expected finite values"),
    "non-symmetric": (lambda: np.array([[2.0, 1.0], [0.0, 2.0]]), ValueError, "A: expected a symmetric matrix"),
}
SYMMETRIC_REQUIRED = {"eigh_psd", "psd_power", "sqrt_psd", "inv_root_psd", "geometric_mean(A)", "newton_schulz",
                      "coupled_newton_inv_root", "psd_root_iteration"}


@pytest.mark.parametrize("func_name", sorted(_bad_inputs()))
@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_matrix_inputs_name_the_argument(xp, func_name, case):
    make, exc, regex = BAD_CASES[case]
    if case == "non-symmetric" and func_name not in SYMMETRIC_REQUIRED:
        pytest.skip(f"{func_name} accepts non-symmetric matrices by design")
    func = _bad_inputs()[func_name]
    A = xp.asarray(make())
    with pytest.raises(exc, match=regex):
        func(A)


def test_non_pd_and_option_errors_name_the_argument(xp):
    indef = xp.asarray(np.array([[1.0, 2.0], [2.0, 1.0]]))  # eigenvalues 3, -1: symmetric, indefinite
    I2 = xp.eye(2, dtype=xp.float64)
    for call in (lambda: la.eigh_psd(indef), lambda: la.psd_power(indef, 0.5)):
        with pytest.raises(ValueError, match="A: expected a positive semi-definite"):
            call()
    for call in (lambda: la.newton_schulz(indef), lambda: la.coupled_newton_inv_root(indef, 2),
                 lambda: la.psd_root_iteration(indef, 2), lambda: la.geometric_mean(indef, I2),
                 lambda: la.geometric_mean(indef, I2, formula=2)):
        with pytest.raises(ValueError, match="A: expected a positive definite"):
            call()
    for formula in (1, 2):
        with pytest.raises(ValueError, match="B: expected a positive definite"):
            la.geometric_mean(I2, indef, formula=formula)
    with pytest.raises(ValueError, match="X0: expected a positive definite"):
        la.psd_root_iteration(I2, 2, X0=indef)
    # dtype mismatch between two arguments: TypeError naming the second one
    I2f = xp.eye(2, dtype=xp.float32)
    with pytest.raises(TypeError, match="B: dtype float32 does not match A's float64"):
        la.geometric_mean(I2, I2f)
    with pytest.raises(TypeError, match="B: dtype float32 does not match A's float64"):
        la.kron(I2, I2f)
    with pytest.raises(TypeError, match="X0: dtype float32 does not match A's float64"):
        la.psd_root_iteration(I2, 2, X0=I2f)
    with pytest.raises(ValueError, match="B: shape"):
        la.geometric_mean(I2, xp.eye(3, dtype=xp.float64))
    with pytest.raises(ValueError, match="X0: shape"):
        la.psd_root_iteration(I2, 2, X0=xp.eye(3, dtype=xp.float64))
    # exponents and orders
    with pytest.raises(ValueError, match="p: expected a value > 0"):
        la.inv_root_psd(I2, 0)
    with pytest.raises(ValueError, match="p: expected a value > 0"):
        la.inv_root_psd(I2, -2.0)
    for f in (la.coupled_newton_inv_root, la.psd_root_iteration):
        with pytest.raises(ValueError, match="p: expected an integer >= 1"):
            f(I2, 0)
        with pytest.raises(TypeError, match="p: expected an integer"):
            f(I2, 2.5)
    with pytest.raises(TypeError, match="p: expected a real number"):
        la.psd_power(I2, "1/2")
    with pytest.raises(ValueError, match="p: expected a finite number"):
        la.psd_power(I2, math.nan)
    # options
    with pytest.raises(ValueError, match="eps: expected a value >= 0"):
        la.psd_power(I2, -0.5, eps=-1.0)
    with pytest.raises(ValueError, match="eps_mode: expected one of"):
        la.psd_power(I2, -0.5, eps_mode="weird")
    with pytest.raises(ValueError, match="eps: must be 0 with eps_mode='pinv'"):
        la.psd_power(I2, -0.5, eps=1e-3, eps_mode="pinv")
    with pytest.raises(ValueError, match="rcond: only used with eps_mode='pinv'"):
        la.psd_power(I2, -0.5, rcond=1e-3)
    with pytest.raises(ValueError, match="rcond: expected a value >= 0"):
        la.psd_power(I2, -0.5, eps_mode="pinv", rcond=-1e-3)
    with pytest.raises(TypeError, match="rcond: expected a real number"):
        la.psd_power(I2, -0.5, eps_mode="pinv", rcond="1e-3")
    with pytest.raises(ValueError, match="negative: expected one of"):
        la.psd_power(I2, -0.5, negative="ignore")
    with pytest.raises(ValueError, match="formula: expected one of"):
        la.geometric_mean(I2, I2, formula=3)
    with pytest.raises(ValueError, match="normalize: expected one of"):
        la.newton_schulz(I2, normalize="spectral")
    with pytest.raises(ValueError, match="on_fail: expected one of"):
        la.newton_schulz(I2, on_fail="eigh")
    with pytest.raises(ValueError, match="ridge: expected a value >= 0"):
        la.coupled_newton_inv_root(I2, 2, ridge=-1.0)
    with pytest.raises(ValueError, match="tol: expected a value > 0"):
        la.coupled_newton_inv_root(I2, 2, tol=0.0)


def test_vec_unvec_kron_norm_bad_inputs(xp):
    with pytest.raises(ValueError, match="X: expected a 2-D array"):
        la.vec(xp.ones((3,), dtype=xp.float64))
    with pytest.raises(TypeError, match="X: expected a real floating array"):
        la.vec(xp.ones((2, 2), dtype=xp.int64))
    with pytest.raises(ValueError, match="x: expected length m\\*n = 6, got 5"):
        la.unvec(xp.ones((5,), dtype=xp.float64), 2, 3)
    with pytest.raises(ValueError, match="x: expected a 1-D array"):
        la.unvec(xp.ones((2, 3), dtype=xp.float64), 2, 3)
    with pytest.raises(ValueError, match="m: expected an integer >= 1"):
        la.unvec(xp.ones((0,), dtype=xp.float64), 0, 3)
    with pytest.raises(TypeError, match="n: expected an integer"):
        la.unvec(xp.ones((6,), dtype=xp.float64), 2, 3.0)
    with pytest.raises(ValueError, match="B: expected a 2-D array"):
        la.kron(xp.eye(2, dtype=xp.float64), xp.ones((2,), dtype=xp.float64))
    with pytest.raises(TypeError, match="A: expected a real floating array"):
        la.kron(xp.eye(2, dtype=xp.int64), xp.eye(2, dtype=xp.float64))
    for f in (la.norm_2, la.norm_fro):
        with pytest.raises(ValueError, match="A: expected finite values"):
            f(xp.asarray(np.array([[np.nan, 1.0]])))
        with pytest.raises(TypeError, match="A: expected a real floating array"):
            f(xp.eye(2, dtype=xp.int32))
        with pytest.raises(ValueError, match="A: expected a 2-D array"):
            f(xp.ones((2,), dtype=xp.float64))
    with pytest.raises(ValueError, match="A: expected a square matrix"):
        la.norm_trace(xp.ones((2, 3), dtype=xp.float64))


def test_mixed_libraries_are_refused_naming_the_argument():
    strict = pytest.importorskip("array_api_strict")
    A = np.eye(2)
    B = strict.eye(2, dtype=strict.float64)
    with pytest.raises(TypeError, match="B: array library"):
        la.kron(A, B)
    with pytest.raises(TypeError, match="B: array library"):
        la.geometric_mean(A, B)


# ---------------------------------------------------------------------------------------------------------
# the numerical-rank rule (validate.zero_tolerance: tau = 4 n u lambda_max) in pinv roots and the singular check

def _rank_rtol(p: float, n: int, u: float, kappa_r: float) -> float:
    """rtol (spectral norm) of a pinv power of a rank-r matrix: 4 (|p| + 2) n u kappa_r.

    eigh is exact for S + E, ||E||_2 <= c n u lambda_max (c <= 4, the rule's constant). With the rank decided
    right, each kept eigenvalue moves by <= ||E||, i.e. relatively by <= c n u kappa_r, hence lambda^p by
    |p| c n u kappa_r; the kept invariant subspace turns by sin(theta) <= ||E|| / lambda_r = c n u kappa_r
    (Davis-Kahan, gap lambda_r to the zeros), which moves Q f(Lambda) Q^T by <= 2 sin(theta) ||f||. kappa_r =
    lambda_max / lambda_r over the nonzero eigenvalues.
    """
    return 4.0 * (abs(p) + 2.0) * n * u * kappa_r


@pytest.mark.parametrize("dtype", DTYPES)
def test_pinv_inverse_fourth_root_of_rounded_rank_one_3x3_statistics(xp, dtype):
    """Issue 12's measurement: S = fl(v v^T) for random v in R^3. Before the rule, pinv kept eigenvalues above
    n u lambda_max while eigh returns the two zeros anywhere in [-1.4, 1.4] n u lambda_max: ~1.4 % of draws kept
    a rounding eigenvalue and S^{+1/4} came out with a relative error up to 1e7."""
    rng = np.random.default_rng(12)
    u = u_of(dtype)
    n, p = 3, -0.25
    worst = 0.0
    for _ in range(600):
        v = rng.standard_normal(n).astype(dtype)
        X = la.psd_power(asx(xp, np.outer(v, v)), p, eps_mode="pinv")
        with mpmath.workdps(DPS):
            vm = to_mp(v)
            s = (vm.T * vm)[0]
            want = (vm * vm.T) * s ** mpmath.mpf(p - 1)  # (v v^T)^{+p} = s^p (v v^T / s), s = |v|^2 (exact in mp)
        worst = max(worst, mp_rel_err(X, want))
    # S = v v^T + E with |E| <= u |v||v|^T, ||E||_2 <= u lambda_max: the forming error adds one u to the eigh
    # backward error of the model (kappa_r = 1), so rtol = _rank_rtol with n + 1 for n
    assert worst <= _rank_rtol(p, n + 1, u, 1.0), worst


def _asx_exact(xp, S, dtype):
    A = S.astype(dtype)
    assert np.array_equal(A.astype(np.float64), S)  # the statistic is exact in dtype (test premise)
    return asx(xp, A)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_pinv_power_of_exact_rank_r_statistic_matches_mp(xp, dtype, data):
    """Random rank-r statistics S = sum_k x_k x_k^T (r < n), exact in the dtype: psd_power(S, p, pinv) equals the
    pseudo-power of the exact rank-r matrix computed in mp, p = 0 gives the rank-r projector, and a negative
    power without a shift refuses S as singular: the same verdicts on every namespace."""
    max_lc = {"float32": 3, "float64": 8}[dtype]  # kappa_r well inside 1 / (4 n u): the rank is decidable
    stat = data.draw(PS.rank_deficient_statistics(PS.dims(2, 6), dtype=dtype, max_log10_cond=max_lc), label="S")
    p = data.draw(st.sampled_from([-1.0, -0.5, -0.25, 0.5]), label="p")
    n, r, u = stat.S.shape[0], stat.r, u_of(dtype)
    lam = sorted(PM.mp_eigvalsh(stat.S), reverse=True)
    kappa_r = float(lam[0] / lam[r - 1])
    assert float(lam[r - 1]) > 8 * 4 * n * u * float(lam[0])  # premise: lambda_r far above the rule's tau
    A = _asx_exact(xp, stat.S, dtype)
    got = la.psd_power(A, p, eps_mode="pinv")
    err = PM.rel_error(got, PM.mp_pinv_power(stat.S, p), norm="2")
    assert err <= _rank_rtol(p, n, u, kappa_r), (err, kappa_r)
    # the rule's rank: tr(projector) = sum of the r kept columns' squared norms. eigh's V is orthonormal to within
    # c n u (LAPACK Users' Guide 4.7, c <= 4 as in the rule), so each squared norm is 1 within 2 c n u, and the
    # product V V^T and the trace's n-term sum add n u per kept column: (2 c + 1) n r u = 9 n r u. (The earlier
    # 4 n u forgot the factor r: hypothesis 6.100 draws hit 24 u at n = 4, r = 3 in float32, 16 u at n = 3, r = 2.)
    assert abs(float(xp.linalg.trace(la.psd_power(A, 0.0, eps_mode="pinv"))) - r) <= 9 * n * r * u
    with pytest.raises(ValueError, match="A: singular for p = -1 < 0"):
        la.psd_power(A, -1.0)


def test_singular_check_refuses_a_tiny_positive_zero_as_cusolver_returns_it(xp):
    """cuSOLVER returns the zero of an exactly singular matrix as a tiny positive number; the rule refuses any
    lambda_min <= tau, whatever its sign. Emulated: S = diag(1, 1, t) with t = tau / 2 > 0 exact, so eigh returns
    t itself (a diagonal matrix is its own eigendecomposition) on every backend."""
    n, u = 3, u_of("float64")
    tau = 4 * n * u
    A = asx(xp, np.diag([1.0, 1.0, tau / 2]))
    with pytest.raises(ValueError, match="singular for p = -0.5"):
        la.psd_power(A, -0.5)
    # just above tau the matrix is numerically nonsingular: A^{-1/2} = diag(1, 1, t^{-1/2}), exact up to one
    # rounding of the square root (rtol 2 u)
    t = 2 * tau
    got = np_of(la.psd_power(asx(xp, np.diag([1.0, 1.0, t])), -0.5))
    np.testing.assert_allclose(np.diag(got), [1.0, 1.0, t ** -0.5], rtol=2 * u)
    # pinv drops the tiny positive (the same verdict) and keeps the rest
    got = np_of(la.psd_power(A, -0.5, eps_mode="pinv"))
    np.testing.assert_array_equal(got, np.diag([1.0, 1.0, 0.0]))


def test_pinv_rcond_is_a_relative_cutoff(xp):
    """rcond = 0.3: eigenvalues <= 0.3 lambda_max are dropped (numpy.linalg.pinv's rcond): of (4, 2, 1, 0) only
    4 and 2 are kept (kappa_r = 2); rcond = 0.2 keeps 1 too (kappa_r = 4); the zero goes either way."""
    n = 4
    H = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2.0  # orthogonal, exact
    A_np = (H * np.array([0.0, 1.0, 2.0, 4.0])) @ H.T  # entries in Z/4: exact, so the mp reference is exact
    u = u_of("float64")
    for rcond, kappa_r in ((0.3, 2.0), (0.2, 4.0)):
        got = la.psd_power(asx(xp, A_np), -1.0, eps_mode="pinv", rcond=rcond)
        err = PM.rel_error(got, PM.mp_pinv_power(A_np, -1.0, rcond=rcond), norm="2")
        # eigh moves the eigenvalues by ~n u lambda_max, far from the cutoffs 1.2 and 0.8
        assert err <= _rank_rtol(-1.0, n, u, kappa_r), (rcond, err)
    with pytest.raises(ValueError, match="rcond: only used with eps_mode='pinv'"):
        la.psd_power(asx(xp, A_np), 0.5, rcond=0.1)


# ---------------------------------------------------------------------------------------------------------
# geometric mean formula 2: its options and the Denman-Beavers iteration count (mutation-testing kills:
# tests/mutation_equivalents.md lists the mutants of these functions that no input can tell apart)

def test_geometric_mean_scalar_ratio_takes_one_denman_beavers_step():
    # Z = A^{-1} B = 4 I: the determinant scaling mu = 4^{-1/2} makes M_1 = I exactly, so one iteration returns
    # Y_1 = 2 I; the mp twin M_g(I, 4 I) = 2 I. Exact in float64 (powers of two), hence the tight 4 u.
    I3 = np.eye(3)
    want = mp_geometric_mean(I3, 4.0 * I3)
    for max_iter in (1, 2):
        X = la.geometric_mean(I3, 4.0 * I3, formula=2, max_iter=max_iter)
        assert mp_rel_err(X, want) <= 4 * u_of("float64")


def test_geometric_mean_formula_2_honours_max_iter_and_tol():
    A_np, _, _, _ = spd_case(4, 1e2, "float64", seed=6, scale=2.0)
    B_np, _, _, _ = spd_case(4, 1e2, "float64", seed=7, scale=0.3)
    # a non-scalar Z needs several quadratically convergent steps: one or two are not enough, and the error
    # names the function, the iteration count that was allowed, the default target 4 n u = 16 * 2^-53 and the stage
    for k in (1, 2):
        with pytest.raises(RuntimeError, match=rf"^geometric_mean: residual \d\.\de[-+]\d+ after {k} iterations "
                                               r"\(target 1\.8e-15\) in the Denman-Beavers square root of A\^-1 B$"):
            la.geometric_mean(A_np, B_np, formula=2, max_iter=k)
    # an explicit tol is the one the iteration stops on (unreachable here: the iteration cap reports it)
    with pytest.raises(RuntimeError, match=r"after 5 iterations \(target 1\.0e-300\)"):
        la.geometric_mean(A_np, B_np, formula=2, tol=1e-300, max_iter=5)
    # formula 1 has no iteration: max_iter and tol do not apply, and its value matches the mp twin
    # (rtol 8 n u (kappa(A) + sqrt(kappa(A) kappa(B))), as in the formula test above)
    want = mp_geometric_mean(A_np, B_np)
    for X1 in (la.geometric_mean(A_np, B_np, formula=1, max_iter=1, tol=1e-300),
               la.geometric_mean(A_np, B_np, max_iter=1)):  # formula 1 is the default
        assert mp_rel_err(X1, want) <= 8 * 4 * u_of("float64") * (1e2 + 1e2)
    for bad, match in (({"max_iter": 0}, "max_iter: expected an integer >= 1"),
                       ({"tol": 0.0}, "tol: expected a value > 0"), ({"tol": -1.0}, "tol: expected a value > 0")):
        with pytest.raises(ValueError, match=match):
            la.geometric_mean(A_np, B_np, formula=2, **bad)
    nonsym = B_np.copy()
    nonsym[0, 1] += 1.0
    with pytest.raises(ValueError, match="^B: "):
        la.geometric_mean(A_np, nonsym)


def test_coupled_newton_ridge_and_option_names():
    # ridge = 1 is a ridge like any other: the root is of A + I (mp twin; both spectra in [1, 1e2 + 1], so the
    # root's forward error is the eigh route's 8 n u kappa with kappa <= 1e2)
    n, p = 5, 4
    A_np, E, Q, _ = spd_case(n, 1e2, "float64", seed=21)
    res = la.coupled_newton_inv_root(A_np, p, ridge=1.0)
    want = mp_func([e + 1 for e in E], Q, lambda e: e ** mpmath.mpf(-0.25))
    assert res.converged and mp_rel_err(res.root, want) <= 8 * n * u_of("float64") * 1e2
    # the Cholesky refusal names the matrix it factored: A itself, or A + ridge*I
    indef = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3, -1
    with pytest.raises(ValueError, match=r"^A: expected a positive definite matrix, but the Cholesky "
                                         r"factorization of A failed$"):
        la.coupled_newton_inv_root(indef, 2)
    with pytest.raises(ValueError, match=r"factorization of A \+ ridge\*I failed$"):
        la.coupled_newton_inv_root(indef, 2, ridge=0.5)  # eigenvalues 3.5, -0.5: still indefinite
    with pytest.raises(ValueError, match="^max_iter: expected an integer >= 1"):
        la.coupled_newton_inv_root(np.eye(2), 2, max_iter=0)
    with pytest.raises(ValueError, match="^error: expected one of"):
        la.coupled_newton_inv_root(np.eye(2), 2, error="l1")
    # an explicit tol is the target the iteration reports (unreachable: the iteration cap reports it)
    with pytest.raises(RuntimeError, match=r"after 3 iterations \(target 1\.0e-300\)"):
        la.coupled_newton_inv_root(A_np, p, tol=1e-300, max_iter=3)


def test_psd_root_iteration_on_fail_results_are_complete(xp):
    # a non-commuting seed goes to on_fail at once (0 iterations): "return" gives back the seed's iterate with its
    # own residual, "eigh" the eigh root with its residual; both say converged=False (not merely falsy)
    n, p = 6, 4
    A_np, E, Q, kap = spd_case(n, 1e3, "float64", seed=15)
    A = asx(xp, A_np)
    g = np.random.default_rng(16).standard_normal((n, 1))
    seed = la.psd_power(asx(xp, A_np + 0.05 * (g @ g.T) / n), 0.25)
    for on_fail in ("return", "eigh"):
        r = la.psd_root_iteration(A, p, X0=seed, on_fail=on_fail)
        assert r.iterations == 0 and r.converged is False and r.fallback is (on_fail == "eigh")
        X = np_of(r.root)
        # the reported residual is ||X^p - A||_F / ||A||_F of the returned root (float64 products: rtol 1e-6 of it)
        resid = np.linalg.norm(np.linalg.matrix_power(X, p) - A_np) / np.linalg.norm(A_np)
        assert abs(resid - r.residual) <= 1e-6 * resid + 1e-15
    want = mp_func(E, Q, lambda e: e ** mpmath.mpf(0.25))
    assert mp_rel_err(r.root, want) <= 8 * n * u_of("float64") * cond_power(0.25, kap)  # the eigh root's bound
    # a cold start that runs out of iterations says so without "warm start"
    with pytest.raises(RuntimeError, match=r"^psd_root_iteration: residual \S+ after 1 iterations \(target \S+\)$"):
        la.psd_root_iteration(A, p, max_iter=1, on_fail="raise")


def test_zero_norms_keep_the_dtype_and_wrappers_pass_options(xp):
    # the norms of an all-zero or empty matrix are a 0-d zero of the input's dtype (float32 stays float32)
    Z32 = xp.asarray(np.zeros((2, 2), dtype=np.float32))
    E32 = xp.asarray(np.zeros((0, 3), dtype=np.float32))
    for val in (la.norm_fro(Z32), la.norm_fro(E32), la.norm_2(E32), la.norm_trace(Z32)):
        assert val.ndim == 0 and val.dtype == Z32.dtype and float(val) == 0.0
    # sqrt_psd / inv_root_psd forward eps to psd_power: (0 + 1/4 I)^{1/2} = I/2 and (3 I + I)^{-1/2} = I/2, exact
    # in binary (the twins' exact values; eigh of a multiple of I is exact)
    half = np.eye(2) / 2
    np.testing.assert_array_equal(np_of(la.sqrt_psd(xp.asarray(np.zeros((2, 2))), eps=0.25)), half)
    np.testing.assert_array_equal(np_of(la.inv_root_psd(xp.asarray(3.0 * np.eye(2)), 2, eps=1.0)), half)


def test_warm_start_failure_message_ends_with_its_reason():
    A_np, *_ = spd_case(6, 1e3, "float64", seed=15)
    g = np.random.default_rng(16).standard_normal((6, 1))
    seed = la.psd_power(A_np + 0.05 * (g @ g.T) / 6, 0.25)
    with pytest.raises(RuntimeError, match=r"^psd_root_iteration: residual \S+ after 0 iterations \(target \S+\) "
                                           r"\(warm start\); seed does not commute with A \(relative commutator "
                                           r"\S+\)$"):
        la.psd_root_iteration(A_np, 4, X0=seed, on_fail="raise")


def test_coupled_newton_failure_reports_the_default_target():
    # the default target is 4 (n + p) u = 4 * 12 * 2^-53 = 5.3e-15 for n = 8, p = 4, and the message ends there
    A_np, *_ = spd_case(8, 1e6, "float64", seed=13)
    with pytest.raises(RuntimeError, match=r"^coupled_newton_inv_root: residual \S+ after 2 iterations "
                                           r"\(target 5\.3e-15\)$"):
        la.coupled_newton_inv_root(A_np, 4, max_iter=2)


# ---------------------------------------------------------------------------------------------------------
# edges pinned by exact values (mutation survivors of the linalg package; each value is worked out by hand)

def test_psd_root_iteration_option_errors_name_the_option():
    I2 = np.eye(2)
    with pytest.raises(ValueError, match=r"^max_iter: expected an integer >= 1, got 0$"):
        la.psd_root_iteration(I2, 2, max_iter=0)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match=rf"^tol: expected a value > 0\.0, got {bad}$"):
            la.psd_root_iteration(I2, 2, tol=bad)
    with pytest.raises(ValueError, match=r"^X0: expected a symmetric matrix"):
        la.psd_root_iteration(I2, 2, X0=np.array([[1.0, 2.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"^X0: expected a square matrix, got shape \(2, 3\)$"):
        la.psd_root_iteration(I2, 2, X0=np.ones((2, 3)), check=False)
    xs = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match=r"^X0: array library array_api_strict\._array_object\.Array does not match "
                                        r"A's numpy\.ndarray$"):
        la.psd_root_iteration(I2, 2, X0=xs.eye(2, dtype=xs.float64))
    with pytest.raises(TypeError, match=r"^X0: array library numpy\.ndarray does not match "
                                        r"A's array_api_strict\._array_object\.Array$"):
        la.psd_root_iteration(xs.eye(2, dtype=xs.float64), 2, X0=I2)


def test_psd_root_iteration_first_root_is_the_symmetrized_matrix(xp):
    # p = 1: A^{1/1} = (A + A^T) / 2, no iteration, residual exactly 0
    A_np = np.array([[2.0, 0.5], [0.5, 1.0]])
    r = la.psd_root_iteration(asx(xp, A_np), 1)
    np.testing.assert_array_equal(np_of(r.root), A_np)
    assert (r.iterations, r.residual, r.converged, r.fallback) == (0, 0.0, True, False)


def test_psd_root_iteration_scale_two_and_one_by_one(xp):
    # 2 I_4: ||A||_F = 4, scale 4^{1/2} = 2 exactly; [[4]]: M_0 = 1, no iteration, root 2 * I_1. sqrt(2) is
    # reached to a few u (Newton's last step rounds once): 2 u
    r = la.psd_root_iteration(asx(xp, 2.0 * np.eye(4)), 2)
    assert r.converged is True and r.fallback is False
    np.testing.assert_allclose(np_of(r.root), math.sqrt(2.0) * np.eye(4), rtol=2 * u_of("float64"), atol=0)
    r = la.psd_root_iteration(asx(xp, np.array([[4.0]])), 2)
    np.testing.assert_array_equal(np_of(r.root), [[2.0]])
    assert (r.iterations, r.converged, r.fallback) == (0, True, False)


def test_psd_root_iteration_iterate_counts_and_targets(xp):
    # one Newton step from X_0 = I on A' = A / c (c = ||A||_F = sqrt(17)): X_1 = c^{1/2} (I + A / c) / 2
    A_np = np.diag([4.0, 1.0])
    c = math.sqrt(17.0)
    r = la.psd_root_iteration(asx(xp, A_np), 2, max_iter=1, on_fail="return")
    assert (r.iterations, r.converged) == (1, False)
    np.testing.assert_allclose(np_of(r.root), math.sqrt(c) * (np.eye(2) + A_np / c) / 2, rtol=4 * u_of("float64"),
                               atol=0)
    # the cap counts iterations: 3 of the many that diag(1, 1e-6)^{1/4} needs
    r = la.psd_root_iteration(asx(xp, np.diag([1.0, 1e-6])), 4, max_iter=3, on_fail="return")
    assert (r.iterations, r.converged) == (3, False)
    # a loose tol is the target: one step reaches residual 0.145 <= 0.5
    r = la.psd_root_iteration(asx(xp, np.diag([1.0, 2.0, 3.0])), 2, tol=0.5, max_iter=1)
    assert (r.iterations, r.converged, r.fallback) == (1, True, False) and 0.1 < r.residual <= 0.5
    # the default target 8 p sqrt(n + 1) u = 8 * 2 * 2 * 2^-53 = 3.6e-15 for n = 3, p = 2
    with pytest.raises(RuntimeError, match=r"^psd_root_iteration: residual \S+ after 1 iterations "
                                           r"\(target 3\.6e-15\)$"):
        la.psd_root_iteration(asx(xp, np.diag([4.0, 1.0, 2.0])), 2, max_iter=1, on_fail="raise")


def test_psd_root_iteration_cube_root_against_mp(xp):
    # p = 3 (odd: binary powering multiplies into the result twice)
    n, p = 5, 3
    A_np, E, Q, kap = spd_case(n, 1e3, "float64", seed=21)
    r = la.psd_root_iteration(asx(xp, A_np), p)
    assert r.converged is True and r.fallback is False
    want = mp_func(E, Q, lambda e: e ** (mpmath.mpf(1) / 3))
    assert mp_rel_err(r.root, want) <= 8 * n * u_of("float64") * cond_power(1.0 / 3, kap)


def test_psd_root_iteration_warm_seeds(xp):
    n, p = 5, 4
    A_np, E, Q, kap = spd_case(n, 1e2, "float64", seed=22)
    A = asx(xp, A_np)
    exact = la.psd_power(A, 1.0 / p)
    want = mp_func(E, Q, lambda e: e ** mpmath.mpf(0.25))
    bound = 8 * n * u_of("float64") * cond_power(0.25, kap)
    # an acceptable seed comes back as is, with its own residual
    r = la.psd_root_iteration(A, p, X0=exact)
    np.testing.assert_array_equal(np_of(r.root), np_of(exact))
    X = np_of(exact)
    resid = np.linalg.norm(np.linalg.matrix_power(X, p) - A_np) / np.linalg.norm(A_np)
    assert (r.iterations, r.converged) == (0, True) and abs(r.residual - resid) <= 1e-6 * resid + 1e-18
    # a commuting but poor seed (3 A^{1/p}: M_0 = 3^-p I, ||M_0 - I||_F > 1) is rescaled and iterated to the root
    r = la.psd_root_iteration(A, p, X0=3.0 * exact)
    assert r.converged is True and r.fallback is False and r.iterations > 0
    assert mp_rel_err(r.root, want) <= bound
    # the same seed with one iteration fails after iterating, as a warm start, and the eigh root answers
    with pytest.raises(RuntimeError, match=r"^psd_root_iteration: residual \S+ after 1 iterations \(target \S+\) "
                                           r"\(warm start\)$"):
        la.psd_root_iteration(A, p, X0=3.0 * exact, max_iter=1, on_fail="raise")
    r = la.psd_root_iteration(A, p, X0=3.0 * exact, max_iter=1)
    assert (r.iterations, r.converged, r.fallback) == (1, False, True)
    assert mp_rel_err(r.root, want) <= bound
    # the commutator test is relative: a large A's exact root still commutes (||A|| = 1e4 scale)
    big = asx(xp, 1e4 * A_np)
    r = la.psd_root_iteration(big, p, X0=la.psd_power(big, 1.0 / p))
    assert (r.iterations, r.converged, r.fallback) == (0, True, False)


def test_psd_root_iteration_fallback_residual_is_relative(xp):
    # A scaled so that max|a_ij| = 1 exactly: the relative residual still divides by ||A||_F (not by max|a_ij|)
    n, p = 6, 4
    A_np, *_ = spd_case(n, 1e3, "float64", seed=15)
    A_np = A_np / np.abs(A_np).max()
    r = la.psd_root_iteration(asx(xp, A_np), p, max_iter=1)
    assert (r.iterations, r.fallback) == (1, True)
    X = np_of(r.root)
    resid = np.linalg.norm(np.linalg.matrix_power(X, p) - A_np) / np.linalg.norm(A_np)
    assert abs(resid - r.residual) <= 1e-6 * resid + 1e-18


def test_newton_schulz_options_and_reported_targets(xp):
    I2, I4 = asx(xp, np.eye(2)), asx(xp, np.eye(4))
    with pytest.raises(ValueError, match=r"^num_iters: expected an integer >= 0, got -1$"):
        la.newton_schulz(I2, num_iters=-1)
    with pytest.raises(ValueError, match=r"^max_iter: expected an integer >= 1, got 0$"):
        la.newton_schulz(I2, max_iter=0)
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match=rf"^tol: expected a value > 0\.0, got {bad}$"):
            la.newton_schulz(I2, tol=bad)
    # zero iterations: X_0 = A / s, Y_0 = I (s = tr I_4 = 4), rescaled by sqrt(s) = 2: exact
    r = la.newton_schulz(I4, num_iters=0, normalize="trace", on_fail="return")
    np.testing.assert_array_equal(np_of(r.sqrt), np.eye(4) / 2)
    np.testing.assert_array_equal(np_of(r.inv_sqrt), np.eye(4) / 2)
    assert (r.iterations, r.residual, r.converged) == (0, 1.5, False)  # ||I - I/4||_F = 1.5
    # the default target 4 u ||X||_F ||Y||_F: 4 u (1/2)(2) = 4.4e-16 at X_0 = I/4, Y_0 = I
    with pytest.raises(RuntimeError, match=r"^newton_schulz: residual 1\.5e\+00 after 0 iterations "
                                           r"\(target 4\.4e-16\)$"):
        la.newton_schulz(I4, num_iters=0, normalize="trace")
    # one step: T = 2.75 I, X_1 = 0.34375 I, Y_1 = 1.375 I: residual 2 (1 - 0.47265625) = 1.05,
    # target 4 u (0.6875)(2.75) = 8.4e-16
    with pytest.raises(RuntimeError, match=r"^newton_schulz: residual 1\.1e\+00 after 1 iterations "
                                           r"\(target 8\.4e-16\)$"):
        la.newton_schulz(I4, max_iter=1, normalize="trace")
    # a loose tol is the target: the iteration stops once the residual is <= 0.5, far above the default target
    r = la.newton_schulz(I4, tol=0.5, normalize="trace")
    assert r.converged is True and 1e-3 < r.residual <= 0.5
    # a matrix of norm < 1 is fine: (I/4)^{1/2} = I/2, (I/4)^{-1/2} = 2 I; the rescale by sqrt(s), s = sqrt(2)/4,
    # rounds twice: 2 u
    r = la.newton_schulz(asx(xp, 0.25 * np.eye(2)))
    assert r.converged is True
    np.testing.assert_allclose(np_of(r.sqrt), np.eye(2) / 2, rtol=2 * u_of("float64"), atol=0)
    np.testing.assert_allclose(np_of(r.inv_sqrt), 2 * np.eye(2), rtol=2 * u_of("float64"), atol=0)
    with pytest.raises(ValueError, match=r"^A: expected a positive definite matrix, but its normalizing fro norm "
                                         r"is 0$"):
        la.newton_schulz(asx(xp, np.zeros((2, 2))), check=False)


def test_psd_power_options_and_edges(xp):
    D = asx(xp, np.diag([2.0, 0.25]))
    with pytest.raises(ValueError, match=r"^rcond: expected a value >= 0\.0, got -1\.0$"):
        la.psd_power(D, 1.0, eps_mode="pinv", rcond=-1.0)
    with pytest.raises(ValueError, match=r"^atol: expected a value >= 0\.0, got -1\.0$"):
        la.psd_power(D, 1.0, eps_mode="pinv", atol=-1.0)
    with pytest.raises(ValueError, match=r"^atol: only used with eps_mode='pinv', got eps_mode='absolute'$"):
        la.psd_power(D, 1.0, atol=0.1)
    # atol is an exclusive cutoff: the eigenvalue 0.25 = atol is dropped; p = 1 keeps the kept eigenvalue itself
    np.testing.assert_array_equal(np_of(la.psd_power(D, 1.0, eps_mode="pinv", atol=0.25)), np.diag([2.0, 0.0]))
    # rcond relative to lambda_max: a 1 x 1 [[4]] with rcond = 2 has cutoff 8 > 4, so its pinv power is 0
    np.testing.assert_array_equal(np_of(la.psd_power(asx(xp, [[4.0]]), 1.0, eps_mode="pinv", rcond=2.0)), [[0.0]])
    # p = 1 returns A (diagonal: exact), p = 0 of a singular PSD matrix is I (no singularity test for p = 0)
    np.testing.assert_array_equal(np_of(la.psd_power(D, 1.0)), np.diag([2.0, 0.25]))
    Z = asx(xp, np.diag([0.0, 1.0]))
    np.testing.assert_array_equal(np_of(la.psd_power(Z, 0.0)), np.eye(2))
    # negative='raise' refuses only lambda_min < 0: an exact 0 passes
    np.testing.assert_array_equal(np_of(la.psd_power(Z, 0.5, negative="raise")), np.diag([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"^A: expected a positive semi-definite matrix, but lambda_min = -1 < "
                                         r"-tol = -\S+$"):
        la.psd_power(asx(xp, np.diag([1.0, -1.0])), 0.5)
    # float32: the shift 1e-50 rounds to 0 against the zero eigenvalue, and the message says so
    with pytest.raises(ValueError, match=r"^A: regularised lambda_min = 0 is not positive; increase eps$"):
        la.psd_power(asx(xp, np.diag([0.0, 1.0]), "float32"), -0.5, eps=1e-50)


def test_psd_power_symmetrizes_a_checked_input_before_eigh(xp):
    # check=True accepts A symmetric within rounding and takes the root of (A + A^T) / 2: the same bits as
    # passing the symmetrized matrix itself
    A_np, *_ = spd_case(4, 1e2, "float64", seed=23)
    Aa = A_np.copy()
    Aa[0, 1] += 4 * u_of("float64") * abs(Aa[0, 1])
    sym = (Aa + Aa.T) / 2
    np.testing.assert_array_equal(np_of(la.psd_power(asx(xp, Aa), 0.5)), np_of(la.psd_power(asx(xp, sym), 0.5)))


def test_norm_2_edges(xp):
    # symmetric: max(|lambda_min|, |lambda_max|) = 5 from a dominant negative eigenvalue (n = 3: not w[1])
    assert float(la.norm_2(asx(xp, np.diag([-5.0, 1.0, 2.0])))) == 5.0
    with pytest.raises(ValueError, match=r"^A: expected a square matrix"):
        la.norm_2(asx(xp, np.ones((2, 3))), assume_symmetric=True)
    # float32 Gram route, scaled by a power of two: neither 1e30 (squares overflow) nor 1e-30 (squares
    # underflow) loses the value; 4e30 and 4e-30 as float32, within 4 u32
    for scale in (1e30, 1e-30):
        A = asx(xp, scale * np.array([[3.0, 0.0, 0.0], [0.0, 4.0, 0.0]]), "float32")
        want = float(np.float32(4 * scale))
        assert abs(float(la.norm_2(A)) - want) <= 4 * u_of("float32") * want


def test_norm_fro_kernel_refuses_non_finite_input(xp):
    # krad's t_from_gram calls the kernel on a product that may overflow: the kernel names it like norm_fro
    with pytest.raises(ValueError, match=r"^A: expected finite values"):
        la._norm_fro(asx(xp, [[math.inf, 1.0], [1.0, 1.0]]), xp)


def test_vec_error_names_x(xp):
    with pytest.raises(ValueError, match=r"^X: expected a 2-D array, got shape \(3,\)$"):
        la.vec(asx(xp, np.ones(3)))


def test_newton_schulz_of_a_converged_start_takes_no_step(xp):
    # 1 x 1 [[4]]: X_0 = A / ||A||_F = 1 = Y_0, residual |1 - 1| = 0 at once; sqrt 2, inv_sqrt 1/2 (exact)
    r = la.newton_schulz(asx(xp, [[4.0]]))
    assert (r.iterations, r.residual, r.converged) == (0, 0.0, True)
    np.testing.assert_array_equal(np_of(r.sqrt), [[2.0]])
    np.testing.assert_array_equal(np_of(r.inv_sqrt), [[0.5]])


def test_psd_root_iteration_stalled_at_rounding_keeps_its_iterate(xp):
    """A float32 matrix of kappa 1e15 > 1/u32 (it still passes Cholesky): ||M_k - I|| stalls at float32 rounding
    above 4 (n + p) u and the divergence guard stops the loop; the kept iterate still meets the residual target
    8 p sqrt(n + 1) u32 (recomputed here in float64), so no fallback is needed."""
    rng = np.random.default_rng(11)
    Q, _ = np.linalg.qr(rng.standard_normal((3, 3)))
    A_np = (Q * np.logspace(0, -15, 3)) @ Q.T
    A_np = ((A_np + A_np.T) / 2).astype(np.float32)
    r = la.psd_root_iteration(asx(xp, A_np), 4)
    assert r.converged is True and r.fallback is False
    X = np_of(r.root)
    A64 = A_np.astype(np.float64)
    resid = np.linalg.norm(np.linalg.matrix_power(X, 4) - A64) / np.linalg.norm(A64)
    assert resid <= 8 * 4 * 2 * u_of("float32")


def test_psd_root_iteration_refuses_a_seed_just_past_the_commutator_bound():
    """A = diag(1, 4), p = 2, seed diag(1, 2) + eps J (J the exchange matrix): its relative commutator is
    ||[X0, A]||_F / (||X0||_F ||A||_F) = 3 sqrt(2) eps / (sqrt(5) sqrt(17)) to first order; eps is chosen so that
    it is 2.5 times the target 8 p sqrt(n + 1) u = 3.1e-15 (above the 2x bound): refused at once, 0 iterations,
    although Newton from it would meet the target in one step."""
    u = 2.0**-53
    goal = 8 * 2 * math.sqrt(3) * u
    eps = 2.5 * goal * math.sqrt(5) * math.sqrt(17) / (3 * math.sqrt(2))
    X0 = np.diag([1.0, 2.0]) + eps * np.array([[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(RuntimeError, match=r"^psd_root_iteration: residual \S+ after 0 iterations \(target 3\.1e-15\) "
                                           r"\(warm start\); seed does not commute with A \(relative commutator "
                                           r"7\.7e-15\)$"):
        la.psd_root_iteration(np.diag([1.0, 4.0]), 2, X0=X0, on_fail="raise")
# --- argument validation the mutation run found unasserted (tests/mutation_linalg.md) --------------------------


@pytest.mark.parametrize("fn", [lambda A, **kw: la.psd_root_iteration(A, 2, **kw),
                                lambda A, **kw: la.newton_schulz(A, **kw)], ids=["psd_root_iteration", "newton_schulz"])
def test_root_iterations_validate_tol_and_max_iter(fn):
    # tol is a strictly positive target: 0 and negatives are refused with a message opening with the argument's
    # name; a positive tol below 1 is accepted (the bound is 0, open).
    A = np.diag([4.0, 9.0])
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match=r"^tol: expected a value > 0(\.0)?, got"):
            fn(A, tol=bad)
    fn(A, tol=0.5)
    with pytest.raises(ValueError, match=r"^max_iter: expected an integer >= 1, got 0"):
        fn(A, max_iter=0)


def test_psd_power_validates_atol():
    A = np.diag([4.0, 1.0])
    with pytest.raises(ValueError, match=r"^atol: expected a value >= 0(\.0)?, got -1"):
        la.psd_power(A, -0.5, eps_mode="pinv", atol=-1.0)
    with pytest.raises(ValueError, match=r"^rcond: expected a value >= 0(\.0)?, got -1"):
        la.psd_power(A, -0.5, eps_mode="pinv", rcond=-1.0)
    with pytest.raises(ValueError, match=r"^atol: only used with eps_mode='pinv', got eps_mode='absolute'"):
        la.psd_power(A, -0.5, atol=1.0)
    # atol = 0.5 < 1 is valid and below both eigenvalues, so nothing is truncated: diag(4, 1)^{-1/2} = diag(1/2, 1),
    # exact in binary64 (a power of two and one; eigh of a diagonal matrix is exact).
    np.testing.assert_array_equal(np.asarray(la.psd_power(A, -0.5, eps_mode="pinv", atol=0.5)), np.diag([0.5, 1.0]))


def test_norm_fro_names_a_non_finite_argument():
    with pytest.raises(ValueError, match=r"^A: expected finite values, got 1 NaN or inf entry"):
        la.norm_fro(np.array([[1.0, math.inf], [0.0, 1.0]]))


def test_psd_root_iteration_first_root_is_the_symmetrised_input():
    # A^{1/1} = A with no iteration: sym(A) is exact here (the off-diagonal pair is equal), every field is exact.
    A = np.array([[2.0, 0.5], [0.5, 3.0]])
    r = la.psd_root_iteration(A, 1)
    np.testing.assert_array_equal(np.asarray(r.root), A)
    assert (r.iterations, r.residual, r.converged, r.fallback) == (0, 0.0, True, False)
    assert type(r.iterations) is int and type(r.residual) is float and type(r.converged) is bool


def test_psd_root_iteration_names_a_warm_start_from_another_library():
    xs = pytest.importorskip("array_api_strict")
    with pytest.raises(TypeError, match=r"^X0: array library array_api_strict\._array_object\.Array does not match "
                                        r"A's numpy\.ndarray$"):
        la.psd_root_iteration(np.eye(2), 2, X0=xs.asarray([[1.0, 0.0], [0.0, 1.0]]))
