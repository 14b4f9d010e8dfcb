"""A copy of the demo model W times wider that computes the same function (benchmarks only).

A wider model with random weights would not do the demo's work: its responses are noise,
always as long as allowed, and the accuracy reward sends noise to math-verify (about 100 ms a
step at 4x, against 15 ms for the demo's answers). So the wide model here is the trained demo
model widened without changing what it computes, in the manner of Net2WiderNet:

- every hidden width (text hidden size, attention heads, key/value heads, MLP, the vision
  tower's width and heads, the merger) is W times larger, with the same depth, vocabulary, head
  size and rope sections;
- each widened vector holds W copies of the narrow one: a layer's output rows are repeated, and
  its input columns repeated and divided by W, so a linear layer of the wide model maps W copies
  of its input to W copies of its output; norms keep their statistics (the mean and mean square
  of W copies are those of one), and attention runs W copies of each head;
- the word embedding and the output head are untied (a tied head would see W copies of each
  embedding and multiply the logits by W).

Its gradients keep the copies equal, so it trains as the demo does, at W times the width's
cost. `widen` checks the function on a real prompt before it saves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def copies(t: Any, dim: int, factor: int, groups: int = 1) -> Any:
    """`t` with dimension `dim` holding `factor` copies of each of its `groups` consecutive
    blocks: [.., n, ..] -> [.., factor * n, ..] (groups=1: the whole dimension repeated)."""
    shape = list(t.shape)
    block = shape[dim] // groups
    split = t.reshape(*shape[:dim], groups, 1, block, *shape[dim + 1 :])
    expanded = split.expand(*shape[:dim], groups, factor, block, *shape[dim + 1 :])
    return expanded.reshape(*shape[:dim], groups * factor * block, *shape[dim + 1 :]).clone()


def block_groups(name: str, dim: int, spatial_merge: int) -> int:
    """How many separately laid-out blocks a widened dimension holds: the fused q/k/v of the
    vision attention (out rows: q, k, v) and the merger's first layer (in columns: the merged
    patches, each a copy-laid-out vector)."""
    if name.endswith("attn.qkv.weight") or name.endswith("attn.qkv.bias"):
        return 3 if dim == 0 else 1
    if name.endswith("merger.mlp.0.weight") and dim == 1:
        return spatial_merge**2
    return 1


def widen(demo: Path, factor: int, folder: Path) -> Path:
    """Write the demo model `factor` times wider to `folder` (with the demo's processor)."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText

    from eureka_trainer.demo.resolve import load_demo_processor

    narrow = AutoModelForImageTextToText.from_pretrained(demo, dtype=torch.float32).eval()
    config = AutoConfig.from_pretrained(demo)
    text, vision = config.text_config, config.vision_config
    for part, names in (
        (text, ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads")),
        (vision, ("embed_dim", "num_heads")),
    ):
        for name in names:
            setattr(part, name, getattr(part, name) * factor)
    vision.hidden_size = text.hidden_size  # the merger projects into the language model
    config.tie_word_embeddings = text.tie_word_embeddings = False
    wide = AutoModelForImageTextToText.from_config(config, dtype=torch.float32).eval()

    small = dict(narrow.named_parameters())
    small.setdefault("lm_head.weight", narrow.get_output_embeddings().weight)
    modules = dict(wide.named_modules())
    with torch.no_grad():
        for name, param in wide.named_parameters():
            source = small.get(name)
            if source is None:
                raise KeyError(f"the wide model's {name} has no counterpart in the demo model")
            module = modules[name.rsplit(".", 1)[0]]
            param.copy_(_widened(name, source, param.shape, module, factor, vision))
    _check_same_function(narrow, wide, load_demo_processor(demo))
    wide.save_pretrained(folder)
    load_demo_processor(demo).save_pretrained(folder)
    return folder


def _widened(name: str, source: Any, shape: Any, module: Any, factor: int, vision: Any) -> Any:
    import torch

    out = source
    # Which dimensions are outputs (repeated) and which inputs (repeated and divided).
    if isinstance(module, torch.nn.Embedding):
        inputs: set[int] = set()
    elif isinstance(module, torch.nn.Linear) and name.endswith(".weight"):
        inputs = {1}
    else:  # biases, norms, convolutions (their input is the image's 3 channels)
        inputs = set()
    for dim, (have, want) in enumerate(zip(source.shape, shape, strict=True)):
        if have == want:
            continue
        if want != have * factor:
            raise ValueError(f"{name}: dimension {dim} goes {have} -> {want}, not x{factor}")
        out = copies(out, dim, factor, block_groups(name, dim, vision.spatial_merge_size))
        if dim in inputs:
            out = out / factor
    return out


def _check_same_function(narrow: Any, wide: Any, processor: Any) -> None:
    """The wide model's log-probs on a real image prompt are the demo model's."""
    import torch
    from PIL import Image

    messages = [
        {
            "role": "user",
            "content": [{"type": "image"}, {"type": "text", "text": "How many shapes?"}],
        }
    ]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    image = Image.new("RGB", (56, 56), (200, 40, 40))
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    with torch.no_grad():
        a = torch.log_softmax(narrow(**inputs).logits, -1)
        b = torch.log_softmax(wide(**inputs).logits, -1)
    gap = float((a - b).abs().max())
    if gap > 1e-4:  # rounding alone leaves about 4e-6 at 4x
        raise RuntimeError(f"the widened model does not compute the demo's function (gap {gap})")
