"""Cost per task over 10^3, 10^4, 10^5 wide tasks: depio_like beside doit and a bare loop.

Each N: N independent tasks writing one small file each (run.py's "wide" pipelines, the
same task bodies for both tools), SequentialExecutor for ours; a first run from an empty
directory on tmpfs, the rerun right after it ("1st rerun": ours hashes the products again
then) and the steady no-op rerun after that. The floor is a bare Python loop doing the same
I/O (the file and the line in the run log each task appends). Tools alternate within each
repetition; medians are printed, with the peak RSS of the processes (ru_maxrss, the highest
of the three runs) and ours' state file size. ``--million`` adds a 1,000,000-task first
run, 1st rerun and no-op rerun of ours (no peers: doit takes minutes).

    python benchmarks/run.py --workloads curve [--million] [--repeat 3]
    python benchmarks/bench_curve.py --sizes 1000,10000 --repeat 3
    python benchmarks/bench_curve.py --shape sweep   # each task also reads one config file
    python benchmarks/bench_curve.py --shape kwsweep # the same, declared by keyword (depio)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as _run  # noqa: E402  (the generated pipelines and run_process)

BARE = textwrap.dedent('''\
    import sys, time
    from pathlib import Path
    n = int(sys.argv[1])
    OUT = Path("out"); OUT.mkdir(exist_ok=True)
    LOG = Path("log.txt")
    for i in range(n):
        t0 = time.time()
        (OUT / f"f{i:05d}.txt").write_text(f"file {i}\\n")
        with open(LOG, "a") as f:
            f.write(f"w{i} {t0:.6f} {time.time():.6f}\\n")
''')


def _wide(n: int, shape: str = "wide") -> _run.Workload:
    return _run.Workload(f"{shape}{n}", f"{shape} {n:,}", shape, [], n=n)


class Curve:
    def __init__(self, python: str, root: Path, timeout: float, shape: str = "wide") -> None:
        self.python, self.root, self.timeout, self.shape = python, root, timeout, shape
        self.logs = root / "logs"
        self.logs.mkdir(exist_ok=True)
        self.big_dir = root / "unused"
        self._k = 0
        (root / "bare.py").write_text(BARE)

    def fresh(self) -> Path:
        self._k += 1
        d = self.root / f"c{self._k}"
        d.mkdir()
        return d

    def _proc(self, argv: list[str], d: Path) -> _run.Run:
        try:
            return _run.run_process(argv, d, self.logs / "curve.log", self.timeout, False)
        except _run.RunFailed as e:
            raise _run.BenchError(f"{' '.join(argv)} in {d}: {e.kind}: {e.detail}") from None

    def sequence(self, tool: str, n: int) -> dict[str, tuple[float, int]]:
        """First run and steady no-op rerun of ``tool`` at N=n: phase -> (wall, maxrss KB)."""
        d = self.fresh()
        try:
            if tool == "bare":
                r = self._proc([self.python, str(self.root / "bare.py"), str(n)], d)
                if len(os.listdir(d / "out")) != n:
                    raise _run.BenchError("the bare loop did not write every file")
                return {"first": (r.wall, r.maxrss_kb)}
            (d / "out").mkdir()
            (d / "in").mkdir()
            (d / "in" / "config.txt").write_text("lr = 0.1\n")  # what a sweep's tasks read
            cmd = _run.Bench.generate(self, tool, _wide(n, self.shape), d)  # type: ignore[arg-type]
            out: dict[str, tuple[float, int]] = {}
            for phase in ("first", "no-op #1", "no-op"):
                (d / "log.txt").unlink(missing_ok=True)
                r = self._proc(cmd, d)
                ran = (d / "log.txt").read_text().count("\n") if (d / "log.txt").exists() else 0
                want = n if phase == "first" else 0
                if ran != want:
                    raise _run.BenchError(f"{tool} N={n} {phase}: {ran} task(s) ran, "
                                          f"expected {want}")
                out[phase] = (r.wall, r.maxrss_kb)
            if tool == "ours":
                out["state"] = (float((d / ".depio_like" / "state.jsonl").stat().st_size), 0)
            return out
        finally:
            shutil.rmtree(d, ignore_errors=True)


def curve(python: str, sizes: list[int], repeat: int, timeout: float, million: bool,
          doit: bool = True, shape: str = "wide") -> str:
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="depio_like_curve_", dir=base))
    c = Curve(python, root, timeout, shape)
    c.python = python
    rows = []
    try:
        for n in sizes:
            tools = ["bare", "ours"] + (["doit"] if doit else [])
            got: dict[str, list[dict[str, tuple[float, int]]]] = {t: [] for t in tools}
            for r in range(repeat):
                for t in _run.rotate(tools, r):
                    got[t].append(c.sequence(t, n))
                _run._progress(f"  curve N={n:,}: repetition {r + 1}/{repeat}")
            rows.append(_row(n, got))
        text = _table(rows)
        if million:
            n = 1_000_000
            res = c.sequence("ours", n)
            text += (f"\n\n1,000,000 tasks, ours (one run each): first run "
                     f"{res['first'][0]:.1f} s, peak RSS {res['first'][1] / 1024:.0f} MB; "
                     f"1st rerun {res['no-op #1'][0]:.1f} s, peak RSS "
                     f"{res['no-op #1'][1] / 1024:.0f} MB; no-op rerun {res['no-op'][0]:.1f} s, peak RSS "
                     f"{res['no-op'][1] / 1024:.0f} MB; state file "
                     f"{res['state'][0] / 2**20:.1f} MiB")
        return text
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _med(runs: list[dict[str, tuple[float, int]]], phase: str, k: int = 0) -> float:
    return statistics.median(r[phase][k] for r in runs)


def _row(n: int, got: dict[str, list[dict[str, tuple[float, int]]]]) -> list[str]:
    floor = _med(got["bare"], "first")
    ours = got["ours"]
    row = [f"{n:,}", f"{floor:.3f}"]
    o_first, o_noop, o_1 = _med(ours, "first"), _med(ours, "no-op"), _med(ours, "no-op #1")
    row += [f"{o_first:.3f}", f"{(o_first - floor) / n * 1e6:.0f}", f"{o_noop:.3f}",
            f"{o_noop / n * 1e6:.1f}", f"{o_1:.3f}",
            # The 1st rerun's compaction is the peak of the three (224 MiB at 100,000
            # tasks against 166 and 183): the column is the whole sequence's.
            f"{max(_med(ours, ph, 1) for ph in ('first', 'no-op #1', 'no-op')) / 1024:.0f}",
            f"{_med(ours, 'state') / 2**20:.1f}"]
    if "doit" in got:
        d = got["doit"]
        d_first, d_noop, d_1 = _med(d, "first"), _med(d, "no-op"), _med(d, "no-op #1")
        row += [f"{d_first:.3f}", f"{(d_first - floor) / n * 1e6:.0f}", f"{d_noop:.3f}",
                f"{d_1:.3f}", f"{(d_first - floor) / max(o_first - floor, 1e-9):.2f}x",
                f"{d_noop / o_noop:.2f}x", f"{d_1 / o_1:.2f}x"]
    return row


def _table(rows: list[list[str]]) -> str:
    from tabulate import tabulate

    # "1st rerun": the no-op rerun right after the first run. Ours hashes the products
    # again then (each was hashed within 0.1 s of being written: racy, its stat signature
    # not trusted) and compacts its log; the no-op columns are the rerun after that one.
    headers = ["N", "floor s", "ours first s", "ours µs/task over floor", "ours no-op s",
               "ours no-op µs/task", "ours 1st rerun s", "ours peak RSS MiB", "ours state MiB",
               "doit first s", "doit µs/task over floor", "doit no-op s", "doit 1st rerun s",
               "overhead doit/ours", "no-op doit/ours", "1st rerun doit/ours"]
    return tabulate(rows, headers=headers[:len(rows[0])], disable_numparse=True)


def main(argv: list[str] | None = None) -> int:
    # Users' installs have their bytecode cached; a machine that sets PYTHONDONTWRITEBYTECODE
    # would make every timed run compile the tools' sources (~0.2 s for ours) first.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--million", action="store_true")
    ap.add_argument("--no-doit", action="store_true")
    ap.add_argument("--shape", choices=["wide", "sweep", "kwsweep"], default="wide",
                    help="sweep: each task also depends on one config file no task makes; "
                    "kwsweep: the same declared by keyword, sweep(out, i=i, config=cfg)")
    ap.add_argument("--python", default=sys.executable)
    a = ap.parse_args(argv)
    print(curve(a.python, [int(x) for x in a.sizes.split(",")], a.repeat, a.timeout,
                a.million, doit=not a.no_doit, shape=a.shape))
    return 0


if __name__ == "__main__":
    sys.exit(main())
