"""SubmitItExecutor against the real local Slurm (scripts/local-slurm.sh); see conftest's
`slurm` fixture: skipped with a reason outside CI when no Slurm is reachable."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("slurm")

EXAMPLE = """
    import sys, time
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, ParallelExecutor, SubmitItExecutor, Product, Dependency, task

    executor = SubmitItExecutor(cluster="slurm") if sys.argv[1:] == ["slurm"] else ParallelExecutor()
    pipeline = Pipeline(executor=executor)
    BLD = Path("build"); BLD.mkdir(exist_ok=True)
    if not (BLD / "input.txt").exists():
        (BLD / "input.txt").write_text("input")

    @task("datapipeline")
    def slowfunction(output: Annotated[Path, Product],
                     input: Annotated[Path, Dependency] = None, sec: int = 0):
        time.sleep(sec)
        output.write_text(f"hello after {input.read_text()!r}")

    pipeline.add_task(slowfunction(BLD / "output1.txt", input=BLD / "input.txt", sec=1))
    pipeline.add_task(slowfunction(BLD / "final1.txt", BLD / "output1.txt", sec=1))
    code = pipeline.run()
    if sys.argv[1:] == ["slurm"]:
        print("CALLS", executor.calls)
    exit(code)
"""


def script(directory, source):
    path = Path(directory) / "pipeline.py"
    path.write_text(textwrap.dedent(source))
    return path


# Bounds, not expectations: others' jobs may hold the cluster's CPUs for minutes.
BUSY_TIMEOUT = 900


def run(path, *args, timeout=BUSY_TIMEOUT):
    return subprocess.run(
        [sys.executable, str(path), *args],
        cwd=path.parent,
        text=True,
        capture_output=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def calls(out):
    line = next(ln for ln in out.splitlines() if ln.startswith("CALLS"))
    return eval(line[6:])  # a dict literal we printed ourselves


def table_rows(out):
    table = out[out.rindex("Tasks:") :].splitlines()
    return [ln.split() for ln in table[3:] if ln[:1].isdigit() and "  " in ln]


def sacct_state(job_id):
    out = subprocess.run(
        ["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", job_id],
        capture_output=True,
        text=True,
    ).stdout
    return {ln.split("|")[0]: ln.split("|")[1].split()[0] for ln in out.splitlines() if "|" in ln}


def test_readme_example_on_slurm_matches_local_and_skips_on_rerun(tmp_path):
    local, slurm = tmp_path / "local", tmp_path / "slurm"
    local.mkdir(), slurm.mkdir()
    assert run(script(local, EXAMPLE)).returncode == 0
    first = run(script(slurm, EXAMPLE), "slurm")
    assert first.returncode == 0, first.stdout + first.stderr
    for name in ("output1.txt", "final1.txt"):
        assert (slurm / "build" / name).read_text() == (local / "build" / name).read_text()
    table = first.stdout[first.stdout.index("Tasks:") :]
    assert "Slurm ID" in table and table.count("COMPLETED") == 2
    assert calls(first.stdout)["sbatch"] == 2  # the second task waits for the first

    second = run(slurm / "pipeline.py", "slurm")
    assert second.returncode == 0
    assert calls(second.stdout) == {"sbatch": 0, "squeue": 0, "sacct": 0, "scancel": 0}
    assert second.stdout.count("SKIPPED") == 2


FANOUT = """
    import time
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, SubmitItExecutor, Task, Product, Dependency

    def part(out: Annotated[Path, Product], n: int):
        Path(out).write_text(str(n * n))

    def merge(out: Annotated[Path, Product], parts: Annotated[list, Dependency]):
        Path(out).write_text(str(sum(int(Path(p).read_text()) for p in parts)))

    ex = SubmitItExecutor(cluster="slurm", tasks_per_job=10)
    p = Pipeline(ex, quiet=True)
    Path("out").mkdir(exist_ok=True)
    parts = [f"out/p{n}.txt" for n in range(200)]
    for n in range(200):
        p.add_task(Task(f"part{n}", part, [parts[n], n]))
    p.add_task(Task("merge", merge, ["out/total.txt", parts]))
    t0 = time.monotonic()
    code = p.run()
    print("WALL", round(time.monotonic() - t0, 1))
    print("CALLS", ex.calls)
    exit(code)
"""


def test_fan_out_of_200_goes_out_as_job_arrays(tmp_path):
    r = run(script(tmp_path, FANOUT))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "out" / "total.txt").read_text() == str(sum(n * n for n in range(200)))
    c = calls(r.stdout)
    assert c["sbatch"] == 2  # one array of 20 elements x 10 tasks, then the merge
    print(r.stdout)  # wall time and calls, for the record (-s)


FAILING = """
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, SubmitItExecutor, Task, Product, Dependency

    def boom(out: Annotated[Path, Product]):
        raise ValueError("boom in the job")

    def after(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        Path(out).write_text("never")

    def fine(out: Annotated[Path, Product]):
        Path(out).write_text("fine")

    p = Pipeline(SubmitItExecutor(cluster="slurm"))
    p.add_task(Task("boom", boom, ["b.txt"]))
    p.add_task(Task("after", after, ["a.txt", "b.txt"]))
    p.add_task(Task("fine", fine, ["f.txt"]))
    exit(p.run())
"""


def test_raising_task_fails_with_its_error_and_log(tmp_path):
    r = run(script(tmp_path, FAILING))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "ValueError: boom in the job" in r.stdout
    assert "_log.err" in r.stdout
    rows = {row[1]: row[2] for row in table_rows(r.stdout)}
    assert rows == {"boom": "FAILED", "after": "DEPFAILED", "fine": "FINISHED"}
    assert (tmp_path / "f.txt").read_text() == "fine"


SLOW = """
    import sys, time
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, SubmitItExecutor, Task, Product, Dependency

    def work(out: Annotated[Path, Product], n: int):
        with open("runs.log", "a") as f:
            f.write(f"{{n}}\\n")
        while not Path("release").exists():
            time.sleep(0.1)
        Path(out).write_text(str(n))

    def total(out: Annotated[Path, Product], parts: Annotated[list, Dependency]):
        Path(out).write_text(str(sum(int(Path(p).read_text()) for p in parts)))

    p = Pipeline(SubmitItExecutor(cluster="slurm", poll_interval=0.5, **{extra}))
    parts = [f"w{{n}}.txt" for n in range(4)]
    for n in range(4):
        p.add_task(Task(f"work{{n}}", work, [parts[n], n], resources={{"time": {minutes}}}))
    p.add_task(Task("total", total, ["total.txt", parts]))
    exit(p.run())
"""


def _wait_for_runs(tmp_path, n, proc, timeout=BUSY_TIMEOUT):
    deadline = time.monotonic() + timeout
    log = tmp_path / "runs.log"
    while not (log.exists() and len(log.read_text().split()) >= n):
        assert time.monotonic() < deadline, "the jobs never started"
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.2)


def _start(tmp_path, extra="{}", minutes=10):
    path = script(tmp_path, SLOW.format(extra=extra, minutes=minutes))
    return path, subprocess.Popen(
        [sys.executable, str(path)],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def test_driver_killed_mid_run_reattaches_and_runs_nothing_twice(tmp_path):
    path, proc = _start(tmp_path)
    _wait_for_runs(tmp_path, 2, proc)  # 2 CPUs: two of the four run, two wait in the queue
    proc.kill()
    proc.wait()
    journal = (tmp_path / ".depio_like" / "slurm" / "jobs.jsonl").read_text()
    assert '"submitted"' in journal  # job ids were recorded before the driver died
    (tmp_path / "release").touch()
    r = run(path)
    assert r.returncode == 0, r.stdout + r.stderr
    runs = sorted((tmp_path / "runs.log").read_text().split())
    assert runs == ["0", "1", "2", "3"]  # each task ran exactly once
    assert (tmp_path / "total.txt").read_text() == "6"


def test_ctrl_c_cancels_submitted_jobs_and_says_so(tmp_path):
    path, proc = _start(tmp_path)
    _wait_for_runs(tmp_path, 1, proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "Cancelled Slurm job(s)" in out
    ids = out.split("Cancelled Slurm job(s) ")[1].split(" (")[0].split(", ")
    deadline = time.monotonic() + 60
    while True:  # accounting lags a little behind scancel
        states = {s for i in ids for s in sacct_state(i).values()}
        if states and states <= {"CANCELLED"}:
            break
        assert time.monotonic() < deadline, states
        time.sleep(1)


def test_job_killed_by_slurm_fails_with_the_reason(tmp_path):
    path, proc = _start(tmp_path)
    _wait_for_runs(tmp_path, 1, proc)
    ours = []
    deadline = time.monotonic() + 60
    while not ours:  # this test's running jobs: their working directory is tmp_path
        lines = subprocess.run(
            ["squeue", "-h", "-r", "-t", "RUNNING", "-o", "%i|%Z"], capture_output=True, text=True
        ).stdout.splitlines()
        ours = [ln.split("|")[0] for ln in lines if ln.split("|")[-1] == str(tmp_path)]
        assert time.monotonic() < deadline, lines
        time.sleep(0.2)
    subprocess.run(["scancel", ours[0]], check=True)  # as an admin or a node failure would
    # submitit's job ignores SIGTERM; Slurm kills it KillWait (5 s here) later. Only then
    # let the other tasks finish, so the cancelled one cannot finish first.
    deadline = time.monotonic() + 60
    while subprocess.run(
        ["squeue", "-h", "-r", "-t", "RUNNING,COMPLETING", "-j", ours[0]],
        capture_output=True,
        text=True,
    ).stdout.strip():
        assert time.monotonic() < deadline
        time.sleep(0.3)
    (tmp_path / "release").touch()
    out, _ = proc.communicate(timeout=BUSY_TIMEOUT)
    assert proc.returncode == 1, out
    assert "Slurm ended the job: CANCELLED" in out
    assert "DEPFAILED" in out  # total depends on it


LIMITED = """
    import time
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, SubmitItExecutor, Task, Product, Dependency

    def forever(out: Annotated[Path, Product]):
        with open("runs.log", "a") as f:
            f.write("0\\n")
        while True:
            time.sleep(0.1)

    def after(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        Path(out).write_text("never")

    p = Pipeline(SubmitItExecutor(cluster="slurm", poll_interval=0.5))
    p.add_task(Task("work0", forever, ["w0.txt"], resources={"time": 1}))
    p.add_task(Task("after", after, ["a.txt", "w0.txt"]))
    exit(p.run())
"""


def test_time_limit_fails_with_timeout(tmp_path):
    # One job: on a cluster busy with other jobs it may wait long to start, but once it
    # runs its one-minute limit ends it (Slurm checks limits every 30 s, warns the job
    # early enough for submitit to report where the task was).
    path = script(tmp_path, LIMITED)
    proc = subprocess.Popen(
        [sys.executable, str(path)],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        _wait_for_runs(tmp_path, 1, proc)
        out, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()  # (its job is cancelled by nobody: it ends at its time limit)
    assert proc.returncode == 1, out
    assert "TimeoutError: TIMEOUT: task 'work0' ran into the job's Slurm time limit" in out
    rows = {row[1]: row[2] for row in table_rows(out)}
    assert rows == {"work0": "FAILED", "after": "DEPFAILED"}


CHAIN = """
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, SubmitItExecutor, Task, Product

    def load():
        return list(range(10))

    def square(xs):
        return [x * x for x in xs]

    def save(out: Annotated[Path, Product], xs):
        Path(out).write_text(str(sum(xs)))

    p = Pipeline(SubmitItExecutor(cluster="slurm"))
    a = p.add_task(Task("load", load))
    b = p.add_task(Task("square", square, [a]))
    p.add_task(Task("save", save, ["sum.txt", b]))
    exit(p.run())
"""


def test_value_chain_runs_in_one_job_and_writes_no_value_file(tmp_path):
    r = run(script(tmp_path, CHAIN))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "sum.txt").read_text() == "285"
    rows = table_rows(r.stdout)
    assert len(rows) == 3 and len({row[-2] for row in rows}) == 1  # one Slurm ID for all
    assert not (tmp_path / ".depio_like" / "values").exists()


RESOURCES = """
    import os
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, SubmitItExecutor, Task, Product

    def where(out: Annotated[Path, Product]):
        Path(out).write_text(os.environ.get("SLURM_CPUS_PER_TASK", "?") + " "
                             + os.environ.get("SLURM_MEM_PER_NODE", "?"))

    p = Pipeline(SubmitItExecutor(cluster="slurm"))
    p.add_task(Task("sized", where, ["w.txt"],
                    resources={"cpus": 2, "memory": "512M", "time": "00:05:00",
                               "slurm": {"comment": "depio-like-test"}}))
    exit(p.run())
"""


def test_task_resources_reach_sbatch(tmp_path):
    r = run(script(tmp_path, RESOURCES))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "w.txt").read_text() == "2 512"
    sbatch = next((tmp_path / ".depio_like" / "slurm").glob("*/*_submission.sh")).read_text()
    for flag in ("--cpus-per-task=2", "--mem=512M", "--time=5", "--comment=depio-like-test"):
        assert flag in sbatch


def test_progress_from_a_slurm_job_reaches_the_live_table(tmp_path):
    from test_live import percentages, run_progress

    code, out = run_progress(tmp_path, "SubmitItExecutor", 'cluster="slurm", poll_interval=0.5')
    assert code == 0, out
    seen = percentages(out)
    assert len(set(seen)) >= 2 and seen == sorted(seen), seen


def test_executor_swapped_from_the_command_line_with_slurm_settings(tmp_path):
    path = script(
        tmp_path,
        EXAMPLE.replace("code = pipeline.run()", "code = pipeline.main()").replace(
            'sys.argv[1:] == ["slurm"]', "False"
        ),
    )
    env = dict(os.environ, DEPIO_LIKE_SLURM_COMMENT="from-the-environment")
    r = subprocess.run(
        [sys.executable, str(path), "--executor", "slurm", "--slurm", "time=7"],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Slurm ID" in r.stdout
    sbatch = "".join(
        p.read_text() for p in (tmp_path / ".depio_like" / "slurm").glob("*/*_submission.sh")
    )
    assert "--time=7" in sbatch and "--comment=from-the-environment" in sbatch


CHUNKED = """
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, SubmitItExecutor, Task, Product

    def part(out: Annotated[Path, Product], n: int):
        Path(out).write_text(str(n))

    p = Pipeline(SubmitItExecutor(cluster="slurm", tasks_per_job=3))
    for n in range(6):
        p.add_task(Task(f"part{n}", part, [f"p{n}.txt", n], resources={"time": 2}))
    exit(p.run())
"""


def test_an_element_running_several_tasks_gets_their_time_added_up(tmp_path):
    r = run(script(tmp_path, CHUNKED))
    assert r.returncode == 0, r.stdout + r.stderr
    sbatch = next((tmp_path / ".depio_like" / "slurm").glob("*/*_submission.sh")).read_text()
    assert "--time=6" in sbatch  # 3 tasks of 2 minutes, one after the other
    assert "--array=0-1" in sbatch
