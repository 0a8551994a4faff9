"""Command line: ``python -m proofs_check [run [ID ...]] | list`` with ``--profile``, ``--json``, ``--markdown``.

  python -m proofs_check                      every claim, quick profile, table on stdout
  python -m proofs_check list                 ids, sources and expected verdicts
  python -m proofs_check run ID [ID ...]      reproduce chosen claims (same seed -> same result)
  python -m proofs_check --profile deep --json report.json --markdown report.md
  python -m proofs_check --certify            certified verdicts in ball arithmetic (proofs_check/certify.py)
  python -m proofs_check campaign --shards 4 --examples 200 --claims ID ...   sharded, resumable (see campaign.py)
  python -m proofs_check report DIR [--json F] [--markdown F]                 merged report of a campaign directory
  python -m proofs_check coverage [--markdown F] [--json F] [--run]          the statement ledger (coverage.py)
  python -m proofs_check golden --out DIR [--cases ID ...] [--list]           regenerate golden vectors (golden.py)

Exit status: 0 when every verdict matches its expectation (true statements hold, statements known to be false
as printed are found failing), 1 otherwise, 2 for usage errors. Progress goes to stderr, the table to stdout.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

from . import certify, report, runner
from . import claim as claim_mod


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m proofs_check", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", nargs="?", default="run", choices=("run", "list"), help="run (default) or list")
    p.add_argument("ids", nargs="*", metavar="ID", help="claim ids to run (default: all)")
    p.add_argument("--profile", default="quick", choices=sorted(runner.PROFILES), help="search effort (default quick)")
    p.add_argument("--examples", type=int, default=None, help="override the profile's examples per claim")
    p.add_argument("--seed", type=int, default=runner.DEFAULT_SEED, help=f"campaign seed (default {runner.DEFAULT_SEED})")
    p.add_argument("--json", metavar="FILE", help="write the JSON report here")
    p.add_argument("--markdown", metavar="FILE", help="write the Markdown report here")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--certify", action=argparse.BooleanOptionalAction, default=None,
                   help="certify every instance in ball arithmetic (python-flint; see proofs_check/certify.py); "
                        "default: on in the profiles that enable it")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "coverage":
        from . import coverage

        return coverage.main(argv[1:])
    if argv and argv[0] in ("campaign", "report"):
        from . import campaign  # imports dask only when a campaign runs on it

        return campaign.main_campaign(argv[1:]) if argv[0] == "campaign" else campaign.main_report(argv[1:])
    if argv and argv[0] == "golden":
        from . import golden  # imports the twins only when golden vectors are generated

        return golden.main_golden(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "list":
        if args.ids:
            print("list takes no ids", file=sys.stderr)
            return 2
        for c in claim_mod.all_claims():
            print(f"{c.id:40s} {str(c.source):38s} expected {c.expected}")
        return 0
    try:
        claims = [claim_mod.get(i) for i in args.ids] if args.ids else claim_mod.all_claims()
    except KeyError as exc:
        print(exc.args[0], file=sys.stderr)
        return 2
    profile = runner.PROFILES[args.profile]
    if args.examples is not None:
        if args.examples < 1:
            print("--examples must be positive", file=sys.stderr)
            return 2
        profile = dataclasses.replace(profile, examples=args.examples)
    if args.certify is not None:
        profile = dataclasses.replace(profile, certify=args.certify)
    if profile.certify and not certify.available():
        print(f"note: no certified verdicts: {certify.MISSING}", file=sys.stderr)
        profile = dataclasses.replace(profile, certify=False)
    progress = (lambda line: None) if args.quiet else None
    results = runner.run(claims, profile=profile, seed=args.seed, progress=progress)
    print(report.to_text(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(report.to_json(results, profile=profile.name, seed=args.seed))
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as fh:
            fh.write(report.to_markdown(results, profile=profile.name, seed=args.seed))
    return 0 if all(r.matches for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
