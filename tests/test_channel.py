"""The object channel: return values handed to the tasks that take them as arguments."""

import os
import signal
import time
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import (
    Dependency,
    ParallelExecutor,
    Product,
    SequentialExecutor,
    Status,
    SubmitItExecutor,
    Task,
    task,
)

from conftest import calls, log_call, new_pipeline

ALL = {
    "sequential": SequentialExecutor,
    "parallel": lambda: ParallelExecutor(max_workers=2),
    "submitit-local": lambda: SubmitItExecutor(cluster="local"),
}


@pytest.fixture(params=sorted(ALL))
def any_executor(request):
    return ALL[request.param]


class Unpicklable:
    """A value that refuses to be pickled: it can only travel within one process."""

    def __init__(self, data):
        self.data = data

    def __reduce__(self):
        raise TypeError("Unpicklable refuses to be pickled")


def load(src: Annotated[Path, Dependency]):
    log_call("load")
    return [int(x) for x in Path(src).read_text().split()]


def transform(numbers, factor: int = 2):
    log_call("transform")
    return [n * factor for n in numbers]


def write(out: Annotated[Path, Product], numbers):
    log_call("write")
    Path(out).write_text(" ".join(map(str, numbers)))


def three_steps(executor):
    p = new_pipeline(executor)
    a = p.add_task(Task("load", load, ["in.txt"]))
    b = p.add_task(Task("transform", transform, [a]))
    p.add_task(Task("write", write, ["out.txt"], {"numbers": b}))
    return p


def test_three_steps_pass_values_skip_on_rerun_and_rerun_on_change(project, any_executor):
    Path("in.txt").write_text("1 2 3")
    p = three_steps(any_executor())
    assert p.run() == 0, p.stream.getvalue()
    assert Path("out.txt").read_text() == "2 4 6"
    assert calls() == ["load", "transform", "write"]

    p = three_steps(any_executor())
    assert p.run() == 0
    assert calls() == [] and {t.status for t in p.tasks} == {Status.SKIPPED}

    Path("in.txt").write_text("5 6")
    p = three_steps(any_executor())
    assert p.run() == 0
    assert calls() == ["load", "transform", "write"]
    assert Path("out.txt").read_text() == "10 12"
    assert not list(Path(".depio_like").glob("values/*"))  # value files are gone


def test_chain_runs_as_one_job_with_its_own_statuses(project):
    Path("in.txt").write_text("1")
    p = three_steps(SubmitItExecutor(cluster="local"))
    assert p.run() == 0
    out = p.stream.getvalue()
    table = out[out.rindex("Tasks:") :].splitlines()[3:]
    rows = [ln.split() for ln in table if ln[:1].isdigit() and "  " in ln]
    slurm_ids = {r[-2] for r in rows if r[2] == "FINISHED"}
    assert len(rows) == 3 and len(slurm_ids) == 1  # three tasks, one job


def test_in_process_values_are_the_same_object(project):
    seen = {}

    def make():
        obj = Unpicklable([1, 2])
        seen["made"] = obj
        return obj

    def use(o, name: str):
        seen[name] = o

    p = new_pipeline(SequentialExecutor())
    maker = p.add_task(Task("make", make))
    p.add_task(Task("use1", use, [maker, "one"]))  # two consumers: no chain, still one process
    p.add_task(Task("use2", use, [maker], {"name": "two"}))
    assert p.run() == 0, p.stream.getvalue()
    assert seen["one"] is seen["made"] and seen["two"] is seen["made"]


def test_unpicklable_value_stays_in_one_worker_process(project):
    def make():
        return Unpicklable(41)

    def use(out: Annotated[Path, Product], o):
        Path(out).write_text(str(o.data + 1))

    p = new_pipeline(ParallelExecutor(max_workers=2))
    maker = p.add_task(Task("make", make))
    p.add_task(Task("use", use, ["u.txt", maker]))
    assert p.run() == 0, p.stream.getvalue()
    assert Path("u.txt").read_text() == "42"


def test_unpicklable_value_between_processes_names_both_tasks(project):
    def make():
        return Unpicklable(1)

    def use(out: Annotated[Path, Product], o):
        Path(out).write_text("x")

    p = new_pipeline(ParallelExecutor(max_workers=2))
    maker = p.add_task(Task("make", make))
    p.add_task(Task("left", use, ["l.txt", maker]))
    p.add_task(Task("right", use, ["r.txt", maker]))
    assert p.run() == 1
    out = p.stream.getvalue()
    assert "FAILED    [1] 'make'" in out
    assert "cannot be handed to [2] 'left', [3] 'right'" in out
    assert "Unpicklable refuses to be pickled" in out


def test_values_in_lists_and_keywords_with_the_decorator(project, any_executor):
    @task
    def number(n: int):
        return n

    @task
    def total(out: Annotated[Path, Product], parts, bonus=0):
        Path(out).write_text(str(sum(parts) + bonus))

    p = new_pipeline(any_executor())
    ns = [p.add_task(number(n)) for n in (1, 2, 3)]
    p.add_task(total("sum.txt", ns, bonus=p.add_task(number(10))))
    assert p.run() == 0, p.stream.getvalue()
    assert Path("sum.txt").read_text() == "16"


def test_skipped_producer_reruns_when_one_consumer_needs_its_value(project, executor_factory):
    def source():
        log_call("source")
        return "payload"

    def sink(out: Annotated[Path, Product], value):
        log_call(f"sink-{Path(out).stem}")
        Path(out).write_text(value)

    def build():
        p = new_pipeline(executor_factory())
        s = p.add_task(Task("source", source))
        p.add_task(Task("a", sink, ["a.txt", s]))
        p.add_task(Task("b", sink, ["b.txt", s]))
        return p

    def no_value_files_left():  # one producer, two consumers: with workers, files
        return not list(Path(".depio_like").glob("values/*"))

    assert build().run() == 0
    assert sorted(calls()) == ["sink-a", "sink-b", "source"]
    assert no_value_files_left()
    assert build().run() == 0
    assert calls() == []
    Path("b.txt").unlink()
    p = build()
    assert p.run() == 0, p.stream.getvalue()
    assert no_value_files_left()
    assert sorted(calls()) == ["sink-b", "source"]
    assert Path("b.txt").read_text() == "payload"
    assert {t.name: t.status.value for t in p.tasks} == {
        "source": "FINISHED",
        "a": "SKIPPED",
        "b": "FINISHED",
    }


def test_consumer_key_covers_the_producer(project):
    def source(k: int):
        log_call(f"source{k}")
        return k

    def sink(out: Annotated[Path, Product], value):
        log_call("sink")
        Path(out).write_text(str(value))

    for k, expected in ((1, ["source1", "sink"]), (1, []), (2, ["source2", "sink"])):
        p = new_pipeline()
        s = p.add_task(Task("source", source, [k]))
        p.add_task(Task("sink", sink, ["s.txt", s]))
        assert p.run() == 0
        assert calls() == expected


def test_failed_producer_fails_its_consumers(project, executor_factory):
    def bad():
        raise RuntimeError("no value today")

    def use(out: Annotated[Path, Product], v):
        Path(out).write_text("x")

    p = new_pipeline(executor_factory())
    b = p.add_task(Task("bad", bad))
    u = p.add_task(Task("use", use, ["u.txt", b]))
    assert p.run() == 1
    assert b.status is Status.FAILED and u.status is Status.DEPFAILED


def test_value_from_a_task_not_in_the_pipeline_is_an_error(project):
    from depio_like import UnknownTaskError

    def f():
        return 1

    def g(v):
        pass

    p = new_pipeline()
    p.add_task(Task("g", g, [Task("stranger", f)]))
    with pytest.raises(UnknownTaskError, match="'g' takes the value of task 'stranger'"):
        p.run()


def test_ctrl_c_in_a_chain_keeps_the_steps_that_ended(project):
    """SequentialExecutor: a Ctrl-C during the second step of a chain does not count the
    first as cancelled, so delete_on_error leaves its fresh product alone."""

    def first(out: Annotated[Path, Product]):
        Path(out).write_text("first")
        return 1

    def second(v):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, while this step runs
        time.sleep(60)  # interrupted at once

    p = new_pipeline(SequentialExecutor(), delete_on_error=True)
    a = p.add_task(Task("first", first, ["first.txt"]))
    b = p.add_task(Task("second", second, [a]))
    assert p.run() == 130
    assert Path("first.txt").read_text() == "first"
    assert b.status is Status.CANCELLED


# -- the value store: how long a value is kept ---------------------------------------------


def store(consumers, producers, units=()):
    dropped = []
    from depio_like.channel import ValueStore

    return ValueStore(consumers, producers, dropped.append, units), dropped


def test_a_value_is_kept_while_a_skipped_consumer_may_still_be_reopened():
    # 0 -> 1 (value), 1 -> 2 (value). 1 is skipped, but 2 may still need 1's value, and
    # then 1 runs again and needs 0's value.
    s, dropped = store({0: [1], 1: [2]}, [(), (0,), (1,)])
    s.put(0, "v0")
    s.ended(0, True)
    s.ended(1, False)  # skipped
    assert s.has(0) and dropped == []
    s.ended(2, True)  # 2 is over: nothing can reopen 1 any more
    assert dropped == ["v0"] and not s.has(0)


def test_a_value_goes_once_every_taker_settled():
    s, dropped = store({0: [1, 2]}, [(), (0,), (0,)])
    s.put(0, "v")
    s.ended(1, True)
    assert dropped == []
    s.ended(2, True)
    assert dropped == ["v"]


def test_the_first_task_of_a_chain_keeps_its_inputs_while_the_chain_may_be_reopened():
    # 0 gives its value to 1; 1 -> 2 is a chain (one job) whose last task's value 3 takes.
    # 1 and 2 are skipped; if 3 then needs 2's value the chain runs again from 1, which
    # needs 0's value: 1 must not count as settled when it is skipped.
    s, dropped = store({0: [1], 2: [3]}, [(), (0,), (), (2,)], units=[(0,), (1, 2), (3,)])
    s.put(0, "v0")
    s.ended(1, False)
    s.ended(2, False)
    assert dropped == [] and s.has(0)
    s.ended(3, True)  # 3 took 2's value or never needed it: the chain settles
    assert not s.has(0) and dropped == ["v0"]


def test_a_value_nobody_waits_for_is_dropped_at_once():
    s, dropped = store({0: [1]}, [(), (0,)])
    s.ended(1, True)
    s.put(0, "late")
    assert dropped == ["late"] and not s.has(0)


def test_a_run_keeps_only_values_that_cross_from_one_job_to_another(tmp_path):
    # 0 -> 1 in one job (a chain: the very object is handed over), 1 -> 2 across jobs.
    from depio_like.channel import ValueStore, dump_value

    s = ValueStore.between_jobs([(), (0,), (1,)], unit_of=[0, 0, 1], units=[(0, 1), (2,)])
    assert list(s.takers(0)) == [] and list(s.takers(1)) == [2]
    assert not s.wanted(0) and s.wanted(1)
    v = dump_value("v1", str(tmp_path / "values" / "1"))
    s.put(1, v)
    assert s.inputs([2]) == {1: v}
    s.ended(2, True)  # its only taker ran: the value's file goes
    assert not s.has(1) and not os.path.exists(v.path)
