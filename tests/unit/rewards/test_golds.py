"""Real gold answers: the 500 MMK12 golds (tests/unit/rewards/data) read right, and each rule.

Every gold, given back as the answer (inside `<answer>`, with and without `$`), must score 1;
an answer to only some parts of a multi-part gold must score 0. The golds are written as their
authors wrote them (see data/README.md); a reward that reads them wrongly teaches the wrong
thing: before these rules `$$7$$ $$10$$` read as 10 (the partial answer `10` scored 1 and the
full `7, 10` scored 0), `2n+1.` read as 2 and `\\left ( 3,7\\right )` as 3.7.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from eureka_trainer.config import RewardSpec, RewardsSpec
from eureka_trainer.rewards import BatchScorer
from eureka_trainer.rewards.golds import read_gold

pytestmark = pytest.mark.timeout(180)

GOLDS: list[str] = [
    r["answer"] for r in json.loads((Path(__file__).parent / "data/k12_answers.json").read_text())
]

#: Golds that cannot be given back without `$` and still be read as their authors meant: with
#: the delimiters gone, nothing marks where one answer ends and the next begins.
AMBIGUOUS_WITHOUT_DOLLARS = {
    "$$x \\geqslant 2$$(or $$x > 2$$)": "`x \\geqslant 2(or x > 2)`: the alternative runs into "
    "the answer",
    "(1)$$\\dfrac{b}{a}$$ (2)$$(2n+500)$$ (3)$$abc$$ $$2ab + 2bc + 2ac$$": "`abc 2ab + 2bc + 2ac`"
    ": two answers with only a space between them",
    "$$7 \\pi$$ $$\\dfrac{8 \\pi }{3}$$": "`7 \\pi \\dfrac{8 \\pi }{3}`: two answers, or one "
    "product?",
}


@pytest.fixture(scope="module")
def scorer() -> Iterator[BatchScorer]:
    spec = RewardsSpec(components=[RewardSpec(name="accuracy")], timeout_seconds=10.0, workers=2)
    with BatchScorer(spec) as s:
        s.warm_up()
        yield s


def tagged(answer: str) -> str:
    return f"<think>t</think><answer>{answer}</answer>"


def wrong(scorer: BatchScorer, answers: list[str], golds: list[str]) -> list[tuple[str, str]]:
    batch = scorer.score([tagged(a) for a in answers], golds)
    return [
        (g, a)
        for g, a, s in zip(golds, answers, batch.components["accuracy"], strict=True)
        if s != 1.0
    ]


def test_the_fixture_is_the_whole_set() -> None:
    assert len(GOLDS) == 500


def test_every_gold_given_back_with_dollars_scores_1(scorer: BatchScorer) -> None:
    answers = [g if "$" in g else f"${g}$" for g in GOLDS]
    assert wrong(scorer, answers, GOLDS) == []


def test_every_gold_given_back_without_dollars_scores_1(scorer: BatchScorer) -> None:
    answers = [g.replace("$", "") for g in GOLDS]
    failed = wrong(scorer, answers, GOLDS)
    assert {g for g, _ in failed} == set(AMBIGUOUS_WITHOUT_DOLLARS)


def _multi_part() -> list[tuple[str, list[str]]]:
    out = []
    for gold in GOLDS:
        reading = read_gold(gold)
        if len(reading.readings) == 1 and len(reading.readings[0].parts) >= 2:
            out.append((gold, [p.text for p in reading.readings[0].parts]))
    return out


def test_a_partial_answer_to_a_multi_part_gold_scores_0(scorer: BatchScorer) -> None:
    multi = _multi_part()
    assert len(multi) >= 60  # a fifth of the set has several answers in one gold
    answers, golds = [], []
    for gold, parts in multi:
        for partial in (parts[:1], parts[-1:], parts[:-1]):
            answers.append(", ".join(f"${p}$" for p in partial))
            golds.append(gold)
    batch = scorer.score([tagged(a) for a in answers], golds)
    scored = [
        (g, a) for g, a, s in zip(golds, answers, batch.components["accuracy"], strict=True) if s
    ]
    assert scored == []


def test_every_part_answered_in_a_plain_list_scores_1(scorer: BatchScorer) -> None:
    """The whole answer written as a user would (`7, 10`; `3; 9`), not as the gold's string."""
    answers, golds = [], []
    for gold, parts in _multi_part():
        answers += [", ".join(f"${p}$" for p in parts), "; ".join(parts)]
        golds += [gold, gold]
    assert wrong(scorer, answers, golds) == []


@pytest.mark.parametrize(
    ("gold", "answer", "expected"),
    [
        ("$$7$$ $$10$$", "7, 10", 1.0),
        ("$$7$$ $$10$$", "$7$ and $10$", 1.0),
        ("$$7$$ $$10$$", "10, 7", 0.0),  # two blanks in order
        ("$$7$$ $$10$$", "10", 0.0),
        ("(3,6)\n(7,8)", "(3,6), (7,8)", 1.0),
        ("(3,6)\n(7,8)", "(3,6)", 0.0),
        ("6 or 2 or 10", "2, 6, 10", 1.0),  # a set of solutions: any order, all of them
        ("6 or 2 or 10", "2 or 6", 0.0),
        ("x < −2 or 0 < x < 1.", "0<x<1 or x<-2", 1.0),
        ("1.3.4.", "1, 3, 4", 1.0),  # statement numbers, not the decimal 1.3
        ("1.3.4.", "1.3", 0.0),
        ("2n+1.", "2", 0.0),  # the full stop is a sentence's, not a decimal point
        ("2n+1.", "$1+2n$", 1.0),
        ("$$\\left ( 3,7\\right ) $$", "3.7", 0.0),
        ("$$\\left ( 3,7\\right ) $$", "(3, 7)", 1.0),
        ("30${}^\\circ $", "30", 1.0),
        ("$$105^{ \\circ }$$", "105°", 1.0),
        ("360 sets", "360", 1.0),
        ("$$\\quantity{18}{cm}$$,$$\\quantity{31}{cm}$$", "18 cm, 31 cm", 1.0),
        ("$$\\dfrac{35}{4}$$(or fill in $$8.75$$)", "8.75", 1.0),
        ("$$BD=CE$$ (not unique)", "$BD=CE$", 1.0),
        ("arithmetic", "Arithmetic.", 1.0),  # words compare as text...
        ("arithmetic", "geometric", 0.0),  # ...not as the product a*r*i*t*h*m*e*t*i*c
        ("summer clothing\nwinter clothing", "summer clothing, winter clothing", 1.0),
        ("(A∩B)∪(C∪(A∪B)).", "(A∩B)∪(C∪(A∪B))", 1.0),  # math-verify keeps only a string
        ("(A∩B)∪(C∪(A∪B)).", "A", 0.0),
        (GOLDS[11], "300", 0.0),  # a worked solution as gold: never a number pulled out of it
        ("$\\frac{\\text{24}}{\\text{5}}$", "4.8", 1.0),
        ("4$\\sqrt{3}$", "4", 0.0),  # read as 4 before
        ("4$\\sqrt{3}$", "$\\sqrt{48}$", 1.0),
    ],
)
def test_gold_readings(scorer: BatchScorer, gold: str, answer: str, expected: float) -> None:
    batch = scorer.score([tagged(answer)], [gold])
    assert batch.components["accuracy"] == [expected]
    assert batch.valid == [True]
