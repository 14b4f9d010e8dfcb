"""Bounded curves: never more than the bound, first and latest point always kept."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eureka_trainer.config.status import MAX_CURVE_POINTS
from eureka_trainer.reporting.curves import BoundedCurve, CurveSet, downsample


@given(n=st.integers(0, 3000), bound=st.integers(3, 600))
def test_bounded_curve_keeps_bound_first_and_latest(n: int, bound: int) -> None:
    curve = BoundedCurve(bound)
    for step in range(n):
        curve.add(step, step * 0.5)
        assert len(curve) <= bound
    steps, values = curve.points()
    assert len(steps) == len(values) == min(n, len(curve))
    assert len(steps) <= bound
    if n:
        assert steps[0] == 0 and values[0] == 0.0
        assert steps[-1] == n - 1 and values[-1] == (n - 1) * 0.5
        assert steps == sorted(set(steps))  # increasing, no duplicates
    if n <= bound:
        assert steps == list(range(n))  # nothing dropped before the bound is reached


def test_bounded_curve_spreads_points_over_the_run() -> None:
    curve = BoundedCurve(MAX_CURVE_POINTS)
    for step in range(1, 10_001):
        curve.add(step, float(step))
    steps, _ = curve.points()
    assert MAX_CURVE_POINTS // 2 <= len(steps) <= MAX_CURVE_POINTS
    gaps = {b - a for a, b in itertools.pairwise(steps[:-1])}
    assert len(gaps) == 1  # evenly strided (the held latest point aside)


@given(n=st.integers(0, 2000), bound=st.integers(2, 600))
def test_downsample_bound_first_last(n: int, bound: int) -> None:
    steps, values = downsample(list(range(n)), [float(i) for i in range(n)], bound)
    assert len(steps) <= bound
    assert steps == [int(v) for v in values]
    if n:
        assert steps[0] == 0 and steps[-1] == n - 1
    if n <= bound:
        assert len(steps) == n


def test_downsample_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="differ in length"):
        downsample([1, 2], [1.0])
    with pytest.raises(ValueError, match="max_points"):
        downsample([1], [1.0], 1)


def test_curve_set_skips_non_finite_and_serialises() -> None:
    curves = CurveSet(max_points=4)
    for step in range(1, 11):
        curves.add(step, {"reward/total": step / 10, "policy/kl": float("nan")})
    status = curves.to_status()
    assert list(status) == ["reward/total"]
    total = status["reward/total"]
    assert len(total["steps"]) <= 4
    assert total["steps"][0] == 1 and total["steps"][-1] == 10
    assert total["values"][-1] == pytest.approx(1.0)
