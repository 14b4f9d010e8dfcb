"""What `eureka validate` (and so `eureka run`, the operator and the service) refuses up front.

Each case passed validation before and failed later, or behaved differently under kubectl.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from eureka_trainer.config import RLJob, RLJobError, parse_rljobs
from eureka_trainer.config.loader import MAX_NODES, expanded_size
from eureka_trainer.config.quantity import QUANTITY_PATTERN
from eureka_trainer.rewards.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[3]
HEAD = "apiVersion: eureka.dev/v1alpha1\nkind: RLJob\nmetadata: {name: a}\nspec:\n"
BASE = "  model: {name: m}\n  data: {trainFiles: [t.jsonl]}\n  rollout: {backend: hf}\n"


def problems(body: str) -> list[str]:
    with pytest.raises(RLJobError) as err:
        parse_rljobs(HEAD + BASE + body, "job.yaml")
    return [str(p) for p in err.value.problems]


def test_unknown_reward_name_is_refused_with_its_field() -> None:
    (line,) = problems("  rewards:\n    components:\n      - {name: acuracy}\n")
    assert line.startswith("job.yaml:10: document 1: spec.rewards.components.0.name: ")
    assert "unknown reward 'acuracy'" in line and "accuracy" in line


def test_every_registered_reward_and_module_function_names_pass() -> None:
    names = [*sorted(REGISTRY), "my_rewards.scores:length_bonus"]
    components = "".join(f"      - {{name: '{n}'}}\n" for n in names)
    (job,) = parse_rljobs(HEAD + BASE + "  rewards:\n    components:\n" + components)
    assert [c.name for c in job.spec.rewards.components] == names


@pytest.mark.parametrize(
    ("field", "value", "line"),
    [("cpu", "two", 9), ("memory", "lots", 9), ("memory", "32GB", 9), ("cpu", "-1", 9)],
)
def test_non_quantities_are_refused(field: str, value: str, line: int) -> None:
    (text,) = problems(f"  resources:\n    head: {{{field}: '{value}'}}\n")
    assert text.startswith(f"job.yaml:{line}: document 1: spec.resources.head.{field}: ")
    assert f"{value!r} is not a Kubernetes quantity" in text


@pytest.mark.parametrize("value", ["4", "500m", "1.5", "32Gi", "512Mi", "1e3", "2k", ".5", "+1"])
def test_kubernetes_quantities_pass(value: str) -> None:
    (job,) = parse_rljobs(HEAD + BASE + f"  resources:\n    head: {{cpu: '{value}'}}\n")
    assert job.spec.resources.head.cpu == value


def test_the_crd_carries_the_same_quantity_pattern() -> None:
    # kubectl apply must refuse what validate refuses: the pattern is in the generated schema.
    crd = (ROOT / "manifests/crd/eureka.dev_rljobs.yaml").read_text()
    assert crd.count(f"pattern: {QUANTITY_PATTERN}") >= 2
    # The API server compiles CRD patterns with Go's RE2: no look-arounds or back-references.
    assert not re.search(r"\(\?[=!<]|\\[1-9]", QUANTITY_PATTERN)


def test_snake_case_fields_are_refused_as_kubectl_would() -> None:
    (line,) = problems("  algorithm: {learning_rate: 1.0e-6}\n")
    assert line.startswith("job.yaml:8: document 1: spec.algorithm.learning_rate: unknown field")
    assert "'learningRate'" in line


def test_python_callers_still_use_snake_case_names() -> None:
    from eureka_trainer.config import AlgorithmSpec

    assert AlgorithmSpec(learning_rate=1e-6).learning_rate == 1e-6
    (job,) = parse_rljobs(HEAD + BASE + "  algorithm: {learningRate: 1.0e-6}\n")
    assert RLJob.model_validate(job.model_dump(by_alias=True)).spec.algorithm.learning_rate == 1e-6


def laughs(levels: int) -> str:
    """A "billion laughs" RLJob: 10**levels strings from a few hundred bytes of aliases."""
    anchors = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    anchors += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    options = ", ".join(anchors)
    return (
        HEAD + BASE + f"  rewards: {{components: [{{name: accuracy, options: {{{options}}}}}]}}\n"
    )


def test_alias_bombs_are_refused_at_once() -> None:
    text = laughs(9)  # 10**9 values once expanded; was seconds and hundreds of MB per request
    assert len(text) < 2048
    start = time.perf_counter()
    (line,) = problems(text[len(HEAD + BASE) :])
    assert time.perf_counter() - start < 0.5
    assert f"expands to more than {MAX_NODES} values through aliases" in line


def test_aliases_within_the_bound_still_work() -> None:
    (job,) = parse_rljobs(laughs(3))  # 1110 values
    assert len(job.spec.rewards.components[0].options["a2"]) == 10


def test_expanded_size_counts_shared_nodes_once_per_use() -> None:
    node = yaml.compose("a: &x [1, 2]\nb: [*x, *x]\n")
    # root + (a, [1, 2]) + (b, [ [1,2], [1,2] ]): 1 + (1 + 3) + (1 + 1 + 3 + 3)
    assert expanded_size(node) == 13
