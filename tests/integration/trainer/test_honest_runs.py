"""What `eureka run` reports is true, end to end on local Ray: a resume with a changed spec is
refused (fields named) or applied and recorded, never silent; skipped lines are counted per
step and in total; a run already at its last step says it trained nothing."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from eureka_trainer.local import EXIT_REFUSED, train
from tests.integration.trainer.conftest import run_dir_with_assets
from tests.integration.trainer.test_driver import _job, _metrics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


def _status(run: Path) -> dict:
    return json.loads((run / "status.json").read_text())


def test_resume_refuses_unsafe_changes_and_records_safe_ones(
    tmp_path: Path, demo_assets: Path, local_ray: None, caplog: pytest.LogCaptureFixture
) -> None:
    run = run_dir_with_assets(tmp_path / "run", demo_assets)
    assert train(_job(), run, rljob_text="first") == 0
    assert [r["step"] for r in _metrics(run)] == [1, 2]

    # A changed learning rate: refused before anything starts, with the field named; the run
    # directory (rljob.yaml, metrics, status) is left as it was.
    before = (_status(run), (run / "metrics.jsonl").read_text())
    with caplog.at_level(logging.ERROR):
        code = train(_job(**{"algorithm.learningRate": 2e-3}), run, rljob_text="changed")
    assert code == EXIT_REFUSED
    assert "spec.algorithm.learningRate: 0.001 -> 0.002" in caplog.text
    assert (run / "rljob.yaml").read_text() == "first"
    assert (_status(run), (run / "metrics.jsonl").read_text()) == before

    # The same spec again, at its last step: Succeeded, saying it trained nothing.
    assert train(_job(), run) == 0
    status = _status(run)
    assert status["phase"] == "Succeeded" and status["progress"]["step"] == 2
    assert "nothing to train" in status["conditions"][0]["message"]

    # More steps (and fewer samples logged): applied, recorded, trained.
    more = _job(**{"algorithm.maxSteps": 3, "logging.samplesPerStep": 1})
    assert train(more, run, rljob_text="more") == 0
    assert [r["step"] for r in _metrics(run)] == [1, 2, 3]
    changes = [json.loads(x) for x in (run / "spec-changes.jsonl").read_text().splitlines()]
    assert {(c["field"], c["old"], c["new"], c["resumedStep"]) for c in changes} == {
        ("spec.algorithm.maxSteps", 2, 3, 2),
        ("spec.logging.samplesPerStep", 2, 1, 2),
    }
    assert (run / "rljob.yaml").read_text() == "more"

    # --restart: starts over with the new learning rate; the old run is kept aside.
    assert train(_job(**{"algorithm.learningRate": 2e-3}), run, restart=True) == 0
    assert [r["step"] for r in _metrics(run)] == [1, 2]
    (aside,) = run.glob("restarted-*")
    assert (aside / "checkpoints" / "step-00000003").is_dir()
    assert [json.loads(x)["step"] for x in (aside / "metrics.jsonl").read_text().splitlines()] == [
        1,
        2,
        3,
    ]


def test_skipped_lines_are_counted_per_step_and_named_at_the_end(
    tmp_path: Path, demo_assets: Path, local_ray: None, caplog: pytest.LogCaptureFixture
) -> None:
    run = run_dir_with_assets(tmp_path / "skip", demo_assets)
    shapes = demo_assets / "shapes"
    good = (shapes / "shapes.jsonl").read_text().splitlines()[:8]
    data = run / "broken.jsonl"
    # Line 3 is not JSON, line 6 has no answer; 10 lines, two bad.
    lines = [*good[:2], "{not json", *good[2:4], '{"id": "x", "conversations": []}', *good[4:]]
    data.write_text("\n".join(lines) + "\n")
    job = _job(
        **{
            "data.trainFiles": [str(data)],
            "data.imageRoot": str(shapes),
            "data.badLines": "skip",
            "data.shuffle": False,
        }
    )
    with caplog.at_level(logging.INFO):
        assert train(job, run) == 0
    rows = _metrics(run)
    # Step 1 draws lines 1-5 (line 3 skipped), step 2 lines 6-10 (line 6 skipped).
    assert [r["data/skipped_lines"] for r in rows] == [1, 1]
    assert [r["data/skipped_lines_total"] for r in rows] == [1, 2]
    assert rows[-1]["data/skipped_lines_total/bad_json"] == 1
    assert rows[-1]["data/truncated_prompts_total"] == 0
    assert f"{data}:3: not valid JSON" in caplog.text  # logged as it happens
    end = [r.getMessage() for r in caplog.records if r.getMessage().startswith("data: ")]
    assert end and "2 of 10 lines read were skipped" in end[-1]
    assert f"first: {data}:3" in end[-1] and f"{data}:6" in end[-1]
