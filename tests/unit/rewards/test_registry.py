"""The reward registry: names, default weights per mode, option checking, module:function."""

from __future__ import annotations

from typing import Any

import pytest

from eureka_trainer.config import RewardSpec, RewardsSpec
from eureka_trainer.rewards import REGISTRY, RewardConfigError, bind, resolve


def bonus_reward(response: str, answer: str, *, bonus: float = 1.0) -> float:
    """An installed custom reward (this test module is importable)."""
    return bonus if answer in response else 0.0


def open_reward(response: str, answer: str, **options: Any) -> float:
    return float(len(options))


def _spec(*components: RewardSpec, mode: str = "instruct") -> RewardsSpec:
    return RewardsSpec(components=list(components), mode=mode)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("instruct", {"accuracy": 1.0, "format": 0.5, "repetition": 1.0}),
        ("boxed", {"accuracy": 1.0, "format": 1.0, "repetition": 1.0}),
    ],
)
def test_default_weights_agree_with_the_spec(mode: str, expected: dict[str, float]) -> None:
    for name, weight in expected.items():
        assert REGISTRY[name].default_weight(mode) == weight
    spec = _spec(*(RewardSpec(name=n) for n in expected), mode=mode)
    assert {b.name: b.weight for b in bind(spec)} == expected


def test_options_are_checked_and_converted() -> None:
    spec = _spec(
        RewardSpec(name="format", options={"minThinkChars": 10}),
        RewardSpec(name="repetition", options={"ngram": 4, "maxPenalty": 1}),
    )
    fmt, rep = bind(spec)
    assert fmt.kwargs == {"min_think_chars": 10}
    assert rep.kwargs == {"ngram": 4, "max_penalty": 1.0}
    assert fmt("<think>0123456789</think><answer>1</answer>", "1", "boxed") == 1.0


def test_unknown_option_names_the_field() -> None:
    spec = _spec(RewardSpec(name="accuracy"), RewardSpec(name="repetition", options={"n": 3}))
    with pytest.raises(RewardConfigError) as err:
        bind(spec)
    assert err.value.path == "spec.rewards.components[1].options.n"
    assert "accepted: maxPenalty, minWords, ngram" in str(err.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [(0, "must be >= 1"), (2.5, "must be an integer"), ("3", "must be a number"), (True, "number")],
)
def test_bad_option_values(value: object, message: str) -> None:
    spec = _spec(RewardSpec(name="repetition", options={"ngram": value}))
    with pytest.raises(RewardConfigError, match=message) as err:
        bind(spec)
    assert err.value.path == "spec.rewards.components[0].options.ngram"


def test_accuracy_accepts_no_options() -> None:
    with pytest.raises(RewardConfigError, match=r"components\[0\]\.options\.timeout.*none"):
        bind(_spec(RewardSpec(name="accuracy", options={"timeout": 1})))


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("accurracy", "unknown reward 'accurracy'"),
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("tests.unit.rewards.test_registry:missing", "has no function 'missing'"),
    ],
)
def test_bad_names(name: str, message: str) -> None:
    # model_construct: the spec itself refuses an unregistered plain name (config/spec.py);
    # the registry still names the field for objects built around that check.
    with pytest.raises(RewardConfigError, match=message) as err:
        bind(_spec(RewardSpec.model_construct(name=name, weight=None, options={})))
    assert err.value.path == "spec.rewards.components[0].name"


def test_module_function_reward() -> None:
    name = "tests.unit.rewards.test_registry:bonus_reward"
    (bound,) = bind(_spec(RewardSpec(name=name, options={"bonus": 2.0})))
    assert bound.weight == 1.0
    assert bound("the answer is 7", "7", "instruct") == 2.0
    with pytest.raises(RewardConfigError, match=r"options\.bonsu.*accepted: bonus"):
        bind(_spec(RewardSpec(name=name, options={"bonsu": 2.0})))
    (open_,) = bind(
        _spec(
            RewardSpec(
                name="tests.unit.rewards.test_registry:open_reward", options={"a": 1, "b": 2}
            )
        )
    )
    assert open_("", "", "instruct") == 2.0


def test_resolve_builtin() -> None:
    assert resolve("format") is REGISTRY["format"]
