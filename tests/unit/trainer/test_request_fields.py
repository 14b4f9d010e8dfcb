"""What the driver sends a rollout engine: only the request fields its backend reads
(`rollout.REQUEST_FIELDS`), so vLLM engines never receive the processor's pixel tensors and
the `hf` engine never receives PIL images."""

from __future__ import annotations

import torch
from PIL import Image

from eureka_trainer.backends import GenerationRequest
from eureka_trainer.rollout import REQUEST_FIELDS, ROLLOUT_BACKENDS, for_backend
from eureka_trainer.rollout.vllm_engine import prompt_input


def _request() -> GenerationRequest:
    return GenerationRequest(
        prompt_ids=[1, 5, 5, 5, 5, 2],
        mm_inputs={"pixel_values": torch.ones(16, 8), "image_grid_thw": torch.tensor([[1, 4, 4]])},
        images=[Image.new("RGB", (56, 56))],
        text="<image> How many?",
    )


def test_every_backend_says_what_it_reads() -> None:
    assert set(REQUEST_FIELDS.names()) == set(ROLLOUT_BACKENDS.names())


def test_vllm_gets_the_images_not_the_pixel_tensors() -> None:
    original = _request()
    sent = for_backend(original, "vllm")
    assert sent.mm_inputs == {} and sent.text == "" and len(sent.images) == 1
    assert sent.prompt_ids == original.prompt_ids
    assert "pixel_values" in original.mm_inputs  # the learner's samples still have them
    # vLLM's prompt from the stripped request is the one from the full request.
    assert prompt_input(sent, 5) == prompt_input(original, 5)


def test_hf_gets_the_pixel_tensors_not_the_images() -> None:
    sent = for_backend(_request(), "hf")
    assert sent.images == [] and sent.text == ""
    assert set(sent.mm_inputs) == {"pixel_values", "image_grid_thw"}
