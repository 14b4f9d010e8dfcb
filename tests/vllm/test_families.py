"""`VLLMRolloutEngine` on the tiny model of every vision family (`eureka tiny-model`'s
builders): vLLM's own processor for the family expands each image to exactly the driver's
tokens (InternVL: `<img>` + `<IMG_CONTEXT>` x tiles x 4 + `</img>`, several tiles for a wide
image), its log-probs equal the learner's, and weight sync by HF names reaches the model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eureka_trainer.backends import GenerationRequest, SamplingConfig, bucketize
from tests.vllm.conftest import ENGINE_KWARGS, require_vllm
from tests.vllm.reference import learner_logprobs, max_abs_diff
from tests.vllm.tiny_models import perturbed_state

pytestmark = pytest.mark.timeout(600)
TOL = 1e-4
FAMILIES = ("qwen2_5_vl", "qwen3_vl", "internvl")


@pytest.fixture(scope="module", params=FAMILIES)
def family_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Any, Any, Any]]:
    require_vllm()
    from eureka_trainer.models.loading import load_processor
    from eureka_trainer.models.tiny import build_tiny_model
    from eureka_trainer.rollout.vllm_engine import VLLMRolloutEngine

    family = str(request.param)
    folder: Path = tmp_path_factory.mktemp(family)
    tiny = build_tiny_model(family, folder)
    processor = load_processor(folder, family)
    kwargs = {**ENGINE_KWARGS, "limit_mm_per_prompt": {"image": 2, "video": 0}}
    engine = VLLMRolloutEngine(
        str(folder), family, tiny.tokenizer, dtype="float32", engine_kwargs=kwargs
    )
    yield family, engine, tiny.model, processor
    engine.shutdown()


def _request(processor: Any, size: tuple[int, int]) -> GenerationRequest:
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", size, (0, 0, 0))
    ImageDraw.Draw(picture).ellipse((4, 4, 40, 40), fill=(230, 40, 40))
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]}
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    enc = processor(text=[text], images=[picture], return_tensors="pt")
    mm = {k: v for k, v in enc.items() if k not in ("input_ids", "attention_mask")}
    return GenerationRequest(
        prompt_ids=enc["input_ids"][0].tolist(), mm_inputs=mm, images=[picture], text=text
    )


def _error(model: Any, engine: Any, req: GenerationRequest, completions: Any) -> float:
    ref = learner_logprobs(
        model,
        req.prompt_ids,
        completions,
        temperature=1.0,
        suppressed=engine.banned,
        mm=req.mm_inputs,
        pad_id=engine.tokenizer.pad_token_id,
    )
    return max_abs_diff([c.logprobs for c in completions], ref)


def test_family_images_expand_like_the_driver_and_logprobs_match(
    family_engine: tuple[str, Any, Any, Any],
) -> None:
    family, engine, model, processor = family_engine
    reqs = [_request(processor, (56, 56)), _request(processor, (128, 64))]
    if family == "internvl":  # a 2:1 image: 2 tiles + the thumbnail, 4 tokens each
        ctx = processor.tokenizer.context_image_token_id
        assert [r.prompt_ids.count(ctx) for r in reqs] == [4, 12]
    sampling = SamplingConfig(n=2, max_new_tokens=8, temperature=1.0, seed=3)
    # `generate` raises ImageExpansionMismatch unless vLLM's expansion is the driver's.
    result = engine.generate(reqs, sampling)
    for req, completions in zip(reqs, result, strict=True):
        assert _error(model, engine, req, completions) < TOL


def test_family_weight_sync_reaches_the_model(family_engine: tuple[str, Any, Any, Any]) -> None:
    _, engine, model, processor = family_engine
    req = _request(processor, (56, 56))
    sampling = SamplingConfig(n=2, max_new_tokens=8, temperature=1.0, seed=5)
    before = engine.generate([req], sampling)[0]
    original = {k: v.clone() for k, v in model.state_dict().items()}
    state = perturbed_state(model, seed=2)
    try:
        engine.load_weights(bucketize(state, 1 << 20))
        model.load_state_dict(state)
        after = engine.generate([req], sampling)[0]
        assert [c.logprobs for c in after] != [c.logprobs for c in before]
        assert _error(model, engine, req, after) < TOL
    finally:
        model.load_state_dict(original)
        engine.load_weights(bucketize(original, 1 << 20))
