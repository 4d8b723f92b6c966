"""What identifies a task: the code it runs (through decorators, bound methods and callable
objects) and the call (arguments, the instance's state, captured values). Each scenario is
a pipeline run twice or more, as a user reruns a script."""

import dataclasses
import functools
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import Product, Task, TaskDeclarationError
from depio_like.fingerprint import code_digest

from conftest import new_pipeline, run_script


def define(source, name):
    """``name`` from ``source`` run as a module of its own (a version of a user's script)."""
    ns = {
        "__name__": "user_script",
        "functools": functools,
        "Path": Path,
        "Annotated": Annotated,
        "Product": Product,
    }
    exec(compile(textwrap.dedent(source), "<user_script>", "exec"), ns)
    return ns[name]


def run(*tasks, expect_ran):
    """Run a new pipeline of ``tasks``; check which of them ran (by name)."""
    p = new_pipeline()
    added = [p.add_task(t) for t in tasks]
    assert p.run() == 0, p.stream.getvalue()
    ran = sorted({t.name for t in added if t.status.name == "FINISHED"})
    assert ran == sorted(expect_ran), p.stream.getvalue()
    return added


# -- bound methods and callable objects ------------------------------------------------------


class Model:
    def __init__(self, lr):
        self.lr = lr

    def train(self, out: Annotated[Path, Product]):
        out.write_text(f"lr={self.lr}")
        self.trained = True  # a method may change its instance as it runs

    def report(self):
        with open("report.log", "a") as f:
            f.write(f"{self.lr}\n")


def test_a_bound_method_task_reruns_when_an_attribute_of_its_instance_changes(project):
    run(Task("train", Model(0.1).train, [Path("m.txt")]), expect_ran=["train"])
    assert Path("m.txt").read_text() == "lr=0.1"
    run(Task("train", Model(0.1).train, [Path("m.txt")]), expect_ran=[])
    run(Task("train", Model(0.01).train, [Path("m.txt")]), expect_ran=["train"])
    assert Path("m.txt").read_text() == "lr=0.01"


def test_bound_methods_of_instances_with_other_state_are_other_tasks(project):
    a, b = Task("a", Model(0.1).report), Task("b", Model(0.2).report)
    assert a != b and a.record_key != b.record_key
    c = Task("c", Model(0.1).report)
    assert a == c  # same code, same state, same arguments: one task
    run(a, b, c, expect_ran=["a", "b"])
    assert sorted(Path("report.log").read_text().split()) == ["0.1", "0.2"]
    run(Task("a", Model(0.1).report), Task("b", Model(0.2).report), expect_ran=[])


@dataclasses.dataclass
class Scaler:  # a dataclass with eq=True is unhashable: it must still work as a task
    factor: int

    def __call__(self, out: Annotated[Path, Product], x: int = 1):
        out.write_text(str(self.factor * x))


def test_a_callable_object_is_identified_by_its_state(project):
    run(Task("s", Scaler(2), [Path("s.txt")]), expect_ran=["s"])
    run(Task("s", Scaler(2), [Path("s.txt")]), expect_ran=[])
    run(Task("s", Scaler(3), [Path("s.txt")]), expect_ran=["s"])
    assert Path("s.txt").read_text() == "3"
    assert Task("s", Scaler(2), [Path("a")]) != Task("s", Scaler(3), [Path("b")])
    assert (
        Task("s", Scaler(2), [Path("a")]).record_key == Task("t", Scaler(2), [Path("a")]).record_key
    )


def test_an_instance_changed_by_its_own_task_is_up_to_date_on_the_next_run(project):
    # The record holds the state the run decided on, not the one the task left behind.
    run(Task("train", Model(0.5).train, [Path("m.txt")]), expect_ran=["train"])
    run(Task("train", Model(0.5).train, [Path("m.txt")]), expect_ran=[])


def test_an_attribute_without_a_stable_encoding_counts_by_its_type_alone(project):
    import threading

    class Locked:
        def __init__(self, n):
            self.lock = threading.Lock()  # cannot be pickled: not what the task computes
            self.n = n

        def work(self, out: Annotated[Path, Product]):
            out.write_text(str(self.n))

    t = Task("w", Locked(1).work, [Path("w.txt")])
    assert t.unfingerprintable is None
    run(t, expect_ran=["w"])
    run(Task("w", Locked(1).work, [Path("w.txt")]), expect_ran=[])
    run(Task("w", Locked(2).work, [Path("w.txt")]), expect_ran=["w"])


# -- decorators ------------------------------------------------------------------------------

LRU = """
@functools.lru_cache(maxsize=None)
def make(out, n):
    Path(out).write_text(str(n * 2))
"""

CACHE = """
@functools.cache
def make(out, n):
    Path(out).write_text(str(n * 2))
"""

WRAPS = """
def logged(f):
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        return f(*args, **kwargs)
    return wrapper

@logged
def make(out: Annotated[Path, Product], n: int):
    out.write_text(str(n * 2))
"""

CLASS_DECORATOR = """
class Traced:
    def __init__(self, f):
        functools.update_wrapper(self, f)
        self.calls = 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.__wrapped__(*args, **kwargs)

@Traced
def make(out: Annotated[Path, Product], n: int):
    out.write_text(str(n * 2))
"""


@pytest.mark.parametrize(
    "source",
    [LRU, CACHE, WRAPS, CLASS_DECORATOR],
    ids=["lru_cache", "cache", "wraps", "class-decorator"],
)
def test_editing_the_body_behind_a_decorator_reruns_the_task(project, source):
    v1 = define(source, "make")
    v2 = define(source.replace("n * 2", "n * 3"), "make")
    args = [Path("out.txt"), 5]
    run(Task("make", v1, args), expect_ran=["make"])
    run(Task("make", define(source, "make"), args), expect_ran=[])
    run(Task("make", v2, args), expect_ran=["make"])
    assert Path("out.txt").read_text() == "15"
    assert code_digest(v1) != code_digest(v2)


@pytest.mark.parametrize("source", [WRAPS, CLASS_DECORATOR], ids=["wraps", "class-decorator"])
def test_a_decorated_function_keeps_its_markers(project, source):
    t = Task("make", define(source, "make"), [Path("o.txt"), 1])
    assert t.products == (str(project / "o.txt"),)


# -- no stale code digest within one process -------------------------------------------------


def test_a_changed_closure_variable_is_seen_by_the_next_run_in_the_same_process(project):
    greeting = "hello"

    def write(out: Annotated[Path, Product]):
        out.write_text(greeting)

    run(Task("w", write, [Path("w.txt")]), expect_ran=["w"])
    run(Task("w", write, [Path("w.txt")]), expect_ran=[])
    greeting = "bonjour"  # noqa: F841 - read by write() through its closure
    run(Task("w", write, [Path("w.txt")]), expect_ran=["w"])
    assert Path("w.txt").read_text() == "bonjour"


def test_the_same_pipeline_run_again_after_a_closure_variable_changed_reruns(project):
    scale = 2

    def write(out: Annotated[Path, Product]):
        out.write_text(str(scale))

    p = new_pipeline()
    t = p.add_task(Task("w", write, [Path("w.txt")]))
    assert p.run() == 0 and t.status.name == "FINISHED"
    assert p.run() == 0 and t.status.name == "SKIPPED"
    scale = 3  # noqa: F841
    assert p.run() == 0 and t.status.name == "FINISHED"
    assert Path("w.txt").read_text() == "3"


# -- factories -------------------------------------------------------------------------------


def make_counter(label):
    def count():
        with open("counts.log", "a") as f:
            f.write(label + "\n")

    return count


def test_product_less_tasks_of_one_factory_are_distinct_and_each_runs_once(project):
    a, b = make_counter("a"), make_counter("b")
    ta, tb = Task("count", a), Task("count", b)
    assert ta.record_key != tb.record_key and ta != tb
    run(ta, tb, expect_ran=["count"])  # both named "count": both ran
    assert sorted(Path("counts.log").read_text().split()) == ["a", "b"]
    run(Task("count", make_counter("a")), Task("count", make_counter("b")), expect_ran=[])
    assert sorted(Path("counts.log").read_text().split()) == ["a", "b"]


def test_a_factory_task_and_its_twin_with_equal_captured_values_merge(project):
    p = new_pipeline()
    first = p.add_task(Task("one", make_counter("x")))
    assert p.add_task(Task("two", make_counter("x"))) is first


def test_partials_are_identified_by_their_arguments_not_by_their_address(project):
    def note(label):
        with open("notes.log", "a") as f:
            f.write(label + "\n")

    ta = Task("n", functools.partial(note, "a"))
    tb = Task("n", functools.partial(note, "b"))
    assert ta.record_key != tb.record_key
    assert "0x" not in ta.record_key
    assert Task("n", functools.partial(note, "a")).record_key == ta.record_key
    run(ta, tb, expect_ran=["n"])
    run(
        Task("n", functools.partial(note, "a")),
        Task("n", functools.partial(note, "b")),
        expect_ran=[],
    )
    assert sorted(Path("notes.log").read_text().split()) == ["a", "b"]


# -- across processes: a script run twice ----------------------------------------------------


def test_a_script_with_methods_factories_and_decorators_settles_on_the_second_run(project):
    source = """
        import functools
        from dataclasses import dataclass
        from pathlib import Path
        from typing import Annotated
        from depio_like import ParallelExecutor, Pipeline, Product, Task

        @dataclass
        class Model:
            lr: float
            tags: frozenset = frozenset({"a", "b", "c"})

            def train(self, out: Annotated[Path, Product]):
                out.write_text(str(self.lr))

        def factory(k):
            def scale():
                with open("log.txt", "a") as f:
                    f.write(f"scale {k}\\n")
            return scale

        @functools.lru_cache
        def plain(out: Annotated[Path, Product]):
            out.write_text("plain")

        p = Pipeline(executor=ParallelExecutor(2))
        for lr in (0.1, 0.2):
            p.add_task(Task(f"train {lr}", Model(lr).train, [Path(f"m{lr}.txt")]))
        for k in (1, 2):
            p.add_task(Task(f"scale {k}", factory(k)))
        p.add_task(Task("plain", plain, [Path("plain.txt")]))
        exit(p.run())
    """
    first = run_script(project, source)
    assert first.returncode == 0, first.stdout + first.stderr
    # Another hash seed: a set's order differs, the identities must not.
    env = dict(os.environ, PYTHONHASHSEED="7")
    env.pop("CI", None)
    second = subprocess.run(
        [sys.executable, "pipeline.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "5 up to date" in second.stdout, second.stdout
    assert sorted((project / "log.txt").read_text().splitlines()) == ["scale 1", "scale 2"]


def test_a_callable_that_is_not_a_function_still_names_its_records_stably():
    t = Task("s", Scaler(1), [Path("o")])
    assert "0x" not in t.record_key and "0x" not in repr(t)


def test_refused_callables_say_why():
    with pytest.raises(TaskDeclarationError, match="needs a callable"):
        Task("x", 42)


class CountedState:
    """A captured value that counts how often its identity is read."""

    reads = 0

    def __depio_canonical__(self):
        CountedState.reads += 1
        return "counted"


def test_state_shared_by_many_tasks_is_read_once_per_declaration_burst_and_per_run(project):
    state = CountedState()

    def step(out: Annotated[Path, Product], i: int):
        out.write_text(f"{i} {state}")

    CountedState.reads = 0
    p = new_pipeline()
    for i in range(200):
        p.add_task(Task("step", step, [Path(f"o{i}.txt"), i]))
    assert CountedState.reads == 1
    assert p.run() == 0
    assert CountedState.reads == 2  # once more for the run's up-to-date checks
    assert p.run() == 0 and all(t.status.name == "SKIPPED" for t in p.tasks)
    assert CountedState.reads == 3


FACTORY_MODULE = """
import io
from depio_like import Pipeline, SequentialExecutor, Task

CFG = {"v": 0}

def make(name, cfg):
    def report():
        with open("calls.log", "a") as f:
            f.write(f"{name} {cfg['v']}\\n")
    return report

task_fn = make("t", CFG)

def build():
    p = Pipeline(SequentialExecutor(), stream=io.StringIO())
    p.add_task(Task("t", task_fn))
    return p
"""


def test_a_captured_dict_changed_in_place_is_seen_by_the_next_pipeline_of_the_process(project):
    # The oracle's finding: the state a closure carries was remembered by object identity,
    # so a dict changed in place between two pipelines of one process kept its old identity
    # there, and a fresh process then disagreed with the record (a rerun every time).
    import importlib
    import subprocess
    import sys

    Path("factory_mod.py").write_text(FACTORY_MODULE)
    sys.path.insert(0, str(project))
    try:
        mod = importlib.import_module("factory_mod")
        assert mod.build().run() == 0
        mod.CFG["v"] = 1
        assert mod.build().run() == 0
        assert mod.build().run() == 0
    finally:
        sys.path.remove(str(project))
        sys.modules.pop("factory_mod", None)
    fresh = subprocess.run(
        [sys.executable, "-c", "import factory_mod as m; m.CFG['v'] = 1; exit(m.build().run())"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert fresh.returncode == 0, fresh.stderr
    assert Path("calls.log").read_text().split("\n")[:-1] == ["t 0", "t 1"]


# -- a product-less task's call includes the calls of the tasks it takes values from --------


def _value(param):
    return f"v{param}"


def _relay(v):
    return v + "!"


def _write(out: Annotated[Path, Product], v):
    out.write_text(v)


def test_a_product_less_reader_back_to_an_upstream_call_uses_that_calls_record(project):
    """The reader of a product-less producer is another call when the producer's argument
    changes; back to the first argument, both are judged by the first call's records and
    the file written from their values is what a clean build writes."""

    def tasks(param):
        a = Task("value", _value, [param])
        b = Task("relay", _relay, [a])
        return a, b, Task("write", _write, [Path("w.txt"), b])

    run(*tasks(1), expect_ran=["value", "relay", "write"])
    assert Path("w.txt").read_text() == "v1!"
    run(*tasks(2), expect_ran=["value", "relay", "write"])
    assert Path("w.txt").read_text() == "v2!"
    # The file is v2's: "write" reruns, and needs "relay"'s value, so both producers run.
    run(*tasks(1), expect_ran=["value", "relay", "write"])
    assert Path("w.txt").read_text() == "v1!"
    run(*tasks(1), expect_ran=[])
    # Without the file writer, the two product-less calls of the second argument are
    # still recorded: nothing to do.
    a, b, _ = tasks(2)
    run(a, b, expect_ran=[])
