"""When the learner recomputes the old log-probs: with several update epochs, and whenever the
rollout engine's are not the policy's (vLLM reports `processed_logprobs`, renormalised over the
top-p nucleus; see `rollout/vllm_engine.py`). A ratio against those would be biased."""

from __future__ import annotations

import pytest

from eureka_trainer.backends import SamplingConfig
from eureka_trainer.driver.batch import recompute_old_logprobs


@pytest.mark.parametrize(
    ("backend", "top_p", "epochs", "expected"),
    [
        ("vllm", 1.0, 1, False),  # the engine's log-probs are the policy's
        ("vllm", 0.9, 1, True),  # nucleus-renormalised: recompute
        ("vllm", 0.9, 2, True),
        ("hf", 0.9, 1, False),  # from the unprocessed logits: top-p does not change them
        ("hf", 1.0, 2, True),  # the policy moves between epochs
    ],
)
def test_recompute_decision(backend: str, top_p: float, epochs: int, expected: bool) -> None:
    sampling = SamplingConfig(n=2, max_new_tokens=4, temperature=1.0, top_p=top_p, seed=0)
    assert recompute_old_logprobs(backend, sampling, epochs) is expected


def test_unknown_backend_is_an_error_not_a_guess() -> None:
    with pytest.raises(KeyError, match="unknown rollout backend 'sglang'"):
        recompute_old_logprobs("sglang", SamplingConfig(n=1, max_new_tokens=1), 1)


class _Topology:
    """Records whether the driver asked the learner for log-probs."""

    def __init__(self) -> None:
        self.asked = 0

    def logprobs(self, samples, reference=False):  # type: ignore[no-untyped-def]
        self.asked += 1
        return [[-1.0] * len(s.response_ids) for s in samples]


@pytest.mark.parametrize(("top_p", "asked"), [(1.0, 0), (0.8, 1)])
def test_the_driver_takes_old_logprobs_from_the_learner_under_vllm_top_p(
    top_p: float, asked: int
) -> None:
    from eureka_trainer.backends import Completion, GenerationRequest
    from eureka_trainer.config import RLJobSpec
    from eureka_trainer.driver.batch import Group
    from eureka_trainer.driver.trainer import Trainer

    spec = RLJobSpec.model_validate(
        {
            "model": {"name": "m"},
            "data": {"trainFiles": ["a.jsonl"]},
            "rollout": {"backend": "vllm", "topP": top_p},
            "resources": {"workers": {"gpus": 1}},
            "algorithm": {
                "samplesPerPrompt": 2,
                "rolloutBatchSize": 1,
                "trainBatchSize": 2,
                "estimator": "grpo",
            },
        }
    )
    topology = _Topology()
    trainer = Trainer(spec, topology, None, None, None, None, total_steps=1)  # type: ignore[arg-type]
    engine = [Completion(token_ids=[5, 6], logprobs=[-0.1, -0.2], text="a", finish_reason="stop")]
    group = Group("p", "q", "1", GenerationRequest(prompt_ids=[1]), engine * 2, total=[0.0, 1.0])
    samples, _ = trainer.advantages([group])
    assert topology.asked == asked
    expected = [-1.0, -1.0] if asked else [-0.1, -0.2]
    assert samples[0].old_logprobs == expected
