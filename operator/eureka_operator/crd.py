"""`eureka crd`: the RLJob CustomResourceDefinition, generated from the pydantic models.

The models in `eureka_trainer.config` are the single source of truth; this module turns their
JSON schema into a structural openAPIV3Schema (refs inlined, OpenAPI 3.0 dialect, descriptions
kept for `kubectl explain`). `manifests/crd/` and the chart's `crds/` hold generated copies; a
test fails when they drift (`make crd` regenerates them).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from eureka_trainer.config import (
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAMES,
    VERSION,
    RLJobSpec,
    RLJobStatus,
)

Schema = dict[str, Any]

# JSON-schema keys a structural CRD schema may carry (OpenAPI 3.0 subset used by Kubernetes).
_KEPT_KEYS = frozenset(
    {
        "type", "description", "properties", "required", "items", "additionalProperties",
        "enum", "default", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
        "minLength", "maxLength", "pattern", "minItems", "maxItems", "nullable", "format",
        "x-kubernetes-preserve-unknown-fields",
    }
)  # fmt: skip

PRINTER_COLUMNS: list[Schema] = [
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Step", "type": "integer", "jsonPath": ".status.progress.step"},
    {"name": "Accuracy", "type": "number", "jsonPath": ".status.metrics['reward/accuracy']"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def openapi_schema(model: type[Any]) -> Schema:
    """A structural OpenAPI v3 schema of a pydantic model (validation mode, camelCase)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return _convert(raw, raw.get("$defs", {}))


def _convert(node: Schema, defs: dict[str, Schema]) -> Schema:
    node = _resolve(node, defs)
    out: Schema = {}
    if "anyOf" in node:
        out = _convert_any_of(node, defs)
    elif "prefixItems" in node:  # a fixed-length tuple: an array of its (single) item type
        items = [_convert(item, defs) for item in node["prefixItems"]]
        out = {"type": "array", "items": items[0], "minItems": len(items), "maxItems": len(items)}
    if "const" in node:
        out["enum"] = [node["const"]]
        out.setdefault("type", _json_type(node["const"]))
    for key, value in node.items():
        if key not in _KEPT_KEYS or key in out or (key == "default" and value is None):
            continue  # a null default adds nothing: the field is simply unset
        if key == "properties":
            out[key] = {name: _convert(prop, defs) for name, prop in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs)
        elif key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out[key] = _convert(value, defs)
            # `false` (extra="forbid") is not allowed beside `properties`: the API server prunes.
        elif key == "description":
            out[key] = " ".join(value.split())  # docstrings wrap lines; kubectl explain re-wraps
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound], out[key] = value, True  # OpenAPI 3.0 spells exclusivity as a boolean
        else:
            out[key] = value
    if "type" not in out and "x-kubernetes-preserve-unknown-fields" not in out:
        out["x-kubernetes-preserve-unknown-fields"] = True  # `Any`: free-form value
    return out


def _resolve(node: Schema, defs: dict[str, Schema]) -> Schema:
    """Inline `$ref` (and pydantic's single-element `allOf` wrapper), keeping local keys."""
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**node["allOf"][0], **{k: v for k, v in node.items() if k != "allOf"}}
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        local = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **local}
    return node


def _convert_any_of(node: Schema, defs: dict[str, Schema]) -> Schema:
    options = [o for o in node["anyOf"] if o.get("type") != "null"]
    nullable = len(options) < len(node["anyOf"])
    if len(options) != 1:
        raise ValueError(f"cannot express a union in a structural schema: {node['anyOf']}")
    out = _convert(options[0], defs)
    if nullable:
        out["nullable"] = True
    return out


def _json_type(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string"}
    return names.get(type(value), "string")


def status_schema() -> Schema:
    """The status schema; `conditions` is a list map keyed by `type` (one entry per type, as
    Kubernetes' own conditions are declared), so server-side apply merges them by type."""
    schema = openapi_schema(RLJobStatus)
    conditions = schema["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    return schema


def build_crd() -> Schema:
    """The RLJob CustomResourceDefinition (apiextensions.k8s.io/v1)."""
    schema: Schema = {
        "type": "object",
        "description": "A reinforcement-learning job for a vision-language model (MM-EUREKA recipe).",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "API version."},
            "kind": {"type": "string", "description": "Kind."},
            "metadata": {"type": "object"},
            "spec": openapi_schema(RLJobSpec),
            "status": status_schema(),
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}", "labels": {"app.kubernetes.io/name": "eureka"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": SHORT_NAMES,
                "categories": ["all", "eureka"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def render_crd() -> str:
    """The CRD as the YAML text checked into `manifests/crd/` and the chart."""
    header = "# Generated by `eureka crd` from eureka_trainer.config; do not edit (make crd).\n"
    return header + yaml.dump(build_crd(), Dumper=_NoAliases, sort_keys=False, width=100)


class _NoAliases(yaml.SafeDumper):
    """Shared sub-schemas written out in full: no `&id001` anchors in a CRD a person reads."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json-schema", action="store_true", help="print the spec's JSON schema instead"
    )


def run(args: argparse.Namespace) -> int:
    if args.json_schema:
        import json

        json.dump(RLJobSpec.model_json_schema(by_alias=True), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_crd())
    return 0
