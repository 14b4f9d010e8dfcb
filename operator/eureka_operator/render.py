"""`eureka render RLJOB.yaml`: print the objects the operator would create (a dry run).

Uses the operator's own builder, so what this prints is what the operator applies (owner
references aside: they need the RLJob's uid, which exists only once the RLJob is in a cluster).
"""

from __future__ import annotations

import argparse
import sys

import yaml

from eureka_operator.builder import build_objects
from eureka_trainer.config import RLJobError, load_rljobs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="RLJOB.yaml", help="RLJob YAML (multi-document allowed)")
    parser.add_argument(
        "-n",
        "--namespace",
        default=None,
        help="namespace when the RLJob names none (default: default)",
    )
    parser.add_argument(
        "--kind", action="append", default=[], help="print only objects of this kind (repeatable)"
    )


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the spec inside the ConfigMap) as readable `|` blocks; no `&id001`
    anchors where the builder shares an object (each value printed where it applies)."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(text_file: str, namespace: str | None = None, kinds: list[str] | None = None) -> str:
    """The multi-document YAML of every object of every RLJob in the file."""
    docs = []
    for job in load_rljobs(text_file):
        for obj in build_objects(job, namespace=namespace):
            if not kinds or obj["kind"] in kinds:
                docs.append(obj)
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, explicit_start=True)


def run(args: argparse.Namespace) -> int:
    try:
        text = render(args.file, args.namespace, args.kind)
    except RLJobError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 1
    sys.stdout.write(
        "# Rendered by `eureka render`; the operator adds ownerReferences to the RLJob.\n"
    )
    sys.stdout.write(text)
    return 0
