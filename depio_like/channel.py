"""The object channel: a task's return value handed to the tasks that take it as an argument.

Passing a ``Task`` as an argument of another task makes an edge; at run time the argument
is replaced by the first task's return value. Within one process the very object is handed
over. Between processes it travels as a file: pickle protocol 5, with large buffers (numpy
arrays, bytes-like data) written out of band so they are copied once, not re-pickled.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .fs import atomic_write

_MAGIC = b"DLV1"


@dataclass(frozen=True)
class ValueSlot:
    """Stands, in a task's arguments, for the return value of the task with id ``task_id``."""

    task_id: int


def is_slot(v: Any) -> bool:
    return type(v) is ValueSlot


@dataclass(frozen=True)
class ValueFile:
    """A value written by ``dump_value``, to be read where it is needed."""

    path: str
    size: int


def find_tasks(value: Any, is_task: Callable[[Any], bool]) -> list[Any]:
    """Tasks in ``value``: itself, or inside lists, tuples and dict values (each container
    looked into once: a list that holds itself is walked, not followed for ever)."""
    found: list[Any] = []
    stack = [value]
    seen: set[int] = set()
    while stack:
        v = stack.pop()
        if is_task(v):
            found.append(v)
        elif isinstance(v, (list, tuple, dict)):
            if id(v) in seen:
                continue
            seen.add(id(v))
            stack.extend(reversed(v if not isinstance(v, dict) else list(v.values())))
    return found


def substitute(value: Any, lookup: Callable[[Any], Any], is_task: Callable[[Any], bool]) -> Any:
    """``value`` with every task in it replaced by ``lookup(task)``; containers are rebuilt."""
    if is_task(value):
        return lookup(value)
    if isinstance(value, list):
        return [substitute(v, lookup, is_task) for v in value]
    if isinstance(value, tuple):
        items = [substitute(v, lookup, is_task) for v in value]
        return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
    if isinstance(value, dict):
        return {k: substitute(v, lookup, is_task) for k, v in value.items()}
    return value


def dump_value(value: Any, path: str) -> ValueFile:
    """Write ``value`` to ``path`` (atomically); raise if it cannot be pickled."""
    import pickle  # values cross processes in few runs: not every run pays the imports

    try:
        import cloudpickle as _pickler  # values of classes defined in a script travel too
    except ImportError:  # pragma: no cover
        _pickler = pickle
    buffers: list[pickle.PickleBuffer] = []
    data = _pickler.dumps(value, protocol=5, buffer_callback=buffers.append)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with atomic_write(path, text=False) as f:  # a full disk leaves no half value behind
        raws = [b.raw() for b in buffers]
        f.write(_MAGIC + struct.pack("<QI", len(data), len(raws)))
        f.write(struct.pack(f"<{len(raws)}Q", *(r.nbytes for r in raws)))
        f.write(data)
        for r in raws:
            f.write(r)
    return ValueFile(path, os.path.getsize(path))


def load_value(ref: ValueFile) -> Any:
    """Read a value written by ``dump_value``."""
    import pickle  # as in dump_value: only runs that hand values across processes need it

    with open(ref.path, "rb") as f:
        blob = bytearray(os.fstat(f.fileno()).st_size)
        f.readinto(blob)
    view = memoryview(blob)
    if bytes(view[:4]) != _MAGIC:
        raise ValueError(f"{ref.path} is not a depio_like value file")
    n_data, n_buf = struct.unpack_from("<QI", view, 4)
    offset = 4 + 12
    sizes = struct.unpack_from(f"<{n_buf}Q", view, offset)
    offset += 8 * n_buf
    data = view[offset : offset + n_data]
    offset += n_data
    bufs = []
    for size in sizes:
        bufs.append(view[offset : offset + size])  # slices of one buffer: no copies
        offset += size
    return pickle.loads(data, buffers=bufs)


def drop_value(v: Any) -> None:
    """Release a value nobody will take: a value file is removed."""
    if isinstance(v, ValueFile):
        try:
            os.remove(v.path)
        except OSError:
            pass


def fill(args: Any, values: Mapping[int, Any]) -> Any:
    """``args`` with each ``ValueSlot`` replaced by its value (read from its file if need be);
    ``values`` is keyed by task id."""
    loaded: dict[int, Any] = {}

    def lookup(slot: ValueSlot) -> Any:
        if slot.task_id not in loaded:
            v = values[slot.task_id]
            loaded[slot.task_id] = load_value(v) if isinstance(v, ValueFile) else v
        return loaded[slot.task_id]

    return substitute(args, lookup, is_slot)


class ValueStore:
    """The return values handed between jobs in one run, each kept while a task may still
    take it.

    A value is kept until every task taking it (outside the producer's job) is settled: it
    ran, or can never run, or was skipped and can no longer be reopened. A skipped task may
    be run again when its own value is needed, and then needs its inputs again: it is
    settled once every task taking its value is. So no producer runs twice in one run.
    ``drop(value)`` releases a value nobody will take (e.g. removes its file).

    Value files go under ``area``, a directory of this run's own (``open_area``): a file
    the run never heard of (its task's report was lost to a Ctrl-C or a dead worker, a
    half-written one) goes with the directory when the run ends (``close``).
    """

    def __init__(
        self,
        consumers: Mapping[int, Sequence[int]],
        producers: Sequence[Sequence[int]],
        drop: Callable[[Any], None],
        units: Sequence[Sequence[int]] = (),
        area: str | None = None,
    ) -> None:
        self.area = area
        self._producers = producers  # task -> producers whose values it takes
        self._consumers = consumers
        self._pending = {p: set(cs) for p, cs in consumers.items() if cs}
        self._values: dict[int, Any] = {}
        self._skipped: set[int] = set()  # skipped, not settled yet
        self._drop = drop
        # A chain (one job) is reopened as a whole, for the value of its last task: its
        # other tasks are settled only when that one is.
        self._tail: dict[int, int] = {}
        self._before_tail: dict[int, list[int]] = {}
        for unit in units:
            if len(unit) > 1:
                for m in unit[:-1]:
                    self._tail[m] = unit[-1]
                self._before_tail[unit[-1]] = list(unit[:-1])

    @classmethod
    def between_jobs(
        cls,
        values: Sequence[Sequence[int]],
        unit_of: Sequence[int],
        units: Sequence[Sequence[int]],
        top: str | None = None,
    ) -> ValueStore:
        """The store of a run whose task ``i`` takes the values of tasks ``values[i]`` and
        runs in job ``unit_of[i]``: only values crossing from one job to another are kept
        (within a job the very object is handed over), and dropped with ``drop_value``.
        ``top``: where runs keep value files (each its own directory in it); None: the run
        writes none (a dry run)."""
        outside = [
            tuple(p for p in ps if unit_of[p] != unit_of[i]) if ps else ps
            for i, ps in enumerate(values)
        ]
        consumers: dict[int, list[int]] = {}
        for c, ps in enumerate(outside):
            for p in ps:
                consumers.setdefault(p, []).append(c)
        area = (
            os.path.join(top, f"{os.getpid()}-{os.urandom(4).hex()}") if top is not None else None
        )
        return cls(consumers, outside, drop_value, units, area)

    def open_area(self, keep_earlier: bool) -> None:
        """Before the run: remove what earlier runs left beside this run's area (a driver
        killed before it could), unless ``keep_earlier``: jobs of an earlier run may still
        bring results that name their value files (an executor that re-attaches)."""
        if self.area is None:
            return
        top = os.path.dirname(self.area)
        try:
            names = os.listdir(top)
        except OSError:  # none yet
            return
        for name in names:
            path = os.path.join(top, name)
            if not keep_earlier:
                _remove(path)
            elif os.path.isdir(path) and not os.path.islink(path):
                try:
                    os.rmdir(path)  # an emptied one only
                except OSError:
                    pass

    def takers(self, p: int) -> Sequence[int]:
        """The tasks outside ``p``'s job that take its value."""
        return self._consumers.get(p, ())

    def wanted(self, p: int) -> bool:
        """Whether a task still waits for the value of ``p``."""
        return bool(self._pending.get(p))

    def has(self, p: int) -> bool:
        return p in self._values

    def put(self, p: int, value: Any) -> None:
        """Task ``p`` ended with ``value``: kept while a task may take it, else dropped."""
        if self.wanted(p) and p not in self._values:
            self._values[p] = value
        else:
            self._drop(value)

    def refuse(self, value: Any) -> None:
        """A value that is not to be handed on (its task failed after all, or reported
        twice): dropped at once."""
        self._drop(value)

    def inputs(self, members: Sequence[int]) -> dict[int, Any]:
        """The values a job of these tasks takes from outside it, by producer."""
        if len(members) == 1:  # the usual job: one task, whose producers are all outside
            return {p: self._values[p] for p in self._producers[members[0]]}
        inside = set(members)
        return {p: self._values[p] for m in members for p in self._producers[m] if p not in inside}

    def ended(self, i: int, ran_or_never_will: bool) -> None:
        """Task ``i`` reached a final status: it ran (or can never run), or was skipped."""
        if not self._pending:  # no value waits for a taker (most runs): nothing to settle
            return
        if ran_or_never_will or not self.wanted(self._tail.get(i, i)):
            self._settle(i)
        else:
            self._skipped.add(i)

    def ended_all(self, skipped: Iterable[int]) -> None:
        """``ended(i, False)`` for each of ``skipped``."""
        if self._pending:  # else nothing to settle (most runs)
            for i in skipped:
                self.ended(i, False)

    def reopened_all(self, indices: Iterable[int]) -> None:
        """``reopened`` for each of ``indices``."""
        if self._skipped:
            self._skipped.difference_update(indices)

    def reopened(self, i: int) -> None:
        """Skipped task ``i`` runs after all: it settles when it ends."""
        self._skipped.discard(i)

    def _settle(self, i: int) -> None:
        stack = [i]
        while stack:
            x = stack.pop()
            self._skipped.discard(x)
            # Settled with it: the skipped tasks of its chain, which only it could reopen.
            stack.extend(q for q in self._before_tail.get(x, ()) if q in self._skipped)
            for p in self._producers[x]:
                pending = self._pending.get(p)
                if not pending or x not in pending:
                    continue
                pending.discard(x)
                if not pending:
                    self._release(p)
                    if p in self._skipped:  # nothing can reopen it now
                        stack.append(p)

    def _release(self, p: int) -> None:
        if p in self._values:
            self._drop(self._values.pop(p))

    def close(self, keep_area: bool = False) -> None:
        """The run is over: release every value still kept, and remove the run's area
        unless ``keep_area``: jobs of the run outlive it, and the next run may re-attach
        to them and take their values."""
        for p in list(self._values):
            self._release(p)
        if self.area is not None and not keep_area:
            _remove(self.area)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        import shutil

        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.remove(path)
        except OSError:
            pass
