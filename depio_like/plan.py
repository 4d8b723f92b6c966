"""Is a task up to date? Each answer is a ``Decision`` carrying its reasons.

A task is up to date when it succeeded before and, compared with that record: its code
and bound arguments are the same, every dependency has the same content, every task it
names in ``depends_on`` is in the same state, and every product exists with the content
recorded then. The table, the logs and ``--explain`` all read the reasons from here.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import xxhash

from .fingerprint import FileHasher, code_digest
from .fs import Disk
from .graph import TaskGraph
from .modes import BuildMode
from .paths import show_path


class Why(str, Enum):
    NEVER_RAN = "never ran"
    INCOMPLETE = "its last run did not finish (products may be partial)"
    FORCED = "forced"
    ALWAYS = "always runs"
    UNFINGERPRINTABLE = "arguments have no stable fingerprint"
    CODE_CHANGED = "function code changed"
    ARGS_CHANGED = "arguments changed"
    INPUT_CHANGED = "input changed"
    INPUT_MISSING = "input missing"
    UPSTREAM = "upstream task reruns"
    VALUE_NEEDED = "its return value is needed by"
    PRODUCT_MISSING = "product missing"
    PRODUCT_CHANGED = "product changed since recorded"


@dataclass(frozen=True)
class Reason:
    why: Why
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.why.value}: {self.detail}" if self.detail else self.why.value


@dataclass
class Decision:
    """Whether a task runs, why, and what its inputs looked like when we decided."""

    run: bool
    reasons: tuple[Reason, ...] = ()
    inputs: dict[str, str | None] = field(default_factory=dict)    # dependency -> digest
    upstream: dict[str, str] = field(default_factory=dict)         # depends_on key -> stamp
    fail: str | None = None  # the task cannot be made (BuildMode.NEVER, product missing)

    def __str__(self) -> str:
        return "; ".join(map(str, self.reasons)) if self.run else "up to date"


def arg_reprs(arguments: dict[str, Any]) -> dict[str, str]:
    """Short readable forms of arguments, kept in the record to say what changed."""
    out = {}
    for k, v in arguments.items():
        try:
            r = repr(v)
        except Exception:
            r = f"<{type(v).__name__}>"
        out[k] = r if len(r) <= 80 else r[:77] + "..."
    return out


class Planner:
    """Compares tasks with their records; builds the new record after a task succeeded."""

    def __init__(self, graph: TaskGraph, records: dict[str, dict[str, Any]],
                 hasher: FileHasher, disk: Disk, *, force: bool = False,
                 default_mode: BuildMode = BuildMode.IF_NEW) -> None:
        self.graph = graph
        self.records = records
        self.hasher = hasher
        self.disk = disk
        self.force = force
        self.default_mode = default_mode
        self._made_dirs: set[str] = set()

    def check(self, i: int) -> Decision:
        """Decide whether task ``i`` must run; call once its dependencies are done."""
        t = self.graph.tasks[i]
        rec = self.records.get(t.record_key)
        mode = t.buildmode or self.default_mode
        if mode is BuildMode.NEVER or mode is BuildMode.IF_MISSING:
            return self._by_presence(i, rec, mode)
        reasons: list[Reason] = []
        if mode is BuildMode.ALWAYS:
            reasons.append(Reason(Why.ALWAYS))
        if self.force:
            reasons.append(Reason(Why.FORCED))
        if t.unfingerprintable:
            reasons.append(Reason(Why.UNFINGERPRINTABLE, t.unfingerprintable))
        if rec is None:
            reasons.append(Reason(Why.NEVER_RAN))
        else:
            if rec.get("incomplete"):
                reasons.append(Reason(Why.INCOMPLETE))
            if rec.get("c") != code_digest(t.func):
                reasons.append(Reason(Why.CODE_CHANGED))
            if rec.get("a") != t.args_digest:
                reasons.append(Reason(Why.ARGS_CHANGED, _args_diff(rec.get("av"), _described(t))))

        inputs: dict[str, str | None] = {}
        old_inputs = (rec.get("d") or {}) if rec else {}
        for p in t.dependencies:
            d = inputs[p] = self.hasher.digest(p)
            if rec is not None and d != old_inputs.get(p):
                why = Why.INPUT_MISSING if d is None else Why.INPUT_CHANGED
                reasons.append(Reason(why, show_path(p)))

        upstream = self._stamps(i)
        if rec is not None:
            old_up = rec.get("u") or {}
            for j in self.graph.explicit[i]:
                u = self.graph.tasks[j]
                if old_up.get(u.record_key) != upstream[u.record_key]:
                    reasons.append(Reason(Why.UPSTREAM, u.label))

        if rec is not None:
            old_products = rec.get("p") or {}
            for p in t.products:
                if reasons:  # running anyway: only say what is missing, hash nothing
                    if self.disk.stat(p) is None:
                        reasons.append(Reason(Why.PRODUCT_MISSING, show_path(p)))
                    continue
                d = self.hasher.digest(p)
                if d is None:
                    reasons.append(Reason(Why.PRODUCT_MISSING, show_path(p)))
                elif d != old_products.get(p):
                    reasons.append(Reason(Why.PRODUCT_CHANGED, show_path(p)))
        return Decision(bool(reasons), tuple(reasons), inputs, upstream)

    def _by_presence(self, i: int, rec: dict[str, Any] | None, mode: BuildMode) -> Decision:
        """NEVER and IF_MISSING look only at whether the products are there."""
        t = self.graph.tasks[i]
        missing = [p for p in t.products if self.disk.stat(p) is None]
        inputs = {p: self.hasher.digest(p) for p in t.dependencies}
        upstream = self._stamps(i)
        if mode is BuildMode.NEVER:
            if missing:
                return Decision(False, (), inputs, upstream, fail=(
                    f"task {t.label} has BuildMode.NEVER (it is never run) but its product(s) "
                    f"{', '.join(show_path(p) for p in missing)} do not exist: make them, or "
                    "give the task another build mode"))
            return Decision(False, (), inputs, upstream)
        reasons = [Reason(Why.PRODUCT_MISSING, show_path(p)) for p in missing]
        if self.force:
            reasons.insert(0, Reason(Why.FORCED))
        if not t.products and rec is None:
            reasons.append(Reason(Why.NEVER_RAN))
        return Decision(bool(reasons), tuple(reasons), inputs, upstream)

    def _stamps(self, i: int) -> dict[str, str]:
        """The state of the tasks ``i`` names in depends_on or takes values from."""
        out = {}
        for j in self.graph.explicit[i]:
            key = self.graph.tasks[j].record_key
            out[key] = (self.records.get(key) or {}).get("s", "")
        return out

    def fingerprint(self, i: int, decision: Decision) -> str:
        """Names this exact piece of work: the task, its arguments, code and inputs."""
        t = self.graph.tasks[i]
        h = xxhash.xxh3_128()
        for part in (t.record_key, t.args_digest or "", code_digest(t.func),
                     repr(sorted(decision.inputs.items())), repr(sorted(decision.upstream.items()))):
            h.update(part.encode("utf-8", "surrogateescape"))
            h.update(b"\0")
        return h.hexdigest()

    def before_run(self, i: int) -> None:
        """Task ``i`` is about to (re)write its products: forget their old digests, and make
        the directories they go in (as pytask does: a task should not have to)."""
        for p in self.graph.tasks[i].products:
            self.hasher.forget(p)
            parent = os.path.dirname(p)
            if parent not in self._made_dirs:
                try:
                    self.disk.makedirs(parent)
                except OSError:
                    pass  # the task will say what is wrong when it writes
                self._made_dirs.add(parent)

    def missing_products(self, i: int, reported: dict[str, Any] | None = None) -> list[str]:
        reported = reported or {}
        return [p for p in self.graph.tasks[i].products
                if p not in reported and self.disk.stat(p) is None]

    def new_record(self, i: int, decision: Decision, duration: float,
                   reported: dict[str, Any] | None = None) -> dict[str, Any]:
        """The record of task ``i`` having just succeeded (its products exist).
        ``reported``: the products' digests as the process that wrote them found them."""
        t = self.graph.tasks[i]
        products = {}
        for p in t.products:
            got = reported.get(p) if reported is not None else None
            if got is not None:
                digest, size, mtime_ns, ino = got
                self.hasher.remember(p, size, mtime_ns, ino, digest)
                products[p] = digest
            else:
                self.hasher.forget(p)
                products[p] = self.hasher.digest(p)
        code = code_digest(t.func)
        h = xxhash.xxh3_64()
        for part in (code, t.args_digest, decision.inputs, products, decision.upstream):
            h.update(repr(sorted(part.items()) if isinstance(part, dict) else part).encode(
                "utf-8", "surrogateescape"))
        if (t.buildmode or self.default_mode) is BuildMode.ALWAYS:
            # Its effects are unknown: each run counts as a change downstream.
            h.update(str(time.time_ns()).encode())
        # Kept small: 10,000 of these are read at the start of every run. Empty parts are
        # left out; paths given as arguments are in "p"/"d" already, so not in "av".
        rec: dict[str, Any] = {"n": t.name, "c": code, "a": t.args_digest, "p": products,
                               "t": round(duration, 4), "s": h.hexdigest()}
        av = arg_reprs(_described(t))
        if av:
            rec["av"] = av
        if decision.inputs:
            rec["d"] = decision.inputs
        if decision.upstream:
            rec["u"] = decision.upstream
        return rec


def _described(t: Any) -> dict[str, Any]:
    """The arguments a record describes: tracked ones, paths excepted."""
    args = t.tracked_arguments
    if t.path_params:
        args = {k: v for k, v in args.items() if k not in t.path_params}
    return args


def _args_diff(old: dict[str, str] | None, arguments: dict[str, Any]) -> str:
    if not isinstance(old, dict):
        old = {}
    new = arg_reprs(arguments)
    changes = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if a != b:
            if a is None:
                changes.append(f"{k} added ({b})")
            elif b is None:
                changes.append(f"{k} removed (was {a})")
            else:
                changes.append(f"{k} {a} -> {b}")
    return ", ".join(changes)


def predict(graph: TaskGraph, planner: Planner) -> list[Decision]:
    """What a run would do, decided without running anything (for ``--dry-run``).

    A task downstream of one that would run is counted as running too (its inputs may
    change; at run time it is skipped if they turn out the same). A chain runs as a whole;
    a skipped producer runs if a consumer of its value runs.
    """
    n = len(graph.tasks)
    own = [planner.check(i) for i in graph.order]
    decisions: list[Decision] = [Decision(False)] * n
    for i, d in zip(graph.order, own):
        decisions[i] = d
    for_value: set[int] = set()  # rerun only to make a value: its dependents need not rerun
    consumers = graph.value_consumers()
    changed = True
    while changed:
        changed = False
        for i in graph.order:
            d = decisions[i]
            if d.run:
                continue
            why = None
            for u in graph.upstream[i]:
                if decisions[u].run and u not in for_value:
                    why = Reason(Why.UPSTREAM, graph.tasks[u].label)
                    break
            unit = graph.units[graph.unit_of[i]] if graph.units else (i,)
            if why is None and any(decisions[m].run for m in unit if m != i):
                why = Reason(Why.UPSTREAM, graph.tasks[unit[0]].label)
            if why is None:
                for c in consumers.get(i, ()):
                    if decisions[c].run:
                        why = Reason(Why.VALUE_NEEDED, graph.tasks[c].label)
                        for_value.add(i)
                        break
            if why is not None:
                decisions[i] = Decision(True, d.reasons + (why,), d.inputs, d.upstream)
                changed = True
    return decisions
