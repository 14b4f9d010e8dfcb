"""`eureka run RLJOB.yaml [--output DIR] [--cluster]`: train an RLJob with the Ray driver.

Locally it starts Ray on this machine and writes a run directory (`rljob.yaml`,
`metrics.jsonl`, `samples.jsonl`, `status.json`, checkpoints, TensorBoard events); with
`--cluster` (how the RayJob's entrypoint calls it) it joins the running Ray cluster and also
reports to the RLJob's status. At the end it draws the reward curve in the terminal.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eureka_trainer.config.status import Progress, Sample
from eureka_trainer.reporting.base import FinalPhase, StatusSink

log = logging.getLogger("eureka.run")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("rljob", help="RLJob YAML file")
    parser.add_argument(
        "--output", help="run directory (default: runs/<job name>); a rerun resumes there"
    )
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="join the running Ray cluster (ray.init('auto')) and report to the RLJob status",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--plan",
        action="store_true",
        help="print where every actor would land (role, rank, node, GPU ids) on a simulated "
        "cluster of the spec's size, and exit without training",
    )
    parser.add_argument(
        "-o",
        dest="plan_format",
        choices=("table", "json"),
        default="table",
        help="--plan output format (default: table)",
    )


class FanOutSink:
    """Sends every call to several sinks (run directory + Kubernetes)."""

    def __init__(self, sinks: Sequence[StatusSink]) -> None:
        self.sinks = list(sinks)

    def started(self, total_steps: int | None) -> None:
        for sink in self.sinks:
            sink.started(total_steps)

    def report(
        self, progress: Progress, metrics: Mapping[str, float], samples: Sequence[Sample]
    ) -> None:
        for sink in self.sinks:
            sink.report(progress, metrics, samples)

    def finished(self, phase: FinalPhase, message: str = "") -> None:
        for sink in self.sinks:
            sink.finished(phase, message)


def kube_sink() -> StatusSink | None:
    """The RLJob status sink, when its module is installed and a job name is known."""
    try:
        from eureka_trainer.reporting.kube import KubeStatusSink
    except ImportError as err:
        log.warning("no Kubernetes status reporting (%s)", err)
        return None
    try:
        return KubeStatusSink(
            os.environ.get("EUREKA_RLJOB_NAME"), os.environ.get("EUREKA_RLJOB_NAMESPACE")
        )
    except Exception as err:  # no name, no service account: training goes on without it
        log.warning("no Kubernetes status reporting: %s", err)
        return None


def text_plot(
    values: Sequence[float], *, width: int = 60, height: int = 10, label: str = ""
) -> str:
    """A plain-text line plot of `values` (downsampled to `width` columns by bucket means)."""
    if not values:
        return f"{label}: no data"
    buckets = min(width, len(values))
    cols = []
    for i in range(buckets):
        chunk = values[i * len(values) // buckets : (i + 1) * len(values) // buckets] or [
            values[-1]
        ]
        cols.append(sum(chunk) / len(chunk))
    low, high = min(cols), max(cols)
    span = (high - low) or 1.0
    rows = []
    for r in range(height - 1, -1, -1):
        level = low + span * r / (height - 1)
        line = "".join("*" if round((c - low) / span * (height - 1)) == r else " " for c in cols)
        rows.append(f"{level:8.3f} |{line}")
    rows.append(" " * 9 + "+" + "-" * len(cols))
    rows.append(" " * 10 + f"step 1{'':>{max(1, len(cols) - 12)}}step {len(values)}")
    return f"{label}\n" + "\n".join(rows)


class ProgressBar:
    """tqdm bar with the step's rewards; silent when disabled."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.bar: Any = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)

    def update(self, result: Any) -> None:
        if self.bar is None:
            return
        m = result.metrics
        self.bar.set_postfix(
            reward=f"{m.get('reward/total', 0):.3f}",
            acc=f"{m.get('reward/accuracy', 0):.3f}",
            fmt=f"{m.get('reward/format', 0):.3f}",
            refresh=False,
        )
        self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def init_ray(cluster: bool) -> None:
    import ray

    if ray.is_initialized():
        return
    if cluster:
        ray.init(address="auto", log_to_driver=True)
    else:
        ray.init(
            num_cpus=max(2, os.cpu_count() or 2),
            include_dashboard=False,
            log_to_driver=True,
            logging_level=logging.WARNING,
        )


def train(
    job: Any,
    run_dir: Path,
    *,
    cluster: bool = False,
    progress: bool = False,
    stop_after: int | None = None,
) -> int:
    """Run the job's training with the run directory sink; 0 on success, 1 on failure."""
    from eureka_trainer.driver.setup import build_run
    from eureka_trainer.reporting.rundir import RunDirSink

    spec = job.spec
    bar: ProgressBar | None = None
    sinks: list[StatusSink] = []

    def make_sink(resumed_step: int) -> StatusSink:
        sinks.append(
            RunDirSink(
                run_dir, tensorboard=spec.logging.tensorboard.enabled, resumed_step=resumed_step
            )
        )
        extra = kube_sink() if cluster else None
        if extra is not None:
            sinks.append(extra)
        return FanOutSink(sinks)

    init_ray(cluster)
    run = None
    try:
        holder: dict[str, ProgressBar] = {}
        run = build_run(
            spec,
            run_dir,
            make_sink,
            cluster=cluster,
            on_step=lambda result: holder["bar"].update(result),
            stop_after=stop_after,
        )
        latest = run.trainer.checkpoints.latest() if spec.checkpoint.resume == "auto" else None
        bar = holder["bar"] = ProgressBar(
            run.trainer.total_steps, latest[0] if latest else 0, progress
        )
        run.trainer.run()
        bar.close()
        if stop_after is None or run.trainer.step >= run.trainer.total_steps:
            FanOutSink(sinks).finished("Succeeded")
        return 0
    except Exception as err:
        if bar is not None:
            bar.close()
        log.exception("training failed")
        if sinks:
            FanOutSink(sinks).finished("Failed", f"{type(err).__name__}: {err}")
        else:
            from eureka_trainer.reporting.rundir import RunDirSink

            sink = RunDirSink(run_dir, tensorboard=False, resumed_step=10**9)
            sink.finished("Failed", f"{type(err).__name__}: {err}")
        return 1
    finally:
        if run is not None:
            run.close()


def summary(run_dir: Path) -> str:
    """The reward curves of a run directory as text, and how to open it in the dashboard."""
    rows = []
    path = run_dir / "metrics.jsonl"
    if path.exists():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    parts = [
        text_plot([r.get("reward/accuracy", 0.0) for r in rows], label="reward/accuracy per step"),
        text_plot([r.get("reward/total", 0.0) for r in rows], label="reward/total per step"),
        f"run directory: {run_dir.resolve()}",
        f"open it in the dashboard: eureka serve --runs {run_dir.resolve()}",
    ]
    return "\n\n".join(parts)


def print_plan(spec: Any, output: str) -> int:
    """`--plan`: the run's placement on a simulated cluster; 1 when a GPU is doubled up."""
    import contextlib

    from eureka_trainer.driver.plan import doubled_gpus, plan, render

    # Ray's own messages (its log monitor prints to stdout) go to stderr: stdout is the plan.
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            rows = plan(spec)
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
    print(render(rows, output))
    return 1 if doubled_gpus(rows) else 0


def run(args: argparse.Namespace) -> int:
    from eureka_trainer.config import RLJobError, load_rljob

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        job = load_rljob(args.rljob)
    except RLJobError as err:
        print(f"eureka run: invalid RLJob:\n{err}", file=sys.stderr)
        return 2
    if args.plan:
        return print_plan(job.spec, args.plan_format)
    run_dir = Path(args.output or Path("runs") / job.metadata.name)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "rljob.yaml").write_text(
        Path(args.rljob).read_text(encoding="utf-8"), encoding="utf-8"
    )
    began = time.perf_counter()
    status = train(
        job, run_dir, cluster=args.cluster, progress=not args.no_progress and sys.stderr.isatty()
    )
    print(summary(run_dir))
    print(
        f"wall time: {time.perf_counter() - began:.0f} s; status: {'Succeeded' if status == 0 else 'Failed'}"
    )
    return status
