"""K12 and training-format eval sets read into training `PromptRecord`s; templates applied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eureka_trainer.data.records import parse_object
from eureka_trainer.evaluation.datasets import read_items
from eureka_trainer.evaluation.rows import EvalDataError
from eureka_trainer.evaluation.templates import TEMPLATES, get_template
from eureka_trainer.registry import UnknownNameError

PNG = bytes.fromhex(  # a 1x1 PNG
    "89504e470d0a1a0a0000000d49484452000000010000000108020000009077"
    "53de0000000c4944415408d763f8ffff3f0005fe02fea7d6a4a70000000049454e44ae426082"
)


def _k12(tmp_path: Path) -> Path:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(PNG)
    rows = [
        {
            "id": "a",
            "question": "Area of the square?",
            "answer": "4",
            "image_path": "images/a.png",
            "subject": "math",
        },
        {"id": "b", "question": "What is 2+2?", "answer": "4", "subject": "math"},
    ]
    path = tmp_path / "k12.json"
    path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return path


def _texts(messages: list[dict]) -> list[str]:
    return [item["text"] for m in messages for item in m["content"] if item["type"] == "text"]


def test_k12_records_are_templated_with_their_image(tmp_path: Path) -> None:
    items = read_items(_k12(tmp_path), get_template("reasoning_pretrain"), family="qwen2_vl")
    a, b = (i.record for i in items)
    assert a.image_paths == [(tmp_path / "images" / "a.png").resolve()]
    assert [m["role"] for m in a.messages] == ["system", "user"]
    user = a.messages[1]["content"]
    assert user[0] == {"type": "image"}  # the image goes before the question
    assert "Area of the square?" in user[1]["text"] and "\\boxed{}" in user[1]["text"]
    assert b.image_paths == [] and all(c["type"] == "text" for c in b.messages[1]["content"])
    assert items[0].gold.groups == {"subject": "math"}
    assert a.source == f"{tmp_path / 'k12.json'}:2"


def test_each_template_builds_a_different_prompt(tmp_path: Path) -> None:
    data = _k12(tmp_path)
    prompts = {
        name: _texts(read_items(data, get_template(name), family="qwen2_vl")[1].record.messages)
        for name in TEMPLATES
    }
    assert prompts["original"] == ["What is 2+2?"]
    assert "<answer>" in prompts["reasoning_instruct"][0] and prompts["reasoning_instruct"][
        0
    ].endswith("What is 2+2?")
    assert len(prompts["reasoning_pretrain"]) == 2  # system + user
    assert get_template("reasoning_pretrain").reward_mode == "boxed"
    with pytest.raises(UnknownNameError, match="known: original, reasoning_instruct"):
        get_template("gpt4o_judge")


def test_internvl_text_only_k12_gets_the_blank_image(tmp_path: Path) -> None:
    items = read_items(_k12(tmp_path), get_template("original"), family="internvl")
    assert items[1].record.blank_image and items[1].record.num_images == 1


def test_training_format_rows_keep_their_conversation(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(PNG)
    row = {
        "id": "s-1",
        "conversations": [
            {"role": "system", "content": "Answer in <answer> tags."},
            {"role": "user", "content": "<image>\nHow many?"},
        ],
        "image_urls": ["file://x.png"],
        "answer": "3",
        "source": "shapes",
    }
    data = tmp_path / "eval.jsonl"
    data.write_text(json.dumps(row) + "\n", encoding="utf-8")
    (item,) = read_items(data, get_template("reasoning_pretrain"), family="qwen2_vl")
    expected = parse_object(row, f"{data}:1", image_root=tmp_path, family="qwen2_vl")
    assert item.record == expected  # the template does not touch a written conversation
    assert item.gold.groups == {"source": "shapes"}


def test_every_bad_record_is_named_before_any_model_loads(tmp_path: Path) -> None:
    rows = [
        {"id": "a", "question": "q", "answer": "1", "image_path": "missing.png"},
        {"id": "b", "question": "", "answer": "1"},
        {"id": "c", "conversations": [{"role": "robot", "content": "hi"}], "answer": "1"},
    ]
    data = tmp_path / "bad.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(EvalDataError) as err:
        read_items(data, get_template("original"))
    problems = err.value.problems
    assert len(problems) == 3
    assert problems[0].startswith(f"{data}:1: field 'image_path': no such image")
    assert problems[1] == f"{data}:2: field 'question': expected a non-empty string"
    assert problems[2].startswith(f"{data}:3: field 'conversations[0].role'")
