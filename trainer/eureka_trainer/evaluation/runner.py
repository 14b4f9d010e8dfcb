"""Evaluation through any `RolloutEngine`: encode once, generate in batches, score, summarise.

The same function serves `eureka eval --model` (an `hf` or `vllm` engine built for it) and the
driver's evaluation during training (the training rollout engine, with the current weights):

    evaluator = Evaluator.from_spec(spec, processor)          # reads and encodes the eval set once
    if evaluator.due(step, final=last_step):
        result = evaluator.run(engine)                       # EvalResult(metrics, records, ...)
        metrics.update(result.metrics)                       # eval/accuracy, eval/pass@k, ...

Sampling uses a fixed seed per evaluation, so two evaluations of the same weights are the same
and curves over training compare like with like.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eureka_trainer.backends import Completion, GenerationRequest, RolloutEngine, SamplingConfig
from eureka_trainer.evaluation.datasets import EvalItem, read_items
from eureka_trainer.evaluation.metrics import ScoredRecord, flat_metrics, summarize
from eureka_trainer.evaluation.report import write_outputs
from eureka_trainer.evaluation.rescore import score_pairs
from eureka_trainer.evaluation.scoring import EvalScorer
from eureka_trainer.evaluation.templates import Template, get_template

if TYPE_CHECKING:
    from eureka_trainer.config.spec import RLJobSpec

GenerateFn = Callable[[Sequence[GenerationRequest], SamplingConfig], list[list[Completion]]]
"""`RolloutEngine.generate`, or anything with its signature (e.g. a call through Ray actors)."""

#: Prompts per `generate` call: the same in training and offline, so greedy batches match.
DEFAULT_BATCH_SIZE = 16
#: Prompts per call by rollout backend: `hf` pads a batch to its longest prompt and holds its
#: logits, so small; vLLM schedules its own continuous batches, so it gets the whole set.
BATCH_SIZES = {"hf": DEFAULT_BATCH_SIZE, "vllm": 4096}


def batch_size_for(backend: str) -> int:
    """Prompts per `generate` call for a rollout backend."""
    return BATCH_SIZES.get(backend, DEFAULT_BATCH_SIZE)


@dataclass(frozen=True)
class EvalSettings:
    """How to evaluate: template, samples per prompt and the sampling of each."""

    template: str = "reasoning_instruct"
    samples: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_new_tokens: int = 4096
    seed: int = 0
    batch_size: int = DEFAULT_BATCH_SIZE

    def sampling(self) -> SamplingConfig:
        """The engine's sampling config (temperature 0: greedy)."""
        return SamplingConfig(
            n=self.samples,
            max_new_tokens=self.max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            seed=self.seed,
        )


@dataclass
class EncodingSettings:
    """How prompts are encoded: the training data settings (`spec.data`) and the model family."""

    family: str
    max_prompt_length: int = 2048
    min_pixels: int = 4 * 28 * 28
    max_pixels: int = 640 * 28 * 28


@dataclass
class EvalResult:
    """One evaluation: flat `metrics` (`eval/accuracy` ...), the per-record `records`, the
    `summary` (what `summary.json` holds) and `seconds` of generation and scoring."""

    metrics: dict[str, float]
    records: list[ScoredRecord]
    summary: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)


def encode_items(
    items: Sequence[EvalItem], processor: Any, encoding: EncodingSettings
) -> list[GenerationRequest]:
    """One `GenerationRequest` per item, encoded exactly as training encodes its prompts."""
    from eureka_trainer.data.encode import encode_prompt

    requests = []
    for item in items:
        encoded = encode_prompt(
            item.record,
            processor,
            family=encoding.family,
            max_prompt_length=encoding.max_prompt_length,
            min_pixels=encoding.min_pixels,
            max_pixels=encoding.max_pixels,
        )
        requests.append(
            GenerationRequest(
                prompt_ids=encoded.input_ids,
                mm_inputs=dict(encoded.mm_inputs),
                images=list(encoded.images),
                text=encoded.text,
            )
        )
    return requests


def as_generate(engine: RolloutEngine | GenerateFn) -> GenerateFn:
    """The generate function of an engine (a function is returned as it is)."""
    return engine.generate if isinstance(engine, RolloutEngine) else engine


def generate_all(
    engine: RolloutEngine | GenerateFn,
    requests: Sequence[GenerationRequest],
    settings: EvalSettings,
) -> tuple[list[list[str]], list[list[str]]]:
    """(responses [N][k], finish reasons [N][k]) for every request, `batch_size` at a time."""
    generate = as_generate(engine)
    texts: list[list[str]] = []
    reasons: list[list[str]] = []
    sampling = settings.sampling()
    for start in range(0, len(requests), settings.batch_size):
        batch = requests[start : start + settings.batch_size]
        for completions in generate(batch, sampling):
            texts.append([c.text for c in completions])
            reasons.append([c.finish_reason for c in completions])
    return texts, reasons


def evaluate(
    engine: RolloutEngine | GenerateFn,
    items: Sequence[EvalItem],
    requests: Sequence[GenerationRequest],
    settings: EvalSettings,
    scorer: EvalScorer,
) -> EvalResult:
    """Generate for every request, score against the items' gold answers, summarise."""
    started = time.perf_counter()
    texts, reasons = generate_all(engine, requests, settings)
    generated = time.perf_counter()
    pairs = [(item.gold, responses) for item, responses in zip(items, texts, strict=True)]
    prompts = [r.text for r in requests]
    records, timeouts = score_pairs(pairs, scorer, prompts=prompts, finish_reasons=reasons)
    scored = time.perf_counter()
    summary = {
        "template": settings.template,
        "samples_per_prompt": settings.samples,
        "temperature": settings.temperature,
        "max_new_tokens": settings.max_new_tokens,
        **summarize(records),
        "timeouts": timeouts,
        "truncated_responses": sum(r == "length" for rs in reasons for r in rs),
    }
    seconds = {"generate": generated - started, "score": scored - generated}
    metrics = flat_metrics(summary)
    metrics["eval/timeouts"] = float(timeouts)
    metrics["eval/truncated_fraction"] = summary["truncated_responses"] / max(
        1, len(records) * settings.samples
    )
    metrics.update({f"eval/time/{k}_s": v for k, v in seconds.items()})
    return EvalResult(metrics, records, summary, seconds)


class Evaluator:
    """A job's evaluation: eval set read, checked and encoded once; `run` on any engine.

    Built by the driver when `spec.data.evalFiles` is set; `due(step, final)` says whether
    `spec.evaluation.intervalSteps` (or the end of training) calls for an evaluation.
    """

    def __init__(
        self,
        items: Sequence[EvalItem],
        requests: Sequence[GenerationRequest],
        settings: EvalSettings,
        *,
        interval_steps: int = 0,
        timeout: float = 5.0,
        workers: int = 0,
        shared_scorer: Any = None,
        output_dir: str | Path | None = None,
    ) -> None:
        self.items = list(items)
        self.requests = list(requests)
        self.settings = settings
        self.interval_steps = interval_steps
        self.template: Template = get_template(settings.template)
        self.scorer = EvalScorer(
            self.template, timeout=timeout, workers=workers, shared=shared_scorer
        )
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.last_step: int | None = None

    @classmethod
    def from_spec(
        cls,
        spec: RLJobSpec,
        processor: Any,
        *,
        eval_files: Sequence[str] | None = None,
        image_root: str | Path | None = None,
        shared_scorer: Any = None,
        output_dir: str | Path | None = None,
    ) -> Evaluator | None:
        """The evaluator of a job, or None when it has no eval files.

        `eval_files`: `spec.data.evalFiles` with the demo's reserved names already resolved
        (the driver resolves them like the train files). `shared_scorer`: the training
        `BatchScorer`, reused when it reads answers in the template's mode. `output_dir`: each
        evaluation's `samples.jsonl` / `summary.json` / `predictions.jsonl` go to
        `<output_dir>/step-<N>/` (the run directory's `eval/`). Bad eval records raise
        `EvalDataError` (every one named) before training starts.
        """
        files = list(eval_files if eval_files is not None else spec.data.eval_files)
        if not files:
            return None
        ev = spec.evaluation
        settings = EvalSettings(
            template=ev.template,
            samples=ev.samples,
            temperature=ev.temperature,
            max_new_tokens=ev.max_new_tokens,
            top_p=spec.rollout.top_p,
            seed=spec.algorithm.seed,
            batch_size=batch_size_for(spec.rollout.backend),
        )
        root = image_root if image_root is not None else spec.data.image_root
        family = spec.model.family
        items = read_items(files, get_template(ev.template), family=family, image_root=root)
        encoding = EncodingSettings(
            family=family,
            max_prompt_length=spec.data.max_prompt_length,
            min_pixels=spec.data.min_pixels,
            max_pixels=spec.data.max_pixels,
        )
        return cls(
            items,
            encode_items(items, processor, encoding),
            settings,
            interval_steps=ev.interval_steps,
            timeout=spec.rewards.timeout_seconds,
            workers=spec.rewards.workers,
            shared_scorer=shared_scorer,
            output_dir=output_dir,
        )

    def due(self, step: int, *, final: bool = False) -> bool:
        """True every `interval_steps` steps and at the end (once per step)."""
        if self.last_step == step:
            return False
        periodic = self.interval_steps > 0 and step > 0 and step % self.interval_steps == 0
        return periodic or final

    def run(self, engine: RolloutEngine | GenerateFn, step: int | None = None) -> EvalResult:
        """Evaluate the engine's current weights on the whole eval set (`engine` may be a
        generate function, e.g. one that fans batches out to Ray rollout actors)."""
        result = evaluate(engine, self.items, self.requests, self.settings, self.scorer)
        if step is not None:
            self.last_step = step
            result.summary["step"] = step
        if self.output_dir is not None:
            name = f"step-{step:08d}" if step is not None else "latest"
            write_outputs(self.output_dir / name, result.records, result.summary)
        return result

    def close(self) -> None:
        """Stop the scorer's worker processes (when it started its own)."""
        self.scorer.close()
