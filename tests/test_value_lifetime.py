"""How long a value handed between tasks lives: not past its last taker, and never past
the run, however the run ends (success, failure, Ctrl-C) and whatever became of its takers
(ran, failed, failed for another producer, up to date).

Between processes (ParallelExecutor) a value travels as a file under the state directory:
after a run nothing of it may be left there. In one process (SequentialExecutor) the value
is the object itself: ``Big`` counts the live ones, so a task that runs after the last
taker sees whether the run still holds it.
"""

from __future__ import annotations

import gc
import os
import signal
import time
import weakref
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import Dependency, ParallelExecutor, Product, SequentialExecutor, Status, Task

from conftest import new_pipeline

ALIVE: weakref.WeakSet = weakref.WeakSet()


class Big:
    """A large value; ``ALIVE`` holds the ones not yet freed (in this process)."""

    def __init__(self, n: int = 8 << 20) -> None:
        self.data = bytearray(n)
        ALIVE.add(self)


def alive() -> int:
    gc.collect()
    return len(ALIVE)


def left_on_disk() -> list[str]:
    """Everything under the state directory's value area (files and directories)."""
    top = Path(".depio_like") / "values"
    return sorted(str(p.relative_to(top)) for p in top.rglob("*")) if top.exists() else []


def produce():
    return Big()


def take(out: Annotated[Path, Product], value):
    Path(out).write_text(str(len(value.data)))


def take_and_fail(out: Annotated[Path, Product], value):
    raise RuntimeError("the taker fails")


def probe(out: Annotated[Path, Product], after: Annotated[Path, Dependency]):
    """Runs after the last taker: how many ``Big`` values are still held (this process)."""
    Path(out).write_text(str(alive()))


@pytest.fixture(autouse=True)
def _no_values_before():
    assert alive() == 0
    yield
    ALIVE.clear()


def test_values_go_once_every_taker_finished(project, executor_factory):
    p = new_pipeline(executor_factory())
    v = p.add_task(Task("produce", produce))
    p.add_task(Task("a", take, ["a.txt", v]))
    p.add_task(Task("b", take, ["b.txt", v]))
    p.add_task(Task("probe", probe, ["probe.txt", "b.txt"]))
    p.add_task(Task("probe2", probe, ["probe2.txt", "a.txt"]))
    assert p.run() == 0, p.stream.getvalue()
    assert left_on_disk() == []
    assert alive() == 0
    if executor_factory is SequentialExecutor:  # both takers ran before either probe
        assert Path("probe.txt").read_text() == "0" == Path("probe2.txt").read_text()


def test_a_failed_taker_releases_the_value(project, executor_factory):
    p = new_pipeline(executor_factory())
    v = p.add_task(Task("produce", produce))
    bad = p.add_task(Task("bad", take_and_fail, ["bad.txt", v]))
    assert p.run() == 1
    assert bad.status is Status.FAILED
    assert left_on_disk() == []
    assert alive() == 0


def fail_at_once():
    raise RuntimeError("the other producer fails")


def test_a_value_whose_taker_failed_for_another_producer_is_not_kept(project, executor_factory):
    """``late`` ends after ``use`` was marked DEPFAILED (``early`` failed): nobody will take
    its value any more, so it must not be kept (nor its file written for nothing kept)."""
    settled = "use-settled"

    def on_finished(result):  # runs in the driver, once early failed and use with it
        if result.name == "early":
            Path(settled).touch()

    def late():
        deadline = time.monotonic() + 60
        while not Path(settled).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return Big()

    def use(out: Annotated[Path, Product], a, b):
        Path(out).write_text("never")

    p = new_pipeline(executor_factory(), on_task_finished=on_finished)
    e = p.add_task(Task("early", fail_at_once))
    la = p.add_task(Task("late", late))
    u = p.add_task(Task("use", use, ["use.txt", e, la]))
    assert p.run() == 1
    assert u.status is Status.DEPFAILED and la.status is Status.FINISHED
    assert left_on_disk() == []
    assert alive() == 0


def test_up_to_date_takers_and_a_reopened_producer_leave_nothing(project, executor_factory):
    def build():
        p = new_pipeline(executor_factory())
        v = p.add_task(Task("produce", produce))
        p.add_task(Task("a", take, ["a.txt", v]))
        p.add_task(Task("b", take, ["b.txt", v]))
        return p

    assert build().run() == 0
    assert build().run() == 0  # all up to date: nothing runs
    assert left_on_disk() == [] and alive() == 0
    Path("a.txt").unlink()  # produce is reopened for a, b stays up to date
    p = build()
    assert p.run() == 0, p.stream.getvalue()
    assert [t.status for t in p.tasks] == [Status.FINISHED, Status.FINISHED, Status.SKIPPED]
    assert left_on_disk() == []
    assert alive() == 0


@pytest.fixture
def ctrl_c_is_keyboard_interrupt():
    """Python's own SIGINT handler for the test (a library imported by another test, such
    as dask_jobqueue, may have replaced it with one calling sys.exit)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("ctrl_c_is_keyboard_interrupt")
def test_ctrl_c_leaves_no_value_behind(project, executor_factory):
    """Ctrl-C while a producer's value is written but not yet reported to the driver (the
    driver is busy in a hook): the run ends, and the value with it."""
    written = "value-written"

    def on_finished(result):
        if result.name != "quick":
            return
        Path("quick-seen").touch()
        deadline = time.monotonic() + 60  # a safety net only
        while not Path(written).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # let the worker write the value and report it (unread)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, while the driver is here
        time.sleep(60)  # interrupted at once

    def quick(out: Annotated[Path, Product]):
        Path(out).write_text("q")

    def slow():
        deadline = time.monotonic() + 60
        while not Path("quick-seen").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        Path(written).touch()
        return Big()

    def chained_with_slow(out: Annotated[Path, Product], value, after: Annotated[Path, Dependency]):
        Path(out).write_text("never")

    p = new_pipeline(executor_factory(), on_task_finished=on_finished)
    if executor_factory is SequentialExecutor:  # one task at a time: quick after slow
        s = p.add_task(Task("slow", slow))
        Path("quick-seen").touch()
        q = p.add_task(Task("quick", quick, ["q.txt"]))
    else:
        q = p.add_task(Task("quick", quick, ["q.txt"]))
        s = p.add_task(Task("slow", slow))
    p.add_task(Task("taker", chained_with_slow, ["t.txt", s, "q.txt"]))
    assert p.run() == 130, p.stream.getvalue()
    assert q.status is Status.FINISHED
    assert left_on_disk() == []
    assert alive() == 0


def test_a_driver_killed_earlier_leaves_nothing_after_the_next_run(project):
    """Value files a killed driver left (no run ended to remove them) go with the next run
    that uses the state directory: they belong to no run any more."""
    p = new_pipeline(ParallelExecutor(max_workers=2))
    v = p.add_task(Task("produce", produce))
    p.add_task(Task("a", take, ["a.txt", v]))
    assert p.run() == 0
    stale = Path(".depio_like") / "values" / "run-dead" / "0123.value"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"left by a driver that was killed")
    (stale.parent.parent / "abcd.value").write_bytes(b"an older layout")
    p = new_pipeline(ParallelExecutor(max_workers=2))
    v = p.add_task(Task("produce", produce))
    p.add_task(Task("a", take, ["a.txt", v]))
    assert p.run() == 0
    assert left_on_disk() == []


def test_a_dry_run_touches_no_value_file(project):
    stale = Path(".depio_like") / "values" / "run-dead" / "0123.value"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"v")
    p = new_pipeline(ParallelExecutor(max_workers=2))
    v = p.add_task(Task("produce", produce))
    p.add_task(Task("a", take, ["a.txt", v]))
    assert p.run(dry_run=True) == 0
    assert stale.exists()
