"""Processes: nothing of a run outlives its driver, nothing leaks from one task to the next.

Real processes throughout: pipeline scripts run as their own session (so every process of a
run, workers and what their tasks started included, can be found in /proc by session id),
the driver is killed with SIGKILL, and the next run must finish the job exactly as a clean
run does.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import ParallelExecutor, Product, SequentialExecutor, Task

from conftest import new_pipeline

SAFETY = 120  # seconds: a net for hung processes, never a pass/fail criterion
GONE_WITHIN = 5.0  # the acceptance criterion: no process of a killed run after this long

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")

# Four tasks at once, each blocked until the file "go" exists, each with processes of its
# own: a multiprocessing.Pool, a ProcessPoolExecutor, a subprocess it leaves running (never
# waited for), and a product written line by line (a worker left writing after its driver
# died would mix its lines into the next run's product).
SCRIPT = """
import multiprocessing, os, subprocess, sys, time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Annotated
from depio_like import ParallelExecutor, Pipeline, Product, Task

def square(x):
    return x * x

def wait_for_go(name):
    Path(f"started-{{name}}").touch()
    while not Path("go").exists():
        time.sleep(0.02)

def with_pool(out: Annotated[Path, Product]):
    with multiprocessing.Pool(2) as pool:
        values = pool.map(square, range(10))
        wait_for_go("pool")
    out.write_text(f"pool {{values}}\\n")

def with_executor(out: Annotated[Path, Product]):
    with ProcessPoolExecutor(2) as ex:
        values = list(ex.map(square, range(10)))
        wait_for_go("executor")
    out.write_text(f"executor {{values}}\\n")

def leaves_a_process(out: Annotated[Path, Product]):
    # Started and never waited for: the run must not leave it behind.
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    wait_for_go("subprocess")
    out.write_text("subprocess\\n")

def writes_slowly(out: Annotated[Path, Product]):
    with open(out, "w") as f:
        for k in range(40):
            f.write(f"line {{k}}\\n")
            f.flush()
            if k == 0:
                wait_for_go("writer")
            time.sleep(0.005)

tasks = {tasks}
p = Pipeline(executor=ParallelExecutor(max_workers=len(tasks), start_method={method!r}))
for name in tasks:
    p.add_task(Task(name, globals()[name], [Path(f"out/{{name}}.txt")]))
Path("out").mkdir(exist_ok=True)
exit(p.run())
"""

PLAIN = ["leaves_a_process", "writes_slowly"]
MARKER = {
    "with_pool": "pool",
    "with_executor": "executor",
    "leaves_a_process": "subprocess",
    "writes_slowly": "writer",
}
POOLS = ["with_pool", "with_executor", "leaves_a_process", "writes_slowly"]


def session_members(sid: int) -> list[int]:
    """Live (not zombie) processes of session ``sid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(int(entry))
    return found


def start(directory: Path, log: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("CI", None)
    with open(directory / log, "w") as out:
        return subprocess.Popen(
            [sys.executable, "pipeline.py"],
            cwd=directory,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def wait_until_gone(sid: int, within: float) -> list[int]:
    """Processes of session ``sid`` still alive ``within`` seconds from now (none: [])."""
    deadline = time.monotonic() + within
    while True:
        left = session_members(sid)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.01)


def describe(pids: list[int]) -> str:
    out = []
    for pid in pids:
        try:
            cmd = (
                Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                or Path(f"/proc/{pid}/stat").read_text()
            )
        except OSError:
            cmd = "?"
        out.append(f"{pid}: {cmd}")
    return "\n".join(out)


def kill_session(sid: int) -> None:
    for pid in session_members(sid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def finish(directory: Path, log: str) -> tuple[int, str]:
    proc = start(directory, log)
    try:
        rc = proc.wait(SAFETY)
    finally:
        left = wait_until_gone(proc.pid, SAFETY)
        kill_session(proc.pid)
    assert not left, "processes left after the run ended:\n" + describe(left)
    return rc, (directory / log).read_text()


def products(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((directory / "out").iterdir())}


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
@pytest.mark.parametrize("tasks", [PLAIN, POOLS], ids=["plain", "pools"])
def test_kill_9_of_the_driver_leaves_nothing_and_the_rerun_matches_a_clean_run(
    tmp_path, tasks, method
):
    kill_driver_then_rerun(tmp_path, tasks, method, signal.SIGKILL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_the_driver_ended_by_term_or_hup_leaves_nothing_and_the_rerun_matches(tmp_path, sig):
    # What a closed terminal, `kill` or a batch system's end of job sends: however the
    # driver ends, its workers follow it and the next run finishes the work.
    kill_driver_then_rerun(tmp_path, PLAIN, "fork", sig)


def kill_driver_then_rerun(tmp_path: Path, tasks, method: str, sig: signal.Signals) -> None:
    script = textwrap.dedent(SCRIPT.format(tasks=tasks, method=method))
    clean, work = tmp_path / "clean", tmp_path / "work"
    for d in (clean, work):
        d.mkdir()
        (d / "pipeline.py").write_text(script)
    (clean / "go").touch()
    rc, out = finish(clean, "clean.log")  # also: what a task left running is gone
    assert rc == 0, out
    expected = products(clean)
    assert sorted(expected) == sorted(f"{t}.txt" for t in tasks)

    driver = start(work, "killed.log")
    try:
        deadline = time.monotonic() + SAFETY
        while not all((work / f"started-{MARKER[t]}").exists() for t in tasks):
            assert driver.poll() is None, (work / "killed.log").read_text()
            assert time.monotonic() < deadline, "the tasks never started"
            time.sleep(0.02)
        before = session_members(driver.pid)
        # driver, a worker per task, the reaper, the sleeper; pools add their processes
        assert len(before) >= len(tasks) + 3, describe(before)

        os.kill(driver.pid, sig)  # the driver only: the rest must follow it
        (work / "go").touch()  # anything left running would now go on writing
        rerun = start(work, "rerun.log")  # at once, while the old processes may be alive
        try:
            left = wait_until_gone(driver.pid, GONE_WITHIN)
            assert not left, (
                f"{GONE_WITHIN} s after {sig.name} to the driver, processes "
                f"of its run are still alive:\n{describe(left)}"
            )
            rc = rerun.wait(SAFETY)
        finally:
            left = wait_until_gone(rerun.pid, SAFETY)
            kill_session(rerun.pid)
        assert not left, "processes left after the rerun:\n" + describe(left)
        out = (work / "rerun.log").read_text()
        assert rc == 0, out
        assert products(work) == expected
    finally:
        driver.kill()
        driver.wait(SAFETY)
        kill_session(driver.pid)


def test_a_task_may_use_multiprocessing_pools_under_parallel_executor(project):
    """Workers are not daemonic: a daemonic process may not start processes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    def pool_sum(out: Annotated[Path, Product]):
        with multiprocessing.Pool(2) as pool:
            a = sum(pool.map(abs, range(-5, 5)))
        with ProcessPoolExecutor(2) as ex:
            b = sum(ex.map(abs, range(-5, 5)))
        out.write_text(f"{a} {b}")

    p = new_pipeline(ParallelExecutor(max_workers=2))
    p.add_task(Task("pools", pool_sum, [Path("sums.txt")]))
    assert p.run() == 0, p.stream.getvalue()
    assert Path("sums.txt").read_text() == "25 25"


@pytest.mark.parametrize("executor", ["sequential", "parallel"])
def test_chdir_and_environ_changes_do_not_reach_the_next_task(project, executor):
    home, user_home = os.getcwd(), os.environ.get("HOME")
    os.environ["DEPIO_LIKE_TEST_KEEP"] = "kept"
    (project / "elsewhere").mkdir()

    def meddle(out: Annotated[Path, Product]):
        Path(out).write_text("meddled")
        os.chdir("elsewhere")
        os.environ["DEPIO_LIKE_TEST_LEAK"] = "leaked"
        os.environ["DEPIO_LIKE_TEST_KEEP"] = "changed"
        del os.environ["HOME"]

    def observe(out: Annotated[Path, Product]):
        Path(out).write_text(
            repr(
                (
                    os.getcwd(),
                    os.environ.get("DEPIO_LIKE_TEST_LEAK"),
                    os.environ.get("DEPIO_LIKE_TEST_KEEP"),
                    "HOME" in os.environ,
                )
            )
        )

    ex = SequentialExecutor() if executor == "sequential" else ParallelExecutor(max_workers=1)
    p = new_pipeline(ex)
    first = p.add_task(Task("meddle", meddle, [str(project / "a.txt")]))
    p.add_task(Task("observe", observe, [str(project / "b.txt")], depends_on=[first]))
    try:
        assert p.run() == 0, p.stream.getvalue()
        assert (project / "b.txt").read_text() == repr((home, None, "kept", True))
        assert os.getcwd() == home and "DEPIO_LIKE_TEST_LEAK" not in os.environ
    finally:
        os.environ.pop("DEPIO_LIKE_TEST_KEEP", None)
        os.environ.pop("DEPIO_LIKE_TEST_LEAK", None)
        if user_home is not None:
            os.environ["HOME"] = user_home
        os.chdir(home)


NESTED = """
import subprocess, sys
from pathlib import Path
from typing import Annotated
from depio_like import {executor}, Pipeline, Product, Task

def inner(out: Annotated[Path, Product]):
    out.write_text("inner")

def nested(out: Annotated[Path, Product]):
    if "{how}" == "exec":  # another interpreter, started by the task
        r = subprocess.run([sys.executable, "inner.py"], capture_output=True, text=True,
                           timeout=60)
        print(r.stdout + r.stderr)
        assert r.returncode == 0, "the inner pipeline failed"
    else:
        q = Pipeline(executor={executor}())
        q.add_task(Task("inner", inner, [Path("inner.txt")]))
        q.run()
    out.write_text("outer")

if __name__ == "__main__":
    p = Pipeline(executor={executor}())
    p.add_task(Task("nested", nested, [Path("outer.txt")]))
    exit(p.run())
"""

INNER = """
from pathlib import Path
from typing import Annotated
from depio_like import Pipeline, Product, SequentialExecutor, Task

def inner(out: Annotated[Path, Product]):
    out.write_text("inner")

q = Pipeline(executor=SequentialExecutor())
q.add_task(Task("inner", inner, [Path("inner.txt")]))
exit(q.main([]))
"""


@pytest.mark.parametrize(
    "executor,how",
    [("SequentialExecutor", "call"), ("ParallelExecutor", "call"), ("ParallelExecutor", "exec")],
)
def test_a_nested_pipeline_on_the_same_state_dir_fails_at_once(tmp_path, executor, how):
    (tmp_path / "pipeline.py").write_text(
        textwrap.dedent(NESTED.format(executor=executor, how=how))
    )
    (tmp_path / "inner.py").write_text(textwrap.dedent(INNER))
    proc = start(tmp_path, "nested.log")
    try:
        rc = proc.wait(60)  # a hang (waiting for itself) fails here
    except subprocess.TimeoutExpired:
        pytest.fail("the nested pipeline hung: " + (tmp_path / "nested.log").read_text())
    finally:
        kill_session(proc.pid)
    out = (tmp_path / "nested.log").read_text()
    assert rc == 1, out
    assert "FAILED    [1] 'nested'" in out
    assert "cannot run a pipeline on its own run's state directory" in out, out
    assert not (tmp_path / "inner.txt").exists()


def test_driver_and_workers_exchange_dataclasses(project, monkeypatch):
    """What travels between the driver and ParallelExecutor's workers is typed."""
    import dataclasses
    from multiprocessing.connection import Connection

    sent, received = [], []
    real_send, real_recv = Connection.send, Connection.recv

    def send(self, obj):
        if os.getpid() == driver:
            sent.append(obj)
        return real_send(self, obj)

    def recv(self):
        obj = real_recv(self)
        if os.getpid() == driver:
            received.append(obj)
        return obj

    driver = os.getpid()
    monkeypatch.setattr(Connection, "send", send)
    monkeypatch.setattr(Connection, "recv", recv)

    def make(out: Annotated[Path, Product]):
        Path(out).write_text("x")
        return 42

    def take(v, out: Annotated[Path, Product]):
        Path(out).write_text(str(v))

    p = new_pipeline(ParallelExecutor(max_workers=1))
    a = p.add_task(Task("make", make, ["a.txt"]))
    p.add_task(Task("take", take, [a, "b.txt"]))
    assert p.run() == 0, p.stream.getvalue()
    orders = [m for m in sent if m is not None]
    assert orders and received
    for m in orders + received:
        assert dataclasses.is_dataclass(m) and not isinstance(m, tuple), type(m)
    for m in orders:
        assert all(dataclasses.is_dataclass(s) for s in m.steps)


EARLY_DEATH = """
import os, signal, subprocess, sys
from depio_like.executors.processes import RunGroup

group = RunGroup(spawned=True)
group.start()
member = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                          process_group=group.pgid, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
print(member.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # before the reaper's interpreter is even up
"""


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Popen(process_group=) is 3.11+")
def test_a_driver_dying_while_its_spawned_reaper_starts_still_has_its_group_killed(tmp_path):
    # Found when CI was busy: a spawned reaper that found its driver already gone exited
    # without killing the group, and a task's subprocess outlived the run.
    out = subprocess.run(
        [sys.executable, "-c", EARLY_DEATH], capture_output=True, text=True, timeout=SAFETY
    )
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + GONE_WITHIN
    try:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), "the group's member outlived its driver and reaper"
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
