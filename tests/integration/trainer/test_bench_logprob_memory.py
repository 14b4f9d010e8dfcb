"""`bench/logprob_memory.py`: the learner's log-prob step holds about three `[T, V]` tensors at
its peak (logits, log-softmax, their gradient), less than TRL's on the same row.

Before the entropy left autograd and the logits were picked by `index_select`, the step
peaked at 6.3 `[T, V]` tensors at this size (1233 MB; 601 now, TRL 819)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[3]


def test_the_log_prob_step_peaks_at_three_vocabulary_sized_tensors() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "trainer")}
    args = ["--rounds", "1", "--tokens", "1024", "--vocab", "50000"]
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "logprob_memory.py"), *args],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    tensor_mb = float(re.search(r"a \[T, V\] tensor is (\d+) MB", out).group(1))  # type: ignore[union-attr]
    peaks = {
        side: float(re.search(rf"{side}\s+step peak MB \(median of 1\):\s+(\d+)", out).group(1))  # type: ignore[union-attr]
        for side in ("eureka", "trl")
    }
    assert peaks["eureka"] < 3.5 * tensor_mb, out
    assert peaks["eureka"] < peaks["trl"], out
    assert re.search(r"ratio eureka/trl \(step peak memory\): [\d.]+x", out), out
