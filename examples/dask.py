"""The decorator example on a Dask cluster: only the executor line differs.

`DaskExecutor()` starts a Dask LocalCluster for the run (one worker process per core; its
dashboard link is printed) and closes it afterwards. To use a cluster that is already
running, pass its scheduler's address, `DaskExecutor("tcp://host:8786")`, or run this
script with `--dask-address tcp://host:8786`; for Dask on Slurm, pass a dask-jobqueue
cluster: `DaskExecutor(cluster=SLURMCluster(...))`. Workers must see this directory at the
same path. Needs the dask extra: pip install 'depio_like[dask]'.
"""

import time
from pathlib import Path
from typing import Annotated

from depio_like import DaskExecutor, Dependency, Pipeline, Product, task

pipeline = Pipeline(executor=DaskExecutor())

BLD = Path("build")
BLD.mkdir(exist_ok=True)
if not (BLD / "input.txt").exists():
    (BLD / "input.txt").write_text("some input\n")


@task("datapipeline")
def slowfunction(output: Annotated[Path, Product],
                 input: Annotated[Path, Dependency] = None,
                 sec: int = 0):
    print(f"A function that is reading from {input} and writing to {output} in {sec} seconds.")
    time.sleep(sec)
    output.write_text(f"Hallo from depio_like, after reading {input.read_text()!r}\n")


pipeline.add_task(slowfunction(BLD / "dask_output1.txt", input=BLD / "input.txt", sec=2))
pipeline.add_task(slowfunction(BLD / "dask_final1.txt", BLD / "dask_output1.txt", sec=1))

exit(pipeline.main())
