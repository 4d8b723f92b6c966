"""Path identity and the no-op check: what declaring, checking the graph and a no-op run
cost per task, with a bare-Python floor doing the same I/O.

A pipeline of N tasks, each reading one source file and writing one product, plus one
task reading the directory of all products (containment edges to all N), on tmpfs.
Each repetition runs, in a fresh process each, in rotating order:

  declare    declaring the N tasks (path normalisation: a cached lookup per directory)
  validate   checking the graph (one stat per source, containment edges)
  no-op      a whole no-op run after declaring (each file stat'ed once, nothing read)
  floor      a plain loop: os.path.normpath of the N product paths, os.stat of the 2N files

and prints medians in ms, and the stat calls per file of one no-op run.

    python benchmarks/bench_paths.py            # N = 10,000, 5 repetitions
    python benchmarks/bench_paths.py -n 2000 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap

SCRIPT = textwrap.dedent('''\
    import os, sys, time
    from pathlib import Path
    from typing import Annotated
    from depio_like import Dependency, Pipeline, Product, SequentialExecutor, task
    from depio_like.fs import RealDisk

    @task("step")
    def step(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        out.write_text(src.read_text())

    @task("index")
    def index(out: Annotated[Path, Product], d: Annotated[Path, Dependency]):
        out.write_text(str(len(os.listdir(d))))

    class Counting(RealDisk):
        calls = {}
        def stat(self, path):
            self.calls[path] = self.calls.get(path, 0) + 1
            return super().stat(path)

    what, n = sys.argv[1], int(sys.argv[2])
    if what == "floor":
        t0 = time.perf_counter()
        cwd = os.getcwd()
        for i in range(n):
            os.path.normpath(os.path.join(cwd, f"out/o{i}.txt"))
        for i in range(n):
            os.stat(f"src/s{i}.txt")
            os.stat(f"out/o{i}.txt")
        print(time.perf_counter() - t0)
        sys.exit()
    disk = Counting() if what == "count" else RealDisk()
    t0 = time.perf_counter()
    p = Pipeline(SequentialExecutor(), quiet=True, disk=disk)
    for i in range(n):
        p.add_task(step(Path(f"out/o{i}.txt"), Path(f"src/s{i}.txt")))
    p.add_task(index(Path("index.txt"), Path("out")))
    t1 = time.perf_counter()
    if what == "declare":
        print(t1 - t0)
    elif what == "validate":
        p.validate()
        print(time.perf_counter() - t1)
    else:
        assert p.run() == 0
        if what == "count":
            per_file = sorted(set(disk.calls.values()))
            print(per_file)
        else:
            print(time.perf_counter() - t0)
''')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    base = "/dev/shm" if os.path.isdir("/dev/shm") else None
    work = tempfile.mkdtemp(prefix="bench-paths-", dir=base)
    try:
        with open(os.path.join(work, "p.py"), "w") as f:
            f.write(SCRIPT)
        os.mkdir(os.path.join(work, "src"))
        os.mkdir(os.path.join(work, "out"))  # so that versions without containment edges run it
        for i in range(args.n):
            with open(os.path.join(work, "src", f"s{i}.txt"), "w") as f:
                f.write(str(i))

        def run(what: str) -> str:
            r = subprocess.run([args.python, "p.py", what, str(args.n)], cwd=work,
                               capture_output=True, text=True, check=True)
            return r.stdout.strip()

        run("no-op")
        run("no-op")  # the products' racy window has passed: a steady no-op
        phases = ["declare", "validate", "no-op", "floor"]
        times: dict[str, list[float]] = {k: [] for k in phases}
        for rep in range(args.repeat):
            for k in phases[rep % len(phases):] + phases[:rep % len(phases)]:
                times[k].append(float(run(k)))
        print(f"{args.n} tasks + 1 reading their directory, on {base or 'disk'}; medians "
              f"of {args.repeat} (ms)")
        for k in phases:
            print(f"  {k:9s} {1000 * statistics.median(times[k]):8.1f}")
        print(f"  stat calls per file in a no-op run: {run('count')}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
