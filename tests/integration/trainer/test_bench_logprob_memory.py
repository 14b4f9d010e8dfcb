"""`bench/logprob_memory.py`'s Eureka side: the learner's log-prob step holds about three
`[T, V]` tensors at its peak (logits, log-softmax, a gradient).

Before the entropy left autograd and the logits were picked by `index_select`, the step peaked
at 6.3 of them at this size (1233 MB; 601 MB now, TRL's side 819 MB: the bench's TRL side needs
the `bench` extras, so this test runs Eureka's side alone)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[3]
TOKENS, VOCAB = 1024, 50_000


def test_the_log_prob_step_peaks_at_three_vocabulary_sized_tensors() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "trainer")}
    args = ["--side", "eureka", "--tokens", str(TOKENS), "--vocab", str(VOCAB)]
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "logprob_memory.py"), *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    peak = json.loads(out.strip().splitlines()[-1])["step_peak_mb"]
    tensor_mb = TOKENS * VOCAB * 4 / 2**20  # one [T, V] float32 tensor
    assert tensor_mb < peak < 3.5 * tensor_mb, out
