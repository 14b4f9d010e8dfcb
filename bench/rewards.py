"""Benchmark: Eureka's BatchScorer against plain math-verify, serial and in a process pool.

    .venv/bin/python bench/rewards.py [--n 10000] [--seed 0] [--batch 1024]

Generates `n` (response, gold) pairs deterministically: prompts with 8 samples each (as an RL
step scores them), mixed answer forms (integers, decimals, fractions, roots, polynomials,
intervals, option letters, missing or unclosed tags), and 1% adversarial responses (deep
nesting, megabyte strings, power towers, huge powers and factorials, and two shapes that pass
Eureka's guards but still hang sympy, so its timeout path runs too).

Both sides get the same pairs in one run:
- eureka: `BatchScorer` (worker processes, hard 5 s per-sample timeout, fast paths), scored in
  batches of `--batch` like a trainer step; pool start-up is timed separately.
- plain: a serial loop calling math-verify as MM-EUREKA's accuracy reward does: gold parsed as
  `$gold$`; the answer parsed with string + LaTeX + expression extraction; `verify(answer,
  gold)`; math-verify's default SIGALRM timeouts (5 s per parse and per comparison), in the
  main thread; a gold that fails to parse scores 1.0. Answers are extracted as Eureka does.
- pool: the same function in a `concurrent.futures.ProcessPoolExecutor` of `--pool-workers`
  (default 2) processes, `map` in chunks: what a careful user would run. Each task runs in its
  worker's main thread, so math-verify's SIGALRM timeouts work there; a task that ignores them
  (a C loop in sympy) cannot be killed, so the run is given `--pool-limit` seconds, after which
  the pool's processes are killed and the unfinished samples reported (a hang).

Prints samples/s of each, the ratio of Eureka to each peer, timeouts, the slowest sample, and the
disagreements with the serial peer on non-adversarial samples (by category, with examples).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import logging
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

MB = 1 << 20
ADVERSARIAL_RATE = 0.01
SAMPLES_PER_PROMPT = 8


@dataclass(frozen=True)
class Pair:
    response: str
    gold: str
    kind: str  # generator category; "adversarial:*" for the hostile 1%


def _think(rng: random.Random) -> str:
    return (
        "<think>"
        + " ".join(rng.choice(["so", "then", "we", "get", "x", "="]) for _ in range(40))
        + "</think>"
    )


def _tagged(rng: random.Random, answer: str) -> str:
    return f"{_think(rng)}<answer>{answer}</answer>"


# Each prompt kind: (gold, [(response answer text, category), ...]) generator.
def _integer(rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    g = rng.randint(-50, 500)
    forms = [
        (str(g), "int:exact"),
        (f"${g}$", "int:latex"),
        (f"The answer is ${g}$.", "int:prose"),
        (str(g + rng.randint(1, 9)), "int:wrong"),
        (f"{g}.0", "int:decimal"),
    ]
    return str(g), forms


def _fraction(rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    a, b = rng.randint(1, 9), rng.choice([2, 4, 5, 8])
    gold = f"\\frac{{{a}}}{{{b}}}"
    forms = [
        (f"${gold}$", "frac:same"),
        (f"${a * 2}/{b * 2}$", "frac:scaled"),
        (f"${a / b:g}$", "frac:decimal"),
        (f"$\\frac{{{a + 1}}}{{{b}}}$", "frac:wrong"),
    ]
    return gold, forms


def _root(rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    k = rng.choice([2, 3, 5])
    gold = f"{k}\\sqrt{{2}}"
    forms = [
        (f"${gold}$", "root:same"),
        (f"$\\sqrt{{{2 * k * k}}}$", "root:equiv"),
        (f"$\\sqrt{{{2 * k * k + 1}}}$", "root:wrong"),
    ]
    return gold, forms


def _poly(rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    c = rng.randint(1, 6)
    gold = f"(x+{c})^2"
    forms = [
        (f"$(x+{c})^2$", "poly:same"),
        (f"$x^2+{2 * c}x+{c * c}$", "poly:expanded"),
        (f"$x^2+{c * c}$", "poly:wrong"),
    ]
    return gold, forms


def _interval(rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    a = rng.randint(-5, 5)
    gold = f"({a},{a + 3}]"
    forms = [(f"$({a}, {a + 3}]$", "interval:same"), (f"$[{a}, {a + 3}]$", "interval:wrong")]
    return gold, forms


def _choice(rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    g = rng.choice("ABCD")
    other = rng.choice([c for c in "ABCD" if c != g])
    forms = [
        (g, "choice:letter"),
        (f"({g})", "choice:paren"),
        (other, "choice:wrong"),
        (f"{g} or {other}", "choice:two"),
    ]
    return g, forms


def _decimal(rng: random.Random) -> tuple[str, list[tuple[str, str]]]:
    g = round(rng.uniform(0, 100), 2)
    forms = [(f"{g}", "dec:exact"), (f"${g + 1.5:.2f}$", "dec:wrong"), (f"{g}0", "dec:padded")]
    return f"{g}", forms


PROMPT_KINDS: list[Callable[[random.Random], tuple[str, list[tuple[str, str]]]]] = [
    _integer,
    _integer,
    _fraction,
    _root,
    _poly,
    _interval,
    _choice,
    _decimal,
]


def _response(rng: random.Random, answer: str, category: str) -> tuple[str, str]:
    r = rng.random()
    if r < 0.05:
        return f"{_think(rng)} no tags, the result is {answer}", f"{category}+notag"
    if r < 0.10:
        return f"{_think(rng)}<answer>{answer}", f"{category}+unclosed"
    return _tagged(rng, answer), category


def adversarial(rng: random.Random) -> tuple[str, str]:
    """A hostile response and its label."""
    kind = rng.choice(
        [
            "megabyte",
            "braces",
            "frac_tower",
            "parens",
            "tower",
            "huge_power",
            "huge_factorial",
            "nested_boxed",
            "unclosed_tags",
            "poly_power",
            "root_huge",
        ]
    )
    body = {
        "megabyte": "9" * MB,
        "braces": "$" + "{" * 5000 + "1" + "}" * 5000 + "$",
        "frac_tower": "$" + "\\frac{1}{" * 300 + "2" + "}" * 300 + "$",
        "parens": "$" + "(" * 600 + "1" + ")" * 600 + "$",
        "tower": f"${rng.randint(2, 9)}^{{{rng.randint(2, 9)}^{{{rng.randint(2, 9)}^{{9}}}}}}$",
        "huge_power": f"$10^{{10^{{{rng.randint(9, 12)}}}}}$",
        "huge_factorial": f"$(10^{{{rng.randint(9, 12)}}})!$",
        "nested_boxed": "\\boxed{" * 3000 + "1" + "}" * 3000,
        "unclosed_tags": "<answer><think>" * 20_000,
        # These two pass Eureka's guards and hang sympy: its per-sample timeout ends them.
        "poly_power": f"$(x+1)^{{{rng.randint(4000, 6000)}}}$",
        "root_huge": f"$\\sqrt[7]{{2^{{{rng.randint(90000, 99999)}}}+1}}$",
    }[kind]
    return _tagged(rng, body), f"adversarial:{kind}"


def generate(n: int, seed: int) -> list[Pair]:
    rng = random.Random(seed)
    pairs: list[Pair] = []
    while len(pairs) < n:
        gold, forms = rng.choice(PROMPT_KINDS)(rng)
        for _ in range(SAMPLES_PER_PROMPT):
            if rng.random() < ADVERSARIAL_RATE:
                response, kind = adversarial(rng)
            else:
                response, kind = _response(rng, *rng.choice(forms))
            pairs.append(Pair(response, gold, kind))
    return pairs[:n]


# ---------------------------------------------------------------- the plain peer (MM-EUREKA-style)
def plain_accuracy(response: str, gold: str) -> float:
    """math-verify `parse` + `verify` as MM-EUREKA calls them, on the same extracted answer.

    MM-EUREKA hands math-verify the answer *with* its tags, which makes a bare `<answer>108
    </answer>` unparseable; the peer gets Eureka's extraction instead, so both sides judge the
    same text and the comparison measures scoring, not extraction.
    """
    from math_verify import (
        ExprExtractionConfig,
        LatexExtractionConfig,
        StringExtractionConfig,
        parse,
        verify,
    )

    from eureka_trainer.rewards.extract import extract_answer

    gold_parsed = parse(f"${gold}$")  # default parsing_timeout: SIGALRM, 5 s
    if not gold_parsed:
        return 1.0  # MM-EUREKA's silent leak
    content = extract_answer(response, "instruct") or ""
    configs = [StringExtractionConfig(), LatexExtractionConfig(), ExprExtractionConfig()]
    with contextlib.suppress(Exception):
        return float(verify(parse(content, extraction_config=configs), gold_parsed))
    return 0.0


def run_plain(pairs: list[Pair]) -> tuple[list[float], float, float, int]:
    """Scores, seconds, slowest sample seconds, samples over 5 s (math-verify's own timeout)."""
    scores: list[float] = []
    slowest = 0.0
    over = 0
    start = time.perf_counter()
    for p in pairs:
        t = time.perf_counter()
        try:
            scores.append(plain_accuracy(p.response, p.gold))
        except Exception:
            scores.append(0.0)
        dt = time.perf_counter() - t
        slowest = max(slowest, dt)
        over += dt >= 5.0
    return scores, time.perf_counter() - start, slowest, over


def _plain_chunk(pairs: list[tuple[str, str]]) -> list[float]:
    """One pool task: `plain_accuracy` over a chunk (exceptions score 0, as in the serial loop)."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    out = []
    for response, gold in pairs:
        try:
            out.append(plain_accuracy(response, gold))
        except Exception:
            out.append(0.0)
    return out


def _warm_plain(_: int) -> float:
    return plain_accuracy("<answer>$\\frac{1}{2}$</answer>", "0.5")


def run_pool(
    pairs: list[Pair], workers: int, chunk: int, limit: float
) -> tuple[list[float], float, float, int]:
    """Scores (0 for unfinished), seconds, start-up seconds, samples unfinished at `limit`."""
    t = time.perf_counter()
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers)
    list(pool.map(_warm_plain, range(workers)))  # each process imports math-verify once
    startup = time.perf_counter() - t
    chunks = [
        [(p.response, p.gold) for p in pairs[i : i + chunk]] for i in range(0, len(pairs), chunk)
    ]
    start = time.perf_counter()
    futures = [pool.submit(_plain_chunk, c) for c in chunks]
    done, not_done = concurrent.futures.wait(futures, timeout=limit)
    elapsed = time.perf_counter() - start
    scores: list[float] = []
    unfinished = 0
    for future, c in zip(futures, chunks, strict=True):
        if future in done and future.exception() is None:
            scores += future.result()
        else:
            scores += [0.0] * len(c)
            unfinished += len(c)
    if not_done:  # a hung task cannot be cancelled: kill the processes, as a user would
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.kill()
    pool.shutdown(wait=not not_done, cancel_futures=True)
    return scores, elapsed, startup, unfinished


# ---------------------------------------------------------------- Eureka
def run_eureka(pairs: list[Pair], batch: int) -> tuple[list[float], float, float, dict[str, float]]:
    from eureka_trainer.config import RewardSpec, RewardsSpec
    from eureka_trainer.rewards import BatchScorer

    spec = RewardsSpec(components=[RewardSpec(name="accuracy")], timeout_seconds=5.0, workers=0)
    t = time.perf_counter()
    scorer = BatchScorer(spec)
    scorer.warm_up()
    startup = time.perf_counter() - t
    scores: list[float] = []
    totals: Counter[str] = Counter()
    slowest = 0.0
    start = time.perf_counter()
    try:
        for i in range(0, len(pairs), batch):
            chunk = pairs[i : i + batch]
            out = scorer.score([p.response for p in chunk], [p.gold for p in chunk])
            scores += out.components["accuracy"]
            for key in (
                "reward/timeouts",
                "reward/refused",
                "reward/worker_jobs",
                "reward/gold_parse_failures",
            ):
                totals[key] += out.metrics[key]
            slowest = max(slowest, out.metrics["reward/slowest_seconds"])
        elapsed = time.perf_counter() - start
        stats = dict(totals, startup=startup, slowest=slowest, replaced=scorer.workers_replaced)
    finally:
        scorer.close()
    return scores, elapsed, slowest, stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="pairs to score (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=1024, help="samples per BatchScorer call")
    parser.add_argument("--pool-workers", type=int, default=2, help="processes of the pool peer")
    parser.add_argument("--pool-chunk", type=int, default=64, help="samples per pool task")
    parser.add_argument(
        "--pool-limit", type=float, default=1800.0, help="seconds before the pool peer is a hang"
    )
    args = parser.parse_args(argv)
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # its per-timeout warnings

    pairs = generate(args.n, args.seed)
    n_adv = sum(p.kind.startswith("adversarial") for p in pairs)
    print(f"pairs: {len(pairs)} ({n_adv} adversarial), cores: {len(os.sched_getaffinity(0))}")

    ours, t_ours, slow_ours, stats = run_eureka(pairs, args.batch)
    print(
        f"eureka: {len(pairs) / t_ours:,.0f} samples/s ({t_ours:.2f} s; pool start-up "
        f"{stats['startup']:.2f} s not included), timeouts {stats['reward/timeouts']:.0f}, "
        f"refused {stats['reward/refused']:.0f}, worker jobs {stats['reward/worker_jobs']:.0f}, "
        f"workers replaced {stats['replaced']}, slowest sample {slow_ours:.2f} s"
    )
    sys.stdout.flush()

    plain, t_plain, slow_plain, over = run_plain(pairs)
    print(
        f"plain:  {len(pairs) / t_plain:,.0f} samples/s ({t_plain:.2f} s), samples >= 5 s "
        f"(math-verify timeouts) {over}, slowest sample {slow_plain:.2f} s"
    )
    print(f"ratio vs serial: {t_plain / t_ours:.1f}x")
    sys.stdout.flush()

    pooled, t_pool, pool_startup, unfinished = run_pool(
        pairs, args.pool_workers, args.pool_chunk, args.pool_limit
    )
    hang = f", HUNG: {unfinished} samples unfinished after {args.pool_limit:g} s" * bool(unfinished)
    print(
        f"pool:   {len(pairs) / t_pool:,.0f} samples/s ({t_pool:.2f} s; {args.pool_workers} "
        f"processes, start-up {pool_startup:.2f} s not included){hang}"
    )
    print(f"ratio vs pool: {t_pool / t_ours:.1f}x" + (" (at least)" if unfinished else ""))
    mismatch = sum(a != b for a, b in zip(plain, pooled, strict=True))
    print(f"pool vs serial scores differ on {mismatch} samples (timeouts under load)")

    differ = [
        (p, a, b)
        for p, a, b in zip(pairs, ours, plain, strict=True)
        if not p.kind.startswith("adversarial") and a != b
    ]
    print(f"disagreements on {len(pairs) - n_adv} non-adversarial samples: {len(differ)}")
    for kind, count in Counter(p.kind for p, _, _ in differ).most_common():
        example = next((p, a, b) for p, a, b in differ if p.kind == kind)
        answer = example[0].response.split("</think>")[-1][:60]
        print(
            f"  {kind}: {count} (e.g. gold {example[0].gold!r}, {answer!r}: eureka "
            f"{example[1]:g}, plain {example[2]:g})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
