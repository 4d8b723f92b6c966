"""The status table: plain lines off a terminal, a live table on one, compact when large."""

import io
import re
from pathlib import Path
from typing import Annotated

from depio_like import ParallelExecutor, Product, SequentialExecutor, Task

from conftest import new_pipeline

ESC = "\x1b["


class FakeTerminal(io.StringIO):
    """A stream that says it is a terminal, to capture what a TTY user would see."""

    def isatty(self):
        return True


def write(out: Annotated[Path, Product]):
    Path(out).write_text("x")


def fail(out: Annotated[Path, Product]):
    raise RuntimeError("nope")


def test_plain_output_has_lines_and_one_table_and_no_cursor_codes(project):
    p = new_pipeline(ParallelExecutor(max_workers=2))
    for k in range(3):
        p.add_task(Task(f"w{k}", write, [f"w{k}.txt"]))
    p.add_task(Task("bad", fail, ["bad.txt"]))
    assert p.run() == 1
    out = p.stream.getvalue()
    assert ESC not in out
    assert out.count("Tasks:") == 1
    assert len(re.findall(r"^FINISHED  \[\d\] 'w\d'", out, re.M)) == 3
    assert len(re.findall(r"^FAILED    \[4\] 'bad'", out, re.M)) == 1
    header = next(ln for ln in out.splitlines() if ln.startswith("ID"))
    assert header.split() == ["ID", "Name", "Status", "Task", "Deps", "Path", "Deps", "Products"]


def test_second_run_prints_no_per_task_lines(project):
    new_pipeline().add_task  # noqa: B018 (build twice below)
    for _ in range(2):
        p = new_pipeline()
        p.add_task(Task("w", write, ["w.txt"]))
        p.run()
    out = p.stream.getvalue()
    assert "FINISHED  " not in out and "SKIPPED" in out and "1 up to date" in out


def test_large_pipeline_shows_counts_and_failed_rows(project):
    p = new_pipeline()
    for k in range(60):
        p.add_task(Task(f"w{k}", write, [f"w{k}.txt"]))
    p.add_task(Task("bad", fail, ["bad.txt"]))
    p.run()
    table = p.stream.getvalue().split("nope\n")[-1]
    assert "61 tasks: 60 FINISHED, 1 FAILED" in table
    assert "'w5'" not in table and "bad" in table


def test_live_table_redraws_in_place_and_ends_with_the_full_table(project):
    term = FakeTerminal()
    p = new_pipeline(SequentialExecutor(), stream=term, refreshrate=0.0)
    for k in range(3):
        p.add_task(Task(f"w{k}", write, [f"w{k}.txt"]))
    assert p.run() == 0
    out = term.getvalue()
    frames = out.split(ESC)
    assert len(frames) > 2  # redrawn, not appended
    assert re.search(r"\x1b\[\d+F\x1b\[J", out)
    last = out[out.rindex("Tasks:") :]
    assert last.count("FINISHED") == 3 and "WAITING" not in last and "RUNNING" not in last
    assert "FINISHED  [" not in out  # no per-task log lines on a terminal


def test_quiet_prints_nothing(project):
    p = new_pipeline(quiet=True)
    p.add_task(Task("w", write, ["w.txt"]))
    assert p.run() == 0
    assert p.stream.getvalue() == ""


def test_a_large_table_is_counts_kept_as_statuses_change(project):
    # The collapsed frame reads the counts Display.track keeps, not a pass over the tasks:
    # they must follow every change, in and out of RUNNING and FAILED.
    from depio_like.display import Display
    from depio_like.status import Status

    tasks = []
    for k in range(50):
        t = Task(f"t{k}", write, [f"t{k}.txt"])
        t.id = k + 1
        tasks.append(t)
    status = [Status.WAITING] * 50
    stream = io.StringIO()
    d = Display(stream, tty=False, quiet=False, max_rows=10)
    d.start(tasks, status, [[] for _ in tasks])

    def move(i, st):
        status[i] = st
        d.track(i, st)

    for i in range(5):
        move(i, Status.RUNNING)
    for i in range(3):
        move(i, Status.FINISHED)
    move(3, Status.FAILED)
    move(7, Status.SKIPPED)
    move(7, Status.SKIPPED)  # the same status again changes nothing
    d.finish()
    out = stream.getvalue()
    assert "50 tasks: 44 WAITING, 1 RUNNING, 3 FINISHED, 1 SKIPPED, 1 FAILED" in out, out
    rows = [ln.split()[:3] for ln in out.splitlines() if re.match(r"^\d+\s+t\d", ln)]
    assert rows == [["5", "t4", "RUNNING"], ["4", "t3", "FAILED"]], out


def test_the_per_task_fast_calls_show_and_count_what_track_and_changed_do(project):
    # Display.running / Display.finished (every task run) against the general path: the
    # same counts, rows and FINISHED lines, for any durations (the short ones are not
    # formatted, the rest are, as :.2f has it).
    import random

    from depio_like.display import Display
    from depio_like.status import Status

    rng = random.Random(7)
    durations = [0.0, -0.0, 0.004999999999999999, 0.005, 0.00500001, 0.0049, 1e-9, 0.125]
    durations += [rng.uniform(0, 0.01) for _ in range(200)] + [
        rng.uniform(0, 100) for _ in range(50)
    ]
    durations += [None]
    n = len(durations)
    tasks = []
    for k in range(n):
        t = Task(f"t{k}", write, [f"t{k}.txt"])
        t.id = k + 1
        tasks.append(t)

    def show(fast):
        status = [Status.PENDING] * n
        stream = io.StringIO()
        d = Display(stream, tty=False, quiet=False, max_rows=10)
        d.start(tasks, status, [[] for _ in tasks])
        for i, took in enumerate(durations):
            status[i] = Status.RUNNING
            d.running(i) if fast else d.track(i, Status.RUNNING)
            if i % 7 == 3:
                continue  # left running
            status[i] = Status.FINISHED
            if fast:
                d.finished(i, took)
            else:
                d.track(i, Status.FINISHED)
                d.changed(i, Status.FINISHED, duration=took)
        d.finish()
        return stream.getvalue(), dict(d._counts), set(d._running)

    assert show(True) == show(False)
