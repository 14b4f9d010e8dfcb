"""Pure string work for the accuracy reward: answer extraction and cheap decisions.

Everything here runs in the caller's process in linear time (no regex backtracking on the
response, no sympy), so a megabyte response costs milliseconds. Only what these functions
cannot decide goes to a math-verify worker process.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Literal

Mode = Literal["instruct", "boxed"]

ANSWER_OPEN = "<answer>"
ANSWER_CLOSE = "</answer>"

#: Option letters of a multiple-choice gold answer. Stops at H: "I" is an English word.
CHOICE_LETTERS = "ABCDEFGH"

_BOXED = re.compile(r"\\boxed\s*\{")
_CHOICE_GOLD = re.compile(r"^\(?([A-H])\)?\.?$")
_CHOICE_IN_TEXT = re.compile(r"(?<![A-Za-z])([A-H])(?![A-Za-z])")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def extract_answer(response: str, mode: Mode) -> str | None:
    """The answer part of a response, or None when it has none.

    instruct: the first `<answer>...</answer>`; when no closed pair follows the first opening
    tag, the text after the last `<answer>`; with no tag at all, the whole response (as
    MM-EUREKA does; the format reward is what punishes the missing tags).
    boxed: the content of the last complete `\\boxed{...}` (nested braces allowed).

    >>> extract_answer("<think>t</think><answer> 42 </answer>", "instruct")
    ' 42 '
    >>> extract_answer("<answer>1 <answer>2", "instruct")
    '2'
    >>> extract_answer(r"so \\boxed{\\frac{1}{2}} and \\boxed{x^{2}}", "boxed")
    'x^{2}'
    >>> extract_answer("no box here", "boxed") is None
    True
    """
    if mode == "boxed":
        return last_boxed(response)
    start = response.find(ANSWER_OPEN)
    if start < 0:
        return response
    body = start + len(ANSWER_OPEN)
    end = response.find(ANSWER_CLOSE, body)
    if end >= 0:
        return response[body:end]
    return response[response.rfind(ANSWER_OPEN) + len(ANSWER_OPEN) :]


def last_boxed(text: str) -> str | None:
    """Content of the last (by opening position) `\\boxed{...}` whose braces balance, or None.

    One pass with a brace stack, so unbalanced input (`\\boxed{` x 50,000) stays linear.
    Escaped braces (`\\{`) do not count.
    """
    box_bodies = {m.end() for m in _BOXED.finditer(text)}
    if not box_bodies:
        return None
    stack: list[int] = []  # body start of each open brace; -1 for a brace that is not a box
    best: tuple[int, int] | None = None
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            stack.append(i + 1 if i + 1 in box_bodies else -1)
        elif ch == "}" and stack:
            body = stack.pop()
            if body >= 0 and (best is None or body > best[0]):
                best = (body, i)
        i += 1
    return text[best[0] : best[1]] if best else None


def normalize(text: str) -> str:
    """Whitespace and one pair of math delimiters (`$..$`, `\\(..\\)` ...) stripped.

    >>> normalize("  $ 3.5 $ ")
    '3.5'
    """
    s = text.strip()
    for left, right in _DELIMITERS:
        if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
            return s[len(left) : len(s) - len(right)].strip()
    return s


def as_number(text: str) -> Decimal | None:
    """A plain decimal literal (`-3`, `0.25`, `.5`) as a Decimal, else None."""
    if len(text) > 64 or not _NUMBER.match(text):
        return None
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid literals
        return None


def numeric_decision(gold: Decimal, pred: Decimal) -> bool | None:
    """True/False when two plain numbers settle the question without sympy, None when close.

    Equal values match. Distinct integers never match. Distinct decimals that differ by more
    than 0.1% do not match; closer ones are left to math-verify, whose rounding may call them
    equal.
    """
    if gold == pred:
        return True
    if gold == gold.to_integral_value() and pred == pred.to_integral_value():
        return False
    scale = max(Decimal(1), abs(gold), abs(pred))
    if abs(gold - pred) > scale * Decimal("0.001"):
        return False
    return None


def choice_letter(gold: str) -> str | None:
    """The option letter when the gold answer is a multiple-choice letter (`B`, `(B)`, `B.`)."""
    m = _CHOICE_GOLD.match(normalize(gold))
    return m.group(1) if m else None


_LEAD = re.compile(
    r"^\s*(?:(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)(?:\s*(?:is|:))?\s*)?"
    r"(\(|\[)?([A-Ha-h])[)\]]?(?![A-Za-z0-9])(.*)$",
    re.S | re.I,
)
#: What may follow the chosen letter without naming another option: a reason or a label.
#: (No two `\s*` are adjacent in these patterns: answers reach them before any guard on length
#: beyond 50,000 characters, and adjacent `\s*` backtrack quadratically on long blank runs.)
_JUSTIFICATION = re.compile(
    r"^\s*(?:[:\u2014\u2013-]|(?:[,.;]\s*)?(?:since|because|as|for|given|due|by|which|this|that|"
    r"it|is|are|so|hence|therefore|thus|where)\b)",
    re.I,
)
_PAREN_LOWER = re.compile(r"\(([a-h])\)")


def choice_correct(letter: str, answer: str) -> bool:
    """1 when the answer chooses the gold letter and no other option.

    The answer's leading option (`B`, `(B)`, `(c)`, `The answer is B`) decides when it stands
    alone or is followed by a reason (`B, since E is the midpoint`, `B: 12 cm`): letters in the
    reason are not choices. Otherwise every option letter named (standing alone, or a lowercase
    letter in parentheses) must be the gold's (`B or C` is wrong).

    >>> choice_correct("B", "The answer is (B)")
    True
    >>> choice_correct("B", "B, since E is the midpoint of AC")
    True
    >>> choice_correct("C", "(c)")
    True
    >>> choice_correct("B", "B or C")
    False
    >>> choice_correct("B", "Because")
    False
    """
    text = normalize(answer)
    m = _LEAD.match(text)
    if m:
        paren, lead, rest = m.group(1), m.group(2), m.group(3)
        alone = not rest.strip(" .)")
        if (lead.isupper() or paren or alone) and (alone or _JUSTIFICATION.match(rest)):
            return lead.upper() == letter
    named = set(_CHOICE_IN_TEXT.findall(text))
    named |= {c.upper() for c in _PAREN_LOWER.findall(text)}
    return named == {letter}
