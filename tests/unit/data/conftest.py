"""Helpers: JSONL prompt files and small images written into a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image


def conv_line(i: int, image: str | None = None, **extra: object) -> str:
    """A `conversations`-format line."""
    obj: dict[str, object] = {
        "id": f"c{i}",
        "conversations": [
            {"role": "system", "content": "Think first."},
            {"role": "user", "content": f"Question {i}?"},
        ],
        "answer": str(i),
    }
    if image:
        obj["image_urls"] = [image]
    obj.update(extra)
    return json.dumps(obj)


def message_line(i: int, image: str | None = None) -> str:
    """A `message`-format line (the messages are a JSON string)."""
    content: list[dict[str, str]] = [{"type": "text", "text": f"Question {i}?"}]
    if image:
        content.insert(0, {"type": "image", "image": image})
    return json.dumps(
        {
            "id": f"m{i}",
            "message": json.dumps([{"role": "user", "content": content}]),
            "answer": str(i),
        }
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A folder with `red.png` (56x56), `big.png` (112x112) and a corrupt `broken.png`."""
    Image.new("RGB", (56, 56), (255, 0, 0)).save(tmp_path / "red.png")
    Image.new("RGB", (112, 112), (0, 0, 255)).save(tmp_path / "big.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    return tmp_path


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path
