"""What depio users rely on beyond its README: IgnoredForEq, build modes, the decorator's
pipeline=, hooks, progress from inside a task."""

import dataclasses
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import (
    BuildMode,
    Dependency,
    IgnoredForEq,
    ParallelExecutor,
    PipelineResult,
    Product,
    SequentialExecutor,
    Status,
    Task,
    TaskResult,
    Untracked,
    current_progress,
    make_save_hook,
)

from conftest import calls, log_call, new_pipeline, run_script


def copy(
    out: Annotated[Path, Product],
    src: Annotated[Path, Dependency],
    verbose: Annotated[bool, IgnoredForEq] = False,
):
    log_call(f"copy:verbose={verbose}")
    if verbose:
        print("copying")
    Path(out).write_text(Path(src).read_text())


def test_ignored_parameters_are_not_part_of_identity_or_staleness(project):
    Path("in.txt").write_text("x")
    p = new_pipeline()
    a = p.add_task(Task("quiet", copy, ["out.txt", "in.txt"], {"verbose": False}))
    b = p.add_task(Task("loud", copy, ["out.txt", "in.txt"], {"verbose": True}))
    assert a is b and len(p.tasks) == 1
    assert p.run() == 0
    p = new_pipeline()
    p.add_task(Task("loud", copy, ["out.txt", "in.txt"], {"verbose": True}))
    assert p.run() == 0
    assert calls() == ["copy:verbose=False"]  # the verbose change did not rerun it
    assert Untracked is IgnoredForEq


def stamp(out: Annotated[Path, Product], src: Annotated[Path, Dependency] = None):
    log_call(f"stamp:{Path(out).name}")
    Path(out).write_text((Path(src).read_text() if src else "") + "!")


def modes_pipeline(mode, default=BuildMode.IF_NEW):
    p = new_pipeline(buildmode=default)
    p.add_task(Task("t", stamp, ["out.txt", "in.txt"], buildmode=mode))
    p.add_task(Task("after", stamp, ["after.txt", "out.txt"]))
    return p


def test_always_runs_every_time(project):
    Path("in.txt").write_text("a")
    for _ in range(2):
        assert modes_pipeline(BuildMode.ALWAYS).run() == 0
    assert calls().count("stamp:out.txt") == 2


def test_if_missing_ignores_changed_inputs(project):
    Path("in.txt").write_text("a")
    assert modes_pipeline(BuildMode.IF_MISSING).run() == 0
    calls()
    Path("in.txt").write_text("changed")
    p = modes_pipeline(BuildMode.IF_MISSING)
    assert p.run() == 0
    assert calls() == [] and p.tasks[0].status is Status.SKIPPED
    Path("out.txt").unlink()
    assert modes_pipeline(BuildMode.IF_MISSING).run() == 0
    assert calls() == ["stamp:out.txt", "stamp:after.txt"]


def test_never_is_a_source_and_fails_clearly_without_its_product(project):
    Path("in.txt").write_text("a")
    Path("out.txt").write_text("made by hand")
    p = modes_pipeline(BuildMode.NEVER)
    assert p.run() == 0
    assert calls() == ["stamp:after.txt"]
    assert p.tasks[0].status is Status.SKIPPED
    Path("out.txt").unlink()
    p = modes_pipeline(BuildMode.NEVER)
    assert p.run() == 1
    assert [t.status for t in p.tasks] == [Status.FAILED, Status.DEPFAILED]
    assert (
        "[1] 't' has BuildMode.NEVER (it is never run) but its product(s) out.txt do not "
        "exist" in p.stream.getvalue()
    )
    assert calls() == []


def test_pipeline_wide_build_mode_and_task_override(project):
    Path("in.txt").write_text("a")
    p = modes_pipeline(None, default=BuildMode.ALWAYS)
    assert p.run() == 0
    p = modes_pipeline(BuildMode.IF_NEW, default=BuildMode.ALWAYS)
    assert p.run() == 0
    # the first run ran both; the second: 't' is up to date (its own mode), 'after' always
    assert calls() == ["stamp:out.txt", "stamp:after.txt", "stamp:after.txt"]


def test_bad_build_mode_is_refused():
    from depio_like import TaskDeclarationError

    with pytest.raises(TaskDeclarationError, match="buildmode must be a BuildMode"):
        Task("t", stamp, ["o"], buildmode="always")


DEPIO_SCRIPT = """
    import pathlib
    from typing import Annotated

    from depio_like import Pipeline, ParallelExecutor
    from depio_like import BuildMode
    from depio_like import Product, Dependency, IgnoredForEq
    from depio_like import task

    defaultpipeline = Pipeline(depioExecutor=ParallelExecutor())

    BLD = pathlib.Path("build")
    BLD.mkdir(exist_ok=True)
    (BLD / "input.txt").write_text("in")

    @task("datapipeline", pipeline=defaultpipeline, buildmode=BuildMode.ALWAYS)
    def slowfunction(output: Annotated[pathlib.Path, Product],
                     input: Annotated[pathlib.Path, Dependency] = None,
                     verbose: Annotated[bool, IgnoredForEq] = False):
        with open("calls.log", "a") as f:
            f.write("ran\\n")
        output.write_text(input.read_text() + "!")

    slowfunction(BLD / "output1.txt", input=BLD / "input.txt")
    slowfunction(BLD / "output1.txt", input=BLD / "input.txt", verbose=True)  # the same task
    slowfunction(BLD / "final1.txt", BLD / "output1.txt")

    exit(defaultpipeline.run())
"""


def test_a_depio_script_with_ignored_for_eq_and_build_mode_runs(tmp_path):
    for _ in range(2):
        r = run_script(tmp_path, DEPIO_SCRIPT)
        assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "calls.log").read_text().split() == ["ran"] * 4  # 2 tasks, ALWAYS, twice
    assert (tmp_path / "build" / "final1.txt").read_text() == "in!!"


def test_hooks_get_each_task_and_the_pipeline_and_survive_a_raising_hook(project):
    seen: list = []
    finished: list = []

    def loud(out: Annotated[Path, Product]):
        print("to stdout")
        import sys

        print("to stderr", file=sys.stderr)
        Path(out).write_text("x")

    def broken(result):
        raise RuntimeError("hook bug")

    def fails(out: Annotated[Path, Product]):
        raise ValueError("nope")

    p = new_pipeline(
        ParallelExecutor(max_workers=2),
        on_task_finished=[seen.append, broken, make_save_hook("hook-out")],
        on_pipeline_finished=finished.append,
    )
    p.add_task(Task("loud", loud, ["l.txt"]))
    p.add_task(Task("fails", fails, ["f.txt"]))
    assert p.run() == 1
    by_name = {r.name: r for r in seen}
    assert set(by_name) == {"loud", "fails"} and all(isinstance(r, TaskResult) for r in seen)
    loud_r = by_name["loud"]
    assert loud_r.status is Status.FINISHED and loud_r.stdout == "to stdout\n"
    assert loud_r.stderr == "to stderr\n" and loud_r.duration is not None
    assert loud_r.products == (str(project / "l.txt"),)
    assert by_name["fails"].status is Status.FAILED and "ValueError: nope" in by_name["fails"].error
    with pytest.raises(dataclasses.FrozenInstanceError):
        loud_r.name = "changed"  # frozen
    assert "hook" in p.stream.getvalue() and "RuntimeError: hook bug" in p.stream.getvalue()
    assert [type(f) for f in finished] == [PipelineResult]
    assert finished[0].success is False and finished[0].exit_code == 1
    assert [r.name for r in finished[0].tasks] == ["loud", "fails"]
    assert (project / "hook-out" / "1-loud.out").read_text() == "to stdout\n"


def test_progress_is_none_outside_a_task_and_counts_inside(project):
    assert current_progress() is None
    seen = []

    def work(n: int):
        pr = current_progress()
        pr.update(total=n, phase="warmup")
        for _ in range(n):
            pr.advance()
        seen.append((pr.current, pr.total, pr.phase))

    p = new_pipeline(SequentialExecutor())
    p.add_task(Task("work", work, [1000]))
    assert p.run() == 0
    assert seen == [(1000, 1000, "warmup")]
    assert current_progress() is None


def test_a_task_and_the_threads_it_starts_share_one_progress(project):
    # The progress is made when first asked for: by the task, or first by a thread of it.
    import threading

    seen = []

    def work(first_in_thread: bool):
        got = []
        t = threading.Thread(target=lambda: got.append(current_progress()))
        if first_in_thread:
            t.start()
            t.join()
        mine = current_progress()
        if not first_in_thread:
            t.start()
            t.join()
        mine.advance(2)
        seen.append((mine is got[0], got[0].current))

    p = new_pipeline(SequentialExecutor())
    p.add_task(Task("a", work, [True]))
    p.add_task(Task("b", work, [False]))
    assert p.run() == 0
    assert seen == [(True, 2), (True, 2)]
    assert current_progress() is None


def test_a_sweep_shares_identical_tasks_and_labels_each_configuration(project):
    Path("raw.txt").write_text("1 2 3 4")

    def preprocess(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        log_call("preprocess")
        Path(out).write_text(Path(src).read_text())

    def train(out: Annotated[Path, Product], data: Annotated[Path, Dependency], lr: float):
        log_call(f"train:{lr}")
        Path(out).write_text(str(sum(map(int, Path(data).read_text().split())) * lr))

    p = new_pipeline(ParallelExecutor(max_workers=2))
    for lr in (0.1, 0.01, 0.001):
        with p.variant(f"lr={lr}"):
            p.add_task(Task("preprocess", preprocess, ["clean.txt", "raw.txt"]))
            p.add_task(Task("train", train, [f"model-{lr}.txt", "clean.txt", lr]))
    assert len(p.tasks) == 4
    assert p.run() == 0
    assert sorted(calls()) == ["preprocess", "train:0.001", "train:0.01", "train:0.1"]
    table = p.stream.getvalue().split("Tasks:")[1]
    header, rows = table.splitlines()[1], table.splitlines()[3:7]
    assert header.split()[-1] == "Variant"
    assert rows[0].split()[-1] == "all"  # preprocess: shared by the three
    assert [r.split()[-1] for r in rows[1:]] == ["lr=0.1", "lr=0.01", "lr=0.001"]
