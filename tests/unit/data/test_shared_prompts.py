"""The learner's one-pass-per-prompt forward (`learner.shared_prompts`) against the row-by-row
forward (`modeling.pack`), family by family, with each family's own processor: the same
response log-probs, entropies and gradients, prompts of different lengths and images, responses
of different lengths. Lives beside the data tests for their image folder and encoding helpers.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from eureka_trainer.data import encode_prompt, parse_line
from eureka_trainer.learner.modeling import pack, response_logprobs
from eureka_trainer.learner.shared_prompts import distinct_prompts, pack_prompts
from eureka_trainer.models.families import MODEL_FAMILIES, model_family
from eureka_trainer.models.tiny import build_tiny

from .conftest import conv_line

FAMILIES = [f for f in MODEL_FAMILIES if model_family(f).prompt_positions is not None]


def _prompts(folder: Path, family: str, processor: Any) -> list[Any]:
    """Two prompts of different lengths (and images, for the vision families)."""
    out = []
    for i, (image, question) in enumerate(
        (("file://red.png", "How many?"), ("file://big.png", "Count the shapes, then answer."))
    ):
        obj = json.loads(conv_line(i, None if family == "text" else image))
        obj["conversations"][1]["content"] = question
        record = parse_line(json.dumps(obj), f"t.jsonl:{i + 1}", image_root=folder, family=family)
        out.append(encode_prompt(record, processor, family=family, max_prompt_length=512))
    return out


def _checkpointed(model: Any) -> list[Any]:
    from transformers.modeling_layers import GradientCheckpointingLayer

    return [m for m in model.modules() if isinstance(m, GradientCheckpointingLayer)]


def _grads(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


LENGTHS = [3, 5, 1, 4, 2, 5]
"""The responses' lengths: three per prompt, all different."""


def _row_and_shared(model: Any, family: str, prompts: list[Any]) -> tuple[int, Any, Any]:
    """(vocabulary size, the row-by-row batch, the shared batch) of six responses of different
    lengths, three per prompt."""
    vocab = int(model.config.get_text_config().vocab_size)
    rows = [prompts[i // 3] for i in range(6)]
    responses = [torch.randint(10, vocab - 10, (n,)).tolist() for n in LENGTHS]
    ids = [p.input_ids for p in rows]
    mm = [p.mm_inputs for p in rows]  # a group's rows share one mm dict, as after Ray
    pad = 0
    rule = model_family(family).prompt_positions
    shared = pack_prompts(ids, responses, mm, pad, model.config, rule)
    assert shared is not None and shared.prompts["input_ids"].shape[0] == 2
    return vocab, pack(ids, responses, mm, pad, model.config), shared


@pytest.mark.parametrize("checkpointing", [False, True])
@pytest.mark.parametrize("family", FAMILIES)
def test_shared_prompt_forward_equals_the_row_forward(
    folder: Path, family: str, checkpointing: bool
) -> None:
    torch.manual_seed(0)
    tiny = build_tiny(family)
    model, processor = tiny.model.train(), tiny.processor
    if checkpointing:  # transformers drops a KV cache inside checkpointed layers
        model.gradient_checkpointing_enable()
    _, by_rows, shared = _row_and_shared(model, family, _prompts(folder, family, processor))
    results = []
    for batch in (by_rows, shared):
        model.zero_grad()
        logp, entropy, mask = response_logprobs(model, batch, suppressed=[], temperature=0.7)
        (logp.sum() + 0.1 * logp.exp().sum()).backward()
        results.append((logp.detach(), entropy, mask, _grads(model)))
    (logp_a, ent_a, mask_a, grads_a), (logp_b, ent_b, mask_b, grads_b) = results
    assert torch.equal(mask_a, mask_b)
    assert mask_a.sum(-1).tolist() == LENGTHS
    torch.testing.assert_close(logp_b, logp_a, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(ent_b, ent_a, rtol=1e-4, atol=1e-5)
    if checkpointing:  # still on after the shared forward (it only lifts it for the prompts)
        assert all(m.gradient_checkpointing for m in _checkpointed(model))
        assert _checkpointed(model)
    assert grads_a.keys() == grads_b.keys()
    for name, grad in grads_a.items():
        torch.testing.assert_close(grads_b[name], grad, rtol=1e-3, atol=1e-5, msg=name)


def test_equal_ids_with_other_images_are_different_prompts() -> None:
    a, b = {"pixel_values": torch.zeros(1)}, {"pixel_values": torch.ones(1)}
    first, inverse = distinct_prompts([[1, 2], [1, 2], [1, 2], [3]], [a, a, b, {}])
    assert first == [0, 2, 3] and inverse == [0, 0, 1, 2]


def test_nothing_to_share_packs_nothing() -> None:
    assert pack_prompts([[1, 2], [3]], [[4], [5]], [{}, {}], 0, None, "linear") is None
    assert pack_prompts([[1, 2], [1, 2]], [[4], []], [{}, {}], 0, None, "linear") is None


@pytest.mark.parametrize("family", FAMILIES)
def test_the_backward_keeps_one_vocabulary_sized_tensor(folder: Path, family: str) -> None:
    """Row by row and shared, autograd keeps the log-softmax's `[B, T, V]` and nothing else
    that size: the logits are picked by `index_select` (`modeling.pick_rows`), whose backward
    keeps only the index (`gather` kept the logits whole, 2.4x the log-probs' size on these
    rows), and the entropy is computed outside the graph."""
    torch.manual_seed(0)
    tiny = build_tiny(family)
    model, processor = tiny.model.train(), tiny.processor
    vocab, by_rows, shared = _row_and_shared(model, family, _prompts(folder, family, processor))
    for batch in (by_rows, shared):
        saved: list[torch.Tensor] = []

        def keep(tensor: torch.Tensor, saved: list[torch.Tensor] = saved) -> torch.Tensor:
            saved.append(tensor)
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
            logp, _, _ = response_logprobs(model, batch, suppressed=[], temperature=0.7)
        storages = {
            t.untyped_storage().data_ptr() for t in saved if t.dim() == 3 and t.shape[-1] == vocab
        }
        assert len(storages) == 1, type(batch).__name__
        logp.sum().backward()  # and the backward still runs
