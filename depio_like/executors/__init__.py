"""Where tasks run. See ``base.Executor`` for the interface an executor implements."""

from typing import TYPE_CHECKING

from .base import Executor, Job, Outcome, RunContext, Started
from .local import ParallelExecutor, SequentialExecutor

if TYPE_CHECKING:
    from .threads import ThreadExecutor


def __getattr__(name: str):
    if name == "ThreadExecutor":  # imported on first use (queue, threads): most runs need none
        from .threads import ThreadExecutor

        return ThreadExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Executor",
    "Job",
    "Outcome",
    "RunContext",
    "Started",
    "ParallelExecutor",
    "SequentialExecutor",
    "ThreadExecutor",
]
