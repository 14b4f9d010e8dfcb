# mypy: ignore-errors
"""`InternVLChatModel`: InternViT tiles -> pixel shuffle -> `mlp1` -> the embeddings of the
`<IMG_CONTEXT>` tokens of an InternLM2 language model. See the package docstring for which
parts of the original's interface this keeps."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel, Qwen2ForCausalLM
from transformers import initialization as init
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_internvl_chat import InternVLChatConfig
from .modeling_intern_vit import InternVisionModel
from .modeling_internlm2 import InternLM2ForCausalLM

LLMS = {"InternLM2ForCausalLM": InternLM2ForCausalLM, "Qwen2ForCausalLM": Qwen2ForCausalLM}


def pixel_shuffle(x: torch.Tensor, scale: float, version: str) -> torch.Tensor:
    """[n, w, h, c] -> [n, h*scale, w*scale, c/scale^2] (v2 swaps height and width back)."""
    n, w, h, c = x.shape
    x = x.reshape(n, w, int(h * scale), int(c / scale)).permute(0, 2, 1, 3)
    x = x.reshape(n, int(h * scale), int(w * scale), int(c / (scale * scale)))
    return x if version == "v1" else x.permute(0, 2, 1, 3)


class InternVLChatModel(PreTrainedModel):
    config_class = InternVLChatConfig
    main_input_name = "pixel_values"
    base_model_prefix = "language_model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["InternVisionEncoderLayer", "InternLM2DecoderLayer", "Qwen2DecoderLayer"]  # noqa: RUF012 (transformers reads it)

    def __init__(self, config: InternVLChatConfig) -> None:
        super().__init__(config)
        vision = config.vision_config
        image_size = config.force_image_size or vision.image_size
        self.select_layer = config.select_layer
        self.downsample_ratio = config.downsample_ratio
        self.ps_version = config.ps_version
        self.num_image_token = int(
            (image_size // vision.patch_size) ** 2 * self.downsample_ratio**2
        )
        self.vision_model = InternVisionModel(vision)
        self.language_model = LLMS[config.llm_config.architectures[0]](config.llm_config)
        merged = vision.hidden_size * int(1 / self.downsample_ratio) ** 2
        width = config.llm_config.hidden_size
        self.mlp1 = nn.Sequential(
            nn.LayerNorm(merged), nn.Linear(merged, width), nn.GELU(), nn.Linear(width, width)
        )
        self.img_context_token_id: int | None = None  # the caller sets it, as for the original
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def extract_feature(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """[tiles, 3, S, S] -> [tiles, num_image_token, llm width]."""
        out = self.vision_model(
            pixel_values=pixel_values, output_hidden_states=self.select_layer != -1
        )
        hidden = (
            out.last_hidden_state
            if self.select_layer == -1
            else out.hidden_states[self.select_layer]
        )
        hidden = hidden[:, 1:, :]  # the class token carries no place in the image
        side = int(hidden.shape[1] ** 0.5)
        hidden = hidden.reshape(hidden.shape[0], side, side, -1)
        hidden = pixel_shuffle(hidden, self.downsample_ratio, self.ps_version)
        return self.mlp1(hidden.reshape(hidden.shape[0], -1, hidden.shape[-1]))

    def _merge(self, input_ids: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Token embeddings with the image features written over the context tokens."""
        if self.img_context_token_id is None:
            raise ValueError("set model.img_context_token_id (the <IMG_CONTEXT> id) first")
        embeds = self.language_model.get_input_embeddings()(input_ids)
        selected = input_ids == self.img_context_token_id
        rows = features.reshape(-1, embeds.shape[-1])
        if int(selected.sum()) != rows.shape[0]:
            raise ValueError(
                f"{int(selected.sum())} image context tokens but {rows.shape[0]} image features"
            )
        return embeds.masked_scatter(selected[..., None], rows.to(embeds.dtype))

    def forward(
        self,
        pixel_values: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        image_flags: torch.Tensor | None = None,
        past_key_values: Any = None,
        labels: torch.Tensor | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> CausalLMOutputWithPast:
        if image_flags is None or input_ids is None:
            raise ValueError("InternVLChatModel.forward needs input_ids and image_flags")
        flags = image_flags.squeeze(-1)
        features = self.extract_feature(pixel_values)[flags == 1]
        return self.language_model(
            inputs_embeds=self._merge(input_ids, features),
            attention_mask=attention_mask,
            position_ids=position_ids,
            past_key_values=past_key_values,
            labels=labels,
            use_cache=use_cache,
        )

    @torch.no_grad()
    def generate(
        self,
        pixel_values: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        visual_features: torch.Tensor | None = None,
        generation_config: Any = None,
        output_hidden_states: bool | None = None,
        **generate_kwargs: Any,
    ) -> Any:
        """The language model's `generate` on the merged embeddings: new tokens only."""
        if input_ids is None:
            raise ValueError("InternVLChatModel.generate needs input_ids")
        if pixel_values is not None:
            features = (
                visual_features
                if visual_features is not None
                else self.extract_feature(pixel_values)
            )
            embeds = self._merge(input_ids, features)
        else:
            embeds = self.language_model.get_input_embeddings()(input_ids)
        return self.language_model.generate(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            generation_config=generation_config,
            output_hidden_states=output_hidden_states,
            use_cache=True,
            **generate_kwargs,
        )
