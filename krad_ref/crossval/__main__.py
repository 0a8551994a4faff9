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
