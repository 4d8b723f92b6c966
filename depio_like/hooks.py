"""Hooks: functions the driver calls when a task or the pipeline finishes."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

from .status import Status


@dataclass(frozen=True)
class TaskResult:
    """A task at its final status. ``stdout``/``stderr`` are what it printed in this run
    (empty if it did not run): all of it up to 1 MiB each, else its last MiB after a line
    saying so; ``log`` is where all of it is (``log + ".out"`` / ``".err"``), if it ran."""

    id: int
    name: str
    status: Status
    stdout: str
    stderr: str
    duration: float | None
    products: tuple[str, ...]
    error: str | None = None
    log: str | None = None


@dataclass(frozen=True)
class PipelineResult:
    """The whole run: ``success`` is exit code 0."""

    name: str
    success: bool
    exit_code: int
    tasks: tuple[TaskResult, ...]


Hook = Callable[[Any], Any]


def as_list(hooks: Hook | Sequence[Hook] | None) -> list[Hook]:
    """A hook, a list of hooks, or None, as a list."""
    if hooks is None:
        return []
    if callable(hooks):
        return [hooks]
    hooks = list(hooks)
    for h in hooks:
        if not callable(h):
            raise TypeError(f"a hook must be callable, got {type(h).__name__} {h!r}")
    return hooks


def call_all(hooks: Iterable[Hook], result: Any, report: Callable[[str], None]) -> None:
    """Call each hook; one that raises is reported and the others still run."""
    for hook in hooks:
        try:
            hook(result)
        except Exception as e:  # noqa: BLE001 - a user's hook must not stop the pipeline
            name = getattr(hook, "__qualname__", repr(hook))
            report(f"hook {name} raised {type(e).__name__}: {e} (the pipeline goes on)")


def make_save_hook(folder: str | os.PathLike) -> Callable[[TaskResult], None]:
    """A ready ``on_task_finished`` hook: each task that ran leaves its stdout and stderr in
    ``folder/<id>-<name>.out`` / ``.err``."""
    folder = os.fspath(folder)

    def save(result: TaskResult) -> None:
        if result.status not in (Status.FINISHED, Status.FAILED):
            return
        os.makedirs(folder, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", result.name)[:60] or "task"
        base = os.path.join(folder, f"{result.id}-{safe}")
        for ext, text in ((".out", result.stdout), (".err", result.stderr)):
            if result.log is not None and os.path.exists(result.log + ext):
                shutil.copyfile(result.log + ext, base + ext)  # all of it, in bounded memory
            else:
                with open(base + ext, "w", encoding="utf-8") as f:
                    f.write(text)

    save.__qualname__ = f"make_save_hook({folder!r})"
    return save
