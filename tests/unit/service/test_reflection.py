"""The reflection-word rate ("aha" signal) per step."""

from __future__ import annotations

import pytest

from eureka_service.reflection import ReflectionRate, is_reflective


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Wait, that is wrong.", True),
        ("Let me re-check the sum.", True),
        ("I should verify this: 4.", True),
        ("Let me double-check.", True),
        ("HMM, the angle is 30.", True),
        ("The waiter brought 4 plates.", False),  # whole words only
        ("The answer is 4.", False),
    ],
)
def test_is_reflective(text: str, expected: bool) -> None:
    assert is_reflective(text) is expected


def test_rate_per_step_ignores_malformed_records() -> None:
    rate = ReflectionRate()
    rate.extend(
        [
            {"step": 2, "response": "wait"},
            {"step": 1, "response": "4"},
            {"step": 2, "response": "4"},
            {"step": 1, "response": "verify"},
            {"step": 1, "response": "done"},
            {"response": "wait"},  # no step
            {"step": 3, "response": None},
        ]
    )
    steps, values = rate.series()
    assert steps == [1, 2]
    assert values == pytest.approx([1 / 3, 1 / 2])
