"""Checkpoints: written atomically (temporary folder + rename), the newest `keepLast` kept.

A checkpoint is the folder `<root>/step-<NNNNNNNN>/` holding `trainer.json` (step and small
driver state), `driver.pt` (the prompt stream's and the filter's state, RNG states) and
`learner/` (model, optimizer, scheduler: written by the learner). It exists only once
complete: everything is written into `<root>/.tmp-step-<N>-<pid>/`, then renamed.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

PREFIX = "step-"
MARKER = "trainer.json"


def checkpoint_name(step: int) -> str:
    """Folder name of the checkpoint of `step` (sortable)."""
    return f"{PREFIX}{step:08d}"


class CheckpointManager:
    """Saves, finds and prunes the checkpoints under `root`."""

    def __init__(self, root: str | Path, keep_last: int) -> None:
        if keep_last < 1:
            raise ValueError("checkpoint.keepLast must be >= 1")
        self.root = Path(root)
        self.keep_last = keep_last

    def complete(self) -> list[tuple[int, Path]]:
        """(step, folder) of every complete checkpoint, oldest first."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in self.root.iterdir():
            if folder.name.startswith(PREFIX) and (folder / MARKER).is_file():
                try:
                    found.append((int(folder.name[len(PREFIX) :]), folder))
                except ValueError:
                    continue
        return sorted(found)

    def latest(self) -> tuple[int, Path] | None:
        """The newest complete checkpoint, or None."""
        found = self.complete()
        return found[-1] if found else None

    def save(self, step: int, meta: dict[str, Any], write: Callable[[Path], None]) -> Path:
        """Call `write(tmp_folder)`, add `trainer.json` with `meta`, then rename into place."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / checkpoint_name(step)
        tmp = self.root / f".tmp-{checkpoint_name(step)}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            write(tmp)
            # The marker is written last: a folder without it is never loaded.
            (tmp / MARKER).write_text(json.dumps({"step": step, **meta}), encoding="utf-8")
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.prune()
        return final

    def prune(self) -> None:
        """Delete all but the newest `keep_last` checkpoints, and stale temporary folders."""
        for _, folder in self.complete()[: -self.keep_last]:
            shutil.rmtree(folder, ignore_errors=True)
        for folder in self.root.glob(".tmp-*"):
            if not folder.name.endswith(f"-{os.getpid()}"):
                shutil.rmtree(folder, ignore_errors=True)

    @staticmethod
    def meta(folder: Path) -> dict[str, Any]:
        """The `trainer.json` of a checkpoint."""
        data: dict[str, Any] = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        return data
