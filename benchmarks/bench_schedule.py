"""Dispatch order on a skewed DAG: one long chain plus many short tasks, 2 workers.

Makespan (first task start to last task end) with first-come-first-served dispatch and
with longest-path-first (by durations recorded in the previous run), against the lower
bound max(critical path, total work / workers). Whole runs in-process on tmpfs, medians.

    .venv/bin/python benchmarks/bench_schedule.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from depio_like import ParallelExecutor, Pipeline, Task

CHAIN, CHAIN_SEC, SHORT, SHORT_SEC, WORKERS = 10, 0.2, 40, 0.05, 2


def work(name: str, sec: float):
    t0 = time.monotonic()
    time.sleep(sec)
    with open("times.log", "a") as f:
        f.write(f"{name} {t0} {time.monotonic()}\n")


def build(critical_path: bool) -> Pipeline:
    p = Pipeline(ParallelExecutor(WORKERS), quiet=True, critical_path=critical_path)
    for k in range(SHORT):  # declared first: what FCFS meets first
        p.add_task(Task(f"short{k}", work, [f"short{k}", SHORT_SEC], always=True))
    prev = None
    for k in range(CHAIN):
        prev = p.add_task(Task(f"chain{k}", work, [f"chain{k}", CHAIN_SEC], always=True,
                               depends_on=[prev] if prev else []))
    return p


def makespan(critical_path: bool) -> float:
    d = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    old = os.getcwd()
    os.chdir(d)
    try:
        assert build(critical_path).run() == 0  # records the durations
        Path("times.log").unlink()
        assert build(critical_path).run() == 0  # the measured run
        spans = [ln.split() for ln in Path("times.log").read_text().splitlines()]
        return max(float(s[2]) for s in spans) - min(float(s[1]) for s in spans)
    finally:
        os.chdir(old)
        shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    fifo, cp = [], []
    for _ in range(args.repeat):
        fifo.append(makespan(False))
        cp.append(makespan(True))
    bound = max(CHAIN * CHAIN_SEC, (CHAIN * CHAIN_SEC + SHORT * SHORT_SEC) / WORKERS)
    print(f"skewed DAG: chain of {CHAIN} x {CHAIN_SEC} s + {SHORT} x {SHORT_SEC} s, "
          f"{WORKERS} workers; median of {args.repeat}")
    print(f"  lower bound max(critical path, work / workers)  {bound:.2f} s")
    print(f"  first come, first served                        {statistics.median(fifo):.2f} s")
    print(f"  longest path first (recorded durations)         {statistics.median(cp):.2f} s")


if __name__ == "__main__":
    main()
