"""Property tests: random DAGs with random failing tasks, on both local executors.

For any graph and any set of failing tasks, a run
  - starts each task at most once, and never before all its dependencies ended;
  - never starts the (transitive) dependents of a failed task; they are DEPFAILED;
  - runs every other task to FINISHED;
  - exits 1 iff something failed.
After the failing tasks are fixed, the next run runs exactly the tasks that failed and
their dependents, and nothing else.

Hypothesis is deterministic here (``derandomize=True``, no example database) so CI sees
the same examples every time.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Annotated

import pytest

try:
    import hypothesis  # noqa: F401
except ImportError:
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on"):
        raise  # in CI a missing test dependency is an error, not a reason to skip
    pytest.skip(
        "the property tests need hypothesis: pip install hypothesis", allow_module_level=True
    )
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from depio_like import (  # noqa: E402
    Dependency,
    ParallelExecutor,
    Pipeline,
    Product,
    SequentialExecutor,
    Status,
    Task,
)


def _append(log: str, line: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def content(name: str, texts: list[str]) -> str:
    return f"{name}({','.join(texts)})"


def node(
    out: Annotated[Path, Product],
    ins: Annotated[list, Dependency],
    name: str,
    log: str,
    marker: str | None = None,
    how: str = "raise",
):
    """Log start, fail while ``marker`` exists (in the way ``how`` says), else write the
    product from the inputs and log end."""
    _append(log, f"start {name}")
    if marker is not None and os.path.exists(marker):
        if how == "raise":
            raise RuntimeError(f"{name} is broken")
        if how == "exit":  # the worker process dies under the task
            os._exit(7)
        return  # how == "no-product": returns without writing its product
    Path(out).write_text(content(name, [Path(p).read_text() for p in ins]))
    _append(log, f"end {name}")


@st.composite
def dags(draw, failure_kinds):
    """Tasks in topological order: (upstream indices, edge kinds, failure kind or None)."""
    n = draw(st.integers(1, 60))
    tasks = []
    for i in range(n):
        ups = draw(st.lists(st.integers(0, i - 1), max_size=min(3, i), unique=True)) if i else []
        # Mostly file edges; some explicit depends_on edges.
        kinds = [draw(st.sampled_from(["path", "path", "path", "task"])) for _ in ups]
        fail = draw(
            st.one_of(
                st.none(),
                st.none(),
                st.none(),
                st.none(),
                st.none(),
                st.sampled_from(failure_kinds),
            )
        )
        tasks.append((ups, kinds, fail))
    return tasks


def build(root: Path, spec, executor) -> tuple[Pipeline, list[Task]]:
    p = Pipeline(executor=executor, state_dir=root / "state", stream=io.StringIO())
    log = str(root / "log")
    added: list[Task] = []
    for i, (ups, kinds, fail) in enumerate(spec):
        name = f"t{i}"
        files = [str(root / f"{u}.txt") for u, k in zip(ups, kinds) if k == "path"]
        after = [added[u] for u, k in zip(ups, kinds) if k == "task"]
        marker = str(root / f"broken-{i}") if fail else None
        t = Task(
            name,
            node,
            [str(root / f"{i}.txt"), files, name, log, marker, fail or "raise"],
            depends_on=after,
        )
        added.append(p.add_task(t))
    return p, added


def read_log(root: Path, skip: int) -> list[tuple[str, str]]:
    lines = (root / "log").read_text().splitlines()
    return [tuple(ln.split(" ", 1)) for ln in lines[skip:]]  # type: ignore[misc]


def check_order(events, spec) -> None:
    """Each task starts at most once and only after every upstream task that runs in this
    run ended (an upstream task that does not run at all was up to date)."""
    runs = {name for what, name in events if what == "start"}
    seen_start: dict[str, int] = {}
    seen_end: dict[str, int] = {}
    for k, (what, name) in enumerate(events):
        book = seen_start if what == "start" else seen_end
        assert name not in book, f"{name} logged {what!r} twice in one run"
        book[name] = k
        if what == "start":
            ups = spec[int(name[1:])][0]
            for u in ups:
                assert f"t{u}" in seen_end or f"t{u}" not in runs, (
                    f"{name} started before its dependency t{u} ended"
                )


def downstream_closure(spec, roots: set[int]) -> set[int]:
    """``roots`` and every task that (transitively) depends on one of them."""
    out = set(roots)
    for i, (ups, _, _) in enumerate(spec):  # topological order: one pass suffices
        if any(u in out for u in ups):
            out.add(i)
    return out


class Hung(Exception):
    pass


def _hung(signum, frame):
    raise Hung(f"a pipeline did not end within {SAFETY} s")


# Seconds per example (a normal one takes well under 1 s): a safety net, so that a hung
# run fails the test instead of stalling CI.
SAFETY = 15


@contextlib.contextmanager
def hang_guard(seconds: float):
    """Raise ``Hung`` in the test after ``seconds``. Shares SIGALRM with pytest-timeout:
    its timer, if any, is put back (minus the time spent) afterwards, and if it would
    fire first anyway, this guard stands aside."""
    old_left, old_interval = signal.getitimer(signal.ITIMER_REAL)
    if old_left and old_left <= seconds:
        yield
        return
    old_handler = signal.signal(signal.SIGALRM, _hung)
    t0 = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old_handler)
        if old_left:
            left = max(old_left - (time.monotonic() - t0), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, old_interval)


def check_pipeline(spec, make_executor) -> None:
    root = Path(tempfile.mkdtemp(prefix="depio-prop-"))
    try:
        with hang_guard(SAFETY):
            check_runs(root, spec, make_executor)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def check_runs(root: Path, spec, make_executor) -> None:
    """Run 1 with the failing tasks broken, run 2 with them fixed; check both."""
    for i, (_, _, fail) in enumerate(spec):
        if fail:
            (root / f"broken-{i}").touch()

    # What must happen: a failing task fails unless something upstream failed first.
    failing = {i for i, (_, _, f) in enumerate(spec) if f}
    bad = downstream_closure(spec, failing)
    failed = {i for i in failing if not any(u in bad for u in spec[i][0])}
    depfailed = downstream_closure(spec, failed) - failed
    assert bad == failed | depfailed

    # Run 1.
    p, tasks = build(root, spec, make_executor())
    rc = p.run()
    events = read_log(root, 0)
    check_order(events, spec)
    started = {int(n[1:]) for what, n in events if what == "start"}
    ended = {int(n[1:]) for what, n in events if what == "end"}
    got = {i: t.status for i, t in enumerate(tasks)}
    out = p.stream.getvalue()
    assert {i for i, s in got.items() if s is Status.FAILED} == failed, out
    assert {i for i, s in got.items() if s is Status.DEPFAILED} == depfailed, out
    assert {i for i, s in got.items() if s is Status.FINISHED} == set(
        range(len(spec))
    ) - failed - depfailed, out
    assert not started & depfailed, "a dependent of a failed task started"
    assert started == set(range(len(spec))) - depfailed
    assert ended == set(range(len(spec))) - failed - depfailed
    assert rc == (1 if failed else 0), out

    # Fix the failing tasks, run again: exactly what failed and its dependents run.
    for i in failing:
        (root / f"broken-{i}").unlink()
    p, tasks = build(root, spec, make_executor())
    rc = p.run()
    out = p.stream.getvalue()
    events2 = read_log(root, len(events))
    check_order(events2, spec)
    rerun = {int(n[1:]) for what, n in events2 if what == "start"}
    assert rerun == failed | depfailed, out
    assert {int(n[1:]) for what, n in events2 if what == "end"} == rerun
    assert rc == 0, out
    for i, t in enumerate(tasks):
        want = Status.FINISHED if i in rerun else Status.SKIPPED
        assert t.status is want, (i, t.status, out)

    # Every product holds what a clean run would have written.
    texts: dict[int, str] = {}
    for i, (ups, kinds, _) in enumerate(spec):
        ins = [texts[u] for u, k in zip(ups, kinds) if k == "path"]
        texts[i] = content(f"t{i}", ins)
        assert (root / f"{i}.txt").read_text() == texts[i]


COMMON = dict(
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@settings(max_examples=120, **COMMON)
@given(spec=dags(["raise", "no-product"]))
def test_random_dags_sequential(spec):
    check_pipeline(spec, SequentialExecutor)


@settings(max_examples=60, **COMMON)
@given(spec=dags(["raise", "no-product", "exit"]))
def test_random_dags_parallel(spec):
    check_pipeline(spec, lambda: ParallelExecutor(max_workers=2))
