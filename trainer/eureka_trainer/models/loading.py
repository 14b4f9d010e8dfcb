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

from eureka_trainer.models.families import LAYOUTS, ModelFamily, layout_of, model_family

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def model_file(path: str | Path, name: str) -> Path | None:
    """File `name` of the checkpoint `path`: in the local folder, or for a hub id (what
    `model.name` usually is on a cluster) the hub's copy, fetched into the local cache as
    `from_pretrained` would fetch it; None when there is none (or the hub cannot be reached:
    loading then fails with transformers' own error)."""
    if Path(path).is_dir():
        local = Path(path) / name
        return local if local.is_file() else None
    from transformers.utils.hub import cached_file

    try:
        found = cached_file(str(path), name, _raise_exceptions_for_missing_entries=False)
    except (OSError, ValueError):
        return None
    return Path(found) if found else None


def checkpoint_config(path: str | Path) -> dict[str, Any]:
    """The checkpoint's `config.json` (empty when there is none)."""
    config = model_file(path, "config.json")
    if config is None:
        return {}
    loaded = json.loads(config.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}


def checkpoint_model_type(path: str | Path) -> str | None:
    """`model_type` of the checkpoint's `config.json` (None without one)."""
    return str(checkpoint_config(path).get("model_type", "")) or None


def local_checkpoint(path: str | Path) -> Path:
    """The checkpoint as a local folder: itself, or a hub id's snapshot in the local cache."""
    if Path(path).is_dir():
        return Path(path)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(str(path)))


def checkpoint_layout(path: str | Path, family: str) -> ModelFamily:
    """How the checkpoint at `path` is driven: a remote-code layout of `family` (`LAYOUTS`,
    by its `config.json` `model_type`) or the family's transformers-native one."""
    return layout_of(family, checkpoint_model_type(path))


RUN_OPTS_IN = (
    "model.name",
    "set model.trustRemoteCode: true to run them (on a cluster the operator must allow remote "
    "code)",
)
"""How a run names its checkpoint and opts in to remote code (`check_supported`'s default)."""


def check_supported(
    path: str | Path,
    family: str,
    *,
    trust_remote_code: bool,
    opts_in: tuple[str, str] = RUN_OPTS_IN,
) -> ModelFamily:
    """The checkpoint's layout; `ValueError` when its classes come with the checkpoint and the
    caller did not opt in (before minutes go into loading). `opts_in`: (what names the
    checkpoint, how to opt in) for the message: a run's `model.trustRemoteCode` by default."""
    layout = checkpoint_layout(path, family)
    if layout.remote_code and not trust_remote_code:
        field, how = opts_in
        raise ValueError(
            f"{field} {path}: model_type {layout.model_types[0]!r} is {family}'s remote-code "
            f"layout (its model classes are Python files in the checkpoint); {how}, or use a "
            "transformers-native checkpoint"
        )
    return layout


def load_policy(
    path: str | Path, family: str, dtype: str = "float32", *, trust_remote_code: bool = False
) -> Any:
    """The HF model at `path` (a local folder), in `dtype`, in eval mode, computing a group's
    repeated image and prompt positions once (`shared_inputs`)."""
    import transformers

    from eureka_trainer.learner.shared_inputs import share_repeated_inputs

    layout = check_supported(path, family, trust_remote_code=trust_remote_code)
    auto = getattr(transformers, layout.auto_class)
    if layout.remote_code:
        model = load_remote_code(path, auto, dtype)
    else:
        attn = "sdpa" if torch.cuda.is_available() else "eager"
        model = auto.from_pretrained(
            str(path),
            dtype=DTYPES[dtype],
            attn_implementation=attn,
            trust_remote_code=trust_remote_code,
        )
    model.eval()
    if layout.layout in ADAPTERS:
        ADAPTERS[layout.layout](model, load_tokenizer(path, trust_remote_code=trust_remote_code))
    share_repeated_inputs(model, family)
    return model


def load_remote_code(path: str | Path, auto: Any, dtype: str) -> Any:
    """A remote-code checkpoint, built by its own `__init__` and then filled from its
    safetensors files (one file at a time).

    Not `from_pretrained`: transformers 5 builds the model on the meta device and only
    initialises what the checkpoint lacks through `_init_weights`, so a buffer that older
    remote code computes in `__init__` and does not save (InternLM2's rotary `inv_freq` and
    `cos_cached`, `persistent=False`) comes back as uninitialised memory and the forward
    returns NaN (seen with OpenGVLab's InternVL2.5 code under transformers 5.23). Every
    checkpoint tensor must match a model tensor and every saved model tensor must be loaded.
    """
    from safetensors.torch import load_file
    from transformers import AutoConfig
    from transformers.initialization import no_init_weights

    path = local_checkpoint(path)
    config = AutoConfig.from_pretrained(str(path), trust_remote_code=True)
    with no_init_weights():
        model = auto.from_config(config, trust_remote_code=True, dtype=DTYPES[dtype])
    model.tie_weights()  # as from_pretrained does: a tied head is saved once
    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        raise ValueError(f"model.name {path}: no *.safetensors weights in the folder")
    expected = set(model.state_dict())
    loaded: set[str] = set()
    for file in files:
        result = model.load_state_dict(load_file(str(file)), strict=False)
        if result.unexpected_keys:
            raise ValueError(
                f"{file}: tensors the model does not have: {sorted(result.unexpected_keys)[:5]}"
            )
        loaded |= expected - set(result.missing_keys)
    # A tied tensor (an LM head sharing the embeddings) is saved once, under one name.
    storage = {name: t.data_ptr() for name, t in model.state_dict().items()}
    filled = {storage[name] for name in loaded}
    missing = sorted(name for name in expected - loaded if storage[name] not in filled)
    if missing:
        raise ValueError(f"model.name {path}: weights missing: {missing[:5]}")
    bad = [name for name, buffer in model.named_buffers() if not torch.isfinite(buffer).all()]
    if bad:
        raise ValueError(f"model.name {path}: buffers not finite after loading: {bad[:5]}")
    return model


def _adapt_internvl_chat(model: Any, tokenizer: Any) -> None:
    from eureka_trainer.models.internvl_chat import adapt_chat_model

    adapt_chat_model(model, tokenizer)


ADAPTERS = {"internvl_chat": _adapt_internvl_chat}
"""Remote-code layouts whose model is adapted to the trainer's calling convention on load."""


def load_tokenizer(path: str | Path, *, trust_remote_code: bool = False) -> Any:
    """The tokenizer saved with the model. A remote-code layout whose turns end with another
    token than the tokenizer's EOS (InternVL2.5: `<|im_end|>`, InternLM2's EOS is `</s>`)
    gets that token as EOS, so that sampling stops at the end of the answer."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    model_type = checkpoint_model_type(path)
    stop = LAYOUTS.get(model_type).stop_token if model_type and model_type in LAYOUTS else None
    if stop and stop in tokenizer.get_vocab():
        tokenizer.eos_token = stop
    return tokenizer


def load_processor(path: str | Path, family: str, *, trust_remote_code: bool = False) -> Any:
    """The processor saved with the model (the tokenizer for the `text` family).

    Without torchvision (which every transformers video processor needs) the family's
    processor is assembled image-only from the saved tokenizer, image processor (PIL backend)
    and processor settings: see `eureka_trainer.models.processors`."""
    from transformers.utils.import_utils import is_torchvision_available

    spec = model_family(family)
    layout = check_supported(path, family, trust_remote_code=trust_remote_code)
    if layout.layout in PROCESSORS:
        return PROCESSORS[layout.layout](path, trust_remote_code)
    if spec.processor_class is None:
        return load_tokenizer(path, trust_remote_code=trust_remote_code)
    if trust_remote_code or is_torchvision_available():
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(  # type: ignore[no-untyped-call]
            str(path), trust_remote_code=trust_remote_code
        )
    return load_image_only_processor(path, spec.processor_class)


def _internvl_chat_processor(path: str | Path, trust_remote_code: bool) -> Any:
    from eureka_trainer.models.internvl_chat import InternVLChatProcessor

    tokenizer = load_tokenizer(path, trust_remote_code=trust_remote_code)
    return InternVLChatProcessor.from_config(checkpoint_config(path), tokenizer)


PROCESSORS = {"internvl_chat": _internvl_chat_processor}
"""Remote-code layouts that ship no processor: the trainer's own (from `config.json`)."""

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
