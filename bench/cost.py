"""How an RL step's cost grows: step time against samples per prompt, prompts per step and model
width, each with the single-process floor (`floor.py`) beside it.

One axis moves at a time from the demo's shape (16 prompts x 8 samples, the demo model, 8 new
tokens); every row is a fresh Eureka run and a fresh floor run on the same assets, each in its
own process (`rl_step.run_side`), timed the same way (wall-clock after the warm-up steps), at
`rl_step`'s learning rate (1e-3 / width). Prints a Markdown table (the one in docs/trainer.md).

    .venv/bin/python bench/cost.py [--steps 12] [--warmup-steps 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

BASE = {"prompts": 16, "samples": 8, "width": 1}
AXES = (
    ("samples", (4, 16)),
    ("prompts", (8, 32)),
    ("width", (2, 4)),
)


def shapes() -> list[dict[str, int]]:
    """The base shape, then each axis' other values with the rest at the base."""
    rows = [dict(BASE)]
    for axis, values in AXES:
        rows.extend({**BASE, axis: value} for value in values)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    cli = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from rl_step import prepare_assets, run_side

    lines = [
        "| prompts x samples | width | Eureka s/step | floor s/step | Eureka/floor "
        "| Eureka samples/s |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        for index, shape in enumerate(shapes()):
            args = argparse.Namespace(**vars(cli), **shape, lr=1e-3 / shape["width"])
            run_dir = Path(tmp) / f"run{index}"
            args.model_dir = prepare_assets(args, run_dir, shared=Path(tmp) / "assets")
            eureka = run_side("eureka", args, run_dir)
            floor = run_side("floor", args, run_dir)
            steps = args.steps - args.warmup_steps
            line = (
                f"| {args.prompts} x {args.samples} | x{args.width} "
                f"| {eureka['seconds'] / steps:.3f} | {floor['seconds'] / steps:.3f} "
                f"| {eureka['samples/s'] / floor['samples/s']:.2f} | {eureka['samples/s']:.0f} |"
            )
            lines.append(line)
            print(line, flush=True)
    print(f"load average (1, 5 min): {os.getloadavg()[0]:.2f}, {os.getloadavg()[1]:.2f}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
