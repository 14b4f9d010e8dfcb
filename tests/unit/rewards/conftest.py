"""Shared fixtures: the process-wide worker pool is booted once, outside any timed assertion."""

from __future__ import annotations

import pytest

from eureka_trainer.rewards.pool import shared_pool


@pytest.fixture(scope="session")
def warm_pool() -> None:
    """Boot the pool behind `accuracy_reward` (forkserver + sympy import) before timing calls."""
    shared_pool().warm_up()
