"""`bench/widen.py`: the benchmark's wider model computes the demo model's function."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import torch

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

BENCH = Path(__file__).resolve().parents[3] / "bench"


def _widen_module() -> Any:
    # Loaded by path: `bench/` is never put on sys.path (its operator.py would shadow the stdlib).
    spec = importlib.util.spec_from_file_location("eureka_bench_widen", BENCH / "widen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_wider_model_samples_what_the_demo_model_samples(
    demo_assets: Path, tmp_path: Path
) -> None:
    from PIL import Image
    from transformers import AutoModelForImageTextToText

    from eureka_trainer.demo.resolve import load_demo_processor

    demo = demo_assets / "tiny-qwen2-vl"
    wide = _widen_module().widen(demo, 2, tmp_path / "wide")
    narrow_model = AutoModelForImageTextToText.from_pretrained(demo, dtype=torch.float32)
    wide_model = AutoModelForImageTextToText.from_pretrained(wide, dtype=torch.float32)
    assert (
        wide_model.config.text_config.hidden_size == 2 * narrow_model.config.text_config.hidden_size
    )
    assert (
        wide_model.config.vision_config.embed_dim == 2 * narrow_model.config.vision_config.embed_dim
    )
    processor = load_demo_processor(wide)
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]}
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(
        text=[text], images=[Image.new("RGB", (84, 56), (20, 90, 200))], return_tensors="pt"
    )
    out = [
        m.generate(**inputs, max_new_tokens=8, do_sample=False)[0].tolist()
        for m in (narrow_model, wide_model)
    ]
    assert out[0] == out[1]


def test_a_widening_that_breaks_the_function_is_refused(
    demo_assets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = _widen_module()
    # Lay the vision attention's fused q/k/v out as one block: heads and q/k/v get mixed.
    monkeypatch.setattr(module, "block_groups", lambda name, dim, merge: 1)
    with pytest.raises(RuntimeError, match="does not compute the demo's function"):
        module.widen(demo_assets / "tiny-qwen2-vl", 2, tmp_path / "wide")
    assert not (tmp_path / "wide").exists()
