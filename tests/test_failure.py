"""Failures: FAILED, DEPFAILED downstream, independent branches go on, exit codes."""

from pathlib import Path
from typing import Annotated

from depio_like import Dependency, Product, Status, Task

from conftest import calls, log_call, new_pipeline


def produce(out: Annotated[Path, Product], src: Annotated[Path, Dependency] = None):
    log_call(Path(out).name)
    Path(out).write_text("x")


def explode(out: Annotated[Path, Product]):
    raise ValueError("the reactor melted")


def test_raising_task_fails_its_downstream_and_spares_the_rest(project, executor_factory):
    p = new_pipeline(executor_factory())
    bad = p.add_task(Task("explode", explode, ["bad.txt"]))
    child = p.add_task(Task("child", produce, ["child.txt", "bad.txt"]))
    grandchild = p.add_task(Task("grandchild", produce, ["gc.txt", "child.txt"]))
    free = p.add_task(Task("free", produce, ["free.txt"]))
    free2 = p.add_task(Task("free2", produce, ["free2.txt", "free.txt"]))
    assert p.run() == 1
    assert bad.status is Status.FAILED
    assert child.status is Status.DEPFAILED and grandchild.status is Status.DEPFAILED
    assert free.status is Status.FINISHED and free2.status is Status.FINISHED
    assert sorted(calls()) == ["free.txt", "free2.txt"]
    out = p.stream.getvalue()
    assert "ValueError: the reactor melted" in out
    assert "in explode" in out  # the user's frame is in the traceback
    assert out.count("ValueError: the reactor melted") == 1  # not printed twice


def test_missing_product_fails_naming_the_path(project, executor_factory):
    def lazy(out: Annotated[Path, Product]):
        pass

    p = new_pipeline(executor_factory())
    t = p.add_task(Task("lazy", lazy, ["sub/never.txt"]))
    assert p.run() == 1
    assert t.status is Status.FAILED
    assert "sub/never.txt" in p.stream.getvalue() and "lazy" in p.stream.getvalue()


def test_after_fixing_only_failed_and_downstream_run(project):
    Path("broken").touch()

    def maybe(out: Annotated[Path, Product]):
        log_call("maybe")
        if Path("broken").exists():
            raise RuntimeError("still broken")
        Path(out).write_text("ok")

    def build():
        p = new_pipeline()
        p.add_task(Task("maybe", maybe, ["m.txt"]))
        p.add_task(Task("child", produce, ["c.txt", "m.txt"]))
        p.add_task(Task("free", produce, ["f.txt"]))
        return p

    assert build().run() == 1
    assert sorted(calls()) == ["f.txt", "maybe"]
    Path("broken").unlink()
    assert build().run() == 0
    assert sorted(calls()) == ["c.txt", "maybe"]


def flaky_once(out: Annotated[Path, Product]):
    log_call("try")
    if not Path("tried").exists():
        Path("tried").touch()
        raise RuntimeError("first attempt fails")
    Path(out).write_text("ok")


def test_retries_resubmit_a_failed_task(project, executor_factory):
    p = new_pipeline(executor_factory())
    t = p.add_task(Task("flaky", flaky_once, ["f.txt"], retries=1))
    assert p.run() == 0
    assert t.status is Status.FINISHED
    assert calls() == ["try", "try"]
    assert (
        "RETRY     [1] 'flaky' (attempt 2 of 2) after: RuntimeError: first attempt fails"
        in p.stream.getvalue()
    )


def test_retries_come_from_the_executor_unless_the_task_says(project):
    from depio_like import SequentialExecutor

    ex = SequentialExecutor()
    ex.retries = 1
    p = new_pipeline(ex)
    p.add_task(Task("flaky", flaky_once, ["f.txt"]))
    assert p.run() == 0
    Path("tried").unlink()
    Path("f.txt").unlink()
    p = new_pipeline(ex)
    p.add_task(Task("flaky", flaky_once, ["f.txt"], retries=0))
    assert p.run() == 1


def write_then_fail(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
    log_call("ran")
    Path(out).write_text(Path(src).read_text())
    if Path("src.txt").read_text() == "bad":
        raise RuntimeError("failed after writing")


def test_a_failed_run_marks_old_products_incomplete(project):
    Path("src.txt").write_text("good")

    def build(**kw):
        p = new_pipeline(**kw)
        p.add_task(Task("copy", write_then_fail, ["out.txt", "src.txt"]))
        return p

    assert build().run() == 0
    Path("src.txt").write_text("bad")
    assert build().run() == 1
    assert Path("out.txt").read_text() == "bad"  # left in place by default
    # Back to the recorded input: without the "started" mark the old record would match
    # again; the task must rerun because its last run did not finish.
    Path("src.txt").write_text("good")
    Path("out.txt").write_text("good")
    calls()
    assert build().run() == 0
    assert calls() == ["ran"]


def test_delete_on_error_removes_the_failed_tasks_products(project):
    Path("src.txt").write_text("bad")
    p = new_pipeline(delete_on_error=True)
    t = p.add_task(Task("copy", write_then_fail, ["out.txt", "src.txt"]))
    assert p.run() == 1 and t.status is Status.FAILED
    assert not Path("out.txt").exists()
    assert Path("src.txt").exists()  # only products are removed


def test_a_retry_that_prints_nothing_leaves_no_log_of_the_failed_attempt(project, executor_factory):
    import sys

    seen = []

    def noisy_then_quiet(out: Annotated[Path, Product]):
        if not Path("tried").exists():
            Path("tried").touch()
            print("attempt 1 went wrong", file=sys.stderr)
            raise RuntimeError("first attempt")
        Path(out).write_text("ok")

    p = new_pipeline(executor_factory(), on_task_finished=seen.append)
    p.add_task(Task("flaky", noisy_then_quiet, ["f.txt"], retries=1))
    assert p.run() == 0
    assert seen[0].status is Status.FINISHED and seen[0].stderr == ""
    assert not list(Path(".depio_like/logs").glob("flaky-*"))
