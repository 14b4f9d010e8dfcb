"""Shared fixtures: one local Ray instance and the demo's generated assets, built once."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def demo_assets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`demo-assets/` (tiny Qwen2-VL, seed 0, short warm-up + the shapes set), linked into runs."""
    from eureka_trainer.demo.assets import ShapesConfig, write_shapes
    from eureka_trainer.demo.resolve import build_demo_model

    root = tmp_path_factory.mktemp("assets") / "demo-assets"
    build_demo_model(root / "tiny-qwen2-vl", 0, warmup_steps=40)
    write_shapes(root / "shapes", ShapesConfig(records=64))
    return root


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def run_dir_with_assets(base: Path, assets: Path) -> Path:
    """A fresh run directory whose `demo-assets` is the shared one."""
    base.mkdir(parents=True, exist_ok=True)
    (base / "demo-assets").symlink_to(assets, target_is_directory=True)
    return base


@pytest.fixture(scope="module")
def one_rank_group() -> Iterator[None]:
    """torch.distributed as a one-rank gloo group in this process (what DeepSpeed needs), kept
    for a module: DeepSpeed caches its groups, so it cannot be torn down between tests. Torn
    down through `deepspeed.comm`, which also drops DeepSpeed's cached groups: a later module's
    engine would otherwise broadcast over a destroyed group ("not registered")."""
    import socket

    import torch

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {**env, "MASTER_PORT": str(port)}.items():
            patch.setenv(key, value)
        yield
        if torch.distributed.is_initialized():
            import deepspeed.comm

            deepspeed.comm.destroy_process_group()


def topology_parts(spec: Any, assets: Path) -> tuple[str, Any, Any]:
    """The demo model's folder, its processor and the learner config of `spec`, for a test that
    builds a real `Topology` over the demo model (2 ranks' worth of config, 1 learner)."""
    from eureka_trainer.demo.resolve import load_demo_processor
    from eureka_trainer.driver.setup import learner_config

    model = str(assets / "tiny-qwen2-vl")
    processor = load_demo_processor(model)
    return model, processor, learner_config(spec, model, processor.tokenizer.pad_token_id, 2, 1)


def image_request(processor: Any, colour: tuple[int, int, int] = (200, 30, 30)) -> Any:
    """A one-image Qwen2-VL request (a 56x56 image of one colour) as the driver sends it."""
    from PIL import Image

    from eureka_trainer.backends import GenerationRequest

    text = (
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>How many?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    enc = processor(text=[text], images=[Image.new("RGB", (56, 56), colour)], return_tensors="pt")
    mm = {k: enc[k] for k in ("pixel_values", "image_grid_thw")}
    return GenerationRequest(prompt_ids=enc["input_ids"][0].tolist(), mm_inputs=mm)
