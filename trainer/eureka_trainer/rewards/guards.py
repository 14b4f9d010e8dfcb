"""Guards: inputs that must never reach sympy, recognised in one linear pass over the string.

latex2sympy/sympy hang (for seconds, or forever inside C code) or exhaust memory on a few
known shapes: very long strings, deep bracket nesting (`\\frac` towers), power towers, and
numbers with millions of digits (`10^{10^{10}}`, `(10^{10})!`). Those are refused before any
worker is involved (score 0, counted as `reward/refused`); anything else that hangs is ended by
the per-sample timeout.
"""

from __future__ import annotations

import math
import re

#: Each bound is far above any real answer and far below what hangs sympy.
MAX_ANSWER_CHARS = 50_000
MAX_NESTING = 32
MAX_POWER_DEPTH = 3
MAX_DIGITS = 100_000  # a number written out with more digits than this is refused
MAX_FACTORIAL = 100_000

_NUMBER_AT = re.compile(r"\d+(?:\.\d+)?")
_POWER_START = re.compile(r"(?<![\d.])\d+(?:\.\d+)?\s*(?:\^|\*\*)")
_FACTORIAL = re.compile(r"(?<![\d.])(\d+)\s*!")


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
    return _huge_number(text)


def _huge_number(text: str) -> str | None:
    """A numeric power or factorial too big to write out, or None.

    >>> _huge_number("10^{10^{10}}")
    'a number of about 1e+10 digits'
    >>> _huge_number("2^{3^{2}} + 2^{100}") is None
    True
    >>> _huge_number("(10^{7})!")
    'a factorial of a 7-digit number'
    """
    for m in _FACTORIAL.finditer(text):
        if len(m.group(1)) > 6 or int(m.group(1)) > MAX_FACTORIAL:
            return f"a factorial of {m.group(1)[:12]}"
    for m in _POWER_START.finditer(text):
        parsed = _tower(text, m.start())
        if parsed is None:
            continue
        digits, end = parsed
        if digits > MAX_DIGITS:
            return f"a number of about {digits:.0e} digits"
        if digits > math.log10(MAX_FACTORIAL) + 1e-9 and _factorial_follows(text, end):
            return f"a factorial of a {digits:.0f}-digit number"
    return None


def _tower(text: str, i: int) -> tuple[float, int] | None:
    """(log10 of the value, end index) of a purely numeric tower `a^{b^{c}}` starting at i.

    None when the exponent is not numeric (`2^{x}`); infinity when it is astronomically large.
    """
    m = _NUMBER_AT.match(text, i)
    if m is None:
        return None
    base_log = _log10_literal(m.group())
    j = _skip_spaces(text, m.end())
    width = 1 if text.startswith("^", j) else 2 if text.startswith("**", j) else 0
    if not width:
        return base_log, m.end()
    j = _skip_spaces(text, j + width)
    closing = {"{": "}", "(": ")"}.get(text[j : j + 1])
    inner = _tower(text, _skip_spaces(text, j + 1) if closing else j)
    if inner is None:
        return None
    exponent_log, end = inner
    if closing:
        end = _skip_spaces(text, end)
        if not text.startswith(closing, end):
            return None  # `2^{3x}`: not a plain number
        end += 1
    if base_log == 0:  # 0 or 1: every power stays small
        return 0.0, end
    if exponent_log > 300:
        return math.inf, end
    return 10**exponent_log * abs(base_log), end  # 0.5^n is as long to write out as 2^n


def _log10_literal(literal: str) -> float:
    """log10 of a decimal literal of any length (0.0 for zero)."""
    whole = literal.split(".")[0].lstrip("0")
    if len(whole) > 15:  # float() would overflow on long literals; the leading digits suffice
        return len(whole) - 1 + math.log10(int(whole[:15]) / 10**14)
    value = float(literal)
    return math.log10(value) if value > 0 else 0.0


def _skip_spaces(text: str, i: int) -> int:
    while i < len(text) and text[i] == " ":
        i += 1
    return i


def _factorial_follows(text: str, end: int) -> bool:
    """Is the expression ending at `end` (maybe inside `(..)`/`{..}`) followed by `!`?"""
    j = _skip_spaces(text, end)
    while j < len(text) and text[j] in ")} ":
        j += 1
    return text.startswith("!", j)


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
