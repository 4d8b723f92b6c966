import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from depio_like import ParallelExecutor, Pipeline, SequentialExecutor

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
    return subprocess.run([sys.executable, str(script), *args], cwd=directory, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          **popen)
