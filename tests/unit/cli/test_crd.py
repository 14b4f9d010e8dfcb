"""The generated CRD: structural, in sync with the checked-in copies, and accepting the examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from eureka_operator.crd import build_crd, render_crd
from eureka_trainer.config import load_rljobs

ROOT = Path(__file__).resolve().parents[3]
COPIES = [
    ROOT / "manifests/crd/eureka.dev_rljobs.yaml",
    ROOT / "charts/eureka/crds/eureka.dev_rljobs.yaml",
]
EXAMPLES = sorted((ROOT / "manifests/examples").glob("*.yaml"))


def schema() -> dict[str, Any]:
    result: dict[str, Any] = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return result


@pytest.mark.parametrize("copy", COPIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_checked_in_copy_matches_generator(copy: Path) -> None:
    assert copy.read_text() == render_crd(), f"{copy} is stale: run `make crd`"


def walk(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found = [(path, node)]
    for name, child in node.get("properties", {}).items():
        found += walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        found += walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        found += walk(node["additionalProperties"], f"{path}{{}}")
    return found


def test_schema_is_structural() -> None:
    for path, node in walk(schema()):
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert not {"$ref", "anyOf", "allOf", "oneOf", "const", "title", "prefixItems"} & set(
            node
        ), path
        assert not ("properties" in node and "additionalProperties" in node), path
        for key in ("exclusiveMinimum", "exclusiveMaximum"):
            assert node.get(key) in (None, True), f"{path}: OpenAPI 3.0 wants a boolean {key}"


def test_every_spec_field_is_described_for_kubectl_explain() -> None:
    spec = schema()["properties"]["spec"]
    undescribed = [
        p for p, node in walk(spec, "spec") if p != "spec" and not node.get("description")
    ]
    # Items of lists/maps inherit their parent's description.
    assert [p for p in undescribed if not p.endswith(("[]", "{}"))] == []


def test_status_is_declared_with_subresource_and_columns() -> None:
    version = build_crd()["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    status = version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    assert {"phase", "conditions", "observedGeneration", "rayJobName", "progress", "curves"} <= set(
        status
    )
    assert status["phase"]["enum"] == [
        "Pending",
        "Initializing",
        "Running",
        "Succeeded",
        "Failed",
        "Suspended",
    ]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Phase",
        "Step",
        "Accuracy",
        "Age",
    ]
    names = build_crd()["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == ("RLJob", "rljobs", ["rlj"])


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_against_the_crd_schema(example: Path) -> None:
    load_rljobs(example)  # the pydantic models accept it
    validator = jsonschema.Draft4Validator(schema())  # OpenAPI 3.0 bounds follow draft 4
    for document in yaml.safe_load_all(example.read_text()):
        errors = [e.message for e in validator.iter_errors(document)]
        assert errors == [], f"{example.name}: {errors}"


def test_crd_schema_rejects_what_the_models_reject() -> None:
    validator = jsonschema.Draft4Validator(schema())
    bad = yaml.safe_load((ROOT / "manifests/examples/rljob-qwen.yaml").read_text())
    bad["spec"]["algorithm"]["filter"]["lower"] = 1.5
    bad["spec"]["rollout"]["backend"] = "tgi"
    bad["spec"]["rollout"]["topP"] = 0  # exclusive minimum
    errors = sorted(".".join(map(str, e.path)) for e in validator.iter_errors(bad))
    assert errors == ["spec.algorithm.filter.lower", "spec.rollout.backend", "spec.rollout.topP"]
    parsed = yaml.safe_load(render_crd())
    assert parsed == build_crd()


def test_reference_docs_match_generator() -> None:
    from eureka_operator.reference import render_reference

    page = (ROOT / "docs/rljob-reference.md").read_text()
    assert page == render_reference(), "docs/rljob-reference.md is stale: run `make crd`"
    assert "`spec.algorithm.filter.freezingFilterSteps`" in page


def test_chart_ships_kopf_peering_crds_identical_to_manifests() -> None:
    chart = ROOT / "charts/eureka/crds/kopf-peering-crds.yaml"
    assert chart.read_text() == (ROOT / "manifests/operator/kopf-peering-crds.yaml").read_text()
