"""depio_like: a build system for files, from the laptop to Slurm.

Tasks are plain functions whose ``Annotated[Path, Product]`` / ``Annotated[Path,
Dependency]`` parameters say what they write and read; a ``Pipeline`` runs those that are
not up to date.
"""

from .errors import (CycleError, DependencyNotAvailableException, DuplicateProductError,
                     GraphError, MissingDependencyError, PipelineError,
                     ProductAlreadyRegisteredException, StateError, StateLockedError,
                     TaskDeclarationError, TaskNotInQueueException, UnknownTaskError)
from .executors import Executor, ParallelExecutor, SequentialExecutor
from .pipeline import Pipeline
from .status import Status
from .task import Dependency, Product, Task, task

__version__ = "0.1.0"


def __getattr__(name: str):
    # Imported on first use: submitit costs ~0.1 s to import, and most runs are local.
    if name == "SubmitItExecutor":
        from .executors.slurm import SubmitItExecutor

        return SubmitItExecutor
    raise AttributeError(f"module 'depio_like' has no attribute {name!r}")

__all__ = [
    "Pipeline", "Task", "task", "Product", "Dependency", "Status",
    "Executor", "SequentialExecutor", "ParallelExecutor", "SubmitItExecutor",
    "PipelineError", "TaskDeclarationError", "GraphError", "DuplicateProductError",
    "CycleError", "MissingDependencyError", "UnknownTaskError", "StateError",
    "StateLockedError", "ProductAlreadyRegisteredException", "DependencyNotAvailableException",
    "TaskNotInQueueException",
]
