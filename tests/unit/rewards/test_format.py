"""format_reward: hand-checked vectors for both modes."""

from __future__ import annotations

import pytest

from eureka_trainer.rewards import format_reward

THINK = "x" * 300


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("<think>a</think><answer>1</answer>", 1.0),
        ("preamble <think>a</think>\n\n<answer>1</answer> trailing", 1.0),
        ("<think></think><answer></answer>", 1.0),
        ("<think>a</think>", 0.0),
        ("<answer>1</answer>", 0.0),
        ("<answer>1</answer><think>a</think>", 0.0),
        ("<think>a<answer>1</answer></think>", 0.0),
        ("</think><think>a<answer>1</answer>", 0.0),
        ("<think>a</think><think>b</think><answer>1</answer>", 0.0),
        ("<think>a</think><answer>1</answer></answer>", 0.0),
        ("<think>a</think><answer>1", 0.0),
        ("", 0.0),
    ],
)
def test_instruct(response: str, expected: float) -> None:
    assert format_reward(response, "instruct") == expected


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (f"<think>{THINK}</think><answer>\\boxed{{1}}</answer>", 1.0),
        (f"  \n<think>{THINK}</think> <answer>1</answer>\n ", 1.0),
        (f"<think>{THINK[:-1]}</think><answer>1</answer>", 0.0),  # 299 characters
        (f"<think>  {THINK[:-1]}  </think><answer>1</answer>", 0.0),  # padding is not thinking
        (f"x<think>{THINK}</think><answer>1</answer>", 0.0),
        (f"<think>{THINK}</think><answer>1</answer>.", 0.0),
        (f"<think>{THINK}<answer>1</answer>", 0.0),  # no </think>
    ],
)
def test_boxed(response: str, expected: float) -> None:
    assert format_reward(response, "boxed") == expected


def test_boxed_min_think_chars_option() -> None:
    response = "<think>short</think><answer>1</answer>"
    assert format_reward(response, "boxed") == 0.0
    assert format_reward(response, "boxed", min_think_chars=5) == 1.0
    assert format_reward(response, "boxed", min_think_chars=6) == 0.0


def test_unknown_mode_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown reward mode 'zero'"):
        format_reward("<think></think>", "zero")
