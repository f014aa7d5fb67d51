"""Waiting for something to happen, with a deadline, as tests and benchmarks do against real servers."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from .processes import log_tail

__all__ = ["until"]

T = TypeVar("T")


def until(what: str, check: Callable[[], T | None], within: float = 60.0, log: Path | None = None,
          every: float = 0.05) -> T:
    """Call ``check`` until it returns something true, and return that; AssertionError naming ``what`` (with the
    tail of ``log``, when given) once ``within`` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            tail = f"\n{log_tail(log)}" if log is not None else ""
            raise AssertionError(f"{what}: not within {within:g} s (last: {value!r}){tail}")
        time.sleep(every)
