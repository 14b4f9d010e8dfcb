"""Hostile model outputs: every call returns within the timeout, from the main thread or not."""

from __future__ import annotations

import threading
import time

import pytest

from eureka_trainer.rewards import accuracy_details, format_reward, repetition_penalty

pytestmark = [pytest.mark.usefixtures("warm_pool"), pytest.mark.timeout(120)]

TIMEOUT = 1.0
#: Allowance over the timeout for a busy 2-core machine (kill + reply + scheduling).
SLACK = 2.0
MB = 1 << 20

HOSTILE = {
    "unclosed tags": "<think><answer><answer><think>" * 1000,
    "nested boxed": "\\boxed{" * 2000 + "1" + "}" * 2000,
    "unbalanced boxed": "\\boxed{" * 50_000,
    "megabyte answer": "<answer>" + "9" * MB + "</answer>",
    "megabyte no tags": "1+" * (MB // 2),
    "megabyte of braces": "<answer>" + "{" * MB + "</answer>",
    "deep parentheses": "<answer>$" + "(" * 500 + "1" + ")" * 500 + "$</answer>",
    "frac tower": "<answer>$" + "\\frac{1}{" * 300 + "2" + "}" * 300 + "$</answer>",
    "power tower": "<answer>$10^{10^{10^{10}}}$</answer>",
    "brace-less tower": "<answer>$2^2^2^2^2^2$</answer>",
    "python power": "<answer>9**9**9**9</answer>",
    "huge power": "<answer>$10^{10^{10}}$</answer>",
    "huge factorial": "<answer>$(10^{10})!$</answer>",
    "huge exponent": "<answer>$10^{10000000}$</answer>",
    # These pass the guards and hang sympy: the timeout ends them.
    "polynomial power": "<answer>$(x+1)^{5000}$</answer>",
    "sine of a huge number": "<answer>$\\sin(10^{90000})$</answer>",
    "root of a huge number": "<answer>$\\sqrt[7]{2^{99999}+1}$</answer>",
    "null bytes": "<answer>\x00\x00$\\frac{\x00}{}$</answer>",
    "lone surrogate": "<answer>\ud800 $1$</answer>",
}


def _timed(response: str, mode: str = "instruct") -> tuple[float, float]:
    start = time.monotonic()
    result = accuracy_details(response, "2", mode, timeout=TIMEOUT)  # type: ignore[arg-type]
    return result.score, time.monotonic() - start


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_main_thread_within_timeout(name: str) -> None:
    for mode in ("instruct", "boxed"):
        score, elapsed = _timed(HOSTILE[name], mode)
        assert score == 0.0
        assert elapsed < TIMEOUT + SLACK, f"{name} ({mode}) took {elapsed:.2f}s"


def test_worker_threads_within_timeout() -> None:
    """Four threads at once (more than the shared pool's two workers), each on a hanging input.

    The inputs are new to this process (verdicts are remembered), so each one really hangs.
    """
    names = [f"$(x+1)^{{{k}}}$" for k in (5001, 5002)] + [
        f"$\\sin(10^{{{k}}})$" for k in (90001, 90002)
    ]
    results: dict[str, tuple[float, float]] = {}

    def work(name: str) -> None:
        results[name] = _timed(f"<answer>{name}</answer>")

    threads = [threading.Thread(target=work, args=(n,)) for n in names]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert set(results) == set(names), "a thread raised or hung"
    assert all(score == 0.0 for score, _ in results.values())
    assert all(elapsed >= TIMEOUT for _, elapsed in results.values())  # they did hang
    assert time.monotonic() - start < TIMEOUT + SLACK + 1.0  # in parallel, not in series


def test_correct_answer_in_a_thread() -> None:
    out: list[float] = []
    t = threading.Thread(
        target=lambda: out.append(accuracy_details("<answer>$\\frac{4}{2}$</answer>", "2").score)
    )
    t.start()
    t.join(timeout=30)
    assert out == [1.0]


def test_timeout_is_reported() -> None:
    result = accuracy_details("<answer>$(x+1)^{4999}$</answer>", "2", timeout=TIMEOUT)
    assert (result.score, result.timed_out, result.path) == (0.0, True, "timeout")
    assert result.gold_parsed  # the gold parsed; the answer hung


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_cheap_components_are_linear(name: str) -> None:
    start = time.monotonic()
    format_reward(HOSTILE[name])
    format_reward(HOSTILE[name], "boxed")
    repetition_penalty(HOSTILE[name])
    assert time.monotonic() - start < 1.0


#: Shapes aimed at the caller-side string rules (gold rules, choice reading): long blank or
#: punctuation runs that an adjacent `\s*\s*` or a `[.;,]+$` would backtrack on quadratically.
CALLER_SIDE = {
    "dots then a letter": "." * 49_000 + "x",
    "blanks then a letter": " " * 49_000 + "x",
    "answer and blanks": "answer" + " " * 49_000 + "!",
    "choice, comma and blanks": "B," + " " * 49_000 + "x",
    "choice and a megabyte of blanks": "B" + " " * MB + "x",
    "labels and blanks": "(1)" + " " * 49_000 + "x",
    "option numbers": "1." * 24_000 + "x",
}


@pytest.mark.parametrize("name", sorted(CALLER_SIDE))
@pytest.mark.parametrize("gold", ["B", "2", "$$7$$ $$10$$"])
def test_caller_side_rules_are_linear(name: str, gold: str) -> None:
    from eureka_trainer.rewards.accuracy import ScoreCache, plan

    start = time.monotonic()
    plan(f"<answer>{CALLER_SIDE[name]}</answer>", gold, "instruct", ScoreCache())
    assert time.monotonic() - start < 1.0
