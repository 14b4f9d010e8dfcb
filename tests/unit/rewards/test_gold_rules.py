"""Each gold-reading rule of rewards/golds.py on its own (pure string work, no sympy).

Every part rule and splitter must have a case here: `test_every_rule_has_a_case` fails when a
rule is added without one. The gold examples are MMK12's (data/k12_answers.json).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from eureka_trainer.rewards import golds
from eureka_trainer.rewards.golds import (
    PART_RULES,
    SPLITTERS,
    Part,
    canonical_text,
    count_rules,
    read_gold,
    split_answer,
)

PART_CASES: list[tuple[Callable[[str], str], str, str]] = [
    (golds.drop_note, "$$BD=CE$$ (not unique)", "$$BD=CE$$"),
    (golds.drop_note, "$$y = x$$ (not unique, any value close to it is acceptable)", "$$y = x$$"),
    (golds.inner_dollars, "4$\\sqrt{3}$", "4\\sqrt{3}"),
    (golds.inner_dollars, "\\(a < c < b\\)", "a < c < b"),
    (golds.unicode_math, "2π", "2\\pi"),
    (golds.unicode_math, "5√3", "5\\sqrt{3}"),
    (golds.unicode_math, "x<−2", "x<-2"),
    (golds.unicode_math, "4 cm²", "4 cm^{2}"),
    (golds.left_right, "\\left ( 3,7\\right )", "( 3,7)"),
    (golds.left_right, "\\leftarrow", "\\leftarrow"),  # a command that starts with "left"
    (golds.latex_wrappers, "\\number{24}", "24"),
    (golds.latex_wrappers, "\\frac{\\text{24}}{\\text{5}}", "\\frac{24}{5}"),
    (golds.latex_wrappers, "\\quantity{24}{cm^{2}}", "24"),
    (golds.latex_wrappers, "30\\ \\unit{cm^{2}}", "30"),
    (golds.latex_wrappers, "108\\mathrm \\pi", "108\\pi"),
    (golds.degree_marks, "30°", "30"),
    (golds.degree_marks, "20^{\\circ}", "20"),
    (golds.degree_marks, "105^{ \\circ }", "105"),
    (golds.degree_marks, "30{}^\\circ", "30"),
    (golds.degree_marks, "{{8}^{\\circ }}", "{{8}}"),
    (golds.degree_marks, "70textdegree", "70"),
    (golds.trailing_punctuation, "2n+1.", "2n+1"),
    (golds.trailing_punctuation, "\\frac{4}{3}.", "\\frac{4}{3}"),
    (golds.trailing_punctuation, "2;", "2"),
    (golds.trailing_punctuation, "8.4", "8.4"),
    (golds.unit_suffix, "360 sets", "360"),
    (golds.unit_suffix, "4286m", "4286"),
    (golds.unit_suffix, "14 meters", "14"),
    (golds.unit_suffix, "2n", "2n"),  # a variable is not a unit
]


@pytest.mark.parametrize(("rule", "text", "expected"), PART_CASES)
def test_part_rule(rule: Callable[[str], str], text: str, expected: str) -> None:
    assert rule(text) == expected


SPLIT_CASES: list[tuple[Callable[[str], list[str] | None], str, list[str] | None]] = [
    (golds.labelled_parts, "(1)$$-2$$ (2)$$3$$", ["$$-2$$ ", "$$3$$"]),
    (golds.labelled_parts, "(1, 2)", None),  # an interval, not a label
    (golds.dollar_blocks, "$$7$$ $$10$$", ["$$7$$", "$$10$$"]),
    (golds.dollar_blocks, "$$4$$,$$6$$", ["$$4$$", "$$6$$"]),
    (golds.dollar_blocks, "$\\sqrt{2}$π+4$\\sqrt{2}$", None),  # one expression
    (golds.line_breaks, "(3,6)\n(7,8)", ["(3,6)", "(7,8)"]),
    (golds.semicolons, "1;10.5", ["1", "10.5"]),
    (golds.or_solutions, "6 or 2 or 10", ["6", "2", "10"]),
    (golds.spaced_numbers, "169 555 671 105", ["169", "555", "671", "105"]),
    (golds.spaced_numbers, "x > 2", None),
    (golds.commas, "3, 9", ["3", " 9"]),
    (golds.commas, "(3, 9)", None),  # inside brackets: one point
    (golds.option_list, "1.3.4.5.", ["1", "3", "4", "5"]),
    (golds.option_list, "(1)(3)(4)", ["1", "3", "4"]),
    (golds.option_list, "2.1", None),  # a decimal
]


@pytest.mark.parametrize(("splitter", "text", "expected"), SPLIT_CASES)
def test_splitter(
    splitter: Callable[[str], list[str] | None], text: str, expected: list[str] | None
) -> None:
    assert splitter(text) == expected


def test_every_rule_has_a_case() -> None:
    named = {rule.__name__ for rule, _, _ in PART_CASES}
    named |= {s.__name__ for s, _, _ in SPLIT_CASES}
    assert {r.__name__ for r in PART_RULES} <= named
    assert {s.__name__ for _, s in SPLITTERS} <= named


def parts(gold: str) -> list[list[str]]:
    return [[p.text for p in r.parts] for r in read_gold(gold).readings]


def test_readings() -> None:
    assert parts("$$7$$ $$10$$") == [["7", "10"]]
    assert parts("(1)$$3$$,$$1$$,$$6$$ (2)$$79$$") == [["3", "1", "6", "79"]]
    assert parts("(1) 16 12.5\n(2) \\number{10500}") == [["16", "12.5", "10500"]]
    assert parts("$$\\dfrac{35}{4}$$(or fill in $$8.75$$)") == [["\\dfrac{35}{4}"], ["8.75"]]
    assert parts("$$a$$ or $$b$$ (choose one)") == [["a"], ["b"]]  # alternatives, any one
    assert read_gold("x < −2 or 0 < x < 1.").readings[0].unordered
    assert not read_gold("$$7$$ $$10$$").readings[0].unordered
    assert read_gold("1.3.4.").readings[0].unordered


def test_textual_parts() -> None:
    assert read_gold("arithmetic").single == Part("arithmetic", textual=True)
    assert read_gold("$$abc$$").single == Part("abc", textual=False)  # delimited: a product
    worked = "Let r be the radius; then 48π = πr²×3 gives r = 4, so the minor axis is 8, so 8."
    assert read_gold(worked).single == Part(worked[:-1], textual=True)  # never the last number
    assert "prose" in read_gold(worked).rules
    assert canonical_text("Summer  Clothing.") == canonical_text("summer clothing")


def test_split_answer() -> None:
    assert split_answer("7, 10", 2) == [["7", "10"]]
    assert split_answer("$7$ $10$", 2) == [["7", "10"]]
    assert split_answer("7 10", 2) == [["7", "10"]]
    assert split_answer("(3,6)", 2) == []
    assert split_answer("10", 2) == []


def test_rule_counts_on_mmk12_match_the_docs() -> None:
    """docs/rewards.md states how often each rule fires on MMK12: it must stay true."""
    root = Path(__file__).parents[3]
    answers = json.loads((Path(__file__).parent / "data/k12_answers.json").read_text())
    counts = count_rules(a["answer"] for a in answers)
    documented: dict[str, int] = {}
    for line in (root / "docs/rewards.md").read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].isdigit() and cells[0] in counts:
            documented[cells[0]] = int(cells[1])
    assert documented == counts
