"""Operator benchmark: 500 RLJobs created at once against the API emulator.

    .venv/bin/python bench/operator.py [--jobs 500]

The emulator (kmock, extended: tests/integration/operator/emulator.py) runs in this process; the
operator runs as `eureka operator` in a subprocess, as in production, so its peak memory
(VmHWM) is its own. Reported: time until every RayJob exists, create-to-RayJob latency p50/p99
(both timestamps taken by the emulator when the requests arrive), and the operator's peak RSS.
Goals: all within 60 s, p50 <= 0.5 s, peak <= 200 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import kmock

REPO = Path(__file__).resolve().parents[1]
# This file's folder must not shadow the standard library's `operator` module; the repository
# root is needed for the emulator in tests/.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

from bench.procfs import peak_rss_mb  # noqa: E402  (this folder is off sys.path, see above)
from tests.integration.operator.emulator import Emulator, kubeconfig, register_all  # noqa: E402

from eureka_operator.crd import build_crd  # noqa: E402

NS = "bench"
GOALS = {"all_rayjobs_s": 60.0, "p50_s": 0.5, "peak_mb": 200.0}


class TimedEmulator(Emulator):
    """Records when each RLJob and RayJob creation request arrives."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.arrived: dict[tuple[str, str], float] = {}
        # (verb, resource) -> requests served, to show the API traffic per job.
        self.served: collections.Counter[str] = collections.Counter()

    async def _handle(self, request: Any) -> Any:
        what = request.resource.plural if request.resource is not None else "discovery"
        verb = request.action.name.lower() if request.action is not None else request.method
        self.served[f"{verb} {what}{'/' + request.subresource if request.subresource else ''}"] += 1
        if request.action == kmock.action.CREATE and request.resource is not None:
            name = (request.data or {}).get("metadata", {}).get("name")
            if request.resource.plural in ("rljobs", "rayjobs") and name:
                self.arrived.setdefault((request.resource.plural, name), time.perf_counter())
        return await super()._handle(request)


def rljob(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "eureka.dev/v1alpha1",
        "kind": "RLJob",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "model": {"name": "Qwen/Qwen2.5-VL-7B-Instruct"},
            "data": {"trainFiles": ["/data/train.jsonl"]},
            "resources": {"workers": {"gpus": 8}},
        },
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profile(pid: int) -> subprocess.Popen[bytes] | None:
    """With BENCH_PYSPY=FILE (and py-spy installed): sample the operator (this process, the
    emulator, with BENCH_PYSPY_EMULATOR=1) for BENCH_PYSPY_S whole seconds (default 3) from the
    first RLJob on, in py-spy's raw format (collapsed stacks)."""
    out = os.environ.get("BENCH_PYSPY")
    if not out:
        return None
    seconds = os.environ.get("BENCH_PYSPY_S", "3")
    spy = Path(sys.executable).with_name("py-spy")
    cmd = [str(spy), "record", "-p", str(pid), "-d", seconds, "-r", "500", "-f", "raw", "-o", out]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL)


def cpu_wait_seconds(pid: int) -> float:
    """Time the process was ready to run but waited for a core (other work on the machine)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def settle(emu: TimedEmulator, quiet: float = 1.0, limit: float = 20.0) -> None:
    """Wait until the emulator has served no request for `quiet` seconds (at most `limit`)."""
    deadline = time.monotonic() + limit
    total = sum(emu.served.values())
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet)
        now = sum(emu.served.values())
        if now == total:
            return
        total = now


async def bench(jobs: int, timeout: float) -> dict[str, Any]:
    async with TimedEmulator() as emu, kmock.Server(emu) as server:
        register_all(emu, build_crd())
        tmp = Path(tempfile.mkdtemp())
        env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig(tmp / "kubeconfig", str(server.url).rstrip("/"))),
        }
        cmd = [
            sys.executable,
            "-m",
            "eureka_operator.cli",
            "operator",
            "--standalone",
            "--metrics-port",
            "0",
        ]
        cmd += ["--verbose"] if os.environ.get("BENCH_VERBOSE") else []
        log = (tmp / "operator.log").open("w")
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            # Wait until the operator watches RLJobs (its first LIST/WATCH request).
            deadline = time.monotonic() + 60
            while not any(r.resource is not None and r.resource.plural == "rljobs" for r in emu):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"operator did not start; see {tmp / 'operator.log'}")
                await asyncio.sleep(0.05)
            names = [f"job-{i:04d}" for i in range(jobs)]
            # The emulator stands in for an API server written in Go: its Python garbage
            # collector (full collections of every stored object, ~0.1 s each) is not part of
            # what is measured. Same tuning as the operator's (eureka_operator.main.tune_gc).
            gc.collect()
            gc.freeze()
            gc.set_threshold(50_000, 20, 20)
            spy = profile(os.getpid() if os.environ.get("BENCH_PYSPY_EMULATOR") else proc.pid)
            operator_cpu0, emulator_cpu0 = cpu_seconds(proc.pid), time.process_time()
            waited0 = cpu_wait_seconds(proc.pid), cpu_wait_seconds(os.getpid())
            served0 = collections.Counter(emu.served)
            idle_mb = peak_rss_mb(proc.pid, "VmRSS")  # the started operator, before any job
            start = time.perf_counter()

            async def create(name: str) -> None:
                path = f"/apis/eureka.dev/v1alpha1/namespaces/{NS}/rljobs"
                async with emu.post(path, json=rljob(name)) as resp:
                    assert resp.status == 200, await resp.text()

            await asyncio.gather(*(create(n) for n in names))
            created_s = time.perf_counter() - start
            while sum(("rayjobs", n) in emu.arrived for n in names) < jobs:
                if time.perf_counter() - start > timeout or proc.poll() is not None:
                    break
                await asyncio.sleep(0.02)
            # CPU until every RayJob exists (within 20 ms): the part the latency waits for.
            burst_cpu = cpu_seconds(proc.pid) - operator_cpu0, time.process_time() - emulator_cpu0
            waited = (
                cpu_wait_seconds(proc.pid) - waited0[0],
                cpu_wait_seconds(os.getpid()) - waited0[1],
            )
            done = [n for n in names if ("rayjobs", n) in emu.arrived]
            latencies = [emu.arrived[("rayjobs", n)] - emu.arrived[("rljobs", n)] for n in done]
            last = max(emu.arrived[("rayjobs", n)] for n in done) - start if done else float("nan")
            await settle(emu)  # the follow-up writes (status, Events) belong to the jobs too
            served = emu.served - served0
            peak = peak_rss_mb(proc.pid)
            if spy is not None:
                await asyncio.to_thread(spy.wait)
            operator_cpu = cpu_seconds(proc.pid) - operator_cpu0
            emulator_cpu = time.process_time() - emulator_cpu0
        finally:
            proc.terminate()
            try:  # kopf shuts down gracefully only while the emulator (this loop) still serves
                await asyncio.to_thread(proc.wait, 30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            print(f"operator log: {tmp / 'operator.log'}", file=sys.stderr)
            log.close()
    return {
        "jobs": jobs,
        "rayjobs": len(done),
        "create_requests_s": round(created_s, 2),
        "all_rayjobs_s": round(last, 2),
        "p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "p99_s": round(percentile(latencies, 0.99), 3) if latencies else None,
        "peak_mb": round(peak, 1),
        # What each job adds to the operator's peak over its idle footprint.
        "idle_mb": round(idle_mb, 1),
        "peak_kb_per_job": round((peak - idle_mb) * 1024 / jobs, 1),
        # Where the time went: both processes share this machine's cores.
        "operator_cpu_s": round(operator_cpu, 1),
        "emulator_cpu_s": round(emulator_cpu, 1),
        "operator_cpu_until_all_rayjobs_s": round(burst_cpu[0], 1),
        "emulator_cpu_until_all_rayjobs_s": round(burst_cpu[1], 1),
        # Runnable but waiting for a core meanwhile (other work on the machine).
        "operator_waited_for_cpu_s": round(waited[0], 1),
        "emulator_waited_for_cpu_s": round(waited[1], 1),
        "requests_per_job": {k: round(n / jobs, 2) for k, n in sorted(served.items())},
        "cores": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args()
    result = asyncio.run(bench(args.jobs, args.timeout))
    met = {k: result[k] is not None and result[k] <= goal for k, goal in GOALS.items()}
    met["all"] = result["rayjobs"] == result["jobs"]
    print(json.dumps({**result, "goals": GOALS, "met": met}, indent=2))
    return 0 if all(met.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
