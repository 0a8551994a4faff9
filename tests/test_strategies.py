"""proofs_check.strategies produce what they promise. Where a promise is exact (PSD, ||G||_2 <= 1, det B = 1,
A = B^{-p}) it is checked exactly: rational arithmetic or mp at 50 digits; where it is approximate (realized
condition numbers) the tolerance says why."""
from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from proofs_check import mp
from proofs_check import strategies as S

# Examples that run mp/rational checks: scaled down from the profile (conftest).
MP = settings(max_examples=max(8, settings().max_examples // 2), deadline=None)


def _exact_psd_rank(A: np.ndarray) -> tuple[bool, int]:
    """(A is PSD, rank A), exactly: symmetric Gaussian elimination with diagonal pivoting in rationals.

    A symmetric matrix is PSD iff every Schur complement is; a zero pivot of a PSD matrix forces a zero row.
    """
    M = [[Fraction(float(v)) for v in row] for row in A]
    n = len(M)
    if any(M[i][j] != M[j][i] for i in range(n) for j in range(i)):
        return False, -1
    idx, rank = list(range(n)), 0
    while idx:
        k = max(idx, key=lambda i: M[i][i])
        if M[k][k] < 0:
            return False, rank
        if M[k][k] == 0:
            return all(M[i][j] == 0 for i in idx for j in idx), rank
        idx.remove(k)
        for i in idx:
            f = M[i][k] / M[k][k]
            for j in idx:
                M[i][j] -= f * M[k][j]
        rank += 1
    return True, rank


def _int_det(B: np.ndarray) -> int:
    """Exact determinant of an integer matrix (Bareiss fraction-free elimination)."""
    M = [[int(v) for v in row] for row in B]
    n, sign, prev = len(M), 1, 1
    for k in range(n - 1):
        if M[k][k] == 0:
            sw = next((i for i in range(k + 1, n) if M[i][k] != 0), None)
            if sw is None:
                return 0
            M[k], M[sw], sign = M[sw], M[k], -sign
        for i in range(k + 1, n):
            for j in range(k + 1, n):
                M[i][j] = (M[i][j] * M[k][k] - M[i][k] * M[k][j]) // prev
        prev = M[k][k]
    return sign * M[n - 1][n - 1]


# ----------------------------------------------------------------------------------------------------------------
# dimensions and orthogonal factors
# ----------------------------------------------------------------------------------------------------------------
def test_dims_and_shapes_cover_edges_and_shrink_to_simplest():
    assert find(S.dims(), lambda n: True) == 1
    assert find(S.shapes(), lambda s: True) == (1, 1)
    assert find(S.shapes(), lambda s: s[0] == 1 and s[1] > 1) == (1, 2)
    assert find(S.shapes(), lambda s: s[1] == 1 and s[0] > 1) == (2, 1)
    assert find(S.shapes(max_dim=3), lambda s: s[0] > s[1] > 1) == (3, 2)
    with pytest.raises(ValueError):
        S.dims(3, 2)


@given(st.data())
def test_shared_dims_tie_shapes(data):
    m = S.shared_dims("m")
    L = data.draw(S.spd_matrices(m), label="L")
    G = data.draw(S.gradients(m, S.dims()), label="G")
    assert L.shape[0] == G.shape[0]  # one draw of "m" for both


@given(S.orthogonal(S.dims(1, 8)))
def test_orthogonal_is_orthogonal(Q):
    n = Q.shape[0]
    # k <= n Householder products, each backward stable: ||Q^T Q - I|| ~ few k u
    assert np.linalg.norm(Q.T @ Q - np.eye(n), 2) <= 8 * n * 2.0**-53 + 1e-300


def test_orthogonal_shrinks_to_identity():
    assert np.array_equal(find(S.orthogonal(4), lambda Q: True), np.eye(4))


# ----------------------------------------------------------------------------------------------------------------
# spectra and SPD / PSD matrices
# ----------------------------------------------------------------------------------------------------------------
@given(S.dims(), st.integers(0, 12), st.data())
def test_spectra_promise(n, max_lc, data):
    lam = data.draw(S.spectra(n, max_log10_cond=max_lc), label="lam")
    assert lam.shape == (n,) and np.all(np.diff(lam) >= 0)  # ascending
    assert lam[-1] == 1.0
    nz = lam[lam > 0]
    assert np.all(lam >= 0) and nz.size >= 1
    assert nz[0] >= 10.0**-max_lc * (1 - 1e-15)  # lambda_min = 10^-lc, lc <= max (one rounding of 10**-lc)


@MP
@given(st.data())
def test_spd_matrices_are_pd_with_the_drawn_condition(data):
    n = data.draw(S.dims(1, 6), label="n")
    max_lc = data.draw(st.sampled_from((0, 3, 12)), label="max_log10_cond")
    A = data.draw(S.spd_matrices(n, max_log10_cond=max_lc), label="A")
    assert np.array_equal(A, A.T)
    psd, rank = _exact_psd_rank(A)
    assert psd and rank == n  # positive definite, exactly
    w = mp.mp_eigvalsh(A)
    with mp.workdps(None):
        cond = float(w[-1] / w[0])
        lam_max = float(w[-1])
    # lambda_max = 1 and cond <= 10^max up to the rounding of Q diag(lam) Q^T: |d lambda| <~ n^2 u (Weyl)
    assert abs(lam_max - 1) <= 4 * n * n * 2.0**-53
    assert 1 - 1e-12 <= cond <= 10.0**max_lc * (1 + 4 * n * n * 2.0**-53 * 10.0**max_lc)


@MP
@given(st.data())
def test_psd_matrices_are_exactly_psd_with_exact_rank(data):
    n = data.draw(S.dims(2, 6), label="n")
    A = data.draw(S.psd_matrices(n, kinds=("rank_deficient",)), label="A")
    psd, rank = _exact_psd_rank(A)
    assert psd and 1 <= rank <= n  # exactly PSD; rank < n unless the degenerate gate gave I
    w = mp.mp_eigvalsh(A)
    with mp.workdps(None):
        scale = max(abs(w[0]), abs(w[-1]))
        zeros = sum(1 for v in w if abs(v) <= 10 * n * mpmath.mpf(10) ** -50 * scale)
        nz = [v for v in w if abs(v) > 10 * n * mpmath.mpf(10) ** -50 * scale]
        cond = float(nz[-1] / nz[0])
    assert zeros == n - rank  # the exact null space is seen in mp as eigenvalues at the 1e-50 level
    # quantizing X to ~25 bits moves sqrt(lambda_min) >= 1e-6 by <= ~8e-8 relative... up to ~1.2x in lambda
    assert cond <= 2 * 10.0**12


def test_diagonal_matrices_do_not_dominate():
    """Peers-lessons 8.2: identity/diagonal instances cannot tell A^{-1/2} from A^{-1/4}. In 200 draws at
    n >= 2 fewer than 10% may be diagonal (measured: ~2-5%)."""
    seen: list[np.ndarray] = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(S.spd_matrices(S.dims(2, 6)))
    def collect(A):
        seen.append(A)

    collect()
    offdiag = [np.abs(A[~np.eye(A.shape[0], dtype=bool)]).max() / np.abs(A).max() for A in seen]
    diagonal = sum(1 for v in offdiag if v <= 1e-6)  # "diagonal" includes nearly diagonal: off-diagonal <= 1e-6
    assert len(seen) >= 100
    assert diagonal < 0.10 * len(seen), f"{diagonal} of {len(seen)} diagonal"


def test_spd_shrinks_to_simple_cases():
    # any property that also holds for I shrinks to I (the gate is a shorter choice sequence)
    assert np.array_equal(find(S.spd_matrices(3), lambda A: True), np.eye(3))
    # a property needing a non-diagonal matrix shrinks to the mildest dense instance: cond 10^(1/8)
    A = find(S.spd_matrices(3), lambda A: abs(A[0, 1]) > 0)
    w = np.linalg.eigvalsh(A)
    assert w[-1] / w[0] == pytest.approx(10 ** (1 / 8), rel=1e-12)


def test_kinds_are_checked():
    with pytest.raises(ValueError):
        S.spd_matrices(3, kinds=("rank_deficient",))
    with pytest.raises(ValueError):
        S.spectra(3, kinds=("nope",))
    with pytest.raises(ValueError):
        S.spd_matrices(3, max_log10_cond=20)
    with pytest.raises(ValueError):
        S.gradients(2, 2, scales=(2.0,))
    with pytest.raises(ValueError):
        S.known_inverse_root(3, 0)
    with pytest.raises(ValueError):
        S.gradient_sequences(2, 2, min_len=3, max_len=1)


# ----------------------------------------------------------------------------------------------------------------
# exact inverse roots
# ----------------------------------------------------------------------------------------------------------------
@given(st.data())
def test_known_inverse_root_is_exact(data):
    p = data.draw(st.sampled_from((1, 2, 3, 4)), label="p")
    A, B = data.draw(S.known_inverse_root(S.dims(1, 6), p), label="(A, B)")
    n = A.shape[0]
    assert np.array_equal(B, B.T) and np.array_equal(B, np.rint(B)) and np.array_equal(A, np.rint(A))
    assert np.abs(A).max() < 2.0**53  # every entry exact in float64
    assert _int_det(B) == 1  # unimodular
    assert _exact_psd_rank(B) == (True, n)  # symmetric positive definite
    # A B^p = I in exact integer arithmetic: A = B^{-p}, hence A^{-1/p} = B
    Ai, Bi = A.astype(np.int64).astype(object), B.astype(np.int64).astype(object)
    P = Ai
    for _ in range(p):
        P = P.dot(Bi)
    assert (P == np.eye(n, dtype=np.int64)).all()


def test_known_inverse_root_is_not_trivially_diagonal():
    A, B = find(S.known_inverse_root(3, 2), lambda inst: True)
    assert B[~np.eye(3, dtype=bool)].any()  # the simplest instance still has a shear


# ----------------------------------------------------------------------------------------------------------------
# gradients
# ----------------------------------------------------------------------------------------------------------------
@MP
@given(st.data())
def test_gradients_are_in_the_unit_ball_exactly(data):
    m, n = data.draw(S.shapes(), label="(m, n)")
    G = data.draw(S.gradients(m, n, allow_zero=True), label="G")
    assert G.shape == (m, n) and G.dtype == np.float64
    nrm = mp.mp_norm_2(G)  # exact input, 50 digits: the bound holds for the float64 array as it is
    assert nrm <= 1
    if G.any():
        assert float(nrm) >= 1e-4 * (1 - 1e-12)  # the smallest target scale


@MP
@given(S.rank_one_gradients(S.dims(), S.dims()))
def test_rank_one_gradients(G):
    assert np.linalg.matrix_rank(G) == 1
    nrm = mp.mp_norm_2(G)
    assert nrm <= 1
    assert float(nrm) >= 1e-4 * (1 - 1e-12)


def test_unit_scale_is_tight():
    G = find(S.gradients(3, 2, kinds=("dense",)), lambda G: True)
    nrm = mp.mp_norm_2(G)
    assert nrm <= 1 and float(nrm) >= 1 - 32 * 2.0**-53  # divided by (1 + 8u) ||G||_2: within ~8u of 1


@given(S.gradient_sequences(S.dims(), S.dims(), min_len=2, max_len=5))
def test_gradient_sequences_share_one_shape(Gs):
    assert 2 <= len(Gs) <= 5
    assert len({G.shape for G in Gs}) == 1
    assert all(np.linalg.norm(G, 2) <= 1 for G in Gs)


# ----------------------------------------------------------------------------------------------------------------
# Loewner pairs
# ----------------------------------------------------------------------------------------------------------------
@MP
@given(S.loewner_pairs(S.dims(1, 5)))
def test_loewner_pairs_dominate_exactly(pair):
    B, D = pair
    assert _exact_psd_rank(B)[0] and _exact_psd_rank(D)[0]  # B >= 0 and D >= 0 exactly
    A = pair.A_mp()
    with mp.workdps(None):
        assert A - mp.to_mp(B) == mp.to_mp(D)  # A - B = D with no rounding at all
    margin = mp.loewner_margin(A, B)
    scale = max(np.linalg.norm(B, 2), float(mp.mp_norm_2(A)))
    assert margin >= -mp.mp_tolerance(None, B.shape[0]) * scale  # A >= B: lambda_min(D) >= 0 up to mp rounding
