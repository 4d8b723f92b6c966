"""Declaring tasks: binding, markers, path normalisation, identity."""

import io
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import (
    Dependency,
    Pipeline,
    Product,
    SequentialExecutor,
    Task,
    TaskDeclarationError,
    task,
)


def copy(out: Annotated[Path, Product], src: Annotated[Path, Dependency] = None, n: int = 1):
    pass


def test_decorator_forms_return_tasks_without_running():
    ran = []

    @task
    def a(x: int):
        ran.append(x)

    @task("named")
    def b(x: int):
        ran.append(x)

    @task(name="kw", always=True)
    def c(x: int):
        ran.append(x)

    ta, tb, tc = a(1), b(2), c(3)
    assert ran == []
    assert all(isinstance(t, Task) for t in (ta, tb, tc))
    assert (ta.name, tb.name, tc.name) == ("a", "named", "kw")
    assert tc.always and not ta.always
    ta.run()
    assert ran == [1]


def test_unknown_decorator_option_is_an_error():
    with pytest.raises(TypeError, match="unknown option"):
        task("x", colour="red")


def test_binding_errors_name_the_function(project):
    # Task() may leave arguments out, as in depio (whose own tests do): run() refuses it,
    # naming the function, the missing arguments and where the task was declared.
    p = Pipeline(SequentialExecutor(), stream=io.StringIO())
    p.add_task(Task("t", copy))
    with pytest.raises(
        TaskDeclarationError, match=r"'t'.*test_task.py:\d+.*copy\(.*missing.*'out';"
    ):
        p.run()
    assert not Path(".depio_like").exists()  # refused before anything ran
    with pytest.raises(TypeError, match=r"copy\(\).*missing a required argument: 'out'"):
        task(copy)()  # a call of a decorated function must be complete
    with pytest.raises(TypeError, match=r"copy\(\).*unexpected keyword argument 'nope'"):
        Task("t", copy, ["a"], {"nope": 1})
    dec = task(copy)
    with pytest.raises(TaskDeclarationError, match=r"copy\(\)"):
        dec("a", "b", 1, 2)


def test_products_and_dependencies_from_annotations(project):
    t = Task("t", copy, ["out.txt"], {"src": Path("in.txt")})
    assert t.products == (str(project / "out.txt"),)
    assert t.dependencies == (str(project / "in.txt"),)


def test_none_means_not_used_and_lists_are_accepted(project):
    def many(outs: Annotated[list, Product], ins: Annotated[list, Dependency] = None):
        pass

    t = Task("t", many, [["a", Path("b")]])
    assert t.products == (str(project / "a"), str(project / "b"))
    assert t.dependencies == ()


def test_paths_are_normalised_for_identity(project):
    a = Task("one", copy, ["build/a.txt"])
    b = Task("two", copy, [Path("./x/../build/a.txt")])
    assert a == b and hash(a) == hash(b)
    assert a.products == b.products == (str(project / "build" / "a.txt"),)


def test_defaults_count_in_identity():
    assert Task("a", copy, ["o"], {"n": 1}) == Task("b", copy, ["o"])
    assert Task("a", copy, ["o"], {"n": 2}) != Task("b", copy, ["o"])


def test_different_functions_are_different_tasks():
    def copy2(out: Annotated[Path, Product], src: Annotated[Path, Dependency] = None, n: int = 1):
        pass

    assert Task("a", copy, ["o"]) != Task("a", copy2, ["o"])


def test_product_that_is_not_a_path_names_function_and_parameter():
    with pytest.raises(TaskDeclarationError, match=r"copy\(\): parameter 'out' .*Product.*int 3"):
        Task("t", copy, [3])


def test_depends_on_takes_tasks_or_paths(project):
    # A path in depends_on (depio) is a dependency: the task waits for its producer.
    t = Task("t", copy, ["o"], depends_on=["other", Path("more")])
    assert t.dependencies == (str(project / "other"), str(project / "more"))
    with pytest.raises(TaskDeclarationError, match="depends_on takes tasks or paths"):
        Task("t", copy, ["o"], depends_on=[3])


def test_decorated_call_takes_depends_on():
    first = Task("first", copy, ["a"])
    t = task(copy)("b", depends_on=[first])
    assert t.depends_on == [first]


def test_unpicklable_argument_gives_a_task_that_never_merges():
    import threading

    def f(lock):
        pass

    lock = threading.Lock()
    a, b = Task("a", f, [lock]), Task("b", f, [lock])
    assert a != b
    assert a.unfingerprintable


def test_resources_are_checked_when_declared():
    from depio_like.resources import Resources

    t = Task(
        "r",
        copy,
        ["o"],
        resources={
            "cpus": 4,
            "memory": "2G",
            "gpus": 1,
            "time": "01:30:00",
            "slurm": {"partition": "gpu"},
        },
    )
    assert t.resources == Resources(
        cpus=4, memory_mb=2048, gpus=1, time_min=90, slurm={"partition": "gpu"}
    )
    assert Task("r", copy, ["o"], resources={"memory": 512, "time": 5}).resources.memory_mb == 512
    with pytest.raises(TaskDeclarationError, match=r"task 'r'.*unknown resource key.*'cpu'"):
        Task("r", copy, ["o"], resources={"cpu": 4})
    with pytest.raises(TaskDeclarationError, match=r"memory"):
        Task("r", copy, ["o"], resources={"memory": "lots"})
    with pytest.raises(TaskDeclarationError, match=r"@task on copy.*unknown resource key"):
        task(resources={"ram": 1})(copy)
    with pytest.raises(TaskDeclarationError, match="retries"):
        Task("r", copy, ["o"], retries=-1)


_GOT = []


def paths_of_call(
    out: Annotated[Path, Product],
    src: Annotated[Path, Dependency] = None,
    note: Path = None,
    label: str = "",
    *,
    log: Annotated[Path, Product] = None,
):
    _GOT.append((out, src, note, label, log))
    for p in (out, log):
        if p is not None:
            Path(p).write_text("x")


def test_path_arguments_read_back_and_reach_the_call_as_given(project):
    # A task may keep the PosixPaths it was given as strs: what it shows (args, kwargs,
    # arguments) and what the function gets must still be the paths given, and a str
    # given stays a str where the task shows it.
    import pickle

    got = _GOT
    got.clear()
    Path("in.txt").write_text("i")
    out, src, note, log = Path("a.txt"), project / "in.txt", Path("n/x"), Path("a.log")
    t = Task("t", paths_of_call, [out, src], {"note": note, "label": "l", "log": log})
    assert t.args == (out, src) and [type(a) for a in t.args] == [type(out)] * 2
    assert t.kwargs == {"note": note, "label": "l", "log": log}
    assert type(t.kwargs["note"]) is type(note) and type(t.kwargs["log"]) is type(log)
    assert t.arguments == {"out": out, "src": src, "note": note, "label": "l", "log": log}
    assert type(t.arguments["out"]) is type(out)
    u = Task("u", paths_of_call, ["b.txt"], {"note": "n/x"})  # strs: shown as given
    assert t.products == (str(project / "a.txt"), str(project / "a.log"))
    assert u.args == ("b.txt",) and u.kwargs == {"note": "n/x"}
    assert u.arguments["out"] == "b.txt" and u.arguments["note"] == "n/x"
    assert (
        Task("t2", paths_of_call, [str(out), str(src)], {"note": note, "label": "l", "log": log})
        == t
    )
    back = pickle.loads(pickle.dumps(t))
    assert back.args == t.args and back.kwargs == t.kwargs and back == t

    p = Pipeline(SequentialExecutor(), stream=io.StringIO())
    p.add_task(t)
    p.add_task(u)
    assert p.run() == 0
    assert got[0] == (out, src, note, "l", log)
    assert [type(v) for v in got[0] if v != "l"] == [type(out)] * 4
    assert got[1] == (Path("b.txt"), None, Path("n/x"), "", None)


def test_a_task_without_keyword_arguments_shares_no_dict_it_can_change():
    t, u = Task("t", copy, ["a.txt"]), Task("u", copy, ["b.txt"])
    assert t.kwargs == {} and t.slurm_parameters == {}
    with pytest.raises(TypeError):
        t.kwargs["n"] = 2
    t.slurm_parameters["slurm_partition"] = "gpu"  # its own, as it always was
    assert t.slurm_parameters == {"slurm_partition": "gpu"}
    assert u.kwargs == {} and u.slurm_parameters == {}


def test_attributes_most_tasks_leave_unset_read_back_per_task(project):
    t = Task("t", copy, ["a.txt"], description="first", slurm_parameters={"slurm_partition": "x"})
    u = Task("u", copy, ["b.txt"])
    assert (t.description, t.slurm_parameters) == ("first", {"slurm_partition": "x"})
    assert (u.description, u.slurm_parameters, u.missing, u.declared_at) == ("", {}, (), "")
    u.description = "second"
    t.variants = ("v1",)
    assert (t.description, u.description, t.variants, u.variants) == (
        "first",
        "second",
        ("v1",),
        (),
    )
    m = Task("m", copy)  # depio allows a call missing arguments: run() refuses it
    assert m.missing == ("out",) and "test_task.py" in m.declared_at and t.missing == ()
    assert m.arguments == {"src": None, "n": 1}


@pytest.mark.timeout(60)
def test_an_argument_that_holds_itself_is_declared_not_walked_for_ever():
    # A list that contains itself (or a dict holding its own list): looking for tasks in
    # the arguments walked it for ever, and the declaration hung.
    def f(data):
        pass

    data: list = [1]
    data.append(data)
    box = {"data": data, "self": None}
    box["self"] = box
    a = Task("a", f, [data])
    b = Task("b", f, [box])
    assert a.unfingerprintable and b.unfingerprintable
    assert a.value_inputs == () and b.value_inputs == ()
