"""Whole-process benchmarks of depio_like's core: scheduling, state, up-to-date checks.

Every figure is the wall time of a separate Python process (a generated pipeline script
run with ``--python``, by default this interpreter), timed from outside, so interpreter
start-up, imports, declaring the tasks, running them and saving the state all count.
Workloads write to tmpfs (/dev/shm when present) from an empty directory, so disk noise
stays out. Variants compared with each other alternate within each repetition (the order
rotates), so drift on the machine hits them alike. Nothing here asserts on time; a run that
fails or does not do what it should (wrong number of tasks ran) is reported as an error.

    python benchmarks/bench_core.py            # full: ~1-2 minutes on a 2-core machine
    python benchmarks/bench_core.py --quick    # fewer repeats, no 10,000-task case
    python benchmarks/bench_core.py --repeat 7 --profile

Workloads:
  sleep   8 tasks of ``time.sleep(0.5)`` on ParallelExecutor(max_workers=2); ideal 2.0 s.
  wide N  N independent tasks, each writing one small file (its product):
            first run (SequentialExecutor, and ParallelExecutor(2)) from an empty directory;
            rerun #1 right after, all up to date: the products were written less than
            100 ms before they were recorded, so their stat signatures are not trusted yet
            ("racy") and this rerun reads and hashes every product once;
            rerun #2, steady state: stats only.
          floors, same invocation: a bare Python loop writing the same N files; declaring
          the N tasks and validating the graph without running; ``python -c pass`` and
          ``python -c "import depio_like"``.
Overhead per task: first runs against the bare loop, reruns and declare-only against
``python -c pass``: (median - floor median) / N.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

SLEEP_TASKS, SLEEP_SECONDS, SLEEP_WORKERS = 8, 0.5, 2

WIDE_SCRIPT = textwrap.dedent('''\
    import sys
    from pathlib import Path
    from typing import Annotated

    from depio_like import ParallelExecutor, Pipeline, Product, SequentialExecutor, task


    @task("write")
    def write(out: Annotated[Path, Product], i: int):
        out.write_text(f"file {i}\\n")


    mode, n = sys.argv[1], int(sys.argv[2])
    executor = SequentialExecutor() if mode == "seq" else ParallelExecutor(max_workers=2)
    pipeline = Pipeline(executor=executor)
    OUT = Path("out")
    OUT.mkdir(exist_ok=True)
    for i in range(n):
        pipeline.add_task(write(OUT / f"f{i:05d}.txt", i))
    if mode == "declare":
        pipeline.validate()
        sys.exit(0)
    sys.exit(pipeline.run())
''')

BARE_SCRIPT = textwrap.dedent('''\
    import sys
    from pathlib import Path

    n = int(sys.argv[1])
    OUT = Path("out")
    OUT.mkdir(exist_ok=True)
    for i in range(n):
        (OUT / f"f{i:05d}.txt").write_text(f"file {i}\\n")
''')

SLEEP_SCRIPT = textwrap.dedent(f'''\
    import sys
    import time

    from depio_like import ParallelExecutor, Pipeline, Task


    def nap(sec, i):
        time.sleep(sec)


    pipeline = Pipeline(executor=ParallelExecutor(max_workers={SLEEP_WORKERS}))
    for i in range({SLEEP_TASKS}):
        pipeline.add_task(Task(f"nap{{i}}", nap, [{SLEEP_SECONDS}, i]))
    sys.exit(pipeline.run())
''')


class BenchError(RuntimeError):
    pass


@dataclass
class Series:
    workload: str
    variant: str
    n: int | None = None
    times: list[float] = field(default_factory=list)
    floor: "Series | None" = None        # overhead is measured against this series
    floor_seconds: float | None = None   # ... or against a fixed ideal

    @property
    def median(self) -> float:
        return statistics.median(self.times)


class Bench:
    def __init__(self, python: str, root: Path) -> None:
        self.python = python
        self.root = root
        self.scripts = root / "scripts"
        self.scripts.mkdir()
        (self.scripts / "wide.py").write_text(WIDE_SCRIPT)
        (self.scripts / "bare.py").write_text(BARE_SCRIPT)
        (self.scripts / "sleep.py").write_text(SLEEP_SCRIPT)
        self.log = root / "stdout.log"
        self._count = 0

    def fresh_dir(self) -> Path:
        """An empty working directory (no outputs, no state) on tmpfs."""
        self._count += 1
        d = self.root / f"w{self._count}"
        d.mkdir()
        return d

    def run(self, args: list[str], cwd: Path, expect: str | None = None) -> float:
        """Run the interpreter with ``args`` in ``cwd``; return the wall time in seconds."""
        with open(self.log, "wb") as out:
            t0 = time.perf_counter()
            proc = subprocess.run([self.python, *args], cwd=cwd, stdout=out,
                                  stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
            elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            raise BenchError(f"{' '.join(args)} in {cwd} exited with {proc.returncode}:\n"
                             + proc.stderr.decode(errors="replace")[-3000:])
        if expect is not None:
            tail = self.log.read_text(errors="replace").rstrip().rsplit("\n", 1)[-1]
            if expect not in tail:
                raise BenchError(f"{' '.join(args)}: expected {expect!r} in the summary, "
                                 f"got {tail!r}")
        return elapsed


def rotate(items: list, k: int) -> list:
    k %= len(items)
    return items[k:] + items[:k]


def bench_startup(b: Bench, repeat: int) -> tuple[Series, Series]:
    bare = Series("python startup", "python -c pass")
    imp = Series("python startup", "python -c 'import depio_like'")
    cwd = b.fresh_dir()
    b.run(["-c", "import depio_like"], cwd)  # warm the page cache and the .pyc files
    for r in range(repeat):
        for s, code in rotate([(bare, "pass"), (imp, "import depio_like")], r):
            s.times.append(b.run(["-c", code], cwd))
    imp.floor = bare
    return bare, imp


def bench_sleep(b: Bench, repeat: int) -> Series:
    s = Series("sleep 8 x 0.5 s", f"ParallelExecutor({SLEEP_WORKERS})", SLEEP_TASKS,
               floor_seconds=SLEEP_TASKS * SLEEP_SECONDS / SLEEP_WORKERS)
    script = str(b.scripts / "sleep.py")
    for _ in range(repeat):
        s.times.append(b.run([script], b.fresh_dir(), expect=f"({SLEEP_TASKS} ran,"))
        _cleanup_workdirs(b)
    return s


def bench_wide(b: Bench, n: int, repeat: int, startup: Series) -> list[Series]:
    wide, bare = str(b.scripts / "wide.py"), str(b.scripts / "bare.py")
    floor = Series(f"wide {n:,}", "bare Python loop writing the files", n, floor=startup)
    declare = Series(f"wide {n:,}", "declare + validate only (no run)", n, floor=startup)
    first = {m: Series(f"wide {n:,}", f"first run, {label}", n, floor=floor)
             for m, label in (("seq", "SequentialExecutor"), ("par", "ParallelExecutor(2)"))}
    rerun1 = Series(f"wide {n:,}", "up-to-date rerun #1 (hashes products)", n, floor=startup)
    rerun2 = Series(f"wide {n:,}", "up-to-date rerun #2 (steady)", n, floor=startup)

    def do_floor() -> None:
        d = b.fresh_dir()
        floor.times.append(b.run([bare, str(n)], d))
        if len(os.listdir(d / "out")) != n:
            raise BenchError("the bare loop did not write every file")

    def do_declare() -> None:
        declare.times.append(b.run([wide, "declare", str(n)], b.fresh_dir()))

    def chain(mode: str):
        def go() -> None:
            d = b.fresh_dir()
            first[mode].times.append(b.run([wide, mode, str(n)], d, expect=f"({n} ran, 0 up"))
            if len(os.listdir(d / "out")) != n:
                raise BenchError(f"first run ({mode}) did not write every file")
            rerun1.times.append(b.run([wide, mode, str(n)], d, expect=f"(0 ran, {n} up to date)"))
            rerun2.times.append(b.run([wide, mode, str(n)], d, expect=f"(0 ran, {n} up to date)"))
        return go

    steps = [do_floor, chain("seq"), do_declare, chain("par")]
    do_floor()  # warm-up, not counted: first touch of tmpfs pages and directories
    floor.times.clear()
    for r in range(repeat):
        for step in rotate(steps, r):
            step()
            _cleanup_workdirs(b)
    return [floor, declare, first["seq"], first["par"], rerun1, rerun2]


def _cleanup_workdirs(b: Bench) -> None:
    for d in b.root.glob("w*"):
        shutil.rmtree(d, ignore_errors=True)


def profile(b: Bench, n: int, top: int) -> None:
    """cProfile one first run (sequential, so the tasks run in the profiled process) and
    one steady rerun, and print the top entries by cumulative time."""
    wide = str(b.scripts / "wide.py")
    d = b.fresh_dir()
    for title, runs in ((f"first run, SequentialExecutor, N={n:,}", 1),
                        (f"up-to-date rerun #2 (steady), N={n:,}", 3)):
        for k in range(runs):
            # reruns: run twice unprofiled so the profiled one is the steady state
            last = k == runs - 1
            args = (["-m", "cProfile", "-s", "cumtime"] if last else []) + [wide, "seq", str(n)]
            b.run(args, d)
        text = b.log.read_text(errors="replace")
        start = text.find("function calls")
        lines = text[start:].split("\n") if start >= 0 else ["(no profile found)"]
        lines = [ln for ln in lines if ln.strip()]
        print(f"\n--- cProfile -s cumtime: {title} ---")
        print("\n".join(lines[: top + 2]))
    _cleanup_workdirs(b)


def table(series: list[Series]) -> str:
    from tabulate import tabulate

    rows = []
    for s in series:
        over = per_task = ""
        base = s.floor.median if s.floor is not None else s.floor_seconds
        if base is not None:
            diff = s.median - base
            over = f"{diff:+.3f}"
            if s.n and s.floor is not None and s.n >= 1000:
                per_task = f"{diff / s.n * 1e6:.0f}"
        rows.append([s.workload, s.variant, len(s.times), f"{s.median:.3f}",
                     f"{min(s.times):.3f}", f"{max(s.times):.3f}", over, per_task])
    return tabulate(rows, headers=["workload", "variant", "runs", "median s", "min s", "max s",
                                   "over floor s", "µs/task"],
                    disable_numparse=True, colalign=("left", "left", "right", "right", "right",
                                                     "right", "right", "right"))


def main(argv: list[str] | None = None) -> int:
    # Users' installs have their bytecode cached; a machine that sets PYTHONDONTWRITEBYTECODE
    # would make every timed run compile the tools' sources (~0.2 s for ours) first.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="3 repeats and no 10,000-task case")
    ap.add_argument("--repeat", type=int, default=None,
                    help="repetitions per workload (default 5, or 3 with --quick)")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter that runs the generated scripts (needs depio_like "
                         "importable; default: this one)")
    ap.add_argument("--sizes", default=None,
                    help="comma-separated N for the wide workload (default 1000,10000; "
                         "1000 with --quick)")
    ap.add_argument("--profile", action="store_true",
                    help="also cProfile the largest wide case (first run and steady rerun)")
    ap.add_argument("--top", type=int, default=25, help="profile lines to show")
    args = ap.parse_args(argv)

    repeat = args.repeat or (3 if args.quick else 5)
    if repeat < 1:
        ap.error("--repeat must be at least 1")
    sizes = ([int(x) for x in args.sizes.split(",")] if args.sizes
             else [1000] if args.quick else [1000, 10000])

    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="depio_like_bench_", dir=base))
    t_start = time.perf_counter()
    try:
        b = Bench(args.python, root)
        version = subprocess.run(
            [args.python, "-c", "import sys, depio_like; "
             "print(sys.version.split()[0], depio_like.__version__, depio_like.__file__)"],
            capture_output=True, text=True)
        if version.returncode != 0:
            print(f"{args.python} cannot import depio_like:\n{version.stderr}", file=sys.stderr)
            return 2
        py, ver, where = version.stdout.split(maxsplit=2)
        print(f"depio_like {ver} ({where.strip()}), Python {py} at {args.python}")
        print(f"{platform.platform()}, {_cpus()} CPU(s) available; workdir {root} "
              f"({'tmpfs' if base else 'NOT tmpfs: figures include disk noise'}); "
              f"{repeat} repeat(s); whole-process wall times")
        sys.stdout.flush()

        series: list[Series] = []
        startup, imp = bench_startup(b, repeat)
        series += [startup, imp]
        series.append(bench_sleep(b, repeat))
        for n in sizes:
            series += bench_wide(b, n, repeat, startup)
        print()
        print(table(series))
        print("\nover floor: median minus the floor median. Floors: sleep -> ideal "
              f"{SLEEP_TASKS * SLEEP_SECONDS / SLEEP_WORKERS:.1f} s; first runs -> the bare "
              "loop; declare, reruns, import -> `python -c pass`. Reruns pool both chains "
              "(after the sequential and the parallel first run).")
        if args.profile:
            profile(b, max(sizes), args.top)
    except BenchError as e:
        print(f"benchmark error: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\n(benchmark took {time.perf_counter() - t_start:.0f} s)")
    return 0


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
