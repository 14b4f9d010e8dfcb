"""Tiny models of every family, built once per test session (about a second each)."""

from __future__ import annotations

from typing import Any

import pytest

_BUILT: dict[str, Any] = {}


@pytest.fixture(scope="session")
def tiny() -> Any:
    """`tiny(family)` -> a `TinyModel` (shared: tests must not change its weights)."""
    from eureka_trainer.models.tiny import build_tiny

    def get(family: str) -> Any:
        if family not in _BUILT:
            _BUILT[family] = build_tiny(family)
        return _BUILT[family]

    return get
