"""A short supervised warm-up that teaches the demo model the answer format, not the answer.

The response is `<think></think><answer>N</answer><|im_end|>`. Every format token is
trained with cross-entropy; at the digit only the batch-average distribution is trained
(towards uniform over the possible counts), so the model learns to emit a count without
learning which one: RL starts at chance accuracy (about 1/4) and has to learn to look.
"""

from __future__ import annotations

import random
from typing import Any

import torch

from eureka_trainer.demo.assets import QUESTION, RESPONSE_TEMPLATE, draw_shapes


def demo_messages() -> list[dict[str, Any]]:
    """The chat of one demo prompt (image first, then the question)."""
    return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]


def _template_ids(tokenizer: Any) -> tuple[list[int], int]:
    """Token ids of the response with a placeholder digit, and the digit's index in them."""
    ids = tokenizer(RESPONSE_TEMPLATE.format(1) + "<|im_end|>")["input_ids"]
    digit = tokenizer.convert_tokens_to_ids("1")
    return ids, ids.index(digit)


def warm_up(
    model: Any,
    processor: Any,
    *,
    steps: int,
    batch: int = 32,
    lr: float = 1e-3,
    counts: tuple[int, ...] = (1, 2, 3, 4),
    seed: int = 0,
) -> list[float]:
    """Train the format for `steps` AdamW steps of `batch` prompts; the loss of each step."""
    tokenizer = processor.tokenizer
    rng = random.Random(seed)
    torch.manual_seed(seed)
    text = processor.apply_chat_template(demo_messages(), add_generation_prompt=True, tokenize=False)
    images = [draw_shapes(rng.choice(counts), rng) for _ in range(batch)]
    enc = processor(text=[text] * batch, images=images, return_tensors="pt")
    response, digit_at = _template_ids(tokenizer)
    digits = torch.tensor(tokenizer.convert_tokens_to_ids([str(c) for c in counts]))
    prompt_len = enc["input_ids"].shape[1]
    input_ids = torch.cat([enc["input_ids"], torch.tensor([response] * batch)], dim=1)
    inputs = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "mm_token_type_ids": (input_ids == model.config.image_token_id).long(),
        "pixel_values": enc["pixel_values"],
        "image_grid_thw": enc["image_grid_thw"],
    }
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95))
    model.train()
    losses = []
    for _ in range(steps):
        logits = model(**inputs, use_cache=False).logits[:, prompt_len - 1 : -1]  # [B, R, V]
        logp = torch.log_softmax(logits.float(), dim=-1)
        targets = input_ids[:, prompt_len:]
        token_nll = -logp.gather(-1, targets[..., None]).squeeze(-1)  # [B, R]
        # The digit: only the batch's average distribution is pulled to uniform over the counts,
        # so nothing pushes the answer to ignore the image (a per-sample uniform target would).
        marginal = logp[:, digit_at].exp().mean(0)[digits]  # [C]
        digit_loss = -marginal.clamp(min=1e-9).log().mean()
        format_mask = torch.ones_like(token_nll)
        format_mask[:, digit_at] = 0
        loss = (token_nll * format_mask).sum() / format_mask.sum() + digit_loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses
