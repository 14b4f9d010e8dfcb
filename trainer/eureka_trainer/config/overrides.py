"""`eureka run --set PATH=VALUE`: change fields of an RLJob file without editing it.

PATH is the field's YAML path in camelCase (`spec.algorithm.learningRate`; the leading `spec.`
may be left out), list items by index (`spec.rewards.components.0.weight`). VALUE is read as YAML,
so `2.0e-6`, `true`, `[a.jsonl, b.jsonl]` and `{name: format}` have their types (as in the
file, `1e-6` without a dot is a YAML string that the spec reads as a number). The result is
validated like the file itself, so a bad override is refused with the field named.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from eureka_trainer.config.loader import Problem, RLJob, RLJobError, _documents, validate_rljob

TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec")


def parse_override(text: str) -> tuple[list[str], Any]:
    """(`path` parts, value) of one `PATH=VALUE`; ValueError on a malformed one."""
    path, sep, raw = text.partition("=")
    parts = [p for p in path.strip().split(".")]
    if not sep or not path.strip() or any(not p for p in parts):
        raise ValueError(f"expected PATH=VALUE (e.g. spec.algorithm.maxSteps=10), got {text!r}")
    if parts[0] not in TOP_LEVEL:
        parts.insert(0, "spec")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: the value is not YAML: {err}") from None
    return parts, value


def apply_override(document: dict[str, Any], parts: Sequence[str], value: Any) -> None:
    """Set `value` at `parts` in `document` (in place), creating mappings along the way."""
    node: Any = document
    for depth, part in enumerate(parts[:-1]):
        child = _step(node, part, parts[: depth + 1])
        if child is None:
            child = {}
            node[part] = child
        node = child
    last = parts[-1]
    if isinstance(node, list):
        node[_index(node, last, parts)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ValueError(f"{'.'.join(parts[:-1])} is not a mapping or a list")


def _step(node: Any, part: str, where: Sequence[str]) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, where)]
    if isinstance(node, dict):
        return node.get(part)
    raise ValueError(f"{'.'.join(where[:-1])} is not a mapping or a list")


def _index(items: list[Any], part: str, where: Sequence[str]) -> int:
    if not part.isdigit() or int(part) >= len(items):
        raise ValueError(f"{'.'.join(where)}: no item {part} (the list has {len(items)})")
    return int(part)


def load_rljob_with(path: str | Path, overrides: Sequence[str]) -> tuple[RLJob, str]:
    """The single RLJob of `path` with `overrides` applied, and its YAML as it is run.

    Problems name the file (and the file's line for fields the file has) or `--set`.
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RLJobError([Problem(file, None, 0, "", f"cannot read: {err}")]) from err
    documents = _documents(text, file)
    if len(documents) != 1:
        raise RLJobError([Problem(file, None, 0, "", f"expected 1 RLJob, found {len(documents)}")])
    number, node, data = documents[0]
    data = copy.deepcopy(data)
    problems = []
    for override in overrides:
        try:
            parts, value = parse_override(override)
            if not isinstance(data, dict):
                raise ValueError("the document is not a mapping")
            apply_override(data, parts, value)
        except ValueError as err:
            problems.append(Problem("--set", None, number, "", str(err)))
    if problems:
        raise RLJobError(problems)
    job = validate_rljob(data, file=file, document=number, node=node)
    return job, yaml.safe_dump(data, sort_keys=False)
