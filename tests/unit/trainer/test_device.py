"""Batches are built on the model's device: CPU tests hold the code to it with another device.

On a GPU a batch left on the CPU fails inside the forward (or an op quietly computes on the CPU);
here there is no GPU, so the model goes to `meta` (shapes only, no values; torch refuses to mix
it with CPU tensors in an op, as it refuses CUDA with CPU) and a forward pre-hook records what
reaches the model, then stops the forward: anything left off `meta` fails the test, through the
learner's own guard (`learner.device.guard_inputs`) or the recorded devices.
"""

from __future__ import annotations

import random
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from eureka_trainer.backends import GenerationRequest, TrainSample
from eureka_trainer.learner.device import DeviceMismatch, guard_inputs, misplaced
from eureka_trainer.learner.modeling import pack, response_logprobs
from eureka_trainer.learner.torch_learner import LearnerConfig, TorchLearner, _padded

META = torch.device("meta")


class Stop(Exception):
    """Raised by the recording hook once it has seen the forward's inputs."""


def record_and_stop(model: torch.nn.Module) -> list[str]:
    """Record every tensor input's device at each forward of `model`, then stop the forward
    (a meta model cannot run HF's data-dependent code). Runs after the model's own guard."""
    seen: list[str] = []

    def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        tensors = [*args, *kwargs.values()]
        seen.extend(str(t.device) for t in tensors if isinstance(t, torch.Tensor))
        raise Stop

    model.register_forward_pre_hook(hook, with_kwargs=True)
    return seen


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    """The demo's tiny Qwen2-VL (no warm-up) in a folder, and its processor."""
    from eureka_trainer.demo.assets import build_model, build_processor

    processor = build_processor()
    folder = tmp_path_factory.mktemp("tiny") / "model"
    build_model(processor.tokenizer, 0).save_pretrained(folder)
    processor.tokenizer.save_pretrained(folder)
    return str(folder), processor


def _request(processor: Any) -> GenerationRequest:
    from eureka_trainer.demo.assets import draw_shapes
    from eureka_trainer.demo.warmup import demo_messages

    text = processor.apply_chat_template(
        demo_messages(), add_generation_prompt=True, tokenize=False
    )
    enc = processor(text=[text], images=[draw_shapes(2, random.Random(0))], return_tensors="pt")
    mm = {"pixel_values": enc["pixel_values"], "image_grid_thw": enc["image_grid_thw"]}
    return GenerationRequest(prompt_ids=enc["input_ids"][0].tolist(), mm_inputs=mm)


def _samples(processor: Any) -> list[TrainSample]:
    request = _request(processor)
    words = processor.tokenizer("<think>2</think><answer>2</answer>")["input_ids"]
    return [
        TrainSample(
            prompt_ids=request.prompt_ids,
            response_ids=words[: 3 + i],
            advantages=[1.0] * (3 + i),
            old_logprobs=[-1.0] * (3 + i),
            ref_logprobs=[-1.0] * (3 + i),
            mm_inputs=request.mm_inputs,
        )
        for i in range(2)
    ]


class TinyLM(torch.nn.Module):
    """A causal LM with the HF call signature `response_logprobs` uses (no data-dependent
    code, so it runs on `meta`)."""

    def __init__(self, vocab: int = 11, width: int = 4) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, width)
        self.head = torch.nn.Linear(width, vocab)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        use_cache: bool,
        logits_to_keep: torch.Tensor,
    ) -> Any:
        hidden = self.embed(input_ids) * attention_mask[..., None]
        return SimpleNamespace(logits=self.head(hidden[:, logits_to_keep]))


def _text_batch(device: torch.device) -> Any:
    return pack([[1, 2, 3], [4, 5]], [[6, 7], [8, 9, 10]], [{}, {}], 0, None, device)


def test_pack_builds_every_tensor_on_the_given_device(tiny: tuple[str, Any]) -> None:
    from transformers import AutoConfig

    path, processor = tiny
    request = _request(processor)
    config = AutoConfig.from_pretrained(path)
    batch = pack(
        [request.prompt_ids] * 2, [[20, 21], [22]], [request.mm_inputs] * 2, 0, config, META
    )
    tensors = {**batch.inputs, "starts": batch.starts, "lengths": batch.lengths}
    assert set(tensors) >= {"input_ids", "attention_mask", "pixel_values", "mm_token_type_ids"}
    assert {k: t.device for k, t in tensors.items()} == {k: META for k in tensors}
    assert (batch.width, batch.first) == (2, len(request.prompt_ids) - 1)


def test_response_logprobs_computes_on_the_batch_device() -> None:
    torch.manual_seed(0)
    model = TinyLM()
    on_cpu = response_logprobs(
        model, _text_batch(torch.device("cpu")), suppressed=[3], temperature=1.0
    )
    # Every tensor response_logprobs makes must be on the batch's device: torch refuses an op
    # that mixes meta and CPU tensors, as it refuses CUDA and CPU.
    on_meta = response_logprobs(model.to(META), _text_batch(META), suppressed=[3], temperature=1.0)
    assert [t.device for t in on_meta] == [META] * 3
    assert [t.shape for t in on_meta] == [t.shape for t in on_cpu]
    logp, _, mask = on_cpu
    assert mask.tolist() == [[True, True, False], [True, True, True]]
    assert bool(torch.isfinite(logp).all()) and bool((logp[mask] < 0).all())


def test_padded_signals_go_to_the_device() -> None:
    rows = _padded([[1.0, 2.0], [3.0]], 3, META)
    assert rows.device == META and rows.shape == (2, 3)
    assert _padded([[1.0, 2.0], [3.0]], 3).tolist() == [[1.0, 2.0, 0.0], [3.0, 0.0, 0.0]]


def test_the_guard_refuses_a_batch_off_the_model_device() -> None:
    model = TinyLM().to(META)
    guard_inputs(model, META)
    batch = _text_batch(torch.device("cpu"))  # built without the model's device
    with pytest.raises(DeviceMismatch, match=r"computes on meta but got input_ids on cpu"):
        model(**batch.inputs, use_cache=False, logits_to_keep=torch.arange(2, device=META))
    assert misplaced({"a": torch.zeros(2), "s": torch.tensor(1.0)}, META) == ["a on cpu"]


def _learner_config(tiny: tuple[str, Any], **fields: Any) -> LearnerConfig:
    """The tiny model's learner for one optimiser step, with `fields` set."""
    path, processor = tiny
    return LearnerConfig(
        model_path=path,
        family="qwen2_vl",
        pad_id=processor.tokenizer.pad_token_id,
        total_optimizer_steps=1,
        **fields,
    )


def test_the_learner_hands_its_models_only_tensors_on_its_device(tiny: tuple[str, Any]) -> None:
    processor = tiny[1]
    config = _learner_config(
        tiny,
        train_batch_size=2,
        micro_batch_size=2,
        kl_coef=0.1,  # a reference model too
        kl_in_loss=True,
        device="meta",
    )
    learner = TorchLearner(config)
    assert {p.device for p in learner.model.parameters()} == {META}
    assert not learner.optimizer.defaults["fused"]  # torch has no fused AdamW for `meta`
    assert learner.reference is not None
    policy, reference = record_and_stop(learner.model), record_and_stop(learner.reference)
    samples = _samples(processor)
    # The learner's guard runs first: a batch left on the CPU raises DeviceMismatch, not Stop.
    for call in (
        lambda: learner.logprobs(samples),
        lambda: learner.logprobs(samples, reference=True),
        lambda: learner.update(samples),
    ):
        with pytest.raises(Stop):
            call()
    assert len(policy) >= 8 and set(policy) == {"meta"}
    assert len(reference) >= 4 and set(reference) == {"meta"}


def test_the_learner_steps_with_the_fused_adamw_on_the_cpu(tiny: tuple[str, Any]) -> None:
    learner = TorchLearner(_learner_config(tiny, frozen_prefixes=("visual.",)))
    assert learner.optimizer.defaults["fused"]
    trainable = {id(p) for p in learner.model.parameters() if p.requires_grad}
    stepped = {id(p) for group in learner.optimizer.param_groups for p in group["params"]}
    assert stepped == trainable and len(trainable) < len(list(learner.model.parameters()))


def test_the_hf_engine_batches_on_its_device(tiny: tuple[str, Any]) -> None:
    from eureka_trainer.rollout.hf import HFRolloutEngine

    path, processor = tiny
    engine = HFRolloutEngine(path, "qwen2_vl", processor.tokenizer, device="meta")
    assert engine.device == META and {p.device for p in engine.model.parameters()} == {META}
    inputs = engine._left_padded([_request(processor)] * 2)
    assert set(inputs) >= {"input_ids", "attention_mask", "pixel_values", "mm_token_type_ids"}
    assert {t.device for t in inputs.values()} == {META}
    shared = HFRolloutEngine(path, "qwen2_vl", processor.tokenizer, module=engine.model)
    assert shared.device == META  # a learner's module: the engine computes where it lives


def test_shared_inputs_index_on_the_device_of_the_images() -> None:
    """`block_rows` builds its offsets next to the sizes (the vision tower's device). `meta`
    cannot count rows, so this uses torch's lazy-tensor device (TorchScript on the CPU), which
    refuses CPU operands like CUDA does."""
    from eureka_trainer.learner.shared_inputs import block_rows

    lazy = pytest.importorskip("torch._lazy.ts_backend")
    try:
        lazy.init()
    except RuntimeError as err:  # pragma: no cover - a torch build without the TS backend
        pytest.skip(f"no lazy tensor backend: {err}")
    sizes = torch.tensor([2, 3, 1], device="lazy")
    rows = block_rows(sizes, torch.tensor([1, 0, 1, 2]))
    assert rows.device.type == "lazy"
    assert rows.cpu().tolist() == [2, 3, 4, 0, 1, 2, 3, 4, 5]
