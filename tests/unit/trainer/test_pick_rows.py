"""`modeling.pick_rows`: the logits scoring each response token, picked by `index_select` so
that the backward keeps only the index (not the logits, as `gather` did)."""

from __future__ import annotations

import torch

from eureka_trainer.learner.modeling import pick_rows


def test_pick_rows_equals_gather_forward_and_backward() -> None:
    torch.manual_seed(0)
    values = torch.randn(3, 5, 7, requires_grad=True)
    index = torch.tensor([[0, 4, 4, 1], [2, 2, 3, 0], [4, 0, 1, 2]])  # repeats accumulate
    weights = torch.randn(3, 4, 7)
    expected = torch.gather(values, 1, index[..., None].expand(-1, -1, 7))
    (grad_expected,) = torch.autograd.grad((expected * weights).sum(), values)
    picked = pick_rows(values, index)
    (grad,) = torch.autograd.grad((picked * weights).sum(), values)
    assert torch.equal(picked, expected)
    torch.testing.assert_close(grad, grad_expected)


def test_the_backward_keeps_only_the_index() -> None:
    values = torch.randn(2, 6, 9, requires_grad=True)
    saved: list[torch.Tensor] = []

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(keep, lambda t: t):
        pick_rows(values, torch.tensor([[1, 2], [5, 0]]))
    assert [tuple(t.shape) for t in saved] == [(4,)]
