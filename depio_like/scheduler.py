"""What to dispatch first: the task with the longest path of work ahead of it. Pure."""

from __future__ import annotations

from collections.abc import Sequence


def longest_paths(
    order: Sequence[int], downstream: Sequence[Sequence[int]], durations: Sequence[float]
) -> list[float]:
    """For each task, the longest time from its start to the end of the pipeline along the
    tasks downstream of it. Dispatching the longest first shortens the run when more tasks
    are ready than workers are free. ``order`` is topological."""
    longest = [0.0] * len(durations)
    for i in reversed(order):  # iterative: a 10,000-long chain is fine
        down = downstream[i]
        # No generator for a task nothing waits for (most of a wide run).
        longest[i] = durations[i] + (max([longest[j] for j in down]) if down else 0.0)
    return longest
