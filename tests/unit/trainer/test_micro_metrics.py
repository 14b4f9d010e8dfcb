"""Micro-batch metrics combine into the train batch's: the loss summed, token means weighted."""

import pytest

from eureka_trainer.learner.torch_learner import combine_micro_metrics


def test_loss_is_summed_and_token_means_are_weighted_by_tokens() -> None:
    parts = [
        ({"policy/loss": 0.25, "policy/clip_fraction": 1.0}, 1),
        ({"policy/loss": 0.5, "policy/clip_fraction": 0.0}, 3),
    ]
    out = combine_micro_metrics(parts)
    assert out["policy/loss"] == 0.75  # each micro loss is already / the batch's count
    assert out["policy/clip_fraction"] == pytest.approx(0.25)  # 1 of 4 tokens, not (1 + 0) / 2


def test_micro_batches_without_tokens_do_not_divide_by_zero() -> None:
    out = combine_micro_metrics([({"policy/loss": 0.0, "policy/entropy": 2.0}, 0)] * 2)
    assert out == {"policy/loss": 0.0, "policy/entropy": 2.0}
