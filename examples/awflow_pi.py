"""awflow's README example (estimating pi), written with our decorator and ``ensure=``.

    awflow                                      here
    @ensure(lambda i: os.path.exists(...))      @task(ensure=lambda i: os.path.exists(...))
    @job(cpus='4', memory='4GB', array=tasks)   resources={...}; one task per i
    @after(estimate)                            merge(..., depends_on=estimates)
    merge.prune()                               nothing: a task whose postconditions hold
                                                is skipped (rerun: finished estimates are)
    schedule(merge, backend='local')            pipeline.main(): --executor thread, spawn,
                                                forkserver, slurm, ...

The estimates write files no parameter declares (as in awflow): their postconditions say
whether they are done. Delete ``pi-3.txt`` and rerun: only estimate 3, then the merge, run.
Draws are seeded (awflow's are not) so that every executor makes the same files, and kept
to the standard library (awflow's example uses NumPy).
"""

import glob
import os
import random
from pathlib import Path
from typing import Annotated

from depio_like import Pipeline, Product, task

n = 10000
tasks = 10


@task("estimate", resources={"cpus": 1, "memory": "1G", "time": 10},
      ensure=lambda i: os.path.exists(f"pi-{i}.txt"))
def estimate(i: int):
    print(f"Executing task {i + 1} / {tasks}.")
    rng = random.Random(i)
    inside = sum(rng.random() ** 2 + rng.random() ** 2 <= 1 for _ in range(n))
    Path(f"pi-{i}.txt").write_text(f"{inside}\n")


@task("merge", resources={"cpus": 1, "time": 10})
def merge(out: Annotated[Path, Product]):
    files = sorted(glob.glob("pi-*.txt"))
    inside = sum(int(Path(f).read_text()) for f in files)
    pi_estimate = inside / (n * len(files)) * 4
    print("π ≅", pi_estimate)
    out.write_text(f"{pi_estimate}\n")


pipeline = Pipeline()
estimates = [pipeline.add_task(estimate(i)) for i in range(tasks)]
pipeline.add_task(merge("pi.txt", depends_on=estimates))

exit(pipeline.main())
