"""``run_if="all_done"``: a summary over a sweep runs after some configurations failed, and
runs again once they succeed."""

from __future__ import annotations

import glob
import os
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import Product, Status, Task, task
from depio_like.errors import TaskDeclarationError

from conftest import calls, log_call, new_pipeline


def config(i: int) -> None:
    """One configuration of a sweep, awflow style: its result is a file nobody declares."""
    Path(f"res_{i}.txt").unlink(missing_ok=True)
    log_call(f"config_{i}")
    if Path(f"broken_{i}").exists():
        raise RuntimeError(f"configuration {i} diverged")
    Path(f"res_{i}.txt").write_text("ok")


def summary(out: Annotated[Path, Product]) -> None:
    log_call("summary")
    done = sorted(int(f[4:-4]) for f in glob.glob("res_*.txt"))
    Path(out).write_text(",".join(map(str, done)))


def sweep(executor=None):
    p = new_pipeline(executor)
    configs = [p.add_task(Task(f"config{i}", config, [i])) for i in range(3)]
    s = p.add_task(Task("summary", summary, ["summary.txt"], depends_on=configs, run_if="all_done"))
    return p, configs, s


def test_summary_runs_after_a_failure_and_again_once_it_is_fixed(project, executor_factory):
    p, configs, s = sweep(executor_factory())
    assert p.run() == 0
    assert Path("summary.txt").read_text() == "0,1,2"
    calls()

    Path("broken_1").touch()
    p, configs, s = sweep(executor_factory())
    assert p.run(force=True) == 1  # a task failed: the run did not end well
    assert [c.status for c in configs] == [Status.FINISHED, Status.FAILED, Status.FINISHED]
    assert s.status is Status.FINISHED
    assert Path("summary.txt").read_text() == "0,2"
    assert "configuration 1 diverged" in p.stream.getvalue()
    calls()

    # Fixed: config 1 reruns and ends just as it did before it broke (same record); the
    # summary's own record says it ran without config 1, so it runs again.
    os.remove("broken_1")
    p, configs, s = sweep(executor_factory())
    assert p.run(explain=True) == 0
    assert [c.status for c in configs] == [Status.SKIPPED, Status.FINISHED, Status.SKIPPED]
    assert s.status is Status.FINISHED
    assert Path("summary.txt").read_text() == "0,1,2"
    assert "its last run was after the failure of: [2] 'config1'" in p.stream.getvalue()
    assert sorted(calls()) == ["config_1", "summary"]

    p, configs, s = sweep(executor_factory())
    assert p.run() == 0
    assert s.status is Status.SKIPPED and calls() == []


def test_a_plain_task_after_the_same_failure_does_not_run(project):
    Path("broken_0").touch()
    p = new_pipeline()
    c = p.add_task(Task("config0", config, [0]))
    s = p.add_task(Task("summary", summary, ["summary.txt"], depends_on=[c]))
    assert p.run() == 1
    assert s.status is Status.DEPFAILED and not Path("summary.txt").exists()


def test_decorator_takes_run_if(project):
    @task(run_if="all_done")
    def report(out: Annotated[Path, Product]):
        summary(out)

    Path("broken_0").touch()
    p = new_pipeline()
    c = p.add_task(Task("config0", config, [0]))
    r = p.add_task(report("report.txt", depends_on=[c]))
    assert p.run() == 1
    assert r.status is Status.FINISHED and Path("report.txt").read_text() == ""


@pytest.mark.parametrize(
    "declare",
    [
        lambda: Task("summary", summary, ["s.txt"], run_if="always"),
        lambda: task(run_if="all-done")(summary),
    ],
)
def test_unknown_run_if_is_refused_when_declared(declare):
    with pytest.raises(TaskDeclarationError) as e:
        declare()
    assert "run_if must be one of 'all_success', 'all_done'" in str(e.value)
    assert "summary" in str(e.value)
