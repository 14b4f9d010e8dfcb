"""`eureka run RLJOB.yaml [--output DIR] [--cluster]`: train an RLJob with the Ray driver.

Locally it starts Ray on this machine and writes a run directory (`rljob.yaml`,
`metrics.jsonl`, `samples.jsonl`, `status.json`, checkpoints, TensorBoard events); with
`--cluster` (how the RayJob's entrypoint calls it) it joins the running Ray cluster and also
reports to the RLJob's status. At the end it draws the reward curve in the terminal.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
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
        "--set",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a field, e.g. --set algorithm.learningRate=1e-6 (repeatable; the value "
        "is YAML; the run directory's rljob.yaml records the result)",
    )
    parser.add_argument(
        "--max-steps", type=int, metavar="N", help="stop after N steps (spec.algorithm.maxSteps)"
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="start over: move the run directory's checkpoints and records into "
        "restarted-<time>/ instead of resuming from them",
    )
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


EXAMPLES = """examples:
  eureka run manifests/examples/local-demo.yaml
  eureka run job.yaml --output runs/lr-1e-6 --set algorithm.learningRate=1e-6
  eureka run job.yaml --max-steps 5 --set rollout.samplesPerPrompt=4   # a quick smoke run
"""


class FanOutSink:
    """Sends every call to several sinks (run directory + Kubernetes)."""

    def __init__(self, sinks: Sequence[StatusSink]) -> None:
        self.sinks = list(sinks)

    def started(self, total_steps: int | None, progress: Progress | None = None) -> None:
        for sink in self.sinks:
            sink.started(total_steps, progress)

    def report(
        self, progress: Progress, metrics: Mapping[str, float], samples: Sequence[Sample]
    ) -> None:
        for sink in self.sinks:
            sink.report(progress, metrics, samples)

    def finished(self, phase: FinalPhase, message: str = "", reason: str = "") -> None:
        for sink in self.sinks:
            sink.finished(phase, message, reason)


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


LOCAL_ACTOR_ENV = {
    # Ray starts worker processes at niceness 15 so that its own daemons stay responsive; on
    # one machine that makes the actors, which do the training, yield to the driver's reward
    # and encoding work and to every other process (their two compute threads stall each other
    # when one is preempted): 10-15% of a demo step on 2 cores.
    "RAY_worker_niceness": "0",
    # After each parallel region torch's OpenMP (libgomp) threads spin before they sleep: by
    # default about 10 ms of a core (300,000 spins) after every actor call, while the driver
    # scores, sends and receives on the same cores. 30,000 spins (1-2 ms) still bridge the
    # gaps between one call's operators. Measured on 2 cores (bench/rl_step.py's Eureka side,
    # medians of five alternated pairs): 659 -> 683 demo samples/s (+3.6%). Read by libgomp
    # when it loads, so only the actors, started after this, take it.
    "GOMP_SPINCOUNT": "30000",
}
"""Environment of the actors of a local run (set before `ray.init`; a user's value wins)."""


def init_ray(cluster: bool) -> None:
    import ray

    if ray.is_initialized():
        return
    if cluster:
        ray.init(address="auto", log_to_driver=True)
    else:
        for name, value in LOCAL_ACTOR_ENV.items():  # the actors inherit Ray's environment
            os.environ.setdefault(name, value)  # a user's own setting wins
        ray.init(
            # A Ray of its own: without an address, ray.init joins a cluster already running on
            # this machine (and then refuses num_cpus).
            address="local",
            num_cpus=max(2, os.cpu_count() or 2),
            include_dashboard=False,
            log_to_driver=True,
            logging_level=logging.WARNING,
        )


class Interrupted(Exception):
    """SIGTERM (or SIGINT) arrived: the run ends as Failed with reason `Interrupted`."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


class SignalGuard:
    """While active, SIGTERM and SIGINT raise `Interrupted` in the main thread, once (a second
    signal gets the previous handler, so a second Ctrl-C still stops a hanging cleanup).
    `signum` keeps the signal: Ray's `ray.get` may wrap the exception the handler raised in
    another one (a `SystemError` from its Cython code), so the caller asks `signum`, not the
    exception's type."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous = {sig: signal.getsignal(sig) for sig in self.SIGNALS}
        self.main = threading.current_thread() is threading.main_thread()

    def arm(self) -> None:
        """Install the handlers (again: `ray.init` replaces SIGTERM's with its core worker's
        crash handler, which aborts the process with no status written)."""
        if self.main:
            for sig in self.SIGNALS:
                signal.signal(sig, self._handler)

    def restore(self) -> None:
        if self.main:
            for sig, old in self.previous.items():
                if old is not None:  # None: a handler not installed from Python
                    signal.signal(sig, old)

    def _handler(self, signum: int, _frame: Any) -> None:
        self.restore()
        self.signum = signum
        raise Interrupted(signum)


@contextlib.contextmanager
def interruptible() -> Iterator[SignalGuard]:
    """A `SignalGuard`, armed for the block and restored after it."""
    guard = SignalGuard()
    guard.arm()
    try:
        yield guard
    finally:
        guard.restore()


EXIT_REFUSED = 2
"""Exit status of a run refused before it started (invalid RLJob, resume refused)."""


def train(
    job: Any,
    run_dir: Path,
    *,
    cluster: bool = False,
    progress: bool = False,
    stop_after: int | None = None,
    restart: bool = False,
    rljob_text: str | None = None,
    resume_command: str = "",
) -> int:
    """Run the job's training with the run directory sink: 0 on success, 1 on failure, 2 when
    the resume is refused (nothing is started or written), 128 + signal when interrupted.

    `restart` (or `checkpoint.resume: never`) moves old checkpoints and records aside first;
    `rljob_text` is written to `rljob.yaml` once the spec is known to match the checkpoints."""
    from eureka_trainer.checkpoint import CheckpointManager
    from eureka_trainer.driver import resume
    from eureka_trainer.driver.setup import build_run, run_paths
    from eureka_trainer.reporting.rundir import RunDirSink

    spec = job.spec
    manager = CheckpointManager(run_paths(spec, run_dir).checkpoints, spec.checkpoint.keep_last)
    try:
        if restart or spec.checkpoint.resume == "never":
            resume.restart(run_dir, manager)
        plan = resume.plan_resume(spec, manager, run_dir)
    except resume.ResumeRefused as err:
        log.error("%s", err)
        extra = kube_sink() if cluster else None
        if extra is not None:
            extra.finished("Failed", str(err), "ResumeRefused")
        return EXIT_REFUSED
    resume.record_changes(run_dir, plan)
    if rljob_text is not None:
        (run_dir / "rljob.yaml").write_text(rljob_text, encoding="utf-8")

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

    def end(message: str, reason: str) -> None:
        if bar is not None:
            bar.close()
        if sinks:
            FanOutSink(sinks).finished("Failed", message, reason)
        else:  # failed before the sinks existed (assets, actors): the run directory says so
            sink = RunDirSink(run_dir, tensorboard=False, resumed_step=10**9, heartbeat_seconds=0)
            sink.finished("Failed", message, reason)

    run = None
    with interruptible() as guard:
        try:
            init_ray(cluster)
            guard.arm()
            holder: dict[str, ProgressBar] = {}
            run = build_run(
                spec,
                run_dir,
                make_sink,
                cluster=cluster,
                on_step=lambda result: holder["bar"].update(result),
                stop_after=stop_after,
            )
            bar = holder["bar"] = ProgressBar(run.trainer.total_steps, plan.step, progress)
            run.trainer.run()
            bar.close()
            if stop_after is None or run.trainer.step >= run.trainer.total_steps:
                FanOutSink(sinks).finished("Succeeded", run.trainer.nothing_to_train or "")
            return 0
        except (Exception, KeyboardInterrupt) as err:
            if guard.signum is None and not isinstance(err, KeyboardInterrupt):
                log.exception("training failed")
                end(f"{type(err).__name__}: {err}", "TrainerError")
                return 1
            signum = guard.signum or int(signal.SIGINT)
            trainer = run.trainer if run is not None else None
            where = (
                f" at step {trainer.step} (last checkpoint: step {trainer.last_checkpoint})"
                if trainer is not None
                else " before training began"
            )
            message = f"interrupted by {signal.Signals(signum).name}{where}"
            if resume_command:
                message += f"; resume with: {resume_command}"
            log.error("%s", message)  # one line, no traceback: the user asked for it
            end(message, "Interrupted")
            return 128 + signum
        finally:
            if run is not None:
                run.close()


def summary(run_dir: Path) -> str:
    """The reward curves of a run directory as text, and how to open it in the dashboard."""
    rows = []
    path = run_dir / "metrics.jsonl"
    if path.exists():
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]

    def series(key: str) -> list[float]:  # a non-finite value is null in metrics.jsonl
        return [v for r in rows if isinstance(v := r.get(key), int | float)]

    parts = [
        text_plot(series("reward/accuracy"), label="reward/accuracy per step"),
        text_plot(series("reward/total"), label="reward/total per step"),
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
    from eureka_trainer.config import RLJobError
    from eureka_trainer.config.loader import EXIT_INVALID
    from eureka_trainer.config.overrides import load_rljob_with

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    overrides = list(args.set)
    if args.max_steps is not None:
        overrides.append(f"spec.algorithm.maxSteps={args.max_steps}")
    try:
        job, manifest = load_rljob_with(args.rljob, overrides)
    except RLJobError as err:
        print(f"eureka run: invalid RLJob:\n{err}", file=sys.stderr)
        return EXIT_INVALID
    if args.plan:
        return print_plan(job.spec, args.plan_format)
    run_dir = Path(args.output or Path("runs") / job.metadata.name)
    run_dir.mkdir(parents=True, exist_ok=True)
    original = Path(args.rljob).read_text(encoding="utf-8")
    # The resume command repeats the overrides: without them the spec differs and is refused.
    command = ["eureka", "run", args.rljob, "--output", str(run_dir)]
    command += [f"--set={override}" for override in args.set]
    if args.max_steps is not None:
        command.append(f"--max-steps={args.max_steps}")
    began = time.perf_counter()
    status = train(
        job,
        run_dir,
        cluster=args.cluster,
        progress=not args.no_progress and sys.stderr.isatty(),
        restart=getattr(args, "restart", False),
        # rljob.yaml is written only once the checkpoints are known to come from this spec.
        rljob_text=manifest if overrides else original,
        resume_command=shlex.join(command + (["--cluster"] if args.cluster else [])),
    )
    if status == EXIT_REFUSED:
        print(
            "eureka run: resume refused (nothing was started or changed); see above",
            file=sys.stderr,
        )
        return status
    print(summary(run_dir))
    outcome = {0: "Succeeded", 1: "Failed"}.get(status, "Failed (interrupted)")
    print(f"wall time: {time.perf_counter() - began:.0f} s; status: {outcome}")
    return status
