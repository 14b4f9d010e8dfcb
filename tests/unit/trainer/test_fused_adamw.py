"""The torch learner's AdamW takes torch's fused kernel wherever torch has one.

torch's AdamW runs a loop of small kernels per parameter on the CPU unless asked for `fused`
(its `foreach` default covers CUDA, XPU and MTIA, not the CPU): a step over the demo model cost 3.9 ms against 0.8 ms
fused on 2 cores. The fused kernel must reach the same weights, and must not be asked for where
torch has none (`meta`, which the device tests use, or integer tensors).
"""

from __future__ import annotations

import torch

from eureka_trainer.learner.torch_learner import FUSED_ADAMW_DEVICES, fused_adamw


def _params(device: str = "cpu", dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    shapes = [(16, 8), (8,), (3, 4, 5)]
    return [
        torch.nn.Parameter(
            torch.randn(s, generator=generator, dtype=torch.float32).to(device, dtype)
        )
        for s in shapes
    ]


def test_fused_only_where_torch_has_the_kernel() -> None:
    assert fused_adamw(_params())
    assert fused_adamw(_params(dtype=torch.bfloat16))
    assert not fused_adamw(_params("meta"))  # shapes only: no kernel at all
    assert not fused_adamw([*_params(), *_params("meta")])  # one device type per optimiser
    assert not fused_adamw([torch.zeros(3, dtype=torch.int64)])
    assert not fused_adamw([])  # every parameter frozen: torch's default
    # The device list is torch's own (torch/utils/_foreach_utils.py).
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    assert set(_get_fused_kernels_supported_devices()) >= FUSED_ADAMW_DEVICES


def test_fused_reaches_the_weights_of_the_per_parameter_loop() -> None:
    looped, fused = _params(), _params()
    options = {"lr": 1e-3, "betas": (0.9, 0.95), "weight_decay": 0.01}
    steppers = [
        torch.optim.AdamW(looped, **options),
        torch.optim.AdamW(fused, fused=fused_adamw(fused), **options),
    ]
    assert steppers[1].defaults["fused"] and not steppers[0].defaults["fused"]
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        grads = [torch.randn(p.shape, generator=generator) for p in looped]
        for params, optimizer in zip((looped, fused), steppers, strict=True):
            for param, grad in zip(params, grads, strict=True):
                param.grad = grad.clone()
            optimizer.step()
    for a, b, start in zip(looped, fused, _params(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
        assert not torch.equal(a, start)  # the steps moved the weights
