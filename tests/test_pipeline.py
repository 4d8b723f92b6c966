"""Pipeline.add_task: merging identical calls, one producer per path, depio aliases."""

import io
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import (
    DuplicateProductError,
    ParallelExecutor,
    Pipeline,
    Product,
    ProductAlreadyRegisteredException,
    SequentialExecutor,
    Status,
    Task,
    task,
)

from conftest import new_pipeline


def write(out: Annotated[Path, Product], text: str = "x"):
    Path(out).write_text(text)


def nothing(sec: int = 0):
    pass


def test_identical_calls_are_one_task_whatever_the_name(project):
    p = new_pipeline()
    a = p.add_task(Task("first", write, ["a.txt"]))
    b = p.add_task(Task("second", write, [Path("a.txt")], {"text": "x"}))
    assert b is a
    assert len(p.tasks) == 1 and a.id == 1


def test_merged_calls_run_once(project):
    p = new_pipeline()
    count = []

    def once(n: int):
        count.append(n)

    for _ in range(3):
        p.add_task(Task("x", once, [1]))
    assert p.run() == 0
    assert count == [1]


def test_depends_on_a_duplicate_points_at_the_survivor(project):
    p = new_pipeline()
    t1 = p.add_task(Task("a", nothing, [1]))
    dup = Task("a-again", nothing, [1])  # never added itself
    p.add_task(dup)
    t4 = p.add_task(Task("b", nothing, [2], depends_on=[dup]))
    g = p.graph()
    assert list(g.predecessors(t4.id)) == [t1.id]


def test_two_producers_of_one_path_name_both_tasks_and_the_path(project):
    p = new_pipeline()
    p.add_task(Task("maker-one", write, ["out/a.txt"], {"text": "1"}))
    with pytest.raises(DuplicateProductError) as err:
        p.add_task(Task("maker-two", write, ["out/./a.txt"], {"text": "2"}))
    msg = str(err.value)
    assert "maker-one" in msg and "maker-two" in msg and "out/a.txt" in msg
    assert issubclass(DuplicateProductError, ProductAlreadyRegisteredException)


def test_depio_executor_alias_and_conflict():
    ex = SequentialExecutor()
    assert Pipeline(depioExecutor=ex).executor is ex
    with pytest.raises(TypeError):
        Pipeline(executor=ex, depioExecutor=ex)
    assert isinstance(Pipeline().executor, ParallelExecutor)


def test_add_task_rejects_non_tasks():
    with pytest.raises(TypeError, match="add_task"):
        new_pipeline().add_task(nothing)


def test_decorator_with_pipeline_adds_and_merges(project):
    p = new_pipeline()

    @task("w", pipeline=p)
    def w(out: Annotated[Path, Product]):
        Path(out).write_text("w")

    a = w("a.txt")
    b = w("./a.txt")
    assert a is b and p.tasks == [a]
    assert p.run() == 0 and a.status is Status.FINISHED


def test_graph_edges_from_paths_and_depends_on(project):
    p = new_pipeline()

    def step(out: Annotated[Path, Product], src: Annotated[Path, "Dependency"] = None):
        pass

    from depio_like import Dependency

    def read(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        Path(out).write_text(Path(src).read_text())

    a = p.add_task(Task("a", write, ["a.txt"]))
    b = p.add_task(Task("b", read, ["b.txt", "a.txt"]))
    c = p.add_task(Task("c", nothing, [3], depends_on=[b]))
    g = p.graph()
    assert set(g.edges) == {(a.id, b.id), (b.id, c.id)}
    assert g.nodes[b.id]["name"] == "b"


def test_a_run_leaves_the_garbage_collector_as_it_found_it(tmp_path, monkeypatch):
    # A run holds the collector off and freezes what it built; the process's own
    # settings (a server that froze its objects before forking, gc switched off) stay.
    import gc

    monkeypatch.chdir(tmp_path)

    def pipeline():
        p = new_pipeline()
        for i in range(3):
            p.add_task(Task(f"w{i}", write, [f"o{i}.txt", str(i)]))
        return p

    was_enabled = gc.isenabled()
    try:
        gc.enable()
        assert pipeline().run() == 0
        assert gc.isenabled() and gc.get_freeze_count() == 0
        gc.disable()
        assert pipeline().run() == 0
        assert not gc.isenabled() and gc.get_freeze_count() == 0
        gc.enable()
        kept = [object() for _ in range(10)]
        gc.freeze()
        frozen = gc.get_freeze_count()
        assert pipeline().run() == 0
        assert gc.get_freeze_count() == frozen, "the user's frozen objects were unfrozen"
        del kept
    finally:
        gc.unfreeze()
        if was_enabled:
            gc.enable()
        else:
            gc.disable()


def test_declaring_a_big_pipeline_freezes_nothing_of_the_users(tmp_path, monkeypatch):
    """Declaring (and only looking at the graph of) a big pipeline leaves the collector to
    the user: their cyclic garbage is collected, nothing stays frozen, even when the
    pipeline itself sits in a reference cycle (a class holding it, a bound method hook).
    A freeze during declaration kept 17,000 objects frozen for good here."""
    import gc
    import weakref

    monkeypatch.chdir(tmp_path)

    class Workflow:
        def __init__(self) -> None:
            self.p = new_pipeline(on_task_finished=self.note)  # a cycle through the hook
            for i in range(2_500):
                self.p.add_task(Task(f"t{i}", nothing, [i]))

        def note(self, result: object) -> None:
            pass

    class Cache:
        pass

    was_enabled = gc.isenabled()
    gc.enable()
    try:
        cache = Cache()
        cache.self = cache  # the user's own cycle, alive while the tasks are declared
        w = Workflow()
        w.p.graph()
        gone = weakref.ref(cache)
        del cache
        gc.collect()
        assert gone() is None, "the user's cyclic garbage was not collected"
        held = weakref.ref(w)
        del w
        gc.collect()
        assert held() is None, "a pipeline in a cycle was never collected"
        assert gc.get_freeze_count() == 0
    finally:
        if not was_enabled:
            gc.disable()


EXIT_SCRIPT = """
import atexit, gc

def last():  # registered before depio_like is imported: it runs after depio_like's own
    n = sum(1 for o in gc.get_objects() if type(o).__name__ == "Task")
    print("tasks alive at the end:", n, flush=True)

atexit.register(last)

import io
from pathlib import Path
from typing import Annotated
from depio_like import Pipeline, Product, SequentialExecutor, task

@task("w")
def w(out: Annotated[Path, Product], i: int):
    Path(out).write_text(str(i))

pipeline = Pipeline(executor=SequentialExecutor(), quiet=True)
for i in range(50):
    pipeline.add_task(w(Path(f"o{i}.txt"), i))
kept = pipeline.add_task(w(Path("kept.txt"), 99))  # one the script holds itself

def seen():  # registered after: runs first, the pipeline whole
    print("tasks seen by a later handler:", len(pipeline.tasks), kept.name, flush=True)

atexit.register(seen)
exit(pipeline.run())
"""


def test_the_pipelines_let_go_of_their_tasks_when_the_interpreter_exits(tmp_path):
    # What only a pipeline holds goes by reference counting at exit, not through the
    # shutdown's collections (which traverse every task: ~0.8 s at 100,000 tasks). A
    # handler the script registers still sees every task; one the script holds stays.
    from conftest import run_script

    r = run_script(tmp_path, EXIT_SCRIPT)
    assert r.returncode == 0, r.stderr
    assert "tasks seen by a later handler: 51 w" in r.stdout
    assert "tasks alive at the end: 1" in r.stdout
    assert sorted(p.name for p in tmp_path.glob("o*.txt")) == sorted(f"o{i}.txt" for i in range(50))


BACKGROUND_RUN_SCRIPT = """
import atexit, threading
import io
from pathlib import Path

done = threading.Event()

def release_and_wait():  # registered before depio_like is imported: runs after its handler
    Path("go").touch()  # let the background run's first task end only now
    done.wait(60)

atexit.register(release_and_wait)

import time
from typing import Annotated
from depio_like import Pipeline, Product, SequentialExecutor, task

@task("w")
def w(out: Annotated[Path, Product], i: int):
    Path("started").touch()
    while not Path("go").exists():
        time.sleep(0.01)
    Path(out).write_text(str(i))

pipeline = Pipeline(executor=SequentialExecutor(), quiet=True)
for i in range(3):
    pipeline.add_task(w(Path(f"o{i}.txt"), i))

def background():  # a run in a daemon thread (a service, a GUI), still going at exit
    try:
        Path("code").write_text(str(pipeline.run()))
    except BaseException as e:
        Path("code").write_text(repr(e))
    finally:
        done.set()

threading.Thread(target=background, daemon=True).start()
while not Path("started").exists():
    time.sleep(0.01)
"""


def test_a_run_going_on_in_another_thread_keeps_its_tasks_at_exit(tmp_path):
    # The exit handler must not empty the task list under a run that has not ended:
    # handlers that run after it (registered earlier, or a library's: a cluster's close)
    # give that run's thread time to go on, and it indexes the pipeline's tasks.
    from conftest import run_script

    r = run_script(tmp_path, BACKGROUND_RUN_SCRIPT)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "code").read_text() == "0", r.stderr
    assert sorted(p.name for p in tmp_path.glob("o*.txt")) == ["o0.txt", "o1.txt", "o2.txt"]


FINALIZER_SCRIPT = """
import weakref
import dask.distributed  # noqa: F401 - a Dask script: imported before depio_like

import io
from pathlib import Path
from typing import Annotated
from depio_like import Pipeline, Product, SequentialExecutor, task

@task("w")
def w(out: Annotated[Path, Product], i: int):
    Path(out).write_text(str(i))

pipeline = Pipeline(executor=SequentialExecutor(), quiet=True)
for i in range(5):
    pipeline.add_task(w(Path(f"o{i}.txt"), i))

class Report:
    pass

report = Report()  # the script's end-of-process report, registered after the import
weakref.finalize(report, lambda p: print("finalizer sees", len(p.tasks), flush=True), pipeline)
exit(pipeline.run())
"""


def test_a_finalizer_the_script_registers_sees_every_task(tmp_path):
    # weakref.finalize's exit hook is registered once, by the first finalizer made: here by
    # dask.distributed's import, before depio_like's import. The script's finalizer, made
    # after importing depio_like, must still run before the tasks are let go.
    pytest.importorskip("dask.distributed")
    from conftest import run_script

    r = run_script(tmp_path, FINALIZER_SCRIPT)
    assert r.returncode == 0, r.stderr
    assert "finalizer sees 5" in r.stdout, r.stdout


class NamedPipeline(Pipeline):
    """A user's pipeline compared by name: defining __eq__ leaves it without a hash."""

    def __init__(self, label: str, **kwargs):
        self.label = label
        super().__init__(**kwargs)

    def __eq__(self, other):
        return isinstance(other, NamedPipeline) and other.label == self.label


def test_a_pipeline_subclass_without_a_hash_runs(project):
    # What keeps track of the pipelines for the exit must not need them hashable.
    p = NamedPipeline("a", executor=SequentialExecutor(), stream=io.StringIO())
    p.add_task(Task("w", write, ["a.txt"]))
    assert p.run() == 0
    assert Path("a.txt").read_text() == "x"
