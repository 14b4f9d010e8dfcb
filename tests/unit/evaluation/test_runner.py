"""When the driver evaluates, and which settings an offline evaluation of a run takes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from eureka_trainer.config.spec import (
    AlgorithmSpec,
    DataSpec,
    EvaluationSpec,
    ModelSpec,
    RLJobSpec,
    RolloutSpec,
)
from eureka_trainer.evaluation.offline import checkpoint_weights, settings_from
from eureka_trainer.evaluation.runner import EvalSettings, Evaluator


def _evaluator(interval: int) -> Evaluator:
    return Evaluator([], [], EvalSettings(), interval_steps=interval)


def test_due_every_interval_and_at_the_end_once_per_step() -> None:
    ev = _evaluator(3)
    assert [s for s in range(1, 11) if ev.due(s, final=s == 10)] == [3, 6, 9, 10]
    ev.last_step = 9  # evaluated at 9 already: the final step 9 does not evaluate twice
    assert not ev.due(9, final=True)


def test_interval_zero_means_only_at_the_end() -> None:
    ev = _evaluator(0)
    assert [s for s in range(1, 6) if ev.due(s, final=s == 5)] == [5]


def _spec() -> RLJobSpec:
    return RLJobSpec(
        model=ModelSpec(name="/models/x"),
        data=DataSpec(train_files=["/data/t.jsonl"]),
        rollout=RolloutSpec(backend="hf", top_p=0.9),
        algorithm=AlgorithmSpec(seed=11),
        evaluation=EvaluationSpec(
            template="reasoning_pretrain", samples=4, temperature=0.7, max_new_tokens=32
        ),
    )


def _args(**overrides: object) -> argparse.Namespace:
    base = dict(
        template=None,
        samples=None,
        temperature=None,
        max_new_tokens=None,
        top_p=None,
        seed=None,
        batch_size=None,
    )
    return argparse.Namespace(**{**base, **overrides})


def test_offline_settings_default_to_the_runs_evaluation_section() -> None:
    s = settings_from(_args(), _spec())
    assert (s.template, s.samples, s.temperature, s.max_new_tokens, s.top_p, s.seed) == (
        "reasoning_pretrain",
        4,
        0.7,
        32,
        0.9,
        11,
    )
    s = settings_from(_args(samples=1, temperature=0.0, template="original"), _spec())
    assert (s.template, s.samples, s.temperature) == ("original", 1, 0.0)


def test_offline_settings_without_a_run_are_greedy_reasoning_instruct() -> None:
    s = settings_from(_args(), None)
    assert (s.template, s.samples, s.temperature, s.max_new_tokens, s.top_p, s.seed) == (
        "reasoning_instruct",
        1,
        0.0,
        4096,
        1.0,
        0,
    )


def test_checkpoint_weights_of_the_torch_learner(tmp_path: Path) -> None:
    import torch

    (tmp_path / "learner").mkdir()
    state = {"a.weight": torch.ones(2, 3), "b.bias": torch.zeros(4)}
    torch.save({"model": state, "optimizer": {}}, tmp_path / "learner" / "learner.pt")
    (bucket,) = checkpoint_weights(tmp_path, "bfloat16")
    assert bucket.names == ["a.weight", "b.bias"]
    assert all(t.dtype == torch.bfloat16 for t in bucket.tensors)
    assert torch.equal(bucket.tensors[0].float(), state["a.weight"])


def test_a_checkpoint_without_learner_state_is_named(tmp_path: Path) -> None:
    (tmp_path / "learner").mkdir()
    with pytest.raises(FileNotFoundError, match="no learner checkpoint"):
        checkpoint_weights(tmp_path)
