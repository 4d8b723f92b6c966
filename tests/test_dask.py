"""DaskExecutor against real Dask clusters: an embedded LocalCluster (the default form), a
LocalCluster shared by the tests of this module (``cluster=``), a scheduler and two workers
started with the ``dask`` command-line tools (``address=``), and dask_jobqueue's
SLURMCluster on the local Slurm (marked ``slurm``).

The dask extra is installed if it is missing (once per session): outside CI a registry that
cannot be reached skips these tests, with the reason; in CI it fails them.
"""

import functools
import importlib
import importlib.util
import io
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Annotated

import pytest

from depio_like import Dependency, Pipeline, Product, Task, current_progress

from conftest import new_pipeline

EXTRAS = {"distributed": "distributed>=2024.1", "dask_jobqueue": "dask-jobqueue>=0.8.5"}
ROOT = Path(__file__).resolve().parent.parent


def _missing():
    return [req for mod, req in EXTRAS.items() if importlib.util.find_spec(mod) is None]


@functools.cache
def ensure_extra():
    """None once distributed and dask-jobqueue import (pip-installing them if missing)."""
    missing = _missing()
    if not missing:
        return None
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", *missing],
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`pip install {' '.join(missing)}` could not run: {e}"
    importlib.invalidate_caches()
    if proc.returncode == 0 and not _missing():
        return None
    return (
        f"`pip install {' '.join(missing)}` failed (exit {proc.returncode}): "
        f"{(proc.stderr or proc.stdout).strip()[-1500:]}"
    )


@pytest.fixture(scope="session")
def dask_extra():
    reason = ensure_extra()
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on"):
        pytest.fail(f"the dask extra must be installable in CI: {reason}", pytrace=False)
    pytest.skip(f"the dask extra is not installed and pip cannot install it: {reason}")


pytestmark = pytest.mark.usefixtures("dask_extra")


def make_cluster(allowed_failures: int = 0, **kwargs):
    """A LocalCluster (two single-threaded worker processes unless told otherwise); with
    allowed_failures=0 a worker that dies fails its task at once, as in the embedded one."""
    import dask
    from distributed import LocalCluster

    shape = {"n_workers": 2, "threads_per_worker": 1, "processes": True, **kwargs}
    with dask.config.set({"distributed.scheduler.allowed-failures": allowed_failures}):
        return LocalCluster(dashboard_address=":0", silence_logs=logging.ERROR, **shape)


@pytest.fixture(scope="module")
def local_cluster(dask_extra):
    """Shared by the tests that need no fresh cluster (starting one costs seconds)."""
    cluster = make_cluster()
    yield cluster
    cluster.close()


def _die_with_parent():
    """In the child: SIGTERM when the test process dies, even if it is killed (a timeout)."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _dask_command():
    exe = Path(sys.executable).parent / "dask"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "dask"]


@pytest.fixture(scope="module")
def cli_cluster(dask_extra, tmp_path_factory):
    """`dask scheduler` and two `dask worker` processes, each started in a directory of its
    own: "one" has one thread and declares GPU=1, "two" has two threads."""
    from distributed import Client

    base = tmp_path_factory.mktemp("cli-cluster")
    sched_file = base / "scheduler.json"
    procs = []

    def start(args, name):
        home = base / name
        home.mkdir()
        log = open(base / f"{name}.log", "w")  # noqa: SIM115 - the process writes it
        procs.append(
            subprocess.Popen(
                [*_dask_command(), *args],
                cwd=home,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        )
        log.close()
        return home

    client = None
    try:
        start(
            [
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(sched_file),
            ],
            "scheduler",
        )
        deadline = time.monotonic() + 120
        while not sched_file.exists() or not sched_file.read_text().strip():
            assert procs[0].poll() is None, (base / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "dask scheduler did not start"
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        homes = {}
        for name, extra in (
            ("one", ["--nthreads", "1", "--resources", "GPU=1"]),
            ("two", ["--nthreads", "2"]),
        ):
            homes[name] = start(
                [
                    "worker",
                    address,
                    "--name",
                    name,
                    "--no-dashboard",
                    "--local-directory",
                    str(base / f"{name}-scratch"),
                    *extra,
                ],
                name,
            )
        client = Client(address, timeout=60)
        client.wait_for_workers(2, timeout=120)
        by_name = {w["name"]: a for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
        pids = client.run(os.getpid)
        yield SimpleNamespace(
            address=address,
            client=client,
            workers=by_name,
            pids={n: pids[a] for n, a in by_name.items()},
            homes=homes,
        )
    finally:
        if client is not None:
            client.close()
        for p in reversed(procs):
            with _suppress():
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], ProcessLookupError)


def dask_executor(**kwargs):
    from depio_like import DaskExecutor

    return DaskExecutor(**kwargs)


def rows(out):
    """The last table printed in ``out``, as dicts by header."""
    lines = out[out.rindex("Tasks:") :].splitlines()[1:]
    header = re.split(r"\s{2,}", lines[0].strip())
    starts = [lines[0].index(h) for h in header]  # cells may be empty: cut by column
    got = []
    for ln in lines[2:]:
        if not re.match(r"\d+ {2,}", ln):  # (the summary line after it starts with a count)
            break
        got.append({h: ln[a:b].strip() for h, a, b in zip(header, starts, starts[1:] + [None])})
    return got


def session_processes(sid):
    """Pids of live processes in session ``sid`` (zombies aside)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            found.append(int(entry))
    return found


def alive(pid):
    """True if ``pid`` runs (a zombie nobody reaped is not running)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2 :].split()[0] != "Z"


def wait_until(cond, timeout=60, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def run_py(directory, source, *args, timeout=300):
    """Run ``source`` as directory/pipeline.py in a session of its own (its id is the
    driver's pid: what is left in it after the driver exits, the driver left behind)."""
    script = Path(directory) / "pipeline.py"
    script.write_text(textwrap.dedent(source))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("CI", None)
    proc = subprocess.Popen(
        [sys.executable, str(script), *args],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return SimpleNamespace(pid=proc.pid, returncode=proc.returncode, stdout=out, stderr=err)


# ------------------------------------------------------------------ acceptance: quick start
QUICKSTART = """
    import sys, time
    from pathlib import Path
    from typing import Annotated

    from depio_like import Dependency, DaskExecutor, ParallelExecutor, Pipeline, Product, task

    executor = DaskExecutor() if sys.argv[1:] == ["dask"] else ParallelExecutor()
    pipeline = Pipeline(executor=executor)
    BLD = Path("build"); BLD.mkdir(exist_ok=True)
    (BLD / "input.txt").touch()

    @task("datapipeline")
    def slowfunction(output: Annotated[Path, Product],
                     input: Annotated[Path, Dependency] = None, sec: int = 0):
        time.sleep(sec)
        output.write_text("hello")

    pipeline.add_task(slowfunction(BLD / "output1.txt", input=BLD / "input.txt", sec=2))
    pipeline.add_task(slowfunction(BLD / "final1.txt", BLD / "output1.txt", sec=1))
    code = pipeline.run()
    print("STATS", getattr(executor, "stats", {}))
    exit(code)
"""


def stats(out):
    return eval(out[out.rindex("STATS ") + 6 :].splitlines()[0])  # a dict we printed


def test_readme_quickstart_on_dask_matches_local_and_second_run_submits_nothing(tmp_path):
    local, remote = tmp_path / "local", tmp_path / "dask"
    local.mkdir(), remote.mkdir()
    assert run_py(local, QUICKSTART).returncode == 0
    first = run_py(remote, QUICKSTART, "dask")
    assert first.returncode == 0, first.stdout + first.stderr
    for name in ("output1.txt", "final1.txt"):
        assert (remote / "build" / name).read_bytes() == (local / "build" / name).read_bytes()
    assert stats(first.stdout)["submitted"] == 2
    table = rows(first.stdout)
    assert [r["Status"] for r in table] == ["FINISHED", "FINISHED"]
    assert all(r["Worker"].startswith("127.0.0.1:") for r in table), first.stdout
    assert re.search(
        r"Dask: embedded LocalCluster at tcp://\S+, 2 worker\(s\), 2 thread\(s\); "
        r"dashboard: http://\S+/status",
        first.stderr,
    ), first.stderr
    assert "Traceback" not in first.stdout + first.stderr
    # The driver is gone: so is every process it started (the cluster's workers).
    wait_until(lambda: not session_processes(first.pid), 30, "the workers to exit")

    second = run_py(remote, QUICKSTART, "dask")
    assert second.returncode == 0, second.stdout + second.stderr
    assert [r["Status"] for r in rows(second.stdout)] == ["SKIPPED", "SKIPPED"]
    assert stats(second.stdout)["submitted"] == 0
    assert "Dask:" not in second.stderr  # nothing to run: no cluster started either


# ------------------------------------------------------- acceptance: values stay in the cluster
class Traced:
    """A value that notes the pid of every process that unpickles it."""

    def __init__(self, payload, log):
        self.payload, self.log = payload, log

    def __reduce__(self):
        return _rebuilt, (self.payload, self.log)


def _rebuilt(payload, log):
    with open(log, "a") as f:
        f.write(f"{os.getpid()}\n")
    return Traced(payload, log)


def make_value(log: str, calls: str):
    with open(calls, "a") as f:
        f.write(f"produce {os.getpid()}\n")
    return Traced(b"v" * 200_000, log)


def consume(out: Annotated[Path, Product], value):
    Path(out).write_bytes(value.payload[:3] + f" {os.getpid()}".encode())


def afterwards(
    out: Annotated[Path, Product], a: Annotated[Path, Dependency], b: Annotated[Path, Dependency]
):
    Path(out).write_text("done")


def test_value_moves_worker_to_worker_never_through_the_driver_or_a_file(project, cli_cluster):
    cli = cli_cluster
    log, calls_file = project / "unpickled.log", project / "calls.txt"
    log.touch()
    place = {"produce": "one", "consume_a": "two", "consume_b": "two"}
    ex = dask_executor(
        address=cli.address,
        submit_options=lambda t: {"workers": [cli.workers[place.get(t.name, "one")]]},
    )
    left_over = []

    def after_consumers(result):
        if result.name != "after":
            return

        # Both consumers have ended: the driver dropped the value's future, and the
        # scheduler forgets it (the executor's client is still connected).
        def value_keys():
            return cli.client.run_on_scheduler(
                lambda dask_scheduler: [str(k) for k in dask_scheduler.tasks if "-value-" in str(k)]
            )

        deadline = time.monotonic() + 60
        while value_keys() and time.monotonic() < deadline:
            time.sleep(0.1)
        left_over.extend(value_keys())

    p = new_pipeline(ex, on_task_finished=after_consumers)
    produced = p.add_task(Task("produce", make_value, [str(log), str(calls_file)]))
    p.add_task(Task("consume_a", consume, ["a.txt", produced]))
    p.add_task(Task("consume_b", consume, ["b.txt", produced]))
    p.add_task(Task("after", afterwards, ["after.txt", "a.txt", "b.txt"]))
    code = p.run()
    out = p.stream.getvalue()
    assert code == 0, out
    table = {r["Name"]: r["Worker"] for r in rows(out)}
    assert table["produce"] == cli.workers["one"].split("://")[1]
    assert table["consume_a"] == table["consume_b"] == cli.workers["two"].split("://")[1]
    # The consumers got the value, on worker two; the producer ran once.
    for name in ("a.txt", "b.txt"):
        assert (project / name).read_bytes() == f"vvv {cli.pids['two']}".encode()
    assert calls_file.read_text() == f"produce {cli.pids['one']}\n"
    # Unpickled only where it was needed (worker two), never in the driver (this process).
    unpickled = {int(x) for x in log.read_text().split()}
    assert unpickled == {cli.pids["two"]}, (unpickled, cli.pids, os.getpid())
    # Dask moved it from worker one to worker two directly.
    transfers = cli.client.run(
        lambda dask_worker: [
            (str(k), t["who"]) for t in dask_worker.transfer_incoming_log for k in t["keys"]
        ],
        workers=[cli.workers["two"]],
    )[cli.workers["two"]]
    assert any(
        k.startswith("produce-value-") and who == cli.workers["one"] for k, who in transfers
    ), transfers
    # Nothing of it under the state directory, and released once its consumers ended.
    state = sorted(
        str(f.relative_to(project / ".depio_like")) for f in (project / ".depio_like").rglob("*")
    )
    assert not [f for f in state if "value" in f], state
    assert left_over == []


# ------------------------------------------------------------ where tasks run, and the table
def where_am_i(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
    Path(out).write_text(f"{os.getcwd()}|{Path(src).read_text()}")


def test_tasks_run_in_the_driver_directory_on_workers_started_elsewhere(project, cli_cluster):
    cli = cli_cluster
    Path("input.txt").write_text("in")
    Path("build").mkdir()
    p = new_pipeline(dask_executor(address=cli.address))
    for k in range(4):  # (on both workers, two of them at once on "two")
        p.add_task(Task(f"where{k}", where_am_i, [f"build/out{k}.txt", "input.txt"]))
    assert p.run() == 0, p.stream.getvalue()
    for k in range(4):
        assert Path(f"build/out{k}.txt").read_text() == f"{project}|in"
    # ... and each worker is back in the directory it was started in.
    cwds = cli.client.run(os.getcwd)
    assert {cwds[a] for a in cli.workers.values()} == {str(h) for h in cli.homes.values()}


def needs_gpu(out: Annotated[Path, Product]):
    Path(out).write_text("gpu")


def test_resources_go_to_workers_that_declare_them_and_the_table_says_where(
    project, cli_cluster, capsys
):
    cli = cli_cluster
    p = new_pipeline(dask_executor(address=cli.address))
    for k in range(3):
        p.add_task(Task(f"gpu{k}", needs_gpu, [f"g{k}.txt"], resources={"gpus": 1}))
    p.add_task(Task("two_gpus", needs_gpu, ["g2x.txt"], resources={"gpus": 2}))
    p.add_task(Task("big", needs_gpu, ["big.txt"], resources={"memory": "1G"}))
    assert p.run() == 1
    out = p.stream.getvalue()
    table = {r["Name"]: r for r in rows(out)}
    one = cli.workers["one"].split("://")[1]
    assert [table[f"gpu{k}"]["Worker"] for k in range(3)] == [one] * 3  # only "one" has a GPU
    assert table["two_gpus"]["Status"] == "FAILED"
    assert "asks for Dask resource GPU=2, more than any worker declares (at most 1)" in out
    assert table["big"]["Status"] == "FINISHED"
    err = capsys.readouterr().err
    notes = [ln for ln in err.splitlines() if ln.startswith("note:")]
    assert len(notes) == 1 and "MEMORY (1 task(s), e.g. [5] 'big')" in notes[0], err


# ------------------------------------------------------------------------- output, progress
def noisy(out: Annotated[Path, Product]):
    print("from python", flush=True)
    os.write(1, b"from fd 1\n")
    subprocess.run(["echo", "from a subprocess"], check=True)
    os.write(2, b"from fd 2\n")
    Path(out).write_text("x")


def test_output_is_captured_per_task_at_the_fd_level(project, local_cluster):
    p = new_pipeline(dask_executor(cluster=local_cluster))
    p.add_task(Task("noisy", noisy, ["n.txt"]))
    assert p.run() == 0
    out = p.stream.getvalue()
    block = out[out.index("--- output of [1] 'noisy' ---") : out.index("Tasks:")]
    for line in ("from python", "from fd 1", "from a subprocess", "from fd 2"):
        assert block.count(line) == 1, out
    logs = list((project / ".depio_like" / "logs").glob("noisy-*.out"))
    assert len(logs) == 1 and "from a subprocess" in logs[0].read_text()


def chatty(out: Annotated[Path, Product], me: str, other: str):
    print(f"{me} says 1", flush=True)
    Path(f"{me}.ready").touch()
    deadline = time.monotonic() + 60
    while not Path(f"{other}.ready").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    print(f"{me} says 2")
    sys.stderr.write(f"{me} complains\n")
    Path(out).write_text("together" if Path(f"{other}.ready").exists() else "alone")


def test_output_of_tasks_sharing_a_worker_in_threads_stays_apart(project, cli_cluster):
    cli = cli_cluster  # "two" runs two tasks at once, in threads of one process
    ex = dask_executor(
        address=cli.address, submit_options=lambda t: {"workers": [cli.workers["two"]]}
    )
    p = new_pipeline(ex)
    p.add_task(Task("left", chatty, ["l.txt", "left", "right"]))
    p.add_task(Task("right", chatty, ["r.txt", "right", "left"]))
    assert p.run() == 0, p.stream.getvalue()
    assert Path("l.txt").read_text() == Path("r.txt").read_text() == "together"
    out = p.stream.getvalue()
    for i, me in ((1, "left"), (2, "right")):
        block = re.search(
            rf"--- output of \[{i}\] '{me}' ---\n(.*?)\n(?=---|FINISHED|Tasks:)", out, re.S
        ).group(1)
        assert block.splitlines() == [f"{me} says 1", f"{me} says 2", f"{me} complains"], out


def test_tasks_in_threads_of_the_driver_process_print_apart_and_streams_come_back(project):
    """Workers in the driver's own process (``processes=False``): each task's output still
    goes to its own log, and the driver's ``sys.stdout`` / ``sys.stderr`` are given back
    when the run ends (they stayed routers, which also said they were no terminal)."""
    before = sys.stdout, sys.stderr
    cluster = make_cluster(n_workers=1, threads_per_worker=2, processes=False)
    try:
        p = new_pipeline(dask_executor(cluster=cluster))
        p.add_task(Task("left", chatty, ["l.txt", "left", "right"]))
        p.add_task(Task("right", chatty, ["r.txt", "right", "left"]))
        assert p.run() == 0, p.stream.getvalue()
    finally:
        cluster.close()
    assert Path("l.txt").read_text() == Path("r.txt").read_text() == "together"
    for me in ("left", "right"):
        (log,) = (project / ".depio_like" / "logs").glob(f"{me}-*.out")
        assert log.read_text().splitlines() == [f"{me} says 1", f"{me} says 2"]
    assert (sys.stdout, sys.stderr) == before


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


def reports_progress(out: Annotated[Path, Product], seen: str):
    current_progress().update(current=45, total=100, message="halfway")
    deadline = time.monotonic() + 60
    while not os.path.exists(seen) and time.monotonic() < deadline:
        time.sleep(0.02)
    Path(out).write_text("seen" if os.path.exists(seen) else "never seen")


def test_progress_from_a_task_reaches_the_live_table_while_it_runs(project, local_cluster):
    stream = FakeTTY()
    p = Pipeline(executor=dask_executor(cluster=local_cluster), stream=stream, refreshrate=0.05)
    p.add_task(Task("progress", reports_progress, ["p.txt", str(project / "seen")]))

    def watch():  # the test plays the user looking at the table
        deadline = time.monotonic() + 60
        while "45% halfway" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        if "45% halfway" in stream.getvalue():
            (project / "seen").touch()

    watcher = threading.Thread(target=watch)
    watcher.start()
    assert p.run() == 0
    watcher.join()
    assert Path("p.txt").read_text() == "seen"


# --------------------------------------------------------------------------------- failures
def raises(out: Annotated[Path, Product]):
    raise ValueError("bad input 42")


def downstream(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
    Path(out).write_text("never")


def dies(out: Annotated[Path, Product]):
    os._exit(3)


def flaky(out: Annotated[Path, Product], marker: str):
    if not os.path.exists(marker):
        Path(marker).touch()
        raise RuntimeError("first attempt fails")
    Path(out).write_text("second attempt")


def returns_lock():
    return threading.Lock()


def takes(out: Annotated[Path, Product], value):
    Path(out).write_text(repr(value))


def test_failures_name_the_error_and_the_worker(project, local_cluster):
    p = new_pipeline(dask_executor(cluster=local_cluster, retries=1))
    p.add_task(Task("raises", raises, ["r.txt"], retries=0))
    p.add_task(Task("downstream", downstream, ["d.txt", "r.txt"]))
    p.add_task(Task("dies", dies, ["x.txt"], retries=0))
    p.add_task(Task("flaky", flaky, ["f.txt", str(project / "marker")]))
    p.add_task(Task("lock_arg", takes, ["l.txt", threading.Lock()], retries=0))
    lock = p.add_task(Task("lock_value", returns_lock, retries=0))
    p.add_task(Task("lock_user1", takes, ["u1.txt", lock]))
    p.add_task(Task("lock_user2", takes, ["u2.txt", lock]))
    assert p.run() == 1
    out = p.stream.getvalue()
    status = {r["Name"]: r["Status"] for r in rows(out)}
    assert status == {
        "raises": "FAILED",
        "downstream": "DEPFAILED",
        "dies": "FAILED",
        "flaky": "FINISHED",
        "lock_arg": "FAILED",
        "lock_value": "FAILED",
        "lock_user1": "DEPFAILED",
        "lock_user2": "DEPFAILED",
    }
    assert re.search(
        r"FAILED    \[1\] 'raises'\n\s+on Dask worker tcp://127\.0\.0\.1:\d+:\n\s+"
        r'Traceback \(most recent call last\):\n\s+File ".*test_dask.py", line \d+, '
        r'in raises\n\s+raise ValueError\("bad input 42"\)\n\s*ValueError: bad input 42',
        out,
    ), out
    assert re.search(
        r"FAILED    \[3\] 'dies'\n\s+the Dask worker running it \(127\.0\.0\.1:\d+\) "
        r"died: a crash, os._exit, or the out-of-memory killer",
        out,
    ), out
    assert (
        "RETRY     [4] 'flaky' (attempt 2 of 2) after: RuntimeError: first attempt fails" in out
    ), out
    assert Path("f.txt").read_text() == "second attempt"
    assert "argument 'value' (lock) cannot be sent to a Dask worker" in out
    assert (
        "its return value (lock) cannot be handed to [7] 'lock_user1', [8] 'lock_user2' in "
        "another process: it cannot be pickled"
    ) in out


def noted(name):
    with open("ran.txt", "a") as f:
        f.write(name + "\n")


def value_maker(out: Annotated[Path, Product]):
    noted("value_maker")
    Path(out).write_text("made")
    return "its value"


def worker_killer():
    noted("worker_killer")
    time.sleep(0.5)  # the value is on this worker by now
    os._exit(3)


def slow_gate():
    time.sleep(3)  # the value's reader waits for this: it is sent after the death


def value_reader(out: Annotated[Path, Product], v):
    Path(out).write_text(v)


def test_a_worker_dying_does_not_run_a_finished_task_again_for_its_value(project, capfd):
    """A task that kills its worker (os._exit; the OOM killer alike) loses the values held
    on that worker. A producer that FINISHED and was recorded must not run again in the
    same run (its body's effects twice, its product rewritten after its record) to give
    its value to a later reader; found by the oracle's Dask machine with "exit" failures."""
    p = new_pipeline(dask_executor(n_workers=1, dashboard_address=None))
    made = p.add_task(Task("value_maker", value_maker, ["m.txt"]))
    p.add_task(Task("worker_killer", worker_killer, depends_on=[made]))
    gate = p.add_task(Task("slow_gate", slow_gate, depends_on=[made]))
    p.add_task(Task("value_reader", value_reader, ["r.txt", made], depends_on=[gate]))
    assert p.run() == 1
    status = {r["Name"]: r["Status"] for r in rows(p.stream.getvalue())}
    assert status["worker_killer"] == "FAILED"
    assert status["value_maker"] == "FINISHED"
    assert Path("ran.txt").read_text().split().count("value_maker") == 1, Path(
        "ran.txt"
    ).read_text()
    # The reader did not run, and says why: the value it takes was lost, not its worker.
    assert status["value_reader"] == "FAILED"
    out = p.stream.getvalue()
    assert "the return value of task [1] 'value_maker' it takes was lost" in out, out
    assert not Path("r.txt").exists()
    assert "Compute Failed" not in capfd.readouterr().err  # (ours to say, in a sentence)


def chain_start():
    noted("chain_start")
    return "start"


def chain_second(out: Annotated[Path, Product], v):
    noted("chain_second")
    Path(out).write_text(v)
    return "second's value"


def kill_then_read(p, producer):
    """After ``producer`` ended, a task kills the (only) worker, which held its value; a
    reader of that value starts later. The run's output and statuses by name."""
    p.add_task(Task("worker_killer", worker_killer, depends_on=[producer]))
    gate = p.add_task(Task("slow_gate", slow_gate, depends_on=[producer]))
    p.add_task(Task("value_reader", value_reader, ["r.txt", producer], depends_on=[gate]))
    assert p.run() == 1
    out = p.stream.getvalue()
    return out, {r["Name"]: r["Status"] for r in rows(out)}


def test_a_lost_value_of_a_chain_names_the_task_that_made_it(project):
    """A chain runs as one Dask job; the value lost with the dead worker is the one its
    second task made (the first's is taken inside the job). The reader's message must
    name that producer, not the job's first task."""
    p = new_pipeline(dask_executor(n_workers=1, dashboard_address=None))
    first = p.add_task(Task("chain_start", chain_start))
    second = p.add_task(Task("chain_second", chain_second, ["s.txt", first]))
    out, status = kill_then_read(p, second)
    assert status["chain_second"] == "FINISHED" and status["value_reader"] == "FAILED", out
    assert Path("ran.txt").read_text().split().count("chain_second") == 1
    assert "the return value of task [2] 'chain_second' it takes was lost" in out, out


def passes_on(out: Annotated[Path, Product], v):
    noted("passes_on")
    Path(out).write_text(v)
    return v + " passed on"


def test_a_lost_value_names_the_producer_the_reader_takes_it_from(project):
    """The reader takes B's value, B took A's: both are lost with the worker, and Dask's
    rebuild stops at A (refused: it ran). The reader's message names B, whose value it
    takes, not A, where the rebuild stopped."""
    p = new_pipeline(dask_executor(n_workers=1, dashboard_address=None))
    a = p.add_task(Task("value_maker", value_maker, ["m.txt"]))
    p.add_task(Task("also_reads_a", value_reader, ["o.txt", a]))  # (A, B: not one chain)
    b = p.add_task(Task("passes_on", passes_on, ["b.txt", a]))
    out, status = kill_then_read(p, b)
    assert status["passes_on"] == "FINISHED" and status["value_reader"] == "FAILED", out
    ran = Path("ran.txt").read_text().split()
    assert ran.count("value_maker") == ran.count("passes_on") == 1, ran
    assert "the return value of task [3] 'passes_on' it takes was lost" in out, out


def dies_once():
    noted("dies_once")
    os._exit(3)


def test_a_task_dask_starts_again_after_its_worker_died_is_failed_not_run_twice(project):
    """On a cluster that allows failures, Dask itself runs a task again on another worker
    once the one running it died: its effects would happen twice in one run, outside the
    run's retries. It is failed instead, saying why."""
    cluster = make_cluster(allowed_failures=2)
    try:
        p = new_pipeline(dask_executor(cluster=cluster))
        p.add_task(Task("dies_once", dies_once))
        assert p.run() == 1
    finally:
        cluster.close()
    assert Path("ran.txt").read_text().split() == ["dies_once"]
    out = p.stream.getvalue()
    assert {r["Name"]: r["Status"] for r in rows(out)} == {"dies_once": "FAILED"}
    assert "its Dask worker died, while running it or before its result reached" in out, out


def test_a_run_leaves_one_word_of_its_marks_on_a_shared_scheduler(project, local_cluster):
    """Each job is marked started in the scheduler (so that none runs twice); a scheduler
    that outlives the run keeps one word for the run, not a mark per job."""
    from distributed import Client

    ex = dask_executor(cluster=local_cluster)
    p = new_pipeline(ex)
    for i in range(3):
        p.add_task(Task(f"t{i}", noted, [f"t{i}"]))
    assert p.run() == 0
    assert sorted(Path("ran.txt").read_text().split()) == ["t0", "t1", "t2"]
    with Client(local_cluster, set_as_default=False) as c:
        marks = c.get_metadata(["depio_like"])
    assert marks["ended"][ex._token] is True and marks[ex._token] is None


def chain_head():
    return [1, 2, 3]


def chain_tail(out: Annotated[Path, Product], values):
    Path(out).write_text(f"{sum(values)} {os.getpid()}")


def test_a_chain_joined_by_a_value_is_one_dask_task(project, local_cluster):
    ex = dask_executor(cluster=local_cluster)
    p = new_pipeline(ex)
    head = p.add_task(Task("head", chain_head))
    p.add_task(Task("tail", chain_tail, ["t.txt", head]))
    assert p.run() == 0
    table = rows(p.stream.getvalue())
    assert [r["Status"] for r in table] == ["FINISHED", "FINISHED"]
    assert table[0]["Worker"] == table[1]["Worker"] != ""
    assert ex.stats["submitted"] == 1
    assert Path("t.txt").read_text().startswith("6 ")


def hog(out: Annotated[Path, Product]):
    held = b"x" * (700 * 2**20)  # written, so resident: more than the worker may use
    time.sleep(60)
    Path(out).write_bytes(held[:1])


def test_embedded_cluster_worker_over_its_memory_limit_fails_the_task(project):
    ex = dask_executor(n_workers=1, memory_limit="400MB")
    p = new_pipeline(ex)
    p.add_task(Task("hog", hog, ["h.txt"]))
    assert p.run() == 1
    out = p.stream.getvalue()
    assert re.search(
        r"the Dask worker running it \(127\.0\.0\.1:\d+\) died: it went over its "
        r"memory limit and its nanny stopped it \(out of memory: \d+ MiB in use\)",
        out,
    ), out
    assert ex.client is None and ex._own_cluster is None  # the embedded cluster is closed


# --------------------------------------------------------------- scripts, command line, Ctrl-C
def test_dask_example_runs_then_skips(tmp_path):
    shutil.copy(ROOT / "examples" / "dask.py", tmp_path)  # (named like the package it uses)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    runs = [
        subprocess.run(
            [sys.executable, "dask.py"],
            cwd=tmp_path,
            env=env,
            text=True,
            capture_output=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    assert runs[0].returncode == 0, runs[0].stdout + runs[0].stderr
    assert [r["Status"] for r in rows(runs[0].stdout)] == ["FINISHED", "FINISHED"]
    assert "A function that is reading from build/input.txt" in runs[0].stdout
    assert (tmp_path / "build" / "dask_final1.txt").read_text().startswith("Hallo from depio_like")
    assert runs[1].returncode == 0
    assert [r["Status"] for r in rows(runs[1].stdout)] == ["SKIPPED", "SKIPPED"]


def test_import_depio_like_does_not_import_distributed():
    code = "import sys, depio_like; print('distributed' in sys.modules, 'dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


CTRL_C = """
    import os, time
    from pathlib import Path
    from typing import Annotated
    from depio_like import DaskExecutor, Dependency, Pipeline, Product, Task

    def quick(out: Annotated[Path, Product]):
        Path(out).write_text("quick")

    def long(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        if not Path("go-fast").exists():
            Path("long-started").write_text(str(os.getpid()))
            time.sleep(120)
        Path(out).write_text("long")

    def later(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
        Path(out).write_text("later")

    p = Pipeline(DaskExecutor())
    p.add_task(Task("quick", quick, ["q.txt"]))
    p.add_task(Task("long", long, ["l.txt", "q.txt"]))
    p.add_task(Task("later", later, ["z.txt", "l.txt"]))
    exit(p.run())
"""


def start_script(directory, source):
    (directory / "pipeline.py").write_text(textwrap.dedent(source))
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("CI", None)
    return subprocess.Popen(
        [sys.executable, "pipeline.py"],
        cwd=directory,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


@pytest.mark.parametrize("how", ["ctrl-c", "kill -9"])
def test_interrupted_or_killed_driver_leaves_no_worker_and_keeps_finished_work(tmp_path, how):
    proc = start_script(tmp_path, CTRL_C)
    try:
        wait_until(
            lambda: (tmp_path / "long-started").exists() or proc.poll() is not None,
            120,
            "the long task to start",
        )
        assert proc.poll() is None, proc.stdout.read()
        # A terminal's Ctrl-C reaches the whole foreground process group, workers too.
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:  # the driver alone dies at once
            os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    worker = int((tmp_path / "long-started").read_text())
    wait_until(lambda: not session_processes(proc.pid), 60, "the driver's processes to exit")
    assert not alive(worker)
    if how == "ctrl-c":
        assert proc.returncode == 130, out
        assert "Traceback" not in out and "KeyboardInterrupt" not in out, out
        assert "FINISHED  [1] 'quick'" in out and "Interrupted" in out
        assert {r["Name"]: r["Status"] for r in rows(out)} == {
            "quick": "FINISHED",
            "long": "CANCELLED",
            "later": "CANCELLED",
        }
    (tmp_path / "go-fast").touch()
    again = run_py(tmp_path, CTRL_C)
    assert again.returncode == 0, again.stdout + again.stderr
    assert [r["Status"] for r in rows(again.stdout)] == ["SKIPPED", "FINISHED", "FINISHED"]


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_one_clear_error_before_anything_runs(tmp_path):
    port = free_port()
    script = f"""
        from pathlib import Path
        from typing import Annotated
        from depio_like import DaskExecutor, Pipeline, Product, Task

        def work(out: Annotated[Path, Product]):
            Path(out).write_text("ran")

        p = Pipeline(DaskExecutor("tcp://127.0.0.1:{port}", timeout=3))
        p.add_task(Task("work", work, ["out.txt"]))
        exit(p.main())
    """
    r = run_py(tmp_path, script)
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.startswith(
        f"error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port}: "
    ), r.stderr
    assert "Nothing was run." in r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    assert not (tmp_path / "out.txt").exists()


CLI_SCRIPT = """
    from pathlib import Path
    from typing import Annotated
    from depio_like import Pipeline, Product, Task

    def work(out: Annotated[Path, Product]):
        Path(out).write_text("ran")

    p = Pipeline()
    for k in range(3):
        p.add_task(Task(f"work{k}", work, [f"out{k}.txt"]))
    exit(p.END())
"""


def test_executor_dask_and_dask_address_on_the_command_line(tmp_path, cli_cluster):
    cli = cli_cluster
    workers = {a.split("://")[1] for a in cli.workers.values()}
    r = run_py(tmp_path, CLI_SCRIPT.replace("END", "main"), "--dask-address", cli.address)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {row["Worker"] for row in rows(r.stdout)} <= workers
    assert f"Dask: scheduler at {cli.address}" in r.stderr
    # `depio-like run` for a script ending in run(), with --executor dask spelled out
    (tmp_path / "pipeline.py").write_text(textwrap.dedent(CLI_SCRIPT.replace("END", "run")))
    tool = subprocess.run(
        [
            str(Path(sys.executable).parent / "depio-like"),
            "run",
            "pipeline.py",
            "--force",
            "--executor",
            "dask",
            "--dask-address",
            cli.address,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tool.returncode == 0, tool.stdout + tool.stderr
    assert {row["Worker"] for row in rows(tool.stdout)} <= workers
    assert len(rows(tool.stdout)) == 3
    bad = run_py(
        tmp_path,
        CLI_SCRIPT.replace("END", "main"),
        "--executor",
        "parallel",
        "--dask-address",
        cli.address,
    )
    assert bad.returncode != 0
    assert "--dask-address applies to --executor dask, not --executor parallel" in bad.stderr


# ------------------------------------------------------------------ Dask on Slurm (jobqueue)
@pytest.mark.slurm
def test_dask_jobqueue_slurm_cluster_runs_the_pipeline(project, slurm):
    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster(
        cores=1,
        processes=1,
        memory="1GB",
        walltime="00:15:00",
        python=sys.executable,
        log_directory=str(project / "jobqueue-logs"),
        local_directory=str(project / "jobqueue-scratch"),
        scheduler_options={"dashboard_address": ":0"},
    )
    try:
        cluster.scale(jobs=2)
        ex = dask_executor(cluster=cluster)
        p = new_pipeline(ex)
        Path("input.txt").write_text("in")
        for k in range(2):
            p.add_task(Task(f"where{k}", where_am_i, [f"out{k}.txt", "input.txt"]))
        produced = p.add_task(Task("produce", chain_head))
        p.add_task(Task("tail_a", chain_tail, ["ta.txt", produced]))
        p.add_task(Task("tail_b", chain_tail, ["tb.txt", produced]))
        assert p.run() == 0, p.stream.getvalue()
        out = p.stream.getvalue()
        assert all(r["Worker"] for r in rows(out)), out
        for k in range(2):
            assert Path(f"out{k}.txt").read_text() == f"{project}|in"
        assert Path("ta.txt").read_text().startswith("6 ")
        jobs = subprocess.run(
            ["squeue", "-h", "-o", "%j", "-u", os.environ.get("USER", "root")],
            capture_output=True,
            text=True,
        ).stdout.split()
        assert "dask-worker" in jobs  # the workers really are Slurm jobs
        assert not list(Path(".depio_like").rglob("*.value"))
    finally:
        cluster.close()


async def async_write(out: Annotated[Path, Product], text: str) -> int:
    out.write_text(text)  # a str given for `out` arrives as a Path, as on every executor
    return len(text)


def count_lines(out: Annotated[Path, Product], n):
    Path(out).write_text(f"{n}\n")


def test_an_async_task_is_awaited_and_a_str_path_arrives_as_a_path(project, local_cluster):
    # Found in review: Dask's job ran the function bare (a coroutine was handed on, and
    # never awaited) and passed the arguments as written, not as declared.
    p = new_pipeline(dask_executor(cluster=local_cluster))
    size = p.add_task(Task("write", async_write, ["a.txt", "hello"]))
    p.add_task(Task("count", count_lines, ["n.txt", size]))
    assert p.run() == 0, p.stream.getvalue()
    assert Path("a.txt").read_text() == "hello"
    assert Path("n.txt").read_text() == "5\n"
