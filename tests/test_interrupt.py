"""Ctrl-C: stop dispatching, stop running tasks, keep finished records, table, exit 130."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

SCRIPT = """
    import time
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, {executor}, Task, Product, Dependency

    def quick(out: Annotated[Path, Product]):
        Path(out).write_text("quick")

    def long(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        if not Path("go-fast").exists():
            Path("long-started").touch()
            time.sleep(120)
        Path(out).write_text("long")

    def later(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        Path(out).write_text("later")

    p = Pipeline({executor}({arguments}))
    p.add_task(Task("quick", quick, ["q.txt"]))
    p.add_task(Task("long", long, ["l.txt", "q.txt"]))
    p.add_task(Task("later", later, ["z.txt", "l.txt"]))
    exit(p.run())
"""


@pytest.mark.parametrize(
    "executor, arguments",
    [
        ("SequentialExecutor", ""),
        ("ParallelExecutor", ""),
        ("ParallelExecutor", "start_method='spawn'"),
        ("ParallelExecutor", "start_method='forkserver'"),
        ("ThreadExecutor", "2"),
    ],
)
def test_ctrl_c_keeps_finished_work_and_returns_130(tmp_path, executor, arguments):
    script = tmp_path / "pipeline.py"
    script.write_text(textwrap.dedent(SCRIPT.format(executor=executor, arguments=arguments)))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "long-started").exists():
            assert time.monotonic() < deadline, "the long task never started"
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, out
    assert "FINISHED  [1] 'quick'" in out
    assert "Interrupted" in out
    table = out[out.index("Tasks:") :]
    assert "CANCELLED" in table and "FINISHED" in table
    assert not (tmp_path / "l.txt").exists()

    # The rerun keeps quick's record: only the interrupted part runs.
    (tmp_path / "go-fast").touch()
    r = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        text=True,
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FINISHED  [1]" not in r.stdout
    assert "FINISHED  [2] 'long'" in r.stdout and "FINISHED  [3] 'later'" in r.stdout
