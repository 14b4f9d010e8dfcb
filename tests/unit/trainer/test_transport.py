"""Tensors cross between the driver and the actors as numpy arrays, every dtype intact."""

from __future__ import annotations

import pytest
import torch

from eureka_trainer.driver.transport import tensor_from_wire, tensor_to_wire


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16, torch.int64])
def test_round_trip_keeps_values_dtype_and_shape(dtype: torch.dtype) -> None:
    tensor = (torch.arange(12, dtype=torch.float32).reshape(3, 4) - 5.5).to(dtype)
    back = tensor_from_wire(tensor_to_wire(tensor))
    assert back.dtype == dtype and back.shape == (3, 4) and torch.equal(back, tensor)


def test_views_and_gradients_travel_as_plain_copies() -> None:
    base = torch.randn(4, 6, requires_grad=True)
    view = base[:, ::2]  # not contiguous
    back = tensor_from_wire(tensor_to_wire(view))
    assert torch.equal(back, view.detach()) and not back.requires_grad
    back[0, 0] = 123.0  # writable, and not the sender's memory
    assert view[0, 0] != 123.0
