"""``--clean``: remove a pipeline's products, its tasks' records and their logs."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from typing import Any

from .logs import task_log
from .paths import show_path
from .state import State


def clean(pipeline: Any, *, yes: bool = False, ask: Callable[[str], bool] | None = None) -> int:
    graph = pipeline.validate()
    products = [p for t in graph.tasks for p in t.products if os.path.lexists(p)]
    log_dir = os.path.join(pipeline.state_dir, "logs")
    logs = [task_log(log_dir, t) + ext for t in graph.tasks for ext in (".out", ".err")]
    logs = [p for p in logs if os.path.exists(p)]
    print(
        f"This removes {len(products)} product(s) of {len(graph.tasks)} task(s), their "
        f"records in {show_path(pipeline.state_dir)} and {len(logs)} log file(s):"
    )
    for p in products[:20]:
        print(f"  {show_path(p)}{os.sep if os.path.isdir(p) else ''}")
    if len(products) > 20:
        print(f"  ... and {len(products) - 20} more")
    if not yes:
        if ask is None:
            if not sys.stdin or not sys.stdin.isatty():
                print(
                    "Nothing removed: no terminal to ask for confirmation; add --yes.",
                    file=sys.stderr,
                )
                return 1
            ask = lambda q: input(q).strip().lower() in ("y", "yes")  # noqa: E731
        if not ask("Remove them? [y/N] "):
            print("Nothing removed.")
            return 1
    with State(pipeline.state_dir, wait=pipeline.wait_for_lock) as state:
        for p in products:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.remove(p)
        state.forget([t.record_key for t in graph.tasks], products)
        for p in logs:
            os.remove(p)
    print(
        f"Removed {len(products)} product(s), {len(graph.tasks)} record(s), {len(logs)} log file(s)."
    )
    return 0
