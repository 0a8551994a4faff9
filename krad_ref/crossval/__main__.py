"""``python -m krad_ref.crossval SUBCOMMAND ...``: the cross-validation command line.

Subcommands are registered by functions ``register_<name>(subparsers)`` collected in ``REGISTRARS``; each adds
its parser and sets ``func`` (called with the parsed namespace, returns the exit status). Sections below:
``generate`` (golden vectors); ``check`` and ``verify-trace`` (the differential harness) are added to
``REGISTRARS`` in their own section.

``generate`` is the one place where krad_ref reaches into proofs_check at runtime (errata 17: generation needs
mpmath and the twins): ``proofs_check.golden`` is imported lazily inside the command, never at import time.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

REGISTRARS: list[Callable[[argparse._SubParsersAction], None]] = []


def register_subcommand(fn: Callable[[argparse._SubParsersAction], None]):
    """Decorator: add ``fn(subparsers)`` to the subcommands of the CLI (in definition order)."""
    REGISTRARS.append(fn)
    return fn


# ------------------------------------------------------------------------------------------------------------------
# generate

@register_subcommand
def register_generate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="regenerate golden vectors with the mpmath twins (needs proofs_check)",
                       description="Compute golden cases through proofs_check.golden (mpmath) and write "
                                   "<case>.json and <case>.npz into --out. Deterministic: the same cases give "
                                   "byte-identical files.")
    p.add_argument("--out", help="output directory (created); required unless --list")
    p.add_argument("--cases", nargs="*", default=None,
                   help="case ids or file stems (default: the full curated list); 'shipped' = the set shipped "
                        "in krad_ref/crossval/golden")
    p.add_argument("--list", action="store_true", help="list the case ids and exit")
    p.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    try:
        from proofs_check import golden  # lazy: mpmath + twins (errata 17)
    except ImportError as exc:  # pragma: no cover - installation without proofs_check
        print(f"generate needs proofs_check and mpmath (a krad_ref source checkout): {exc}", file=sys.stderr)
        return 2
    if args.list:
        for cid in golden.case_ids():
            print(cid)
        return 0
    if not args.out:
        print("generate: --out DIR is required", file=sys.stderr)
        return 2
    try:
        paths = golden.generate(args.out, args.cases)
    except KeyError as exc:
        print(f"generate: {exc.args[0]}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


# ------------------------------------------------------------------------------------------------------------------
# check / verify-trace: the differential harness registers its subcommands here (register_subcommand)
# (section owned by krad_ref/crossval/harness.py; imports are lazy so ``generate`` never loads the harness)

@register_subcommand
def register_check(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check", help="run a candidate implementation against krad_ref (differential harness)",
                       description="Load a candidate from MODULE:FACTORY (FACTORY() returns an object with "
                                   "init/update or a step callable; see krad_ref.crossval.harness) and compare "
                                   "it step by step with krad_ref on the golden vectors and on generated "
                                   "gradient sequences. Exit status 0: PASS, 1: FAIL, 2: NOT CHECKED (every "
                                   "run skipped, a config krad_ref refuses - the message names the config "
                                   "field - or a candidate/option that could not be loaded).")
    p.add_argument("--candidate", required=True, help="pkg.module:factory (called with no arguments)")
    p.add_argument("--algorithm", required=True, help="krad_ref algorithm id, e.g. kradagrad_star")
    p.add_argument("--dtype", default="float64", choices=("float64", "float32"))
    p.add_argument("--config", default=None, help="JSON object of Config fields for the generated sequences")
    p.add_argument("--cases", nargs="*", default=None,
                   help="golden cases (ids, stems or files); default: the shipped ones; 'none' for none")
    p.add_argument("--examples", type=int, default=20, help="generated gradient sequences (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-shrink", action="store_true")
    p.set_defaults(func=_check)


def _load_candidate(spec: str):
    import importlib

    mod, sep, attr = spec.partition(":")
    if not sep or not mod or not attr:
        raise ValueError(f"--candidate: expected pkg.module:factory, got {spec!r}")
    obj = importlib.import_module(mod)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj()


def _check(args: argparse.Namespace) -> int:
    import json

    from krad_ref.crossval import harness

    try:
        candidate = _load_candidate(args.candidate)
        config = None if args.config is None else json.loads(args.config)
        cases = "shipped" if args.cases is None else (None if args.cases == ["none"] else args.cases)
        report = harness.check(candidate, args.algorithm, config, dtype=args.dtype, cases=cases,
                               examples=args.examples, seed=args.seed, shrink=not args.no_shrink)
    except (ImportError, AttributeError, ValueError, TypeError, KeyError) as exc:
        print(f"check: NOT CHECKED: {type(exc).__name__}: {exc}", file=sys.stderr)
        return harness.EXIT_CODES[harness.NOT_CHECKED]
    print(report)
    return report.exit_code


@register_subcommand
def register_verify_trace(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("verify-trace", help="check a trace file written by an implementation in any language",
                       description="Compare the per-step outputs recorded in FILE (format: "
                                   "krad_ref.crossval.trace) with krad_ref. Exit status 0: PASS, 1: FAIL, "
                                   "2: NOT CHECKED (unreadable trace, or a run the reference refuses).")
    p.add_argument("file")
    p.set_defaults(func=_verify_trace)


def _verify_trace(args: argparse.Namespace) -> int:
    from krad_ref.crossval import trace

    try:
        report = trace.verify_trace(args.file)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"verify-trace: {exc}", file=sys.stderr)
        return 2
    print(report)
    return report.exit_code  # 2 (NOT CHECKED) when the reference refused the trace's only run



# ------------------------------------------------------------------------------------------------------------------
# peers: the conformance matrix of published implementations (krad_ref/crossval/peers)

@register_subcommand
def register_peers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("peers", help="check published Shampoo implementations (pip install -e '.[peers]')",
                       description="Run every installed published implementation (krad_ref.crossval.peers: "
                                   "pytorch-optimizer Shampoo / ScalableShampoo, torch-optimizer Shampoo, heavyball) "
                                   "over its mapped configurations and print the conformance matrix. Exit status: "
                                   "1 if any row FAILs, else 0 if any row PASSes, else 2 (nothing checked). "
                                   "Progress goes to stderr.")
    p.add_argument("--only", nargs="+", default=None, metavar="NAME",
                   help="package, optimizer or package:optimizer names (case-insensitive)")
    p.add_argument("--dtype", nargs="+", default=["float64", "float32"], choices=("float64", "float32"))
    p.add_argument("--json", default=None, metavar="F", help="write the rows as JSON to F")
    p.add_argument("--markdown", default=None, metavar="F", help="write the matrix as Markdown to F")
    p.add_argument("--examples", type=int, default=20, help="generated sequences per row (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_peers)


def _peers(args: argparse.Namespace) -> int:
    import json
    import time

    from krad_ref.crossval import peers

    t0 = time.perf_counter()
    try:
        rows = peers.run(args.only, args.dtype, examples=args.examples, seed=args.seed)
    except ValueError as exc:
        print(f"peers: NOT CHECKED: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - t0
    print(peers.matrix_text(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(peers.rows_json(rows, seconds), fh, indent=1)
            fh.write("\n")
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(peers.matrix_markdown(rows))
    print(f"peers: {len(rows)} rows in {seconds:.1f} s", file=sys.stderr)
    return peers.matrix_exit_code(rows)


# ------------------------------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m krad_ref.crossval",
                                     description="krad_ref cross-validation: golden vectors and harness")
    sub = parser.add_subparsers(dest="command", required=True)
    for fn in REGISTRARS:
        fn(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
