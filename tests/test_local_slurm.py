"""The Slurm cluster the Slurm tests run on really works, checked without depio_like.

When a Slurm executor test fails, these say whether the cluster is to blame: a batch job,
a job array and a cancelled job, each as `sacct` reports it (submitit relies on sacct).
"""

import subprocess
import time
import uuid

import pytest

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm")]

# Jobs are tiny, but a loaded CI machine and accounting lag (slurmctld sends job records to
# slurmdbd asynchronously: 0.5-5 s here) deserve patience.
TIMEOUT = 120
TERMINAL = (
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
)


def run(*args):
    proc = subprocess.run(
        list(args), capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, f"{args} exited {proc.returncode}: {proc.stderr.strip()}"
    return proc.stdout


@pytest.fixture
def sbatch(tmp_path):
    """Submit a job (extra sbatch arguments) and return its id; cancel leftovers at the end."""
    submitted = []

    def submit(*args):
        out = run(
            "sbatch",
            "--parsable",
            "--job-name",
            f"depio-like-test-{uuid.uuid4().hex[:8]}",
            "--chdir",
            str(tmp_path),
            "--output",
            str(tmp_path / "slurm-%A_%a.out"),
            "--time",
            "5",
            *args,
        )
        job_id = out.strip().split(";")[0]  # "id" or "id;cluster"
        submitted.append(job_id)
        return job_id

    yield submit
    if submitted:
        subprocess.run(
            ["scancel", *submitted], capture_output=True, timeout=60, stdin=subprocess.DEVNULL
        )


def sacct_states(job_id):
    """{job id (array tasks as "id_n"): State} from sacct, one row per job allocation."""
    out = run("sacct", "-j", job_id, "-X", "-n", "-P", "-o", "JobID,State")
    states = {}
    for line in out.splitlines():
        if line.strip():
            jid, state = line.split("|", 1)
            states[jid] = state.split()[0]  # "CANCELLED by 0" -> "CANCELLED"
    return states


def wait_until(predicate, what):
    deadline = time.monotonic() + TIMEOUT
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {TIMEOUT} s waiting for {what}")
        time.sleep(0.5)


def final_states(job_id, expected_rows):
    """Wait until sacct shows `expected_rows` rows for the job, all in a terminal state."""

    def done():
        states = sacct_states(job_id)
        ended = len(states) == expected_rows and all(s in TERMINAL for s in states.values())
        return states if ended else None

    return wait_until(done, f"sacct to report {expected_rows} finished row(s) for job {job_id}")


def test_batch_job_completes(sbatch, tmp_path):
    job = sbatch("--wrap", "echo hello from $SLURM_JOB_ID > hello.txt")
    assert final_states(job, 1) == {job: "COMPLETED"}
    assert (tmp_path / "hello.txt").read_text() == f"hello from {job}\n"


def test_array_job_completes(sbatch, tmp_path):
    job = sbatch(
        "--array", "0-2", "--wrap", "echo $SLURM_ARRAY_TASK_ID > task_$SLURM_ARRAY_TASK_ID.txt"
    )
    # A pending array is one sacct row ("id_[0-2]") until its tasks start: wait for all three.
    assert final_states(job, 3) == {f"{job}_{i}": "COMPLETED" for i in range(3)}
    for i in range(3):
        assert (tmp_path / f"task_{i}.txt").read_text() == f"{i}\n"


def test_cancelled_job_is_cancelled_in_sacct(sbatch):
    job = sbatch("--wrap", "sleep 300")
    wait_until(
        lambda: run("squeue", "-h", "-j", job, "-o", "%T").strip() == "RUNNING",
        f"job {job} to start running",
    )
    run("scancel", job)
    # The case submitit cannot detect without accounting: Slurm killed it, no result file.
    assert final_states(job, 1) == {job: "CANCELLED"}
