"""A small name -> item registry: a string option is looked up in one place, never switched on.

Neutral ground: algos, rewards, rollout, learner, sync and evaluation all register their
choices here, so no package imports another only to reach the registry."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """A name that no registry entry has; the message lists the known names."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Generic[T]):
    """Named items of one kind (estimators, KL estimators, loss aggregations)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> None:
        """Register `item` under `name`; a name is registered once."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item

    def decorator(self, name: str) -> Callable[[T], T]:
        """`@registry.decorator("name")` registers the decorated item and returns it unchanged."""

        def register(item: T) -> T:
            self.add(name, item)
            return item

        return register

    def get(self, name: str) -> T:
        """The item registered as `name`; an unknown name raises `UnknownNameError` (a KeyError)."""
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items))
            raise UnknownNameError(f"unknown {self.kind} {name!r} (known: {known})") from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def load_class(dotted: str) -> Any:
    """`package.module:Name` -> the object (backends are registered by path, imported when chosen)."""
    module, _, name = dotted.partition(":")
    return getattr(importlib.import_module(module), name)
