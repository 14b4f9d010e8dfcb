"""Models: the family registry, checkpoint loading (with `trust_remote_code` where a spec
opts in) and tiny random models of every family (`eureka tiny-model`).

Neutral ground between the learners, the rollout engines, the driver and evaluation: none of
them imports another to load a model.

- `families`: `MODEL_FAMILIES` (`ModelFamily`: auto class, processor class, `model_type`s,
  whether the forward takes `mm_token_type_ids`, the vision tower's checkpoint prefixes),
  `vision_token_ids(config)`.
- `loading`: `load_policy`, `load_tokenizer`, `load_processor` (image-only without
  torchvision), `DTYPES`.
- `tiny`: `build_tiny_model(family, folder)`, `build_tiny_processor()`.
- `cli`: `eureka tiny-model`.

torch and transformers are imported by `loading` and `tiny` only.
"""
