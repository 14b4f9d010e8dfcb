"""repetition_penalty: a real penalty, bounded in [-max_penalty, 0]."""

from __future__ import annotations

import pytest

from eureka_trainer.rewards import repetition_penalty

PROSE = (
    "First we compute the area of the triangle using the base and the height, then we divide "
    "the total by two because a triangle is half of the rectangle that contains it."
)


def test_prose_is_not_penalised() -> None:
    assert repetition_penalty(PROSE) == 0.0


def test_loop_is_penalised_in_proportion() -> None:
    once = repetition_penalty(PROSE)
    twice = repetition_penalty(f"{PROSE} {PROSE}")
    ten = repetition_penalty(" ".join([PROSE] * 10))
    assert once == 0.0 > twice > ten >= -1.0
    assert ten == pytest.approx(-0.9, abs=0.01)


def test_scaling_and_ngram() -> None:
    text = "a b c d " * 20
    assert repetition_penalty(text, max_penalty=0.5) == pytest.approx(
        repetition_penalty(text) / 2, abs=1e-6
    )
    # 80 unigrams over 4 words: 76 repeat
    assert repetition_penalty(text, ngram=1) == pytest.approx(-76 / 80)


def test_short_responses_are_not_judged() -> None:
    assert repetition_penalty("yes yes yes yes") == 0.0
    assert repetition_penalty("yes " * 4, min_words=2) < 0


@pytest.mark.parametrize("kwargs", [{"ngram": 0}, {"max_penalty": -1.0}])
def test_bad_arguments(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        repetition_penalty(PROSE, **kwargs)  # type: ignore[arg-type]
