"""Bad inputs, one test per case: the exact error (or outcome) and a message that names
the task and/or the path, so the user knows what to fix.

The local executors never pickle (see the lambda / local function case below); the Slurm
executor must, and an unpicklable argument is refused for it before anything is submitted.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import (
    CycleError,
    Dependency,
    DuplicateProductError,
    GraphError,
    MissingDependencyError,
    ParallelExecutor,
    PipelineError,
    Product,
    SequentialExecutor,
    Status,
    Task,
    TaskDeclarationError,
)

from conftest import log_call, new_pipeline


def run_script(directory, source, *args, env):
    """Run ``source`` as directory/pipeline.py in a fresh interpreter with ``env``."""
    (Path(directory) / "pipeline.py").write_text(textwrap.dedent(source))
    env = dict(env, PYTHONUNBUFFERED="1")
    env.pop("CI", None)
    return subprocess.run(
        [sys.executable, "pipeline.py", *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def step(out: Annotated[Path, Product], src: Annotated[Path, Dependency] = None):
    log_call(Path(out).name)
    text = Path(src).read_text() if src else ""
    Path(out).write_text(text + "+")


def calls():
    """The task bodies that ran since the last call, one file name a line."""
    p = Path("calls.log")
    lines = p.read_text().splitlines() if p.exists() else []
    p.unlink(missing_ok=True)
    return lines


def statuses(p):
    return {t.name: t.status for t in p.tasks}


# --------------------------------------------------------------------- refused up front


def test_cycle(project):
    p = new_pipeline()
    p.add_task(Task("bystander", step, ["free.txt"]))
    p.add_task(Task("make-a", step, ["a.txt", "b.txt"]))
    p.add_task(Task("make-b", step, ["b.txt", "a.txt"]))
    with pytest.raises(PipelineError) as err:
        p.run()
    assert type(err.value) is CycleError
    msg = str(err.value)
    assert "'make-a'" in msg and "'make-b'" in msg and "bystander" not in msg
    assert "(needs a.txt)" in msg and "(needs b.txt)" in msg
    assert calls() == [] and not Path(".depio_like").exists()


def test_two_producers_of_one_path(project):
    p = new_pipeline()
    p.add_task(Task("first-maker", step, ["out/data.csv"]))
    with pytest.raises(PipelineError) as err:
        p.add_task(Task("second-maker", step, ["./out/../out/data.csv", "in.txt"]))
    assert type(err.value) is DuplicateProductError
    msg = str(err.value)
    assert "out/data.csv" in msg and "'first-maker'" in msg and "'second-maker'" in msg
    assert len(p.tasks) == 1  # the second one was not added


def test_missing_source(project):
    p = new_pipeline()
    p.add_task(Task("reader", step, ["out.txt", "data/raw input.csv"]))
    with pytest.raises(PipelineError) as err:
        p.run()
    assert type(err.value) is MissingDependencyError
    msg = str(err.value)
    assert "'reader'" in msg and "data/raw input.csv" in msg and "does not exist" in msg
    assert calls() == []


def count_to(out: Annotated[int, Product]):
    pass


def test_product_annotation_on_a_non_path_value(project):
    # Refused when the task is declared, before any pipeline sees it: the message names
    # the function and the parameter (the task's own name is not in it).
    with pytest.raises(PipelineError) as err:
        Task("counter", count_to, [5])
    assert type(err.value) is TaskDeclarationError
    assert isinstance(err.value, TypeError)
    msg = str(err.value)
    assert "count_to()" in msg and "'out'" in msg and "Product" in msg and "int 5" in msg


def test_product_inside_the_state_directory(project):
    p = new_pipeline()
    p.add_task(Task("sneaky", step, [".depio_like/records.txt"]))
    with pytest.raises(PipelineError) as err:
        p.run()
    assert type(err.value) is GraphError
    msg = str(err.value)
    assert "'sneaky'" in msg and ".depio_like/records.txt" in msg and "state directory" in msg
    assert calls() == []


def test_product_inside_a_custom_state_directory(project):
    p = new_pipeline(state_dir="build/state")
    p.add_task(Task("sneaky", step, ["build/state/x.txt"]))
    p.add_task(Task("fine", step, ["build/x.txt"]))
    with pytest.raises(GraphError, match=r"'sneaky'.*build/state/x\.txt.*build/state"):
        p.run()


# --------------------------------------------------------------------- they just work


def test_lambda_and_local_function_under_parallel_executor(project):
    # Forked workers already hold every task: nothing is pickled.
    def local(out: Annotated[Path, Product], text: str):
        Path(out).write_text(text)

    def build():
        p = new_pipeline(ParallelExecutor(max_workers=2))
        lam = p.add_task(
            Task("lambda", lambda path: Path(path).write_text("from a lambda"), ["lambda.txt"])
        )
        loc = p.add_task(Task("local", local, ["local.txt", "from a local function"]))
        return p, lam, loc

    p, lam, loc = build()
    assert p.run() == 0, p.stream.getvalue()
    assert lam.status is Status.FINISHED and loc.status is Status.FINISHED
    assert Path("lambda.txt").read_text() == "from a lambda"
    assert Path("local.txt").read_text() == "from a local function"
    p, lam, loc = build()
    assert p.run() == 0
    assert loc.status is Status.SKIPPED and lam.status is Status.SKIPPED


@pytest.mark.parametrize("executor", ["sequential", "parallel"])
def test_paths_with_spaces_and_non_ascii_characters(project, executor):
    make = SequentialExecutor if executor == "sequential" else lambda: ParallelExecutor(2)
    src = Path("input data/naïve café — Ünïcödé 数据.txt")
    mid = Path("out put/résumé ✓ 1.txt")
    end = Path("out put/Ω final/ß ½.txt")
    src.parent.mkdir()
    src.write_text("ü")
    for d in (mid.parent, end.parent):
        d.mkdir(parents=True, exist_ok=True)

    def build():
        p = new_pipeline(make())
        p.add_task(Task("first étape", step, [mid, src]))
        p.add_task(Task("second 段", step, [end, mid]))
        return p

    p = build()
    assert p.run() == 0, p.stream.getvalue()
    assert end.read_text() == "ü++"
    assert sorted(calls()) == sorted([mid.name, end.name])
    out = p.stream.getvalue()
    assert str(src) in out and str(mid) in out  # the table shows the names as they are

    p = build()
    assert p.run() == 0
    assert set(statuses(p).values()) == {Status.SKIPPED} and calls() == []

    src.write_text("ö")
    p = build()
    assert p.run() == 0
    assert sorted(calls()) == sorted([mid.name, end.name])
    assert end.read_text() == "ö++"


UNICODE_SCRIPT = """
    import sys
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, ParallelExecutor, Task, Product, Dependency

    def copy(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        Path(out).write_bytes(Path(src).read_bytes() + b"!")

    src = Path(sys.argv[1])
    src.write_text("data") if not src.exists() else None
    p = Pipeline(ParallelExecutor(2))
    p.add_task(Task("copy", copy, [sys.argv[2], src]))
    exit(p.run())
"""


def test_non_ascii_paths_from_a_script_in_the_c_locale(tmp_path):
    # A cron job or a bare container: no UTF-8 locale. Python coerces it; the names must
    # still round-trip through the state log and the table.
    env = dict(os.environ, LC_ALL="C", LANG="C")
    args = ("données d'entrée.txt", "résultat 数据.txt")
    r = run_script(tmp_path, UNICODE_SCRIPT, *args, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "résultat 数据.txt" in r.stdout and "FINISHED" in r.stdout
    assert (tmp_path / "résultat 数据.txt").read_text() == "data!"
    r = run_script(tmp_path, UNICODE_SCRIPT, *args, env=env)
    assert r.returncode == 0 and "SKIPPED" in r.stdout, r.stdout + r.stderr


class KnownBug(AssertionError):
    """The signature of a bug this test once caught (now fixed): fails the test loudly."""


def test_a_file_name_that_is_not_utf8_with_a_strict_utf8_terminal(tmp_path):
    # What Python does with stdout under a UTF-8 locale such as en_US.UTF-8 (errors are
    # strict there; only the C/POSIX and C.UTF-8 locales get surrogateescape).
    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict")
    src, out = os.fsdecode(b"caf\xe9 in.txt"), os.fsdecode(b"out \xff.txt")
    r = run_script(tmp_path, UNICODE_SCRIPT, src, out, env=env)
    assert os.path.exists(os.path.join(os.fsencode(tmp_path), b"out \xff.txt"))
    if "UnicodeEncodeError" in r.stderr:
        raise KnownBug(r.stderr[-600:])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FINISHED" in r.stdout


# --------------------------------------------------------------------- fail at run time


def write_text_to(out: Annotated[Path, Product]):
    Path(out).write_text("a file where a directory is")


def test_product_is_an_existing_directory(project, executor_factory):
    Path("results").mkdir()
    (Path("results") / "keep.txt").write_text("old")
    p = new_pipeline(executor_factory())
    t = p.add_task(Task("writer", write_text_to, ["results"]))
    other = p.add_task(Task("other", step, ["other.txt"]))
    assert p.run() == 1
    assert t.status is Status.FAILED and other.status is Status.FINISHED
    out = p.stream.getvalue()
    assert "FAILED    [1] 'writer'" in out
    # The user sees the task's own traceback, which names the path.
    assert "IsADirectoryError: [Errno 21] Is a directory: 'results'" in out
    assert (Path("results") / "keep.txt").read_text() == "old"  # nothing of the user's lost


def test_product_is_an_existing_directory_with_delete_on_error(project):
    # delete_on_error removes a failed task's products, but never a directory.
    Path("results").mkdir()
    (Path("results") / "keep.txt").write_text("old")
    p = new_pipeline(delete_on_error=True)
    t = p.add_task(Task("writer", write_text_to, ["results"]))
    assert p.run() == 1 and t.status is Status.FAILED
    assert (Path("results") / "keep.txt").read_text() == "old"


PERMISSION_SCRIPT = """
    import sys
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, SequentialExecutor, Task, Product

    def write(out: Annotated[Path, Product]):
        Path(out).write_text("result")

    p = Pipeline(SequentialExecutor())
    p.add_task(Task("locked-out", write, ["readonly/result.txt"]))
    p.add_task(Task("elsewhere", write, ["writable.txt"]))
    exit(p.run())
"""


def _without_dac_override() -> None:
    """In the child, before exec: drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from the
    bounding set, so even uid 0 obeys permission bits after exec."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def test_permission_denied_writing_a_product(project):
    # A read-only directory stops writes only for a process without CAP_DAC_OVERRIDE. As
    # root (as in CI), the pipeline runs as root still, but with that capability dropped,
    # so the chmod gives a real EACCES; everything else it needs it owns.
    Path("readonly").mkdir()
    Path("pipeline.py").write_text(textwrap.dedent(PERMISSION_SCRIPT))
    os.chmod("readonly", 0o555)
    extra = dict(preexec_fn=_without_dac_override) if os.geteuid() == 0 else {}
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("CI", None)

    def python(*args):
        return subprocess.run(
            [sys.executable, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            **extra,
        )

    try:
        probe = python("-c", "open('readonly/probe', 'w')")
    except subprocess.SubprocessError as e:
        pytest.skip(
            f"running as root and cannot drop CAP_DAC_OVERRIDE here ({e}); no "
            "other way to make a write fail with EACCES for root"
        )
    if probe.returncode == 0:
        pytest.skip(
            "this process can write into a read-only directory (privileged), and "
            "dropping CAP_DAC_OVERRIDE did not stop it"
        )
    assert "PermissionError" in probe.stderr, probe.stderr

    r = python("pipeline.py")
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "FAILED    [1] 'locked-out'" in r.stdout, out
    assert "PermissionError: [Errno 13] Permission denied: 'readonly/result.txt'" in r.stdout, out
    assert "FINISHED  [2] 'elsewhere'" in r.stdout, out
    assert Path("writable.txt").read_text() == "result"
    assert not Path("readonly/result.txt").exists()
    os.chmod("readonly", 0o755)


def exits(out: Annotated[Path, Product]):
    sys.exit("giving up")


def hard_exits(out: Annotated[Path, Product]):
    os._exit(9)


def fine(out: Annotated[Path, Product]):
    Path(out).write_text("fine")


def test_a_task_calling_sys_exit_fails_and_others_go_on(project, executor_factory):
    p = new_pipeline(executor_factory())
    bad = p.add_task(Task("quitter", exits, ["q.txt"]))
    after = p.add_task(Task("after", step, ["after.txt", "q.txt"]))
    ok = [p.add_task(Task(f"fine{k}", fine, [f"f{k}.txt"])) for k in range(3)]
    assert p.run() == 1  # not the task's exit code: the pipeline's
    assert bad.status is Status.FAILED and after.status is Status.DEPFAILED
    assert all(t.status is Status.FINISHED for t in ok)
    out = p.stream.getvalue()
    assert "FAILED    [1] 'quitter'" in out and "the task called sys.exit('giving up')" in out
    assert "DEPFAILED [2] 'after' (because [1] 'quitter' failed)" in out


def test_a_task_calling_os_exit_in_a_worker_fails_and_others_go_on(project):
    p = new_pipeline(ParallelExecutor(max_workers=2))
    bad = p.add_task(Task("hard-quitter", hard_exits, ["h.txt"]))
    after = p.add_task(Task("after", step, ["after.txt", "h.txt"]))
    ok = [p.add_task(Task(f"fine{k}", fine, [f"f{k}.txt"])) for k in range(6)]
    assert p.run() == 1
    assert bad.status is Status.FAILED and after.status is Status.DEPFAILED
    assert all(t.status is Status.FINISHED for t in ok)
    out = p.stream.getvalue()
    assert "FAILED    [1] 'hard-quitter'" in out
    assert "the worker process running the task exited with code 9" in out


def test_unpicklable_argument_for_an_executor_that_must_pickle(project):
    import threading

    from depio_like import SubmitItExecutor

    def use(out: Annotated[Path, Product], lock, n: int):
        Path(out).write_text("never")

    p = new_pipeline(SubmitItExecutor(cluster="local"))
    bad = p.add_task(Task("locked", use, ["l.txt", threading.Lock(), 1]))
    fine = p.add_task(Task("fine", step, ["fine.txt"]))
    assert p.run() == 1
    assert bad.status is Status.FAILED and fine.status is Status.FINISHED
    out = p.stream.getvalue()
    assert (
        "task [1] 'locked': argument 'lock' (lock) cannot be sent to a job (it cannot be "
        "pickled" in out
    )
    # Only "fine" went out as a job: the refused task was never submitted.
    assert len(list((project / ".depio_like" / "slurm").glob("*/*_submitted.pkl"))) == 1
