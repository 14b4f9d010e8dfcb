"""`driver.kept_inputs`: the driver's slots and the hybrid actor's store agree, and a sample is
sent without its image tensors only to the actor that keeps them."""

from __future__ import annotations

import pytest
import torch

from eureka_trainer.backends import GenerationRequest, TrainSample
from eureka_trainer.driver.kept_inputs import KeptInputs, remember, restore


def _mm(seed: int) -> dict[str, torch.Tensor]:
    return {
        "pixel_values": torch.full((4, 6), float(seed)),
        "image_grid_thw": torch.tensor([[1, 2, 2]]),
    }


def _sample(mm: dict[str, torch.Tensor]) -> TrainSample:
    return TrainSample([1, 2], [3], [0.5], [-0.1], mm)


def test_each_prompts_tensors_get_one_slot_per_actor() -> None:
    a, b = _mm(1), _mm(2)
    kept = KeptInputs(capacity=8)
    first = kept.assign(
        [GenerationRequest([1], a), GenerationRequest([1]), GenerationRequest([1], b)], 0
    )
    assert first[1] is None and first[0] is not None and first[2] is not None
    assert first[0] != first[2]
    assert kept.assign([GenerationRequest([1], a)], 0) == [first[0]]  # a later filter round
    assert len(kept) == 2


def test_only_the_actor_that_keeps_the_tensors_gets_them_stripped() -> None:
    a, b, carried = _mm(1), _mm(2), _mm(3)
    kept = KeptInputs(capacity=8)
    (slot_a,) = kept.assign([GenerationRequest([1], a)], 0)
    kept.assign([GenerationRequest([1], b)], 1)
    samples = [_sample(a), _sample(b), _sample(carried)]
    sent, slots = kept.strip(samples, 0)
    assert slots == [slot_a, None, None]
    assert sent[0].mm_inputs == {}
    assert sent[1].mm_inputs is b and sent[2].mm_inputs is carried  # sent whole
    assert samples[0].mm_inputs is a  # the caller's samples are untouched


def test_the_actor_restores_exactly_the_tensors_it_kept() -> None:
    a, b = _mm(1), _mm(2)
    requests = [GenerationRequest([1], a), GenerationRequest([1], b)]
    kept = KeptInputs(capacity=8)
    store: dict[int, dict[str, torch.Tensor]] = {}
    remember(store, requests, kept.assign(requests, 0))
    samples = [_sample(b), _sample(a), _sample(b)]
    sent, slots = kept.strip(samples, 0)
    back = restore(store, sent, slots)
    assert [s.mm_inputs for s in back] == [b, a, b]
    assert all(x.mm_inputs is y.mm_inputs for x, y in zip(back, samples, strict=True))


def test_after_clear_everything_is_sent_again() -> None:
    a = _mm(1)
    kept = KeptInputs(capacity=8)
    kept.assign([GenerationRequest([1], a)], 0)
    kept.clear()
    sent, slots = kept.strip([_sample(a)], 0)
    assert slots == [None] and sent[0].mm_inputs is a


def test_a_slot_the_actor_does_not_keep_is_an_error_not_a_silent_miss() -> None:
    with pytest.raises(KeyError, match=r"slot\(s\) \[7\]"):
        restore({}, [_sample({})], [7])
    with pytest.raises(ValueError, match="2 slots for 1 samples"):
        restore({}, [_sample({})], [None, None])
    with pytest.raises(ValueError, match="1 slots for 2 requests"):
        remember({}, [GenerationRequest([1]), GenerationRequest([2])], [None])


def test_past_its_capacity_a_prompt_is_not_kept_and_its_samples_carry_their_tensors() -> None:
    a, b, c = _mm(1), _mm(2), _mm(3)
    kept = KeptInputs(capacity=2)
    slots = kept.assign([GenerationRequest([1], m) for m in (a, b, c)], 0)
    assert slots[2] is None and None not in slots[:2]
    assert kept.assign([GenerationRequest([1], a)], 0) == [slots[0]]  # already kept: same slot
    sent, sent_slots = kept.strip([_sample(c), _sample(a)], 0)
    assert sent_slots == [None, slots[0]] and sent[0].mm_inputs is c
