"""What a task's output costs the driver: a task prints ``--gb`` GB (default 1) to stdout;
the driver shows its tail when it ends and hands it to an ``on_task_finished`` hook. Prints
the driver's peak RSS growth during ``run()`` (getrusage, in the driver's process: the
task itself runs in a worker), and the wall time of the run. Runs on /dev/shm.

    .venv/bin/python benchmarks/bench_logs.py [--gb 1] [--repeat 3] [--python PATH]

``--python`` runs the generated script with another interpreter (e.g. one importing an
older checkout, to compare).
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

SCRIPT = '''
import os, resource, time
from pathlib import Path
from typing import Annotated
from depio_like import ParallelExecutor, Pipeline, Product, Task

def loud(out: Annotated[Path, Product]):
    block = (b"x" * 99 + b"\\n") * 10000  # 1 MB
    for _ in range({blocks}):
        os.write(1, block)
    out.write_text("done")

lengths = []
p = Pipeline(executor=ParallelExecutor(1), on_task_finished=lambda r: lengths.append(len(r.stdout)))
p.add_task(Task("loud", loud, [Path("loud.txt")]))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
rc = p.run()
took = time.perf_counter() - t0
growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(f"RESULT {{growth / 1024:.1f}} {{took:.3f}} {{rc}} {{lengths[0]}}", flush=True)
'''


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args()
    blocks = int(args.gb * 1000)
    growths, times = [], []
    for _ in range(args.repeat):
        d = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        try:
            with open(os.path.join(d, "pipeline.py"), "w") as f:
                f.write(textwrap.dedent(SCRIPT.format(blocks=blocks)))
            r = subprocess.run([args.python, "pipeline.py"], cwd=d, capture_output=True,
                               text=True)
            line = next((ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")), None)
            if line is None:
                sys.exit(f"the run failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}")
            growth, took, rc, hook_len = line.split()[1:]
            growths.append(float(growth))
            times.append(float(took))
        finally:
            shutil.rmtree(d, ignore_errors=True)
    print(f"task output: {blocks} MB; hook got {int(hook_len):,} characters of stdout")
    print(f"driver peak RSS growth during run(): median {statistics.median(growths):.1f} MB "
          f"(min {min(growths):.1f}, max {max(growths):.1f})")
    print(f"run() wall time: median {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
