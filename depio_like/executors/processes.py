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

import os
import signal
import sys
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


def die_with_parent(parent_pid: int, sig: int = signal.SIGKILL) -> None:
    """In a process just forked from ``parent_pid``: receive ``sig`` when the parent dies
    (Linux), and exit now if it died already (before the request could be made)."""
    prctl = _load_prctl()
    if prctl:
        prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)


def join_group(pgid: int | None) -> None:
    """Move this process into the run's group (done by both sides after a fork: no race)."""
    if pgid is None:
        return
    try:
        os.setpgid(0, pgid)
    except OSError:  # the group is gone (the reaper was killed): PDEATHSIG and EOF remain
        pass


class RunGroup:
    """The process group of one run's workers, with its reaper."""

    def __init__(self) -> None:
        self.pgid: int | None = None
        self._pid: int | None = None
        self._alive_fd: int | None = None  # the driver's end of the reaper's pipe

    def start(self) -> None:
        from ..locking import inherited_by_forks

        _load_prctl()
        read_end, write_end = os.pipe()
        driver = os.getpid()
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
                os.waitpid(self._pid, 0)
            except ChildProcessError:
                pass
            self._pid = None
        self.pgid = None


def _reaper(read_end: int, write_end: int, driver: int) -> None:  # pragma: no cover
    """The reaper's whole life: wait until the driver is gone, kill the group, exit."""
    try:
        os.close(write_end)
        os.setpgid(0, 0)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                    signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_IGN)
        signal.signal(signal.SIGUSR1, lambda *_: _kill_group())
        die_with_parent(driver, signal.SIGUSR1)
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
