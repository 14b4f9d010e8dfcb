"""Resuming honestly: a checkpoint continues only the spec it was written under.

Every checkpoint's `trainer.json` holds the RLJob spec it was written under (camelCase, as in
the YAML) and its fingerprint. Before a run resumes, the current spec is compared with the
newest checkpoint's, field by field:

- a change that cannot alter what the checkpoint means (more steps, logging, evaluation,
  checkpoint interval, reward workers, the image, node placement...) is applied, logged and
  recorded in the run directory's `spec-changes.jsonl` (step, field, old and new value);
- any other change (learning rate, model, data, batch sizes, algorithm...) is refused with the
  list of changed fields: the run stops before any actor starts, `rljob.yaml` is left as it is,
  and the message says how to start over (`eureka run --restart`, which moves the old
  checkpoints and records aside) or how to go back.

The operator's pod restarts run the same `eureka run --cluster` with the same spec, so they
resume; an RLJob edited in place with an unsafe change fails with the fields named.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eureka_trainer.checkpoint import CheckpointManager
from eureka_trainer.config import RLJobSpec

log = logging.getLogger(__name__)

CHANGES_FILE = "spec-changes.jsonl"
RECORDS = ("metrics.jsonl", "samples.jsonl", "status.json", "rljob.yaml", CHANGES_FILE)
"""A run directory's records that `--restart` moves aside with the checkpoints."""

SAFE_CHANGES: tuple[str, ...] = (
    # How long to train: the run goes on (or stops) at the new length. The learning-rate
    # schedule is stretched to the new number of optimizer steps from here on.
    "algorithm.maxSteps",
    "algorithm.epochs",
    # What is logged and evaluated, and how often checkpoints are written.
    "logging.*",
    "evaluation.*",
    "data.evalFiles",
    "checkpoint.intervalSteps",
    "checkpoint.keepLast",
    "checkpoint.resume",
    # How the work is run, not what it computes.
    "rewards.workers",
    "rewards.timeoutSeconds",
    "learner.gradientCheckpointing",
    "learner.microBatchSize",
    "rollout.gpuMemoryUtilization",
    "rollout.enforceEager",
    "runPolicy.*",
    "resources.image",
    "resources.imagePullPolicy",
    "resources.imagePullSecrets",
    "resources.priorityClassName",
    "resources.head.*",
    "resources.*.nodeSelector*",
    "resources.*.tolerations",
    "resources.*.cpu",
    "resources.*.memory",
    "model.hubTokenSecret*",
)
"""Field paths (camelCase, `fnmatch` patterns) a resume may change; everything else is refused."""


@dataclass(frozen=True)
class Change:
    """One field whose value differs between a checkpoint's spec and the current one."""

    path: str
    old: Any
    new: Any

    @property
    def safe(self) -> bool:
        return any(fnmatch.fnmatchcase(self.path, p) for p in SAFE_CHANGES)

    def describe(self) -> str:
        return f"spec.{self.path}: {_show(self.old)} -> {_show(self.new)}"


class ResumeRefused(ValueError):
    """The run directory's checkpoints come from a spec that differs in unsafe fields."""

    def __init__(self, step: int, changes: Sequence[Change], run_dir: Path) -> None:
        self.changes = list(changes)
        fields = "\n".join(f"  {c.describe()}" for c in changes)
        super().__init__(
            f"cannot resume from the checkpoint of step {step}: it was written under a spec "
            f"that differs in\n{fields}\n"
            "Resuming would continue those checkpoints with settings they do not come from. "
            f"Either restore these fields, or start over: `eureka run RLJOB.yaml --output "
            f"{run_dir} --restart` (moves the old checkpoints and records aside), or use "
            "another run directory (or RLJob name)."
        )


def spec_document(spec: RLJobSpec) -> dict[str, Any]:
    """The spec as the user writes it (camelCase keys, defaults filled in)."""
    doc: dict[str, Any] = spec.model_dump(by_alias=True, mode="json")
    return doc


def fingerprint(document: Mapping[str, Any]) -> str:
    """A short digest of a spec document (key order does not matter)."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checkpoint_meta(spec: RLJobSpec) -> dict[str, Any]:
    """What each checkpoint's `trainer.json` records of the spec."""
    doc = spec_document(spec)
    return {"spec": doc, "specFingerprint": fingerprint(doc)}


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values by dotted path; lists are leaves (a list is one setting)."""
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: node}


def _normalised(saved: Mapping[str, Any]) -> dict[str, Any]:
    """A saved spec re-read with today's model (new fields get their defaults), or as it is
    when it no longer validates (then its removed fields show up as changes)."""
    try:
        return spec_document(RLJobSpec.model_validate(saved))
    except ValueError:
        return dict(saved)


def changed_fields(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[Change]:
    """Every leaf whose value differs, by camelCase path (without `spec.`), sorted."""
    old, new = _flatten(_normalised(saved)), _flatten(current)
    missing = object()
    return [
        Change(path, old.get(path, missing), new.get(path, missing))
        for path in sorted(old.keys() | new.keys())
        if old.get(path, missing) != new.get(path, missing)
    ]


@dataclass
class ResumePlan:
    """What a run starts from: a checkpoint step (0: fresh) and the safe changes it applies."""

    step: int = 0
    changes: list[Change] | None = None
    unchecked: bool = False
    """The checkpoint predates spec fingerprints: it cannot be checked."""


def plan_resume(spec: RLJobSpec, checkpoints: CheckpointManager, run_dir: Path) -> ResumePlan:
    """Compare the spec with the newest checkpoint's; raise `ResumeRefused` on unsafe changes."""
    latest = checkpoints.latest() if spec.checkpoint.resume == "auto" else None
    if latest is None:
        return ResumePlan()
    step, folder = latest
    saved = CheckpointManager.meta(folder).get("spec")
    if saved is None:
        log.warning(
            "the checkpoint of step %d records no spec (written by an older version): "
            "resuming without checking that the spec is unchanged",
            step,
        )
        return ResumePlan(step, [], unchecked=True)
    changes = changed_fields(saved, spec_document(spec))
    refused = [c for c in changes if not c.safe]
    if refused:
        raise ResumeRefused(step, refused, run_dir)
    for change in changes:
        log.warning("resuming from step %d with a changed spec: %s", step, change.describe())
    return ResumePlan(step, changes)


def record_changes(run_dir: Path, plan: ResumePlan) -> None:
    """Append the applied changes to `spec-changes.jsonl` (one JSON object per field)."""
    if not plan.changes:
        return
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with open(run_dir / CHANGES_FILE, "a", encoding="utf-8") as handle:
        for change in plan.changes:
            row = {
                "time": when,
                "resumedStep": plan.step,
                "field": f"spec.{change.path}",
                "old": _jsonable(change.old),
                "new": _jsonable(change.new),
            }
            handle.write(json.dumps(row) + "\n")


def restart(run_dir: Path, checkpoints: CheckpointManager) -> Path | None:
    """Move the run's checkpoints and records into `run_dir/restarted-<UTC time>/` (nothing is
    deleted); the folder, or None when there was nothing to move."""
    found = [folder for _, folder in checkpoints.complete()]
    records = [run_dir / name for name in (*RECORDS, "tensorboard") if (run_dir / name).exists()]
    if not found and not records:
        return None
    target = run_dir / f"restarted-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    (target / "checkpoints").mkdir(parents=True, exist_ok=True)
    for folder in found:
        shutil.move(str(folder), target / "checkpoints" / folder.name)
    for path in records:
        shutil.move(str(path), target / path.name)
    log.warning("--restart: the previous checkpoints and records are in %s", target)
    return target


def _jsonable(value: Any) -> Any:
    return None if not isinstance(value, str | int | float | bool | list | dict) else value


def _show(value: Any) -> str:
    if not isinstance(value, str | int | float | bool | list | dict | type(None)):
        return "(absent)"
    return json.dumps(value)
