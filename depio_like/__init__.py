"""depio_like: a build system for files, from the laptop to Slurm.

Tasks are plain functions whose ``Annotated[Path, Product]`` / ``Annotated[Path,
Dependency]`` parameters say what they write and read; a ``Pipeline`` runs those that are
not up to date.
"""

from typing import TYPE_CHECKING

from .errors import (
    CycleError,
    DependencyNotAvailableException,
    DependencyNotMetException,
    DuplicateProductError,
    GraphError,
    MissingDependencyError,
    PipelineError,
    ProductAlreadyRegisteredException,
    ProductNotProducedException,
    ProductNotUpdatedException,
    StateError,
    StateLockedError,
    TaskDeclarationError,
    TaskNotInQueueException,
    TaskRaisedExceptionException,
    UnknownStatusException,
    UnknownTaskError,
)
from .executors import Executor, ParallelExecutor, SequentialExecutor
from .hooks import PipelineResult, TaskResult, make_save_hook
from .modes import BuildMode
from .pipeline import Pipeline
from .progress import Progress, current_progress
from .status import Status
from .task import Dependency, IgnoredForEq, Product, Task, Untracked, task

__version__ = "0.1.0"

if TYPE_CHECKING:  # imported on first use (see __getattr__); type checkers see them here
    from .executors.dask import DaskExecutor
    from .executors.slurm import SubmitItExecutor
    from .executors.threads import ThreadExecutor
    from .registry import register

# depio's module paths (depio_like.Pipeline, .Executors, .Task, ...): see depio_modules.
import sys as _sys  # noqa: E402

from . import depio_modules as _depio_modules  # noqa: E402

_depio_modules.register(_sys.modules[__name__])


def __getattr__(name: str):
    # Imported on first use: submitit costs ~0.1 s to import, and most runs are local.
    if name == "SubmitItExecutor":
        from .executors.slurm import SubmitItExecutor

        return SubmitItExecutor
    if name == "register":  # for spec files; loaded when a module of tasks asks for it
        from .registry import register

        return register
    if name == "ThreadExecutor":
        from .executors.threads import ThreadExecutor

        return ThreadExecutor
    if name == "DaskExecutor":  # distributed takes ~0.5 s to import; an extra
        from .executors.dask import DaskExecutor

        return DaskExecutor
    raise AttributeError(f"module 'depio_like' has no attribute {name!r}")


__all__ = [
    "Pipeline",
    "Task",
    "task",
    "Product",
    "Dependency",
    "Status",
    "IgnoredForEq",
    "Untracked",
    "BuildMode",
    "current_progress",
    "Progress",
    "TaskResult",
    "PipelineResult",
    "make_save_hook",
    "register",
    "Executor",
    "SequentialExecutor",
    "ParallelExecutor",
    "ThreadExecutor",
    "SubmitItExecutor",
    "DaskExecutor",
    "PipelineError",
    "TaskDeclarationError",
    "GraphError",
    "DuplicateProductError",
    "CycleError",
    "MissingDependencyError",
    "UnknownTaskError",
    "StateError",
    "StateLockedError",
    "ProductAlreadyRegisteredException",
    "DependencyNotAvailableException",
    "TaskNotInQueueException",
    "DependencyNotMetException",
    "ProductNotProducedException",
    "ProductNotUpdatedException",
    "TaskRaisedExceptionException",
    "UnknownStatusException",
]
