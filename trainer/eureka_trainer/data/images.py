"""Loading a prompt's images: decode checks, the blank placeholder, RGB conversion."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from eureka_trainer.data.errors import DataError
from eureka_trainer.data.records import BLANK_IMAGE_SIZE, PromptRecord

if TYPE_CHECKING:
    from PIL import Image

# What PIL raises on a truncated, corrupt or hostile (decompression bomb) file.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError)


def _field(record: PromptRecord, index: int) -> str:
    return record.image_fields[index] if index < len(record.image_fields) else f"image {index}"


class VerifiedImages:
    """Image files that passed `verify_images`, each remembered by (path, size, mtime): a
    file is read and checked once per run, not once per epoch (the demo's 64 prompts are drawn
    150 times; MMK12's 15k images once an epoch). A file written since is checked again; a
    file that failed is never remembered, so it fails (and is counted) each time it is drawn.
    At most `capacity` files are remembered; past that the memory starts over."""

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._seen: set[tuple[str, int, int]] = set()

    @staticmethod
    def key(path: str | os.PathLike[str]) -> tuple[str, int, int] | None:
        """(path, size, mtime in ns), or None when the file cannot be read (verify says why)."""
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return (os.fspath(path), stat.st_size, stat.st_mtime_ns)

    def __contains__(self, key: tuple[str, int, int] | None) -> bool:
        return key is not None and key in self._seen

    def add(self, key: tuple[str, int, int] | None) -> None:
        if key is None:
            return
        if len(self._seen) >= self.capacity:
            self._seen.clear()
        self._seen.add(key)


def verify_images(record: PromptRecord, verified: VerifiedImages | None = None) -> None:
    """Check that every image file of `record` decodes (headers and checksums), cheaply;
    files in `verified` are not read again, files that pass are added to it.

    Raises `DataError` (reason `bad_image`) naming the record's `file:line` and image field.
    """
    from PIL import Image

    for index, path in enumerate(record.image_paths):
        key = VerifiedImages.key(path) if verified is not None else None
        if verified is not None and key in verified:
            continue
        try:
            with Image.open(path) as image:
                image.verify()
        except (*_DECODE_ERRORS, Image.DecompressionBombError) as exc:
            raise DataError(
                record.source,
                _field(record, index),
                f"cannot decode image {path}: {exc}",
                reason="bad_image",
            ) from None
        if verified is not None:
            verified.add(key)


def blank_image() -> Image.Image:
    """The 224x224 white placeholder InternVL gets for a text-only prompt."""
    from PIL import Image

    return Image.new("RGB", BLANK_IMAGE_SIZE, (255, 255, 255))


def load_images(record: PromptRecord) -> list[Image.Image]:
    """The prompt's images, decoded and in RGB, in message order (the blank one when needed).

    Raises `DataError` (reason `bad_image`) naming `file:line` and the image field.
    """
    from PIL import Image

    images = [blank_image()] if record.blank_image else []
    for index, path in enumerate(record.image_paths):
        try:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        except (*_DECODE_ERRORS, Image.DecompressionBombError) as exc:
            raise DataError(
                record.source,
                _field(record, index),
                f"cannot decode image {path}: {exc}",
                reason="bad_image",
            ) from None
    return images
