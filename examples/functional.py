"""depio's second use: the functional interface, Task(name, func, args, kwargs)."""

import time
from pathlib import Path
from typing import Annotated

from depio_like import Dependency, ParallelExecutor, Pipeline, Product, Task

pipeline = Pipeline(executor=ParallelExecutor())

BLD = Path("build")
BLD.mkdir(exist_ok=True)
if not (BLD / "input.txt").exists():
    (BLD / "input.txt").write_text("some input\n")


def slowfunction(output: Annotated[Path, Product],
                 input: Annotated[Path, Dependency] = None,
                 sec: int = 0):
    print(f"A function that is reading from {input} and writing to {output} in {sec} seconds.")
    time.sleep(sec)
    output.write_text(f"Hallo from depio_like, after reading {input.read_text()!r}\n")


pipeline.add_task(Task("functionaldemo1", slowfunction, [BLD / "output1.txt"],
                       {"input": BLD / "input.txt", "sec": 2}))
pipeline.add_task(Task("functionaldemo2", slowfunction, [BLD / "final1.txt"],
                       {"input": BLD / "output1.txt", "sec": 1}))

exit(pipeline.main())
