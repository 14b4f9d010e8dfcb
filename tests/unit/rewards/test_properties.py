"""Property tests: arbitrary unicode never raises and stays bounded in time."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eureka_trainer.rewards import accuracy_details, format_reward, repetition_penalty
from eureka_trainer.rewards.accuracy import ScoreCache, plan
from eureka_trainer.rewards.extract import extract_answer
from eureka_trainer.rewards.guards import refusal

pytestmark = pytest.mark.timeout(120)

TAGS = st.sampled_from(
    ["<think>", "</think>", "<answer>", "</answer>", "\\boxed{", "{", "}", "^", "$", "\\frac{"]
)
TEXT = st.lists(st.one_of(st.text(max_size=20), TAGS), max_size=30).map("".join)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(response=TEXT, answer=TEXT)
def test_local_parts_never_raise(response: str, answer: str) -> None:
    for mode in ("instruct", "boxed"):
        assert format_reward(response, mode) in (0.0, 1.0)
        extract_answer(response, mode)  # type: ignore[arg-type]
        plan(response, answer, mode, ScoreCache())  # type: ignore[arg-type]
    assert -1.0 <= repetition_penalty(response, ngram=1, min_words=1) <= 0.0
    refusal(response)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(response=TEXT, answer=st.one_of(TEXT, st.integers().map(str)))
@pytest.mark.usefixtures("warm_pool")
def test_accuracy_is_total_and_bounded(response: str, answer: str) -> None:
    start = time.monotonic()
    result = accuracy_details(response, answer, timeout=1.0)
    assert result.score in (0.0, 1.0)
    assert result.score == 0.0 or result.gold_parsed
    assert time.monotonic() - start < 3.0


@FAST
@given(answer=st.integers(min_value=-(10**30), max_value=10**30))
def test_an_integer_answer_always_matches_itself(answer: int) -> None:
    result = plan(f"<answer>{answer}</answer>", str(answer), "instruct", ScoreCache())
    assert getattr(result, "score", None) == 1.0
