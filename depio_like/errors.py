"""Every error depio_like raises on purpose; each message names the task and the path."""

from __future__ import annotations


class PipelineError(Exception):
    """Root of all depio_like errors."""


class TaskDeclarationError(PipelineError, TypeError):
    """A task was declared with arguments or annotations that cannot work."""


class GraphError(PipelineError):
    """The task graph cannot be run; raised by ``run()`` before any task starts."""


class DuplicateProductError(GraphError):
    """Two different tasks declare the same product."""


class CycleError(GraphError):
    """The tasks depend on each other in a circle."""


class MissingDependencyError(GraphError):
    """A dependency is produced by no task and does not exist on disk."""


class PathError(GraphError):
    """A declared path exists but cannot be used: permission denied, a symlink loop, a
    FIFO or socket where a file was expected, a name too long."""


class UnknownTaskError(GraphError):
    """``depends_on`` names a task that was never added to the pipeline."""


class StateError(PipelineError):
    """The state directory cannot be used."""


class StateLockedError(StateError):
    """Another run holds the state directory and we were told not to wait."""


class SpecError(PipelineError):
    """A spec file or its config file cannot be used: the message holds every problem
    found, one per line, each as ``file:line: what``."""


# The names depio users know, so a ported script's ``except`` clauses keep working.
ProductAlreadyRegisteredException = DuplicateProductError
DependencyNotAvailableException = MissingDependencyError
TaskNotInQueueException = UnknownTaskError
