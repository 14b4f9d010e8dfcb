"""format_reward: MM-EUREKA's tag rules, one test per rule, for both modes.

The rules come from MM-EUREKA's reward scripts (see rewards/format.py): instruct
`reward_func_qwen_instruct.py` (`.*<think>(.+?)</think>\\s*<answer>.+?</answer>.*$` with one of
each tag), zero `reward_func_internvl_pretrain.py` (the same, anchored at `<think>` and
`</answer>$`, thinking of at least 300 stripped characters).
"""

from __future__ import annotations

import pytest

from eureka_trainer.rewards import format_reward
from eureka_trainer.rewards.format import failed_rule

THINK = "x" * 300
MODES = ("instruct", "boxed")


def ok(mode: str) -> str:
    return f"<think>{THINK}</think>\n<answer>$1$</answer>"


@pytest.mark.parametrize("mode", MODES)
def test_a_well_formed_response_passes(mode: str) -> None:
    assert format_reward(ok(mode), mode) == 1.0
    assert format_reward(f"  \n<think>{THINK}</think> <answer>1</answer>\n ", mode) == 1.0


# Each case breaks exactly one rule; the rule's name is what `failed_rule` must report.
BROKEN = [
    (f"<think>{THINK}</think><answer>1</answer><answer>2</answer>", "one_of_each_tag"),
    (f"<think>{THINK}</think>1</answer>", "one_of_each_tag"),  # no <answer> opening tag
    (f"<think>{THINK}</think></think><answer>1</answer>", "one_of_each_tag"),
    (f"<think>a</think><think>{THINK}</think><answer>1</answer>", "one_of_each_tag"),
    (f"<think>{THINK}</think><answer>1", "one_of_each_tag"),  # unclosed answer
    (f"<think>{THINK}<answer>1</answer></think>", "tags_in_order"),  # answer inside thinking
    ("<think>  \n </think><answer>1</answer>", "thinking_not_empty"),
    (f"<think>{THINK}</think> so: <answer>1</answer>", "answer_follows_thinking"),
    (f"<think>{THINK}</think><answer> \n </answer>", "answer_not_empty"),
    (f"<think>{THINK}</think><answer></answer>", "answer_not_empty"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("response", "rule"), BROKEN)
def test_each_broken_rule_scores_zero(mode: str, response: str, rule: str) -> None:
    assert failed_rule(response, mode) == rule
    assert format_reward(response, mode) == 0.0


def test_instruct_allows_text_around_the_tags() -> None:
    # The recipe's instruct pattern is `.*<think>...</answer>.*$`: preamble and trailer pass.
    response = "preamble <think>a</think>\n\n<answer>1</answer> trailing"
    assert format_reward(response, "instruct") == 1.0
    assert failed_rule(response, "boxed") == "starts_thinking_ends_answering"


@pytest.mark.parametrize(
    "response",
    [
        f"x<think>{THINK}</think><answer>1</answer>",
        f"<think>{THINK}</think><answer>1</answer>.",
    ],
)
def test_boxed_starts_thinking_and_ends_answering(response: str) -> None:
    assert failed_rule(response, "boxed") == "starts_thinking_ends_answering"
    assert format_reward(response, "instruct") == 1.0


def test_boxed_thinking_length() -> None:
    assert format_reward(f"<think>{THINK[:-1]}</think><answer>1</answer>", "boxed") == 0.0
    padded = f"<think>  {THINK[:-1]}  </think><answer>1</answer>"  # padding is not thinking
    assert failed_rule(padded, "boxed", min_think_chars=300) == "thinking_long_enough"
    assert format_reward(padded, "instruct") == 1.0  # instruct has no length rule


def test_boxed_min_think_chars_option() -> None:
    response = "<think>short</think><answer>1</answer>"
    assert format_reward(response, "boxed") == 0.0
    assert format_reward(response, "boxed", min_think_chars=5) == 1.0
    assert format_reward(response, "boxed", min_think_chars=6) == 0.0


def test_no_tags_or_empty() -> None:
    for mode in MODES:
        assert format_reward("", mode) == 0.0
        assert format_reward("<think>a</think>", mode) == 0.0
        assert format_reward("<answer>1</answer>", mode) == 0.0
        assert format_reward("<answer>1</answer><think>a</think>", mode) == 0.0


def test_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown reward mode 'zero'"):
        format_reward("<think></think>", "zero")
