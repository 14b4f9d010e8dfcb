"""A short supervised warm-up that teaches the demo model the answer format, not the answer.

The response is `<think>count</think><answer>N</answer><|im_end|>`. Every format token is trained
with cross-entropy; at the digit only the batch-average distribution is trained, towards
uniform over the possible counts, so the model learns to emit a count without learning which
one, and without being pushed to ignore the image: RL starts at chance accuracy (about 1/4)
and has to learn to look.
"""

from __future__ import annotations

import random
from typing import Any

import torch

from eureka_trainer.demo.assets import QUESTION, RESPONSE_TEMPLATE, draw_shapes

COUNTS = (1, 2, 3, 4)


def demo_messages(question: str = QUESTION) -> list[dict[str, Any]]:
    """The chat of one demo prompt (image first, then the question)."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]


def _batch(
    model: Any, processor: Any, rng: random.Random, size: int
) -> tuple[dict[str, Any], int, int]:
    """Model inputs of `size` prompts + the templated response; (inputs, prompt length, digit index)."""
    tokenizer = processor.tokenizer
    text = processor.apply_chat_template(
        demo_messages(), add_generation_prompt=True, tokenize=False
    )
    images = [draw_shapes(rng.choice(COUNTS), rng) for _ in range(size)]
    enc = processor(text=[text] * size, images=images, return_tensors="pt")
    response = tokenizer(RESPONSE_TEMPLATE.format(1) + tokenizer.eos_token)["input_ids"]
    digit_at = response.index(tokenizer.convert_tokens_to_ids("1"))
    input_ids = torch.cat([enc["input_ids"], torch.tensor([response] * size)], dim=1)
    inputs = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "mm_token_type_ids": (input_ids == model.config.image_token_id).long(),
        "pixel_values": enc["pixel_values"],
        "image_grid_thw": enc["image_grid_thw"],
    }
    return inputs, enc["input_ids"].shape[1], digit_at


def warm_up(
    model: Any, processor: Any, *, steps: int, batch: int = 32, lr: float = 1e-3, seed: int = 0
) -> list[float]:
    """Train the format for `steps` AdamW steps on `batch` prompts; the loss of each step."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    inputs, prompt_len, digit_at = _batch(model, processor, rng, batch)
    digits = torch.tensor(processor.tokenizer.convert_tokens_to_ids([str(c) for c in COUNTS]))
    targets = inputs["input_ids"][:, prompt_len:]  # [B, R]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95))
    model.train()
    losses = []
    for _ in range(steps):
        logits = model(**inputs, use_cache=False).logits[:, prompt_len - 1 : -1]  # [B, R, V]
        logp = torch.log_softmax(logits.float(), dim=-1)
        token_nll = -logp.gather(-1, targets[..., None]).squeeze(-1)  # [B, R]
        format_mask = torch.ones_like(token_nll)
        format_mask[:, digit_at] = 0
        # The digit: only the batch-average distribution is pulled to uniform over the counts,
        # so nothing pushes the answer to ignore the image (a per-sample target would).
        marginal = logp[:, digit_at].exp().mean(0)[digits]  # [C]
        loss = (token_nll * format_mask).sum() / format_mask.sum() - marginal.log().mean()
        optimizer.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses
