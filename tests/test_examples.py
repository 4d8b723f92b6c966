"""Every script in examples/ runs as a user would run it, and says what it promises."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name, cwd):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, str(cwd / name)], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=120, stdin=subprocess.DEVNULL)


def table_rows(out):
    table = out[out.index("Tasks:"):].splitlines()
    return [ln.split() for ln in table[3:] if ln[:1].isdigit()]


@pytest.fixture
def workdir(tmp_path):
    for script in EXAMPLES.glob("*.py"):
        shutil.copy(script, tmp_path)
    return tmp_path


def test_every_example_is_covered():
    assert {p.name for p in EXAMPLES.glob("*.py")} == {"decorator.py", "functional.py", "merge.py"}


@pytest.mark.parametrize("name", ["decorator.py", "functional.py"])
def test_path_examples_run_then_skip(workdir, name):
    first = run_example(name, workdir)
    assert first.returncode == 0, first.stdout + first.stderr
    assert [r[2] for r in table_rows(first.stdout)] == ["FINISHED", "FINISHED"]
    assert (workdir / "build" / "final1.txt").exists()
    second = run_example(name, workdir)
    assert second.returncode == 0
    assert [r[2] for r in table_rows(second.stdout)] == ["SKIPPED", "SKIPPED"]
    assert "A function that is reading" not in second.stdout


def test_merge_example_has_three_tasks(workdir):
    r = run_example("merge.py", workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    rows = table_rows(r.stdout)
    assert [(row[0], row[1], row[2]) for row in rows] == [
        ("1", "functionaldemo1", "FINISHED"),
        ("2", "functionaldemo2", "FINISHED"),
        ("3", "functionaldemo3", "FINISHED"),
    ]
    assert rows[1][3] == "1" and rows[2][3] == "2"
    assert r.stdout.count("doing something for 1 seconds") == 1
