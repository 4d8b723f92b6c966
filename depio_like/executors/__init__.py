"""Where tasks run. See ``base.Executor`` for the interface an executor implements."""

from .base import Executor, Job, Outcome, RunContext, Started
from .local import ParallelExecutor, SequentialExecutor
from .threads import ThreadExecutor

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
