"""Online accuracy filter: inclusive bounds, freezing, refill, carry-over through state_dict."""

from __future__ import annotations

import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from eureka_trainer.algos import OnlineFilter
from eureka_trainer.config.spec import FilterSpec

ON = FilterSpec(enabled=True, lower=0.1, upper=0.9)


def acc(mean_tenths, n=10):
    """One group of n samples whose mean accuracy is mean_tenths / 10 (n = 10)."""
    return [1.0] * mean_tenths + [0.0] * (n - mean_tenths)


def test_bounds_are_inclusive():
    filt = OnlineFilter(ON, batch_groups=100)
    kept = filt.add(list("abcde"), [acc(0), acc(1), acc(5), acc(9), acc(10)], step=1)
    assert kept == [False, True, True, True, False]
    assert filt.pending == 3


def test_inclusive_bounds_hold_for_float32_tensors():
    filt = OnlineFilter(FilterSpec(enabled=True, lower=0.3, upper=0.7), batch_groups=100)
    accuracy = torch.tensor([acc(3), acc(7), acc(2), acc(8)], dtype=torch.float32)
    assert filt.add(["a", "b", "c", "d"], accuracy, step=1) == [True, True, False, False]


def test_freezing_steps():
    spec = FilterSpec(enabled=True, lower=0.1, upper=0.9, freezing_filter_steps=3)
    filt = OnlineFilter(spec, batch_groups=100)
    assert filt.add(["x"], [acc(10)], step=3) == [True]  # step <= freezing: not active
    assert filt.add(["y"], [acc(10)], step=4) == [False]
    assert not filt.active(3) and filt.active(4)


def test_disabled_filter_keeps_everything():
    filt = OnlineFilter(FilterSpec(enabled=False, lower=0.1, upper=0.9), batch_groups=2)
    assert filt.add(["a", "b"], [acc(0), acc(10)], step=99) == [True, True]
    assert filt.take() == ["a", "b"]
    assert filt.metrics()["filter/pass_rate"] == 1.0


def test_refill_until_full_then_carry_over():
    filt = OnlineFilter(ON, batch_groups=3)
    filt.add(["a", "b", "c"], [acc(0), acc(5), acc(10)], step=1)  # keeps b
    assert not filt.ready and filt.missing == 2
    with pytest.raises(RuntimeError, match="needs 3 kept groups, 1 are pending"):
        filt.take()
    filt.add(["d", "e", "f"], [acc(2), acc(10), acc(4)], step=1)  # keeps d, f
    assert filt.ready and filt.missing == 0
    filt.add(["g", "h"], [acc(6), acc(7)], step=1)  # a fourth and fifth kept group
    assert filt.take() == ["b", "d", "f"]
    assert filt.pending == 2
    metrics = filt.metrics()
    assert metrics["filter/kept_groups"] == 5
    assert metrics["filter/carried_groups"] == 2
    assert metrics["filter/pass_rate"] == pytest.approx(5 / 8)
    assert metrics["filter/accuracy_before"] == pytest.approx(
        (0 + 5 + 10 + 2 + 10 + 4 + 6 + 7) / 80
    )
    assert metrics["filter/rounds"] == 3
    # the next batch starts with the carried groups
    filt.add(["i"], [acc(3)], step=2)
    assert filt.take() == ["g", "h", "i"]
    assert filt.metrics()["filter/carried_groups"] == 0
    assert filt.metrics()["filter/kept_groups"] == 1


def test_batch_of_only_carried_groups_reports_no_rate():
    filt = OnlineFilter(ON, batch_groups=1)
    filt.add(["a", "b"], [acc(5), acc(5)], step=1)
    assert filt.take() == ["a"]
    assert filt.take() == ["b"]
    assert "filter/pass_rate" not in filt.metrics()
    assert filt.metrics()["filter/kept_groups"] == 0


def test_state_dict_round_trip_resumes_exactly():
    def run(resume_after_first):
        filt = OnlineFilter(ON, batch_groups=2)
        out = []
        rounds = [
            (["a", "b", "c"], [acc(5), acc(0), acc(5)]),
            (["d", "e", "f"], [acc(5), acc(1), acc(9)]),
            (["g"], [acc(3)]),
        ]
        for i, (groups, accuracy) in enumerate(rounds):
            filt.add(groups, accuracy, step=i + 1)
            if i == 0 and resume_after_first:
                state = pickle.loads(pickle.dumps(filt.state_dict()))
                filt = OnlineFilter(ON, batch_groups=2)
                filt.load_state_dict(state)
            while filt.ready:
                out.append((filt.take(), filt.metrics()))
        return out, filt.state_dict()

    assert run(False) == run(True)
    out, state = run(False)
    assert [batch for batch, _ in out] == [["a", "c"], ["d", "e"], ["f", "g"]]
    assert state["pending"] == []


def test_state_dict_keeps_groups_as_they_are():
    class Group:
        def __init__(self, tag):
            self.tag = tag

    filt = OnlineFilter(ON, batch_groups=5)
    groups = [Group(1), Group(2)]
    filt.add(groups, [acc(5), acc(5)], step=1)
    assert filt.state_dict()["pending"][0] is groups[0]


def test_ragged_groups_and_bad_input():
    filt = OnlineFilter(ON, batch_groups=5)
    assert filt.add(["a", "b"], [[1.0, 0.0], [1.0, 1.0, 1.0, 0.0]], step=1) == [True, True]
    with pytest.raises(ValueError, match="2 groups but 1 accuracy rows"):
        filt.add(["a", "b"], [[1.0]], step=1)
    with pytest.raises(ValueError, match="group 0 has no accuracy"):
        filt.add(["a"], [[]], step=1)
    with pytest.raises(ValueError, match="batch_groups"):
        OnlineFilter(ON, batch_groups=0)


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 5),
    rounds=st.lists(
        st.lists(st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=6), max_size=6),
        max_size=8,
    ),
    lower=st.sampled_from([0.0, 0.1, 0.5]),
    upper=st.sampled_from([0.5, 0.9, 1.0]),
)
def test_no_kept_group_is_lost_or_duplicated(batch, rounds, lower, upper):
    spec = FilterSpec(enabled=True, lower=lower, upper=upper)
    filt = OnlineFilter(spec, batch_groups=batch)
    taken, kept_expected, counter = [], [], 0
    for accuracy in rounds:
        groups = list(range(counter, counter + len(accuracy)))
        counter += len(accuracy)
        decisions = filt.add(groups, accuracy, step=1)
        for group, row, keep in zip(groups, accuracy, decisions, strict=True):
            assert keep == (lower <= sum(row) / len(row) <= upper)
            if keep:
                kept_expected.append(group)
        while filt.ready:
            out = filt.take()
            assert len(out) == batch
            taken += out
    assert taken + filt.state_dict()["pending"] == kept_expected
