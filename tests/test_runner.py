"""The run around the plan: what it records, what it explains, and its guards against
executors that misbehave (driven here by a scripted executor: no processes)."""

import time
from pathlib import Path
from typing import Annotated

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depio_like import Dependency, ParallelExecutor, Product, Status, Task
from depio_like.executors.base import Executor, Outcome

from conftest import calls, log_call, new_pipeline

# -- explain: one decision, one line, the real reason --------------------------------------


def make_numbers():
    log_call("a")
    return [1, 2, 3]


def write_sum(out: Annotated[Path, Product], numbers):
    log_call("b")
    Path(out).write_text(str(sum(numbers)))


def value_chain(executor=None):
    p = new_pipeline(executor)
    a = p.add_task(Task("a", make_numbers))
    p.add_task(Task("b", write_sum, ["b.txt", a]))
    return p


def explained(p, prefix="RUN "):
    return [ln for ln in p.stream.getvalue().splitlines() if ln.startswith(prefix)]


@pytest.mark.parametrize("dry", [False, True])
def test_a_value_chain_with_its_product_deleted_names_the_real_reason_of_each_task(project, dry):
    assert value_chain().run() == 0
    calls()
    Path("b.txt").unlink()
    p = value_chain()
    assert p.run(explain=True, dry_run=dry) == 0
    verdict = "WOULD-RUN" if dry else "RUN"
    assert explained(p, verdict) == [
        f"{verdict:<9} [1] 'a': its return value is needed by: [2] 'b'",
        f"{verdict:<9} [2] 'b': product missing: b.txt",
    ]
    assert calls() == ([] if dry else ["a", "b"])


def test_a_producer_reopened_for_its_value_is_explained_once(project, executor_factory):
    def consumer(out: Annotated[Path, Product], numbers):
        Path(out).write_text(repr(numbers))

    def build():
        p = new_pipeline(executor_factory())
        a = p.add_task(Task("a", make_numbers))
        p.add_task(Task("b", write_sum, ["b.txt", a]))
        p.add_task(Task("c", consumer, ["c.txt", a]))
        return p

    assert build().run() == 0
    Path("c.txt").unlink()
    p = build()
    assert p.run(explain=True) == 0
    assert explained(p) == [
        "RUN       [1] 'a': its return value is needed by: [3] 'c'",
        "RUN       [3] 'c': product missing: c.txt",
    ]
    assert Path("c.txt").read_text() == "[1, 2, 3]"


def test_a_value_argument_is_recorded_by_its_producer_not_its_status(project):
    def scaled(out: Annotated[Path, Product], numbers, factor):
        Path(out).write_text(repr([n * factor for n in numbers]))

    def build(factor):
        p = new_pipeline()
        a = p.add_task(Task("a", make_numbers))
        p.add_task(Task("b", write_sum, ["b.txt", a]))
        p.add_task(Task("s", scaled, ["s.txt", a, factor]))
        return p

    assert build(2).run() == 0
    p = build(3)
    assert p.run(explain=True) == 0
    (line,) = [ln for ln in explained(p) if "[3] 's':" in ln]
    assert "arguments changed: factor 2 -> 3" in line
    assert "numbers" not in line and "FINISHED" not in line and "WAITING" not in line


def test_many_changed_inputs_are_named_a_few_and_counted(project):
    def merge(out: Annotated[Path, Product], srcs: Annotated[list, Dependency]):
        Path(out).write_text("".join(Path(s).read_text() for s in srcs))

    names = [f"in{k:02}.txt" for k in range(15)]
    for n in names:
        Path(n).write_text("x")

    def build():
        p = new_pipeline()
        p.add_task(Task("merge", merge, ["out.txt", names]))
        return p

    assert build().run() == 0
    for n in names:
        Path(n).write_text("y")
    p = build()
    assert p.run(explain=True) == 0
    assert explained(p) == [
        "RUN       [1] 'merge': input changed: in00.txt, in01.txt, in02.txt and 12 more"
    ]


# -- values and files stay consistent (trust issue, item 5) ----------------------------


def stamp(event):
    with open("events.log", "a") as f:
        f.write(f"{event} {time.monotonic_ns()}\n")


def producer(out: Annotated[Path, Product]):
    stamp("P-start")
    Path(out).write_text("part")
    time.sleep(0.3)
    Path(out).write_text("partial-then-complete")
    stamp("P-end")
    return 42


def reader(out: Annotated[Path, Product], src: Annotated[Path, Dependency], salt: str):
    stamp("R-start")
    first = Path(src).read_text()
    time.sleep(0.6)
    Path(out).write_text(first + salt)
    stamp("R-end")


def taker(out: Annotated[Path, Product], value):
    Path(out).write_text(str(value))


def reader_and_taker(salt):
    p = new_pipeline(ParallelExecutor(max_workers=2))
    a = p.add_task(Task("p", producer, ["p.txt"]))
    p.add_task(Task("reader", reader, ["r.txt", "p.txt", salt]))
    p.add_task(Task("taker", taker, ["t.txt", a]))
    p.add_task(Task("taker2", taker, ["t2.txt", a]))  # two takers: p is not chained
    return p


def events():
    lines = Path("events.log").read_text().split("\n")
    Path("events.log").unlink()
    return sorted((int(t), e) for e, t in (ln.split() for ln in lines if ln))


def test_a_producer_rerun_for_its_value_never_rewrites_a_file_while_it_is_read(project):
    assert reader_and_taker("1").run() == 0
    events()
    # Now the reader is out of date (its argument) and so is a taker (its product is gone):
    # the producer must run again for its value, but not while the reader reads its file.
    Path("t.txt").unlink()
    assert reader_and_taker("2").run() == 0
    order = [e for _, e in events()]
    assert order in (
        ["R-start", "R-end", "P-start", "P-end"],
        ["P-start", "P-end", "R-start", "R-end"],
    ), order
    assert Path("r.txt").read_text() == "partial-then-complete2"
    # and what was recorded is true: nothing left to do
    p = reader_and_taker("2")
    assert p.run() == 0
    assert set(p.stream.getvalue().split("Tasks:")[1].split()) & {"FINISHED", "RUNNING"} == set()


def edit_my_input_while_running(
    out: Annotated[Path, Product], src: Annotated[Path, Dependency], numbers
):
    text = Path(src).read_text()
    Path(out).write_text(text + repr(numbers))
    # The user saves a new version of the input while the task runs (after it read it).
    Path(src).write_text("edited while it ran")


@pytest.mark.parametrize("chained", [True, False])
def test_the_record_holds_the_inputs_as_they_were_before_the_task_ran(
    project, executor_factory, chained
):
    Path("in.txt").write_text("original")

    def build():
        p = new_pipeline(executor_factory())
        a = p.add_task(Task("a", make_numbers))
        if not chained:  # a second taker: no chain, b is the head of its own job
            p.add_task(Task("other", write_sum, ["o.txt", a]))
        p.add_task(Task("b", edit_my_input_while_running, ["b.txt", "in.txt", a]))
        return p

    p = build()
    assert p.run() == 0
    assert (len(p.graph().nodes), chained) in ((2, True), (3, False))
    assert Path("b.txt").read_text() == "original[1, 2, 3]"
    # The input changed after b read it: b is not up to date, whatever the executor.
    p = build()
    assert p.run(explain=True) == 0
    assert any("'b': input changed: in.txt" in ln for ln in explained(p)), p.stream.getvalue()
    assert Path("b.txt").read_text() == "edited while it ran[1, 2, 3]"


# -- an executor that misbehaves ---------------------------------------------------------


class Scripted(Executor):
    """Runs nothing: answers each job with the outcomes a test scripts."""

    def __init__(self, script):
        self.script = script  # task index -> list of outcomes to report, or None: never

    def start(self, tasks, context):
        self.jobs, self.out = [], []

    def free_slots(self):
        return 4

    def submit(self, job):
        self.jobs.append(job.indices)
        for i in job.indices:
            for o in self.script.get(i, [Outcome(i, True)]) or []:
                self.out.append(o)

    def wait(self, timeout):
        out, self.out = self.out, []
        return out


def noop(tag):
    log_call(tag)


def test_an_ended_tasks_second_report_is_ignored(project):
    p = new_pipeline(Scripted({0: [Outcome(0, True), Outcome(0, False, error="late")]}))
    a = p.add_task(Task("a", noop, ["a"]))
    p.add_task(Task("b", noop, ["b"], depends_on=[a]))
    assert p.run() == 0
    assert [t.status for t in p.tasks] == [Status.FINISHED, Status.FINISHED]


def test_a_task_the_executor_never_reports_fails_instead_of_hanging(project):
    p = new_pipeline(Scripted({0: None}))
    a = p.add_task(Task("a", noop, ["a"]))
    p.add_task(Task("b", noop, ["b"], depends_on=[a]))
    assert p.run() == 1
    out = p.stream.getvalue()
    assert "the executor Scripted lost track of this task" in out
    assert [t.status for t in p.tasks] == [Status.FAILED, Status.DEPFAILED]


def broken():
    raise RuntimeError("a is broken")


def make_two(out: Annotated[Path, Product]):
    Path(out).write_text("b")
    return 2


def take_both(out: Annotated[Path, Product], x, y):
    Path(out).write_text(f"{x} {y}")


def test_a_failure_does_not_stop_a_value_producer_that_does_not_depend_on_it(
    project, executor_factory
):
    p = new_pipeline(executor_factory())
    ta = p.add_task(Task("a", broken))
    tb = p.add_task(Task("b", make_two, ["b.txt"]))
    p.add_task(Task("c", take_both, ["c.txt", tb, ta]))
    assert p.run() == 1
    assert [str(t.status) for t in p.tasks] == ["FAILED", "FINISHED", "DEPFAILED"]
    assert Path("b.txt").read_text() == "b"


@settings(max_examples=200, deadline=None)
@given(
    names=st.lists(st.text(min_size=1, max_size=50), min_size=1, max_size=4),
    keys=st.lists(
        st.one_of(
            st.text(min_size=1, max_size=30).map(lambda s: "/" + s),
            st.text(max_size=30).map(lambda s: "k:" + s),
        ),
        min_size=1,
        max_size=4,
    ),
    log_dir=st.sampled_from(["/tmp/logs", "/tmp/logs/", "logs", "/", "x/é\udcff"]),
)
def test_task_logs_name_each_task_as_task_log_does(names, keys, log_dir):
    # TaskLogs.base spells task_log out for speed: the same path for any name, key and dir.
    from types import SimpleNamespace

    from depio_like.logs import TaskLogs, task_log

    tasks = [SimpleNamespace(name=n, record_key=k) for n in names for k in keys]
    logs = TaskLogs(log_dir, tasks)
    for i in [*range(len(tasks)), 0, 0]:
        assert logs.base(i) == task_log(log_dir, tasks[i])
