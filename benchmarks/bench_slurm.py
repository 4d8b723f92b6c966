"""A fan-out of N tiny tasks plus one merge task on Slurm: wall time and how many
sbatch / squeue / sacct / scancel calls the driver made (the controller's load).

Needs a reachable Slurm (e.g. `bash scripts/local-slurm.sh start`). Runs in a temporary
directory under the current one (job files must be on a filesystem the node can read).

    .venv/bin/python benchmarks/bench_slurm.py [--tasks 500] [--tasks-per-job 25]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Annotated

from depio_like import Dependency, Pipeline, Product, SubmitItExecutor, Task


def part(out: Annotated[Path, Product], n: int):
    Path(out).write_text(str(n * n))


def merge(out: Annotated[Path, Product], parts: Annotated[list, Dependency]):
    Path(out).write_text(str(sum(int(Path(p).read_text()) for p in parts)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=500)
    ap.add_argument("--tasks-per-job", type=int, default=25)
    ap.add_argument("--poll-interval", type=float, default=2.0)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-slurm-", dir=os.getcwd()))
    old = os.getcwd()
    os.chdir(work)
    try:
        ex = SubmitItExecutor(cluster="slurm", tasks_per_job=args.tasks_per_job,
                              poll_interval=args.poll_interval)
        p = Pipeline(ex, quiet=True)
        parts = [f"p{n}.txt" for n in range(args.tasks)]
        for n in range(args.tasks):
            p.add_task(Task(f"part{n}", part, [parts[n], n]))
        p.add_task(Task("merge", merge, ["total.txt", parts]))
        t0 = time.monotonic()
        rc = p.run()
        wall = time.monotonic() - t0
        if rc != 0:
            failed = [t for t in p.tasks if t.status.value == "FAILED"]
            raise SystemExit(f"run failed: {len(failed)} task(s) failed, e.g. {failed[:3]}; "
                             f"see {work}/.depio_like/logs and .depio_like/slurm")
        assert Path("total.txt").read_text() == str(sum(n * n for n in range(args.tasks)))
        elements = -(-args.tasks // args.tasks_per_job)
        print(f"{args.tasks} tasks + 1 merge, {args.tasks_per_job} tasks per array element "
              f"({elements} elements), poll every {args.poll_interval} s")
        print(f"wall {wall:.1f} s; calls: " + ", ".join(f"{k} {v}" for k, v in ex.calls.items()))
        t0 = time.monotonic()
        p2 = Pipeline(SubmitItExecutor(cluster="slurm"), quiet=True)
        for n in range(args.tasks):
            p2.add_task(Task(f"part{n}", part, [parts[n], n]))
        p2.add_task(Task("merge", merge, ["total.txt", parts]))
        assert p2.run() == 0
        print(f"no-op rerun {time.monotonic() - t0:.2f} s; calls: "
              + ", ".join(f"{k} {v}" for k, v in p2.executor.calls.items()))
    except SystemExit:
        os.chdir(old)
        raise
    else:
        os.chdir(old)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
