"""Estimate pi by Monte Carlo: many independent sampling tasks, then one merge task.

Each `sample` task throws darts at the unit square with its own seed and writes how many
fell inside the quarter circle. On Slurm (`python montecarlo_pi.py --executor slurm`) the
samples go out as one job array. Rerun it: nothing runs. Add samples: only the new ones run.
"""

import random
from pathlib import Path
from typing import Annotated

from depio_like import Dependency, Pipeline, Product, task

SAMPLES = 16          # tasks
DARTS = 200_000       # per task

pipeline = Pipeline()
OUT = Path("build/pi")
OUT.mkdir(parents=True, exist_ok=True)


@task("sample")
def sample(out: Annotated[Path, Product], seed: int, darts: int):
    rng = random.Random(seed)
    inside = sum(1 for _ in range(darts) if rng.random() ** 2 + rng.random() ** 2 <= 1.0)
    out.write_text(f"{inside} {darts}\n")


@task("estimate")
def estimate(out: Annotated[Path, Product], parts: Annotated[list, Dependency]):
    inside = total = 0
    for p in parts:
        i, n = map(int, Path(p).read_text().split())
        inside, total = inside + i, total + n
    out.write_text(f"{4 * inside / total:.6f}\n")
    print(f"pi is about {4 * inside / total:.6f} ({total} darts)")


parts = [OUT / f"sample{k:03d}.txt" for k in range(SAMPLES)]
for k, part in enumerate(parts):
    pipeline.add_task(sample(part, seed=k, darts=DARTS))
pipeline.add_task(estimate(OUT / "pi.txt", parts))

exit(pipeline.main())
