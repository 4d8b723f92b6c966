"""What may start next. Pure: it takes events and answers decisions, with no I/O and no clock.

A task is WAITING until every task it depends on is FINISHED or SKIPPED; then it is
*ready*: the driver asks the planner whether it must run, and hands it back either as
skipped or as *runnable*. Runnable tasks are dispatched highest priority first. A failed
task makes everything downstream of it DEPFAILED.
"""

from __future__ import annotations

import heapq
from typing import Sequence

from .status import Status


class Scheduler:
    def __init__(self, upstream: Sequence[Sequence[int]], downstream: Sequence[Sequence[int]],
                 priority: Sequence[float] | None = None) -> None:
        n = len(upstream)
        self._downstream = downstream
        self._waiting_on = [len(u) for u in upstream]
        # Heaps of (-priority, index): with no priorities, the order tasks were added.
        self._key = [(-priority[i] if priority else 0.0, i) for i in range(n)]
        self.status: list[Status] = [Status.WAITING] * n
        self._ready: list[tuple[float, int]] = []
        self._runnable: list[tuple[float, int]] = []
        self._open = n
        for i in range(n):
            if self._waiting_on[i] == 0:
                self._make_ready(i)

    def _make_ready(self, i: int) -> None:
        self.status[i] = Status.PENDING
        heapq.heappush(self._ready, self._key[i])

    @property
    def done(self) -> bool:
        """True when no task is left to start or to finish."""
        return self._open == 0

    def pop_ready(self) -> int | None:
        """A task whose dependencies are all done and that nobody has looked at yet."""
        return heapq.heappop(self._ready)[1] if self._ready else None

    def runnable(self, i: int) -> None:
        """The planner says ``i`` must run: queue it for dispatch."""
        heapq.heappush(self._runnable, self._key[i])

    def has_runnable(self) -> bool:
        return bool(self._runnable)

    def pop_runnable(self) -> int | None:
        return heapq.heappop(self._runnable)[1] if self._runnable else None

    def started(self, i: int) -> None:
        self.status[i] = Status.RUNNING

    def succeeded(self, i: int, status: Status = Status.FINISHED) -> list[int]:
        """``i`` ended well (FINISHED or SKIPPED); returns the tasks that became ready."""
        assert status.ok
        assert not self.status[i].done, f"task {i} ended twice"
        self.status[i] = status
        self._open -= 1
        newly = []
        for j in self._downstream[i]:
            self._waiting_on[j] -= 1
            if self._waiting_on[j] == 0 and self.status[j] is Status.WAITING:
                self._make_ready(j)
                newly.append(j)
        return newly

    def reopen(self, i: int, *, queue: bool = True) -> None:
        """``i`` ended well but must run again (its return value is needed and was not
        kept): it is open again, and tasks still waiting on it wait for it again.
        With ``queue`` it goes straight to the runnable queue (the head of a chain)."""
        assert self.status[i].ok, self.status[i]
        self.status[i] = Status.PENDING
        self._open += 1
        for j in self._downstream[i]:
            if self.status[j] is Status.WAITING:
                self._waiting_on[j] += 1
        if queue:
            self.runnable(i)

    def wait_for(self, i: int, n: int) -> None:
        """Ready task ``i`` must first wait for ``n`` reopened tasks upstream of it (call
        after reopening them)."""
        self.status[i] = Status.WAITING
        self._waiting_on[i] = n

    def failed(self, i: int, status: Status = Status.FAILED) -> list[int]:
        """``i`` failed (or, with DEPFAILED, cannot run); returns every task downstream
        of it that was waiting, now DEPFAILED."""
        self.status[i] = status
        self._open -= 1
        hit = []
        stack = list(self._downstream[i])
        while stack:
            j = stack.pop()
            if self.status[j] is not Status.WAITING:
                continue  # already DEPFAILED through another path
            self.status[j] = Status.DEPFAILED
            self._open -= 1
            hit.append(j)
            stack.extend(self._downstream[j])
        return hit

    def cancel_rest(self) -> list[int]:
        """Mark every task that has not ended CANCELLED; returns them."""
        hit = [i for i, s in enumerate(self.status) if not s.done]
        for i in hit:
            self.status[i] = Status.CANCELLED
        self._open -= len(hit)
        self._ready.clear()
        self._runnable.clear()
        return hit


def longest_paths(order: Sequence[int], downstream: Sequence[Sequence[int]],
                  durations: Sequence[float]) -> list[float]:
    """For each task, the longest time from its start to the end of the pipeline along the
    tasks downstream of it. Dispatching the longest first shortens the run when more tasks
    are ready than workers are free. ``order`` is topological."""
    longest = [0.0] * len(durations)
    for i in reversed(order):  # iterative: a 10,000-long chain is fine
        tail = max((longest[j] for j in downstream[i]), default=0.0)
        longest[i] = durations[i] + tail
    return longest
