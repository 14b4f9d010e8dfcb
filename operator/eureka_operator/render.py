"""`eureka render RLJOB.yaml`: print the objects the operator would create (a dry run).

Uses the operator's own builder, so what this prints is what the operator applies (owner
references aside: they need the RLJob's uid, which exists only once the RLJob is in a cluster).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import yaml

from eureka_operator.builder import build_objects
from eureka_trainer.config import RLJobError, load_rljobs
from eureka_trainer.config.loader import EXIT_INVALID

EXAMPLES = """examples:
  eureka render job.yaml                           # multi-document YAML, as kubectl apply takes it
  eureka render job.yaml --kind RayJob -n team-a   # only the RayJob, in namespace team-a
  eureka render job.yaml -o json | jq '.items[].kind'

exit status: 0 rendered; 2 the file is not a valid RLJob (every problem printed on stderr).
"""


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
    parser.add_argument(
        "-o",
        "--output",
        choices=("yaml", "json"),
        default="yaml",
        help="yaml (default): one document per object; json: a v1 List, as kubectl prints it",
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


def objects(
    text_file: str, namespace: str | None = None, kinds: list[str] | None = None
) -> list[dict[str, Any]]:
    """Every object of every RLJob in the file (those of `kinds` only, when given)."""
    docs = []
    for job in load_rljobs(text_file):
        for obj in build_objects(job, namespace=namespace):
            if not kinds or obj["kind"] in kinds:
                docs.append(obj)
    return docs


def render(text_file: str, namespace: str | None = None, kinds: list[str] | None = None) -> str:
    """The multi-document YAML of every object of every RLJob in the file."""
    docs = objects(text_file, namespace, kinds)
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, explicit_start=True)


def run(args: argparse.Namespace) -> int:
    try:
        docs = objects(args.file, args.namespace, args.kind)
    except RLJobError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID
    if args.output == "json":
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}, indent=2))
        return 0
    text = yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, explicit_start=True)
    sys.stdout.write(
        "# Rendered by `eureka render`; the operator adds ownerReferences to the RLJob.\n"
    )
    sys.stdout.write(text)
    return 0
