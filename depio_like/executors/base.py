"""The executor interface: the driver decides *what* runs; an executor decides *where*.

A run calls ``start`` once, then repeatedly ``submit`` (while ``free_slots() > 0``) and
``wait``; ``cancel`` on Ctrl-C; ``shutdown`` at the end, always. An executor never looks
at the cache, the graph or the task records: it runs the jobs it is given and reports
outcomes. An executor that queues jobs (Slurm) sets ``queues = True`` and reports
``Started`` when a job actually starts; the table shows PENDING until then.
"""

from __future__ import annotations

import os
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .. import interrupts, progress
from ..fingerprint import FileHasher, digest_now
from ..fs import RealDisk

if TYPE_CHECKING:  # pragma: no cover
    from ..task import Task


def compact_pickle(cls: Any) -> Any:
    """Class decorator: pickle a dataclass as its class and its fields by position (what
    travels between processes for every task: about five times cheaper than the default)."""
    import dataclasses

    names = tuple(f.name for f in dataclasses.fields(cls))

    def __reduce__(self: Any) -> tuple[Any, tuple[Any, ...]]:
        return cls, tuple([getattr(self, n) for n in names])

    cls.__reduce__ = __reduce__
    return cls


#: Where a task's output goes: the base path of its log files, or a function making it when
#: first needed (the driver's own executor, ``Executor.names_logs_late``: a task that prints
#: nothing, and left no earlier log, never needs it).
LogPath = str | Callable[[], str]


def log_path(log: LogPath) -> str:
    """The base path ``log`` stands for."""
    return log if isinstance(log, str) else log()


@dataclass(slots=True)
class Step:
    """One task of a job. ``index`` is the task's position in the run's task list.

    ``fingerprint`` names this exact piece of work (task, arguments, code, input contents):
    an executor that outlives its driver (Slurm) uses it to re-attach instead of rerunning.
    ``export_to`` names the tasks outside the job that take this task's return value: the
    executor hands the value back (``Outcome.value``), as itself if the driver's process
    ran it, else as a ``ValueFile``.
    """

    index: int
    task: Task
    fingerprint: str = ""
    export_to: tuple[str, ...] = ()
    log: LogPath = ""  # capture the task's stdout/stderr to log + ".out" / ".err" (if set)
    old_log: bool = True  # log files of an earlier run may exist: remove them if it is silent
    #: How long the task took when it last ran, in seconds (None: never timed); filled in
    #: for executors with ``uses_durations`` (Slurm groups short tasks into one job by it).
    expected_seconds: float | None = None


@dataclass(slots=True)
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

    state_dir: str  # the pipeline's state directory (an executor may keep files under it)
    jobs: int | None = None  # --jobs: how many tasks at once, for executors with ``takes_jobs``
    #: Where value files go (``Step.export_to``): the run's own directory, removed when it
    #: ends; None: ``values`` under ``state_dir``.
    value_dir: str | None = None

    @property
    def values(self) -> str:
        return self.value_dir or os.path.join(self.state_dir, "values")


class JobEnding(BaseException):
    """The process running tasks must stop now (a Slurm time limit or preemption caught by
    submitit): not a failure of the task it interrupted, and not to be caught by it."""

    def __init__(self, message: str, requeued: bool = False) -> None:
        super().__init__(message)
        self.requeued = requeued


@dataclass(slots=True)
class Started:
    """A queued job began to run (only from executors with ``queues = True``)."""

    index: int


@compact_pickle
@dataclass(slots=True)
class Outcome:
    """How a job ended. ``error`` is the traceback (or the reason) when ``ok`` is False."""

    index: int
    ok: bool
    value: Any = None
    error: str | None = None
    duration: float = 0.0
    printed: bool = True  # False: the task printed nothing (its log files do not exist)
    # Products as the process that ran the task found them: path -> (digest, size,
    # mtime_ns, inode) for the regular files it could read; the driver looks at the rest.
    products: dict[str, Any] | None = None
    # Dependencies' digests read just before the task ran, for the tasks of a chain after
    # the first (earlier ones may have just written them); None: as the driver read them.
    inputs: dict[str, str | None] | None = None


class Executor(ABC):
    """Runs jobs somewhere and reports how they ended."""

    #: Extra columns this executor adds to the status table (e.g. Slurm ID).
    columns: Sequence[str] = ()
    #: True if submitted jobs wait in a queue before they run (they show as PENDING).
    queues: bool = False
    #: How many times a failed task is resubmitted, unless the task says otherwise.
    retries: int = 0
    #: True if the executor re-attaches to work by ``Step.fingerprint`` (jobs outliving
    #: their driver); the driver computes fingerprints only then, or for exported values.
    reattaches: bool = False
    #: True if ``RunContext.jobs`` (``--jobs``) sets how many tasks run at once.
    takes_jobs: bool = False
    #: True if ``wait`` runs tasks in the calling process (it returns only when they
    #: end): the run writes the records it holds back before calling it.
    blocks_in_wait: bool = False
    #: True if the executor reads ``Step.expected_seconds`` (the driver fills it in then).
    uses_durations: bool = False
    #: True if a ``Step.log`` may be a function making the path (see ``LogPath``): the
    #: executor runs its jobs in the driver's process, where the function is at hand.
    names_logs_late: bool = False
    #: depio's limits: at most this many jobs submitted and not yet started (pending),
    #: and submitted and not yet ended (queued); None: no limit. Set by ``__init__``.
    max_jobs_pending: int | None = None
    max_jobs_queued: int | None = None

    def __init__(
        self, max_jobs_pending: int | None = None, max_jobs_queued: int | None = None
    ) -> None:
        self.max_jobs_pending = _job_limit(
            type(self).__name__, "max_jobs_pending", max_jobs_pending
        )
        self.max_jobs_queued = _job_limit(type(self).__name__, "max_jobs_queued", max_jobs_queued)

    def limit_slots(self, free: int, queued: int, pending: int = 0) -> int:
        """``free`` slots, fewer if depio's limits say so: ``queued`` jobs are submitted and
        not ended, ``pending`` of them not started yet. For ``free_slots`` implementations."""
        if self.max_jobs_queued is not None:
            free = min(free, self.max_jobs_queued - queued)
        if self.max_jobs_pending is not None:
            free = min(free, self.max_jobs_pending - pending)
        return max(0, free)

    def prepare(self, tasks: Sequence[Task]) -> None:  # noqa: B027 - optional, empty by default
        """Called once per run before anything is shown or run: raise a ``PipelineError``
        (naming the task) for a task this executor cannot take."""

    def start(self, tasks: Sequence[Task], context: RunContext) -> None:  # noqa: B027 - optional, empty by default
        """Called once per run, before any ``submit``, with every task of the run."""

    @abstractmethod
    def free_slots(self) -> int:
        """How many more jobs ``submit`` accepts right now."""

    @abstractmethod
    def submit(self, job: Job) -> None:
        """Start ``job`` (or queue it); must not block on the job itself."""

    @abstractmethod
    def wait(self, timeout: float | None) -> Sequence[Outcome | Started]:
        """Outcomes of jobs that ended (and ``Started`` events); block up to ``timeout`` s
        (None: until something happens)."""

    def cancel(self) -> list[int]:
        """Stop every job still running; return their indices."""
        return []

    def shutdown(self) -> None:  # noqa: B027 - optional, empty by default
        """Release workers and resources; called at the end of every run."""

    def outlived(self) -> bool:
        """After ``cancel`` / at the end of a run: whether jobs of this run may still end
        after it, for the next run to re-attach to (their value files must stay)."""
        return False

    def cells(self, index: int) -> Sequence[str]:
        """This executor's cells for ``columns`` in the row of task ``index``."""
        return ("",) * len(self.columns)


def _job_limit(owner: str, name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"{owner}({name}={value!r}): use a whole number >= 1, or None for no limit"
        )
    return value


class Capturing(Protocol):
    """Where a task's output goes while it runs (``Capture``, or one wrapping it)."""

    def begin(self, log: LogPath) -> None: ...

    def end(self, log: LogPath, old_log: bool = True) -> bool: ...


def run_steps(
    job: Job,
    export: Callable[[Step, Any], Any],
    capture: Capturing | None = None,
    hash_products: bool = False,
    own_interrupts: bool = False,
    isolate: bool = True,
) -> Iterator[Outcome]:
    """Run the job's tasks here, in order, each getting the values it takes; yield an
    outcome per task. After a failure the rest of the chain is not run (no outcome).
    ``export(step, value)`` is what to hand back for a value needed outside the job;
    ``capture`` sends what each task prints to its log files; ``hash_products``: digest
    the products here, where they were just written (the driver need not read them).
    A task's changes to the working directory and the environment are undone after it,
    so they never reach the next task run by the same process (not with ``isolate=False``:
    tasks in threads share both, and the executor sees to it).

    ``JobEnding`` is not caught, nor is the user's Ctrl-C (KeyboardInterrupt). A
    KeyboardInterrupt the task raised itself fails the task: always with
    ``own_interrupts`` (a worker, which Ctrl-C does not reach), else when ``interrupts``
    can tell it was not the user's.
    """
    values = dict(job.values)
    last = len(job.steps) - 1
    for k, step in enumerate(job.steps):
        o = run_step(
            step, values, k, k < last, export, capture, hash_products, own_interrupts, isolate
        )
        yield o
        if not o.ok:
            return


def run_step(
    step: Step,
    values: dict[Any, Any],
    k: int = 0,
    keep: bool = False,
    export: Callable[[Step, Any], Any] = lambda step, value: value,
    capture: Capturing | None = None,
    hash_products: bool = False,
    own_interrupts: bool = False,
    isolate: bool = True,
) -> Outcome:
    """Step ``k`` of a job (``run_steps``, which says how), given the ``values`` it takes;
    ``keep``: its value goes into ``values`` for the steps after it. A one-step job run in
    the driver comes here directly (no generator, no copy of its values)."""
    inputs = _digests(step.task.dependencies) if k else None
    t0 = _clock()
    printed = True
    log = step.log
    logged = capture if log else None
    saved = _surroundings() if isolate else None
    try:
        if logged is not None:
            logged.begin(log)
        progress.begin(step.index, log)
        try:
            value = step.task.run(values)
        finally:
            if saved is not None:
                _put_back(saved)
            progress.end()
            if logged is not None:
                try:
                    printed = logged.end(log, step.old_log)
                except OSError as e:  # a full disk: the task's output is lost
                    log = log_path(log)
                    raise _LogLost(
                        f"its output could not be saved to {log}.out / .err: {e.strerror or e}"
                    ) from None
    except JobEnding:
        raise
    except KeyboardInterrupt as e:
        if not own_interrupts and interrupts.from_user():
            raise
        return _raised(step, e, t0, printed)
    except _LogLost as e:
        return Outcome(step.index, False, error=str(e), duration=_clock() - t0, printed=False)
    except SystemExit as e:
        return Outcome(
            step.index,
            False,
            error=f"the task called sys.exit({e.code!r})",
            duration=_clock() - t0,
            printed=printed,
        )
    except BaseException as e:
        return _raised(step, e, t0, printed)
    duration = _clock() - t0
    if keep:
        values[step.task.id] = value
    handed = None
    if step.export_to:
        try:
            handed = export(step, value)
        except OSError as e:  # a full disk: no half file is left (atomic write)
            return Outcome(
                step.index,
                False,
                duration=duration,
                printed=printed,
                error=(
                    f"its return value ({type(value).__name__}) could not be written for "
                    f"{', '.join(step.export_to)}: {e.strerror or e}"
                ),
            )
        except Exception as e:  # noqa: BLE001 - pickling can raise anything
            return Outcome(
                step.index,
                False,
                duration=duration,
                printed=printed,
                error=(
                    f"its return value ({type(value).__name__}) cannot be handed to "
                    f"{', '.join(step.export_to)} in another process: it cannot be pickled "
                    f"({type(e).__name__}: {e})"
                ),
            )
    products = None
    if hash_products:
        products = {p: d for p in step.task.products if (d := digest_now(p)) is not None}
    return Outcome(step.index, True, handed, None, duration, printed, products, inputs)


_clock = time.perf_counter


def _raised(step: Step, e: BaseException, t0: float, printed: bool) -> Outcome:
    """The outcome of a step whose task raised ``e``."""
    return Outcome(
        step.index, False, error=format_task_exception(e), duration=_clock() - t0, printed=printed
    )


def _digests(paths: Sequence[str]) -> dict[str, str | None]:
    hasher = FileHasher(RealDisk(), {})
    return {p: hasher.digest(p) for p in paths}


class _LogLost(Exception):
    """A task's output could not be copied to its log files."""


def _surroundings() -> tuple[str | None, dict[Any, Any]]:
    """The working directory and environment before a task, to put back after it."""
    try:
        cwd: str | None = os.getcwd()
    except OSError:  # it was deleted: nothing to return to
        cwd = None
    # The encoded mapping behind os.environ: copied and compared without decoding.
    data = getattr(os.environ, "_data", None)
    return cwd, (data.copy() if data is not None else dict(os.environ))


def _put_back(saved: tuple[str | None, dict[Any, Any]]) -> None:
    cwd, env = saved
    if cwd is not None:
        try:
            if os.getcwd() != cwd:
                os.chdir(cwd)
        except OSError:
            try:
                os.chdir(cwd)
            except OSError:
                pass
    data = getattr(os.environ, "_data", None)
    if (data if data is not None else dict(os.environ)) == env:
        return
    want = {os.fsdecode(k): os.fsdecode(v) for k, v in env.items()} if data is not None else env
    now = dict(os.environ)
    for k in now.keys() - want.keys():
        del os.environ[k]
    for k, v in want.items():
        if now.get(k) != v:
            os.environ[k] = v


class Capture:
    """Collects what the tasks run in this process print, and hands each task its part.

    Output goes to two anonymous files (stdout, stderr) kept for the process's life, at the
    file-descriptor level, so C code and subprocesses are caught too. After each task,
    what it printed is copied to its own ``<log>.out`` / ``.err``; a task that printed
    nothing costs no file at all (old logs of it are removed). ``for_good``: send fd 1/2
    there now and until ``close()`` (a worker); else only while a task runs (the driver,
    which prints between tasks). ``breakpoint()`` gets the terminal back.
    """

    def __init__(self, for_good: bool) -> None:
        import tempfile

        self.for_good = for_good
        self._files = [tempfile.TemporaryFile(), tempfile.TemporaryFile()]  # noqa: SIM115 - kept open until close()
        self._fds = [f.fileno() for f in self._files]
        self._saved: tuple[int, int] | None = None
        # Copies of fd 1/2 as they were before the first task, kept between tasks (not
        # made and closed again for each); taken again if the run replaced fd 1/2 since
        # (``stdio_replaced``).
        self._kept: tuple[int, int] | None = None
        self._epoch = -1
        # sys.stdout/err as last seen when both wrote to fd 1/2 (then no need to ask again).
        self._plain_out: Any = None
        self._plain_err: Any = None
        self._py_used = False  # whether self._py ever stood in for sys.stdout/err
        # Where sys.stdout/err do not write to fd 1/2 (pytest, Jupyter), Python-level
        # wrappers over the same files stand in for them during a task.
        self._py = [
            open(  # noqa: SIM115 - kept open until close()
                os.dup(fd), "w", encoding="utf-8", errors="replace", buffering=1
            )
            for fd in self._fds
        ]
        if for_good:
            self._redirect()

    def _redirect(self) -> None:
        out, err = sys.stdout, sys.stderr
        # A stream that cannot be flushed (closed by a task, say) is asked again below.
        flushed = True
        try:  # what was printed before goes where it was going (_flush, inlined)
            out.flush()
        except (OSError, ValueError, AttributeError):
            flushed = False
        try:
            err.flush()
        except (OSError, ValueError, AttributeError):
            flushed = False
        if self.for_good:
            self._saved = os.dup(1), os.dup(2)
        else:
            kept = self._kept
            if kept is None or self._epoch != _stdio_epoch:
                if kept is not None:
                    os.close(kept[0])
                    os.close(kept[1])
                self._epoch = _stdio_epoch
                kept = self._kept = os.dup(1), os.dup(2)
            self._saved = kept
        os.dup2(self._fds[0], 1)
        os.dup2(self._fds[1], 2)
        self._streams = out, err
        if out is self._plain_out and err is self._plain_err and flushed:
            return  # the streams of last time, which write to fd 1/2 (held: not reused ids)
        plain = True
        if _fileno(out) != 1:
            sys.stdout = self._py[0]
            self._py_used = True
            plain = False
        if _fileno(err) != 2:
            sys.stderr = self._py[1]
            self._py_used = True
            plain = False
        if plain:
            self._plain_out, self._plain_err = out, err

    def _restore(self) -> None:
        saved = self._saved
        if saved is None:
            return
        self._flush_all()
        sys.stdout, sys.stderr = self._streams
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        if saved is not self._kept:
            os.close(saved[0])
            os.close(saved[1])
        self._saved = None

    def _flush_all(self) -> None:
        """Flush what the task may have written through: sys.stdout/err, and our
        wrappers once they have stood in for them (never before: nothing holds them)."""
        if self._py_used:
            _flush(sys.stdout, sys.stderr, *self._py)
            return
        try:  # _flush, inlined: this is every task's
            sys.stdout.flush()
        except (OSError, ValueError, AttributeError):
            pass
        try:
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):
            pass

    def begin(self, log: LogPath) -> None:
        """A task is about to run: send what it prints to our files."""
        if not self.for_good:
            self._redirect()
        self._hook = sys.breakpointhook
        sys.breakpointhook = self._debug

    def _debug(self, *args: Any, **kwargs: Any) -> Any:
        """``breakpoint()`` in a task: the debugger talks to the terminal, not to the log."""
        self._restore()
        return self._hook(*args, **kwargs)

    def end(self, log: LogPath, old_log: bool = True) -> bool:
        """The task is over: hand it its output; True if it printed anything.
        ``old_log``: logs of an earlier run of it may exist (stale if it printed nothing).
        A ``log`` that is a function is called only then."""
        sys.breakpointhook = self._hook
        if self.for_good or self._saved is None:
            self._flush_all()
        else:
            self._restore()  # which flushes them first
        # The files' sizes (SEEK_END), without the stat_result of os.fstat.
        fds = self._fds
        sizes = os.lseek(fds[0], 0, os.SEEK_END), os.lseek(fds[1], 0, os.SEEK_END)
        if not (sizes[0] or sizes[1]):  # the usual task: it printed nothing
            if old_log:
                _unlink_old(log_path(log))
            return False
        log = log_path(log)
        printed = False
        for fd, ext, size in ((fds[0], ".out", sizes[0]), (fds[1], ".err", sizes[1])):
            if size:
                printed = True
                try:
                    _copy(fd, size, log + ext)
                finally:  # whatever happens, the next task starts from empty files
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
            elif old_log:
                try:
                    os.unlink(log + ext)  # what an earlier run of it printed is stale now
                except FileNotFoundError:
                    pass
        return printed

    def close(self) -> None:
        self._restore()
        kept, self._kept = self._kept, None
        if kept is not None:
            os.close(kept[0])
            os.close(kept[1])
        for f in (*self._py, *self._files):
            f.close()


def _unlink_old(log: str) -> None:
    """What an earlier run of a task that printed nothing now printed is stale."""
    for ext in (".out", ".err"):
        try:
            os.unlink(log + ext)
        except FileNotFoundError:
            pass


# Changed by ``stdio_replaced``: copies of fd 1/2 kept by a ``Capture`` are taken again.
_stdio_epoch = 0


def stdio_replaced() -> None:
    """This process pointed fd 1 or 2 elsewhere between tasks (the display, when its
    reader went away): what a ``Capture`` puts back after a task is taken anew."""
    global _stdio_epoch
    _stdio_epoch += 1


def _copy(src: int, size: int, path: str) -> None:
    dst = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        offset = 0
        while offset < size:
            chunk = memoryview(os.pread(src, min(1 << 20, size - offset), offset))
            if not chunk:
                break
            offset += len(chunk)
            while chunk:  # a short write is not an error: write the rest
                chunk = chunk[os.write(dst, chunk) :]
    except OSError:
        os.close(dst)
        dst = -1
        try:
            os.unlink(path)  # no half log: a full disk gets back what it can
        except OSError:
            pass
        raise
    finally:
        if dst >= 0:
            os.close(dst)


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
        assert step.fingerprint, "the driver names every exported value"
        return dump_value(value, os.path.join(value_dir, f"{step.fingerprint}.value"))

    return export


def format_task_exception(e: BaseException) -> str:
    """The traceback of ``e`` without the frames of depio_like itself."""
    tb = e.__traceback__
    # Skip our own frames (the executor and Task.run) at the top of the stack.
    while tb is not None and _is_ours(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    import traceback  # only when a task fails: not every run pays its import

    return "".join(traceback.format_exception(type(e), e, tb)).rstrip()


def _is_ours(filename: str) -> bool:
    return filename.startswith(_PKG_DIR)


_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
