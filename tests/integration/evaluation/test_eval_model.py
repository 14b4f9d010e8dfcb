"""`eureka eval --model` on a tiny Qwen2-VL built from a config, through the real `hf` backend.

The model is untrained (responses are noise), so these tests check what does not depend on its
skill: prompts are encoded exactly as training encodes them, the responses are the engine's own,
every response is scored by the training accuracy reward, greedy runs repeat exactly, sampling
gives k responses with pass@k / maj@k, and the written predictions re-score to the same summary.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eureka_operator.cli import main
from eureka_trainer.backends import SamplingConfig
from eureka_trainer.config.spec import DataSpec
from eureka_trainer.demo.assets import ShapesConfig, build_model, build_processor, write_shapes
from eureka_trainer.demo.resolve import MARKER
from eureka_trainer.driver.prompts import PromptSource, load_processor
from eureka_trainer.evaluation.datasets import read_items
from eureka_trainer.evaluation.runner import EncodingSettings, EvalSettings, encode_items, evaluate
from eureka_trainer.evaluation.scoring import EvalScorer
from eureka_trainer.evaluation.templates import get_template
from eureka_trainer.rewards import accuracy_reward

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
RECORDS = 6
NEW_TOKENS = 6


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("eval-assets")
    processor = build_processor()
    model_dir = root / "model"
    build_model(processor.tokenizer, seed=3).save_pretrained(model_dir)
    processor.tokenizer.save_pretrained(model_dir)
    (model_dir / MARKER).write_text("{}", encoding="utf-8")  # the demo processor rebuilds around it
    shapes = write_shapes(root / "shapes", ShapesConfig(records=RECORDS, seed=7))
    rows = [json.loads(line) for line in shapes.read_text().splitlines()]
    k12 = [
        {
            "id": f"k-{i}",
            "question": "How many shapes?",
            "answer": row["answer"],
            "image_path": row["image_urls"][0].removeprefix("file://"),
            "subject": "counting" if i % 2 else "geometry",
        }
        for i, row in enumerate(rows)
    ]
    k12_file = root / "shapes" / "k12.json"
    k12_file.write_text(json.dumps(k12, indent=1), encoding="utf-8")
    return {"model": model_dir, "shapes": shapes, "k12": k12_file}


def _engine(model_dir: Path):  # type: ignore[no-untyped-def]
    from eureka_trainer.rollout.hf import HFRolloutEngine

    processor = load_processor(str(model_dir), "qwen2_vl")
    return HFRolloutEngine(str(model_dir), "qwen2_vl", processor.tokenizer), processor


def test_eval_prompts_are_the_training_prompts_and_responses_the_engines(
    assets: dict[str, Path],
) -> None:
    engine, processor = _engine(assets["model"])
    template = get_template("reasoning_instruct")
    items = read_items(assets["shapes"], template, family="qwen2_vl")
    requests = encode_items(items, processor, EncodingSettings("qwen2_vl", 2048, 56 * 56, 56 * 56))
    data = DataSpec(
        train_files=[str(assets["shapes"])], shuffle=False, min_pixels=56 * 56, max_pixels=56 * 56
    )
    training = PromptSource(
        data, [str(assets["shapes"])], processor, "qwen2_vl", seed=0
    ).next_batch(RECORDS)
    for ours, theirs in zip(requests, training, strict=True):
        assert ours.prompt_ids == theirs.request.prompt_ids
        assert ours.mm_inputs.keys() == theirs.request.mm_inputs.keys()
        assert all((ours.mm_inputs[k] == theirs.request.mm_inputs[k]).all() for k in ours.mm_inputs)

    settings = EvalSettings(template="reasoning_instruct", max_new_tokens=NEW_TOKENS, batch_size=4)
    with EvalScorer(template) as scorer:
        result = evaluate(engine, items, requests, settings, scorer)
        again = evaluate(engine, items, requests, settings, scorer)
    direct = engine.generate(
        requests, SamplingConfig(n=1, max_new_tokens=NEW_TOKENS, temperature=0.0)
    )
    assert [r.responses for r in result.records] == [[c[0].text] for c in direct]
    assert [r.responses for r in again.records] == [
        r.responses for r in result.records
    ]  # greedy repeats
    for record, item in zip(result.records, items, strict=True):
        assert record.correct == [accuracy_reward(record.responses[0], item.gold.answer)]
    expected = sum(r.correct[0] for r in result.records) / RECORDS
    assert result.metrics["eval/accuracy"] == pytest.approx(expected)
    assert result.metrics["eval/records"] == RECORDS
    assert result.metrics["eval/truncated_fraction"] == pytest.approx(
        sum(c[0].finish_reason == "length" for c in direct) / RECORDS
    )


def test_cli_k12_sampled_then_rescored(
    assets: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "eval"
    args = [
        "eval",
        "--model",
        str(assets["model"]),
        "--data",
        str(assets["k12"]),
        "--output",
        str(out),
    ]
    sampling = [
        "--samples",
        "4",
        "--temperature",
        "1.0",
        "--max-new-tokens",
        str(NEW_TOKENS),
        "--seed",
        "5",
    ]
    assert main([*args, *sampling, "--template", "original", "--backend", "hf"]) == 0
    table = capsys.readouterr().out
    assert "subject=counting" in table and "pass@4" in table and "maj@4" in table
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] == RECORDS and summary["samples_per_prompt"] == 4
    assert summary["backend"] == "hf" and summary["template"] == "original"
    assert 0.0 <= summary["pass@1"] <= summary["pass@2"] <= summary["pass@4"] <= 1.0
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert all(len(r["responses"]) == 4 == len(r["correct"]) for r in rows)
    assert rows[0]["prompt"].endswith("How many shapes?<|im_end|>\n<|im_start|>assistant\n")
    assert "<|image_pad|>" in rows[0]["prompt"]  # the original template: image, then the question
    assert len({r for row in rows for r in row["responses"]}) > RECORDS  # samples differ

    rescored = tmp_path / "rescored"
    again = ["eval", "--predictions", str(out / "predictions.jsonl"), "--data", str(assets["k12"])]
    assert main([*again, "--output", str(rescored), "--template", "original"]) == 0
    second = json.loads((rescored / "summary.json").read_text())
    for key in ("accuracy", "pass@1", "pass@4", "maj@4", "groups"):
        assert second[key] == summary[key]
    assert second["missing"] == {"predictions": [], "data": []}


def test_cli_names_a_bad_record_before_loading_the_model(
    tmp_path: Path, assets: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps([{"id": 1, "question": "q", "answer": "1", "image_path": "nope.png"}])
    )
    args = [
        "eval",
        "--model",
        str(assets["model"]),
        "--data",
        str(bad),
        "--output",
        str(tmp_path / "o"),
    ]
    assert main(args) == 2  # EXIT_INVALID
    assert f"{bad}:1: field 'image_path': no such image" in capsys.readouterr().err
