"""RL step throughput: Eureka's driver versus TRL's GRPOTrainer and the single-process floor.

Both trainers train the demo's tiny Qwen2-VL (or, with `--width W`, a copy W times wider that
computes the same function, so that it does the demo's work: `widen.py`; at 1e-3 / W by
default) on the generated shapes set with the same prompts x samples, max new tokens, learning
rate, steps and rewards (accuracy + format, scored by Eureka's `BatchScorer` for both), one
after the other on this machine, each in a fresh process. Printed: samples/s and generated
tokens/s of each, the ratios, and Eureka's phase timings. Start-up (Ray, model loading) and the
first `--warmup-steps` steps (lazy imports, first-call allocations) are excluded on every side:
wall-clock from the end of the last warm-up step to the end of the last step (for Eureka: after
each step's report is written, so reporting counts).

TRL runs in the configuration an expert in TRL would pick for this work on a CPU (printed with
the results): gradient checkpointing off (TRL's default is on; Eureka's learner runs without it
here), the same attention implementation (eager) and dtype (float32) as Eureka's learner, the
same torch thread count, one generation batch per optimiser step, logging, progress bars and
saving off. The third column is `bench/floor.py`: the same prompts (encoded each step), samples,
new tokens and update in one process with nothing around it (no Ray, reporting, sync; it learns
from the same rewards, with its clock stopped while it scores them), the bound Eureka's step
cannot beat.

    .venv/bin/python bench/rl_step.py [--steps 30] [--prompts 16] [--samples 8] [--width 1]
                                      [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def eureka_job(args: argparse.Namespace) -> Any:
    from eureka_trainer.config import validate_rljob

    name = "eureka-demo/tiny-qwen2-vl" if args.width == 1 else str(args.model_dir)
    spec = {
        "model": {"name": name, "family": "qwen2_vl", "dtype": "float32"},
        "data": {
            "trainFiles": ["eureka-demo://shapes"],
            "maxPromptLength": 64,
            "minPixels": 3136,
            "maxPixels": 3136,
        },
        "rewards": {},  # the default: one reward worker per core (they run while the learner waits)
        "algorithm": {
            "estimator": "grpo",
            "samplesPerPrompt": args.samples,
            "rolloutBatchSize": args.prompts,
            "trainBatchSize": args.prompts * args.samples,
            "maxSteps": args.steps,
            "learningRate": args.lr,
            "lrSchedule": "constant",
            "warmupRatio": 0.0,
        },
        "rollout": {"backend": "hf", "maxNewTokens": args.max_new_tokens},
        "learner": {
            "backend": "torch",
            "microBatchSize": args.prompts * args.samples,
            "gradientCheckpointing": False,
        },
        "resources": {"workers": {"gpus": 0}},
        "checkpoint": {"intervalSteps": 10**6, "storage": {"path": "checkpoints"}},
        "logging": {"tensorboard": {"enabled": False}},
    }
    return validate_rljob(
        {
            "apiVersion": "eureka.dev/v1alpha1",
            "kind": "RLJob",
            "metadata": {"name": "bench"},
            "spec": spec,
        }
    )


def run_eureka(args: argparse.Namespace, run_dir: Path) -> dict[str, float]:
    from eureka_trainer.driver.trainer import Trainer
    from eureka_trainer.local import train

    # The end of each step, reporting included (as TRL's clock is read after its step's
    # callbacks): the driver runs in this process, so its `report` can be timed from outside.
    ends: list[float] = []
    report = Trainer.report

    def timed_report(self: Any, groups: Any, metrics: Any) -> None:
        report(self, groups, metrics)
        ends.append(time.perf_counter())

    Trainer.report = timed_report  # type: ignore[method-assign]
    try:
        assert train(eureka_job(args), run_dir) == 0
    finally:
        Trainer.report = report  # type: ignore[method-assign]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = rows[args.warmup_steps :]
    seconds = ends[-1] - ends[args.warmup_steps - 1]
    samples = len(rows) * args.prompts * args.samples
    tokens = sum(r["response_length/mean"] * args.prompts * args.samples for r in rows)
    phases = {
        k: sum(r.get(k, 0.0) for r in rows) / len(rows) for k in rows[0] if k.startswith("time/")
    }
    return {
        "seconds": seconds,
        "samples/s": samples / seconds,
        "tokens/s": tokens / seconds,
        **phases,
    }


def prepare_assets(args: argparse.Namespace, run_dir: Path, shared: Path | None = None) -> Path:
    """The demo's model and shapes set under `run_dir/demo-assets` (what Eureka's run reuses),
    and with `--width W` a W times wider copy of the model; the folder every side trains."""
    from eureka_trainer.demo.assets import write_shapes
    from eureka_trainer.demo.resolve import BASE_MODEL_SEED, build_demo_model

    assets = run_dir / "demo-assets"
    if shared is not None:  # built once, linked into each run directory
        shared.mkdir(parents=True, exist_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        if not assets.exists():
            assets.symlink_to(shared, target_is_directory=True)
    write_shapes(assets / "shapes")
    demo = build_demo_model(assets / "tiny-qwen2-vl", BASE_MODEL_SEED)
    if args.width == 1:
        return demo
    from widen import widen

    wide = assets / f"tiny-qwen2-vl-x{args.width}"
    return wide if (wide / "config.json").is_file() else widen(demo, args.width, wide)


def run_trl(args: argparse.Namespace, run_dir: Path) -> dict[str, float]:
    from datasets import Dataset
    from PIL import Image
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from eureka_trainer.config import RewardsSpec
    from eureka_trainer.demo.resolve import load_demo_processor
    from eureka_trainer.rewards import BatchScorer

    model_dir = args.model_dir
    shapes = run_dir / "demo-assets" / "shapes"
    records = [json.loads(line) for line in (shapes / "shapes.jsonl").read_text().splitlines()]
    rows = {
        "prompt": [
            [
                {
                    "role": "user",
                    "content": [{"type": "image"}, {"type": "text", "text": "How many shapes?"}],
                }
            ]
            for _ in records
        ],
        "image": [
            Image.open(shapes / r["image_urls"][0].removeprefix("file://")).convert("RGB")
            for r in records
        ],
        "answer": [r["answer"] for r in records],
    }
    scorer = BatchScorer(RewardsSpec())  # the same scorer and workers as Eureka's
    generated: list[int] = []
    step_ends: list[float] = []

    class StepClock(TrainerCallback):  # type: ignore[misc]
        """Records when each optimiser step ends."""

        def __init__(self, ends: list[float]) -> None:
            self.ends = ends

        def on_step_end(self, *_: Any, **__: Any) -> None:
            self.ends.append(time.perf_counter())

    def reward(
        completions: list[Any],
        answer: list[str],
        completion_ids: list[list[int]] | None = None,
        **_: Any,
    ) -> list[float]:
        texts = [c[0]["content"] if isinstance(c, list) else c for c in completions]
        if completion_ids is not None:
            generated.append(sum(len(ids) for ids in completion_ids))
        return scorer.score(texts, answer).total

    config = GRPOConfig(**trl_expert_config(args, run_dir))
    trainer = GRPOTrainer(
        model=str(model_dir),
        reward_funcs=reward,
        args=config,
        train_dataset=Dataset.from_dict(rows),
        processing_class=load_demo_processor(run_dir / "demo-assets" / "tiny-qwen2-vl"),
        callbacks=[StepClock(step_ends)],
    )
    trainer.train()
    scorer.close()
    timed = args.steps - args.warmup_steps
    seconds = step_ends[-1] - step_ends[args.warmup_steps - 1]
    return {
        "seconds": seconds,
        "samples/s": timed * args.prompts * args.samples / seconds,
        # the reward function sees each step's completions once
        "tokens/s": sum(generated[args.warmup_steps :]) / seconds,
    }


def trl_expert_config(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    """GRPOConfig arguments of the fastest like-for-like TRL run on a CPU (see the module doc)."""
    return dict(
        output_dir=str(run_dir / "trl"),
        per_device_train_batch_size=args.prompts * args.samples,
        num_generations=args.samples,
        max_completion_length=args.max_new_tokens,
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        max_steps=args.steps,
        beta=0.0,
        temperature=1.0,
        logging_steps=10**6,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        bf16=False,
        seed=0,
        dataloader_num_workers=0,
        gradient_checkpointing=False,
        model_init_kwargs={"attn_implementation": "eager", "dtype": "float32"},
        num_iterations=1,
        disable_tqdm=True,
        log_completions=False,
    )


SIDES = ("eureka", "trl", "floor")


def run_side(side: str, args: argparse.Namespace, run_dir: Path) -> dict[str, float]:
    """One side's run in a fresh Python process (no Ray, threads, caches or allocator state
    left by another side), on the assets in `run_dir`; its result dict."""
    import subprocess
    import sys

    command = [sys.executable, __file__, "--side", side, "--run-dir", str(run_dir)]
    command += ["--model-dir", str(args.model_dir)]
    for name in ("steps", "prompts", "samples", "max_new_tokens", "lr", "warmup_steps", "width"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"the {side} run failed:\n{done.stderr[-4000:]}")
    result: dict[str, float] = json.loads(lines[-1].removeprefix(RESULT))
    return result


RESULT = "bench-result: "


def _child(args: argparse.Namespace) -> None:
    """`--side`: run one side here and print its result line."""
    import torch

    from floor import run_floor

    torch.set_num_threads(os.cpu_count() or 1)  # one thread count on every side
    run = {"eureka": run_eureka, "trl": run_trl, "floor": run_floor}[args.side]
    print(RESULT + json.dumps(run(args, args.run_dir)), flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (default 1e-3 / width: Adam moves a layer whose inputs are W copies "
        "W times as fast, and the wider model would stop answering like the demo's)",
    )
    parser.add_argument("--warmup-steps", type=int, default=2)
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the three sides this many times, interleaved, and report each side's median",
    )
    parser.add_argument(
        "--width", type=int, default=1, help="train a model this many times wider than the demo's"
    )
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not 1 <= args.warmup_steps < args.steps:
        parser.error("--warmup-steps must be at least 1 (TRL's clock starts at a step's end)")
    if args.lr is None:
        args.lr = 1e-3 / args.width
    return args


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median samples/s (a real run: its other figures stay consistent)."""
    ordered = sorted(runs, key=lambda r: r["samples/s"])
    return ordered[(len(ordered) - 1) // 2]


def round_ratios(ours: list[dict[str, float]], peers: list[dict[str, float]], name: str) -> str:
    """The ratio of each round's pair (the two ran minutes apart, so a slow spell of the
    machine hits both), and their median and range: steadier than the ratio of the medians
    when the machine's speed wanders between rounds."""
    import statistics

    ratios = [a["samples/s"] / b["samples/s"] for a, b in zip(ours, peers, strict=True)]
    shown = ", ".join(f"{r:.2f}" for r in ratios)
    return (
        f"ratio {name} by round: {shown} (median {statistics.median(ratios):.2f}x, "
        f"range {min(ratios):.2f}-{max(ratios):.2f})"
    )


def main() -> None:
    args = parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if args.side is not None:
        _child(args)
        return
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.rounds):  # interleaved: a slow spell hits every side
            # A fresh run directory each round (Eureka would resume the previous round's run).
            run_dir = Path(tmp) / f"round{index}"
            args.model_dir = prepare_assets(args, run_dir, shared=Path(tmp) / "assets")
            for side in SIDES:
                runs[side].append(run_side(side, args, run_dir))
    eureka, trl, floor = (median_run(runs[side]) for side in SIDES)
    expert = trl_expert_config(args, run_dir)
    shown = ("gradient_checkpointing", "model_init_kwargs", "bf16", "use_cpu", "num_iterations")
    print("TRL configuration: " + ", ".join(f"{k}={expert[k]}" for k in shown))
    print(
        f"model width: x{args.width}, learning rate: {args.lr:g}, torch threads: "
        f"{os.cpu_count() or 1}, each side in its own process, rounds: {args.rounds}, "
        f"load average (1, 5 min): {os.getloadavg()[0]:.2f}, {os.getloadavg()[1]:.2f}"
    )
    median = " (median of the rounds)" if args.rounds > 1 else ""
    print(f"{'':10} {'samples/s':>10} {'tokens/s':>10} {'seconds':>8}{median}")
    for name, result in (("eureka", eureka), ("trl", trl), ("floor", floor)):
        print(
            f"{name:10} {result['samples/s']:10.1f} {result['tokens/s']:10.1f} {result['seconds']:8.1f}"
        )
    print(f"ratio eureka/trl (samples/s): {eureka['samples/s'] / trl['samples/s']:.2f}x")
    print(f"ratio eureka/floor (samples/s): {eureka['samples/s'] / floor['samples/s']:.2f}x")
    if args.rounds > 1:
        for side in SIDES:
            print(
                f"{side} samples/s by round: "
                + ", ".join(f"{r['samples/s']:.0f}" for r in runs[side])
            )
        for peer in ("trl", "floor"):
            print(round_ratios(runs["eureka"], runs[peer], f"eureka/{peer}"))
    print(
        "eureka phase timings per step (s): "
        + ", ".join(f"{k[5:]}={v:.3f}" for k, v in eureka.items() if k.startswith("time/"))
    )


if __name__ == "__main__":
    main()
