"""Is a task up to date? ``Checker.check`` compares a task with its record and answers a
``Decision`` with its reasons; ``Checker.new_record`` writes the record of a run.

A task is up to date when it succeeded before and, compared with that record: its code
and bound arguments are the same, every dependency has the same content, every task it
names in ``depends_on`` (or takes a value from) is in the same state, and every product
exists with the content recorded then. All file access goes through the ``FileHasher``
and the ``Disk``; records come from the ``State``.
"""

from __future__ import annotations

import os
import pathlib
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import xxhash

from .channel import substitute
from .decision import Decision, Reason, Why
from .fingerprint import FileHasher, code_digest
from .fs import Disk, PathProblem, RealDisk, file_stat
from .graph import TaskGraph
from .modes import BuildMode
from .paths import show_path
from .postconditions import PostconditionError
from .signature import make_path, spec_of
from .state import One, Record, compact_mapping
from .task import disk_key


def arg_reprs(arguments: Mapping[str, Any]) -> dict[str, str]:
    """Short readable forms of arguments, kept in the record to say what changed. A task
    given as an argument (its value is passed) is named by its identity, never its status."""
    out = {}
    for k, v in arguments.items():
        try:
            r = repr(v if type(v) in _PLAIN else substitute(v, _ValueOf, _is_task))
        except Exception:  # noqa: BLE001 - a user's __repr__ may raise anything
            r = f"<{type(v).__name__}>"
        out[k] = r if len(r) <= 80 else r[:77] + "..."
    return out


def _is_task(x: Any) -> bool:
    from .task import Task

    return isinstance(x, Task)


# The inputs and upstream stamps of a task that has none: one shared, read-only mapping
# (a run keeps every task's decision).
_NONE: Mapping[str, Any] = MappingProxyType({})

# A run keeps every task's decision: those of the tasks a first run finds with no record,
# no inputs and no upstream are this one (both are immutable).
_NEVER_RAN = Reason(Why.NEVER_RAN)
_FIRST_RUN = Decision(True, (_NEVER_RAN,), _NONE, _NONE)
# The decision of a task found up to date that reads nothing (shared: immutable).
_UP_TO_DATE = Decision(False, (), _NONE, _NONE)

_PosixPath = pathlib.PosixPath
_S_ISREG = stat.S_ISREG

# Argument types that hold no task: shown as they are.
_PLAIN = frozenset({str, int, float, bool, type(None), bytes})


class _ValueOf:
    """Stands for a task's return value in a recorded argument."""

    def __init__(self, task: Any) -> None:
        self.text = f"<value of {task.name!r}>"

    def __repr__(self) -> str:
        return self.text


class Checker:
    """Compares tasks with their records (through the hasher and the disk) and builds the
    record of a task that succeeded. ``assume_changed``: tasks taken to have changed their
    products although the files say otherwise (a dry run, where nothing really runs)."""

    def __init__(
        self,
        graph: TaskGraph,
        records: Mapping[str, Record],
        hasher: FileHasher,
        disk: Disk,
        *,
        force: bool = False,
        default_mode: BuildMode = BuildMode.IF_NEW,
    ) -> None:
        self.graph = graph
        self.records = records
        self.hasher = hasher
        self.disk = disk
        self._real = type(disk) is RealDisk  # os.stat straight away
        self.force = force
        self.default_mode = default_mode
        self.assume_changed: set[int] = set()
        # Products' paths up to their last "/": their directories, made once per run.
        self._made_heads: set[str] = set()
        # Each task's code digest, taken once per run, when it is first checked: its record
        # keeps the state the run decided on (a bound method may change its instance as it
        # runs). The memo shares the digest of one closure or instance among its tasks.
        self._codes: list[str | None] = [None] * len(graph.tasks)  # by task, not a dict
        self._code_memo: dict[Any, str] = {}

    def code(self, i: int) -> str:
        """Task ``i``'s code digest in this run (see ``fingerprint.code_digest``)."""
        c = self._codes[i]
        if c is None:
            c = self._codes[i] = code_digest(self.graph.tasks[i].func, self._code_memo)
        return c

    def mode(self, i: int) -> BuildMode:
        return self.graph.tasks[i].buildmode or self.default_mode

    def check(self, i: int) -> Decision:
        """Decide whether task ``i`` must run; call once its dependencies are done.
        A path it names that cannot be read fails it, naming the path."""
        self.code(i)  # taken now, before the task runs: its record keeps this one
        try:
            d = self._check(i)
        except PathProblem as e:
            return Decision(
                False,
                (),
                fail=f"task {self.graph.tasks[i].label} cannot use {show_path(e.path)}: {e.reason}",
            )
        except PostconditionError as e:
            return Decision(False, (), fail=str(e))
        if d.run or d.fail or not self.assume_changed:
            return d
        for j in self.graph.upstream[i]:  # a dry run: upstream work would change inputs
            if j in self.assume_changed:
                return d.rerun(Reason(Why.UPSTREAM, self.graph.tasks[j].label))
        return d

    def check_all(self, units: Sequence[Sequence[int]]) -> list[Decision]:
        """``check`` for each task of each of ``units``: their decisions in one list, unit
        after unit (not a list per unit: 100,000 lists of one are 9 MB)."""
        check = self.check
        if self.force or self.assume_changed:
            return [check(m) for unit in units for m in unit]
        quick = self._quick()
        return [quick(m) or check(m) for unit in units for m in unit]

    def _quick(self) -> Callable[[int], Decision | None]:
        """A function answering as ``check`` for the usual task found up to date (the
        default build mode, files only as products, nothing named upstream, its record
        matching, its inputs and products as recorded) or never run; None when not that
        case (``check`` then decides, and says why). What it reads is bound once, not
        looked up per task."""
        tasks, explicit, records = self.graph.tasks, self.graph.explicit, self.records
        default_mode, if_new = self.default_mode, BuildMode.IF_NEW
        digest, codes, code = self.hasher.digest, self._codes, self.code
        unchanged, downstream = self.hasher.unchanged, self.graph.downstream
        last: list[Any] = [None, ""]  # the function last seen, its code digest
        # The decisions last made for a task reading one file, never run (one) and up to
        # date (with what it read): the next task reading the same (a sweep's config
        # file) shares it (decisions are frozen).
        first: list[Any] = [None]
        shared: list[Any] = [None, None]

        def quick(i: int) -> Decision | None:
            t = tasks[i]
            if (
                t.ensure
                or t.unfingerprintable
                or explicit[i]
                or (t.buildmode or default_mode) is not if_new
            ):
                return None
            rec = records.get(t.record_key)
            deps = t.dependencies
            if rec is None:
                # Never ran: what _check answers for such a task (nothing upstream), its
                # code digest taken now, as check does.
                if codes[i] is None:
                    code(i)
                if not deps:
                    return _FIRST_RUN
                try:  # what it reads, as it was before it runs (its record keeps it)
                    if len(deps) > 1:
                        return Decision(
                            True, _FIRST_RUN.reasons, {p: digest(p) for p in deps}, _NONE
                        )
                    p = deps[0]
                    d = digest(p)
                except PathProblem:
                    return None
                made = first[0]
                if made is None or made.inputs._k != p or made.inputs._v != d:
                    made = first[0] = Decision(True, _FIRST_RUN.reasons, One(p, d), _NONE)
                return made
            if rec.failed or rec.incomplete or rec.args != t.args_digest:
                return None
            f = t.func
            if f is last[0]:  # the tasks of one function, one after the other: one digest
                c = last[1]
            else:
                c = codes[i] or code(i)
                last[0], last[1] = f, c
            if rec.code != c:
                return None
            recorded = rec.products
            read_later = downstream[i]  # else its products are looked at here alone
            try:
                if deps:
                    # What it read, as recorded: the decision holds the record's own
                    # mapping (equal to the one check makes; none made for each task).
                    read = rec.inputs
                    if len(read) != len(deps):
                        return None
                    for p in deps:
                        d = read.get(p)
                        if d is None or digest(p) != d:
                            return None
                for p in t.products:
                    d = recorded.get(p)
                    if d is None:
                        return None
                    if not read_later:
                        same = unchanged(p, d)
                        if same is not None:
                            if same:
                                continue
                            return None
                    if digest(p) != d:
                        return None
            except PathProblem:
                return None
            if not deps:
                return _UP_TO_DATE
            if shared[0] is not read:
                shared[0], shared[1] = read, Decision(False, (), read, _NONE)
            return shared[1]

        return quick

    def unmet(self, i: int) -> list[str]:
        """The postconditions of task ``i`` that do not hold now (``PostconditionError``
        if one raises)."""
        t = self.graph.tasks[i]
        return [p.name for p in t.ensure if not p.holds(t.arguments, t.label)]

    def after_run(self, i: int) -> str | None:
        """Why task ``i``, which just succeeded, failed after all (a postcondition that
        does not hold, or raises), or None."""
        t = self.graph.tasks[i]
        if not t.ensure:
            return None
        try:
            unmet = self.unmet(i)
        except PostconditionError as e:
            return str(e)
        if not unmet:
            return None
        return "; ".join(
            f"task {t.label}: postcondition {n} does not hold after the run" for n in unmet
        )

    def _check(self, i: int) -> Decision:
        t = self.graph.tasks[i]
        rec = self.records.get(t.record_key)
        mode = self.mode(i)
        if mode is BuildMode.NEVER or mode is BuildMode.IF_MISSING:
            return self._by_presence(i, rec, mode)
        reasons: list[Reason] = []
        if mode is BuildMode.ALWAYS:
            reasons.append(Reason(Why.ALWAYS))
        if self.force:
            reasons.append(Reason(Why.FORCED))
        if t.ensure:
            reasons.extend(Reason(Why.POSTCONDITION, n) for n in self.unmet(i))
            if not t.products:  # work done outside files: the postconditions say it is done
                read = {p: self.hasher.digest(p) for p in t.dependencies}
                return Decision(bool(reasons), tuple(reasons), read, self.stamps(i))
        if rec is not None and rec.failed:
            reasons.append(Reason(Why.AFTER_FAILURE, ", ".join(rec.failed.values())))
        if t.unfingerprintable:
            reasons.append(Reason(Why.UNFINGERPRINTABLE, t.unfingerprintable))
        if rec is None:
            reasons.append(_NEVER_RAN)
        else:
            if rec.incomplete:
                reasons.append(Reason(Why.INCOMPLETE))
            if rec.code != self.code(i):
                reasons.append(Reason(Why.CODE_CHANGED))
            if rec.args != t.args_digest:
                reasons.append(Reason(Why.ARGS_CHANGED, _args_diff(rec.arg_reprs, _described(t))))

        inputs: Mapping[str, str | None] = {} if t.dependencies else _NONE
        for p in t.dependencies:
            d = inputs[p] = self.hasher.digest(p)  # type: ignore[index]  # a dict here
            if rec is not None and d != rec.inputs.get(p):
                why = Why.INPUT_MISSING if d is None else Why.INPUT_CHANGED
                reasons.append(Reason(why, show_path(p)))

        upstream = self.stamps(i)
        if rec is not None:
            for j in self.graph.explicit[i]:
                u = self.graph.tasks[j]
                if rec.upstream.get(u.record_key) != upstream[u.record_key]:
                    reasons.append(Reason(Why.UPSTREAM, u.label))

        if rec is not None:
            for p in t.products:
                if reasons:  # running anyway: only say what is missing, hash nothing
                    if self.disk.stat(p) is None:
                        reasons.append(Reason(Why.PRODUCT_MISSING, show_path(p)))
                    continue
                d = self.hasher.digest(p)
                if d is None:
                    reasons.append(Reason(Why.PRODUCT_MISSING, show_path(p)))
                elif d != rec.products.get(p):
                    reasons.append(Reason(Why.PRODUCT_CHANGED, show_path(p)))
        if len(reasons) == 1 and reasons[0] is _NEVER_RAN and inputs is _NONE and upstream is _NONE:
            return _FIRST_RUN  # most tasks of a first run: one decision (immutable) for all
        return Decision(bool(reasons), tuple(reasons), inputs, upstream)

    def _by_presence(self, i: int, rec: Record | None, mode: BuildMode) -> Decision:
        """NEVER and IF_MISSING look only at whether the products are there."""
        t = self.graph.tasks[i]
        missing = [p for p in t.products if self.disk.stat(p) is None]
        inputs = {p: self.hasher.digest(p) for p in t.dependencies}
        upstream = self.stamps(i)
        if mode is BuildMode.NEVER:
            if missing:
                return Decision(
                    False,
                    (),
                    inputs,
                    upstream,
                    fail=(
                        f"task {t.label} has BuildMode.NEVER (it is never run) but its product(s) "
                        f"{', '.join(show_path(p) for p in missing)} do not exist: make them, or "
                        "give the task another build mode"
                    ),
                )
            return Decision(False, (), inputs, upstream)
        reasons = [Reason(Why.PRODUCT_MISSING, show_path(p)) for p in missing]
        reasons.extend(Reason(Why.POSTCONDITION, n) for n in self.unmet(i))
        if self.force:
            reasons.insert(0, Reason(Why.FORCED))
        if not t.products and not t.ensure and rec is None:
            reasons.append(Reason(Why.NEVER_RAN))
        return Decision(bool(reasons), tuple(reasons), inputs, upstream)

    def stamps(self, i: int) -> dict[str, str]:
        """The state of the tasks ``i`` names in depends_on or takes values from."""
        if not self.graph.explicit[i]:
            return _NONE  # type: ignore[return-value]  # read-only, shared: most tasks
        out = {}
        for j in self.graph.explicit[i]:
            key = self.graph.tasks[j].record_key
            rec = self.records.get(key)
            out[key] = rec.stamp if rec is not None else ""
        return out

    def fingerprint(self, i: int, decision: Decision) -> str:
        """Names this exact piece of work: the task, its arguments, code and inputs."""
        t = self.graph.tasks[i]
        h = xxhash.xxh3_128()
        for part in (
            disk_key(t.record_key),  # as spelt before: a job outliving an upgrade is found
            t.args_digest or "",
            self.code(i),
            repr(sorted(decision.inputs.items())),
            repr(sorted((disk_key(k), v) for k, v in decision.upstream.items())),
        ):
            h.update(part.encode("utf-8", "surrogateescape"))
            h.update(b"\0")
        return h.hexdigest()

    def before_run(self, i: int) -> None:
        """Task ``i`` is about to (re)write its products: forget their old digests, and make
        the directories they go in (as pytask does: a task should not have to)."""
        forget, made = self.hasher.forget, self._made_heads
        for p in self.graph.tasks[i].products:
            forget(p)
            # Up to its last "/": the same for every file of a directory, and cheaper than
            # os.path.dirname (taken the first time only).
            head = p[: p.rfind("/") + 1]
            if head not in made:
                made.add(head)
                try:
                    self.disk.makedirs(os.path.dirname(p))
                except OSError:
                    pass  # the task will say what is wrong when it writes

    def missing_products(
        self, i: int, reported: Mapping[str, Any] | None = None
    ) -> tuple[list[str], dict[str, Any]]:
        """The products of task ``i`` that are not there (those ``reported`` by the process
        that wrote them are), and the stat of the others, for ``new_record``: one stat per
        product."""
        missing: list[str] = []
        stats: dict[str, Any] = {}
        if self._real:
            # os.stat's own result (``new_record`` takes it as it is): no FileStat made.
            for p in self.graph.tasks[i].products:
                if reported is None or p not in reported:
                    try:
                        stats[p] = os.stat(p)
                    except (FileNotFoundError, NotADirectoryError):
                        missing.append(p)
                    except OSError:  # there, but not usable: hashing it says why
                        pass
            return missing, stats
        stat = self.disk.stat
        for p in self.graph.tasks[i].products:
            if reported is None or p not in reported:
                try:
                    st = stat(p)
                except PathProblem:  # there, but not usable: hashing it says why
                    continue
                if st is None:
                    missing.append(p)
                else:
                    stats[p] = st
        return missing, stats

    def new_record(
        self,
        i: int,
        inputs: Mapping[str, str | None],
        upstream: Mapping[str, str],
        duration: float,
        reported: Mapping[str, Any] | None = None,
        stats: Mapping[str, Any] | None = None,
        failed: Mapping[str, str] | None = None,
    ) -> Record:
        """The record of task ``i`` having just succeeded (its products exist): ``inputs``
        and ``upstream`` as they were before it ran; ``reported``: the products' digests as
        the process that wrote them found them; ``stats``: the products as just stat'ed;
        ``failed``: the dependencies that had failed when it ran (``run_if="all_done"``;
        record key -> label), so that it runs again next time."""
        if not (upstream or failed):
            rec = self.usual_record(i, duration, reported, stats, inputs)
            if rec is not None:
                return rec
        t = self.graph.tasks[i]
        hasher = self.hasher
        products: dict[str, str | None] = {}
        for p in t.products:
            got = reported.get(p) if reported is not None else None
            if got is not None:
                digest, size, mtime_ns, ino, *ctime = got
                hasher.remember(p, size, mtime_ns, ino, digest, *ctime)
                products[p] = digest
            else:
                hasher.forget(p)
                st = stats.get(p) if stats else None
                if type(st) is os.stat_result:  # as missing_products took it
                    st = file_stat(st)
                try:
                    products[p] = hasher.digest(p, st)
                except PathProblem:  # unreadable: whoever needs it next fails, naming it
                    products[p] = "unreadable"
        code = self._codes[i] or self.code(i)
        # One digest of the parts written one after the other (as fed to a streaming hash
        # before: the stamps of existing records stay valid).
        text = (
            f"{code!r}{t.args_digest!r}{_items(inputs) if inputs else '[]'}"
            f"{_items(products) if products else '[]'}"
            f"{_keyed_items(upstream) if upstream else '[]'}"
            f"{_keyed_items(failed) if failed else '[]'}"
        )
        if (t.buildmode or self.default_mode) is BuildMode.ALWAYS or (t.ensure and not t.products):
            # Its effects are unknown (or outside files, known by its postconditions only):
            # each run counts as a change downstream.
            text += str(time.time_ns())
        described = arg_reprs(_described(t))
        return Record(
            t.record_key,
            t.name,
            code,
            t.args_digest,
            compact_mapping(products),
            compact_mapping(inputs, copy=True) if inputs else _NONE,
            compact_mapping(upstream, copy=True) if upstream else _NONE,
            compact_mapping(described) if described else _NONE,
            # Four decimals, as round(duration, 4) but without its decimal conversion.
            int(duration * 10000 + 0.5) / 10000,
            xxhash.xxh3_64_hexdigest(text.encode("utf-8", "surrogateescape")),
            failed=compact_mapping(failed, copy=True) if failed else _NONE,
        )

    def usual_record(
        self,
        i: int,
        duration: float,
        reported: Mapping[str, Any] | None,
        stats: Mapping[str, Any] | None,
        inputs: Mapping[str, str | None] = _NONE,
    ) -> Record | None:
        """``new_record`` of task ``i`` with no upstream or failed dependencies, for the
        usual such task (one product, a regular file just stat'ed by
        ``missing_products``, not reported, not run each time): the same record, without
        the general path's dicts. None when not that case (``new_record`` then)."""
        t = self.graph.tasks[i]
        products = t.products
        if (
            reported
            or not stats
            or len(products) != 1
            or (t.buildmode or self.default_mode) is BuildMode.ALWAYS
        ):
            return None
        p = products[0]
        s = stats.get(p)
        if type(s) is not os.stat_result or not _S_ISREG(s.st_mode):
            return None
        try:
            d = self.hasher.written(p, s)
        except PathProblem:  # unreadable: whoever needs it next fails, naming it
            d = "unreadable"
        code = self._codes[i] or self.code(i)
        args = t.args_digest
        # The stamp's text as new_record spells it for one product, its inputs, nothing else.
        text = f"{code!r}{args!r}{_items(inputs) if inputs else '[]'}[({p!r}, {d!r})][][]"
        return Record(
            t.record_key,
            t.name,
            code,
            args,
            One(p, d),
            compact_mapping(inputs, copy=True) if inputs else _NONE,
            _NONE,
            _described_reprs(t),
            int(duration * 10000 + 0.5) / 10000,
            xxhash.xxh3_64_hexdigest(text.encode("utf-8", "surrogateescape")),
            False,
            _NONE,
        )


def _items(part: Mapping[str, Any] | None) -> str:
    """A mapping as the record's stamp spells it: its sorted items' repr."""
    if not part:
        return "[]"
    if len(part) == 1:  # most products: the same text without a sorted list of a tuple
        for k, v in part.items():
            return f"[({k!r}, {v!r})]"
    return repr(sorted(part.items()))


def _keyed_items(part: Mapping[str, Any]) -> str:
    """A mapping by record key as the stamp spells it: each key as the log does (``"p:"``
    before a product's path, as every key was in memory before): stamps written by
    earlier versions stay valid, so a rerun with the same products changes no reader."""
    return repr(sorted((disk_key(k), v) for k, v in part.items()))


def _described(t: Any) -> dict[str, Any]:
    """The arguments a record describes: tracked ones, paths excepted."""
    spec = spec_of(t.func)
    ignored = t.ignored
    if spec.plain and not t.missing and (ignored is spec.ignored or not (ignored or spec.ignored)):
        # What binding the call again gives (``signature.bind``), in the parameters' order,
        # without the dict of every argument that ``Task.arguments`` builds to get there.
        # From the arguments as the task keeps them: a PosixPath it was given is kept as
        # its str (bit k of ``_str_paths`` for parameter k) and made a path again only for
        # an argument described here, not for the paths left out (``Task.args`` would
        # parse every one of them, to be thrown away).
        layout = _layouts.get(id(spec))
        if layout is None or layout[0] is not spec:
            layout = _layouts[id(spec)] = (spec, _layout(spec))
        given, kwargs, as_str = t._args, t._kwargs, t._str_paths
        n = len(given)
        out = {}
        for k, name in layout[1]:
            if k < n:
                v = given[k]
            elif name in kwargs:
                v = kwargs[name]
            else:
                out[name] = spec.defaults[name]
                continue
            out[name] = make_path(_PosixPath, v) if as_str and as_str >> k & 1 else v
        return out
    args = t.tracked_arguments
    if t.path_params:
        args = {k: v for k, v in args.items() if k not in t.path_params}
    return args


def _described_reprs(t: Any) -> Mapping[str, str]:
    """``arg_reprs(_described(t))`` as a record keeps it (``compact_mapping``; the shared
    empty one when there are none), without the dict of the arguments in between."""
    spec = spec_of(t.func)
    if t._rare is None:  # no missing or ignored arguments of its own: _described's test
        usual = spec.plain and not spec.ignored
    else:
        ignored = t.ignored
        usual = (
            spec.plain
            and not t.missing
            and (ignored is spec.ignored or not (ignored or spec.ignored))
        )
    if not usual:
        described = arg_reprs(_described(t))
        return compact_mapping(described) if described else _NONE
    layout = _layouts.get(id(spec))  # as _described does
    if layout is None or layout[0] is not spec:
        layout = _layouts[id(spec)] = (spec, _layout(spec))
    given, kwargs, as_str = t._args, t._kwargs, t._str_paths
    n = len(given)
    out: dict[str, str] = {}
    for k, name in layout[1]:
        if k < n or name in kwargs:
            v = given[k] if k < n else kwargs[name]
            if as_str and as_str >> k & 1:
                v = make_path(_PosixPath, v)
        else:
            v = spec.defaults[name]  # described as it is
        if type(v) in _PLAIN:
            r = repr(v)
            out[name] = r if len(r) <= 80 else r[:77] + "..."
        else:
            out.update(arg_reprs({name: v}))
    if len(out) == 1:
        for name, r in out.items():
            return One(name, r)
    return out or _NONE


def _layout(spec: Any) -> tuple[tuple[int, str], ...]:
    """The parameters a record describes (position, name): all but paths and ignored ones."""
    left_out = frozenset(spec.products + spec.dependencies) | spec.ignored
    return tuple((k, name) for k, name in enumerate(spec.names) if name not in left_out)


# Per function's spec (by id, the spec kept with it: an id is reused once freed): the
# parameters described, worked out once, not for every task.
_layouts: dict[int, tuple[Any, tuple[tuple[int, str], ...]]] = {}


def _args_diff(old: Mapping[str, str], arguments: Mapping[str, Any]) -> str:
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
