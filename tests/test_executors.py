"""Local executors: where tasks run, real parallelism, dispatch as soon as ready."""

import multiprocessing
import os
import time
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import Dependency, ParallelExecutor, Product, SequentialExecutor, Status, Task

from conftest import new_pipeline

fork = multiprocessing.get_context("fork")


def test_sequential_runs_in_the_calling_process(project):
    seen = []
    p = new_pipeline(SequentialExecutor())
    p.add_task(Task("here", lambda: seen.append(os.getpid()), []))
    assert p.run() == 0
    assert seen == [os.getpid()]


def test_parallel_runs_tasks_at_the_same_time_in_other_processes(project):
    # Each task waits at a barrier for the other: they can only both pass if they run
    # at the same time. A failed rendezvous breaks the barrier and fails the task.
    barrier = fork.Barrier(2)

    def meet(out: Annotated[Path, Product]):
        barrier.wait(timeout=60)
        Path(out).write_text(str(os.getpid()))

    p = new_pipeline(ParallelExecutor(max_workers=2))
    p.add_task(Task("left", meet, ["left.txt"]))
    p.add_task(Task("right", meet, ["right.txt"]))
    assert p.run() == 0, p.stream.getvalue()
    pids = {Path("left.txt").read_text(), Path("right.txt").read_text()}
    assert len(pids) == 2 and str(os.getpid()) not in pids


def spin(out: Annotated[Path, Product], n: int):
    # CPU-bound pure Python: with threads (the GIL) these could not overlap.
    total = sum(i * i for i in range(n))
    Path(out).write_text(f"{os.getpid()} {total}")


def test_cpu_bound_python_runs_in_separate_processes(project):
    p = new_pipeline(ParallelExecutor(max_workers=2))
    for k in range(4):
        p.add_task(Task(f"spin{k}", spin, [f"s{k}.txt", 200_000]))
    assert p.run() == 0
    pids = {Path(f"s{k}.txt").read_text().split()[0] for k in range(4)}
    assert str(os.getpid()) not in pids and 1 <= len(pids) <= 2


def test_dispatch_is_per_task_not_level_by_level(project):
    """`slow` (level 0) only finishes once `c` (level 1, after fast `b`) has run."""

    def slow(out: Annotated[Path, Product]):
        deadline = time.monotonic() + 60
        while not Path("c.txt").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("c never ran while slow was running")
            time.sleep(0.01)
        Path(out).write_text("slow")

    def fast(out: Annotated[Path, Product]):
        Path(out).write_text("b")

    def after(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        Path(out).write_text("c")

    p = new_pipeline(ParallelExecutor(max_workers=2))
    p.add_task(Task("slow", slow, ["slow.txt"]))
    p.add_task(Task("b", fast, ["b.txt"]))
    p.add_task(Task("c", after, ["c.txt", "b.txt"]))
    assert p.run() == 0, p.stream.getvalue()


def test_lambdas_and_local_functions_work_in_workers(project):
    out = Path("l.txt")
    p = new_pipeline(ParallelExecutor(max_workers=2))
    p.add_task(Task("lambda", lambda o: Path(o).write_text("ok"), [str(out)]))
    assert p.run() == 0
    assert out.read_text() == "ok"


def test_worker_that_dies_fails_only_its_task(project):
    def die(n: int):
        os._exit(3)

    def fine(out: Annotated[Path, Product]):
        Path(out).write_text("fine")

    p = new_pipeline(ParallelExecutor(max_workers=2))
    dead = p.add_task(Task("die", die, [1]))
    ok = [p.add_task(Task(f"fine{k}", fine, [f"f{k}.txt"])) for k in range(4)]
    assert p.run() == 1
    assert dead.status is Status.FAILED
    assert all(t.status is Status.FINISHED for t in ok)
    assert "exited with code 3" in p.stream.getvalue()


def test_sys_exit_in_a_task_is_a_failure_not_an_exit(project, executor_factory):
    def quit_(n: int):
        raise SystemExit(4)

    p = new_pipeline(executor_factory())
    t = p.add_task(Task("quitter", quit_, [1]))
    assert p.run() == 1
    assert t.status is Status.FAILED
    assert "sys.exit(4)" in p.stream.getvalue()


def test_max_workers_must_be_positive():
    with pytest.raises(ValueError):
        ParallelExecutor(max_workers=0)


def _starts(_):
    return [ln.split()[1] for ln in Path("order.log").read_text().splitlines()]


def note(name: str, sec: float = 0.0):
    with open("order.log", "a") as f:
        f.write(f"start {name}\n")
    time.sleep(sec)


def skewed(p, chain_sec=0.0, short_sec=0.0):
    for k in range(3):  # added first: short, independent tasks
        p.add_task(Task(f"short{k}", note, [f"short{k}", short_sec]))
    prev = None
    for k in range(3):  # then a chain
        prev = p.add_task(
            Task(f"chain{k}", note, [f"chain{k}", chain_sec], depends_on=[prev] if prev else [])
        )


def test_longest_path_goes_first(project):
    p = new_pipeline(SequentialExecutor())
    skewed(p)
    assert p.run() == 0
    # Never timed, all count alike: the chain's head has the longest path ahead of it.
    assert _starts(project)[0] == "chain0"


def test_fifo_when_asked(project):
    p = new_pipeline(SequentialExecutor(), critical_path=False)
    skewed(p)
    assert p.run() == 0
    assert _starts(project)[:3] == ["short0", "short1", "short2"]


def test_recorded_durations_decide(project):
    def long_one(sec: float):
        with open("order.log", "a") as f:
            f.write("start long\n")
        time.sleep(sec)

    def build():
        p = new_pipeline(SequentialExecutor())
        skewed(p, chain_sec=0.005)
        p.add_task(Task("long", long_one, [0.3], always=True))
        return p

    assert build().run() == 0
    assert _starts(None)[0] == "chain0"  # never timed: the longer chain first
    Path("order.log").unlink()
    assert build().run(force=True) == 0
    # Recorded: "long" took 0.3 s, the chain 3 x 0.005 s: "long" now goes first.
    assert _starts(project)[0] == "long"


def test_a_subclass_of_the_sequential_executor_sees_each_log_path_as_a_str(project):
    seen = []

    class Noting(SequentialExecutor):
        def submit(self, job):
            seen.extend(step.log for step in job.steps)
            super().submit(job)

    def make(out: Annotated[Path, Product]):
        print("hello")
        Path(out).write_text("x")

    p = new_pipeline(Noting())
    p.add_task(Task("make", make, ["a.txt"]))
    assert p.run() == 0
    assert seen and all(type(log) is str for log in seen), seen
    assert Path("a.txt").read_text() == "x"
