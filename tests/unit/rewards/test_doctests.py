"""The examples in the public reward functions' docstrings are tests too."""

from __future__ import annotations

import doctest
from types import ModuleType

import pytest

from eureka_trainer.rewards import accuracy, extract, golds, guards, repetition
from eureka_trainer.rewards import format as format_module

pytestmark = [pytest.mark.usefixtures("warm_pool"), pytest.mark.timeout(60)]


@pytest.mark.parametrize("module", [accuracy, extract, format_module, golds, guards, repetition])
def test_docstring_examples(module: ModuleType) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
