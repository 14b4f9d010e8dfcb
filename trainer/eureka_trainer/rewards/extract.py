"""Pure string work for the accuracy reward: answer extraction, cheap decisions and input guards.

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

#: Guards: inputs beyond these never reach sympy (they are refused: score 0, counted). Each bound
#: is far above any real answer and far below what makes latex2sympy/sympy hang or eat memory.
MAX_ANSWER_CHARS = 50_000
MAX_NESTING = 32
MAX_POWER_DEPTH = 3

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


def choice_correct(letter: str, answer: str) -> bool:
    """1 when the answer names the gold letter and no other option letter.

    A letter is "named" when it stands alone (not inside a word).

    >>> choice_correct("B", "The answer is (B)")
    True
    >>> choice_correct("B", "B or C")
    False
    >>> choice_correct("B", "Because")
    False
    """
    named = set(_CHOICE_IN_TEXT.findall(answer))
    return named == {letter}


def refusal(text: str) -> str | None:
    """Why a string must not reach sympy, or None when it may.

    Reasons: longer than MAX_ANSWER_CHARS, brackets nested deeper than MAX_NESTING (`\\frac`
    towers, deep parentheses), or a power tower at least MAX_POWER_DEPTH high
    (`10^{10^{10^{10}}}`), all known to hang latex2sympy/sympy for seconds to forever.

    >>> refusal("10^{10^{10^{10}}}")
    'power tower 3 deep'
    >>> refusal("\\\\frac{1}{2}") is None
    True
    """
    if len(text) > MAX_ANSWER_CHARS:
        return f"{len(text)} characters"
    nesting, powers = _depths(text)
    if nesting > MAX_NESTING:
        return f"brackets nested {nesting} deep"
    if powers >= MAX_POWER_DEPTH:
        return f"power tower {powers} deep"
    return None


def _depths(text: str) -> tuple[int, int]:
    """(max bracket nesting, max power-tower height) in one linear pass.

    `a^{b^{c}}` is 2 high (the second `^` sits inside an exponent); a brace-less chain
    `2^2^2` or `2**2**2` counts each link; `x^2 + y^2` is 1 high.
    """
    stack: list[bool] = []  # per open bracket: does it open an exponent?
    powers_open = 0
    max_nesting = max_powers = 0
    chain = 0  # links of the current brace-less chain
    i, n = 0, len(text)
    while i < n:
        width = _caret_width(text, i)
        if width:
            chain += 1
            max_powers = max(max_powers, powers_open + chain)
            i += width
            if i < n and text[i] in "{(":
                stack.append(True)
                powers_open += 1
                max_nesting = max(max_nesting, len(stack))
                chain = 0
                i += 1
                continue
            i = _skip_token(text, i)
            if not _caret_width(text, i):
                chain = 0
            continue
        ch = text[i]
        if ch in "{([":
            stack.append(False)
            max_nesting = max(max_nesting, len(stack))
        elif ch in "})]" and stack and stack.pop():
            powers_open -= 1
        i += 1
    return max_nesting, max_powers


def _caret_width(text: str, i: int) -> int:
    """1 for `^`, 2 for `**`, 0 when no power operator starts at i."""
    if text.startswith("^", i):
        return 1
    return 2 if text.startswith("**", i) else 0


def _skip_token(text: str, i: int) -> int:
    """Index after one brace-less exponent: spaces, then a `\\command`, digit run or one char."""
    n = len(text)
    while i < n and text[i] == " ":
        i += 1
    if i < n and text[i] == "\\":
        i += 1
        while i < n and text[i].isalpha():
            i += 1
        return i
    if i < n and text[i].isdigit():
        while i < n and (text[i].isdigit() or text[i] == "."):
            i += 1
        return i
    return min(i + 1, n)
