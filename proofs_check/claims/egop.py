"""EGOP reparameterization (DePavia et al., arXiv 2502.01594 v1): each statement encoded as printed.

Most of the paper's formulas were lost in our copy (``papers/egop.md``); where a statement is rebuilt, the claim
says from which item of ``notes/egop-formulas.md`` and with which certainty tag ([seed] = words that survived,
[REC] = reconstructed from the surviving proof text). Every check is evaluated in mpmath from float64 inputs
converted exactly, and none of them imports ``krad_ref.egop``: the claims are the oracle for it.

Ground truth for expectations:
  * exact EGOP under N(0, c^2 I): tensor Gauss-Hermite quadrature (probabilists'), exact for polynomial
    integrands of degree <= 2q - 1 in each variable (q nodes per axis). The objectives here are polynomials of
    degree <= 4 (gradient outer products of degree <= 6, q = 4), so the "expectation" is exact, not sampled.
  * Rademacher rho (uniform on {-c, c}^d): the exact average over the 2^d vertices.
  * independent gradients: where the chain rule itself is what a claim says (Eq. 4), gradients come from the
    complex step Im f(x + i h e_j) / h with h = 10^-dps (no cancellation; truncation O(h^2)).
  * orthogonal V: products of Householder reflections formed in mp (orthogonal to the working precision), from
    seeded Gaussian vectors, so that V^T V = I holds to 10^-dps, not to float64's 1e-16.

Registered (id: source, expected verdict):
  egop.lemma14_isotropic_reading   Lemma 14 with "isotropic" read as mean 0, covariance c^2 I: FAILS (errata 2;
                                   Rademacher rho, f = sum x_i^4 / 4); twin egop.lemma14_gaussian.
  egop.lemma14_gaussian            Lemma 14 for a rotation-invariant rho = N(0, c^2 I), exact EGOP: holds.
  egop.lemma14_sample              Lemma 14 for a finite sample rotated consistently (y_k = V^T x_k): holds.
  egop.cor15_diagonal              Cor. 15 and Eq. (2): EGOP(f o V) = Lambda, lambda_i = E<grad f, v_i>^2: holds.
  egop.lemma10_if / _only_if       Lemma 10, both directions (coordinate-wise smoothness vs -D_L <= Hess <= D_L).
  egop.lemma12                     Lemma 12: v^T A^2 v <= lambda_max(A) v^T A v for PSD A: holds.
  egop.lemma13_sqrt_monotone       Lemma 13 (Eq. 10): 0 <= A <= B implies A^{1/2} <= B^{1/2}: holds.
  egop.eq4_chain_rule              Eq. (4) = (24): EGOP(l(A x)) = A^T E[grad l grad l^T] A: holds.
  egop.lemma17                     Lemma 17: the Hessian quadratic form of Eq. (18), against a 5-point stencil.
  egop.lemma18_decay               Lemma 18: lambda_k / lambda_1 <= kappa(S) sigma_k^2 / sigma_1^2: holds.
  egop.lemma19_formula             Lemma 19: EGOP = (A^T A)^2 + A^T b b^T A under N(0, I): holds.
  egop.lemma19_interlacing         Lemma 19, Eq. (25): sigma_i^4 <= lambda_i <= sigma_{i-1}^4 (Golub): holds.
  egop.lemma20_i                   Lemma 20 (i): f(U X W) = f(mat(V vec X)) with V = W^T kron U orthogonal.
  egop.lemma20_ii_as_printed       Lemma 20 (ii) for all m, n: FAILS at m = 1 or n = 1 (errata 26);
                                   twin egop.lemma20_ii.
  egop.gd_equivariant              GD / heavy ball / Nesterov on f o V from V^T x0 maps back to f's iterates.
  egop.adagrad_equivariant         Adagrad is equivariant under every orthogonal V: FAILS; twin
                                   egop.adagrad_signed_permutation (equivariant under permutations and sign flips).
  egop.adam_equivariant            The same for Adam: FAILS; twin egop.adam_signed_permutation.

Not encoded (constants lost, errata preamble: an asymptotic statement needs its constant): Theorems 3-5,
Lemmas 6-9, 11, 16 (their smallness conditions and constants are [REC] "not recoverable"). The full list, with
each statement's reason, is the ledger in ``proofs_check/coverage.py``.
"""
from __future__ import annotations

import functools
import itertools
import warnings
from fractions import Fraction
from typing import NamedTuple

import mpmath
import numpy as np
from hypothesis import strategies as st

from .. import mp as M
from .. import strategies as S
from ..claim import FAILS, Claim, Evidence, Source, register
from . import _evidence as E
from . import matrix as _matrix_claims

PAPER = "EGOP"
#: Largest dimension d of the parameter x. A Gaussian EGOP by 4-point tensor quadrature costs 4^d gradient
#: evaluations in mp (64 at d = 3, about 30 ms); the trajectory claims cost steps * d^2 per step.
MAX_D = 3
MAX_D_LINEAR = 4
MAX_STEPS = 5
_SEEDS = st.integers(0, 2**32 - 1)


# ==============================================================================================================
# mp helpers: vectors are lists of mp numbers, matrices lists of rows (cheap at d <= 4)
# ==============================================================================================================
def _v(x) -> list:
    return [M.to_mpf(float(t)) for t in np.asarray(x, dtype=np.float64).ravel()]


def _m(A) -> list:
    A = np.asarray(A, dtype=np.float64)
    return [[M.to_mpf(float(t)) for t in row] for row in A]


def _dot(u, v):
    return mpmath.fdot(u, v)  # one rounding for the sum; mpf or mpc entries


def _matvec(A, x):
    return [_dot(row, x) for row in A]


def _rmatvec(A, y):
    """A^T y."""
    n = len(A[0]) if A else 0
    return [_dot([A[i][j] for i in range(len(A))], y) for j in range(n)]


def _matmul(A, B):
    Bt = [list(col) for col in zip(*B)]
    return [[_dot(r, c) for c in Bt] for r in A]


def _T(A):
    return [list(col) for col in zip(*A)]


def _mat(rows) -> mpmath.matrix:
    out = mpmath.matrix(len(rows), len(rows[0]))
    for i, r in enumerate(rows):
        for j, v in enumerate(r):
            out[i, j] = v
    return out


def _zeros(n, m=None):
    return [[mpmath.mpf(0)] * (n if m is None else m) for _ in range(n)]


def _add_outer(acc, w, g):
    d = len(g)
    for i in range(d):
        wi = w * g[i]
        row = acc[i]
        for j in range(d):
            row[j] += wi * g[j]


def _householder_mp(vecs, d: int):
    """V = H_1 ... H_k, H = I - 2 v v^T / (v^T v), formed at the working precision (orthogonal to 10^-dps)."""
    V = [[mpmath.mpf(1) if i == j else mpmath.mpf(0) for j in range(d)] for i in range(d)]
    for v in np.asarray(vecs, dtype=np.float64).reshape(-1, d):
        vm = _v(v)
        nv = _dot(vm, vm)
        if nv == 0:
            continue
        Vv = _matvec(V, vm)
        c = 2 / nv
        V = [[V[i][j] - c * Vv[i] * vm[j] for j in range(d)] for i in range(d)]
    return V


def _reflection_vectors(draw, d: int, min_k: int = 1) -> np.ndarray:
    """k in [min_k, d] seeded Gaussian Householder vectors (shrinks toward min_k reflections)."""
    k = draw(st.integers(min(min_k, d), d))
    rng = np.random.default_rng(draw(_SEEDS))
    return rng.standard_normal((k, d))


def _scalar_ev(margin, scale, *, dps: int, n: int, detail=None, tol=None) -> Evidence:
    """Evidence for a scalar inequality given as margin = rhs - lhs (mp) against ``scale``."""
    return Evidence(margin=float(margin), scale=float(abs(scale)) or 1.0,
                    tol=M.mp_tolerance(dps, n) if tol is None else tol, detail=dict(detail or {}))


def _worst(evs) -> Evidence:
    return min(evs, key=lambda e: e.relative_margin)


# ==============================================================================================================
# sampling distributions: nodes and weights whose average is the exact expectation of a polynomial
# ==============================================================================================================
def _hermite_rule(q: int):
    """The rule of :func:`_hermite_rule_at` at the current working precision (cached per precision)."""
    return _hermite_rule_at(q, mpmath.mp.prec)


@functools.lru_cache(maxsize=32)
def _hermite_rule_at(q: int, prec: int):
    """Probabilists' Gauss-Hermite rule with q nodes: sum_i w_i p(t_i) = E p(Z), Z ~ N(0, 1), for deg p <= 2q - 1.

    Nodes are the roots of He_q (mpmath.polyroots at the working precision), weights q! / (q He_{q-1}(t))^2.
    """
    he = [[mpmath.mpf(1)], [mpmath.mpf(1), mpmath.mpf(0)]]  # coefficients, highest degree first
    for k in range(1, q):
        a = he[k] + [mpmath.mpf(0)]                     # x He_k
        b = [mpmath.mpf(0)] * 2 + [k * c for c in he[k - 1]]  # k He_{k-1}
        he.append([x - y for x, y in zip(a, b)])
    # mpmath >= 1.4 deprecates highest-degree-first coefficients (asc=True is the new order), but 1.3, which we
    # support, has no asc= keyword: keep the old order and silence the notice
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if q == 1:
            nodes = [mpmath.mpf(0)]
        else:
            nodes = sorted(mpmath.re(r) for r in mpmath.polyroots(he[q], maxsteps=200, extraprec=2 * mpmath.mp.prec))
        weights = [mpmath.factorial(q) / (q * mpmath.polyval(he[q - 1], t)) ** 2 for t in nodes]
    return nodes, weights


def _rho_nodes(rho: str, d: int, c, q: int = 4):
    """(points, weights) whose weighted sum is E_rho exactly for the polynomials used here.

    rho "gaussian": N(0, c^2 I_d), tensor Gauss-Hermite with q nodes per axis (exact to degree 2q - 1 per axis);
    rho "rademacher": uniform on {-c, c}^d, all 2^d vertices with weight 2^-d.
    """
    c = M.to_mpf(c)
    if rho == "gaussian":
        t, w = _hermite_rule(q)
    elif rho == "rademacher":
        t, w = [mpmath.mpf(-1), mpmath.mpf(1)], [mpmath.mpf(0.5)] * 2
    else:  # pragma: no cover - strategies draw from the two names
        raise ValueError(rho)
    pts, wts = [], []
    for idx in itertools.product(range(len(t)), repeat=d):
        pts.append([c * t[i] for i in idx])
        wt = mpmath.mpf(1)
        for i in idx:
            wt *= w[i]
        wts.append(wt)
    return pts, wts


def _egop(grad, pts, wts, d):
    acc = _zeros(d)
    for x, w in zip(pts, wts):
        _add_outer(acc, w, grad(x))
    return acc


# ==============================================================================================================
# objectives
# ==============================================================================================================
class Poly(NamedTuple):
    """f(x) = 1/2 x^T H x + b^T x + sum_k w3_k (a_k^T x)^3 / 3 + sum_k w4_k (c_k^T x)^4 / 4."""

    H: np.ndarray   # (d, d) symmetric
    b: np.ndarray   # (d,)
    A3: np.ndarray  # (k3, d) cubic directions
    w3: np.ndarray  # (k3,)
    A4: np.ndarray  # (k4, d) quartic directions ("coordinate": the identity, f = sum x_i^4 / 4)
    w4: np.ndarray  # (k4,)


def _poly_grad(P: Poly):
    H, b, A3, w3, A4, w4 = (_m(P.H), _v(P.b), _m(P.A3) if P.A3.size else [], _v(P.w3), _m(P.A4) if P.A4.size else [],
                            _v(P.w4))

    def grad(x):
        g = [hx + bi for hx, bi in zip(_matvec(H, x), b)]
        for a, w in zip(A3, w3):
            s = w * _dot(a, x) ** 2
            g = [gi + s * ai for gi, ai in zip(g, a)]
        for a, w in zip(A4, w4):
            s = w * _dot(a, x) ** 3
            g = [gi + s * ai for gi, ai in zip(g, a)]
        return g

    return grad


@st.composite
def polynomials(draw, d: int, *, quartic_kinds=("coordinate", "none", "random")):
    """Polynomials of degree <= 4 in d variables, pieces chosen simplest first (shrinks toward sum x_i^4 / 4)."""
    rng = np.random.default_rng(draw(_SEEDS))
    quad = draw(st.sampled_from(("none", "random")))
    cubic = draw(st.sampled_from(("none", "random")))
    quartic = draw(st.sampled_from(quartic_kinds))
    H = np.zeros((d, d))
    b = np.zeros(d)
    if quad == "random":
        X = rng.standard_normal((d, d))
        H = (X + X.T) / 2
        b = rng.standard_normal(d)
    k3 = draw(st.integers(1, 2)) if cubic == "random" else 0
    A3, w3 = rng.standard_normal((k3, d)), rng.standard_normal(k3)
    if quartic == "coordinate":
        A4, w4 = np.eye(d), np.ones(d)
    elif quartic == "random":
        k4 = draw(st.integers(1, 2))
        A4, w4 = rng.standard_normal((k4, d)), rng.standard_normal(k4)
    else:
        A4, w4 = np.zeros((0, d)), np.zeros(0)
    return Poly(H, b, A3, w3, A4, w4)


# Data-fitting objectives f(x) = l(A x) for the sample / chain-rule / trajectory claims.
OBJECTIVES = ("least_squares", "logistic", "log_sum_exp")


def _exp(z):
    return mpmath.exp(z)


def _loss(kind: str, z, b):
    """l(z) for z = A x (entries mpf or mpc). least squares 1/2 ||z - b||^2; logistic (1/n) sum log(1 + e^z) - b z
    (labels b in {0, 1}); log-sum-exp Eq. (7) [REC, recommended form] log sum exp((z - b)^2)."""
    n = len(z)
    if kind == "least_squares":
        return sum((zi - bi) ** 2 for zi, bi in zip(z, b)) / 2
    if kind == "logistic":
        return sum(mpmath.log(1 + _exp(zi)) - bi * zi for zi, bi in zip(z, b)) / n
    if kind == "log_sum_exp":
        r2 = [(zi - bi) ** 2 for zi, bi in zip(z, b)]
        mx = max(mpmath.re(t) for t in r2)
        return mx + mpmath.log(sum(_exp(t - mx) for t in r2))
    raise ValueError(kind)  # pragma: no cover


def _loss_grad(kind: str, z, b):
    """grad l(z), analytic."""
    n = len(z)
    if kind == "least_squares":
        return [zi - bi for zi, bi in zip(z, b)]
    if kind == "logistic":
        return [(1 / (1 + mpmath.exp(-zi)) - bi) / n for zi, bi in zip(z, b)]
    if kind == "log_sum_exp":
        r = [zi - bi for zi, bi in zip(z, b)]
        r2 = [t * t for t in r]
        mx = max(r2)
        e = [mpmath.exp(t - mx) for t in r2]
        s = mpmath.fsum(e)
        return [2 * ri * ei / s for ri, ei in zip(r, e)]
    raise ValueError(kind)  # pragma: no cover


def _objective(kind, A, b):
    """(f, grad f) of f(x) = l(A x), mp lists in and out."""
    A, b = _m(A), _v(b)

    def f(x):
        return _loss(kind, _matvec(A, x), b)

    def grad(x):
        return _rmatvec(A, _loss_grad(kind, _matvec(A, x), b))

    return f, grad


def _complex_step_grad(f, x, dps: int):
    """grad f(x) by the complex step: Im f(x + i h e_j) / h, h = 10^-dps (exact to O(h^2) for analytic f)."""
    h = mpmath.mpf(10) ** (-dps)
    out = []
    for j in range(len(x)):
        xc = [mpmath.mpc(t, h) if i == j else mpmath.mpc(t, 0) for i, t in enumerate(x)]
        out.append(mpmath.im(f(xc)) / h)
    return out


@st.composite
def data_objectives(draw, d: int, *, kinds=OBJECTIVES):
    """(kind, A (n x d) with ||A||_2 <= 1, targets b): least-squares targets, logistic labels in {0, 1}."""
    kind = draw(st.sampled_from(kinds))
    n = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(_SEEDS))
    A = rng.standard_normal((n, d))
    A = A / max(1.0, float(np.linalg.norm(A, 2)) * (1 + 1e-12))
    xs = rng.standard_normal(d)
    if kind == "logistic":
        b = (rng.random(n) < 1 / (1 + np.exp(-A @ xs))).astype(np.float64)
    else:
        b = A @ xs + 0.1 * rng.standard_normal(n)
    return kind, A, b


# ==============================================================================================================
# Lemma 14 and Corollary 15 (exact EGOP)
# ==============================================================================================================
class EquivarianceInstance(NamedTuple):
    rho: str            # "rademacher" (uniform on {-c, c}^d) or "gaussian" (N(0, c^2 I))
    c: float            # scale of rho: E[x x^T] = c^2 I for both
    f: Poly
    reflections: np.ndarray  # (k, d): V = H_1 ... H_k in O(d), formed in mp


@st.composite
def equivariance_instances(draw, rhos):
    rho = draw(st.sampled_from(rhos))
    d = draw(S.dims(1, MAX_D))
    c = draw(st.sampled_from((1.0, 0.5, 2.0)))
    f = draw(polynomials(d))
    return EquivarianceInstance(rho, c, f, _reflection_vectors(draw, d))


def check_lemma14(inst: EquivarianceInstance, *, dps: int):
    d = inst.f.H.shape[0]
    with mpmath.workdps(dps):
        grad = _poly_grad(inst.f)
        V = _householder_mp(inst.reflections, d)
        Vt = _T(V)
        pts, wts = _rho_nodes(inst.rho, d, inst.c)
        lhs = _egop(lambda y: _matvec(Vt, grad(_matvec(V, y))), pts, wts, d)  # EGOP(f o V), grad = V^T grad f(V y)
        rhs = _matmul(Vt, _matmul(_egop(grad, pts, wts, d), V))                 # V^T EGOP(f) V
        ev = E.identity(_mat(lhs), _mat(rhs), dps=dps, n=d,
                        detail={"d": d, "rho": inst.rho, "reflections": len(inst.reflections)})
    return ev


register(Claim(
    id="egop.lemma14_isotropic_reading",
    source=Source(PAPER, "Lemma 14, 'isotropic' read as mean 0, covariance c^2 I"),
    statement="For every f and every mean-zero rho with E[x x^T] = c^2 I, and every orthogonal V: "
              "EGOP_rho(f o V) = V^T EGOP_rho(f) V",
    strategy=equivariance_instances(("rademacher", "gaussian")),
    check=check_lemma14,
    expected=FAILS,
    twin="egop.lemma14_gaussian",
    note="errata 2: the proof needs V x ~ rho (rotation invariance), which a covariance condition does not give. "
         "Rademacher rho, f = sum x_i^4 / 4: EGOP(f) = c^6 I but EGOP(f o V) != c^6 I. The lemma holds for every "
         "quadratic f (EGOP = c^2 H^2 + b b^T needs only the covariance) and for rotation-invariant rho.",
))

register(Claim(
    id="egop.lemma14_gaussian",
    source=Source(PAPER, "Lemma 14 (rotation-invariant rho; notes Sec. 6 [REC], errata 2)"),
    statement="For rho = N(0, c^2 I_d), every polynomial f of degree <= 4 and every orthogonal V: "
              "EGOP_rho(f o V) = V^T EGOP_rho(f) V (exact expectations by Gauss-Hermite quadrature)",
    strategy=equivariance_instances(("gaussian",)),
    check=check_lemma14,
    note="Quadratics (least squares) and cubic/quartic terms; the EGOP is the exact Gaussian expectation, not a "
         "sample.",
))


class Cor15Instance(NamedTuple):
    c: float
    f: Poly


@st.composite
def cor15_instances(draw):
    d = draw(S.dims(1, MAX_D))
    return Cor15Instance(draw(st.sampled_from((1.0, 0.5, 2.0))),
                         draw(polynomials(d, quartic_kinds=("random", "coordinate", "none"))))


def check_cor15(inst: Cor15Instance, *, dps: int):
    d = inst.f.H.shape[0]
    with mpmath.workdps(dps):
        grad = _poly_grad(inst.f)
        pts, wts = _rho_nodes("gaussian", d, inst.c)
        w, Q = M.mp_eigsy(_mat(_egop(grad, pts, wts, d)))
        order = list(range(d))[::-1]  # eigenvalues in decreasing order, as the paper indexes them
        V = [[Q[i, j] for j in order] for i in range(d)]
        lam = [w[j] for j in order]
        Vt = _T(V)
        lhs = _egop(lambda y: _matvec(Vt, grad(_matvec(V, y))), pts, wts, d)   # EGOP(f o V)
        rhs = [[lam[i] if i == j else mpmath.mpf(0) for j in range(d)] for i in range(d)]
        # Eq. (2): lambda_i = E <grad f(x), v_i>^2 for each eigenpair
        eq2 = [mpmath.fsum(wt * _dot(grad(x), [V[r][i] for r in range(d)]) ** 2 for x, wt in zip(pts, wts))
               for i in range(d)]
        ev = E.identity(_mat(lhs + [eq2]), _mat(rhs + [lam]), dps=dps, n=d,
                        detail={"d": d, "lambda": [float(t) for t in lam]})
    return ev


register(Claim(
    id="egop.cor15_diagonal",
    source=Source(PAPER, "Cor. 15 and Eq. (2) (notes Sec. 2 [seed + moonlight], Sec. 6)"),
    statement="If EGOP_rho(f) = V Lambda V^T (rho = N(0, c^2 I)), then EGOP_rho(f o V) = Lambda, and "
              "lambda_i = E_rho <grad f(x), v_i>^2 for every eigenpair",
    strategy=cor15_instances(),
    check=check_cor15,
))


# ==============================================================================================================
# Lemma 14 for a finite sample, Eq. (4)
# ==============================================================================================================
class SampleInstance(NamedTuple):
    kind: str
    A: np.ndarray            # (n, d)
    b: np.ndarray            # (n,)
    X: np.ndarray            # (M, d) sample points x_k
    reflections: np.ndarray  # (k, d)


@st.composite
def sample_instances(draw):
    d = draw(S.dims(1, MAX_D_LINEAR))
    kind, A, b = draw(data_objectives(d))
    Mn = draw(st.integers(1, 6))
    X = np.random.default_rng(draw(_SEEDS)).standard_normal((Mn, d)) * draw(st.sampled_from((1.0, 0.5, 2.0)))
    return SampleInstance(kind, A, b, X, _reflection_vectors(draw, d))


def check_lemma14_sample(inst: SampleInstance, *, dps: int):
    d = inst.A.shape[1]
    with mpmath.workdps(dps):
        f, grad = _objective(inst.kind, inst.A, inst.b)
        V = _householder_mp(inst.reflections, d)
        Vt = _T(V)
        xs = [_v(x) for x in inst.X]
        w = mpmath.mpf(1) / len(xs)
        ftilde = lambda y: f(_matvec(V, y))  # noqa: E731 - f o V, differentiated by the complex step
        lhs = _egop(lambda y: _complex_step_grad(ftilde, y, dps), [_matvec(Vt, x) for x in xs], [w] * len(xs), d)
        rhs = _matmul(Vt, _matmul(_egop(grad, xs, [w] * len(xs), d), V))
        ev = E.identity(_mat(lhs), _mat(rhs), dps=dps, n=d, detail={"d": d, "M": len(xs), "objective": inst.kind})
    return ev


register(Claim(
    id="egop.lemma14_sample",
    source=Source(PAPER, "Lemma 14 / Alg. 1, empirical EGOP (notes Sec. 3)"),
    statement="For sample points x_1..x_M and y_k = V^T x_k (V orthogonal): (1/M) sum grad(f o V)(y_k) "
              "grad(f o V)(y_k)^T = V^T [(1/M) sum grad f(x_k) grad f(x_k)^T] V",
    strategy=sample_instances(),
    check=check_lemma14_sample,
    note="grad(f o V) by the complex step on f(V y), not by the chain rule; objectives least squares, logistic "
         "regression and log-sum-exp (Eq. 7, notes' recommended form).",
))


def check_eq4(inst: SampleInstance, *, dps: int):
    d = inst.A.shape[1]
    with mpmath.workdps(dps):
        f, _ = _objective(inst.kind, inst.A, inst.b)
        A, b = _m(inst.A), _v(inst.b)
        xs = [_v(x) for x in inst.X]
        w = mpmath.mpf(1) / len(xs)
        lhs = _egop(lambda x: _complex_step_grad(f, x, dps), xs, [w] * len(xs), d)  # EGOP of f, gradients by CS
        n = len(A)
        Smat = _egop(lambda x: _loss_grad(inst.kind, _matvec(A, x), b), xs, [w] * len(xs), n)  # E[grad l grad l^T]
        rhs = _matmul(_T(A), _matmul(Smat, A))
        ev = E.identity(_mat(lhs), _mat(rhs), dps=dps, n=d, detail={"d": d, "n": n, "objective": inst.kind})
    return ev


register(Claim(
    id="egop.eq4_chain_rule",
    source=Source(PAPER, "Eq. (4) = (24) (notes Sec. 8 [REC])"),
    statement="For f(x) = l(A x): EGOP_rho(f) = A^T E_rho[grad l(A x) grad l(A x)^T] A (rho: any, here the "
              "empirical measure of M Gaussian points)",
    strategy=sample_instances(),
    check=check_eq4,
    note="Left side from complex-step gradients of f itself; right side from l's analytic gradient.",
))


# ==============================================================================================================
# Lemma 10 (coordinate-wise smoothness), Lemma 12, Lemma 13
# ==============================================================================================================
class LogCosh(NamedTuple):
    """f(x) = 1/2 x^T Q x + sum_k w_k log cosh(a_k^T x); Hess f(x) = Q + sum_k w_k sech^2(a_k^T x) a_k a_k^T."""

    Q: np.ndarray  # (d, d) symmetric, nonzero
    A: np.ndarray  # (k, d)
    w: np.ndarray  # (k,) any sign


@st.composite
def logcosh_functions(draw, d: int):
    rng = np.random.default_rng(draw(_SEEDS))
    X = rng.standard_normal((d, d))
    k = draw(st.integers(0, 3))
    return LogCosh((X + X.T) / 2, rng.standard_normal((k, d)), rng.standard_normal(k) * 2)


def _logcosh_mp(fn: LogCosh):
    Q, A, w = _m(fn.Q), (_m(fn.A) if fn.A.size else []), _v(fn.w)

    def f(x):
        return _dot(x, _matvec(Q, x)) / 2 + mpmath.fsum(wk * mpmath.log(mpmath.cosh(_dot(a, x))) for a, wk in zip(A, w))

    def grad(x):
        g = _matvec(Q, x)
        for a, wk in zip(A, w):
            s = wk * mpmath.tanh(_dot(a, x))
            g = [gi + s * ai for gi, ai in zip(g, a)]
        return g

    def hess(x):
        H = [row[:] for row in Q]
        for a, wk in zip(A, w):
            _add_outer(H, wk * mpmath.sech(_dot(a, x)) ** 2, a)
        return H

    return f, grad, hess, Q, A, w


def _scaled_extreme(D0, B):
    """max(lambda_max(D0^{-1/2} B D0^{-1/2}), lambda_max(-D0^{-1/2} B D0^{-1/2})) for a positive diagonal D0."""
    d = len(B)
    r = [1 / mpmath.sqrt(t) for t in D0]
    C = [[r[i] * B[i][j] * r[j] for j in range(d)] for i in range(d)]
    ws = M.mp_eigvalsh(_mat(C))
    return max(ws[-1], -ws[0]), ws, C


class Lemma10IfInstance(NamedTuple):
    fn: LogCosh
    D0: np.ndarray   # (d,) positive shape of the constants L = tau (1 + slack) D0
    slack: float     # 0: the smallest such multiple (tight)
    x: np.ndarray
    y: np.ndarray


@st.composite
def lemma10_if_instances(draw):
    d = draw(S.dims(1, MAX_D))
    fn = draw(logcosh_functions(d))
    rng = np.random.default_rng(draw(_SEEDS))
    D0 = 2.0 ** rng.integers(-2, 3, size=d)
    x = rng.standard_normal(d)
    step = draw(st.sampled_from((1.0, 2.0**-4, 2.0**-12, 4.0)))
    return Lemma10IfInstance(fn, D0.astype(np.float64), draw(st.sampled_from((0.0, 2.0**-10, 1.0))),
                             x, x + step * rng.standard_normal(d))


def check_lemma10_if(inst: Lemma10IfInstance, *, dps: int):
    d = inst.x.shape[0]
    with mpmath.workdps(dps):
        f, grad, _, Q, A, w = _logcosh_mp(inst.fn)
        # Every Hessian lies between B_lo = Q + sum_{w<0} w a a^T and B_hi = Q + sum_{w>0} w a a^T (sech^2 in (0, 1]),
        # so D_L >= B_hi and D_L >= -B_lo give -D_L <= Hess f(x) <= D_L for all x: the lemma's hypothesis.
        B_hi, B_lo = [r[:] for r in Q], [r[:] for r in Q]
        for a, wk in zip(A, w):
            _add_outer(B_hi if wk > 0 else B_lo, wk, a)
        D0 = _v(inst.D0)
        t_hi, _, _ = _scaled_extreme(D0, B_hi)
        t_lo, _, _ = _scaled_extreme(D0, B_lo)
        tau = max(t_hi, t_lo, mpmath.mpf(0)) * (1 + M.to_mpf(inst.slack))
        L = [tau * t for t in D0]
        x, y = _v(inst.x), _v(inst.y)
        u = [yi - xi for yi, xi in zip(y, x)]
        rem = f(y) - f(x) - _dot(grad(x), u)
        bound = mpmath.fsum(Li * ui * ui for Li, ui in zip(L, u)) / 2
        ev = _scalar_ev(bound - abs(rem), bound + abs(rem), dps=dps, n=d,
                        detail={"d": d, "terms": len(A), "tau": float(tau)})
    return ev


register(Claim(
    id="egop.lemma10_if",
    source=Source(PAPER, "Lemma 10, 'if' (notes Sec. 1 and 6 [REC, high confidence])"),
    statement="If -D_L <= Hess f(x) <= D_L for all x, then |f(y) - f(x) - <grad f(x), y - x>| <= "
              "1/2 (y - x)^T D_L (y - x) for all x, y (Eq. 1)",
    strategy=lemma10_if_instances(),
    check=check_lemma10_if,
    note="f = quadratic + sum w_k log cosh(a_k^T x) (non-quadratic, Hessian bounded); D_L is the smallest "
         "multiple of a drawn positive diagonal meeting the hypothesis (slack 0: tight).",
))


class Lemma10OnlyIfInstance(NamedTuple):
    fn: LogCosh
    D0: np.ndarray  # (d,) positive
    shrink: float   # L = (1 - shrink) tau*(x) D0 just fails the Loewner bound at x
    x: np.ndarray


@st.composite
def lemma10_only_if_instances(draw):
    d = draw(S.dims(1, MAX_D))
    fn = draw(logcosh_functions(d))
    rng = np.random.default_rng(draw(_SEEDS))
    return Lemma10OnlyIfInstance(fn, (2.0 ** rng.integers(-2, 3, size=d)).astype(np.float64),
                                 draw(st.sampled_from((0.5, 2.0**-4, 2.0**-10))), rng.standard_normal(d))


def check_lemma10_only_if(inst: Lemma10OnlyIfInstance, *, dps: int):
    d = inst.x.shape[0]
    with mpmath.workdps(dps):
        f, grad, hess, *_ = _logcosh_mp(inst.fn)
        x = _v(inst.x)
        D0 = _v(inst.D0)
        tau, _, C = _scaled_extreme(D0, hess(x))
        L = [(1 - M.to_mpf(inst.shrink)) * tau * t for t in D0]
        # the violated direction: the extreme eigenvector u of D0^{-1/2} H D0^{-1/2}, v = D0^{-1/2} u
        wv, Qv = M.mp_eigsy(_mat(C))
        j = d - 1 if wv[-1] >= -wv[0] else 0
        v = [Qv[i, j] / mpmath.sqrt(D0[i]) for i in range(d)]
        vLv = mpmath.fsum(Li * vi * vi for Li, vi in zip(L, v))
        g = grad(x)
        found, best = None, None
        with mpmath.workdps(dps + 40):  # f(x + t v) - f(x) - t <g, v> is O(t^2): keep 40 guard digits
            for k in range(0, 60):
                t = mpmath.ldexp(1, -k)
                y = [xi + t * vi for xi, vi in zip(x, v)]
                rem = abs(f(y) - f(x) - t * _dot(g, v)) / t**2
                gap = rem - vLv / 2
                if best is None or gap > best:
                    best = gap
                if gap > 0:
                    found = k
                    break
        scale = vLv / 2 + abs(rem)
        # ok (the contrapositive holds on this instance) iff a y violating Eq. (1) was found
        margin = best if found is not None else -scale
        ev = _scalar_ev(margin, scale, dps=dps, n=d,
                        detail={"d": d, "t_exponent": found, "tau": float(tau), "shrink": inst.shrink})
    return ev


register(Claim(
    id="egop.lemma10_only_if",
    source=Source(PAPER, "Lemma 10, 'only if' (notes Sec. 1 and 6 [REC, high confidence])"),
    statement="If Eq. (1) holds with constants L, then -D_L <= Hess f(x) <= D_L at every x; checked as its "
              "contrapositive: where the Loewner bound fails at x, some y = x + t v violates Eq. (1)",
    strategy=lemma10_only_if_instances(),
    check=check_lemma10_only_if,
    note="L = (1 - shrink) tau*(x) D0 with tau*(x) the smallest multiple of D0 bounding Hess f(x); v the violated "
         "direction; t = 2^-k searched (the proof's t -> 0).",
))


class Lemma12Instance(NamedTuple):
    A: np.ndarray  # (n, n) PSD
    v: np.ndarray  # (n,)


@st.composite
def lemma12_instances(draw):
    n = draw(S.dims(1, 5))
    A = draw(S.psd_matrices(n, max_log10_cond=10))
    return Lemma12Instance(A, np.random.default_rng(draw(_SEEDS)).standard_normal(n))


def check_lemma12(inst: Lemma12Instance, *, dps: int):
    n = inst.A.shape[0]
    with mpmath.workdps(dps):
        A, v = _m(inst.A), _v(inst.v)
        Av = _matvec(A, v)
        lam = M.mp_lambda_max(_mat(A))
        lhs, rhs = _dot(Av, Av), lam * _dot(v, Av)
        ev = _scalar_ev(rhs - lhs, rhs + lhs, dps=dps, n=n, detail={"n": n, "kappa": E.cond(inst.A)})
    return ev


register(Claim(
    id="egop.lemma12",
    source=Source(PAPER, "Lemma 12 (notes Sec. 6 [REC])"),
    statement="For symmetric PSD A and every v: v^T A^2 v <= lambda_max(A) v^T A v",
    strategy=lemma12_instances(),
    check=check_lemma12,
))

register(Claim(
    id="egop.lemma13_sqrt_monotone",
    source=Source(PAPER, "Lemma 13, Eq. (10) (notes Sec. 6 [REC]; the printed formula was lost)"),
    statement="For PSD A, B: A <= B implies A^{1/2} <= B^{1/2}",
    strategy=_matrix_claims.loewner_heinz_instances((Fraction(1, 2),)),
    check=_matrix_claims.check_loewner_heinz,
    note="The p = 1/2 case of matrix.loewner_heinz (the same pairs: B, and A = B + D formed exactly in mp). The "
         "false p = 2 form is matrix.loewner_heinz_p2.",
))


# ==============================================================================================================
# Lemma 17 (Hessian quadratic form of the matrix-factorization objective, Eq. 18)
# ==============================================================================================================
class Lemma17Instance(NamedTuple):
    A: np.ndarray   # (N, m n): the linear map A acting on vec(X), X in R^{m x n} (row-major: vec(X) = X.ravel())
    y: np.ndarray   # (N,) measurements
    U: np.ndarray   # (m, r)
    W: np.ndarray   # (n, r)
    dU: np.ndarray  # (m, r): Delta_U
    dW: np.ndarray  # (n, r): Delta_W


@st.composite
def lemma17_instances(draw):
    m, n, r, N = (draw(S.dims(1, 3)) for _ in range(4))
    rng = np.random.default_rng(draw(_SEEDS))
    # measurements are sometimes exact (y = A(M_star), the residual term then vanishes at U W^T = M_star only)
    A = rng.standard_normal((N, m * n))
    return Lemma17Instance(A, rng.standard_normal(N), *(rng.standard_normal(s) for s in
                                                        ((m, r), (n, r), (m, r), (n, r))))


def _fact_objective(inst: Lemma17Instance):
    """f(U, W) = 1/2 ||A(U W^T) - y||^2 (Eq. 18 with the notes' 1/2), evaluated in mp on mp matrices."""
    A, y = _m(inst.A), _v(inst.y)

    def f(U, W):
        res = _matvec(A, [t for row in _matmul(U, _T(W)) for t in row])
        return _dot([a - b for a, b in zip(res, y)], [a - b for a, b in zip(res, y)]) / 2

    return f


def check_lemma17(inst: Lemma17Instance, *, dps: int):
    m, r = inst.U.shape
    n = inst.W.shape[0]
    with mpmath.workdps(dps):
        A, y = _m(inst.A), _v(inst.y)
        U, W, dU, dW = _m(inst.U), _m(inst.W), _m(inst.dU), _m(inst.dW)
        f = _fact_objective(inst)

        def along(t):
            return f([[u + t * d for u, d in zip(ru, rd)] for ru, rd in zip(U, dU)],
                     [[w + t * d for w, d in zip(rw, rd)] for rw, rd in zip(W, dW)])

        # t -> f(theta + t Delta) is a quartic polynomial, and the 5-point stencil (-1, 16, -30, 16, -1) / 12 is
        # exact for polynomials of degree <= 5: the second derivative from five values of f, no formula of f''
        oracle = (-along(2) + 16 * along(1) - 30 * along(0) + 16 * along(-1) - along(-2)) / 12

        def amap(X):
            return _matvec(A, [t for row in X for t in row])

        lin = amap([[a + b for a, b in zip(r1, r2)] for r1, r2 in zip(_matmul(dU, _T(W)), _matmul(U, _T(dW)))])
        resid = [a - b for a, b in zip(amap(_matmul(U, _T(W))), y)]
        printed = _dot(lin, lin) + 2 * _dot(resid, amap(_matmul(dU, _T(dW))))
        # |f| and |printed| bound the size of the values the stencil cancels (weights sum to 64/12 in modulus)
        scale = abs(printed) + abs(oracle) + 6 * max(abs(along(t)) for t in (-2, -1, 0, 1, 2))
        ev = _scalar_ev(-abs(printed - oracle), scale, dps=dps, n=m * n * r,
                        detail={"m": m, "n": n, "r": r, "N": inst.A.shape[0]})
    return ev


register(Claim(
    id="egop.lemma17",
    source=Source(PAPER, "Lemma 17 (notes Sec. 7 [REC]; the printed form was lost)"),
    statement="For f(U, W) = 1/2 ||A(U W^T) - y||^2 (Eq. 18) and every direction Delta = (Delta_U, Delta_W): "
              "Hess f[Delta, Delta] = ||A(Delta_U W^T + U Delta_W^T)||^2 + 2 <A(U W^T) - y, A(Delta_U Delta_W^T)>",
    strategy=lemma17_instances(),
    check=check_lemma17,
    note="Identity of two scalars. The oracle is d^2/dt^2 f(theta + t Delta) at 0 from five values of f (exact "
         "stencil for a quartic in t); A is a general N x mn matrix on row-major vec(X). Without the 1/2 in (18) "
         "both sides double.",
))


# ==============================================================================================================
# Lemmas 18 and 19 (natural data induces decay)
# ==============================================================================================================
def _svd_matrix(draw, n, d, *, max_log10_cond=8, kinds=("geometric", "clustered", "random")):
    """U diag(sigma) W^T with orthogonal U, W (float64), sigma^2 drawn from S.spectra (decay, clusters)."""
    k = min(n, d)
    lam = draw(S.spectra(k, max_log10_cond=max_log10_cond, kinds=kinds))[::-1]
    U = draw(S.orthogonal(n, min_reflections=n))
    W = draw(S.orthogonal(d, min_reflections=d))
    Sig = np.zeros((n, d))
    Sig[np.arange(k), np.arange(k)] = np.sqrt(lam)
    return U @ Sig @ W.T


class Lemma18Instance(NamedTuple):
    A: np.ndarray  # (d, d) nonsingular
    S: np.ndarray  # (d, d) PD: E[grad l(A x) grad l(A x)^T]


@st.composite
def lemma18_instances(draw):
    d = draw(S.dims(1, 5))
    return Lemma18Instance(_svd_matrix(draw, d, d), draw(S.spd_matrices(d, max_log10_cond=6)))


def check_lemma18(inst: Lemma18Instance, *, dps: int):
    d = inst.A.shape[0]
    with mpmath.workdps(dps):
        A, Sm = _m(inst.A), _m(inst.S)
        egop = _matmul(_T(A), _matmul(Sm, A))                     # Eq. (4)
        lam = M.mp_eigvalsh(_mat(egop))[::-1]                       # decreasing
        sig2 = M.mp_eigvalsh(_mat(_matmul(_T(A), A)))[::-1]         # sigma_k(A)^2, decreasing
        ws = M.mp_eigvalsh(_mat(Sm))
        kappa = ws[-1] / ws[0]
        evs = [_scalar_ev(kappa * sig2[k] / sig2[0] * lam[0] - lam[k], lam[0] * (1 + kappa), dps=dps, n=d,
                          detail={"d": d, "k": k + 1, "kappa_S": float(kappa)}) for k in range(d)]
    return _worst(evs)


register(Claim(
    id="egop.lemma18_decay",
    source=Source(PAPER, "Lemma 18 (notes Sec. 8 [REC]; the printed bound was lost)"),
    statement="For f(x) = l(A x), A nonsingular, S = E[grad l(Ax) grad l(Ax)^T] PD, kappa = lambda_max(S)/"
              "lambda_min(S): lambda_k(EGOP)/lambda_1(EGOP) <= kappa sigma_k(A)^2 / sigma_1(A)^2 for every k",
    strategy=lemma18_instances(),
    check=check_lemma18,
    note="The lemma is linear algebra once Eq. (4) gives EGOP = A^T S A (Ostrowski); S is drawn PD directly.",
))


class Lemma19Instance(NamedTuple):
    A: np.ndarray  # (n, d)
    b: np.ndarray  # (n,) = A x_star + noise


@st.composite
def lemma19_instances(draw, max_d=MAX_D_LINEAR):
    n = draw(S.dims(1, 4))
    d = draw(S.dims(1, max_d))
    A = _svd_matrix(draw, n, d, kinds=("geometric", "clustered", "random", "rank_deficient"))
    rng = np.random.default_rng(draw(_SEEDS))
    noise = draw(st.sampled_from((0.0, 0.1, 1.0)))
    return Lemma19Instance(A, A @ rng.standard_normal(d) + noise * rng.standard_normal(n))


def check_lemma19_formula(inst: Lemma19Instance, *, dps: int):
    n, d = inst.A.shape
    with mpmath.workdps(dps):
        f, _ = _objective("least_squares", inst.A, inst.b)
        pts, wts = _rho_nodes("gaussian", d, 1.0, q=2)  # degree-2 integrand: 2-point Gauss-Hermite is exact
        lhs = _egop(lambda x: _complex_step_grad(f, x, dps), pts, wts, d)
        A, b = _m(inst.A), _v(inst.b)
        AtA = _matmul(_T(A), A)
        Atb = _rmatvec(A, b)
        rhs = _matmul(AtA, AtA)
        _add_outer(rhs, mpmath.mpf(1), Atb)
        ev = E.identity(_mat(lhs), _mat(rhs), dps=dps, n=d, detail={"n": n, "d": d})
    return ev


register(Claim(
    id="egop.lemma19_formula",
    source=Source(PAPER, "Lemma 19, proof (notes Sec. 8 [REC]: f = 1/2 ||Ax - b||^2)"),
    statement="For f(x) = 1/2 ||A x - b||^2 and rho = N(0, I_d): EGOP_rho(f) = (A^T A)^2 + A^T b b^T A",
    strategy=lemma19_instances(),
    check=check_lemma19_formula,
    note="Exact Gaussian expectation (2-point Gauss-Hermite per axis) of complex-step gradients. Without the "
         "1/2 every term is multiplied by 4 (notes).",
))


def check_lemma19_interlacing(inst: Lemma19Instance, *, dps: int):
    n, d = inst.A.shape
    with mpmath.workdps(dps):
        A, b = _m(inst.A), _v(inst.b)
        AtA = _matmul(_T(A), A)
        Atb = _rmatvec(A, b)
        egop = _matmul(AtA, AtA)
        _add_outer(egop, mpmath.mpf(1), Atb)
        lam = M.mp_eigvalsh(_mat(egop))[::-1]
        s4 = [max(t, mpmath.mpf(0)) ** 2 for t in M.mp_eigvalsh(_mat(AtA))[::-1]]  # sigma_i(A)^4, decreasing
        z2 = _dot(Atb, Atb)
        scale = s4[0] + z2
        evs = [_scalar_ev(lam[0] - s4[0], scale, dps=dps, n=d, detail={"i": 1, "side": "lower"}),
               _scalar_ev(s4[0] + z2 - lam[0], scale, dps=dps, n=d, detail={"i": 1, "side": "upper"})]
        for i in range(1, d):
            evs.append(_scalar_ev(lam[i] - s4[i], scale, dps=dps, n=d, detail={"i": i + 1, "side": "lower"}))
            evs.append(_scalar_ev(s4[i - 1] - lam[i], scale, dps=dps, n=d, detail={"i": i + 1, "side": "upper"}))
    w = _worst(evs)
    return Evidence(w.margin, w.scale, w.tol, dict(w.detail, n=n, d=d))


register(Claim(
    id="egop.lemma19_interlacing",
    source=Source(PAPER, "Lemma 19, Eq. (25) (notes Sec. 8 [REC]; Golub 1973)"),
    statement="For f(x) = 1/2 ||A x - b||^2, rho = N(0, I): sigma_i(A)^4 <= lambda_i <= sigma_{i-1}(A)^4 for "
              "i >= 2 and sigma_1^4 <= lambda_1 <= sigma_1^4 + ||A^T b||^2 (sigma_i = 0 for i > rank A)",
    strategy=lemma19_instances(),
    check=check_lemma19_interlacing,
    note="Clustered and rank-deficient singular values make the interlacing tight.",
))


# ==============================================================================================================
# Lemma 20 (Kronecker-structured orthogonal matrices)
# ==============================================================================================================
class Lemma20iInstance(NamedTuple):
    U_reflections: np.ndarray  # (k, m): U in O(m)
    W_reflections: np.ndarray  # (l, n): W in O(n)
    X: np.ndarray              # (m, n)


@st.composite
def lemma20_i_instances(draw):
    m, n = draw(S.shapes(max_dim=3))
    rng = np.random.default_rng(draw(_SEEDS))
    return Lemma20iInstance(_reflection_vectors(draw, m, 0), _reflection_vectors(draw, n, 0),
                            rng.standard_normal((m, n)))


def check_lemma20_i(inst: Lemma20iInstance, *, dps: int):
    m, n = inst.X.shape
    with mpmath.workdps(dps):
        U = _mat(_householder_mp(inst.U_reflections, m))
        W = _mat(_householder_mp(inst.W_reflections, n))
        X = M.to_mp(inst.X)
        V = M.mp_kron(W.T, U)                      # column-major vec: vec(U X W) = (W^T kron U) vec X
        lhs1 = M.mp_unvec(V * M.mp_vec(X), m, n)
        rhs1 = U * X * W
        Vr = M.mp_kron(U, W.T)                     # row-major flatten (errata 15): flat(U X W) = (U kron W^T) flat X
        flat = mpmath.matrix([[X[i, j]] for i in range(m) for j in range(n)])
        lhs2 = Vr * flat
        rhs2 = mpmath.matrix([[rhs1[i, j]] for i in range(m) for j in range(n)])
        orth = V.T * V
        # the three identities in one comparison: mat(V vec X) = U X W, the row-major form, and V^T V = I
        rows_l = ([[lhs1[i, j] for j in range(n)] for i in range(m)] + [[lhs2[i, 0]] for i in range(m * n)]
                  + [[orth[i, j] for j in range(m * n)] for i in range(m * n)])
        rows_r = ([[rhs1[i, j] for j in range(n)] for i in range(m)] + [[rhs2[i, 0]] for i in range(m * n)]
                  + [[mpmath.mpf(int(i == j)) for j in range(m * n)] for i in range(m * n)])
        diff = mpmath.sqrt(mpmath.fsum((a - c) ** 2 for ra, rc in zip(rows_l, rows_r) for a, c in zip(ra, rc)))
        scale = (mpmath.sqrt(mpmath.fsum(a**2 for ra in rows_l for a in ra))
                 + mpmath.sqrt(mpmath.fsum(c**2 for rc in rows_r for c in rc)))
        ev = Evidence(-float(diff), float(scale), M.mp_tolerance(dps, m * n), {"m": m, "n": n})
    return ev


register(Claim(
    id="egop.lemma20_i",
    source=Source(PAPER, "Lemma 20 (i) (notes Sec. 9 [REC])"),
    statement="For U in O(m), W in O(n): V = W^T kron U is orthogonal and mat(V vec X) = U X W for all X "
              "(column-major vec), so f(mat(V vec X)) = f(U X W) for every f; row-major: (U kron W^T) flat X",
    strategy=lemma20_i_instances(),
    check=check_lemma20_i,
))


class Lemma20iiInstance(NamedTuple):
    m: int
    n: int
    witness: str                 # "printed" (first column 1/sqrt(mn), second [1; -1]/sqrt(mn)) or "random"
    reflections: np.ndarray      # (k, mn): the random witness (used when mn is odd)


def _printed_witness(m: int, n: int):
    """The proof's V in O(mn): first column 1/sqrt(mn), second [1_{mn/2}; -1_{mn/2}]/sqrt(mn), completed by
    Gram-Schmidt on e_1, e_2, ... at the working precision."""
    N = m * n
    s = 1 / mpmath.sqrt(N)
    cols = [[s] * N, [s if i < N // 2 else -s for i in range(N)]]
    for k in range(N):
        if len(cols) == N:
            break
        v = [mpmath.mpf(1) if i == k else mpmath.mpf(0) for i in range(N)]
        for c in cols:
            p = _dot(c, v)
            v = [vi - p * ci for vi, ci in zip(v, c)]
        for c in cols:  # second pass: orthogonal to the working precision
            p = _dot(c, v)
            v = [vi - p * ci for vi, ci in zip(v, c)]
        nv = mpmath.sqrt(_dot(v, v))
        if nv > mpmath.mpf(10) ** (-mpmath.mp.dps // 2):
            cols.append([vi / nv for vi in v])
    return [[cols[j][i] for j in range(N)] for i in range(N)]


def _kron_defect(V, m: int, n: int):
    """sigma_2(R(V))^2 / ||R(V)||_F^2 for the Van Loan-Pitsianis rearrangement R(V) (rows vec(V_ij)^T over the
    m x m blocks V_ij): 0 iff V = B kron C with B n x n, C m x m, i.e. iff V is Kronecker-structured."""
    rows = []
    for bj in range(n):
        for bi in range(n):
            rows.append([V[bi * m + r][bj * m + c] for c in range(m) for r in range(m)])
    G = [[_dot(a, b) for b in rows] for a in rows]  # R R^T (n^2 x n^2)
    w = M.mp_eigvalsh(_mat(G))[::-1]
    tot = mpmath.fsum(w)
    s2 = w[1] if len(w) > 1 else mpmath.mpf(0)
    return max(s2, mpmath.mpf(0)) / tot


@st.composite
def lemma20_ii_instances(draw, min_dim: int, even_only: bool):
    m, n = draw(S.shapes(max_dim=3, min_dim=min_dim))
    if even_only and (m * n) % 2:
        n = n + 1 if n < 3 else n - 1  # mn even: keeps m, n >= min_dim (min_dim <= 2)
    witness = "printed" if (m * n) % 2 == 0 else "random"
    rng = np.random.default_rng(draw(_SEEDS))
    return Lemma20iiInstance(m, n, witness, rng.standard_normal((draw(st.integers(1, 2)), m * n)))


def check_lemma20_ii(inst: Lemma20iiInstance, *, dps: int):
    m, n = inst.m, inst.n
    with mpmath.workdps(dps):
        V = _printed_witness(m, n) if inst.witness == "printed" else _householder_mp(inst.reflections, m * n)
        defect = _kron_defect(V, m, n)
        tol = M.mp_tolerance(dps, m * n)
        # "V is not Kronecker" is the strict inequality defect > 0: a defect at rounding level reads as failing
        ev = Evidence(float(defect) - 2 * tol, 1.0, tol, {"m": m, "n": n, "witness": inst.witness,
                                                         "defect": float(defect)})
    return ev


register(Claim(
    id="egop.lemma20_ii_as_printed",
    source=Source(PAPER, "Lemma 20 (ii) with no condition on m, n (notes Sec. 9 [REC], errata 26)"),
    statement="For all m, n >= 1 with mn even (where the construction is defined), the V in O(mn) with first "
              "column 1/sqrt(mn) and second column [1_{mn/2}; -1_{mn/2}]/sqrt(mn) is not of the form W^T kron U, "
              "so the Kronecker-structured orthogonal matrices are strictly fewer",
    strategy=lemma20_ii_instances(1, True),
    check=check_lemma20_ii,
    expected=FAILS,
    twin="egop.lemma20_ii",
    note="errata 26: with m = 1 or n = 1 every orthogonal V is W^T kron U (one factor is +-1), so no witness "
         "exists; the construction also needs mn even.",
))

register(Claim(
    id="egop.lemma20_ii",
    source=Source(PAPER, "Lemma 20 (ii), corrected hypotheses m, n >= 2 and mn even (errata 26)"),
    statement="For m, n >= 2: with mn even, the V in O(mn) with first column 1/sqrt(mn) and second column "
              "[1_{mn/2}; -1_{mn/2}]/sqrt(mn) is not of the form W^T kron U; with mn odd (no such V), a generic "
              "product of reflections is not either",
    strategy=lemma20_ii_instances(2, False),
    check=check_lemma20_ii,
))


# ==============================================================================================================
# optimizer trajectories: GD is equivariant, Adagrad and Adam are not
# ==============================================================================================================
METHODS_EQUIVARIANT = ("gd", "momentum", "nesterov")
ADAGRAD_VARIANTS = ("adagrad_pytorch", "adagrad_optax")  # the paper's textbook form (v_0 = 0) first


class TrajectoryInstance(NamedTuple):
    method: str
    kind: str
    A: np.ndarray
    b: np.ndarray
    x0: np.ndarray
    lr: float
    steps: int
    rotation: str        # "householder" (reflections below) or "signed_permutation" (V given exactly)
    V_data: np.ndarray   # (k, d) reflection vectors, or the (d, d) signed permutation matrix


def _mp_run(method: str, grad, x0, lr, steps: int):
    """Iterates x_1..x_steps of ``method`` in mp (formulas independent of krad_ref.adagrad).

    gd: x <- x - lr g. momentum / nesterov: PyTorch SGD, mu = 0.9 (b_1 = g, b = mu b + g; direction b, or
    g + mu b). adagrad_optax: v_0 = 0.1, v += g^2, x <- x - lr g / sqrt(v + 1e-7) (errata 30). adagrad_pytorch:
    v_0 = 0, x <- x - lr g / (sqrt(v) + 1e-10). adam: b1 = 0.9, b2 = 0.999, eps = 1e-8 after bias correction.
    """
    d = len(x0)
    x = list(x0)
    lr = M.to_mpf(lr)
    mu = M.to_mpf(0.9)
    buf = None
    v = [M.to_mpf(0.1) if method == "adagrad_optax" else mpmath.mpf(0)] * d
    m1 = [mpmath.mpf(0)] * d
    b1, b2, eps_adam = M.to_mpf(0.9), M.to_mpf(0.999), M.to_mpf(1e-8)
    out = []
    for t in range(1, steps + 1):
        g = grad(x)
        if method == "gd":
            step = g
        elif method in ("momentum", "nesterov"):
            buf = list(g) if buf is None else [mu * bi + gi for bi, gi in zip(buf, g)]
            step = buf if method == "momentum" else [gi + mu * bi for gi, bi in zip(g, buf)]
        elif method == "adagrad_optax":
            v = [vi + gi * gi for vi, gi in zip(v, g)]
            step = [gi / mpmath.sqrt(vi + M.to_mpf(1e-7)) for gi, vi in zip(g, v)]
        elif method == "adagrad_pytorch":
            v = [vi + gi * gi for vi, gi in zip(v, g)]
            step = [gi / (mpmath.sqrt(vi) + M.to_mpf(1e-10)) for gi, vi in zip(g, v)]
        elif method == "adam":
            m1 = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m1, g)]
            v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g)]
            c1, c2 = 1 - b1**t, 1 - b2**t
            step = [(mi / c1) / (mpmath.sqrt(vi / c2) + eps_adam) for mi, vi in zip(m1, v)]
        else:  # pragma: no cover
            raise ValueError(method)
        x = [xi - lr * si for xi, si in zip(x, step)]
        out.append(x)
    return out


@st.composite
def trajectory_instances(draw, methods, rotation: str):
    method = draw(st.sampled_from(methods))
    d = draw(S.dims(1, MAX_D_LINEAR) if rotation == "householder" else S.dims(1, MAX_D_LINEAR))
    kind, A, b = draw(data_objectives(d))
    rng = np.random.default_rng(draw(_SEEDS))
    x0 = rng.standard_normal(d)
    lr = draw(st.sampled_from((0.125, 0.5, 0.03125)))
    steps = draw(st.integers(1, MAX_STEPS))
    if rotation == "householder":
        V_data = _reflection_vectors(draw, d)
    else:
        perm = draw(st.permutations(list(range(d))))
        signs = draw(st.lists(st.sampled_from((1.0, -1.0)), min_size=d, max_size=d))
        V_data = np.zeros((d, d))
        V_data[np.asarray(perm), np.arange(d)] = signs
    return TrajectoryInstance(method, kind, A, b, x0, lr, steps, rotation, V_data)


def check_trajectory(inst: TrajectoryInstance, *, dps: int):
    d = inst.x0.shape[0]
    with mpmath.workdps(dps):
        _, grad = _objective(inst.kind, inst.A, inst.b)
        V = _householder_mp(inst.V_data, d) if inst.rotation == "householder" else _m(inst.V_data)
        Vt = _T(V)
        x0 = _v(inst.x0)
        xs = _mp_run(inst.method, grad, x0, inst.lr, inst.steps)
        # the reparameterized run: f~(y) = f(V y), grad f~(y) = V^T grad f(V y), y_0 = V^T x_0
        ys = _mp_run(inst.method, lambda y: _matvec(Vt, grad(_matvec(V, y))), _matvec(Vt, x0), inst.lr, inst.steps)
        mapped = [_matvec(V, y) for y in ys]
        ev = E.identity(_mat(mapped), _mat(xs), dps=dps, n=d,
                        detail={"d": d, "method": inst.method, "objective": inst.kind, "steps": inst.steps})
    return ev


_TRAJ_SOURCE = "Sec. 1 / Sec. 6 (notes Sec. 3: 'GD and momentum-GD iterates are identical')"

register(Claim(
    id="egop.gd_equivariant",
    source=Source(PAPER, _TRAJ_SOURCE),
    statement="GD, heavy-ball and Nesterov momentum run on f o V from y_0 = V^T x_0 satisfy V y_k = x_k for every "
              "orthogonal V and every k (equivariance)",
    strategy=trajectory_instances(METHODS_EQUIVARIANT, "householder"),
    check=check_trajectory,
))

register(Claim(
    id="egop.adagrad_equivariant",
    source=Source(PAPER, _TRAJ_SOURCE + ", negated: 'Adagrad is not rotationally equivariant'"),
    statement="Diagonal Adagrad (Optax or PyTorch eps placement) run on f o V from V^T x_0 satisfies V y_k = x_k "
              "for every orthogonal V",
    strategy=trajectory_instances(ADAGRAD_VARIANTS, "householder"),
    check=check_trajectory,
    expected=FAILS,
    twin="egop.adagrad_signed_permutation",
    note="The paper's premise: coordinate-wise learning rates are not rotation equivariant. The counterexample "
         "is the trajectory difference.",
))

register(Claim(
    id="egop.adagrad_signed_permutation",
    source=Source(PAPER, _TRAJ_SOURCE + "; corrected twin: coordinate permutations and sign flips"),
    statement="Diagonal Adagrad run on f o P from P^T x_0 satisfies P y_k = x_k for every signed permutation P",
    strategy=trajectory_instances(ADAGRAD_VARIANTS, "signed_permutation"),
    check=check_trajectory,
))

register(Claim(
    id="egop.adam_equivariant",
    source=Source(PAPER, _TRAJ_SOURCE + ", negated: 'Adam is not rotationally equivariant'"),
    statement="Adam run on f o V from V^T x_0 satisfies V y_k = x_k for every orthogonal V",
    strategy=trajectory_instances(("adam",), "householder"),
    check=check_trajectory,
    expected=FAILS,
    twin="egop.adam_signed_permutation",
))

register(Claim(
    id="egop.adam_signed_permutation",
    source=Source(PAPER, _TRAJ_SOURCE + "; corrected twin: coordinate permutations and sign flips"),
    statement="Adam run on f o P from P^T x_0 satisfies P y_k = x_k for every signed permutation P",
    strategy=trajectory_instances(("adam",), "signed_permutation"),
    check=check_trajectory,
))
