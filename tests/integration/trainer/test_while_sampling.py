"""`Topology.generate(while_sampling=...)` runs the driver's work while the engines sample, as
the real `Topology` drives a rollout actor on local Ray: the actor's `generate` does not start
sampling until the callback has run, so a callback run only after the results (or never) fails
the call instead of passing by luck of timing. The trainer encodes the next prompts there
(`Trainer.generate`, `tests/unit/trainer/test_step_order.py`)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from eureka_trainer.backends import GenerationRequest, SamplingConfig
from eureka_trainer.driver import workers
from tests.integration.trainer.test_driver import _job

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


class WaitingRollout(workers.RolloutWorker):
    """Samples only once the driver's callback has left its marker file."""

    marker = ""

    def generate(self, requests: Any, sampling: Any) -> Any:
        deadline = time.monotonic() + 30
        while not Path(self.marker).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the driver's while_sampling did not run during the call")
            time.sleep(0.01)
        return super().generate(requests, sampling)


def test_the_callback_runs_after_the_requests_are_sent_and_before_the_results(
    tmp_path: Path, demo_assets: Path, local_ray: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray.cloudpickle
    from PIL import Image

    from eureka_trainer.demo.resolve import load_demo_processor
    from eureka_trainer.driver.setup import learner_config
    from eureka_trainer.driver.topology import Layout, Topology

    ray.cloudpickle.register_pickle_by_value(__import__(__name__, fromlist=["_"]))
    marker = tmp_path / "sent"
    WaitingRollout.marker = str(marker)
    monkeypatch.setattr(workers, "RolloutWorker", WaitingRollout)
    spec = _job().spec
    model = str(demo_assets / "tiny-qwen2-vl")
    processor = load_demo_processor(model)
    config = learner_config(spec, model, processor.tokenizer.pad_token_id, 2, 1)
    # A rollout group and a learner group (the hybrid actor's class, subclassed in a test,
    # does not pickle by value: its methods' zero-argument `super` names the original).
    layout = Layout(1, 1, 0.0, 0.0, cpus_per_actor=0.5, threads=1, hybrid=False)
    text = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>How many?<|im_end|>\n<|im_start|>assistant\n"
    enc = processor(text=[text], images=[Image.new("RGB", (56, 56))], return_tensors="pt")
    mm = {k: enc[k] for k in ("pixel_values", "image_grid_thw")}
    request = GenerationRequest(prompt_ids=enc["input_ids"][0].tolist(), mm_inputs=mm)
    calls: list[str] = []

    def while_sampling() -> None:
        calls.append("while sampling")
        marker.touch()

    topology = Topology(spec, model, config, layout)
    try:
        groups = topology.generate(
            [request], SamplingConfig(n=2, max_new_tokens=4, seed=0), while_sampling=while_sampling
        )
    finally:
        topology.shutdown()
    assert calls == ["while sampling"]
    assert [len(g) for g in groups] == [2]
