"""Two real runs on one state directory take turns (or the second refuses at once), and a
damaged state log never stops a run: it warns, reruns what it cannot trust, deletes nothing.

Handshakes go through files and the processes' output; timeouts are only safety nets.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SAFETY = 120  # seconds; a safety net for hung processes, never a pass/fail criterion

HOLD_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, SequentialExecutor, Task, Product

    def log(name):
        fd = os.open("calls.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, f"{name} {os.getpid()}\\n".encode())
        os.close(fd)

    def hold(out: Annotated[Path, Product]):
        # Holds the run (and its lock on the state directory) until the test says so.
        log("hold")
        Path("holding").touch()
        deadline = time.monotonic() + %d
        while not Path("release").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("never released")
            time.sleep(0.01)
        Path(out).write_text("held")

    def other(out: Annotated[Path, Product]):
        log("other")
        Path(out).write_text("other")

    p = Pipeline(SequentialExecutor(), wait_for_lock="nowait" not in sys.argv)
    p.add_task(Task("hold", hold, ["held.txt"]))
    p.add_task(Task("other", other, ["other.txt"]))
    exit(p.run())
"""
    % SAFETY
)


class Script:
    """A pipeline script running in its own process, output collected in files."""

    def __init__(self, directory: Path, tag: str, *args: str):
        self.out_path = directory / f"{tag}.out"
        self.err_path = directory / f"{tag}.err"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("CI", None)
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "pipeline.py", *args],
                cwd=directory,
                env=env,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        self.pid = self.proc.pid

    @property
    def output(self) -> str:
        return self.out_path.read_text() + self.err_path.read_text()

    def wait_for(self, what, *, may_end: bool = False) -> None:
        """Until ``what()`` is true (or, with ``may_end``, the process ended)."""
        deadline = time.monotonic() + SAFETY
        while not what():
            if self.proc.poll() is not None:
                if may_end:
                    return
                pytest.fail(f"ended early ({self.proc.returncode}):\n{self.output}")
            if time.monotonic() > deadline:
                pytest.fail(f"nothing happened within the safety timeout:\n{self.output}")
            time.sleep(0.01)

    def finish(self) -> int:
        return self.proc.wait(SAFETY)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def scripts(tmp_path):
    started: list[Script] = []

    def start(tag, *args):
        started.append(Script(tmp_path, tag, *args))
        return started[-1]

    (tmp_path / "pipeline.py").write_text(HOLD_SCRIPT)
    yield start
    for s in started:
        s.kill()


def calls(directory: Path) -> list[tuple[str, int]]:
    log = directory / "calls.log"
    return (
        [(n, int(pid)) for n, pid in (ln.split() for ln in log.read_text().splitlines())]
        if log.exists()
        else []
    )


def test_a_second_run_waits_for_the_first_naming_its_pid_then_completes(tmp_path, scripts):
    first = scripts("first")
    first.wait_for(lambda: (tmp_path / "holding").exists())

    second = scripts("second")
    second.wait_for(
        lambda: "waiting for another run" in second.err_path.read_text() or len(calls(tmp_path)) > 1
    )
    notice = second.err_path.read_text()
    state_dir = os.path.realpath(tmp_path / ".depio_like")
    assert f"waiting for another run to release {state_dir} (pid {first.pid} on " in notice
    assert calls(tmp_path) == [("hold", first.pid)]  # the second one ran nothing yet

    (tmp_path / "release").touch()
    assert first.finish() == 0, first.output
    assert second.finish() == 0, second.output
    # The second run read the state only once the first was done: all up to date.
    assert calls(tmp_path) == [("hold", first.pid), ("other", first.pid)]
    assert "All 2 tasks done (0 ran, 2 up to date)." in second.output, second.output


def test_a_second_run_told_not_to_wait_fails_at_once(tmp_path, scripts):
    first = scripts("first")
    first.wait_for(lambda: (tmp_path / "holding").exists())

    # The first run holds the lock until "release" exists, which is only created after
    # the second has ended: if the second waited, it would never end.
    second = scripts("second", "nowait")
    second.wait_for(lambda: "waiting for another run" in second.err_path.read_text(), may_end=True)
    assert "waiting for another run" not in second.err_path.read_text()
    rc = second.finish()
    err = second.err_path.read_text()
    assert rc != 0, second.output
    state_dir = os.path.realpath(tmp_path / ".depio_like")
    # An uncaught StateLockedError (a PipelineError) is one message and exit 2.
    assert rc == 2 and "Traceback" not in err, err
    m = re.search(r"^error: (.*)$", err, re.M)
    assert m, err
    assert (
        f"the state directory {state_dir} is in use by another run (pid {first.pid} on "
        in m.group(1)
    )
    assert first.proc.poll() is None  # still holding
    assert calls(tmp_path) == [("hold", first.pid)]  # the refused run ran nothing

    (tmp_path / "release").touch()
    assert first.finish() == 0, first.output
    assert calls(tmp_path) == [("hold", first.pid), ("other", first.pid)]


# --------------------------------------------------------------------------------------
# A damaged state log.

CHAIN_SCRIPT = textwrap.dedent("""
    import os
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, SequentialExecutor, Task, Product, Dependency

    def step(out: Annotated[Path, Product], src: Annotated[Path, Dependency] = None):
        fd = os.open("calls.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, (Path(out).stem + "\\n").encode())
        os.close(fd)
        Path(out).write_text((Path(src).read_text() if src else "") + Path(out).stem)

    p = Pipeline(SequentialExecutor())
    for name, src in [("a", "raw.txt"), ("b", "a.txt"), ("c", "b.txt"), ("d", None),
                      ("e", "a.txt"), ("f", "d.txt")]:
        p.add_task(Task(name, step, [f"{name}.txt", src]))
    exit(p.run())
""")

EXPECTED = {"a": "rawa", "b": "rawab", "c": "rawabc", "d": "d", "e": "rawae", "f": "df"}
ALL = set(EXPECTED)


def run(directory: Path) -> tuple[int, str, str, list[str]]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("CI", None)
    log = directory / "calls.log"
    log.unlink(missing_ok=True)
    r = subprocess.run(
        [sys.executable, "pipeline.py"],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=SAFETY,
        stdin=subprocess.DEVNULL,
    )
    ran = log.read_text().split() if log.exists() else []
    return r.returncode, r.stdout, r.stderr, ran


def user_files(directory: Path) -> set[str]:
    return {
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if ".depio_like" not in p.parts and p.name != "calls.log"
    }


def records_left(log: bytes) -> set[str]:
    """Names of the tasks with a readable "r" line not followed by an "x" line."""
    last: dict[str, str | None] = {}
    for line in log.split(b"\n")[:-1]:
        try:
            item = json.loads(line)
        except ValueError:
            continue
        # Format 2: ["r", key, name, ..., products, ...] ("" is "p:" + the first
        # product) and ["x", key].
        if isinstance(item, list) and item[:1] == ["r"] and isinstance(item[1], str):
            key = item[1] or "p:" + min(p[0] for p in item[7])
            last[key] = item[2]
        elif isinstance(item, list) and item[:1] == ["x"] and isinstance(item[1], str):
            last[item[1]] = None
    return {n for n in last.values() if n}


def cut_mid_line(log: bytes) -> bytes:
    """Cut the log in the middle of the record of task "c" (as a crash or a full disk
    would): that record and everything after it is gone."""
    start = re.search(rb'\["r","[^"]*","c",', log).start() + 10
    return log[:start]


def garbage_overwrite(log: bytes) -> bytes:
    return (
        b"\x89PNG\r\n\x1a\n\x00\x00 not a state log \xff\xfe\n" * 20
        + b'[]\nnull\n42\n{"r": [1]}\n["f", 1]\n'
        + b"\x00" * 100
    )


def garbage_line_in_the_middle(log: bytes) -> bytes:
    lines = log.split(b"\n")
    i = next(k for k, ln in enumerate(lines) if re.match(rb'\["r","[^"]*","b",', ln))
    lines[i] = b"}}}{{{ \xff scribbled over"
    return b"\n".join(lines)


@pytest.mark.parametrize(
    "damage",
    [cut_mid_line, garbage_overwrite, garbage_line_in_the_middle],
    ids=lambda f: f.__name__,
)
def test_a_damaged_state_log_warns_reruns_what_it_cannot_trust_and_deletes_nothing(
    tmp_path, damage
):
    (tmp_path / "pipeline.py").write_text(CHAIN_SCRIPT)
    (tmp_path / "raw.txt").write_text("raw")
    (tmp_path / "notes.txt").write_text("the user's own file")
    rc, out, err, ran = run(tmp_path)
    assert rc == 0 and sorted(ran) == sorted(ALL), out + err

    log_path = tmp_path / ".depio_like" / "state.jsonl"
    damaged = damage(log_path.read_bytes())
    log_path.write_bytes(damaged)
    trusted = records_left(damaged)
    assert trusted < ALL  # the damage did cost records
    before = user_files(tmp_path)

    rc, out, err, ran = run(tmp_path)
    assert rc == 0, out + err
    assert re.search(
        r"^warning: \d+ unreadable line\(s\) in "
        + re.escape(str(os.path.realpath(log_path)))
        + r" were ignored .*will rerun\.$",
        err,
        re.M,
    ), err
    assert "Traceback" not in err
    # Tasks whose record survived whole are trusted; the others rerun.
    assert sorted(ran) == sorted(ALL - trusted), out
    assert user_files(tmp_path) == before  # nothing of the user's was deleted
    for name, text in EXPECTED.items():
        assert (tmp_path / f"{name}.txt").read_text() == text
    assert (tmp_path / "notes.txt").read_text() == "the user's own file"

    # The damage is behind us: no warning, nothing to do.
    rc, out, err, ran = run(tmp_path)
    assert rc == 0 and ran == [] and "warning" not in err, out + err


class KnownBug(AssertionError):
    """The signature of a bug this test once caught (now fixed): fails the test loudly."""


def test_a_well_formed_record_with_wrong_field_types_is_not_trusted(tmp_path):
    (tmp_path / "pipeline.py").write_text(CHAIN_SCRIPT)
    (tmp_path / "raw.txt").write_text("raw")
    rc, out, err, ran = run(tmp_path)
    assert rc == 0, out + err
    log_path = tmp_path / ".depio_like" / "state.jsonl"
    lines = log_path.read_text().splitlines()
    for k, ln in enumerate(lines):
        item = json.loads(ln)
        if isinstance(item, list) and item[:1] == ["r"] and item[2] == "b":
            item += [{}] * (11 - len(item))
            item[9], item[7] = 7, ["not", "a", "mapping"]  # inputs, products
            lines[k] = json.dumps(item)
    log_path.write_text("\n".join(lines) + "\n")

    rc, out, err, ran = run(tmp_path)
    if "AttributeError" in err:
        raise KnownBug(err[-800:])
    assert rc == 0, out + err
    assert "b" in ran and "a" not in ran, out
    for name, text in EXPECTED.items():
        assert (tmp_path / f"{name}.txt").read_text() == text
