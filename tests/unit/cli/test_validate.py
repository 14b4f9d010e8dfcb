"""`eureka validate`: exit codes and one message per mistake, through the real console entry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from eureka_operator.cli import main

ROOT = Path(__file__).resolve().parents[3]


def test_examples_validate(capsys: object) -> None:
    examples = sorted(str(p) for p in (ROOT / "manifests/examples").glob("*.yaml"))
    assert examples
    assert main(["validate", *examples]) == 0


def test_every_mistake_reported_and_exit_2(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(
        "apiVersion: eureka.dev/v1alpha1\nkind: RLJob\nmetadata: {name: a}\nspec:\n"
        "  model: {name: m, dtype: fp8}\n  data: {trainFiles: [t], shufle: true}\n"
        "  rollout: {backend: hf, topP: 2}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "eureka_operator.cli", "validate", str(file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 3, proc.stderr
    assert any(f"{file}:5: document 1: spec.model.dtype" in line for line in lines)
    assert any(f"{file}:6: document 1: spec.data.shufle: unknown field" in line for line in lines)
    assert any(f"{file}:7: document 1: spec.rollout.topP" in line for line in lines)


def test_syntax_error_exit_2(tmp_path: Path, capsys: object) -> None:
    file = tmp_path / "broken.yaml"
    file.write_text("spec:\n  model: {name: m\n")
    assert main(["validate", str(file)]) == 2


def test_crd_command_does_not_import_torch() -> None:
    code = (
        "import sys, io, contextlib\nfrom eureka_operator.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['crd'])\n"
        "assert not {'torch', 'ray', 'kopf'} & set(sys.modules), sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_rollout_backend_points_at_a_real_module() -> None:
    import importlib.util

    from eureka_trainer.rollout import ROLLOUT_BACKENDS

    for name in ROLLOUT_BACKENDS.names():
        module = ROLLOUT_BACKENDS.get(name).partition(":")[0]
        assert importlib.util.find_spec(module) is not None, f"{name}: {module} missing"
