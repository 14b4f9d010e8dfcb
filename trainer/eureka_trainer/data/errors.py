"""The one error type of bad data: it names the file, the line, the field and the problem."""

from __future__ import annotations


class DataError(ValueError):
    """A prompt line that cannot be used.

    `str(error)` reads `train.jsonl:17: field 'answer': missing`. `reason` is a short counter
    name for the skip statistics (`bad_json`, `missing_field`, `bad_field`, `missing_image`,
    `bad_image`, `too_long`).
    """

    def __init__(
        self, source: str, field: str | None, problem: str, *, reason: str = "bad_field"
    ) -> None:
        self.source, self.field, self.problem, self.reason = source, field, problem, reason
        where = f"field {field!r}: " if field else ""
        super().__init__(f"{source}: {where}{problem}")
