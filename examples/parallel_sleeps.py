"""Two independent tasks that sleep 2 s each run at the same time: about 2 s, not 4.

What they print is kept per task and shown as one block when each ends, never mixed.
"""

import time

from depio_like import ParallelExecutor, Pipeline, Task

pipeline = Pipeline(executor=ParallelExecutor(max_workers=2))


def nap(name: str, sec: float = 2.0):
    for i in range(3):
        print(f"{name}: line {i}")
        time.sleep(sec / 3)


pipeline.add_task(Task("left", nap, ["left"], always=True))
pipeline.add_task(Task("right", nap, ["right"], always=True))

t0 = time.monotonic()
code = pipeline.main()
print(f"took {time.monotonic() - t0:.1f} s")
exit(code)
