"""The decorator's quick declaration of the usual call (task.py ``_usual_task``) must make
the very task ``Task(name, func, args)`` makes: every slot equal, the same identity (the
args digest is kept in records: a difference would rerun every task once), the same merge.
Property test over paths (str and PosixPath, relative, with ``.``/``..``/trailing slashes,
non-ASCII and undecodable bytes) and plain values of every kind."""

from __future__ import annotations

import inspect
import math
import os
import pathlib
import pickle
import sys
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from depio_like import Dependency, Pipeline, Product, SequentialExecutor, Task, task

_task_mod = sys.modules["depio_like.task"]

_SENTINEL = object()


def _slots(t: Task) -> dict[str, Any]:
    out = {}
    for cls in type(t).__mro__:
        for name in getattr(cls, "__slots__", ()):
            out[name] = getattr(t, name, _SENTINEL)
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, tuple) and isinstance(b, tuple):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(_same(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict) and isinstance(b, dict):  # the keyword arguments' order too
        return (
            type(a) is type(b)
            and list(a) == list(b)
            and _same(tuple(a.values()), tuple(b.values()))
        )
    return type(a) is type(b) and a == b


def _declared_both_ways(
    func: Any, args: list[Any], kwargs: dict[str, Any] | None = None
) -> tuple[Task, Task | None] | None:
    """The task of one call bound to the parameters (``Task``'s general way) and its quick
    declaration; None when both refuse it. The functional interface, ``Task("t", func,
    args, kwargs)``, which declares the quick way when it can, must make the general
    task too."""
    shape = _task_mod._usual_shape(func)
    assert shape is not None
    general = Task.__new__(Task)
    try:
        general._bind_call("t", func, list(args), kwargs)
    except Exception as e:  # a path no filesystem takes: every way refuses it
        with pytest.raises(type(e)):
            task("t")(func)(*args, **(kwargs or {}))
        with pytest.raises(type(e)):
            Task("t", func, list(args), kwargs)
        return None
    _assert_same_task(Task("t", func, list(args), kwargs), general)
    if kwargs or len(args) != shape.n:  # as the decorator chooses
        return general, _task_mod._usual_task_kw(shape, "t", func, tuple(args), kwargs or {})
    return general, _task_mod._usual_task(shape, "t", func, tuple(args))


def _by_keyword(
    func: Any, args: list[Any], n_kw: int, order: list[int], omit: list[bool] | None = None
) -> tuple[list, dict]:
    """The call ``func(*args)`` with its last ``n_kw`` arguments given by keyword, in the
    order ``order`` draws (a permutation's key), and those with a default that ``omit``
    draws left out (by keyword, or at the end of the positional ones)."""
    params = list(inspect.signature(func).parameters.values())
    left_out = [
        bool(omit and omit[i % len(omit)]) and p.default is not inspect.Parameter.empty
        for i, p in enumerate(params)
    ]
    cut = len(args) - min(n_kw, len(args))
    keyed = sorted(range(cut, len(args)), key=lambda i: order[i % len(order)] * 10 + i)
    positional = args[:cut]
    while positional and left_out[len(positional) - 1]:
        positional = positional[:-1]
    if len(positional) < cut:  # the positional ones end early: no keyword after them
        return positional, {}
    return positional, {params[i].name: args[i] for i in keyed if not left_out[i]}


def _assert_same_task(quick: Task, general: Task) -> None:
    """The quick declaration made the task ``Task`` made: every slot, identity, call."""
    a, b = _slots(quick), _slots(general)
    assert set(a) == set(b)
    for name in a:
        assert _same(a[name], b[name]), (name, a[name], b[name])
    assert quick == general and hash(quick) == hash(general)
    assert _same(quick.args, general.args) and quick.kwargs == general.kwargs
    assert quick.arguments.keys() == general.arguments.keys()


def out3(out: Annotated[Path, Product], a, b: int = 3, c: str = "x"):
    pass


def out_first(out: Annotated[Path, Product]):
    pass


def out_last(a, b, out: Annotated[Path, Product]):
    pass


def out_str(out: Annotated[str, Product], n):
    pass


FUNCS = [(out3, 0, 4), (out_first, 0, 1), (out_last, 2, 3), (out_str, 0, 2)]

_name_chars = st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",))
names = st.one_of(
    st.text(_name_chars, min_size=1, max_size=8),
    st.sampled_from([".", "..", "f.txt", "d", "é", "\udcff"]),
)
paths = st.builds(
    lambda absolute, parts, trail: ("/" if absolute else "") + "/".join(parts) + trail,
    st.booleans(),
    st.lists(names, min_size=1, max_size=4),
    st.sampled_from(["", "/", "/."]),
)
plain = st.one_of(
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.text(max_size=6),
    st.sampled_from(["\udcff", "a'b", 'q"']),
)


# How a call gives its arguments (``_by_keyword``): how many of the last ones by keyword,
# in which order, and which parameters with defaults it leaves out.
CALL_FORM = {
    "n_kw": st.integers(0, 4),
    "order": st.lists(st.integers(0, 9), min_size=4, max_size=4),
    "omit": st.lists(st.booleans(), min_size=4, max_size=4),
}


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    which=st.sampled_from(range(len(FUNCS))),
    path=paths,
    as_posix=st.booleans(),
    values=st.lists(plain, min_size=3, max_size=3),
    **CALL_FORM,
)
def test_the_quick_declaration_makes_the_task_the_general_one_makes(
    tmp_path: Path,
    which: int,
    path: str,
    as_posix: bool,
    values: list[Any],
    n_kw: int,
    order: list[int],
    omit: list[bool],
) -> None:
    """Every slot the same, whether the call gives its arguments by position or some of
    them by keyword (in any order), or leaves some to their defaults."""
    func, k, n = FUNCS[which]
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        given_path = pathlib.PosixPath(path) if as_posix else path
        args = list(values[: n - 1])
        args.insert(k, given_path)
        args, kwargs = _by_keyword(func, args, n_kw, order, omit)
        both = _declared_both_ways(func, args, kwargs)
        if both is None:
            return
        general, quick = both
        if quick is None:
            # Only a PosixPath to a str-annotated product (kept as given) is not usual here.
            assert func is out_str and as_posix
        else:
            _assert_same_task(quick, general)
        made = task("t")(func)(*args, **kwargs)
        assert made == general and made.args_digest == general.args_digest
        assert made.products == general.products and made.record_key == general.record_key
    finally:
        os.chdir(old)


def dep1(out: Annotated[Path, Product], src: Annotated[Path, Dependency], a):
    pass


def dep2(
    a,
    src: Annotated[Path, Dependency],
    out: Annotated[Path, Product],
    more: Annotated[Path, Dependency],
):
    pass


def dep_str(out: Annotated[Path, Product], src: Annotated[str, Dependency]):
    pass


def dep_defaults(
    out: Annotated[Path, Product],
    src: Annotated[Path, Dependency] = Path("cfg.txt"),
    a: int = 1,
    b: str = "x",
):
    pass


# (function, position of the product, positions of the dependencies, how many parameters)
DEP_FUNCS = [
    (dep1, 0, (1,), 3),
    (dep2, 2, (1, 3), 4),
    (dep_str, 0, (1,), 2),
    (dep_defaults, 0, (1,), 4),
]


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    which=st.sampled_from(range(len(DEP_FUNCS))),
    path_list=st.lists(paths, min_size=3, max_size=3),
    posix=st.lists(st.booleans(), min_size=3, max_size=3),
    same=st.booleans(),
    values=st.lists(plain, min_size=2, max_size=2),
    **CALL_FORM,
)
def test_the_quick_declaration_of_tasks_with_dependencies_makes_the_general_task(
    tmp_path: Path,
    which: int,
    path_list: list[str],
    posix: list[bool],
    same: bool,
    values: list[Any],
    n_kw: int,
    order: list[int],
    omit: list[bool],
) -> None:
    """The same, for a function with Dependency parameters (a sweep whose tasks each
    read a config file): one path each, str or PosixPath, two of them the same or not."""
    func, k, deps, n = DEP_FUNCS[which]
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        args: list[Any] = [None] * n
        positions = (k, *deps)
        for slot, pos in enumerate(positions):
            p = path_list[1] if same and slot == 2 else path_list[slot]
            args[pos] = pathlib.PosixPath(p) if posix[slot] else p
        rest = iter(values)
        args = [next(rest) if pos not in positions else v for pos, v in enumerate(args)]
        args, kwargs = _by_keyword(func, args, n_kw, order, omit)
        both = _declared_both_ways(func, args, kwargs)
        if both is None:
            return
        general, quick = both
        if quick is None:
            # Only a PosixPath to a str-annotated parameter (kept as given), or a
            # dependency left to its default (a Path), is not usual.
            assert (func is dep_str and posix[1]) or (
                func is dep_defaults and len(args) < 2 and "src" not in kwargs
            ), (args, kwargs)
        else:
            _assert_same_task(quick, general)
        made = task("t")(func)(*args, **kwargs)
        assert made == general and made.args_digest == general.args_digest
        assert made.dependencies == general.dependencies
    finally:
        os.chdir(old)


def test_a_path_many_tasks_read_is_resolved_once_and_shared_as_it_was_given(
    tmp_path: Path,
) -> None:
    """A sweep: every task reads one config file, given as a new Path each time. Its tasks
    share one string for it (10^5 tasks, not 10^5 copies), and what they share is what the
    path means where and when each was declared: relative to that working directory, and
    through a symlink as it points once a pipeline was checked since it changed."""
    shape = _task_mod._usual_shape(dep1)
    assert shape is not None
    a, b, d1, d2 = (tmp_path / x for x in ("a", "b", "d1", "d2"))
    for d in (a, b, d1, d2):
        d.mkdir()
        (d / "cfg.txt").write_text("lr = 0.1\n")
    link = tmp_path / "link"
    link.symlink_to(d1)
    old = os.getcwd()

    def both(out: Path, src: Path | str, i: int) -> Task:
        quick = _task_mod._usual_task(shape, "t", dep1, (out, src, i))
        assert quick is not None
        _assert_same_task(quick, Task("t", dep1, [out, src, i]))
        return quick

    try:
        os.chdir(a)
        t1, t2 = (both(tmp_path / f"o{i}", Path("cfg.txt"), i) for i in (1, 2))
        assert t1.dependencies == (str(a / "cfg.txt"),)
        assert t2.dependencies is t1.dependencies
        assert t2._args[1] is t1._args[1]  # the path as given, kept once too
        # The functional interface, by position and by keyword (depio's Task(name, f,
        # [out], {...})), shares them too.
        f1 = Task("t", dep1, [tmp_path / "o8", Path("cfg.txt"), 8])
        f2 = Task("t", dep1, [tmp_path / "o9"], {"src": Path("cfg.txt"), "a": 9})
        assert f1.dependencies is f2.dependencies is t1.dependencies
        assert f1._args[1] is f2._args[1] is t1._args[1]
        os.chdir(b)
        assert both(tmp_path / "o3", Path("cfg.txt"), 3).dependencies == (str(b / "cfg.txt"),)
        assert both(tmp_path / "o4", "cfg.txt", 4).dependencies == (str(b / "cfg.txt"),)
        through = link / "cfg.txt"
        assert both(tmp_path / "o5", through, 5).dependencies == (str(d1 / "cfg.txt"),)
        link.unlink()
        link.symlink_to(d2)
        p = Pipeline(executor=SequentialExecutor(), quiet=True)
        p.add_task(Task("t", dep1, [tmp_path / "o6", d1 / "cfg.txt", 6]))
        p.validate()  # a checked pipeline: what is declared next sees the link as it is
        assert both(tmp_path / "o7", through, 7).dependencies == (str(d2 / "cfg.txt"),)
    finally:
        os.chdir(old)


def kw_task(out: Annotated[Path, Product], i: int, config: Annotated[Path, Dependency]):
    Path(out).write_text(f"{type(out).__name__} {i} {type(config).__name__} {config}")


def test_arguments_given_by_keyword_are_kept_without_a_dict_a_task(tmp_path: Path) -> None:
    """depio's way, ``f(out, i=..., config=...)``, for 10^5 tasks: no dict of keywords a
    task (they share what says which were keywords), and the task still gives back its
    arguments as they were given, calls the function with them (Path-annotated ones as
    paths), and pickles, declared either way."""
    kw = task("kw")(kw_task)
    cfg = tmp_path / "cfg.txt"
    cfg.write_text("lr = 0.1\n")
    p = Pipeline(executor=SequentialExecutor(), quiet=True)
    a = p.add_task(kw(tmp_path / "a.txt", i=1, config=cfg))
    b = p.add_task(kw(tmp_path / "b.txt", config=cfg, i=2))
    c = p.add_task(kw(tmp_path / "c.txt", config=cfg, i=3))
    general = Task("kw", kw_task, [tmp_path / "b.txt"], {"config": cfg, "i": 2})
    assert p.add_task(general) is b  # one call, one task
    assert b._kwargs is c._kwargs and not isinstance(b._kwargs, dict)
    assert general._kwargs is b._kwargs and general._args == b._args
    for t, i, order in ((a, 1, ["i", "config"]), (b, 2, ["config", "i"])):
        out = tmp_path / f"{'ab'[i - 1]}.txt"
        assert t.args == (out,) and type(t.args[0]) is type(tmp_path)
        assert list(t.kwargs) == order and t.kwargs == {"i": i, "config": cfg}
        assert type(t.kwargs["config"]) is type(cfg)
        u = pickle.loads(pickle.dumps(t))
        assert u == t and u.args == t.args and u.kwargs == t.kwargs
        assert t.arguments == {"out": out, "i": i, "config": cfg}
    with pytest.raises(TypeError):
        a.kwargs["i"] = 5  # refused, not silently lost
    assert p.run() == 0
    kind = type(tmp_path).__name__
    for i, name in enumerate("abc", 1):
        assert (tmp_path / f"{name}.txt").read_text() == f"{kind} {i} {kind} {cfg}"


def test_unusual_calls_are_declared_the_general_way(tmp_path: Path) -> None:
    shape = _task_mod._usual_shape(out3)
    out = str(tmp_path / "o.txt")
    for args in [
        (out, [1, 2], 3, "x"),  # a list: it may hold tasks, and has its own canonical form
        (out, 1, 3),  # a default left out
        (out, 1, 3, "x", 5),  # too many: the general way says why
        ("", 1, 3, "x"),  # no path: refused, naming the parameter
        (tmp_path / "o.txt", Path("p"), 3, "x"),  # a path in a plain parameter
    ]:
        assert _task_mod._usual_task(shape, "t", out3, args) is None
    # Functions whose tasks are never of the usual shape.

    def closure(out: Annotated[Path, Product], a):
        return shape

    def no_product(a, b):
        pass

    for f in (closure, no_product):
        assert _task_mod._usual_shape(f) is None
    # By keyword: a required one left out, a name the function does not take, one given
    # twice, depends_on (the decorator's own keyword).
    shape = _task_mod._usual_shape(out3)
    for args, kwargs in [
        ((out,), {"b": 1}),
        ((out, 1), {"b": 3, "d": "x"}),
        ((out, 1), {"out": out, "b": 3, "c": "x"}),
        ((out, 1, 3), {"depends_on": [out + "x"]}),
    ]:
        assert _task_mod._usual_task_kw(shape, "t", out3, args, kwargs) is None
    # A dependency given something other than one path: declared by Task.
    shape = _task_mod._usual_shape(dep1)
    for args in [
        (out, None, 1),
        (out, [out + "x"], 1),
        (out, "", 1),
        (out, 5, 1),
        (out, out + "\x00", 1),
    ]:
        assert _task_mod._usual_task(shape, "t", dep1, args) is None


def test_quick_declarations_merge_and_run_as_general_ones(tmp_path: Path) -> None:
    """In a pipeline: a quick declaration and a general one of the same call are one task
    (add_task returns the first), and a run of quick ones records what a rerun of general
    ones finds up to date (the identities match on disk too)."""
    os.chdir(tmp_path)

    @task("w")
    def w(out: Annotated[Path, Product], i: int):
        Path(out).write_text(str(i))

    p = Pipeline(executor=SequentialExecutor(), quiet=True)
    first = p.add_task(w(tmp_path / "a.txt", 1))
    again = p.add_task(Task("w", w.task_function, [str(tmp_path / "a.txt"), 1]))
    assert again is first
    assert p.run() == 0
    q = Pipeline(executor=SequentialExecutor(), quiet=True)
    t = q.add_task(Task("w", w.task_function, [tmp_path / "a.txt", 1]))
    assert q.run() == 0
    assert t.status.name == "SKIPPED"


def same_f(n):
    return n


def same_g(n):
    return -n


def test_calls_of_two_functions_with_the_same_arguments_stay_two_tasks() -> None:
    """A plain function's task is indexed by its args digest: a task of another function
    with the same arguments (the same digest) is another call, before and after pickling."""
    import pickle

    f, g = same_f, same_g
    p = Pipeline(executor=SequentialExecutor(), quiet=True)
    a = p.add_task(Task("f", f, [1]))
    b = p.add_task(Task("g", g, [1]))
    assert a.args_digest == b.args_digest  # the same identity text: only the function differs
    assert a is not b and a != b and len(p.tasks) == 2
    assert p.add_task(Task("g again", g, [1])) is b
    assert p.add_task(Task("f again", f, [1])) is a
    c = p.add_task(Task("h", lambda n: n, [1]))  # a third function, the same digest
    assert c not in (a, b) and len(p.tasks) == 3
    # Depending on the second one finds it, not the first.
    d = p.add_task(Task("after g", f, [2], depends_on=[Task("g", g, [1])]))
    graph = p.validate()
    assert list(graph.upstream[d.id - 1]) == [b.id - 1]
    copy = pickle.loads(pickle.dumps(a))
    assert copy == a and copy != b


class _MyPath(pathlib.PosixPath):
    """A user's path class: made its own way."""


_segments = st.one_of(
    st.sampled_from(["", ".", "..", "a", "b.txt", "é", "\udcff", " ", "~", "a b", "x.", ".h"]),
    st.text(_name_chars, min_size=1, max_size=5),
)


@settings(max_examples=600, deadline=None)
@given(
    lead=st.sampled_from(["", "/", "//", "///", "./", "../"]),
    segments=st.lists(_segments, max_size=6),
    trail=st.sampled_from(["", "/", "/.", "//"]),
    cls=st.sampled_from([pathlib.PosixPath, pathlib.Path, pathlib.PurePosixPath, pathlib.PurePath]),
)
def test_make_path_is_the_pathlib_class_of_the_str(
    lead: str, segments: list[str], trail: str, cls: type
) -> None:
    """signature.make_path (each task that runs makes its paths again) gives what
    ``cls(s)`` gives, for any str: the same class, parts, str, equality and hash."""
    from depio_like.signature import make_path

    s = lead + "/".join(segments) + trail
    if not s:
        return
    want, got = cls(s), make_path(cls, s)
    assert type(got) is type(want)
    assert got.parts == want.parts and str(got) == str(want) and os.fspath(got) == str(want)
    assert got == want and hash(got) == hash(want)
    assert got.name == want.name and got.parent == want.parent and got.suffix == want.suffix
