"""Models: the family registry, checkpoint loading (with `trust_remote_code` where a spec
opts in) and tiny random models of every family (`eureka tiny-model`).

Neutral ground between the learners, the rollout engines, the driver and evaluation: none of
them imports another to load a model.

- `families`: `MODEL_FAMILIES` (`ModelFamily`: auto class, processor class, `model_type`s,
  whether the forward takes `mm_token_type_ids`, the vision tower's checkpoint prefixes),
  `LAYOUTS` (remote-code checkpoint layouts of a family, by `model_type`: the original
  InternVL2.5 chat model), `vision_token_ids(config)`.
- `loading`: `load_policy`, `load_tokenizer`, `load_processor` (image-only without
  torchvision), `load_remote_code`, `DTYPES`.
- `internvl_chat`: the processor and the calling-convention adapter of the remote-code
  InternVL2.5 (`model_type: internvl_chat`).
- `tiny`: `build_tiny_model(family, folder, layout=...)`, `build_tiny_processor()`;
  `remote_code/`: the modeling files a `--layout remote-code` folder ships.
- `cli`: `eureka tiny-model`.

torch and transformers are imported by `loading` and `tiny` only.
"""
