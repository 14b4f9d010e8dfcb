"""`eureka validate FILE...`: check RLJob YAML files as the operator would."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

import yaml

from eureka_operator.builder import rayjob_name, unmounted_paths
from eureka_trainer.config import RLJobError, load_rljobs
from eureka_trainer.config.loader import EXIT_INVALID

EXAMPLES = """examples:
  eureka validate job.yaml
  eureka validate manifests/examples/*.yaml -q     # CI: print problems only
  eureka validate job.yaml -o json                 # [{file, ok, jobs, problems: [{line, path, message}], warnings}]

exit status: 0 every file is valid; 2 a file has a problem (each printed as FILE:LINE: PATH: MESSAGE).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="RLJob YAML files (multi-document allowed)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    parser.add_argument(
        "-o",
        "--output",
        choices=("text", "json", "yaml"),
        default="text",
        help="text (default): problems on stderr; json/yaml: one report per file on stdout",
    )


def check(file: str) -> dict[str, Any]:
    """One file's report: `file`, `ok`, the job names and every problem."""
    try:
        jobs = load_rljobs(file)
    except RLJobError as err:
        return {
            "file": file,
            "ok": False,
            "jobs": [],
            "problems": [asdict(p) for p in err.problems],
        }
    return {
        "file": file,
        "ok": True,
        "jobs": [j.metadata.name for j in jobs],
        "problems": [],
        "warnings": [w for job in jobs for w in warnings(job)],
    }


def warnings(job: Any) -> list[str]:
    """What the operator will do or need that the user may not expect (the file is valid)."""
    name = job.metadata.name
    found = [
        f"{name}: spec.{field} {path} is on no volume of the pods (add spec.resources.volumes "
        "and volumeMounts, unless the trainer image contains it)"
        for field, path in unmounted_paths(job)
    ]
    # Said here as the operator will do it: KubeRay needs a DNS-1035 label of at most 47
    # characters for the RayJob; the RLJob keeps its own name.
    if (child := rayjob_name(name)) != name:
        found.append(
            f"{name}: its RayJob will be named {child} (KubeRay needs a name starting with a "
            "letter, at most 47 characters)"
        )
    return found


def run(args: argparse.Namespace) -> int:
    reports = [check(file) for file in args.files]
    failed = not all(report["ok"] for report in reports)
    if args.output == "json":
        print(json.dumps(reports, indent=2))
    elif args.output == "yaml":
        print(yaml.safe_dump(reports, sort_keys=False), end="")
    else:
        for report in reports:
            if not report["ok"]:
                for problem in load_problems(report):
                    print(problem, file=sys.stderr)
            elif not args.quiet:
                names = ", ".join(report["jobs"]) or "no documents"
                print(f"{report['file']}: ok ({names})")
                for warning in report["warnings"]:
                    print(f"  warning: {warning}")
    return EXIT_INVALID if failed else 0


def load_problems(report: dict[str, Any]) -> list[str]:
    """The problems of a report as `eureka validate` prints them."""
    from eureka_trainer.config import Problem

    return [str(Problem(**p)) for p in report["problems"]]
