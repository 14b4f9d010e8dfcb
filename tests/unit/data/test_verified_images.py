"""A stream reads and checks each image file once per run, not once per epoch.

The check (`PIL.Image.verify`, headers and checksums) reads the whole file: 1.9 ms of the
demo's 16 images a step on 2 cores, in the thread that encodes the next prompts while the
rewards are scored. A file is remembered by (path, size, mtime); one that failed never is.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from eureka_trainer.data import PromptStream
from eureka_trainer.data.images import VerifiedImages

from .conftest import conv_line, write_lines


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every file `verify_images` opens (PIL.Image.open, counted)."""
    calls: list[str] = []
    real = Image.open

    def counting(path: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(Path(path).name)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(Image, "open", counting)
    return calls


def test_each_image_is_checked_once_across_epochs(folder: Path, opened: list[str]) -> None:
    lines = [conv_line(i, "file://red.png") for i in range(3)]
    lines += [conv_line(3, "file://big.png")]
    stream = PromptStream([write_lines(folder / "t.jsonl", lines)], seed=1)
    stream.next_batch(4 * 3)  # three epochs
    assert stream.epoch == 2
    assert sorted(opened) == ["big.png", "red.png"]


def test_a_file_written_since_is_checked_again(folder: Path, opened: list[str]) -> None:
    path = write_lines(folder / "t.jsonl", [conv_line(0, "file://red.png"), conv_line(1)])
    stream = PromptStream([path], bad_lines="skip", shuffle=False)
    assert len(stream.next_batch(2)) == 2
    image = folder / "red.png"
    before = image.stat().st_mtime_ns
    image.write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    os.utime(image, ns=(before + 10**9, before + 10**9))  # a later write, whatever the clock
    records = stream.next_batch(2)  # two more epochs
    assert [r.id for r in records] == ["c1", "c1"]  # c0's image no longer decodes: skipped
    assert stream.stats.skipped["bad_image"] == 2
    assert opened == ["red.png"] * 3  # once while it was good, then at each failed draw


def test_a_bad_file_fails_each_time_it_is_drawn(folder: Path) -> None:
    lines = [conv_line(0, "file://broken.png"), conv_line(1, "file://red.png")]
    stream = PromptStream([write_lines(folder / "t.jsonl", lines)], bad_lines="skip", shuffle=False)
    records = stream.next_batch(3)  # three epochs of one good line
    assert [r.id for r in records] == ["c1"] * 3
    assert stream.stats.skipped["bad_image"] == 3


def test_the_memory_is_bounded(folder: Path) -> None:
    verified = VerifiedImages(capacity=2)
    keys = [VerifiedImages.key(str(folder / name)) for name in ("red.png", "big.png")]
    assert None not in keys
    for key in keys:
        verified.add(key)
    assert all(key in verified for key in keys)
    verified.add(("another", 1, 1))  # full: starts over
    assert ("another", 1, 1) in verified and not any(key in verified for key in keys)
    assert VerifiedImages.key(str(folder / "missing.png")) is None
    assert None not in verified
