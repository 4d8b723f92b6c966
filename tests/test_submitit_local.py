"""SubmitItExecutor through submitit's local backend: real subprocesses, no Slurm needed."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import Dependency, Product, Status, SubmitItExecutor, Task

from conftest import new_pipeline


def double(out: Annotated[Path, Product], src: Annotated[Path, Dependency] = None):
    text = Path(src).read_text() if src else "x"
    Path(out).write_text(text * 2)
    with open("calls.log", "a") as f:
        f.write(f"{Path(out).name}\n")


def explode(out: Annotated[Path, Product]):
    raise ValueError("the job exploded")


def build(executor, with_failure=False):
    p = new_pipeline(executor)
    p.add_task(Task("a", double, ["a.txt"]))
    p.add_task(Task("b", double, ["b.txt", "a.txt"]))
    p.add_task(Task("c", double, ["c.txt", "a.txt"]))
    if with_failure:
        p.add_task(Task("boom", explode, ["boom.txt"]))
        p.add_task(Task("after-boom", double, ["d.txt", "boom.txt"]))
    return p


def test_runs_tasks_in_jobs_and_skips_on_rerun(project):
    ex = SubmitItExecutor(cluster="local")
    p = build(ex)
    assert p.run() == 0, p.stream.getvalue()
    assert Path("b.txt").read_text() == "xxxx"
    out = p.stream.getvalue()
    assert "Slurm ID" in out and "COMPLETED" in out
    assert sorted(Path("calls.log").read_text().split()) == ["a.txt", "b.txt", "c.txt"]
    jobs = list((project / ".depio_like" / "slurm").glob("*/*_result.pkl"))
    assert len(jobs) == 3

    p = build(ex)
    assert p.run() == 0
    assert {t.status for t in p.tasks} == {Status.SKIPPED}
    assert len(list((project / ".depio_like" / "slurm").glob("*/*_result.pkl"))) == 3
    assert sorted(Path("calls.log").read_text().split()) == ["a.txt", "b.txt", "c.txt"]


def test_raising_task_fails_with_traceback_and_log_path(project):
    p = build(SubmitItExecutor(cluster="local"), with_failure=True)
    assert p.run() == 1
    by_name = {t.name: t.status for t in p.tasks}
    assert by_name["boom"] is Status.FAILED and by_name["after-boom"] is Status.DEPFAILED
    assert by_name["b"] is Status.FINISHED
    out = p.stream.getvalue()
    assert "ValueError: the job exploded" in out
    assert 'raise ValueError("the job exploded")' in out  # the source line, not <dynamic-code>
    assert "_log.err" in out and str(project / ".depio_like" / "slurm") in out


def test_unpicklable_argument_fails_naming_task_and_argument(project):
    def use_lock(out: Annotated[Path, Product], lock):
        Path(out).write_text("never")

    p = new_pipeline(SubmitItExecutor(cluster="local"))
    t = p.add_task(Task("locked", use_lock, ["l.txt", threading.Lock()]))
    assert p.run() == 1
    assert t.status is Status.FAILED
    out = p.stream.getvalue()
    assert "task [1] 'locked': argument 'lock' (lock) cannot be sent to a job" in out
    assert not list((project / ".depio_like" / "slurm").glob("*/*_submitted.pkl"))


def test_retries_resubmit(project):
    def flaky(out: Annotated[Path, Product]):
        if not Path("tried").exists():
            Path("tried").touch()
            raise RuntimeError("first attempt")
        Path(out).write_text("ok")

    p = new_pipeline(SubmitItExecutor(cluster="local", retries=1))
    t = p.add_task(Task("flaky", flaky, ["f.txt"]))
    assert p.run() == 0, p.stream.getvalue()
    assert t.status is Status.FINISHED and "RETRY" in p.stream.getvalue()


def test_bad_executor_settings_are_refused_early():
    with pytest.raises(ValueError, match="cluster"):
        SubmitItExecutor(cluster="pbs")
    with pytest.raises(ValueError, match="tasks_per_job"):
        SubmitItExecutor(cluster="local", tasks_per_job=0)


DRIVER = """
    import sys, time
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, SubmitItExecutor, Task, Product

    def work(out: Annotated[Path, Product], n: int):
        with open("runs.log", "a") as f:
            f.write(f"start {n}\\n")
        Path(f"started-{n}").touch()
        while not Path("release").exists():
            time.sleep(0.05)
        Path(out).write_text(str(n))

    p = Pipeline(SubmitItExecutor(cluster="local"))
    for n in range(4):
        p.add_task(Task(f"work{n}", work, [f"out{n}.txt", n]))
    exit(p.run())
"""


def _start(tmp_path):
    script = tmp_path / "pipeline.py"
    script.write_text(textwrap.dedent(DRIVER))
    return subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def _wait_for(paths, proc=None, timeout=60):
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"never appeared: {[str(p) for p in paths]}"
        if proc is not None:
            assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)


def test_driver_killed_then_rerun_reattaches_without_running_twice(tmp_path):
    proc = _start(tmp_path)
    _wait_for([tmp_path / f"started-{n}" for n in range(4)], proc)
    proc.kill()  # SIGKILL: no cleanup at all
    proc.wait()
    (tmp_path / "release").touch()  # the orphaned jobs now finish on their own
    rerun = subprocess.run(
        [sys.executable, str(tmp_path / "pipeline.py")],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    runs = (tmp_path / "runs.log").read_text().split("\n")
    assert sorted(r for r in runs if r) == [f"start {n}" for n in range(4)]  # each once
    assert [(tmp_path / f"out{n}.txt").read_text() for n in range(4)] == ["0", "1", "2", "3"]


def test_ctrl_c_cancels_the_jobs(tmp_path):
    proc = _start(tmp_path)
    _wait_for([tmp_path / f"started-{n}" for n in range(4)], proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "Cancelled Slurm job(s)" in out and "CANCELLED" in out
    # Wait until no process of those jobs is left, then release them: a job that was not
    # really cancelled would go on and write its product.
    folder = str(tmp_path / ".depio_like" / "slurm").encode()
    deadline = time.monotonic() + 60
    while _processes_mentioning(folder):
        assert time.monotonic() < deadline, "the cancelled jobs' processes are still there"
        time.sleep(0.1)
    (tmp_path / "release").touch()
    time.sleep(0.5)
    assert not any((tmp_path / f"out{n}.txt").exists() for n in range(4))


def _processes_mentioning(text: bytes) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if text in f.read():
                        found.append(int(pid))
            except OSError:
                pass
    return found


def test_a_job_dying_in_a_chain_fails_it_once_and_the_run_goes_on(project):
    def make():
        return 1

    def die(v):
        os._exit(3)  # the whole job process goes: no result for any task of it

    def slow(out: Annotated[Path, Product]):
        time.sleep(3)  # still running when the chain's job dies
        Path(out).write_text("slow")

    p = new_pipeline(SubmitItExecutor(cluster="local"))
    a = p.add_task(Task("make", make))
    b = p.add_task(Task("die", die, [a]))
    c = p.add_task(Task("slow", slow, ["slow.txt"]))
    assert p.run() == 1
    assert (a.status, b.status, c.status) == (Status.FAILED, Status.DEPFAILED, Status.FINISHED)
    out = p.stream.getvalue()
    assert out.count("[1] 'make'\n") == 1 and out.count("[2] 'die'") == 1, out
    assert "the job ended without a result: its process died" in out
    assert Path("slow.txt").read_text() == "slow"
