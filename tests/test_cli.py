"""The command line: pipeline.main() options and the depio-like tool."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = """
    import os
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, ParallelExecutor, Task, Product, Dependency

    def step(out: Annotated[Path, Product], src: Annotated[Path, Dependency] = None):
        with open("calls.log", "a") as f:
            f.write(f"start {Path(out).name}\\n")
        text = Path(src).read_text() if src else "seed"
        Path(out).write_text(text + "+" + Path(out).stem)
        print(f"made {out} in {os.getpid()}")
        with open("calls.log", "a") as f:
            f.write(f"end {Path(out).name}\\n")

    pipeline = Pipeline(ParallelExecutor(max_workers=2))
    print("DRIVER", os.getpid())
    pipeline.add_task(Task("a", step, ["a.txt", "in.txt"]))
    pipeline.add_task(Task("b", step, ["b.txt", "a.txt"]))
    pipeline.add_task(Task("c", step, ["c.txt"]))
    pipeline.add_task(Task("d", step, ["d.txt", "c.txt"]))
    exit(pipeline.{entry}())
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "in.txt").write_text("input")
    for entry in ("main", "run"):
        (tmp_path / f"{entry}.py").write_text(textwrap.dedent(SCRIPT.replace("{entry}", entry)))
    return tmp_path


def py(project, *args, script="main.py", **kw):
    return subprocess.run(
        [sys.executable, str(project / script), *args],
        cwd=project,
        text=True,
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        **kw,
    )


def tool(project, *args):
    exe = Path(sys.executable).with_name("depio-like")
    return subprocess.run(
        [str(exe), *args],
        cwd=project,
        text=True,
        capture_output=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def calls(project):
    log = project / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [ln.split()[1] for ln in lines if ln.startswith("start")]


def snapshot(root):
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in root.rglob("*")}


def test_help_lists_the_options(project):
    r = py(project, "--help")
    assert r.returncode == 0
    for opt in (
        "--dry-run",
        "--explain",
        "--force",
        "--jobs",
        "--target",
        "--graph",
        "--clean",
        "--yes",
        "--executor",
    ):
        assert opt in r.stdout


def test_dry_run_changes_nothing_on_disk(project):
    before = snapshot(project)
    r = py(project, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert snapshot(project) == before  # not even a state directory
    assert r.stdout.count("WOULD-RUN") == 4 + 0 and "nothing was run" in r.stdout
    assert py(project).returncode == 0
    assert len(calls(project)) == 4
    (project / "in.txt").write_text("edited")
    before = snapshot(project)
    r = py(project, "-n", "--explain")
    assert snapshot(project) == before
    assert calls(project) == []
    assert [ln for ln in r.stdout.splitlines() if ln.startswith("WOULD-RUN ")] == [
        "WOULD-RUN [1] 'a': input changed: in.txt",
        "WOULD-RUN [2] 'b': upstream task reruns: [1] 'a'",
    ]


def test_explain_names_exactly_the_tasks_that_rerun(project):
    assert py(project).returncode == 0
    calls(project)
    (project / "in.txt").write_text("edited")
    r = py(project, "--explain")
    assert r.returncode == 0, r.stderr
    explained = [ln for ln in r.stdout.splitlines() if ln.startswith("RUN ")]
    assert explained == [
        "RUN       [1] 'a': input changed: in.txt",
        "RUN       [2] 'b': input changed: a.txt",
    ]
    assert sorted(calls(project)) == ["a.txt", "b.txt"]
    predicted = py(project, "-n", "--explain")
    assert predicted.returncode == 0, predicted.stderr
    assert "0 task(s) would run, 4 up to date" in predicted.stdout
    assert [ln for ln in predicted.stdout.splitlines() if ln.startswith("WOULD-RUN ")] == []


def test_dry_run_explain_predicts_downstream(project):
    assert py(project).returncode == 0
    (project / "c.txt").unlink()
    r = py(project, "-n", "--explain")
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("WOULD-RUN ")]
    assert lines == [
        "WOULD-RUN [3] 'c': product missing: c.txt",
        "WOULD-RUN [4] 'd': input missing: c.txt",
    ]


def test_force_and_target(project):
    assert py(project).returncode == 0
    calls(project)
    r = py(project, "--force", "--target", "b.txt")
    assert r.returncode == 0, r.stderr
    assert sorted(calls(project)) == ["a.txt", "b.txt"]
    assert "'c'" not in r.stdout  # not part of this run
    r = py(project, "--target", "nowhere.txt")
    assert r.returncode != 0 and "no task of this pipeline produces it" in r.stderr
    # A name no file can have: the same message, not a traceback.
    r = py(project, "--target", "n" * 300 + ".txt")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "over the limit of 255" in r.stderr and "no task of this pipeline" in r.stderr


def test_jobs_one_runs_one_task_at_a_time(project):
    r = py(project, "--jobs", "1")
    assert r.returncode == 0
    log = [ln.split()[0] for ln in (project / "calls.log").read_text().splitlines()]
    assert log == ["start", "end"] * 4  # never two started before one ended
    workers = {ln.split()[-1] for ln in r.stdout.splitlines() if ln.startswith("made")}
    assert len(workers) == 1  # one worker process (tasks this short could not overlap anyway)


def test_executor_from_the_command_line(project):
    r = py(project, "--executor", "sequential")
    assert r.returncode == 0, r.stderr
    driver = next(ln.split()[1] for ln in r.stdout.splitlines() if ln.startswith("DRIVER"))
    made = [ln.split()[-1] for ln in r.stdout.splitlines() if ln.startswith("made")]
    assert len(made) == 4 and set(made) == {driver}  # all in the script's own process


def test_graph_mermaid_and_dot(project):
    import networkx as nx
    import pydot

    m = py(project, "--graph", "mermaid")
    assert m.returncode == 0
    lines = m.stdout.split("DRIVER", 1)[1].splitlines()[1:]  # after the script's own line
    assert lines[0] == "flowchart TD"
    assert '    t1["[1] a<br/>WOULD-RUN"]' in lines and "    t1 --> t2" in lines
    d = py(project, "--graph", "dot", "--graph-files")
    graphs = pydot.graph_from_dot_data(d.stdout[d.stdout.index("digraph") :])
    g = nx.nx_pydot.from_pydot(graphs[0])
    assert g.has_edge("t1", "f2") and g.has_edge("f2", "t2")  # a -> a.txt -> b
    assert not (project / ".depio_like").exists()


def test_clean_asks_then_removes(project):
    assert py(project).returncode == 0
    r = py(project, "--clean")
    assert r.returncode == 1 and "add --yes" in r.stderr
    assert (project / "b.txt").exists()
    r = py(project, "--clean", "--yes")
    assert r.returncode == 0, r.stderr
    assert not any((project / f"{n}.txt").exists() for n in "abcd")
    assert (project / "in.txt").exists()  # a source, not a product
    calls(project)
    assert py(project).returncode == 0
    assert sorted(calls(project)) == ["a.txt", "b.txt", "c.txt", "d.txt"]


def test_depio_like_run_and_status(project):
    r = tool(project, "status")
    assert r.returncode == 1 and "no run recorded" in r.stderr
    r = tool(project, "run", "run.py", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("WOULD-RUN") == 4
    assert not (project / ".depio_like").exists()
    r = tool(project, "run", "run.py", "--target", "a.txt")
    assert r.returncode == 0, r.stderr
    assert sorted(calls(project)) == ["a.txt"]
    r = tool(project, "status")
    assert r.returncode == 0
    assert "exit code 0" in r.stdout and "FINISHED" in r.stdout


def test_a_graph_error_is_one_clean_message(project):
    (project / "main.py").write_text(
        (project / "main.py").read_text().replace('"a.txt", "in.txt"', '"a.txt", "b.txt"')
    )  # a reads b, b reads a: a cycle
    r = py(project)
    assert r.returncode == 2
    assert r.stderr.startswith("error: dependency cycle between tasks")
    assert "Traceback" not in r.stderr
    r = tool(project, "run", "main.py")
    assert r.returncode == 2 and "Traceback" not in r.stderr
