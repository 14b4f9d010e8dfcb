"""The job service stays light: no torch, Ray, transformers or DeepSpeed in its process."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "ray", "transformers", "deepspeed", "vllm")


def test_service_imports_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "import eureka_service.cli, eureka_service.app\n"
        "import eureka_service.kube, eureka_service.local\n"
        "import eureka_trainer.reporting.kube\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
