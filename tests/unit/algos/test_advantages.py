"""Advantage estimators: hand-computed vectors, a naive loop reference, NaN-freedom, masks."""

from __future__ import annotations

import math

import pytest
import torch

from eureka_trainer.algos import (
    compute_advantages,
    compute_token_advantages,
    estimator_names,
    get_estimator,
    last_token_mask,
    register_estimator,
)
from eureka_trainer.algos.advantages import ESTIMATORS
from eureka_trainer.config.spec import GROUP_ESTIMATORS, Estimator

ALL = ["grpo", "rloo", "reinforce", "reinforce_baseline", "dr_grpo"]


def test_registry_matches_the_spec():
    assert set(estimator_names()) == set(Estimator.__args__)
    assert {n for n in estimator_names() if get_estimator(n).needs_group} == GROUP_ESTIMATORS
    assert {n for n in ALL if get_estimator(n).whiten} == {"reinforce", "reinforce_baseline"}


def test_unknown_estimator_names_the_known_ones():
    with pytest.raises(KeyError, match=r"unknown advantage estimator 'ppo'.*grpo"):
        compute_advantages("ppo", torch.zeros(1, 2))


def test_a_name_registers_once():
    with pytest.raises(ValueError, match="already registered"):
        register_estimator("grpo", whiten=False, needs_group=True)(lambda r: r)


def test_register_new_estimator_is_usable():
    @register_estimator("test_double", whiten=False, needs_group=False)
    def double(rewards: torch.Tensor) -> torch.Tensor:
        return 2 * rewards

    try:
        out = compute_token_advantages("test_double", torch.tensor([[1.0, 2.0]]), torch.ones(2, 2))
        assert out.tolist() == [[2.0, 2.0], [4.0, 4.0]]
    finally:
        ESTIMATORS._items.pop("test_double")


# Hand-computed: r = [3, 1, 2]: mean 2, unbiased std 1; RLOO baselines (1+2)/2, (3+2)/2, (3+1)/2.
R = torch.tensor([[3.0, 1.0, 2.0], [1.0, 0.0, 0.0]])
S = math.sqrt(1 / 3)  # unbiased std of [1, 0, 0]
HAND = {
    "grpo": [[1.0, -1.0, 0.0], [2 / 3 / S, -1 / 3 / S, -1 / 3 / S]],
    "rloo": [[1.5, -1.5, 0.0], [1.0, -0.5, -0.5]],
    "reinforce_baseline": [[1.0, -1.0, 0.0], [2 / 3, -1 / 3, -1 / 3]],
    "dr_grpo": [[1.0, -1.0, 0.0], [2 / 3, -1 / 3, -1 / 3]],
    "reinforce": [[3.0, 1.0, 2.0], [1.0, 0.0, 0.0]],
}


@pytest.mark.parametrize("name", ALL)
def test_hand_computed_sequence_advantages(name):
    got = compute_advantages(name, R.double())
    torch.testing.assert_close(got, torch.tensor(HAND[name], dtype=torch.float64))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("value", [0.0, 1.0, 0.7, 0.1, -3.3, 1e-3])
def test_equal_rewards_give_exact_zero_for_group_estimators(name, value):
    rewards = torch.full((3, 8), value)
    out = compute_advantages(name, rewards)
    assert torch.isfinite(out).all()
    if get_estimator(name).needs_group:
        assert (out == 0).all(), out


@pytest.mark.parametrize("name", ALL)
def test_single_sample_groups_are_finite(name):
    out = compute_advantages(name, torch.tensor([[1.0], [0.0]]))
    assert torch.isfinite(out).all()
    if get_estimator(name).needs_group:
        assert (out == 0).all()


def test_grpo_equal_rewards_not_a_rounding_error_over_1e9():
    # The float32 mean of eight 0.7s is not 0.7: the textbook formula divides that rounding
    # error by a rounding-sized std and hands out advantages of about +-0.9 to equal samples.
    rewards = torch.full((1, 8), 0.7, dtype=torch.float32)
    naive = (rewards - rewards.mean()) / (rewards.std() + 1e-9)
    assert naive.abs().max() > 0.5
    assert (compute_advantages("grpo", rewards) == 0).all()


def test_rewards_must_be_two_dimensional():
    with pytest.raises(ValueError, match=r"\[prompts, samples\]"):
        compute_advantages("grpo", torch.zeros(4))


# --- token level -------------------------------------------------------------------------------


def naive_token_advantages(name, rewards, mask, kl, kl_coef, clip):
    """Per-element loops, written independently of the vectorised code."""
    P, n = rewards.shape
    T = mask.shape[1]
    r = [[min(max(float(rewards[p, i]), -clip), clip) for i in range(n)] for p in range(P)]
    seq = []
    for p in range(P):
        group = r[p]
        mean = sum(group) / n
        for i in range(n):
            if name == "reinforce":
                seq.append(group[i])
            elif name in ("reinforce_baseline", "dr_grpo"):
                seq.append(0.0 if max(group) == min(group) else group[i] - mean)
            elif name == "rloo":
                seq.append(0.0 if n < 2 else group[i] - (sum(group) - group[i]) / (n - 1))
            elif name == "grpo":
                if max(group) == min(group):
                    seq.append(0.0)
                else:
                    std = math.sqrt(sum((g - mean) ** 2 for g in group) / (n - 1))
                    seq.append((group[i] - mean) / (std + 1e-9))
    out = [[0.0] * T for _ in range(P * n)]
    for b in range(P * n):
        last = max((t for t in range(T) if mask[b, t]), default=None)
        running = 0.0
        for t in reversed(range(T)):
            if not mask[b, t]:
                continue
            reward = seq[b] if t == last else 0.0
            if kl is not None:
                reward -= kl_coef * float(kl[b, t])
            running += reward
            out[b][t] = running
    if name in ("reinforce", "reinforce_baseline"):
        vals = [out[b][t] for b in range(P * n) for t in range(T) if mask[b, t]]
        mean = sum(vals) / len(vals)
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / max(len(vals) - 1, 1))
        out = [
            [(out[b][t] - mean) / (std + 1e-8) if mask[b, t] else 0.0 for t in range(T)]
            for b in range(P * n)
        ]
    return torch.tensor(out, dtype=torch.float64)


def random_mask(gen, rows, T):
    lengths = torch.randint(0, T + 1, (rows,), generator=gen)
    lengths[0] = T  # a full row
    lengths[-1] = 0  # an empty row (e.g. a truncated sample)
    return (torch.arange(T)[None, :] < lengths[:, None]).long()


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("with_kl", [False, True])
def test_token_advantages_match_loop_reference(name, with_kl):
    gen = torch.Generator().manual_seed(7)
    P, n, T = 3, 4, 6
    rewards = (torch.randn(P, n, generator=gen, dtype=torch.float64) * 8).round()
    rewards[1] = 1.0  # an equal-reward group
    rewards[2, 0] = 25.0  # clamped to 10
    mask = random_mask(gen, P * n, T)
    # A hole inside a response (e.g. a masked vision token): its position stays 0.
    mask[0, 2] = 0
    kl = torch.randn(P * n, T, generator=gen, dtype=torch.float64) if with_kl else None
    got = compute_token_advantages(name, rewards, mask, kl=kl, kl_coef=0.05, reward_clip=10.0)
    want = naive_token_advantages(name, rewards, mask, kl, 0.05, 10.0)
    torch.testing.assert_close(got, want)
    assert (got[mask == 0] == 0).all()
    assert torch.isfinite(got).all()


def test_token_advantages_hand_computed_with_kl_in_reward():
    rewards = torch.tensor([[1.0, 0.0]])  # rloo -> [1, -1]
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    kl = torch.full((2, 4), 0.5)
    got = compute_token_advantages("rloo", rewards, mask, kl=kl, kl_coef=0.1)
    want = torch.tensor([[0.85, 0.9, 0.95, 0.0], [-1.1, -1.05, 0.0, 0.0]])
    torch.testing.assert_close(got, want)


def test_kl_coef_zero_or_no_kl_leaves_reward_alone():
    rewards = torch.tensor([[1.0, 0.0]])
    mask = torch.ones(2, 3)
    base = compute_token_advantages("rloo", rewards, mask)
    assert torch.equal(base, compute_token_advantages("rloo", rewards, mask, kl=torch.ones(2, 3)))
    assert torch.equal(base, torch.tensor([[1.0] * 3, [-1.0] * 3]))


def test_reward_clip_changes_the_advantage():
    rewards = torch.tensor([[20.0, 0.0]])
    mask = torch.ones(2, 1)
    assert compute_token_advantages("dr_grpo", rewards, mask)[0, 0] == 5.0
    assert compute_token_advantages("dr_grpo", rewards, mask, reward_clip=2.0)[0, 0] == 1.0
    assert compute_token_advantages("dr_grpo", rewards, mask, reward_clip=100.0)[0, 0] == 10.0


def test_reinforce_whitening_hand_computed():
    rewards = torch.tensor([[2.0, 0.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 1], [1, 0]])
    got = compute_token_advantages("reinforce", rewards, mask)
    # tokens [2, 2, 0]: mean 4/3, unbiased std sqrt(4/3)
    std = math.sqrt(4 / 3)
    a, b = (2 - 4 / 3) / (std + 1e-8), (0 - 4 / 3) / (std + 1e-8)
    torch.testing.assert_close(got, torch.tensor([[a, a], [b, 0.0]], dtype=torch.float64))


def test_whitened_advantages_have_zero_mean_unit_std_over_tokens():
    gen = torch.Generator().manual_seed(1)
    rewards = torch.rand(4, 4, generator=gen)
    mask = random_mask(gen, 16, 9)
    got = compute_token_advantages("reinforce_baseline", rewards, mask)
    vals = got[mask.bool()]
    assert abs(float(vals.mean())) < 1e-5
    assert abs(float(vals.std()) - 1) < 1e-4


def test_all_padding_batch_is_zero_not_nan():
    for name in ALL:
        got = compute_token_advantages(name, torch.tensor([[1.0, 0.0]]), torch.zeros(2, 3))
        assert (got == 0).all()


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="disagree"):
        compute_token_advantages("grpo", torch.zeros(2, 4), torch.ones(7, 3))
    with pytest.raises(ValueError, match="response_mask's shape"):
        compute_token_advantages(
            "grpo", torch.zeros(1, 2), torch.ones(2, 3), kl=torch.ones(2, 4), kl_coef=0.1
        )


def test_last_token_mask():
    mask = torch.tensor([[1, 1, 0], [0, 0, 0], [1, 0, 1]])
    assert last_token_mask(mask).long().tolist() == [[0, 1, 0], [0, 0, 0], [0, 0, 1]]
