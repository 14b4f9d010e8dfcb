"""A checkpoint continues only the spec it was written under: unsafe changes are refused with
the fields named (camelCase, as in the RLJob), safe ones are applied and recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eureka_trainer.checkpoint import CheckpointManager
from eureka_trainer.config import RLJobSpec
from eureka_trainer.driver.resume import (
    CHANGES_FILE,
    ResumeRefused,
    changed_fields,
    checkpoint_meta,
    plan_resume,
    record_changes,
    restart,
    spec_document,
)


def _spec(**algorithm: Any) -> RLJobSpec:
    return RLJobSpec.model_validate(
        {
            "model": {"name": "m"},
            "data": {"trainFiles": ["a.jsonl"]},
            "rollout": {"backend": "hf"},
            "algorithm": {"learningRate": 1e-6, "maxSteps": 4, **algorithm},
            "checkpoint": {"storage": {"path": "checkpoints"}},
        }
    )


def _checkpoint(root: Path, spec: RLJobSpec, step: int = 2) -> CheckpointManager:
    manager = CheckpointManager(root / "checkpoints", 3)
    manager.save(step, {"samplesSeen": 8, **checkpoint_meta(spec)}, lambda folder: None)
    return manager


def test_unchanged_spec_resumes(tmp_path: Path) -> None:
    manager = _checkpoint(tmp_path, _spec())
    plan = plan_resume(_spec(), manager, tmp_path)
    assert plan.step == 2 and plan.changes == []


def test_a_changed_learning_rate_is_refused_with_the_field_named(tmp_path: Path) -> None:
    manager = _checkpoint(tmp_path, _spec())
    with pytest.raises(ResumeRefused) as caught:
        plan_resume(_spec(learningRate=3e-6, samplesPerPrompt=4), manager, tmp_path)
    message = str(caught.value)
    assert "spec.algorithm.learningRate: 1e-06 -> 3e-06" in message
    assert "spec.algorithm.samplesPerPrompt: 8 -> 4" in message
    assert "--restart" in message and "step 2" in message
    assert [c.path for c in caught.value.changes] == [
        "algorithm.learningRate",
        "algorithm.samplesPerPrompt",
    ]


def test_a_changed_model_is_refused_before_any_weights_are_loaded(tmp_path: Path) -> None:
    manager = _checkpoint(tmp_path, _spec())
    other = _spec().model_copy(update={"model": _spec().model.model_copy(update={"name": "x"})})
    with pytest.raises(ResumeRefused, match=r'spec\.model\.name: "m" -> "x"'):
        plan_resume(other, manager, tmp_path)


def test_more_steps_and_logging_are_applied_and_recorded(tmp_path: Path) -> None:
    manager = _checkpoint(tmp_path, _spec())
    changed = _spec(maxSteps=10).model_copy(deep=True)
    changed.logging.samples_per_step = 1
    plan = plan_resume(changed, manager, tmp_path)
    assert [c.path for c in plan.changes or []] == ["algorithm.maxSteps", "logging.samplesPerStep"]
    record_changes(tmp_path, plan)
    rows = [json.loads(line) for line in (tmp_path / CHANGES_FILE).read_text().splitlines()]
    assert rows[0]["field"] == "spec.algorithm.maxSteps"
    assert (rows[0]["old"], rows[0]["new"], rows[0]["resumedStep"]) == (4, 10, 2)


def test_resume_never_does_not_compare(tmp_path: Path) -> None:
    manager = _checkpoint(tmp_path, _spec())
    never = _spec(learningRate=1.0).model_copy(deep=True)
    never.checkpoint.resume = "never"
    assert plan_resume(never, manager, tmp_path).step == 0


def test_fields_added_to_the_spec_since_the_checkpoint_take_their_defaults() -> None:
    saved = spec_document(_spec())
    del saved["algorithm"]["weightDecay"]  # as if written before the field existed
    assert changed_fields(saved, spec_document(_spec())) == []


def test_checkpoints_of_older_versions_resume_unchecked(tmp_path: Path) -> None:
    manager = CheckpointManager(tmp_path / "checkpoints", 3)
    manager.save(1, {"samplesSeen": 4}, lambda folder: None)
    plan = plan_resume(_spec(learningRate=1.0), manager, tmp_path)
    assert plan.step == 1 and plan.unchecked


def test_restart_moves_checkpoints_and_records_aside(tmp_path: Path) -> None:
    manager = _checkpoint(tmp_path, _spec())
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n')
    (tmp_path / "rljob.yaml").write_text("old")
    target = restart(tmp_path, manager)
    assert target is not None and target.parent == tmp_path
    assert manager.latest() is None and not (tmp_path / "metrics.jsonl").exists()
    assert (target / "checkpoints" / "step-00000002" / "trainer.json").is_file()
    assert (target / "rljob.yaml").read_text() == "old"
    assert restart(tmp_path, manager) is None  # nothing left to move


def test_eureka_run_refuses_before_starting_anything(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI path: exit 2, the field named, rljob.yaml and the checkpoints untouched."""
    import argparse

    import yaml

    from eureka_trainer import local

    run = tmp_path / "run"
    run.mkdir()
    (run / "rljob.yaml").write_text("the spec of the checkpoints")
    manager = _checkpoint(run, _spec())
    doc = {
        "apiVersion": "eureka.dev/v1alpha1",
        "kind": "RLJob",
        "metadata": {"name": "x"},
        "spec": spec_document(_spec(learningRate=5e-6)),
    }
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump(doc))
    parser = argparse.ArgumentParser()
    local.add_arguments(parser)
    status = local.run(parser.parse_args([str(job), "--output", str(run)]))
    assert status == local.EXIT_REFUSED
    assert "spec.algorithm.learningRate: 1e-06 -> 5e-06" in caplog.text
    assert "resume refused" in capsys.readouterr().err
    assert (run / "rljob.yaml").read_text() == "the spec of the checkpoints"
    assert manager.latest() is not None and not (run / "status.json").exists()
