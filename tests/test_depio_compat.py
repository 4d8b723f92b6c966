"""What depio users write, accepted with depio's meaning (issue 14): module paths, Task and
Pipeline keywords, the decorator's positional order, exception names, executor limits; and
what a script sees: one message for a declaration error, a broken pipe, the exit code."""

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import (
    BuildMode,
    Dependency,
    DuplicateProductError,
    MissingDependencyError,
    ParallelExecutor,
    Pipeline,
    Product,
    SequentialExecutor,
    Task,
    TaskDeclarationError,
    UnknownTaskError,
    task,
)

from conftest import calls, log_call, new_pipeline, run_script

# ---------------------------------------------------------------- module paths

IMPORT_FORMS = [
    "from depio_like.Pipeline import Pipeline",
    "from depio_like.Pipeline import Pipeline, Task, TaskStatus, AbstractTaskExecutor",
    "from depio_like.Pipeline import ProductAlreadyRegisteredException, "
    "TaskNotInQueueException, DependencyNotAvailableException",
    "from depio_like.Executors import SequentialExecutor, ParallelExecutor, SubmitItExecutor",
    "from depio_like.Executors import AbstractTaskExecutor, DEFAULT_PARAMS, TWO_DAYS_IN_MINUTES",
    "from depio_like.Executors import *",
    "from depio_like.Task import Task, Product, Dependency, IgnoredForEq",
    "from depio_like.Task import ProductNotProducedException, DependencyNotMetException",
    "from depio_like.BuildMode import BuildMode",
    "from depio_like.TaskStatus import TaskStatus, TERMINAL_STATES, "
    "SUCCESSFUL_TERMINAL_STATES, FAILED_TERMINAL_STATES",
    "from depio_like.decorators import task",
    "from depio_like.exceptions import *",
    "import depio_like.Executors",
    "import depio_like.Executors as E; E.SubmitItExecutor",
    "import depio_like.Pipeline, depio_like.Task, depio_like.BuildMode",
    "import depio_like.TaskStatus, depio_like.decorators, depio_like.exceptions",
    "import importlib; importlib.import_module('depio_like.Task').Task",
]


@pytest.mark.parametrize("statement", IMPORT_FORMS)
def test_depio_import_forms_work_in_a_fresh_interpreter(statement):
    r = subprocess.run(
        [sys.executable, "-c", statement],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr


def test_depio_modules_hold_depio_names_bound_to_ours():
    code = textwrap.dedent("""
        import sys
        import depio_like
        import depio_like.Executors
        from depio_like.Pipeline import Pipeline as P
        from depio_like.Task import Task as T, IgnoredForEq
        from depio_like.BuildMode import BuildMode as B
        from depio_like.TaskStatus import TaskStatus, TERMINAL_STATES
        from depio_like.decorators import task
        from depio_like import exceptions
        assert P is depio_like.Pipeline and T is depio_like.Task and B is depio_like.BuildMode
        assert IgnoredForEq is depio_like.IgnoredForEq and task is depio_like.task
        assert TaskStatus is depio_like.Status and TaskStatus.CANCELED is TaskStatus.CANCELLED
        S = depio_like.Status
        assert TERMINAL_STATES == [S.FINISHED, S.FAILED, S.SKIPPED, S.DEPFAILED, S.CANCELLED]
        assert depio_like.Executors.ParallelExecutor is depio_like.ParallelExecutor
        assert exceptions.ProductAlreadyRegisteredException is depio_like.DuplicateProductError
        # The package's own names stay classes after the modules are imported.
        import depio_like.Pipeline, depio_like.Task, depio_like.BuildMode
        from depio_like import Pipeline, Task, BuildMode
        assert isinstance(Pipeline, type) and isinstance(Task, type)
        assert BuildMode.ALWAYS
        # Importing them costs nothing: the Slurm executor's module comes only when asked for.
        assert "depio_like.executors.slurm" not in sys.modules
        assert "submitit" not in sys.modules
        from depio_like.Executors import SubmitItExecutor
        assert "depio_like.executors.slurm" in sys.modules
        assert SubmitItExecutor is depio_like.SubmitItExecutor
    """)
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stderr


def test_no_two_package_files_differ_only_in_case():
    # Pipeline.py beside pipeline.py would be one file on macOS: the depio modules must not
    # be files of those names.
    package = Path(__import__("depio_like").__file__).parent
    for folder, dirs, files in os.walk(package):
        names = [n.lower() for n in dirs + files]
        assert len(names) == len(set(names)), folder


# ---------------------------------------------------------------- Task


def copy(out: Annotated[Path, Product], src: Annotated[Path, Dependency] = None, n: int = 1):
    log_call(f"copy:{Path(out).name}")
    Path(out).write_text((Path(src).read_text() if src else "") + "+")


def test_task_takes_none_for_args_and_depios_keyword_names(project):
    a = Task("a", copy, None, {"out": "a.txt"})
    b = Task("b", copy, func_args=["a.txt"])
    c = Task("c", copy, func_kwargs={"out": "a.txt"})
    assert a == b == c and a.products == (str(project / "a.txt"),)
    with pytest.raises(TaskDeclarationError, match="args= or func_args="):
        Task("d", copy, ["a.txt"], func_args=["a.txt"])


def test_produces_adds_products_beyond_the_parameters(project):
    def write_two(out: Annotated[Path, Product]):
        Path(out).write_text("1")
        Path("extra.txt").write_text("2")

    def read(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        Path(out).write_text(Path(src).read_text())

    p = new_pipeline()
    p.add_task(Task("r", read, ["copy.txt", "extra.txt"]))
    p.add_task(Task("w", write_two, ["one.txt"], produces=[Path("extra.txt")]))
    assert p.run() == 0  # the reader waited for extra.txt's producer, added after it
    assert Path("copy.txt").read_text() == "2"
    # Different extra products are different tasks (not merged, one silently lost).
    assert Task("x", write_two, ["o"], produces=["e1"]) != Task(
        "x", write_two, ["o"], produces=["e2"]
    )
    # A product the task does not write fails it, naming the file.
    p = new_pipeline()
    p.add_task(Task("w", write_two, ["one2.txt"], produces=["never.txt"]))
    assert p.run() == 1
    assert "never.txt" in p.stream.getvalue()


def test_depends_on_a_path_waits_for_its_producer(project):
    def late(out: Annotated[Path, Product]):
        log_call("late")
        time.sleep(0.3)  # gives a task that does not wait a chance to run first
        Path(out).write_text("made")

    def reader(out: Annotated[Path, Product]):
        log_call("reader")
        Path(out).write_text(Path("made.txt").read_text())

    p = new_pipeline(ParallelExecutor(max_workers=2))
    p.add_task(Task("reader", reader, ["r.txt"], depends_on=[Path("made.txt")]))
    p.add_task(Task("late", late, ["made.txt"]))
    assert p.run() == 0
    assert calls() == ["late", "reader"]
    # A path dependency nothing produces and that does not exist: depio's
    # DependencyNotAvailableException, before anything runs.
    from depio_like.Pipeline import DependencyNotAvailableException

    p = new_pipeline()
    p.add_task(Task("reader", reader, ["r2.txt"], depends_on=["nowhere.txt"]))
    with pytest.raises(DependencyNotAvailableException, match="nowhere.txt"):
        p.run()


def test_fifth_positional_argument_with_paths_is_refused():
    # depio's 5th positional argument is produces; ours is depends_on: never guess.
    with pytest.raises(TaskDeclarationError, match="produces=.*depends_on="):
        Task("t", copy, ["o"], {}, [Path("out.txt")])
    first = Task("first", copy, ["a"])
    assert Task("t", copy, ["b"], {}, [first]).depends_on == [first]


def test_description_slurm_parameters_and_arg_resolver(project):
    def resolver(func, args, kwargs):
        assert func is copy and isinstance(args, list) and isinstance(kwargs, dict)
        return args, {**kwargs, "out": "resolved.txt"}

    t = Task(
        "t",
        copy,
        [],
        {},
        description="makes a file",
        arg_resolver=resolver,
        slurm_parameters={"slurm_partition": "gpu", "gpus_per_node": 1},
    )
    assert t.description == "makes a file"
    assert t.slurm_parameters == {"slurm_partition": "gpu", "gpus_per_node": 1}
    assert t.products == (str(project / "resolved.txt"),)
    assert Task("u", copy, ["o"]).slurm_parameters == {}
    with pytest.raises(TaskDeclarationError, match="must return \\(args, kwargs\\)"):
        Task("v", copy, ["o"], arg_resolver=lambda f, a, k: None)
    with pytest.raises(TaskDeclarationError, match="slurm_parameters must be a dict"):
        Task("w", copy, ["o"], slurm_parameters=["gpu"])


def test_task_missing_arguments_is_refused_by_run_before_anything_runs(project):
    p = new_pipeline()
    p.add_task(Task("fine", copy, ["fine.txt"]))
    p.add_task(Task("incomplete", copy))
    with pytest.raises(TaskDeclarationError, match=r"'incomplete'.*missing.*'out'"):
        p.run()
    assert not Path("fine.txt").exists()


# ---------------------------------------------------------------- decorator


def test_decorator_takes_depios_positional_order_and_slurm_keywords(project):
    p = new_pipeline()

    @task(
        "n",
        p,
        BuildMode.ALWAYS,
        slurm_gpus_per_task=1,
        timeout_min=30,
        slurm_parameters={"slurm_mem": "4G"},
    )
    def make(out: Annotated[Path, Product]):
        log_call("make")
        Path(out).write_text("x")

    t = make("m.txt")
    assert t in p.tasks and t.buildmode is BuildMode.ALWAYS and t.name == "n"
    assert t.slurm_parameters == {"slurm_mem": "4G", "slurm_gpus_per_task": 1, "timeout_min": 30}
    assert p.run() == 0 and p.run() == 0
    assert calls() == ["make", "make"]  # ALWAYS: the second run runs it again
    with pytest.raises(TypeError, match="unknown option.*alwyas"):
        task("n", alwyas=True)
    with pytest.raises(TypeError, match="multiple values for argument 'buildmode'"):
        task("n", None, BuildMode.ALWAYS, buildmode=BuildMode.NEVER)


# ---------------------------------------------------------------- Pipeline


def test_add_tasks_and_depios_positional_order(project):
    p = Pipeline(SequentialExecutor(), "named", False, True, True, True, 0.5)
    assert (
        p.name,
        p.hide_successful_terminated_tasks,
        p.submit_only_if_runnable,
        p.quiet,
        p.refreshrate,
    ) == ("named", True, True, True, 0.5)
    a, b, a2 = p.add_tasks(
        [
            Task("a", copy, ["a.txt"]),
            Task("b", copy, ["b.txt", "a.txt"]),
            Task("again", copy, ["a.txt"]),
        ]
    )
    assert a2 is a and p.tasks == [a, b]
    assert p.run() == 0 and Path("b.txt").read_text() == "++"
    Pipeline(SequentialExecutor(), submit_only_if_runnable=False)  # accepted: see README


def test_hide_successful_terminated_tasks_leaves_them_out_of_the_table(project):
    def boom(out: Annotated[Path, Product]):
        raise RuntimeError("no")

    p = new_pipeline(hide_successful_terminated_tasks=True)
    p.add_task(Task("good", copy, ["good.txt"]))
    p.add_task(Task("bad", boom, ["bad.txt"]))
    assert p.run() == 1
    table = p.stream.getvalue().split("Tasks:\n")[-1]
    assert "bad" in table and "good" not in table.split("\n(")[0]
    assert "(1 finished or up to date, not shown)" in table
    shown = new_pipeline()
    shown.add_task(Task("good", copy, ["good.txt"]))
    assert shown.run() == 0 and "good" in shown.stream.getvalue().split("Tasks:\n")[-1]


def test_depios_errors_are_raised_where_depio_raises_them(project):
    from depio_like.exceptions import (
        DependencyNotAvailableException,
        ProductAlreadyRegisteredException,
        TaskNotInQueueException,
    )

    p = new_pipeline()
    p.add_task(Task("one", copy, ["same.txt"]))
    with pytest.raises(ProductAlreadyRegisteredException, match="same.txt"):
        p.add_task(Task("two", copy, ["same.txt", "x"]))
    stranger = Task("stranger", copy, ["s.txt"])
    with pytest.raises(TaskNotInQueueException, match="stranger"):
        p.add_task(Task("needy", copy, ["n.txt"], depends_on=[stranger]))
    p.add_task(Task("reader", copy, ["r.txt", "missing.txt"]))
    with pytest.raises(DependencyNotAvailableException, match="missing.txt"):
        p.run()
    assert ProductAlreadyRegisteredException is DuplicateProductError
    assert TaskNotInQueueException is UnknownTaskError
    assert DependencyNotAvailableException is MissingDependencyError


# ---------------------------------------------------------------- executors


@pytest.mark.parametrize("make", [SequentialExecutor, ParallelExecutor])
def test_every_local_executor_takes_depios_job_limits(make):
    ex = make(max_jobs_pending=3, max_jobs_queued=2)
    assert (ex.max_jobs_pending, ex.max_jobs_queued) == (3, 2)
    with pytest.raises(ValueError, match="max_jobs_queued=0"):
        make(max_jobs_queued=0)


def test_max_jobs_queued_caps_the_tasks_running_at_once(project):
    def exclusive(out: Annotated[Path, Product]):
        # Fails if another task is inside at the same time.
        fd = os.open("inside", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        try:
            time.sleep(0.2)
        finally:
            os.close(fd)
            os.unlink("inside")
        Path(out).write_text("x")

    p = new_pipeline(ParallelExecutor(max_workers=4, max_jobs_queued=1))
    p.add_tasks([Task(f"t{i}", exclusive, [f"o{i}.txt"]) for i in range(4)])
    assert p.run() == 0, p.stream.getvalue()
    ex = ParallelExecutor(max_workers=4, max_jobs_queued=2)
    ex.start([], __import__("depio_like").executors.RunContext(state_dir=str(project)))
    try:
        assert ex.free_slots() == 2
    finally:
        ex.shutdown()


def test_parallel_executor_takes_a_concurrent_futures_pool_for_its_size():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=3) as pool:
        assert ParallelExecutor(pool).max_workers == 3
        assert ParallelExecutor(internal_executor=pool).max_workers == 3


# ---------------------------------------------------------------- what a script sees


def test_declaration_error_is_one_message_and_exit_2(tmp_path):
    r = run_script(
        tmp_path,
        """
        from pathlib import Path
        from typing import Annotated
        from depio_like import Pipeline, Task, Product

        def f(out: Annotated[Path, Product], n: int = 0):
            Path(out).write_text("x")

        p = Pipeline()
        p.add_task(Task("one", f, ["same.txt"]))
        p.add_task(Task("two", f, ["same.txt"], {"n": 1}))
        exit(p.run())
    """,
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("error: same.txt is declared as a product by two different tasks")
    assert r.stderr.rstrip().endswith("(raised at pipeline.py, line 11)")


def test_other_errors_keep_their_traceback_and_a_caught_error_is_left_alone(tmp_path):
    r = run_script(
        tmp_path,
        """
        from depio_like import Pipeline, DuplicateProductError
        p = Pipeline()
        try:
            raise DuplicateProductError("handled")
        except DuplicateProductError:
            print("caught")
        raise ValueError("not ours")
    """,
    )
    assert r.returncode == 1
    assert r.stdout == "caught\n"
    assert "Traceback" in r.stderr and "ValueError: not ours" in r.stderr


def test_bare_run_exits_0_and_the_summary_says_what_to_pass_to_exit(tmp_path):
    r = run_script(
        tmp_path,
        """
        from depio_like import Pipeline, SequentialExecutor, Task
        def boom():
            raise RuntimeError("no")
        p = Pipeline(SequentialExecutor())
        p.add_task(Task("boom", boom))
        p.run()
    """,
    )
    assert r.returncode == 0  # as documented: only exit(pipeline.run()) passes the code on
    assert "Exit code 1: end the script with exit(pipeline.run()) to pass it on." in r.stdout


def test_summary_of_one_task_is_singular(project):
    p = new_pipeline()
    p.add_task(Task("one", copy, ["one.txt"]))
    assert p.run() == 0
    assert "The 1 task is done (1 ran, 0 up to date)." in p.stream.getvalue()


def test_after_a_closed_stdout_pipe_a_task_run_in_process_leaves_stdout_harmless(tmp_path):
    # The run points stdout at /dev/null once the reader is gone; a task run in this
    # process after that must not get the closed pipe back as its stdout, nor leave it
    # there for what the script prints after the run.
    script = tmp_path / "pipeline.py"
    script.write_text(
        textwrap.dedent("""
        import sys, time
        from pathlib import Path
        from depio_like import Pipeline, SequentialExecutor, Task
        def wait_for_reader_to_go():
            while not Path("reader-gone").exists():
                time.sleep(0.05)
        def after():
            Path("after-ran").write_text("yes")
        p = Pipeline(SequentialExecutor())
        first = p.add_task(Task("first", wait_for_reader_to_go))
        second = p.add_task(Task("second", after, depends_on=[first]))
        print("started", flush=True)
        code = p.run()
        print("after the run " * 1000, flush=True)
        exit(code)
    """)
    )
    _run_until_the_reader_goes(script, tmp_path)
    assert (tmp_path / "after-ran").read_text() == "yes"


def _run_until_the_reader_goes(script, tmp_path):
    """Run ``script``, read its first line ("started"), close the pipe like ``head -1``
    and let its first task end: the run must go on, without a traceback, and exit 0."""
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout.readline() == "started\n"
        proc.stdout.close()  # like `head -1` exiting
        (tmp_path / "reader-gone").touch()
        err = proc.stderr.read()
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "BrokenPipeError" not in err and "Traceback" not in err, err
    assert code == 0


def test_a_task_after_one_that_closed_sys_stdout_has_its_output_captured(tmp_path):
    # sys.stdout writes to fd 1 (a pipe, as from a shell): the capture asks again after a
    # task closed it, instead of taking it as last time's (then print raises).
    r = run_script(
        tmp_path,
        """
        import io, sys
        from pathlib import Path
        from typing import Annotated
        from depio_like import Pipeline, Product, SequentialExecutor, Task

        def closes_stdout(out: Annotated[Path, Product]):
            sys.stdout.close()
            Path(out).write_text("a")

        def prints(out: Annotated[Path, Product]):
            print("hello from b")
            Path(out).write_text("b")

        shown = io.StringIO()
        p = Pipeline(SequentialExecutor(), stream=shown)
        a = p.add_task(Task("a", closes_stdout, ["a.txt"]))
        p.add_task(Task("b", prints, ["b.txt"], depends_on=[a]))
        code = p.run()
        sys.stderr.write(shown.getvalue())
        sys.exit(code)
        """,
    )
    assert r.returncode == 0, r.stderr
    assert "hello from b" in r.stderr


def test_a_closed_stdout_pipe_does_not_end_the_run(tmp_path):
    # `python script.py | head`: the reader goes away while the run goes on.
    script = tmp_path / "pipeline.py"
    script.write_text(
        textwrap.dedent("""
        import sys, time
        from pathlib import Path
        from depio_like import Pipeline, SequentialExecutor, Task
        def wait_for_reader_to_go():
            while not Path("reader-gone").exists():
                time.sleep(0.05)
        def after():
            Path("after-ran").write_text("yes")
        p = Pipeline(SequentialExecutor())
        first = p.add_task(Task("first", wait_for_reader_to_go))
        p.add_task(Task("after", after, depends_on=[first]))
        print("started", flush=True)
        exit(p.run())
    """)
    )
    _run_until_the_reader_goes(script, tmp_path)
    assert (tmp_path / "after-ran").read_text() == "yes"
    last = json.loads((tmp_path / ".depio_like" / "last_run.json").read_text())
    assert last["exit_code"] == 0 and last["tasks"] == 2
