"""The live table in a real pseudo-terminal: redrawn in place, within 80 columns, and the
final frame is the complete table."""

import fcntl
import os
import pty
import re
import struct
import sys
import termios
import textwrap
import time

import pytest

SCRIPT = """
    import time
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, ParallelExecutor, Task, Product

    def work(out: Annotated[Path, Product], n: int):
        print(f"task {n} says hello")
        time.sleep(0.3)
        Path(out).write_text(str(n))

    p = Pipeline(ParallelExecutor(max_workers=2), refreshrate=0.05)
    for n in range(6):
        p.add_task(Task(f"work-with-a-rather-long-name-{n}", work,
                        [f"a/rather/long/directory/name/for/the/product/number/{n}.txt", n]))
    exit(p.run())
"""


def run_in_pty(script, columns=80, rows=24, timeout=120):
    pid, fd = pty.fork()
    if pid == 0:  # the child: the pipeline, on the terminal
        os.execv(sys.executable, [sys.executable, script])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = os.read(fd, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        out += data
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), out.decode()


class Screen:
    """Just enough of a terminal: text, newlines, CR, cursor up N lines (CSI n F) and
    clear to the end of the screen (CSI J). Anything else fails the test."""

    def __init__(self):
        self.lines = [""]
        self.row = 0
        self.col = 0
        self.widest = 0

    def feed(self, text):
        i = 0
        while i < len(text):
            ch = text[i]
            if ch == "\x1b":
                m = re.match(r"\x1b\[(\d*)([A-Za-z])", text[i:])
                assert m, f"unexpected escape {text[i : i + 10]!r}"
                n, cmd = int(m.group(1) or 1), m.group(2)
                if cmd == "F":
                    self.row, self.col = max(0, self.row - n), 0
                elif cmd == "J":
                    self.lines = self.lines[: self.row + 1]
                    self.lines[self.row] = self.lines[self.row][: self.col]
                else:
                    raise AssertionError(f"unexpected escape sequence {m.group(0)!r}")
                i += len(m.group(0))
                continue
            if ch == "\n":
                self.row += 1
                self.col = 0
                if self.row == len(self.lines):
                    self.lines.append("")
            elif ch == "\r":
                self.col = 0
            else:
                line = self.lines[self.row].ljust(self.col)
                self.lines[self.row] = line[: self.col] + ch + line[self.col + 1 :]
                self.col += 1
                self.widest = max(self.widest, self.col)
            i += 1


def test_live_table_redraws_in_place_and_fits_80_columns(tmp_path):
    script = tmp_path / "pipeline.py"
    script.write_text(textwrap.dedent(SCRIPT))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code, out = run_in_pty(str(script))
    finally:
        os.chdir(cwd)
    assert code == 0, out
    assert out.count("\x1b[J") >= 3  # it was redrawn, several times
    screen = Screen()
    screen.feed(out.replace("\r\n", "\n"))
    assert screen.widest <= 80
    text = "\n".join(screen.lines)
    assert text.count("Tasks:") == 1  # every earlier frame was drawn over
    final = text[text.index("Tasks:") :]
    rows = [ln for ln in final.splitlines() if ln[:1].isdigit() and "  " in ln]
    assert len(rows) == 6 and all("FINISHED" in r for r in rows)
    assert "All 6 tasks done (6 ran, 0 up to date)." in final
    for n in range(6):  # each task's output was printed once, above the table
        assert text.count(f"task {n} says hello") == 1
        assert text.index(f"task {n} says hello") < text.index("Tasks:")


PROGRESS = """
    import time
    from depio_like import Pipeline, {executor}, Task, current_progress

    def count(n: int):
        progress = current_progress()
        progress.update(total=n, phase="counting")
        for _ in range(n):
            time.sleep(0.01)
            progress.advance()

    p = Pipeline({executor}({args}), refreshrate=0.05)
    p.add_task(Task("count", count, [200]))
    exit(p.run())
"""


def percentages(out):
    """The progress cells of every frame, in order."""
    return [int(m) for m in re.findall(r"(\d+)% counting", out)]


def run_progress(tmp_path, executor, args=""):
    script = tmp_path / "progress.py"
    script.write_text(textwrap.dedent(PROGRESS.format(executor=executor, args=args)))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        return run_in_pty(str(script))
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize(
    "executor, args",
    [
        ("ParallelExecutor", "max_workers=2"),
        ("ParallelExecutor", "max_workers=2, start_method='spawn'"),
        ("ParallelExecutor", "max_workers=2, start_method='forkserver'"),
        ("ThreadExecutor", "2"),
    ],
    ids=["fork", "spawn", "forkserver", "thread"],
)
def test_progress_moves_in_the_live_table_with_worker_processes(tmp_path, executor, args):
    code, out = run_progress(tmp_path, executor, args)
    assert code == 0, out
    seen = percentages(out)
    assert len(set(seen)) >= 3, seen  # it moved while the task ran
    assert seen == sorted(seen)  # and only forward
    assert 0 < seen[-1] <= 100


def test_progress_moves_in_the_live_table_in_process(tmp_path):
    code, out = run_progress(tmp_path, "SequentialExecutor")
    assert code == 0, out
    seen = percentages(out)
    assert len(set(seen)) >= 3 and seen == sorted(seen), seen


def test_no_progress_lines_without_a_terminal(tmp_path):
    import subprocess

    script = tmp_path / "progress.py"
    script.write_text(textwrap.dedent(PROGRESS.format(executor="ParallelExecutor", args="2")))
    r = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0
    assert "%" not in r.stdout and "\x1b[" not in r.stdout


def test_the_driver_reads_the_progress_files_of_running_tasks_only_when_polling(tmp_path):
    from depio_like.progress import SUFFIX, Watch

    (tmp_path / ("t0" + SUFFIX)).write_text(
        '{"current": 3, "total": 4, "message": "", "phase": ""}'
    )
    shown: list[tuple[bool, int, int]] = []
    for polling in (True, False):
        w = Watch(
            lambda i, snap, p=polling: shown.append((p, i, snap["current"])),
            lambda: None,
            lambda i: str(tmp_path / f"t{i}"),
            polling=polling,
        )
        w.poll([0, 1])  # task 1 wrote nothing yet
    assert shown == [(True, 0, 3)]
