"""Handing a 100 MB numpy array from one task to the next: in memory vs through a file.

Each variant is a whole pipeline run in-process on tmpfs; the handoff is the time from the
producer's `return` to the consumer's first line (time.monotonic is system-wide on Linux, so
it compares across processes). Variants alternate within each repetition; medians printed.

    .venv/bin/python benchmarks/bench_channel.py [--repeat 7] [--mb 100]
"""

from __future__ import annotations

import argparse
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

from depio_like import Dependency, ParallelExecutor, Pipeline, Product, SequentialExecutor, Task

MARKS: dict[str, float] = {}


def _mark_file(name: str) -> None:
    now = time.monotonic()
    try:  # the first one counts (with two consumers, the second may wait for a worker)
        with open(f"mark-{name}", "x") as f:
            f.write(repr(now))
    except FileExistsError:
        pass


def make(mb: int):
    a = np.arange(mb * 1024 * 1024 // 8, dtype=np.float64)
    _mark_file("returned")
    return a


def take(a):
    _mark_file("received")
    assert a[-1] == len(a) - 1


def take_to(out: Annotated[Path, Product], a):
    take(a)
    Path(out).write_text("ok")


def make_file(out: Annotated[Path, Product], mb: int):
    a = np.arange(mb * 1024 * 1024 // 8, dtype=np.float64)
    _mark_file("returned")
    np.save(out, a)


def take_file(src: Annotated[Path, Dependency]):
    a = np.load(src)
    _mark_file("received")
    assert a[-1] == len(a) - 1


def _handoff(cwd: Path) -> float:
    return float((cwd / "mark-received").read_text()) - float((cwd / "mark-returned").read_text())


def variant(name: str, mb: int) -> float:
    cwd = Path(tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    old = os.getcwd()
    os.chdir(cwd)
    try:
        if name == "memory, same process (SequentialExecutor)":
            p = Pipeline(SequentialExecutor(), quiet=True)
            m = p.add_task(Task("make", make, [mb]))
            p.add_task(Task("take", take, [m]))
        elif name == "memory, chain in one worker (ParallelExecutor)":
            p = Pipeline(ParallelExecutor(2), quiet=True)
            m = p.add_task(Task("make", make, [mb]))
            p.add_task(Task("take", take, [m]))
        elif name == "value file, across workers (ParallelExecutor)":
            p = Pipeline(ParallelExecutor(2), quiet=True)
            m = p.add_task(Task("make", make, [mb]))
            p.add_task(Task("take", take_to, ["t.txt", m]))
            p.add_task(Task("other", take_to, ["o.txt", m]))  # two consumers: no chain
        elif name == "user's own file: np.save + np.load (SequentialExecutor)":
            p = Pipeline(SequentialExecutor(), quiet=True)
            p.add_task(Task("make", make_file, ["a.npy", mb]))
            p.add_task(Task("take", take_file, ["a.npy"]))
        else:
            raise ValueError(name)
        assert p.run() == 0
        return _handoff(cwd)
    finally:
        os.chdir(old)
        shutil.rmtree(cwd, ignore_errors=True)


def floor(mb: int) -> float:
    """Bare Python: np.save then np.load of the same array, no tool."""
    d = Path(tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        a = np.arange(mb * 1024 * 1024 // 8, dtype=np.float64)
        t0 = time.monotonic()
        np.save(d / "a.npy", a)
        b = np.load(d / "a.npy")
        t1 = time.monotonic()
        assert b[-1] == a[-1]
        return t1 - t0
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--mb", type=int, default=100)
    args = ap.parse_args()
    names = ["memory, same process (SequentialExecutor)",
             "memory, chain in one worker (ParallelExecutor)",
             "value file, across workers (ParallelExecutor)",
             "user's own file: np.save + np.load (SequentialExecutor)"]
    times: dict[str, list[float]] = {n: [] for n in names + ["floor"]}
    for r in range(args.repeat):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            times[n].append(variant(n, args.mb))
        times["floor"].append(floor(args.mb))
    file_median = statistics.median(times[names[3]])
    rows = []
    for n in names + ["floor"]:
        med = statistics.median(times[n])
        label = "bare Python np.save + np.load (floor)" if n == "floor" else n
        rows.append([label, f"{med * 1000:.3f}", f"{min(times[n]) * 1000:.3f}",
                     f"{file_median / med:.0f}x" if med > 0 else "inf"])
    print(f"Handing a {args.mb} MB float64 array to the next task; tmpfs; "
          f"{args.repeat} runs each, median (Python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    print(tabulate(rows, headers=["variant", "median ms", "min ms", "file / this"]))


if __name__ == "__main__":
    main()
