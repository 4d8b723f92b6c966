"""The content-hash cache: what is skipped, what reruns, and why."""

import os
import time
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import Dependency, IgnoredForEq, Product, Task

from conftest import calls, log_call, new_pipeline, run_script


def upper(out: Annotated[Path, Product], src: Annotated[Path, Dependency], tag: str = ""):
    log_call(f"upper:{Path(out).name}")
    Path(out).write_text(Path(src).read_text().upper() + tag)


def chain(executor=None, tag=""):
    """raw.txt -> a.txt -> b.txt, plus an independent side branch from side.txt."""
    p = new_pipeline(executor)
    p.add_task(Task("a", upper, ["a.txt", "raw.txt"], {"tag": tag}))
    p.add_task(Task("b", upper, ["b.txt", "a.txt"]))
    p.add_task(Task("side", upper, ["s.txt", "side.txt"]))
    return p


@pytest.fixture
def sources(project):
    Path("raw.txt").write_text("hello")
    Path("side.txt").write_text("side")
    return project


def statuses(p):
    return {t.name: t.status.value for t in p.tasks}


def settle():
    # Our stat cache distrusts a file modified within 100 ms of being hashed (the
    # filesystem clock may not have ticked); wait it out so the test sees the fast path.
    time.sleep(0.15)


def test_second_run_skips_everything_and_runs_no_body(sources, executor_factory):
    assert chain(executor_factory()).run() == 0
    assert sorted(calls()) == ["upper:a.txt", "upper:b.txt", "upper:s.txt"]
    p = chain(executor_factory())
    assert p.run() == 0
    assert calls() == []
    assert set(statuses(p).values()) == {"SKIPPED"}


def test_touch_without_change_reruns_nothing(sources):
    chain().run()
    calls()
    settle()
    os.utime("raw.txt", ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    os.utime("a.txt")
    p = chain()
    assert p.run() == 0
    assert calls() == []


def test_changed_input_reruns_task_and_downstream_only(sources, executor_factory):
    chain(executor_factory()).run()
    calls()
    Path("raw.txt").write_text("HELLO, world")
    p = chain(executor_factory())
    assert p.run() == 0
    assert sorted(calls()) == ["upper:a.txt", "upper:b.txt"]
    assert statuses(p) == {"a": "FINISHED", "b": "FINISHED", "side": "SKIPPED"}
    assert Path("b.txt").read_text() == "HELLO, WORLD"


def test_same_size_change_right_after_a_run_is_seen(sources):
    # An edit in the same filesystem clock tick: same size, same inode, same mtime (pinned
    # here, as a coarse clock would leave it). Only the racy-timestamp rule can see it.
    future = time.time_ns() + 10**10
    os.utime("raw.txt", ns=(future, future))
    chain().run()
    calls()
    Path("raw.txt").write_text("world")  # same size as "hello"
    os.utime("raw.txt", ns=(future, future))
    chain().run()
    assert sorted(calls()) == ["upper:a.txt", "upper:b.txt"]
    assert Path("b.txt").read_text() == "WORLD"


def test_unchanged_intermediate_stops_the_rerun(sources):
    """Early cutoff: if a rerun upstream writes the same bytes, downstream stays skipped."""
    chain().run()
    calls()
    Path("raw.txt").write_text("HeLLo")  # upper() of it is the same as before
    p = chain()
    p.run()
    assert calls() == ["upper:a.txt"]
    assert statuses(p)["b"] == "SKIPPED"


def test_changed_argument_reruns_that_task(sources):
    chain().run()
    calls()
    p = chain(tag="!")
    p.run()
    assert sorted(calls()) == ["upper:a.txt", "upper:b.txt"]  # b reads a's new content


def test_missing_or_edited_product_reruns_its_task(sources):
    chain().run()
    calls()
    Path("s.txt").unlink()
    chain().run()
    assert calls() == ["upper:s.txt"]
    Path("b.txt").write_text("tampered")
    chain().run()
    assert calls() == ["upper:b.txt"]
    assert Path("b.txt").read_text() == "HELLO"


def test_force_reruns_all(sources):
    chain().run()
    calls()
    chain().run(force=True)
    assert len(calls()) == 3


def test_always_task_runs_every_time(project):
    def stamp(out: Annotated[Path, Product]):
        log_call("stamp")
        Path(out).write_text("x")

    for _ in range(2):
        p = new_pipeline()
        p.add_task(Task("stamp", stamp, ["x.txt"], always=True))
        assert p.run() == 0
    assert calls() == ["stamp", "stamp"]


def test_task_without_products_follows_the_same_rule(project):
    def note(n: int):
        log_call(f"note{n}")

    for n in (1, 1, 2):
        p = new_pipeline()
        p.add_task(Task("note", note, [n]))
        p.run()
    assert calls() == ["note1", "note2"]


def test_depends_on_reruns_when_upstream_reran(project):
    def step(n: int):
        log_call(f"step{n}")

    def after(n: int):
        log_call(f"after{n}")

    def build(n):
        p = new_pipeline()
        up = p.add_task(Task("up", step, [n]))
        p.add_task(Task("down", after, [0], depends_on=[up]))
        return p

    build(1).run()
    assert calls() == ["step1", "after0"]
    build(1).run()
    assert calls() == []
    build(2).run()
    assert calls() == ["step2", "after0"]


def test_failed_task_is_not_recorded(sources):
    def flaky(out: Annotated[Path, Product], fail: bool):
        log_call("flaky")
        Path(out).write_text("partial")
        if Path("fail").exists():
            raise RuntimeError("boom")

    Path("fail").touch()
    p = new_pipeline()
    p.add_task(Task("flaky", flaky, ["f.txt", False]))
    assert p.run() == 1
    Path("fail").unlink()
    p = new_pipeline()
    p.add_task(Task("flaky", flaky, ["f.txt", False]))
    assert p.run() == 0
    assert calls() == ["flaky", "flaky"]


def test_state_dir_option(sources):
    p = chain()
    p.state_dir = str(sources / "elsewhere")
    p.run()
    assert (sources / "elsewhere" / "state.jsonl").exists()
    assert not (sources / ".depio_like").exists()


SCRIPT = """
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, SequentialExecutor, Task, Product, Dependency

    def make(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        with open("calls.log", "a") as f:
            f.write("make\\n")
        # a comment
        Path(out).write_text(Path(src).read_text() + "{suffix}")

    def other(out: Annotated[Path, Product]):
        with open("calls.log", "a") as f:
            f.write("other\\n")
        Path(out).write_text("o")

    p = Pipeline(SequentialExecutor())
    p.add_task(Task("make", make, ["out.txt", "in.txt"]))
    p.add_task(Task("other", other, ["o.txt"]))
    exit(p.run())
"""


def test_editing_a_function_body_reruns_it_but_comments_do_not(tmp_path):
    (tmp_path / "in.txt").write_text("in")
    log = tmp_path / "calls.log"

    def run(source):
        r = run_script(tmp_path, source)
        assert r.returncode == 0, r.stdout + r.stderr
        got = log.read_text().split() if log.exists() else []
        log.unlink(missing_ok=True)
        return got

    assert run(SCRIPT.replace("{suffix}", "1")) == ["make", "other"]
    assert run(SCRIPT.replace("{suffix}", "1")) == []
    assert run(SCRIPT.replace("{suffix}", "1").replace("# a comment", "# another\n\n")) == []
    assert run(SCRIPT.replace("{suffix}", "2")) == ["make"]
    assert (tmp_path / "out.txt").read_text() == "in2"


def fill_dir(out: Annotated[Path, Product], n: int):
    """A directory product whose files depend on ``n``; returns ``n``."""
    log_call("fill")
    Path(out).mkdir(exist_ok=True)
    for k in range(2):
        (Path(out) / f"f{k}.txt").write_text(f"{k} {n}")
    return n


def read_one(out: Annotated[Path, Product], part: Annotated[Path, Dependency], n: int):
    log_call("read")
    Path(out).write_text(Path(part).read_text() + f" {n}")


def dir_and_reader(executor, n):
    """A chain: ``fill`` makes out.d; ``read`` takes its value and reads a file in out.d."""
    p = new_pipeline(executor)
    fill = p.add_task(Task("fill", fill_dir, ["out.d", n]))
    p.add_task(Task("read", read_one, ["r.txt", "out.d/f1.txt", fill]))
    return p


def test_a_directory_product_rewritten_after_a_file_in_it_was_checked_is_recorded_new(
    project, executor_factory
):
    # The chain is checked as one: the reader's file inside out.d is hashed before fill
    # rewrites out.d. fill's record must hold the new content of out.d (found by the
    # oracle: it held the file's old digest, so the next run reran the chain).
    assert dir_and_reader(executor_factory(), 1).run() == 0
    assert dir_and_reader(executor_factory(), 2).run() == 0
    assert sorted(calls()) == ["fill", "fill", "read", "read"]
    p = dir_and_reader(executor_factory(), 2)
    assert p.run() == 0
    assert calls() == [] and set(statuses(p).values()) == {"SKIPPED"}


def described(
    out: Annotated[Path, Product],
    n: int,
    scale: float = 1.5,
    *,
    label: str = "x",
    verbose: Annotated[bool, IgnoredForEq] = False,
    src: Annotated[Path, Dependency] = None,
):
    Path(out).write_text(f"{n} {scale} {label}")


def test_record_describes_the_arguments_as_bound(sources):
    """A record names the task's tracked arguments (defaults applied, in the parameters'
    order; paths and IgnoredForEq ones left out), however the call gave them."""
    from depio_like.state import State

    p = new_pipeline()
    p.add_task(Task("pos", described, ["a.txt", 1]))
    p.add_task(Task("kw", described, [], {"out": "b.txt", "n": 2, "label": "y", "verbose": True}))
    p.add_task(Task("mix", described, ["c.txt", 3, 0.5], {"src": "raw.txt"}))
    assert p.run() == 0
    state = State(p.state_dir).read_only()
    got = {r.name: dict(r.arg_reprs) for r in state.records.values()}
    assert got == {
        "pos": {"n": "1", "scale": "1.5", "label": "'x'"},
        "kw": {"n": "2", "scale": "1.5", "label": "'y'"},
        "mix": {"n": "3", "scale": "0.5", "label": "'x'"},
    }
    for t in p.tasks:  # as the task's own binding of its call has them
        tracked = {k: repr(v) for k, v in t.tracked_arguments.items() if k not in t.path_params}
        assert got[t.name] == tracked


def sized(out: Annotated[Path, Product], size: int):
    Path(out).write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))


def test_recorded_digest_is_the_content_hash_whatever_the_size(project):
    """Small products are hashed from one read, big ones in chunks: the record holds the
    xxh3 digest of the content either way (the empty file included)."""
    import xxhash

    from depio_like.state import State

    p = new_pipeline()
    sizes = [0, 1, 4095, 4096, 4097, 65536, 65537, (1 << 20) + 3]
    for k, size in enumerate(sizes):
        p.add_task(Task(f"s{k}", sized, [f"s{k}.bin", size]))
    assert p.run() == 0
    state = State(p.state_dir).read_only()
    for r in state.records.values():
        ((path, digest),) = r.products.items()
        assert digest == xxhash.xxh3_64(Path(path).read_bytes()).hexdigest(), path
    assert len(state.records) == len(sizes)
