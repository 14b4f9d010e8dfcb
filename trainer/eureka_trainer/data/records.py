"""One prompt per JSONL line, in either of MM-EUREKA's formats, normalised to `PromptRecord`.

Formats (one JSON object per line):

- `{"id", "conversations": [{"role", "content"}], "answer", "image_urls": ["file:///..."]}`:
  `content` is a string (where `<image>` marks an image's place, else the images go before
  the text of the first user message) or already a content list.
- `{"id", "message": "<JSON string of chat messages>", "answer"}`: each message's content is a
  string or a list of `{"type": "image", "image": "file://..."}` / `{"type": "text", "text"}`.

Images are local files: `file:///abs/path`, `file://rel/path` or a bare path; relative paths
resolve under `image_root` (default: the JSONL file's folder). Every problem raises `DataError`
naming `file:line`, the field and what is wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from eureka_trainer.data.errors import DataError

ROLES = ("system", "user", "assistant")
IMAGE_PLACEHOLDER = "<image>"
BLANK_IMAGE_SIZE = (224, 224)


@dataclass
class PromptRecord:
    """One training or evaluation prompt.

    messages: chat messages in HF content-list form, `{"role", "content": [{"type": "image"},
    {"type": "text", "text": ...}]}`, one `{"type": "image"}` per image, in order.
    image_paths: the image files, in the order of the image items. blank_image: the family
    needs a placeholder image for a text-only prompt (InternVL): its image item is in
    `messages`, and `load_images` makes a 224x224 white image for it. source: `file:line`.
    image_fields: the field each image came from (e.g. `image_urls[0]`), for error messages.
    """

    id: str
    messages: list[dict[str, Any]]
    image_paths: list[Path]
    answer: str
    source: str
    blank_image: bool = False
    image_fields: list[str] = field(default_factory=list)

    @property
    def num_images(self) -> int:
        """Images the prompt shows the model (the blank placeholder included)."""
        return len(self.image_paths) + int(self.blank_image)


@dataclass(frozen=True)
class FamilyRules:
    """What a model family needs from the data.

    blank_image: text-only prompts get a 224x224 white image (InternVL). takes_images: the
    family accepts images at all. vision_tokens: special tokens of an image's span, which
    truncation never cuts. image_kwargs: processor keyword arguments for the pixel bounds
    `(min_pixels, max_pixels)`. text_content: messages are rendered with string contents
    (plain language-model chat templates do not read content lists).
    """

    name: str
    blank_image: bool
    takes_images: bool = True
    vision_tokens: tuple[str, ...] = ()
    image_kwargs: Callable[[int, int], dict[str, Any]] = field(default=lambda lo, hi: {})
    text_content: bool = False


def _qwen_pixels(min_pixels: int, max_pixels: int) -> dict[str, Any]:
    return {"size": {"shortest_edge": min_pixels, "longest_edge": max_pixels}}


_QWEN_VISION = ("<|vision_start|>", "<|image_pad|>", "<|vision_end|>", "<|video_pad|>")
FAMILIES: dict[str, FamilyRules] = {
    rules.name: rules
    for rules in (
        FamilyRules("qwen2_vl", False, vision_tokens=_QWEN_VISION, image_kwargs=_qwen_pixels),
        FamilyRules("qwen2_5_vl", False, vision_tokens=_QWEN_VISION, image_kwargs=_qwen_pixels),
        FamilyRules("qwen3_vl", False, vision_tokens=_QWEN_VISION, image_kwargs=_qwen_pixels),
        FamilyRules("internvl", True, vision_tokens=("<img>", "<IMG_CONTEXT>", "</img>")),
        FamilyRules("text", False, takes_images=False, text_content=True),
    )
}


def family_rules(family: str) -> FamilyRules:
    """The rules of a model family (`qwen2_vl`, `qwen2_5_vl`, `qwen3_vl`, `internvl`, `text`)."""
    try:
        return FAMILIES[family]
    except KeyError:
        raise ValueError(f"unknown model family {family!r} (known: {sorted(FAMILIES)})") from None


def parse_line(
    line: str | bytes, source: str, *, image_root: Path, family: str = "qwen2_5_vl"
) -> PromptRecord:
    """Parse one JSONL line into a `PromptRecord` (images checked to exist, not decoded).

    source: `file:line` for messages. image_root: where relative image paths resolve.
    """
    try:
        obj = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(source, None, f"not valid JSON ({exc})", reason="bad_json") from None
    if not isinstance(obj, dict):
        raise DataError(source, None, f"a line must be a JSON object, got {_kind(obj)}")
    return parse_object(obj, source, image_root=image_root, family=family)


def parse_object(
    obj: dict[str, Any], source: str, *, image_root: Path, family: str = "qwen2_5_vl"
) -> PromptRecord:
    """Normalise one decoded JSON object (see `parse_line`)."""
    rules = family_rules(family)
    record_id = _scalar_text(obj, "id", source)
    answer = _scalar_text(obj, "answer", source)
    if "message" in obj and "conversations" in obj:
        raise DataError(source, "message", "give either 'message' or 'conversations', not both")
    if "message" in obj:
        messages, urls = _from_message(obj, source)
    elif "conversations" in obj:
        messages, urls = _from_conversations(obj, source)
    else:
        raise DataError(
            source, "conversations", "missing (or give 'message')", reason="missing_field"
        )
    if not any(m["role"] == "user" for m in messages):
        raise DataError(source, _messages_field(obj), "no 'user' message")
    paths = [_image_path(url, f, source, image_root) for f, url in urls]
    if paths and not rules.takes_images:
        raise DataError(source, urls[0][0], f"the {family!r} model family takes no images")
    blank = rules.blank_image and not paths
    if blank:
        _first_user(messages)["content"].insert(0, {"type": "image"})
    if rules.text_content:
        messages = [{"role": m["role"], "content": _joined_text(m)} for m in messages]
    return PromptRecord(
        record_id,
        messages,
        paths,
        answer,
        source,
        blank_image=blank,
        image_fields=[name for name, _ in urls],
    )


_KINDS: dict[type, str] = {dict: "an object", list: "a list", str: "a string"}


def _kind(value: object) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def _scalar_text(obj: dict[str, Any], name: str, source: str) -> str:
    """A required string field; numbers are accepted and written as text."""
    if name not in obj or obj[name] is None:
        raise DataError(source, name, "missing", reason="missing_field")
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise DataError(source, name, f"must be a string, got {_kind(value)}")
    text = str(value)
    if not text.strip():
        raise DataError(source, name, "empty")
    return text


def _messages_field(obj: dict[str, Any]) -> str:
    return "message" if "message" in obj else "conversations"


def _from_conversations(
    obj: dict[str, Any], source: str
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Messages and `(field, url)` images of the `conversations` + `image_urls` format."""
    urls = obj.get("image_urls") or []
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise DataError(source, "image_urls", "must be a list of strings")
    turns = _message_list(obj["conversations"], "conversations", source)
    messages: list[dict[str, Any]] = []
    placeholders = 0
    for index, turn in enumerate(turns):
        where = f"conversations[{index}]"
        role = _role(turn, where, source)
        content = turn.get("content")
        if isinstance(content, str):
            parts = content.split(IMAGE_PLACEHOLDER)
            placeholders += len(parts) - 1
            items = _interleave(parts)
        else:
            items = _content_list(content, f"{where}.content", source, images_allowed=False)
        messages.append({"role": role, "content": items})
    if placeholders and placeholders != len(urls):
        raise DataError(
            source, "image_urls", f"{len(urls)} images but {placeholders} '<image>' placeholders"
        )
    if urls and not placeholders:
        _first_user(messages)["content"][:0] = [{"type": "image"} for _ in urls]
    return messages, [(f"image_urls[{i}]", u) for i, u in enumerate(urls)]


def _from_message(
    obj: dict[str, Any], source: str
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Messages and `(field, url)` images of the `message` (JSON string) format."""
    if obj.get("image_urls"):
        raise DataError(source, "image_urls", "not used with 'message': images are message items")
    raw = obj["message"]
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(
                source, "message", f"not valid JSON ({exc})", reason="bad_json"
            ) from None
    turns = _message_list(raw, "message", source)
    messages: list[dict[str, Any]] = []
    urls: list[tuple[str, str]] = []
    for index, turn in enumerate(turns):
        where = f"message[{index}]"
        role = _role(turn, where, source)
        content = turn.get("content")
        if isinstance(content, str):
            items: list[dict[str, Any]] = [{"type": "text", "text": content}]
        else:
            items = _content_list(content, f"{where}.content", source, images_allowed=True)
            urls += [
                (f"{where}.content[{i}].image", item.pop("image"))
                for i, item in enumerate(items)
                if item["type"] == "image"
            ]
        messages.append({"role": role, "content": items})
    return messages, urls


def _message_list(value: object, name: str, source: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise DataError(source, name, "must be a non-empty list of messages")
    for index, turn in enumerate(value):
        if not isinstance(turn, dict):
            raise DataError(source, f"{name}[{index}]", f"must be an object, got {_kind(turn)}")
    return value


def _role(turn: dict[str, Any], where: str, source: str) -> str:
    role = turn.get("role")
    if role not in ROLES:
        raise DataError(source, f"{where}.role", f"must be one of {list(ROLES)}, got {role!r}")
    return str(role)


def _interleave(parts: list[str]) -> list[dict[str, Any]]:
    """Text pieces split at `<image>` -> text items with an image item between each pair."""
    items: list[dict[str, Any]] = []
    for index, text in enumerate(parts):
        if index:
            items.append({"type": "image"})
        if text:
            items.append({"type": "text", "text": text})
    return items


def _content_list(
    content: object, where: str, source: str, *, images_allowed: bool
) -> list[dict[str, Any]]:
    """Validated copy of a content list; image items keep their `image` url for the caller."""
    if not isinstance(content, list):
        raise DataError(source, where, f"must be a string or a list of items, got {_kind(content)}")
    items: list[dict[str, Any]] = []
    for index, item in enumerate(content):
        here = f"{where}[{index}]"
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text" and isinstance(item.get("text"), str):
            items.append({"type": "text", "text": item["text"]})
        elif kind == "image" and images_allowed and isinstance(item.get("image"), str):
            items.append({"type": "image", "image": item["image"]})
        elif kind == "image" and images_allowed:
            raise DataError(source, f"{here}.image", "missing (an image item needs a file:// url)")
        elif kind == "image":
            raise DataError(source, here, "images of this format belong in 'image_urls'")
        else:
            raise DataError(source, here, "must be {type: text, text} or {type: image, image}")
    return items


def _image_path(url: str, name: str, source: str, image_root: Path) -> Path:
    """The local file an image url names; it must exist."""
    if "://" in url and not url.startswith("file://"):
        raise DataError(source, name, f"only local file:// images are supported, got {url!r}")
    path = Path(unquote(url.removeprefix("file://")))
    if not path.is_absolute():
        path = image_root / path
    if not path.is_file():
        raise DataError(source, name, f"image file not found: {path}", reason="missing_image")
    return path


def _first_user(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return next(m for m in messages if m["role"] == "user")


def _joined_text(message: dict[str, Any]) -> str:
    return "".join(item["text"] for item in message["content"] if item["type"] == "text")
