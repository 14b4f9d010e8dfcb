"""Which device a model computes on, and a check that its inputs are there too.

Ray gives an actor that asks for a GPU (or a share of one) exactly that GPU through
`CUDA_VISIBLE_DEVICES`, so inside the actor it is `cuda:0`. Ray 2.60 leaves the variable alone
for an actor that asks for none (ray/_private/utils.py `set_visible_accelerator_ids`, unless
RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO=1): on a laptop with a GPU the local run's actors then
compute on its first GPU, and without CUDA on the CPU.

Every batch the learners and the `hf` rollout build goes to the model's device. A batch left
on the CPU would fail deep inside the forward on a GPU, or worse, silently compute on the CPU
where an op accepts a CPU tensor; `guard_inputs` checks every tensor handed to the model's
forward and names the one on the wrong device. CPU tests hold the code to it by putting the
model on another device (`meta`) and watching what reaches the forward.
"""

from __future__ import annotations

from typing import Any

import torch


class DeviceMismatch(RuntimeError):
    """A tensor handed to the model is not on the model's device."""


def resolve_device(name: str = "auto") -> torch.device:
    """`auto`: this process's CUDA device when it has one, else the CPU; any other name as is."""
    if name != "auto":
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def same_device(a: torch.device, b: torch.device) -> bool:
    """`cuda` and `cuda:0` name the same device (an index left out means the current one)."""
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def misplaced(values: Any, device: torch.device, name: str = "input") -> list[str]:
    """ "name on device" for each tensor in `values` (a tensor, or a dict/list/tuple of them)
    not on `device`. 0-dim CPU tensors pass: torch takes them next to tensors of any device."""
    if isinstance(values, torch.Tensor):
        if same_device(values.device, device) or (
            values.dim() == 0 and values.device.type == "cpu"
        ):
            return []
        return [f"{name} on {values.device}"]
    if isinstance(values, dict):
        return [m for k, v in values.items() for m in misplaced(v, device, str(k))]
    if isinstance(values, list | tuple):
        return [m for i, v in enumerate(values) for m in misplaced(v, device, f"{name}[{i}]")]
    return []


def guard_inputs(model: torch.nn.Module, device: torch.device) -> None:
    """Refuse (`DeviceMismatch`) any forward of `model` with a tensor input off `device`.

    A forward pre-hook: it runs before every call of the model (DeepSpeed's engine calls the
    module, so it runs there too) and costs a look at a handful of arguments. A second call
    replaces the first (the model moved)."""
    previous = model.__dict__.get("_eureka_device_guard")
    if previous is not None:
        previous.remove()

    def check(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        wrong = misplaced(list(args), device, "args") + misplaced(kwargs, device)
        if wrong:
            raise DeviceMismatch(
                f"{type(module).__name__} computes on {device} but got " + ", ".join(wrong)
            )

    handle = model.register_forward_pre_hook(check, with_kwargs=True)
    model.__dict__["_eureka_device_guard"] = handle
