"""The format reward: does the response follow the prompt's tag protocol?

The rules are MM-EUREKA's, read from its reward scripts (`examples/scripts/reward_func_qwen*.py`
for instruct, `reward_func_internvl_pretrain.py` for the pretrained "zero" recipe): one regex
each there, one small named rule each here, so a refusal says which rule failed.

instruct: exactly one each of `<think>`, `</think>`, `<answer>`, `</answer>`; a non-empty
thinking; only whitespace between `</think>` and `<answer>`; a non-empty answer. Text before
`<think>` and after `</answer>` is allowed (the recipe's pattern has `.*` at both ends).
boxed ("zero"): the same, and the stripped response starts with `<think>` and ends with
`</answer>`, and the thinking has at least `min_think_chars` characters once stripped.

One deliberate difference: the recipe's `.+?` accepts a thinking or an answer of blanks only;
here "non-empty" means something other than whitespace (a blank answer answers nothing).
"""

from __future__ import annotations

from collections.abc import Callable

from eureka_trainer.rewards.extract import ANSWER_CLOSE, ANSWER_OPEN

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)
#: Shortest thinking (in characters) a boxed-mode ("zero") response must show.
MIN_THINK_CHARS = 300


def one_of_each_tag(text: str) -> bool:
    """Exactly one `<think>`, `</think>`, `<answer>` and `</answer>`.

    Refuses two answers, two `</think>`, two think blocks, a missing opening tag.
    """
    return all(text.count(tag) == 1 for tag in TAGS)


def tags_in_order(text: str) -> bool:
    """`<think>` < `</think>` < `<answer>` < `</answer>` (an `<answer>` inside the thinking fails).

    Assumes `one_of_each_tag`.
    """
    positions = [text.find(tag) for tag in TAGS]
    return positions == sorted(positions)


def _think(text: str) -> str:
    return text[text.find(THINK_OPEN) + len(THINK_OPEN) : text.find(THINK_CLOSE)]


def _answer(text: str) -> str:
    return text[text.find(ANSWER_OPEN) + len(ANSWER_OPEN) : text.find(ANSWER_CLOSE)]


def thinking_not_empty(text: str) -> bool:
    """Something other than whitespace between `<think>` and `</think>`."""
    return bool(_think(text).strip())


def answer_not_empty(text: str) -> bool:
    """Something other than whitespace between `<answer>` and `</answer>`."""
    return bool(_answer(text).strip())


def answer_follows_thinking(text: str) -> bool:
    """Only whitespace between `</think>` and `<answer>` (the recipe's `</think>\\s*<answer>`)."""
    gap = text[text.find(THINK_CLOSE) + len(THINK_CLOSE) : text.find(ANSWER_OPEN)]
    return not gap.strip()


def starts_thinking_ends_answering(text: str) -> bool:
    """Zero recipe: the stripped response starts with `<think>` and ends with `</answer>`."""
    stripped = text.strip()
    return stripped.startswith(THINK_OPEN) and stripped.endswith(ANSWER_CLOSE)


Rule = Callable[[str], bool]
#: The rules of each mode, in the order they are checked (later rules assume earlier ones).
INSTRUCT_RULES: tuple[Rule, ...] = (
    one_of_each_tag,
    tags_in_order,
    thinking_not_empty,
    answer_follows_thinking,
    answer_not_empty,
)
BOXED_RULES: tuple[Rule, ...] = (*INSTRUCT_RULES, starts_thinking_ends_answering)
_RULES: dict[str, tuple[Rule, ...]] = {"instruct": INSTRUCT_RULES, "boxed": BOXED_RULES}


def failed_rule(response: str, mode: str = "instruct", min_think_chars: int = 0) -> str | None:
    """The name of the first format rule the response breaks, or None when it follows them all.

    `min_think_chars` applies in boxed mode only (as in the recipe).

    >>> failed_rule("<think>a</think> x <answer>1</answer>")
    'answer_follows_thinking'
    """
    rules = _RULES.get(mode)
    if rules is None:
        raise ValueError(f"unknown reward mode {mode!r}; expected one of {sorted(_RULES)}")
    for rule in rules:
        if not rule(response):
            return rule.__name__
    if mode == "boxed" and len(_think(response).strip()) < min_think_chars:
        return "thinking_long_enough"
    return None


def format_reward(
    response: str, mode: str = "instruct", *, min_think_chars: int = MIN_THINK_CHARS
) -> float:
    """1.0 when the response follows the tag format of `mode`, else 0.0 (unweighted).

    See the module docstring for the rules; `failed_rule` names the one a response breaks.

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
    return 0.0 if failed_rule(response, mode, min_think_chars) else 1.0
