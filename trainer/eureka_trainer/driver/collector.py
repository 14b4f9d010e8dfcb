"""The garbage collector in long-lived training processes (the driver and every actor).

After start-up such a process holds hundreds of thousands of long-lived objects (modules, the
model's modules, tokenizers, the data index). Each full collection walks them all: 240-260 ms
in the driver on this machine, at a moment Python picks, in the middle of a step. Freezing them
(`gc.freeze`) takes them out of every later collection; garbage made afterwards is collected as
usual. Reference counting still frees a frozen object that loses its last reference; only
cycles among frozen objects wait for `thaw`.
"""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Collect what start-up left as garbage, then freeze every object alive now."""
    gc.collect()
    gc.freeze()


def thaw() -> None:
    """Give frozen objects back to the collector (a run inside a longer-lived process ends)."""
    gc.unfreeze()
