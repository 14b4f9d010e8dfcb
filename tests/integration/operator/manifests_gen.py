"""Regenerate manifests/operator and manifests/rbac from the chart and the builder.

    PATH=.tools/bin:$PATH .venv/bin/python -m tests.integration.operator.manifests_gen

The checked-in manifests are for `kubectl apply` users; test_chart.py fails when they drift.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from eureka_operator.builder import Names, build_role, build_role_binding, build_service_account
from eureka_trainer.config import RLJob

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "eureka"
HEADER = "# Generated from charts/eureka (helm template) by tests/integration/operator/manifests_gen.py.\n"
TRAINER_HEADER = (
    "# What the operator creates for each RLJob (here one named `example` in namespace `default`):\n"
    "# the trainer may read its own RLJob and patch its status, nothing else.\n"
    "# Generated from eureka_operator.builder by tests/integration/operator/manifests_gen.py.\n"
)
NAMESPACE = "eureka-system"


def helm() -> str:
    found = shutil.which("helm") or str(REPO / ".tools" / "bin" / "helm")
    if not Path(found).exists():
        raise RuntimeError("helm not found: run `make .tools/bin/helm`")
    return found


def helm_template(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [helm(), "template", "eureka", str(CHART), "--namespace", NAMESPACE, *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def dump(docs: list[dict[str, Any]], header: str) -> str:
    return header + yaml.safe_dump_all(docs, sort_keys=False, explicit_start=True)


def expected_files() -> dict[Path, str]:
    docs = helm_template()
    rbac_kinds = {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    operator = [namespace] + [d for d in docs if d["kind"] not in rbac_kinds]
    rbac = [d for d in docs if d["kind"] in rbac_kinds]
    job = RLJob.model_validate(
        {
            "metadata": {"name": "example", "namespace": "default"},
            "spec": {
                "model": {"name": "m"},
                "data": {"trainFiles": ["t.jsonl"]},
                "rollout": {"backend": "hf"},
            },
        }
    )
    names = Names("example")
    trainer = [
        f(job, "default", names) for f in (build_service_account, build_role, build_role_binding)
    ]
    return {
        REPO / "manifests" / "operator" / "operator.yaml": dump(operator, HEADER),
        REPO / "manifests" / "rbac" / "operator-rbac.yaml": dump(rbac, HEADER),
        REPO / "manifests" / "rbac" / "trainer-role.yaml": dump(trainer, TRAINER_HEADER),
    }


def main() -> int:
    for path, text in expected_files().items():
        path.write_text(text)
        print(f"wrote {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
