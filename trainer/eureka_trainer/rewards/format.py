"""The format reward: does the response follow the prompt's tag protocol?"""

from __future__ import annotations

from collections.abc import Callable

from eureka_trainer.rewards.extract import ANSWER_CLOSE, ANSWER_OPEN

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
#: Shortest thinking (in characters) a boxed-mode ("zero") response must show.
MIN_THINK_CHARS = 300


def _instruct(response: str, min_think_chars: int) -> bool:
    """Exactly one of each tag, in the order think-open < think-close < answer-open < answer-close."""
    tags = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
    if any(response.count(tag) != 1 for tag in tags):
        return False
    positions = [response.find(tag) for tag in tags]
    return positions == sorted(positions)


def _boxed(response: str, min_think_chars: int) -> bool:
    """Starts with `<think>`, ends with `</answer>`, and thinks for at least min_think_chars."""
    text = response.strip()
    if not (text.startswith(THINK_OPEN) and text.endswith(ANSWER_CLOSE)):
        return False
    end = text.find(THINK_CLOSE)
    if end < 0:
        return False
    return len(text[len(THINK_OPEN) : end].strip()) >= min_think_chars


_CHECKS: dict[str, Callable[[str, int], bool]] = {"instruct": _instruct, "boxed": _boxed}


def format_reward(
    response: str, mode: str = "instruct", *, min_think_chars: int = MIN_THINK_CHARS
) -> float:
    """1.0 when the response follows the tag format of `mode`, else 0.0 (unweighted).

    instruct: exactly one each of `<think>`, `</think>`, `<answer>`, `</answer>`, in that order.
    boxed: the stripped response starts with `<think>` and ends with `</answer>`, and the
    thinking (between `<think>` and the first `</think>`) has at least `min_think_chars`
    characters once stripped.

    >>> format_reward("<think>a</think> <answer>1</answer>")
    1.0
    >>> format_reward("<answer>1</answer><think>a</think>")
    0.0
    >>> format_reward("<think>a</think><answer>1</answer><answer>2</answer>")
    0.0
    >>> format_reward("<think>" + "x" * 300 + "</think><answer>1</answer>", "boxed")
    1.0
    >>> format_reward("<think>short</think><answer>1</answer>", "boxed")
    0.0
    """
    check = _CHECKS.get(mode)
    if check is None:
        raise ValueError(f"unknown reward mode {mode!r}; expected one of {sorted(_CHECKS)}")
    return 1.0 if check(response, min_think_chars) else 0.0
