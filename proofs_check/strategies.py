"""Hypothesis strategies for the claims: instances that satisfy each claim's hypotheses *by construction*.

Habits taken from data-apis/array-api-tests (STYLE.md A1-A5):
  * small ``@st.composite`` pieces that build on each other: dims -> spectra/orthogonal -> spd/psd matrices ->
    Loewner pairs; gradients -> gradient sequences;
  * sizes are small, with the reason written down (``MAX_N``);
  * dimensions that must agree are tied by ``st.shared(..., key=...)`` (:func:`shared_dims`); every ``n``
    argument may be an int or a strategy (drawn once per instance);
  * hypotheses hold by construction, not by filtering: PD with a chosen condition number, ||G||_2 <= 1
    verified exactly, A >= B exact, A^{-1/p} known exactly;
  * ``sampled_from`` lists are ordered simplest first, so shrinking moves toward the simplest case;
  * derived quantities (condition numbers, norms) are recorded with ``note()`` for readable counterexamples.

Every strategy returns NumPy float64 arrays; claim code converts them to mp exactly (``proofs_check.mp``).

Degenerate matrices (peers-lessons.md Sec. 8.2; Odyssey#5497). Identity, scalar and diagonal matrices cannot
tell A^{-1/2} from A^{-1/4}, and Hypothesis draws its "simplest" choice (0, the lower bound, the first list
entry) far more often than uniformly (a fifth of the draws or more in our measurements). So the zero choices
here do *not* give the identity: they give one Householder reflection H = I - 2 v v^T (dense, fixed by seed 0)
and the lowest nonzero condition number (10^(1/8)). The identity and diagonal matrices come from a separate
gate, selected by the *top* values of a range: a few percent of generated draws (tests/test_strategies.py
checks < 10%). They still are shrink targets: the gate returns after fewer choices, and Hypothesis orders
choice sequences shortlex, so a failure that also holds for I or a diagonal matrix shrinks to it. The
standalone :func:`orthogonal` shrinks toward I (zero reflections), as a building block should.

Randomness inside a draw (Gaussian vectors, orthogonal factors) comes from ``numpy.random.default_rng(seed)``
with ``seed`` drawn by Hypothesis, so every instance is reproducible from its choice sequence.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

__all__ = [
    "MAX_N",
    "SPECTRUM_KINDS",
    "dims",
    "shared_dims",
    "shapes",
    "orthogonal",
    "seeded_orthogonal",
    "spectra",
    "spd_matrices",
    "seeded_spd",
    "psd_matrices",
    "rank_deficient_statistics",
    "RankDeficientStatistic",
    "known_inverse_root",
    "InverseRootInstance",
    "gradients",
    "rank_one_gradients",
    "gradient_sequences",
    "GRADIENT_KINDS",
    "loewner_pairs",
    "LoewnerPair",
]

#: Default largest dimension. Claims are judged in mpmath, where a symmetric eigendecomposition costs O(n^3)
#: operations at 50 digits (~5 ms at n = 6, ~50 ms at n = 16, ~1 s at n = 64), and a Kronecker claim works
#: at size mn: n <= 6 keeps every example of every claim in milliseconds while still covering m != n,
#: rank-deficient tails and clusters.
MAX_N = 6

#: Spectrum shapes, simplest first (shrinking moves toward "geometric").
SPECTRUM_KINDS = ("geometric", "clustered", "random", "rank_deficient")
_PD_KINDS = ("geometric", "clustered", "random")

#: Gradient shapes, simplest first (rank one is the tight case of the KrAD bounds, errata 3).
GRADIENT_KINDS = ("rank_one", "low_rank", "dense")

_SEEDS = st.integers(0, 2**32 - 1)
# Top values of this range select the degenerate matrices (see the module docstring).
_GATE = st.integers(0, 31)
_GATE_DIAGONAL, _GATE_IDENTITY = 31, 30
_U64 = 2.0**-53


def _note(msg: str) -> None:
    """note() inside a test; silently nothing outside one (strategy.example() in a REPL)."""
    if currently_in_test_context():
        note(msg)


def _resolve(draw, n: Any, name: str) -> int:
    """An int argument, or draw it when a strategy was passed."""
    if isinstance(n, st.SearchStrategy):
        n = draw(n)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name}: expected an int or a strategy of ints, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"{name}: expected a positive dimension, got {n}")
    return int(n)


# --------------------------------------------------------------------------------------------------------------
# dimensions
# --------------------------------------------------------------------------------------------------------------
def dims(min_n: int = 1, max_n: int = MAX_N) -> st.SearchStrategy[int]:
    """A matrix dimension in [min_n, max_n]; shrinks toward min_n."""
    if not 1 <= min_n <= max_n:
        raise ValueError(f"dims: expected 1 <= min_n <= max_n, got {min_n}, {max_n}")
    return st.integers(min_n, max_n)


def shared_dims(key: str, min_n: int = 1, max_n: int = MAX_N) -> st.SearchStrategy[int]:
    """A dimension shared by every strategy built with the same ``key`` in one example (array-api-tests'
    ``shared(..., key=...)``): ``m = shared_dims("m")`` used for both L's size and G's rows."""
    return st.shared(dims(min_n, max_n), key=key)


@st.composite
def shapes(draw, max_dim: int = MAX_N, min_dim: int = 1) -> tuple[int, int]:
    """A matrix shape (m, n), each in [min_dim, max_dim]: includes m = 1, n = 1 and m != n. Shrinks to (1, 1)."""
    m = draw(dims(min_dim, max_dim))
    n = draw(dims(min_dim, max_dim))
    return m, n


# --------------------------------------------------------------------------------------------------------------
# orthogonal factors and spectra
# --------------------------------------------------------------------------------------------------------------
def _householder_product(n: int, k: int, seed: int) -> np.ndarray:
    """H_1 ... H_k, H_i = I - 2 v v^T / (v^T v) with Gaussian v (seeded). A vector too short to normalize
    safely (never seen for Gaussians, guarded anyway) is skipped."""
    rng = np.random.default_rng(seed)
    Q = np.eye(n)
    for _ in range(k):
        v = rng.standard_normal(n)
        nv = np.linalg.norm(v)
        if not nv > 1e-8:
            continue
        v = v / nv
        Q = Q - 2.0 * np.outer(Q @ v, v)
    return Q


@st.composite
def orthogonal(draw, n: Any = dims(), *, min_reflections: int = 0) -> np.ndarray:
    """A random n x n orthogonal matrix: a product of k Householder reflections of seeded Gaussian vectors.

    k is drawn from [min_reflections, n] and shrinks toward min_reflections: with the default 0, toward the
    identity. Orthogonal to float64 rounding: ||Q^T Q - I||_2 <= ~4 k u.
    """
    n = _resolve(draw, n, "n")
    if not 0 <= min_reflections <= n:
        raise ValueError(f"min_reflections: expected 0..{n}, got {min_reflections}")
    k = draw(st.integers(min_reflections, n))
    seed = draw(_SEEDS)
    return _householder_product(n, k, seed)


def seeded_orthogonal(n: int, seed: Any) -> np.ndarray:
    """The builder of :func:`orthogonal` for seeded tests outside Hypothesis: n Householder reflections of
    Gaussian vectors from ``numpy.random.default_rng(seed)`` (an int, or a Generator, which is used and advanced)."""
    return _householder_product(n, n, seed)


def _log10_cond(draw, max_log10_cond: float) -> float:
    """log10 of the condition number on a grid of 1/8 decade in (0, max]; shrinks toward 1/8 (cond 1.33).

    0 (cond = 1, the scalar matrix) is left out here on purpose: it is the gate's job (module docstring).
    """
    steps = int(np.ceil(8 * max_log10_cond))
    if steps == 0:
        return 0.0
    return min(float(max_log10_cond), draw(st.integers(1, steps)) / 8.0)


def _pd_log10_cap(n: int) -> float:
    """log10 of the largest condition number a float64 Q diag(lam) Q^T keeps safely PD: 1/(64 n^2 u)."""
    return float(np.floor(-8 * np.log10(64 * n * n * _U64)) / 8)


def _check_log10_cond(max_log10_cond: float) -> None:
    if not 0 <= max_log10_cond <= 15:  # beyond 1e15 float64 rounding of Q diag(lam) Q^T exceeds lambda_min
        raise ValueError(f"max_log10_cond: expected 0..15, got {max_log10_cond}")


def _check_kinds(kinds: Sequence[str], allowed: Sequence[str], name: str = "kinds") -> tuple[str, ...]:
    kinds = tuple(kinds)
    if not kinds:
        raise ValueError(f"{name}: expected at least one kind")
    bad = [k for k in kinds if k not in allowed]
    if bad:
        raise ValueError(f"{name}: unknown {bad}; expected some of {tuple(allowed)}")
    return kinds


def _spectrum(draw, n: int, lc: float, kind: str) -> np.ndarray:
    """Ascending eigenvalues with lambda_max = 1 and lambda_min = 10^-lc (zeros first for rank_deficient)."""
    lo = 10.0**-lc
    if n == 1:
        return np.array([1.0])
    if kind == "geometric":  # Google's U diag(kappa^{-i/(n-1)}) U^T: every ratio lambda_i/lambda_{i+1} equal
        lam = 10.0 ** (-lc * np.arange(n - 1, -1, -1) / (n - 1))
    elif kind == "clustered":  # two exact clusters: j eigenvalues at lambda_min, n - j at 1
        j = draw(st.integers(1, n - 1))
        lam = np.r_[np.full(j, lo), np.ones(n - j)]
    elif kind == "random":  # log-uniform interior points; shrinks toward interior eigenvalues 1
        t = draw(st.lists(st.floats(0.0, 1.0), min_size=n - 2, max_size=n - 2))
        lam = np.sort(np.r_[lo, 10.0 ** (-lc * np.asarray(t, dtype=np.float64)), 1.0])
    elif kind == "rank_deficient":  # r nonzero eigenvalues geometric in [lambda_min, 1], then n - r exact zeros
        r = draw(st.integers(1, n - 1))
        nz = 10.0 ** (-lc * np.arange(r - 1, -1, -1) / (r - 1)) if r > 1 else np.array([1.0])
        lam = np.r_[np.zeros(n - r), nz]
    else:  # pragma: no cover - kinds are checked by the callers
        raise ValueError(kind)
    lam[-1] = 1.0  # exact endpoints, whatever the rounding of 10^(-lc * t)
    if kind != "rank_deficient":
        lam[0] = lo
    return lam


def spectra(
    n: Any = dims(), *, max_log10_cond: float = 12, kinds: Sequence[str] = SPECTRUM_KINDS
) -> st.SearchStrategy[np.ndarray]:
    """Ascending eigenvalues, lambda_max = 1 and (nonzero) lambda_min = 10^-log10_cond, log10_cond in (0, max].

    Kinds (simplest first): "geometric" (equal ratios), "clustered" (two exact clusters at lambda_min and 1),
    "random" (log-uniform interior), "rank_deficient" (a tail of exact zeros: r >= 1 nonzero eigenvalues
    geometric in [lambda_min, 1]; only for PSD claims, errata 14). n = 1 gives [1.0] for every kind.
    """
    _check_log10_cond(max_log10_cond)
    return _spectra(n, max_log10_cond, _check_kinds(kinds, SPECTRUM_KINDS))


@st.composite
def _spectra(draw, n, max_log10_cond, kinds):
    n = _resolve(draw, n, "n")
    kind = draw(st.sampled_from(kinds))
    lc = _log10_cond(draw, max_log10_cond)
    lam = _spectrum(draw, n, lc, kind)
    nz = lam[lam > 0]
    _note(f"spectrum: kind={kind} n={n} cond(nonzero)={nz[-1] / nz[0]:.3g} zeros={n - nz.size}")
    return lam


# --------------------------------------------------------------------------------------------------------------
# symmetric positive (semi)definite matrices
# --------------------------------------------------------------------------------------------------------------
def _rotate(Q: np.ndarray, lam: np.ndarray) -> np.ndarray:
    A = (Q * lam) @ Q.T
    return (A + A.T) * 0.5  # exactly symmetric: fl(a + b) = fl(b + a)


def seeded_spd(n: int, kappa: float, seed: Any, *, scale: float = 1.0) -> np.ndarray:
    """scale * Q diag(lam) Q^T with the "geometric" spectrum of :func:`spd_matrices` (lam_i = kappa^(-i/(n-1)),
    exact endpoints 1/kappa and 1) and Q = :func:`seeded_orthogonal` (n, seed): the builder of spd_matrices at a
    chosen condition number, for seeded tests outside Hypothesis. Exactly symmetric; PD as a float64 matrix
    while kappa <= 1/(64 n^2 u) (spd_matrices' cap)."""
    if n < 1 or not kappa >= 1.0:
        raise ValueError(f"n, kappa: expected n >= 1 and kappa >= 1, got n={n}, kappa={kappa}")
    lam = kappa ** (-np.arange(n - 1, -1, -1) / max(n - 1, 1)) if n > 1 else np.ones(1)
    lam[-1], lam[0] = 1.0, (1.0 / kappa if n > 1 else 1.0)
    return _rotate(seeded_orthogonal(n, seed), scale * lam)


def _exact_gram(X: np.ndarray, bits: int = 53) -> np.ndarray:
    """A = X X^T with NO rounding, exactly PSD with rank(X): X is first quantized to b-bit integers times a
    power of two, with 2b + ceil(log2 r) <= bits so that every product and every partial sum is an integer
    below 2^bits (exact in float64 for bits = 53, in float32 for bits = 24: the sum is then exact in that dtype
    whatever its order). The quantization moves X by <= 2^-(b+1) max|X| per entry."""
    return _quantized_gram(X, bits)[0]


def _quantized_gram(X: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(A, Xq): the exact Gram A = Xq Xq^T of :func:`_exact_gram` and the quantized factor Xq (float64, exact)."""
    n, r = X.shape
    b = (bits - (r - 1).bit_length()) // 2
    mx = float(np.max(np.abs(X)))
    e = int(np.frexp(mx)[1])  # mx < 2^e
    s = b - e  # X * 2^s has entries below 2^b
    Xi = np.rint(np.ldexp(X, s)).astype(np.int64)
    Ai = Xi @ Xi.T  # exact int64: entries <= r 2^(2b) <= 2^bits
    A = np.ldexp(Ai.astype(np.float64), -2 * s)  # exact: integers < 2^bits, scaled by a power of two
    if not np.array_equal(Ai.astype(np.float64).astype(np.int64), Ai):  # pragma: no cover - guaranteed by b
        raise AssertionError(f"exact Gram construction overflowed {bits} bits")
    return A, np.ldexp(Xi.astype(np.float64), -s)


@st.composite
def _sym_matrices(draw, n, max_log10_cond, kinds):
    n = _resolve(draw, n, "n")
    gate = draw(_GATE)
    if gate == _GATE_IDENTITY:
        _note(f"matrix: identity n={n} (degenerate gate)")
        return np.eye(n)
    kind = draw(st.sampled_from(kinds))
    # Forming Q diag(lam) Q^T in float64 moves eigenvalues by <= n^2 u (each entry carries gamma_n, and
    # sum_k |Q_ik| lam_k |Q_jk| <= 1); capping kappa at 1/(64 n^2 u) keeps the float matrix PD with its realized
    # lambda_min within 1/64 of the drawn one (cap: 10^12.5 at n = 6, 10^11.6 at n = 16). Rank-deficient
    # matrices are formed exactly (_exact_gram) and need no cap.
    cap = max_log10_cond if kind == "rank_deficient" else min(max_log10_cond, _pd_log10_cap(n))
    lc = _log10_cond(draw, cap)
    lam = _spectrum(draw, n, lc, kind)
    if gate == _GATE_DIAGONAL:
        Q = np.eye(n)
    else:  # at least one reflection: the simplest choice is a dense H = I - 2 v v^T, not I
        Q = draw(orthogonal(n, min_reflections=1))
    if kind == "rank_deficient" and (lam == 0).any():
        r = int((lam > 0).sum())
        A = _exact_gram(Q[:, n - r:] * np.sqrt(lam[n - r:]))
    else:
        A = _rotate(Q, lam)
    nz = lam[lam > 0]
    _note(f"matrix: kind={kind} n={n} cond(nonzero)={nz[-1] / nz[0]:.3g} zeros={n - nz.size} diagonal={gate == _GATE_DIAGONAL}")
    return A


def spd_matrices(
    n: Any = dims(), *, max_log10_cond: float = 12, kinds: Sequence[str] = _PD_KINDS
) -> st.SearchStrategy[np.ndarray]:
    """Symmetric positive definite Q diag(lam) Q^T with lambda_max = 1, lambda_min = 10^-log10_cond (drawn).

    Exactly symmetric. Positive definite as a float64 matrix: forming Q diag(lam) Q^T perturbs each eigenvalue
    by at most ~n^2 u (Weyl + gamma_n), so kappa is capped at 1/(64 n^2 u) (10^12.5 at n = 6, 10^11.6 at
    n = 16): the realized lambda_min is then within 1/64 of the drawn one (tests check PD exactly, in
    rationals). Kinds: "geometric", "clustered", "random" ("rank_deficient" is PSD: psd_matrices).
    """
    _check_log10_cond(max_log10_cond)
    return _sym_matrices(n, max_log10_cond, _check_kinds(kinds, _PD_KINDS))


def psd_matrices(
    n: Any = dims(), *, max_log10_cond: float = 12, kinds: Sequence[str] = SPECTRUM_KINDS
) -> st.SearchStrategy[np.ndarray]:
    """Symmetric positive semidefinite matrices, exactly PSD as float64 arrays, rank-deficient tails included.

    PD kinds as in :func:`spd_matrices`. "rank_deficient": A = X X^T with X = Q_r diag(sqrt(lam_r)) quantized
    to ~25-bit integers times a power of two, so the product is exact: A is PSD with rank r *exactly* (its
    null space is exact; float rounding of Q diag(lam) Q^T would leave eigenvalues of +-1e-17 instead of 0).
    The cost: the nonzero eigenvalues move by the quantization, relative ~sqrt(n r) 2^-26 / sqrt(lambda):
    at most ~1.2x at kappa = 1e12, n = 6 (tests allow a factor 2).
    """
    _check_log10_cond(max_log10_cond)
    return _sym_matrices(n, max_log10_cond, _check_kinds(kinds, SPECTRUM_KINDS))


class RankDeficientStatistic(NamedTuple):
    """S = X X^T = sum_k x_k x_k^T of rank r < n, exact in float64 and in the ``dtype`` it was drawn for."""

    S: np.ndarray  # (n, n) float64, entries exactly representable in the dtype: S == fl_dtype(S), exactly PSD
    X: np.ndarray  # (n, r) float64, the r vectors x_k as columns, exactly representable in the dtype
    r: int


_MANTISSA_BITS = {"float32": 24, "float64": 53}


@st.composite
def rank_deficient_statistics(draw, n: Any = dims(2), *, dtype: str = "float64",
                              max_log10_cond: float = 8) -> RankDeficientStatistic:
    """A statistic S = sum_{k<=r} x_k x_k^T of exact rank r in [1, n - 1], formed WITHOUT rounding in ``dtype``.

    x_k = the columns of Q_r diag(sqrt(lam)), Q orthogonal, lam geometric in [10^-lc, 1] (lc <= max_log10_cond),
    quantized so that 2b + ceil(log2 r) <= mantissa(dtype) bits (:func:`_exact_gram`): S's entries, every
    partial sum and the vectors are exact in ``dtype``, so ``to_mp(S)`` is the exact rank-r matrix with an exact
    null space. The quantization moves the nonzero eigenvalues (relative ~ sqrt(n r) 2^-b / sqrt(lam)), so tests
    take kappa_r from the exact eigenvalues in mp, not from the drawn spectrum.
    """
    if dtype not in _MANTISSA_BITS:
        raise ValueError(f"dtype: expected one of {tuple(_MANTISSA_BITS)}, got {dtype!r}")
    _check_log10_cond(max_log10_cond)
    n = _resolve(draw, n, "n")
    if n < 2:
        raise ValueError(f"n: a rank-deficient statistic needs n >= 2, got {n}")
    r = draw(st.integers(1, n - 1))
    lc = _log10_cond(draw, max_log10_cond)
    lam = 10.0 ** (-lc * np.arange(r - 1, -1, -1) / (r - 1)) if r > 1 else np.array([1.0])
    Q = draw(orthogonal(n, min_reflections=1))
    S, X = _quantized_gram(Q[:, n - r:] * np.sqrt(lam), _MANTISSA_BITS[dtype])
    _note(f"statistic: n={n} r={r} dtype={dtype} drawn cond(nonzero)={10.0 ** lc:.3g}")
    return RankDeficientStatistic(S, X, r)


# --------------------------------------------------------------------------------------------------------------
# exact inverse roots (errata 14)
# --------------------------------------------------------------------------------------------------------------
class InverseRootInstance(NamedTuple):
    """A = B^{-p} with B symmetric PD unimodular integer, so A^{-1/p} = B exactly (errata 14)."""

    A: np.ndarray  # (n, n) float64, integer entries, |A_ij| < 2^53: exact
    B: np.ndarray  # (n, n) float64, integer entries, det(B) = 1


def _int_matmul(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    return np.dot(X.astype(object), Y.astype(object))


def _check_p(p: Any) -> int:
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
        raise ValueError(f"p: expected an integer >= 1, got {p!r}")
    return int(p)


def known_inverse_root(n: Any = dims(), p: Any = st.sampled_from((1, 2, 3, 4))) -> st.SearchStrategy[InverseRootInstance]:
    """(A, B) with B = U^T U, U a product of integer shears (row_i += c row_j, c = +-1: det U = 1), and
    A = B^{-p} = (U^{-1} U^{-T})^p, an integer matrix for integer p >= 1. Then A^{-1/p} = B exactly.

    Everything is computed in Python integers; shears are dropped from the end until max|A| < 2^53 (so A is
    exact in float64). Shrinks toward one shear (B = [[1, c], [c, 2]] blocks), not toward B = I.
    p (int or strategy) defaults to 1..4, simplest first (Shampoo uses 2 for vectors, 4 for matrices).
    """
    if not isinstance(p, st.SearchStrategy):
        _check_p(p)
    return _known_inverse_root(n, p)


@st.composite
def _known_inverse_root(draw, n, p):
    n = _resolve(draw, n, "n")
    p = _check_p(draw(p) if isinstance(p, st.SearchStrategy) else p)
    shears = []
    if n >= 2:
        t = draw(st.integers(1, 2 * n))
        for _ in range(t):
            i = draw(st.integers(0, n - 1))
            j = (i + 1 + draw(st.integers(0, n - 2))) % n  # j != i by construction
            c = draw(st.sampled_from((1, -1)))
            shears.append((i, j, c))
    while True:
        U = np.eye(n, dtype=object)
        Uinv = np.eye(n, dtype=object)
        for i, j, c in shears:
            U[i, :] = U[i, :] + c * U[j, :]  # U <- E U,   E = I + c e_i e_j^T
            Uinv[:, j] = Uinv[:, j] - c * Uinv[:, i]  # Uinv <- Uinv E^{-1},  E^{-1} = I - c e_i e_j^T
        B = _int_matmul(U.T, U)
        Binv = _int_matmul(Uinv, Uinv.T)
        A = np.eye(n, dtype=object)
        for _ in range(p):
            A = _int_matmul(A, Binv)
        if max(abs(int(v)) for v in A.ravel()) < 2**53 or not shears:
            break
        shears.pop()
    _note(f"known_inverse_root: n={n} p={p} shears={len(shears)} max|A|={max(abs(int(v)) for v in A.ravel())}")
    return InverseRootInstance(A=np.array(A, dtype=np.float64), B=np.array(B, dtype=np.float64))


# --------------------------------------------------------------------------------------------------------------
# gradients
# --------------------------------------------------------------------------------------------------------------
def _spectral_norm_mp(G: np.ndarray):
    from proofs_check import mp as _mp  # local: strategies import cheaply, mp only when a gradient is drawn

    return _mp.mp_norm_2(G)


def _into_unit_ball(G: np.ndarray, target: float) -> np.ndarray:
    """G scaled so that ||G||_2 <= target <= 1 holds EXACTLY (checked in mp), with ||G||_2 ~ target.

    Divides by (1 + 8u) ||G||_2 (float64 SVD: relative error a few u) and multiplies by target; the check in
    mp (exact conversion, 50 digits) repeats the division by (1 + 8u) in the never-seen case it fails.
    """
    s = float(np.linalg.norm(G, 2))
    if s == 0.0:
        return G
    G = G / (s * (1.0 + 8 * _U64))
    if target != 1.0:
        G = G * target
    for _ in range(8):
        if _spectral_norm_mp(G) <= 1:
            return G
        G = G / (1.0 + 8 * _U64)  # pragma: no cover - the first scaling already has a margin of ~8u
    raise AssertionError("could not scale G into the unit ball")  # pragma: no cover


def _direction(rng: np.random.Generator, m: int, n: int, kind: str, rank: int) -> np.ndarray:
    if kind == "rank_one":
        return np.outer(rng.standard_normal(m), rng.standard_normal(n))
    if kind == "low_rank":
        return rng.standard_normal((m, rank)) @ rng.standard_normal((rank, n))
    return rng.standard_normal((m, n))


def gradients(
    m: Any = dims(),
    n: Any = dims(),
    *,
    kinds: Sequence[str] = GRADIENT_KINDS,
    scales: Sequence[float] = (1.0, 0.5, 1e-2, 1e-4),
    allow_zero: bool = False,
) -> st.SearchStrategy[np.ndarray]:
    """A gradient G (m x n) with ||G||_2 <= 1 guaranteed exactly (verified in mp), of a drawn kind and size.

    Args:
      kinds: "rank_one" (a b^T), "low_rank" (rank 2..min(m,n)-1 when possible), "dense" (Gaussian).
      scales: target ||G||_2, simplest first; 1.0 gives ||G||_2 = 1 - O(u) (the tight case of the claims).
      allow_zero: also draw G = 0 (at the end of the scales list; Eq. 13 must then leave L unchanged).
    """
    kinds = _check_kinds(kinds, GRADIENT_KINDS)
    scales = tuple(float(v) for v in scales)
    if not scales or any(not 0.0 < v <= 1.0 for v in scales):
        raise ValueError(f"scales: expected values in (0, 1], got {scales}")
    return _gradients(m, n, kinds, scales + ((0.0,) if allow_zero else ()))


@st.composite
def _gradients(draw, m, n, kinds, targets):
    m, n = _resolve(draw, m, "m"), _resolve(draw, n, "n")
    kind = draw(st.sampled_from(kinds))
    target = draw(st.sampled_from(targets))
    seed = draw(_SEEDS)
    lo_rank = min(m, n)
    rank = draw(st.integers(2, lo_rank - 1)) if kind == "low_rank" and lo_rank > 2 else 1
    if target == 0.0:
        _note(f"gradient: zero {m}x{n}")
        return np.zeros((m, n))
    G = _into_unit_ball(_direction(np.random.default_rng(seed), m, n, kind, rank), target)
    _note(f"gradient: kind={kind} {m}x{n} ||G||_2~{np.linalg.norm(G, 2):.17g}")
    return G


def rank_one_gradients(m: Any = dims(), n: Any = dims(), **kw: Any) -> st.SearchStrategy[np.ndarray]:
    """Rank-one gradients G = a b^T with ||G||_2 = ||a|| ||b|| <= 1 exactly (errata 3's closed form)."""
    return gradients(m, n, kinds=("rank_one",), **kw)


def gradient_sequences(
    m: Any = dims(), n: Any = dims(), *, min_len: int = 1, max_len: int = 8, **kw: Any
) -> st.SearchStrategy[list[np.ndarray]]:
    """A list of min_len..max_len gradients of one shape (m, n drawn once), each with ||G||_2 <= 1.

    ``kw`` goes to :func:`gradients` (kinds, scales, allow_zero). Shrinks toward min_len.
    """
    if not 0 <= min_len <= max_len:
        raise ValueError(f"min_len, max_len: expected 0 <= min_len <= max_len, got {min_len}, {max_len}")
    gradients(1, 1, **kw)  # validates kw now, not at the first draw
    return _gradient_sequences(m, n, min_len, max_len, kw)


@st.composite
def _gradient_sequences(draw, m, n, min_len, max_len, kw):
    m, n = _resolve(draw, m, "m"), _resolve(draw, n, "n")
    return draw(st.lists(gradients(m, n, **kw), min_size=min_len, max_size=max_len))


# --------------------------------------------------------------------------------------------------------------
# Loewner pairs
# --------------------------------------------------------------------------------------------------------------
class LoewnerPair(NamedTuple):
    """A >= B >= 0 exactly, given as pieces: A = B + D with B, D PSD float64 arrays.

    A is NOT returned as a float array: fl(B + D) can break A >= B when D is rank-deficient (rounding adds an
    indefinite perturbation of size u ||B|| in D's null space). Form A exactly in mp with :meth:`A_mp`.
    """

    B: np.ndarray  # (n, n) PSD, exactly (psd_matrices)
    D: np.ndarray  # (n, n) PSD, exactly; may be rank-deficient (then lambda_min(A - B) = 0 exactly)

    def A_mp(self):
        """A = B + D as an mpmath.matrix, with no rounding at all (``mp.mp_exact_sum``)."""
        from proofs_check import mp as _mp

        return _mp.mp_exact_sum(self.B, self.D)


@st.composite
def loewner_pairs(draw, n: Any = dims(), *, max_log10_cond: float = 12) -> LoewnerPair:
    """(B, D) with B, D exactly PSD; A = B + D satisfies A >= B >= 0 exactly (form A with ``pair.A_mp()``).

    D is scaled by 2^-s, s in [0, 40] (exact), so A - B ranges from comparable to B down to ~1e-12 of it;
    rank-deficient D (psd_matrices' "rank_deficient" kind) gives margin exactly 0 along its null space.
    """
    n = _resolve(draw, n, "n")
    B = draw(psd_matrices(n, max_log10_cond=max_log10_cond))
    D = draw(psd_matrices(n, max_log10_cond=max_log10_cond))
    s = draw(st.integers(0, 40))
    D = np.ldexp(D, -s)
    _note(f"loewner_pair: n={n} D scaled by 2^-{s}")
    return LoewnerPair(B=B, D=D)
