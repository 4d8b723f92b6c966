# A depio-style Slurm script (written for depio_like's tests, not copied from depio; Apache-2.0
# like the rest of depio_like): a ready submitit.AutoExecutor with submitit's parameter names,
# handed to SubmitItExecutor(internal_executor=...), as depio users configure Slurm.
import os
import pathlib
import time
from typing import Annotated

import submitit

from depio_like.Executors import SubmitItExecutor
from depio_like.Pipeline import Pipeline
from depio_like.decorators import task
from depio_like.Task import Product, Dependency

BLD = pathlib.Path("build")
BLD.mkdir(exist_ok=True)

SLURM = pathlib.Path("slurm")
SLURM.mkdir(exist_ok=True)

PARAMETERS = {
    "slurm_partition": os.environ.get("DEMO_SLURM_PARTITION", "debug"),
    "slurm_mem": "300M",
    "gpus_per_node": 0,
    "timeout_min": 10,
}

executor = submitit.AutoExecutor(folder=SLURM)
executor.update_parameters(**PARAMETERS)
defaultpipeline = Pipeline(depioExecutor=SubmitItExecutor(internal_executor=executor,
                                                          parameters=PARAMETERS,
                                                          max_jobs_queued=4))

print("Touching an initial file")
(BLD / "input.txt").write_text("input")


@task("datapipeline")
def slowfunction(output: Annotated[pathlib.Path, Product],
                 input: Annotated[pathlib.Path, Dependency] = None,
                 sec: int = 0):
    print(f"A function that is reading from {input} and writing to {output} in {sec} seconds.")
    time.sleep(sec)
    with open(output, 'w') as f:
        f.write(f"Hallo from depio on node {os.environ.get('SLURMD_NODENAME')} "
                f"in job {os.environ.get('SLURM_JOB_ID')}")


defaultpipeline.add_task(slowfunction(BLD / "output1.txt", input=BLD / "input.txt", sec=1))
defaultpipeline.add_task(slowfunction(BLD / "output2.txt", input=BLD / "input.txt", sec=1))
defaultpipeline.add_task(slowfunction(BLD / "final1.txt", BLD / "output1.txt", sec=1))

exit(defaultpipeline.run())
