from pathlib import Path
from typing import Annotated
import sys
from depio_like import Pipeline, Product, Dependency, SequentialExecutor, Task, task

@task("make")
def make(out: Annotated[Path, Product], i: int):
    Path(out).write_text(str(i))

@task("join")
def join(out: Annotated[Path, Product], a: Annotated[Path, Dependency], b: Annotated[Path, Dependency]):
    Path(out).write_text(Path(a).read_text() + Path(b).read_text())

def value(n):
    return n * 2

def use(out: Annotated[Path, Product], v):
    Path(out).write_text(str(v))

def noproduct(k):
    print("side effect", k)

p = Pipeline(executor=SequentialExecutor())
a = p.add_task(make(Path("a.txt"), 1))
b = p.add_task(make(Path("b.txt"), 2))
p.add_task(join(Path("ab.txt"), Path("a.txt"), Path("b.txt")))
v = p.add_task(Task("value", value, [3]))
p.add_task(Task("use", use, ["v.txt", v]))
p.add_task(Task("np", noproduct, [5], depends_on=[a]))
p.add_task(Task("multi", lambda out, o2: (Path(out).write_text("x"), Path(o2).write_text("y")), produces=["m1.txt", "m2.txt"], args=["m1.txt", "m2.txt"]))
sys.exit(p.run())
