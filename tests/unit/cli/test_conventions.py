"""CLI conventions: -o json|yaml, examples in --help, one exit status for an invalid file,
`eureka run --set/--max-steps`, and the three checks validate used to miss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from eureka_operator.cli import main
from eureka_trainer.config import RLJobError
from eureka_trainer.config.loader import EXIT_INVALID
from eureka_trainer.config.overrides import load_rljob_with

ROOT = Path(__file__).resolve().parents[3]
GOOD = """\
apiVersion: eureka.dev/v1alpha1
kind: RLJob
metadata: {name: conv}
spec:
  model: {name: m}
  data: {trainFiles: [t.jsonl]}
  rollout: {backend: hf}
  algorithm: {learningRate: 1.0e-6}
  rewards:
    components:
      - {name: accuracy}
  resources:
    head: {cpu: "2", memory: 8Gi}
"""
# The three cases of the issue: each passed `eureka validate` before.
CASES = [
    ("{name: accuracy}", "{name: acuracy}", 11, "spec.rewards.components.0.name", "acuracy"),
    ('cpu: "2"', "cpu: two", 13, "spec.resources.head.cpu", "not a Kubernetes quantity"),
    (
        "learningRate: 1.0e-6",
        "learning_rate: 1.0e-6",
        8,
        "spec.algorithm.learning_rate",
        "'learningRate'",
    ),
]


def write(tmp_path: Path, text: str, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("good", "bad", "line", "field", "hint"), CASES)
def test_validate_catches_what_it_missed(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    good: str,
    bad: str,
    line: int,
    field: str,
    hint: str,
) -> None:
    assert main(["validate", str(write(tmp_path, GOOD))]) == 0
    path = write(tmp_path, GOOD.replace(good, bad), "bad.yaml")
    assert main(["validate", str(path)]) == EXIT_INVALID
    (message,) = capsys.readouterr().err.strip().splitlines()
    assert message.startswith(f"{path}:{line}: document 1: {field}: ") and hint in message
    assert main(["validate", "-o", "json", str(path)]) == EXIT_INVALID
    (report,) = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["problems"][0]["path"] == field
    assert report["problems"][0]["line"] == line


def test_one_exit_status_for_an_invalid_file(tmp_path: Path) -> None:
    bad = write(tmp_path, GOOD.replace("{name: accuracy}", "{name: acuracy}"))
    assert EXIT_INVALID == 2
    assert main(["validate", str(bad)]) == EXIT_INVALID
    assert main(["render", str(bad)]) == EXIT_INVALID
    assert main(["run", str(bad), "--output", str(tmp_path / "run")]) == EXIT_INVALID
    assert not (tmp_path / "run").exists()  # refused before anything starts
    data = write(tmp_path, '{"id": 1, "question": "q"}\n', "eval.jsonl")  # no answer
    preds = write(tmp_path, '{"id": 1, "response": "r"}\n', "preds.jsonl")
    args = ["eval", "--predictions", str(preds), "--data", str(data), "--output", str(tmp_path)]
    assert main(args) == EXIT_INVALID


def test_output_formats(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path, GOOD)
    assert main(["validate", "-o", "yaml", str(good)]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == [
        {"file": str(good), "ok": True, "jobs": ["conv"], "problems": [], "warnings": []}
    ]
    assert main(["render", "-o", "json", "--kind", "RayJob", str(good)]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["kind"] == "List" and [o["kind"] for o in listing["items"]] == ["RayJob"]
    assert main(["render", str(good)]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert "RayJob" in {d["kind"] for d in docs}


@pytest.mark.parametrize("command", ["validate", "render", "run", "eval", "serve"])
def test_help_shows_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and f"eureka {command} " in out.split("examples:")[1]


def test_set_and_max_steps_override_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    job, manifest = load_rljob_with(
        path,
        [
            "algorithm.learningRate=2e-6",
            "spec.rewards.components.0.weight=0.5",
            "spec.data.trainFiles=[a.jsonl, b.jsonl]",
            "spec.algorithm.maxSteps=3",
        ],
    )
    assert job.spec.algorithm.learning_rate == 2e-6 and job.spec.algorithm.max_steps == 3
    assert job.spec.rewards.components[0].weight == 0.5
    assert job.spec.data.train_files == ["a.jsonl", "b.jsonl"]
    assert float(yaml.safe_load(manifest)["spec"]["algorithm"]["learningRate"]) == 2e-6
    assert "learningRate: 1.0e-6" in path.read_text()  # the file itself is untouched


@pytest.mark.parametrize(
    ("override", "where", "message"),
    [
        ("algorithm.learningRate=-1", "spec.algorithm.learningRate", "greater than 0"),
        ("algorithm.learning_rate=1", "spec.algorithm.learning_rate", "'learningRate'"),
        ("rewards.components.5.weight=1", "--set", "no item 5"),
        ("nonsense", "--set", "expected PATH=VALUE"),
    ],
)
def test_bad_overrides_are_named(tmp_path: Path, override: str, where: str, message: str) -> None:
    with pytest.raises(RLJobError) as err:
        load_rljob_with(write(tmp_path, GOOD), [override])
    (problem,) = err.value.problems
    assert where in str(problem) and message in str(problem)


def test_run_max_steps_is_an_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD)
    assert main(["run", str(path), "--max-steps", "0", "--output", str(tmp_path / "r")]) == 2
    assert "spec.algorithm.maxSteps" in capsys.readouterr().err
