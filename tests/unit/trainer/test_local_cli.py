"""`eureka run` refuses a bad RLJob before starting anything, naming file, line and field."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from eureka_trainer import local


def test_invalid_rljob_exits_2_with_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "job.yaml"
    bad.write_text(
        "apiVersion: eureka.dev/v1alpha1\nkind: RLJob\nmetadata: {name: x}\nspec:\n"
        "  model: {name: m}\n  data: {trainFiles: [a.jsonl]}\n  rollout: {backend: hf}\n"
        "  algorithm: {learningRate: -1}\n"
    )
    parser = argparse.ArgumentParser()
    local.add_arguments(parser)
    status = local.run(parser.parse_args([str(bad), "--output", str(tmp_path / "run")]))
    assert status == 2
    err = capsys.readouterr().err
    assert f"{bad}:8" in err and "algorithm.learningRate" in err
    assert not (tmp_path / "run").exists()


def test_missing_kube_sink_name_is_skipped_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("EUREKA_RLJOB_NAME", raising=False)
    assert local.kube_sink() is None
    assert "no Kubernetes status reporting" in caplog.text


def test_summary_plots_rewards_and_names_the_dashboard_command(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text(
        '{"step": 1, "reward/accuracy": 0.25, "reward/total": 0.75}\n'
        '{"step": 2, "reward/accuracy": 0.75, "reward/total": 1.25}\n'
    )
    text = local.summary(tmp_path)
    assert "reward/accuracy per step" in text and "*" in text
    assert f"eureka serve --runs {tmp_path.resolve()}" in text
