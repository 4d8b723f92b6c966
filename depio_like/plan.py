"""The build plan: what runs next, what waits, and every task's status. Pure.

Events go in — the declared graph, a unit decided (``decided``), a job started or ended,
cancel — and actions come out: ``Check`` (decide these tasks: read their inputs),
``Dispatch`` (run these tasks as one job), ``Changed`` (a task's status changed),
``Retry``. No files, no processes, no clock: the run (``runner.py``) does the I/O each
action asks for, and tests drive the plan with scripted events.

Tasks are planned by *unit*: a chain of tasks joined only by return values runs as one
job (see ``graph._units``); most units are one task. A unit runs when any of its tasks
must; the others then run too, each with its own reason, decided here and nowhere else.

A value producer that was skipped has no value in this run: when a consumer is about to
run it is *reopened* (run again, "its return value is needed by ..."). Until it ends,
tasks reading its products wait for it, and it waits for readers already running, so no
one reads a product while it is rewritten.

A failure takes down everything downstream (DEPFAILED), except a ``run_if="all_done"``
task: for it a dependency that failed (or could not run) has ended like any other, and
once all have ended it is decided and runs, whatever the cache says.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import cast

from .decision import Decision, Reason, Why
from .graph import TaskGraph
from .status import Status


@dataclass(slots=True)
class Check:
    """Decide the tasks of ``unit`` (read their inputs), then call ``decided``."""

    unit: tuple[int, ...]


@dataclass(slots=True)
class Dispatch:
    """Run ``unit`` as one job, with these decisions; it takes the values of
    ``values_from`` (producers outside the unit). Its tasks' new statuses come as
    ``Changed`` just before it, but for the usual one: ``running``, its one task is now
    RUNNING (one action per task run, not two)."""

    unit: tuple[int, ...]
    decisions: tuple[Decision, ...]
    values_from: tuple[int, ...]
    attempt: int = 1
    running: bool = False


@dataclass(slots=True)
class Changed:
    """Task ``index`` now has ``status``."""

    index: int
    status: Status
    cause: int | None = None  # DEPFAILED: the task whose failure took it down
    error: str | None = None  # FAILED: why
    duration: float | None = None


@dataclass(slots=True)
class Checks:
    """Decide the tasks of each of ``units`` (read their inputs), then call
    ``decided_all`` with their decisions, in the same order (a plan made with
    ``batch=True``: one action for many units)."""

    units: list[tuple[int, ...]]


@dataclass(slots=True)
class Statuses:
    """Tasks ``indices`` now have ``status`` (PENDING or SKIPPED), with nothing more to
    say (a plan made with ``batch=True``; otherwise one ``Changed`` each)."""

    indices: list[int]
    status: Status


@dataclass(slots=True)
class Retry:
    """Task ``index`` failed and runs again: attempt ``attempt`` of ``attempts``."""

    index: int
    attempt: int
    attempts: int
    error: str


Action = Check | Checks | Dispatch | Changed | Statuses | Retry


class _Phase(Enum):
    WAITING = 0  # some unit upstream has not ended well yet
    READY = 1  # to be decided (a Check is out)
    QUEUED = 2  # decided to run; waits for a free slot (and for values it takes)
    BLOCKED = 3  # reopened; waits for readers of its products to end
    RUNNING = 4  # handed to the executor
    DONE = 5


_ENDED_BADLY = (Status.FAILED, Status.DEPFAILED, Status.CANCELLED)


class BuildPlan:
    """The state of one run. ``status`` (per task) is read by the table; only the plan
    writes it. ``has_value(p)``: whether the return value of task ``p`` is at hand."""

    def __init__(
        self,
        graph: TaskGraph,
        *,
        priority: Sequence[float] | Callable[[], Sequence[float]] | None = None,
        retries: Sequence[int] | None = None,
        queues: bool = False,
        dry: bool = False,
        has_value: Callable[[int], bool] = lambda p: False,
        all_done: Sequence[bool] | None = None,
        batch: bool = False,
    ) -> None:
        """``batch``: units becoming ready, and tasks becoming PENDING or SKIPPED, come
        out in bulk (``Checks``, ``Statuses``) instead of one action each: a no-op run of
        100,000 tasks is then a few actions, not 300,000."""
        n = len(graph.tasks)
        self._batch = batch
        self._graph = graph
        self._units = graph.units
        self._unit_of = graph.unit_of
        self._tasks = graph.tasks  # their labels, for reasons (not built for every task)
        # Read only when a task fails (a run's may be worked out then, not for every task).
        self._retries = retries if retries is not None else [0] * n
        self._queues = queues
        self._ok_status = Status.WOULD_RUN if dry else Status.FINISHED
        self._has_value = has_value
        nu = len(self._units)
        # Most units of a wide run have no neighbour: they share one empty tuple (a million
        # empty sets and lists would be the plan's largest part).
        none: tuple[int, ...] = ()
        ups: list[Sequence[int]] = [none] * nu
        unit_of, upstream = self._unit_of, graph.upstream
        self._down: list[Sequence[int]] = [none] * nu
        if any(upstream):  # else no unit waits for another (a wide run): nothing to look at
            for i in range(n):
                if upstream[i]:
                    u = unit_of[i]
                    vs = {unit_of[j] for j in upstream[i]} | set(ups[u])
                    vs.discard(u)
                    if vs:
                        ups[u] = sorted(vs)
            for u, up in enumerate(ups):
                for v in up:
                    d = self._down[v]
                    if d is none:
                        self._down[v] = [u]
                    else:
                        d.append(u)  # type: ignore[attr-defined]  # a list once not empty
        self._up = ups
        # Per unit: the producers outside it whose values it takes (most take none).
        vals = graph.values
        self._takes: list[tuple[int, ...]] = (
            [
                tuple(sorted({p for m in unit for p in vals[m] if self._unit_of[p] != u}))
                if (vals[unit[0]] if len(unit) == 1 else any(vals[m] for m in unit))
                else ()
                for u, unit in enumerate(self._units)
            ]
            if any(vals)
            else [()] * nu
        )
        # Per unit: the units upstream whose failure it outlives (run_if="all_done": every
        # task of it reading from there says so, and takes no return value from there).
        self._tolerates: list[frozenset[int]] = [frozenset()] * nu
        if all_done is not None and any(all_done):
            for u, unit in enumerate(self._units):
                if any(all_done[m] for m in unit):
                    self._tolerates[u] = frozenset(
                        v
                        for v in ups[u]
                        if all(
                            all_done[m] and j not in graph.values[m]
                            for m in unit
                            for j in graph.upstream[m]
                            if self._unit_of[j] == v
                        )
                    )
        self._waiting_on = [len(vs) for vs in ups] if any(upstream) else [0] * nu
        self._phase = [_Phase.WAITING] * nu
        # Highest priority first; ties in the order the tasks were added.
        # The heap's keys are made when a unit is queued; a callable is called then, the
        # first time (a run where everything is up to date never needs them).
        self._priority_of = priority if callable(priority) else None
        self._priority: Sequence[float] | None = None if callable(priority) else priority
        # Queued units, as (-priority, first task, unit): a heap, and beside it a run of
        # entries pushed in increasing order (all of them, in a wide run), taken from its
        # front at no cost; the next unit is the smaller of the two heads.
        self._queued: list[tuple[float, int, int]] = []
        self._in_order: deque[tuple[float, int, int]] = deque()
        self.status: list[Status] = [Status.WAITING] * n
        # Per task (lists, not dicts: a run holds 100,000 of each): its decision once
        # decided, and how many times it was handed out.
        self._decided: list[Decision | None] = [None] * n
        self._attempts: list[int] = [0] * n
        self._in_flight: set[int] = set()  # tasks handed over and not ended
        self._blocked: dict[int, int] = {}  # reopened unit -> readers it waits for
        self._blocking: dict[int, list[int]] = {}  # running unit -> reopened units waiting
        self._open = nu

    # -- reading -------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """True when no unit is left to start or to finish."""
        return self._open == 0

    @property
    def in_flight(self) -> frozenset[int]:
        """Tasks handed to the executor that have not ended."""
        return frozenset(self._in_flight)

    def is_in_flight(self, i: int) -> bool:
        """Whether task ``i`` was handed to the executor and has not ended (no copy made)."""
        return i in self._in_flight

    @property
    def any_in_flight(self) -> bool:
        return bool(self._in_flight)

    def decision(self, i: int) -> Decision | None:
        return self._decided[i]

    def unit(self, i: int) -> tuple[int, ...]:
        return self._units[self._unit_of[i]]

    def failed_upstream(self, i: int) -> tuple[int, ...]:
        """The tasks ``i`` depends on that failed (or could not run) in this run: only a
        ``run_if="all_done"`` task runs after that."""
        up = self._graph.upstream[i]
        if not up:  # most tasks of a wide pipeline
            return ()
        st = self.status
        return tuple(j for j in up if st[j] is Status.FAILED or st[j] is Status.DEPFAILED)

    # -- events --------------------------------------------------------------------------
    def start(self) -> list[Action]:
        """The first actions: decide every unit that waits for nothing."""
        out: list[Action] = []
        if self._batch:  # what _ready does for each, at once: one Statuses, one Checks
            ready = [u for u, w in enumerate(self._waiting_on) if w == 0]
            if not ready:
                return out
            phase, st, pending = self._phase, self.status, Status.PENDING
            checks = [self._units[u] for u in ready]
            fresh = []
            for u in ready:
                phase[u] = _Phase.READY
            for members in checks:
                for m in members:
                    if st[m] is not pending:
                        st[m] = pending
                        fresh.append(m)
            return [Statuses(fresh, pending), Checks(checks)]
        for u in range(len(self._units)):
            if self._waiting_on[u] == 0:
                self._ready(u, out)
        return out

    def decided(self, unit: Sequence[int], decisions: Sequence[Decision]) -> list[Action]:
        """The decisions of a unit's tasks, as the up-to-date check made them."""
        out: list[Action] = []
        self._decided_unit(unit, decisions, out)
        return out

    def decided_all(
        self, units: Sequence[Sequence[int]], decisions: Sequence[Decision]
    ) -> list[Action]:
        """``decided`` for each unit of a ``Checks``, in order: ``decisions`` holds those of
        every unit's tasks, unit after unit."""
        if len(decisions) != sum(map(len, units)):
            raise ValueError(f"{len(decisions)} decisions for {len(units)} units' tasks")
        out: list[Action] = []
        one = self._decided_unit
        at = 0
        if not self._batch:
            for unit in units:
                n = len(unit)
                one(unit, decisions[at : at + n], out)
                at += n
            return out
        # The usual unit of a no-op run: one task, up to date, nothing downstream, nothing
        # blocked: what _decided_unit does for it, without the calls.
        phase, unit_of, down, tolerates = self._phase, self._unit_of, self._down, self._tolerates
        decided, status, skipped_status = self._decided, self.status, Status.SKIPPED
        ready, done = _Phase.READY, _Phase.DONE
        skipped: list[int] = []
        for unit in units:
            if len(unit) == 1:
                d = decisions[at]
                at += 1
                if not self._blocking:
                    m = unit[0]
                    u = unit_of[m]
                    if (
                        not d.run
                        and not d.fail
                        and phase[u] is ready
                        and not down[u]
                        and not tolerates[u]
                    ):
                        decided[m] = d
                        status[m] = skipped_status
                        skipped.append(m)
                        phase[u] = done
                        self._open -= 1
                        continue
                ds: Sequence[Decision] = (d,)
            else:
                ds = decisions[at : at + len(unit)]
                at += len(unit)
            if skipped:
                self._set_all(skipped, skipped_status, out)
                skipped = []
            one(unit, ds, out)
        if skipped:
            self._set_all(skipped, skipped_status, out)
        return out

    def _decided_unit(
        self, unit: Sequence[int], decisions: Sequence[Decision], out: list[Action]
    ) -> None:
        u = self._unit_of[unit[0]]
        if self._phase[u] is not _Phase.READY:  # taken back meanwhile: a Check will come again
            return
        members = self._units[u]
        if self._tolerates[u]:
            decisions = self._after_failures(members, decisions)
        if len(members) == 1:  # most units: the same as below, without the loops
            d = decisions[0]
            self._decided[members[0]] = d
            if d.fail:
                self._fail(u, members[0], d.fail, out)
            elif not d.run:
                self._set_all(members, Status.SKIPPED, out)
                self._unit_ended_well(u, out)
            else:
                self._queue(u)
            return
        for m, d in zip(members, decisions, strict=True):
            self._decided[m] = d
        failing = next((k for k, d in enumerate(decisions) if d.fail), None)
        if failing is not None:  # e.g. BuildMode.NEVER with a product missing
            bad = members[failing]
            self._fail(u, bad, decisions[failing].fail or "", out)
            return
        if not any(d.run for d in decisions):
            self._set_all(members, Status.SKIPPED, out)
            self._unit_ended_well(u, out)
            return
        for m, d in zip(members, self._chain(members, decisions), strict=True):
            self._decided[m] = d
        self._queue(u)

    def _after_failures(
        self, members: Sequence[int], decisions: Sequence[Decision]
    ) -> list[Decision]:
        """A unit running after failures upstream (run_if="all_done") runs whatever the
        cache says: what it reads is not what a full success would have left."""
        out = []
        for m, d in zip(members, decisions, strict=True):
            failed = [self._tasks[j].label for j in self.failed_upstream(m)]
            if failed and not d.fail:
                d = d.rerun(Reason(Why.DEP_FAILED, ", ".join(failed)))
            out.append(d)
        return out

    def dispatch(self, free: int) -> list[Action]:
        """Hand out up to ``free`` units, highest priority first. A unit whose values are
        not at hand waits for their producers instead (reopened if they were skipped)."""
        out: list[Action] = []
        sent = 0
        queued, in_order, phase = self._queued, self._in_order, self._phase
        while sent < free:
            if in_order and (not queued or in_order[0] < queued[0]):
                u = in_order.popleft()[2]
            elif queued:
                u = heapq.heappop(queued)[2]
            else:
                break
            if phase[u] is not _Phase.QUEUED:
                continue  # a stale entry: the unit was taken back or requeued
            members = self._units[u]
            if self._up[u]:  # else nothing upstream can have ended badly (most units)
                broken = self._ended_badly_upstream(u)
                if broken is not None:  # reopened after a producer of its inputs failed
                    self._take_down(u, broken, out)
                    continue
            outside = self._takes[u]
            if outside:
                missing = [p for p in outside if not self._has_value(p)]
                if missing:
                    self._await_values(u, missing, out)
                    continue
            phase[u] = _Phase.RUNNING
            attempts, decided, status = self._attempts, self._decided, self.status
            # What _set does for each, without the calls: the first runs now (unless the
            # executor queues it), the rest of a chain waits for it.
            m = members[0]
            attempt = attempts[m] = attempts[m] + 1
            self._in_flight.add(m)
            if len(members) == 1 and not self._queues:
                status[m] = Status.RUNNING  # the Dispatch says so
                # Decided: it was queued.
                out.append(Dispatch(members, (decided[m],), outside, attempt, True))  # type: ignore[arg-type]
                sent += 1
                continue
            st = Status.PENDING if self._queues else Status.RUNNING
            status[m] = st
            out.append(Changed(m, st))
            if len(members) == 1:
                out.append(Dispatch(members, (decided[m],), outside, attempt))  # type: ignore[arg-type]
                sent += 1
                continue
            for m in members[1:]:
                attempt = attempts[m] = attempts[m] + 1
                self._in_flight.add(m)
                status[m] = Status.PENDING
                out.append(Changed(m, Status.PENDING))
            decisions = tuple([decided[m] for m in members])
            out.append(Dispatch(members, decisions, outside, attempt))  # type: ignore[arg-type]
            sent += 1
        return out

    def started(self, i: int) -> list[Action]:
        """A queued job began to run its task ``i`` (executors that queue)."""
        out: list[Action] = []
        if i in self._in_flight and self.status[i] is Status.PENDING:
            self._set(i, Status.RUNNING, out)
        return out

    def ended(
        self, i: int, ok: bool, *, error: str | None = None, duration: float | None = None
    ) -> list[Action]:
        """Task ``i`` ended. A second report of the same end is ignored."""
        out: list[Action] = []
        if i not in self._in_flight:
            return out
        self._in_flight.discard(i)
        u = self._unit_of[i]
        members = self._units[u]
        if ok:
            st = self.status[i] = self._ok_status
            out.append(Changed(i, st, None, None, duration))
            if members[-1] != i:
                k = members.index(i)
                if not self._queues:
                    self._set(members[k + 1], Status.RUNNING, out)
            elif not self._down[u] and not self._blocking:  # _unit_ended_well, for most
                self._phase[u] = _Phase.DONE
                self._open -= 1
            else:
                self._unit_ended_well(u, out)
            return out
        retries = self._retries[i]
        attempt = self._attempts[i] or 1
        if len(members) == 1 and attempt <= retries:
            out.append(Retry(i, attempt + 1, retries + 1, error or "failed"))
            self._set(i, Status.PENDING, out)
            self._unblock(u)
            # A producer reopened meanwhile is rewriting what this task reads: after it.
            rewriting = [v for v in self._up[u] if self._phase[v] is not _Phase.DONE]
            if rewriting:
                self._phase[u] = _Phase.WAITING
                self._waiting_on[u] = len(rewriting)
            else:
                self._queue(u)
            return out
        self._fail(u, i, error or "failed", out, duration=duration)
        return out

    def cancel(self) -> list[Action]:
        """Ctrl-C: every task that has not ended is CANCELLED; nothing more starts."""
        out: list[Action] = []
        for i, st in enumerate(self.status):
            if not st.done:
                self._set(i, Status.CANCELLED, out)
        self._in_flight.clear()
        self._queued.clear()
        self._in_order.clear()
        self._phase = [_Phase.DONE] * len(self._units)
        self._open = 0
        return out

    # -- inside --------------------------------------------------------------------------
    def _set(
        self,
        i: int,
        status: Status,
        out: list[Action],
        *,
        cause: int | None = None,
        error: str | None = None,
        duration: float | None = None,
    ) -> None:
        self.status[i] = status
        out.append(Changed(i, status, cause, error, duration))

    def _set_all(self, members: Sequence[int], status: Status, out: list[Action]) -> None:
        """``_set`` without details for each of ``members``; in bulk when batching (added
        to the ``Statuses`` just before, if it has this status)."""
        if not self._batch:
            for m in members:
                self._set(m, status, out)
            return
        st = self.status
        for m in members:
            st[m] = status
        last = out[-1] if out else None
        if type(last) is Statuses and last.status is status:
            last.indices.extend(members)
        else:
            out.append(Statuses(list(members), status))

    def _ready(self, u: int, out: list[Action]) -> None:
        self._phase[u] = _Phase.READY
        members = self._units[u]
        if self._batch:
            # PENDING then the check, added to the pair just before if there is one: a
            # wave of units becoming ready is two actions.
            st = self.status
            fresh = [m for m in members if st[m] is not Status.PENDING]
            for m in fresh:
                st[m] = Status.PENDING
            if len(out) >= 2:
                checks, pending = out[-1], out[-2]
                if (
                    type(checks) is Checks
                    and type(pending) is Statuses
                    and pending.status is Status.PENDING
                ):
                    pending.indices.extend(fresh)
                    checks.units.append(members)
                    return
            out.append(Statuses(fresh, Status.PENDING))
            out.append(Checks([members]))
            return
        for m in members:
            if self.status[m] is not Status.PENDING:
                self._set(m, Status.PENDING, out)
        out.append(Check(members))

    def _queue(self, u: int) -> None:
        self._phase[u] = _Phase.QUEUED
        first = self._units[u][0]
        if self._priority_of is not None:
            self._priority, self._priority_of = self._priority_of(), None
        entry = (-self._priority[first] if self._priority else 0.0, first, u)
        in_order = self._in_order
        if not in_order or in_order[-1] < entry:
            in_order.append(entry)
        else:
            heapq.heappush(self._queued, entry)

    def _chain(self, members: Sequence[int], own: Sequence[Decision]) -> list[Decision]:
        """A unit runs as a whole: a task that would be skipped runs because the next one
        needs its value, or because the one before it reruns."""
        final = list(own)
        for k in range(len(members) - 2, -1, -1):  # back to front: needs travel upstream
            if not final[k].run and final[k + 1].run:
                final[k] = final[k].rerun(
                    Reason(Why.VALUE_NEEDED, self._tasks[members[k + 1]].label)
                )
        for k in range(1, len(members)):
            if not final[k].run:
                final[k] = final[k].rerun(Reason(Why.UPSTREAM, self._tasks[members[k - 1]].label))
        return final

    def _ended_badly_upstream(self, u: int) -> int | None:
        """A task upstream of unit ``u`` that ended badly in this run, if any. A unit is
        checked only once its upstream ended well, but one skipped and later reopened for
        its value may start after a producer of what it reads was reopened and failed: its
        inputs may then be half written, so it must not run (unless it runs after failures:
        run_if="all_done")."""
        for v in self._up[u]:
            if v in self._tolerates[u]:
                continue
            for m in self._units[v]:
                if self.status[m] in _ENDED_BADLY:
                    return m
        return None

    def _unit_ended_well(self, u: int, out: list[Action]) -> None:
        self._phase[u] = _Phase.DONE
        self._open -= 1
        for d in self._down[u]:
            if self._phase[d] is _Phase.WAITING:
                self._waiting_on[d] -= 1
                if self._waiting_on[d] == 0:
                    self._ready(d, out)
        if self._blocking:  # else no unit waits for any (most runs)
            self._unblock(u)

    def _fail(
        self, u: int, i: int, error: str, out: list[Action], duration: float | None = None
    ) -> None:
        """Task ``i`` of unit ``u`` failed: the rest of its unit, and every unit
        downstream, cannot run (DEPFAILED)."""
        self._set(i, Status.FAILED, out, error=error, duration=duration)
        self._take_down(u, i, out)

    def _take_down(self, u: int, cause: int, out: list[Action]) -> None:
        """Unit ``u`` cannot (or can no longer) end well because ``cause`` failed: what of
        it has not ended, and every unit downstream, is DEPFAILED."""
        for m in self._units[u]:
            if not self.status[m].done:
                self._in_flight.discard(m)
                self._set(m, Status.DEPFAILED, out, cause=cause)
        self._phase[u] = _Phase.DONE
        self._open -= 1
        self._unblock(u)
        stack = [(u, d) for d in self._down[u]]
        while stack:
            v, d = stack.pop()
            if self._phase[d] is _Phase.DONE or self._phase[d] is _Phase.RUNNING:
                continue  # ended already, or running on an earlier version of the input
            if v in self._tolerates[d]:  # run_if="all_done": v has ended, badly
                if self._phase[d] is _Phase.WAITING:
                    self._waiting_on[d] -= 1
                    if self._waiting_on[d] == 0:
                        self._ready(d, out)
                continue  # decided already: it runs as decided once v is out of its way
            self._phase[d] = _Phase.DONE
            self._open -= 1
            for m in self._units[d]:
                self._set(m, Status.DEPFAILED, out, cause=cause)
            self._unblock(d)
            stack.extend((d, e) for e in self._down[d])

    def _await_values(self, u: int, missing: Sequence[int], out: list[Action]) -> None:
        """Unit ``u`` takes values that are not at hand: it waits for their producers,
        reopening those that were skipped in this run."""
        self._phase[u] = _Phase.WAITING
        self._waiting_on[u] = 0
        for p in missing:
            pu = self._unit_of[p]
            if self._phase[pu] is _Phase.DONE and self.status[p] is Status.SKIPPED:
                needs = next(m for m in self._units[u] if p in self._graph.values[m])
                self._reopen(pu, Reason(Why.VALUE_NEEDED, self._tasks[needs].label), out)
            elif self._phase[pu] is _Phase.DONE:
                # It ran in this run, yet its value is gone: a bug, not the user's doing.
                raise AssertionError(
                    f"the value of task {self._tasks[p].label} was dropped "
                    "while "
                    f"{self._tasks[self._units[u][0]].label} still needed it"
                )
            else:
                self._waiting_on[u] += 1  # reopened already, on its way
        for m in self._units[u]:
            self._set(m, Status.WAITING, out)

    def _reopen(self, pu: int, reason: Reason, out: list[Action]) -> None:
        """Run skipped unit ``pu`` again for its value. Units downstream of it that have not
        started wait for it again; it waits for those running (they read its products)."""
        self._open += 1
        members = self._units[pu]
        for k, m in enumerate(members):  # the tail's value is needed; each one before it
            why = (
                reason
                if k == len(members) - 1
                else Reason(Why.VALUE_NEEDED, self._tasks[members[k + 1]].label)
            )  # feeds the next
            self._decided[m] = cast(Decision, self._decided[m]).rerun(why)
            self._set(m, Status.PENDING, out)
        readers = 0
        for d in self._down[pu]:
            ph = self._phase[d]
            if ph is _Phase.WAITING:
                self._waiting_on[d] += 1
            elif ph is _Phase.READY:
                self._phase[d] = _Phase.WAITING  # decided again once it has run
                self._waiting_on[d] = 1
                for m in self._units[d]:
                    self._set(m, Status.WAITING, out)
            elif ph is _Phase.QUEUED or ph is _Phase.BLOCKED:
                # Decided to run, not started: it keeps its decision and starts after.
                self._phase[d] = _Phase.BLOCKED
                self._blocked[d] = self._blocked.get(d, 0) + 1
                self._blocking.setdefault(pu, []).append(d)
            elif ph is _Phase.RUNNING:
                readers += 1
                self._blocking.setdefault(d, []).append(pu)
        for v in self._up[pu]:  # reopened upstream of it too: it rewrites what pu reads
            if self._phase[v] is not _Phase.DONE:
                readers += 1
                self._blocking.setdefault(v, []).append(pu)
        if readers:
            self._phase[pu] = _Phase.BLOCKED
            self._blocked[pu] = readers
        else:
            self._queue(pu)

    def _unblock(self, d: int) -> None:
        """Unit ``d`` ended (or stopped running): units that waited for it may go."""
        for pu in self._blocking.pop(d, ()):
            self._blocked[pu] -= 1
            if self._blocked[pu] == 0:
                del self._blocked[pu]
                if self._phase[pu] is _Phase.BLOCKED:
                    self._queue(pu)
