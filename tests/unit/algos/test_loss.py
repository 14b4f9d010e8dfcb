"""Policy loss and KL estimators: hand-computed values, a loop reference, every option matters."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from eureka_trainer.algos import aggregate_loss, aggregation_names, kl_penalty, policy_loss
from eureka_trainer.algos.loss import kl_estimator_names
from eureka_trainer.config.spec import AlgorithmSpec, KLSpec

LN = math.log


def one_row(ratios, advantages):
    """logprobs/old_logprobs giving these ratios, plus advantages and a full mask, all [1, T]."""
    old = torch.zeros(1, len(ratios), dtype=torch.float64)
    new = torch.tensor([[LN(r) for r in ratios]], dtype=torch.float64)
    adv = torch.tensor([advantages], dtype=torch.float64)
    return new, old, adv, torch.ones_like(adv)


def test_registries_match_the_spec():
    agg = AlgorithmSpec.model_fields["loss_aggregation"].annotation
    assert set(aggregation_names()) == set(agg.__args__)
    assert set(kl_estimator_names()) == set(KLSpec.model_fields["estimator"].annotation.__args__)


def test_kl_estimators_hand_computed():
    logp = torch.tensor([[0.0, 0.5, -1.0]], dtype=torch.float64)
    ref = torch.tensor([[0.0, 0.0, 0.0]], dtype=torch.float64)
    lr = logp - ref
    torch.testing.assert_close(kl_penalty(logp, ref, "k1"), lr)
    torch.testing.assert_close(kl_penalty(logp, ref, "k2"), lr**2 / 2)
    k3 = torch.tensor(
        [[0.0, math.exp(-0.5) - 1 + 0.5, math.exp(1.0) - 1 - 1.0]], dtype=torch.float64
    )
    torch.testing.assert_close(kl_penalty(logp, ref, "k3"), k3)
    assert (kl_penalty(logp, ref, "k3") >= 0).all()


def test_k3_stays_finite_for_wild_log_ratios():
    out = kl_penalty(torch.tensor([[-500.0, 500.0]]), torch.zeros(1, 2), "k3")
    assert torch.isfinite(out).all()


def test_unknown_kl_estimator_and_aggregation():
    with pytest.raises(KeyError, match="unknown KL estimator 'k9'"):
        kl_penalty(torch.zeros(1, 1), torch.zeros(1, 1), "k9")
    with pytest.raises(KeyError, match="unknown loss aggregation 'sum'"):
        aggregate_loss(torch.zeros(1, 1), torch.ones(1, 1), "sum")


def test_ppo_clip_hand_computed():
    # token 0: ratio 1.5, A=+1 -> -min(1.5, 1.2) = -1.2; token 1: ratio 0.5, A=-1 ->
    # -min(-0.5, -0.8) = 0.8. Both clipped.
    loss, metrics = policy_loss(*one_row([1.5, 0.5], [1.0, -1.0]))
    assert loss.item() == pytest.approx(-0.2)
    assert metrics["policy/loss"] == pytest.approx(-0.2)
    assert metrics["policy/clip_fraction"] == 1.0
    assert metrics["policy/ratio_mean"] == pytest.approx(1.0)
    # approx KL(old || new), k3 with r = new/old: r - 1 - log r
    want_kl = ((1.5 - 1 - LN(1.5)) + (0.5 - 1 - LN(0.5))) / 2
    assert metrics["policy/approx_kl"] == pytest.approx(want_kl)


def test_unclipped_tokens_hand_computed():
    loss, metrics = policy_loss(*one_row([1.1, 0.9], [2.0, -1.0]))
    assert loss.item() == pytest.approx((-2.2 + 0.9) / 2)
    assert metrics["policy/clip_fraction"] == 0.0


def test_clip_high_changes_the_loss():
    base = policy_loss(*one_row([1.5, 0.5], [1.0, -1.0]))[0].item()
    high = policy_loss(*one_row([1.5, 0.5], [1.0, -1.0]), clip_high=0.28)[0].item()
    assert base == pytest.approx(-0.2)
    assert high == pytest.approx((-1.28 + 0.8) / 2)


def test_clip_low_changes_the_loss():
    low = policy_loss(*one_row([1.5, 0.5], [1.0, -1.0]), clip_low=0.1)[0].item()
    assert low == pytest.approx((-1.2 + 0.9) / 2)


def test_ratio_cap_dual_clip_hand_computed():
    # ratio 5 with A = -1: PPO-clip keeps -min(-5, -1.2) = 5; dual clip caps it at 3.
    args = one_row([5.0, 5.0], [-1.0, 1.0])
    plain, _ = policy_loss(*args)
    capped, metrics = policy_loss(*args, ratio_cap=3.0)
    assert plain.item() == pytest.approx((5.0 - 1.2) / 2)
    assert capped.item() == pytest.approx((3.0 - 1.2) / 2)
    assert metrics["policy/clip_fraction"] == 1.0


def test_dual_clip_never_touches_positive_advantages():
    args = one_row([5.0, 0.1], [1.0, 1.0])
    assert policy_loss(*args)[0].item() == policy_loss(*args, ratio_cap=3.0)[0].item()


def test_clipped_tokens_get_no_gradient():
    logp = torch.tensor([[LN(1.5), LN(1.1)]], requires_grad=True)
    loss, _ = policy_loss(logp, torch.zeros(1, 2), torch.ones(1, 2), torch.ones(1, 2))
    loss.backward()
    assert logp.grad[0, 0] == 0.0
    assert logp.grad[0, 1] == pytest.approx(-1.1 / 2)


def two_rows():
    """Two sequences of 1 and 3 tokens with per-token losses -1 and -(2, 3, 4) (ratio 1)."""
    logp = torch.zeros(2, 3, dtype=torch.float64)
    adv = torch.tensor([[1.0, 9.0, 9.0], [2.0, 3.0, 4.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 0, 0], [1, 1, 1]])
    return logp, logp.clone(), adv, mask


@pytest.mark.parametrize(
    ("aggregation", "want"),
    [
        ("seq-mean-token-mean", (-1.0 + -3.0) / 2),
        ("token-mean", -(1 + 2 + 3 + 4) / 4),
        ("seq-mean-token-sum", (-1.0 + -9.0) / 2),
    ],
)
def test_aggregations_hand_computed_and_all_different(aggregation, want):
    loss, _ = policy_loss(*two_rows(), aggregation=aggregation)
    assert loss.item() == pytest.approx(want)


def test_aggregation_flag_changes_the_loss():
    # MM-EUREKA's token-mean flag was accepted and ignored; ours must change the number.
    values = {a: policy_loss(*two_rows(), aggregation=a)[0].item() for a in aggregation_names()}
    assert len(set(values.values())) == len(values), values


@pytest.mark.parametrize("aggregation", ["seq-mean-token-mean", "token-mean", "seq-mean-token-sum"])
def test_normalizer_makes_micro_batches_sum_to_the_full_batch(aggregation):
    gen = torch.Generator().manual_seed(3)
    logp = torch.randn(6, 5, generator=gen, dtype=torch.float64) * 0.1
    old = torch.randn(6, 5, generator=gen, dtype=torch.float64) * 0.1
    adv = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    mask = (torch.rand(6, 5, generator=gen) > 0.3).long()
    mask[:, 0] = 1
    full, _ = policy_loss(logp, old, adv, mask, aggregation=aggregation)
    count = float(mask.sum()) if aggregation == "token-mean" else 6.0
    parts = [
        policy_loss(logp[s], old[s], adv[s], mask[s], aggregation=aggregation, normalizer=count)[0]
        for s in (slice(0, 2), slice(2, 6))
    ]
    torch.testing.assert_close(sum(parts), full)
    unnormalized = sum(
        policy_loss(logp[s], old[s], adv[s], mask[s], aggregation=aggregation)[0]
        for s in (slice(0, 2), slice(2, 6))
    )
    assert not torch.allclose(unnormalized, full)


def kl_args():
    logp, old, adv, mask = one_row([1.0, 1.0], [1.0, 1.0])
    ref = torch.tensor([[-0.5, 0.5]], dtype=torch.float64)  # log r = logp - ref = [0.5, -0.5]
    return logp, old, adv, mask, ref


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
def test_kl_in_loss_hand_computed(estimator):
    logp, old, adv, mask, ref = kl_args()
    loss, metrics = policy_loss(
        logp, old, adv, mask, ref_logprobs=ref, kl_coef=0.1, kl_estimator=estimator, kl_in_loss=True
    )
    kl = {
        "k1": [0.5, -0.5],
        "k2": [0.125, 0.125],
        "k3": [math.exp(-0.5) - 0.5, math.exp(0.5) - 1.5],
    }[estimator]
    assert loss.item() == pytest.approx(-1.0 + 0.1 * sum(kl) / 2)
    assert metrics["policy/kl"] == pytest.approx(sum(kl) / 2)


def test_kl_options_each_change_the_loss():
    logp, old, adv, mask, ref = kl_args()
    base = dict(ref_logprobs=ref, kl_coef=0.1, kl_estimator="k3", kl_in_loss=True)
    on = policy_loss(logp, old, adv, mask, **base)[0].item()
    assert on != policy_loss(logp, old, adv, mask, **{**base, "kl_in_loss": False})[0].item()
    assert on != policy_loss(logp, old, adv, mask, **{**base, "kl_coef": 0.2})[0].item()
    assert on != policy_loss(logp, old, adv, mask, **{**base, "kl_estimator": "k2"})[0].item()


def test_reference_without_kl_in_loss_only_reports():
    logp, old, adv, mask, ref = kl_args()
    plain, metrics0 = policy_loss(logp, old, adv, mask)
    loss, metrics = policy_loss(logp, old, adv, mask, ref_logprobs=ref, kl_coef=0.1)
    assert loss.item() == plain.item()
    assert "policy/kl" not in metrics0 and metrics["policy/kl"] == pytest.approx(0.0)


def test_kl_in_loss_needs_a_reference():
    with pytest.raises(ValueError, match="ref_logprobs"):
        policy_loss(*one_row([1.0], [1.0]), kl_coef=0.1, kl_in_loss=True)


def test_entropy_is_reported_over_the_mask():
    logp, old, adv, mask = two_rows()
    entropy = torch.tensor([[1.0, 100.0, 100.0], [2.0, 3.0, 4.0]])
    _, metrics = policy_loss(logp, old, adv, mask, entropy=entropy)
    assert metrics["policy/entropy"] == pytest.approx(2.5)
    assert "policy/entropy" not in policy_loss(logp, old, adv, mask)[1]


def test_padding_garbage_changes_neither_loss_nor_gradient():
    logp, old, adv, mask = two_rows()
    clean = logp.clone().requires_grad_(True)
    loss_clean, m_clean = policy_loss(clean, old, adv, mask)
    loss_clean.backward()
    dirty = logp.clone()
    dirty[mask == 0] = float("inf")
    dirty.requires_grad_(True)
    dirty_old = old.clone()
    dirty_old[mask == 0] = float("nan")
    dirty_adv = adv.clone()
    dirty_adv[mask == 0] = float("nan")
    loss_dirty, m_dirty = policy_loss(dirty, dirty_old, dirty_adv, mask)
    loss_dirty.backward()
    assert loss_dirty.item() == loss_clean.item()
    assert m_dirty == m_clean
    assert torch.equal(dirty.grad, clean.grad)
    assert (clean.grad[mask == 0] == 0).all()


def test_empty_mask_gives_zero_loss_not_nan():
    for aggregation in aggregation_names():
        loss, metrics = policy_loss(
            *one_row([1.3], [1.0])[:3], torch.zeros(1, 1), aggregation=aggregation
        )
        assert loss.item() == 0.0
        assert all(math.isfinite(v) for v in metrics.values())


# --- a naive per-element reference --------------------------------------------------------------


def naive_policy_loss(logp, old, adv, mask, clip_low, clip_high, cap, aggregation, ref, coef, est):
    B, T = logp.shape
    per_token = [[0.0] * T for _ in range(B)]
    for b, t in itertools.product(range(B), range(T)):
        if not mask[b, t]:
            continue
        r = math.exp(float(logp[b, t] - old[b, t]))
        a = float(adv[b, t])
        clipped_r = min(max(r, 1 - clip_low), 1 + clip_high)
        value = -min(r * a, clipped_r * a)
        if cap is not None and a < 0:
            value = min(value, -cap * a)
        if ref is not None:
            lr = float(logp[b, t] - ref[b, t])
            kl = {"k1": lr, "k2": lr * lr / 2, "k3": math.exp(-lr) - 1 + lr}[est]
            value += coef * kl
        per_token[b][t] = value
    lengths = [sum(int(mask[b, t]) for t in range(T)) for b in range(B)]
    rows = [b for b in range(B) if lengths[b]]
    if aggregation == "token-mean":
        return sum(sum(row) for row in per_token) / max(sum(lengths), 1)
    if aggregation == "seq-mean-token-mean":
        return sum(sum(per_token[b]) / lengths[b] for b in rows) / max(len(rows), 1)
    return sum(sum(per_token[b]) for b in rows) / max(len(rows), 1)


@pytest.mark.parametrize("aggregation", ["seq-mean-token-mean", "token-mean", "seq-mean-token-sum"])
@pytest.mark.parametrize(
    ("clip_low", "clip_high", "cap", "kl"),
    [(0.2, 0.2, None, None), (0.2, 0.28, 3.0, "k3"), (0.1, 0.3, 1.5, "k1"), (0.2, 0.2, None, "k2")],
)
def test_matches_loop_reference(aggregation, clip_low, clip_high, cap, kl):
    gen = torch.Generator().manual_seed(11)
    B, T = 5, 7
    logp = torch.randn(B, T, generator=gen, dtype=torch.float64)
    old = logp + torch.randn(B, T, generator=gen, dtype=torch.float64) * 0.8  # many clipped
    adv = torch.randn(B, T, generator=gen, dtype=torch.float64)
    ref = logp + torch.randn(B, T, generator=gen, dtype=torch.float64) * 0.3 if kl else None
    lengths = torch.tensor([7, 3, 0, 1, 5])
    mask = (torch.arange(T)[None, :] < lengths[:, None]).long()
    loss, metrics = policy_loss(
        logp,
        old,
        adv,
        mask,
        clip_low=clip_low,
        clip_high=clip_high,
        ratio_cap=cap,
        aggregation=aggregation,
        ref_logprobs=ref,
        kl_coef=0.05,
        kl_estimator=kl or "k1",
        kl_in_loss=kl is not None,
    )
    want = naive_policy_loss(
        logp, old, adv, mask, clip_low, clip_high, cap, aggregation, ref, 0.05, kl or "k1"
    )
    assert loss.item() == pytest.approx(want, rel=1e-9, abs=1e-12)
    assert 0.0 < metrics["policy/clip_fraction"] < 1.0


def test_runaway_ratio_with_zero_advantage_is_not_nan():
    logp = torch.tensor([[1000.0, -1000.0, 0.5]], requires_grad=True)
    adv = torch.tensor([[0.0, 0.0, 1.0]])
    loss, metrics = policy_loss(logp, torch.zeros(1, 3), adv, torch.ones(1, 3))
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logp.grad).all()
    assert all(math.isfinite(v) for v in metrics.values())
