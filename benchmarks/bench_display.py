"""What the live view costs at scale, and how fast ``depio-like status`` answers.

N wide tasks (one small file each, SequentialExecutor), on tmpfs. After a first run and a
settling rerun, the no-op rerun is timed twice over, alternating: with its output on a
terminal (a pseudo-terminal of 40 x 160: the live table, redrawn every 0.25 s, collapsed
to counts) and with its output to a file (plain lines). The difference is what the live view
costs, printed as a share of the run. ``--first`` times first runs the same way (each from
an empty directory). Then ``depio-like status`` on that state directory, the table of the
last run, is timed. Never asserts on time.

    python benchmarks/bench_display.py                  # 100,000 tasks, 3 repeats
    python benchmarks/bench_display.py --n 1000000 --repeat 1
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

SCRIPT = """\
import sys
from pathlib import Path
from typing import Annotated
from depio_like import Pipeline, Product, SequentialExecutor, task

@task("wide")
def wide(out: Annotated[Path, Product], i: int):
    out.write_text(f"file {i}\\n")

pipeline = Pipeline(depioExecutor=SequentialExecutor())
for i in range(int(sys.argv[1])):
    pipeline.add_task(wide(Path("out") / f"f{i:07d}.txt", i))
exit(pipeline.run())
"""


STATUS = "import sys; from depio_like.cli import console_main; raise SystemExit(console_main(['status']))"


def timed(argv: list[str], cwd: Path, tty: bool) -> tuple[float, int]:
    """Wall seconds of the command, its output on a pseudo-terminal (``tty``) or a file;
    and the bytes it wrote."""
    if tty:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
        got = [0]

        def drain() -> None:
            while True:
                try:
                    b = os.read(master, 1 << 16)
                except OSError:
                    return
                if not b:
                    return
                got[0] += len(b)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        t0 = time.perf_counter()
        rc = subprocess.call(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
        wall = time.perf_counter() - t0
        os.close(slave)
        reader.join(5)
        os.close(master)
        size = got[0]
    else:
        with tempfile.TemporaryFile(dir=cwd) as out:  # on the same (tmpfs) disk
            t0 = time.perf_counter()
            rc = subprocess.call(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            wall = time.perf_counter() - t0
            size = out.tell()
    if rc != 0:
        raise SystemExit(f"{argv} in {cwd} exited with {rc}")
    return wall, size


def main(argv: list[str] | None = None) -> int:
    # Users' installs have their bytecode cached (see run.py).
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--first", action="store_true", help="time first runs too")
    ap.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="depio-like-display-", dir=args.dir))
    try:
        (root / "p.py").write_text(SCRIPT)
        cmd = [args.python, str(root / "p.py"), str(args.n)]
        walls: dict[str, list[float]] = {"tty": [], "file": []}
        first: dict[str, list[float]] = {"tty": [], "file": []}
        work = root / "w"
        work.mkdir()
        if args.first:
            for k in range(args.repeat):
                for mode in ("tty", "file") if k % 2 == 0 else ("file", "tty"):
                    d = root / f"first-{k}-{mode}"
                    d.mkdir()
                    first[mode].append(timed(cmd, d, mode == "tty")[0])
                    shutil.rmtree(d)
        timed(cmd, work, False)  # the first run
        time.sleep(0.2)  # products written within 100 ms are hashed again once
        timed(cmd, work, False)  # the settling rerun
        sizes = {}
        for k in range(args.repeat):
            for mode in ("tty", "file") if k % 2 == 0 else ("file", "tty"):
                wall, sizes[mode] = timed(cmd, work, mode == "tty")
                walls[mode].append(wall)
        status = [
            timed([args.python, "-c", STATUS], work, tty)[0]
            for _ in range(args.repeat)
            for tty in (True, False)
        ]
        print(f"{args.n:,} tasks, medians of {args.repeat} (tmpfs: {args.dir})")
        for what, got in (("first run", first), ("no-op rerun", walls)):
            if not got["tty"]:
                continue
            tty, plain = statistics.median(got["tty"]), statistics.median(got["file"])
            print(
                f"  {what}: live view {tty:.2f} s, output to a file {plain:.2f} s: "
                f"the live view costs {tty - plain:+.2f} s ({(tty - plain) / plain:+.1%})"
            )
        print(f"  no-op output: {sizes['tty']:,} bytes to the terminal, {sizes['file']:,} to a file")
        print(f"  depio-like status: {statistics.median(status):.2f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
