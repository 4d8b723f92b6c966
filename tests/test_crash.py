"""kill -9 at any moment: the next run finishes the job, trusts nothing half done and
redoes nothing that was recorded as done.

A generated pipeline (~200 tasks in layers, each reading 1-3 earlier products) runs as a
real process with ParallelExecutor(2); the test kills its whole process group with
SIGKILL after a random delay, reads the state log to see what was recorded as finished,
then reruns to completion and checks every product byte for byte against contents the
test computes itself.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SAFETY = 120  # seconds; a safety net for hung processes, never a pass/fail criterion

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="needs POSIX process groups")


def content(name: str, texts: list[str]) -> str:
    """A task's product: a function of its own name and its inputs' contents only."""
    digest = hashlib.sha256("\0".join([name, *texts]).encode()).hexdigest()
    return f"{name}:{digest}\n" * 4


# The pipeline script. Its task bodies log their name with one O_APPEND write (to the
# file named by $RUNLOG: not an argument, so it does not change the tasks' fingerprints),
# sleep a little, and write their product in two halves so a kill can land in between.
SCRIPT = textwrap.dedent("""
    import hashlib, json, os, sys, time
    from pathlib import Path
    from typing import Annotated
    from depio_like import Dependency, ParallelExecutor, Pipeline, Product, Task

    {content}

    def step(out: Annotated[Path, Product], ins: Annotated[list, Dependency], name: str):
        fd = os.open(os.environ["RUNLOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, (name + "\\n").encode())
        os.close(fd)
        data = content(name, [Path(p).read_text() for p in ins])
        time.sleep(0.002)
        with open(out, "w") as f:
            f.write(data[:len(data) // 2])
            f.flush()
            time.sleep(0.001)
            f.write(data[len(data) // 2:])

    Path("out").mkdir(exist_ok=True)
    p = Pipeline(executor=ParallelExecutor(max_workers=2))
    for t in json.loads(Path("spec.json").read_text()):
        p.add_task(Task(t["name"], step, [t["out"], t["ins"], t["name"]]))
    sys.exit(p.run())
""").format(content=inspect.getsource(content))


def make_spec(rng: random.Random, layers: int = 10, width: int = 20) -> list[dict]:
    """Tasks in topological order. Layer 0 reads seed.txt (about half of them) or nothing;
    later tasks read 1-3 products of earlier layers, mostly the previous one."""
    spec: list[dict] = []
    by_layer: list[list[str]] = []
    for layer in range(layers):
        outs = []
        for k in range(width):
            name = f"t{layer:02d}_{k:02d}"
            out = f"out/{name}.txt"
            if layer == 0:
                ins = ["seed.txt"] if rng.random() < 0.5 else []
            else:
                pool = by_layer[-1] * 3 + [o for lay in by_layer[:-1] for o in lay]
                ins = sorted(set(rng.sample(pool, rng.randint(1, 3))))
            spec.append({"name": name, "out": out, "ins": ins})
            outs.append(out)
        by_layer.append(outs)
    return spec


def expected_products(spec: list[dict], seed_text: str) -> dict[str, str]:
    files = {"seed.txt": seed_text}
    for t in spec:
        files[t["out"]] = content(t["name"], [files[i] for i in t["ins"]])
    del files["seed.txt"]
    return files


def start(directory: Path, runlog: str) -> subprocess.Popen:
    env = dict(os.environ, RUNLOG=str(directory / runlog), PYTHONUNBUFFERED="1")
    env.pop("CI", None)
    with open(directory / f"{runlog}.out", "w") as out:
        return subprocess.Popen(
            [sys.executable, "pipeline.py"],
            cwd=directory,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def finish(directory: Path, runlog: str) -> tuple[int, list[str], str]:
    proc = start(directory, runlog)
    try:
        rc = proc.wait(SAFETY)
    finally:
        kill_group(proc)
    return rc, ran(directory / runlog), (directory / f"{runlog}.out").read_text()


def ran(runlog: Path) -> list[str]:
    return runlog.read_text().split() if runlog.exists() else []


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the script and its forked workers, and wait until none of them runs."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(SAFETY)
    if os.path.isdir("/proc"):
        deadline = time.monotonic() + SAFETY
        while group_members(proc.pid):
            assert time.monotonic() < deadline, "killed workers are still running"
            time.sleep(0.005)


def record_key(item: list, root: str) -> str:
    """The absolute key of a state line (format 2): "" stands for "p:" + the first
    product; paths below the project are relative to it."""
    key = item[1]
    if item[0] == "r" and key == "":
        key = "p:" + min(p[0] for p in item[7])
    if key.startswith("p:") and not key.startswith("p:/"):
        key = "p:" + os.path.join(root, key[2:])
    return key


def recorded_finished(log: bytes, since: int, root: str) -> set[str]:
    """Keys whose last "r"/"x" line is an "r" line written at or after byte ``since``.

    As the state log itself does, a torn last line (no newline) is ignored.
    """
    last: dict[str, bool] = {}
    offset = 0
    for line in log.split(b"\n")[:-1]:
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        if isinstance(item, list) and item and item[0] in ("r", "x"):
            last[record_key(item, root)] = item[0] == "r" and offset >= since
        offset += len(line) + 1
    return {key for key, new in last.items() if new}


KILL_POINTS = 24


def test_kill_9_at_random_moments_then_rerun(tmp_path):
    rng = random.Random(20240917)
    spec = make_spec(rng)
    assert len(spec) == 200
    old, new = expected_products(spec, "seed A\n"), expected_products(spec, "seed B\n")
    affected = {t["name"] for t in spec if old[t["out"]] != new[t["out"]]}
    assert 100 < len(affected) < 200  # the seed change reruns part of the graph only

    # A base project, built once with seed A: its records are the "old" ones every
    # kill point starts from, so the killed runs mix up-to-date and outdated records.
    # Every run happens in the same directory, "work", restored from a copy of the base
    # before each kill point.
    work, store = tmp_path / "work", tmp_path / "base"
    work.mkdir()
    (work / "pipeline.py").write_text(SCRIPT)
    (work / "spec.json").write_text(json.dumps(spec))
    (work / "seed.txt").write_text("seed A\n")
    rc, first, out = finish(work, "prep.log")
    assert rc == 0, out
    assert sorted(first) == sorted(t["name"] for t in spec)
    for path, text in old.items():
        assert (work / path).read_text() == text, path
    for f in work.glob("prep.log*"):
        f.unlink()
    base_log = (work / ".depio_like" / "state.jsonl").read_bytes()
    shutil.copytree(work, store, symlinks=True)
    key_of = {"p:" + os.path.join(os.path.realpath(work), t["out"]): t["name"] for t in spec}

    def fresh() -> Path:
        shutil.rmtree(work)
        shutil.copytree(store, work, symlinks=True)
        (work / "seed.txt").write_text("seed B\n")
        return work

    # A clean run with seed B: the reference, and how long a run takes.
    clean = fresh()
    t0 = time.monotonic()
    rc, clean_ran, out = finish(clean, "run.log")
    duration = time.monotonic() - t0
    assert rc == 0, out
    assert sorted(clean_ran) == sorted(affected)
    for path, text in new.items():
        assert (clean / path).read_text() == text, path

    # One kill point per slice of the clean run's duration, at a random place in it (counted
    # from the first task: most land while tasks are being recorded).
    delays = [duration * (k + rng.random()) / KILL_POINTS for k in range(KILL_POINTS)]
    mid_run = 0
    for k, delay in enumerate(delays):
        d = fresh()
        where = f"kill point {k} ({delay:.3f} s of {duration:.3f} s)"

        proc = start(d, "killed.log")
        # Count the delay from the first task, not from the interpreter's start: on a busy
        # machine start-up may take longer than the measured run and every kill would
        # land before any task.
        deadline = time.monotonic() + 60
        while not (d / "killed.log").exists() and proc.poll() is None:
            assert time.monotonic() < deadline, f"{where}: no task started"
            time.sleep(0.005)
        time.sleep(delay)
        kill_group(proc)

        killed_ran = ran(d / "killed.log")
        if "All 200 tasks done" in (d / "killed.log.out").read_text():
            # It had recorded everything before the kill (and may have compacted the log).
            done = set(affected)
        else:
            log = (d / ".depio_like" / "state.jsonl").read_bytes()
            assert log.startswith(base_log), f"{where}: the state log was not appended to"
            done = {
                key_of[key] for key in recorded_finished(log, len(base_log), os.path.realpath(work))
            }
        assert done <= set(killed_ran), f"{where}: records for tasks that never started"
        if 0 < len(done) < len(affected):
            mid_run += 1

        rc, rerun, out = finish(d, "rerun.log")
        assert rc == 0, f"{where}: the rerun failed:\n{out}"
        for path, text in new.items():
            got = (d / path).read_text()
            assert got == text, f"{where}: {path} is {got!r}, expected {text!r}"
        assert len(rerun) == len(set(rerun)), f"{where}: a task ran twice in the rerun"
        again = done & set(rerun)
        assert not again, (
            f"{where}: recorded as finished before the kill, ran again: {sorted(again)}"
        )
        untouched = (set(killed_ran) | set(rerun)) - affected
        assert not untouched, f"{where}: up-to-date tasks ran: {sorted(untouched)}"
        # Everything that had to run and was not recorded as done ran in the rerun.
        assert set(rerun) == affected - done, where
        # ... and the rerun left a state the next run trusts: nothing more to do.
        rc, third, out = finish(d, "third.log")
        assert rc == 0 and third == [], f"{where}: a third run still ran {third}:\n{out}"

    # Some kills really landed while tasks were being recorded (not all before the first
    # record or after the last): a sanity check that the test tests something, kept
    # loose (the delays follow the measured run time, so most land mid-run).
    assert mid_run >= 3, f"only {mid_run} of {KILL_POINTS} kills landed mid-run"


# --------------------------------------------------------------------------------------
# A task killed while it writes its product.

HALF_WRITER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from typing import Annotated
    from depio_like import Dependency, ParallelExecutor, Pipeline, Product, Task

    FULL = "0123456789" * 100

    def writer(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        with open("calls.log", "a") as f:
            f.write("writer\\n")
        mode = Path("mode").read_text()
        with open(out, "w") as f:
            if mode == "half":  # die (at the test's hand) half way through
                f.write(FULL[:len(FULL) // 2])
                f.flush()
            else:
                f.write(FULL)
                f.flush()
            if mode in ("half", "full-then-hang"):
                Path("signal").touch()
                time.sleep(120)

    def reader(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        with open("calls.log", "a") as f:
            f.write("reader\\n")
        Path(out).write_text(Path(src).read_text()[::-1])

    p = Pipeline(executor=ParallelExecutor(max_workers=2))
    p.add_task(Task("writer", writer, ["product.txt", "src.txt"]))
    p.add_task(Task("reader", reader, ["reversed.txt", "product.txt"]))
    sys.exit(p.run(force="force" in sys.argv))
""")


def run_until_signal_then_kill(d: Path, *args: str) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with open(d / "killed.out", "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "pipeline.py", *args],
            cwd=d,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SAFETY
        while not (d / "signal").exists():
            assert proc.poll() is None, (d / "killed.out").read_text()
            assert time.monotonic() < deadline, "the task never signalled"
            time.sleep(0.005)
    finally:
        kill_group(proc)
    (d / "signal").unlink()


def run_to_end(d: Path) -> tuple[int, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("CI", None)
    r = subprocess.run(
        [sys.executable, "pipeline.py"],
        cwd=d,
        env=env,
        capture_output=True,
        text=True,
        timeout=SAFETY,
        stdin=subprocess.DEVNULL,
    )
    return r.returncode, r.stdout + r.stderr


def calls(d: Path) -> list[str]:
    log = d / "calls.log"
    lines = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return lines


FULL = "0123456789" * 100


@pytest.mark.parametrize(
    "before, killed_in",
    [
        # Never finished before; killed after writing half its product.
        ("nothing", "half"),
        # Finished once (a record says what product.txt held), forced to run again, killed
        # after writing half of it.
        ("a record", "half"),
        # Finished once, forced to run again, killed after it rewrote the very same bytes but
        # before it returned: nothing on disk differs from the record; only the "started"
        # mark says that the task did not finish.
        ("a record", "full-then-hang"),
    ],
)
def test_a_task_killed_while_writing_its_product_reruns(tmp_path, before, killed_in):
    d = tmp_path
    (d / "pipeline.py").write_text(HALF_WRITER)
    (d / "src.txt").write_text("source")
    if before == "a record":
        (d / "mode").write_text("full")
        rc, out = run_to_end(d)
        assert rc == 0, out
        assert calls(d) == ["writer", "reader"]
    (d / "mode").write_text(killed_in)
    run_until_signal_then_kill(d, "force")
    assert calls(d) == ["writer"]
    assert (d / "product.txt").read_text() == (
        FULL if killed_in == "full-then-hang" else FULL[: len(FULL) // 2]
    )

    (d / "mode").write_text("full")
    rc, out = run_to_end(d)
    assert rc == 0, out
    reran = calls(d)
    assert "writer" in reran, f"the killed task was skipped:\n{out}"
    assert (d / "product.txt").read_text() == FULL
    assert (d / "reversed.txt").read_text() == FULL[::-1]
    if before == "a record":
        # It wrote the bytes it had written before: the reader stays up to date.
        assert reran == ["writer"], out
    else:
        assert reran == ["writer", "reader"], out

    # And now it is done: the next run skips both.
    rc, out = run_to_end(d)
    assert rc == 0 and calls(d) == [], out


HELD_BACK = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from typing import Annotated
    from depio_like import Dependency, Pipeline, Product, SequentialExecutor, Task

    def log(name):
        with open("calls.log", "a") as f:
            f.write(name + "\\n")

    def quick(out: Annotated[Path, Product], name: str):
        log(name)
        out.write_text(name)

    def slow(out: Annotated[Path, Product], after: Annotated[Path, Dependency]):
        log("slow")
        Path("slow-started").touch()
        while not Path("go").exists():
            time.sleep(0.02)
        out.write_text("slow")

    p = Pipeline(executor=SequentialExecutor())
    p.add_task(Task("a", quick, ["a.txt", "a"]))
    p.add_task(Task("b", quick, ["b.txt", "b"]))
    p.add_task(Task("slow", slow, ["s.txt", "b.txt"]))
    sys.exit(p.run())
    """
)


def test_records_of_finished_tasks_survive_a_kill_during_a_long_task_in_process(tmp_path):
    # Records are written in batches; a SequentialExecutor runs the next task inside
    # wait(), so what ended before a long task must reach the disk before it starts
    # (found in review: a kill during the long task made a and b run again).
    (tmp_path / "pipeline.py").write_text(HELD_BACK)
    run = [sys.executable, "pipeline.py"]
    driver = subprocess.Popen(run, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + SAFETY
        while not (tmp_path / "slow-started").exists():
            assert driver.poll() is None, driver.stderr.read().decode() if driver.stderr else ""
            assert time.monotonic() < deadline, "the long task never started"
            time.sleep(0.02)
        driver.send_signal(signal.SIGKILL)
        driver.wait(SAFETY)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(SAFETY)
    (tmp_path / "go").touch()
    again = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=SAFETY)
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted((tmp_path / "calls.log").read_text().split()) == ["a", "b", "slow", "slow"]


KILLED_WRITER = """
import os, signal, sys
from depio_like.fs import atomic_write
with atomic_write(sys.argv[1]) as f:  # killed in the middle of the write
    f.write("half")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""

TEMP_SCRIPT = """
from pathlib import Path
from typing import Annotated
from depio_like import Pipeline, Product, SequentialExecutor, task

@task("make")
def make(out: Annotated[Path, Product]):
    Path(out).write_text("made")

pipeline = Pipeline(executor=SequentialExecutor(), quiet=True)
pipeline.add_task(make(Path("out.txt")))
exit(pipeline.run())
"""


def test_temporary_files_of_writers_killed_midway_are_removed_by_the_next_run(tmp_path):
    # A real kill -9 inside atomic_write, on each file a run rewrites whole (the state
    # log when compacted, the last-run summary, a task's progress file, the Slurm
    # journal): the temporary file stays behind, and the next run removes it. Files that
    # only look alike (another name, not the pattern) are left alone.
    from conftest import run_script

    r = run_script(tmp_path, TEMP_SCRIPT)
    assert r.returncode == 0, r.stderr
    state = tmp_path / ".depio_like"
    (state / "slurm").mkdir()
    targets = [
        state / "state.jsonl",
        state / "last_run.json",
        state / "logs" / "make-0123456789.progress",
        state / "slurm" / "jobs.jsonl",
    ]
    for target in targets:
        k = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], cwd=tmp_path)
        assert k.returncode == -signal.SIGKILL
    left = sorted(p.relative_to(state) for p in state.rglob(".*.tmp"))
    assert len(left) == len(targets), left
    keep = [state / ".notes.tmp", state / ".mine.abcdefgh.tmp", state / "logs" / "x.tmp"]
    for p in keep:
        p.write_text("mine")
    r = run_script(tmp_path, TEMP_SCRIPT)
    assert r.returncode == 0, r.stderr
    # The Slurm journal's is removed when the Slurm executor reads the journal (this run
    # did not use it).
    left = sorted(str(p.relative_to(state)) for p in state.rglob("*.tmp") if p not in keep)
    assert len(left) == 1 and left[0].startswith("slurm/.jobs.jsonl."), left
    from depio_like.executors.slurm_journal import Journal

    assert Journal(state / "slurm" / "jobs.jsonl").load() == {}
    assert not list(state.rglob(".jobs.jsonl.*.tmp"))
    assert all(p.read_text() == "mine" for p in keep)
    assert (tmp_path / "out.txt").read_text() == "made"
