"""Reading RLJob YAML: every problem named by file, line, document and field path.

`load_rljobs(path)` returns the RLJobs of a (multi-document) YAML file or raises `RLJobError`
listing every problem found, so a file with several mistakes gets one message per mistake.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from eureka_trainer.config.base import ApiModel
from eureka_trainer.config.spec import RLJobSpec
from eureka_trainer.config.status import RLJobStatus

EXIT_INVALID = 2
"""Exit status of every `eureka` subcommand given an invalid file or option (as argparse's usage
errors); 1 is left to work that ran and failed (a training run, an evaluation)."""
GROUP = "eureka.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "RLJob"
PLURAL = "rljobs"
SHORT_NAMES = ["rlj"]


class ObjectMeta(ApiModel):
    """Kubernetes object metadata (the fields a user writes; server-set fields pass through)."""

    model_config = ConfigDict(**{**ApiModel.model_config, "extra": "allow"})

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    """Job name: a DNS-1123 label (it names the RayJob and its pods)."""
    namespace: str | None = None
    """Namespace of the job."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Labels."""
    annotations: dict[str, str] = Field(default_factory=dict)
    """Annotations."""


class RLJob(ApiModel):
    """A reinforcement-learning job: one YAML runs locally (`eureka run`) or on a cluster."""

    api_version: Literal["eureka.dev/v1alpha1"] = "eureka.dev/v1alpha1"
    """API version."""
    kind: Literal["RLJob"] = "RLJob"
    """Kind."""
    metadata: ObjectMeta
    """Object metadata."""
    spec: RLJobSpec
    """Desired state."""
    status: RLJobStatus | None = None
    """Observed state."""


@dataclass(frozen=True)
class Problem:
    """One mistake in one document of one file."""

    file: str
    line: int | None
    document: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        field = f"{self.path}: " if self.path else ""
        return f"{where}: document {self.document}: {field}{self.message}"


class RLJobError(ValueError):
    """Raised with every problem of a file; `str()` lists one per line."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def load_rljobs(path: str | Path) -> list[RLJob]:
    """Every RLJob of a YAML file, or `RLJobError` naming file, line, document and field."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RLJobError([Problem(file, None, 0, "", f"cannot read: {err}")]) from err
    return parse_rljobs(text, file)


def load_rljob(path: str | Path) -> RLJob:
    """The single RLJob of a file (an error when it holds more or none)."""
    jobs = load_rljobs(path)
    if len(jobs) != 1:
        raise RLJobError([Problem(str(path), None, 0, "", f"expected 1 RLJob, found {len(jobs)}")])
    return jobs[0]


def parse_rljobs(text: str, file: str = "<string>") -> list[RLJob]:
    """Parse YAML text holding one or more RLJob documents."""
    jobs: list[RLJob] = []
    problems: list[Problem] = []
    for number, node, data in _documents(text, file):
        try:
            jobs.append(validate_rljob(data, file=file, document=number, node=node))
        except RLJobError as err:
            problems.extend(err.problems)
    if problems:
        raise RLJobError(problems)
    return jobs


def validate_rljob(
    data: Any, *, file: str = "<object>", document: int = 1, node: yaml.Node | None = None
) -> RLJob:
    """Validate one decoded document; `node` (its YAML node) lets errors carry line numbers."""
    if not isinstance(data, dict):
        line = node.start_mark.line + 1 if node is not None else None
        found = type(data).__name__
        raise RLJobError([Problem(file, line, document, "", f"expected a mapping, found {found}")])
    try:
        # by_name=False: YAML keys are the camelCase aliases only, as in the CRD. Otherwise
        # `learning_rate` passed here (populate_by_name serves Python callers) while
        # `kubectl apply` pruned or refused it: one file, two behaviours.
        return RLJob.model_validate(data, by_name=False)
    except ValidationError as err:
        raise RLJobError(
            [_problem(e, file, document, node) for e in err.errors(include_url=False)]
        ) from None


MAX_NODES = 100_000
"""Most YAML nodes one document may expand to, aliases followed (an RLJob has a few hundred)."""


class TooLarge(yaml.YAMLError):
    """A document that expands, through aliases, beyond `MAX_NODES` nodes."""

    def __init__(self, mark: yaml.Mark | None, nodes: int):
        super().__init__(f"the document expands to more than {nodes} values through aliases")
        self.problem = str(self)
        self.problem_mark = mark


def expanded_size(root: yaml.Node, limit: int = MAX_NODES) -> int:
    """Nodes of `root` with every alias expanded, counted in time linear in the distinct nodes.

    A "billion laughs" body (each level a list of aliases to the level below) composes to a few
    hundred shared nodes but is a tree of 10^9 once anything walks it (pydantic, the JSON
    encoder). Counted bottom-up with a memo, so the bound itself costs nothing; `TooLarge` past
    `limit`.
    """
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        items = node.value if isinstance(node, yaml.SequenceNode) else _flat(node)
        if not children_done:
            stack.append((node, True))
            stack.extend((child, False) for child in items if id(child) not in sizes)
            continue
        size = 1 + sum(sizes.get(id(child), 0) for child in items)
        if size > limit:
            raise TooLarge(node.start_mark, limit)
        sizes[id(node)] = size
    return sizes[id(root)]


def _flat(node: yaml.Node) -> list[yaml.Node]:
    return [part for pair in node.value for part in pair] if isinstance(node.value, list) else []


def _documents(text: str, file: str) -> list[tuple[int, yaml.Node, Any]]:
    loader = yaml.SafeLoader(text)
    docs: list[tuple[int, yaml.Node, Any]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            expanded_size(node)
            data = loader.construct_document(node)
            if data is not None:
                docs.append((len(docs) + 1, node, data))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(err, "problem", None) or str(err)
        raise RLJobError(
            [Problem(file, line, len(docs) + 1, "", f"YAML syntax: {reason}")]
        ) from None
    finally:
        loader.dispose()
    return docs


def _problem(error: Any, file: str, document: int, node: yaml.Node | None) -> Problem:
    loc = [str(part) for part in error["loc"]]
    message = str(error["msg"])
    if error["type"] == "field":
        ctx = error.get("ctx") or {}
        loc += str(ctx.get("path", "")).split(".")
        message = str(ctx.get("message", message))
    elif error["type"] == "extra_forbidden":
        message = "unknown field (check its spelling; fields are camelCase)"
        if loc and "_" in loc[-1]:
            message = (
                f"unknown field; write {to_camel(loc[-1])!r} (fields are camelCase, as in the CRD)"
            )
    elif error["type"] == "missing":
        message = "required field is missing"
    elif error["type"].startswith("literal_error"):
        message = f"{message} (got {error.get('input')!r})"
    loc = [part for part in loc if part]
    return Problem(file, _line_of(node, loc), document, ".".join(loc), message)


def _line_of(node: yaml.Node | None, loc: list[str]) -> int | None:
    """Line of the deepest YAML node along `loc` (the parent's when the key is missing)."""
    if node is None:
        return None
    line = node.start_mark.line + 1
    for part in loc:
        child = _child(node, part)
        if child is None:
            break
        key_node, node = child
        line = key_node.start_mark.line + 1
    return line


def _child(node: yaml.Node, part: str) -> tuple[yaml.Node, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if getattr(key, "value", None) == part:
                return key, value
    if isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
        item = node.value[int(part)]
        return item, item
    return None
