"""A task pickled, copied or sent to another process: it stays the same call (it merges with
the same call declared here), keeps its own attributes, and a write to its arguments is
kept or refused, never lost. Found by review of the declaration memory work."""

import copy
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import Pipeline, Product, SequentialExecutor, Task


def made(out: Annotated[Path, Product], n: int = 1) -> None:
    out.write_text(str(n))


def test_a_task_declared_in_another_process_is_the_same_task_here(tmp_path, monkeypatch):
    # Tasks declared in a worker (a spawned pool, a job) and sent back pickled: the same
    # call declared here is the same task, and add_task merges them. A merge key holding
    # the function's id() of the process that declared it equals nothing here.
    (tmp_path / "xmod.py").write_text(
        textwrap.dedent(
            """
            from pathlib import Path
            from typing import Annotated
            from depio_like import Product, Task

            def make(i: int, out: Annotated[Path, Product]) -> None:
                out.write_text(str(i))

            def declare(i, folder):
                return Task(f"make{i}", make, (i, Path(folder) / f"x{i}.txt"))
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    blob = tmp_path / "tasks.pickle"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import pickle, sys, xmod; "
            f"open({str(blob)!r}, 'wb').write(pickle.dumps([xmod.declare(i, {str(tmp_path)!r}) "
            "for i in range(3)]))",
        ],
        check=True,
        cwd=tmp_path,
        env={**__import__("os").environ, "PYTHONPATH": f"{tmp_path}:{Path.cwd()}"},
    )
    import xmod

    remote = pickle.loads(blob.read_bytes())
    local = [xmod.declare(i, str(tmp_path)) for i in range(3)]
    assert remote == local
    p = Pipeline(SequentialExecutor())
    for t in remote:
        p.add_task(t)
    for r, t in zip(remote, local, strict=True):
        assert p.add_task(t) is r  # no DuplicateProductError: one task


def test_a_write_to_task_kwargs_is_kept_or_refused_never_dropped(tmp_path):
    # Before: task.kwargs was the dict the call used, so a write reached the call. Now a
    # task with no keyword arguments refuses it (TypeError), but one given a Path keyword
    # returns a new dict each time, so the write is silently lost.
    t = Task("t", made, kwargs={"out": tmp_path / "a.txt", "n": 2})
    kw = t.kwargs
    try:
        kw["n"] = 5
    except TypeError:
        return  # refused: the user is told
    assert t.kwargs["n"] == 5
    assert t.prepared_call()[1]["n"] == 5


def test_a_copied_task_has_its_own_rare_attributes(tmp_path):
    # copy.copy gives the copy the original's per-task dict of rarely-set attributes: a
    # description (variants, slurm_parameters, ...) set on the copy changes the original.
    t = Task("t", made, (tmp_path / "a.txt",), description="original")
    c = copy.copy(t)
    c.description = "copy"
    c.variants = ("v",)
    assert t.description == "original" and t.variants == ()


@pytest.mark.parametrize("proto", [2, pickle.HIGHEST_PROTOCOL])
def test_pickled_tasks_keep_their_paths_and_kwargs(tmp_path, proto):
    # Checked fine: strs kept for paths come back as paths; the shared empty dict pickles
    # as a dict of its own.
    t = Task("t", made, (tmp_path / "a.txt",))
    u = pickle.loads(pickle.dumps(t, proto))
    assert u == t and u.args == t.args and type(u.args[0]) is type(tmp_path)
    u.kwargs["n"] = 3
    assert t.kwargs == {}


def cyclic_reader(out: Annotated[Path, Product], data: list) -> None:
    out.write_text(str(len(data)))


def test_an_unfingerprintable_task_sent_back_is_never_merged_by_a_foreign_id(tmp_path):
    # An unfingerprintable task (here: a cyclic list argument, which pickles) is never
    # merged with another: its merge key holds its own id(). Sent to another process and
    # back, it must not keep the id of the object it was made from: there, that id may be
    # a live task's, and two different calls would be taken for one. As two declarations of
    # the same such call here, the copy is a task of its own.
    data: list = []
    data.append(data)
    t = Task("c", cyclic_reader, (tmp_path / "c.txt", data))
    assert t.unfingerprintable
    u = pickle.loads(pickle.dumps(t))
    assert u.unfingerprintable
    assert u != t
    assert Task("c", cyclic_reader, (tmp_path / "c.txt", data)) != t  # as declared twice here
