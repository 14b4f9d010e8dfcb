"""The driver freezes its start-up objects for the run (`driver.collector`) and gives them back
to the collector when the run ends, even when it fails; it computes on one torch thread during
the run (`Trainer.run`) and restores the caller's count after."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from eureka_trainer.config import RLJobSpec
from eureka_trainer.driver.collector import freeze_startup_objects, thaw
from eureka_trainer.driver.trainer import Trainer


class _Sink:
    def __init__(self, fail: bool) -> None:
        self.frozen_during_run = -1
        self.threads_during_run = -1
        self.fail = fail

    def started(self, total_steps: int, progress: Any) -> None:
        import torch

        self.frozen_during_run = gc.get_freeze_count()
        self.threads_during_run = torch.get_num_threads()
        if self.fail:
            raise RuntimeError("sink down")


class _Prompts:
    epoch = 0

    def totals(self) -> dict[str, float]:
        return {}


class _Checkpoints:
    def latest(self) -> None:
        return None


def _trainer(sink: _Sink) -> Trainer:
    spec = RLJobSpec.model_validate(
        {
            "model": {"name": "m"},
            "data": {"trainFiles": ["a.jsonl"]},
            "resources": {"workers": {"gpus": 1}},
        }
    )
    return Trainer(
        spec,
        None,  # type: ignore[arg-type]
        _Prompts(),  # type: ignore[arg-type]
        None,
        sink,  # type: ignore[arg-type]
        _Checkpoints(),  # type: ignore[arg-type]
        total_steps=1,
        stop_after=0,
    )


@pytest.mark.parametrize("fail", [False, True])
def test_start_up_objects_are_frozen_for_the_run_and_thawed_after(fail: bool) -> None:
    import torch

    sink = _Sink(fail)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        if fail:
            with pytest.raises(RuntimeError, match="sink down"):
                _trainer(sink).run()
        else:
            _trainer(sink).run()
        assert sink.frozen_during_run > 1000  # modules, classes, this test's objects
        assert gc.get_freeze_count() == 0
        assert sink.threads_during_run == 1
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_garbage_made_after_the_freeze_is_still_collected() -> None:
    freeze_startup_objects()
    try:
        cycle: list[Any] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
    finally:
        thaw()
