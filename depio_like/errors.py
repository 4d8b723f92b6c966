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


class TaskNotPicklableError(GraphError):
    """A task must travel to another process (a spawned worker) and cannot be pickled."""


class StateError(PipelineError):
    """The state directory cannot be used."""


class StateLockedError(StateError):
    """Another run holds the state directory and we were told not to wait."""


class SpecError(PipelineError):
    """A spec file or its config file cannot be used: the message holds every problem
    found, one per line, each as ``file:line: what``."""


# The names depio users know, so a ported script's ``except`` clauses keep working.
# Raised where depio raises them: add_task (a second producer; a depends_on task not yet
# added) and run() (a dependency neither produced nor on disk).
ProductAlreadyRegisteredException = DuplicateProductError
DependencyNotAvailableException = MissingDependencyError
TaskNotInQueueException = UnknownTaskError
DependencyNotMetException = MissingDependencyError


# depio raises these inside the process running a task, where they only mark the task
# failed; here such a task is FAILED with a message naming the path (or its traceback),
# and the script never sees an exception. Defined so that code naming them still imports.
class ProductNotProducedException(PipelineError):
    """depio's name for a task that ended without writing a declared product (here: FAILED)."""


class ProductNotUpdatedException(PipelineError):
    """depio's name for a task that left a product untouched (here: accepted)."""


class TaskRaisedExceptionException(PipelineError):
    """depio's wrapper for an exception raised by a task (here: the task is FAILED)."""


class UnknownStatusException(PipelineError):
    """depio's error for a status it cannot colour (never raised here)."""
