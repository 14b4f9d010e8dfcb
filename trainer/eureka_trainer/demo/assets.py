"""The demo's assets, generated locally (nothing is downloaded): a tiny Qwen2-VL and a shapes set.

An RLJob names them with reserved references, resolved here (never code from the spec):
- `model.name: eureka-demo/tiny-qwen2-vl` -> a model folder built from a config with a
  tokenizer trained on the demo's own text, after a short supervised format warm-up.
- `data.trainFiles: [eureka-demo://shapes]` -> a JSONL file of "how many shapes?" prompts and
  the PNG images it points to.
Both are written under `<run dir>/demo-assets/` and reused when already there.

The images are 56x56 with 1-4 shapes, one per 28-pixel quadrant, so each shape lands in one
merged image token (2x2 patches of 14 pixels): the count is visible to a 4-token vision input.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEMO_MODEL = "eureka-demo/tiny-qwen2-vl"
DEMO_DATA_SCHEME = "eureka-demo://"
DEMO_DATASETS = ("shapes",)
IMAGE_SIZE = 56
QUADRANT = IMAGE_SIZE // 2
QUESTION = "How many shapes?"
RESPONSE_TEMPLATE = "<think>count</think><answer>{}</answer>"
"""The shortest instruct format the format reward accepts (the warm-up teaches it): one word of
thinking (an empty think block scores 0, as in the recipe), so the image tokens still carry a
large share of the attention at the digit, which is what makes the demo learn quickly."""
COLOURS = ((230, 40, 40), (40, 200, 40), (40, 80, 230), (230, 200, 30))


@dataclass(frozen=True)
class ShapesConfig:
    """How many records, the count range and the seed of the shapes set."""

    records: int = 2048
    min_count: int = 1
    max_count: int = 4
    seed: int = 1234


QUADRANTS = ("top left", "top right", "bottom left", "bottom right")


def draw_shapes(count: int, rng: random.Random) -> Any:
    """A 56x56 RGB PIL image with `count` shapes (1-4), each in its own random quadrant."""
    return draw_layout(rng.sample(range(4), count), rng)


def draw_layout(quadrants: list[int], rng: random.Random) -> Any:
    """A 56x56 RGB PIL image with one random shape in each listed quadrant (0-3, see QUADRANTS)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    for quadrant in quadrants:
        x0, y0 = (quadrant % 2) * QUADRANT, (quadrant // 2) * QUADRANT
        size = rng.randint(14, 22)
        ox, oy = x0 + rng.randint(2, QUADRANT - size - 2), y0 + rng.randint(2, QUADRANT - size - 2)
        box = (ox, oy, ox + size, oy + size)
        colour = rng.choice(COLOURS)
        kind = rng.randrange(3)
        if kind == 0:
            draw.rectangle(box, fill=colour)
        elif kind == 1:
            draw.ellipse(box, fill=colour)
        else:
            draw.polygon(
                [(ox + size // 2, oy), (ox, oy + size), (ox + size, oy + size)], fill=colour
            )
    return image


def write_shapes(folder: Path, config: ShapesConfig = ShapesConfig()) -> Path:
    """Write `shapes.jsonl` (MM-EUREKA `conversations` format) and `images/*.png`; its path."""
    target = folder / "shapes.jsonl"
    if target.exists():
        return target
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = random.Random(config.seed)
    lines = []
    for index in range(config.records):
        count = rng.randint(config.min_count, config.max_count)
        name = f"images/shape-{index:05d}.png"
        draw_shapes(count, rng).save(folder / name)
        lines.append(
            json.dumps(
                {
                    "id": f"shapes-{index}",
                    "conversations": [{"role": "user", "content": f"<image>{QUESTION}"}],
                    "image_urls": [f"file://{name}"],
                    "answer": str(count),
                }
            )
        )
    tmp = target.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(target)
    return target


def quadrant_question(quadrant: int) -> str:
    """The warm-up's perception question about one quadrant (answered yes / no)."""
    return f"Is there a shape at the {QUADRANTS[quadrant]}?"


def build_processor() -> Any:
    """The data layer's tiny Qwen2-VL processor, its tokenizer also trained on the demo's text."""
    from eureka_trainer.data.tiny import build_tiny_processor

    texts = [QUESTION, *(RESPONSE_TEMPLATE.format(n) for n in range(10))]
    texts += [quadrant_question(q) for q in range(4)] + [
        RESPONSE_TEMPLATE.format(a) for a in ("yes", "no")
    ]
    texts *= 4
    return build_tiny_processor(
        texts, min_pixels=IMAGE_SIZE * IMAGE_SIZE, max_pixels=IMAGE_SIZE * IMAGE_SIZE
    )


def build_model(
    tokenizer: Any, seed: int, *, vision_heads: int = 4, max_positions: int = 512
) -> Any:
    """A 0.6M-parameter Qwen2-VL built from a config (float32, random init from `seed`): the
    tiny Qwen2-VL of `eureka_trainer.models.tiny`, with 4 vision heads (head size 16) and 512
    positions, as the demo's published figures were made with, in train mode."""
    from eureka_trainer.models.tiny import TinyOptions, qwen2_vl_model

    options = TinyOptions(seed=seed, vision_heads=vision_heads, max_positions=max_positions)
    return qwen2_vl_model(tokenizer, options).train()
