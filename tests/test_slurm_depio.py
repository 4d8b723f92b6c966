"""depio's way of configuring Slurm (submitit's names, a ready AutoExecutor, per-task
settings) and automatic grouping of short tasks, against the real local Slurm
(scripts/local-slurm.sh); see conftest's `slurm` fixture."""

import subprocess
import sys
import time

import pytest
from test_slurm import calls, run, script

pytestmark = pytest.mark.usefixtures("slurm")

# As depio's README and demo_slurm.py write it (imports aside): a submitit AutoExecutor
# configured with update_parameters, handed over as internal_executor.
DEPIO = """
    import os, pathlib, time
    from typing import Annotated
    import submitit
    from depio_like import Pipeline, SubmitItExecutor, task, Product, Dependency

    BLD = pathlib.Path("build")
    BLD.mkdir(exist_ok=True)
    SLURM = pathlib.Path("slurm")
    SLURM.mkdir(exist_ok=True)
    if not (BLD / "input.txt").exists():
        (BLD / "input.txt").write_text("in")

    executor = submitit.AutoExecutor(folder=SLURM)
    executor.update_parameters(slurm_partition="debug", slurm_mem="600M", gpus_per_node={gpus},
                               timeout_min=5, cpus_per_task=1)
    defaultpipeline = Pipeline(depioExecutor=SubmitItExecutor(internal_executor=executor))

    @task("datapipeline")
    def slowfunction(output: Annotated[pathlib.Path, Product],
                     input: Annotated[pathlib.Path, Dependency] = None, sec: int = 0):
        time.sleep(sec)
        with open(output, "w") as f:
            f.write(os.environ.get("SLURM_JOB_PARTITION", "?") + " "
                    + os.environ.get("SLURM_MEM_PER_NODE", "?"))

    defaultpipeline.add_task(slowfunction(BLD / "output1.txt", input=BLD / "input.txt", sec=1))
    defaultpipeline.add_task(slowfunction(BLD / "final1.txt", BLD / "output1.txt", sec=1))
    exit(defaultpipeline.run())
"""


def submissions(folder):
    return sorted(p.read_text() for p in folder.glob("*/*_submission.sh"))


def test_depio_script_with_an_autoexecutor_runs_on_slurm(tmp_path):
    r = run(script(tmp_path, DEPIO.replace("{gpus}", "0")))
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("output1.txt", "final1.txt"):
        assert (tmp_path / "build" / name).read_text() == "debug 600"
    sbatch = submissions(tmp_path / "slurm")  # the AutoExecutor's folder
    assert len(sbatch) == 2
    for text in sbatch:
        assert "--partition=debug" in text and "--mem=600M" in text and "--time=5" in text
        assert "gpu" not in text  # gpus_per_node=0 asks for none: left out


def test_asking_for_gpus_where_there_are_none_fails_before_submitting(tmp_path):
    r = run(script(tmp_path, DEPIO.replace("{gpus}", "1")))
    assert r.returncode == 1, r.stdout + r.stderr
    assert (
        "the job asks for GPUs (gpus_per_node=1) but no node of partition 'debug' has any"
    ) in r.stdout
    assert "DEPFAILED" in r.stdout  # final1 needs output1
    assert submissions(tmp_path / "slurm") == []  # nothing went to sbatch


SETTINGS = """
    import os
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, SubmitItExecutor, Task, Product

    def where(out: Annotated[Path, Product]):
        Path(out).write_text(os.environ.get("SLURM_MEM_PER_NODE", "?") + " "
                             + os.environ.get("SLURM_JOB_NAME", "?"))

    p = Pipeline(SubmitItExecutor(cluster="slurm"))
    p.add_task(Task("sized", where, ["w.txt"],
                    slurm_parameters={"slurm_mem": "700M", "timeout_min": 4}))
    p.add_task(Task("plain", where, ["v.txt"]))
    exit(p.main())
"""


def test_submitit_names_from_the_command_line_and_per_task(tmp_path):
    path = script(tmp_path, SETTINGS)
    r = subprocess.run(
        [
            sys.executable,
            str(path),
            "--executor",
            "slurm",
            "--slurm",
            "mem_gb=1",
            "--slurm",
            "slurm_comment=from-cli",
            "--slurm",
            "name=mine",
        ],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    sized, plain = (tmp_path / "w.txt").read_text(), (tmp_path / "v.txt").read_text()
    assert sized.startswith("700 mine-") and plain.startswith("1024 mine-")
    sbatch = "\n".join(submissions(tmp_path / ".depio_like" / "slurm"))
    assert "--mem=700M" in sbatch and "--time=4" in sbatch  # the task's own
    assert "--mem=1GB" in sbatch and "--time=60" in sbatch  # the command line's, the default
    assert sbatch.count("--comment=from-cli") == 2
    bad = subprocess.run(
        [sys.executable, str(path), "--executor", "slurm", "--slurm", "slurm_partiton=debug"],
        cwd=tmp_path,
        text=True,
        capture_output=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr, bad.stderr
    assert (
        "unknown sbatch setting(s) ['slurm_partiton'] ('slurm_partiton': did you mean "
        "'slurm_partition'?)" in bad.stderr
    )


BATCHED = """
    import sys
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, SubmitItExecutor, Task, Product, Dependency

    def part(out: Annotated[Path, Product], n: int):
        Path(out).write_text(str(n))

    def merge(out: Annotated[Path, Product], parts: Annotated[list, Dependency]):
        Path(out).write_text(str(sum(int(Path(p).read_text()) for p in parts)))

    ex = SubmitItExecutor(cluster="slurm", array_parallelism=4)
    p = Pipeline(ex, quiet=True)
    parts = [f"p{n}.txt" for n in range(60)]
    for n in range(60):
        p.add_task(Task(f"part{n}", part, [parts[n], n]))
    p.add_task(Task("merge", merge, ["total.txt", parts]))
    code = p.run(force="--force" in sys.argv)
    print("CALLS", ex.calls)
    exit(code)
"""


def test_short_tasks_are_grouped_into_elements_without_being_told(tmp_path):
    path = script(tmp_path, BATCHED)
    results = lambda: list((tmp_path / ".depio_like" / "slurm").glob("*/*_result.pkl"))  # noqa: E731
    first = run(path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert (tmp_path / "total.txt").read_text() == str(sum(range(60)))
    assert calls(first.stdout)["sbatch"] == 2  # one array for the parts, then the merge
    # No durations yet: at most array_parallelism * 4 = 16 elements for the 60 parts.
    elements_first = len(results()) - 1
    assert 1 < elements_first <= 16
    # Now every part is known to take milliseconds: one element runs them all.
    second = run(path, "--force")
    assert second.returncode == 0, second.stdout + second.stderr
    assert calls(second.stdout)["sbatch"] == 2
    assert len(results()) - elements_first - 1 == 2


def test_max_jobs_pending_holds_the_rest_in_the_driver(tmp_path):
    from test_slurm import BUSY_TIMEOUT, _start

    path, proc = _start(tmp_path, extra="{'max_jobs_pending': 1}")
    seen: set[str] = set()
    most_pending = 0
    deadline = time.monotonic() + BUSY_TIMEOUT
    try:
        # 4 tasks that wait for "release", 2 CPUs: two run, one waits in Slurm's queue
        # and the fourth in the driver (without the limit, two would wait in the queue).
        while True:
            lines = subprocess.run(
                ["squeue", "-h", "-r", "-o", "%i|%T|%Z"], text=True, capture_output=True
            ).stdout.splitlines()
            ours = [ln.split("|") for ln in lines if ln.split("|")[-1] == str(tmp_path)]
            seen |= {jid for jid, _, _ in ours}
            most_pending = max(most_pending, sum(st == "PENDING" for _, st, _ in ours))
            running = sum(st == "RUNNING" for _, st, _ in ours)
            if running == 2 and len(seen) >= 3:
                break
            assert time.monotonic() < deadline and proc.poll() is None, ours
            time.sleep(0.3)
        for _ in range(10):  # a little longer: nothing more goes out
            lines = subprocess.run(
                ["squeue", "-h", "-r", "-o", "%i|%T|%Z"], text=True, capture_output=True
            ).stdout.splitlines()
            ours = [ln.split("|") for ln in lines if ln.split("|")[-1] == str(tmp_path)]
            seen |= {jid for jid, _, _ in ours}
            most_pending = max(most_pending, sum(st == "PENDING" for _, st, _ in ours))
            time.sleep(0.3)
        assert most_pending <= 1 and len(seen) == 3, (most_pending, seen)
        (tmp_path / "release").touch()
        out, _ = proc.communicate(timeout=BUSY_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            (tmp_path / "release").touch()  # its jobs end by themselves
    assert proc.returncode == 0, out
    assert (tmp_path / "total.txt").read_text() == "6"
