"""The task graph: edges from producers to consumers and explicit ``depends_on``, validated.

Kept as plain index lists (10,000-task pipelines walk it often); ``to_networkx`` gives the
same graph as a ``networkx.DiGraph`` for inspection and export.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from .errors import CycleError, MissingDependencyError, UnknownTaskError
from .fs import Disk
from .paths import show_path as _show

if TYPE_CHECKING:  # pragma: no cover
    import networkx

    from .task import Task

_MAX_LISTED = 20


@dataclass
class TaskGraph:
    tasks: Sequence["Task"]
    upstream: list[tuple[int, ...]]    # per task index: indices it waits for
    downstream: list[list[int]]        # per task index: indices waiting for it
    explicit: list[tuple[int, ...]]    # per task index: upstream from depends_on only
    producer: dict[str, int]           # product path -> task index
    order: list[int]                   # a topological order

    def to_networkx(self) -> "networkx.DiGraph":
        """Tasks as nodes (their ids), an edge from each task to the tasks that wait for it."""
        import networkx as nx

        g = nx.DiGraph()
        for i, t in enumerate(self.tasks):
            g.add_node(t.id, name=t.name, status=str(t.status), task=t)
        for i, ups in enumerate(self.upstream):
            for u in ups:
                g.add_edge(self.tasks[u].id, self.tasks[i].id)
        return g


def build_graph(tasks: Sequence["Task"], producer: dict[str, int], survivors: dict[Any, "Task"],
                disk: Disk) -> TaskGraph:
    """Connect ``tasks`` (index = id - 1) and check the graph can run; raise a GraphError if not."""
    n = len(tasks)
    upstream: list[tuple[int, ...]] = []
    explicit: list[tuple[int, ...]] = []
    missing: list[str] = []
    self_loops: list[str] = []
    for i, t in enumerate(tasks):
        ups: dict[int, None] = {}
        for path in t.dependencies:
            j = producer.get(path)
            if j is None:
                if disk.stat(path) is None:
                    missing.append(f"  task {t.label} depends on {_show(path)}, "
                                   "which no task produces and which does not exist")
            elif j == i:
                self_loops.append(f"  task {t.label} both depends on and produces {_show(path)}")
            else:
                ups[j] = None
        ex: dict[int, None] = {}
        for d in t.depends_on:
            s = survivors.get(d._merge_key)
            if s is None:
                raise UnknownTaskError(
                    f"task {t.label} depends on task {d.name!r} ({d.func.__qualname__}), "
                    "which was not added to the pipeline: add it with add_task() first"
                )
            j = s.id - 1
            if j == i:
                self_loops.append(f"  task {t.label} lists itself in depends_on")
            else:
                ex[j] = None
                ups[j] = None
        upstream.append(tuple(ups))
        explicit.append(tuple(ex))
    if self_loops:
        raise CycleError("dependency cycle:\n" + "\n".join(self_loops))
    if missing:
        more = f"\n  ... and {len(missing) - _MAX_LISTED} more" if len(missing) > _MAX_LISTED else ""
        raise MissingDependencyError("missing dependencies (nothing ran):\n"
                                     + "\n".join(missing[:_MAX_LISTED]) + more)

    downstream: list[list[int]] = [[] for _ in range(n)]
    indegree = [0] * n
    for i, ups in enumerate(upstream):
        indegree[i] = len(ups)
        for u in ups:
            downstream[u].append(i)
    queue = deque(i for i in range(n) if indegree[i] == 0)
    order: list[int] = []
    while queue:
        u = queue.popleft()
        order.append(u)
        for v in downstream[u]:
            indegree[v] -= 1
            if indegree[v] == 0:
                queue.append(v)
    if len(order) < n:
        raise CycleError(_describe_cycle(tasks, upstream, indegree))
    return TaskGraph(tasks, upstream, downstream, explicit, producer, order)


def _describe_cycle(tasks: Sequence["Task"], upstream: list[tuple[int, ...]],
                    indegree: list[int]) -> str:
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
    cycle = path[seen[node]:]
    cycle.reverse()  # producer before consumer reads naturally
    lines = []
    for k, a in enumerate(cycle):
        b = cycle[(k + 1) % len(cycle)]
        shared = [p for p in tasks[b].dependencies if p in tasks[a].products]
        why = f" (needs {_show(shared[0])})" if shared else " (depends_on)"
        lines.append(f"  {tasks[a].label} -> {tasks[b].label}{why}")
    names = " -> ".join(tasks[i].label for i in cycle + cycle[:1])
    return f"dependency cycle between tasks: {names}\n" + "\n".join(lines)

