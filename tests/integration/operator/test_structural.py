"""The emulator's fast schema check (structural.py) against jsonschema, the reference it stands in for.

It may only say "valid" where jsonschema does (else the emulator would accept what a real API
server refuses), and it must say so for the objects the operator creates (else it saves nothing).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from eureka_operator.builder import build_objects
from eureka_operator.crd import build_crd
from eureka_trainer.config import validate_rljob
from tests.integration.operator.emulator import crd_schema, kuberay_crd
from tests.integration.operator.structural import compile_check

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
EXAMPLES = Path(__file__).resolve().parents[3] / "manifests" / "examples"
# Values of every JSON type, and edge values of the keywords (bounds, patterns, enums).
WRONG: list[Any] = [None, "", -1, 2**40, 1.5, True, [1], {"x": 1}]


def examples() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(RLJob, RayJob) of every example manifest."""
    pairs = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        doc["metadata"]["namespace"] = "team-a"
        job = validate_rljob(doc, file=str(path))
        pairs.append((doc, build_objects(job, namespace="team-a", uid="u-1")[-1]))
    return pairs


def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield from paths(value, (*prefix, key))
    elif isinstance(obj, list):
        for index, value in enumerate(obj):
            yield from paths(value, (*prefix, index))


def mutations(obj: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The object with one node deleted, or replaced by a value of another type."""
    for path in list(paths(obj))[1:]:
        *parent_path, last = path
        for value in [*WRONG, DELETE]:
            mutated = copy.deepcopy(obj)
            parent = mutated
            for step in parent_path:
                parent = parent[step]
            if value is DELETE:
                del parent[last]
            else:
                parent[last] = value
            yield mutated


DELETE = object()


@pytest.mark.parametrize("kind", ["RLJob", "RayJob"])
def test_fast_check_agrees_with_jsonschema_on_valid_and_mutated_objects(kind: str) -> None:
    schema = (
        crd_schema(build_crd(), "v1alpha1")
        if kind == "RLJob"
        else crd_schema(kuberay_crd("ray.io_rayjobs.yaml"), "v1")
    )
    check, reference = compile_check(schema), jsonschema.Draft4Validator(schema)
    objects = [rljob if kind == "RLJob" else rayjob for rljob, rayjob in examples()]
    for obj in objects:
        assert reference.is_valid(obj) and check(obj), "a valid object must take the fast path"
    # One example in full (every node of it), the others' first nodes: a few thousand objects.
    # (`pytest -s` shows the counts.)
    tried = refused = 0
    for index, obj in enumerate(objects):
        for mutated in mutations(obj) if index == 0 else list(mutations(obj))[:200]:
            valid = reference.is_valid(mutated)
            assert check(mutated) == valid, f"fast check disagrees with jsonschema on {mutated}"
            tried, refused = tried + 1, refused + (not valid)
    print(f"{kind}: {tried} mutated objects, {refused} of them invalid")
    assert tried > 500 and refused > 100  # the mutations did reach the schema's rules


def test_unknown_keywords_are_left_to_jsonschema() -> None:
    # "not" and "$ref" are not implemented: never "surely valid", whatever the instance.
    assert not compile_check({"not": {"type": "string"}})(1)
    assert not compile_check({"properties": {"a": {"$ref": "#/x"}}})({"a": 1})
    assert compile_check({"properties": {"a": {"$ref": "#/x"}}})({"b": 1})  # not reached
    # Annotations that Draft 4 validation ignores stay ignored (formats: no format checker).
    assert compile_check({"type": "string", "format": "int32", "nullable": True})("abc")
