"""Reading gold answers as benchmark authors write them: pure string rules, no sympy.

Real golds (MMK12's, for one) are not clean LaTeX: `$$7$$ $$10$$` is two answers, `2n+1.` ends
a sentence, `\\left ( 3,7\\right )` is a point, `1.3.4.` lists statement numbers, `30°` is an
angle, `360 sets` has a unit, and some golds are a whole worked solution. Handed to math-verify
as they are, a fifth of them parse to the wrong value (`$$7$$ $$10$$` reads as 10, `2n+1.` as 2).

`read_gold` turns a gold string into a `GoldReading`: one or more alternative readings (`(or
...)`, `(choose one)`), each a list of parts that must all be answered (in order, or in any
order for a set of solutions such as `x=1 or x=2`), each part normalised by small named rules
and marked textual when it is words rather than mathematics (compared as text, never as a
number pulled out of it). `split_answer` splits a response's answer the same way so that a
multi-part gold can be matched part by part. Every rule is applied to answers too (a response
may write `30°` or `12 m`), so gold and answer are compared in the same normal form.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

# ----------------------------------------------------------------------------- part rules
# Each takes one part (a single answer) and returns it normalised; `read_gold` records which
# rules changed a gold, so their hits on a data set can be counted (docs/rewards.md).


def inner_dollars(text: str) -> str:
    """Math delimiters removed wherever they are (`4$\\sqrt{3}$` -> `4\\sqrt{3}`)."""
    text = text.replace("\\(", "").replace("\\)", "").replace("\\[", "").replace("\\]", "")
    return text.replace("$", "").strip()


_UNICODE = {
    "π": "\\pi ",
    "−": "-",
    "–": "-",
    "×": "\\times ",
    "÷": "\\div ",
    "≤": "\\le ",
    "≥": "\\ge ",
    "≠": "\\ne ",
    "²": "^{2}",
    "³": "^{3}",
    "，": ",",
    "；": ";",
    "：": ":",
    "（": "(",
    "）": ")",
}
_ROOT = re.compile(r"√\s*(\d+(?:\.\d+)?|[A-Za-z])")


def unicode_math(text: str) -> str:
    """Unicode signs as LaTeX (`2π` -> `2\\pi`, `5√3` -> `5\\sqrt{3}`, `−2` -> `-2`)."""
    text = _ROOT.sub(r"\\sqrt{\1}", text)
    for char, latex in _UNICODE.items():
        text = text.replace(char, latex)
    return text.strip()


_LEFT_RIGHT = re.compile(r"\\(?:left|right)(?![A-Za-z])\s*")


def left_right(text: str) -> str:
    """`\\left (`/`\\right )` reduced to the bracket (math-verify reads `\\left ( 3,7\\right )`
    as 3.7)."""
    return _LEFT_RIGHT.sub("", text).strip()


_BRACED_VALUE = re.compile(r"\\(?:number|text|mathrm|textbf|mathbf|operatorname)\s*\{([^{}]*)\}")
_ARG = r"\{(?:[^{}]|\{[^{}]*\})*\}"  # one braced argument, one level of nesting inside
_QUANTITY = re.compile(rf"\\(?:quantity|SI)\s*\{{([^{{}}]*)\}}\s*{_ARG}")
_UNIT = re.compile(rf"\\(?:unit|si)\s*{_ARG}")
_MATHRM_BARE = re.compile(r"\\mathrm\s+(?=\\)")


def latex_wrappers(text: str) -> str:
    """Typesetting macros unwrapped: `\\number{24}`, `\\text{24}`, `\\quantity{18}{cm}`,
    `\\unit{cm^2}`, `\\mathrm \\pi`, `~` and `\\ ` spacing."""
    text = _QUANTITY.sub(r"\1", text)
    text = _UNIT.sub("", text)
    previous = None
    while previous != text:  # nested: \text{\number{3}}
        previous, text = text, _BRACED_VALUE.sub(r"\1", text)
    text = _MATHRM_BARE.sub("", text)
    return text.replace("~", " ").replace("\\ ", " ").replace("\\,", " ").strip()


_DEGREE = re.compile(r"(?:\{\s*\}\s*)?\^\s*(?:\{\s*\\circ\s*\}|\\circ)|°|\\textdegree|textdegree")


def degree_marks(text: str) -> str:
    """Degree signs removed (`30°`, `30^{\\circ}`, `30{}^\\circ`, `{{8}^{\\circ }}`): an angle is
    compared by its number, whichever way it was typed."""
    return _DEGREE.sub("", text).strip()


_TRAILING = ".;,。"


def trailing_punctuation(text: str) -> str:
    """A sentence's full stop (or `;` `,`) after the answer removed (`2n+1.` -> `2n+1`).

    A scan from the end, not a regex: `[.;,]+$` backtracks quadratically on a long run of
    dots that is not at the end, and answers reach here before any worker.
    """
    end = len(text)
    while end and (text[end - 1] in _TRAILING or text[end - 1].isspace()):
        end -= 1
    return text[:end]


_UNITS = (
    "square meters|square centimeters|meters|meter|metres|centimeters|cm\\^\\{2\\}|cm\\^\\{3\\}"
    "|m\\^\\{2\\}|km|cm|mm|dm|m|kg|g|sets|set|yuan|people|students|pieces|degrees|hours|minutes"
)
_UNIT_SUFFIX = re.compile(rf"^([+-]?\d+(?:\.\d+)?)\s*(?:{_UNITS})$")


def unit_suffix(text: str) -> str:
    """A number followed by a unit word keeps the number (`360 sets`, `4286m`, `40 cm`)."""
    m = _UNIT_SUFFIX.match(text)
    return m.group(1) if m else text


_NOTE = re.compile(r"\(\s*(?:not unique|choose one)[^)]*\)\s*\.?\s*$")


def drop_note(text: str) -> str:
    """An editor's note after the answer removed (`BD=CE (not unique)`)."""
    return _NOTE.sub("", text).strip()


def _outer(text: str) -> str:
    """`text` without one pair of `$$`/`$` around all of it."""
    s = text.strip()
    for mark in ("$$", "$"):
        if len(s) > 2 * len(mark) and s.startswith(mark) and s.endswith(mark):
            return s[len(mark) : -len(mark)]
    return s


PART_RULES: tuple[Callable[[str], str], ...] = (
    drop_note,
    inner_dollars,
    unicode_math,
    left_right,
    latex_wrappers,
    degree_marks,
    trailing_punctuation,
    unit_suffix,
)


def normalize_part(text: str, hits: set[str] | None = None) -> str:
    """One answer through every part rule, in order (`hits` collects the rules that changed it).

    >>> normalize_part("$$\\\\left ( 3,7\\\\right ) $$")
    '( 3,7)'
    >>> normalize_part("30${}^\\\\circ $.")
    '30'
    """
    for rule in PART_RULES:
        new = rule(text)
        if rule is inner_dollars and "$" not in _outer(text):
            text = new
            continue  # one pair around the whole answer is the normal form, not a rule's hit
        if hits is not None and new != text.strip():
            hits.add(rule.__name__)
        text = new
    return text


# ----------------------------------------------------------------------------- textual parts
_WORD = re.compile(r"(?<!\\)\b[A-Za-z]{3,}\b")
_WORDS_ONLY = re.compile(r"[A-Za-z]{2,}(?:[\s,'-]+[A-Za-z]+)*")
#: A gold with more English words than this is a worked solution, not an answer.
PROSE_WORDS = 6


def is_prose(text: str) -> bool:
    """More than PROSE_WORDS words of 3+ letters outside LaTeX commands: a sentence."""
    return len(_WORD.findall(text)) > PROSE_WORDS


def is_words(text: str) -> bool:
    """Only words (`arithmetic`, `summer clothing`, `Yes`): an answer compared as text."""
    return bool(_WORDS_ONLY.fullmatch(text.strip()))


_CANON_DROP = re.compile(r"\\(?:text|mathrm|textbf|mathbf|displaystyle)|[\s${}]|\\\\")


def canonical_text(text: str) -> str:
    """The form two textual answers are compared in: case, spacing, braces, `$` and final
    punctuation ignored; `\\dfrac` read as `\\frac`.

    >>> canonical_text("  Summer  Clothing. ") == canonical_text("summer clothing")
    True
    """
    text = text.replace("\\dfrac", "\\frac")
    return trailing_punctuation(_CANON_DROP.sub("", text).lower())


# ----------------------------------------------------------------------------- splitting
@dataclass(frozen=True)
class Part:
    """One answer of a gold: normalised text, and whether it is compared as text only."""

    text: str
    textual: bool = False


@dataclass(frozen=True)
class Reading:
    """One way to answer a gold in full: every part, in order unless `unordered`."""

    parts: tuple[Part, ...]
    unordered: bool = False


@dataclass(frozen=True)
class GoldReading:
    """A gold answer understood: alternative readings (any one answered in full scores), and
    the names of the rules that fired on it."""

    readings: tuple[Reading, ...]
    rules: tuple[str, ...] = ()

    @property
    def single(self) -> Part | None:
        """The one part of a gold with one reading of one part, else None."""
        if len(self.readings) == 1 and len(self.readings[0].parts) == 1:
            return self.readings[0].parts[0]
        return None


_OPTION_NUMBERS = re.compile(r"^\s*(?:\d{1,2}\s*\.\s*)+$|^\s*(?:\(\d{1,2}\)\s*)+\.?\s*$")
_LABEL = re.compile(r"(?:^|(?<=[\s;,.$]))\(\d{1,2}\)|^\(\d{1,2}\)")
_BLOCK = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$", re.S)
_BLOCK_GAP = re.compile(r"^(?:\s|,|;|and|、)*$")
_OR = re.compile(r"\s+or\s+")
_OR_NOTE = re.compile(r"\(\s*or\s+(?:fill\s+in\s+)?(.+)\)\s*\.?\s*$", re.S)
_SPACED_NUMBERS = re.compile(r"^[-+−]?\d+(?:\.\d+)?(?:\s+[-+−]?\d+(?:\.\d+)?)+$")


def option_list(text: str) -> list[str] | None:
    """`1.3.4.5.` or `(1)(3)` (statement numbers of a "which are true" question): a set."""
    if not _OPTION_NUMBERS.match(text) or len(re.findall(r"\d+", text)) < 2:
        return None
    return re.findall(r"\d+", text)


def labelled_parts(text: str) -> list[str] | None:
    """`(1)... (2)...`: the answers of numbered sub-questions, in order."""
    marks = list(_LABEL.finditer(text))
    if len(marks) < 2 or marks[0].start() != 0:
        return None
    ends = [m.start() for m in marks[1:]] + [len(text)]
    return [text[m.end() : end] for m, end in zip(marks, ends, strict=True)]


def dollar_blocks(text: str) -> list[str] | None:
    """Several `$..$`/`$$..$$` blocks with only spaces, commas, `;` or `and` between them."""
    blocks = list(_BLOCK.finditer(text))
    if len(blocks) < 2:
        return None
    gaps = [text[: blocks[0].start()], text[blocks[-1].end() :]]
    gaps += [text[a.end() : b.start()] for a, b in itertools.pairwise(blocks)]
    if not all(_BLOCK_GAP.match(trailing_punctuation(gap)) for gap in gaps):
        return None
    return [m.group(0) for m in blocks]  # delimiters kept: they say the part is math


def _top_level_split(text: str, sep: str) -> list[str]:
    """`text` split at `sep` outside brackets (`(3,6), (7,8)` is two parts, `(3,6)` one)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _pieces(text: str, sep: str) -> list[str] | None:
    pieces = [p for p in _top_level_split(text, sep) if p.strip()]
    return pieces if len(pieces) >= 2 else None


def line_breaks(text: str) -> list[str] | None:
    """One answer per line (fill-in-the-blank golds), in order."""
    return _pieces(text, "\n")


def semicolons(text: str) -> list[str] | None:
    """Answers separated by `;`, in order."""
    return _pieces(text, ";")


def commas(text: str) -> list[str] | None:
    """Answers separated by `,` outside brackets, in order: in answers, and inside one labelled
    or line part of a gold (`(4)3, 9`); never at a gold's top level, where `1,500` or a list
    inside a sentence is more likely than two answers."""
    return _pieces(text, ",")


def or_solutions(text: str) -> list[str] | None:
    """`6 or 2 or 10`, `x<-2 or 0<x<1`: a set of solutions, all required, any order."""
    pieces = [p for p in _OR.split(text) if p.strip()]
    return pieces if len(pieces) >= 2 else None


def spaced_numbers(text: str) -> list[str] | None:
    """`169 555 671 105`, `6 6`: numbers separated by spaces only, in order."""
    return text.split() if _SPACED_NUMBERS.match(text.strip()) else None


Splitter = Callable[[str], "list[str] | None"]
#: Tried in order on a gold; the first that splits wins, and each piece is split again.
#: (unordered?, splitter). Commas split golds only inside a labelled or line part.
SPLITTERS: tuple[tuple[bool, Splitter], ...] = (
    (False, labelled_parts),
    (False, dollar_blocks),
    (False, line_breaks),
    (False, semicolons),
    (True, or_solutions),
    (False, spaced_numbers),
)


def _split(text: str, hits: set[str], depth: int = 0) -> tuple[list[str], bool]:
    """Atomic pieces of `text` (flattened), and whether their order does not matter."""
    text = text.strip()
    if is_prose(inner_dollars(text)):
        return [text], False
    options = option_list(inner_dollars(text))
    if options is not None:
        hits.add("option_list")
        return options, True
    for unordered, splitter in SPLITTERS + (((False, commas),) if depth else ()):
        pieces = splitter(text)
        if pieces is None:
            continue
        hits.add(splitter.__name__)
        flat: list[str] = []
        for piece in pieces:
            sub, _ = _split(piece, hits, depth + 1)
            flat += sub
        return flat, unordered and len(flat) == len(pieces)
    return [text], False


def _parts(pieces: Iterable[str], hits: set[str]) -> tuple[Part, ...]:
    parts = []
    for piece in pieces:
        delimited = "$" in piece or "\\(" in piece
        text = normalize_part(piece, hits)
        if is_prose(inner_dollars(piece)):
            hits.add("prose")
            parts.append(Part(trailing_punctuation(piece.strip()), textual=True))
            continue
        textual = not delimited and is_words(text)
        if textual:
            hits.add("words")
        parts.append(Part(text, textual))
    return tuple(p for p in parts if p.text)


def _reading(text: str, hits: set[str]) -> Reading:
    pieces, unordered = _split(text, hits)
    return Reading(_parts(pieces, hits), unordered)


@lru_cache(maxsize=65_536)
def read_gold(gold: str) -> GoldReading:
    """The gold answer as alternative readings of parts (see the module docstring).

    >>> [p.text for p in read_gold("$$7$$ $$10$$").readings[0].parts]
    ['7', '10']
    >>> read_gold("x=1 or x=2").readings[0].unordered
    True
    >>> read_gold("2n+1.").single
    Part(text='2n+1', textual=False)
    """
    hits: set[str] = set()
    text = gold.strip()
    readings: list[Reading] = []
    note = _NOTE.search(text)
    if note:
        hits.add("drop_note")
        text = text[: note.start()]
        if "choose one" in note.group(0):  # `a or b or c (choose one)`: any one alternative
            hits.add("choose_one")
            readings = [Reading(_parts([p], hits)) for p in _OR.split(text) if p.strip()]
            return GoldReading(tuple(readings), tuple(sorted(hits)))
    alternative = _OR_NOTE.search(text)
    if alternative:
        hits.add("or_alternative")
        readings.append(_reading(alternative.group(1), hits))
        text = text[: alternative.start()]
    readings.insert(0, _reading(text, hits))
    return GoldReading(tuple(r for r in readings if r.parts), tuple(sorted(hits)))


def split_answer(answer: str, parts: int) -> list[list[str]]:
    """Ways to read a response's answer as `parts` normalised answers (empty: none).

    Tried: the gold splitters, then commas, then spaces (`7 10` for `$$7$$ $$10$$`).

    >>> split_answer("7, 10", 2)
    [['7', '10']]
    >>> split_answer("(3,6) (7,8)", 2)
    [['(3,6)', '(7,8)']]
    """
    hits: set[str] = set()
    seen: list[list[str]] = []
    candidates = [_split(answer, hits, depth=1)[0]]
    candidates.append(_top_level_split(answer, ","))
    candidates.append(_top_level_split(inner_dollars(answer), " "))
    for pieces in candidates:
        normal = [normalize_part(p) for p in pieces if p.strip()]
        normal = [p for p in normal if p]
        if len(normal) == parts and normal not in seen:
            seen.append(normal)
    return seen


def count_rules(golds: Iterable[str]) -> dict[str, int]:
    """How many golds each rule changed (or split, or marked textual), by rule name."""
    counts: dict[str, int] = {}
    for gold in golds:
        for rule in read_gold(gold).rules:
            counts[rule] = counts.get(rule, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
