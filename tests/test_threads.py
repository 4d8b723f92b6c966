"""ThreadExecutor: tasks in threads of the driver; what each prints stays its own, values
stay objects, and what threads cannot keep apart (working directory, environment) is said."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import Product, Status, Task, ThreadExecutor

from conftest import new_pipeline, run_script


def chatty(out: Annotated[Path, Product], n: int):
    for k in range(200):
        print(f"task{n} line{k}")
        print(f"task{n} err{k}", file=sys.stderr)
        if k % 20 == 0:
            time.sleep(0.001)  # let the other threads in, mid-task
    Path(out).write_text(str(n))


def test_each_task_gets_what_its_thread_printed_and_nothing_else(project):
    before = sys.stdout, sys.stderr
    p = new_pipeline(ThreadExecutor(4), show_output=False)
    ts = [p.add_task(Task(f"chatty{n}", chatty, [f"o{n}.txt", n])) for n in range(4)]
    assert p.run() == 0
    logs = sorted((project / ".depio_like" / "logs").iterdir())
    for n, _t in enumerate(ts):
        (out,) = [f for f in logs if f.name.startswith(f"chatty{n}-") and f.suffix == ".out"]
        (err,) = [f for f in logs if f.name.startswith(f"chatty{n}-") and f.suffix == ".err"]
        assert out.read_text().splitlines() == [f"task{n} line{k}" for k in range(200)]
        assert err.read_text().splitlines() == [f"task{n} err{k}" for k in range(200)]
    assert (sys.stdout, sys.stderr) == before  # given back after the run


def test_tasks_really_run_at_the_same_time(project):
    """Two tasks that each wait for the other to have started: only concurrency ends it."""
    barrier = threading.Barrier(2, timeout=30)

    def meet(out: Annotated[Path, Product]):
        barrier.wait()
        Path(out).write_text("met")

    p = new_pipeline(ThreadExecutor(2))
    p.add_task(Task("a", meet, ["a.txt"]))
    p.add_task(Task("b", meet, ["b.txt"]))
    assert p.run() == 0, p.stream.getvalue()


def test_values_stay_objects_even_unpicklable_ones(project):
    lock = threading.Lock()

    def make():
        return {"lock": lock}

    def use(v, out: Annotated[Path, Product]):
        assert v["lock"] is lock
        Path(out).write_text("same lock")

    p = new_pipeline(ThreadExecutor(2))
    m = p.add_task(Task("make", make))
    p.add_task(Task("use", use, [m, "u.txt"]))
    assert p.run() == 0, p.stream.getvalue()


def test_a_task_that_changes_directory_fails_and_is_set_back(project):
    (project / "sub").mkdir()

    def wander(out: Annotated[Path, Product]):
        os.chdir("sub")
        Path(out).write_text("x")  # absolute path: the product exists, yet the task fails

    p = new_pipeline(ThreadExecutor(2))
    t = p.add_task(Task("wander", wander, [project / "w.txt"]))
    assert p.run() == 1
    assert t.status is Status.FAILED
    assert os.getcwd() == str(project)
    out = p.stream.getvalue()
    assert "task [1] 'wander' changed the working directory" in out
    assert "use ParallelExecutor for tasks that change directory" in out


def test_a_task_that_changes_the_environment_is_named(project, monkeypatch):
    monkeypatch.delenv("DEPIO_LIKE_TEST_VAR", raising=False)

    def setenv(out: Annotated[Path, Product]):
        os.environ["DEPIO_LIKE_TEST_VAR"] = "1"
        Path(out).write_text("x")

    p = new_pipeline(ThreadExecutor(2))
    p.add_task(Task("setenv", setenv, ["e.txt"]))
    with pytest.warns(
        RuntimeWarning,
        match=r"task \[1\] 'setenv' .*changed os.environ "
        r"\(DEPIO_LIKE_TEST_VAR\)",
    ):
        assert p.run() == 0
    assert os.environ.get("DEPIO_LIKE_TEST_VAR") == "1"  # kept, as the warning says


def test_failures_and_downstream_as_with_other_executors(project):
    def boom(out: Annotated[Path, Product]):
        raise ValueError("thread trouble")

    p = new_pipeline(ThreadExecutor(2))
    b = p.add_task(Task("boom", boom, ["b.txt"]))
    a = p.add_task(Task("after", chatty, ["a.txt", 1], depends_on=[b]))
    assert p.run() == 1
    assert b.status is Status.FAILED and a.status is Status.DEPFAILED
    assert "ValueError: thread trouble" in p.stream.getvalue()


def test_jobs_option_and_cli_name(tmp_path):
    r = run_script(
        tmp_path,
        """
        from pathlib import Path
        from typing import Annotated
        from depio_like import Pipeline, Product, Task

        def w(out: Annotated[Path, Product]):
            print("in a thread")
            Path(out).write_text("x")

        p = Pipeline()
        p.add_task(Task("w", w, ["w.txt"]))
        exit(p.main())
    """,
        "--executor",
        "thread",
        "--jobs",
        "3",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "in a thread" in r.stdout and "does not apply" not in r.stderr


def test_max_workers_must_be_a_whole_number():
    with pytest.raises(ValueError, match="ThreadExecutor"):
        ThreadExecutor(0)
