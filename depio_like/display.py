"""What the user sees: the status table, live on a terminal, plain lines in logs and CI."""

from __future__ import annotations

import heapq
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TextIO

from .paths import show_path
from .status import Status, count

_HEADERS = ("ID", "Name", "Status", "Task Deps", "Path Deps", "Products")
_ORDER = list(Status)


# Characters that move the cursor, recolour or clear the screen, or reorder text (C0 and
# C1 controls, DEL, line/paragraph separators, bidirectional overrides).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\x1b"}


def printable(text: str, keep: str = "") -> str:
    """``text`` with control characters shown escaped (``\\x1b``, ``\\n``...), so that a
    task name or a path cannot redraw, recolour or clear the terminal; those in ``keep``
    stay as they are."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: m.group() if m.group() in keep else _escape(m.group()), text)


def _escape(c: str) -> str:
    named = _NAMED.get(c)
    if named:
        return named
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def _last_line(text: str | None) -> str:
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "no error message"


def _paths(paths: Sequence[str], limit: int = 3) -> str:
    shown = [printable(show_path(p)) for p in paths[:limit]]
    more = f" (+{len(paths) - limit})" if len(paths) > limit else ""
    return ", ".join(shown) + more


class Display:
    """Renders the run. On a TTY the table is redrawn in place at most every ``interval``
    seconds; otherwise one line per task that finishes or fails, and the table once at the end.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        tty: bool | None = None,
        quiet: bool = False,
        max_rows: int = 40,
        interval: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        hide_ok: bool = False,
    ) -> None:
        self.stream = stream if stream is not None else sys.stdout
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        # On a terminal, write to a copy of it made on the first write: while a task runs in
        # this process its output goes to its log (fd 1 redirected), yet its progress must
        # reach the table.
        self._own: TextIO | None = None
        self._wants_own = tty and stream is None
        self.quiet = quiet
        self.max_rows = max_rows
        self.interval = interval
        self._clock = clock
        self._drawn_lines = 0
        self._last_draw = -1e9
        self._dirty = False
        self.preview = False  # a dry run: the summary says nothing ran
        self.hide_ok = hide_ok  # leave FINISHED / SKIPPED rows out of the table (depio's option)
        self._broken = False  # the reader went away (`| head`): write nothing more

    # -- the run tells us ----------------------------------------------------------------
    def start(
        self,
        tasks: Sequence,
        status: Sequence[Status],
        deps: Sequence[Sequence[int]],
        columns: Sequence[str] = (),
        cells: Callable[[int], Sequence[str]] | None = None,
    ) -> None:
        self._tasks = tasks
        self._status = status
        self._deps = deps
        self._columns = tuple(columns)
        self._cells = cells or (lambda i: ("",) * len(self._columns))
        self._progress: dict[int, str] = {}
        # How many configurations there are (0: no sweep); a task in all of them says so.
        self._variants = len({v for t in tasks for v in getattr(t, "variants", ())})
        self._errors: dict[int, str] = {}
        self._dirty = True
        # Running counts (``track``), so a frame of a big run costs its rows, not a pass
        # over every task.
        self._seen = seen = list(status)
        # A plain dict with every status (a Counter's item access costs twice as much).
        self._counts = dict.fromkeys(Status, 0)
        self._counts.update(count(seen))
        self._running: set[int] = (
            {i for i, s in enumerate(seen) if s is Status.RUNNING}
            if self._counts[Status.RUNNING]
            else set()
        )
        self._failed: set[int] = (
            {i for i, s in enumerate(seen) if s is Status.FAILED}
            if self._counts[Status.FAILED]
            else set()
        )

    def progress(self, i: int, snapshot: dict) -> None:
        """Task ``i`` reported progress; shown on a terminal only."""
        from .progress import describe

        if self.tty:
            self._progress[i] = describe(snapshot)
            self._dirty = True

    def track(self, i: int, status: Status) -> None:
        """Task ``i`` now has ``status`` (every change, in a dry run too): keeps the counts."""
        old = self._seen[i]
        if old is status:
            return
        self._seen[i] = status
        counts = self._counts
        counts[old] -= 1
        counts[status] += 1
        if old is Status.RUNNING:
            self._running.discard(i)
        elif old is Status.FAILED:
            self._failed.discard(i)
        if status is Status.RUNNING:
            self._running.add(i)
        elif status is Status.FAILED:
            self._failed.add(i)
        self._dirty = True

    def track_all(self, indices: Sequence[int], status: Status) -> None:
        """``track`` for each of ``indices``, at the cost of one when none was RUNNING or
        FAILED and ``status`` is neither (tasks becoming PENDING or SKIPPED)."""
        if status is Status.RUNNING or status is Status.FAILED:
            for i in indices:
                self.track(i, status)
            return
        seen, counts = self._seen, self._counts
        prev, k = None, 0  # runs of the same old status, counted at once
        for i in indices:
            old = seen[i]
            if old is status:
                continue
            if old is Status.RUNNING or old is Status.FAILED:
                self.track(i, status)
                continue
            seen[i] = status
            if old is not prev:
                if prev is not None:
                    counts[prev] -= k
                    counts[status] += k
                prev, k = old, 0
            k += 1
        if prev is not None:
            counts[prev] -= k
            counts[status] += k
        self._dirty = True

    def running(self, i: int) -> None:
        """``track(i, RUNNING)``: every task run comes here (from PENDING, as a rule)."""
        seen = self._seen
        old = seen[i]
        if old is Status.RUNNING:
            return
        if old is Status.FAILED:  # a retry
            self.track(i, Status.RUNNING)
            return
        seen[i] = Status.RUNNING
        counts = self._counts
        counts[old] -= 1
        counts[Status.RUNNING] += 1
        self._running.add(i)
        self._dirty = True

    def finished(self, i: int, duration: float | None) -> None:
        """``track`` and ``changed`` for task ``i`` now FINISHED, in one call (every task run
        comes here)."""
        seen = self._seen
        if seen[i] is Status.RUNNING:  # what track does then
            seen[i] = Status.FINISHED
            counts = self._counts
            counts[Status.RUNNING] -= 1
            counts[Status.FINISHED] += 1
            self._running.discard(i)
        else:
            self.track(i, Status.FINISHED)
        self._dirty = True
        if self.quiet or self.tty:
            return
        t = self._tasks[i]
        label = f"[{t.id}] {t.name!r}" if t.id is not None else t.label  # t.label, inlined
        if duration is None:
            self._write(f"FINISHED  {label}\n")
        elif 0.0 < duration < 0.005:  # what :.2f makes of it (short tasks), without dtoa
            self._write(f"FINISHED  {label} (0.00 s)\n")
        else:
            self._write(f"FINISHED  {label} ({duration:.2f} s)\n")

    def changed(
        self,
        i: int,
        status: Status,
        *,
        duration: float | None = None,
        error: str | None = None,
        cause: int | None = None,
    ) -> None:
        """Task ``i`` now has ``status``."""
        if error:
            error = printable(error, keep="\n\t")
            self._errors[i] = error
        self._dirty = True
        if self.quiet or self.tty:
            return
        t = self._tasks[i]
        if status is Status.FINISHED:
            took = f" ({duration:.2f} s)" if duration is not None else ""
            label = f"[{t.id}] {t.name!r}" if t.id is not None else t.label  # t.label, inlined
            self._write(f"FINISHED  {label}{took}\n")
        elif status is Status.FAILED:
            self._write(f"FAILED    {t.label}\n{_indent(error or '')}\n")
        elif status is Status.DEPFAILED:
            because = f" (because {self._tasks[cause].label} failed)" if cause is not None else ""
            self._write(f"DEPFAILED {t.label}{because}\n")

    def explain(self, i: int, verdict: str, reasons: str) -> None:
        """One line saying why task ``i`` runs (or would run)."""
        if not self.quiet:
            self.note(f"{verdict:<9} {self._tasks[i].label}: {printable(reasons)}")

    def retry(self, i: int, attempt: int, attempts: int, error: str | None) -> None:
        """Task ``i`` failed and runs again; the last line of its error says why."""
        self.note(
            f"RETRY     {self._tasks[i].label} (attempt {attempt} of {attempts}) "
            f"after: {_last_line(error)}"
        )

    def output(self, i: int, text: str) -> None:
        """What task ``i`` printed, in one block: never interleaved with another's."""
        if text:
            self.note(f"--- output of {self._tasks[i].label} ---\n{text}")

    def table(self, which: Sequence[int]) -> tuple[list[str], list[list[str]]]:
        """Headers and the rows of tasks ``which``, as in the full table (no progress)."""
        shown, self._progress = self._progress, {}
        try:
            return list(self._headers()), [self._row(i) for i in which]
        finally:
            self._progress = shown

    def note(self, text: str) -> None:
        """A message for the user, outside the table."""
        if self.tty and self._drawn_lines:
            self._erase()
        self._write(text.rstrip("\n") + "\n")
        self._dirty = True

    def deadline(self) -> float | None:
        """Seconds until the next redraw is due, for the driver's wait; None: no need."""
        if not self.tty or self.quiet:
            return None
        return max(0.0, self._last_draw + self.interval - self._clock())

    def tick(self) -> None:
        """Redraw if something changed and the last redraw is old enough."""
        if (
            self.tty
            and not self.quiet
            and self._dirty
            and self._clock() - self._last_draw >= self.interval
        ):
            self._draw(self._frame())

    def finish(self, interrupted: bool = False) -> None:
        """The final table and a summary; failed tasks' errors on a TTY (logs had them)."""
        if self.quiet:
            return
        frame = self._frame()
        if self.tty:
            self._draw(frame)
            for i, err in self._errors.items():
                self._write(f"\nFAILED {self._tasks[i].label}:\n{_indent(err)}\n")
        else:
            self._write(frame + "\n")
        self._write(self._summary(interrupted) + "\n")

    # -- rendering -----------------------------------------------------------------------
    def _row(self, i: int) -> list[str]:
        t = self._tasks[i]
        row = [str(t.id), printable(t.name), self._status[i].value]
        if self._progress:  # next to the status: it is what one watches
            row.append(self._progress.get(i, "") if self._status[i] is Status.RUNNING else "")
        row += [
            ", ".join(str(self._tasks[j].id) for j in self._deps[i]),
            _paths(t.dependencies),
            _paths(t.products),
            *self._cells(i),
        ]
        if self._variants:
            row.append(
                printable(", ".join(t.variants)) if len(t.variants) < self._variants else "all"
            )
        return row

    def _headers(self) -> tuple[str, ...]:
        progress = ("Progress",) if self._progress else ()
        variant = ("Variant",) if self._variants else ()
        return _HEADERS[:3] + progress + _HEADERS[3:] + self._columns + variant

    def _tabulate(self, rows: list[list[str]]) -> str:
        """The table; on a terminal, long cells are cut until it fits its width."""
        from tabulate import tabulate

        headers = self._headers()
        text = tabulate(rows, headers=headers, disable_numparse=True)
        if not self.tty:
            return text
        width = _terminal_size().columns - 1
        shrinkable = [
            k
            for k, h in enumerate(headers)
            if h in ("Path Deps", "Products", "Name", "Task Deps", "Variant")
        ]
        for limit in (40, 28, 20, 14, 10, 6):
            if max(map(len, text.splitlines()), default=0) <= width:
                break
            rows = [
                [_cut(c, limit) if k in shrinkable else c for k, c in enumerate(r)] for r in rows
            ]
            text = tabulate(rows, headers=headers, disable_numparse=True)
        return text

    def _frame(self) -> str:
        n = len(self._tasks)
        limit = self.max_rows
        if self.tty:  # a frame taller than the terminal cannot be redrawn in place
            limit = max(1, min(limit, _terminal_size().lines - 5))
        if n <= limit:
            ended_well = (Status.FINISHED, Status.SKIPPED)  # WOULD-RUN (a dry run) stays
            shown = [i for i in range(n) if not (self.hide_ok and self._status[i] in ended_well)]
            hidden = n - len(shown)
            note = f"\n({hidden} finished or up to date, not shown)" if hidden else ""
            return (
                "Tasks:\n" + (self._tabulate([self._row(i) for i in shown]) if shown else "") + note
            )
        # Too many to read: counts per status, then the rows that need attention (running
        # first, then failed, each in task order), from the counts ``track`` keeps.
        counts = self._counts
        head = f"{n} tasks: " + ", ".join(f"{counts[s]} {s.value}" for s in _ORDER if counts[s])
        room = max(0, limit - 2)
        wanted = heapq.nsmallest(room, self._running)
        if len(wanted) < room:
            wanted += heapq.nsmallest(room - len(wanted), self._failed)
        rows = [self._row(i) for i in wanted]
        left = len(self._running) + len(self._failed) - len(rows)
        tail = f"\n... and {left} more running or failed" if left > 0 else ""
        return head + ("\n" + self._tabulate(rows) if rows else "") + tail

    def _summary(self, interrupted: bool) -> str:
        counts = Counter(self._status)
        if counts[Status.WOULD_RUN] or (
            counts[Status.SKIPPED] == len(self._tasks) and self.preview
        ):
            return (
                f"Dry run: {counts[Status.WOULD_RUN]} task(s) would run, "
                f"{counts[Status.SKIPPED]} up to date; nothing was run or written."
            )
        bad = counts[Status.FAILED] + counts[Status.DEPFAILED] + counts[Status.CANCELLED]
        if interrupted:
            return (
                f"Interrupted: {counts[Status.FINISHED]} finished, "
                f"{counts[Status.CANCELLED]} cancelled; finished work is recorded.\n"
                f"Exit code 130: end the script with exit(pipeline.run()) to pass it on."
            )
        if not bad:
            n = len(self._tasks)
            done = "The 1 task is done" if n == 1 else f"All {n} tasks done"
            return f"{done} ({counts[Status.FINISHED]} ran, {counts[Status.SKIPPED]} up to date)."
        failed = [self._tasks[i].label for i, s in enumerate(self._status) if s is Status.FAILED]
        names = ", ".join(failed[:10]) + (" ..." if len(failed) > 10 else "")
        # A script ending in a bare pipeline.run() (as depio's did) would exit 0: say so.
        return (
            f"{counts[Status.FAILED]} failed ({names}), {counts[Status.DEPFAILED]} not run "
            f"because of them, {counts[Status.FINISHED]} ran, {counts[Status.SKIPPED]} up to date.\n"
            f"Exit code 1: end the script with exit(pipeline.run()) to pass it on."
        )

    def _draw(self, frame: str) -> None:
        width = _terminal_size().columns
        lines = [ln[: width - 1] for ln in frame.split("\n")]
        out = (
            (f"\x1b[{self._drawn_lines}F\x1b[J" if self._drawn_lines else "")
            + "\n".join(lines)
            + "\n"
        )
        self._write(out)
        self._drawn_lines = len(lines)
        self._last_draw = self._clock()
        self._dirty = False

    def _erase(self) -> None:
        self._write(f"\x1b[{self._drawn_lines}F\x1b[J")
        self._drawn_lines = 0

    def _write(self, text: str) -> None:
        if self._broken:
            return
        try:
            if self._wants_own or self._own is not None:
                self._write_now(text)
            else:  # a plain line (not a terminal): what _write_now does then
                stream = self.stream
                stream.write(text)
                stream.flush()
        except BrokenPipeError:
            # `python script.py | head`: the reader is gone; the run goes on (and is
            # recorded) without a table. Point stdout at /dev/null so the interpreter's
            # final flush does not complain either.
            self._broken = True
            if self.stream is sys.stdout or self._own is not None:
                try:
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, sys.stdout.fileno())
                    os.close(devnull)
                except (OSError, ValueError, AttributeError):
                    pass
                from .executors.base import stdio_replaced

                stdio_replaced()  # a task run here must not get the old stdout back after it

    def _write_now(self, text: str) -> None:
        if self._wants_own:
            self._wants_own = False
            try:
                self._own = os.fdopen(
                    os.dup(sys.stdout.fileno()), "w", encoding="utf-8", errors="replace"
                )
            except (AttributeError, OSError, ValueError):
                self._own = None
        if self._own is not None:
            try:  # what the script printed before comes first
                sys.stdout.flush()
            except (OSError, ValueError):
                pass
            self._own.write(text)
            self._own.flush()
            return
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self._own is not None:
            try:
                self._own.close()
            except OSError:  # a broken pipe: nothing left to say
                pass
            self._own = None


def _terminal_size() -> os.terminal_size:
    """The terminal's size (80x24 when unknown); shutil only on a terminal, where it is
    asked: a run in a log does not pay its import."""
    import shutil

    return shutil.get_terminal_size((80, 24))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _indent(text: str) -> str:
    return "\n".join("    " + ln for ln in text.splitlines())
