"""accuracy_reward / accuracy_details: hand-checked vectors, gold-parse failures, extraction."""

from __future__ import annotations

import pytest

from eureka_trainer.rewards import accuracy_details, accuracy_reward
from eureka_trainer.rewards.extract import extract_answer, last_boxed

pytestmark = [pytest.mark.usefixtures("warm_pool"), pytest.mark.timeout(60)]


def tagged(answer: str) -> str:
    return f"<think>working</think><answer>{answer}</answer>"


@pytest.mark.parametrize(
    ("response", "gold", "expected", "path"),
    [
        (tagged("42"), "42", 1.0, "exact"),
        (tagged(" $42$ "), "42", 1.0, "exact"),
        (tagged("42.0"), "42", 1.0, "numeric"),
        (tagged("41"), "42", 0.0, "numeric"),
        (tagged("0.25"), "0.5", 0.0, "numeric"),
        (tagged("$\\frac{1}{2}$"), "0.5", 1.0, "math_verify"),
        (tagged("$\\frac{2}{4}$"), "\\frac{1}{2}", 1.0, "math_verify"),
        (tagged("$2\\sqrt{2}$"), "\\sqrt{8}", 1.0, "math_verify"),
        (tagged("$x^2+2x+1$"), "(x+1)^2", 1.0, "math_verify"),
        (tagged("$(1, 3]$"), "(1,3]", 1.0, "math_verify"),
        (tagged("$[1, 3]$"), "(1,3]", 0.0, "math_verify"),
        (tagged("The answer is $\\frac{3}{4}$."), "0.75", 1.0, "math_verify"),
        (tagged("$\\frac{1}{3}$"), "0.5", 0.0, "math_verify"),
        ("<answer>1</answer> then <answer>2</answer>", "1", 1.0, "exact"),  # the first pair
        ("<think>a</think><answer>7", "7", 1.0, "exact"),  # unclosed: after the last tag
        ("<answer>3 <answer>7", "7", 1.0, "exact"),
        ("<think>no tags, says $\\frac{1}{2}$</think>", "0.5", 1.0, "math_verify"),
        (tagged(""), "5", 0.0, "math_verify"),
    ],
)
def test_instruct_vectors(response: str, gold: str, expected: float, path: str) -> None:
    result = accuracy_details(response, gold, "instruct")
    assert (result.score, result.path, result.gold_parsed) == (expected, path, True)
    assert accuracy_reward(response, gold) == expected


@pytest.mark.parametrize(
    ("answer", "gold", "expected"),
    [
        ("B", "B", 1.0),
        ("(B)", "B", 1.0),
        ("The answer is B.", "(B)", 1.0),
        ("B: 12 cm", "B.", 1.0),
        ("B or C", "B", 0.0),  # names another option
        ("A or B", "B", 0.0),
        ("B, C", "B", 0.0),
        ("B, since E is the midpoint of AC", "B", 1.0),  # letters in a reason are no choice
        ("B because AE = EC", "B", 1.0),
        ("(c)", "C", 1.0),  # lowercase in parentheses
        ("c", "C", 1.0),  # a lone lowercase letter
        ("The correct option is (e).", "E", 1.0),  # options beyond D
        ("G", "G", 1.0),
        ("E", "D", 0.0),
        ("a triangle", "A", 0.0),  # an article, not an option
        ("A", "B", 0.0),
        ("Because it is 12", "B", 0.0),  # letters inside words do not count
        ("12 cm", "B", 0.0),
    ],
)
def test_multiple_choice(answer: str, gold: str, expected: float) -> None:
    result = accuracy_details(tagged(answer), gold)
    assert (result.score, result.path) == (expected, "choice")


@pytest.mark.parametrize(
    ("response", "gold", "expected"),
    [
        ("<think>...</think><answer>so \\boxed{3}</answer>", "3", 1.0),
        ("\\boxed{2} first, then \\boxed{\\frac{6}{2}}", "3", 1.0),  # the last box
        ("\\boxed{\\frac{1}{\\sqrt{4}}}", "0.5", 1.0),  # nested braces
        ("\\boxed{3} and an unclosed \\boxed{4", "3", 1.0),  # last *complete* box
        ("The answer is 3", "3", 0.0),  # no box, no answer
        ("\\boxed{4}", "3", 0.0),
        ("\\boxed{C}", "C", 1.0),
    ],
)
def test_boxed_vectors(response: str, gold: str, expected: float) -> None:
    assert accuracy_reward(response, gold, mode="boxed") == expected


@pytest.mark.parametrize("gold", ["", "   ", "\\text{}", "\\\\"])
def test_unparseable_gold_never_scores(gold: str) -> None:
    # MM-EUREKA scores 1.0 here; ours 0.0 and says so, even when the answer "matches".
    for response in (tagged(gold), tagged("5"), "no answer"):
        result = accuracy_details(response, gold)
        assert result.score == 0.0
        assert result.gold_parsed is False
        assert result.path == "gold_unparsed"


def test_hostile_gold_is_unparseable_not_a_hang() -> None:
    result = accuracy_details(tagged("1"), "10^{10^{10^{10}}}", timeout=1.0)
    assert (result.score, result.gold_parsed) == (0.0, False)


def test_extraction_rules() -> None:
    assert extract_answer("x <answer>a</answer> <answer>b</answer>", "instruct") == "a"
    assert extract_answer("<answer>a</answer", "instruct") == "a</answer"
    assert extract_answer("plain", "instruct") == "plain"
    assert extract_answer("\\boxed{a}\\boxed{b}", "boxed") == "b"
    assert last_boxed("\\boxed{\\{1, 2\\}}") == "\\{1, 2\\}"  # escaped braces do not count
    assert last_boxed("\\boxed {x}") == "x"
    assert last_boxed("\\boxed{") is None


@pytest.mark.parametrize(
    ("answer", "gold", "expected"),
    [
        # A bare answer is wrapped in `$..$` before parsing: the expression extractor alone
        # read `4\sqrt{2}` as 4, `2x` as 2, `3\pi` as 3 (all three scored 1 here before).
        ("4\\sqrt{2}", "4", 0.0),
        ("4\\sqrt{2}", "\\sqrt{32}", 1.0),
        ("2x", "2", 0.0),
        ("2x", "x+x", 1.0),
        ("3\\pi", "3", 0.0),
        ("3\\pi", "\\frac{6\\pi}{2}", 1.0),
        ("\\frac{1}{2}", "0.5", 1.0),
        # Plain numbers, words and letters keep working.
        ("12", "12.0", 1.0),
        ("0.50", "\\frac{1}{2}", 1.0),
        ("yes", "Yes", 1.0),
        ("B", "B", 1.0),
        ("the answer is 0.75", "\\frac{3}{4}", 1.0),  # prose is not wrapped
    ],
)
def test_bare_answers(answer: str, gold: str, expected: float) -> None:
    result = accuracy_details(tagged(answer), gold)
    assert (result.score, result.gold_parsed) == (expected, True)
