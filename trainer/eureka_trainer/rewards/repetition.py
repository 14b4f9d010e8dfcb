"""A real repetition penalty (MM-EUREKA logs a constant 0 under this name).

penalty = -max_penalty * (repeated n-grams / all n-grams), over whitespace-separated words.
A response that says something once scores 0; one phrase looped k times scores about
-(1 - 1/k) * max_penalty; degenerate output that repeats one word scores near -max_penalty.
Responses shorter than `min_words` are not judged (too few n-grams to mean anything).
"""

from __future__ import annotations


def repetition_penalty(
    response: str, *, ngram: int = 3, max_penalty: float = 1.0, min_words: int = 20
) -> float:
    """A value in [-max_penalty, 0]: minus the share of the response's word n-grams that repeat.

    >>> repetition_penalty(" ".join(f"w{i}" for i in range(40)))
    0.0
    >>> repetition_penalty("one two three four five " * 10)  # 43 of 48 trigrams repeat
    -0.895833
    >>> repetition_penalty("la " * 100)
    -0.989796
    """
    if ngram < 1:
        raise ValueError(f"ngram must be >= 1, got {ngram}")
    if max_penalty < 0:
        raise ValueError(f"max_penalty must be >= 0, got {max_penalty}")
    words = response.split()
    total = len(words) - ngram + 1
    if len(words) < max(min_words, ngram) or total <= 0:
        return 0.0
    distinct = len(set(zip(*(words[i:] for i in range(ngram)), strict=False)))
    repeated = (total - distinct) / total
    return -round(max_penalty * repeated, 6) or 0.0
