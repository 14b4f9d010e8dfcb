"""Loading a checkpoint of a supported family: the policy model, its tokenizer, its processor.

Shared by the learners, the rollout engines, the driver and `eureka eval`. `trust_remote_code`
is passed to every transformers `from_pretrained`; it is only ever True when the RLJob asks
for it (`model.trustRemoteCode`) and, on a cluster, the operator's administrator allowed it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from eureka_trainer.models.families import model_family

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

REMOTE_CODE_ONLY = {
    "internvl_chat": (
        "the original InternVL chat model (remote code: InternVLChatModel.forward takes "
        "image_flags and a model-side img_context_token_id) is not driven by the trainer; use a "
        "transformers-native checkpoint (an OpenGVLab `-hf` repo, model_type `internvl`)"
    ),
}
"""`model_type`s the trainer loads but cannot train, with why (an error says so up front)."""


def checkpoint_model_type(path: str | Path) -> str | None:
    """`model_type` of a local folder's `config.json` (None for a hub name or no config)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return None
    return str(json.loads(config.read_text(encoding="utf-8")).get("model_type", "")) or None


def check_supported(path: str | Path) -> None:
    """Raise `ValueError` for a checkpoint layout the trainer cannot train (see
    `REMOTE_CODE_ONLY`), before minutes go into loading it."""
    model_type = checkpoint_model_type(path)
    if model_type in REMOTE_CODE_ONLY:
        raise ValueError(
            f"model.name {path}: model_type {model_type!r}: {REMOTE_CODE_ONLY[model_type]}"
        )


def load_policy(
    path: str | Path, family: str, dtype: str = "float32", *, trust_remote_code: bool = False
) -> Any:
    """The HF model at `path` (a local folder), in `dtype`, in eval mode, computing a group's
    repeated image and prompt positions once (`shared_inputs`)."""
    import transformers

    from eureka_trainer.learner.shared_inputs import share_repeated_inputs

    check_supported(path)
    auto = getattr(transformers, model_family(family).auto_class)
    attn = "sdpa" if torch.cuda.is_available() else "eager"
    model = auto.from_pretrained(
        str(path),
        dtype=DTYPES[dtype],
        attn_implementation=attn,
        trust_remote_code=trust_remote_code,
    )
    model.eval()
    share_repeated_inputs(model, family)
    return model


def load_tokenizer(path: str | Path, *, trust_remote_code: bool = False) -> Any:
    """The tokenizer saved with the model."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)


def load_processor(path: str | Path, family: str, *, trust_remote_code: bool = False) -> Any:
    """The processor saved with the model (the tokenizer for the `text` family).

    Without torchvision (which every transformers video processor needs) the family's
    processor is assembled image-only from the saved tokenizer, image processor (PIL backend)
    and processor settings: see `eureka_trainer.models.processors`."""
    from transformers.utils.import_utils import is_torchvision_available

    spec = model_family(family)
    if spec.processor_class is None:
        return load_tokenizer(path, trust_remote_code=trust_remote_code)
    if trust_remote_code or is_torchvision_available():
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(  # type: ignore[no-untyped-call]
            str(path), trust_remote_code=trust_remote_code
        )
    return load_image_only_processor(path, spec.processor_class)


PROCESSOR_SETTINGS = ("image_seq_length",)
"""Keys of `processor_config.json` that a processor's `__init__` takes (InternVL's tokens per
tile); the sub-processors' own settings are in their files."""


def load_image_only_processor(path: str | Path, processor_class: str) -> Any:
    """`processor_class` built from the folder's tokenizer and image processor, no video."""
    import transformers
    from transformers import AutoImageProcessor

    from eureka_trainer.models.processors import build_image_only

    tokenizer = load_tokenizer(path)
    image_processor = AutoImageProcessor.from_pretrained(str(path))  # type: ignore[no-untyped-call]
    saved = Path(path) / "processor_config.json"
    settings = json.loads(saved.read_text(encoding="utf-8")) if saved.is_file() else {}
    kwargs = {k: settings[k] for k in PROCESSOR_SETTINGS if k in settings}
    template = Path(path) / "chat_template.jinja"
    chat_template = (
        template.read_text(encoding="utf-8") if template.is_file() else tokenizer.chat_template
    )
    return build_image_only(
        getattr(transformers, processor_class),
        image_processor,
        tokenizer,
        chat_template=chat_template,
        **kwargs,
    )
