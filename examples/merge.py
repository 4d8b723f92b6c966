"""depio's third use: an explicit DAG with depends_on, and identical calls merged.

The first three add_task calls are the same function with the same arguments: they are
one task, and add_task returns that one task each time. The table shows three tasks.
"""

import time

from depio_like import ParallelExecutor, Pipeline, Task

pipeline = Pipeline(executor=ParallelExecutor())


def slowfunction(sec: int = 0):
    print(f"A function that is doing something for {sec} seconds.")
    time.sleep(sec)


t1 = pipeline.add_task(Task("functionaldemo1", slowfunction, [1]))
t2 = pipeline.add_task(Task("functionaldemo1", slowfunction, [1]))
t3 = pipeline.add_task(Task("functionaldemo1", slowfunction, [1]))
t4 = pipeline.add_task(Task("functionaldemo2", slowfunction, [2], depends_on=[t3]))
t5 = pipeline.add_task(Task("functionaldemo3", slowfunction, [3], depends_on=[t4]))

assert t1 is t2 is t3, "identical calls are one task"

exit(pipeline.main())
