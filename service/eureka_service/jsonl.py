"""Incremental, fault-tolerant reading of JSON-lines files that another process is appending to.

Only complete lines are parsed: a partially written last line waits for the next read, a line
that is not a JSON object is skipped and counted, and a file that shrank (rewritten) is read
again from the start. Each read costs only the bytes appended since the previous one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

Record = dict[str, Any]


@dataclass
class JsonlTail:
    """Follows one JSONL file; `poll()` hands each new complete record to `on_record`."""

    path: Path
    on_record: Callable[[Record], None]
    on_reset: Callable[[], None]
    bad_lines: int = 0
    _offset: int = 0
    _identity: tuple[int, int] | None = field(default=None, repr=False)

    def poll(self) -> int:
        """Read what was appended; returns how many records were added."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            if self._offset:
                self._reset(None)
            return 0
        identity = (stat.st_dev, stat.st_ino)
        if identity != self._identity or stat.st_size < self._offset:
            self._reset(identity)  # a new or truncated file: start over
        if stat.st_size == self._offset:
            return 0
        with self.path.open("rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read(stat.st_size - self._offset)
        complete = chunk.rfind(b"\n") + 1  # bytes up to and including the last newline
        added = 0
        for line in chunk[:complete].splitlines():
            record = self._parse(line)
            if record is not None:
                self.on_record(record)
                added += 1
        self._offset += complete
        return added

    def _reset(self, identity: tuple[int, int] | None) -> None:
        self._offset, self._identity, self.bad_lines = 0, identity, 0
        self.on_reset()

    def _parse(self, line: bytes) -> Record | None:
        if not line.strip():
            return None
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            self.bad_lines += 1
            log.warning("%s: skipping a line that is not a JSON object", self.path)
            return None
        return record
