"""`eureka eval --model`: load a model (a HF folder or a run's newest checkpoint) and evaluate it.

A run directory (written by `eureka run`: `rljob.yaml`, `checkpoints/step-N/`) supplies the base
model, the family, dtype, prompt limits and evaluation defaults of its RLJob; the checkpoint's
policy weights are loaded into the rollout engine through `RolloutEngine.load_weights`, the
same path that weight sync uses in training.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eureka_trainer.evaluation.datasets import read_items
from eureka_trainer.evaluation.report import write_outputs
from eureka_trainer.evaluation.runner import (
    EncodingSettings,
    EvalSettings,
    batch_size_for,
    encode_items,
    evaluate,
)
from eureka_trainer.evaluation.scoring import EvalScorer
from eureka_trainer.evaluation.templates import get_template

RUN_SPEC_FILE = "rljob.yaml"


@dataclass
class ModelSource:
    """What to load: the HF folder, an optional checkpoint on top, and the run's spec if any."""

    model_dir: Path
    family: str
    dtype: str
    spec: Any = None  # RLJobSpec of a run directory
    checkpoint: Path | None = None
    step: int | None = None
    run_dir: Path | None = None
    trust_remote_code: bool = False
    """Run the checkpoint's own Python files (a run's `model.trustRemoteCode`, or
    `eureka eval --trust-remote-code` for a model folder)."""


def resolve_model(
    path: str | Path,
    *,
    family: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
) -> ModelSource:
    """A run directory (has `rljob.yaml`) or a HF model folder (has `config.json`).

    `trust_remote_code` (`--trust-remote-code`): the user allows the folder's own Python files;
    a run directory's `model.trustRemoteCode` allows them too. A checkpoint whose model classes
    are such files is refused here, before anything loads, unless allowed."""
    from dataclasses import replace

    from eureka_trainer.models.loading import check_supported

    folder = Path(path)
    if (folder / RUN_SPEC_FILE).is_file():
        source = _run_source(folder, family, dtype)
        trusted = trust_remote_code or source.trust_remote_code
    elif (folder / "config.json").is_file():
        source = ModelSource(folder, family or family_of(folder), dtype or "float32")
        trusted = trust_remote_code
    else:
        raise FileNotFoundError(
            f"--model {path}: neither a run directory ({RUN_SPEC_FILE}) nor a model folder "
            "(config.json)"
        )
    opts_in = ("--model", "pass --trust-remote-code to run them (only for a folder you trust)")
    check_supported(source.model_dir, source.family, trust_remote_code=trusted, opts_in=opts_in)
    return replace(source, trust_remote_code=trusted)


def family_of(model_dir: Path) -> str:
    """The family of a HF folder, from its `config.json` `model_type`."""
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    from eureka_trainer.models.families import family_of_model_type

    return family_of_model_type(str(config.get("model_type", "")))


def _run_source(run_dir: Path, family: str | None, dtype: str | None) -> ModelSource:
    from eureka_trainer.checkpoint import CheckpointManager
    from eureka_trainer.config import load_rljob
    from eureka_trainer.demo.resolve import resolve_model as resolve_model_name
    from eureka_trainer.driver.setup import run_paths

    spec = load_rljob(run_dir / RUN_SPEC_FILE).spec
    paths = run_paths(spec, run_dir)
    latest = CheckpointManager(paths.checkpoints, keep_last=1).latest()
    if latest is None:
        raise FileNotFoundError(
            f"--model {run_dir}: no complete checkpoint under {paths.checkpoints}"
        )
    step, folder = latest
    return ModelSource(
        model_dir=Path(resolve_model_name(spec, paths.assets)),
        family=family or spec.model.family,
        dtype=dtype or spec.model.dtype,
        spec=spec,
        checkpoint=folder,
        step=step,
        run_dir=run_dir,
        trust_remote_code=spec.model.trust_remote_code,
    )


def data_files(args: argparse.Namespace, source: ModelSource) -> list[str]:
    """`--data`, else the run's `data.evalFiles` (demo names resolved to their files)."""
    if args.data:
        return [str(d) for d in args.data]
    if source.spec is not None and source.spec.data.eval_files and source.run_dir is not None:
        from eureka_trainer.demo.resolve import resolve_data_file
        from eureka_trainer.driver.setup import run_paths

        assets = run_paths(source.spec, source.run_dir).assets
        return [resolve_data_file(f, assets) for f in source.spec.data.eval_files]
    raise ValueError("--data is required (the model is not a run directory with data.evalFiles)")


def _torch_learner_state(learner_dir: Path) -> dict[str, Any]:
    """`learner.pt` of the torch learner: its `model` state dict."""
    import torch

    state = torch.load(learner_dir / "learner.pt", map_location="cpu", weights_only=False)
    model: dict[str, Any] = state["model"]
    return model


def _deepspeed_state(learner_dir: Path) -> dict[str, Any]:
    """A DeepSpeed checkpoint (tag `engine`, any ZeRO stage) consolidated to full fp32 weights."""
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    state: dict[str, Any] = get_fp32_state_dict_from_zero_checkpoint(str(learner_dir), tag="engine")
    return state


#: (file or folder that marks a learner backend's checkpoint, reader of its policy weights)
CHECKPOINT_READERS = (
    ("learner.pt", _torch_learner_state),
    ("engine", _deepspeed_state),
)


def checkpoint_weights(folder: Path, dtype: str = "float32") -> list[Any]:
    """The policy weights of a checkpoint as `WeightBucket`s in `dtype` (names as in
    `state_dict()`), whichever learner backend wrote it."""
    from eureka_trainer.backends import bucketize
    from eureka_trainer.models.loading import DTYPES

    learner_dir = folder / "learner"
    for marker, reader in CHECKPOINT_READERS:
        if (learner_dir / marker).exists():
            state = reader(learner_dir)
            return bucketize({k: v.to(DTYPES[dtype]) for k, v in state.items()}, 1 << 30)
    raise FileNotFoundError(
        f"{learner_dir}: no learner checkpoint (looked for learner.pt, engine/)"
    )


def settings_from(args: argparse.Namespace, spec: Any, backend: str = "hf") -> EvalSettings:
    """Command-line values, else the run's `spec.evaluation`, else the defaults."""
    ev = spec.evaluation if spec is not None else None

    def pick(value: Any, attr: str, default: Any) -> Any:
        if value is not None:
            return value
        return getattr(ev, attr) if ev is not None else default

    return EvalSettings(
        template=pick(args.template, "template", "reasoning_instruct"),
        samples=pick(args.samples, "samples", 1),
        temperature=pick(args.temperature, "temperature", 0.0),
        max_new_tokens=pick(args.max_new_tokens, "max_new_tokens", 4096),
        top_p=args.top_p if args.top_p is not None else (spec.rollout.top_p if spec else 1.0),
        seed=args.seed if args.seed is not None else (spec.algorithm.seed if spec else 0),
        batch_size=args.batch_size or batch_size_for(backend),
    )


def encoding_from(source: ModelSource) -> EncodingSettings:
    """Prompt limits of the run's `spec.data`, else the RLJob defaults."""
    if source.spec is None:
        return EncodingSettings(family=source.family)
    data = source.spec.data
    return EncodingSettings(source.family, data.max_prompt_length, data.min_pixels, data.max_pixels)


def pick_backend(choice: str) -> str:
    """`auto`: vLLM when a GPU and vLLM are present, else the transformers backend."""
    if choice != "auto":
        return choice
    import importlib.util

    import torch

    return "vllm" if torch.cuda.is_available() and importlib.util.find_spec("vllm") else "hf"


def build_engine(source: ModelSource, backend: str, settings: EvalSettings, processor: Any) -> Any:
    """The rollout engine of `backend` with the source's weights (checkpoint loaded on top)."""
    from eureka_trainer.config.spec import RolloutSpec
    from eureka_trainer.rollout import build_rollout_engine

    base = source.spec.rollout if source.spec is not None else RolloutSpec(backend="hf")
    rollout = base.model_copy(
        update={"backend": backend, "max_new_tokens": settings.max_new_tokens}
    )
    tokenizer = getattr(processor, "tokenizer", processor)
    engine = build_rollout_engine(
        backend,
        str(source.model_dir),
        source.family,
        tokenizer,
        dtype=source.dtype,
        rollout=rollout,
        trust_remote_code=source.trust_remote_code,
    )
    if source.checkpoint is not None:
        engine.load_weights(checkpoint_weights(source.checkpoint, source.dtype))
    return engine


def evaluate_model(args: argparse.Namespace) -> dict[str, Any]:
    """The whole `eureka eval --model` flow; returns the summary written to `summary.json`."""
    from eureka_trainer.driver.prompts import load_processor

    source = resolve_model(
        args.model,
        family=args.family,
        dtype=args.dtype,
        trust_remote_code=getattr(args, "trust_remote_code", False),
    )
    backend = pick_backend(args.backend)
    settings = settings_from(args, source.spec, backend)
    template = get_template(settings.template)
    image_root = args.image_root or (
        source.spec.data.image_root if source.spec is not None else None
    )
    files = data_files(args, source)
    items = read_items(files, template, family=source.family, image_root=image_root)
    items = items[: args.limit] if args.limit else items
    processor = load_processor(
        str(source.model_dir), source.family, trust_remote_code=source.trust_remote_code
    )
    requests = encode_items(items, processor, encoding_from(source))
    engine = build_engine(source, backend, settings, processor)
    with EvalScorer(template, timeout=args.timeout, workers=args.reward_workers) as scorer:
        result = evaluate(engine, items, requests, settings, scorer)
    summary = {
        "mode": "model",
        "model": str(args.model),
        "model_dir": str(source.model_dir),
        "checkpoint": str(source.checkpoint) if source.checkpoint else None,
        "checkpoint_step": source.step,
        "backend": backend,
        "data": files,
        **result.summary,
        "seconds": result.seconds,
    }
    write_outputs(args.output, result.records, summary)
    return summary
