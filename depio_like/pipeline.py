"""The user's entry point: collect tasks, then ``run()`` them. Thin: it wires the phases."""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from .errors import (
    DuplicateProductError,
    GraphError,
    PipelineError,
    StateError,
    TaskDeclarationError,
    UnknownTaskError,
)
from .executors.base import Executor
from .fingerprint import forget_carried_state
from .fs import Disk, RealDisk
from .hooks import as_list
from .modes import BuildMode
from .options import PipelineSettings, RunOptions, tool_options
from .paths import BadPath, forget_dirs, normalise, show_path
from .task import CallIndex, Task

if TYPE_CHECKING:
    from .display import Display
    from .graph import TaskGraph
    from .state import State

# The run's modules (graph, plan, runner, state, display) are imported when a run starts:
# a worker that imports the user's script (Slurm, spawned processes) only runs tasks.

DEFAULT_STATE_DIR = ".depio_like"

# Every pipeline of this process, to let go of their tasks when the interpreter exits;
# by id, not in a WeakSet: that hashes them, and a subclass with __eq__ has no hash.
_PIPELINES: weakref.WeakValueDictionary[int, Pipeline] = weakref.WeakValueDictionary()


def _release_at_exit() -> None:
    """The interpreter is exiting: the pipelines drop their tasks now, so what only they
    held goes by reference counting, while the interpreter is whole (a ``__del__`` of the
    user's runs as usual), instead of being traversed by the collections of its shutdown:
    about 0.8 s of a 100,000-task script, and ten times that at 1,000,000. A pipeline
    with a run going on (in another thread) keeps them."""
    for p in list(_PIPELINES.values()):
        if p._running:  # a run in another (daemon) thread goes on until the process ends
            continue
        p._tasks.clear()
        p._survivors.clear()
        p._producer.clear()


class _Forever:
    """Lives as long as this module: what the exit release hangs on."""


# A finalizer made when depio_like is imported, run at exit: after the exit handlers
# registered once weakref's exit hook was (by the first finalizer of the process: ours,
# or an earlier import's), and after every finalizer made later (they run newest first).
# So what a script registers after importing depio_like still sees every task; only a
# handler registered before any finalizer existed runs after the release.
_FOREVER = _Forever()
weakref.finalize(_FOREVER, _release_at_exit)


class Pipeline:
    """A set of tasks and how to run them.

    ``executor`` chooses where tasks run (default: ``ParallelExecutor()``);
    ``depioExecutor`` is accepted as an alias, so depio scripts port unchanged.
    ``state_dir`` holds the records of past runs (default ``.depio_like`` in the
    current directory). ``wait_for_lock=False`` fails at once instead of waiting when
    another run uses the same state directory. ``delete_on_error=True`` removes the
    products of a task that failed (like Make's .DELETE_ON_ERROR); by default they stay,
    marked incomplete, so the task reruns. ``buildmode`` is the default for tasks that do
    not set one (``BuildMode.IF_NEW``: the content-hash rule). When more tasks are ready
    than workers are free, the one with the longest path ahead of it (by durations recorded
    in earlier runs) goes first; ``critical_path=False`` dispatches in the order tasks were
    added instead. ``on_task_finished`` /
    ``on_pipeline_finished``: callables (or lists of them) called in this process with a
    ``TaskResult`` / ``PipelineResult``. Each task's stdout and stderr go to log files
    under ``<state_dir>/logs``; ``show_output=True`` also prints them, one block per task
    when it ends, never interleaved with other tasks' output.

    depio's arguments, in depio's positional order after ``name``: ``clear_screen``
    (ignored), ``hide_successful_terminated_tasks`` (leave FINISHED / SKIPPED rows out of
    the table), ``submit_only_if_runnable`` (accepted: tasks always go out once their
    dependencies are done), ``quiet``, ``refreshrate``.
    """

    # The positional order up to refreshrate is depio's.
    def __init__(
        self,
        executor: Executor | None = None,
        name: str = "default",
        clear_screen: Any = None,
        hide_successful_terminated_tasks: bool = False,
        submit_only_if_runnable: bool = True,
        quiet: bool = False,
        refreshrate: float = 0.25,
        *,
        depioExecutor: Executor | None = None,
        state_dir: str | os.PathLike | None = None,
        wait_for_lock: bool = True,
        delete_on_error: bool = False,
        show_output: bool = True,
        buildmode: BuildMode = BuildMode.IF_NEW,
        critical_path: bool = True,
        on_task_finished: Any = None,
        on_pipeline_finished: Any = None,
        stream: TextIO | None = None,
        disk: Disk | None = None,
    ) -> None:
        if executor is not None and depioExecutor is not None:
            raise TypeError("Pipeline(): pass executor= or depioExecutor=, not both")
        executor = executor if executor is not None else depioExecutor
        if executor is None:
            from .executors.local import ParallelExecutor

            executor = ParallelExecutor()
        self.executor = executor
        self.name = name
        self.state_dir = os.path.abspath(state_dir if state_dir is not None else DEFAULT_STATE_DIR)
        self.quiet = quiet
        self.refreshrate = refreshrate
        self.wait_for_lock = wait_for_lock
        self.delete_on_error = delete_on_error
        self.show_output = show_output
        if not isinstance(buildmode, BuildMode):
            raise TypeError(f"Pipeline(buildmode={buildmode!r}): use a BuildMode")
        self.buildmode = buildmode
        self.critical_path = critical_path
        self.on_task_finished = as_list(on_task_finished)
        self.on_pipeline_finished = as_list(on_pipeline_finished)
        self.stream = stream
        self.disk: Disk = disk if disk is not None else RealDisk()
        forget_carried_state()  # a new declaration: what closures captured may differ
        self.hide_successful_terminated_tasks = bool(hide_successful_terminated_tasks)
        # depio's False submitted every task at once, chained with afterok; tasks here
        # always go out once their dependencies are done (only the driver can check the
        # cache, and a failed afterok parent would leave its children pending forever).
        self.submit_only_if_runnable = bool(submit_only_if_runnable)
        _install_excepthook()
        if "\x00" in self.state_dir:  # as paths.normalise refuses any path declared
            raise StateError(
                f"Pipeline(state_dir={state_dir!r}): a path with a NUL byte, which no file "
                "name holds"
            )
        self._tasks: list[Task] = []
        self._survivors = CallIndex()
        self._producer: dict[str, int] = {}
        self._variant: str | None = None
        self._running = 0  # runs going on (in any thread): their tasks stay at exit
        _PIPELINES[id(self)] = self

    @property
    def tasks(self) -> list[Task]:
        """The tasks of this pipeline, in the order they were added (merged calls once)."""
        return list(self._tasks)

    def add_tasks(self, tasks: Iterable[Task]) -> list[Task]:
        """``add_task`` for each task in order; the surviving tasks."""
        return [self.add_task(t) for t in tasks]

    def add_task(self, task: Task) -> Task:
        """Add ``task`` and return the task that stands for its call.

        A task with the same function and the same bound arguments as one already added
        is that one: it is returned, and its ``depends_on`` joins the survivor's.
        A different task declaring a product another task already declares is an error.
        """
        if not isinstance(task, Task):
            raise TypeError(f"add_task() takes a Task, got {type(task).__name__} {task!r}")
        survivors = self._survivors
        survivor = survivors.get(task)
        if survivor is not None:
            if survivor is not task and task._depends_on:
                for d in task._depends_on:
                    if d not in survivor.depends_on:
                        survivor.depends_on.append(d)
            self._label(survivor)
            return survivor
        tasks, producer = self._tasks, self._producer
        index = len(tasks)
        products = task.products
        for p in products:
            other = producer.get(p)
            if other is not None:
                first = tasks[other]
                raise DuplicateProductError(
                    f"{show_path(p)} is declared as a product by two different tasks: "
                    f"{first.label} (as {_spelling(first, p)!r}) and {task.name!r} "
                    f"(as {_spelling(task, p)!r}; {_describe_call(task)}); a path can have "
                    "only one producer (paths are compared with symlinked directories "
                    "resolved)"
                )
        for d in task._depends_on or ():
            if survivors.get(d) is None:
                raise UnknownTaskError(
                    f"task {task.name!r} ({_describe_call(task)}) depends on task {d.name!r} "
                    f"({_describe_call(d)}), which is not in the pipeline: add it with "
                    "add_task() first (depio's TaskNotInQueueException)"
                )
        for p in products:
            producer[p] = index
        task.id = index + 1
        tasks.append(task)
        survivors.add(task)
        if self._variant is not None:
            self._label(task)
        return task

    def _label(self, task: Task) -> None:
        if self._variant is not None and self._variant not in task.variants:
            task.variants = (*task.variants, self._variant)

    @contextlib.contextmanager
    def variant(self, label: str) -> Iterator[None]:
        """Tasks added inside ``with pipeline.variant("lr=0.1"):`` belong to that
        configuration; the table gets a Variant column. A task shared by several
        configurations (merged: same function, same arguments) runs once and lists them all.
        """
        old, self._variant = self._variant, str(label)
        try:
            yield
        finally:
            self._variant = old

    def validate(self) -> TaskGraph:
        """Build the graph and check it can run (cycles, missing files, unknown tasks, the
        state directory apart from every product)."""
        for t in self._tasks:
            if t._rare is not None and t.missing:
                where = f" (declared at {show_path(t.declared_at)})" if t.declared_at else ""
                names = ", ".join(repr(m) for m in t.missing)
                raise TaskDeclarationError(
                    f"task {t.label}{where}: {_describe_call(t)} is missing required "
                    f"argument(s) {names}; pass them in args/kwargs"
                )
        forget_dirs()  # declarations after this one see symlinks as they are then
        state_dir = normalise(self.state_dir, "/")
        inside = state_dir + "/"
        for t in self._tasks:
            for p in t.products:
                if p == state_dir or p.startswith(inside):
                    raise GraphError(
                        f"task {t.label} declares the product {show_path(p)}, "
                        f"inside the state directory {show_path(self.state_dir)}; "
                        "choose another path"
                    )
        d = state_dir
        while d:  # a task producing a directory the state directory is in would own it
            j = self._producer.get(d)
            if j is not None:
                raise GraphError(
                    f"the state directory {show_path(self.state_dir)} is inside "
                    f"{show_path(d)}, a product of task {self._tasks[j].label}: the task "
                    "would own (and may delete) the records; give the pipeline another "
                    "state_dir, or the task another product"
                )
            d = d.rpartition("/")[0]
        from .graph import build_graph

        return build_graph(self._tasks, self._producer, self._survivors, self.disk)

    def graph(self) -> Any:
        """The task graph as a ``networkx.DiGraph`` (nodes are task ids)."""
        return self.validate().to_networkx()

    def run(
        self,
        *,
        force: bool = False,
        dry_run: bool = False,
        explain: bool = False,
        targets: Sequence[str | os.PathLike] | None = None,
        jobs: int | None = None,
        executor: Executor | None = None,
    ) -> int:
        """Run every task that is not up to date; return 0 if all ended well, 1 if a task
        failed, 130 if interrupted. Graph errors raise before anything runs.

        ``force``: rerun everything. ``dry_run``: only say what would run (nothing runs,
        nothing is written). ``explain``: say why each task runs. ``targets``: only what
        these products need. ``jobs``: how many tasks at once (local workers, or Slurm
        array elements). ``executor``: use this one for this run.
        """
        opts = RunOptions.of(
            force=force,
            dry_run=dry_run,
            explain=explain,
            targets=targets,
            jobs=jobs,
            executor=executor,
        )
        return self.run_with(opts)

    def run_with(self, options: RunOptions) -> int:
        """``run()`` with its options as one object (those of ``depio-like run`` on top)."""
        # Building the graph, loading the records and the plan make many objects that
        # live until the run ends, and no garbage cycles: the cyclic collector is held off
        # until the tasks start, then those objects are frozen out of its way (its full
        # passes over them cost a third of a no-op run of 100,000 tasks). Only what this
        # run froze is unfrozen: a process that froze objects itself (gc.freeze() before
        # forking servers) is left as it was, and then nothing is frozen here.
        self._gc_was_enabled = gc.isenabled()
        self._gc_freezes = gc.get_freeze_count() == 0
        gc.disable()
        self._running += 1
        try:
            return self._run_with(options)
        finally:
            self._running -= 1
            if self._gc_freezes:
                gc.unfreeze()
            if self._gc_was_enabled:
                gc.enable()

    def _run_with(self, options: RunOptions) -> int:
        forget_carried_state()
        tool = tool_options.get()
        if tool is not None:
            options = tool.over(options)
        executor = options.executor or self.executor
        graph = self.validate()
        if options.targets:
            # Made absolute by RunOptions; spelled here as the graph spells paths.
            graph = graph.subgraph(graph.needed_for(_target_paths(options.targets)))
        if options.jobs is not None and not executor.takes_jobs:
            print(
                f"note: --jobs {options.jobs} does not apply to {type(executor).__name__}",
                file=sys.stderr,
            )
        from .display import Display
        from .state import State

        display = Display(
            self.stream,
            quiet=self.quiet,
            interval=self.refreshrate,
            hide_ok=self.hide_successful_terminated_tasks,
        )
        notify = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
        if options.dry_run:
            state = State(self.state_dir, notify=notify)
            state.share(self._producer, self._tasks).read_only()
            return self._run(graph, executor, state, display, options)
        from . import interrupts

        # A second Ctrl-C must not break the stopping the first one started.
        with interrupts.guarded():
            try:
                state = State(self.state_dir, wait=self.wait_for_lock, notify=notify)
                with state.share(self._producer, self._tasks):
                    return self._run(graph, executor, state, display, options)
            except KeyboardInterrupt:  # before the run started, or after it ended
                notify("Interrupted.")
                return 130

    def _run(
        self,
        graph: TaskGraph,
        executor: Executor,
        state: State,
        display: Display,
        options: RunOptions,
    ) -> int:
        from .runner import Run

        run = Run(graph, executor, state, display, self.disk, options, self._settings())
        if self._gc_freezes:
            gc.freeze()  # the records, the graph and the plan, made since run() began
        if self._gc_was_enabled:
            gc.enable()  # the tasks' own garbage is collected as usual
        return run.execute()

    def _settings(self) -> PipelineSettings:
        return PipelineSettings(
            self.name,
            self.buildmode,
            self.delete_on_error,
            self.show_output,
            self.critical_path,
            self.on_task_finished,
            self.on_pipeline_finished,
        )

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Run with options from the script's command line (``python pipeline.py --help``):
        ``exit(pipeline.main())`` in place of ``exit(pipeline.run())``."""
        from . import cli

        return cli.main(self, argv)

    def export_graph(self, fmt: str = "mermaid", files: bool = False) -> str:
        """The task graph as Mermaid or DOT text, each task labelled with its name and
        what a run would do now (WOULD-RUN / SKIPPED)."""
        from .export import to_dot, to_mermaid

        render = {"mermaid": to_mermaid, "dot": to_dot}.get(fmt)
        if render is None:
            raise ValueError(f"export_graph(fmt={fmt!r}): use 'mermaid' or 'dot'")
        from .display import Display
        from .runner import Run
        from .state import State

        graph = self.validate()
        state = State(self.state_dir, notify=lambda m: None).read_only()
        quiet = Display(self.stream, quiet=True)
        dry = RunOptions(dry_run=True)
        run = Run(graph, self.executor, state, quiet, self.disk, dry, self._settings())
        run.execute()
        return render(graph, run.status, files=files)

    def clean(self, *, yes: bool = False, ask: Any = None) -> int:
        """Remove this pipeline's products and its tasks' records and logs, after asking
        (``ask(question) -> bool``; default: the terminal) unless ``yes``."""
        from .clean import clean

        return clean(self, yes=yes, ask=ask)


def _describe_call(task: Task) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in task.arguments.items())
    text = f"{getattr(task.func, '__qualname__', task.func)}({args})"
    return text if len(text) < 200 else text[:197] + "..."


def _spelling(task: Task, path: str) -> str:
    """``path`` as the task's arguments wrote it (normalising may have changed it)."""
    cwd = os.getcwd()
    for name in task.path_params:
        v = task.arguments.get(name)
        for item in v if isinstance(v, (list, tuple)) else (v,):
            if isinstance(item, (str, os.PathLike)):
                raw = os.fsdecode(os.fspath(item))
                try:
                    if raw and normalise(raw, cwd) == path:
                        return raw
                except BadPath:
                    pass
    return show_path(path)


def _target_paths(targets: Sequence[str]) -> list[str]:
    """The targets as the graph spells paths; a GraphError for one no file name can be
    (what no task can produce either), not a traceback."""
    out = []
    for t in targets:
        try:
            out.append(normalise(t, "/"))
        except BadPath as e:
            raise GraphError(f"--target {e}: no task of this pipeline produces it") from None
    return out


_hook_installed = False


def _install_excepthook() -> None:
    """A ``PipelineError`` that nothing caught (a second producer at ``add_task``, a cycle
    at ``run()``) ends ``python script.py`` with one message and exit 2, as ``main()``
    and the ``depio-like`` command do; any other exception goes to the previous hook."""
    global _hook_installed
    if _hook_installed:
        return
    _hook_installed = True
    previous = sys.excepthook

    def hook(exc_type: type, exc: BaseException, tb: Any) -> None:
        if not isinstance(exc, PipelineError):
            return previous(exc_type, exc, tb)
        where = _user_frame(tb)
        print(
            f"error: {exc}" + (f"\n  (raised at {where})" if where else ""),
            file=sys.stderr,
            flush=True,
        )
        if sys.flags.interactive or hasattr(sys, "ps1"):
            return  # a Python prompt: report, and keep the session
        _exit(2)

    sys.excepthook = hook


def _user_frame(tb: Any) -> str:
    """``file, line N`` of the last traceback frame outside this package."""
    package = os.path.dirname(os.path.abspath(__file__))
    where = ""
    while tb is not None:
        code = tb.tb_frame.f_code
        if not os.path.abspath(code.co_filename).startswith(package + os.sep):
            where = f"{show_path(code.co_filename)}, line {tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _exit(code: int) -> None:
    """Exit with ``code`` from inside sys.excepthook, where raising SystemExit cannot:
    what a normal exit does first (non-daemon threads, atexit, flushing), then _exit."""
    import atexit
    import threading

    try:
        getattr(threading, "_shutdown", lambda: None)()
    except Exception:  # noqa: BLE001 - best effort, as at a normal exit
        pass
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    os._exit(code)
