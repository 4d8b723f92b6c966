"""The options of one run, passed down from ``main()`` / ``run()`` to where they are used."""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .modes import BuildMode

if TYPE_CHECKING:  # pragma: no cover
    from .executors.base import Executor


@dataclass(frozen=True)
class RunOptions:
    """``force``: rerun everything. ``dry_run``: only say what would run. ``explain``: say
    why each task runs. ``targets``: only what these products need. ``jobs``: tasks at
    once. ``executor``: run on this one instead of the pipeline's."""

    force: bool = False
    dry_run: bool = False
    explain: bool = False
    targets: tuple[str, ...] | None = None
    jobs: int | None = None
    executor: Executor | None = None

    def __post_init__(self) -> None:
        if self.jobs is not None and (
            isinstance(self.jobs, bool) or not isinstance(self.jobs, int) or self.jobs < 1
        ):
            raise ValueError(f"jobs={self.jobs!r}: need an int >= 1")

    @staticmethod
    def of(
        *,
        force: bool = False,
        dry_run: bool = False,
        explain: bool = False,
        targets: Sequence[str | os.PathLike[str]] | None = None,
        jobs: int | None = None,
        executor: Executor | None = None,
    ) -> RunOptions:
        """Options from ``run()``'s keywords (targets made absolute now)."""
        return RunOptions(
            force,
            dry_run,
            explain,
            tuple(os.path.abspath(os.fspath(t)) for t in targets) if targets else None,
            jobs,
            executor,
        )

    def over(self, base: RunOptions) -> RunOptions:
        """These options on top of ``base``: flags add up, the rest replaces when set."""
        return RunOptions(
            self.force or base.force,
            self.dry_run or base.dry_run,
            self.explain or base.explain,
            self.targets if self.targets is not None else base.targets,
            self.jobs if self.jobs is not None else base.jobs,
            self.executor if self.executor is not None else base.executor,
        )


@dataclass(frozen=True)
class PipelineSettings:
    """What a pipeline sets for each of its runs (the ``Pipeline`` arguments of the same
    names; ``default_mode`` is its ``buildmode``)."""

    name: str = "default"
    default_mode: BuildMode = BuildMode.IF_NEW
    delete_on_error: bool = False
    show_output: bool = True
    critical_path: bool = True
    on_task_finished: Sequence[Any] = ()
    on_pipeline_finished: Sequence[Any] = ()


#: Options of the ``depio-like run`` command for the script it runs: every
#: ``pipeline.run()`` of that script takes them on top of its own (set only meanwhile).
tool_options: ContextVar[RunOptions | None] = ContextVar("depio_like_tool_options", default=None)
