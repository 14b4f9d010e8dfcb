"""Resolves the demo's reserved names in an RLJob into generated local assets.

`model.name: eureka-demo/tiny-qwen2-vl` and `data.trainFiles: [eureka-demo://shapes]` are
plain names, looked up in this fixed table; nothing in a spec is ever executed. Assets go to
`<assets dir>/` and are reused when present (the same seed builds the same model).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from eureka_trainer.config import RLJobSpec
from eureka_trainer.demo.assets import DEMO_DATA_SCHEME, DEMO_DATASETS, DEMO_MODEL, IMAGE_SIZE

log = logging.getLogger(__name__)
MARKER = "eureka-demo.json"
WARMUP_STEPS = 80
BASE_MODEL_SEED = 0
"""The demo's base model is the same for every run, as a downloaded checkpoint would be:
`algorithm.seed` varies the RL run (sampling, data order), not the model being trained."""


def is_demo_model_dir(path: str | Path) -> bool:
    """Whether `path` is a model folder built by `build_demo_model`."""
    return (Path(path) / MARKER).is_file()


def load_demo_processor(path: str | Path) -> Any:
    """The demo model's processor, rebuilt around its saved tokenizer (the folder holds no
    processor files: the demo fixes the image size)."""
    from transformers import Qwen2VLProcessor

    from eureka_trainer.models.loading import load_tokenizer
    from eureka_trainer.models.processors import build_image_only
    from eureka_trainer.models.tiny import TinyOptions, qwen_image_processor
    from eureka_trainer.models.tokenizer import CHAT_TEMPLATE

    pixels = IMAGE_SIZE * IMAGE_SIZE
    images = qwen_image_processor(TinyOptions(min_pixels=pixels, max_pixels=pixels), patch=14)
    return build_image_only(
        Qwen2VLProcessor, images, load_tokenizer(path), chat_template=CHAT_TEMPLATE
    )


def build_demo_model(folder: Path, seed: int, warmup_steps: int = WARMUP_STEPS) -> Path:
    """Build, warm up and save the tiny Qwen2-VL under `folder` (atomic; reused when there)."""
    if is_demo_model_dir(folder):
        return folder
    import torch

    from eureka_trainer.demo.assets import build_model, build_processor
    from eureka_trainer.demo.warmup import warm_up

    began = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # same numbers on any machine: the warm-up is part of the demo's seed
    try:
        processor = build_processor()
        model = build_model(processor.tokenizer, seed)
        losses = warm_up(model, processor, steps=warmup_steps, seed=seed)
    finally:
        torch.set_num_threads(threads)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    processor.tokenizer.save_pretrained(tmp)
    meta = {"seed": seed, "warmupSteps": warmup_steps, "warmupFinalLoss": losses[-1]}
    (tmp / MARKER).write_text(json.dumps(meta), encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    tmp.replace(folder)
    log.info(
        "demo model built in %.1f s (warm-up loss %.3f)", time.perf_counter() - began, losses[-1]
    )
    return folder


def resolve_data_file(name: str, assets: Path) -> str:
    """A train/eval file name: `eureka-demo://<set>` becomes the generated JSONL path."""
    if not name.startswith(DEMO_DATA_SCHEME):
        return name
    dataset = name[len(DEMO_DATA_SCHEME) :]
    if dataset not in DEMO_DATASETS:
        raise ValueError(
            f"data.trainFiles: unknown demo dataset {name!r} (known: "
            + ", ".join(DEMO_DATA_SCHEME + d for d in DEMO_DATASETS)
            + ")"
        )
    from eureka_trainer.demo.assets import write_shapes

    return str(write_shapes(assets / dataset))


def resolve_model(spec: RLJobSpec, assets: Path) -> str:
    """`model.name`: the demo model is built locally; anything else is returned as is."""
    if spec.model.name != DEMO_MODEL:
        return spec.model.name
    if spec.model.family != "qwen2_vl":
        raise ValueError(f"model.family: {DEMO_MODEL} is a qwen2_vl model, not {spec.model.family}")
    return str(build_demo_model(assets / "tiny-qwen2-vl", BASE_MODEL_SEED))
