"""depio_like against its peers (doit, pytask, depio), side by side, whole processes.

For every workload each tool gets the same pipeline, generated for it into a fresh directory
on tmpfs (/dev/shm), and is run as a separate process, timed from outside: interpreter
start-up, imports, declaring, checking, running and saving state all count. Tools alternate
within each repetition (the order rotates), so drift on the machine hits them alike. Every run
is checked: exit code 0, every product present with the right content, and exactly the
expected tasks ran (each task appends its name to a log file), so a tool that silently skips
or repeats work shows as "wrong", not as fast.

    python benchmarks/run.py                 # full: ~8 min on 2 cores
    python benchmarks/run.py --quick         # < 3 min: fewer repeats, slow peers fewer runs
    python benchmarks/run.py --only ours --workloads wide1k,chain

Workloads (--workloads, comma-separated; curve = 10^3/10^4/10^5 wide tasks beside doit and
a bare loop, see bench_curve.py, plus 10^6 of ours with --million; aliases: wide = wide1k,wide10k; parallel =
sleep,skewed; noop/touch = the workloads that have those phases):
  startup   `python -c "import <tool>"`.
  wide1k, wide10k
            N independent tasks, each writing one small file. Phases: first run from an empty
            directory; no-op rerun #1 right after it; no-op rerun #2 (steady state).
  chain     500 tasks, task i reads file i-1 (task 1 reads in/first.txt) and writes file i,
            whose content is a CRC of what it read, so a change propagates to the end. Task
            250 also reads in/middle.txt. Phases: first run, no-op #1, no-op #2, then
            touch-first: new content in in/first.txt (same size) -> all 500 tasks rerun;
            then touch-middle: new content in in/middle.txt -> tasks 250..500 (251) rerun.
  big       one task over 20 inputs of 50 MB (shared by all tools, made once, not racy); the
            task only stats them. Phases: first run, no-op #1, no-op #2. Also reported: the
            child's `rchar` (bytes read through read(2), /proc/<pid>/io) per phase, and for
            ours the hashing throughput (see below).
  sleep     8 x time.sleep(0.5) on 2 workers; lower bound 2.0 s.
  skewed    40 short tasks (0.05 s, declared first) and a chain of 10 x 0.2 s (declared
            after them), 2 workers. Lower bound max(critical path 2.0, work 4.0 / 2) = 2.0 s,
            reached only if the chain is started at once; a first-come-first-served
            dispatch runs the short ones first and ends near 3.0 s.
For the parallel workloads the table also gives the in-task span (first task start to last
task end, from timestamps the tasks log) next to the wall time.

Peak memory is the child's ru_maxrss from wait4(): the largest single process of its tree
(workers included once reaped), not a sum. `rchar` is read from /proc/<pid>/io while the
child is a zombie (waitid WNOWAIT), so it covers the whole run of the main process.

Tools: ours = depio_like (SequentialExecutor, ParallelExecutor(2) for sleep/skewed); doit
(`python -m doit`, `-n 2` for parallel; every task has `uptodate: [config_changed(args)]`
so that, like ours, it tracks arguments, and tasks without file_dep can be up to date);
pytask (`python -m pytask`; parallel needs the pytask-parallel plugin, used with `-n 2` if
importable, else n/a); depio (SequentialExecutor, or ParallelExecutor over a 2-thread pool
with refreshrate 0.05 s instead of its default 1 s poll, and quiet=True: its default display
redraws a rich table of every task on each poll, +0.6 s at 1,000 tasks; depio aborts without
a terminal on stdin (termios.error), so its stdin is a pseudo-terminal). Output of every
tool goes to a file; all but depio at their default verbosity.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pty
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import _cpus, rotate  # noqa: E402  (shared helpers of the benchmark suite)

TOOLS = ("ours", "doit", "pytask", "depio")
# What each tool's generated pipeline (or its `python -m` entry point) imports first.
MODULES = {"ours": "depio_like", "doit": "doit.doit_cmd, doit.tools", "pytask": "pytask",
           "depio": "depio.Pipeline, depio.Executors, depio.decorators"}
DISTS = {"ours": "depio_like", "doit": "doit", "pytask": "pytask", "depio": "depio"}

CHAIN_N, CHAIN_MID = 500, 250
BIG_FILES, BIG_MB = 20, 50
SLEEP_N, SLEEP_S = 8, 0.5
SHORT_N, SHORT_S, LONG_N, LONG_S = 40, 0.05, 10, 0.2
WORKERS = 2
DEPIO_REFRESH = 0.05

# --------------------------------------------------------------------------------------
# Generated pipelines. Every tool's file starts with PARAMS (constants of the workload) and
# BODY (what the tasks do, and specs(): the DAG as data, in declaration order), then maps
# each spec to its own API. So the tasks do the same work in every tool.
# --------------------------------------------------------------------------------------

BODY = textwrap.dedent('''\
    import os
    import time
    import zlib
    from pathlib import Path

    HERE = Path(__file__).resolve().parent
    OUT = HERE / "out"
    IN = HERE / "in"
    LOG = HERE / "log.txt"
    OUT.mkdir(exist_ok=True)


    def _log(name, t0):
        with open(LOG, "a") as f:
            f.write(f"{name} {t0:.6f} {time.time():.6f}\\n")


    def run_wide(out, i):
        t0 = time.time()
        Path(out).write_text(f"file {i}\\n")
        _log(f"w{i}", t0)


    def run_chain(out, i, prev, middle=None):
        t0 = time.time()
        text = f"{i} {zlib.crc32(Path(prev).read_bytes())}"
        if middle is not None:
            text += f" {zlib.crc32(Path(middle).read_bytes())}"
        Path(out).write_text(text + "\\n")
        _log(f"c{i}", t0)


    def run_big(out, inputs):
        t0 = time.time()
        Path(out).write_text(f"{len(inputs)} {sum(os.path.getsize(p) for p in inputs)}\\n")
        _log("big", t0)


    def run_nap(out, name, sec):
        t0 = time.time()
        time.sleep(sec)
        Path(out).write_text(name + "\\n")
        _log(name, t0)


    def specs():
        """(kind, name, product, dependencies, argument) of every task, in declaration order."""
        if WORKLOAD == "wide":
            for i in range(N):
                yield "wide", f"w{i}", OUT / f"f{i:05d}.txt", [], i
        elif WORKLOAD in ("sweep", "kwsweep"):  # wide, each task also reading one config file
            for i in range(N):
                yield WORKLOAD, f"w{i}", OUT / f"f{i:05d}.txt", [IN / "config.txt"], i
        elif WORKLOAD == "chain":
            for i in range(1, N + 1):
                deps = [IN / "first.txt" if i == 1 else OUT / f"c{i - 1:04d}.txt"]
                if i == MID:
                    deps.append(IN / "middle.txt")
                yield "chain", f"c{i}", OUT / f"c{i:04d}.txt", deps, i
        elif WORKLOAD == "big":
            yield "big", "big", OUT / "big.txt", [Path(BIG_DIR) / f"b{k:02d}.bin"
                                                 for k in range(BIG_FILES)], None
        elif WORKLOAD == "sleep":
            for i in range(SLEEP_N):
                yield "nap", f"s{i}", OUT / f"s{i}.txt", [], SLEEP_S
        elif WORKLOAD == "skewed":
            for i in range(SHORT_N):        # the short ones first: FIFO dispatch is wrong here
                yield "nap", f"q{i}", OUT / f"q{i:02d}.txt", [], SHORT_S
            for j in range(LONG_N):
                yield "nap", f"k{j}", OUT / f"k{j}.txt", [OUT / f"k{j - 1}.txt"] if j else [], LONG_S
        else:
            raise SystemExit(f"unknown workload {WORKLOAD!r}")
''')

OURS = textwrap.dedent('''\
    import sys
    from typing import Annotated

    from depio_like import Dependency, ParallelExecutor, Pipeline, Product, SequentialExecutor, task


    @task("wide")
    def wide(out: Annotated[Path, Product], i: int):
        run_wide(out, i)


    @task("sweep")
    def sweep(out: Annotated[Path, Product], i: int, config: Annotated[Path, Dependency]):
        run_wide(out, i)


    @task("chain")
    def chain(out: Annotated[Path, Product], i: int, prev: Annotated[Path, Dependency],
              middle: Annotated[Path, Dependency] = None):
        run_chain(out, i, prev, middle)


    @task("big")
    def big(out: Annotated[Path, Product], inputs: Annotated[list, Dependency]):
        run_big(out, inputs)


    @task("nap")
    def nap(out: Annotated[Path, Product], name: str, sec: float,
            prev: Annotated[Path, Dependency] = None):
        run_nap(out, name, sec)


    if PARALLEL:
        pipeline = Pipeline(executor=ParallelExecutor(max_workers=WORKERS))
    else:
        pipeline = Pipeline(executor=SequentialExecutor())
    for kind, name, out, deps, arg in specs():
        if kind == "wide":
            pipeline.add_task(wide(out, arg))
        elif kind == "sweep":
            pipeline.add_task(sweep(out, arg, deps[0]))
        elif kind == "kwsweep":  # by keyword, as depio's README declares its tasks
            pipeline.add_task(sweep(out, i=arg, config=deps[0]))
        elif kind == "chain":
            pipeline.add_task(chain(out, arg, deps[0], deps[1] if len(deps) > 1 else None))
        elif kind == "big":
            pipeline.add_task(big(out, deps))
        else:
            pipeline.add_task(nap(out, name, arg, deps[0] if deps else None))
    sys.exit(pipeline.run())
''')

DOIT = textwrap.dedent('''\
    from doit.tools import config_changed


    def task_bench():
        for kind, name, out, deps, arg in specs():
            if kind in ("wide", "sweep", "kwsweep"):  # (a sweep's config: its file_dep)
                action = (run_wide, [str(out), arg])
            elif kind == "chain":
                action = (run_chain, [str(out), arg] + [str(d) for d in deps])
            elif kind == "big":
                action = (run_big, [str(out), [str(d) for d in deps]])
            else:
                action = (run_nap, [str(out), name, arg])
            yield {"name": name, "actions": [action], "targets": [str(out)],
                   "file_dep": [str(d) for d in deps], "uptodate": [config_changed(repr(arg))]}
''')

PYTASK = textwrap.dedent('''\
    import sys
    from typing import Annotated

    from pytask import Product, task

    if RECURSION_LIMIT:
        # pytask 0.6's cycle check recurses once per DAG node: a chain of 500 tasks
        # (1,000 nodes) raises RecursionError at the default limit.
        sys.setrecursionlimit(RECURSION_LIMIT)

    for kind, name, out, deps, arg in specs():
        if kind == "wide":
            @task(id=name, kwargs={"out": out, "i": arg})
            def task_wide(out: Annotated[Path, Product], i: int) -> None:
                run_wide(out, i)
        elif kind == "chain" and len(deps) == 1:
            @task(id=name, kwargs={"out": out, "i": arg, "prev": deps[0]})
            def task_chain(out: Annotated[Path, Product], i: int, prev: Path) -> None:
                run_chain(out, i, prev)
        elif kind == "chain":
            @task(id=name, kwargs={"out": out, "i": arg, "prev": deps[0], "middle": deps[1]})
            def task_chain(out: Annotated[Path, Product], i: int, prev: Path,
                           middle: Path) -> None:
                run_chain(out, i, prev, middle)
        elif kind == "big":
            @task(id=name, kwargs={"out": out, "inputs": deps})
            def task_big(out: Annotated[Path, Product], inputs: list[Path]) -> None:
                run_big(out, inputs)
        elif deps:
            @task(id=name, kwargs={"out": out, "name": name, "sec": arg, "prev": deps[0]})
            def task_nap(out: Annotated[Path, Product], name: str, sec: float,
                         prev: Path) -> None:
                run_nap(out, name, sec)
        else:
            @task(id=name, kwargs={"out": out, "name": name, "sec": arg})
            def task_nap(out: Annotated[Path, Product], name: str, sec: float) -> None:
                run_nap(out, name, sec)
''')

DEPIO = textwrap.dedent('''\
    from concurrent.futures import ThreadPoolExecutor
    from typing import Annotated, List

    from depio.Executors import ParallelExecutor, SequentialExecutor
    from depio.Pipeline import Pipeline
    from depio.Task import Dependency, Product
    from depio.decorators import task


    @task("wide")
    def wide(out: Annotated[Path, Product], i: int):
        run_wide(out, i)


    @task("chain")
    def chain(out: Annotated[Path, Product], i: int, prev: Annotated[Path, Dependency],
              middle: Annotated[Path, Dependency] = None):
        run_chain(out, i, prev, middle)


    @task("big")
    def big(out: Annotated[Path, Product], inputs: Annotated[List[Path], Dependency]):
        run_big(out, inputs)


    @task("nap")
    def nap(out: Annotated[Path, Product], name: str, sec: float,
            prev: Annotated[Path, Dependency] = None):
        run_nap(out, name, sec)


    if PARALLEL:
        pipeline = Pipeline(depioExecutor=ParallelExecutor(
            internal_executor=ThreadPoolExecutor(max_workers=WORKERS)), refreshrate=DEPIO_REFRESH,
            quiet=True)
    else:
        pipeline = Pipeline(depioExecutor=SequentialExecutor(), quiet=True)
    for kind, name, out, deps, arg in specs():
        if kind == "wide":
            pipeline.add_task(wide(out, arg))
        elif kind == "chain" and len(deps) == 1:
            pipeline.add_task(chain(out, arg, deps[0]))
        elif kind == "chain":
            pipeline.add_task(chain(out, arg, deps[0], deps[1]))
        elif kind == "big":
            pipeline.add_task(big(out, deps))
        elif deps:
            pipeline.add_task(nap(out, name, arg, deps[0]))
        else:
            pipeline.add_task(nap(out, name, arg))
    exit(pipeline.run())
''')

TEMPLATES = {"ours": ("pipeline.py", OURS), "doit": ("dodo.py", DOIT),
             "pytask": ("task_bench.py", PYTASK), "depio": ("pipeline.py", DEPIO)}


class BenchError(RuntimeError):
    pass


# --------------------------------------------------------------------------------------
# Running one process
# --------------------------------------------------------------------------------------

@dataclass
class Run:
    wall: float              # seconds, from launch to exit
    maxrss_kb: int           # ru_maxrss of the child (largest process of its tree)
    rchar: int | None        # bytes the main process read through read(2)
    launched: float          # time.time() at launch (for in-task spans)


class RunFailed(Exception):
    def __init__(self, kind: str, detail: str, log: Path | None = None,
                 short: str | None = None) -> None:
        super().__init__(detail)
        self.kind = kind        # "crash", "timeout", "wrong"
        self.detail = detail
        self.log = log
        self.short = short      # for the table cell; detail goes under "Failures"


def run_process(argv: list[str], cwd: Path, log: Path, timeout: float, pty_stdin: bool) -> Run:
    """Run argv in cwd, stdout+stderr to log; return its wall time, peak RSS and rchar."""
    master = slave = None
    if pty_stdin:
        master, slave = pty.openpty()
    stdin = slave if pty_stdin else subprocess.DEVNULL
    timed_out = threading.Event()
    with open(log, "wb") as out:
        launched = time.time()
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdin=stdin, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)

        def kill() -> None:
            timed_out.set()
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            # Wait for the exit but leave the child a zombie, so /proc/<pid>/io still reads.
            os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
            wall = time.perf_counter() - t0
            rchar = None
            try:
                with open(f"/proc/{proc.pid}/io") as f:
                    for line in f:
                        if line.startswith("rchar:"):
                            rchar = int(line.split()[1])
            except OSError:
                pass
            try:  # anything the tool left running in its session (none should be)
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            if master is not None:
                os.close(master)
                os.close(slave)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if timed_out.is_set():
        raise RunFailed("timeout", f"> {timeout:g} s", log)
    if proc.returncode != 0:
        raise RunFailed("crash", f"exit {proc.returncode}: {_last_error(log)}", log)
    return Run(wall, usage.ru_maxrss, rchar, launched)


def _last_error(log: Path) -> str:
    """The most telling line of a failed run's output (an exception's name and message)."""
    lines = [ln.strip(" │\t") for ln in log.read_text(errors="replace").splitlines()]
    lines = [ln for ln in lines if ln]
    for ln in reversed(lines):
        head = ln.split(":", 1)[0]
        if head.endswith(("Error", "Exception", "error")) and " " not in head:
            return ln[:160]
    return (lines[-1] if lines else "(no output)")[:160]


# --------------------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------------------

@dataclass
class Step:
    phase: str
    expect: Callable[[Path], list[str]]       # names of the tasks that must run
    before: Callable[[Path], None] | None = None
    parallel_span: bool = False


@dataclass
class Workload:
    key: str
    title: str
    kind: str                                  # WORKLOAD in the generated scripts
    steps: list[Step]
    n: int = 0
    parallel: bool = False
    na: dict[str, str] = field(default_factory=dict)           # tool -> reason (whole workload)
    phase_na: dict[tuple[str, str], str] = field(default_factory=dict)  # (tool, phase) -> reason
    notes: dict[tuple[str, str], str] = field(default_factory=dict)     # (tool, phase) -> mark
    products: Callable[[Path], dict[Path, bytes | None]] | None = None  # expected content

    def phase_names(self) -> list[str]:
        return [s.phase for s in self.steps]


def wide_products(n: int) -> Callable[[Path], dict[Path, bytes | None]]:
    return lambda d: {d / "out" / f"f{i:05d}.txt": f"file {i}\n".encode() for i in range(n)}


def chain_products(d: Path) -> dict[Path, bytes | None]:
    first = (d / "in" / "first.txt").read_bytes()
    middle = (d / "in" / "middle.txt").read_bytes()
    expect, prev = {}, first
    for i in range(1, CHAIN_N + 1):
        text = f"{i} {zlib.crc32(prev)}"
        if i == CHAIN_MID:
            text += f" {zlib.crc32(middle)}"
        prev = (text + "\n").encode()
        expect[d / "out" / f"c{i:04d}.txt"] = prev
    return expect


def _set_input(name: str, text: str) -> Callable[[Path], None]:
    def go(d: Path) -> None:
        p = d / "in" / name
        old = p.read_text()
        if len(text) != len(old):
            raise BenchError("a touch must keep the size")
        p.write_text(text)
    return go


NOTHING: Callable[[Path], list[str]] = lambda d: []


def make_workloads(pytask_parallel: bool) -> dict[str, Workload]:
    w: dict[str, Workload] = {}
    w["startup"] = Workload("startup", "startup", "startup",
                            [Step("python -c 'import <its modules>'", NOTHING)])
    for n, key in ((1000, "wide1k"), (10000, "wide10k")):
        w[key] = Workload(key, f"wide {n:,}", "wide", [
            Step("first run", lambda d, n=n: [f"w{i}" for i in range(n)]),
            Step("no-op rerun #1 (right after)", NOTHING),
            Step("no-op rerun #2 (steady)", NOTHING),
        ], n=n, products=wide_products(n))
    w["chain"] = Workload("chain", f"chain {CHAIN_N}", "chain", [
        Step("first run", lambda d: [f"c{i}" for i in range(1, CHAIN_N + 1)]),
        Step("no-op rerun #1 (right after)", NOTHING),
        Step("no-op rerun #2 (steady)", NOTHING),
        Step(f"touch first input ({CHAIN_N} rerun)",
             lambda d: [f"c{i}" for i in range(1, CHAIN_N + 1)], _set_input("first.txt", "first v1\n")),
        Step(f"touch middle input ({CHAIN_N - CHAIN_MID + 1} rerun)",
             lambda d: [f"c{i}" for i in range(CHAIN_MID, CHAIN_N + 1)],
             _set_input("middle.txt", "middle v1\n")),
    ], n=CHAIN_N, products=chain_products)
    w["big"] = Workload("big", f"big inputs {BIG_FILES} x {BIG_MB} MB", "big", [
        Step("first run", lambda d: ["big"]),
        Step("no-op rerun #1 (right after)", NOTHING),
        Step("no-op rerun #2 (steady)", NOTHING),
    ], n=1, products=lambda d: {d / "out" / "big.txt":
                                f"{BIG_FILES} {BIG_FILES * BIG_MB << 20}\n".encode()})
    w["sleep"] = Workload("sleep", f"sleep {SLEEP_N} x {SLEEP_S} s, {WORKERS} workers", "sleep", [
        Step(f"makespan (bound {max(SLEEP_S, SLEEP_N * SLEEP_S / WORKERS):.1f} s)",
             lambda d: [f"s{i}" for i in range(SLEEP_N)], parallel_span=True),
    ], n=SLEEP_N, parallel=True,
        products=lambda d: {d / "out" / f"s{i}.txt": f"s{i}\n".encode() for i in range(SLEEP_N)})
    w["skewed"] = Workload("skewed", f"skewed {LONG_N}x{LONG_S} chain + {SHORT_N}x{SHORT_S}, "
                           f"{WORKERS} workers", "skewed", [
        Step(f"makespan (bound {skewed_bound():.1f} s)",
             lambda d: [f"q{i}" for i in range(SHORT_N)] + [f"k{j}" for j in range(LONG_N)],
             parallel_span=True),
    ], n=SHORT_N + LONG_N, parallel=True,
        products=lambda d: {**{d / "out" / f"q{i:02d}.txt": f"q{i}\n".encode()
                               for i in range(SHORT_N)},
                            **{d / "out" / f"k{j}.txt": f"k{j}\n".encode() for j in range(LONG_N)}})

    no_content = "n/a: no content-based rerun"
    for key in ("wide1k", "wide10k", "chain", "big"):
        for s in w[key].steps:
            if s.phase.startswith("no-op"):
                w[key].notes[("depio", s.phase)] = "e"
    w["big"].notes[("depio", "first run")] = "e"
    for s in w["chain"].steps:
        if s.phase.startswith("touch"):
            w["chain"].phase_na[("depio", s.phase)] = no_content
    for s in w["chain"].steps:
        w["chain"].notes[("pytask", s.phase)] = "r"
    if not pytask_parallel:
        for key in ("sleep", "skewed"):
            w[key].na["pytask"] = "n/a: needs pytask-parallel"
    return w


def skewed_bound() -> float:
    return max(LONG_N * LONG_S, (LONG_N * LONG_S + SHORT_N * SHORT_S) / WORKERS)


def sleep_bound() -> float:
    return max(SLEEP_S, SLEEP_N * SLEEP_S / WORKERS)


ALIASES = {"wide": ["wide1k", "wide10k"], "parallel": ["sleep", "skewed"],
           "noop": ["wide1k", "wide10k", "chain", "big"], "touch": ["chain"],
           "all": ["startup", "wide1k", "wide10k", "chain", "big", "sleep", "skewed"]}


# --------------------------------------------------------------------------------------
# The bench
# --------------------------------------------------------------------------------------

@dataclass
class Cell:
    runs: list[Run] = field(default_factory=list)
    spans: list[float] = field(default_factory=list)
    status: str | None = None     # set when the cell has no usable figure (or a failure)


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path, tools: list[str],
                 workloads: dict[str, Workload], pytask_parallel: bool) -> None:
        self.a = args
        self.python = args.python
        self.root = root
        self.tools = tools
        self.workloads = workloads
        self.pytask_parallel = pytask_parallel
        self.cells: dict[tuple[str, str, str], Cell] = {}
        self.dead: dict[tuple[str, str], str] = {}          # (workload, tool) -> why
        self.failures: list[str] = []
        self.big_dir = root / "big_inputs"
        self.logs = root / "logs"
        self.logs.mkdir()
        self._count = 0
        self.pytask_plain_chain: str | None = None
        self.hash_stats: dict | None = None

    def cell(self, wk: str, phase: str, tool: str) -> Cell:
        return self.cells.setdefault((wk, phase, tool), Cell())

    def fresh_dir(self) -> Path:
        self._count += 1
        d = self.root / f"w{self._count}"
        (d / "out").mkdir(parents=True)
        (d / "in").mkdir()
        (d / "in" / "first.txt").write_text("first v0\n")
        (d / "in" / "middle.txt").write_text("middle v0\n")
        return d

    def generate(self, tool: str, wl: Workload, d: Path, recursion_limit: int = 10_000) -> list[str]:
        """Write the tool's pipeline for ``wl`` into d; return the command that runs it."""
        params = dict(WORKLOAD=wl.kind, N=wl.n, MID=CHAIN_MID, BIG_DIR=str(self.big_dir),
                      BIG_FILES=BIG_FILES, SLEEP_N=SLEEP_N, SLEEP_S=SLEEP_S, SHORT_N=SHORT_N,
                      SHORT_S=SHORT_S, LONG_N=LONG_N, LONG_S=LONG_S, WORKERS=WORKERS,
                      PARALLEL=wl.parallel, DEPIO_REFRESH=DEPIO_REFRESH,
                      RECURSION_LIMIT=recursion_limit if wl.kind == "chain" else 0)
        header = "".join(f"{k} = {v!r}\n" for k, v in params.items())
        name, template = TEMPLATES[tool]
        (d / name).write_text(f"# generated by benchmarks/run.py for {tool}\n" + header
                              + BODY + "\n\n" + template)
        py = self.python
        if tool == "doit":
            return [py, "-m", "doit", "-f", name] + (["-n", str(WORKERS)] if wl.parallel else [])
        if tool == "pytask":
            return [py, "-m", "pytask"] + (["-n", str(WORKERS)] if wl.parallel else [])
        return [py, name]

    def check(self, wl: Workload, step: Step, d: Path) -> float | None:
        """Raise RunFailed("wrong") unless exactly the expected tasks ran and every product
        has its expected content. Return the in-task span for parallel workloads."""
        log = d / "log.txt"
        entries = log.read_text().splitlines() if log.exists() else []
        names = sorted(e.split()[0] for e in entries)
        want = sorted(step.expect(d))
        if names != want:
            extra = len(names) - len(set(names))
            raise RunFailed("wrong", f"ran {len(names)} task(s) ({len(set(names))} distinct"
                            f"{', ' + str(extra) + ' twice' if extra else ''}), expected "
                            f"{len(want)}", short=f"ran {len(names)}/{len(want)}")
        if wl.products is not None:
            for p, content in wl.products(d).items():
                try:
                    got = p.read_bytes()
                except FileNotFoundError:
                    raise RunFailed("wrong", f"product {p.relative_to(d)} missing",
                                    short="product missing") from None
                if content is not None and got != content:
                    raise RunFailed("wrong", f"product {p.relative_to(d)} has content {got[:40]!r},"
                                    f" expected {content[:40]!r}", short="wrong content")
        if step.parallel_span and entries:
            starts = [float(e.split()[1]) for e in entries]
            ends = [float(e.split()[2]) for e in entries]
            return max(ends) - min(starts)
        return None

    def run_sequence(self, wl: Workload, tool: str) -> float:
        """One repetition of ``wl`` for ``tool``: its steps in order in one fresh directory.
        Returns the wall time spent."""
        spent = 0.0
        if wl.kind == "startup":
            d = self.root
            cmd = [self.python, "-c", f"import {MODULES[tool]}"]
            step = wl.steps[0]
            try:
                r = run_process(cmd, d, self.logs / f"{tool}-startup.log", self.a.timeout, False)
            except RunFailed as e:
                self._fail(wl, step.phase, tool, e)
                return 0.0
            self.cell(wl.key, step.phase, tool).runs.append(r)
            return r.wall
        d = self.fresh_dir()
        try:
            cmd = self.generate(tool, wl, d)
            for step in wl.steps:
                if (tool, step.phase) in wl.phase_na:
                    continue
                if step.before is not None:
                    step.before(d)
                (d / "log.txt").unlink(missing_ok=True)
                log = self.logs / f"{tool}-{wl.key}-{wl.steps.index(step)}.log"
                try:
                    r = run_process(cmd, d, log, self.a.timeout, pty_stdin=(tool == "depio"))
                    spent += r.wall
                    span = self.check(wl, step, d)
                except RunFailed as e:
                    self._fail(wl, step.phase, tool, e)
                    return spent
                c = self.cell(wl.key, step.phase, tool)
                c.runs.append(r)
                if span is not None:
                    c.spans.append(span)
        finally:
            shutil.rmtree(d, ignore_errors=True)
        return spent

    def _fail(self, wl: Workload, phase: str, tool: str, e: RunFailed) -> None:
        c = self.cell(wl.key, phase, tool)
        nth = len(c.runs) + 1
        short = e.short
        if short is None and e.kind == "crash":
            short = e.detail.split(":", 2)[1].strip() if e.detail.count(":") >= 2 else e.detail
        elif short is None:
            short = e.detail
        c.status = f"{e.kind}: {short[:28]}" + (f" (run {nth})" if nth > 1 else "")
        self.dead[(wl.key, tool)] = phase
        msg = f"{tool} / {wl.title} / {phase}: {e.kind}: {e.detail}"
        if e.log is not None and e.log.exists():
            tail = e.log.read_text(errors="replace").splitlines()[-15:]
            msg += "\n    " + "\n    ".join(ln[:150] for ln in tail)
        self.failures.append(msg)
        _progress(f"  ! {tool} {wl.key} {phase}: {e.kind}: {e.detail}")

    def make_big_inputs(self) -> None:
        self.big_dir.mkdir(exist_ok=True)
        block = os.urandom(1 << 20)
        for k in range(BIG_FILES):
            with open(self.big_dir / f"b{k:02d}.bin", "wb") as f:
                for j in range(BIG_MB):
                    # distinct content per MB and file, so no tool can dedupe
                    f.write(block[:-8] + (k * 1000 + j).to_bytes(8, "little"))
        time.sleep(0.2)   # older than our 100 ms "racy" window before anything runs

    def probe_pytask_chain(self) -> None:
        """pytask on the chain without raising the recursion limit: one first run."""
        wl = self.workloads["chain"]
        d = self.fresh_dir()
        try:
            cmd = self.generate("pytask", wl, d, recursion_limit=0)
            run_process(cmd, d, self.logs / "pytask-chain-probe.log", self.a.timeout, False)
            self.check(wl, wl.steps[0], d)
            self.pytask_plain_chain = "ran fine"
        except RunFailed as e:
            self.pytask_plain_chain = f"{e.kind}: {e.detail}"
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def run_workload(self, wl: Workload, repeat: int) -> None:
        tools = [t for t in self.tools if t not in wl.na]
        for t in self.tools:
            if t in wl.na:
                for s in wl.steps:
                    self.cell(wl.key, s.phase, t).status = wl.na[t]
        for t in tools:
            for s in wl.steps:
                if (t, s.phase) in wl.phase_na:
                    self.cell(wl.key, s.phase, t).status = wl.phase_na[(t, s.phase)]
        if wl.key == "wide10k":
            tools = self._drop_hopeless(wl, tools)
        spent = {t: 0.0 for t in tools}
        for r in range(repeat):
            order = rotate(tools, r)
            ran = []
            for t in order:
                if (wl.key, t) in self.dead:
                    continue
                if r > 0 and spent[t] > self.a.budget:
                    continue        # this series has used its time: keep the runs it has
                spent[t] += self.run_sequence(wl, t)
                ran.append(t)
            _progress(f"  {wl.key}: repetition {r + 1}/{repeat} ({', '.join(ran) or 'none'})")
            if not ran:
                break

    def _drop_hopeless(self, wl: Workload, tools: list[str]) -> list[str]:
        """At N=10,000 skip a tool whose N=1,000 sequence (first run and both no-op reruns),
        scaled linearly (the best case) to 10,000, would take more than the per-run timeout
        (--quick: more than 10 s)."""
        keep = []
        for t in tools:
            first = self.cells.get(("wide1k", "first run", t))
            seq = [self.cells.get(("wide1k", s.phase, t)) for s in wl.steps]
            if first is None or not first.runs or any(c is None or not c.runs for c in seq):
                keep.append(t)
                continue
            took = sum(statistics.median(x.wall for x in c.runs) for c in seq)
            if 10 * took > (10.0 if self.a.quick else self.a.timeout):
                why = f"skipped: too slow (N=1,000 took {took:.1f} s)"
                for s in wl.steps:
                    self.cell(wl.key, s.phase, t).status = why
            else:
                keep.append(t)
        return keep


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------
# Hashing throughput of ours (in a helper process with the same interpreter)
# --------------------------------------------------------------------------------------

HASH_PROBE = textwrap.dedent('''\
    import json, sys, time
    import xxhash
    from depio_like.fingerprint import FileHasher
    from depio_like.fs import RealDisk

    files = sys.argv[1:]
    total = 0
    buf = bytearray(1 << 20)
    view = memoryview(buf)

    def read_only():
        for p in files:
            with open(p, "rb", buffering=0) as f:
                while f.readinto(buf):
                    pass

    def raw_xxh3():
        for p in files:
            h = xxhash.xxh3_64()
            with open(p, "rb", buffering=0) as f:
                while True:
                    n = f.readinto(buf)
                    if not n:
                        break
                    h.update(view[:n])
            h.hexdigest()

    def ours():
        hasher = FileHasher(RealDisk(), {})
        for p in files:
            hasher.digest(p)
        return hasher.bytes_hashed

    out = {"bytes": ours()}     # warm-up; also checks that ours read everything
    for name, fn in (("read", read_only), ("xxh3", raw_xxh3), ("ours", ours)):
        best = float("inf")
        for _ in range(5):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        out[name] = best
    print(json.dumps(out))
''')


def hash_throughput(b: Bench) -> dict | None:
    files = [str(b.big_dir / f"b{k:02d}.bin") for k in range(BIG_FILES)]
    proc = subprocess.run([b.python, "-c", HASH_PROBE, *files], capture_output=True, text=True,
                          cwd=b.root)   # not the caller's cwd: a depio_like/ there would shadow
    if proc.returncode != 0:
        b.failures.append("hash probe failed:\n" + proc.stderr[-2000:])
        return None
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------

NA_TEXT = {
    "n/a: no content-based rerun": "depio reruns a task only when one of its products is "
                                   "missing; a changed input is never noticed",
    "n/a: needs pytask-parallel": "pytask runs tasks in parallel only with the "
                                  "pytask-parallel plugin, which is not installed here",
}

NOTE_TEXT = {
    "e": "depio checks only that products exist (no hashing, no change detection)",
    "r": "pytask needs sys.setrecursionlimit(10_000) in the task module for a 500-task chain",
}


def _med(xs: list[float]) -> float:
    return statistics.median(xs)


def _fmt_s(x: float) -> str:
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def time_cell(b: Bench, wl: Workload, phase: str, tool: str, repeat: int, ours: float | None,
              notes_used: set[str]) -> str:
    c = b.cells.get((wl.key, phase, tool))
    if c is None:
        dead = b.dead.get((wl.key, tool))
        return f"not run ({dead} failed)" if dead else "-"
    if c.status is not None and not c.runs:
        return c.status
    if c.status is not None:     # failed after some good runs: the failure is the news
        return c.status
    if not c.runs:
        return "-"
    m = _med([r.wall for r in c.runs])
    text = _fmt_s(m)
    if tool != "ours" and ours:
        text += f" ({m / ours:.2f}x)" if m / ours < 10 else f" ({m / ours:.0f}x)"
    if len(c.runs) < repeat:
        text += f" [{len(c.runs)}]"
    mark = wl.notes.get((tool, phase))
    if mark:
        notes_used.add(mark)
        text += f" {{{mark}}}"
    return text


def report(b: Bench, order: list[str], repeat: int) -> str:
    from tabulate import tabulate

    out: list[str] = []
    notes_used: set[str] = set()
    rows, mem_rows = [], []
    for key in order:
        wl = b.workloads[key]
        for i, phase in enumerate(wl.phase_names()):
            label = f"{wl.title}: {phase}"
            oc = b.cells.get((key, phase, "ours"))
            ours = _med([r.wall for r in oc.runs]) if oc and oc.runs and not oc.status else None
            rows.append([label] + [time_cell(b, wl, phase, t, repeat, ours, notes_used)
                                   for t in b.tools])
            mrow = [label]
            for t in b.tools:
                c = b.cells.get((key, phase, t))
                mrow.append(f"{_med([r.maxrss_kb for r in c.runs]) / 1024:.0f}"
                            if c and c.runs else "-")
            mem_rows.append(mrow)
    tools_h = [("ours (s)" if t == "ours" else f"{t} (s, x ours)") for t in b.tools]
    out.append("Median wall time of the whole process, seconds; (Nx) = the peer's time / ours "
               "(> 1: we are faster); [k] = only k runs.")
    out.append(tabulate(rows, headers=["workload: phase"] + tools_h, disable_numparse=True))
    for m in sorted(notes_used):
        out.append(f"  {{{m}}} {NOTE_TEXT[m]}")
        if m == "r" and b.pytask_plain_chain is not None:
            out.append(f"      without it, this run: {b.pytask_plain_chain}")
    shown = {cell for row in rows for cell in row[1:]}
    for k, v in NA_TEXT.items():
        if k in shown:
            out.append(f"  {k}: {v}")
    if any(c.startswith("skipped: too slow") for c in shown):
        limit = "10 s (--quick)" if b.a.quick else f"the {b.a.timeout:.0f} s timeout"
        out.append(f"  skipped: too slow: the tool's N=1,000 first run + both no-op reruns, x 10, "
                   f"exceed {limit}")

    out.append("\nPeak RSS (MB, median of ru_maxrss: the largest single process of the tree)")
    out.append(tabulate(mem_rows, headers=["workload: phase"] + list(b.tools),
                        disable_numparse=True))

    par = [k for k in order if b.workloads[k].parallel]
    if par:
        prow = []
        for key in par:
            wl = b.workloads[key]
            bound = sleep_bound() if key == "sleep" else skewed_bound()
            for t in b.tools:
                c = b.cells.get((key, wl.steps[0].phase, t))
                if c is None or not c.runs or c.status:
                    prow.append([wl.title, t, (c.status if c and c.status else "-"), "", "", ""])
                    continue
                wall = _med([r.wall for r in c.runs])
                span = _med(c.spans) if c.spans else float("nan")
                prow.append([wl.title, t, f"{wall:.3f}", f"{span:.3f}", f"{bound:.1f}",
                             f"{wall - bound:+.3f}"])
        out.append("\nParallel: makespan = whole-process wall time; span = first task start to "
                   "last task end (tasks' own timestamps); bound = max(critical path, work / "
                   "workers)")
        out.append(tabulate(prow, headers=["workload", "tool", "makespan s", "span s", "bound s",
                                           "makespan - bound"], disable_numparse=True))

    if "big" in order:
        total = BIG_FILES * BIG_MB << 20
        brow = []
        wl = b.workloads["big"]
        for phase in wl.phase_names():
            row = [phase]
            for t in b.tools:
                c = b.cells.get(("big", phase, t))
                vals = [r.rchar for r in c.runs if r.rchar is not None] if c else []
                row.append(f"{_med(vals) / 1e6:.1f}" if vals else "-")
            brow.append(row)
        out.append(f"\nBig inputs: MB read by the main process (rchar, median); the inputs are "
                   f"{total / 1e6:.0f} MB")
        out.append(tabulate(brow, headers=["phase"] + list(b.tools), disable_numparse=True))
        if "ours" in b.tools:
            oc = [b.cells.get(("big", p, "ours")) for p in wl.phase_names()]
            if all(c and c.runs for c in oc):
                first_r = _med([r.rchar or 0 for r in oc[0].runs])
                for c, p in zip(oc[1:], wl.phase_names()[1:]):
                    r = _med([x.rchar or 0 for x in c.runs])
                    verdict = ("did NOT read the inputs' contents" if r < 0.1 * total
                               else "READ the inputs' contents")
                    out.append(f"  ours, {p}: read {r / 1e6:.1f} MB -> {verdict}")
                out.append(f"  ours, first run: read {first_r / 1e6:.0f} MB "
                           f"({first_r / total:.2f}x the inputs)")
        if b.hash_stats:
            h = b.hash_stats
            mb = h["bytes"] / 1e6
            out.append(f"\nHashing throughput over the same {mb:.0f} MB (page cache; helper "
                       f"process, best of 5): read only {mb / h['read']:.0f} MB/s; raw xxh3_64 "
                       f"streaming (1 MiB readinto) {mb / h['xxh3']:.0f} MB/s; ours "
                       f"(depio_like.fingerprint.FileHasher.digest) {mb / h['ours']:.0f} MB/s "
                       f"(ours takes {h['ours'] / h['xxh3']:.2f}x raw's time)")
            oc = [b.cells.get(("big", p, "ours")) for p in wl.phase_names()]
            if all(c and c.runs for c in oc):
                diff = _med([r.wall for r in oc[0].runs]) - _med([r.wall for r in oc[2].runs])
                if diff > 0:
                    out.append(f"  whole-process estimate: first run - steady no-op = {diff:.3f} s "
                               f"-> {mb / diff:.0f} MB/s (hashing + running the task + "
                               f"recording; an upper bound on hashing time)")
    if b.failures:
        out.append("\nFailures (last lines of the tool's output):")
        out.extend("  " + f for f in b.failures)
    return "\n".join(out)


# --------------------------------------------------------------------------------------

def machine_info(python: str, cwd: Path) -> tuple[str, dict[str, str | None], bool]:
    code = ("import importlib.metadata as m, importlib.util as u, json, sys\n"
            "def v(n):\n"
            "    try: return m.version(n)\n"
            "    except Exception: return None\n"
            f"print(json.dumps({{'py': sys.version.split()[0], "
            f"'v': {{t: v(n) for t, n in {DISTS!r}.items()}}, "
            f"'pp': v('pytask-parallel') if u.find_spec('pytask_parallel') else None, "
            f"'ours': getattr(u.find_spec('depio_like'), 'origin', None)}}))")
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise BenchError(f"{python} failed:\n{proc.stderr}")
    info = json.loads(proc.stdout)
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    vers = ", ".join(f"{t} {DISTS[t]} {info['v'][t] or 'NOT INSTALLED'}" for t in TOOLS)
    pp = info["pp"]
    where = ""
    if info["ours"]:
        pkg = Path(info["ours"]).parent
        git = subprocess.run(["git", "-C", str(pkg), "describe", "--always", "--dirty"],
                             capture_output=True, text=True)
        where = f"\ndepio_like from {pkg}" + (f" (git {git.stdout.strip()})"
                                              if git.returncode == 0 else "")
    text = (f"Machine: {platform.platform()}; {_cpus()} CPU(s) available "
            f"({os.cpu_count()} online){'; ' + model if model else ''}\n"
            f"Python {info['py']} at {python}\n"
            f"Tools: {vers}; pytask-parallel {pp or 'not installed'}{where}")
    return text, info["v"], bool(pp)


def main(argv: list[str] | None = None) -> int:
    # Users' installs have their bytecode cached; a machine that sets PYTHONDONTWRITEBYTECODE
    # would make every timed run compile the tools' sources (~0.2 s for ours) first.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Workloads: " + ", ".join(ALIASES["all"]))
    ap.add_argument("--quick", action="store_true",
                    help="3 repeats, 8 s per series before a tool stops repeating "
                         "(slow peers get 1 run): under 3 minutes on 2 cores")
    ap.add_argument("--repeat", type=int, default=None, help="repetitions (default 5; 3 quick)")
    ap.add_argument("--budget", type=float, default=None,
                    help="seconds one tool may spend on one workload before it stops "
                         "repeating (default 90; 8 with --quick); at least one run always")
    ap.add_argument("--timeout", type=float, default=120, help="per-run timeout, s (120)")
    ap.add_argument("--only", default=None,
                    help="comma-separated tools (ours,doit,pytask,depio); default all")
    ap.add_argument("--workloads", default="all",
                    help="comma-separated workloads or aliases (wide, parallel, noop, touch)")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter for the generated pipelines (must import every tool "
                         "benchmarked; default: this one)")
    ap.add_argument("--million", action="store_true",
                    help="with the curve workload: also 1,000,000 tasks of ours (first run "
                         "and no-op rerun, time and peak RSS)")
    ap.add_argument("--no-probe", action="store_true",
                    help="skip the check of pytask's chain without the recursion workaround")
    args = ap.parse_args(argv)
    repeat = args.repeat or (3 if args.quick else 5)
    if args.budget is None:
        args.budget = 8.0 if args.quick else 90.0
    tools = list(TOOLS) if not args.only else [t.strip() for t in args.only.split(",")]
    for t in tools:
        if t not in TOOLS:
            ap.error(f"unknown tool {t!r} (one of {', '.join(TOOLS)})")
    tools = [t for t in TOOLS if t in tools]
    order: list[str] = []
    names = [w.strip() for w in args.workloads.split(",")]
    want_curve = "curve" in names
    names = [w for w in names if w != "curve"]
    for w in names:
        for k in ALIASES.get(w, [w]):
            if k not in ALIASES["all"]:
                ap.error(f"unknown workload {w!r}")
            if k not in order:
                order.append(k)
    order = [k for k in ALIASES["all"] if k in order]

    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="depio_like_run_", dir=base))
    try:
        header, versions, pytask_parallel = machine_info(args.python, root)
    except BenchError as e:
        shutil.rmtree(root, ignore_errors=True)
        print(e, file=sys.stderr)
        return 2
    missing = [t for t in tools if versions.get(t) is None]
    if missing:
        shutil.rmtree(root, ignore_errors=True)
        print(header)
        print(f"not installed for {args.python}: {', '.join(missing)} "
              f"(pip install -e '.[bench]')", file=sys.stderr)
        return 2
    print(header)
    print(f"Workdir {root} ({'tmpfs' if base else 'NOT tmpfs: figures include disk noise'}); "
          f"{repeat} repeat(s), per-series budget {args.budget:.0f} s, per-run timeout "
          f"{args.timeout:.0f} s; workloads: {', '.join(order)}")
    sys.stdout.flush()
    t_start = time.perf_counter()
    workloads = make_workloads(pytask_parallel)
    b = Bench(args, root, tools, workloads, pytask_parallel)
    try:
        for key in order:
            wl = workloads[key]
            _progress(f"{wl.title} ...")
            if key == "big":
                b.make_big_inputs()
            if key == "chain" and "pytask" in tools and not args.no_probe:
                b.probe_pytask_chain()
            b.run_workload(wl, repeat if key != "startup" else max(repeat, 5))
            if key == "big" and "ours" in tools:
                b.hash_stats = hash_throughput(b)
            if key == "big":
                shutil.rmtree(b.big_dir, ignore_errors=True)
        if want_curve:
            from bench_curve import curve

            _progress("curve 10^3 / 10^4 / 10^5 ...")
            curve_text = curve(args.python, [1000, 10000, 100000], repeat, max(args.timeout, 600),
                               args.million, doit="doit" in tools)
        floor = []
        for _ in range(5):
            floor.append(run_process([args.python, "-c", "pass"], root, root / "logs" / "pass.log",
                                     args.timeout, False).wall)
        print()
        if order:
            print(report(b, order, repeat))
        if want_curve:
            print("\nCost per task, wide N (SequentialExecutor; floor: a bare loop doing the "
                  "same I/O; no-op: the steady rerun):")
            print(curve_text)
        print(f"\npython -c pass: {_med(floor):.3f} s (median of 5)")
    except BenchError as e:
        print(f"benchmark error: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"(benchmark took {time.perf_counter() - t_start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
