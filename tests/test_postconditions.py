"""Postconditions (``ensure=``, awflow's ``@ensure``): skip when they hold, fail a task that
leaves one unmet, name them in ``--explain`` and in errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import Product, Status, Task, task
from depio_like.errors import TaskDeclarationError

from conftest import calls, log_call, new_pipeline


def mark(i):
    """Work done outside files the pipeline knows: a marker nobody declares."""
    log_call(f"mark_{i}")
    Path(f"done_{i}").write_text("x")


def test_productless_task_runs_until_its_postcondition_holds(project, executor_factory):
    def build():
        p = new_pipeline(executor_factory())
        ts = [
            p.add_task(Task(f"mark{i}", mark, [i], ensure=lambda i: os.path.exists(f"done_{i}")))
            for i in range(3)
        ]
        return p, ts

    p, ts = build()
    assert p.run() == 0
    assert sorted(calls()) == ["mark_0", "mark_1", "mark_2"]
    p, ts = build()
    assert p.run() == 0
    assert [t.status for t in ts] == [Status.SKIPPED] * 3
    assert calls() == []
    os.remove("done_1")  # the work of one is undone: that one, and only it, runs again
    p, ts = build()
    assert p.run() == 0
    assert [t.status for t in ts] == [Status.SKIPPED, Status.FINISHED, Status.SKIPPED]
    assert calls()[-1] == "mark_1"


def test_work_done_outside_the_pipeline_is_never_redone(project):
    Path("done_7").write_text("made by hand")
    p = new_pipeline()
    t = p.add_task(Task("mark", mark, [7], ensure=lambda i: os.path.exists(f"done_{i}")))
    assert p.run() == 0
    assert t.status is Status.SKIPPED and calls() == []


def test_postcondition_unmet_after_the_run_fails_the_task_and_its_downstream(
    project, executor_factory
):
    def forgetful(i):
        log_call("forgetful")

    def after(out: Annotated[Path, Product]):
        Path(out).write_text("x")

    p = new_pipeline(executor_factory())
    t = p.add_task(Task("forgetful", forgetful, [3], ensure=lambda i: os.path.exists(f"done_{i}")))
    d = p.add_task(Task("after", after, ["after.txt"], depends_on=[t]))
    assert p.run() == 1
    assert t.status is Status.FAILED and d.status is Status.DEPFAILED
    out = p.stream.getvalue()
    assert (
        "postcondition 'lambda i: os.path.exists(f\"done_{i}\")' does not hold after the run" in out
    )
    assert "forgetful" in out


def test_postcondition_on_a_task_with_products_adds_to_the_cache_check(project):
    def write(out: Annotated[Path, Product]):
        log_call("write")
        Path(out).write_text("x")
        Path("side_effect").write_text("y")

    def build():
        p = new_pipeline()
        return p, p.add_task(Task("write", write, ["a.txt"], ensure=has_side_effect))

    p, t = build()
    assert p.run() == 0
    p, t = build()
    assert p.run() == 0 and t.status is Status.SKIPPED
    os.remove("side_effect")  # products are up to date, the postcondition is not
    p, t = build()
    assert p.run(explain=True) == 0 and t.status is Status.FINISHED
    assert "postcondition does not hold: 'has_side_effect'" in p.stream.getvalue()
    assert calls() == ["write", "write"]


def has_side_effect(out):
    return os.path.exists("side_effect")


def test_explain_names_the_failing_postcondition_among_several(project):
    p = new_pipeline()
    p.add_task(
        Task("mark", mark, [1], ensure=[lambda: True, lambda i: os.path.exists(f"done_{i}")])
    )
    assert p.run(dry_run=True, explain=True) == 0
    out = p.stream.getvalue()
    assert "postcondition does not hold: 'lambda i: os.path.exists(f\"done_{i}\")'" in out
    assert "lambda: True" not in out  # it holds: not a reason


def test_decorator_takes_ensure_and_a_lambda_may_take_a_subset(project):
    @task(ensure=lambda n: os.path.exists(f"out_{n}"))
    def make(n: int, size: int = 3):
        log_call(f"make_{n}")
        Path(f"out_{n}").write_text("x" * size)

    for _ in range(2):
        p = new_pipeline()
        p.add_tasks([make(1), make(2, size=5)])
        assert p.run() == 0
    assert sorted(calls()) == ["make_1", "make_2"]


def test_a_raising_postcondition_is_an_error_naming_it_and_the_task(project):
    def boom(i):
        raise OSError("the database is down")

    p = new_pipeline()
    t = p.add_task(Task("mark", mark, [2], ensure=boom))
    assert p.run() == 1
    assert t.status is Status.FAILED and calls() == []  # refused before it ran
    out = p.stream.getvalue()
    assert (
        "task [1] 'mark': postcondition 'test_a_raising_postcondition_is_an_error_naming_"
        "it_and_the_task.<locals>.boom' raised OSError: the database is down" in out
    )
    assert "Traceback" not in out


def test_postconditions_run_in_the_driver(project):
    """A worker process never calls them: one reading the driver's state sees it."""
    seen = []

    def record(i):
        seen.append(os.getpid())
        return os.path.exists(f"done_{i}")

    from depio_like import ParallelExecutor

    p = new_pipeline(ParallelExecutor(max_workers=2))
    p.add_task(Task("mark", mark, [4], ensure=record))
    assert p.run() == 0
    assert seen == [os.getpid(), os.getpid()]  # before and after the run, here


@pytest.mark.parametrize(
    "ensure, words",
    [
        (lambda j: True, "takes 'j', which is not a parameter of the task (it has: i)"),
        ("done", "ensure= takes a callable or a list of callables, got str"),
        ([lambda i: True, 3], "got int 3"),
    ],
)
def test_bad_postconditions_are_refused_when_declared(ensure, words):
    with pytest.raises(TaskDeclarationError) as e:
        Task("mark", mark, [1], ensure=ensure)
    assert words in str(e.value) and "'mark'" in str(e.value)


def test_a_postcondition_cannot_take_another_tasks_value():
    producer = Task("p", lambda: 3)
    with pytest.raises(TaskDeclarationError, match="return value of another task"):
        Task("c", mark, [producer], ensure=lambda i: i > 2)


def test_explain_names_the_failing_one_of_two_lambdas_with_the_same_parameters(project):
    # Found when a reformat put both lambdas on one line: the first lambda of the line
    # was named, whichever failed.
    p = new_pipeline()
    p.add_task(Task("mark", mark, [1], ensure=[lambda i: i > 0, lambda i: os.path.exists(f"x{i}")]))
    assert p.run(dry_run=True, explain=True) == 0
    out = p.stream.getvalue()
    assert "postcondition does not hold: 'lambda i: os.path.exists(f\"x{i}\")'" in out, out
    assert "i > 0" not in out
