"""The order of a step's phases around the prompt prefetch (`Trainer.train_step`).

The next prompts are encoded on a driver thread while the engines sample, once this step's
requests are sent (`Topology.generate(while_sampling=...)`; the real call's order is held by
`tests/integration/trainer/test_while_sampling.py`). The encoding must be finished before the
update starts, or it takes a core from the learner's threads for the update's first operators
(on 2 cores: a fixed matmul probe at the start of the update took 40-50 ms instead of 24-31 in a
quarter of the demo's steps).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from eureka_trainer.backends import Completion, GenerationRequest
from eureka_trainer.config import RLJobSpec
from eureka_trainer.driver.prompts import EncodedItem
from eureka_trainer.driver.trainer import Trainer
from eureka_trainer.rewards.scorer import ScoreBatch


class _Prompts:
    """Records what the trainer asks of its prompt source; a prefetch runs until `settle`."""

    epoch = 0

    def __init__(self, events: list[str]) -> None:
        self.events = events
        self.encoding = False
        self.taken = 0

    def next_batch(self, count: int) -> list[EncodedItem]:
        self.events.append("next_batch")
        self.encoding = False
        items = []
        for _ in range(count):
            self.taken += 1
            request = GenerationRequest(prompt_ids=[1, 2, 3])
            items.append(EncodedItem(f"p{self.taken}", "q", str(self.taken % 2), request))
        return items

    def prefetch(self, count: int) -> None:
        self.events.append("prefetch")
        self.encoding = True

    def settle(self) -> None:
        if self.encoding:
            self.events.append("settle")
        self.encoding = False

    def totals(self) -> dict[str, float]:
        keys = ("skipped_lines", "truncated_prompts", "refused_prompts")
        return {f"data/{key}_total": 0.0 for key in keys}


class _Topology:
    def __init__(self, events: list[str], prompts: _Prompts) -> None:
        self.events, self.prompts = events, prompts

    def generate(
        self,
        requests: Any,
        sampling: Any,
        keep: bool = False,
        while_sampling: Callable[[], None] | None = None,
    ) -> list[list[Completion]]:
        self.events.append("generate sent")
        if while_sampling is not None:
            while_sampling()
        self.events.append("generate done")
        return [
            [
                Completion([5 + i, 6], [-0.5, -0.7], f"<answer>{i}</answer>")
                for i in range(sampling.n)
            ]
            for _ in requests
        ]

    def update(self, samples: Any) -> dict[str, float]:
        self.events.append("update while encoding" if self.prompts.encoding else "update")
        return {"policy/loss": 0.0}

    def sync(self) -> dict[str, float]:
        self.events.append("sync")
        return {}


class _Scorer:
    def score(self, responses: list[str], answers: list[str]) -> ScoreBatch:
        accuracy = [
            float(r == f"<answer>{a}</answer>") for r, a in zip(responses, answers, strict=True)
        ]
        return ScoreBatch({"accuracy": accuracy}, accuracy, [True] * len(responses))


class _Checkpoints:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def save(self, step: int, meta: Any, write: Any) -> None:
        self.events.append("checkpoint")


class _Sink:
    def report(self, progress: Any, metrics: dict[str, float], samples: Any) -> None:
        self.metrics = metrics


def test_the_prefetched_prompts_are_encoded_before_the_update_starts() -> None:
    spec = RLJobSpec.model_validate(
        {
            "model": {"name": "m"},
            "data": {"trainFiles": ["a.jsonl"]},
            "algorithm": {"rolloutBatchSize": 2, "samplesPerPrompt": 2, "trainBatchSize": 4},
            "resources": {"workers": {"gpus": 1}},
        }
    )
    events: list[str] = []
    prompts = _Prompts(events)
    sink = _Sink()
    trainer = Trainer(
        spec,
        _Topology(events, prompts),  # type: ignore[arg-type]
        prompts,  # type: ignore[arg-type]
        _Scorer(),
        sink,  # type: ignore[arg-type]
        _Checkpoints(events),  # type: ignore[arg-type]
        total_steps=3,
    )
    trainer.train_step()
    assert events == [
        "next_batch",
        "generate sent",
        "prefetch",  # while the engines sample
        "generate done",
        "settle",
        "update",
        "sync",
    ]
    assert sink.metrics["time/prefetch_wait"] >= 0.0
    events.clear()
    trainer.train_step()  # the second step takes the prefetched batch
    assert events[:3] == ["next_batch", "generate sent", "prefetch"]
    assert "update while encoding" not in events
    events.clear()
    trainer.train_step()  # the last step: no prompts are needed after it
    assert "prefetch" not in events
