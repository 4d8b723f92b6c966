"""depio's first use: tasks declared with the @task decorator.

Run it twice: the second run skips both tasks (up to date). Edit build/input.txt and
run again: both rerun, because the second reads what the first writes.
"""

import time
from pathlib import Path
from typing import Annotated

from depio_like import Dependency, ParallelExecutor, Pipeline, Product, task

pipeline = Pipeline(executor=ParallelExecutor())

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


pipeline.add_task(slowfunction(BLD / "output1.txt", input=BLD / "input.txt", sec=2))
pipeline.add_task(slowfunction(BLD / "final1.txt", BLD / "output1.txt", sec=1))

exit(pipeline.main())
