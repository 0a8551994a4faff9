"""The mp twins (proofs_check.twins): against closed forms, and krad_ref's float updates against them.

Two groups:

* Twins against closed forms that need no krad_ref algorithm code: errata 3 (rank-one KrAD step), errata 4
  (KrADagrad* with m = 1, Shampoo on vectors = full-matrix AdaGrad, but not on 1 x n matrices), G = 0, the
  alternating scheme holding the other factor, and a hand-written mpmath step. Tolerances here are mp ones:
  ``mp.mp_tolerance(dps, n)`` = n 10^-(dps // 2), since both sides are exact up to dps-digit rounding.

* krad_ref's float64 and float32 updates along multi-step trajectories against their twins, fed the very same
  float gradients and starting from the same (exactly representable) initial state. The stated tolerance is

      tol = C * N * u(dtype) * k * cond,   C = 16,

  N the largest factor order (the length of the inner products in every Gram, product and eigendecomposition),
  k the step index (errors of the recursive factor updates accumulate at most linearly over k steps), and
  cond the largest condition number of any statistic the step has used (float64 eigenvalues of the twin's
  factors; for inverse roots S^{-1/e} the relative condition number is kappa/e <= kappa, for positive roots
  L^{e} it is e kappa^{1 - e} <= kappa: Higham, Functions of Matrices, Sec. 3.1 / mp.tolerance's model). The
  constant C covers the handful of rounded operations each entry sees per step (Gram, t, L A L, subtraction,
  eigh, the power, the mode products).
"""
from __future__ import annotations

import math
import zlib
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from proofs_check import mp as M
from proofs_check import twins as T

DPS = 50
C_TOL = 16.0


def _seed(*parts) -> int:
    """A seed stable across processes (``hash`` of a str is salted per process)."""
    return zlib.crc32(repr(parts).encode())


def _mp_tol(n: int) -> float:
    return M.mp_tolerance(DPS, n)


def _grads(rng, shape, k, *, scale=1.0, dtype=np.float64):
    """k gradients of ``shape`` with ||G_(0)||_2 = scale (unit ball of the KrADagrad paper), cast to dtype."""
    out = []
    for _ in range(k):
        G = rng.standard_normal(shape)
        nrm = np.linalg.norm(G.reshape(shape[0], -1), 2) if G.ndim >= 2 else np.linalg.norm(G)
        out.append((G * (scale * rng.uniform(0.3, 1.0) / nrm)).astype(dtype))
    return out


def _exact_rank_one(rng, m, n):
    """a b^T with 12-bit dyadic a, b: exactly rank one in float64 (every product a_i b_j is exact)."""
    a = np.ldexp(rng.integers(-2**11, 2**11, m).astype(np.float64), -11)
    b = np.ldexp(rng.integers(-2**11, 2**11, n).astype(np.float64), -11)
    a[0], b[0] = 0.75, -0.5  # never zero
    return np.outer(a, b)


def _spd(rng, d, log10_cond=2.0):
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    lam = 10.0 ** (-log10_cond * np.linspace(0, 1, d))
    A = (Q * lam) @ Q.T
    return (A + A.T) / 2


def _close(X, Y, n):
    """||X - Y||_F <= mp_tolerance * (||X||_F + ||Y||_F) for two mp values (mpmath.matrix or object arrays)."""
    with M.workdps(DPS):
        a = T._rows_of(X)
        b = T._rows_of(Y)
        num = mpmath.sqrt(mpmath.fsum((u - v for u, v in zip(a, b)), squared=True))
        den = mpmath.sqrt(mpmath.fsum(a, squared=True)) + mpmath.sqrt(mpmath.fsum(b, squared=True))
        return float(num) <= _mp_tol(n) * float(den), float(num / den) if den else float(num)


# ==============================================================================================================
# twins against closed forms
# ==============================================================================================================
@pytest.mark.parametrize("rule", T.T_RULES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (3, 1), (2, 3), (4, 2)])
def test_rank_one_step_closed_form_errata_3(rule, shape):
    # errata 3: for G = a b^T and t > tau = tr(L G R G^T): L_k^{-1} = L^{-1} + G R G^T / (t - tau)
    rng = np.random.default_rng(_seed(rule, shape))
    m, n = shape
    L, R, G = _spd(rng, m, 3), _spd(rng, n, 3), _exact_rank_one(rng, m, n)
    Lk, t = T.krad_update(L, G, R, t_rule=rule, dps=DPS)
    with M.workdps(DPS):
        Lm, Rm, Gm = M.to_mp(L), M.to_mp(R), M.to_mp(G)
        A = Gm * Rm * Gm.T
        tau = M.mp_trace(Lm * A)
        assert t > tau
        ok, err = _close(mpmath.inverse(Lk), mpmath.inverse(Lm) + A / (t - tau), m)
    assert ok, f"rank-one closed form: rel err {err:.3g} [{rule} {shape}]"


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (3, 2)])
def test_trace_rule_rank_one_is_sherman_morrison(shape):
    # t = 1 + tau (the trace rule on a rank-one G) gives the exact inverse update (L^{-1} + G R G^T)^{-1}
    rng = np.random.default_rng(7)
    m, n = shape
    L, R, G = _spd(rng, m), _spd(rng, n), _exact_rank_one(rng, m, n)
    Lk, _ = T.krad_update(L, G, R, t_rule="trace", dps=DPS)
    with M.workdps(DPS):
        Lm, Gm = M.to_mp(L), M.to_mp(G)
        exact = mpmath.inverse(mpmath.inverse(Lm) + Gm * M.to_mp(R) * Gm.T)
        ok, err = _close(Lk, exact, m)
    assert ok, err


@pytest.mark.parametrize("rule", T.T_RULES)
@pytest.mark.parametrize("n", [1, 2, 4])
def test_star_m_equals_1_closed_form_errata_4(rule, n):
    # errata 4: KrADagrad* with m = 1: L_k = 1 / (1/L_0 + sum ||g_i||^2) exactly (every t-rule agrees for 1 x 1)
    rng = np.random.default_rng(n)
    grads = _grads(rng, (1, n), 5)
    L0 = np.array([[2.5]])
    recs = T.twin_trajectory("kradagrad_star", None, grads, dps=DPS, init=(L0, np.eye(n)), t_rule=rule,
                             roots=False)
    with M.workdps(DPS):
        acc = 1 / M.to_mpf(2.5)
        for rec, g in zip(recs, grads):
            acc += M.mp_norm_fro(g) ** 2
            ok, err = _close(rec["L"], mpmath.matrix([[1 / acc]]), 1)
            assert ok, f"step {rec['count']}: rel err {err:.3g}"


@pytest.mark.parametrize("rule", T.T_RULES)
def test_star_n_equals_1_closed_form_errata_4(rule):
    # the transpose: n = 1 gives R_k = 1 / (1/R_0 + sum ||g_i||^2)
    rng = np.random.default_rng(3)
    grads = _grads(rng, (3, 1), 4)
    recs = T.twin_trajectory("kradagrad_star", None, grads, dps=DPS, t_rule=rule, roots=False)
    with M.workdps(DPS):
        acc = mpmath.mpf(1)
        for rec, g in zip(recs, grads):
            acc += M.mp_norm_fro(g) ** 2
            assert _close(rec["R"], mpmath.matrix([[1 / acc]]), 1)[0]


def test_shampoo_on_vectors_is_full_matrix_adagrad_errata_4():
    # errata 4: an order-1 parameter gets (eps I + sum g g^T)^{-1/2} g from both
    rng = np.random.default_rng(11)
    grads = _grads(rng, (5,), 6)
    sh = T.twin_trajectory("shampoo", None, grads, dps=DPS, eps=1e-3)
    ad = T.twin_trajectory("adagrad_full", None, grads, dps=DPS, delta=1e-3)
    for a, b in zip(sh, ad):
        ok, err = _close(a["direction"], b["direction"], 5)
        assert ok, f"step {a['count']}: {err:.3g}"
        assert _close(a["factors"][0], b["factors"][0], 5)[0]  # both store sum g g^T (eps at the root)


@pytest.mark.parametrize("rcond, kept", [(None, 2), (0.5, 1)])
def test_shampoo_pinv_twin_honours_rcond(rcond, kept):
    # G = 2 u1 v1^T + u2 v2^T (orthonormal u's, v's): statistics with eigenvalues 4, 1 (and exact zeros). The exact
    # pinv drops only the zeros: d = u1 v1^T + u2 v2^T; rcond = 0.5 also drops 1 <= 0.5 * 4: d = u1 v1^T
    u1, u2 = np.array([1.0, 1.0, 1.0, 1.0]) / 2, np.array([1.0, -1.0, 1.0, -1.0]) / 2
    v1, v2 = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    G = 2.0 * np.outer(u1, v1) + np.outer(u2, v2)
    rec = T.twin_trajectory("shampoo", None, [G], dps=DPS, eps=0.0, eps_mode="pinv", rcond=rcond)[0]
    want = np.outer(u1, v1) + (np.outer(u2, v2) if kept == 2 else 0.0)
    ok, err = _close(rec["direction"], mpmath.matrix(want.tolist()), 5)
    assert ok, err


def test_shampoo_on_1xn_matrices_is_not_adagrad_errata_4():
    # ... but a 1 x n matrix gets B^{-1/4} g C^{-1/4}, a different direction (the code merges [1, n] -> [n])
    rng = np.random.default_rng(12)
    grads = _grads(rng, (1, 4), 3)
    sh = T.twin_trajectory("shampoo", None, grads, dps=DPS, eps=1e-3)
    ad = T.twin_trajectory("adagrad_full", None, grads, dps=DPS, delta=1e-3)
    err = _close(sh[-1]["direction"], ad[-1]["direction"], 4)[1]
    assert err > 1e-3


@pytest.mark.parametrize("alg", ["kradagrad_star", "kradagrad"])
@pytest.mark.parametrize("rule", T.T_RULES)
def test_zero_gradient_leaves_factors_unchanged(alg, rule):
    rng = np.random.default_rng(5)
    L0, R0 = _spd(rng, 3), _spd(rng, 2)
    recs = T.twin_trajectory(alg, None, [np.zeros((3, 2))] * 3, dps=DPS, init=(L0, R0), t_rule=rule)
    for rec in recs:
        assert _close(rec["L"], M.to_mp(L0), 3)[0] and _close(rec["R"], M.to_mp(R0), 2)[0]


def test_alternating_scheme_holds_the_other_factor():
    rng = np.random.default_rng(6)
    grads = _grads(rng, (3, 2), 5)
    recs = T.twin_trajectory("kradagrad", None, grads, dps=DPS)
    prev = (M.to_mp(np.eye(3)), M.to_mp(np.eye(2)))
    for rec in recs:
        i = rec["mode"]
        assert i == (rec["count"] - 1) % 2  # strict alternation L, R, L, R (errata 21)
        assert _close(rec["factors"][1 - i], prev[1 - i], 3)[0]
        assert not _close(rec["factors"][i], prev[i], 3)[0]
        prev = rec["factors"]


def test_alt_reference_code_gram_equals_paper_gram_with_fresh_roots():
    # with roots recomputed every step and no damping, G-hat = G R^{1/2} gives G-hat G-hat^T = G R G^T: the two
    # variants' factors agree (their directions differ by the code's stale-root quirk, not tested here)
    rng = np.random.default_rng(8)
    grads = _grads(rng, (3, 2), 5)
    a = T.twin_trajectory("kradagrad", None, grads, dps=DPS, t_rule="frobenius", schedule="alternate")
    b = T.twin_trajectory("kradagrad", None, grads, dps=DPS, t_rule="frobenius", schedule="alternate",
                          variant="reference-code")
    for x, y in zip(a, b):
        # roots of an mp eigendecomposition: Q diag(w^{1/2}) Q^T squared equals L to ~ kappa 10^-dps
        assert _close(x["L"], y["L"], 3)[0] and _close(x["R"], y["R"], 2)[0]


def test_star_step_by_hand_in_plain_mpmath():
    # an independent path (mpmath.matrix arithmetic, not the twins' object arrays) for two Alg. 1 steps
    rng = np.random.default_rng(9)
    grads = _grads(rng, (2, 3), 2)
    recs = T.twin_trajectory("kradagrad_star", None, grads, dps=DPS)
    with M.workdps(DPS):
        L, R = mpmath.eye(2), mpmath.eye(3)
        for rec, G in zip(recs, grads):
            Gm = M.to_mp(G)
            A, B = Gm * Gm.T, Gm.T * Gm
            tL = 1 + mpmath.mnorm(A * L, "F")
            tR = 1 + mpmath.mnorm(B * R, "F")
            L, R = L - L * A * L / tL, R - R * B * R / tR
            D = M.mp_psd_power(L, Fraction(1, 4)) * Gm * M.mp_psd_power(R, Fraction(1, 4))
            assert _close(rec["L"], L, 2)[0] and _close(rec["R"], R, 3)[0]
            assert _close(rec["direction"], D, 6)[0]


def test_adagrad_diag_closed_form():
    rng = np.random.default_rng(10)
    grads = _grads(rng, (2, 3), 3)
    for placement in ("inside", "outside"):
        recs = T.twin_trajectory("adagrad_diag", None, grads, dps=DPS, eps=1e-3, eps_placement=placement,
                                 initial_accumulator=0.1)
        v = 0.1 + sum(g.astype(np.float64) ** 2 for g in grads)
        g = grads[-1]
        want = g / np.sqrt(v + 1e-3) if placement == "inside" else g / (np.sqrt(v) + 1e-3)
        assert T.rel_error(want, recs[-1]["direction"]) < 1e-14  # float64 evaluation of the closed form


def test_twin_rejects_unknown_options():
    with pytest.raises(TypeError, match="unknown twin parameter"):
        T.twin_trajectory("kradagrad_star", None, [np.ones((2, 2))], t_rul="spectral")
    with pytest.raises(ValueError, match="t_rule"):
        T.twin_trajectory("kradagrad_star", None, [np.ones((2, 2))], t_rule="nuclear")
    with pytest.raises(ValueError, match="algorithm_id"):
        T.twin_trajectory("lion", None, [np.ones((2, 2))])


# ==============================================================================================================
# krad_ref's float updates against the twins
# ==============================================================================================================
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (3, 2), (4, 4)])
def test_krad_pieces_match_twins(shape, dtype):
    # krad_ref.krad: Lemma 3.1's factor, every t-rule in both schemes, the Eq. (13) Gram update, damping
    krad = pytest.importorskip("krad_ref.krad", reason="krad_ref/krad.py not written yet")
    rng = np.random.default_rng(_seed("pieces", shape, dtype))
    m, n = shape
    dt = np.dtype(dtype)
    u = 2.0**-53 if dtype == "float64" else 2.0**-24
    C = _spd(rng, n, 2).astype(dt)
    U = rng.standard_normal((m * n, 3)).astype(dt)
    B = krad.krad_factor(C, U, m, n)
    Ui = [U[:, i].reshape(n, m).T for i in range(3)]  # unvec, column-major
    # a solve with C (kappa(C) <= 1e2) and an n-term product: C_TOL n u kappa(C)
    assert T.rel_error(B, T.krad_factor(C, Ui, dps=DPS)) <= C_TOL * n * u * float(np.linalg.cond(C.astype(np.float64)))
    L, R = _spd(rng, m, 2).astype(dt), _spd(rng, n, 2).astype(dt)
    G = (rng.standard_normal(shape) / 2).astype(dt)
    A = (G.astype(np.float64) @ R @ G.T).astype(dt)  # the same float A for both
    A = (A + A.T) / 2
    for scheme in ("star", "alternating"):
        for rule in T.T_RULES:
            t = krad.t_from_gram(L, A, rule, scheme=scheme)
            tt = T.t_value(rule, L, A, scheme=scheme, dps=DPS)
            # a norm / trace of the m-term product L A: relative error C_TOL m u (the 2-norm through eigvalsh)
            assert abs(float(t) - float(tt)) <= C_TOL * m * u * float(tt), (rule, scheme)
            Lk = krad.gram_update(L, A, t)
            with M.workdps(DPS):
                Lt, _, _ = T._krad_step(T._obj(L), T._obj(A), rule, t=M.to_mpf(float(t)))
            # the update's cancellation is bounded by ||L_{k-1}|| / ||L_k|| <= 1 + ||L A|| (Prop. 3.2)
            assert T.rel_error(Lk, Lt) <= C_TOL * m * u * float(tt), (rule, scheme)
    Ld = krad.damp(L, 0.25)
    with M.workdps(DPS):
        Lm = T._obj(L)
        assert T.rel_error(Ld, T._sym(Lm - (Lm @ Lm) * M.to_mpf(0.25))) <= C_TOL * m * u



# (algorithm id, config keyword arguments, parameter shape, gradient scale); every config keeps the statistics'
# condition number moderate so the float32 tolerance stays below 1 (errata 11: huge L_0 breaks float32 KrAD).
CASES = [
    ("kradagrad_star", {}, (3, 4), 1.0),
    ("kradagrad_star", {"t_rule": "spectral"}, (4, 2), 1.0),
    ("kradagrad_star", {"t_rule": "trace"}, (1, 3), 1.0),
    ("kradagrad_star", {"t_rule": "code", "init_scale": 4.0}, (3, 3), 1.0),
    ("kradagrad_star", {"variant": "reference-code", "matrix_eps": 0.25}, (2, 3), 1.0),
    ("kradagrad_star", {"beta2": 0.9, "damping": 0.1}, (3, 2), 1.0),
    ("kradagrad_star", {"update_freq": 2, "root_freq": 3, "start_preconditioning_step": 2}, (3, 2), 1.0),
    ("kradagrad_star", {}, (4,), 1.0),
    ("kradagrad_star", {}, (2, 3, 2), 1.0),
    ("kradagrad", {}, (3, 4), 1.0),
    ("kradagrad", {"t_rule": "frobenius"}, (1, 3), 1.0),
    ("kradagrad", {"variant": "reference-code", "matrix_eps": 1e-3}, (3, 2), 1.0),
    ("kradagrad", {"variant": "reference-code", "matrix_eps": 1e-3, "root_freq": 2}, (2, 4), 1.0),
    ("kradagrad", {"schedule": "sqrt", "damping": 0.05, "beta2": 0.95}, (3, 3), 1.0),
    ("kradagrad", {}, (5,), 1.0),
    ("kradagrad", {}, (2, 2, 3), 1.0),
    ("shampoo", {"eps": 1e-2}, (3, 4), 1.0),
    ("shampoo", {"eps": 1e-2, "eps_mode": "relative"}, (2, 3), 1.0),
    ("shampoo", {"eps": 1e-2, "variant": "reference-code"}, (3, 2), 1.0),
    ("shampoo", {"eps": 1e-2, "beta2": 0.9, "exponent_override": 2}, (2, 2), 1.0),
    ("shampoo", {"eps": 1e-2, "update_freq": 2, "root_freq": 2, "start_preconditioning_step": 3}, (3, 3), 1.0),
    ("shampoo", {"eps": 1e-2}, (4,), 1.0),
    ("shampoo", {"eps": 1e-2}, (2, 3, 2), 1.0),
    ("adagrad_full", {"delta": 1e-2}, (2, 3), 1.0),
    ("adagrad_full", {"delta": 1e-2, "form": "duchi"}, (3, 2), 1.0),
    ("adagrad_diag", {"eps": 1e-3}, (2, 3), 1.0),
    ("adagrad_diag", {"eps": 1e-3, "eps_placement": "outside", "initial_accumulator": 0.1}, (3,), 1.0),
    # ill-conditioned statistics (cond 1e3 .. 1e6): the tolerance grows with cond and the errors stay inside it
    ("kradagrad_star", {"init_scale": 1e3, "t_rule": "spectral"}, (4, 1), 1.0),
    ("kradagrad", {"init_scale": 30.0}, (4, 2), 1.0),
    ("shampoo", {"eps": 1e-6}, (4, 1), 1.0),
    ("adagrad_full", {"delta": 1e-6}, (4,), 1.0),
]
STEPS = 6


def _algorithm(alg_id):
    modname = {"kradagrad_star": "krad_ref.kradagrad", "kradagrad": "krad_ref.kradagrad",
               "shampoo": "krad_ref.shampoo", "adagrad_full": "krad_ref.adagrad",
               "adagrad_diag": "krad_ref.adagrad"}[alg_id]
    pytest.importorskip(modname, reason=f"{modname} not written yet (issue 3 algorithms)")
    from krad_ref import algorithm

    return algorithm.get(alg_id)


def _state_factors(alg_id, state):
    if alg_id in ("kradagrad_star", "kradagrad"):
        return tuple(state.factors)
    if alg_id == "shampoo":
        return tuple(state.stats)
    if alg_id == "adagrad_full":
        return (state.H,)
    return (state.v,)


def _cond(X) -> float:
    A = T.to_float(X)
    if A.ndim != 2 or A.shape[0] != A.shape[1] or (isinstance(X, np.ndarray) and X.dtype == object):
        return 1.0
    w = np.linalg.eigvalsh((A + A.T) / 2)
    return float(w[-1] / w[0]) if w[0] > 0 else float("inf")


def _stat_cond(alg_id, rec, cfg) -> float:
    """Largest condition number among the statistics this step's roots were taken of."""
    if alg_id == "shampoo":
        eps = cfg.eps
        return max(_cond_shift(S, eps) for S in rec["factors"])
    if alg_id == "adagrad_full":
        return _cond_shift(rec["factors"][0], cfg.delta)
    if alg_id == "adagrad_diag":
        return 1.0
    return max(_cond(L) for L in rec["factors"])


def _cond_shift(S, eps) -> float:
    A = T.to_float(S)
    w = np.linalg.eigvalsh((A + A.T) / 2)
    return float((max(w[-1], 0) + eps) / (max(w[0], 0) + eps))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{'-'.join(f'{k}={v}' for k, v in c[1].items()) or 'default'}"
                                             f"-{'x'.join(map(str, c[2]))}" for c in CASES])
def test_float_trajectory_matches_twin(case, dtype):
    alg_id, kw, shape, scale = case
    alg = _algorithm(alg_id)
    cfg = alg.Config(**kw)
    rng = np.random.default_rng(_seed(alg_id, sorted(kw.items()), shape))
    grads = _grads(rng, shape, STEPS, scale=scale, dtype=np.dtype(dtype))
    state = alg.init(shape, cfg, dtype=np.dtype(dtype))
    twin = T.twin_trajectory(alg_id, cfg, grads, dps=DPS)
    u = 2.0**-53 if dtype == "float64" else 2.0**-24
    N = max(shape) if alg_id != "adagrad_full" else math.prod(shape)
    cond = 1.0
    worst = 0.0
    for k, (G, rec) in enumerate(zip(grads, twin), 1):
        direction, state = alg.update(G, state, cfg)
        assert direction.dtype == np.dtype(dtype) and direction.shape == shape
        cond = max(cond, _stat_cond(alg_id, rec, cfg))
        tol = C_TOL * N * u * k * cond
        for i, (F, Ft) in enumerate(zip(_state_factors(alg_id, state), rec["factors"])):
            err = T.rel_error(F, Ft)
            assert err <= tol, f"step {k} factor {i}: rel err {err:.3g} > tol {tol:.3g} (cond {cond:.3g})"
            worst = max(worst, err / tol)
        err = T.rel_error(direction, rec["direction"])
        assert err <= tol, f"step {k} direction: rel err {err:.3g} > tol {tol:.3g} (cond {cond:.3g})"
        worst = max(worst, err / tol)
    assert worst <= 1.0


# ==============================================================================================================
# MBAG family (krad_ref.mbag): twins against closed forms, and krad_ref's float runs against the twins
# ==============================================================================================================
# Stated tolerance: krad_ref.crossval.tolerance's MBAG rule (module docstring there), evaluated on the twin's
# values rounded once to float64: n = tau, per group, worst group,
#   factors   C tau u k kappa_F,            kappa_F = max_j ||F_j||_2 / ||F_k||_2 (Sherman-Morrison cancellation)
#   roots     C tau u k (kappa_F cond_e(kappa) + [NS] T_NS min(kappa^1/2, 1.5^T_NS)),  cond_e = min(kappa^1/2,
#             u^-1/2) for H^1/2 (MBAG), kappa for G^-1/2 (MBAG-EMA); Newton-Schulz roots against T_NS mp steps
#   direction C tau u k max(1, B_k / ||D_k||),  B_k = beta B_{k-1} + (cond_R + 1) ||R_k||_2 ||g_k||
# with C = 32. Each case also checks that the float64 tolerance is a real one (< 1e-6).
MBAG_CASES = [
    ("mbag", {"root_method": "eigh", "T_sqr": 1, "lam": 0.1}, (4, 3)),
    ("mbag", {"root_method": "newton_schulz", "T_sqr": 1, "T_NS": 5, "lam": 0.1}, (4, 3)),
    ("mbag", {"root_method": "newton_schulz", "T_sqr": 2, "T_NS": 7, "lam": 0.01, "beta": 0.0}, (3, 4)),
    ("mbag", {"root_method": "newton_schulz", "T_sqr": 1, "T_NS": 5, "tau": 6}, (4, 3)),
    ("mbag", {"root_method": "eigh", "T_sqr": 1, "tau": 5, "remainder": "pad"}, (4, 3)),
    ("mbag", {"root_method": "eigh", "T_sqr": 3}, (2, 2, 3)),
    ("mbag_n", {"lam": 0.1}, (4, 3)),
    ("mbag_n", {"tau": 4}, (8,)),
    ("mbag_ema", {"T_sqr": 1, "alpha": 0.9, "lam": 0.1}, (3, 4)),
    ("mbag_ema", {"T_sqr": 2, "alpha": 0.9, "lam": 0.1, "root_method": "eigh"}, (3, 4)),
]


def _mbag_alg(alg_id):
    pytest.importorskip("krad_ref.mbag")
    from krad_ref import algorithm

    return algorithm.get(alg_id)


def _mbag_q(alg_id, state):
    F = state.G if alg_id == "mbag_ema" else state.H
    return F, (None if alg_id == "mbag_n" else state.root)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", MBAG_CASES, ids=[f"{a}-{'-'.join(f'{k}={v}' for k, v in kw.items())}-"
                                                  f"{'x'.join(map(str, s))}" for a, kw, s in MBAG_CASES])
def test_mbag_float_trajectory_matches_twin(case, dtype):
    from krad_ref.crossval import tolerance as TM

    alg_id, kw, shape = case
    alg = _mbag_alg(alg_id)
    cfg = alg.Config(**kw)
    rng = np.random.default_rng(_seed(alg_id, sorted(kw.items()), shape))
    grads = _grads(rng, shape, STEPS, dtype=np.dtype(dtype))
    twin = T.twin_trajectory(alg_id, cfg, grads, dps=DPS)
    expected = [{"factors": tuple(T.to_float(F) for F in r["factors"]),
                 "roots": tuple(T.to_float(R) for R in r["roots"]) if "roots" in r else None,
                 "direction": np.asarray(T.to_float(r["direction"]), dtype=np.float64)} for r in twin]
    init = alg.init(shape, cfg)
    tols = TM.step_tolerances(alg_id, cfg, shape, expected, grads, dtype, init_factors=(_mbag_q(alg_id, init)[0],))
    state = alg.init(shape, cfg, dtype=np.dtype(dtype))
    worst = 0.0
    for k, (G, rec, tol) in enumerate(zip(grads, twin, tols), 1):
        direction, state = alg.update(G, state, cfg)
        assert direction.dtype == np.dtype(dtype) and direction.shape == shape
        F, R = _mbag_q(alg_id, state)
        pairs = [("factors", T.rel_error(F, rec["factors"][0]), tol["factors"][0]),
                 ("direction", T.rel_error(direction, rec["direction"]), tol["direction"])]
        if R is not None:
            pairs.append(("roots", T.rel_error(R, rec["roots"][0]), tol["roots"][0]))
        for name, err, t in pairs:
            assert err <= t, f"step {k} {name}: rel err {err:.3g} > tol {t:.3g}"
            worst = max(worst, err / t)
            if dtype == "float64":
                assert t < 1e-6, f"step {k} {name}: float64 tolerance {t:.3g} is no real check"
    assert 0 < worst <= 1.0


def test_mbag_twin_statistic_is_the_inverse_of_lam_i_plus_sum_gg():
    """Eq. (2)/(4): the twin's Sherman-Morrison H_t per group equals (lam I + sum g g^T)^{-1}, groups being
    row-major runs of tau with zero padding (tau = 5 on 4 x 3: groups 0..4, 5..9, 10, 11 + 3 zeros)."""
    rng = np.random.default_rng(7)
    grads = [rng.standard_normal((4, 3)) for _ in range(3)]
    recs = T.twin_trajectory("mbag_n", None, grads, dps=DPS, lam=0.5, tau=5, remainder="pad", beta=0.0)
    with M.workdps(DPS):
        flat = [np.concatenate([g.reshape(-1), np.zeros(3)]).reshape(3, 5) for g in grads]
        for i in range(3):
            Gm = mpmath.eye(5) * mpmath.mpf(0.5)
            for f in flat:
                x = mpmath.matrix([M.to_mpf(v) for v in f[i]])
                Gm += x * x.T
            Hi = T._to_matrix(recs[-1]["factors"][0][i])
            ok, err = _close(Hi, mpmath.inverse(Gm), 5)
            assert ok, err
        # MBAG-N with beta = 0: direction = H_t g_t, group by group
        H = recs[-1]["factors"][0]
        d = np.concatenate([H[i] @ T._obj(flat[-1][i]) for i in range(3)])[:12].reshape(4, 3)
        ok, err = _close(T._to_matrix(d), recs[-1]["direction"], 5)
        assert ok, err


def test_mbag_twin_newton_schulz_converges_to_the_roots_errata_6():
    """The mp Newton-Schulz pair: sqrt(s) X_N -> A^{1/2}, Y_N / sqrt(s) -> A^{-1/2} (the rescaling of
    krad_ref.mbag's docstring), under-estimating at a fixed small T_NS; the twin's "mbag" NS root is exactly it."""
    rng = np.random.default_rng(3)
    A = _spd(rng, 4, 2.0)
    sq, isq, res = T.mbag_newton_schulz(A, 40, dps=DPS)
    with M.workdps(DPS):
        assert _close(sq, T.psd_fn(A, Fraction(1, 2)), 4)[0]
        assert _close(isq, T.psd_fn(A, -0.5), 4)[0]
    assert float(res) < _mp_tol(4)
    sq5, _, res5 = T.mbag_newton_schulz(A, 5, dps=DPS)
    e5 = T.rel_error(T.to_float(sq5), T.psd_fn(A, Fraction(1, 2)))
    assert 1e-6 < e5 < 0.2 and float(res5) > 1e-6
    # Loewner under-estimate: A^{1/2} - sqrt(s) X_5 is PSD
    D = T.to_float(T.psd_fn(A, Fraction(1, 2))) - T.to_float(sq5)
    assert np.linalg.eigvalsh((D + D.T) / 2)[0] > -1e-12
    g = rng.standard_normal((1, 4))
    rec = T.twin_trajectory("mbag", None, [g], dps=DPS, T_sqr=1, T_NS=5, beta=0.0, lam=0.25)[0]
    H = rec["factors"][0][0]
    assert _close(rec["roots"][0][0], T.mbag_newton_schulz(H, 5, dps=DPS)[0], 4)[0]
    assert rec["refreshed"] and float(rec["residual"][0]) > 0


def test_mbag_twin_schedule_and_momentum():
    """T_sqr: the root is I / sqrt(lam) until step T_sqr, then refreshed every T_sqr steps; v = beta v + R g."""
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal((2, 3)) for _ in range(4)]
    recs = T.twin_trajectory("mbag", None, grads, dps=DPS, T_sqr=3, root_method="eigh", beta=0.5, lam=4.0)
    assert [r["refreshed"] for r in recs] == [False, False, True, False]
    assert _close(recs[1]["roots"][0][0], T._eye(3) * mpmath.mpf(0.5), 3)[0]
    assert _close(recs[3]["roots"][0][0], recs[2]["roots"][0][0], 3)[0]
    with M.workdps(DPS):
        d1 = T._obj(grads[0]) * mpmath.mpf(0.5)
        d2 = d1 * mpmath.mpf(0.5) + T._obj(grads[1]) * mpmath.mpf(0.5)
        assert _close(T._to_matrix(d2), recs[1]["direction"], 6)[0]
