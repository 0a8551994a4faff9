"""The differential harness proves its own power: realistic wrong candidates fail with a clear report, correct
ones (krad_ref under array_api_strict, float32 runs against float32 tolerances, practitioner-style NumPy code)
pass. Budget: the whole module runs in well under 60 s on 2 cores (few generated sequences per check)."""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from krad_ref import crossval
from krad_ref.crossval import adapters, harness, trace
from krad_ref.crossval.__main__ import main as cli_main

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------------------------------
# practitioner-style NumPy candidates with switchable bugs (one flag = one bug seen in the wild)

def _sym(A):
    return (A + A.T) / 2


def _power(A, e):
    w, V = np.linalg.eigh(_sym(A))
    return (V * np.maximum(w, 0.0) ** e) @ V.T


class NumpyKradStar:
    """KrADagrad* for matrices (paper variant), written the way a practitioner would; ``bug`` picks one mistake."""

    def __init__(self, bug: str | None = None, count_start: int = 0):
        self.bug, self.count_start, self.name = bug, count_start, f"NumpyKradStar(bug={bug})"

    def init(self, shape, config, dtype="float64"):
        if len(shape) != 2 or config["variant"] != "paper" or config["damping"] != 0:
            raise NotImplementedError("matrices, paper variant, no damping")
        m, n = shape
        s = config["init_scale"]
        return {"k": self.count_start, "factors": [s * np.eye(m, dtype=dtype), s * np.eye(n, dtype=dtype)],
                "roots": [np.eye(m, dtype=dtype), np.eye(n, dtype=dtype)]}

    def _t(self, L, A, rule):
        N = L @ A
        if self.bug == "norm":  # the 2-norm where the config asks for the Frobenius norm (or vice versa)
            rule = "spectral" if rule == "frobenius" else "frobenius"
        return 1.0 + (np.linalg.norm(N, 2) if rule == "spectral" else np.linalg.norm(N))

    def update(self, G, state, config):
        k = state["k"] + 1
        L, R = state["factors"]
        P, Q = state["roots"]
        b2 = config["beta2"]
        if k % config["update_freq"] == 0:
            new = []
            for F, A in ((L, G @ G.T), (R, G.T @ G)):
                Fd = F / b2
                if self.bug == "asym":  # decay applied on one side only, never symmetrised: drifts
                    D = Fd - (Fd @ A @ F) / self._t(Fd, A, config["t_rule"])
                else:
                    D = _sym(Fd - (Fd @ A @ Fd) / self._t(Fd, A, config["t_rule"]))
                new.append(D)
            L, R = new
        if k % config["root_freq"] == 0:
            e = config["alpha"] / 2 if config["exponent"] is None else config["exponent"]
            if self.bug == "root32":  # roots computed in float32, cast back: float64 promised
                P, Q = (_power(F.astype(np.float32), e).astype(F.dtype) for F in (L, R))
            elif self.bug == "asym":
                P, Q = (self._lower_power(F, e) for F in (L, R))
            else:
                P, Q = _power(L, e), _power(R, e)
        if k < config["start_preconditioning_step"]:
            D = G.copy()
        elif self.bug == "swap":  # L and R swapped (only runs for square G)
            D = Q @ G @ P
        else:
            D = P @ G @ Q
        return D, {"k": k, "factors": [L, R], "roots": [P, Q]}

    @staticmethod
    def _lower_power(A, e):  # eigh reads the lower triangle only, as torch/LAPACK do
        w, V = np.linalg.eigh(A)
        return (V * np.maximum(w, 0.0) ** e) @ V.T


class NumpyShampoo:
    """Shampoo (paper variant, eps added at the root) via eigh; ``bug`` picks one mistake."""

    def __init__(self, bug: str | None = None):
        self.bug, self.name = bug, f"NumpyShampoo(bug={bug})"

    def init(self, shape, config, dtype="float64"):
        if len(shape) != 2 or config["variant"] != "paper" or config["beta2"] != 1.0 or config["eps_mode"] != "absolute":
            raise NotImplementedError("matrices, paper variant, beta2 = 1")
        m, n = shape
        return {"k": 0, "stats": [np.zeros((m, m), dtype), np.zeros((n, n), dtype)],
                "roots": [np.eye(m, dtype=dtype), np.eye(n, dtype=dtype)]}

    def _inv_root(self, S, eps, e):
        w, V = np.linalg.eigh(S)
        w = w + eps
        if self.bug == "sorted":  # eigenvalues sorted descending, eigenvectors left in eigh's order
            w = w[::-1]
        return (V * w ** (-e)) @ V.T

    def update(self, G, state, config):
        k = state["k"] + 1
        L, R = state["stats"]
        P, Q = state["roots"]
        if k % config["update_freq"] == 0:
            L, R = L + G @ G.T, R + G.T @ G
        if k % config["root_freq"] == 0:
            e = 1 / 2 if self.bug == "sqrt" else 1 / 4  # inverse square root where the fourth root belongs
            P, Q = self._inv_root(L, config["eps"], e), self._inv_root(R, config["eps"], e)
        D = G.copy() if k < config["start_preconditioning_step"] else P @ G @ Q
        return D, {"k": k, "stats": [L, R], "roots": [P, Q]}

    def quantities(self, state):
        return {"factors": state["stats"], "roots": state["roots"]}


class PeerShampoo:
    """Matrix Shampoo written the way a published implementation is, its conventions hard-wired (the config dict
    supplies eps, beta2 and the frequencies only): a candidate whose convention differs from the config's is a
    FAIL, and it passes the config that names its convention (krad_ref.shampoo.Config, "Conventions").

    ``root``: "eigh" (eigenvalues clipped at 0, + eps), "svd" (U diag(s^(-1/e)) V^T of S + eps I, not
    symmetrized) or "newton" (pytorch-optimizer's ScalableShampoo: coupled Newton on S + eps lambda_max I, entrywise-max
    residual, tol ``newton_tol``, a >1.2x growth stops it, the iterate is returned; ``keep`` keeps the previous
    root instead when the tolerance is missed). ``current_only``: the statistic is the last G G^T (beta2 = 0).
    """

    def __init__(self, *, bias_correction=False, eps_placement="root", exponent_rule="2p", root_phase="multiple",
                 before_first_root="identity", root="eigh", current_only=False, newton_tol=1e-3, keep=False,
                 max_iter=100):
        self.opts = dict(bias_correction=bias_correction, eps_placement=eps_placement, exponent_rule=exponent_rule,
                         root_phase=root_phase, before_first_root=before_first_root, root=root,
                         current_only=current_only, newton_tol=newton_tol, keep=keep, max_iter=max_iter)
        self.name = "PeerShampoo(" + ", ".join(f"{k}={v}" for k, v in self.opts.items()) + ")"

    def init(self, shape, config, dtype="float64"):
        if len(shape) != 2 or config["variant"] != "paper":
            raise NotImplementedError("matrices, paper variant")
        o = self.opts
        s0 = config["eps"] if o["eps_placement"] == "statistic" else 0.0
        r0 = 1.0 if o["before_first_root"] == "identity" else 0.0
        return {"k": 0, "n": 0, "stats": [s0 * np.eye(d, dtype=dtype) for d in shape],
                "roots": [r0 * np.eye(d, dtype=dtype) for d in shape]}

    def _newton(self, S, q, eps, prev):
        o = self.opts
        n = S.shape[0]
        I = np.eye(n, dtype=S.dtype)
        Gm = S + eps * np.linalg.eigvalsh(S)[-1] * I
        z = (1 + q) / (2 * np.linalg.norm(Gm))
        X, Mm = z ** (1 / q) * I, z * Gm
        err = np.max(np.abs(Mm - I))
        for _ in range(o["max_iter"]):
            if err <= o["newton_tol"]:
                break
            T = ((q + 1) * I - Mm) / q
            Xn, Mn = X @ T, np.linalg.matrix_power(T, q) @ Mm
            err_n = np.max(np.abs(Mn - I))
            if err_n > 1.2 * err:
                break
            X, Mm, err = Xn, Mn, err_n
        return prev if o["keep"] and err > o["newton_tol"] else X

    def _root(self, S, q, eps, prev):
        o = self.opts
        if o["root"] == "newton":
            return self._newton(S, q, eps, prev)
        shift = 0.0 if o["eps_placement"] == "statistic" else eps
        if o["root"] == "svd":
            U, sv, Vh = np.linalg.svd(S + shift * np.eye(S.shape[0], dtype=S.dtype))
            return (U * sv ** (-1.0 / q)) @ Vh
        w, V = np.linalg.eigh(S)
        return (V * (np.maximum(w, 0.0) + shift) ** (-1.0 / q)) @ V.T

    def update(self, G, state, config):
        o = self.opts
        k, n = state["k"] + 1, state["n"]
        L, R = state["stats"]
        P, Q = state["roots"]
        b2 = 0.0 if o["current_only"] else config["beta2"]
        if k % config["update_freq"] == 0:
            n += 1
            w = 1.0 if b2 == 1.0 else 1.0 - b2
            L, R = b2 * L + w * (G @ G.T) if b2 < 1 else L + G @ G.T, b2 * R + w * (G.T @ G) if b2 < 1 else R + G.T @ G
        phase = 0 if o["root_phase"] == "multiple" else 1
        if (k - phase) % config["root_freq"] == 0:
            c = 1.0 / (1.0 - b2 ** n) if o["bias_correction"] and n else 1.0
            q = 2 if o["exponent_rule"] == "p" else 4
            P, Q = self._root(c * L, q, config["eps"], P), self._root(c * R, q, config["eps"], Q)
        first = config["root_freq"] if phase == 0 else 1
        if k < config["start_preconditioning_step"] or (o["before_first_root"] == "gradient" and k < first):
            D = G.copy()
        else:
            D = P @ G @ Q.T
        return D, {"k": k, "n": n, "stats": [L, R], "roots": [P, Q]}

    def quantities(self, state):
        return {"factors": state["stats"], "roots": state["roots"]}


class WrongSignMbag(adapters.KradRefCandidate):
    """krad_ref's MBAG with the Sherman-Morrison update written H + (Hg)(Hg)^T / (1 + g^T H g)."""

    def __init__(self):
        super().__init__("mbag", name="MBAG(sherman-morrison sign flipped)")

    def update(self, grad, state, config):
        from krad_ref import mbag

        cfg = self._cfg(config)
        gb = mbag.group(grad, cfg.tau, remainder=cfg.remainder)
        H = state.H
        u = (H @ gb[..., None])[..., 0]
        c = 1.0 + np.sum(gb * u, axis=-1)
        wrong = H + u[..., :, None] * u[..., None, :] / c[..., None, None]
        # one krad_ref step from a state whose H is pre-compensated, so that the step leaves ``wrong`` as H
        direction, new = self.alg.update(grad, state, cfg)
        root = mbag._root_of_H(wrong, cfg, np)[0] if (int(state.count) + 1) % cfg.T_sqr == 0 else state.root
        v = cfg.beta * state.v + (root @ gb[..., None])[..., 0]
        return mbag.ungroup(v, grad.shape), new._replace(H=wrong, root=root, v=v)


class Float32Inside(adapters.KradRefCandidate):
    """Claims float64 but runs krad_ref in float32 and casts the results back to float64 (silent downcast)."""

    def init(self, shape, config, dtype="float64"):
        return super().init(shape, config, dtype="float32")

    def update(self, grad, state, config):
        d, s = super().update(grad.astype(np.float32), state, config)
        return d.astype(np.float64), s

    def quantities(self, state):
        q = super().quantities(state)
        return {k: None if v is None else tuple(a.astype(np.float64) for a in v) for k, v in q.items()}


class ReturnsFloat32(adapters.KradRefCandidate):
    """Claims float64 and keeps float64 statistics, but returns its direction in float32."""

    def update(self, grad, state, config):
        d, s = super().update(grad, state, config)
        return d.astype(np.float32), s


# ------------------------------------------------------------------------------------------------------------------
# correct candidates pass

def test_reference_under_array_api_strict_passes():
    xs = pytest.importorskip("array_api_strict")
    for alg in ("kradagrad_star", "shampoo", "kradagrad"):
        rep = crossval.check(adapters.KradRefCandidate(alg, xs), alg, dtype="float64", examples=4, seed=1)
        assert rep.passed, str(rep)
        assert rep.quantities["direction"].compared > 0 and rep.quantities["roots"].compared > 0


@pytest.mark.parametrize("alg", ["kradagrad_star", "shampoo", "adagrad_full", "adagrad_diag"])
def test_float32_run_passes_float32_tolerances(alg):
    rep = crossval.check(adapters.KradRefCandidate(alg), alg, dtype="float32", examples=4, seed=2)
    assert rep.passed, str(rep)
    # and the same float32 run fails the float64 tolerances (the model separates the two precisions)
    assert rep.quantities["direction"].worst_ratio is not None


def test_practitioner_candidates_pass():
    cfg = {"root_freq": 2, "start_preconditioning_step": 2, "beta2": 0.9}
    rep = crossval.check(NumpyKradStar(), "kradagrad_star", cfg, examples=6, seed=3)
    assert rep.passed, str(rep)
    assert any(r.skipped for r in rep.runs)  # the order-3 golden case is declined, and says so
    assert "skipped" in str(rep)
    rep = crossval.check(NumpyShampoo(), "shampoo", {"root_freq": 2}, examples=6, seed=3)
    assert rep.passed, str(rep)


def test_mbag_reference_passes():
    cfg = {"root_method": "eigh", "T_sqr": 1}
    rep = crossval.check(adapters.KradRefCandidate("mbag"), "mbag", cfg, cases=None, examples=4, seed=4)
    assert rep.passed, str(rep)


# ------------------------------------------------------------------------------------------------------------------
# wrong candidates fail, with a clear report

def _fails(rep, quantities):
    assert not rep.passed, str(rep)
    text = str(rep)
    assert "FAIL" in text and "first divergence" in text
    div = rep.first_divergence
    assert div is not None and div.quantity in quantities, text
    return text


def test_swapped_L_R_is_caught_and_shrunk():
    rep = crossval.check(NumpyKradStar("swap"), "kradagrad_star", cases=None, examples=12, seed=5)
    assert not rep.passed
    # non-square inputs crash the candidate (reported as an exception); square ones diverge numerically
    assert any(r.divergence and r.divergence.quantity == "direction" for r in rep.runs), str(rep)
    assert rep.shrunk is not None and rep.shrunk.shape[0] == rep.shrunk.shape[1] >= 2
    assert rep.shrunk.divergence.quantity == "direction" and len(rep.shrunk.grads) == 1


def test_wrong_norm_in_t_is_caught():
    text = _fails(crossval.check(NumpyKradStar("norm"), "kradagrad_star", examples=4, seed=6), ("factors",))
    assert "golden:kradagrad_star/well_5x3" in text


def test_missing_symmetrisation_is_caught():
    rep = crossval.check(NumpyKradStar("asym"), "kradagrad_star", {"beta2": 0.8}, cases=None, examples=6, seed=7)
    _fails(rep, ("factors",))
    assert rep.shrunk is not None


def test_inverse_square_root_instead_of_fourth_root_is_caught():
    rep = crossval.check(NumpyShampoo("sqrt"), "shampoo", examples=4, seed=8)
    _fails(rep, ("roots",))
    assert rep.first_divergence.step == 1


def test_float32_roots_where_float64_was_promised_is_caught():
    rep = crossval.check(NumpyKradStar("root32"), "kradagrad_star", examples=4, seed=9)
    _fails(rep, ("roots", "direction"))
    # the error is float32-sized: far above the float64 tolerance, yet within the float32 one
    rep32 = crossval.check(NumpyKradStar("root32"), "kradagrad_star", dtype="float32", examples=0)
    assert rep32.passed, str(rep32)  # the same code run honestly in float32 meets the float32 tolerances


def test_silent_downcast_is_caught_by_accuracy():
    rep = crossval.check(Float32Inside("kradagrad_star"), "kradagrad_star", examples=2, seed=10)
    _fails(rep, ("factors", "roots", "direction"))
    assert rep.quantities["dtype"].passed  # dtypes look right: only the accuracy gives it away


def test_wrong_returned_dtype_is_caught():
    rep = crossval.check(ReturnsFloat32("shampoo"), "shampoo", examples=0)
    text = _fails(rep, ("dtype",))
    assert "direction returned as float32, but float64 was promised" in text


def test_sorted_basis_without_permutation_is_caught():
    rep = crossval.check(NumpyShampoo("sorted"), "shampoo", examples=4, seed=11)
    _fails(rep, ("roots",))


def test_sherman_morrison_wrong_sign_is_caught():
    cfg = {"root_method": "eigh", "T_sqr": 1}
    rep = crossval.check(WrongSignMbag(), "mbag", cfg, cases=None, examples=4, seed=12)
    _fails(rep, ("factors",))
    assert rep.first_divergence.step == 1


def test_off_by_one_step_count_is_caught():
    cfg = {"root_freq": 2}
    rep = crossval.check(NumpyKradStar(count_start=1), "kradagrad_star", cfg, cases=None, examples=4, seed=13)
    _fails(rep, ("roots", "direction"))
    assert rep.first_divergence.step == 1
    assert rep.shrunk is not None and len(rep.shrunk.grads) == 1


# Each convention of krad_ref.shampoo.Config: a candidate with the other value, hard-wired, is a FAIL against the
# default convention and a PASS against the config naming its own. (candidate options, shared config fields,
# the candidate's convention as config fields)
_NEWTON_PEER = {"root_method": "coupled_newton", "eps_mode": "relative", "eps_placement": "statistic",
                "newton_tol": 1e-3, "newton_error": "max", "newton_on_fail": "return"}
CONVENTION_MUTANTS = {
    "bias_correction": ({"bias_correction": True}, {"beta2": 0.9}, {"bias_correction": True}),
    "beta2_zero": ({"current_only": True}, {}, {"beta2": 0.0}),
    "eps_in_statistic": ({"eps_placement": "statistic"}, {"beta2": 0.5}, {"eps_placement": "statistic"}),
    "exponent_p": ({"exponent_rule": "p"}, {}, {"exponent_rule": "p"}),
    "phase_first": ({"root_phase": "first"}, {"root_freq": 2}, {"root_phase": "first"}),
    "zero_before_first_root": ({"before_first_root": "zero"}, {"root_freq": 3}, {"before_first_root": "zero"}),
    "gradient_before_first_root": ({"before_first_root": "gradient"}, {"root_freq": 3},
                                   {"before_first_root": "gradient"}),
    "scalable_newton": ({"root": "newton", "eps_placement": "statistic"}, {"beta2": 0.9}, _NEWTON_PEER),
    "newton_keep": ({"root": "newton", "eps_placement": "statistic", "keep": True, "max_iter": 3},
                    {**_NEWTON_PEER, "newton_max_iter": 3}, {"newton_on_fail": "keep"}),
}


@pytest.mark.parametrize("name", sorted(CONVENTION_MUTANTS))
def test_convention_mutant_fails_the_default_and_passes_its_own_config(name):
    opts, shared, own = CONVENTION_MUTANTS[name]
    peer = PeerShampoo(**opts)
    rep = crossval.check(peer, "shampoo", shared, cases=None, examples=4, seed=21, shrink=False)
    _fails(rep, ("factors", "roots", "direction"))
    rep = crossval.check(peer, "shampoo", {**shared, **own}, cases=None, examples=4, seed=21, shrink=False)
    assert rep.passed, str(rep)
    assert rep.quantities["direction"].compared > 0 and rep.quantities["roots"].compared > 0


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_conventions_compose_as_the_peers_combine_them(dtype):
    """Several conventions at once, as two published optimizers combine them (the peers' own adapters live
    elsewhere): torch-optimizer's Shampoo (eps I in the statistic, S^{-1/p} by SVD, roots at k = 1, 1 + f, ...)
    and pytorch-optimizer's Shampoo (eps I in the statistic, SVD, zero roots until k = f)."""
    torch_opt = PeerShampoo(eps_placement="statistic", exponent_rule="p", root="svd", root_phase="first",
                            before_first_root="zero")
    cfg = {"eps": 1e-4, "eps_placement": "statistic", "exponent_rule": "p", "root_method": "svd",
           "root_phase": "first", "root_freq": 2}
    rep = crossval.check(torch_opt, "shampoo", cfg, cases=None, examples=8, seed=3, dtype=dtype)
    assert rep.passed, str(rep)
    pt_opt = PeerShampoo(eps_placement="statistic", root="svd", before_first_root="zero")
    cfg = {"eps_placement": "statistic", "root_method": "svd", "before_first_root": "zero", "root_freq": 3}
    rep = crossval.check(pt_opt, "shampoo", cfg, cases=None, examples=8, seed=3, dtype=dtype)
    assert rep.passed, str(rep)
    assert rep.quantities["direction"].compared > 0


def test_svd_roots_are_not_a_deviation():
    """SVD and eigh roots agree in exact arithmetic (the regularised statistic is PD): a peer's SVD root of
    S + eps I (unsymmetrized) passes both root_method="svd" and the default eigh config in float64. The wrong
    version, eps added to the singular values of a singular S, leaves LAPACK's arbitrary null-space block
    U_0 V_0^T in the root (a reflection on the rank-one 1 x 3 input the shrinker finds) and fails both."""
    for cfg in ({"root_method": "svd"}, {}):
        rep = crossval.check(PeerShampoo(root="svd"), "shampoo", cfg, cases=None, examples=4, seed=22)
        assert rep.passed, str(rep)

    class ShiftAfterSvd(PeerShampoo):
        def _root(self, S, q, eps, prev):
            U, sv, Vh = np.linalg.svd(S)
            return (U * (sv + eps) ** (-1.0 / q)) @ Vh

    rep = crossval.check(ShiftAfterSvd(root="svd"), "shampoo", {"root_method": "svd"}, cases=None, examples=4,
                         seed=22, shrink_budget=60)
    _fails(rep, ("roots", "direction"))
    assert rep.shrunk is not None and min(rep.shrunk.shape) == 1


# ------------------------------------------------------------------------------------------------------------------
# generated sequences with a chosen gradient scale and rank

class NaiveEighShampoo(PeerShampoo):
    """(S + eps I)^(-1/4) by eigh of the explicitly shifted float matrix, eigenvalues used as they come: correct
    while eps survives the addition, NaN once u ||S|| > eps makes a rank-deficient S + eps I indefinite."""

    def _root(self, S, q, eps, prev):
        w, V = np.linalg.eigh(S + eps * np.eye(S.shape[0], dtype=S.dtype))
        with np.errstate(invalid="ignore", divide="ignore"):
            return (V * w ** (-1.0 / q)) @ V.T

    def update(self, G, state, config):
        with np.errstate(invalid="ignore"):  # NaN roots are the finding, not a crash
            return super().update(G, state, config)


def test_large_scale_float32_exposes_eps_lost_against_the_statistic():
    peer = NaiveEighShampoo()
    # spectral norms in [0.1, 1]: u_32 ||S|| <= 6 * 6e-8 < eps = 1e-6, the shift survives: a pass
    rep = crossval.check(peer, "shampoo", cases=None, dtype="float32", examples=6, seed=0, shrink=False)
    assert rep.passed, str(rep)
    rep = crossval.check(peer, "shampoo", cases=None, dtype="float32", examples=6, seed=0, grad_scale=(1e3, 1e4))
    _fails(rep, ("roots", "direction"))
    # shrinking never rescales: the largest entry of a gradient of norm >= 1e3 with <= 25 entries is >= 1e3 / 5,
    # >= 100 after rounding to one significant digit
    big = max(float(np.max(np.abs(g))) for g in rep.shrunk.grads)
    assert big >= 100, rep.shrunk.grads_text()


def test_krad_ref_float32_passes_across_seven_orders_of_magnitude():
    """The tolerance model reads the conditioning of each generated input: float32 runs of krad_ref itself pass
    at norms from 1e-3 to 1e4 (quantities float32 cannot resolve are reported as such, never failed)."""
    for rank in ("mixed", "low", "one"):
        rep = crossval.check(adapters.KradRefCandidate("shampoo"), "shampoo", cases=None, dtype="float32",
                             examples=6, seed=23, grad_scale=(1e-3, 1e4), grad_rank=rank)
        assert rep.passed, str(rep)
        assert rep.quantities["direction"].compared > 0


def _unfoldings(G):
    return [np.moveaxis(G, i, 0).reshape(G.shape[i], -1) for i in range(G.ndim)]


def test_generated_ranks_and_scales():
    """grad_rank / grad_scale: singular values of every unfolding and spectral norms as requested. The entries
    are rounded to float32 (relative error <= u_32 = 2^-24 each), so ||E||_2 <= ||E||_F <= u_32 ||G||_F <=
    u_32 sqrt(r) sigma_1: singular values beyond the rank r are <= u_32 sqrt(r) sigma_1 (x2 for float64 SVD)."""
    u32 = 2.0 ** -24
    for rank in ("one", "low", "full"):
        seqs = harness._generate(np.random.default_rng(5), "shampoo", 8, (1e-3, 1e4), rank)
        for shape, grads in seqs:
            for G in grads:
                sv = np.linalg.svd(G.reshape(shape[0], -1), compute_uv=False)
                assert 1e-3 * (1 - 2 * u32) <= sv[0] <= 1e4 * (1 + 2 * u32), (shape, sv[0])
                if rank == "one":  # rank one in every unfolding
                    for U in _unfoldings(G):
                        s = np.linalg.svd(U, compute_uv=False)
                        assert np.all(s[1:] <= 2 * u32 * s[0]), (shape, s)
                elif rank == "low" and min(sv.size, np.prod(shape[1:])) >= 2:
                    r = int(np.sum(sv > 2 * u32 * np.sqrt(sv.size) * sv[0]))
                    assert 1 <= r < min(shape[0], np.prod(shape[1:])), (shape, sv)
                elif rank == "full":  # Gaussian matrices: full rank, far from the float32 rounding floor
                    assert sv[-1] > 1e3 * u32 * sv[0], (shape, sv)


def test_generation_options_are_checked():
    cand = adapters.KradRefCandidate("shampoo")
    with pytest.raises(ValueError, match="grad_scale"):
        crossval.check(cand, "shampoo", grad_scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="grad_scale"):
        crossval.check(cand, "shampoo", grad_scale=(10.0, 1.0))
    with pytest.raises(ValueError, match="grad_rank"):
        crossval.check(cand, "shampoo", grad_rank="two")


def test_report_text_names_everything():
    rep = crossval.check(NumpyShampoo("sqrt"), "shampoo", cases=None, examples=3, seed=14)
    text = str(rep)
    for word in ("FAIL", "factors", "roots", "direction", "dtype", "worst err/tol", "shrunk failing input", "G_1"):
        assert word in text, text


def test_step_callable_protocol():
    alg_cand = adapters.KradRefCandidate("kradagrad_star")

    def step(grads, config, dtype="float64"):
        state = alg_cand.init(grads[0].shape, config, dtype=dtype)
        for G in grads:
            d, state = alg_cand.update(G, state, config)
        return {"direction": d, **alg_cand.quantities(state)}

    assert crossval.check(step, "kradagrad_star", examples=2, seed=15).passed
    assert harness.candidate_kind(step) == "step"
    with pytest.raises(TypeError, match="candidate"):
        crossval.check(object(), "kradagrad_star")


# ------------------------------------------------------------------------------------------------------------------
# traces and the command line

def _trace_of(candidate, alg, shape, n, seed, path, dtype="float64", lines=False):
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(shape).astype(np.float32).astype(np.float64) / 3 for _ in range(n)]
    cfg = {}
    from krad_ref.crossval import format as gformat

    cfgd = gformat.config_fields(gformat.make_config(alg, cfg))
    got, _ = harness.run_candidate(candidate, alg, cfgd, shape, grads, dtype)
    return trace.write_trace(path, alg, cfg, dtype, grads, got, "test", lines=lines)


def test_verify_trace(tmp_path):
    good = _trace_of(adapters.KradRefCandidate("kradagrad_star"), "kradagrad_star", (4, 3), 3, 0,
                     tmp_path / "good.json")
    assert trace.verify_trace(good).passed
    bad = _trace_of(NumpyKradStar("norm"), "kradagrad_star", (4, 3), 3, 0, tmp_path / "bad.jsonl", lines=True)
    rep = trace.verify_trace(bad)
    assert not rep.passed and "trace:bad.jsonl" in str(rep)
    assert cli_main(["verify-trace", str(good)]) == 0
    assert cli_main(["verify-trace", str(bad)]) == 1
    (tmp_path / "junk.json").write_text(json.dumps({"format": "nope"}))
    assert cli_main(["verify-trace", str(tmp_path / "junk.json")]) == 2


def test_cli_check(capsys):
    assert cli_main(["check", "--candidate", "test_crossval_harness:_bad_factory", "--algorithm", "shampoo",
                     "--examples", "2"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "roots" in out
    assert cli_main(["check", "--candidate", "no_colon", "--algorithm", "shampoo"]) == 2


def _bad_factory():
    return NumpyShampoo("sqrt")


def test_no_hypothesis_or_torch_at_import():
    code = ("import sys, krad_ref.crossval, krad_ref.crossval.harness, krad_ref.crossval.trace, "
            "krad_ref.crossval.adapters; print(any(m in sys.modules for m in ('hypothesis', 'torch', 'mpmath')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


# ------------------------------------------------------------------------------------------------------------------
# PyTorch (optional)

def test_torch_example_smoke():
    pytest.importorskip("torch")
    spec = importlib.util.spec_from_file_location("crossval_torch", ROOT / "examples" / "crossval_torch.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    reports = mod.main(examples=3)
    assert all(r.passed for r in reports.values()), "\n".join(map(str, reports.values()))


def test_torch_adapter_keeps_dtypes():
    torch = pytest.importorskip("torch")

    class Downcast:  # claims float64, computes and returns float32
        def init(self, shape, config, dtype):
            return None

        def update(self, G, state, config):
            return G.to(torch.float32), state

    rep = crossval.check(adapters.TorchCandidate(Downcast()), "adagrad_diag", cases=None, examples=1)
    assert not rep.passed and rep.first_divergence.quantity == "dtype"
    a = np.arange(3.0)
    t = adapters.numpy_to_torch(a)
    assert t.dtype == torch.float64 and adapters.torch_to_numpy(t.float()).dtype == np.float32


@pytest.mark.parametrize("alg", ["kradagrad_star", "kradagrad", "shampoo", "adagrad_full", "adagrad_diag",
                                 "mbag", "mbag_ema", "mbag_n"])
def test_krad_ref_itself_passes_for_every_algorithm(alg):
    """The adapter around krad_ref must map every algorithm's state to the same quantities as the golden format
    (regression: MBAG-EMA's statistic G was read as its momentum buffer and the run failed on shapes)."""
    from krad_ref.crossval import adapters

    report = crossval.check(adapters.KradRefCandidate(alg), alg, examples=2, seed=1)
    assert report.passed, str(report)
