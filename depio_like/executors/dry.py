"""The executor of ``--dry-run``: every job "succeeds" at once and nothing runs (as ninja's
dry-run command runner), so a dry run goes through the same build plan as a real one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .base import Executor, Job, Outcome, RunContext


class DryRunExecutor(Executor):
    """Reports each job's tasks as succeeded, without running them or touching a file."""

    def start(self, tasks: Sequence[Any], context: RunContext) -> None:
        self._ended: list[Outcome] = []

    def free_slots(self) -> int:
        return 1 << 30

    def submit(self, job: Job) -> None:
        self._ended.extend(Outcome(step.index, True, printed=False) for step in job.steps)

    def wait(self, timeout: float | None) -> list[Outcome]:
        ended, self._ended = self._ended, []
        return ended
