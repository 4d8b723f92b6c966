"""A user's mistake gets one clear message and an exit code, never a Python traceback
(exit 2: the command cannot be carried out; 1: a task failed; 130: Ctrl-C)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import run_script

SCRIPT = """
import sys
from pathlib import Path
from typing import Annotated
from depio_like import {executor}, Pipeline, Product, Task

def ok(out: Annotated[Path, Product]):
    out.write_text("ok")

p = Pipeline(executor={executor}(), state_dir={state_dir!r})
p.add_task(Task("ok", ok, [Path("ok.txt")]))
exit(p.main())
"""


def script(directory, state_dir=".depio_like", executor="ParallelExecutor"):
    return textwrap.dedent(SCRIPT.format(state_dir=state_dir, executor=executor))


def tool(directory, *args, timeout=120):
    """The depio-like command, as installed next to this Python."""
    env = dict(os.environ)
    env.pop("CI", None)
    exe = os.path.join(os.path.dirname(sys.executable), "depio-like")
    return subprocess.run(
        [exe, *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def no_traceback(r):
    assert "Traceback" not in r.stdout + r.stderr, r.stdout + r.stderr


@pytest.mark.parametrize("jobs", ["0", "-3", "many"])
def test_jobs_below_one_is_a_usage_error(tmp_path, jobs):
    r = run_script(tmp_path, script(tmp_path), "-j", jobs)
    assert r.returncode == 2, r.stdout + r.stderr
    no_traceback(r)
    assert "-j/--jobs" in r.stderr
    (tmp_path / "p.py").write_text(script(tmp_path).replace("exit(p.main())", "exit(p.run())"))
    r = tool(tmp_path, "run", "p.py", "--jobs", jobs)
    assert r.returncode == 2 and "--jobs" in r.stderr, r.stdout + r.stderr
    no_traceback(r)
    assert not (tmp_path / "ok.txt").exists()


def test_running_a_script_that_does_not_exist(tmp_path):
    r = tool(tmp_path, "run", "missing.py")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "missing.py does not exist" in r.stderr
    no_traceback(r)
    (tmp_path / "adir").mkdir()
    r = tool(tmp_path, "run", "adir")
    assert r.returncode == 2 and "is not a file" in r.stderr
    no_traceback(r)


@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "run"])
def test_a_state_dir_path_that_is_a_file(tmp_path, dry):
    (tmp_path / "state").write_text("not a directory")
    r = run_script(tmp_path, script(tmp_path, state_dir="state"), *(["--dry-run"] if dry else []))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "state" in r.stderr and "not a directory" in r.stderr or "File exists" in r.stderr
    no_traceback(r)
    assert not (tmp_path / "ok.txt").exists()


@pytest.mark.parametrize(
    "content",
    [
        "garbage",
        "[1, 2]",
        '{"finished": 1}',
        '{"finished": 1, "cwd": ".", "exit_code": 0, "headers": 3, "rows": []}',
        '{"finished": 1, "cwd": ".", "exit_code": 0, "headers": ["ID"], "rows": [1], "tasks": "x"}',
    ],
)
def test_status_with_a_damaged_last_run(tmp_path, content):
    (tmp_path / ".depio_like").mkdir(mode=0o700)
    (tmp_path / ".depio_like" / "last_run.json").write_text(content)
    r = tool(tmp_path, "status")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "cannot read" in r.stderr and "last_run.json" in r.stderr
    no_traceback(r)


def _can_mount():
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    probe = Path(f"/tmp/depio-like-mount-probe-{os.getpid()}")
    probe.mkdir(exist_ok=True)
    try:
        ok = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(probe)], capture_output=True
            ).returncode
            == 0
        )
        if ok:
            subprocess.run(["umount", str(probe)], capture_output=True)
        return ok
    finally:
        probe.rmdir()


MOUNTABLE = _can_mount()


@pytest.fixture
def small_fs(tmp_path):
    """A directory on a fresh tmpfs (root only): ``make(size, ro=False)`` mounts it."""
    mounted = []

    def make(name, size="1m", ro=False):
        where = tmp_path / name
        where.mkdir()
        opts = f"size={size},mode=0700" + (",ro" if ro else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], check=True)
        mounted.append(where)
        return where

    yield make
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_a_read_only_state_dir(tmp_path, small_fs):
    if os.geteuid() == 0:
        if not MOUNTABLE:
            pytest.skip("root, but cannot mount a read-only tmpfs here")
        small_fs(".depio_like", ro=True)  # root may write anywhere, but not there
    else:
        (tmp_path / ".depio_like").mkdir(mode=0o500)
    r = run_script(tmp_path, script(tmp_path))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "error:" in r.stderr and ".depio_like" in r.stderr and "writable" in r.stderr
    no_traceback(r)
    assert not (tmp_path / "ok.txt").exists()


TASK_INTERRUPT = """
import time
from pathlib import Path
from typing import Annotated
from depio_like import {executor}, Pipeline, Product, Task

def quits(out: Annotated[Path, Product]):
    raise KeyboardInterrupt("the task gave up")

def works(out: Annotated[Path, Product]):
    time.sleep(0.2)
    out.write_text("done")

p = Pipeline(executor={executor}())
p.add_task(Task("quits", quits, [Path("q.txt")]))
p.add_task(Task("works", works, [Path("w.txt")]))
exit(p.run())
"""


@pytest.mark.parametrize("executor", ["ParallelExecutor", "SequentialExecutor"])
def test_a_task_raising_keyboard_interrupt_fails_and_the_run_goes_on(tmp_path, executor):
    r = run_script(tmp_path, TASK_INTERRUPT.format(executor=executor))
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "FAILED    [1] 'quits'" in out and "KeyboardInterrupt: the task gave up" in out
    assert "FINISHED  [2] 'works'" in out
    assert (tmp_path / "w.txt").read_text() == "done"


TWICE = """
import signal, time
from pathlib import Path
from typing import Annotated
from depio_like import {executor}, Pipeline, Product, Task

def stubborn(out: Annotated[Path, Product]):
    def on_term(*_):
        Path("got-term").touch()  # asked to stop: takes its time
    signal.signal(signal.SIGTERM, on_term)
    Path("started").touch()
    try:
        time.sleep(120)
    finally:
        Path("cleaning").touch()  # a Ctrl-C lands here under SequentialExecutor
        time.sleep(2)

p = Pipeline(executor={executor}())
p.add_task(Task("stubborn", stubborn, [Path("s.txt")]))
exit(p.run())
"""


def _wait_for(path, proc, what):
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.02)


@pytest.mark.parametrize("executor", ["ParallelExecutor", "SequentialExecutor"])
def test_ctrl_c_twice_still_ends_with_130_and_no_traceback(tmp_path, executor):
    (tmp_path / "pipeline.py").write_text(textwrap.dedent(TWICE.format(executor=executor)))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("CI", None)
    proc = subprocess.Popen(
        [sys.executable, "pipeline.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for(tmp_path / "started", proc, "the task's start")
        proc.send_signal(signal.SIGINT)
        # The second Ctrl-C arrives while the run is stopping: the worker is being asked
        # to end (Parallel), or the task's own clean-up runs (Sequential).
        _wait_for(
            tmp_path / ("got-term" if executor == "ParallelExecutor" else "cleaning"),
            proc,
            "the stopping",
        )
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, out
    assert "Traceback" not in out, out
    assert "Interrupted" in out and "CANCELLED" in out


FULL = """
import sys
from pathlib import Path
from typing import Annotated
from depio_like import {executor}, Pipeline, Product, Task

def small(out: Annotated[Path, Product], k: int):
    out.write_text("x" * 100)

def chatty(out: Annotated[Path, Product]):
    sys.stdout.write(("y" * 99 + "\\n") * 6000)  # 600 kB of output: more than the disk holds
    out.write_text("z")

def record(result):
    with open({hook!r}, "w") as f:
        f.write(f"{{result.success}} {{result.exit_code}} {{len(result.tasks)}}\\n")

p = Pipeline(executor={executor}(), on_pipeline_finished=record)
for k in range(20):
    p.add_task(Task(f"small{{k}}", small, [Path(f"small{{k}}.txt"), k]))
p.add_task(Task("chatty", chatty, [Path("chatty.txt")]))
exit(p.run())
"""


@pytest.mark.parametrize("executor", ["ParallelExecutor", "SequentialExecutor"])
def test_a_full_disk_fails_the_run_cleanly(tmp_path, small_fs, executor):
    """A 256 KiB tmpfs (mounted here: root only) holds the project and its state."""
    if not MOUNTABLE:
        pytest.skip("needs root and tmpfs mounts to fill a disk")
    project = small_fs("disk", size="256k")
    hook = tmp_path / "hook.txt"
    r = run_script(project, FULL.format(executor=executor, hook=str(hook)))
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "No space left on device" in out
    # No traceback through our code (a task's own traceback would be fine).
    assert not re.search(r'File "[^"]*/depio_like/[^"]*[.]py"', out), out
    assert hook.read_text() == "False 1 21\n"  # the pipeline hook ran, saw the failure
    state = project / ".depio_like"
    leftovers = [p.name for p in state.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, leftovers
    # Once space is back, the next run completes.
    for p in (state / "logs").iterdir():
        p.unlink()
    r = run_script(
        project, FULL.format(executor=executor, hook=str(hook)).replace("* 6000", "* 10")
    )
    assert r.returncode == 0, r.stdout + r.stderr
