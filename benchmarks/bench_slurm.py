"""A fan-out of N short tasks plus one merge task on Slurm: wall time, array elements and
how many sbatch / squeue / sacct / scancel calls the driver made (the controller's load).

Three runs in one fresh directory: the first (no durations recorded: tasks are grouped so
that at most array_parallelism * 4 elements go out), a second with --force (durations
known: elements of about --target-seconds), and a no-op rerun. Also printed: the floor,
the tasks' own time spread over the cluster's CPUs.

Needs a reachable Slurm (e.g. `bash scripts/local-slurm.sh start`). Runs in a temporary
directory under --dir (default: the current one; job files must be on a filesystem the
nodes can read).

    .venv/bin/python benchmarks/bench_slurm.py [--tasks 5000] [--task-ms 50]
        [--tasks-per-job N] [--target-seconds 60] [--array-parallelism 64]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Annotated

from depio_like import Dependency, Pipeline, Product, SubmitItExecutor, Task


def part(out: Annotated[Path, Product], n: int, ms: int):
    time.sleep(ms / 1000)
    Path(out).write_text(str(n * n))


def merge(out: Annotated[Path, Product], parts: Annotated[list, Dependency]):
    Path(out).write_text(str(sum(int(Path(p).read_text()) for p in parts)))


def cluster_cpus() -> int | None:
    """CPUs of the cluster's nodes (sinfo's total), if it answers."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%C"], capture_output=True, text=True,
                             timeout=30).stdout.split()
        return sum(int(line.split("/")[3]) for line in out) or None
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return None


def one_run(args: argparse.Namespace, force: bool) -> tuple[float, dict[str, int], int]:
    """(wall seconds, calls, array elements) of one run of the pipeline."""
    ex = SubmitItExecutor(cluster="slurm", tasks_per_job=args.tasks_per_job,
                          target_seconds=args.target_seconds,
                          array_parallelism=args.array_parallelism,
                          poll_interval=args.poll_interval)
    p = Pipeline(ex, quiet=True)
    parts = [f"p{n}.txt" for n in range(args.tasks)]
    for n in range(args.tasks):
        p.add_task(Task(f"part{n}", part, [parts[n], n, args.task_ms]))
    p.add_task(Task("merge", merge, ["total.txt", parts]))
    before = len(list(Path(".depio_like", "slurm").glob("*/*_result.pkl")))
    t0 = time.monotonic()
    rc = p.run(force=force)
    wall = time.monotonic() - t0
    if rc != 0:
        failed = [t for t in p.tasks if t.status.value == "FAILED"]
        raise SystemExit(f"run failed: {len(failed)} task(s) failed, e.g. {failed[:3]}; "
                         f"see {os.getcwd()}/.depio_like/logs and .depio_like/slurm")
    assert Path("total.txt").read_text() == str(sum(n * n for n in range(args.tasks)))
    elements = len(list(Path(".depio_like", "slurm").glob("*/*_result.pkl"))) - before
    return wall, ex.calls, elements


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=5000)
    ap.add_argument("--task-ms", type=int, default=50, help="how long each task sleeps")
    ap.add_argument("--tasks-per-job", type=int, default=None,
                    help="fixed tasks per array element (default: grouped automatically)")
    ap.add_argument("--target-seconds", type=float, default=60.0)
    ap.add_argument("--array-parallelism", type=int, default=64)
    ap.add_argument("--poll-interval", type=float, default=2.0)
    ap.add_argument("--dir", default=os.getcwd(), help="where the temporary directory goes")
    args = ap.parse_args()
    cpus = cluster_cpus()
    work = Path(tempfile.mkdtemp(prefix="bench-slurm-", dir=args.dir))
    old = os.getcwd()
    os.chdir(work)
    grouping = (f"{args.tasks_per_job} tasks per element" if args.tasks_per_job else
                f"grouped automatically (target {args.target_seconds:g} s, "
                f"array_parallelism {args.array_parallelism})")
    print(f"{args.tasks} tasks of {args.task_ms} ms + 1 merge, {grouping}, "
          f"poll every {args.poll_interval:g} s")
    if cpus:
        print(f"floor: {args.tasks * args.task_ms / 1000 / cpus:.1f} s "
              f"(the tasks' {args.tasks * args.task_ms / 1000:.0f} s over {cpus} CPUs)")
    try:
        for label, force in (("first run (no durations)", False),
                             ("second run (--force, durations known)", True),
                             ("no-op rerun", False)):
            wall, calls, elements = one_run(args, force)
            print(f"{label}: wall {wall:.1f} s, {elements} element(s) incl. the merge; calls: "
                  + ", ".join(f"{k} {v}" for k, v in calls.items()), flush=True)
    except SystemExit:
        os.chdir(old)
        raise
    else:
        os.chdir(old)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
