import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from depio_like import ParallelExecutor, Pipeline, SequentialExecutor

# A test suite started in the background by a shell without job control (``cmd &`` in a
# script) has Ctrl-C ignored, and every process it starts inherits that: the tests that
# press Ctrl-C on a pipeline script would wait on a run that never hears it. Ctrl-C is
# given back its default here, which the scripts these tests start inherit. Only in the
# suite's own process: a worker that imports this module (unpickling a test's function; in
# a Dask worker, in a thread, where signal.signal raises) ignores Ctrl-C on purpose.
_SUITE_PID = os.environ.setdefault("DEPIO_LIKE_TEST_SUITE_PID", str(os.getpid()))
if str(os.getpid()) == _SUITE_PID and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

EXECUTORS = {
    "sequential": SequentialExecutor,
    "parallel": lambda: ParallelExecutor(max_workers=2),
}


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A fresh project directory, made the working directory."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(params=sorted(EXECUTORS))
def executor_factory(request):
    """Each test using it runs once per local executor."""
    return EXECUTORS[request.param]


def new_pipeline(executor=None, **kwargs):
    """A pipeline whose output goes to a buffer (``pipeline.stream.getvalue()``)."""
    kwargs.setdefault("stream", io.StringIO())
    return Pipeline(executor=executor or SequentialExecutor(), **kwargs)


def log_call(name):
    """Append ``name`` to calls.log in the working directory: which task bodies ran."""
    with open("calls.log", "a") as f:
        f.write(name + "\n")


def calls():
    p = Path("calls.log")
    lines = p.read_text().split() if p.exists() else []
    p.unlink(missing_ok=True)
    return lines


def run_script(directory, source, *args, timeout=120, **popen):
    """Write ``source`` to directory/pipeline.py and run it in a fresh interpreter."""
    script = Path(directory) / "pipeline.py"
    script.write_text(textwrap.dedent(source))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("CI", None)
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        **popen,
    )


# ---------------------------------------------------------------- Slurm
# Tests marked `slurm` (and using the `slurm` fixture) talk to a real Slurm cluster. CI
# starts a single-node one with scripts/local-slurm.sh and sets DEPIO_LIKE_SLURM=1.

SLURM_USABLE_STATES = {"idle", "mixed", "allocated", "completing"}


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slurm: needs a reachable Slurm cluster with accounting (the `slurm` fixture)"
    )


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _run_slurm_command(*args):
    """(returncode, output) of a Slurm client command; (None, reason) if it cannot run."""
    try:
        proc = subprocess.run(
            list(args), capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        return None, f"`{args[0]}` is not installed"
    except subprocess.TimeoutExpired:
        return None, f"`{' '.join(args)}` did not answer within 30 s"
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def slurm_unreachable_reason():
    """None if Slurm can run jobs and account for them here, else why not."""
    rc, out = _run_slurm_command("sinfo", "-h", "-o", "%T")
    if rc is None:
        return out
    if rc != 0:
        return f"`sinfo` failed (exit {rc}): {out}"
    states = out.split()
    if not SLURM_USABLE_STATES.intersection(states):
        return f"no node is idle, mixed or allocated (sinfo states: {states or 'none'})"
    # submitit learns that Slurm killed a job only through sacct: accounting is required.
    rc, out = _run_slurm_command("sacct", "-n", "-X", "-S", "now")
    if rc is None:
        return out
    if rc != 0:
        return f"`sacct` failed (exit {rc}): {out}"
    return None


@pytest.fixture(scope="session")
def slurm():
    """A reachable Slurm cluster with accounting, or skip (fail in CI)."""
    reason = slurm_unreachable_reason()
    if reason is None:
        return
    if _env_flag("CI") or _env_flag("DEPIO_LIKE_SLURM"):
        pytest.fail(
            f"Slurm tests must run in CI (or when DEPIO_LIKE_SLURM=1), but Slurm is "
            f"not usable: {reason}. Start it with `bash scripts/local-slurm.sh start` "
            f"and check with `bash scripts/local-slurm.sh status`.",
            pytrace=False,
        )
    pytest.skip(
        f"no Slurm reachable: start it with `bash scripts/local-slurm.sh start` "
        f"(root, Debian) [{reason}]"
    )
