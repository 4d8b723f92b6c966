"""depio's module paths: ``from depio_like.Pipeline import Pipeline`` and the like.

depio users import from ``depio.Pipeline``, ``depio.Executors``, ``depio.Task``,
``depio.BuildMode``, ``depio.TaskStatus``, ``depio.decorators`` and ``depio.exceptions``.
Files ``Pipeline.py`` / ``Task.py`` beside ``pipeline.py`` / ``task.py`` would be the same
file on a case-insensitive filesystem (macOS), and an imported submodule ``BuildMode``
would replace the class of that name on the package. So these modules are made here, when
the package is imported, and registered in ``sys.modules`` (the import system looks there
for ``depio_like.X`` once ``depio_like`` is imported). Each holds depio's public names,
bound to ours; nothing is defined twice.

``depio_like.Pipeline``, ``.Task`` and ``.BuildMode`` stay the classes on the package
(``from depio_like import Pipeline``); ``import depio_like.Executors`` and the other four
are modules there too, as in depio.
"""

from __future__ import annotations

import importlib.machinery
import sys
import types
from collections.abc import Callable
from typing import Any

# Names of depio's modules -> their public names (and what they are here, by a function
# of the package, so nothing is imported that `import depio_like` does not import).
_TERMINAL = ("FINISHED", "FAILED", "SKIPPED", "DEPFAILED", "CANCELLED")
_SUCCESSFUL = ("FINISHED", "SKIPPED")
_FAILED = ("FAILED", "DEPFAILED", "CANCELLED")

# depio.Executors' defaults for its SubmitItExecutor (submitit's names), exported under
# depio's names for scripts that start from them.
TWO_DAYS_IN_MINUTES = 60 * 48
DEFAULT_PARAMS = {
    "slurm_time": TWO_DAYS_IN_MINUTES,
    "slurm_partition": "gpu",
    "slurm_mem": 32,
    "gpus_per_node": 0,
}

_EXCEPTIONS = (
    "ProductNotProducedException",
    "ProductNotUpdatedException",
    "DependencyNotMetException",
    "TaskRaisedExceptionException",
    "UnknownStatusException",
    "TaskNotInQueueException",
    "ProductAlreadyRegisteredException",
    "DependencyNotAvailableException",
)


def _contents(pkg: Any) -> dict[str, dict[str, Any]]:
    from . import errors
    from .executors import Executor, ParallelExecutor, SequentialExecutor
    from .status import Status

    status = {
        "TaskStatus": Status,
        "TERMINAL_STATES": [Status[n] for n in _TERMINAL],
        "SUCCESSFUL_TERMINAL_STATES": [Status[n] for n in _SUCCESSFUL],
        "FAILED_TERMINAL_STATES": [Status[n] for n in _FAILED],
    }
    exceptions = {n: getattr(errors, n) for n in _EXCEPTIONS}
    return {
        "BuildMode": {"BuildMode": pkg.BuildMode},
        "TaskStatus": status,
        "exceptions": exceptions,
        "Task": {
            "Task": pkg.Task,
            "Product": pkg.Product,
            "Dependency": pkg.Dependency,
            "IgnoredForEq": pkg.IgnoredForEq,
            "BuildMode": pkg.BuildMode,
            **status,
            **{
                n: exceptions[n]
                for n in (
                    "ProductNotProducedException",
                    "TaskRaisedExceptionException",
                    "UnknownStatusException",
                    "ProductNotUpdatedException",
                    "DependencyNotMetException",
                )
            },
        },
        "Pipeline": {
            "Pipeline": pkg.Pipeline,
            "Task": pkg.Task,
            "TaskStatus": Status,
            "AbstractTaskExecutor": Executor,
            **{
                n: exceptions[n]
                for n in (
                    "ProductAlreadyRegisteredException",
                    "TaskNotInQueueException",
                    "DependencyNotAvailableException",
                )
            },
        },
        "Executors": {
            "AbstractTaskExecutor": Executor,
            "SequentialExecutor": SequentialExecutor,
            "ParallelExecutor": ParallelExecutor,
            "Task": pkg.Task,
            "TWO_DAYS_IN_MINUTES": TWO_DAYS_IN_MINUTES,
            "DEFAULT_PARAMS": DEFAULT_PARAMS,
        },
        "decorators": {
            "task": pkg.task,
            "BuildMode": pkg.BuildMode,
            "Pipeline": pkg.Pipeline,
            "Task": pkg.Task,
        },
    }


def _lazy_submitit_executor(name: str) -> Any:
    # submitit costs ~0.1 s to import: only when a script asks for it.
    if name == "SubmitItExecutor":
        from .executors.slurm import SubmitItExecutor

        return SubmitItExecutor
    raise AttributeError(f"module 'depio_like.Executors' has no attribute {name!r}")


_LAZY: dict[str, tuple[tuple[str, ...], Callable[[str], Any]]] = {
    "Executors": (("SubmitItExecutor",), _lazy_submitit_executor),
}
# Names the package already binds to a class of the same name: the module is reachable by
# import only, never as the package's attribute.
_CLASSES = ("Pipeline", "Task", "BuildMode")


def register(pkg: Any) -> None:
    """Put depio's modules under ``pkg`` (the ``depio_like`` package) into sys.modules."""
    for short, names in _contents(pkg).items():
        full = f"{pkg.__name__}.{short}"
        if full in sys.modules:
            continue
        mod = types.ModuleType(
            full, f"depio's module {short}: its names, bound to depio_like's (see {__name__})."
        )
        mod.__spec__ = importlib.machinery.ModuleSpec(full, None)
        mod.__package__ = pkg.__name__
        mod.__dict__.update(names)
        lazy, getter = _LAZY.get(short, ((), None))
        if getter is not None:
            mod.__getattr__ = getter  # type: ignore[method-assign]  # PEP 562: a module's own __getattr__
        mod.__all__ = [*names, *lazy]  # type: ignore[attr-defined]
        sys.modules[full] = mod
        if short not in _CLASSES:
            setattr(pkg, short, mod)
