"""Import discipline: the algos import torch and the standard library only; the data package
imports neither torch nor transformers until an encoding or the tiny processor needs them."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import {module}
heavy = {heavy!r}
loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))
print(",".join(loaded))
"""


def loaded_after(module: str, heavy: list[str]) -> list[str]:
    code = CHECK.format(module=module, heavy=heavy)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [m for m in out.stdout.strip().split(",") if m]


def test_algos_import_no_ray_vllm_deepspeed_or_transformers():
    heavy = ["ray", "vllm", "deepspeed", "transformers", "pydantic"]
    assert loaded_after("eureka_trainer.algos", heavy) == []


def test_data_imports_nothing_heavy_until_needed():
    heavy = ["torch", "transformers", "ray", "vllm", "deepspeed", "PIL"]
    assert loaded_after("eureka_trainer.data", heavy) == []
