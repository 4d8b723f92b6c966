"""What reporting progress costs inside a task: 100,000 ``advance()`` calls, against the
same loop without them, in a worker process (the path that writes files) and in the
driver's own process. Medians of several runs.

    .venv/bin/python benchmarks/bench_progress.py
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time

from depio_like import ParallelExecutor, Pipeline, SequentialExecutor, Task, current_progress

N = 100_000
RESULTS: dict[str, float] = {}


def loop(with_progress: bool, out: str) -> None:
    progress = current_progress()
    if with_progress:
        progress.update(total=N)
    t0 = time.perf_counter()
    if with_progress:
        for _ in range(N):
            progress.advance()
    else:
        for _ in range(N):
            pass
    with open(out, "w") as f:
        f.write(repr(time.perf_counter() - t0))


def measure(executor, with_progress: bool) -> float:
    d = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    old = os.getcwd()
    os.chdir(d)
    try:
        p = Pipeline(executor, quiet=True)
        p.add_task(Task("loop", loop, [with_progress, os.path.join(d, "t")], always=True))
        assert p.run() == 0
        with open(os.path.join(d, "t")) as f:
            return float(f.read())
    finally:
        os.chdir(old)
        shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    rows = []
    for name, make in (("worker process (ParallelExecutor)", lambda: ParallelExecutor(1)),
                       ("driver process (SequentialExecutor)", SequentialExecutor)):
        base, adv = [], []
        for _ in range(7):
            base.append(measure(make(), False))
            adv.append(measure(make(), True))
        b, a = statistics.median(base), statistics.median(adv)
        rows.append((name, b * 1000, a * 1000, (a - b) / N * 1e9))
    print(f"{N:,} advance() calls (median of 7)")
    for name, b, a, per in rows:
        print(f"  {name:38s} empty loop {b:7.1f} ms   with advance() {a:7.1f} ms   "
              f"= {per:5.0f} ns per call")


if __name__ == "__main__":
    main()
