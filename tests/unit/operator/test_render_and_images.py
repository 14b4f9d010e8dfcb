"""`eureka render`, the operator image, and the operator's import weight (the trainer image:
test_trainer_image.py)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from eureka_operator.cli import main

REPO = Path(__file__).resolve().parents[3]


def test_render_prints_the_objects_of_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(REPO / "manifests" / "examples" / "rljob.yaml")]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert [d["kind"] for d in docs] == [
        "ConfigMap",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "RayJob",
    ]
    groups = docs[-1]["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert {g["groupName"] for g in groups} == {"rollout", "learner"}


def test_operator_options_from_the_command_line() -> None:
    import argparse

    from eureka_operator.main import add_arguments, options_from

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    opts = options_from(
        parser.parse_args(["-n", "a", "-n", "b", "--peering", "p", "--priority", "7"])
    )
    assert (list(opts.namespaces), opts.peering, opts.priority, opts.standalone) == (
        ["a", "b"],
        "p",
        7,
        False,
    )
    randoms = {options_from(parser.parse_args(["--peering", "p"])).priority for _ in range(5)}
    assert len(randoms) > 1 and all(p > 0 for p in randoms)
    with pytest.raises(SystemExit):
        parser.parse_args(["--peering", "p", "--standalone"])


def test_render_reports_bad_input_with_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: eureka.dev/v1alpha1\nkind: RLJob\nmetadata: {name: x}\n"
        "spec:\n  model: {name: m}\n  data: {trainFiles: [t]}\n  algorithm:\n    learningRat: 1\n"
    )
    assert main(["render", str(bad)]) == 2  # EXIT_INVALID
    err = capsys.readouterr().err
    assert f"{bad}:8" in err and "spec.algorithm.learningRat" in err


def test_operator_image_is_slim_and_non_root() -> None:
    text = (REPO / "images" / "operator" / "Dockerfile").read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.\d+-slim", text, flags=re.MULTILINE)
    commands = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert "[operator]" in text and not any(
        "torch" in line or "[trainer]" in line for line in commands
    )
    assert re.search(r"^USER 65532", text, flags=re.MULTILINE)


def test_the_operator_does_not_import_torch_or_ray() -> None:
    code = (
        "import sys, eureka_operator.main, eureka_operator.render; "
        "heavy = {'torch', 'ray', 'vllm', 'deepspeed', 'transformers'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
