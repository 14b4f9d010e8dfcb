"""A local run's actors get their environment through `init_ray` (they inherit Ray's)."""

from __future__ import annotations

import os
from typing import Any

import pytest


def _init_seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`init_ray(cluster=False)` with `ray.init` replaced: the environment it saw."""
    import ray

    from eureka_trainer.local import init_ray

    seen: dict[str, Any] = {}

    def fake_init(**kwargs: Any) -> None:
        seen.update(env=dict(os.environ), kwargs=kwargs)

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    init_ray(cluster=False)
    return seen


def test_actors_run_at_normal_priority_and_spin_briefly(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RAY_worker_niceness", "GOMP_SPINCOUNT"):
        monkeypatch.setenv(name, "")  # recorded, so what init_ray sets is undone afterwards
        monkeypatch.delenv(name)
    seen = _init_seen(monkeypatch)
    assert seen["env"]["RAY_worker_niceness"] == "0"
    assert seen["env"]["GOMP_SPINCOUNT"] == "30000"
    assert seen["kwargs"]["address"] == "local"


def test_a_users_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOMP_SPINCOUNT", "300000")
    monkeypatch.setenv("RAY_worker_niceness", "5")
    seen = _init_seen(monkeypatch)
    assert seen["env"]["GOMP_SPINCOUNT"] == "300000"
    assert seen["env"]["RAY_worker_niceness"] == "5"
