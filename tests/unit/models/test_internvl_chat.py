"""The original remote-code InternVL2.5 layout (`model_type: internvl_chat`) on the tiny
model `eureka tiny-model --family internvl --layout remote-code` writes.

Interface facts are read from github.com/OpenGVLab/InternVL (internvl_chat/internvl/model/
internvl_chat/modeling_internvl_chat.py, configuration_internvl_chat.py, model/internlm2/,
train/dataset.py `dynamic_preprocess`, conversation.py `internvl2_5`) and vLLM
(vllm/model_executor/models/internvl.py: `InternVLChatModel`, `<image>` expanded to
`<img>` + `<IMG_CONTEXT>` x features + `</img>`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from eureka_trainer.data.encode import encode_prompt
from eureka_trainer.data.records import PromptRecord
from eureka_trainer.learner.modeling import ImageTokenMismatch, pack, response_logprobs
from eureka_trainer.learner.torch_learner import freeze
from eureka_trainer.models import cli
from eureka_trainer.models.families import family_of_model_type
from eureka_trainer.models.internvl_chat import tile_grid, tile_image, tile_pixels
from eureka_trainer.models.loading import (
    checkpoint_layout,
    load_policy,
    load_processor,
    load_tokenizer,
)
from eureka_trainer.rollout.vllm_engine import prompt_input


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("internvl-chat") / "tiny"
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = ["--family", "internvl", "--layout", "remote-code", "--output", str(out)]
    assert cli.run(parser.parse_args(args)) == 0
    other = ["--family", "qwen2_vl", "--layout", "remote-code", "--output", str(out) + "-q"]
    assert cli.run(parser.parse_args(other)) == 2  # no remote-code layout of that family
    return out


def test_the_folder_is_a_remote_code_checkpoint_like_the_hubs(folder: Path) -> None:
    """config.json as OpenGVLab/InternVL2_5-8B's: model_type internvl_chat, `auto_map` to
    modeling files in the folder (AutoModel, AutoModelForCausalLM), an InternLM2 llm_config;
    no processor files (the hub repository has none)."""
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "internvl_chat"
    assert config["auto_map"]["AutoModel"] == "modeling_internvl_chat.InternVLChatModel"
    assert config["llm_config"]["architectures"] == ["InternLM2ForCausalLM"]
    for module in set(config["auto_map"].values()):
        assert (folder / f"{module.split('.')[0]}.py").is_file()
    assert not (folder / "processor_config.json").exists()
    assert family_of_model_type("internvl_chat") == "internvl"


def test_loading_needs_trust_remote_code_and_names_the_field(folder: Path) -> None:
    with pytest.raises(ValueError, match=r"model\.trustRemoteCode: true"):
        load_policy(folder, "internvl")
    with pytest.raises(ValueError, match=r"model\.trustRemoteCode"):
        load_processor(folder, "internvl")
    model = load_policy(folder, "internvl", trust_remote_code=True)
    assert type(model).__name__ == "InternVLChatModel"
    tokenizer = load_tokenizer(folder)
    # The original model reads the <IMG_CONTEXT> id from an attribute its caller sets.
    assert model.img_context_token_id == tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    # InternLM2's EOS is </s>; a turn ends at <|im_end|> (the template's separator).
    assert tokenizer.eos_token == "<|im_end|>"


def test_frozen_prefixes_are_the_originals_names(folder: Path) -> None:
    model = load_policy(folder, "internvl", trust_remote_code=True)
    layout = checkpoint_layout(folder, "internvl")
    assert layout.vision_prefixes == ("vision_model.", "mlp1.")
    assert freeze(model, layout.vision_prefixes) > 0
    for name, param in model.named_parameters():
        assert param.requires_grad == name.startswith("language_model."), name
    names = {n for n, _ in model.named_parameters()}
    assert "language_model.model.tok_embeddings.weight" in names
    assert "language_model.output.weight" in names
    assert "language_model.model.layers.0.attention.wqkv.weight" in names
    with pytest.raises(ValueError, match="matches no parameter"):
        freeze(model, ["vision_tower."])  # the -hf layout's name


@pytest.mark.parametrize(
    ("size", "grid"),
    [((56, 56), (1, 1)), ((112, 56), (2, 1)), ((56, 112), (1, 2)), ((300, 60), (2, 1))],
)
def test_tiles_follow_the_closest_aspect_ratio(
    size: tuple[int, int], grid: tuple[int, int]
) -> None:
    assert tile_grid(*size, image_size=56, min_num=1, max_num=2) == grid


def test_tie_prefers_the_larger_grid_for_a_large_image() -> None:
    # A square image ties 1x1 and 2x2 (both ratio 1): the larger grid when the image has
    # more than half the grid's pixels (dynamic_preprocess's rule).
    assert tile_grid(448, 448, image_size=56, min_num=1, max_num=4) == (2, 2)
    assert tile_grid(60, 60, image_size=56, min_num=1, max_num=4) == (1, 1)


def test_pixels_are_imagenet_normalised_tiles_with_a_thumbnail() -> None:
    image = Image.new("RGB", (112, 56), (255, 0, 0))
    tiles = tile_image(image, 56, 1, 2, use_thumbnail=True)
    assert [t.size for t in tiles] == [(56, 56)] * 3  # 2 tiles + the thumbnail
    pixels = tile_pixels(tiles, 56)
    assert pixels.shape == (3, 3, 56, 56) and pixels.dtype == torch.float32
    expected = torch.tensor([(1 - 0.485) / 0.229, (0 - 0.456) / 0.224, (0 - 0.406) / 0.225])
    torch.testing.assert_close(pixels[0, :, 10, 10], expected)


def _record(tmp_path: Path, size: tuple[int, int]) -> PromptRecord:
    Image.new("RGB", size, (10, 200, 30)).save(tmp_path / "i.png")
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Answer."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]},
    ]
    return PromptRecord("r", messages, [tmp_path / "i.png"], "1", "t.jsonl:1")


def test_encoding_expands_each_image_between_img_tags(folder: Path, tmp_path: Path) -> None:
    """The `internvl2_5` prompt (ChatML, `<image>\\n` before the question) with `<image>`
    replaced by `<img>` + `<IMG_CONTEXT>` x (tiles x num_image_token) + `</img>`."""
    processor = load_processor(folder, "internvl", trust_remote_code=True)
    encoded = encode_prompt(
        _record(tmp_path, (112, 56)), processor, family="internvl", max_prompt_length=256
    )
    assert encoded.text == (
        "<|im_start|>system\nAnswer.<|im_end|>\n<|im_start|>user\n<image>\nHow many?"
        "<|im_end|>\n<|im_start|>assistant\n"
    )
    tok = processor.tokenizer
    ids = encoded.input_ids
    start, end = (
        ids.index(tok.convert_tokens_to_ids("<img>")),
        ids.index(tok.convert_tokens_to_ids("</img>")),
    )
    assert ids[start + 1 : end] == [processor.image_token_id] * 12  # 3 tiles x 4
    assert encoded.mm_inputs["pixel_values"].shape == (3, 3, 56, 56)
    assert encoded.mm_inputs["image_flags"].tolist() == [[1], [1], [1]]


def test_forward_takes_the_learners_inputs_and_refuses_a_token_mismatch(
    folder: Path, tmp_path: Path
) -> None:
    """The learner's packed batch (with `logits_to_keep`, which the original forward does not
    take) gives per-token log-probs; a missing image token is an error, not a zeroed loss."""
    processor = load_processor(folder, "internvl", trust_remote_code=True)
    model = load_policy(folder, "internvl", trust_remote_code=True)
    encoded = encode_prompt(
        _record(tmp_path, (56, 56)), processor, family="internvl", max_prompt_length=256
    )
    batch = pack([encoded.input_ids], [[5, 6, 7]], [encoded.mm_inputs], 0, model.config)
    logp, _, mask = response_logprobs(model, batch, suppressed=[], temperature=1.0)
    assert logp.shape == (1, 3) and bool(mask.all()) and bool((logp < 0).all())
    cut = [t for t in encoded.input_ids if t != processor.image_token_id][:-1]
    bad = pack([cut + [processor.image_token_id] * 3], [[5]], [encoded.mm_inputs], 0, model.config)
    with pytest.raises(ImageTokenMismatch, match="image tokens and features do not match"):
        response_logprobs(model, bad, suppressed=[], temperature=1.0)


def test_vllm_gets_the_image_placeholder_text_back() -> None:
    """vLLM's InternVLChatModel processor replaces the text `<image>` (its tokens) by its own
    expansion: the driver's `<img> C C C </img>` goes back to the placeholder's tokens."""
    from eureka_trainer.backends import GenerationRequest

    img, ctx, end, mark = 7, 9, 8, [60, 61, 62]
    request = GenerationRequest(prompt_ids=[1, 2, img, ctx, ctx, ctx, end, 3], images=[object()])
    got = prompt_input(request, ctx, (img, end), placeholder=mark)
    assert got["prompt_token_ids"] == [1, 2, 60, 61, 62, 3]


def test_a_language_model_without_generate_is_named_with_the_way_out(folder: Path) -> None:
    """OpenGVLab's InternLM2ForCausalLM does not inherit GenerationMixin, so under
    transformers >= 4.50 it has no `generate` (tried with their code under 5.23): the `hf`
    rollout says so and points to the vLLM backend instead of an AttributeError."""
    from eureka_trainer.models.internvl_chat import NoGenerate

    model = load_policy(folder, "internvl", trust_remote_code=True)
    model.language_model.__class__ = type("InternLM2ForCausalLM", (torch.nn.Module,), {})
    ids = torch.tensor([[5, 6]])
    with pytest.raises(NoGenerate, match=r"rollout\.backend: vllm"):
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=2)


def test_weights_missing_from_the_checkpoint_are_an_error(folder: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    copy = tmp_path / "copy"
    copy.mkdir()
    for file in folder.iterdir():
        (copy / file.name).write_bytes(file.read_bytes())
    weights = load_file(str(copy / "model.safetensors"))
    del weights["mlp1.1.weight"]
    save_file(weights, str(copy / "model.safetensors"))
    with pytest.raises(ValueError, match=r"weights missing: \['mlp1\.1\.weight'\]"):
        load_policy(copy, "internvl", trust_remote_code=True)


def test_image_marks_and_a_tokenizer_without_a_chat_template(folder: Path) -> None:
    """`<image>` then a newline unless the text already starts with one; a tokenizer with no
    chat template gets the `internvl2_5` conversation named by config.json's `template`
    (ChatML turns ended by `<|im_end|>`), the same text as the folder's own template."""
    from eureka_trainer.models.internvl_chat import string_contents

    got = string_contents(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "\nQ"}]}]
    )
    assert got == [{"role": "user", "content": "<image>\nQ"}]
    processor = load_processor(folder, "internvl", trust_remote_code=True)
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "S"}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q"}]},
    ]
    with_template = processor.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False
    )
    processor.tokenizer.chat_template = None
    assert processor.template == "internvl2_5"
    assert (
        processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        == with_template
        == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\n<image>\nQ<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    processor.template = "Hermes-2"
    with pytest.raises(ValueError, match="no chat template"):
        processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def test_a_bfloat16_model_gets_its_pixels_in_bfloat16(folder: Path, tmp_path: Path) -> None:
    """The original's patch embedding does not cast its input (its `chat()` passes bfloat16
    pixels): the trainer's float32 tiles reach a bfloat16 model in its dtype, forward and
    generate."""
    processor = load_processor(folder, "internvl", trust_remote_code=True)
    model = load_policy(folder, "internvl", "bfloat16", trust_remote_code=True)
    encoded = encode_prompt(
        _record(tmp_path, (56, 56)), processor, family="internvl", max_prompt_length=256
    )
    assert encoded.mm_inputs["pixel_values"].dtype == torch.float32
    batch = pack([encoded.input_ids], [[5, 6]], [encoded.mm_inputs], 0, model.config)
    logp, _, _ = response_logprobs(model, batch, suppressed=[], temperature=1.0)
    assert bool(torch.isfinite(logp).all())
    ids = torch.tensor([encoded.input_ids])
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=2,
        do_sample=False,
        **encoded.mm_inputs,
    )
    assert out.shape == (1, ids.shape[1] + 2) and torch.equal(out[:, : ids.shape[1]], ids)


def test_the_qwen2_language_model_of_the_larger_checkpoints(tmp_path: Path) -> None:
    """InternVL2.5-38B (MM-EUREKA's Zero model starts from its pretrained version) has a
    Qwen2.5 LLM inside the same remote-code chat model: transformers' own Qwen2ForCausalLM,
    which can `generate`. The hf rollout's log-probs equal the learner's on it."""
    from eureka_trainer.backends import GenerationRequest, SamplingConfig
    from eureka_trainer.learner.modeling import to_lists
    from eureka_trainer.models.tiny import TinyOptions, build_internvl_chat
    from eureka_trainer.rollout.hf import HFRolloutEngine

    folder = build_internvl_chat(TinyOptions(seed=2), llm="qwen2").save(tmp_path / "qwen")
    model = load_policy(folder, "internvl", trust_remote_code=True)
    assert type(model.language_model).__name__ == "Qwen2ForCausalLM"
    processor = load_processor(folder, "internvl", trust_remote_code=True)
    short = encode_prompt(
        _record(tmp_path, (56, 56)), processor, family="internvl", max_prompt_length=256
    )
    wide = encode_prompt(
        _record(tmp_path, (112, 56)), processor, family="internvl", max_prompt_length=256
    )
    requests = [GenerationRequest(e.input_ids, e.mm_inputs) for e in (short, wide)]
    engine = HFRolloutEngine(str(folder), "internvl", processor.tokenizer, module=model)
    groups = engine.generate(requests, SamplingConfig(n=2, max_new_tokens=4, seed=3))
    rows = [(r, c) for r, group in zip(requests, groups, strict=True) for c in group]
    batch = pack(
        [r.prompt_ids for r, _ in rows],
        [c.token_ids for _, c in rows],
        [r.mm_inputs for r, _ in rows],
        processor.tokenizer.pad_token_id,
        model.config,
    )
    logp, _, mask = response_logprobs(model, batch, suppressed=engine.suppressed, temperature=1.0)
    for ours, (_, completion) in zip(to_lists(logp, mask), rows, strict=True):
        torch.testing.assert_close(
            torch.tensor(ours), torch.tensor(completion.logprobs), atol=1e-4, rtol=0
        )


HUB_SCRIPT = """
from eureka_trainer.models.loading import checkpoint_model_type, load_policy, load_processor

name = "OpenGVLab/InternVL2_5-8B"
assert checkpoint_model_type(name) == "internvl_chat"
try:
    load_policy(name, "internvl")
    raise SystemExit("loaded without trustRemoteCode")
except ValueError as error:
    assert "model.trustRemoteCode" in str(error), error
model = load_policy(name, "internvl", trust_remote_code=True)
assert type(model).__name__ == "InternVLChatModel"
assert load_processor(name, "internvl", trust_remote_code=True).num_image_token == 4
print("resolved", name)
"""


def test_a_hub_id_is_recognised_from_the_hub_cache(folder: Path, tmp_path: Path) -> None:
    """On a cluster `model.name` is a hub id (`OpenGVLab/InternVL2_5-8B`), not a folder: the
    layout is read from the hub's config.json and the weights from its snapshot. Here the hub
    cache is filled by hand in huggingface_hub's layout (refs/main -> snapshots/<commit>) and
    the hub is offline, in a fresh interpreter (the hub settings are read at import)."""
    import os
    import subprocess
    import sys

    repo = tmp_path / "hub" / "models--OpenGVLab--InternVL2_5-8B"
    commit = "0" * 40
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in folder.iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(tmp_path / "hub"),
        "HF_HUB_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
    }
    done = subprocess.run(
        [sys.executable, "-c", HUB_SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resolved OpenGVLab/InternVL2_5-8B" in done.stdout
