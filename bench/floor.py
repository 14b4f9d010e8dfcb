"""The single-process floor of an RL step: the same work as Eureka's step, with nothing around it.

One process, no Ray, no reporting, no checkpoints. Each step takes the next `prompts` records
and encodes them (images decoded, chat template, one processor call for the batch: Eureka's own
batched encoder, so both sides see identical token ids and pixels), samples `samples`
completions per prompt with transformers `generate` (KV cache, the vision special tokens
suppressed as Eureka's engine does), then runs one forward and backward over the responses with
a PPO-clip style loss at ratio 1 and one fused AdamW step (torch's fastest on the CPU, as
Eureka's learner and TRL's default use). Repeated images and rope positions are computed once
per group (`share_repeated_inputs` on the model instance) and each prompt is run once for its
group's responses (`shared_prompts`), as Eureka's learner does, so the floor does not charge
Eureka for work it never does.

Encoding is part of a step's work on every side (Eureka's driver encodes the next prompts while
its engines sample; TRL's trainer calls the processor in its step). An earlier floor encoded
every prompt once before its clock started, which left that work out of the bound only.

The advantages are GRPO's over the same rewards as Eureka's (Eureka's scorer: accuracy and
format), so the floor's policy learns what Eureka's learns and keeps answering like it: the work
of a step depends on the answers (generation stops when every sample has ended; the update's
width is the longest response). With random advantages instead, the policy drifted into steps
where every sample ended after 1-4 tokens, up to twice as cheap as a step of the demo's answers.
The clock stops while the responses are decoded, scored and turned into advantages: that time
is not counted, so the floor stays a bound.

What it leaves out on purpose, because it is the lower bound: reading and parsing the data file
(done once, up front) and checking the image files, old log-probs (one update epoch makes them
equal to the forward's own, detached), the time of scoring and advantages, sync and any
per-step bookkeeping.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def demo_records(run_dir: Path) -> list[Any]:
    """Every demo prompt's record (text, image paths, gold answer), in file order."""
    from eureka_trainer.data.records import parse_line

    shapes = run_dir / "demo-assets" / "shapes"
    lines = (shapes / "shapes.jsonl").read_text().splitlines()
    return [
        parse_line(line, f"shapes.jsonl:{i + 1}", image_root=shapes, family="qwen2_vl")
        for i, line in enumerate(lines)
    ]


def encode_step(records: list[Any], processor: Any, max_prompt_length: int) -> list[Any]:
    """One step's prompts encoded by Eureka's batched encoder (ids and pixels as Eureka sees
    them, the bench spec's 3136 pixels an image)."""
    from eureka_trainer.data.batch_encode import encode_prompts

    encoded = encode_prompts(
        records,
        processor,
        family="qwen2_vl",
        max_prompt_length=max_prompt_length,
        min_pixels=3136,
        max_pixels=3136,
    )
    for result in encoded:
        if isinstance(result, Exception):  # the demo's records all encode
            raise result
    return encoded


def _generate(
    model: Any,
    prompts: list[Any],
    n: int,
    max_new_tokens: int,
    pad_id: int,
    eos_id: int,
    suppressed: list[int],
) -> Any:
    """[B*n, T] sampled tokens for `prompts` each repeated `n` times (left-padded, one batch)."""
    import torch

    from eureka_trainer.data.encode import collate_prompts

    batch = collate_prompts([p for p in prompts for _ in range(n)], pad_id)
    with torch.no_grad():
        out = model.generate(
            **batch,
            max_new_tokens=max_new_tokens,
            do_sample=True,
            temperature=1.0,
            top_p=None,
            top_k=None,
            suppress_tokens=suppressed or None,
            eos_token_id=eos_id,
            pad_token_id=pad_id,
        )
    return out[:, batch["input_ids"].shape[1] :]


def _advantages(
    scorer: Any, tokenizer: Any, responses: list[list[int]], eos_id: int, answers: list[str], n: int
) -> Any:
    """[B] GRPO advantages of the responses (prompt-major, `n` per prompt) under Eureka's
    rewards; the text is decoded as Eureka's engine decodes it (the EOS left out)."""
    import torch

    from eureka_trainer.algos import compute_advantages

    texts = tokenizer.batch_decode(
        [r[:-1] if r and r[-1] == eos_id else r for r in responses], skip_special_tokens=False
    )
    rewards = torch.tensor(scorer.score(texts, [a for a in answers for _ in range(n)]).total)
    return compute_advantages("grpo", rewards.view(-1, n)).reshape(-1)


def _update(
    model: Any,
    optimizer: Any,
    prompts: list[Any],
    responses: list[list[int]],
    n: int,
    pad_id: int,
    advantages: Any,
) -> float:
    """One forward + backward over the step's responses and one optimizer step. Each prompt is
    run once and its `n` responses against its KV cache, as Eureka's learner does
    (`learner.shared_prompts`, whose forward this calls: the floor shares what Eureka shares;
    the loss around it is the bare PPO-clip at ratio 1)."""
    import torch

    from eureka_trainer.learner.modeling import masked_log_softmax
    from eureka_trainer.learner.shared_prompts import pack_prompts, prompt_shared_logits

    expanded = [p for p in prompts for _ in range(n)]
    batch = pack_prompts(
        [p.input_ids for p in expanded],
        responses,
        [p.mm_inputs for p in expanded],
        pad_id,
        model.config,
        "mrope",
    )
    assert batch is not None
    logits = prompt_shared_logits(model, batch)  # [B, T, V]
    mask = torch.arange(batch.width)[None, :] < batch.lengths[:, None]
    logp = masked_log_softmax(logits, [], 1.0).gather(-1, batch.responses[..., None]).squeeze(-1)
    ratio = torch.exp(logp - logp.detach())
    per_token = -ratio * advantages[:, None]
    loss = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)).mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


def run_floor(args: argparse.Namespace, run_dir: Path) -> dict[str, float]:
    """Samples/s and generated tokens/s of the bare loop over `args.steps` steps, the first
    `args.warmup_steps` excluded (as on the other sides)."""
    import torch
    from transformers import AutoModelForImageTextToText

    from eureka_trainer.config import RewardsSpec
    from eureka_trainer.demo.resolve import load_demo_processor
    from eureka_trainer.learner.shared_inputs import share_repeated_inputs
    from eureka_trainer.rewards.scorer import BatchScorer

    model_dir = getattr(args, "model_dir", None) or run_dir / "demo-assets" / "tiny-qwen2-vl"
    processor = load_demo_processor(model_dir)
    tokenizer = processor.tokenizer
    eos_id = int(tokenizer.eos_token_id)
    pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id)
    model = AutoModelForImageTextToText.from_pretrained(
        str(model_dir), dtype=torch.float32, attn_implementation="eager"
    )
    share_repeated_inputs(model, "qwen2_vl")
    config = model.config
    suppressed = sorted(
        {
            int(v)
            for v in (
                config.image_token_id,
                config.video_token_id,
                config.vision_start_token_id,
                config.vision_end_token_id,
            )
            if isinstance(v, int) and v >= 0
        }
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, fused=True)
    records = demo_records(run_dir)
    torch.manual_seed(0)
    tokens = 0
    start = paused = 0.0
    with BatchScorer(RewardsSpec()) as scorer:  # the rewards of the bench's Eureka and TRL runs
        scorer.warm_up()
        for step in range(args.steps):
            if step == args.warmup_steps:
                start, tokens, paused = time.perf_counter(), 0, 0.0
            taken = [records[(step * args.prompts + i) % len(records)] for i in range(args.prompts)]
            chunk, answers = encode_step(taken, processor, 64), [r.answer for r in taken]
            model.eval()
            new = _generate(
                model,
                chunk,
                args.samples,
                args.max_new_tokens,
                pad_id,
                eos_id,
                suppressed,
            )
            responses = []
            for row in new.tolist():
                end = row.index(eos_id) + 1 if eos_id in row else len(row)
                responses.append(row[:end])
            tokens += sum(len(r) for r in responses)
            stopped = time.perf_counter()  # decoding and scoring are not the floor's work
            advantages = _advantages(scorer, tokenizer, responses, eos_id, answers, args.samples)
            paused += time.perf_counter() - stopped
            model.train()
            _update(model, optimizer, chunk, responses, args.samples, pad_id, advantages)
    seconds = time.perf_counter() - start - paused
    timed = args.steps - args.warmup_steps
    return {
        "seconds": seconds,
        "samples/s": timed * args.prompts * args.samples / seconds,
        "tokens/s": tokens / seconds,
    }


if __name__ == "__main__":  # the floor alone, on assets a previous `bench/rl_step.py` run built
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    for flag, default in (
        ("--steps", 30),
        ("--prompts", 16),
        ("--samples", 8),
        ("--max-new-tokens", 8),
        ("--warmup-steps", 2),
    ):
        parser.add_argument(flag, type=int, default=default)
    parser.add_argument("--lr", type=float, default=1e-3)
    print(json.dumps(run_floor(parser.parse_args(), parser.parse_args().run_dir)))
