"""`eureka validate FILE...`: check RLJob YAML files as the operator would."""

from __future__ import annotations

import argparse
import sys

from eureka_trainer.config import RLJobError, load_rljobs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="RLJob YAML files (multi-document allowed)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")


def run(args: argparse.Namespace) -> int:
    failed = False
    for file in args.files:
        try:
            jobs = load_rljobs(file)
        except RLJobError as err:
            failed = True
            for problem in err.problems:
                print(problem, file=sys.stderr)
            continue
        if not args.quiet:
            names = ", ".join(job.metadata.name for job in jobs) or "no documents"
            print(f"{file}: ok ({names})")
    return 1 if failed else 0
