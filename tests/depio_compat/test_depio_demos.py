"""depio's demo scripts, copied beside this file and changed only in their import lines, run
as they are in fresh interpreters; their products are checked. (This file is depio_like's,
Apache-2.0; the demos are depio's, GPL-3.0: see README.md here.)"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PACKAGE = Path(__import__("depio_like").__file__).parent


def in_ci():
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on")


def demo_dir(tmp_path, *names):
    """A project directory holding copies of the named demo files (or folders)."""
    for name in names:
        src = HERE / name
        if src.is_dir():
            shutil.copytree(src, tmp_path / name)
        else:
            shutil.copy(src, tmp_path / name)
    return tmp_path


def run(cwd, *argv, timeout=240, env=None):
    full = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    full.pop("CI", None)
    return subprocess.run([*argv], cwd=cwd, env=full, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def final_statuses(out):
    """{id: status} from the last table printed in ``out``."""
    table = out[out.rindex("Tasks:"):].splitlines()[3:]
    rows = {}
    for line in table:
        cells = line.split()
        if len(cells) >= 3 and cells[0].isdigit():
            rows[int(cells[0])] = next(c for c in cells if c.isupper() and len(c) > 3)
    return rows


def test_demo_decorator_builds_every_product(tmp_path):
    # demo.py imports `src.depio.Executors` too: it runs from depio's repository root, where
    # src/depio is the package. The same layout here: src/depio_like is ours.
    d = demo_dir(tmp_path, "demo.py")
    (d / "src").mkdir()
    (d / "src" / "depio_like").symlink_to(PACKAGE, target_is_directory=True)
    (d / "build").mkdir()
    (d / "build" / "input.txt").touch()  # its first tasks read it; nothing produces it
    r = run(d, sys.executable, "demo.py")
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("output1.txt", "output2.txt", "final1.txt", "final_final1.txt",
                 "final_final2.txt", "final_final3.txt"):
        assert (d / "build" / name).read_text() == "Hallo from depio", name
    assert final_statuses(r.stdout) == {i: "FINISHED" for i in range(1, 6)}
    # BuildMode.ALWAYS: a second run runs every task again.
    (d / "build" / "final1.txt").write_text("old")
    r = run(d, sys.executable, "demo.py")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (d / "build" / "final1.txt").read_text() == "Hallo from depio"


def test_demo_decorator_without_its_input_is_one_message(tmp_path):
    # depio raises DependencyNotAvailableException here; a script gets one message, exit 2.
    d = demo_dir(tmp_path, "demo.py")
    (d / "src").mkdir()
    (d / "src" / "depio_like").symlink_to(PACKAGE, target_is_directory=True)
    r = run(d, sys.executable, "demo.py")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.startswith("error: missing dependencies"), r.stderr
    assert "build/input.txt" in r.stderr and "demo.py, line 43" in r.stderr
    assert not (d / "build" / "output1.txt").exists()


def test_demo_functional_merges_identical_calls(tmp_path):
    # Its function sleeps 50 s per call; it runs here with time.sleep scaled down 100 times
    # (the script itself is unchanged). It ends in a bare run(), as depio's did.
    d = demo_dir(tmp_path, "demo_functional.py")
    r = run(d, sys.executable, "-c",
            "import time; _sleep = time.sleep; time.sleep = lambda s: _sleep(s / 100)\n"
            "import runpy; runpy.run_path('demo_functional.py', run_name='__main__')")
    assert r.returncode == 0, r.stdout + r.stderr
    # Five add_task calls, three tasks: the three identical calls are one.
    assert final_statuses(r.stdout) == {1: "FINISHED", 2: "FINISHED", 3: "FINISHED"}
    assert "All 3 tasks done (3 ran, 0 up to date)." in r.stdout


def test_demo_slurm_runs_on_submitits_local_backend(tmp_path):
    # demo_slurm.py asks for a GPU per task and a reservation of depio's authors: it cannot
    # run on the test cluster. Its declarations (SubmitItExecutor(folder=...),
    # @task(..., slurm_gpus_per_task=1)) are accepted, and the same script runs with
    # --executor slurm-local (submitit's local backend, which ignores Slurm settings).
    d = demo_dir(tmp_path, "demo_slurm.py")
    (d / "build").mkdir()
    (d / "build" / "input.txt").touch()
    exe = Path(sys.executable).with_name("depio-like")
    r = run(d, str(exe), "run", "demo_slurm.py", "--executor", "slurm-local")
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("output1.txt", "output2.txt", "final1.txt"):
        assert (d / "build" / name).read_text() == "Hallo from depio", name


def test_demo_slurm_tasks_carry_their_slurm_parameters(tmp_path):
    d = demo_dir(tmp_path, "demo_slurm.py")
    (d / "build").mkdir()
    (d / "build" / "input.txt").touch()
    probe = (
        "import runpy, depio_like\n"
        "seen = []\n"
        "run = depio_like.Pipeline.run\n"
        "def record(self, **kw):\n"
        "    seen.extend((t.name, t.slurm_parameters) for t in self.tasks)\n"
        "    return 0\n"
        "depio_like.Pipeline.run = record\n"
        "try:\n"
        "    runpy.run_path('demo_slurm.py', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('SEEN', seen)\n")
    r = run(d, sys.executable, "-c", probe)
    assert r.returncode == 0, r.stdout + r.stderr
    seen = eval(r.stdout.split("SEEN ", 1)[1])  # a list literal printed above
    assert seen == [("datapipeline", {"slurm_gpus_per_task": 1})] * 3


def require_module(name, why):
    try:
        __import__(name)
    except ImportError:
        if in_ci():
            pytest.fail(f"{name} must be installed in CI ({why})", pytrace=False)
        pytest.skip(f"{name} is not installed ({why})")


def test_demo_hydra_single_run_and_sweep(tmp_path):
    from test_integrations import require_extras  # installs hydra-core if it can

    require_extras()
    d = demo_dir(tmp_path, "demo_hydra.py", "config")
    r = run(d, sys.executable, "demo_hydra.py")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "name: ours" in (d / "build" / "final_ours.txt").read_text()
    # A sweep over the three attacks: the first task is the same call in each (its cfg is
    # IgnoredForEq), so it is one task; the others are one per attack.
    r = run(d, sys.executable, "demo_hydra.py", "--multirun", "attack=ours,zhang,dombrowski")
    assert r.returncode == 0, r.stdout + r.stderr
    statuses = final_statuses(r.stdout)
    assert len(statuses) == 7, r.stdout
    for attack in ("ours", "zhang", "dombrowski"):
        assert f"name: {attack}" in (d / "build" / f"final_{attack}.txt").read_text()


def test_hook_demo_resolves_arguments(tmp_path):
    require_module("icecream", "depio's hook_demo.py imports it; it is in the test extras")
    d = demo_dir(tmp_path, "hook_demo.py")
    r = run(d, sys.executable, "hook_demo.py")
    assert r.returncode == 0, r.stdout + r.stderr
    # Its arg_resolver filled the paths left as None: both files are written.
    assert (d / "build" / "input.txt").read_text() == "Hallo from depio"
    assert (d / "build" / "output.txt").read_text() == "Hallo from depio"
    assert final_statuses(r.stdout) == {1: "FINISHED", 2: "FINISHED"}


def default_partition():
    out = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True,
                         timeout=30).stdout.split()
    return next((p.rstrip("*") for p in out if p.endswith("*")), out[0] if out else "debug")


@pytest.mark.slurm
@pytest.mark.usefixtures("slurm")
def test_demo_slurm_submitit_runs_on_slurm_with_its_parameters(tmp_path):
    # A depio Slurm script: internal_executor=submitit.AutoExecutor(...) with slurm_partition,
    # slurm_mem, gpus_per_node and timeout_min, unchanged apart from its imports.
    d = demo_dir(tmp_path, "demo_slurm_submitit.py")
    partition = default_partition()
    r = run(d, sys.executable, "demo_slurm_submitit.py", timeout=600,
            env={"DEMO_SLURM_PARTITION": partition})
    assert r.returncode == 0, r.stdout + r.stderr
    jobs = set()
    for name in ("output1.txt", "output2.txt", "final1.txt"):
        text = (d / "build" / name).read_text()
        assert text.startswith("Hallo from depio on node ") and "in job None" not in text, text
        jobs.add(text.rsplit(" ", 1)[1].split("_")[0])
    # Slurm received the script's settings: its partition and 300 MB of memory per job.
    # (Accounting lags: an array's rows settle a few seconds after the jobs end.)
    deadline = time.monotonic() + 120
    while True:
        acct = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "Partition,ReqMem,Timelimit",
                               "-j", ",".join(sorted(jobs))],
                              capture_output=True, text=True, timeout=30).stdout.split()
        if (acct and all(line.split("|")[0] for line in acct)) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert acct, f"sacct knows nothing of jobs {jobs}"
    for line in acct:
        part, mem, limit = line.split("|")
        assert part == partition and mem.startswith("300M") and limit == "00:10:00", acct
