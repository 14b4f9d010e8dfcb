"""A hybrid actor trains on the image tensors it kept from its `generate` (`driver.kept_inputs`)
as the real `Topology` drives it on local Ray: the update call carries no tensors for those
samples, and the weights are those of an update that was sent every tensor (the three prompts'
images differ, so a tensor restored to the wrong sample would change them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from eureka_trainer.backends import SamplingConfig, TrainSample
from eureka_trainer.driver.kept_inputs import KeptInputs
from tests.integration.trainer.conftest import image_request, topology_parts
from tests.integration.trainer.test_driver import _job

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def test_the_update_uses_the_kept_tensors_and_lands_on_the_same_weights(
    tmp_path: Path, demo_assets: Path, local_ray: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eureka_trainer.driver.topology import Layout, Topology

    sent_args: list[tuple[int, list[Any]]] = []  # what each update call carried
    strip = KeptInputs.strip

    def recording_strip(self: KeptInputs, samples: Any, actor: int) -> Any:
        out, slots = strip(self, samples, actor)
        sent_args.append((sum(1 for s in out if s.mm_inputs), slots))
        return out, slots

    monkeypatch.setattr(KeptInputs, "strip", recording_strip)
    spec = _job().spec
    model, processor, config = topology_parts(spec, demo_assets)
    layout = Layout(1, 1, 0.0, 0.0, cpus_per_actor=0.5, threads=1, hybrid=True)
    colours = ((200, 30, 30), (30, 200, 30), (30, 30, 200))
    requests = [image_request(processor, colour) for colour in colours]
    sampling = SamplingConfig(n=2, max_new_tokens=4, seed=0)

    def train(keep: bool) -> dict[str, torch.Tensor]:
        topology = Topology(spec, model, config, layout)
        try:
            # The third prompt stands for a group the filter carried from an earlier step: it
            # was sampled before the last update, so the actor no longer keeps its tensors.
            groups = topology.generate(requests[:2], sampling, keep=keep)
            groups.append(topology.generate(requests[2:], sampling)[0])
            samples = [
                TrainSample(
                    r.prompt_ids, c.token_ids, [a] * len(c.token_ids), c.logprobs, r.mm_inputs
                )
                for r, group, a in zip(requests, groups, (1.0, -1.0, 0.5), strict=True)
                for c in group
            ]
            topology.update(samples)
            return topology.weights()
        finally:
            topology.shutdown()

    kept, sent = train(keep=True), train(keep=False)
    assert sent_args == [
        (2, [0, 0, 1, 1, None, None]),  # only the carried group's tensors travel
        (6, [None] * 6),  # nothing kept: every sample carries its tensors
    ]
    assert kept.keys() == sent.keys()
    for name in kept:
        assert torch.equal(kept[name], sent[name]), name
