"""The family registry agrees with the spec, the data rules, the tiny builders and with
transformers' own model code."""

from __future__ import annotations

import inspect
import typing
from pathlib import Path
from typing import Any

import pytest
import transformers
import yaml

from eureka_trainer.config.spec import ModelFamily
from eureka_trainer.data.records import FAMILIES
from eureka_trainer.learner.torch_learner import freeze
from eureka_trainer.models.families import MODEL_FAMILIES, family_of_model_type, model_family
from eureka_trainer.models.tiny import TINY_BUILDERS

REPO = Path(__file__).resolve().parents[3]
VISION_FAMILIES = [f for f in MODEL_FAMILIES.names() if f != "text"]


def test_every_spec_family_has_model_data_and_tiny_entries() -> None:
    names = sorted(typing.get_args(ModelFamily))
    assert names == MODEL_FAMILIES.names() == sorted(FAMILIES) == TINY_BUILDERS.names()


@pytest.mark.parametrize("family", MODEL_FAMILIES.names())
def test_token_types_flag_follows_the_models_forward(family: str, tiny: Any) -> None:
    """`generate` rejects inputs the forward does not take (transformers'
    `GenerationMixin._validate_model_kwargs`): InternVL's forward has no `mm_token_type_ids`,
    the Qwen-VL forwards need it for their multimodal rope (`get_rope_index`)."""
    forward = inspect.signature(type(tiny(family).model).forward).parameters
    assert ("mm_token_type_ids" in forward) == model_family(family).token_types


@pytest.mark.parametrize("family", MODEL_FAMILIES.names())
def test_auto_class_and_model_type_load_the_tiny_model(family: str, tiny: Any) -> None:
    model = tiny(family).model
    auto = getattr(transformers, model_family(family).auto_class)
    assert type(model) in auto._model_mapping.values()
    assert family_of_model_type(model.config.model_type) == family


def test_remote_code_internvl_reads_as_internvl() -> None:
    # `internvl_chat` is the model_type in OpenGVLab/InternVL2_5-*'s config.json.
    assert family_of_model_type("internvl_chat") == "internvl"
    assert family_of_model_type("llama") == "text"


@pytest.mark.parametrize("family", VISION_FAMILIES)
def test_vision_prefixes_freeze_exactly_the_vision_side(family: str) -> None:
    """The prefixes a user writes are checkpoint names: transformers renames a hub checkpoint's
    `visual.*` (Qwen-VL) and `vision_tower.*` / `multi_modal_projector.*` (InternVL `-hf`,
    the `llava` rules) to `model.<prefix>` modules (transformers/conversion_mapping.py);
    `freeze` accepts both spellings."""
    from eureka_trainer.models.tiny import build_tiny

    model = build_tiny(family).model  # its own copy: freeze changes requires_grad
    assert freeze(model, model_family(family).vision_prefixes) > 0
    for name, param in model.named_parameters():
        language = name.startswith(("model.language_model.", "lm_head."))
        assert param.requires_grad == language, name


def test_remote_code_prefix_matches_nothing_in_the_native_layout(tiny: Any) -> None:
    # `vision_model.` is the remote-code InternVL chat model's name for its ViT.
    from eureka_trainer.models.tiny import build_tiny

    with pytest.raises(ValueError, match=r"'vision_model\.' matches no parameter"):
        freeze(build_tiny("internvl").model, ["vision_model."])


@pytest.mark.parametrize(
    "example", sorted(p.name for p in (REPO / "manifests/examples").glob("rljob*.yaml"))
)
def test_example_frozen_prefixes_exist_in_their_family(example: str) -> None:
    """Each prefix of an example matches parameters of its family's layout (`freeze` raises
    on a prefix that matches none)."""
    from eureka_trainer.models.tiny import build_tiny

    model = yaml.safe_load((REPO / "manifests/examples" / example).read_text())["spec"]["model"]
    built = build_tiny(model.get("family", "qwen2_5_vl")).model
    assert freeze(built, model.get("frozenPrefixes", [])) >= 0
