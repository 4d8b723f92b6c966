"""Every script in examples/ runs as a user would run it, and does what it says."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ALL = {
    "decorator.py",
    "functional.py",
    "merge.py",
    "slurm.py",
    "montecarlo_pi.py",
    "parallel_sleeps.py",
    "objects.py",
    "hydra_sweep.py",
    "optuna_quadratic.py",
    "dask.py",
    "awflow_pi.py",
}  # (dask.py: tests/test_dask.py)


def run_example(name, cwd, *args):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, str(cwd / name), *args],
        cwd=cwd,
        env=env,
        text=True,
        capture_output=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def table_rows(out):
    table = out[out.rindex("Tasks:") :].splitlines()
    return [ln.split() for ln in table[3:] if ln[:1].isdigit() and "  " in ln]


@pytest.fixture
def workdir(tmp_path):
    for script in EXAMPLES.glob("*.py"):
        shutil.copy(script, tmp_path)
    return tmp_path


def test_every_example_is_covered():
    assert {p.name for p in EXAMPLES.glob("*.py")} == ALL


@pytest.mark.parametrize("name", ["decorator.py", "functional.py", "slurm.py"])
def test_path_examples_run_then_skip_then_explain(workdir, name, request):
    if name == "slurm.py" and shutil.which("sbatch"):
        # With sbatch on the PATH the example goes to Slurm, which must then be up (the
        # `slurm` fixture skips outside CI if it is not); without it, submitit runs jobs
        # as local processes and the example runs anywhere.
        request.getfixturevalue("slurm")
    first = run_example(name, workdir)
    assert first.returncode == 0, first.stdout + first.stderr
    assert [r[2] for r in table_rows(first.stdout)] == ["FINISHED", "FINISHED"]
    assert "A function that is reading" in first.stdout  # its output, shown as a block
    second = run_example(name, workdir)
    assert second.returncode == 0
    assert [r[2] for r in table_rows(second.stdout)] == ["SKIPPED", "SKIPPED"]
    assert "A function that is reading" not in second.stdout
    (workdir / "build" / "input.txt").write_text("edited\n")
    explained = run_example(name, workdir, "--explain")
    lines = [ln for ln in explained.stdout.splitlines() if ln.startswith("RUN ")]
    names = (
        ("functionaldemo1", "functionaldemo2")
        if name == "functional.py"
        else ("datapipeline", "datapipeline")
    )
    out1 = "build/slurm_output1.txt" if name == "slurm.py" else "build/output1.txt"
    assert lines == [
        f"RUN       [1] '{names[0]}': input changed: build/input.txt",
        f"RUN       [2] '{names[1]}': input changed: {out1}",
    ]


def test_merge_example_has_three_tasks(workdir):
    r = run_example("merge.py", workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = table_rows(r.stdout)
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("1", "functionaldemo1", "FINISHED"),
        ("2", "functionaldemo2", "FINISHED"),
        ("3", "functionaldemo3", "FINISHED"),
    ]
    assert rows[1][3] == "1" and rows[2][3] == "2"
    assert r.stdout.count("doing something for 1 seconds") == 1


def test_montecarlo_estimates_pi_and_skips_on_rerun(workdir):
    r = run_example("montecarlo_pi.py", workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert abs(float((workdir / "build" / "pi" / "pi.txt").read_text()) - 3.14159) < 0.01
    assert len(table_rows(r.stdout)) == 17
    again = run_example("montecarlo_pi.py", workdir)
    assert {row[2] for row in table_rows(again.stdout)} == {"SKIPPED"}


def test_parallel_sleeps_overlap_and_outputs_do_not_interleave(workdir):
    r = run_example("parallel_sleeps.py", workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    # Each task's three lines come together, after the block header: never mixed.
    blocks = re.findall(r"--- output of \[\d\] '(\w+)' ---\n((?:\w+: line \d\n)+)", r.stdout)
    assert sorted(b[0] for b in blocks) == ["left", "right"]
    for name, text in blocks:
        assert text == "".join(f"{name}: line {i}\n" for i in range(3))
    # Both ran at once: 2 x 2 s of sleep in less than the 4 s it takes one after the other.
    assert float(re.search(r"took ([\d.]+) s", r.stdout).group(1)) < 3.9


def test_objects_example_passes_values_and_reruns_on_change(workdir):
    r = run_example("objects.py", workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    summary = workdir / "build" / "data" / "summary.txt"
    assert summary.read_text() == "a: n=3 mean=1.033\nb: n=2 mean=7.300\n"
    again = run_example("objects.py", workdir)
    assert {row[2] for row in table_rows(again.stdout)} == {"SKIPPED"}
    (workdir / "build" / "data" / "measurements.csv").write_text("sensor,value\nc,2.0\n")
    third = run_example("objects.py", workdir)
    assert [row[2] for row in table_rows(third.stdout)] == ["FINISHED"] * 3
    assert summary.read_text() == "c: n=1 mean=2.000\n"


def test_hydra_sweep_example_shares_prepare_and_labels_variants(workdir):
    from test_integrations import require_extras

    require_extras()  # hydra-core: installed if missing; skipped outside CI if it cannot be
    shutil.copytree(EXAMPLES / "conf", workdir / "conf")
    r = run_example("hydra_sweep.py", workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = table_rows(r.stdout)
    assert [(row[1], row[2], row[-1]) for row in rows[:5]] == [
        ("prepare", "FINISHED", "all"),
        ("train", "FINISHED", "model=small,lr=0.1"),
        ("train", "FINISHED", "model=small,lr=0.01"),
        ("train", "FINISHED", "model=large,lr=0.1"),
        ("train", "FINISHED", "model=large,lr=0.01"),
    ]
    assert rows[5][1:3] == ["compare", "FINISHED"]
    assert r.stdout.count("preparing the data") == 1
    assert "best: model=large lr=0.1" in r.stdout
    again = run_example("hydra_sweep.py", workdir)
    assert {row[2] for row in table_rows(again.stdout)} == {"SKIPPED"}


def test_optuna_example_runs_four_generations_and_finds_the_minimum(workdir):
    from test_integrations import require_extras

    require_extras()  # optuna: installed if missing; skipped outside CI if it cannot be
    r = run_example("optuna_quadratic.py", workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("Tasks:") == 4
    for g in range(1, 5):
        assert f"optuna: generation {g}/4 told ({5 * g}/20 trials)" in r.stdout
    best = re.search(r"best: x = ([-\d.]+), \(x - 2\)\^2 = ([\d.]+) \(trial \d+ of 20\)", r.stdout)
    assert best and float(best.group(2)) < 0.5 and abs(float(best.group(1)) - 2) < 0.71
    assert not (workdir / ".depio_like" / "optuna").exists()


# -- awflow's README example (issue 17) ------------------------------------------------------


def awflow_products(directory):
    return {p.name: p.read_text() for p in sorted(directory.glob("pi*.txt"))}


def statuses(out):
    return [(r[0], r[1], r[2]) for r in table_rows(out)]


def test_awflow_pi_prunes_finished_estimates_on_a_rerun(workdir):
    first = run_example("awflow_pi.py", workdir)
    assert first.returncode == 0, first.stdout + first.stderr
    assert [r[2] for r in statuses(first.stdout)] == ["FINISHED"] * 11
    assert "Executing task 10 / 10." in first.stdout
    made = awflow_products(workdir)
    assert len(made) == 11 and 3.0 < float(made["pi.txt"]) < 3.3

    again = run_example("awflow_pi.py", workdir)
    assert again.returncode == 0
    assert [r[2] for r in statuses(again.stdout)] == ["SKIPPED"] * 11
    assert "Executing task" not in again.stdout

    (workdir / "pi-3.txt").unlink()  # one estimate undone: it, then the merge, run again
    third = run_example("awflow_pi.py", workdir, "--explain")
    assert third.returncode == 0, third.stdout + third.stderr
    ran = [(r[0], r[1]) for r in statuses(third.stdout) if r[2] == "FINISHED"]
    assert ran == [("4", "estimate"), ("11", "merge")]
    assert (
        "RUN       [4] 'estimate': postcondition does not hold: "
        "'lambda i: os.path.exists(f\"pi-{i}.txt\")'" in third.stdout
    )
    assert awflow_products(workdir) == made


WITH_A_THREAD = """
import runpy, sys, threading, time
threading.Thread(target=time.sleep, args=(120,), daemon=True).start()  # the driver's own
sys.argv = ["awflow_pi.py", "--executor", sys.argv[1]]
runpy.run_path("awflow_pi.py", run_name="__main__")
"""


@pytest.mark.parametrize("thread", [False, True], ids=["plain", "driver-thread"])
def test_awflow_pi_makes_the_same_products_under_every_local_executor(tmp_path, thread):
    """Threads, and worker processes started each way, give the same files; with a thread
    of the driver's own running, spawn and forkserver never fork it (fork does, and Python
    3.12+ says so: the control that the check can see the warning)."""
    results = {}
    for executor in ("sequential", "thread", "parallel", "spawn", "forkserver"):
        d = tmp_path / executor
        d.mkdir()
        shutil.copy(EXAMPLES / "awflow_pi.py", d)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-W", "always::DeprecationWarning"]
        cmd += (
            ["-c", WITH_A_THREAD, executor] if thread else ["awflow_pi.py", "--executor", executor]
        )
        proc = subprocess.run(
            cmd,
            cwd=d,
            env=env,
            text=True,
            capture_output=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 0, executor + proc.stdout + proc.stderr
        assert [r[2] for r in statuses(proc.stdout)] == ["FINISHED"] * 11, executor
        assert "Executing task 7 / 10." in proc.stdout, executor  # the output came back
        forked = "multi-threaded, use of fork()" in proc.stderr
        if executor == "parallel" and thread and sys.version_info >= (3, 12):
            assert forked, proc.stderr
        elif executor != "parallel":
            assert not forked, executor + proc.stderr
        results[executor] = awflow_products(d)
    assert len(results["sequential"]) == 11
    for executor, made in results.items():
        assert made == results["sequential"], executor


def test_awflow_pi_on_slurm_unchanged_but_the_executor(workdir, slurm):
    first = run_example("awflow_pi.py", workdir, "--executor", "slurm")
    assert first.returncode == 0, first.stdout + first.stderr
    assert [r[2] for r in statuses(first.stdout)] == ["FINISHED"] * 11
    made = awflow_products(workdir)
    assert len(made) == 11
    again = run_example("awflow_pi.py", workdir, "--executor", "slurm")
    assert again.returncode == 0
    assert [r[2] for r in statuses(again.stdout)] == ["SKIPPED"] * 11
    (workdir / "pi-3.txt").unlink()
    third = run_example("awflow_pi.py", workdir, "--executor", "slurm")
    assert third.returncode == 0, third.stdout + third.stderr
    assert [(r[0], r[1]) for r in statuses(third.stdout) if r[2] == "FINISHED"] == [
        ("4", "estimate"),
        ("11", "merge"),
    ]
    assert awflow_products(workdir) == made
