"""`eureka tiny-model` folders load as checkpoints of their family, image-only without
torchvision; `trust_remote_code` reaches transformers' loaders."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from eureka_trainer.models import cli
from eureka_trainer.models.loading import (
    load_policy,
    load_processor,
    load_tokenizer,
)
from eureka_trainer.models.tiny import build_tiny_model


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(list(argv)))


def test_tiny_model_cli_writes_a_loadable_folder_and_keeps_a_full_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tiny"
    assert _cli("--family", "text", "--output", str(out)) == 0
    assert "model.family: text" in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["Qwen2ForCausalLM"]
    model = load_policy(out, "text")
    tokenizer = load_tokenizer(out)
    ids = tokenizer("<think>", add_special_tokens=False)["input_ids"]
    assert len(ids) == 1 and model(torch.tensor([ids])).logits.shape[-1] == len(tokenizer)
    before = (out / "model.safetensors").read_bytes()
    assert _cli("--family", "text", "--output", str(out), "--seed", "3") == 2
    assert "exists and is not an empty folder" in capsys.readouterr().err
    assert (out / "model.safetensors").read_bytes() == before


def _prompt(processor: object, size: tuple[int, int]) -> dict[str, torch.Tensor]:
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)  # type: ignore[attr-defined]
    image = Image.new("RGB", size, (200, 10, 10))
    return dict(processor(text=[text], images=[image], return_tensors="pt"))  # type: ignore[operator]


@pytest.fixture(scope="module")
def internvl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("internvl")
    build_tiny_model("internvl", folder)
    return folder


def test_internvl_processor_expands_each_tile_between_img_tags(internvl_dir: Path) -> None:
    """InternVL's processor (transformers' InternVLProcessor, reloaded from the folder) writes
    `<img>` + `<IMG_CONTEXT>` x (tiles x image_seq_length) + `</img>`; a 2:1 image is 2 tiles
    and a thumbnail (GotOcr2's crop_to_patches), 4 tokens each."""
    processor = load_processor(internvl_dir, "internvl")
    assert type(processor).__name__ == "InternVLProcessor" and processor.image_seq_length == 4
    out = _prompt(processor, (112, 56))
    tok = processor.tokenizer
    ids = out["input_ids"][0].tolist()
    start, end = ids.index(tok.start_image_token_id), ids.index(tok.end_image_token_id)
    assert ids[start + 1 : end] == [tok.context_image_token_id] * 12
    assert out["pixel_values"].shape == (3, 3, 56, 56)
    assert "mm_token_type_ids" not in out  # InternVL's forward does not take it


@pytest.mark.parametrize(("family", "tokens"), [("qwen2_5_vl", 4), ("qwen3_vl", 4)])
def test_qwen_processors_merge_patches_of_their_family(
    family: str, tokens: int, tmp_path: Path
) -> None:
    """Qwen2.5-VL: 14-pixel patches (28x28 per token); Qwen3-VL: 16-pixel (32x32 per token)."""
    build_tiny_model(family, tmp_path)
    processor = load_processor(tmp_path, family)
    side = 56 if family == "qwen2_5_vl" else 64
    out = _prompt(processor, (side, side))
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((out["input_ids"] == pad).sum()) == tokens
    assert out["mm_token_type_ids"].sum() == tokens


def _remote_code_folder(
    folder: Path, module: str, model_type: str, classes: tuple[str, str], model_source: str
) -> None:
    """The tiny text model in `folder`, turned into a remote-code checkpoint the way a hub repo
    ships one: `module.py` in the folder (a Qwen2 config subclass named `classes[0]` with
    `model_type`, then `model_source`, which defines `classes[1]`), named by config.json's
    `auto_map`."""
    config_class, model_class = classes
    build_tiny_model("text", folder)
    (folder / f"{module}.py").write_text(
        "import torch\n"
        "from transformers import Qwen2Config, Qwen2ForCausalLM\n\n\n"
        f"class {config_class}(Qwen2Config):\n    model_type = '{model_type}'\n\n\n" + model_source
    )
    config = json.loads((folder / "config.json").read_text())
    config.update(
        model_type=model_type,
        architectures=[model_class],
        auto_map={
            "AutoConfig": f"{module}.{config_class}",
            "AutoModelForCausalLM": f"{module}.{model_class}",
        },
    )
    (folder / "config.json").write_text(json.dumps(config))


def test_remote_code_folder_loads_only_when_trusted(tmp_path: Path) -> None:
    """A local folder whose config.json `auto_map` names a modeling file in the folder (how a
    hub repo ships remote code): transformers refuses it unless `trust_remote_code` reaches
    `from_pretrained`, and loads it when it does."""
    _remote_code_folder(
        tmp_path,
        "remote_model",
        "eureka_remote_test",
        ("RemoteConfig", "RemoteForCausalLM"),
        "class RemoteForCausalLM(Qwen2ForCausalLM):\n    config_class = RemoteConfig\n",
    )
    with pytest.raises(ValueError, match="trust_remote_code"):
        load_policy(tmp_path, "text")
    model = load_policy(tmp_path, "text", trust_remote_code=True)
    assert type(model).__name__ == "RemoteForCausalLM"


def test_remote_code_buffers_computed_in_init_survive_loading(tmp_path: Path) -> None:
    """transformers 5's `from_pretrained` builds on the meta device, so a non-persistent
    buffer computed in a remote `__init__` (InternLM2's rotary `inv_freq`) is never
    initialised: NaN log-probs with OpenGVLab's InternVL2.5 code under 5.23.
    `load_remote_code` runs the model's own `__init__` and then loads the weights."""
    import transformers

    from eureka_trainer.models.loading import load_remote_code

    _remote_code_folder(
        tmp_path,
        "remote_buffer",
        "eureka_buffer_test",
        ("BufferConfig", "BufferModel"),
        "class BufferModel(Qwen2ForCausalLM):\n    config_class = BufferConfig\n\n"
        "    def __init__(self, config):\n        super().__init__(config)\n"
        "        self.register_buffer('steps', torch.arange(4.0) + 1, persistent=False)\n",
    )
    model = load_remote_code(tmp_path, transformers.AutoModelForCausalLM, "float32")
    assert model.steps.tolist() == [1.0, 2.0, 3.0, 4.0]
    reference = load_policy(tmp_path, "text", trust_remote_code=True)
    for name, tensor in reference.state_dict().items():
        assert torch.equal(model.state_dict()[name], tensor), name
