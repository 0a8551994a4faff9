"""Cross-validate a compact PyTorch KrADagrad* and Shampoo against krad_ref (CPU, float64 and float32).

    python examples/crossval_torch.py            # prints one report per (algorithm, dtype)

The two optimizers below are written the way a practitioner would write them (matrices only, torch.linalg.eigh
roots, a dict of hyperparameters); ``krad_ref.crossval.adapters.TorchCandidate`` hands them NumPy-converted
inputs in the promised dtype, and ``krad_ref.crossval.check`` compares every step with the golden vectors and
with krad_ref on generated gradient sequences. Configurations they do not implement (tensors, the
reference-code variant, damping) are declined with NotImplementedError and reported as skipped.
"""
from __future__ import annotations

import sys

try:
    import torch
except ImportError:  # pragma: no cover - depends on the environment
    torch = None

from krad_ref import crossval
from krad_ref.crossval.adapters import TorchCandidate


def _sym(A):
    return (A + A.T) / 2


def _power(A, e):
    """A^e of a symmetric PSD matrix via eigh (negative rounding eigenvalues clipped to 0)."""
    w, V = torch.linalg.eigh(_sym(A))
    return (V * w.clamp(min=0) ** e) @ V.T


class TorchKradagradStar:
    """KrADagrad* (Alg. 1, paper variant) for a weight matrix: L, R are inverse statistics updated by Woodbury."""

    def init(self, shape, cfg, dtype=torch.float64 if torch else None):
        if len(shape) != 2 or cfg["variant"] != "paper" or cfg["damping"] or cfg["t_rule"] not in ("frobenius",
                                                                                                  "spectral"):
            raise NotImplementedError("matrices, variant='paper', no damping, t_rule frobenius/spectral")
        m, n = shape
        eye = lambda d: torch.eye(d, dtype=dtype)  # noqa: E731
        return {"step": 0, "factors": [cfg["init_scale"] * eye(m), cfg["init_scale"] * eye(n)],
                "roots": [eye(m), eye(n)]}

    @staticmethod
    def _shrink(F, A, cfg):
        F = F / cfg["beta2"]
        N = F @ A
        t = 1 + (torch.linalg.matrix_norm(N, 2) if cfg["t_rule"] == "spectral" else torch.linalg.matrix_norm(N))
        return _sym(F - N @ F / t)  # F - F A F / t, symmetrised

    def update(self, G, state, cfg):
        k = state["step"] + 1
        (L, R), (PL, PR) = state["factors"], state["roots"]
        if k % cfg["update_freq"] == 0:
            L, R = self._shrink(L, G @ G.T, cfg), self._shrink(R, G.T @ G, cfg)
        if k % cfg["root_freq"] == 0:
            e = cfg["exponent"] if cfg["exponent"] is not None else cfg["alpha"] / 2
            PL, PR = _power(L, e), _power(R, e)
        D = G.clone() if k < cfg["start_preconditioning_step"] else PL @ G @ PR
        return D, {"step": k, "factors": [L, R], "roots": [PL, PR]}


class TorchShampoo:
    """Shampoo (Eqs. 2-3, paper variant): L += G G^T, R += G^T G, D = (L + eps I)^{-1/4} G (R + eps I)^{-1/4}."""

    def init(self, shape, cfg, dtype=torch.float64 if torch else None):
        if len(shape) != 2 or cfg["variant"] != "paper" or cfg["eps_mode"] != "absolute" or cfg["root_method"] != "eigh":
            raise NotImplementedError("matrices, variant='paper', eps_mode='absolute', eigh roots")
        m, n = shape
        z = lambda d: torch.zeros(d, d, dtype=dtype)  # noqa: E731
        return {"step": 0, "factors": [z(m), z(n)], "roots": [torch.eye(m, dtype=dtype), torch.eye(n, dtype=dtype)]}

    @staticmethod
    def _inv_root(S, eps, p):
        w, V = torch.linalg.eigh(S)
        return (V * (w.clamp(min=0) + eps) ** (-1.0 / p)) @ V.T

    def update(self, G, state, cfg):
        k = state["step"] + 1
        (L, R), (PL, PR) = state["factors"], state["roots"]
        b2 = cfg["beta2"]
        if k % cfg["update_freq"] == 0:
            L = L + G @ G.T if b2 == 1 else b2 * L + (1 - b2) * G @ G.T
            R = R + G.T @ G if b2 == 1 else b2 * R + (1 - b2) * G.T @ G
        if k % cfg["root_freq"] == 0:
            p = cfg["exponent_override"] or 4
            PL, PR = self._inv_root(L, cfg["eps"], p), self._inv_root(R, cfg["eps"], p)
        D = G.clone() if k < cfg["start_preconditioning_step"] else PL @ G @ PR
        return D, {"step": k, "factors": [L, R], "roots": [PL, PR]}


def kradagrad_star_candidate() -> TorchCandidate:
    """Factory for the shell: ``python -m krad_ref.crossval check --candidate crossval_torch:kradagrad_star_candidate
    --algorithm kradagrad_star`` (with ``examples/`` on PYTHONPATH)."""
    return TorchCandidate(TorchKradagradStar(), name="torch TorchKradagradStar")


def shampoo_candidate() -> TorchCandidate:
    """Factory for the shell (``--candidate crossval_torch:shampoo_candidate --algorithm shampoo``)."""
    return TorchCandidate(TorchShampoo(), name="torch TorchShampoo")


def main(examples: int = 20) -> dict:
    """Check both optimizers in float64 and float32; print and return the reports."""
    reports = {}
    for alg, factory in (("kradagrad_star", kradagrad_star_candidate), ("shampoo", shampoo_candidate)):
        for dtype in ("float64", "float32"):
            rep = crossval.check(factory(), alg, dtype=dtype, examples=examples, seed=0)
            print(rep, end="\n\n")
            reports[(alg, dtype)] = rep
    return reports


if __name__ == "__main__":
    if torch is None:
        print("crossval_torch: PyTorch is not installed (pip install torch); nothing to check.")
        sys.exit(0)
    sys.exit(0 if all(r.passed for r in main().values()) else 1)
