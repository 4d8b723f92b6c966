"""The executor interface: the driver decides *what* runs; an executor decides *where*.

A run calls ``start`` once, then repeatedly ``submit`` (while ``free_slots() > 0``) and
``wait``; ``cancel`` on Ctrl-C; ``shutdown`` at the end, always. An executor never looks
at the cache, the graph or the task records: it runs the jobs it is given and reports
outcomes. An executor that queues jobs (Slurm) sets ``queues = True`` and reports
``Started`` when a job actually starts; the table shows PENDING until then.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from ..task import Task


@dataclass
class Step:
    """One task of a job. ``index`` is the task's position in the run's task list.

    ``fingerprint`` names this exact piece of work (task, arguments, code, input contents):
    an executor that outlives its driver (Slurm) uses it to re-attach instead of rerunning.
    ``export_to`` names the tasks outside the job that take this task's return value: the
    executor hands the value back (``Outcome.value``), as itself if the driver's process
    ran it, else as a ``ValueFile``.
    """

    index: int
    task: "Task"
    fingerprint: str = ""
    export_to: tuple[str, ...] = ()
    log: str = ""  # capture the task's stdout/stderr to log + ".out" / ".err" (if set)


@dataclass
class Job:
    """Tasks to run in order in one process (a chain joined by return values, or a single
    task). ``values`` holds the return values (or ``ValueFile``s) of tasks outside the job
    that its tasks take as arguments, by task index."""

    steps: list[Step]
    values: dict[int, Any] = field(default_factory=dict)

    @property
    def index(self) -> int:
        return self.steps[0].index

    @property
    def indices(self) -> list[int]:
        return [s.index for s in self.steps]


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


def run_steps(job: Job, export: Callable[[Step, Any], Any]) -> Iterator[Outcome]:
    """Run the job's tasks here, in order, each getting the values it takes; yield an
    outcome per task. After a failure the rest of the chain is not run (no outcome).
    ``export(step, value)`` is what to hand back for a value needed outside the job.

    KeyboardInterrupt is not caught: it is the user's Ctrl-C.
    """
    values = dict(job.values)
    for step in job.steps:
        t0 = time.perf_counter()
        try:
            with captured(step.log), reporting(step):
                value = step.task.run(values)
        except KeyboardInterrupt:
            raise
        except SystemExit as e:
            yield Outcome(step.index, False, error=f"the task called sys.exit({e.code!r})",
                          duration=time.perf_counter() - t0)
            return
        except BaseException as e:
            yield Outcome(step.index, False, error=format_task_exception(e),
                          duration=time.perf_counter() - t0)
            return
        duration = time.perf_counter() - t0
        values[step.task.id] = value
        handed = None
        if step.export_to:
            try:
                handed = export(step, value)
            except Exception as e:  # noqa: BLE001 - pickling can raise anything
                yield Outcome(step.index, False, duration=duration, error=(
                    f"its return value ({type(value).__name__}) cannot be handed to "
                    f"{', '.join(step.export_to)} in another process: it cannot be pickled "
                    f"({type(e).__name__}: {e})"))
                return
        yield Outcome(step.index, True, value=handed, duration=duration)


@contextlib.contextmanager
def reporting(step: Step) -> Iterator[None]:
    """Let the task report progress (``current_progress()``) while it runs."""
    from .. import progress

    progress.begin(step.index, step.log + ".progress" if step.log else None)
    try:
        yield
    finally:
        progress.end()


@contextlib.contextmanager
def captured(log: str) -> Iterator[None]:
    """Send this process's stdout and stderr to ``log``.out / ``log``.err meanwhile.

    At the file-descriptor level, so output of C code and subprocesses is caught too;
    ``breakpoint()`` gets the terminal back, so a debugger still works. The directory of
    ``log`` must exist.
    """
    if not log:
        yield
        return
    import sys

    _flush(sys.stdout, sys.stderr)
    saved = os.dup(1), os.dup(2)
    out = os.open(log + ".out", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(log + ".err", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    hook = sys.breakpointhook

    def restore() -> None:
        _flush(sys.stdout, sys.stderr)
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)

    def debug(*args: Any, **kwargs: Any) -> Any:
        restore()  # the debugger talks to the terminal, not to the log
        sys.stdout, sys.stderr = streams
        return hook(*args, **kwargs)

    os.dup2(out, 1)
    os.dup2(err, 2)
    # Python-level too, where sys.stdout does not write to fd 1 (pytest, Jupyter replace
    # it); in a plain script it does, and the file-descriptor switch is enough.
    streams = sys.stdout, sys.stderr
    swapped = [(name, fd) for name, fd in (("stdout", out), ("stderr", err))
               if _fileno(getattr(sys, name)) != (1 if name == "stdout" else 2)]
    opened = []
    for name, fd in swapped:
        stream = open(os.dup(fd), "w", encoding="utf-8", errors="replace", buffering=1)
        opened.append(stream)
        setattr(sys, name, stream)
    sys.breakpointhook = debug
    try:
        yield
    finally:
        sys.breakpointhook = hook
        _flush(*opened)
        sys.stdout, sys.stderr = streams
        for stream in opened:
            stream.close()
        restore()
        for fd in (*saved, out, err):
            os.close(fd)


def _fileno(stream: Any) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _flush(*streams: Any) -> None:
    for stream in streams:
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed or replaced by the task
            pass


def export_to_file(value_dir: str) -> Callable[[Step, Any], Any]:
    """An ``export`` for ``run_steps`` that writes each value to a file under ``value_dir``."""
    from ..channel import dump_value

    def export(step: Step, value: Any) -> Any:
        name = step.fingerprint or f"{step.index}-{os.getpid()}-{time.time_ns()}"
        return dump_value(value, os.path.join(value_dir, f"{name}.value"))

    return export


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
