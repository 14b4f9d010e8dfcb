"""Every model family end to end on its tiny model (`eureka_trainer.models.tiny`), on a CPU.

Per family: MM-EUREKA-format prompts encoded with the family's processor and image rules
(InternVL's blank image for a text-only prompt), the `hf` rollout, the `torch` learner's
log-probs equal to the rollout's, the vision tower frozen by the family's real checkpoint
prefixes, weight sync into a separately loaded engine, checkpoint and resume; then a 2-step
`eureka run` through local Ray on the folder `eureka tiny-model` writes. InternVL runs in
both layouts: transformers-native and the original remote-code chat model (`--layout
remote-code`, `model.trustRemoteCode: true`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from PIL import Image

from eureka_trainer.backends import GenerationRequest, SamplingConfig, TrainSample
from eureka_trainer.config import validate_rljob
from eureka_trainer.data import PromptStream, encode_prompt
from eureka_trainer.learner.torch_learner import LearnerConfig, TorchLearner
from eureka_trainer.local import train
from eureka_trainer.models.families import MODEL_FAMILIES
from eureka_trainer.models.loading import checkpoint_layout, load_processor
from eureka_trainer.models.tiny import build_tiny_model
from eureka_trainer.rollout.hf import HFRolloutEngine

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
CASES = [(family, "native") for family in MODEL_FAMILIES.names()] + [("internvl", "remote-code")]


def write_data(folder: Path, *, images: bool) -> Path:
    """Four MM-EUREKA `conversations` lines (the last one text-only when `images`)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(4):
        record: dict[str, Any] = {
            "id": f"p{i}",
            "conversations": [
                {"role": "system", "content": "Think, then answer in <answer></answer>."},
                {"role": "user", "content": f"<image>How many shapes? {i}"},
            ],
            "answer": str(i + 1),
        }
        if images and i < 3:
            Image.new("RGB", (60 + 10 * i, 56), (40 * i, 90, 200)).save(folder / f"images/{i}.png")
            record["image_urls"] = [f"file://images/{i}.png"]
        else:
            record["conversations"][1]["content"] = f"What is {i} + 1?"
        lines.append(json.dumps(record))
    path = folder / "train.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module", params=CASES, ids=[f"{f}-{layout}" for f, layout in CASES])
def case(request: pytest.FixtureRequest) -> tuple[str, str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def family(case: tuple[str, str]) -> str:
    return case[0]


@pytest.fixture(scope="module")
def trust(case: tuple[str, str]) -> bool:
    """Remote code runs only when the job opts in (`model.trustRemoteCode`)."""
    return case[1] == "remote-code"


@pytest.fixture(scope="module")
def model_dir(case: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    family, layout = case
    folder = tmp_path_factory.mktemp(f"tiny-{family}-{layout}")
    build_tiny_model(family, folder, seed=1, layout=layout)
    return folder


def _requests(
    family: str, model_dir: Path, data: Path, trust: bool = False
) -> list[GenerationRequest]:
    processor = load_processor(model_dir, family, trust_remote_code=trust)
    stream = PromptStream([str(data)], family=family, shuffle=False)
    requests = []
    for record in stream.next_batch(4):
        encoded = encode_prompt(record, processor, family=family, max_prompt_length=256)
        requests.append(
            GenerationRequest(prompt_ids=encoded.input_ids, mm_inputs=encoded.mm_inputs)
        )
    return requests


def _samples(requests: list[GenerationRequest], groups: list[Any]) -> list[TrainSample]:
    return [
        TrainSample(
            prompt_ids=req.prompt_ids,
            response_ids=c.token_ids,
            advantages=[1.0 if j % 2 else -1.0] * len(c.token_ids),
            old_logprobs=c.logprobs,
            mm_inputs=req.mm_inputs,
        )
        for req, group in zip(requests, groups, strict=True)
        for j, c in enumerate(group)
    ]


def _assert_logprobs_match(learner: TorchLearner, samples: list[TrainSample]) -> None:
    recomputed = learner.logprobs(samples)
    for ours, sample in zip(recomputed, samples, strict=True):
        torch.testing.assert_close(
            torch.tensor(ours), torch.tensor(sample.old_logprobs), atol=1e-4, rtol=0
        )


def test_family_rollout_learner_sync_and_resume(
    family: str, trust: bool, model_dir: Path, tmp_path: Path
) -> None:
    spec = checkpoint_layout(model_dir, family)  # the layout's real parameter names
    data = write_data(tmp_path, images=family != "text")
    requests = _requests(family, model_dir, data, trust)
    if family == "internvl":  # the text-only prompt got InternVL's 224x224 blank image
        assert all("pixel_values" in r.mm_inputs for r in requests)
    elif family != "text":
        assert "pixel_values" not in requests[3].mm_inputs
    tokenizer = load_processor(model_dir, family, trust_remote_code=trust)
    tokenizer = getattr(tokenizer, "tokenizer", tokenizer)
    engine = HFRolloutEngine(str(model_dir), family, tokenizer, trust_remote_code=trust)
    config = LearnerConfig(
        model_path=str(model_dir),
        family=family,
        pad_id=tokenizer.pad_token_id,
        total_optimizer_steps=4,
        learning_rate=1e-2,
        train_batch_size=8,
        micro_batch_size=4,
        frozen_prefixes=spec.vision_prefixes,
        trust_remote_code=trust,
    )
    learner = TorchLearner(config)
    sampling = SamplingConfig(n=2, max_new_tokens=6, temperature=1.0, seed=5)
    groups = engine.generate(requests, sampling)
    samples = _samples(requests, groups)
    _assert_logprobs_match(learner, samples)  # the rollout's numbers are the learner's

    frozen = {n: p.clone() for n, p in learner.model.named_parameters() if not p.requires_grad}
    assert bool(frozen) == bool(spec.vision_prefixes)
    before = {n: p.clone() for n, p in learner.model.named_parameters() if p.requires_grad}
    learner.update(samples)
    for name, param in learner.model.named_parameters():
        if name in frozen:
            assert torch.equal(param, frozen[name]), f"{name} is frozen but changed"
    assert any(
        not torch.equal(p, before[n]) for n, p in learner.model.named_parameters() if n in before
    )

    engine.load_weights(learner.weight_buckets(64 << 10))  # sync by state_dict names
    after = _samples(requests, engine.generate(requests, sampling))
    _assert_logprobs_match(learner, after)

    learner.save(str(tmp_path / "ckpt"))
    resumed = TorchLearner(config)
    resumed.load(str(tmp_path / "ckpt"))
    assert learner.logprobs(after) == resumed.logprobs(after)
    a, b = learner.update(after), resumed.update(after)
    assert a["policy/loss"] == pytest.approx(b["policy/loss"], abs=1e-6)


def test_family_trains_two_steps_with_eureka_run(
    family: str, trust: bool, model_dir: Path, tmp_path: Path, local_ray: None
) -> None:
    data = write_data(tmp_path, images=family != "text")
    spec = checkpoint_layout(model_dir, family)
    job = validate_rljob(
        {
            "apiVersion": "eureka.dev/v1alpha1",
            "kind": "RLJob",
            "metadata": {"name": f"tiny-{family.replace('_', '-')}"},
            "spec": {
                "model": {
                    "name": str(model_dir),
                    "family": family,
                    "dtype": "float32",
                    "frozenPrefixes": list(spec.vision_prefixes),
                    "trustRemoteCode": trust,
                },
                "data": {"trainFiles": [str(data)], "maxPromptLength": 256},
                "rewards": {"workers": 1},
                "algorithm": {
                    "estimator": "grpo",
                    "samplesPerPrompt": 2,
                    "rolloutBatchSize": 2,
                    "trainBatchSize": 4,
                    "maxSteps": 2,
                    "learningRate": 1e-3,
                },
                "rollout": {"backend": "hf", "maxNewTokens": 6},
                "learner": {"backend": "torch", "microBatchSize": 4},
                "resources": {"workers": {"gpus": 0}},
                "checkpoint": {"intervalSteps": 2, "storage": {"path": "checkpoints"}},
                "logging": {"tensorboard": {"enabled": False}},
            },
        }
    )
    run = tmp_path / "run"
    assert train(job, run) == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert (run / "checkpoints" / "step-00000002").is_dir()
    assert json.loads((run / "status.json").read_text())["phase"] == "Succeeded"
