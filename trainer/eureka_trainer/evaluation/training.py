"""The driver's two calls for evaluation during training (`spec.evaluation`, `data.evalFiles`).

    evaluator = build_evaluator(spec, processor, paths, scorer)      # in driver.setup.build_run
    metrics.update(maybe_evaluate(evaluator, topology.generate, step, total_steps))  # per step

Evaluation runs after the step's weight sync, so it sees the weights the step's checkpoint holds:
evaluating that checkpoint offline (`eureka eval --model RUN_DIR`) gives the same greedy
responses. Its metrics (`eval/accuracy` ...) travel with the step's metrics to every status sink
(the run directory's `metrics.jsonl`, the RLJob status curves, the dashboard); each evaluation's
per-record results go to `<run dir>/eval/step-<N>/`.
"""

from __future__ import annotations

from typing import Any

from eureka_trainer.evaluation.runner import Evaluator, GenerateFn


def build_evaluator(spec: Any, processor: Any, paths: Any, scorer: Any = None) -> Evaluator | None:
    """The job's evaluator, or None without `data.evalFiles`.

    `paths`: the run's `RunPaths` (demo names resolve under `paths.assets`, results go to
    `paths.run_dir / "eval"`); `scorer`: the training `BatchScorer`, reused when its reward mode
    matches the evaluation template. Bad eval records raise `EvalDataError` before training.
    """
    if not spec.data.eval_files:
        return None
    from eureka_trainer.demo.resolve import resolve_data_file

    files = [resolve_data_file(f, paths.assets) for f in spec.data.eval_files]
    return Evaluator.from_spec(
        spec,
        processor,
        eval_files=files,
        shared_scorer=scorer,
        output_dir=paths.run_dir / "eval",
    )


def maybe_evaluate(
    evaluator: Evaluator | None, generate: GenerateFn, step: int, total_steps: int
) -> dict[str, float]:
    """`eval/*` metrics when `step` is an evaluation step (every `intervalSteps`, and the last
    step), else nothing."""
    if evaluator is None or not evaluator.due(step, final=step == total_steps):
        return {}
    return evaluator.run(generate, step).metrics
