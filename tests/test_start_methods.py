"""ParallelExecutor(start_method="spawn" | "forkserver"): workers are fresh processes, tasks
travel pickled, and one that cannot travel is refused before anything runs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import ParallelExecutor, Product, Status, Task
from depio_like.errors import TaskNotPicklableError

from conftest import calls, log_call, new_pipeline, run_script

METHODS = ["spawn", "forkserver"]


def write(out: Annotated[Path, Product], n: int):
    log_call(f"write_{n}")
    Path(out).write_text(str(n))
    return n


@pytest.mark.parametrize("method", METHODS)
def test_a_task_that_cannot_be_pickled_is_refused_naming_it_before_anything_runs(project, method):
    lock = threading.Lock()
    p = new_pipeline(ParallelExecutor(2, start_method=method))
    p.add_task(Task("first", write, ["a.txt", 1]))
    p.add_task(Task("locked", lambda out: lock.acquire(), ["b.txt"]))
    with pytest.raises(TaskNotPicklableError) as e:
        p.run()
    assert "task [2] 'locked'" in str(e.value) and "cannot be pickled" in str(e.value)
    assert "start_method='fork'" in str(e.value)  # what to do instead
    assert calls() == [] and not Path("a.txt").exists()
    assert p.stream.getvalue() == ""  # not even the table


@pytest.mark.parametrize("method", METHODS)
def test_an_unpicklable_argument_is_named(project, method):
    with open("handle.txt", "w") as f:
        p = new_pipeline(ParallelExecutor(2, start_method=method))
        p.add_task(Task("with_file", write, ["a.txt", f]))
        with pytest.raises(
            TaskNotPicklableError,
            match=r"task \[1\] 'with_file': argument "
            r"'n' \(TextIOWrapper\)",
        ):
            p.run()


@pytest.mark.parametrize("method", METHODS)
def test_unguarded_script_runs_once_with_values_and_output(tmp_path, method):
    """A script without a main guard: the workers do not run it again (it would start a
    second pipeline); values and printed output come back."""
    r = run_script(
        tmp_path,
        f"""
        from pathlib import Path
        from typing import Annotated
        from depio_like import ParallelExecutor, Pipeline, Product, Task

        Path("script-runs").open("a").write("x")

        def part(n):
            print(f"part {{n}} speaking")
            return n * n

        def total(values, out: Annotated[Path, Product]):
            Path(out).write_text(str(sum(values)))

        p = Pipeline(executor=ParallelExecutor(2, start_method={method!r}))
        parts = [p.add_task(Task(f"part{{n}}", part, [n])) for n in range(4)]
        p.add_task(Task("total", total, [parts, "total.txt"]))
        exit(p.run())
    """,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "total.txt").read_text() == "14"
    assert (tmp_path / "script-runs").read_text() == "x"
    assert "part 3 speaking" in r.stdout


def test_a_script_with_an_unpicklable_task_gets_a_message_not_a_traceback(tmp_path):
    r = run_script(
        tmp_path,
        """
        import threading
        from depio_like import ParallelExecutor, Pipeline, Task

        lock = threading.Lock()
        p = Pipeline(executor=ParallelExecutor(2, start_method="spawn"))
        p.add_task(Task("locked", lambda: lock.locked()))
        exit(p.run())
    """,
    )
    assert r.returncode != 0
    assert "task [1] 'locked'" in r.stderr and "Traceback" not in r.stderr


def test_unknown_start_method_is_refused():
    with pytest.raises(ValueError, match="'fork', 'spawn', 'forkserver'"):
        ParallelExecutor(start_method="thread")


@pytest.mark.parametrize("method", METHODS)
def test_a_dying_worker_fails_only_its_task(project, method):
    def die(out: Annotated[Path, Product]):
        import os

        os._exit(3)

    p = new_pipeline(ParallelExecutor(2, start_method=method))
    d = p.add_task(Task("die", die, ["d.txt"]))
    w = p.add_task(Task("write", write, ["w.txt", 2]))
    assert p.run() == 1
    assert d.status is Status.FAILED and w.status is Status.FINISHED
    assert "exited with code 3" in p.stream.getvalue()
