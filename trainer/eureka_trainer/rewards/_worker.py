"""The reward worker process: math-verify parse + verify, one job at a time, no timeouts of its own.

math-verify's timeouts use SIGALRM, which fails outside a main thread and cannot interrupt a C
loop inside sympy, so they are turned off here (`parsing_timeout=None`, `timeout_seconds=None`);
the parent enforces the limit by killing this process. Imported by the forkserver ahead of time
(see pool.py) so a replacement worker starts in milliseconds with sympy already loaded.

Protocol on one duplex pipe. Parent -> worker: a list of jobs `(job_id, gold, pred)`.
Worker -> parent: `("ready",)` once, then per job `("gold", job_id, gold_ok)` as soon as the gold
answer is parsed and `("done", job_id, correct)` when the job ends.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import signal
from collections import OrderedDict
from multiprocessing.connection import Connection
from typing import Any

from math_verify import (  # heavy (sympy): imported only in workers and the forkserver
    ExprExtractionConfig,
    LatexExtractionConfig,
    StringExtractionConfig,
    parse,
    verify,
)

from eureka_trainer.rewards.extract import normalize
from eureka_trainer.rewards.guards import refusal

Job = tuple[int, str, str]

#: Address-space cap per worker: sympy on hostile input raises MemoryError instead of swapping.
MEMORY_LIMIT_BYTES = 3 << 30
GOLD_CACHE_SIZE = 4096

# math-verify warns once that its timeouts are off; here that is the design (see above).
logging.getLogger("math_verify").setLevel(logging.CRITICAL)
logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)

_PRED_CONFIG = [StringExtractionConfig(), LatexExtractionConfig(), ExprExtractionConfig()]
_gold_cache: OrderedDict[str, list[Any]] = OrderedDict()


def gold_wrapped(gold: str) -> str:
    """The gold answer as math-verify's LaTeX extraction expects it: in `$..$` unless delimited."""
    if "$" in gold or "\\boxed" in gold or "\\(" in gold or "\\[" in gold:
        return gold
    return f"${gold.strip()}$"


def parse_gold(gold: str) -> list[Any]:
    """Parsed gold answer (empty: unparseable), parsed once per distinct gold in this worker."""
    hit = _gold_cache.get(gold)
    if hit is not None:
        _gold_cache.move_to_end(gold)
        return hit
    parsed: list[Any] = (
        [] if refusal(gold) else list(parse(gold_wrapped(gold), parsing_timeout=None))
    )
    _gold_cache[gold] = parsed
    if len(_gold_cache) > GOLD_CACHE_SIZE:
        _gold_cache.popitem(last=False)
    return parsed


def is_correct(gold_parsed: list[Any], gold: str, pred: str) -> bool:
    """math-verify's verdict on a prediction against an already parsed gold answer."""
    if normalize(pred) == normalize(gold):
        return True
    pred_parsed = parse(pred, extraction_config=_PRED_CONFIG, parsing_timeout=None)
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


def _warm_up() -> None:
    """Build math-verify's parsers and sympy's caches once, at import.

    The forkserver imports this module, so every worker forked from it starts warm (the first
    LaTeX parse alone costs a fresh process hundreds of milliseconds).
    """
    samples = [("\\frac{1}{2}", "$0.5$"), ("(1,3]", "$[1, 3]$"), ("(x+1)^2", "$x^2+2x+1$")]
    for gold, pred in samples:
        with contextlib.suppress(Exception):  # warming is best effort
            is_correct(list(parse(gold_wrapped(gold), parsing_timeout=None)), gold, pred)
    _gold_cache.clear()


_warm_up()


def main(conn: Connection, memory_limit: int = MEMORY_LIMIT_BYTES) -> None:
    """Serve jobs until the parent closes the pipe (or kills this process)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if memory_limit > 0:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = memory_limit if hard == resource.RLIM_INFINITY else min(memory_limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    conn.send(("ready",))
    while True:
        try:
            jobs: list[Job] = conn.recv()
        except (EOFError, OSError):
            return
        for job_id, gold, pred in jobs:
            _run_job(conn, job_id, gold, pred)


def _run_job(conn: Connection, job_id: int, gold: str, pred: str) -> None:
    try:
        gold_parsed = parse_gold(gold)
    except Exception:  # latex2sympy raises anything; an unparseable gold is a fact, not a crash
        gold_parsed = []
    conn.send(("gold", job_id, bool(gold_parsed)))
    correct = False
    if gold_parsed:
        try:
            correct = is_correct(gold_parsed, gold, pred)
        except Exception:  # MemoryError, RecursionError, sympy internals: the answer is wrong
            correct = False
    conn.send(("done", job_id, correct))
