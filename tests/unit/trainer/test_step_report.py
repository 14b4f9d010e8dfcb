"""What the report phase logs for the dashboard: the aha rate over every response, sample images."""

from __future__ import annotations

import base64
import io

from PIL import Image

from eureka_trainer.backends import Completion, GenerationRequest
from eureka_trainer.driver.batch import Group, response_metrics, sample_records
from eureka_trainer.reporting.kube import _sample_dict
from eureka_trainer.reporting.thumbnails import DATA_URI_PREFIX, THUMBNAIL_PIXELS
from eureka_trainer.rewards.reflection import is_reflective, reflection_rate


def _group(texts: list[str], images: list[Image.Image] | None = None) -> Group:
    completions = [Completion(token_ids=[1, 2], logprobs=[-0.1] * 2, text=t) for t in texts]
    request = GenerationRequest(prompt_ids=[1], images=images or [])
    group = Group("id", "What is 2 + 2?", "4", request, completions)
    group.total = [1.0] * len(texts)
    group.components = {"accuracy": [1.0] * len(texts)}
    return group


def test_reflection_rate_counts_every_response_of_the_step() -> None:
    # 3 of 8 responses reflect; only the first of each group is logged as a sample, and those
    # two say nothing reflective: the old estimate from logged samples read 0.0 here.
    groups = [
        _group(["4", "Wait, 2 + 2 = 4", "4", "Let me verify: 4"]),
        _group(["4", "4", "hmm, 4", "4"]),
    ]
    assert response_metrics(groups)["reflection/rate"] == 3 / 8
    assert reflection_rate([]) is None
    assert is_reflective("Let me double-check.") and not is_reflective("awaiting the answer")


def test_a_logged_sample_carries_a_thumbnail_of_its_image() -> None:
    image = Image.new("RGB", (1024, 512), (200, 30, 30))
    (record,) = sample_records([_group(["4"], [image])], step=3, limit=4)
    assert record.image is not None and record.image.startswith(DATA_URI_PREFIX)
    thumb = Image.open(io.BytesIO(base64.b64decode(record.image.removeprefix(DATA_URI_PREFIX))))
    assert thumb.size == (THUMBNAIL_PIXELS, THUMBNAIL_PIXELS // 2)
    assert len(record.image) < 8000
    (text_only,) = sample_records([_group(["4"])], step=3, limit=4)
    assert text_only.image is None
    # The RLJob status (etcd) never carries it.
    assert "image" not in _sample_dict(record)
