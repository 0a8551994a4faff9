"""Elementary matrix operations at the working precision: identity, exact sums, sym, Kronecker products
(KrADagrad Sec. 2.1), column-major vec (errata 15), trace and Frobenius norm; the symmetry check
(``SYMMETRY_RTOL``) that every symmetric-input function applies.
"""
from __future__ import annotations

from typing import Any

import mpmath

from .convert import _make_mpf, _matrix, _rows
from .precision import workdps


#: A matrix passed where a symmetric one is expected may be asymmetric by rounding: float64 kernels leave
#: O(n u ||A||) <= ~1e-13 relative. Anything above 2^-20 (~1e-6) is a different matrix (A^{-1} B, say), not
#: rounding, and is rejected; below it, the symmetric part (A + A^T)/2 is used.
SYMMETRY_RTOL = 2.0**-20


def mp_eye(n: int) -> mpmath.matrix:
    """The n x n identity as an mpmath.matrix."""
    return mpmath.eye(n)


def mp_exact_sum(*terms: Any) -> mpmath.matrix:
    """Elementwise sum of arrays (or mp matrices) with NO rounding at all (libmp ``mpf_sum`` at prec=0).

    For forming A = B + D from two float arrays when A >= B must hold exactly (strategies.LoewnerPair): the sum of
    dyadic numbers is dyadic and is kept with as many bits as it needs.
    """
    if not terms:
        raise ValueError("mp_exact_sum: expected at least one term")
    rows = [_rows(t, f"terms[{k}]") for k, t in enumerate(terms)]
    shape = (len(rows[0]), len(rows[0][0]))
    for k, r in enumerate(rows):
        if (len(r), len(r[0])) != shape:
            raise ValueError(f"mp_exact_sum: terms[{k}] has shape {(len(r), len(r[0]))}, expected {shape}")
    mpf_sum = mpmath.libmp.mpf_sum
    out = [[_make_mpf(mpf_sum([r[i][j]._mpf_ for r in rows], 0)) for j in range(shape[1])] for i in range(shape[0])]
    return _matrix(out)


def _sym_rows(R: list[list[mpmath.mpf]], name: str = "A") -> list[list[mpmath.mpf]]:
    """(R + R^T)/2 of a square row list, after checking the asymmetry is rounding-sized (SYMMETRY_RTOL)."""
    n = len(R)
    if any(len(row) != n for row in R):
        raise ValueError(f"{name}: expected a square matrix, got {n}x{len(R[0]) if R else 0}")
    scale = max((abs(v) for row in R for v in row), default=mpmath.mpf(0))
    asym = max((abs(R[i][j] - R[j][i]) for i in range(n) for j in range(i)), default=mpmath.mpf(0))
    if asym > SYMMETRY_RTOL * scale:
        raise ValueError(
            f"{name}: expected a symmetric matrix, max|A - A^T| = {mpmath.nstr(asym, 3)} > "
            f"{SYMMETRY_RTOL:.1e} * max|A| = {mpmath.nstr(SYMMETRY_RTOL * scale, 3)}"
        )
    half = mpmath.mpf(0.5)
    return [[R[i][j] if i == j else (R[i][j] + R[j][i]) * half for j in range(n)] for i in range(n)]


def mp_sym(A: Any, *, dps: int | None = None) -> mpmath.matrix:
    """sym(A) = (A + A^T)/2 of any square matrix (no symmetry check: this is the operator itself)."""
    with workdps(dps):
        R = _rows(A, "A")
        n = len(R)
        if any(len(row) != n for row in R):
            raise ValueError(f"A: expected a square matrix, got {n}x{len(R[0])}")
        half = mpmath.mpf(0.5)
        return _matrix([[(R[i][j] + R[j][i]) * half for j in range(n)] for i in range(n)])


def mp_kron(A: Any, B: Any, *, dps: int | None = None) -> mpmath.matrix:
    """Kronecker product A kron B: block (i, j) is a_ij B (KrADagrad Sec. 2.1; numpy.kron's ordering).

    With this ordering vec(L G R) = (R^T kron L) vec(G) for the column-major :func:`mp_vec`. Products of two
    float64 entries have <= 106 bits and are exact at dps >= 40.
    """
    with workdps(dps):
        RA, RB = _rows(A, "A"), _rows(B, "B")
        ma, na, mb, nb = len(RA), len(RA[0]), len(RB), len(RB[0])
        out = [[RA[i // mb][j // nb] * RB[i % mb][j % nb] for j in range(na * nb)] for i in range(ma * mb)]
        return _matrix(out)


def mp_vec(X: Any) -> mpmath.matrix:
    """Column-major vec: the columns of X stacked into one (mn x 1) column (errata 15)."""
    R = _rows(X, "X")
    m, n = len(R), len(R[0])
    return _matrix([[R[i][j]] for j in range(n) for i in range(m)])


def mp_unvec(v: Any, m: int, n: int) -> mpmath.matrix:
    """Inverse of :func:`mp_vec`: an (mn)-vector back to the m x n matrix, column-major."""
    R = _rows(v, "v")
    flat = [x for row in R for x in row]
    if len(flat) != m * n:
        raise ValueError(f"v: expected {m * n} entries for a {m}x{n} matrix, got {len(flat)}")
    return _matrix([[flat[j * m + i] for j in range(n)] for i in range(m)])


def mp_trace(A: Any, *, dps: int | None = None) -> mpmath.mpf:
    """tr(A) of a square matrix (one rounding: mpmath.fsum)."""
    with workdps(dps):
        R = _rows(A, "A")
        if len(R) != len(R[0]):
            raise ValueError(f"A: expected a square matrix, got {len(R)}x{len(R[0])}")
        return mpmath.fsum(R[i][i] for i in range(len(R)))


def mp_norm_fro(A: Any, *, dps: int | None = None) -> mpmath.mpf:
    """||A||_F = sqrt(sum a_ij^2)."""
    with workdps(dps):
        return mpmath.sqrt(mpmath.fsum((v for row in _rows(A, "A") for v in row), squared=True))


def _shape(R) -> tuple[int, int]:
    return (len(R), len(R[0]) if R else 0)
