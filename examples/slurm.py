"""The decorator example on Slurm: only the executor line differs.

With `sbatch` on the PATH the tasks run as Slurm jobs; without it, SubmitItExecutor falls
back to submitit's local backend (real subprocesses), so this script runs anywhere. Sbatch
settings for every job go in `parameters=` (partition, account, ...); per-task needs in
`resources=`. Job files and logs go under .depio_like/slurm/.
"""

import time
from pathlib import Path
from typing import Annotated

from depio_like import Dependency, Pipeline, Product, SubmitItExecutor, task

pipeline = Pipeline(executor=SubmitItExecutor())

BLD = Path("build")
BLD.mkdir(exist_ok=True)
if not (BLD / "input.txt").exists():
    (BLD / "input.txt").write_text("some input\n")


@task("datapipeline", resources={"cpus": 1, "memory": "1G", "time": 10})
def slowfunction(output: Annotated[Path, Product],
                 input: Annotated[Path, Dependency] = None,
                 sec: int = 0):
    print(f"A function that is reading from {input} and writing to {output} in {sec} seconds.")
    time.sleep(sec)
    output.write_text(f"Hallo from depio_like, after reading {input.read_text()!r}\n")


pipeline.add_task(slowfunction(BLD / "slurm_output1.txt", input=BLD / "input.txt", sec=2))
pipeline.add_task(slowfunction(BLD / "slurm_final1.txt", BLD / "slurm_output1.txt", sec=1))

exit(pipeline.main())
