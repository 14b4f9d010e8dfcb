"""`eureka eval --model` on a remote-code checkpoint (InternVL2.5's `internvl_chat` layout, the
tiny one `eureka tiny-model --layout remote-code` writes): refused before anything loads unless
`--trust-remote-code` allows the folder's Python files, then evaluated through the `hf` backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from eureka_operator.cli import main
from eureka_trainer.models.tiny import build_tiny_model

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_a_remote_code_folder_needs_the_flag_and_then_evaluates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "tiny-internvl-chat"
    build_tiny_model("internvl", model, layout="remote-code")
    Image.new("RGB", (64, 48), (30, 120, 200)).save(tmp_path / "a.png")
    data = tmp_path / "k12.json"
    rows = [
        {"id": f"k{i}", "question": "How many?", "answer": "2", "image_path": "a.png"}
        for i in range(2)
    ]
    data.write_text(json.dumps(rows), encoding="utf-8")
    args = ["eval", "--model", str(model), "--data", str(data), "--backend", "hf"]
    args += ["--max-new-tokens", "4", "-o", "json"]

    assert main([*args, "--output", str(tmp_path / "refused")]) == 2  # bad input
    err = capsys.readouterr().err
    assert (
        "'internvl_chat' is internvl's remote-code layout" in err and "--trust-remote-code" in err
    )
    assert not (tmp_path / "refused").exists()  # refused before loading or writing anything

    out = tmp_path / "eval"
    assert main([*args, "--output", str(out), "--trust-remote-code"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] == 2 and summary["backend"] == "hf"
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert all("<image>" in s["prompt"] for s in samples)  # the chat checkpoint's image mark
