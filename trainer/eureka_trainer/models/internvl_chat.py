"""Driving the original remote-code InternVL2.5 chat model (`model_type: internvl_chat`).

Its hub repositories ship modeling code and a tokenizer but no processor, so this module is
the processor, written from the original's interface (github.com/OpenGVLab/InternVL,
`internvl_chat/internvl/train/dataset.py` `dynamic_preprocess`, `build_transform`, and
`modeling_internvl_chat.py` `chat()`); and it adapts the model to the calling convention the
learners and the `hf` rollout share (`adapt_chat_model`).

Images (`tile_image`): the image is resized to the grid of `image_size` tiles (at most
`max_dynamic_patch`, at least `min_dynamic_patch`) whose aspect ratio is closest to the
image's (on a tie, the larger grid when the image has more than half its pixels), cut into
those tiles, plus the whole image resized to one tile when there is more than one tile and
`use_thumbnail`; without `dynamic_image_size` the image is one resized tile. Each tile is
bicubic-resized RGB scaled to [0, 1] and normalised with ImageNet's mean and std. Every tile
gives `num_image_token` = (image_size / patch)^2 * downsample_ratio^2 context tokens.

Prompts: the tokenizer's chat template on string contents, an image written `<image>` (then
a newline unless the text after it starts with one, as `chat()` writes `<image>\\n` before
the question); a tokenizer without a chat template gets the conversation format its
`config.json` `template` names (`CONVERSATIONS`: `internvl2_5`, ChatML); each `<image>` becomes `<img>` + `<IMG_CONTEXT>` x (tiles x num_image_token)
+ `</img>`. `image_flags` (one per tile, [tiles, 1]) is 1 for every tile: Eureka's text-only
prompts get the white placeholder image as a real image (MM-EUREKA's rule), never a
flagged-off dummy.

PIL, numpy and torch only (no torchvision).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_MARK = "<image>"
IMG_START, IMG_END, IMG_CONTEXT = "<img>", "</img>", "<IMG_CONTEXT>"


def tile_grid(
    width: int, height: int, image_size: int, min_num: int, max_num: int
) -> tuple[int, int]:
    """(columns, rows) of the tile grid for a `width` x `height` image."""
    grids = sorted(
        {
            (cols, rows)
            for cols in range(1, max_num + 1)
            for rows in range(1, max_num + 1)
            if min_num <= cols * rows <= max_num
        },
        key=lambda grid: grid[0] * grid[1],
    )
    aspect = width / height
    best, best_gap = (1, 1), float("inf")
    for cols, rows in grids:
        gap = abs(aspect - cols / rows)
        if gap < best_gap:
            best, best_gap = (cols, rows), gap
        elif gap == best_gap and width * height > 0.5 * image_size * image_size * cols * rows:
            best = (cols, rows)
    return best


def tile_image(
    image: Any, image_size: int, min_num: int, max_num: int, use_thumbnail: bool
) -> list[Any]:
    """The PIL tiles of `image` (row-major, then the thumbnail)."""
    from PIL import Image

    cols, rows = tile_grid(image.width, image.height, image_size, min_num, max_num)
    resized = image.resize((cols * image_size, rows * image_size), Image.Resampling.BICUBIC)
    tiles = [
        resized.crop((c * image_size, r * image_size, (c + 1) * image_size, (r + 1) * image_size))
        for r in range(rows)
        for c in range(cols)
    ]
    if use_thumbnail and len(tiles) > 1:
        tiles.append(image.resize((image_size, image_size), Image.Resampling.BICUBIC))
    return tiles


def tile_pixels(tiles: Sequence[Any], image_size: int) -> Any:
    """[tiles, 3, S, S] float32: RGB in [0, 1], normalised with ImageNet's mean and std."""
    import numpy as np
    import torch
    from PIL import Image

    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32)[:, None, None]
    std = np.asarray(IMAGENET_STD, dtype=np.float32)[:, None, None]
    arrays = []
    for tile in tiles:
        rgb = tile.convert("RGB")
        if rgb.size != (image_size, image_size):
            rgb = rgb.resize((image_size, image_size), Image.Resampling.BICUBIC)
        chw = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0
        arrays.append((chw - mean) / std)
    return torch.from_numpy(np.stack(arrays))


def string_contents(messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Content lists as strings with `<image>` where each image goes (see the docstring)."""
    out = []
    for message in messages:
        content = message["content"]
        if not isinstance(content, str):
            parts: list[str] = []
            for index, item in enumerate(content):
                if item["type"] == "image":
                    after = content[index + 1] if index + 1 < len(content) else None
                    newline = not (after and after["type"] == "text" and after["text"][:1] == "\n")
                    parts.append(IMAGE_MARK + ("\n" if newline else ""))
                elif item["type"] == "text":
                    parts.append(item["text"])
            content = "".join(parts)
        out.append({"role": message["role"], "content": content})
    return out


def chatml(messages: Sequence[dict[str, Any]], add_generation_prompt: bool) -> str:
    """The `internvl2_5` conversation (conversation.py: roles `<|im_start|>user\\n` /
    `<|im_start|>assistant\\n`, every turn ended by `<|im_end|>\\n`). Without a system
    message no system turn is written (the original adds its own default one; MM-EUREKA's
    data always carries its system prompt)."""
    turns = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
    return "".join(turns) + ("<|im_start|>assistant\n" if add_generation_prompt else "")


CONVERSATIONS = {"internvl2_5": chatml}
"""`config.json` `template` -> the prompt format, for tokenizers without a chat template."""


class InternVLChatProcessor:
    """The processor the original InternVL2.5 chat checkpoints lack: tiling, the `<image>`
    expansion, `pixel_values` and `image_flags`. Called like a transformers processor."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        image_size: int,
        num_image_token: int,
        dynamic_image_size: bool,
        min_dynamic_patch: int,
        max_dynamic_patch: int,
        use_thumbnail: bool,
        template: str | None = None,
    ) -> None:
        self.tokenizer = tokenizer
        self.template = template
        self.image_size = image_size
        self.num_image_token = num_image_token
        self.min_num, self.max_num = (
            (min_dynamic_patch, max_dynamic_patch) if dynamic_image_size else (1, 1)
        )
        self.use_thumbnail = use_thumbnail
        self.image_token_id = int(tokenizer.convert_tokens_to_ids(IMG_CONTEXT))
        self.image_token = IMAGE_MARK
        """The text that marks an image's place in the templated prompt (as transformers
        processors name it)."""

    @classmethod
    def from_config(cls, config: dict[str, Any], tokenizer: Any) -> InternVLChatProcessor:
        """From a checkpoint's `config.json` (as `InternVLChatModel.__init__` reads it)."""
        vision = config["vision_config"]
        image_size = int(config.get("force_image_size") or vision["image_size"])
        ratio = float(config.get("downsample_ratio", 0.5))
        return cls(
            tokenizer,
            image_size=image_size,
            num_image_token=int((image_size // int(vision["patch_size"])) ** 2 * ratio**2),
            dynamic_image_size=bool(config.get("dynamic_image_size", False)),
            min_dynamic_patch=int(config.get("min_dynamic_patch", 1)),
            max_dynamic_patch=int(config.get("max_dynamic_patch", 6)),
            use_thumbnail=bool(config.get("use_thumbnail", False)),
            template=config.get("template"),
        )

    def apply_chat_template(
        self, messages: Sequence[dict[str, Any]], *, add_generation_prompt: bool, tokenize: bool
    ) -> Any:
        contents = string_contents(messages)
        if getattr(self.tokenizer, "chat_template", None) is None:
            if self.template not in CONVERSATIONS:
                raise ValueError(
                    f"the tokenizer has no chat template and config.json's template "
                    f"{self.template!r} is not one of {sorted(CONVERSATIONS)}"
                )
            text = CONVERSATIONS[self.template](contents, add_generation_prompt)
            return self.tokenizer(text, add_special_tokens=False)["input_ids"] if tokenize else text
        return self.tokenizer.apply_chat_template(
            contents, add_generation_prompt=add_generation_prompt, tokenize=tokenize
        )

    def tiles(self, image: Any) -> list[Any]:
        return tile_image(image, self.image_size, self.min_num, self.max_num, self.use_thumbnail)

    def __call__(
        self,
        text: Sequence[str],
        images: Sequence[Any] | None = None,
        return_tensors: str = "pt",
        **tokenizer_kwargs: Any,
    ) -> dict[str, Any]:
        """One prompt (`text` of one string): `input_ids` [1, L], `attention_mask`, and with
        images `pixel_values` [tiles, 3, S, S] and `image_flags` [tiles, 1]."""
        import torch

        if len(text) != 1:
            raise ValueError("InternVLChatProcessor encodes one prompt at a time")
        prompt = text[0]
        images = list(images or [])
        if prompt.count(IMAGE_MARK) != len(images):
            raise ValueError(
                f"{len(images)} images but {prompt.count(IMAGE_MARK)} '{IMAGE_MARK}' in the prompt"
            )
        tiled = [self.tiles(image) for image in images]
        for tiles in tiled:
            run = IMG_CONTEXT * (len(tiles) * self.num_image_token)
            prompt = prompt.replace(IMAGE_MARK, IMG_START + run + IMG_END, 1)
        out = dict(self.tokenizer([prompt], return_tensors="pt", **tokenizer_kwargs))
        if tiled:
            flat = [tile for tiles in tiled for tile in tiles]
            out["pixel_values"] = tile_pixels(flat, self.image_size)
            out["image_flags"] = torch.ones(len(flat), 1, dtype=torch.long)
        return out


class NoGenerate(RuntimeError):
    """The checkpoint's language model cannot `generate` under this transformers."""


def adapt_chat_model(model: Any, tokenizer: Any) -> None:
    """Make an `InternVLChatModel` instance take the shared calling convention.

    - `img_context_token_id` (the original reads it from the model) and
      `config.image_token_id` (what the learner and the rollout never sample) are set from
      the tokenizer's `<IMG_CONTEXT>`.
    - `pixel_values` are cast to the vision tower's dtype (the original's callers do that; its
      patch embedding does not, so float32 pixels into a bfloat16 model would fail).
    - forward: `pixel_values` and `image_flags` are required by the original; the context
      token count must equal the flagged tiles' features (the original zeroes the loss on a
      mismatch instead of failing); `mm_token_type_ids` is dropped and `logits_to_keep`
      (which it does not take) is applied to its logits.
    - generate: no `image_flags` (every tile is used, as ours always are) and the prompt
      put back in front of the new tokens, as transformers' `generate` returns them.
    """
    import torch

    from eureka_trainer.learner.modeling import ImageTokenMismatch

    context = int(tokenizer.convert_tokens_to_ids(IMG_CONTEXT))
    model.img_context_token_id = context
    model.config.image_token_id = context
    per_tile = int(model.num_image_token)
    forward, generate = model.forward, model.generate

    def pixels_in_model_dtype(kwargs: dict[str, Any]) -> None:
        pixels = kwargs.get("pixel_values")
        if pixels is not None:
            kwargs["pixel_values"] = pixels.to(next(model.vision_model.parameters()).dtype)

    def check(input_ids: Any, flags: Any) -> None:
        tokens, features = int((input_ids == context).sum()), int(flags.sum()) * per_tile
        if tokens != features:
            raise ImageTokenMismatch(
                f"image tokens and features do not match: {tokens} {IMG_CONTEXT} tokens but "
                f"{features} image features; was a vision token sampled, or a prompt cut?"
            )

    def adapted_forward(**kwargs: Any) -> Any:
        kwargs.pop("mm_token_type_ids", None)
        keep = kwargs.pop("logits_to_keep", None)
        if kwargs.get("pixel_values") is None or kwargs.get("image_flags") is None:
            raise ValueError(
                "the InternVL chat model needs an image (pixel_values, image_flags) in every "
                "prompt: text-only prompts get InternVL's blank image"
            )
        check(kwargs["input_ids"], kwargs["image_flags"])
        pixels_in_model_dtype(kwargs)
        out = forward(**kwargs)
        if isinstance(keep, torch.Tensor):
            out.logits = out.logits[:, keep]
        elif isinstance(keep, int) and keep > 0:
            out.logits = out.logits[:, -keep:]
        return out

    def adapted_generate(**kwargs: Any) -> Any:
        if not hasattr(model.language_model, "generate"):
            raise NoGenerate(
                f"{type(model.language_model).__name__} (the checkpoint's remote code) has no "
                "generate(): it does not inherit GenerationMixin, which transformers >= 4.50 "
                "requires (and OpenGVLab's InternLM2 code indexes tuple caches, which "
                "transformers 5 no longer passes); use rollout.backend: vllm (vLLM's own "
                "InternVL implementation) for this checkpoint"
            )
        kwargs.pop("mm_token_type_ids", None)
        flags = kwargs.pop("image_flags", None)
        if flags is not None:
            if not bool((flags == 1).all()):
                raise ValueError("generate uses every tile: image_flags must all be 1")
            check(kwargs["input_ids"], flags)
        pixels_in_model_dtype(kwargs)
        out = generate(**kwargs)
        prompt = kwargs["input_ids"]
        if isinstance(out, torch.Tensor):
            return torch.cat([prompt, out], dim=1)
        out.sequences = torch.cat([prompt, out.sequences], dim=1)
        return out

    model.forward = adapted_forward
    model.generate = adapted_generate
