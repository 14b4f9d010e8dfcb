"""pass@k, majority@k and the summary, against brute-force definitions."""

from __future__ import annotations

from itertools import combinations

import pytest

from eureka_trainer.evaluation.metrics import (
    ScoredRecord,
    flat_metrics,
    ks_for,
    majority_correct,
    pass_at_k,
    summarize,
)


def _brute_pass_at_k(correct: list[int], k: int) -> float:
    """Share of k-subsets of the samples with at least one correct sample (the definition)."""
    subsets = list(combinations(correct, k))
    return sum(any(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_equals_the_subset_definition(n: int) -> None:
    for c in range(n + 1):
        correct = [1] * c + [0] * (n - c)
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(_brute_pass_at_k(correct, k))


def test_pass_at_k_refuses_k_above_n() -> None:
    with pytest.raises(ValueError, match="k <= n"):
        pass_at_k(2, 1, 3)


def test_majority_uses_the_most_frequent_normalised_answer() -> None:
    # "$3$" and " 3" are the same vote; the missing answer does not vote.
    assert majority_correct(["2", "$3$", " 3", None], [0, 1, 1, 0]) == 1.0
    assert majority_correct(["2", "2", "3"], [0, 0, 1]) == 0.0
    assert majority_correct([None, None], [0, 0]) == 0.0
    # a tie goes to the answer seen first
    assert majority_correct(["4", "5"], [1, 0]) == 1.0
    assert majority_correct(["5", "4"], [0, 1]) == 0.0


def test_ks_for() -> None:
    assert ks_for(1) == [1]
    assert ks_for(4) == [1, 2, 4]
    assert ks_for(6) == [1, 2, 4, 6]


def _rec(ident: str, correct: list[float], subject: str, valid: bool = True) -> ScoredRecord:
    return ScoredRecord(
        id=ident,
        answer="1",
        responses=["r"] * len(correct),
        correct=correct,
        extracted=["1" if c else "0" for c in correct],
        valid=valid,
        groups={"subject": subject},
    )


def test_summary_overall_groups_and_invalid_gold() -> None:
    records = [
        _rec("a", [1, 1, 0, 0], "math"),
        _rec("b", [0, 0, 0, 0], "math"),
        _rec("c", [1, 1, 1, 0], "physics"),
        _rec("d", [1, 1, 1, 1], "physics", valid=False),  # left out of every mean
    ]
    s = summarize(records)
    assert s["records"] == 4 and s["scored"] == 3 and s["invalid_gold"] == ["d"]
    assert s["accuracy"] == pytest.approx((0.5 + 0 + 0.75) / 3)
    assert s["pass@4"] == pytest.approx(2 / 3)
    assert s["pass@1"] == pytest.approx(s["accuracy"])
    # majority: a -> tie 1/0 first seen "1" -> right; b -> wrong; c -> "1" -> right
    assert s["maj@4"] == pytest.approx(2 / 3)
    assert s["groups"]["subject"]["math"]["accuracy"] == pytest.approx(0.25)
    assert s["groups"]["subject"]["physics"]["count"] == 1
    flat = flat_metrics(s)
    assert flat["eval/accuracy"] == pytest.approx(s["accuracy"])
    assert flat["eval/maj@4"] == pytest.approx(2 / 3)
    assert flat["eval/subject/physics/accuracy"] == pytest.approx(0.75)
    assert flat["eval/invalid_gold"] == 1.0


def test_greedy_summary_has_no_pass_at_k() -> None:
    s = summarize([_rec("a", [1], "x"), _rec("b", [0], "x")])
    assert s["accuracy"] == 0.5
    assert not any(k.startswith(("pass@", "maj@")) for k in s)
