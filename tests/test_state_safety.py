"""A state directory someone else could write to is refused before anything in it is read
(what is in it, pickled values and Slurm results, is loaded as code); names and paths
shown on the terminal cannot drive it (control characters are shown escaped)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import Product, SequentialExecutor, Task
from depio_like.errors import StateError

from conftest import new_pipeline

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX owners and modes")


def make(out: Annotated[Path, Product]):
    Path(out).write_text("made")


def pipeline(**kw):
    p = new_pipeline(SequentialExecutor(), **kw)
    p.add_task(Task("make", make, ["made.txt"]))
    return p


@pytest.mark.parametrize("where", ["top", "values", "slurm-sub"])
@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_a_state_dir_others_can_write_is_refused(project, where, mode):
    state = project / ".depio_like"
    state.mkdir(mode=0o700)
    target = {"top": state, "values": state / "values", "slurm-sub": state / "slurm" / "abc"}[where]
    target.mkdir(parents=True, exist_ok=True)
    if where != "top":
        state.chmod(0o755)  # others can reach what is inside
    target.chmod(mode)
    for dry in (False, True):
        with pytest.raises(StateError, match=r"can be written by other users.*chmod -R go-w"):
            pipeline().run(dry_run=dry)
    assert not Path("made.txt").exists()
    subprocess.run(["chmod", "-R", "go-w", str(state)], check=True)  # what the message says
    assert pipeline().run() == 0


def test_inner_directories_are_not_checked_when_nobody_else_can_reach_them(project):
    state = project / ".depio_like"
    (state / "values").mkdir(parents=True)
    state.chmod(0o700)
    (state / "values").chmod(0o777)  # made under umask 0, say: unreachable for others
    assert pipeline().run() == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the directory away")
def test_a_state_dir_owned_by_another_user_is_refused(project):
    state = project / ".depio_like"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)  # nobody
    for dry in (False, True):
        with pytest.raises(StateError, match=r"is not yours.*chown -R root"):
            pipeline().run(dry_run=dry)
    assert not Path("made.txt").exists()
    os.chown(state, 0, 0)
    assert pipeline().run() == 0


EVIL_NAME = "evil\x1b[2J\x1b[H\rname\nline2\u202e"
EVIL_DIR = "dir\x1b]0;pwned\x07\x1b[31m"


def test_control_characters_in_names_and_paths_are_shown_escaped(project):
    def fails(out: Annotated[Path, Product]):
        raise ValueError("bad")

    (project / EVIL_DIR).mkdir()
    stream = io.StringIO()
    p = new_pipeline(SequentialExecutor(), stream=stream)
    p.add_task(Task(EVIL_NAME, make, [os.path.join(EVIL_DIR, "a\rb.txt")]))
    p.add_task(Task("fails", lambda out: fails(out), [os.path.join(EVIL_DIR, "c\x1bd.txt")]))
    with p.variant("v\x1b[5m"):
        p.add_task(Task("other", make, ["plain.txt"]))
    assert p.run() == 1
    out = stream.getvalue()
    for bad in ("\x1b", "\r", "\x07", "\u202e"):
        assert bad not in out, (bad, out)
    assert "evil\\x1b[2J\\x1b[H\\rname\\nline2\\u202e" in out
    assert "dir\\x1b]0;pwned\\x07\\x1b[31m/a\\rb.txt" in out

    # `depio-like status` shows the recorded table the same way, even one edited by hand.
    last = project / ".depio_like" / "last_run.json"
    data = json.loads(last.read_text())
    data["rows"][0][1] = "hand\x1b[2Jedited"
    last.write_text(json.dumps(data))
    exe = os.path.join(os.path.dirname(sys.executable), "depio-like")
    r = subprocess.run([exe, "status"], cwd=project, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "\x1b" not in r.stdout and "\r" not in r.stdout
    assert "hand\\x1b[2Jedited" in r.stdout


def test_control_characters_on_a_terminal_table(project):
    """On a TTY the table is redrawn with our own cursor codes; a name adds none."""
    stream = io.StringIO()
    from depio_like.display import Display

    d = Display(stream, tty=True, interval=0)
    t = Task(EVIL_NAME, make, ["x.txt"])
    t.id = 1
    from depio_like.status import Status

    d.start([t], [Status.FINISHED], [[]])
    d.tick()
    d.finish()
    out = stream.getvalue()
    for bad in ("\x1b[2J", "\x1b[H", "\r", "\u202e"):
        assert bad not in out, (bad, out)
    assert "evil\\x1b[2J" in out
