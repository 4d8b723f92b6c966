"""The state log: JSON lines that survive crashes and edits, compaction, and the run lock."""

import io
import json
import os
import queue
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import Pipeline, Product, SequentialExecutor, task
from depio_like.errors import StateLockedError
from depio_like.fingerprint import FileEntry
from depio_like.state import LOG_NAME, Record, State


def rec(key, v):
    """A record told apart from others by ``v``."""
    return Record(key, name=str(v))


def open_state(directory, **kwargs):
    """Open a State whose notices are collected in ``state.notices`` instead of printed."""
    notices = []
    state = State(str(directory), notify=notices.append, **kwargs).open()
    state.notices = notices
    return state


def log_lines(directory):
    return (directory / LOG_NAME).read_text(encoding="utf-8").splitlines()


def append_raw(directory, text):
    with open(directory / LOG_NAME, "a", encoding="utf-8") as f:
        f.write(text)


# --------------------------------------------------------------------------------------
# round trip
# --------------------------------------------------------------------------------------


def test_records_and_files_survive_close_and_reopen(tmp_path):
    d = tmp_path / "state"
    s = open_state(d)
    a = Record(
        "task-a",
        "a",
        "c1",
        None,
        {"/out/x": "d1"},
        duration=0.5,
        stamp="s1",
        arg_reprs={"n": "3"},
        upstream={"k:up": "s0"},
    )
    b = Record("task-b", "b", inputs={"/in/ü.txt": None})
    s.put_record(a)
    s.put_record(b)
    s.put_files({"/out/x": FileEntry(3, 1_000, 42, "d1", 0), "/in/y": FileEntry(0, 7, 9, "e", 0)})
    s.close()

    again = open_state(d)
    assert again.records == {"task-a": a, "task-b": b}
    assert again.files == {
        "/out/x": FileEntry(3, 1_000, 42, "d1", 0),
        "/in/y": FileEntry(0, 7, 9, "e", 0),
    }
    assert isinstance(again.files["/out/x"], FileEntry)
    assert again.warnings == [] and again.notices == []
    again.close()


def test_a_new_state_directory_is_created_with_a_header(tmp_path):
    d = tmp_path / "deep" / "state"
    open_state(d).close()
    assert json.loads(log_lines(d)[0])["depio_like_state"] == 2
    again = open_state(d)
    assert again.records == {} and again.files == {} and again.warnings == []
    again.close()


def test_put_files_takes_the_entries_it_was_given(tmp_path):
    # The runner hands over the hasher's ``fresh`` dict at every save: what was written
    # once must not be written again.
    s = open_state(tmp_path / "state")
    fresh = {"/a": FileEntry(1, 2, 3, "d", 0)}
    s.put_files(fresh)
    assert fresh == {}
    s.put_files(fresh)
    s.close()
    assert sum(1 for ln in log_lines(tmp_path / "state") if ln.startswith('["f"')) == 1


def test_the_last_record_for_a_key_wins(tmp_path):
    d = tmp_path / "state"
    s = open_state(d)
    s.put_record(rec("k", 1))
    s.put_files({"/f": FileEntry(1, 1, 1, "old", 0)})
    s.flush()
    s.put_record(rec("k", 2))
    s.close()

    s = open_state(d)
    assert s.records["k"] == rec("k", 2)
    s.put_record(rec("k", 3))
    s.put_files({"/f": FileEntry(2, 2, 2, "new", 0)})
    s.close()

    s = open_state(d)
    assert s.records == {"k": rec("k", 3)}
    assert s.files == {"/f": FileEntry(2, 2, 2, "new", 0)}
    s.close()


def test_flush_makes_records_visible_to_a_reader_before_close(tmp_path):
    d = tmp_path / "state"
    s = open_state(d)
    s.put_record(rec("k", 1))
    s.flush()
    assert any(json.loads(ln)[:2] == ["r", "k"] for ln in log_lines(d) if ln.startswith("["))
    s.close()


def test_a_file_name_that_is_not_utf8_can_be_recorded(tmp_path):
    d = tmp_path / "state"
    name = os.fsdecode(b"/data/caf\xe9.txt")  # what os.listdir returns for a latin-1 name
    s = open_state(d)
    s.put_files({name: FileEntry(1, 2, 3, "d", 0)})
    s.close()
    again = open_state(d)
    assert again.files == {name: FileEntry(1, 2, 3, "d", 0)}
    again.close()


# --------------------------------------------------------------------------------------
# damaged logs
# --------------------------------------------------------------------------------------


def test_a_torn_last_line_is_ignored_and_does_not_swallow_the_next_record(tmp_path):
    d = tmp_path / "state"
    s = open_state(d)
    s.put_record(rec("before", 1))
    s.close()
    append_raw(d, '["r","torn","t","ab')  # a crash mid-write: no newline

    s = open_state(d)
    assert s.records == {"before": rec("before", 1)}
    assert len(s.warnings) == 1 and "unreadable" in s.warnings[0]
    assert s.notices == s.warnings
    s.put_record(rec("after", 2))
    s.close()

    s = open_state(d)
    assert s.records == {"before": rec("before", 1), "after": rec("after", 2)}
    s.close()


def test_a_torn_last_line_then_an_open_without_writes_keeps_the_next_record(tmp_path):
    d = tmp_path / "state"
    open_state(d).close()
    append_raw(d, '["f","/x",1,2')
    open_state(d).close()  # a run that recorded nothing

    s = open_state(d)
    s.put_record(rec("k", 1))
    s.close()
    s = open_state(d)
    assert s.records == {"k": rec("k", 1)}
    s.close()


def test_garbage_lines_in_the_middle_are_ignored_with_a_warning(tmp_path):
    d = tmp_path / "state"
    s = open_state(d)
    s.put_record(rec("first", 1))
    s.put_files({"/a": FileEntry(1, 2, 3, "da", 0)})
    s.close()
    append_raw(
        d,
        "\n".join(
            [
                "this is not json",
                '{"r":"half", "v":',  # cut short, then a newline from an editor
                '{"no_record_key": 1}',  # JSON, but not a record
                '["f","/short",1]',  # a file entry with fields missing
                "",  # blank lines are harmless
            ]
        )
        + "\n",
    )
    s = open_state(d)
    assert len(s.warnings) == 1
    assert "4 unreadable line(s)" in s.warnings[0]
    s.put_record(rec("last", 2))
    s.close()

    # Closing rewrote the log without the damage: the warning is given once, not forever.
    s = open_state(d)
    assert s.records == {"first": rec("first", 1), "last": rec("last", 2)}
    assert s.files == {"/a": FileEntry(1, 2, 3, "da", 0)}
    assert s.warnings == []
    s.close()


# --------------------------------------------------------------------------------------
# compaction
# --------------------------------------------------------------------------------------


def test_many_rewrites_of_one_key_are_compacted_on_close(tmp_path):
    d = tmp_path / "state"
    s = open_state(d)
    s.put_files({"/a": FileEntry(1, 2, 3, "da", 0), "/b": FileEntry(4, 5, 6, "db", 0)})
    for i in range(1500):
        s.put_record(rec("k", i))
        if i % 100 == 0:
            s.flush()
    s.put_record(rec("other", "x"))
    s.flush()
    assert len(log_lines(d)) > 1500  # nothing is rewritten while the run goes on
    s.close()

    # header + 2 files + 2 records
    assert len(log_lines(d)) == 5
    s = open_state(d)
    assert s.records == {"k": rec("k", 1499), "other": rec("other", "x")}
    assert s.files == {"/a": FileEntry(1, 2, 3, "da", 0), "/b": FileEntry(4, 5, 6, "db", 0)}
    assert s.warnings == []
    s.close()
    assert not [p for p in os.listdir(d) if p.endswith(".tmp")]


def test_a_log_that_is_mostly_live_is_not_rewritten(tmp_path):
    d = tmp_path / "state"
    s = open_state(d)
    for i in range(1500):  # over the 1,000-line floor, and every line live
        s.put_record(rec(f"k{i}", i))
    s.close()
    assert len(log_lines(d)) == 1501


def test_compaction_drops_garbage_lines_and_keeps_content(tmp_path):
    d = tmp_path / "state"
    s = open_state(d)
    s.put_record(rec("keep", 1))
    s.close()
    append_raw(d, "garbage\n" * 1100)

    s = open_state(d)
    assert s.warnings
    s.close()
    s = open_state(d)
    assert s.warnings == []
    assert s.records == {"keep": rec("keep", 1)}
    s.close()


# --------------------------------------------------------------------------------------
# locking, with real processes
# --------------------------------------------------------------------------------------

SAFETY = 60  # seconds; only a safety net, nothing depends on timing

HOLDER = (
    """
import os, sys, time
from depio_like.state import State
state_dir, release = sys.argv[1], sys.argv[2]
s = State(state_dir).open()
print("ready", flush=True)
deadline = time.monotonic() + %d
while not os.path.exists(release):
    if time.monotonic() > deadline:
        sys.exit("holder: never told to release")
    time.sleep(0.01)
from depio_like.state import Record
s.put_record(Record("written-by-holder"))
s.close()
print("released", flush=True)
"""
    % SAFETY
)

WAITER = """
import sys
from depio_like.state import Record, State
s = State(sys.argv[1], wait=True, notify=lambda m: print("NOTICE " + m, flush=True))
s.open()
print("acquired", "written-by-holder" in s.records, flush=True)
s.put_record(Record("written-by-waiter"))
s.close()
"""


class Proc:
    """A Python subprocess whose stdout lines can be awaited one at a time."""

    def __init__(self, source, *args):
        self.p = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(source), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.pid = self.p.pid
        self._lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def line(self):
        try:
            line = self._lines.get(timeout=SAFETY)
        except queue.Empty:
            pytest.fail("subprocess printed nothing within the safety timeout")
        if line is None:
            self.p.wait(SAFETY)
            pytest.fail(f"subprocess ended (rc {self.p.returncode}): {self.p.stderr.read()}")
        return line

    def finish(self):
        rc = self.p.wait(SAFETY)
        err = self.p.stderr.read()
        assert rc == 0, err
        return err

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


@pytest.fixture
def procs():
    started = []
    yield lambda *a: started.append(Proc(*a)) or started[-1]
    for p in started:
        p.kill()


def test_a_second_run_is_refused_or_waits_while_another_process_holds_the_state(tmp_path, procs):
    state_dir, release = tmp_path / "state", tmp_path / "release"
    holder = procs(HOLDER, str(state_dir), str(release))
    assert holder.line() == "ready"

    # (a) not allowed to wait: refused, and told who holds the directory
    with pytest.raises(StateLockedError) as refused:
        State(str(state_dir), wait=False, notify=lambda m: None).open()
    assert f"pid {holder.pid} " in str(refused.value)
    assert str(state_dir) in str(refused.value)

    # (b) allowed to wait: says whom it waits for, and goes on once the holder is done
    waiter = procs(WAITER, str(state_dir))
    notice = waiter.line()
    assert notice.startswith("NOTICE waiting for another run")
    assert f"pid {holder.pid} " in notice
    release.touch()
    assert holder.line() == "released"
    holder.finish()
    assert waiter.line() == "acquired True"  # it read the log only after the holder closed
    waiter.finish()

    # both runs' records are there, and the lock is free again
    s = open_state(state_dir, wait=False)
    assert set(s.records) == {"written-by-holder", "written-by-waiter"}
    assert s.warnings == []
    s.close()


def test_the_lock_is_released_on_close_and_can_be_taken_again(tmp_path, procs):
    state_dir = tmp_path / "state"
    s = open_state(state_dir, wait=False)
    s.close()
    # Another process can now take it without waiting.
    check = procs(
        """
        import sys
        from depio_like.state import State
        State(sys.argv[1], wait=False).open().close()
        print("ok", flush=True)
        """,
        str(state_dir),
    )
    assert check.line() == "ok"
    check.finish()
    open_state(state_dir, wait=False).close()


def test_atomic_write_leaves_the_old_file_and_no_temporary_when_the_write_fails(tmp_path):
    from depio_like.fs import atomic_write, write_atomic

    target = tmp_path / "f.json"
    write_atomic(target, "old")
    with pytest.raises(OSError), atomic_write(target) as f:
        f.write("half")
        raise OSError(28, "No space left on device")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.json"]
    write_atomic(target, b"new", fsync=True)
    assert target.read_bytes() == b"new"


def test_a_burst_of_lines_is_written_in_chunks_and_reads_back_whole(tmp_path, monkeypatch):
    """Many pending lines (every product's new signature) are joined and written a chunk
    at a time; put_files writes as it goes. All come back on reopening."""
    import depio_like.state as state_mod

    monkeypatch.setattr(state_mod, "_WRITE_CHUNK", 3)
    s = open_state(tmp_path / "state")
    fresh = {f"/p/f{k}": FileEntry(k, 2, 3, f"d{k}", 0) for k in range(8)}
    want = dict(fresh)
    s.put_files(fresh)
    assert len(s._pending) < 3  # written as it went
    s.put_record(Record("k", "t", "c", "a", {"/p/out": "dd"}, {}, {}, {}, 0.5, "st"))
    s.close()
    again = open_state(tmp_path / "state")
    assert again.files == want and again.records["k"].products == {"/p/out": "dd"}
    again.close()


def test_a_chunked_write_that_fails_leaves_the_log_as_it_was(tmp_path, monkeypatch):
    """The disk refuses the second chunk: no half of the burst stays in the log (it ends
    where it did), the records written before are intact, and the state says why."""
    import depio_like.state as state_mod

    monkeypatch.setattr(state_mod, "_WRITE_CHUNK", 3)
    s = open_state(tmp_path / "state")
    s.put_files({"/p/before": FileEntry(1, 2, 3, "d", 0)})
    s.flush()
    before = (tmp_path / "state" / LOG_NAME).read_bytes()
    real_write, calls = os.write, []

    def write(fd, data):
        calls.append(len(data))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(state_mod.os, "write", write)
    s._pending.extend(state_mod._encode_line(["f", f"/p/f{k}", k, 2, 3, "d", 0]) for k in range(7))
    s.flush()
    monkeypatch.undo()
    assert len(calls) == 2 and s.write_error is not None
    assert (tmp_path / "state" / LOG_NAME).read_bytes() == before
    s.close()
    again = open_state(tmp_path / "state")
    assert list(again.files) == ["/p/before"]
    again.close()


def test_the_last_run_summary_counts_statuses_in_the_order_they_first_appear():
    from depio_like.state import last_run_summary
    from depio_like.status import Status

    S, F, FL = Status.SKIPPED, Status.FINISHED, Status.FAILED
    statuses = [S, F, S, FL, F, S]
    table = lambda keep: (["#"], [[str(i)] for i in keep])  # noqa: E731
    small = last_run_summary(1, statuses, 40, table, str)
    assert list(small["counts"].items()) == [("SKIPPED", 3), ("FINISHED", 2), ("FAILED", 1)]
    assert small["rows"] == [[str(i)] for i in range(6)]
    # Over max_rows: only the rows that did not end well.
    big = last_run_summary(1, statuses, 2, table, str)
    assert big["rows"] == [["3"]] and big["counts"] == small["counts"]
    assert last_run_summary(0, [S] * 5, 2, table, str)["rows"] == []


@task("write")
def write_n(out: Annotated[Path, Product], n: int):
    Path(out).write_text(str(n))


def test_records_loaded_beside_declared_tasks_are_the_records_written(tmp_path, monkeypatch):
    # Loading may take the declared tasks' strings for the equal ones a record holds; what
    # is loaded must not change: a task whose arguments changed keeps its old digest.
    monkeypatch.chdir(tmp_path)
    sd = str(tmp_path / ".depio_like")

    def declare(ns, order=(0, 1, 2, 3)):
        p = Pipeline(SequentialExecutor(), stream=io.StringIO(), state_dir=sd)
        for j in order:
            p.add_task(write_n(tmp_path / f"o{j}.txt", ns[j]))
        return p

    s = State(sd).open()
    for j, t in enumerate(declare([1, 2, 3, 4]).tasks):
        (out,) = t.products
        r = Record(t.record_key, t.name, "c", t.args_digest, {out: f"d{j}"}, duration=0.5)
        # The product's signature inside the record (the usual line), or not.
        s.put_record(r, {out: FileEntry(1, 2, 3, f"d{j}", 2)} if j % 2 == 0 else None)
    s.close()

    plain = State(sd).read_only()
    # Two tasks' arguments changed; declared in another order than the records were.
    p = declare([1, 5, 7, 4], order=(0, 1, 3, 2))
    shared = State(sd).share(p._producer, p._tasks).read_only()
    assert shared.records == plain.records and len(plain.records) == 4
    assert shared.files == plain.files and len(plain.files) == 2
    for t in p.tasks:
        rec = shared.records[t.record_key]
        assert list(rec.products) == list(t.products)
        assert (rec.args == t.args_digest) is (t.arguments["n"] in (1, 4))
