"""Reading RLJob YAML: file, line, document and field path in every message."""

from __future__ import annotations

from pathlib import Path

import pytest

from eureka_trainer.config import RLJobError, load_rljob, load_rljobs, parse_rljobs

GOOD = """\
apiVersion: eureka.dev/v1alpha1
kind: RLJob
metadata:
  name: {name}
spec:
  model: {{name: m}}
  data: {{trainFiles: [t.jsonl]}}
  rollout: {{backend: hf}}
"""

MISTAKES = """\
apiVersion: eureka.dev/v1alpha1
kind: RLJob
metadata:
  name: Bad_Name
spec:
  model:
    name: m
    famly: text
  data:
    trainFiles: [t.jsonl]
    badLines: ignore
  algorithm:
    filter: {lower: 0.9, upper: 0.1}
  rollout:
    backend: hf
    temperature: -1
"""


def test_multi_document_file(tmp_path: Path) -> None:
    file = tmp_path / "jobs.yaml"
    file.write_text(GOOD.format(name="a") + "---\n" + GOOD.format(name="b"))
    assert [j.metadata.name for j in load_rljobs(file)] == ["a", "b"]
    with pytest.raises(RLJobError, match="expected 1 RLJob, found 2"):
        load_rljob(file)


def test_one_error_per_mistake_with_line_and_path(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(MISTAKES)
    with pytest.raises(RLJobError) as err:
        load_rljobs(file)
    found = {(p.path, p.line) for p in err.value.problems}
    assert found == {
        ("metadata.name", 4),
        ("spec.model.famly", 8),
        ("spec.data.badLines", 11),
        ("spec.algorithm.filter.lower", 13),
        ("spec.rollout.temperature", 16),
    }
    text = str(err.value)
    assert f"{file}:8: document 1: spec.model.famly: unknown field" in text
    assert all(p.file == str(file) and p.document == 1 for p in err.value.problems)


def test_errors_name_the_document(tmp_path: Path) -> None:
    text = GOOD.format(name="ok") + "---\n" + GOOD.format(name="x").replace("hf", "tgi")
    with pytest.raises(RLJobError) as err:
        parse_rljobs(text, "jobs.yaml")
    (problem,) = err.value.problems
    assert (problem.document, problem.path, problem.line) == (2, "spec.rollout.backend", 17)
    assert "'tgi'" in problem.message


def test_yaml_syntax_error_has_file_and_line() -> None:
    with pytest.raises(RLJobError) as err:
        parse_rljobs("apiVersion: x\nspec:\n  model: [unclosed\n  data: 1\n", "broken.yaml")
    (problem,) = err.value.problems
    assert problem.file == "broken.yaml" and problem.line == 4
    assert str(problem).startswith("broken.yaml:4: document 1: YAML syntax")


def test_non_mapping_and_missing_fields() -> None:
    with pytest.raises(RLJobError, match="expected a mapping, found list"):
        parse_rljobs("- a\n- b\n", "list.yaml")
    with pytest.raises(RLJobError) as err:
        parse_rljobs(
            "apiVersion: eureka.dev/v1alpha1\nkind: RLJob\nmetadata: {name: a}\nspec: {}\n"
        )
    assert {p.path for p in err.value.problems} == {"spec.model", "spec.data"}
    assert all(p.message == "required field is missing" for p in err.value.problems)


def test_wrong_kind_and_version_are_errors() -> None:
    text = GOOD.format(name="a").replace("kind: RLJob", "kind: RayJob").replace("v1alpha1", "v1")
    with pytest.raises(RLJobError) as err:
        parse_rljobs(text)
    assert {p.path for p in err.value.problems} == {"apiVersion", "kind"}


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(RLJobError, match="cannot read"):
        load_rljobs(tmp_path / "missing.yaml")
