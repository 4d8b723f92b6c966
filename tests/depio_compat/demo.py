from typing import Annotated, List
import pathlib
import time

from depio_like.BuildMode import BuildMode
from depio_like.Pipeline import Pipeline
from depio_like.decorators import task
from depio_like.Task import Product, Dependency

from src.depio_like.Executors import ParallelExecutor

depioExecutor = ParallelExecutor()
defaultpipeline = Pipeline(depioExecutor=depioExecutor, clear_screen=False)

# Use the decorator with args and kwargs
@task("datapipeline", buildmode=BuildMode.ALWAYS)
def funcdec(
        output: Annotated[List[pathlib.Path], Product],
        sec: int,
        input: Annotated[pathlib.Path, Dependency] = None
            ):
    print(f"func dec reading from {input} and writing to {output}")
    time.sleep(sec)
    if False and input == BLD/"output1.txt":
        raise Exception("Demo exception")
    if not isinstance(output, list): output = [output]
    for o in output:
        with open(o,'w') as f:
            f.write("Hallo from depio")
    return 1


BLD = pathlib.Path("build")
BLD.mkdir(exist_ok=True)

print("Adding tasks")
defaultpipeline.add_task(funcdec(BLD/"output1.txt",sec=2,input=BLD/"input.txt"))
t1 = defaultpipeline.add_task(funcdec(BLD/"output2.txt",sec=1,input=BLD/"input.txt"))
defaultpipeline.add_task(funcdec(BLD/"final1.txt",sec=1,input=BLD/"output1.txt"))
defaultpipeline.add_task(funcdec(BLD/"final_final1.txt",sec=2,input=BLD/"final1.txt"))
defaultpipeline.add_task(funcdec(output=[BLD/"final_final2.txt", BLD/"final_final3.txt"],sec=2))

exit(defaultpipeline.run())
