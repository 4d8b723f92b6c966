"""DaskExecutor: a 100 MB array handed between tasks on two workers, and 1,000 tiny tasks.

1. A 100 MB float64 array made by a task on one Dask worker and taken by a task on another
   (``workers=`` restrictions): as a value (Dask moves it worker to worker) against the
   same through a file (``np.save`` on tmpfs, ``np.load`` on the other worker), with plain
   Dask futures doing the value handoff as the floor. The handoff is the time from the
   producer's ``return`` (or the end of its ``np.save``) to the consumer's first line after
   it has the array (``time.monotonic`` is system-wide on Linux). Also the whole run.
2. 1,000 tiny tasks (``return i * 2``, no files): ``DaskExecutor`` against
   ``ParallelExecutor`` (the same two cores) and against plain ``client.map`` of the same
   function on the same cluster (our overhead on top of Dask). Each run from a fresh state
   directory, so every task runs.

Both use one LocalCluster of two single-threaded worker processes, started once (its start
and close are timed apart). Variants alternate within each repetition; medians printed.

    .venv/bin/python benchmarks/bench_dask.py [--repeat 7] [--mb 100] [--tasks 1000]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import numpy as np
from tabulate import tabulate

from depio_like import (DaskExecutor, Dependency, ParallelExecutor, Pipeline, Product,
                        Task)

TMP = "/dev/shm" if os.path.isdir("/dev/shm") else None


def _mark(name: str) -> None:
    now = time.monotonic()
    try:  # the first one counts (the second consumer gets the array already moved)
        with open(f"mark-{name}", "x") as f:
            f.write(repr(now))
    except FileExistsError:
        pass


def make(mb: int):
    a = np.arange(mb * 1024 * 1024 // 8, dtype=np.float64)
    _mark("returned")
    return a


def take_to(out: Annotated[Path, Product], a):
    _mark("received")
    assert a[-1] == len(a) - 1
    Path(out).write_text("ok")


def make_file(out: Annotated[Path, Product], mb: int):
    a = np.arange(mb * 1024 * 1024 // 8, dtype=np.float64)
    np.save(out, a)
    _mark("returned")


def take_file(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
    a = np.load(src)
    _mark("received")
    assert a[-1] == len(a) - 1
    Path(out).write_text("ok")


def plain_make(mb: int, cwd: str):
    os.chdir(cwd)
    return make(mb)


def plain_take(a, cwd: str):
    os.chdir(cwd)
    _mark("received")
    return float(a[-1])


def tiny(i: int) -> int:
    return i * 2


class Bench:
    def __init__(self, cluster, client) -> None:
        self.cluster, self.client = cluster, client
        self.workers = sorted(client.scheduler_info()["workers"])

    def _in_tmp(self, fn):
        cwd = Path(tempfile.mkdtemp(dir=TMP))
        old = os.getcwd()
        os.chdir(cwd)
        try:
            t0 = time.perf_counter()
            fn(cwd)
            wall = time.perf_counter() - t0
            marks = {m: float((cwd / f"mark-{m}").read_text()) for m in ("returned", "received")
                     if (cwd / f"mark-{m}").exists()}
            return wall, marks
        finally:
            os.chdir(old)
            shutil.rmtree(cwd, ignore_errors=True)

    def placed(self, name_to_worker):
        return DaskExecutor(cluster=self.cluster, submit_options=lambda t: {
            "workers": [self.workers[name_to_worker[t.name]]]})

    # -- 1. a big value between two workers ----------------------------------------------
    def value(self, mb: int):
        def run(cwd):
            p = Pipeline(self.placed({"make": 0, "take": 1, "other": 1}), quiet=True)
            m = p.add_task(Task("make", make, [mb]))
            p.add_task(Task("take", take_to, ["t.txt", m]))
            p.add_task(Task("other", take_to, ["o.txt", m]))  # two consumers: not a chain
            assert p.run() == 0
        return self._in_tmp(run)

    def file(self, mb: int):
        def run(cwd):
            p = Pipeline(self.placed({"make": 0, "take": 1}), quiet=True)
            p.add_task(Task("make", make_file, ["a.npy", mb]))
            p.add_task(Task("take", take_file, ["t.txt", "a.npy"]))
            assert p.run() == 0
        return self._in_tmp(run)

    def plain_value(self, mb: int):
        def run(cwd):
            a = self.client.submit(plain_make, mb, str(cwd), workers=[self.workers[0]], pure=False)
            b = self.client.submit(plain_take, a, str(cwd), workers=[self.workers[1]], pure=False)
            assert b.result() == mb * 1024 * 1024 // 8 - 1
        return self._in_tmp(run)

    # -- 2. many tiny tasks -------------------------------------------------------------
    def tiny_tasks(self, executor, n: int):
        def run(cwd):
            p = Pipeline(executor, quiet=True)
            for i in range(n):
                p.add_task(Task("tiny", tiny, [i]))
            assert p.run() == 0
        return self._in_tmp(run)[0]

    def tiny_plain(self, n: int):
        t0 = time.perf_counter()
        got = self.client.gather(self.client.map(tiny, range(n), pure=False))
        assert got[-1] == 2 * (n - 1)
        return time.perf_counter() - t0


def _alternate(variants: dict, repeat: int) -> dict[str, list]:
    names = list(variants)
    out: dict[str, list] = {n: [] for n in names}
    for r in range(repeat):
        for n in names[r % len(names):] + names[:r % len(names)]:
            out[n].append(variants[n]())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--tasks", type=int, default=1000)
    args = ap.parse_args()
    import dask
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
    client = Client(cluster)
    started = time.perf_counter() - t0
    bench = Bench(cluster, client)
    env = f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, tmpfs, {args.repeat} runs each, medians"

    got = _alternate({"value": lambda: bench.value(args.mb), "file": lambda: bench.file(args.mb),
                      "plain": lambda: bench.plain_value(args.mb)}, args.repeat)
    labels = {"value": "DaskExecutor: value, worker A -> worker B",
              "file": "DaskExecutor: np.save on A, np.load on B",
              "plain": "plain Dask futures, A -> B (floor)"}
    rows = []
    for k, label in labels.items():
        hand = [m["received"] - m["returned"] for _, m in got[k] if len(m) == 2]
        wall = [w for w, _ in got[k]]
        rows.append([label, f"{statistics.median(hand) * 1000:.1f}" if hand else "",
                     f"{statistics.median(wall) * 1000:.0f}" if k != "plain" else ""])
    print(f"1. A {args.mb} MB float64 array between tasks on two Dask workers ({env})")
    print(tabulate(rows, headers=["variant", "handoff ms", "whole run ms"]))

    n = args.tasks
    times = _alternate({
        "dask": lambda: bench.tiny_tasks(DaskExecutor(cluster=cluster), n),
        "parallel": lambda: bench.tiny_tasks(ParallelExecutor(2), n),
        "plain": lambda: bench.tiny_plain(n)}, args.repeat)
    plain = statistics.median(times["plain"])
    rows = []
    for k, label in (("dask", "DaskExecutor (2 workers x 1 thread)"),
                     ("parallel", "ParallelExecutor(2)"),
                     ("plain", "plain client.map + gather (floor)")):
        med = statistics.median(times[k])
        rows.append([label, f"{med:.3f}", f"{med / n * 1e6:.0f}",
                     f"{(med - plain) / n * 1e6:.0f}" if k == "dask" else ""])
    print()
    print(f"2. {n} tiny tasks ({env})")
    print(tabulate(rows, headers=["variant", "median s", "µs/task", "µs/task over client.map"]))
    t0 = time.perf_counter()
    client.close()
    cluster.close()
    print(f"\nLocalCluster of 2 worker processes: started in {started:.2f} s, "
          f"closed in {time.perf_counter() - t0:.2f} s (not in the figures above).")


if __name__ == "__main__":
    main()
