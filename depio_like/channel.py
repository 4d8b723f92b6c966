"""The object channel: a task's return value handed to the tasks that take it as an argument.

Passing a ``Task`` as an argument of another task makes an edge; at run time the argument
is replaced by the first task's return value. Within one process the very object is handed
over. Between processes it travels as a file: pickle protocol 5, with large buffers (numpy
arrays, bytes-like data) written out of band so they are copied once, not re-pickled.
"""

from __future__ import annotations

import os
import pickle
import struct
from dataclasses import dataclass
from typing import Any, Callable, Mapping

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
    """Tasks in ``value``: itself, or inside lists, tuples and dict values."""
    found: list[Any] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if is_task(v):
            found.append(v)
        elif isinstance(v, (list, tuple)):
            stack.extend(reversed(v))
        elif isinstance(v, dict):
            stack.extend(reversed(list(v.values())))
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
    data = view[offset:offset + n_data]
    offset += n_data
    bufs = []
    for size in sizes:
        bufs.append(view[offset:offset + size])  # slices of one buffer: no copies
        offset += size
    return pickle.loads(data, buffers=bufs)


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
