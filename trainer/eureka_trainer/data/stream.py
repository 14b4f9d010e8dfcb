"""`PromptStream`: JSONL prompts streamed from disk, shuffled per epoch, resumable exactly.

One pass over each file records the byte offset of every non-blank line; records are parsed
when they are drawn, so memory holds 12 bytes per line, never the records. Epoch `e` visits
the lines in the order of a permutation seeded by `(seed, e)`, so the order depends only on
the seed and the files, and a stream restored from `state_dict()` draws exactly the records
the uninterrupted one would have drawn.
"""

from __future__ import annotations

import hashlib
import logging
import random
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from eureka_trainer.data.errors import DataError
from eureka_trainer.data.images import VerifiedImages, verify_images
from eureka_trainer.data.records import PromptRecord, family_rules, parse_line

if TYPE_CHECKING:
    from eureka_trainer.config.spec import DataSpec

BadLines = Literal["fail", "skip"]
log = logging.getLogger(__name__)


FIRST_SKIPPED = 5
"""Skipped lines remembered (and logged one by one) with their file:line and problem."""


@dataclass
class StreamStats:
    """Counters of a stream: lines drawn, records yielded, lines skipped by reason, and where
    the first skipped lines were."""

    lines_read: int = 0
    records: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    first_skipped: list[str] = field(default_factory=list)

    def skip(self, error: DataError) -> None:
        """Count a skipped line; the first few are logged and remembered with their place."""
        self.skipped[error.reason] += 1
        if len(self.first_skipped) < FIRST_SKIPPED:
            self.first_skipped.append(str(error))
            log.warning("skipped line (data.badLines: skip): %s", error)
            if len(self.first_skipped) == FIRST_SKIPPED:
                log.warning("further skipped lines are counted, not logged (data/skipped)")

    def as_metrics(self) -> dict[str, float]:
        """`data/lines_read`, `data/records`, `data/skipped`, `data/skipped/<reason>`."""
        metrics = {
            "data/lines_read": float(self.lines_read),
            "data/records": float(self.records),
            "data/skipped": float(sum(self.skipped.values())),
        }
        metrics.update({f"data/skipped/{k}": float(v) for k, v in sorted(self.skipped.items())})
        return metrics


class _LineIndex:
    """Byte offsets and line numbers of the non-blank lines of several files."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self.file_of = array("H")
        self.offset = array("Q")
        self.line_no = array("I")
        for number, path in enumerate(files):
            self._index(number, path)

    def _index(self, number: int, path: Path) -> None:
        try:
            handle = path.open("rb")
        except OSError as exc:
            raise DataError(str(path), None, f"cannot open: {exc.strerror or exc}") from None
        with handle:
            offset = 0
            for line_no, line in enumerate(handle, start=1):
                if line.strip():
                    self.file_of.append(number)
                    self.offset.append(offset)
                    self.line_no.append(line_no)
                offset += len(line)

    def __len__(self) -> int:
        return len(self.offset)


class PromptStream:
    """An endless, seeded, resumable stream of `PromptRecord`s from JSONL files.

    files: JSONL paths (both MM-EUREKA formats, mixed freely). image_root: where relative image
    paths resolve (default: each JSONL file's folder). bad_lines: `fail` raises the line's
    `DataError`; `skip` skips it and counts it in `stats.skipped` by reason. family: the model
    family (decides the blank-image rule). shuffle / seed: a new seeded permutation each epoch.
    verify_images: decode-check each record's images when it is drawn (so a corrupt image is
    a bad line, handled by `bad_lines`, not a crash later in the rollout); a file that passed
    is not read again while its size and modification time stay the same.
    """

    def __init__(
        self,
        files: Iterable[str | Path],
        *,
        image_root: str | Path | None = None,
        bad_lines: BadLines = "fail",
        family: str = "qwen2_5_vl",
        shuffle: bool = True,
        seed: int = 0,
        verify_images: bool = True,
    ) -> None:
        if bad_lines not in ("fail", "skip"):
            raise ValueError(f"bad_lines must be 'fail' or 'skip', got {bad_lines!r}")
        family_rules(family)  # refuse an unknown family now, not at the first record
        self.files = [Path(f) for f in files]
        if not self.files:
            raise ValueError("PromptStream needs at least one file")
        self.image_root = Path(image_root) if image_root is not None else None
        self.bad_lines, self.family = bad_lines, family
        self.shuffle, self.seed, self.verify_images = shuffle, seed, verify_images
        self._verified = VerifiedImages()  # checked once per run, not once per epoch
        self._index = _LineIndex(self.files)
        self._fingerprint: str | None = None
        if not len(self._index):
            raise DataError(", ".join(map(str, self.files)), None, "no prompt lines")
        self.epoch = 0
        self._cursor = 0
        self._order: array[int] | None = None
        self._handles: dict[int, BinaryIO] = {}
        self._valid_this_pass = 0
        self._drawn_this_pass = 0
        self.stats = StreamStats()

    @classmethod
    def from_spec(
        cls, data: DataSpec, *, family: str, seed: int, split: Literal["train", "eval"] = "train"
    ) -> PromptStream:
        """The stream an RLJob's `spec.data` describes (`eval`: the eval files, unshuffled)."""
        files = data.train_files if split == "train" else data.eval_files
        return cls(
            files,
            image_root=data.image_root,
            bad_lines=data.bad_lines,
            family=family,
            shuffle=data.shuffle and split == "train",
            seed=seed,
        )

    def __len__(self) -> int:
        """Non-blank lines over all files (records per epoch, bad lines included)."""
        return len(self._index)

    @property
    def position(self) -> int:
        """Lines drawn so far in the current epoch."""
        return self._cursor

    def next_batch(self, k: int) -> list[PromptRecord]:
        """The next `k` records, crossing into the next epoch (`self.epoch` + 1) as needed."""
        return [self.next_record() for _ in range(k)]

    def next_record(self) -> PromptRecord:
        """The next record; bad lines raise (`fail`) or are counted and passed over (`skip`)."""
        while True:
            if self._cursor == len(self._index):
                self._next_epoch()
            line = self._epoch_order()[self._cursor]
            self._cursor += 1
            self._drawn_this_pass += 1
            self.stats.lines_read += 1
            try:
                record = self._read(line)
            except DataError as error:
                if self.bad_lines == "fail":
                    raise
                self.stats.skip(error)
                self._give_up_when_nothing_is_valid()
                continue
            self.stats.records += 1
            self._valid_this_pass += 1
            return record

    def _give_up_when_nothing_is_valid(self) -> None:
        """Skipping forever would hang the trainer: stop after a full pass without a record."""
        if self._drawn_this_pass >= len(self._index) and not self._valid_this_pass:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.stats.skipped.items()))
            raise DataError(", ".join(map(str, self.files)), None, f"every line is bad ({reasons})")

    def _next_epoch(self) -> None:
        self.epoch += 1
        self._cursor = 0
        self._order = None
        self._valid_this_pass = self._drawn_this_pass = 0

    def _epoch_order(self) -> array[int]:
        if self._order is None:
            order = list(range(len(self._index)))
            if self.shuffle:
                # A string seed is hashed with SHA-512 by `random`: stable across processes.
                random.Random(f"eureka-data:{self.seed}:{self.epoch}").shuffle(order)
            self._order = array("Q", order)  # 8 bytes a line, where the list takes ~36
        return self._order

    def _read(self, line: int) -> PromptRecord:
        index = self._index
        number, offset = index.file_of[line], index.offset[line]
        path = self.files[number]
        handle = self._handles.get(number)
        if handle is None:
            handle = self._handles[number] = path.open("rb")
        handle.seek(offset)
        raw = handle.readline()
        source = f"{path}:{index.line_no[line]}"
        # Absolute, so that a record read here still finds its images in a worker elsewhere.
        root = (self.image_root if self.image_root is not None else path.parent).absolute()
        record = parse_line(raw, source, image_root=root, family=self.family)
        if self.verify_images:
            verify_images(record, self._verified)
        return record

    def close(self) -> None:
        """Close the open file handles (they reopen on the next draw)."""
        for handle in self._handles.values():
            handle.close()
        self._handles.clear()

    def __enter__(self) -> PromptStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fingerprint(self) -> str:
        """A digest of the files' paths and line offsets: a resume refuses changed data.

        Computed once: the index is built once, and every checkpoint and every step's data
        totals ask for it (hashing the offsets took 5.9 ms a call at a million lines)."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            for path in self.files:
                digest.update(str(path).encode() + b"\0")
            digest.update(self._index.offset.tobytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def state_dict(self) -> dict[str, Any]:
        """Where the stream is: epoch, position, seed, counters and the data fingerprint."""
        return {
            "epoch": self.epoch,
            "cursor": self._cursor,
            "seed": self.seed,
            "shuffle": self.shuffle,
            "fingerprint": self.fingerprint(),
            "valid_this_pass": self._valid_this_pass,
            "drawn_this_pass": self._drawn_this_pass,
            "stats": {
                "lines_read": self.stats.lines_read,
                "records": self.stats.records,
                "skipped": dict(self.stats.skipped),
                "first_skipped": list(self.stats.first_skipped),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where `state_dict()` was taken (same files, seed and shuffle)."""
        for key in ("seed", "shuffle", "fingerprint"):
            mine = self.fingerprint() if key == "fingerprint" else getattr(self, key)
            if state[key] != mine:
                raise ValueError(
                    f"cannot resume the prompt stream: {key} was {state[key]!r}, is now {mine!r}"
                    + (" (the data files changed)" if key == "fingerprint" else "")
                )
        self.epoch, self._cursor, self._order = int(state["epoch"]), int(state["cursor"]), None
        self._valid_this_pass = int(state["valid_this_pass"])
        self._drawn_this_pass = int(state["drawn_this_pass"])
        stats = state["stats"]
        self.stats = StreamStats(
            stats["lines_read"],
            stats["records"],
            Counter(stats["skipped"]),
            list(stats.get("first_skipped", [])),  # absent in checkpoints of older versions
        )
