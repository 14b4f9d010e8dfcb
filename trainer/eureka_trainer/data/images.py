"""Loading a prompt's images: decode checks, the blank placeholder, RGB conversion."""

from __future__ import annotations

from typing import TYPE_CHECKING

from eureka_trainer.data.errors import DataError
from eureka_trainer.data.records import BLANK_IMAGE_SIZE, PromptRecord

if TYPE_CHECKING:
    from PIL import Image

# What PIL raises on a truncated, corrupt or hostile (decompression bomb) file.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError)


def _field(record: PromptRecord, index: int) -> str:
    return record.image_fields[index] if index < len(record.image_fields) else f"image {index}"


def verify_images(record: PromptRecord) -> None:
    """Check that every image file of `record` decodes (headers and checksums), cheaply.

    Raises `DataError` (reason `bad_image`) naming the record's `file:line` and image field.
    """
    from PIL import Image

    for index, path in enumerate(record.image_paths):
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
