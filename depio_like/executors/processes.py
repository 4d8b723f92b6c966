"""No process of a run outlives its driver, however the driver ends (kill -9 included).

Three layers, each enough for what the one before misses:

* A worker holds no copy of the driver's end of any pipe, so it reads end-of-file as soon
  as the driver is gone.
* On Linux a worker asks the kernel for SIGKILL when its parent dies
  (``PR_SET_PDEATHSIG``), so one busy in a long task stops at once too. The signal fires
  when the *thread* that forked the worker ends, not the process: workers are forked by
  the thread running the pipeline, which outlives them (``shutdown`` ends them first).
* Workers, and whatever their tasks start (a ``multiprocessing.Pool``, a subprocess), live
  in one process group led by a small *reaper* process that does nothing but wait for the
  driver: when the driver goes, or at the end of the run, it kills the whole group,
  itself included. A process a task started with a new session or process group of its
  own (``start_new_session=True``) has asked to be left alone and is.

The reaper and the workers keep the state directory's lock (see ``locking``): the next
run takes it only once every one of them has exited.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

PR_SET_PDEATHSIG = 1
_prctl: Any = None


def _load_prctl() -> Any:
    """libc's prctl on Linux (loaded in the driver, so forked children need no ctypes)."""
    global _prctl
    if _prctl is None:
        _prctl = False
        if sys.platform.startswith("linux"):
            try:
                import ctypes

                _prctl = ctypes.CDLL(None, use_errno=True).prctl
            except (OSError, AttributeError):  # pragma: no cover - no libc prctl
                pass
    return _prctl


def die_with_parent(parent_pid: int | None, sig: int = signal.SIGKILL) -> None:
    """In a process just forked from ``parent_pid``: receive ``sig`` when the parent dies
    (Linux), and exit now if it died already (before the request could be made).
    ``None``: whoever the parent is (a forkserver's child: the server dies with the driver)."""
    prctl = _load_prctl()
    if prctl:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def hide_main() -> Callable[[], None] | None:
    """Keep multiprocessing's spawn and forkserver from running the main script again in
    each child (a pipeline script has no ``if __name__ == "__main__"`` guard): while
    ``__main__.__spec__`` names ``__main__``, multiprocessing skips it. Returns the undo,
    or None if there was nothing to hide (a module run with ``-m`` is imported by name)."""
    import importlib.machinery

    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None:
        return None
    main.__spec__ = importlib.machinery.ModuleSpec("__main__", None)

    def undo() -> None:
        spec = getattr(main, "__spec__", None)
        if spec is not None and spec.name == "__main__" and spec.loader is None:
            main.__spec__ = None

    return undo


@contextlib.contextmanager
def spawning() -> Iterator[None]:
    """Around the start of a spawned worker: the main script stays out of it, and it
    starts with Ctrl-C ignored (the driver decides what to stop) until it sets up."""
    undo = hide_main()
    old = None
    if threading.current_thread() is threading.main_thread():
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        if old is not None:
            signal.signal(signal.SIGINT, old)
        if undo is not None:
            undo()


def join_group(pgid: int | None) -> None:
    """Move this process into the run's group (done by both sides after a fork: no race)."""
    if pgid is None:
        return
    try:
        os.setpgid(0, pgid)
    except OSError:  # the group is gone (the reaper was killed): PDEATHSIG and EOF remain
        pass


class RunGroup:
    """The process group of one run's workers, with its reaper. ``spawned``: the reaper
    is a fresh interpreter, not a fork (a driver with threads must not fork)."""

    def __init__(self, spawned: bool = False) -> None:
        self.spawned = spawned
        self.pgid: int | None = None
        self._pid: int | None = None
        self._alive_fd: int | None = None  # the driver's end of the reaper's pipe

    def start(self) -> None:
        from ..locking import inherited_by_forks

        _load_prctl()
        read_end, write_end = os.pipe()
        driver = os.getpid()
        if self.spawned:
            pid = _spawn_reaper(read_end, write_end, driver)
        else:
            with inherited_by_forks():  # the reaper holds the state lock until it is gone
                pid = os.fork()
            if pid == 0:  # pragma: no cover - the reaper (coverage cannot see it)
                _reaper(read_end, write_end, driver)
        os.close(read_end)
        try:
            os.setpgid(pid, pid)
        except OSError:  # it did so itself already
            pass
        self.pgid, self._pid, self._alive_fd = pid, pid, write_end

    def adopt(self, pid: int) -> None:
        """A worker was forked: put it in the group (it does so itself as well)."""
        if self.pgid is None:
            return
        try:
            os.setpgid(pid, self.pgid)
        except OSError:
            pass

    def driver_fds(self) -> tuple[int, ...]:
        """Descriptors a forked worker must close: the driver's end of the reaper's pipe."""
        return () if self._alive_fd is None else (self._alive_fd,)

    def signal(self, sig: int) -> None:
        """Send ``sig`` to every process of the group (the reaper ignores all but SIGKILL)."""
        if self.pgid is not None:
            try:
                os.killpg(self.pgid, sig)
            except OSError:
                pass

    def close(self) -> None:
        """End the run's processes: the reaper kills what is left of the group, then exits."""
        if self._alive_fd is not None:
            os.close(self._alive_fd)
            self._alive_fd = None
        if self._pid is not None:
            try:
                os.waitpid(self._pid, 0)  # (a spawned reaper is our child as well)
            except ChildProcessError:
                pass
            self._pid = None
        self.pgid = None


def _spawn_reaper(read_end: int, write_end: int, driver: int) -> int:
    """Start the reaper as a fresh interpreter (posix_spawn-like: no fork of the driver);
    it keeps the state locks the driver holds, as a forked one does."""
    import subprocess

    from ..locking import held_fds

    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from depio_like.executors.processes import _reaper; "
        "_reaper(int(sys.argv[2]), -1, int(sys.argv[3]))"
    )
    # Its own process group from the start (before exec: after it, only the reaper itself
    # may move it), so workers started at once can join the group.
    group: dict[str, Any] = (
        {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, package_parent, str(read_end), str(driver)],
        pass_fds=(read_end, *held_fds()),
        stdin=subprocess.DEVNULL,
        close_fds=True,
        **group,
    )
    proc.returncode = 0  # reaped by RunGroup.close (waitpid), not by Popen
    return proc.pid


def _reaper(read_end: int, write_end: int, driver: int) -> None:  # pragma: no cover
    """The reaper's whole life: wait until the driver is gone, kill the group, exit."""
    try:
        if write_end >= 0:
            os.close(write_end)
        os.setpgid(0, 0)
        for sig in (
            signal.SIGINT,
            signal.SIGTERM,
            signal.SIGHUP,
            signal.SIGQUIT,
            signal.SIGTSTP,
            signal.SIGTTIN,
            signal.SIGTTOU,
            signal.SIGPIPE,
        ):
            signal.signal(sig, signal.SIG_IGN)
        signal.signal(signal.SIGUSR1, lambda *_: _kill_group())
        # No parent check here: a driver that died while this interpreter started (a
        # spawned reaper takes a while) must still have its group killed, which the
        # end-of-file below does at once.
        die_with_parent(None, signal.SIGUSR1)
        # Only the driver holds the other end: end-of-file means it has ended.
        while os.read(read_end, 64):
            pass
    except BaseException:  # noqa: BLE001 - whatever happens, never return into the driver's code
        pass
    _kill_group()


def _kill_group() -> None:  # pragma: no cover - runs in the reaper
    try:
        os.killpg(0, signal.SIGKILL)  # the reaper dies with the group
    finally:
        os._exit(0)
