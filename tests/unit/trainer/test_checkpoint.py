"""Checkpoints: atomic (temporary folder + rename), newest `keepLast` kept, incomplete ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from eureka_trainer.checkpoint import CheckpointManager


def _write(payload: str):
    def write(folder: Path) -> None:
        (folder / "data.txt").write_text(payload)

    return write


def test_save_then_latest_and_keep_last(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, keep_last=2)
    for step in (1, 2, 3):
        manager.save(step, {"samplesSeen": step * 10}, _write(f"s{step}"))
    assert [s for s, _ in manager.complete()] == [2, 3]
    step, folder = manager.latest() or (0, tmp_path)
    assert step == 3
    assert (folder / "data.txt").read_text() == "s3"
    assert CheckpointManager.meta(folder) == {"step": 3, "samplesSeen": 30}


def test_failed_write_leaves_no_checkpoint(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path, keep_last=3)
    manager.save(1, {}, _write("good"))

    def broken(folder: Path) -> None:
        (folder / "half.txt").write_text("x")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        manager.save(2, {}, broken)
    assert [s for s, _ in manager.complete()] == [1]
    assert not list(tmp_path.glob(".tmp-*"))


def test_folder_without_marker_is_not_a_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "step-00000009").mkdir()  # e.g. a copy interrupted half-way
    manager = CheckpointManager(tmp_path, keep_last=1)
    assert manager.latest() is None
    manager.save(4, {}, _write("x"))
    assert manager.latest() is not None and manager.latest()[0] == 4  # type: ignore[index]


def test_keep_last_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="keepLast"):
        CheckpointManager(tmp_path, keep_last=0)
