"""The task graph as text: Mermaid (paste into any Mermaid renderer) or Graphviz DOT."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .graph import TaskGraph
from .paths import show_path
from .status import Status


class _Node(NamedTuple):
    id: str
    label: str
    is_file: bool


class _Edge(NamedTuple):
    src: str
    dst: str
    ordering_only: bool  # an edge that is not a file (depends_on, or a value)


def _elements(
    graph: TaskGraph, status: Sequence[Status], files: bool
) -> tuple[list[_Node], list[_Edge]]:
    """What both formats draw: a node per task (and per file), the edges between them."""
    nodes = [
        _Node(f"t{t.id}", f"[{t.id}] {t.name}\n{status[i].value}", False)
        for i, t in enumerate(graph.tasks)
    ]
    edges: list[_Edge] = []
    file_ids: dict[str, str] = {}
    if files:
        for t in graph.tasks:
            for p in (*t.dependencies, *t.products):
                if p not in file_ids:
                    file_ids[p] = f"f{len(file_ids) + 1}"
                    nodes.append(_Node(file_ids[p], show_path(p), True))
    for i, t in enumerate(graph.tasks):
        if files:
            edges += [_Edge(file_ids[p], f"t{t.id}", False) for p in t.dependencies]
            edges += [_Edge(f"t{t.id}", file_ids[p], False) for p in t.products]
        for u in graph.upstream[i]:
            through_file = bool(set(graph.tasks[u].products) & set(t.dependencies))
            if not (files and through_file):
                edges.append(_Edge(f"t{graph.tasks[u].id}", f"t{t.id}", files and not through_file))
    return nodes, edges


def to_mermaid(graph: TaskGraph, status: Sequence[Status], files: bool = False) -> str:
    """A ``flowchart`` with a node per task labelled with its name and status."""
    nodes, edges = _elements(graph, status, files)
    lines = ["flowchart TD"]
    for n in nodes:
        text = "<br/>".join(_mermaid_text(part) for part in n.label.split("\n"))
        lines.append(f'    {n.id}[("{text}")]' if n.is_file else f'    {n.id}["{text}"]')
    for e in edges:
        lines.append(f"    {e.src} {'-.->' if e.ordering_only else '-->'} {e.dst}")
    return "\n".join(lines) + "\n"


def to_dot(graph: TaskGraph, status: Sequence[Status], files: bool = False) -> str:
    """A ``digraph`` with a node per task labelled with its name and status."""
    nodes, edges = _elements(graph, status, files)
    lines = ["digraph pipeline {", "    rankdir=LR;", "    node [shape=box];"]
    for n in nodes:
        shape = "shape=note, " if n.is_file else ""
        lines.append(f"    {n.id} [{shape}label={_dot_str(n.label)}];")
    for e in edges:
        lines.append(f"    {e.src} -> {e.dst}{' [style=dashed]' if e.ordering_only else ''};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    # Inside a quoted Mermaid label, quotes and angle brackets need entity codes.
    return (
        text.replace("&", "#amp;").replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
    )


def _dot_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
