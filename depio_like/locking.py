"""The state directory's lock: one run at a time, and never beside processes of an earlier one.

A run holds an exclusive ``flock`` on ``<state_dir>/lock``. Such a lock belongs to the open
file, which ``fork`` shares: the processes an executor forks to run tasks (inside
``inherited_by_forks()``) keep the lock held until the last of them has exited. If the
driver is killed, the next run therefore waits until its workers are gone as well; it
never runs beside them while they may still write. Every other fork (a task's
``multiprocessing.Pool``, a library's helper) closes its copy at once, so a process a task
leaves behind cannot keep the directory locked. The lock is never released with
``LOCK_UN``, which would release it for every holder: the driver only closes its copy.

A second run on the same directory from inside a task of the first (a nested pipeline)
would wait for itself forever; it is refused at once instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .errors import StateError, StateLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: filelock's portable lock
    fcntl = None  # type: ignore[assignment]

OWNER_SUFFIX = ".owner"
# How long a run told not to wait still waits for the processes of a run that has ended.
DEAD_OWNER_GRACE = 10.0

# state dir -> (pid, thread) of the run holding it in this process, or in the process we
# were forked from (the dict is copied by fork: a task in a worker sees its driver's entry).
_held: dict[str, tuple[int, int]] = {}
_fds: dict[str, int] = {}  # state dir -> our descriptor of its lock file
_keep_in_child = False  # set while an executor forks its own processes


def _after_fork_in_child() -> None:
    global _keep_in_child
    if _keep_in_child:
        _keep_in_child = False  # the worker's own forks (a task's pool) do not keep it
        return
    for d, fd in list(_fds.items()):
        with contextlib.suppress(OSError):
            os.close(fd)
        del _fds[d]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def held_fds() -> tuple[int, ...]:
    """Our descriptors of the state locks we hold (to hand to a spawned process that must
    keep them held while it lives)."""
    return tuple(_fds.values())


@contextlib.contextmanager
def inherited_by_forks() -> Iterator[None]:
    """Processes forked inside this block keep the state locks this process holds (an
    executor's workers), so a later run waits for them even if this process is killed."""
    global _keep_in_child
    _keep_in_child = True
    try:
        yield
    finally:
        _keep_in_child = False


class StateLock:
    """The exclusive lock of one state directory."""

    def __init__(self, directory: str, name: str = "lock") -> None:
        self.dir = directory
        self.path = os.path.join(directory, name)
        self._fallback: Any = None  # filelock's lock where flock does not exist

    def acquire(self, wait: bool, notify: Callable[[str], None]) -> None:
        held = _held.get(self.dir)
        if held is not None and (held[0] != os.getpid() or held[1] == threading.get_ident()):
            raise self._nested()
        if fcntl is None:  # pragma: no cover
            self._acquire_portable(wait, notify)
        else:
            self._acquire_flock(wait, notify)
        _held[self.dir] = (os.getpid(), threading.get_ident())
        try:
            with open(self.path + OWNER_SUFFIX, "w", encoding="utf-8") as f:
                f.write(
                    f"pid {os.getpid()} on {_host()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
                )
        except OSError:
            pass  # only informative

    def _acquire_flock(self, wait: bool, notify: Callable[[str], None]) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as e:
            raise StateError(
                f"cannot use the state directory {self.dir}: {e.strerror} "
                f"({self.path}); it must be writable by you"
            ) from None
        try:
            if not _try_lock(fd):
                self._wait(fd, wait, notify)
        except BaseException:
            os.close(fd)
            raise
        _fds[self.dir] = fd

    def _wait(self, fd: int, wait: bool, notify: Callable[[str], None]) -> None:
        pid, host, text = self.owner()
        if pid is not None and host == _host() and pid in _ancestors():
            raise self._nested()
        ended = pid is not None and host == _host() and not _alive(pid)
        if ended:
            notify(
                f"waiting for the processes of an earlier run on {self.dir} to exit "
                f"(its driver, pid {pid}, has ended) ..."
            )
        elif not wait:
            raise StateLockedError(
                f"the state directory {self.dir} is in use by another run "
                f"({text}); wait for it to finish, or run with waiting allowed"
            )
        else:
            notify(f"waiting for another run to release {self.dir} ({text}) ...")
        if wait:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return
        deadline = time.monotonic() + DEAD_OWNER_GRACE
        while not _try_lock(fd):
            if time.monotonic() > deadline:
                raise StateLockedError(
                    f"the state directory {self.dir} is still locked by processes of an "
                    f"earlier run whose driver (pid {pid}) has ended; find them with "
                    f"`fuser {self.path}` and stop them, or run with waiting allowed"
                )
            time.sleep(0.05)

    def _acquire_portable(
        self, wait: bool, notify: Callable[[str], None]
    ) -> None:  # pragma: no cover
        from filelock import FileLock, Timeout

        self._fallback = FileLock(self.path)
        try:
            self._fallback.acquire(timeout=0)
        except Timeout:
            if not wait:
                raise StateLockedError(
                    f"the state directory {self.dir} is in use by another run ({self.owner()[2]})"
                ) from None
            notify(f"waiting for another run to release {self.dir} ({self.owner()[2]}) ...")
            self._fallback.acquire()

    def release(self) -> None:
        _held.pop(self.dir, None)
        fd = _fds.pop(self.dir, None)
        if fd is not None:
            os.close(fd)  # not LOCK_UN: a process still holding it keeps it locked
        if self._fallback is not None:  # pragma: no cover
            self._fallback.release()
            self._fallback = None

    def owner(self) -> tuple[int | None, str, str]:
        """(pid, host, description) of the run that last took the lock."""
        try:
            with open(self.path + OWNER_SUFFIX, encoding="utf-8") as f:
                text = f.read().strip()
        except OSError:
            return None, "", "unknown holder"
        parts = text.split()
        try:
            return int(parts[1]), parts[3], text
        except (IndexError, ValueError):
            return None, "", text or "unknown holder"

    def _nested(self) -> StateError:
        return StateError(
            f"the state directory {self.dir} belongs to the run this code is part of: a task "
            "cannot run a pipeline on its own run's state directory (it would wait for itself "
            "forever); give the inner pipeline its own state_dir=..."
        )


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has ended too
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            stat = f.read()
        return stat[stat.rindex(")") + 2] != "Z"
    except (OSError, ValueError, IndexError):
        return True


def _ancestors() -> set[int]:
    """Process ids of this process's parent, its parent, and so on (Linux: all of them)."""
    found = {os.getppid()}
    pid = os.getppid()
    if not sys.platform.startswith("linux"):
        return found
    for _ in range(256):
        try:
            with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
                stat = f.read()
            pid = int(stat[stat.rindex(")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            break
        if pid <= 1:
            break
        found.add(pid)
    return found


def _host() -> str:
    # uname's node name is what gethostname() returns on POSIX, without importing socket
    # (5 ms of every run's start).
    uname = getattr(os, "uname", None)
    if uname is not None:
        return str(uname().nodename)
    import socket

    return socket.gethostname()
