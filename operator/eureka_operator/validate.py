"""`eureka validate FILE...`: check RLJob YAML files as the operator would."""

from __future__ import annotations

import argparse
import sys

from eureka_operator.builder import rayjob_name, unmounted_paths
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
            for job in jobs:
                # Said here as the operator will do it: KubeRay needs a DNS-1035 label of at
                # most 47 characters for the RayJob; the RLJob keeps its own name.
                for field, path in unmounted_paths(job):
                    print(
                        f"  {job.metadata.name}: warning: spec.{field} {path} is on no volume "
                        "of the pods (add spec.resources.volumes and volumeMounts, unless the "
                        "trainer image contains it)"
                    )
                if (child := rayjob_name(job.metadata.name)) != job.metadata.name:
                    print(
                        f"  {job.metadata.name}: its RayJob will be named {child} (KubeRay "
                        "needs a name starting with a letter, at most 47 characters)"
                    )
    return 1 if failed else 0
