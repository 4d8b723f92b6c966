"""The task graph: edges from producers to consumers and explicit ``depends_on``, validated.

Kept as plain index lists (10,000-task pipelines walk it often); ``to_networkx`` gives the
same graph as a ``networkx.DiGraph`` for inspection and export.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from stat import S_ISREG as _S_ISREG
from typing import TYPE_CHECKING, NamedTuple

from .channel import ValueSlot, substitute
from .errors import (
    CycleError,
    DuplicateProductError,
    MissingDependencyError,
    PathError,
    UnknownTaskError,
)
from .fs import Disk, FileStat, PathProblem
from .paths import show_path as _show

if TYPE_CHECKING:  # pragma: no cover
    import networkx

    from .task import CallIndex, Task

_MAX_LISTED = 20


@dataclass
class TaskGraph:
    tasks: Sequence[Task]
    upstream: list[tuple[int, ...]]  # per task index: indices it waits for
    downstream: list[list[int]]  # per task index: indices waiting for it
    explicit: list[tuple[int, ...]]  # per task index: upstream through depends_on or values
    producer: dict[str, int]  # product path -> task index
    order: list[int]  # a topological order
    values: list[tuple[int, ...]] = field(default_factory=list)  # per task: value producers
    units: list[tuple[int, ...]] = field(default_factory=list)  # chains run as one job
    unit_of: list[int] = field(default_factory=list)  # task index -> unit index
    # Stat results of the dependencies no task produces, taken while checking the graph:
    # the run's hasher starts from them instead of looking again.
    stats: dict[str, FileStat] = field(default_factory=dict)

    def value_consumers(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for i, producers in enumerate(self.values):
            for j in producers:
                out.setdefault(j, []).append(i)
        return out

    def needed_for(self, paths: Sequence[str]) -> list[int]:
        """Indices of the tasks that must run to make ``paths``: their producers and
        everything upstream of those. A path no task produces is an error, unless it exists."""
        from .errors import GraphError

        wanted: set[int] = set()
        stack = []
        for p in paths:
            j = self.producer.get(p)
            if j is None:  # inside a directory a task produces
                j = _owner(p.rpartition("/")[0], self.producer, {})
                j = None if j < 0 else j
            if j is None:
                raise GraphError(f"--target {_show(p)}: no task of this pipeline produces it")
            stack.append(j)
        while stack:
            j = stack.pop()
            if j not in wanted:
                wanted.add(j)
                stack.extend(self.upstream[j])
        return sorted(wanted)

    def subgraph(self, keep: Sequence[int]) -> TaskGraph:
        """The graph of the tasks ``keep`` (closed under upstream), indices renumbered."""
        new = {old: k for k, old in enumerate(keep)}
        tasks = [self.tasks[o] for o in keep]
        upstream = [tuple(new[u] for u in self.upstream[o]) for o in keep]
        explicit = [tuple(new[u] for u in self.explicit[o]) for o in keep]
        values = [tuple(new[u] for u in self.values[o]) for o in keep]
        downstream: list[list[int]] = [[] for _ in keep]
        for i, ups in enumerate(upstream):
            for u in ups:
                downstream[u].append(i)
        producer = {p: new[i] for p, i in self.producer.items() if i in new}
        order = [new[o] for o in self.order if o in new]
        units, unit_of = _units(order, upstream, downstream, values)
        return TaskGraph(
            tasks,
            upstream,
            downstream,
            explicit,
            producer,
            order,
            values,
            units,
            unit_of,
            self.stats,
        )

    def to_networkx(self) -> networkx.DiGraph:
        """Tasks as nodes (their ids), an edge from each task to the tasks that wait for it."""
        import networkx as nx

        g: nx.DiGraph[int | None] = nx.DiGraph()  # ids: every task here was added
        for t in self.tasks:
            g.add_node(t.id, name=t.name, status=str(t.status), task=t)
        for i, ups in enumerate(self.upstream):
            for u in ups:
                g.add_edge(self.tasks[u].id, self.tasks[i].id)
        return g


def build_graph(
    tasks: Sequence[Task], producer: dict[str, int], survivors: CallIndex, disk: Disk
) -> TaskGraph:
    """Connect ``tasks`` (index = id - 1) and check the graph can run; raise a GraphError if not.

    Paths are nodes and containment is an edge: a task waits for the producer of each of
    its dependencies, for the task producing a directory one of them is inside, and, for
    a dependency that is a directory, for every task producing something inside it.
    """
    n = len(tasks)
    upstream: list[tuple[int, ...]] = []
    explicit: list[tuple[int, ...]] = []
    values: list[tuple[int, ...]] = []
    missing: list[str] = []
    self_loops: list[str] = []
    nested: list[str] = []
    unusable: list[str] = []
    stats: dict[str, FileStat] = {}
    owners: dict[str, int] = {}  # directory -> task producing it or a directory above it
    inside = _Inside(producer)
    external: dict[str, _External] = {}  # what was found of each path no task makes
    readable = getattr(disk, "readable", None)
    realpath = getattr(disk, "realpath", None)
    for i, t in enumerate(tasks):
        for p in t.products:
            d = p.rpartition("/")[0]
            j = owners.get(d)
            if j is None:
                j = _owner(d, producer, owners)
            if j >= 0 and j != i:
                outer = _nearest_product(p, producer, j)
                nested.append(
                    f"  {_show(p)}, a product of task {t.label}, is inside "
                    f"{_show(outer)}, a product of task {tasks[j].label}"
                )
        # _depends_on, not depends_on: that makes the list a task without one does not have.
        if not t.dependencies and not t._depends_on and not t.value_inputs:
            # Waits for nothing (most of a wide run): no dictionaries, shared empty tuples.
            upstream.append(())
            explicit.append(())
            values.append(())
            continue
        ups: dict[int, None] = {}
        for path in t.dependencies:
            j = producer.get(path)
            if j is not None:
                if j == i:
                    self_loops.append(
                        f"  task {t.label} both depends on and produces {_show(path)}"
                    )
                else:
                    ups[j] = None
                continue
            d = path.rpartition("/")[0]
            j = owners.get(d)
            if j is None:
                j = _owner(d, producer, owners)
            if j >= 0:  # inside a directory a task produces
                if j == i:
                    self_loops.append(
                        f"  task {t.label} depends on {_show(path)}, inside "
                        f"{_show(_nearest_product(path, producer, i))}, which it produces"
                    )
                else:
                    ups[j] = None
                continue
            # Made by no task: it must be there, or be a directory tasks write into. Looked
            # at once per path (a sweep's 100,000 tasks reading one config: one stat).
            ext = external.get(path)
            if ext is None:
                ext = external[path] = _external(path, disk, inside, readable, realpath)
                if ext.stat is not None and ext.problem is None:
                    stats[path] = ext.stat
            if ext.problem is not None:
                unusable.append(f"  task {t.label} depends on {_show(path)}{ext.problem}")
                continue
            st = ext.stat
            if st is None or st.is_dir:
                makers = ext.makers
                if i in makers:
                    real = ext.real
                    own = next(
                        p
                        for p in t.products
                        if p.startswith(path + "/") or p.startswith(real + "/")
                    )
                    self_loops.append(
                        f"  task {t.label} depends on the directory {_show(path)}, which "
                        f"holds its own product {_show(own)}: each run would change its input"
                    )
                    continue
                for j in makers:
                    ups[j] = None
                if st is None and not makers:
                    missing.append(
                        f"  task {t.label} depends on {_show(path)}, which no task "
                        f"produces and which does not exist{ext.dangling}"
                    )
        ex: dict[int, None] = {}
        for dep in t._depends_on or ():
            j = _index_of(dep, survivors, t, "depends on")
            if j == i:
                self_loops.append(f"  task {t.label} lists itself in depends_on")
            else:
                ex[j] = None
                ups[j] = None
        vals: dict[int, None] = {}
        if t.value_inputs:
            slots = {
                id(v): ValueSlot(_index_of(v, survivors, t, "takes the value of") + 1)
                for v in t.value_inputs
            }
            for slot in slots.values():
                j = slot.task_id - 1
                if j == i:
                    self_loops.append(f"  task {t.label} takes its own value as an argument")
                else:
                    vals[j] = ex[j] = ups[j] = None
            # The lambdas are used at once, within this iteration.
            is_task = lambda v: id(v) in slots  # noqa: E731, B023
            t.call_args = substitute(t.args, lambda v: slots[id(v)], is_task)  # noqa: B023
            t.call_kwargs = substitute(t.kwargs, lambda v: slots[id(v)], is_task)  # noqa: B023
        upstream.append(tuple(ups))
        explicit.append(tuple(ex))
        values.append(tuple(vals))
    if nested:
        raise DuplicateProductError(
            "a product inside another task's product (a directory product is everything "
            "under it, so a path would have two producers):\n" + _listed(nested)
        )
    if self_loops:
        raise CycleError("dependency cycle:\n" + "\n".join(self_loops))
    if missing:
        raise MissingDependencyError("missing dependencies (nothing ran):\n" + _listed(missing))
    if unusable:
        raise PathError("dependencies that cannot be used (nothing ran):\n" + _listed(unusable))

    none: list[int] = []  # shared by the tasks nothing depends on (most of a wide run)
    downstream: list[list[int]] = [none] * n
    order: list[int]
    if not any(upstream):  # no edge at all (a wide run): the order is the declared one
        order = list(range(n))
        units, unit_of = _units(order, upstream, downstream, values)
        return TaskGraph(
            tasks,
            upstream,
            downstream,
            explicit,
            producer,
            order,
            values,
            units,
            unit_of,
            stats,
        )
    indegree = [0] * n
    for i, before in enumerate(upstream):
        indegree[i] = len(before)
        for u in before:
            if downstream[u] is none:
                downstream[u] = [i]
            else:
                downstream[u].append(i)
    queue = deque(i for i in range(n) if indegree[i] == 0)
    order = []
    while queue:
        u = queue.popleft()
        order.append(u)
        for v in downstream[u]:
            indegree[v] -= 1
            if indegree[v] == 0:
                queue.append(v)
    if len(order) < n:
        raise CycleError(_describe_cycle(tasks, upstream, indegree))
    units, unit_of = _units(order, upstream, downstream, values)
    return TaskGraph(
        tasks, upstream, downstream, explicit, producer, order, values, units, unit_of, stats
    )


def _listed(lines: list[str]) -> str:
    more = f"\n  ... and {len(lines) - _MAX_LISTED} more" if len(lines) > _MAX_LISTED else ""
    return "\n".join(lines[:_MAX_LISTED]) + more


def _owner(d: str, producer: dict[str, int], memo: dict[str, int]) -> int:
    """The task producing directory ``d`` or a directory above it; -1 if none."""
    chain = []
    found = -1
    while d:
        got = memo.get(d)
        if got is not None:
            found = got
            break
        chain.append(d)
        j = producer.get(d)
        if j is not None:
            found = j
            break
        d = d.rpartition("/")[0]
    for c in chain:
        memo[c] = found
    return found


def _nearest_product(path: str, producer: dict[str, int], j: int) -> str:
    d = path.rpartition("/")[0]
    while d and producer.get(d) != j:
        d = d.rpartition("/")[0]
    return d or "/"


class _External(NamedTuple):
    """What the graph finds of a dependency no task makes (the same for every task)."""

    stat: FileStat | None
    problem: str | None  # why no task can use it, after "task X depends on PATH"
    makers: list[int]  # for a directory or a missing path: the tasks producing inside it
    real: str  # its real path, for a directory that is a symlink
    dangling: str  # for a missing path: the symlink it is, if one


def _external(
    path: str,
    disk: Disk,
    inside: _Inside,
    readable: Callable[[str, bool], bool] | None,
    realpath: Callable[[str], str] | None,
) -> _External:
    try:
        st = disk.stat(path)
    except PathProblem as e:
        return _External(None, f": {e.reason}", [], path, "")
    if st is not None:
        mode = st.mode
        if mode and not st.is_dir and not _S_ISREG(mode):
            return _External(
                st,
                f", which is {st.special}: only regular files and directories can be "
                "tracked (a FIFO is never opened: reading it would wait for a writer)",
                [],
                path,
                "",
            )
        # Readable by everyone by its mode bits: no need to ask the kernel.
        need = 0o555 if st.is_dir else 0o444
        if mode & need != need and readable is not None and not readable(path, st.is_dir):
            what = "list" if st.is_dir else "read"
            return _External(
                st,
                f", which this user ({_user()}) may not {what}: permission denied",
                [],
                path,
                "",
            )
        if not st.is_dir:
            return _External(st, None, [], path, "")
    makers = inside(path)
    real = path
    if st is not None and realpath is not None:
        real = realpath(path)  # the dependency itself may be a symlink
        if real != path:
            makers = list(dict.fromkeys(makers + inside(real)))
    dangling = _dangling(disk, path) if st is None and not makers else ""
    return _External(st, None, makers, real, dangling)


class _Inside:
    """The tasks producing something below a directory (products sorted once, lazily:
    everything below ``d`` sorts between ``d + "/"`` and ``d + "0"``)."""

    def __init__(self, producer: dict[str, int]) -> None:
        self._producer = producer
        self._sorted: list[str] | None = None

    def __call__(self, d: str) -> list[int]:
        if self._sorted is None:
            self._sorted = sorted(self._producer)
        lo = bisect.bisect_left(self._sorted, d + "/")
        hi = bisect.bisect_left(self._sorted, d + "0", lo)
        return list(dict.fromkeys(self._producer[p] for p in self._sorted[lo:hi]))


def _user() -> str:
    import os

    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return f"uid {os.geteuid()}"


def _dangling(disk: Disk, path: str) -> str:
    readlink = getattr(disk, "readlink", None)
    target = readlink(path) if readlink is not None else None
    return f" (it is a symlink to {target}, which does not exist)" if target else ""


def _index_of(t: Task, survivors: CallIndex, user: Task, how: str) -> int:
    s = survivors.get(t)
    if s is None:
        raise UnknownTaskError(
            f"task {user.label} {how} task {t.name!r} ({t.func.__qualname__}), "
            "which was not added to the pipeline: add it with add_task() first"
        )
    return s.id - 1  # type: ignore[operator]  # a task in the graph has its id


def _units(
    order: list[int],
    upstream: list[tuple[int, ...]],
    downstream: list[list[int]],
    values: list[tuple[int, ...]],
) -> tuple[list[tuple[int, ...]], list[int]]:
    """Chains joined only by values: a producer whose one dependent takes its value and
    waits for nothing else. They run as one job, so the value never leaves the process that
    made it; a chain waits for nothing its head does not (a failure elsewhere cannot stop
    a task of it that does not depend on that failure)."""
    nxt: dict[int, int] = {}
    has_prev: set[int] = set()
    for i, producers in enumerate(values):
        if not producers or len(upstream[i]) != 1:
            continue
        for j in producers:
            if downstream[j] == [i] and i not in has_prev:
                nxt[j] = i
                has_prev.add(i)
                break
    units: list[tuple[int, ...]] = []
    unit_of = [0] * len(upstream)
    if not nxt:  # no chain: a unit per task (most runs)
        units = [(i,) for i in order]
        # The position of each task in the order, its unit's number, as order's own int
        # objects where they are the same number (not 28 bytes more per task).
        for u, i in enumerate(order):
            unit_of[i] = i if i == u else u
        return units, unit_of
    for i in order:
        if i in has_prev:
            continue
        chain = [i]
        while chain[-1] in nxt:
            chain.append(nxt[chain[-1]])
        for m in chain:
            unit_of[m] = len(units)
        units.append(tuple(chain))
    return units, unit_of


def _describe_cycle(
    tasks: Sequence[Task], upstream: list[tuple[int, ...]], indegree: list[int]
) -> str:
    # Every task left after Kahn's walk waits for another one left: following those
    # waits must come back to a task already seen, and that loop is a cycle.
    start = next(i for i, d in enumerate(indegree) if d > 0)
    seen: dict[int, int] = {}
    path: list[int] = []
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(u for u in upstream[node] if indegree[u] > 0)
    cycle = path[seen[node] :]
    cycle.reverse()  # producer before consumer reads naturally
    lines = []
    for k, a in enumerate(cycle):
        b = cycle[(k + 1) % len(cycle)]
        why = _link(tasks[a], tasks[b])
        lines.append(f"  {tasks[a].label} -> {tasks[b].label}{why}")
    names = " -> ".join(tasks[i].label for i in cycle + cycle[:1])
    return f"dependency cycle between tasks: {names}\n" + "\n".join(lines)


def _link(producer: Task, consumer: Task) -> str:
    """Why ``consumer`` waits for ``producer``: the path that links them."""
    products = set(producer.products)
    for d in consumer.dependencies:
        if d in products:
            return f" (needs {_show(d)})"
    for d in consumer.dependencies:
        for p in producer.products:
            if p.startswith(d + "/"):
                return f" (needs the directory {_show(d)}, which holds {_show(p)})"
            if d.startswith(p + "/"):
                return f" (needs {_show(d)}, inside {_show(p)})"
    return " (depends_on)"
