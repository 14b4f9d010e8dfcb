"""What Linux's /proc says about a process's memory (shared by the benchmarks)."""

from __future__ import annotations

from pathlib import Path


def peak_rss_mb(pid: int | str, field: str = "VmHWM") -> float:
    """Peak (VmHWM) or current (VmRSS) resident memory of a process (`self`: this one), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")
