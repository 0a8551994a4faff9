"""Minimal reproduction of torch-optimizer 0.3.0's Shampoo FAIL: patch the offending lines in memory, then it passes.

    python examples/peer_torch_optimizer_patch.py      # needs pip install -e '.[peers]'

``torch_optimizer/shampoo.py`` accumulates the statistic of mode i from ``grad`` AFTER the roots of modes 0..i-1
were applied to it (line 128 ``precond.add_(grad @ grad_t)`` inside the loop that rebinds ``grad`` at line 139).
Shampoo (Gupta et al. 2018, Alg. 2; KrADagrad Eq. 2) accumulates the raw gradient's unfolding. This script
takes the library's own source of ``Shampoo.step`` (``inspect.getsource``), replaces that one statement by the
raw gradient's mode-i Gram (and keeps a copy of the raw gradient before the loop), compiles it in the module's
namespace (nothing is written to disk, the installed package is untouched) and runs the same conformance
configurations: the unmodified class FAILs from step 1, the patched one PASSes in float64 and float32.
"""
from __future__ import annotations

import inspect
import sys
import textwrap

OFFENDING = "precond.add_(grad @ grad_t)"
ANCHOR = "# See Algorithm 2 for detail"


def patched_shampoo_class():
    """torch_optimizer.Shampoo with the statistics accumulated from the raw gradient (the only change)."""
    import torch_optimizer.shampoo as mod

    src = textwrap.dedent(inspect.getsource(mod.Shampoo.step))
    out = []
    for line in src.splitlines():
        indent = line[: len(line) - len(line.lstrip())]
        if line.strip() == ANCHOR:
            out.append(f"{indent}raw = grad.clone()  # PATCH: keep the gradient before any root is applied")
        if line.strip() == OFFENDING:  # PATCH: the raw gradient's mode-dim_id unfolding
            out.append(f"{indent}unfolded = raw.transpose(0, dim_id).contiguous().view(dim, -1)")
            out.append(f"{indent}precond.add_(unfolded @ unfolded.t())")
            continue
        out.append(line)
    if sum(OFFENDING in ln for ln in src.splitlines()) != 1 or sum(ANCHOR in ln for ln in src.splitlines()) != 1:
        raise RuntimeError("torch_optimizer.Shampoo.step changed: the patch no longer applies (pinned: 0.3.0)")
    namespace = dict(vars(mod))
    exec(compile("\n".join(out), f"<patched {mod.__file__}>", "exec"), namespace)  # noqa: S102 - the library's own code
    return type("PatchedShampoo", (mod.Shampoo,), {"step": namespace["step"]})


def check_both(dtypes=("float64", "float32"), examples: int = 10) -> dict:
    """{(configuration, dtype, "unmodified" | "patched"): CheckReport} over the peer's mapped configurations."""
    from krad_ref.crossval import harness, peers
    from krad_ref.crossval.peers import peer_torch_optimizer

    peer = peer_torch_optimizer.SHAMPOO
    patched = patched_shampoo_class()
    out = {}
    for conf in peer.configurations:
        if conf.config is None:
            continue
        for dt in dtypes:
            for label, cls in (("unmodified", None), ("patched", patched)):
                cand = peers.OptimizerCandidate(peer, conf, cls=cls)
                out[(conf.name, dt, label)] = harness.check(cand, "shampoo", conf.config, dtype=dt, cases=None,
                                                            examples=examples, seed=0)
    return out


def main() -> int:
    reports = check_both()
    for (name, dt, label), rep in reports.items():
        print(f"{label:>10} [{name}] {dt}: {rep.verdict}"
              + (f"  first divergence {rep.first_divergence}" if rep.first_divergence else ""))
    ok = all(r.passed == (k[2] == "patched") for k, r in reports.items())
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        import torch_optimizer  # noqa: F401
    except ImportError:
        print("peer_torch_optimizer_patch: torch-optimizer is not installed (pip install -e '.[peers]')")
        sys.exit(0)
    sys.exit(main())
