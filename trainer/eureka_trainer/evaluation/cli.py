"""`eureka eval`: evaluate a model on an eval set, or re-score saved predictions.

    eureka eval --model PATH_OR_RUN --data FILE [FILE ...] --output DIR [--template T] [--samples K]
    eureka eval --predictions FILE --data FILE [FILE ...] --output DIR [--template T]

Both write `samples.jsonl` (per record), `predictions.jsonl` and `summary.json` under `--output`
and print a table (`-o json|yaml`: the summary instead). Exit status: 0 done, 2 bad input (every
problem named by file and line), as every `eureka` subcommand.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from eureka_trainer.evaluation.templates import TEMPLATES

EXAMPLES = """examples:
  eureka eval --model runs/demo --output runs/demo/eval          # the run's newest checkpoint
  eureka eval --model Qwen2.5-VL-7B --data k12.jsonl --output out --samples 8
  eureka eval --predictions preds.jsonl --data k12.jsonl --output out -o json

exit status: 0 done; 2 bad input (every problem named by file and line).
"""
EXIT_INVALID = 2
"""As eureka_trainer.config.loader.EXIT_INVALID (not imported: eval starts without pydantic work)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `eureka eval` options."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--model",
        metavar="PATH_OR_RUN",
        help="a local HF model folder, or a run directory of `eureka run` (its newest checkpoint)",
    )
    source.add_argument(
        "--predictions",
        metavar="FILE",
        help="re-score these saved predictions ({id, response} rows) without a model",
    )
    parser.add_argument(
        "--data",
        nargs="+",
        metavar="FILE",
        help="eval set(s): K12 {id, question, answer, image_path} as JSON/JSONL, or the training "
        "JSONL formats (default with a run directory: its data.evalFiles)",
    )
    parser.add_argument(
        "--output", required=True, metavar="DIR", help="folder for samples.jsonl and summary.json"
    )
    parser.add_argument(
        "-o",
        "--format",
        dest="format",
        choices=("table", "json", "yaml"),
        default="table",
        help="what to print: the table (default), or the summary as JSON or YAML",
    )
    parser.add_argument(
        "--template",
        choices=TEMPLATES.names(),
        default=None,
        help="prompt template and answer reading (default: the run's evaluation.template, else reasoning_instruct)",
    )
    parser.add_argument(
        "--image-root",
        default=None,
        help="folder K12 image paths are relative to (default: the data file's folder)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        help="seconds of math-verify per response (hard limit)",
    )
    parser.add_argument(
        "--reward-workers",
        type=int,
        default=0,
        help="math-verify worker processes (0: one per CPU core)",
    )
    gen = parser.add_argument_group("generation (with --model)")
    gen.add_argument(
        "--samples",
        type=int,
        default=None,
        help="responses per prompt; above 1 reports pass@k and maj@k",
    )
    gen.add_argument(
        "--temperature", type=float, default=None, help="0: greedy (default: the run's, else 0)"
    )
    gen.add_argument(
        "--top-p", type=float, default=None, help="default: the run's rollout.topP, else 1.0"
    )
    gen.add_argument(
        "--max-new-tokens", type=int, default=None, help="default: the run's, else 4096"
    )
    gen.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="prompts per generate call (default: 16 for hf, all for vllm)",
    )
    gen.add_argument(
        "--backend",
        choices=["auto", "hf", "vllm"],
        default="auto",
        help="auto: vllm when a GPU and vLLM are present, else hf",
    )
    gen.add_argument(
        "--family",
        default=None,
        help="model family (default: the run's model.family, else from the model config)",
    )
    gen.add_argument("--dtype", choices=["float32", "bfloat16", "float16"], default=None)
    gen.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the model folder's own Python files (a remote-code checkpoint such as "
        "OpenGVLab's InternVL2.5; a run's model.trustRemoteCode does this for a run directory); "
        "only for a folder you trust",
    )
    gen.add_argument(
        "--seed",
        type=int,
        default=None,
        help="sampling seed (default: the run's algorithm.seed, else 0)",
    )
    gen.add_argument("--limit", type=int, default=None, help="evaluate only the first N records")


def run(args: argparse.Namespace) -> int:
    """Evaluate or re-score; print the table; 0 on success, 1 on bad input."""
    from eureka_trainer.evaluation.rows import EvalDataError

    if args.predictions and not args.data:
        print("eureka eval: --predictions needs --data (the gold answers)", file=sys.stderr)
        return EXIT_INVALID
    try:
        summary = _rescore(args) if args.predictions else _evaluate(args)
    except EvalDataError as err:
        print(f"eureka eval: {len(err.problems)} problem(s):", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID
    except (FileNotFoundError, ValueError) as err:
        print(f"eureka eval: {err}", file=sys.stderr)
        return EXIT_INVALID
    if args.format == "json":
        import json

        print(json.dumps(summary, indent=2, default=str))
        return 0
    if args.format == "yaml":
        import yaml

        print(yaml.safe_dump(json_safe(summary), sort_keys=False), end="")
        return 0
    from eureka_trainer.evaluation.report import format_table

    print(format_table(summary))
    print(f"wrote {args.output}/summary.json and samples.jsonl")
    return 0


def json_safe(value: Any) -> Any:
    """`value` with only JSON types (what summary.json holds), for the YAML printer."""
    import json

    return json.loads(json.dumps(value, default=str))


def _rescore(args: argparse.Namespace) -> dict[str, Any]:
    from eureka_trainer.evaluation.datasets import read_gold
    from eureka_trainer.evaluation.metrics import summarize
    from eureka_trainer.evaluation.report import write_outputs
    from eureka_trainer.evaluation.rescore import (
        join,
        read_predictions,
        rescore_summary_extras,
        score_pairs,
    )
    from eureka_trainer.evaluation.scoring import EvalScorer
    from eureka_trainer.evaluation.templates import get_template

    template = get_template(args.template or "reasoning_instruct")
    golds = read_gold(args.data)
    joined = join(golds, read_predictions(args.predictions))
    with EvalScorer(template, timeout=args.timeout, workers=args.reward_workers) as scorer:
        records, timeouts = score_pairs(joined.pairs, scorer)
    summary = {
        "mode": "rescore",
        "predictions": str(args.predictions),
        "data": [str(d) for d in args.data],
        "template": template.name,
        **summarize(records),
        "timeouts": timeouts,
        **rescore_summary_extras(joined),
    }
    write_outputs(args.output, records, summary)
    return summary


def _evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from eureka_trainer.evaluation.offline import evaluate_model

    summary: dict[str, Any] = evaluate_model(args)
    return summary
