"""A state log written by an earlier depio_like (main at f854a64, before record keys of
product tasks became their paths in memory) is read as up to date: no task reruns after
an upgrade. tests/data/state_before_keys holds the pipeline and the log it wrote (keys
"" and "p:..." for products, "k:..." for product-less tasks, an upstream stamp by a
product key, a value task, two products). A task's identity holds its paths as absolute
ones, so the log is only valid where it was written: in WHERE. Its code digests are
CPython 3.11 bytecode's."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data" / "state_before_keys"
WHERE = Path("/tmp/depio-like-state-upgrade")
PRODUCTS = {"a.txt": "1", "b.txt": "2", "ab.txt": "12", "v.txt": "6", "m1.txt": "x", "m2.txt": "y"}


@pytest.mark.skipif(
    sys.version_info[:2] != (3, 11), reason="the log's code digests are of CPython 3.11 bytecode"
)
def test_a_state_written_before_the_key_change_is_up_to_date() -> None:
    shutil.rmtree(WHERE, ignore_errors=True)
    WHERE.mkdir(parents=True)
    try:
        _run_in(WHERE)
    finally:
        shutil.rmtree(WHERE, ignore_errors=True)


def _run_in(tmp_path: Path) -> None:
    shutil.copy(DATA / "pipe.py", tmp_path / "pipe.py")
    state = tmp_path / ".depio_like"
    state.mkdir(mode=0o700)
    shutil.copy(DATA / "state.jsonl", state / "state.jsonl")
    for name, text in PRODUCTS.items():
        (tmp_path / name).write_text(text)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run(
        [sys.executable, "pipe.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "All 7 tasks done (0 ran, 7 up to date)." in out.stdout, out.stdout
    assert "side effect" not in out.stdout + out.stderr
