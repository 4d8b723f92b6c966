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
