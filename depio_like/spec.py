"""Pipelines from a spec file: a YAML list of steps, each an instance of a registered task
with its arguments, some of them taken from another step's return value or product.

```yaml
name: wordcount            # optional; the pipeline's name
tasks: [mytasks]           # optional; the user's modules whose tasks this spec uses
steps:
  - id: corpus             # a name for this instance: [A-Za-z_][A-Za-z0-9_-]*
    task: make_corpus      # a registered task (or module:function)
    args:                  # what the spec fixes; every other parameter is left open
      out: build/corpus.txt
  - id: count
    task: count_words
    args:
      corpus: {product_of: corpus.out}     # the path corpus writes as its `out`
      out: build/counts.json
  - id: report
    task: summarise
    args:
      counts: {value_of: count}            # what count returns (in memory)
    depends_on: [corpus]                   # optional, extra ordering
```

Parameters the spec does not give are *open*: ``depio-like params`` lists them (JSON Schema
or a YAML form) and ``depio-like run SPEC --config FILLED.yaml`` takes their values. Every
problem is reported at once, each with the line it came from.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError, TaskDeclarationError
from .paramtypes import MISSING, Invalid, ParamInfo, convert, describe, parameters
from .registry import Entry, Registry, import_user_module, tasks_of_module
from .registry import load as load_registry
from .yamlfile import Doc
from .yamlfile import load as load_yaml

ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
TOP_KEYS = ("name", "description", "tasks", "steps")
STEP_KEYS = ("id", "task", "args", "depends_on", "always", "retries", "resources")
REF_KEYS = ("value_of", "product_of")


@dataclass(frozen=True)
class ValueOf:
    """``{value_of: step}``: the return value of ``step``."""

    step: str
    line: int


@dataclass(frozen=True)
class ProductOf:
    """``{product_of: step.param}`` (or ``step`` when it has one product parameter): the
    path(s) ``step`` writes as ``param``."""

    step: str
    param: str | None
    line: int


@dataclass
class Step:
    id: str
    task: str
    entry: Entry
    params: dict[str, ParamInfo]
    takes_any: bool  # the function has **kwargs
    args: dict[str, Any]  # given by the spec (ValueOf/ProductOf inside)
    line: int
    depends_on: list[tuple[str, int]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    def open_params(self) -> list[ParamInfo]:
        return [p for n, p in self.params.items() if n not in self.args]

    def refs(self) -> list[ValueOf | ProductOf]:
        return list(_refs(self.args))


@dataclass
class Spec:
    doc: Doc
    name: str
    description: str
    steps: dict[str, Step]
    registry: Registry

    @property
    def path(self) -> str:
        return self.doc.path

    def open_params(self) -> dict[str, list[ParamInfo]]:
        """The parameters left open, by step id (steps with none left out)."""
        out = {}
        for sid, step in self.steps.items():
            ps = step.open_params()
            if ps:
                out[sid] = ps
        return out


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[int, str]] = []

    def add(self, line: int, text: str) -> None:
        self.items.append((line, text))

    def raise_if_any(self) -> None:
        if self.items:
            self.items.sort(key=lambda x: x[0])
            raise SpecError("\n".join(dict.fromkeys(t for _, t in self.items)))


def _hint(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _refs(value: Any) -> Iterable[ValueOf | ProductOf]:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, (ValueOf, ProductOf)):
            yield v
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())


def add_import_dirs(dirs: Iterable[str]) -> None:
    """Make the user's task modules importable (``sys.path``; Slurm jobs and spawned workers
    start from the driver's ``sys.path``)."""
    for d in reversed([os.path.abspath(d) for d in dirs]):
        if d not in sys.path:
            sys.path.insert(0, d)


def load_spec(
    path: str | os.PathLike[str], modules: Iterable[str] = (), *, installed: bool = True
) -> Spec:
    """Read and check the spec at ``path``. ``modules``: more task modules (``--tasks``);
    ``installed``: also the installed packages' entry points. SpecError lists every
    problem, each with its line."""
    doc = load_yaml(path)
    problems = _Problems()
    data = doc.data
    if not isinstance(data, dict):
        raise SpecError(
            f"{doc.at()}: a spec is a mapping with a `steps:` list, got {describe(data)}"
        )
    for k in data:
        if k not in TOP_KEYS:
            problems.add(
                doc.line(k),
                f"{doc.at(k)}: unknown key {k!r}{_hint(str(k), TOP_KEYS)}; "
                f"a spec has {', '.join(TOP_KEYS)}",
            )
    name = data.get("name")
    if name is not None and not isinstance(name, str):
        problems.add(
            doc.line("name"), f"{doc.at('name')}: name must be a str, got {describe(name)}"
        )
    description = data.get("description") or ""
    wanted = data.get("tasks") or []
    if isinstance(wanted, str):
        wanted = [wanted]
    if not isinstance(wanted, list) or not all(isinstance(m, str) for m in wanted):
        problems.add(
            doc.line("tasks"),
            f"{doc.at('tasks')}: tasks must list module names, got {describe(wanted)}",
        )
        wanted = []
    user_modules = list(dict.fromkeys([*modules, *wanted]))
    # As `python script.py` does for the script's directory (and `module:function` tasks too).
    add_import_dirs([os.path.dirname(os.path.abspath(doc.path)), os.getcwd()])
    registry = load_registry((), installed=installed)
    for m in user_modules:
        try:
            mod = import_user_module(m)
        except ImportError as e:
            where = doc.at("tasks", wanted.index(m)) if m in wanted else f"--tasks {m}"
            problems.add(doc.line("tasks"), f"{where}: {e}")
            continue
        for entry in tasks_of_module(mod, f"module {m}"):
            registry.add(entry)

    steps_raw = data.get("steps")
    steps: dict[str, Step] = {}
    if not isinstance(steps_raw, list) or not steps_raw:
        problems.add(
            doc.line("steps"),
            f"{doc.at('steps') if 'steps' in data else doc.at()}: "
            "a spec needs `steps:`, a list of steps (each with an id, a task and its "
            "args)",
        )
        steps_raw = []
    first_line: dict[str, int] = {}
    for i, raw in enumerate(steps_raw):
        step = _read_step(doc, i, raw, registry, problems, first_line)
        if step is not None:
            steps[step.id] = step
    ids = set(first_line)
    for step in steps.values():
        _check_refs(doc, step, steps, ids, problems)
    _check_cycles(doc, steps, problems)
    problems.raise_if_any()
    return Spec(
        doc, name or os.path.splitext(os.path.basename(doc.path))[0], description, steps, registry
    )


def _read_step(
    doc: Doc, i: int, raw: Any, registry: Registry, problems: _Problems, first_line: dict[str, int]
) -> Step | None:
    here = ("steps", i)
    line = doc.line(*here)
    if not isinstance(raw, dict):
        problems.add(
            line,
            f"{doc.at(*here)}: a step is a mapping with id, task and args, got {describe(raw)}",
        )
        return None
    for k in raw:
        if k not in STEP_KEYS:
            problems.add(
                doc.line(*here, k),
                f"{doc.at(*here, k)}: unknown key {k!r} in a step"
                f"{_hint(str(k), STEP_KEYS)}; a step has {', '.join(STEP_KEYS)}",
            )
    sid = raw.get("id")
    if not isinstance(sid, str) or not ID.match(sid):
        problems.add(
            line,
            f"{doc.at(*here, 'id')}: each step needs an `id:` made of letters, "
            f"digits, _ and - (not starting with a digit or -), got {describe(sid)}",
        )
        return None
    if sid in first_line:
        problems.add(
            line,
            f"{doc.at(*here, 'id')}: step id {sid!r} is used twice (first on "
            f"line {first_line[sid]})",
        )
        return None
    first_line[sid] = doc.line(*here, "id")
    tname = raw.get("task")
    if not isinstance(tname, str) or not tname:
        problems.add(
            line,
            f"{doc.at(*here, 'task')}: step {sid!r} needs `task:`, the name of "
            f"a registered task, got {describe(tname)}",
        )
        return None
    try:
        entry = registry.lookup(tname)
    except LookupError as e:
        problems.add(doc.line(*here, "task"), f"{doc.at(*here, 'task')}: step {sid!r}: {e}")
        return None
    try:
        params = {p.name: p for p in parameters(entry.func)}
    except TaskDeclarationError as e:
        problems.add(
            doc.line(*here, "task"),
            f"{doc.at(*here, 'task')}: step {sid!r}: task {tname!r} cannot be used: {e}",
        )
        return None
    sig = inspect.signature(entry.function)
    takes_any = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    args_raw = raw.get("args")
    args: dict[str, Any] = {}
    if args_raw is None:
        args_raw = {}
    if not isinstance(args_raw, dict):
        problems.add(
            doc.line(*here, "args"),
            f"{doc.at(*here, 'args')}: step {sid!r}: args "
            f"must be a mapping of parameter: value, got {describe(args_raw)}",
        )
        args_raw = {}
    for name, value in args_raw.items():
        at = (*here, "args", name)
        if not isinstance(name, str) or (name not in params and not takes_any):
            known = list(params)
            problems.add(
                doc.line(*at),
                f"{doc.at(*at)}: step {sid!r}: task {tname!r} has no "
                f"parameter {name!r}{_hint(str(name), known)}; its parameters: "
                f"{', '.join(known) or 'none'}",
            )
            continue
        parsed = _parse(doc, at, value, problems)
        if parsed is _BAD:
            continue
        p = params.get(name)
        if p is not None and not any(True for _ in _refs(parsed)):
            try:
                parsed = convert(parsed, p.type)
            except Invalid as e:
                problems.add(
                    doc.line(*at),
                    f"{doc.at(*at)}: {sid}.{name}{e.where}: expected "
                    f"{e.expected}, got {describe(e.value)}{_yaml_hint(e)}",
                )
                continue
        args[name] = parsed
    depends = raw.get("depends_on") or []
    if isinstance(depends, str):
        depends = [depends]
    deps: list[tuple[str, int]] = []
    if not isinstance(depends, list) or not all(isinstance(d, str) for d in depends):
        problems.add(
            doc.line(*here, "depends_on"),
            f"{doc.at(*here, 'depends_on')}: step "
            f"{sid!r}: depends_on lists step ids, got {describe(depends)}",
        )
    else:
        deps = [
            (
                d,
                doc.line(*here, "depends_on", j)
                if isinstance(raw.get("depends_on"), list)
                else doc.line(*here, "depends_on"),
            )
            for j, d in enumerate(depends)
        ]
    options = {k: raw[k] for k in ("always", "retries", "resources") if k in raw}
    if "always" in options and type(options["always"]) is not bool:
        problems.add(
            doc.line(*here, "always"),
            f"{doc.at(*here, 'always')}: step {sid!r}: "
            f"always must be true or false, got {describe(options['always'])}",
        )
    return Step(sid, tname, entry, params, takes_any, args, line, deps, options)


_BAD = object()


def _parse(doc: Doc, at: tuple[Any, ...], value: Any, problems: _Problems) -> Any:
    """``value`` with its references (``{value_of: x}``, ``{product_of: x.p}``) as
    ValueOf / ProductOf; _BAD after reporting a malformed one."""
    if isinstance(value, list):
        out = [_parse(doc, (*at, i), v, problems) for i, v in enumerate(value)]
        return _BAD if any(v is _BAD for v in out) else out
    if not isinstance(value, dict):
        return value
    ref_keys = [k for k in value if k in REF_KEYS]
    if not ref_keys:
        out_d = {k: _parse(doc, (*at, k), v, problems) for k, v in value.items()}
        return _BAD if any(v is _BAD for v in out_d.values()) else out_d
    line = doc.line(*at, ref_keys[0])
    if len(value) != 1:
        problems.add(
            line,
            f"{doc.at(*at, ref_keys[0])}: a reference is one key, "
            f"{{value_of: STEP}} or {{product_of: STEP.PARAM}}; got the keys "
            f"{', '.join(map(str, value))}",
        )
        return _BAD
    kind = ref_keys[0]
    target = value[kind]
    if not isinstance(target, str) or not target:
        problems.add(
            line,
            f"{doc.at(*at, kind)}: {kind} takes a step id"
            f"{'' if kind == 'value_of' else ' (or STEP.PARAM)'}, got {describe(target)}",
        )
        return _BAD
    if kind == "value_of":
        return ValueOf(target, line)
    sid, dot, param = target.partition(".")
    return ProductOf(sid, param if dot else None, line)


def _yaml_hint(e: Invalid) -> str:
    if type(e.value) is bool and "str" in e.expected:
        return " (YAML reads yes/no/on/off/true/false as booleans: quote it, 'no')"
    return ""


def _check_refs(
    doc: Doc, step: Step, steps: dict[str, Step], ids: set[str], problems: _Problems
) -> None:
    for ref in step.refs():
        kind = "value_of" if isinstance(ref, ValueOf) else "product_of"
        where = f"{doc.path}:{ref.line}"
        if ref.step not in ids:
            problems.add(
                ref.line,
                f"{where}: step {step.id!r}: {kind} names {ref.step!r}, which "
                f"is no step of this spec{_hint(ref.step, ids)}",
            )
            continue
        if isinstance(ref, ProductOf) and ref.step in steps:
            target = steps[ref.step]
            products = [p.name for p in target.params.values() if p.marker == "Product"]
            if ref.param is None:
                if len(products) != 1:
                    problems.add(
                        ref.line,
                        f"{where}: step {step.id!r}: product_of "
                        f"{ref.step!r} is ambiguous: task {target.task!r} has "
                        f"{len(products)} product parameters ({', '.join(products) or 'none'}); "
                        f"name one as {ref.step}.PARAM",
                    )
            elif ref.param not in products:
                problems.add(
                    ref.line,
                    f"{where}: step {step.id!r}: product_of "
                    f"{ref.step}.{ref.param}: {ref.param!r} is not a product "
                    f"parameter of task {target.task!r}{_hint(ref.param, products)}; "
                    f"its products: {', '.join(products) or 'none'}",
                )
    for d, line in step.depends_on:
        if d not in ids:
            problems.add(
                line,
                f"{doc.path}:{line}: step {step.id!r}: depends_on names {d!r}, "
                f"which is no step of this spec{_hint(d, ids)}",
            )


def _edges(step: Step) -> list[tuple[str, int, str]]:
    """(the step it needs, the line saying so, how) for each reference and depends_on."""
    out = [
        (r.step, r.line, "value_of" if isinstance(r, ValueOf) else "product_of")
        for r in step.refs()
    ]
    out += [(d, line, "depends_on") for d, line in step.depends_on]
    return out


def _check_cycles(doc: Doc, steps: dict[str, Step], problems: _Problems) -> None:
    needs = {
        sid: [(d, line, how) for d, line, how in _edges(s) if d in steps]
        for sid, s in steps.items()
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in steps:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(needs[root]))]
        while stack:
            sid, it = stack[-1]
            edge = next(it, None)
            if edge is None:
                state[sid] = 2
                stack.pop()
                continue
            d, line, how = edge
            if state.get(d) == 1:  # back to a step on the current path: a cycle
                names = [s for s, _ in stack]
                cycle = names[names.index(d) :]
                links = []
                for i, a in enumerate(cycle):
                    b = cycle[i + 1] if i + 1 < len(cycle) else d
                    ln, hw = (
                        (line, how)
                        if i + 1 == len(cycle)
                        else next((ln_, hw_) for d_, ln_, hw_ in needs[a] if d_ == b)
                    )
                    links.append(f"{a} takes {hw} {b} (line {ln})")
                problems.add(
                    line, f"{doc.path}:{line}: the steps form a cycle: " + "; ".join(links)
                )
            elif d not in state:
                state[d] = 1
                stack.append((d, iter(needs[d])))


# -- config values ----------------------------------------------------------------------------


def read_config(spec: Spec, config: str | os.PathLike[str] | None) -> dict[str, dict[str, Any]]:
    """The open parameters' values from the config file (None: no file), checked against
    their types; SpecError listing every bad, unknown or missing field."""
    opened = spec.open_params()
    problems = _Problems()
    values: dict[str, dict[str, Any]] = {}
    if config is None:
        doc, data = None, dict[str, Any]()
    else:
        doc = load_yaml(config)
        data = doc.data if doc.data is not None else {}
        if not isinstance(data, dict):
            raise SpecError(
                f"{doc.at()}: a config file maps step ids to their parameters, got {describe(data)}"
            )
    for sid, given in data.items():
        assert doc is not None
        at = doc.at(sid)
        if sid not in spec.steps:
            problems.add(
                doc.line(sid),
                f"{at}: {sid!r} is no step of {spec.path}"
                f"{_hint(str(sid), spec.steps)}; its steps: {', '.join(spec.steps)}",
            )
            continue
        step = spec.steps[sid]
        if given is None:
            given = {}
        if not isinstance(given, dict):
            problems.add(
                doc.line(sid),
                f"{at}: {sid} takes a mapping of parameter: value, got {describe(given)}",
            )
            continue
        out = values.setdefault(sid, {})
        for name, value in given.items():
            where = doc.at(sid, name)
            line = doc.line(sid, name)
            if name in step.args:
                problems.add(
                    line,
                    f"{where}: {sid}.{name} is given by the spec "
                    f"({spec.path}:{spec.doc.line('steps', _index(spec, sid), 'args', name)}); "
                    "only open parameters go in the config",
                )
                continue
            p = step.params.get(name)
            if p is None:
                if step.takes_any and isinstance(name, str):
                    out[name] = value
                    continue
                open_names = [q.name for q in step.open_params()]
                problems.add(
                    line,
                    f"{where}: {sid}.{name}: task {step.task!r} has no such "
                    f"parameter{_hint(str(name), open_names)}; open: "
                    f"{', '.join(open_names) or 'none'}",
                )
                continue
            try:
                out[name] = convert(value, p.type)
            except Invalid as e:
                empty = " (required: fill it in)" if value is None and p.required else ""
                problems.add(
                    line,
                    f"{where}: {sid}.{name}{e.where}: expected {e.expected}, got "
                    f"{describe(e.value)}{_yaml_hint(e)}{empty}",
                )
    for sid, ps in opened.items():
        for p in ps:
            if p.required and p.name not in values.get(sid, {}):
                if doc is None:
                    problems.add(
                        0,
                        f"{spec.path}: {sid}.{p.name} ({p.type_text}) needs a value; "
                        "none given: write a config file (`depio-like params "
                        f"{spec.path} --format yaml > config.yaml`, fill it in) and "
                        "pass --config config.yaml",
                    )
                elif sid in data and name_given(data[sid], p.name):
                    pass  # reported above as a bad value
                else:
                    problems.add(
                        doc.line(sid) if sid in data else 0,
                        f"{doc.at(sid) if sid in data else doc.path}: {sid}.{p.name}: "
                        f"required ({p.type_text}), not given",
                    )
    problems.raise_if_any()
    return values


def name_given(given: Any, name: str) -> bool:
    return isinstance(given, dict) and name in given


def _index(spec: Spec, sid: str) -> int:
    for i, raw in enumerate(spec.doc.data.get("steps") or []):
        if isinstance(raw, dict) and raw.get("id") == sid:
            return i
    return 0


# -- the pipeline -----------------------------------------------------------------------------


def build(spec: Spec, values: dict[str, dict[str, Any]], **pipeline_options: Any) -> Any:
    """The Pipeline of ``spec`` with the open parameters set to ``values``."""
    from .pipeline import Pipeline
    from .task import Task

    pipeline_options.setdefault("name", spec.name)
    pipeline = Pipeline(**pipeline_options)
    order = _order(spec)
    tasks: dict[str, Task] = {}
    final: dict[str, dict[str, Any]] = {}
    for sid in order:
        step = spec.steps[sid]
        given = {**step.args, **values.get(sid, {})}
        extra_deps: list[Task] = []

        def resolve(v: Any) -> Any:  # called only within this iteration (B023 below)
            if isinstance(v, ValueOf):
                return tasks[v.step]
            if isinstance(v, ProductOf):
                target = spec.steps[v.step]
                pname = v.param or next(
                    p.name for p in target.params.values() if p.marker == "Product"
                )
                path = final[v.step].get(pname, MISSING)
                if path is MISSING:
                    path = target.params[pname].default
                if path is MISSING or path is None:
                    raise SpecError(
                        f"{spec.path}:{v.line}: step {sid!r}: product_of "  # noqa: B023
                        f"{v.step}.{pname}: step {v.step!r} gives no path for it"
                    )
                extra_deps.append(tasks[v.step])  # noqa: B023
                return path
            if isinstance(v, list):
                return [resolve(x) for x in v]
            if isinstance(v, dict):
                return {k: resolve(x) for k, x in v.items()}
            return v

        kwargs = {k: resolve(v) for k, v in given.items()}
        final[sid] = kwargs
        args = []
        for p in step.params.values():  # positional-only ones go by position
            if p.positional_only and p.name in kwargs:
                args.append(kwargs.pop(p.name))
        depends = [tasks[d] for d, _ in step.depends_on] + extra_deps
        try:
            t = _make_task(step, args, kwargs, depends)
        except (TaskDeclarationError, TypeError, ValueError) as e:
            raise SpecError(
                f"{spec.path}:{step.line}: step {sid!r} (task {step.task!r}): {e}"
            ) from None
        tasks[sid] = pipeline.add_task(t)
    return pipeline


def _make_task(step: Step, args: list[Any], kwargs: dict[str, Any], depends: list[Any]) -> Any:
    from .task import Task

    func = step.entry.func
    opts = step.options
    if hasattr(func, "task_function"):  # a @task function: its decorator's options count
        t0 = func(*args, **kwargs) if not depends else func(*args, **kwargs, depends_on=depends)
        if not isinstance(t0, Task):
            raise TypeError(f"{step.task} did not declare a task")
        return Task(
            step.id,
            t0.func,
            t0.args,
            t0.kwargs,
            t0.depends_on,
            always=opts.get("always", t0.always),
            resources=opts.get("resources", t0.resources),
            retries=opts.get("retries", t0.retries),
            buildmode=None if opts.get("always") else t0.buildmode,
        )
    return Task(
        step.id,
        func,
        args,
        kwargs,
        depends,
        always=opts.get("always", False),
        resources=opts.get("resources"),
        retries=opts.get("retries"),
    )


def _order(spec: Spec) -> list[str]:
    """Step ids, each after the steps it takes values or products from (the spec is
    acyclic: load_spec checked)."""
    done: dict[str, None] = {}
    for root in spec.steps:
        stack = [root]
        while stack:
            sid = stack[-1]
            if sid in done:
                stack.pop()
                continue
            pending = [d for d, _, _ in _edges(spec.steps[sid]) if d not in done]
            if pending:
                stack.extend(pending)
            else:
                done[sid] = None
                stack.pop()
    return list(done)
