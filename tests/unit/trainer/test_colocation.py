"""The learner side of colocated memory (`driver.colocation`): which optimizer state moves, and
that all of it does. The GPU memory it frees is measured in tests/gpu."""

from __future__ import annotations

from types import SimpleNamespace

import torch

from eureka_trainer.driver.colocation import move_optimizer_state, optimizer_of, release, restore


def _trained() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(2, 4)).sum().backward()
    optimizer.step()
    return model, optimizer


def test_every_optimizer_state_tensor_moves_and_is_counted() -> None:
    _, optimizer = _trained()
    moved = move_optimizer_state(optimizer, torch.device("meta"))
    tensors = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    assert tensors and all(t.device.type == "meta" for t in tensors)
    # exp_avg and exp_avg_sq of weight (12) and bias (3), float32, plus the step counters
    assert moved == 2 * (12 + 3) * 4 + 2 * 4


def test_only_a_torch_learners_optimizer_is_moved() -> None:
    model, optimizer = _trained()
    assert optimizer_of(SimpleNamespace(model=model, optimizer=optimizer)) is optimizer
    deepspeed_like = SimpleNamespace(model=model, optimizer=optimizer, engine=object())
    assert optimizer_of(deepspeed_like) is None  # ZeRO-Offload places its own state


def test_release_then_restore_brings_the_state_back_to_the_models_device() -> None:
    model, optimizer = _trained()
    learner = SimpleNamespace(model=model, optimizer=optimizer)
    before = {k: v.clone() for k, v in optimizer.state[model.weight].items()}
    figures = release(learner, offload_optimizer=True)
    assert figures["memory/offloaded_gib"] == 0.0  # already on the host: nothing moved
    restore(learner)
    after = optimizer.state[model.weight]
    assert all(torch.equal(before[k], after[k]) for k in before)
