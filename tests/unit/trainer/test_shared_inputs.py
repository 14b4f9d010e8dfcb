"""The pure parts of `learner.shared_inputs`: finding copies and indexing blocks of rows."""

from __future__ import annotations

import torch

from eureka_trainer.learner.shared_inputs import block_rows, find_duplicates


def test_equal_items_are_merged_in_first_seen_order() -> None:
    a, b = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0, 5.0, 6.0])
    found = find_duplicates([a, b, a.clone(), b.clone(), a.clone()])
    assert found.unique == [0, 1]
    assert found.inverse.tolist() == [0, 1, 0, 1, 0]
    assert found.has_copies


def test_items_with_the_same_fingerprint_but_other_values_stay_apart() -> None:
    # Same shape, sum, first and last value: only the full comparison tells them apart.
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    b = torch.tensor([1.0, 3.0, 2.0, 4.0])
    found = find_duplicates([a, b, a.clone()])
    assert found.unique == [0, 1]
    assert found.inverse.tolist() == [0, 1, 0]


def test_items_of_other_shapes_are_never_merged() -> None:
    found = find_duplicates([torch.zeros(4), torch.zeros(2, 2), torch.zeros(4)])
    assert found.unique == [0, 1] and found.inverse.tolist() == [0, 1, 0]


def test_no_copies() -> None:
    found = find_duplicates([torch.tensor([float(i)]) for i in range(3)])
    assert not found.has_copies and found.unique == [0, 1, 2]


def test_block_rows_picks_whole_blocks_in_the_asked_order() -> None:
    sizes = torch.tensor([2, 3, 1])  # blocks: rows [0, 1], [2, 3, 4], [5]
    assert block_rows(sizes, torch.tensor([1, 0, 1, 2])).tolist() == [2, 3, 4, 0, 1, 2, 3, 4, 5]
    assert block_rows(sizes, torch.tensor([2])).tolist() == [5]
