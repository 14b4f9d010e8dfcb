# mypy: ignore-errors
"""`InternVLChatConfig` (model_type `internvl_chat`): InternViT + MLP projector + an LLM."""

from __future__ import annotations

import copy
from typing import Any

from transformers import PretrainedConfig, Qwen2Config

from .configuration_intern_vit import InternVisionConfig
from .configuration_internlm2 import InternLM2Config

LLM_CONFIGS = {"InternLM2ForCausalLM": InternLM2Config, "Qwen2ForCausalLM": Qwen2Config}
"""Language models by `llm_config.architectures[0]`: InternVL2.5-8B's InternLM2, and the
Qwen2.5 of other sizes (38B, MM-EUREKA's Zero model)."""


class InternVLChatConfig(PretrainedConfig):
    model_type = "internvl_chat"

    def __init__(
        self,
        vision_config: dict[str, Any] | None = None,
        llm_config: dict[str, Any] | None = None,
        select_layer: int = -1,
        force_image_size: int | None = None,
        downsample_ratio: float = 0.5,
        template: str | None = None,
        dynamic_image_size: bool = False,
        use_thumbnail: bool = False,
        ps_version: str = "v1",
        min_dynamic_patch: int = 1,
        max_dynamic_patch: int = 6,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        llm = dict(llm_config or {"architectures": ["InternLM2ForCausalLM"]})
        architecture = (llm.get("architectures") or [""])[0]
        if architecture not in LLM_CONFIGS:
            raise ValueError(
                f"llm_config.architectures: one of {sorted(LLM_CONFIGS)}, got {architecture!r}"
            )
        self.vision_config = InternVisionConfig(**(vision_config or {}))
        self.llm_config = LLM_CONFIGS[architecture](**llm)
        self.select_layer = select_layer
        self.force_image_size = force_image_size
        self.downsample_ratio = downsample_ratio
        self.template = template
        self.dynamic_image_size = dynamic_image_size
        self.use_thumbnail = use_thumbnail
        self.ps_version = ps_version
        self.min_dynamic_patch = min_dynamic_patch
        self.max_dynamic_patch = max_dynamic_patch
        self.hidden_size = self.llm_config.hidden_size
        self.tie_word_embeddings = False  # the chat model never ties them (nor does this one)
        self.llm_config.tie_word_embeddings = False

    def to_dict(self) -> dict[str, Any]:
        """The sub-configs as plain dicts (what `config.json` holds)."""
        out = copy.deepcopy(
            {k: v for k, v in super().to_dict().items() if k not in ("vision_config", "llm_config")}
        )
        out["vision_config"] = self.vision_config.to_dict()
        out["llm_config"] = self.llm_config.to_dict()
        out["model_type"] = self.model_type
        return out
