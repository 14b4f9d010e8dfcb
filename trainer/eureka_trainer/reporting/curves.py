"""Bounded metric curves: a whole run's history in at most `max_points` points per series.

The RLJob status must stay small (etcd objects are limited to ~1.5 MiB and every watcher
receives the whole object on each patch), so each series keeps a progressively downsampled
history: points at every `stride`-th report, the stride doubling whenever the series is full.
The first point and the latest point are always kept, so a curve shows where training started
and where it is now, whatever its length.

Pure Python, no I/O: the Kubernetes sink and the job service both use it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from eureka_trainer.config.status import MAX_CURVE_POINTS


def downsample(
    steps: Sequence[int], values: Sequence[float], max_points: int = MAX_CURVE_POINTS
) -> tuple[list[int], list[float]]:
    """At most `max_points` points of a series, evenly strided, first and last kept.

    steps, values: [n] (same length). Returns ([m], [m]) with m <= max_points.
    """
    if len(steps) != len(values):
        raise ValueError(f"steps and values differ in length: {len(steps)} != {len(values)}")
    if max_points < 2:
        raise ValueError(f"max_points must be >= 2, got {max_points}")
    n = len(steps)
    if n <= max_points:
        return list(steps), list(values)
    stride = -(-(n - 1) // (max_points - 1))  # ceil: indices 0, s, 2s, ... stay below n
    picked = list(range(0, n, stride))
    if picked[-1] != n - 1:
        picked.append(n - 1)
    if len(picked) > max_points:  # the appended last point overflowed: drop the one before it
        del picked[-2]
    return [steps[i] for i in picked], [values[i] for i in picked]


@dataclass
class BoundedCurve:
    """One series that never holds more than `max_points` points (first and latest kept).

    Appends are O(1) amortised; when full, every other kept point is dropped and the stride
    at which new points are kept doubles, so the kept points stay evenly spread over the run.
    """

    max_points: int = MAX_CURVE_POINTS
    _steps: list[int] = field(default_factory=list)
    _values: list[float] = field(default_factory=list)
    _stride: int = 1
    _count: int = 0
    _latest: tuple[int, float] | None = None

    def __post_init__(self) -> None:
        if self.max_points < 3:
            raise ValueError(f"max_points must be >= 3, got {self.max_points}")

    def add(self, step: int, value: float) -> None:
        """Append the point of one report (steps are expected to increase)."""
        index, self._count = self._count, self._count + 1
        if index % self._stride == 0:
            self._steps.append(step)
            self._values.append(value)
            self._latest = None
        else:
            self._latest = (step, value)
        # The kept points plus the held latest point must fit; halve the kept points when not.
        while len(self._steps) + (self._latest is not None) > self.max_points:
            if self._latest is None and len(self._steps) % 2 == 0:
                # The newest kept point sits at an odd position and would be dropped: hold it.
                self._latest = (self._steps[-1], self._values[-1])
            self._steps = self._steps[::2]
            self._values = self._values[::2]
            self._stride *= 2

    def points(self) -> tuple[list[int], list[float]]:
        """The kept points, oldest first, the latest appended when it was not kept."""
        steps, values = list(self._steps), list(self._values)
        if self._latest is not None:
            steps.append(self._latest[0])
            values.append(self._latest[1])
        return steps, values

    def __len__(self) -> int:
        return len(self._steps) + (self._latest is not None)


@dataclass
class CurveSet:
    """Bounded curves of many metrics, fed one step at a time."""

    max_points: int = MAX_CURVE_POINTS
    curves: dict[str, BoundedCurve] = field(default_factory=dict)

    def add(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record every finite metric of one step (NaN and infinities are skipped)."""
        for name, value in metrics.items():
            number = float(value)
            if number != number or number in (float("inf"), float("-inf")):
                continue
            curve = self.curves.get(name)
            if curve is None:
                curve = self.curves[name] = BoundedCurve(self.max_points)
            curve.add(step, number)

    def extend(self, rows: Iterable[tuple[int, Mapping[str, float]]]) -> None:
        """Record several steps, oldest first."""
        for step, metrics in rows:
            self.add(step, metrics)

    def to_status(self) -> dict[str, dict[str, list[float] | list[int]]]:
        """`status.curves`: {metric: {steps: [...], values: [...]}}."""
        out: dict[str, dict[str, list[float] | list[int]]] = {}
        for name, curve in sorted(self.curves.items()):
            steps, values = curve.points()
            out[name] = {"steps": steps, "values": values}
        return out
