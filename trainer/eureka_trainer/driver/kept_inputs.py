"""A hybrid actor keeps the image tensors of the prompts it sampled, for its update.

A hybrid actor (`workers.HybridWorker`: learner rank and `hf` engine in one process) receives
each prompt's processor tensors (`mm_inputs`: pixel values, grid sizes) with its `generate`
call, and the same tensors again, per response, with its `update` call. The second copy is
wasted: Ray serializes it in the driver, stores it in the object store (the call's arguments
pass Ray's inline limit) and deserializes it in the actor, on the step's critical path (about
4 ms of a 140 ms demo step on 2 cores; MM-EUREKA's image sizes make it megabytes a prompt).

So the driver numbers each prompt's tensors it sends with a trainer `generate` (`slots`), the
actor keeps them under those numbers, and the `update` call carries, instead of the tensors,
the slot of each sample whose tensors the receiving actor holds. Both sides forget everything
after each update, so they never disagree: a group the online filter carries into a later step
is sent whole. Non-hybrid layouts (separate learner actors) send the tensors as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from eureka_trainer.backends import GenerationRequest, TrainSample


class KeptInputs:
    """The driver's record of which actor keeps which prompt's tensors, under which slot.

    At most `capacity` prompts are kept between two updates: the actors hold every filter
    round's prompts until then (the groups the filter drops too), so a step that needs many
    rounds sends the later rounds' tensors with its update instead of piling them up."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._slots: dict[int, tuple[int, int, dict[str, Any]]] = {}
        """id(mm_inputs) -> (actor index, slot, the dict itself: holding it keeps the id
        unique while the entry lives)."""
        self._next = 0

    def __len__(self) -> int:
        return len(self._slots)

    def assign(self, requests: Sequence[GenerationRequest], actor: int) -> list[int | None]:
        """Slots for the tensors of `requests`, which `actor` will keep (None: no tensors)."""
        slots: list[int | None] = []
        for request in requests:
            mm = request.mm_inputs
            if not mm:
                slots.append(None)
                continue
            entry = self._slots.get(id(mm))
            if entry is None or entry[0] != actor:
                if len(self._slots) >= self.capacity:
                    slots.append(None)
                    continue
                entry = (actor, self._next, mm)
                self._next += 1
                self._slots[id(mm)] = entry
            slots.append(entry[1])
        return slots

    def strip(
        self, samples: Sequence[TrainSample], actor: int
    ) -> tuple[list[TrainSample], list[int | None]]:
        """`samples` without the tensors `actor` keeps, and each sample's slot (None: the
        sample carries its own tensors). The caller's samples are not changed."""
        out: list[TrainSample] = []
        slots: list[int | None] = []
        for sample in samples:
            entry = self._slots.get(id(sample.mm_inputs)) if sample.mm_inputs else None
            if entry is not None and entry[0] == actor:
                out.append(replace(sample, mm_inputs={}))
                slots.append(entry[1])
            else:
                out.append(sample)
                slots.append(None)
        return out, slots

    def clear(self) -> None:
        """After an update (the actors forget theirs then too)."""
        self._slots.clear()


def remember(
    store: dict[int, dict[str, Any]],
    requests: Sequence[GenerationRequest],
    slots: Sequence[int | None],
) -> None:
    """Actor side of `KeptInputs.assign`: keep each request's tensors under its slot."""
    if len(slots) != len(requests):
        raise ValueError(f"{len(slots)} slots for {len(requests)} requests")
    for request, slot in zip(requests, slots, strict=True):
        if slot is not None:
            store[slot] = request.mm_inputs


def restore(
    store: dict[int, dict[str, Any]],
    samples: Sequence[TrainSample],
    slots: Sequence[int | None],
) -> list[TrainSample]:
    """Actor side of `KeptInputs.strip`: the samples with their kept tensors back."""
    if len(slots) != len(samples):
        raise ValueError(f"{len(slots)} slots for {len(samples)} samples")
    missing = sorted({s for s in slots if s is not None and s not in store})
    if missing:  # the driver's record and this actor's disagree: a bug, never a silent miss
        raise KeyError(f"this actor keeps no image tensors under slot(s) {missing}")
    return [
        sample if slot is None else replace(sample, mm_inputs=store[slot])
        for sample, slot in zip(samples, slots, strict=True)
    ]
