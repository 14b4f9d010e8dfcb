"""The `eureka` command. Each subcommand lives in its own module, imported only when used.

A subcommand module exposes `add_arguments(parser)` and `run(args) -> int` (the exit status),
so `eureka crd` never imports torch and `eureka run` never imports kopf.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "run": ("eureka_trainer.local", "run an RLJob locally (local Ray, CPU or local GPUs)"),
    "validate": ("eureka_operator.validate", "check RLJob YAML files (exit 2 on any problem)"),
    "crd": ("eureka_operator.crd", "print the RLJob CustomResourceDefinition"),
    "render": ("eureka_operator.render", "print the objects the operator would create"),
    "operator": ("eureka_operator.main", "run the kopf operator"),
    "serve": ("eureka_service.cli", "run the job service and dashboard"),
    "eval": ("eureka_trainer.evaluation.cli", "evaluate a model or re-score predictions"),
    "tiny-model": ("eureka_trainer.models.cli", "write a tiny random model of a family"),
}
EXAMPLES = """examples:
  eureka validate job.yaml                      # every mistake, with file, line and field
  eureka run manifests/examples/local-demo.yaml # train locally (CPU), write runs/<name>/
  eureka serve --runs runs/                     # dashboard over local run directories
  eureka render job.yaml -o json                # what the operator would create
  eureka <command> --help                       # options and examples of one command

exit status: 0 done; 1 the work ran and failed; 2 invalid file or options.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eureka",
        description="Rule-based RL for vision-language models, locally or on Kubernetes.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="eureka 0.1.0")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_module, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if not args or args[0] not in SUBCOMMANDS:
        parser.parse_args(args)  # prints usage or the unknown-command error and exits
        return 2
    name, rest = args[0], args[1:]
    module_name, help_text = SUBCOMMANDS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):
            print(
                f"eureka {name}: not available in this build ({module_name} missing)",
                file=sys.stderr,
            )
            return 2
        raise
    sub = argparse.ArgumentParser(
        prog=f"eureka {name}",
        description=help_text,
        epilog=getattr(module, "EXAMPLES", None),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    module.add_arguments(sub)
    status: int = module.run(sub.parse_args(rest))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
