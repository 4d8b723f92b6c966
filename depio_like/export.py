"""The task graph as text: Mermaid (paste into any Mermaid renderer) or Graphviz DOT."""

from __future__ import annotations

from typing import Sequence

from .graph import TaskGraph
from .paths import show_path
from .status import Status


def to_mermaid(graph: TaskGraph, status: Sequence[Status], files: bool = False) -> str:
    """A ``flowchart`` with a node per task labelled with its name and status."""
    lines = ["flowchart TD"]
    for i, t in enumerate(graph.tasks):
        label = _mermaid_text(f"[{t.id}] {t.name}") + "<br/>" + status[i].value
        lines.append(f'    t{t.id}["{label}"]')
    file_ids: dict[str, str] = {}
    if files:
        for i, t in enumerate(graph.tasks):
            for p in (*t.dependencies, *t.products):
                if p not in file_ids:
                    file_ids[p] = f"f{len(file_ids) + 1}"
                    lines.append(f'    {file_ids[p]}[("{_mermaid_text(show_path(p))}")]')
    for i, t in enumerate(graph.tasks):
        if files:
            for p in t.dependencies:
                lines.append(f"    {file_ids[p]} --> t{t.id}")
            for p in t.products:
                lines.append(f"    t{t.id} --> {file_ids[p]}")
            for u in graph.upstream[i]:
                if not set(graph.tasks[u].products) & set(t.dependencies):
                    lines.append(f"    t{graph.tasks[u].id} -.-> t{t.id}")
        else:
            for u in graph.upstream[i]:
                lines.append(f"    t{graph.tasks[u].id} --> t{t.id}")
    return "\n".join(lines) + "\n"


def to_dot(graph: TaskGraph, status: Sequence[Status], files: bool = False) -> str:
    """A ``digraph`` with a node per task labelled with its name and status."""
    lines = ["digraph pipeline {", "    rankdir=LR;", "    node [shape=box];"]
    for i, t in enumerate(graph.tasks):
        lines.append(f"    t{t.id} [label={_dot_str(f'[{t.id}] {t.name}' + chr(10) + status[i].value)}];")
    file_ids: dict[str, str] = {}
    if files:
        for t in graph.tasks:
            for p in (*t.dependencies, *t.products):
                if p not in file_ids:
                    file_ids[p] = f"f{len(file_ids) + 1}"
                    lines.append(f"    {file_ids[p]} [shape=note, label={_dot_str(show_path(p))}];")
    for i, t in enumerate(graph.tasks):
        if files:
            for p in t.dependencies:
                lines.append(f"    {file_ids[p]} -> t{t.id};")
            for p in t.products:
                lines.append(f"    t{t.id} -> {file_ids[p]};")
            for u in graph.upstream[i]:
                if not set(graph.tasks[u].products) & set(t.dependencies):
                    lines.append(f"    t{graph.tasks[u].id} -> t{t.id} [style=dashed];")
        else:
            for u in graph.upstream[i]:
                lines.append(f"    t{graph.tasks[u].id} -> t{t.id};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    # Inside a quoted Mermaid label, quotes and angle brackets need entity codes.
    return (text.replace("&", "#amp;").replace('"', "#quot;")
            .replace("<", "#lt;").replace(">", "#gt;"))


def _dot_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
