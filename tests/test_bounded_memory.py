"""Showing a task's output, and handing it to hooks, reads a bounded part of its log: a
task that prints a lot does not grow the driver by as much (measured: the driver's peak
RSS, with a generous bound; ``benchmarks/bench_logs.py`` prints the figures for 1 GB)."""

from __future__ import annotations

import os
import textwrap

import pytest

from conftest import run_script

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX")

MB = 1 << 20
PRINTED = 150 * MB
BOUND = 48 * MB  # what the driver may grow by while it runs the pipeline (tables, forks...)

SCRIPT = """
import os, resource
from pathlib import Path
from typing import Annotated
from depio_like import {executor}, Pipeline, Product, Task

def loud(out: Annotated[Path, Product]):
    line = b"x" * 99 + b"\\n"
    block = line * 10000  # 1 MB
    for _ in range({blocks}):
        os.write(1, block)
    os.write(2, b"the end\\n")
    out.write_text("done")

seen = []
def keep(result):
    seen.append((result.name, len(result.stdout), len(result.stderr), result.log))

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux

p = Pipeline(executor={executor}(), on_task_finished=keep)
p.add_task(Task("loud", loud, [Path("loud.txt")]))
before = peak()
rc = p.run()
print("GROWTH", peak() - before)
print("SEEN", seen)
exit(rc)
"""


@pytest.mark.parametrize("executor", ["ParallelExecutor", "SequentialExecutor"])
def test_a_task_printing_a_lot_does_not_grow_the_driver(tmp_path, executor):
    r = run_script(
        tmp_path,
        textwrap.dedent(SCRIPT.format(executor=executor, blocks=PRINTED // 10**6)),
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout
    growth = int(out[out.rindex("GROWTH ") + 7 :].split()[0])
    assert growth < BOUND, f"the driver grew by {growth / MB:.0f} MB"
    assert "earlier lines in" in out  # the shown tail says where the rest is
    assert "x" * 99 in out[-(300 * 1024) :]
    seen = out[out.rindex("SEEN ") :]
    name, n_out, n_err, log = eval(seen[5:].splitlines()[0])[0]
    assert name == "loud" and n_err == len("the end\n")
    assert MB <= n_out < MB + 300  # its last MiB, after a line saying where the rest is
    assert os.path.getsize(log + ".out") == PRINTED // 10**6 * 10**6
