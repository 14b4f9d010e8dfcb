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
import re
import resource
import signal
from collections import OrderedDict
from dataclasses import dataclass
from itertools import permutations
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
from eureka_trainer.rewards.golds import (
    Part,
    Reading,
    canonical_text,
    is_prose,
    normalize_part,
    read_gold,
    split_answer,
)
from eureka_trainer.rewards.guards import refusal

Job = tuple[int, str, str]

#: Address-space cap per worker: sympy on hostile input raises MemoryError instead of swapping.
MEMORY_LIMIT_BYTES = 3 << 30
GOLD_CACHE_SIZE = 4096
#: Parts of an unordered gold (a set of solutions) matched by trying every order up to this many.
MAX_PERMUTED_PARTS = 6

# math-verify warns once that its timeouts are off; here that is the design (see above).
logging.getLogger("math_verify").setLevel(logging.CRITICAL)
logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)

_PRED_CONFIG = [StringExtractionConfig(), LatexExtractionConfig(), ExprExtractionConfig()]
_DELIMITERS = ("$", "\\(", "\\[", "\\boxed")


@dataclass(frozen=True)
class ParsedPart:
    """One gold part and math-verify's reading of it (None: compared as text only)."""

    part: Part
    parsed: list[Any] | None


ParsedGold = list[tuple[Reading, list[ParsedPart]]]  # usable readings; empty: unparseable
_gold_cache: OrderedDict[str, ParsedGold] = OrderedDict()


def parse_part(part: Part) -> list[Any] | None:
    """math-verify's reading of one normalised gold part, or None when it is text.

    Text: marked textual by the gold rules, refused by the guards, or a part that math-verify
    keeps only as an unparsed string (`(A∩B)∪(C∪(A∪B))`, `K<10?`): such a gold is compared as
    text, never by a number math-verify might pull out of it.
    """
    if part.textual or refusal(part.text):
        return None
    try:
        parsed = list(parse(f"${part.text}$", parsing_timeout=None))
    except Exception:  # latex2sympy raises anything: the part is text
        return None
    return parsed if any(not isinstance(p, str) for p in parsed) else None


def _usable(pp: ParsedPart) -> bool:
    return pp.parsed is not None or bool(canonical_text(pp.part.text))


def parse_gold(gold: str) -> ParsedGold:
    """Every usable reading of a gold answer, parsed once per distinct gold in this worker."""
    hit = _gold_cache.get(gold)
    if hit is not None:
        _gold_cache.move_to_end(gold)
        return hit
    readings: ParsedGold = []
    if not refusal(gold):
        for reading in read_gold(gold).readings:
            parts = [ParsedPart(p, parse_part(p)) for p in reading.parts]
            if parts and all(_usable(pp) for pp in parts):
                readings.append((reading, parts))
    _gold_cache[gold] = readings
    if len(_gold_cache) > GOLD_CACHE_SIZE:
        _gold_cache.popitem(last=False)
    return readings


def parse_answer(text: str) -> list[Any]:
    """math-verify's reading of an answer.

    A delimited answer (`$..$`, `\\(..\\)`) or prose is read as math-verify reads a response.
    A bare answer (`4\\sqrt{2}`, `2x`, `3\\pi`) is wrapped in `$..$` first: the expression
    extractor alone would read those as 4, 2 and 3.
    """
    if not any(mark in text for mark in _DELIMITERS):
        bare = normalize_part(text)
        if bare and not is_prose(bare) and len(_words(bare)) < 2:
            return list(parse(f"${bare}$", extraction_config=_PRED_CONFIG, parsing_timeout=None))
    return list(parse(text, extraction_config=_PRED_CONFIG, parsing_timeout=None))


def _words(text: str) -> list[str]:
    return re.findall(r"(?<![\\A-Za-z])[A-Za-z]{3,}", text)


def part_correct(pp: ParsedPart, answer: str) -> bool:
    """Does one answer match one gold part? Text first (both normalised), then math-verify."""
    gold_text = canonical_text(pp.part.text)
    if gold_text and gold_text in (canonical_text(answer), canonical_text(normalize_part(answer))):
        return True
    if pp.parsed is None or refusal(answer):
        return False
    try:
        return bool(verify(pp.parsed, parse_answer(answer), timeout_seconds=None))
    except Exception:  # MemoryError, RecursionError, sympy internals: not a match
        return False


def _all_parts(parts: list[ParsedPart], answers: list[str], unordered: bool) -> bool:
    if not unordered:
        return all(part_correct(pp, a) for pp, a in zip(parts, answers, strict=True))
    memo: dict[tuple[int, int], bool] = {}

    def ok(i: int, j: int) -> bool:
        if (i, j) not in memo:
            memo[(i, j)] = part_correct(parts[i], answers[j])
        return memo[(i, j)]

    n = len(parts)
    if n <= MAX_PERMUTED_PARTS:
        return any(all(ok(i, j) for i, j in enumerate(order)) for order in permutations(range(n)))
    free = set(range(n))  # many parts: greedy (equivalence makes it exact in practice)
    for i in range(n):
        j = next((j for j in sorted(free) if ok(i, j)), None)
        if j is None:
            return False
        free.discard(j)
    return True


def is_correct(gold_parsed: ParsedGold, gold: str, pred: str) -> bool:
    """True when the answer answers one reading of the gold in full (every part)."""
    if normalize(pred) == normalize(gold):
        return True
    for reading, parts in gold_parsed:
        if len(parts) == 1:
            if part_correct(parts[0], pred):
                return True
            continue
        for answers in split_answer(pred, len(parts)):
            if _all_parts(parts, answers, reading.unordered):
                return True
    return False


def _warm_up() -> None:
    """Build math-verify's parsers and sympy's caches once, at import.

    The forkserver imports this module, so every worker forked from it starts warm (the first
    LaTeX parse alone costs a fresh process hundreds of milliseconds).
    """
    samples = [("\\frac{1}{2}", "$0.5$"), ("(1,3]", "$[1, 3]$"), ("(x+1)^2", "$x^2+2x+1$")]
    for gold, pred in samples:
        with contextlib.suppress(Exception):  # warming is best effort
            is_correct(parse_gold(gold), gold, pred)
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
