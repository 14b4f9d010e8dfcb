"""Models of the GPU tier, built from configs (nothing is downloaded)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

QWEN_VOCAB = 151936
"""`vocab_size` of Qwen2-VL-7B / Qwen2.5-VL: the embedding and LM head rows, the logits' width."""


def build_qwen_vocab_model(folder: Path, seed: int = 0) -> Any:
    """The demo's tiny Qwen2-VL (2 layers, hidden 128) with its embedding and LM head grown to
    Qwen's vocabulary (the extra rows are never produced by the tokenizer, but every forward
    and every sampling step computes and normalises all 151936 logits). Saved to `folder` with
    its processor; returns the processor."""
    import torch

    from eureka_trainer.demo.assets import build_model, build_processor

    processor = build_processor()
    model = build_model(processor.tokenizer, seed)
    torch.manual_seed(seed)
    model.resize_token_embeddings(QWEN_VOCAB, mean_resizing=False)
    assert model.config.text_config.vocab_size == QWEN_VOCAB
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return processor


def shapes_request(processor: Any, count: int, seed: int = 0) -> Any:
    """A `GenerationRequest` for one demo image with `count` shapes."""
    from eureka_trainer.backends import GenerationRequest
    from eureka_trainer.demo.assets import draw_shapes
    from eureka_trainer.demo.warmup import demo_messages

    text = processor.apply_chat_template(
        demo_messages(), add_generation_prompt=True, tokenize=False
    )
    picture = draw_shapes(count, random.Random(seed))
    enc = processor(text=[text], images=[picture], return_tensors="pt")
    mm = {"pixel_values": enc["pixel_values"], "image_grid_thw": enc["image_grid_thw"]}
    return GenerationRequest(
        prompt_ids=enc["input_ids"][0].tolist(), mm_inputs=mm, images=[picture], text=text
    )


def train_samples(requests: list[Any], groups: list[list[Any]]) -> list[Any]:
    """TrainSamples of sampled completions with alternating +-1 advantages."""
    from eureka_trainer.backends import TrainSample

    return [
        TrainSample(
            prompt_ids=req.prompt_ids,
            response_ids=c.token_ids,
            advantages=[1.0 if j % 2 else -1.0] * len(c.token_ids),
            old_logprobs=c.logprobs,
            mm_inputs=req.mm_inputs,
        )
        for req, group in zip(requests, groups, strict=True)
        for j, c in enumerate(group)
    ]


def learner_config(folder: Path, processor: Any, **overrides: Any) -> Any:
    from eureka_trainer.learner.torch_learner import LearnerConfig

    values: dict[str, Any] = {
        "model_path": str(folder),
        "family": "qwen2_vl",
        "pad_id": processor.tokenizer.pad_token_id,
        "total_optimizer_steps": 8,
        "learning_rate": 1e-3,
        "train_batch_size": 8,
        "micro_batch_size": 4,
        "dtype": "bfloat16",
    }
    return LearnerConfig(**{**values, **overrides})


def synthetic_samples(processor: Any, learner: Any, count: int = 8, length: int = 24) -> list[Any]:
    """Responses of random text tokens (no vision ids), scored by the learner itself."""
    from eureka_trainer.backends import TrainSample
    from eureka_trainer.learner.modeling import vision_token_ids

    rng = random.Random(0)
    banned = set(vision_token_ids(learner.model.config))
    vocab = [i for i in range(len(processor.tokenizer)) if i not in banned]
    samples = []
    for index in range(count):
        req = shapes_request(processor, 1 + index % 4, seed=index)
        response = [rng.choice(vocab) for _ in range(length)]
        samples.append(
            TrainSample(
                req.prompt_ids,
                response,
                [1.0 if index % 2 else -1.0] * length,
                [0.0] * length,
                req.mm_inputs,
            )
        )
    for sample, old in zip(samples, learner.logprobs(samples), strict=True):
        sample.old_logprobs = old
    return samples
