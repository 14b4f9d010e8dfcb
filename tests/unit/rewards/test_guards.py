"""Guards: what never reaches sympy, and what real answers must still pass."""

from __future__ import annotations

import time

import pytest

from eureka_trainer.rewards.guards import MAX_ANSWER_CHARS, refusal


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("9" * (MAX_ANSWER_CHARS + 1), "characters"),
        ("\\frac{1}{" * 40 + "2" + "}" * 40, "brackets nested 40 deep"),
        ("(" * 33 + ")" * 33, "nested 33 deep"),
        ("10^{10^{10^{10}}}", "power tower 3 deep"),
        ("2^2^2^2", "power tower 3 deep"),
        ("9**9**9**9", "power tower 3 deep"),
        ("10^{10^{10}}", "1e+10 digits"),
        ("10^{10000000}", "1e+07 digits"),
        ("0.5^{10^{10}}", "digits"),
        ("9" * 400 + "^{1000}", "4e+05 digits"),
        ("(10^{10})!", "a factorial of a 10-digit number"),
        ("1000001!", "a factorial of 1000001"),
    ],
)
def test_refused(text: str, reason: str) -> None:
    found = refusal(text)
    assert found is not None and reason in found


@pytest.mark.parametrize(
    "text",
    [
        "\\frac{1}{2}",
        "x^2 + y^2 + z^2",
        "a^2 b^2 c^2",
        "e^{x^2}",
        "2^{3^{4}}",
        "\\sqrt{2}^{\\sqrt{2}^{\\sqrt{2}}}",
        "2^{100} - 1",
        "3 \\times 10^{8}",
        "1^{10^{10}}",
        "(10^{5})!",
        "12!",
        "1" * 400 + "^{2}",
        "\\left(\\frac{1}{2}\\right)^{3}",
        "(1, 3]",
    ],
)
def test_real_answers_pass(text: str) -> None:
    assert refusal(text) is None


def test_linear_time_on_a_megabyte_of_carets() -> None:
    text = ("2^" * 20 + " + ") * 2000  # 46 kB of short chains
    start = time.monotonic()
    refusal(text)
    refusal("{" * 40_000)
    assert time.monotonic() - start < 1.0
