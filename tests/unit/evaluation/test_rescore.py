"""`eureka eval --predictions`: the accuracy a reader computes by hand, missing ids reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eureka_operator.cli import main

K12 = [
    {"id": 1, "question": "1+1?", "answer": "2", "image_path": "", "subject": "math"},
    {"id": 2, "question": "Half of one?", "answer": "\\frac{1}{2}", "subject": "math"},
    {"id": 3, "question": "Speed?", "answer": "3", "subject": "physics"},
    {"id": 4, "question": "Mass?", "answer": "x^2+1", "subject": "physics"},
    {"id": 5, "question": "Never predicted", "answer": "7", "subject": "physics"},
]
# By hand: 1 right ($2$ is 2), 2 right (0.5 == 1/2, needs math-verify), 3 wrong (4 != 3),
# 4 right (1+x^2 == x^2+1, needs math-verify); 5 has no prediction; 99 is not in the data.
PREDICTIONS = [
    {"id": 1, "response": "<think>easy</think><answer>$2$</answer>"},
    {"id": 2, "response": "<think>half</think><answer>0.5</answer>"},
    {"id": 3, "response": "<think>guess</think><answer>4</answer>"},
    {"id": "4", "response": "<think>expand</think><answer>$1+x^{2}$</answer>"},
    {"id": 99, "response": "<answer>1</answer>"},
]


def _write(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "k12.json"
    data.write_text(json.dumps(K12, indent=1), encoding="utf-8")
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(p) + "\n" for p in PREDICTIONS), encoding="utf-8")
    return data, preds


@pytest.mark.timeout(60)
def test_rescore_gives_the_hand_computed_accuracy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, preds = _write(tmp_path)
    out = tmp_path / "out"
    assert (
        main(["eval", "--predictions", str(preds), "--data", str(data), "--output", str(out)]) == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy"] == pytest.approx(3 / 4)
    assert summary["correct"] == 3 and summary["count"] == 4
    assert summary["groups"]["subject"]["math"]["accuracy"] == 1.0
    assert summary["groups"]["subject"]["physics"]["accuracy"] == pytest.approx(1 / 2)
    assert summary["missing"] == {"predictions": ["5"], "data": ["99"]}
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [(r["id"], r["correct"]) for r in rows] == [
        ("1", [1.0]),
        ("2", [1.0]),
        ("3", [0.0]),
        ("4", [1.0]),
    ]
    assert rows[1]["extracted"] == ["0.5"]
    printed = capsys.readouterr().out
    assert "75.0%" in printed and "no prediction" in printed and "99" in printed


@pytest.mark.timeout(60)
def test_the_template_decides_how_the_answer_is_read(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "a", "question": "q", "answer": "6"}\n', encoding="utf-8")
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        json.dumps({"id": "a", "response": "<answer>5</answer> so finally \\boxed{6}"}) + "\n",
        encoding="utf-8",
    )
    scores = {}
    for template in ("reasoning_instruct", "reasoning_pretrain"):
        out = tmp_path / template
        args = ["eval", "--predictions", str(preds), "--data", str(data), "--output", str(out)]
        assert main([*args, "--template", template]) == 0
        scores[template] = json.loads((out / "summary.json").read_text())["accuracy"]
    assert scores == {"reasoning_instruct": 0.0, "reasoning_pretrain": 1.0}


@pytest.mark.timeout(60)
def test_k_samples_per_id_give_pass_and_majority(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(
        '{"id": "a", "question": "q", "answer": "6"}\n{"id": "b", "question": "q", "answer": "1"}\n'
    )
    preds = tmp_path / "p.jsonl"
    rows = [
        {
            "id": "a",
            "responses": ["<answer>6</answer>", "<answer>5</answer>", "<answer>6</answer>"],
        },
        {"id": "b", "response": "<answer>2</answer>"},
        {"id": "b", "response": "<answer>2</answer>"},
        {"id": "b", "response": "<answer>1</answer>"},
    ]
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    assert (
        main(["eval", "--predictions", str(preds), "--data", str(data), "--output", str(out)]) == 0
    )
    s = json.loads((out / "summary.json").read_text())
    assert s["accuracy"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert s["pass@3"] == 1.0 and s["maj@3"] == 0.5


def test_bad_prediction_rows_are_all_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, _ = _write(tmp_path)
    preds = tmp_path / "bad.jsonl"
    preds.write_text(
        '{"id": 1, "response": "x"}\n{"id": 2}\n{"response": "y"}\n{"id": 3, "response": 4}\n'
    )
    out = tmp_path / "out"
    assert (
        main(["eval", "--predictions", str(preds), "--data", str(data), "--output", str(out)]) == 2
    )
    err = capsys.readouterr().err
    assert f"{preds}:2: field 'response': missing" in err
    assert f"{preds}:3: field 'id': missing" in err
    assert f"{preds}:4: field 'response': expected a string, got int" in err
    assert not out.exists()  # nothing half-written


def test_bad_data_rows_are_named_with_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(
        '{"id": "a", "answer": "1"}\n{"id": "b"}\n{"id": "a", "answer": "2"}\n{"id": [1], "answer": "3"}\n'
    )
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"id": "a", "response": "1"}\n')
    assert (
        main(
            [
                "eval",
                "--predictions",
                str(preds),
                "--data",
                str(data),
                "--output",
                str(tmp_path / "o"),
            ]
        )
        == 2  # EXIT_INVALID, as every eureka subcommand given bad input
    )
    err = capsys.readouterr().err
    assert f"{data}:2: field 'answer': missing" in err
    assert f"{data}:3: field 'id': duplicate id 'a' (first at {data}:1)" in err
    assert f"{data}:4: field 'id': expected str or int, got list" in err


@pytest.mark.timeout(60)
def test_an_unparseable_gold_answer_is_reported_not_scored(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text('{"id": "a", "answer": "1"}\n{"id": "b", "answer": "10^{10^{10^{10}}}"}\n')
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        '{"id": "a", "response": "<answer>1</answer>"}\n{"id": "b", "response": "<answer>1</answer>"}\n'
    )
    out = tmp_path / "out"
    assert (
        main(["eval", "--predictions", str(preds), "--data", str(data), "--output", str(out)]) == 0
    )
    s = json.loads((out / "summary.json").read_text())
    assert s["invalid_gold"] == ["b"] and s["scored"] == 1 and s["accuracy"] == 1.0
