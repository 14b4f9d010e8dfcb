"""Small previews of a prompt's image for logged samples (the dashboard shows them beside it).

A JPEG thumbnail as a `data:` URI travels inside `samples.jsonl`: no file to serve, no path into
the data set, and the page's Content-Security-Policy already allows `img-src data:`. A few KB
each; only the few samples logged per step carry one, and the RLJob status never does (it must
stay small: reporting/kube.py drops it).
"""

from __future__ import annotations

import base64
import io
import logging
from typing import Any

log = logging.getLogger(__name__)

THUMBNAIL_PIXELS = 256
"""Longest side of a thumbnail."""
DATA_URI_PREFIX = "data:image/jpeg;base64,"


def thumbnail_uri(image: Any, size: int = THUMBNAIL_PIXELS) -> str | None:
    """A JPEG `data:` URI of a PIL image shrunk to `size` on its longest side (None on failure)."""
    try:
        copy = image.convert("RGB")
        copy.thumbnail((size, size))
        buffer = io.BytesIO()
        copy.save(buffer, format="JPEG", quality=70, optimize=True)
    except (AttributeError, OSError, ValueError) as err:  # a preview never stops training
        log.warning("no thumbnail for a logged sample: %s", err)
        return None
    return DATA_URI_PREFIX + base64.b64encode(buffer.getvalue()).decode("ascii")
