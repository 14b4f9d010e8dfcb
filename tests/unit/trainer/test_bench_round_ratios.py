"""`bench/rl_step.py` pairs each round's runs when it prints ratios by round."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parents[3] / "bench"


def _rl_step() -> Any:
    # Loaded by path: `bench/` is never put on sys.path (its operator.py would shadow the stdlib).
    spec = importlib.util.spec_from_file_location("eureka_bench_rl_step", BENCH / "rl_step.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ratios_pair_the_runs_of_each_round() -> None:
    # Each round's two runs are divided: 2.00, 1.60, 3.00. The medians' ratio (400 / 250 = 1.60)
    # would divide runs of different rounds.
    ours = [{"samples/s": 800.0}, {"samples/s": 400.0}, {"samples/s": 300.0}]
    peers = [{"samples/s": 400.0}, {"samples/s": 250.0}, {"samples/s": 100.0}]
    line = _rl_step().round_ratios(ours, peers, "eureka/trl")
    assert line == "ratio eureka/trl by round: 2.00, 1.60, 3.00 (median 2.00x, range 1.60-3.00)"


def test_the_median_and_range_of_uneven_rounds() -> None:
    ours = [{"samples/s": 90.0}, {"samples/s": 70.0}, {"samples/s": 80.0}]
    peers = [{"samples/s": 100.0}] * 3
    line = _rl_step().round_ratios(ours, peers, "eureka/floor")
    assert line.endswith("0.90, 0.70, 0.80 (median 0.80x, range 0.70-0.90)")
