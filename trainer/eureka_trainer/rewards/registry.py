"""Reward components by name: what each computes, its default weight per mode, its options.

Built-in names: `accuracy`, `format`, `repetition`. Any other name must be `module:function` of
an importable, installed module; the function is called as `function(response, answer, **options)`
and returns a float. Nothing written in a spec is ever executed: a name only selects code that
is already installed.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from eureka_trainer.config import RewardsSpec
from eureka_trainer.rewards.format import MIN_THINK_CHARS, format_reward
from eureka_trainer.rewards.repetition import repetition_penalty

LocalFn = Callable[..., float]  # (response, answer, mode, **options) -> float


class RewardConfigError(ValueError):
    """A reward component the spec names cannot be built; `path` is the spec field at fault."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass(frozen=True)
class Option:
    """One option a component accepts: its keyword argument, type and lower bound."""

    kwarg: str
    kind: type
    minimum: float

    def check(self, value: Any) -> Any:
        """The value converted to the option's type, or a ValueError saying why not."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, got {value!r}")
        if self.kind is int and value != int(value):
            raise ValueError(f"must be an integer, got {value!r}")
        if value < self.minimum:
            raise ValueError(f"must be >= {self.minimum:g}, got {value!r}")
        return self.kind(value)


@dataclass(frozen=True)
class RewardComponent:
    """A reward: how to compute it (None: the accuracy worker pool), its weights and options."""

    name: str
    local: LocalFn | None
    default_weights: Mapping[str, float] = field(default_factory=dict)
    options: Mapping[str, Option] = field(default_factory=dict)  # by camelCase spec key
    open_options: bool = False  # a `module:function` taking **kwargs accepts any option

    def default_weight(self, mode: str) -> float:
        return self.default_weights.get(mode, 1.0)


@dataclass(frozen=True)
class BoundReward:
    """A component with its weight and validated options, ready to score."""

    component: RewardComponent
    weight: float
    kwargs: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.component.name

    def __call__(self, response: str, answer: str, mode: str) -> float:
        assert self.component.local is not None, "accuracy is scored by the worker pool"
        return float(self.component.local(response, answer, mode, **self.kwargs))


def _format(response: str, answer: str, mode: str, **options: Any) -> float:
    return format_reward(response, mode, **options)


def _repetition(response: str, answer: str, mode: str, **options: Any) -> float:
    return repetition_penalty(response, **options)


REGISTRY: dict[str, RewardComponent] = {}


def register(component: RewardComponent) -> RewardComponent:
    """Add a built-in component (names are unique)."""
    if component.name in REGISTRY:
        raise ValueError(f"reward {component.name!r} is already registered")
    REGISTRY[component.name] = component
    return component


register(RewardComponent("accuracy", local=None, default_weights={"instruct": 1.0, "boxed": 1.0}))
register(
    RewardComponent(
        "format",
        local=_format,
        default_weights={"instruct": 0.5, "boxed": 1.0},
        options={"minThinkChars": Option("min_think_chars", int, 0)},
    )
)
register(
    RewardComponent(
        "repetition",
        local=_repetition,
        default_weights={"instruct": 1.0, "boxed": 1.0},
        options={
            "ngram": Option("ngram", int, 1),
            "maxPenalty": Option("max_penalty", float, 0),
            "minWords": Option("min_words", int, 1),
        },
    )
)
assert MIN_THINK_CHARS == 300  # REFERENCE.md: zero-model thinking under 300 characters scores 0


def resolve(name: str, path: str = "name") -> RewardComponent:
    """The component registered as `name`, or `module:function` imported from installed code."""
    if name in REGISTRY:
        return REGISTRY[name]
    module_name, sep, attr = name.partition(":")
    if not sep or not module_name or not attr:
        known = ", ".join(sorted(REGISTRY))
        raise RewardConfigError(
            path, f"unknown reward {name!r}; use one of {known} or module:function"
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise RewardConfigError(path, f"cannot import module {module_name!r}: {e}") from e
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise RewardConfigError(path, f"module {module_name!r} has no function {attr!r}")
    return _custom(name, fn)


def _custom(name: str, fn: Callable[..., Any]) -> RewardComponent:
    params = inspect.signature(fn).parameters.values()
    keywords = {
        p.name: Option(p.name, float, float("-inf"))
        for p in params
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }
    keywords = dict(list(keywords.items())[2:]) if len(keywords) >= 2 else {}
    open_options = any(p.kind is p.VAR_KEYWORD for p in params)

    def call(response: str, answer: str, mode: str, **options: Any) -> float:
        return float(fn(response, answer, **options))

    return RewardComponent(name, local=call, options=keywords, open_options=open_options)


def bind(spec: RewardsSpec, prefix: str = "spec.rewards") -> list[BoundReward]:
    """Each component of the spec resolved, weighted and with its options checked."""
    bound = []
    for i, item in enumerate(spec.components):
        path = f"{prefix}.components[{i}]"
        component = resolve(item.name, f"{path}.name")
        kwargs = _options(component, item.options, f"{path}.options")
        weight = item.weight if item.weight is not None else component.default_weight(spec.mode)
        bound.append(BoundReward(component, weight, kwargs))
    return bound


def _options(component: RewardComponent, options: Mapping[str, Any], path: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        option = component.options.get(key)
        if option is None and component.open_options:
            kwargs[key] = value
            continue
        if option is None:
            accepted = ", ".join(sorted(component.options)) or "none"
            raise RewardConfigError(
                f"{path}.{key}",
                f"unknown option for reward {component.name!r} (accepted: {accepted})",
            )
        if component.local is not None and component.name not in REGISTRY:
            kwargs[option.kwarg] = value  # a custom function's own types: pass through as given
            continue
        try:
            kwargs[option.kwarg] = option.check(value)
        except ValueError as e:
            raise RewardConfigError(f"{path}.{key}", str(e)) from None
    return kwargs
