"""Where tasks run. See ``base.Executor`` for the interface an executor implements."""

from .base import Executor, Job, Outcome
from .local import ParallelExecutor, SequentialExecutor

__all__ = ["Executor", "Job", "Outcome", "ParallelExecutor", "SequentialExecutor"]
