"""`eureka tiny-model --family F --output DIR`: a small random model of a supported family.

The folder loads like a hub checkpoint of that family (`model.name: DIR` with the same
`model.family`): smoke-test a cluster, the data and the whole RL step before downloading 8B
weights. Its outputs are random; it learns nothing useful.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from eureka_trainer.models.families import MODEL_FAMILIES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--family", required=True, choices=MODEL_FAMILIES.names(), help="model family"
    )
    parser.add_argument("--output", required=True, type=Path, metavar="DIR", help="new folder")
    parser.add_argument(
        "--layout",
        choices=("native", "remote-code"),
        default="native",
        help="checkpoint layout: transformers' own classes, or (internvl) the original "
        "InternVL2.5 chat model's remote code, loaded with model.trustRemoteCode: true",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument(
        "--force", action="store_true", help="write into DIR even when it is not empty"
    )


def run(args: argparse.Namespace) -> int:
    out: Path = args.output
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not args.force:
        print(
            f"eureka tiny-model: --output {out} exists and is not an empty folder "
            "(--force writes into it)",
            file=sys.stderr,
        )
        return 2
    from eureka_trainer.models.tiny import LAYOUTS, build_tiny_model

    if args.family not in LAYOUTS[args.layout]:
        known = ", ".join(LAYOUTS[args.layout].names())
        print(
            f"eureka tiny-model: --layout {args.layout} exists for --family {known} only",
            file=sys.stderr,
        )
        return 2
    tiny = build_tiny_model(args.family, out, seed=args.seed, layout=args.layout)
    params = sum(p.numel() for p in tiny.model.parameters())
    trust = " and model.trustRemoteCode: true" if args.layout == "remote-code" else ""
    print(
        f"{out}: tiny {args.family} model ({type(tiny.model).__name__}, {params / 1e6:.2f}M "
        f"parameters, vocabulary {len(tiny.tokenizer)}); use it as model.name: {out} "
        f"with model.family: {args.family}{trust}"
    )
    return 0
