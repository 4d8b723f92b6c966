"""Ctrl-C during a run: the first press stops the run; the ones after it do not break the
stopping (records kept, table shown, exit 130, no traceback).

While ``guarded()`` is active (the main thread, where Ctrl-C still has Python's default
handler), the first SIGINT raises ``KeyboardInterrupt`` as usual; later ones are counted
instead, and ``again()`` lets waits cut short. It also tells a ``KeyboardInterrupt`` a task
raised itself (a failure of that task) from the user's Ctrl-C.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

_presses = 0
_active = False


def _handler(signum: int, frame: Any) -> None:
    global _presses
    _presses += 1
    if _presses == 1:
        raise KeyboardInterrupt
    try:
        sys.stderr.write("\nStill stopping: the running tasks are being ended ...\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


@contextlib.contextmanager
def guarded() -> Iterator[None]:
    """Install the run's Ctrl-C handling for the length of the block (once: a nested
    run inside a task keeps the outer one's)."""
    global _presses, _active
    if (
        _active
        or threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    _presses, _active = 0, True
    old = signal.signal(signal.SIGINT, _handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        _presses, _active = 0, False


def from_user() -> bool:
    """Whether a ``KeyboardInterrupt`` seen now comes from the user's Ctrl-C (True), or
    was raised by a task's own code (False). Where Ctrl-C cannot be told apart (our
    handler is not installed), a ``KeyboardInterrupt`` in the main thread counts as the
    user's; in another thread it cannot be (Python delivers it to the main thread only)."""
    if _active:
        return _presses > 0
    return threading.current_thread() is threading.main_thread()


def again() -> bool:
    """True once Ctrl-C was pressed a second time: stop waiting politely."""
    return _presses > 1
