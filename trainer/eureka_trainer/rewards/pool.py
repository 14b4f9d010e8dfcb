"""A pool of math-verify worker processes with a hard per-job timeout, safe from any thread.

Why not `concurrent.futures.ProcessPoolExecutor`: it cannot kill one hung task (a sympy C loop
ignores everything but SIGKILL), and a killed worker breaks the whole executor. Here each call
of `run` checks workers out, drives them alone with `multiprocessing.connection.wait`, kills a
worker whose current job passes its deadline, replaces it, and re-queues the rest of its chunk.
No signals are used in the caller, so it works from threads, Ray actors and subprocesses alike.

Workers come from a forkserver that has imported math-verify once: a replacement starts in
milliseconds, and forking never happens from the (possibly multi-threaded) caller itself.
"""

from __future__ import annotations

import atexit
import multiprocessing
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.context import ForkServerContext
from typing import Any

Job = tuple[int, str, str]  # (job_id, gold, pred)

#: Longest wait for a fresh worker to boot (the very first forkserver start imports sympy).
STARTUP_TIMEOUT_S = 120.0
#: Workers dying before they are ready this many times in a row is an error, not a retry loop.
MAX_BOOT_FAILURES = 3
_WORKER_MODULE = "eureka_trainer.rewards._worker"
_ctx_lock = threading.Lock()
_ctx: ForkServerContext | None = None


class WorkerStartupError(RuntimeError):
    """Reward worker processes cannot start (they exit before reporting ready)."""


@dataclass(frozen=True)
class Outcome:
    """What a worker said about one job.

    gold_ok: the gold answer parsed (None: unknown, the job died before the gold was parsed).
    timed_out: the job passed its deadline and its worker was killed.
    crashed: the worker died by itself (e.g. a segfault in a C extension).
    """

    gold_ok: bool | None
    correct: bool
    timed_out: bool = False
    crashed: bool = False
    seconds: float = 0.0  # wall time of the job in its worker, as the caller saw it


def _context() -> ForkServerContext:
    global _ctx
    with _ctx_lock:
        if _ctx is None:
            ctx = multiprocessing.get_context("forkserver")
            assert isinstance(ctx, ForkServerContext)
            ctx.set_forkserver_preload([_WORKER_MODULE])
            _ctx = ctx
        return _ctx


def _entry(conn: Connection, memory_limit: int) -> None:
    """Process target; imports the worker here so the parent never imports math-verify."""
    from eureka_trainer.rewards import _worker

    _worker.main(conn, memory_limit)


@dataclass(eq=False)
class _Worker:
    proc: Any  # multiprocessing.Process of the forkserver context
    conn: Connection
    started: float
    ready: bool = False

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=5)
        self.conn.close()


def _spawn(memory_limit: int) -> _Worker:
    ctx = _context()
    parent_conn, child_conn = ctx.Pipe(duplex=True)
    proc = ctx.Process(target=_entry, args=(child_conn, memory_limit), daemon=True)
    proc.start()
    child_conn.close()
    return _Worker(proc=proc, conn=parent_conn, started=time.monotonic())


class WorkerPool:
    """`size` long-lived worker processes; `run` scores a list of jobs with a per-job deadline.

    Thread-safe: concurrent `run` calls use disjoint workers (a call that finds none idle starts
    an extra one, closed again when the pool is over its size).
    """

    def __init__(self, size: int, *, memory_limit: int = 3 << 30) -> None:
        if size < 1:
            raise ValueError(f"worker pool size must be >= 1, got {size}")
        self.size = size
        self.memory_limit = memory_limit
        self.replaced = 0
        """Workers killed (timeout) or found dead (crash) and replaced, over the pool's life."""
        self.boot_failures = 0  # consecutive workers that died before reporting ready
        self._lock = threading.Lock()
        self._closed = False
        self._idle: list[_Worker] = [_spawn(memory_limit) for _ in range(size)]

    def run(
        self, jobs: Sequence[Job], timeout: float, budgets: Mapping[int, float] | None = None
    ) -> dict[int, Outcome]:
        """Outcomes by job id; each job gets at most `timeout` seconds of a ready worker
        (`budgets[job_id]` seconds instead, where given: a retry after a timeout)."""
        if not jobs:
            return {}
        if self._closed:
            raise RuntimeError("worker pool is closed")
        chunks = _chunk(jobs, self.size)
        workers = self._checkout(min(len(chunks), self.size))
        try:
            return _Dispatch(self, workers, chunks, timeout, budgets or {}).run()
        finally:
            self._checkin(workers)

    def warm_up(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Block until every idle worker has booted (tests and benchmarks call this first)."""
        self.run([(i, "1", "1") for i in range(self.size)], timeout=timeout)

    def close(self) -> None:
        """Kill every worker; later `run` calls raise."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()

    def _checkout(self, k: int) -> list[_Worker]:
        with self._lock:
            taken, self._idle = self._idle[:k], self._idle[k:]
        return taken or [_spawn(self.memory_limit)]

    def _checkin(self, workers: list[_Worker]) -> None:
        alive = [w for w in workers if w.proc.is_alive()]
        extra: list[_Worker] = []
        with self._lock:
            if self._closed:
                extra = alive
            else:
                self._idle.extend(alive)
                extra, self._idle = self._idle[self.size :], self._idle[: self.size]
        for worker in [*extra, *(w for w in workers if w not in alive)]:
            worker.kill()

    def _replace(self, worker: _Worker) -> _Worker:
        worker.kill()
        with self._lock:
            self.replaced += 1
        return _spawn(self.memory_limit)


def _chunk(jobs: Sequence[Job], workers: int) -> list[list[Job]]:
    """Jobs grouped by gold (each worker parses a gold once) in about 4 chunks per worker."""
    ordered = sorted(jobs, key=lambda job: job[1])
    size = max(1, min(32, len(ordered) // (workers * 4)))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


@dataclass(eq=False)
class _Task:
    jobs: deque[Job]
    deadline: float | None  # None until the worker reports ready
    gold: dict[int, bool] = field(default_factory=dict)
    started: float = 0.0  # when the current job started (monotonic)


class _Dispatch:
    """One `run` call: feed chunks to its workers, collect replies, enforce deadlines."""

    def __init__(
        self,
        pool: WorkerPool,
        workers: list[_Worker],
        chunks: list[list[Job]],
        timeout: float,
        budgets: Mapping[int, float],
    ) -> None:
        self.pool = pool
        self.workers = workers
        self.pending = deque(chunks)
        self.timeout = timeout
        self.budgets = budgets
        self.busy: dict[int, _Task] = {}  # index into self.workers -> task
        self.results: dict[int, Outcome] = {}

    def run(self) -> dict[int, Outcome]:
        while self.pending or self.busy:
            self._feed()
            self._wait()
            for i in list(self.busy):
                self._drain(i)
            self._expire()
        return self.results

    def _feed(self) -> None:
        for i, worker in enumerate(self.workers):
            if i in self.busy or not self.pending:
                continue
            chunk = self.pending.popleft()
            try:
                worker.conn.send(chunk)
            except OSError:  # the worker died while idle (BrokenPipeError)
                self.pending.appendleft(chunk)
                self._restart(i)
                continue
            task = _Task(jobs=deque(chunk), deadline=None)
            if worker.ready:
                self._start_job(task, time.monotonic())
            self.busy[i] = task

    def _start_job(self, task: _Task, now: float) -> None:
        """The task's next job starts now: its deadline is its own budget from now."""
        budget = self.budgets.get(task.jobs[0][0], self.timeout) if task.jobs else self.timeout
        task.started = now
        task.deadline = now + budget

    def _wait(self) -> None:
        if not self.busy:  # every send failed; _feed tries the replacements next round
            return
        now = time.monotonic()
        limits = [self._limit(i, t) for i, t in self.busy.items()]
        handles: list[Any] = [self.workers[i].conn for i in self.busy]
        handles += [self.workers[i].proc.sentinel for i in self.busy]
        wait(handles, timeout=max(0.0, min(limits) - now))

    def _limit(self, i: int, task: _Task) -> float:
        if task.deadline is not None:
            return task.deadline
        return self.workers[i].started + STARTUP_TIMEOUT_S

    def _drain(self, i: int) -> None:
        worker, task = self.workers[i], self.busy[i]
        try:
            while worker.conn.poll():
                self._handle(worker, task, worker.conn.recv())
        except (EOFError, OSError):
            self._fail(i, crashed=True)
            return
        if not task.jobs:
            del self.busy[i]
        elif not worker.proc.is_alive():
            self._fail(i, crashed=True)

    def _handle(self, worker: _Worker, task: _Task, message: tuple[Any, ...]) -> None:
        kind = message[0]
        now = time.monotonic()
        if kind == "ready":
            worker.ready = True
            self.pool.boot_failures = 0
            self._start_job(task, now)
        elif kind == "gold":
            task.gold[message[1]] = message[2]
        elif kind == "done":
            job_id = message[1]
            self.results[job_id] = Outcome(
                gold_ok=task.gold.pop(job_id, None), correct=message[2], seconds=self._elapsed(task)
            )
            task.jobs.popleft()
            self._start_job(task, now)

    def _elapsed(self, task: _Task) -> float:
        """Seconds since the task's current job started."""
        if task.deadline is None:  # the worker never became ready
            return 0.0
        return time.monotonic() - task.started

    def _expire(self) -> None:
        now = time.monotonic()
        for i, task in list(self.busy.items()):
            if now >= self._limit(i, task):
                self._fail(i, crashed=task.deadline is None)

    def _fail(self, i: int, *, crashed: bool) -> None:
        """The worker's current job fails; the rest of its chunk goes back to the queue."""
        task = self.busy.pop(i)
        if not self.workers[i].ready:  # it died booting: no job had started
            self.pending.appendleft(list(task.jobs))
            self._restart(i)
            return
        if task.jobs:
            job_id = task.jobs.popleft()[0]
            self.results[job_id] = Outcome(
                gold_ok=task.gold.get(job_id),
                correct=False,
                timed_out=not crashed,
                crashed=crashed,
                seconds=self._elapsed(task),
            )
        if task.jobs:
            self.pending.appendleft(list(task.jobs))
        self._restart(i)

    def _restart(self, i: int) -> None:
        """Replace worker i; stop when workers keep dying before they are ready."""
        if not self.workers[i].ready:
            self.pool.boot_failures += 1
            if self.pool.boot_failures >= MAX_BOOT_FAILURES:
                raise WorkerStartupError(
                    f"{self.pool.boot_failures} reward worker processes in a row exited while "
                    "starting. A common cause: the main script does work at import time; "
                    "multiprocessing re-imports it in each worker, so guard it with "
                    "`if __name__ == '__main__':`."
                )
        self.workers[i] = self.pool._replace(self.workers[i])


_shared: WorkerPool | None = None
_shared_lock = threading.Lock()


def shared_pool() -> WorkerPool:
    """The process-wide pool behind the one-sample `accuracy_reward` (two workers, lazily)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared._closed:
            _shared = WorkerPool(2)
            atexit.register(_shared.close)
        return _shared
