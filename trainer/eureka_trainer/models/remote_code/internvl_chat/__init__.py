"""A small re-implementation of the *interface* of OpenGVLab's remote-code InternVL2.5 chat
model (hub repositories `OpenGVLab/InternVL2_5-*`), written for Eureka's tests and
`eureka tiny-model --family internvl --layout remote-code`. No code of theirs.

What matches the original (read from github.com/OpenGVLab/InternVL,
`internvl_chat/internvl/model/internvl_chat/*.py` and `model/internlm2/*.py`):

- file and class names, and `config.json`'s `auto_map`: `configuration_internvl_chat.
  InternVLChatConfig` (model_type `internvl_chat`, `vision_config`, `llm_config`,
  `force_image_size`, `downsample_ratio`, `ps_version`, `select_layer`, `template`,
  `dynamic_image_size`, `use_thumbnail`, `min_dynamic_patch`, `max_dynamic_patch`),
  `modeling_internvl_chat.InternVLChatModel` for AutoModel and AutoModelForCausalLM;
- `InternVLChatModel.forward(pixel_values, input_ids, attention_mask, position_ids,
  image_flags, past_key_values, labels, use_cache, output_attentions, output_hidden_states,
  return_dict)`: no `logits_to_keep`, no `**kwargs`; `image_flags` [tiles, 1] selects the
  tiles whose features are used; the features replace the embeddings of the tokens equal to
  the model attribute `img_context_token_id` (None until the caller sets it);
- `generate(pixel_values, input_ids, attention_mask, visual_features, generation_config,
  output_hidden_states, **generate_kwargs)`: embeds, then the language model's `generate`
  on `inputs_embeds` (the result holds the new tokens only);
- parameter names: `vision_model.embeddings.{class_embedding,position_embedding,
  patch_embedding}`, `vision_model.encoder.layers.N.{attn.qkv,attn.proj,mlp.fc1,mlp.fc2,
  norm1,norm2,ls1,ls2}`, `mlp1.{0,1,3}`, `language_model.model.tok_embeddings`,
  `language_model.model.layers.N.{attention.wqkv,attention.wo,feed_forward.w1,w2,w3,
  attention_norm,ffn_norm}`, `language_model.model.norm`, `language_model.output`;
  InternLM2's fused `wqkv` rows grouped per key/value head as [queries of the group, key,
  value];
- pixel shuffle (`ps_version` v2) of the ViT's patch features (class token dropped), then
  `mlp1` (LayerNorm, Linear, GELU, Linear);
- the language model chosen by `llm_config.architectures[0]`: `InternLM2ForCausalLM`
  (InternVL2.5-8B) or transformers' `Qwen2ForCausalLM` (the Qwen2.5-based sizes, e.g. 38B).

Where it differs, on purpose: the InternLM2 model inherits `GenerationMixin` and uses
transformers' `DynamicCache` (the original's relies on `PreTrainedModel` being a
`GenerationMixin` and on tuple caches, neither true in transformers 5); no flash-attention,
LoRA, `chat()` helpers or dynamic-NTK rope; a mismatch between image tokens and image
features raises instead of zeroing the loss.
"""
