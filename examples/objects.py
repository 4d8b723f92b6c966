"""A small data pipeline that passes Python objects between tasks, in memory.

load -> clean -> summarize: each step takes the previous one's return value. The chain
runs as one unit in one worker, so the table is never pickled. Only the last step writes
a file. Rerun: all three are skipped. Edit build/data/measurements.csv: all three rerun.
"""

import csv
import statistics
from pathlib import Path
from typing import Annotated

from depio_like import Dependency, Pipeline, Product, task

pipeline = Pipeline()
DATA = Path("build/data")
DATA.mkdir(parents=True, exist_ok=True)
SOURCE = DATA / "measurements.csv"
if not SOURCE.exists():
    SOURCE.write_text("sensor,value\na,1.0\na,1.2\nb,7.5\nb,-999\na,0.9\nb,7.1\n")


@task
def load(src: Annotated[Path, Dependency]):
    with open(src, newline="") as f:
        return [(row["sensor"], float(row["value"])) for row in csv.DictReader(f)]


@task
def clean(rows, missing: float = -999.0):
    return [(s, v) for s, v in rows if v != missing]


@task
def summarize(out: Annotated[Path, Product], rows):
    by_sensor = {}
    for s, v in rows:
        by_sensor.setdefault(s, []).append(v)
    lines = [f"{s}: n={len(vs)} mean={statistics.mean(vs):.3f}" for s, vs in sorted(by_sensor.items())]
    out.write_text("\n".join(lines) + "\n")


rows = pipeline.add_task(load(SOURCE))
cleaned = pipeline.add_task(clean(rows))
pipeline.add_task(summarize(DATA / "summary.txt", cleaned))

exit(pipeline.main())
