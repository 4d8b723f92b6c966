"""Bad graphs are refused by run() before any task starts, with readable messages."""

from pathlib import Path
from typing import Annotated

import pytest

from depio_like import (
    CycleError,
    Dependency,
    GraphError,
    MissingDependencyError,
    PipelineError,
    Product,
    Task,
    UnknownTaskError,
)

from conftest import calls, log_call, new_pipeline, run_script


def step(out: Annotated[Path, Product], src: Annotated[Path, Dependency] = None):
    log_call(str(out))
    Path(out).write_text("x")


def test_cycle_names_the_tasks_and_nothing_runs(project, executor_factory):
    p = new_pipeline(executor_factory())
    p.add_task(Task("free", step, ["free.txt"]))
    p.add_task(Task("alpha", step, ["a.txt", "c.txt"]))
    p.add_task(Task("beta", step, ["b.txt", "a.txt"]))
    p.add_task(Task("gamma", step, ["c.txt", "b.txt"]))
    with pytest.raises(CycleError) as err:
        p.run()
    msg = str(err.value)
    assert all(n in msg for n in ("alpha", "beta", "gamma")) and "free" not in msg
    assert "a.txt" in msg
    assert isinstance(err.value, PipelineError)
    assert calls() == []
    assert not Path("free.txt").exists()


def test_cycle_through_depends_on(project):
    p = new_pipeline()
    a = Task("a", step, ["a.txt"])
    b = Task("b", step, ["b.txt"], depends_on=[a])
    p.add_task(a), p.add_task(b)
    a.depends_on.append(b)  # add_task checks depends_on only against tasks added before
    with pytest.raises(CycleError, match="depends_on"):
        p.run()


def test_task_reading_its_own_product_is_a_cycle(project):
    p = new_pipeline()
    p.add_task(Task("selfish", step, ["s.txt", "s.txt"]))
    with pytest.raises(CycleError, match="selfish.*s.txt"):
        p.run()


def test_missing_source_names_task_and_path(project):
    p = new_pipeline()
    p.add_task(Task("ok", step, ["ok.txt"]))
    p.add_task(Task("reader", step, ["out.txt", "data/raw.csv"]))
    with pytest.raises(MissingDependencyError) as err:
        p.run()
    assert "reader" in str(err.value) and "data/raw.csv" in str(err.value)
    assert calls() == []


def test_existing_source_is_fine(project):
    Path("raw.csv").write_text("1,2\n")
    p = new_pipeline()
    p.add_task(Task("reader", step, ["out.txt", "raw.csv"]))
    assert p.run() == 0


def test_depends_on_a_task_never_added(project):
    p = new_pipeline()
    stranger = Task("stranger", step, ["s.txt"])
    # Refused by add_task, as depio does (TaskNotInQueueException is the same class).
    with pytest.raises(UnknownTaskError, match="needy.*stranger.*add_task"):
        p.add_task(Task("needy", step, ["n.txt"], depends_on=[stranger]))


def test_product_inside_state_dir_is_refused(project):
    p = new_pipeline()
    p.add_task(Task("bad", step, [".depio_like/x.txt"]))
    with pytest.raises(GraphError, match="bad.*state directory"):
        p.run()


def test_long_chain_needs_no_recursion(project):
    p = new_pipeline()
    prev = None
    for i in range(3000):
        prev = p.add_task(Task(f"t{i}", _noop, [i], depends_on=[prev] if prev else []))
    g = p.graph()
    assert g.number_of_edges() == 2999


def _noop(i: int):
    pass


def test_error_out_of_a_script_is_readable_and_nothing_ran(tmp_path):
    r = run_script(
        tmp_path,
        """
        from pathlib import Path
        from typing import Annotated
        from depio_like import Pipeline, Task, Product, Dependency

        def step(out: Annotated[Path, Product], src: Annotated[Path, Dependency] = None):
            Path("ran").write_text("yes")

        p = Pipeline()
        p.add_task(Task("one", step, ["a"], {"src": "b"}))
        p.add_task(Task("two", step, ["b"], {"src": "a"}))
        exit(p.run())
    """,
    )
    # One message and exit 2, no traceback, as the README promises for graph errors.
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    err = r.stderr
    assert err.startswith("error: dependency cycle between tasks"), err
    assert "(raised at pipeline.py, line 12)" in err
    assert "'one'" in err and "'two'" in err and "(needs a)" in err
    assert not (tmp_path / "ran").exists()
