"""Paths: one file, one node; containment is an edge; paths that cannot be used are clear
errors (never a hang, never a traceback).

Each test names the defect it guards against; all use real files in a temporary project.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import (
    CycleError,
    Dependency,
    DuplicateProductError,
    GraphError,
    PipelineError,
    Product,
    Status,
    Task,
    TaskDeclarationError,
    task,
)
from depio_like.fingerprint import RACY_NS
from depio_like.fs import RealDisk

from conftest import calls, log_call, new_pipeline, run_script


def write(out: Annotated[Path, Product], text: str = "x"):
    log_call(f"write:{Path(out).name}")
    Path(out).write_text(text)


def listing(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
    """Writes the names and contents of everything under ``src``."""
    log_call(f"listing:{Path(out).name}")
    lines = []
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for f in sorted(files):
            p = Path(root, f)
            lines.append(f"{p.relative_to(src)}={p.read_text()}")
    Path(out).write_text("\n".join(lines))


def copy(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
    log_call(f"copy:{Path(out).name}")
    Path(out).write_text(Path(src).read_text())


def make_dir(out: Annotated[Path, Product], names: tuple = ("x.txt",)):
    log_call(f"make_dir:{Path(out).name}")
    Path(out).mkdir(exist_ok=True)
    for n in names:
        (Path(out) / n).write_text(f"made {n}")


def statuses(p):
    return [t.status for t in p.tasks]


# --------------------------------------------------------------------- containment edges


def test_a_directory_dependency_runs_after_every_task_producing_inside_it(
    project, executor_factory
):
    # Declared first, so without an edge it would run first and see an empty directory.
    Path("out").mkdir()
    Path("src.txt").write_text("s")
    p = new_pipeline(executor_factory())
    p.add_task(Task("list", listing, ["listing.txt", "out"]))
    p.add_task(Task("a", write, ["out/a.txt", "A"]))
    p.add_task(Task("b", copy, ["out/sub/b.txt", "src.txt"]))
    assert p.run() == 0, p.stream.getvalue()
    assert Path("listing.txt").read_text() == "a.txt=A\nsub/b.txt=s"
    assert sorted(calls()) == ["copy:b.txt", "listing:listing.txt", "write:a.txt"]
    g = p.graph()
    assert set(g.predecessors(1)) == {2, 3}

    # Runs settle: the directory's digest includes the others' products, unchanged.
    p2 = new_pipeline(executor_factory())
    p2.add_task(Task("list", listing, ["listing.txt", "out"]))
    p2.add_task(Task("a", write, ["out/a.txt", "A"]))
    p2.add_task(Task("b", copy, ["out/sub/b.txt", "src.txt"]))
    assert p2.run() == 0
    assert calls() == [] and set(statuses(p2)) == {Status.SKIPPED}

    # A change upstream of a product inside the directory reaches the reader.
    Path("src.txt").write_text("changed")
    p3 = new_pipeline(executor_factory())
    p3.add_task(Task("list", listing, ["listing.txt", "out"]))
    p3.add_task(Task("a", write, ["out/a.txt", "A"]))
    p3.add_task(Task("b", copy, ["out/sub/b.txt", "src.txt"]))
    assert p3.run() == 0
    assert sorted(calls()) == ["copy:b.txt", "listing:listing.txt"]
    assert Path("listing.txt").read_text() == "a.txt=A\nsub/b.txt=changed"


def test_a_directory_no_task_makes_yet_is_not_missing_when_tasks_write_into_it(project):
    p = new_pipeline()
    p.add_task(Task("list", listing, ["listing.txt", "gen"]))
    p.add_task(Task("a", write, ["gen/a.txt", "A"]))
    assert p.run() == 0, p.stream.getvalue()
    assert Path("listing.txt").read_text() == "a.txt=A"


def test_a_file_inside_a_directory_another_task_produces_runs_after_it(project, executor_factory):
    def build():
        p = new_pipeline(executor_factory())
        p.add_task(Task("read", copy, ["copy.txt", "gen/x.txt"]))
        p.add_task(Task("gen", make_dir, ["gen"]))
        return p

    p = build()
    assert p.run() == 0, p.stream.getvalue()
    assert Path("copy.txt").read_text() == "made x.txt"
    assert calls() == ["make_dir:gen", "copy:copy.txt"]
    p = build()
    assert p.run() == 0
    assert calls() == [] and set(statuses(p)) == {Status.SKIPPED}


def test_a_task_reading_a_directory_that_holds_its_own_product_is_refused(project):
    Path("data").mkdir()
    (Path("data") / "in.txt").write_text("i")
    p = new_pipeline()
    p.add_task(Task("summarise", listing, ["data/summary.txt", "data"]))
    with pytest.raises(CycleError) as err:
        p.run()
    msg = str(err.value)
    assert "'summarise'" in msg and "data/summary.txt" in msg and "directory data" in msg
    assert calls() == []


def test_a_task_reading_a_file_inside_its_own_directory_product_is_refused(project):
    def both(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        pass

    p = new_pipeline()
    p.add_task(Task("loop", both, ["res", "res/x.txt"]))
    with pytest.raises(CycleError, match=r"'loop' depends on res/x\.txt, inside res"):
        p.run()


def test_a_downstream_task_writing_into_a_directory_read_upstream_is_a_cycle(project):
    Path("data").mkdir()
    p = new_pipeline()
    p.add_task(Task("scan", listing, ["scan.txt", "data"]))
    p.add_task(Task("derive", copy, ["data/derived.txt", "scan.txt"]))
    with pytest.raises(CycleError) as err:
        p.run()
    msg = str(err.value)
    assert "'scan'" in msg and "'derive'" in msg
    assert "needs the directory data, which holds data/derived.txt" in msg
    assert "(needs scan.txt)" in msg
    assert calls() == []


def test_a_product_inside_another_tasks_directory_product_is_refused(project):
    p = new_pipeline()
    p.add_task(Task("dir-maker", make_dir, ["results"]))
    p.add_task(Task("intruder", write, ["results/extra.txt"]))
    with pytest.raises(DuplicateProductError) as err:
        p.run()
    msg = str(err.value)
    assert "results/extra.txt" in msg and "'intruder'" in msg and "'dir-maker'" in msg
    assert calls() == []


def test_one_task_may_declare_a_directory_and_a_file_in_it(project):
    def both(out: Annotated[Path, Product], index: Annotated[Path, Product]):
        log_call("both")
        Path(out).mkdir(exist_ok=True)
        (Path(out) / "a.txt").write_text("a")
        Path(index).write_text("index")

    def build():
        p = new_pipeline()
        p.add_task(Task("reader", copy, ["copy.txt", "site/index.html"]))
        p.add_task(Task("site", both, ["site", "site/index.html"]))
        return p

    p = build()
    assert p.run() == 0, p.stream.getvalue()
    assert calls() == ["both", "copy:copy.txt"]
    assert build().run() == 0 and calls() == []


# --------------------------------------------------------------------- symlinks


def test_a_file_through_a_symlinked_directory_and_its_real_path_is_one_node(project):
    Path("real").mkdir()
    os.symlink("real", "link")
    p = new_pipeline()
    first = p.add_task(Task("via-link", write, ["link/x.txt", "one"]))
    # The same call through either spelling is one task...
    assert p.add_task(Task("again", write, ["real/x.txt", "one"])) is first
    # ...and two different calls are two producers of one file.
    with pytest.raises(DuplicateProductError) as err:
        p.add_task(Task("via-real", write, ["real/x.txt", "two"]))
    msg = str(err.value)
    assert "'via-link'" in msg and "'via-real'" in msg
    assert "'link/x.txt'" in msg and "'real/x.txt'" in msg  # both spellings


def test_a_consumer_through_the_real_path_waits_for_a_producer_through_a_link(
    project, executor_factory
):
    Path("real").mkdir()
    os.symlink(os.path.abspath("real"), "link")

    def build():
        p = new_pipeline(executor_factory())
        p.add_task(Task("consumer", copy, ["copy.txt", "real/x.txt"]))
        p.add_task(Task("producer", write, ["link/x.txt", "through the link"]))
        return p

    p = build()
    assert p.run() == 0, p.stream.getvalue()
    assert Path("copy.txt").read_text() == "through the link"
    assert calls() == ["write:x.txt", "copy:copy.txt"]
    p = build()
    assert p.run() == 0 and calls() == []


def test_products_in_a_directory_made_later_keep_their_identity(project):
    # The parent does not exist when the first run declares the task; the second run
    # finds it (made by the first), and must see the same path.
    def build():
        p = new_pipeline()
        p.add_task(Task("deep", write, ["not/yet/there/x.txt"]))
        p.add_task(Task("reader", copy, ["copy.txt", "not/yet/there/x.txt"]))
        return p

    assert build().run() == 0 and calls() == ["write:x.txt", "copy:copy.txt"]
    assert build().run() == 0 and calls() == []


def test_a_symlink_made_between_two_declarations_is_seen(project):
    # Resolved directories are cached while tasks are declared; checking a graph drops
    # the cache, so a pipeline declared afterwards sees the new link.
    Path("a").mkdir()
    Path("b").mkdir()
    p = new_pipeline()
    p.add_task(Task("one", write, ["cur/x.txt"]))
    p.validate()
    os.symlink("a", "cur")
    q = new_pipeline()
    t = q.add_task(Task("one", write, ["cur/x.txt"]))
    assert t.products == (os.path.join(os.getcwd(), "a", "x.txt"),)


# --------------------------------------------------------------------- the state directory


@pytest.mark.parametrize("product", ["build", "build/.state"])
def test_a_state_directory_inside_or_equal_to_a_product_is_refused(project, product):
    p = new_pipeline(state_dir="build/.state")
    p.add_task(Task("owner", make_dir, [product]))
    with pytest.raises(GraphError, match=r"'owner'") as err:
        p.run()
    assert "state directory" in str(err.value) and "build/.state" in str(err.value)
    assert calls() == []


def test_a_directory_dependency_holding_the_state_directory_settles(project):
    # The records and logs change with every run: they are no task's input.
    Path("proj").mkdir()
    (Path("proj") / "in.txt").write_text("i")

    def build():
        p = new_pipeline(state_dir="proj/.state")
        p.add_task(Task("list", listing, ["listing.txt", "proj"]))
        return p

    assert build().run() == 0 and calls() == ["listing:listing.txt"]
    assert build().run() == 0 and calls() == []


# --------------------------------------------------------------------- ctime


def _wait_until_settled(path):
    """Until the file's last change is outside the racy window (so its stat is trusted)."""
    deadline = time.monotonic() + 30
    while time.time_ns() - os.stat(path).st_ctime_ns <= 2 * RACY_NS:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_file_rewritten_with_its_size_and_mtime_restored_is_read_again(project, executor_factory):
    Path("in.txt").write_text("one")
    old = time.time_ns() - 3600 * 10**9
    os.utime("in.txt", ns=(old, old))
    _wait_until_settled("in.txt")

    def build():
        p = new_pipeline(executor_factory())
        p.add_task(Task("copy", copy, ["out.txt", "in.txt"]))
        return p

    assert build().run() == 0 and calls() == ["copy:out.txt"]
    ino = os.stat("in.txt").st_ino
    with open("in.txt", "r+") as f:  # same inode, same size
        f.write("two")
    os.utime("in.txt", ns=(old, old))
    st = os.stat("in.txt")
    assert (st.st_ino, st.st_size, st.st_mtime_ns) == (ino, 3, old)
    assert build().run() == 0
    assert calls() == ["copy:out.txt"]
    assert Path("out.txt").read_text() == "two"


def test_state_file_entries_without_ctime_are_not_trusted(project):
    Path("in.txt").write_text("one")
    old = time.time_ns() - 3600 * 10**9
    os.utime("in.txt", ns=(old, old))
    _wait_until_settled("in.txt")

    def build():
        p = new_pipeline()
        p.add_task(Task("copy", copy, ["out.txt", "in.txt"]))
        return p

    assert build().run() == 0
    calls()
    # As an older version wrote it: a line without ctime, with the current stat and a
    # digest that is not the file's. Trusting it would rerun the task for nothing at best.
    st = os.stat("in.txt")
    path = os.path.join(os.getcwd(), "in.txt")
    with open(".depio_like/state.jsonl", "a") as f:
        f.write(json.dumps(["f", path, st.st_size, st.st_mtime_ns, st.st_ino, "bogus"]) + "\n")
    assert build().run() == 0
    assert calls() == []  # the file was read again: same digest as recorded, nothing ran


# --------------------------------------------------------------------- stat once


class CountingDisk(RealDisk):
    def __init__(self):
        self.stats = {}

    def stat(self, path):
        self.stats[path] = self.stats.get(path, 0) + 1
        return super().stat(path)


def test_a_no_op_run_stats_each_file_once(project):
    Path("src").mkdir()
    Path("mid").mkdir()
    for i in range(5):
        (Path("src") / f"s{i}.txt").write_text(str(i))

    def build(disk):
        p = new_pipeline(disk=disk)
        for i in range(5):
            p.add_task(Task(f"c{i}", copy, [f"mid/m{i}.txt", f"src/s{i}.txt"]))
            p.add_task(Task(f"d{i}", copy, [f"final/f{i}.txt", f"mid/m{i}.txt"]))
        p.add_task(Task("list", listing, ["listing.txt", "mid"]))
        p.add_task(Task("list-src", listing, ["listing-src.txt", "src"]))
        return p

    assert build(RealDisk()).run() == 0
    assert build(RealDisk()).run() == 0  # the products' racy window passes
    calls()
    disk = CountingDisk()
    p = build(disk)
    assert p.run() == 0 and calls() == []
    assert disk.stats and max(disk.stats.values()) == 1, {
        k: v for k, v in disk.stats.items() if v > 1
    }


def test_an_input_many_tasks_read_is_stat_once(project):
    """A sweep: every task reads the same config file and the same data directory, which
    no task makes. The graph looks at each once (it was once per task: 100,000 stats of
    one file), on the first run as on the no-op rerun."""
    Path("data").mkdir()
    Path("data/a.txt").write_text("a")
    Path("config.txt").write_text("c")

    def build(disk):
        p = new_pipeline(disk=disk)
        for i in range(6):
            p.add_task(Task(f"c{i}", copy, [f"out/c{i}.txt", "config.txt"]))
            p.add_task(Task(f"l{i}", listing, [f"out/l{i}.txt", "data"]))
        return p

    for run in ("first", "rerun", "no-op"):
        calls()
        disk = CountingDisk()
        assert build(disk).run() == 0
        assert len(calls()) == (12 if run == "first" else 0), run
        for path in ("config.txt", "data"):
            assert disk.stats.get(os.path.join(os.getcwd(), path)) == 1, (run, disk.stats)


# --------------------------------------------------------------------- clear errors


def test_a_path_with_a_nul_byte_is_refused_when_the_task_is_declared(project):
    """Every system call refuses such a path with a ValueError: it was a traceback from the
    graph (a dependency) or a failure at run time (a product); it is now refused where
    it is declared, naming the function and the parameter, whichever way it is given."""

    @task("deco")
    def deco(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        pass

    for make, where in [
        (lambda: Task("t", copy, ["o\x00.txt", "in.txt"]), "'out' (Product)"),
        (lambda: Task("t", copy, ["o.txt", Path("a\x00/in.txt")]), "'src' (Dependency)"),
        (lambda: deco("o.txt", "in\x00.txt"), "'src' (Dependency)"),
        (lambda: deco(Path("o\x00.txt"), "in.txt"), "'out' (Product)"),
        (lambda: Task("t", copy, ["o.txt", "in.txt"], produces=["x\x00"]), "'produces'"),
        (lambda: Task("t", copy, ["o.txt", "in.txt"], depends_on=["x\x00"]), "'depends_on'"),
    ]:
        with pytest.raises(TaskDeclarationError) as err:
            make()
        msg = str(err.value)
        assert where in msg and "NUL byte" in msg and "\\x00" in msg, msg


def test_a_state_directory_with_a_nul_byte_is_one_message_exit_2(tmp_path):
    r = run_script(
        tmp_path,
        """
        from depio_like import Pipeline, SequentialExecutor
        p = Pipeline(SequentialExecutor(), state_dir="st\\x00ate")
        exit(p.run())
        """,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "state_dir" in r.stderr and "NUL byte" in r.stderr


def test_a_target_with_a_nul_byte_is_one_message_exit_2(tmp_path):
    r = run_script(
        tmp_path,
        """
        from pathlib import Path
        from typing import Annotated
        from depio_like import Pipeline, Product, SequentialExecutor, Task

        def mk(out: Annotated[Path, Product]):
            Path(out).write_text("x")

        p = Pipeline(SequentialExecutor())
        p.add_task(Task("t", mk, ["o.txt"]))
        exit(p.run(targets=["o\\x00.txt"]))
        """,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "NUL byte" in r.stderr and "--target" in r.stderr
    assert not (tmp_path / "o.txt").exists()


def test_a_name_over_255_bytes_is_refused_when_the_task_is_declared(project):
    long = "é" * 130  # 260 bytes in UTF-8
    with pytest.raises(TaskDeclarationError) as err:
        Task("long", write, [f"out/{long}.txt"])
    msg = str(err.value)
    assert "write()" in msg and "'out'" in msg and "255" in msg and "264 bytes" in msg
    with pytest.raises(TaskDeclarationError, match=r"copy\(\).*'src'.*300 bytes"):
        Task("long", copy, ["out.txt", "d" * 300 + "/in.txt"])


def test_a_name_over_255_bytes_in_a_script_is_one_message_exit_2(tmp_path):
    r = run_script(
        tmp_path,
        """
        from pathlib import Path
        from typing import Annotated
        from depio_like import Pipeline, Task, Product, Dependency

        def step(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
            Path(out).write_text("x")

        p = Pipeline()
        p.add_task(Task("too-long", step, ["out.txt", "in/" + "n" * 256]))
        exit(p.main())
    """,
    )
    # Raised while declaring, before main(): the pipeline's excepthook makes it one
    # message and exit 2, as `depio-like run` does. The message names the parameter and
    # the limit.
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert "'src'" in r.stderr and "255" in r.stderr
    r = subprocess.run(
        [str(Path(sys.executable).with_name("depio-like")), "run", "pipeline.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "'src'" in r.stderr and "255" in r.stderr


def _special_dir(kind):
    """A directory ``data`` holding a file and one odd entry of ``kind``."""
    Path("data").mkdir()
    (Path("data") / "a.txt").write_text("a")
    odd = Path("data") / "odd"
    if kind == "fifo":
        os.mkfifo(odd)
    elif kind == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(odd))
        s.close()
    elif kind == "loop":
        os.symlink("odd2", odd)
        os.symlink("odd", Path("data") / "odd2")
    elif kind == "dangling":
        os.symlink("nowhere", odd)
    elif kind == "up":
        os.symlink("..", odd)


SPECIAL_SCRIPT = """
    import os
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, SequentialExecutor, Task, Product, Dependency

    def count(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        Path(out).write_text(str(sorted(os.listdir(src))))
        print("ran count")

    p = Pipeline(SequentialExecutor())
    p.add_task(Task("count", count, ["count.txt", "data"]))
    exit(p.main())
"""


@pytest.mark.parametrize("kind", ["fifo", "socket", "loop", "dangling", "up"])
def test_odd_entries_inside_a_dependency_directory_never_hang_and_settle(tmp_path, kind):
    os.chdir(tmp_path)
    _special_dir(kind)
    first = run_script(tmp_path, SPECIAL_SCRIPT, timeout=60)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Traceback" not in first.stderr and "ran count" in first.stdout
    again = run_script(tmp_path, SPECIAL_SCRIPT, timeout=60)
    assert again.returncode == 0 and "ran count" not in again.stdout, again.stdout
    # What the entry contributes: its name and kind (a link: its text). Replacing it
    # with a regular file of that name is a change.
    odd = tmp_path / "data" / "odd"
    if odd.is_symlink() or odd.exists():
        odd.unlink()
    odd.write_text("now a file")
    changed = run_script(tmp_path, SPECIAL_SCRIPT, timeout=60)
    assert changed.returncode == 0 and "ran count" in changed.stdout, changed.stdout


def test_a_fifo_declared_as_a_dependency_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "data")
    r = run_script(tmp_path, SPECIAL_SCRIPT, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "'count'" in r.stderr and "data" in r.stderr and "FIFO" in r.stderr
    assert "ran count" not in r.stdout


def test_a_symlink_loop_declared_as_a_dependency_is_a_clear_error(tmp_path):
    os.symlink("data", tmp_path / "data")
    r = run_script(tmp_path, SPECIAL_SCRIPT, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "'count'" in r.stderr and "symlink loop" in r.stderr


def test_a_dangling_symlink_declared_as_a_dependency_says_where_it_points(project):
    os.symlink("gone/away.txt", "data.txt")
    p = new_pipeline()
    p.add_task(Task("reader", copy, ["out.txt", "data.txt"]))
    with pytest.raises(GraphError, match=r"'reader'.*data\.txt.*symlink to gone/away\.txt"):
        p.run()


# --------------------------------------------------------------------- permissions


def _without_dac_override() -> None:
    """In the child, before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the
    bounding set, so even uid 0 obeys permission bits after exec."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def _unprivileged_python(cwd):
    """Run Python in ``cwd`` so that permission bits stop it: as root (CI), without the
    capabilities that bypass them; skip if that cannot be done here."""
    extra = dict(preexec_fn=_without_dac_override) if os.geteuid() == 0 else {}
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("CI", None)

    def python(*args):
        return subprocess.run(
            [sys.executable, *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            **extra,
        )

    Path(cwd, "probe").mkdir()
    Path(cwd, "probe", "f").write_text("x")
    os.chmod(Path(cwd, "probe"), 0)
    try:
        probe = python("-c", "import os; os.stat('probe/f')")
    except subprocess.SubprocessError as e:
        pytest.skip(
            f"running as root and cannot drop CAP_DAC_READ_SEARCH here ({e}); no "
            "other way to make a read fail with EACCES for root"
        )
    finally:
        os.chmod(Path(cwd, "probe"), 0o755)
    if probe.returncode == 0:
        pytest.skip(
            "this process reads through a 000 directory (privileged), and dropping "
            "CAP_DAC_READ_SEARCH did not stop it"
        )
    return python


UNREADABLE_SCRIPT = """
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, SequentialExecutor, Task, Product, Dependency

    def copy(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        print("ran", out)
        Path(out).write_text("copied")

    p = Pipeline(SequentialExecutor())
    p.add_task(Task("fine", copy, ["fine.txt", "ok.txt"]))
    p.add_task(Task("reader", copy, ["out.txt", "SRC"]))
    exit(p.main())
"""


@pytest.mark.parametrize("case", ["file", "behind-dir"])
def test_an_unreadable_dependency_is_refused_before_anything_runs(project, case):
    python = _unprivileged_python(project)
    Path("ok.txt").write_text("ok")
    if case == "file":
        Path("secret.txt").write_text("s")
        os.chmod("secret.txt", 0)
        src = "secret.txt"
    else:
        Path("locked").mkdir()
        Path("locked/in.txt").write_text("s")
        os.chmod("locked", 0)
        src = "locked/in.txt"
    Path("pipeline.py").write_text(textwrap.dedent(UNREADABLE_SCRIPT).replace("SRC", src))
    try:
        r = python("pipeline.py")
    finally:
        os.chmod("locked" if case != "file" else "secret.txt", 0o755)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "'reader'" in r.stderr and src in r.stderr and "permission denied" in r.stderr
    assert "ran" not in r.stdout  # nothing ran, not even the task that could


def test_an_unreadable_directory_inside_a_dependency_fails_that_task_only(project):
    python = _unprivileged_python(project)
    Path("ok.txt").write_text("ok")
    Path("data/locked").mkdir(parents=True)
    Path("data/a.txt").write_text("a")
    os.chmod("data/locked", 0)
    Path("pipeline.py").write_text(textwrap.dedent(UNREADABLE_SCRIPT).replace("SRC", "data"))
    try:
        r = python("pipeline.py")
    finally:
        os.chmod("data/locked", 0o755)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "Traceback" not in out
    assert "FAILED    [2] 'reader'" in r.stdout, out
    assert "data/locked" in r.stdout and "permission denied" in r.stdout, out
    assert "FINISHED  [1] 'fine'" in r.stdout, out


PRODUCT_SCRIPT = """
    import os
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, ParallelExecutor, SequentialExecutor, Task, Product, Dependency

    def locked(out: Annotated[Path, Product]):
        Path(out).write_text("secret")
        os.chmod(out, 0)

    def copy(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        print("ran copy")
        Path(out).write_text(Path(src).read_text())

    p = Pipeline(EXECUTOR)
    p.add_task(Task("locked", locked, ["secret.txt"]))
    p.add_task(Task("reader", copy, ["copy.txt", "secret.txt"]))
    exit(p.main())
"""


@pytest.mark.parametrize("executor", ["SequentialExecutor()", "ParallelExecutor(max_workers=2)"])
def test_a_product_made_unreadable_fails_its_reader_naming_it(project, executor):
    python = _unprivileged_python(project)
    Path("pipeline.py").write_text(textwrap.dedent(PRODUCT_SCRIPT).replace("EXECUTOR", executor))
    try:
        r = python("pipeline.py")
    finally:
        if Path("secret.txt").exists():
            os.chmod("secret.txt", 0o644)
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "Traceback" not in out
    assert "FINISHED  [1] 'locked'" in r.stdout, out
    assert "FAILED    [2] 'reader'" in r.stdout and "secret.txt" in r.stdout, out
    assert "permission denied" in r.stdout and "ran copy" not in r.stdout, out


def test_a_dependency_that_is_a_symlink_to_a_directory_waits_for_its_writers(project):
    Path("real").mkdir()
    os.symlink("real", "view")

    def build():
        p = new_pipeline()
        p.add_task(Task("list", listing, ["listing.txt", "view"]))
        p.add_task(Task("a", write, ["real/a.txt", "A"]))
        return p

    assert build().run() == 0
    assert Path("listing.txt").read_text() == "a.txt=A"
    assert calls() == ["write:a.txt", "listing:listing.txt"]
    assert build().run() == 0 and calls() == []


def test_remove_files_removes_files_and_leaves_directories_and_missing_paths(tmp_path):
    from depio_like.fs import remove_files

    (tmp_path / "half.txt").write_text("half written")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "inside.txt").write_text("kept")
    remove_files(
        RealDisk(), [str(tmp_path / "half.txt"), str(tmp_path / "dir"), str(tmp_path / "never.txt")]
    )
    assert not (tmp_path / "half.txt").exists()
    assert (tmp_path / "dir" / "inside.txt").read_text() == "kept"


@pytest.mark.parametrize("kind", ["fifo", "dangling"])
def test_a_bad_input_several_tasks_read_names_each_of_them(project, kind):
    """The graph looks at an input no task makes once, and still names every task that
    reads it when it cannot be used."""
    if kind == "fifo":
        os.mkfifo("data")
    else:
        os.symlink("nowhere.txt", "data")
    p = new_pipeline()
    for name in ("first", "second", "third"):
        p.add_task(Task(name, copy, [f"{name}.txt", "data"]))
    with pytest.raises(PipelineError) as err:
        p.run()
    msg = str(err.value)
    for name in ("first", "second", "third"):
        assert f"'{name}'" in msg, msg
    assert ("FIFO" if kind == "fifo" else "symlink to nowhere.txt") in msg, msg
    assert msg.count("data") >= 3 and calls() == []
