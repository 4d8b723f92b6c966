"""The executor interface: the driver decides *what* runs; an executor decides *where*.

A run calls ``start`` once, then repeatedly ``submit`` (while ``free_slots() > 0``) and
``wait``; ``cancel`` on Ctrl-C; ``shutdown`` at the end, always. An executor never looks
at the cache, the graph or the task records: it runs the jobs it is given and reports
outcomes. An executor that queues jobs (Slurm) sets ``queues = True`` and reports
``Started`` when a job actually starts; the table shows PENDING until then.
"""

from __future__ import annotations

import os
import time
import traceback
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from ..task import Task


@dataclass
class Job:
    """One task to run: ``index`` is the task's position in the run's task list.

    ``fingerprint`` names this exact piece of work (task, arguments, code, input contents):
    an executor that outlives its driver (Slurm) uses it to re-attach instead of rerunning.
    """

    index: int
    task: "Task"
    fingerprint: str = ""


@dataclass(frozen=True)
class RunContext:
    """What an executor may need to know about the run it serves."""

    state_dir: str   # the pipeline's state directory (an executor may keep files under it)
    cwd: str         # the working directory of the driver


@dataclass
class Started:
    """A queued job began to run (only from executors with ``queues = True``)."""

    index: int


@dataclass
class Outcome:
    """How a job ended. ``error`` is the traceback (or the reason) when ``ok`` is False."""

    index: int
    ok: bool
    value: Any = None
    error: str | None = None
    duration: float = 0.0


class Executor(ABC):
    """Runs jobs somewhere and reports how they ended."""

    #: Extra columns this executor adds to the status table (e.g. Slurm ID).
    columns: Sequence[str] = ()
    #: True if submitted jobs wait in a queue before they run (they show as PENDING).
    queues: bool = False
    #: How many times a failed task is resubmitted, unless the task says otherwise.
    retries: int = 0

    def start(self, tasks: Sequence["Task"], context: RunContext) -> None:
        """Called once per run, before any ``submit``, with every task of the run."""

    @abstractmethod
    def free_slots(self) -> int:
        """How many more jobs ``submit`` accepts right now."""

    @abstractmethod
    def submit(self, job: Job) -> None:
        """Start ``job`` (or queue it); must not block on the job itself."""

    @abstractmethod
    def wait(self, timeout: float | None) -> list["Outcome | Started"]:
        """Outcomes of jobs that ended (and ``Started`` events); block up to ``timeout`` s
        (None: until something happens)."""

    def cancel(self) -> list[int]:
        """Stop every job still running; return their indices."""
        return []

    def shutdown(self) -> None:
        """Release workers and resources; called at the end of every run."""

    def cells(self, index: int) -> Sequence[str]:
        """This executor's cells for ``columns`` in the row of task ``index``."""
        return ("",) * len(self.columns)


def run_in_this_process(job: Job) -> Outcome:
    """Call the task's function here, turning any exception into a failed outcome.

    KeyboardInterrupt is not caught: it is the user's Ctrl-C.
    """
    t0 = time.perf_counter()
    try:
        value = job.task.run()
    except KeyboardInterrupt:
        raise
    except SystemExit as e:
        return Outcome(job.index, False, error=f"the task called sys.exit({e.code!r})",
                       duration=time.perf_counter() - t0)
    except BaseException as e:
        return Outcome(job.index, False, error=format_task_exception(e),
                       duration=time.perf_counter() - t0)
    return Outcome(job.index, True, value=value, duration=time.perf_counter() - t0)


def format_task_exception(e: BaseException) -> str:
    """The traceback of ``e`` without the frames of depio_like itself."""
    tb = e.__traceback__
    # Skip our own frames (the executor and Task.run) at the top of the stack.
    while tb is not None and _is_ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(e), e, tb)).rstrip()


def _is_ours(filename: str) -> bool:
    return filename.startswith(_PKG_DIR)


_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
