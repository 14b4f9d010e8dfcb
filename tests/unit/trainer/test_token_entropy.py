"""The per-token entropy (`policy/entropy`) is a metric: computed outside autograd, in chunks.

Inside the graph its exp, mask and product were `[B, T, V]` tensors saved for a backward that
never comes (5 GB apiece for a 152k vocabulary and 8k tokens a micro batch on the GPU).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch

from eureka_trainer.learner import modeling
from eureka_trainer.learner.modeling import pack, response_logprobs, token_entropy
from tests.unit.trainer.test_device import TinyLM

VOCAB = 11


def _reference_entropy(logp: torch.Tensor) -> torch.Tensor:
    """-sum p log p over the vocabulary, a suppressed token (p = 0) adding 0."""
    probs = logp.exp()
    return -(probs * torch.where(probs > 0, logp, torch.zeros_like(logp))).sum(-1)


def _batch() -> Any:
    return pack([[1, 2, 3], [4, 5]], [[6, 7], [8, 9, 10]], [{}, {}], 0, None, "cpu")


def test_the_entropy_is_minus_p_log_p_with_suppressed_tokens_adding_nothing() -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 5, VOCAB)
    logits[..., [2, 7]] = float("-inf")  # suppressed vision tokens
    logp = torch.log_softmax(logits, dim=-1)
    got = token_entropy(logp)
    assert got.shape == (3, 5)
    torch.testing.assert_close(got, _reference_entropy(logp))
    uniform = torch.log_softmax(torch.zeros(1, VOCAB), dim=-1)
    torch.testing.assert_close(
        token_entropy(uniform), torch.tensor([float(torch.log(torch.tensor(11.0)))])
    )


def test_chunks_give_the_same_entropies(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(1)
    logp = torch.log_softmax(torch.randn(4, 7, VOCAB), dim=-1)
    whole = token_entropy(logp)
    monkeypatch.setattr(modeling, "ENTROPY_CHUNK_ELEMENTS", 3 * VOCAB)  # 3 positions a chunk
    torch.testing.assert_close(token_entropy(logp), whole, rtol=0, atol=0)


def _saved_vocab_sized(entropy: bool, in_graph: bool = False) -> tuple[int, Any]:
    """How many `[B, T, V]` tensors autograd saves in one `response_logprobs` (and, with
    `in_graph`, in the old in-graph entropy of its log-probs), and its output."""
    torch.manual_seed(0)
    model, batch = TinyLM(VOCAB), _batch()
    saved: list[torch.Tensor] = []

    def pack_hook(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack_hook, lambda t: t):
        out = response_logprobs(model, batch, suppressed=[3], temperature=0.7, entropy=entropy)
        if in_graph:
            logits = model(
                input_ids=batch.inputs["input_ids"],
                attention_mask=batch.inputs["attention_mask"],
                use_cache=False,
                logits_to_keep=torch.arange(batch.inputs["input_ids"].shape[1]),
            ).logits
            before = len(saved)
            _reference_entropy(torch.log_softmax(logits, dim=-1))
            return sum(t.shape[-1] == VOCAB for t in saved[before:]), out
    return sum(t.dim() == 3 and t.shape[-1] == VOCAB for t in saved), out


def test_the_entropy_adds_nothing_to_the_graph() -> None:
    without, (logp_a, none, _) = _saved_vocab_sized(entropy=False)
    with_entropy, (logp_b, entropy, mask) = _saved_vocab_sized(entropy=True)
    assert none is None
    assert with_entropy == without  # the metric keeps nothing for the backward
    # The counter sees such tensors: the old in-graph formula saved its exp, mask and product.
    in_graph, _ = _saved_vocab_sized(entropy=False, in_graph=True)
    assert in_graph >= 3
    assert entropy is not None and not entropy.requires_grad and entropy.grad_fn is None
    assert logp_b.requires_grad
    torch.testing.assert_close(logp_a, logp_b)
    assert bool((entropy[~mask] == 0).all()) and bool((entropy[mask] > 0).all())


def test_the_returned_entropy_matches_the_reference_on_response_tokens() -> None:
    torch.manual_seed(0)
    model, batch = TinyLM(VOCAB), _batch()
    _, entropy, mask = response_logprobs(model, batch, suppressed=[3], temperature=0.7)
    ids = batch.inputs["input_ids"]
    logits = model(
        input_ids=ids,
        attention_mask=batch.inputs["attention_mask"],
        use_cache=False,
        logits_to_keep=torch.arange(ids.shape[1]),
    ).logits.detach()
    logp = modeling.masked_log_softmax(logits, [3], 0.7)
    rows, starts = range(ids.shape[0]), batch.starts.tolist()
    for row, start in zip(rows, starts, strict=True):
        count = int(mask[row].sum())
        expected = _reference_entropy(logp[row, start - 1 : start - 1 + count])
        assert entropy is not None
        torch.testing.assert_close(entropy[row, :count], expected)
