"""The GPU tier (`make test-gpu`): what a CPU cannot show, in minutes on one GPU.

Every test here is marked `gpu` and skips, with its reason, where CUDA is missing, and each
part skips on its own where Ray, DeepSpeed or vLLM cannot be imported. Figures (throughput,
peak memory) are printed and collected in tests/artifacts/gpu-figures.json.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
FIGURES = HERE.parent / "artifacts" / "gpu-figures.json"


def cuda_reason() -> str | None:
    """Why the GPU tier cannot run here, or None."""
    try:
        import torch
    except ImportError as error:
        return f"torch is not importable ({error})"
    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = cuda_reason()
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.gpu)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def require(module: str) -> Any:
    """`import module`, or skip the test saying it is missing (a broken install counts)."""
    try:
        return importlib.import_module(module)
    except Exception as error:
        pytest.skip(f"{module} is not importable here ({type(error).__name__}: {error})")


@pytest.fixture(scope="session")
def figures() -> Iterator[dict[str, Any]]:
    """Measured figures by test; printed and written to tests/artifacts/gpu-figures.json."""
    found: dict[str, Any] = {}
    yield found
    if found:
        FIGURES.parent.mkdir(parents=True, exist_ok=True)
        FIGURES.write_text(json.dumps(found, indent=2, sort_keys=True) + "\n")
        print(f"\nGPU figures ({FIGURES}):\n" + json.dumps(found, indent=2, sort_keys=True))


@pytest.fixture(scope="session")
def qwen_vocab_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A tiny Qwen2-VL with Qwen's real vocabulary size (the logits' cost), and its processor."""
    from tests.gpu.models import build_qwen_vocab_model

    folder = tmp_path_factory.mktemp("tiny-qwen2-vl-151936")
    return folder, build_qwen_vocab_model(folder)
