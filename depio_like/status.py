"""The words a task's status can take, shared by the scheduler, the driver and the table."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    WAITING = "WAITING"  # some dependency has not finished yet
    PENDING = "PENDING"  # ready, waiting for a free executor slot (or queued in Slurm)
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    SKIPPED = "SKIPPED"  # up to date, not run
    FAILED = "FAILED"
    DEPFAILED = "DEPFAILED"  # a task it depends on failed; never started
    CANCELLED = "CANCELLED"  # interrupted (Ctrl-C) before or while running
    WOULD_RUN = "WOULD-RUN"  # dry run: this task would run
    CANCELED = "CANCELLED"  # depio's spelling (an alias: the same member)

    def __str__(self) -> str:
        return self.value

    @property
    def done(self) -> bool:
        return self in _DONE

    @property
    def ok(self) -> bool:
        return self in (Status.FINISHED, Status.SKIPPED, Status.WOULD_RUN)


def count(statuses: list[Status]) -> dict[Status, int]:
    """How many of ``statuses`` have each status (those with none left out): a pass in C
    per status, not a Python hash per entry (an Enum's ``__hash__`` is Python code)."""
    out = {}
    for st in Status:
        k = statuses.count(st)
        if k:
            out[st] = k
    return out


def not_ok(statuses: list[Status]) -> list[int]:
    """The indices of the statuses that are not ``ok``."""
    ok = (Status.FINISHED, Status.SKIPPED, Status.WOULD_RUN)
    a, b, c = ok
    if statuses.count(a) + statuses.count(b) + statuses.count(c) == len(statuses):
        return []
    return [i for i, st in enumerate(statuses) if st is not a and st is not b and st is not c]


_DONE = frozenset(
    {
        Status.FINISHED,
        Status.SKIPPED,
        Status.FAILED,
        Status.DEPFAILED,
        Status.CANCELLED,
        Status.WOULD_RUN,
    }
)


class Flags:
    """A set of the task indices ``0 .. n-1``, one byte each (a set of 100,000 ints costs
    some 50 times as much, for the whole run)."""

    __slots__ = ("_bytes",)

    def __init__(self, n: int) -> None:
        self._bytes = bytearray(n)

    def add(self, i: int) -> None:
        self._bytes[i] = 1

    def __contains__(self, i: object) -> bool:
        return type(i) is int and 0 <= i < len(self._bytes) and self._bytes[i] == 1
