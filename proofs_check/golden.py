"""Golden-vector generation (format v1, ``krad_ref.crossval.format``) through the mpmath twins.

Errata 17: generation needs mpmath and the twins, so it lives here, with its command line
(``python -m proofs_check golden --out DIR [--cases ...] [--list]``, :func:`main_golden`); ``krad_ref.crossval``
only loads, compares and reports, and never imports proofs_check (dependencies point one way).

For one case (algorithm id, Config, gradient sequence, the config's initial state) :func:`build_case` runs
``twins.twin_trajectory`` at ``DPS`` digits, rounds every state quantity, root and direction once to float64
(``twins.to_float``), and attaches:

* tolerances for float64 and float32 from ``krad_ref.crossval.tolerance.step_tolerances`` evaluated on the
  rounded expected values, each rounded *up* to a power of two (so that last-bit differences of the host's
  LAPACK never change the bytes of the file);
* residuals of each expected root that was recomputed at that step (None when the root is the cached one from an
  earlier step or the identity), computed in mp from the rounded float64 root X, so an implementer can compute the
  same number for their own root and compare:
    KrAD roots X = (F + s I)^e, e = 1/q (q integer):   ||X^q - (F + s I)||_F / ||F + s I||_F
    inverse roots X = A^(-1/q), A = S + eps I (Shampoo paper "absolute"), S + eps lambda_max(S) I ("relative"),
    H + delta I (AdaGrad full, "kradagrad" form):       ||A X^q - I||_F
    anything else (Shampoo reference-code floor, pinv, AdaGrad "duchi", non-integer q): None.

Inputs are deterministic and platform independent: gradients come from a 64-bit LCG as small integers times powers
of two, so every entry is exactly representable in float32 (a float32 implementation consumes the very same
inputs). No NumPy random generator is involved.

Case ids are ``<algorithm>/<name>``; ``SHIPPED`` lists the ones shipped inside the package.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from krad_ref import algorithm
from krad_ref.crossval import format as fmt
from krad_ref.crossval import tolerance as tolmod

from . import mp as M
from . import twins

DPS = 50

__all__ = ["DPS", "POW2_SLACK", "pow2_up", "CaseSpec", "CASES", "SHIPPED", "case_ids", "lcg_ints",
           "dyadic_matrix", "build_case", "generate", "generate_shipped", "main_golden"]


# ----------------------------------------------------------------------------------------------------------------
# deterministic inputs

def lcg_ints(seed: int, count: int, low: int = -8, high: int = 8) -> list[int]:
    """``count`` integers in [low, high] from Knuth's MMIX LCG (platform independent)."""
    x = (seed * 6364136223846793005 + 1442695040888963407) % 2**64
    out = []
    span = high - low + 1
    for _ in range(count):
        x = (x * 6364136223846793005 + 1442695040888963407) % 2**64
        out.append(low + (x >> 33) % span)
    return out


def dyadic_matrix(seed: int, shape: Sequence[int], scale_exp: int = -2, low: int = -8, high: int = 8) -> np.ndarray:
    """An array of integers in [low, high] times 2^scale_exp (exact in float32)."""
    n = math.prod(shape)
    vals = np.array(lcg_ints(seed, n, low, high), dtype=np.float64) * 2.0 ** scale_exp
    return vals.reshape(tuple(shape))


def _random(shape, seed, steps, scale_exp=-2):
    return [dyadic_matrix(seed + 101 * j, shape, scale_exp) for j in range(steps)]


def _ill(shape, seed, steps, big_exp=14):
    """Full-rank gradients with one row 2^big_exp larger: kappa of the factors grows like 4^big_exp (to ~1e10)."""
    out = []
    for j in range(steps):
        G = dyadic_matrix(seed + 101 * j, shape, -2)
        G[0] = G[0] * 2.0 ** big_exp
        G[0][G[0] == 0] = 2.0 ** big_exp
        out.append(G)
    return out


def _rank_one(shape, seed, steps, scale_exp=-1):
    """Rank-1 gradients a b^T, all with the same left vector a (rank-deficient statistics)."""
    a = dyadic_matrix(seed, (shape[0],), 0, -4, 4)
    a[0] = 3.0
    out = []
    for j in range(steps):
        b = dyadic_matrix(seed + 7 + 13 * j, tuple(shape[1:]), scale_exp, -4, 4)
        b.flat[0] = 1.0
        out.append(np.multiply.outer(a, b))
    return out


def _with_zero_cols(shape, seed, steps):
    """Gradients whose last column is zero (a rank-deficient right statistic)."""
    out = _random(shape, seed, steps)
    for G in out:
        G[..., -1] = 0.0
    return out


# ----------------------------------------------------------------------------------------------------------------
# the curated case list

@dataclasses.dataclass(frozen=True)
class CaseSpec:
    """One curated case: algorithm id, Config keyword arguments, parameter shape and gradient generator."""

    algorithm: str
    name: str
    description: str
    shape: tuple
    config: dict
    grads: Callable[[tuple, int, int], list]
    steps: int = 4
    seed: int = 1

    @property
    def case_id(self) -> str:
        return f"{self.algorithm}/{self.name}"


def _spec(alg, name, desc, shape, grads, config=None, steps=4, seed=1):
    return CaseSpec(alg, name, desc, tuple(shape), dict(config or {}), grads, steps, seed)


_LIST = [
    # KrADagrad*
    _spec("kradagrad_star", "well_5x3", "well-conditioned m != n, paper defaults", (5, 3), _random),
    _spec("kradagrad_star", "ill_5x4", "one gradient row 2^15 larger: kappa(L) ~ 1e10", (5, 4),
          lambda s, seed, k: _ill(s, seed, k, 15), seed=2),
    _spec("kradagrad_star", "rank1_4x3", "rank-1 gradients with a common left vector", (4, 3), _rank_one, seed=3),
    _spec("kradagrad_star", "zerocol_4x4", "square, gradients with a zero last column", (4, 4), _with_zero_cols,
          seed=4),
    _spec("kradagrad_star", "tensor_3x2x4", "order-3 tensor, exponent alpha/3", (3, 2, 4), _random, seed=5),
    _spec("kradagrad_star", "vector_6", "order-1 parameter, root L^(1/2)", (6,), _random, seed=6),
    _spec("kradagrad_star", "decay_spectral_4x3", "beta2 = 0.9 decay, spectral t", (4, 3), _random,
          dict(beta2=0.9, t_rule="spectral"), seed=7),
    _spec("kradagrad_star", "damping_4x3", "damping 0.05, trace t", (4, 3), _random,
          dict(damping=0.05, t_rule="trace"), seed=8),
    _spec("kradagrad_star", "freq_4x3", "update_freq 2, root_freq 2, start_preconditioning_step 3", (4, 3),
          _random, dict(update_freq=2, root_freq=2, start_preconditioning_step=3), steps=6, seed=9),
    _spec("kradagrad_star", "code_4x3", "reference-code variant (t = d(1+tr), L0 = 1e12 I, root shift 1e-8)",
          (4, 3), _random, dict(variant="reference-code"), seed=10),
    # KrADagrad (alternating)
    _spec("kradagrad", "well_5x3", "well-conditioned m != n, paper defaults (spectral t, alternate)", (5, 3),
          _random, seed=11),
    _spec("kradagrad", "damped_decay_4x3", "damping 0.01 and beta2 = 0.95", (4, 3), _random,
          dict(damping=0.01, beta2=0.95), seed=12),
    _spec("kradagrad", "tensor_2x3x2", "order-3 tensor, modes in turn", (2, 3, 2), _random, steps=6, seed=13),
    _spec("kradagrad", "ill_4x3", "one gradient row 2^12 larger", (4, 3), lambda s, seed, k: _ill(s, seed, k, 12),
          seed=14),
    # Shampoo
    _spec("shampoo", "well_5x3", "m != n, eps 1e-2 absolute (S is singular at step 1: eps sets kappa)", (5, 3),
          _random, dict(eps=1e-2), seed=21),
    _spec("shampoo", "rank1_5x3", "rank-1 gradients: kappa(S + eps I) ~ 1e7-1e8", (5, 3), _rank_one, seed=22),
    _spec("shampoo", "ill_4x3", "one gradient row 2^8 larger and eps 1e-6: kappa(S + eps I) to ~1e10", (4, 3),
          lambda s, seed, k: _rank_one(s, seed, k, 7), seed=23),
    _spec("shampoo", "decay_relative_4x4", "beta2 = 0.9, eps_mode relative", (4, 4), _random,
          dict(beta2=0.9, eps_mode="relative", eps=1e-4), seed=24),
    _spec("shampoo", "tensor_2x3x2", "order-3 tensor, roots S^(-1/6)", (2, 3, 2), _random, seed=25),
    _spec("shampoo", "code_4x3", "reference-code variant (S0 = eps I, floor at eps)", (4, 3), _random,
          dict(variant="reference-code"), seed=26),
    # AdaGrad (full matrix)
    _spec("adagrad_full", "well_3x2", "matrix gradient, H on vec(G) column-major", (3, 2), _random, seed=31),
    _spec("adagrad_full", "rankdef_6", "vector, fewer steps than dimensions: kappa = (lambda + delta)/delta",
          (6,), _random, dict(delta=1e-4), seed=32),
    _spec("adagrad_diag", "well_4x3", "diagonal AdaGrad, eps inside", (4, 3), _with_zero_cols, seed=33),
    # MBAG (Sherman-Morrison inverse statistics per group; roots compared at the same T_NS, errata 6)
    _spec("mbag", "well_4x3", "tau = n (one group per row), exact roots (eigh), T_sqr 1, lam 0.1", (4, 3), _random,
          dict(lam=0.1, T_sqr=1, root_method="eigh"), seed=41),
    _spec("mbag", "ill_ns_4x3", "one gradient row 2^6 larger: kappa(G) ~ 1e5 in one group; Newton-Schulz T_NS 7, "
          "T_sqr 2", (4, 3), lambda s, seed, k: _ill(s, seed, k, 6), dict(lam=0.1, T_sqr=2, T_NS=7), seed=42),
    _spec("mbag", "tau6_ns_4x3", "tau 6 < mn = 12 (two groups spanning rows), Newton-Schulz T_NS 5, T_sqr 1",
          (4, 3), _random, dict(lam=0.1, T_sqr=1, T_NS=5, tau=6), seed=43),
    _spec("mbag_n", "well_4x3", "MBAG-N: H itself preconditions, beta 0.9", (4, 3), _random, dict(lam=0.1),
          seed=44),
    _spec("mbag_ema", "well_3x4", "MBAG-EMA alpha 0.9, Newton-Schulz Y / sqrt(||G||_F), T_sqr 1", (3, 4), _random,
          dict(lam=0.1, alpha=0.9, T_sqr=1, T_NS=5), seed=45),
]

CASES: dict[str, CaseSpec] = {c.case_id: c for c in _LIST}
SHIPPED = ("kradagrad_star/well_5x3", "kradagrad_star/ill_5x4", "kradagrad_star/rank1_4x3",
           "kradagrad_star/tensor_3x2x4", "kradagrad/damped_decay_4x3", "shampoo/rank1_5x3",
           "adagrad_full/well_3x2", "adagrad_diag/well_4x3", "mbag/well_4x3", "mbag/tau6_ns_4x3")


def case_ids() -> list[str]:
    """Every curated case id, in list order."""
    return list(CASES)


def _resolve(names: Iterable[str] | None) -> list[CaseSpec]:
    if names is None:
        return list(_LIST)
    out = []
    for n in names:
        if n == "shipped":
            out += [CASES[c] for c in SHIPPED]
            continue
        cid = n.replace("__", "/")
        if cid not in CASES:
            raise KeyError(f"unknown case {n!r}; known: {', '.join(CASES)}")
        out.append(CASES[cid])
    return out


# ----------------------------------------------------------------------------------------------------------------
# building a case

#: Relative slack of the power-of-two rounding of tolerances (see :func:`pow2_up`).
POW2_SLACK = 2.0**-30


def pow2_up(x: float) -> float:
    """The smallest power of two >= x (1 - POW2_SLACK): a tolerance rounded up so that the bytes of a golden file
    do not depend on the last bits of the host's LAPACK and NumPy.

    The tolerance model is evaluated in float64 NumPy (norms, eigvalsh) on the expected values; where a case's
    conditioning is exactly 1 (accumulated Grams: kappa_F = 1, gamma = 1) the exact tolerance c n u k is itself
    a power of two and the float evaluation lands a few ulps above or below it, which a plain ceil(log2 x) sends
    to 2^k or 2^(k+1) depending on the NumPy build (kradagrad/damped_decay_4x3: 2^-16 (1 + 4e-16) under NumPy
    2.4, 2^-16 (1 + 7e-16) under NumPy 2.5, whose log2 rounds to -16.0 and just above). Values within
    POW2_SLACK (~1e-9, far above LAPACK's O(n u) differences, far below the factor-2 granularity) above a power
    of two snap to it. Exact arithmetic via frexp: no log2 rounding.
    """
    if x <= 0 or not math.isfinite(x):
        return x
    m, e = math.frexp(x * (1.0 - POW2_SLACK))  # x (1 - slack) = m 2^e, 0.5 <= m < 1
    return math.ldexp(1.0, e - 1) if m == 0.5 else math.ldexp(1.0, e)


def _f64(X) -> np.ndarray:
    return np.asarray(twins.to_float(X, "float64"), dtype=np.float64)


def _int_q(e: float) -> int | None:
    q = 1.0 / abs(e)
    return int(round(q)) if abs(q - round(q)) < 1e-12 and round(q) >= 1 else None


def _residual(alg: str, cfg: Any, e: float, F: np.ndarray, X: np.ndarray) -> float | None:
    if alg.startswith("mbag"):  # stacked roots; a fixed-T_NS root is no exact root of its statistic: not recorded
        return None
    q = _int_q(e)
    cfg = cfg.resolved() if callable(getattr(cfg, "resolved", None)) else cfg
    if q is None:
        return None
    with M.workdps(DPS):
        Fm, Xm = M.to_mp(F), M.to_mp(X)
        n = Fm.rows
        I = M.mp_eye(n)
        Xq = I
        for _ in range(q):
            Xq = Xq * Xm
        if e > 0:
            A = Fm + M.to_mpf(cfg.root_shift) * I
            return float(M.mp_norm_fro(Xq - A) / M.mp_norm_fro(A))
        if alg == "shampoo":
            if cfg.variant != "paper" or cfg.eps_mode not in ("absolute", "relative"):
                return None
            shift = M.to_mpf(cfg.eps)
            if cfg.eps_mode == "relative":
                shift = shift * M.mp_lambda_max(Fm)
        elif alg == "adagrad_full" and cfg.form == "kradagrad":
            shift = M.to_mpf(cfg.delta)
        else:
            return None
        return float(M.mp_norm_fro((Fm + shift * I) * Xq - I))


def build_case(spec: CaseSpec) -> fmt.GoldenCase:
    """Compute one golden case (module docstring)."""
    alg = algorithm.get(spec.algorithm)
    cfg = alg.Config(**spec.config)
    grads = [np.asarray(g, dtype=np.float64) for g in spec.grads(spec.shape, spec.seed, spec.steps)]
    for g in grads:
        assert g.shape == spec.shape and np.array_equal(g.astype(np.float32).astype(np.float64), g), spec.case_id
    recs = twins.twin_trajectory(spec.algorithm, cfg, grads, dps=DPS)
    init = fmt.initial_quantities(fmt.GoldenCase(spec.case_id, "", spec.algorithm, fmt.config_fields(cfg),
                                                 spec.shape, DPS, {}, (), ()))
    exps = tolmod.root_exponents(spec.algorithm, cfg, spec.shape)
    steps_q = []
    for r in recs:
        factors = tuple(_f64(F) for F in r["factors"])
        roots = tuple(_f64(P) for P in r["roots"]) if exps is not None else None
        steps_q.append({"factors": factors, "roots": roots, "direction": _f64(r["direction"])})
    tols = {dt: tolmod.step_tolerances(spec.algorithm, cfg, spec.shape, steps_q, grads, dt,
                                       init_factors=init["factors"]) for dt in fmt.DTYPES}
    steps = []
    prev_roots = init["roots"] if init["roots"] is not None else None
    for j, (r, q) in enumerate(zip(recs, steps_q)):
        res = None
        if q["roots"] is not None:
            res = []
            for i, (P, F) in enumerate(zip(q["roots"], q["factors"])):
                fresh = prev_roots is None or not np.array_equal(P, prev_roots[i])
                res.append(_residual(spec.algorithm, cfg, exps[i], F, P) if fresh else None)
            res = tuple(res)
            prev_roots = q["roots"]
        t = r.get("t")
        if spec.algorithm == "kradagrad":
            t = None if r.get("mode") is None else tuple(
                (float(t) if i == r["mode"] else None) for i in range(len(spec.shape)))
        elif t is not None:
            t = tuple(float(v) for v in t)
        tol = {dt: {"factors": tuple(pow2_up(v) for v in tols[dt][j]["factors"]),
                    "roots": None if tols[dt][j]["roots"] is None else tuple(pow2_up(v) for v in tols[dt][j]["roots"]),
                    "direction": pow2_up(tols[dt][j]["direction"])} for dt in fmt.DTYPES}
        steps.append(fmt.GoldenStep(j + 1, q["factors"], q["roots"], q["direction"],
                                    {"t": t, "mode": r.get("mode")}, {"roots": res}, tol))
    init_roots = init["roots"]
    if spec.algorithm == "adagrad_full":  # the state keeps no root; the golden roots are P of the direction
        init_roots = None
    return fmt.GoldenCase(spec.case_id, spec.description, spec.algorithm, fmt.config_fields(cfg), spec.shape, DPS,
                          {"factors": init["factors"], "roots": init_roots}, tuple(grads), tuple(steps))


def generate(out: str | Path, names: Iterable[str] | None = None) -> list[Path]:
    """Build the named cases (default: all; ``"shipped"``: the shipped set) and write them into ``out``.
    Returns the written .json paths."""
    names = None if names is None else list(names)
    paths = []
    for spec in _resolve(names or None):
        jp, _ = fmt.dump(build_case(spec), out)
        paths.append(jp)
    return paths


def generate_shipped(out: str | Path) -> list[Path]:
    """Regenerate the shipped set (``SHIPPED``) into ``out``."""
    return generate(out, SHIPPED)


# ----------------------------------------------------------------------------------------------------------------
# command line

def _golden_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m proofs_check golden",
                                description="Compute golden cases with the mpmath twins and write <case>.json and "
                                            "<case>.npz into --out. Deterministic: the same cases give "
                                            "byte-identical files.")
    p.add_argument("--out", help="output directory (created); required unless --list")
    p.add_argument("--cases", nargs="*", default=None,
                   help="case ids or file stems (default: the full curated list); 'shipped' = the set shipped "
                        "in krad_ref/crossval/golden")
    p.add_argument("--list", action="store_true", help="list the case ids and exit")
    return p


def main_golden(argv=None) -> int:
    """``python -m proofs_check golden``: exit status 0 written (or listed), 2 for a usage error or unknown case."""
    args = _golden_parser().parse_args(argv)
    if args.list:
        for cid in case_ids():
            print(cid)
        return 0
    if not args.out:
        print("golden: --out DIR is required", file=sys.stderr)
        return 2
    try:
        paths = generate(args.out, args.cases)
    except KeyError as exc:
        print(f"golden: {exc.args[0]}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0
