"""The spec commands of the ``depio-like`` tool: ``tasks`` (the registered tasks and their
parameters), ``params SPEC`` (the parameters a spec leaves open, as JSON Schema or a YAML
form to fill in) and ``run SPEC --config FILLED.yaml``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .errors import PipelineError, SpecError
from .paramtypes import MISSING, ParamInfo, json_schema, parameters, plain_default, summary
from .registry import Registry

SPEC_SUFFIXES = (".yaml", ".yml")


def is_spec(path: str) -> bool:
    """Whether ``depio-like run`` takes ``path`` as a spec file (else a Python script)."""
    return path.lower().endswith(SPEC_SUFFIXES)


def add_commands(sub: Any) -> None:
    """Add ``tasks`` and ``params`` to the tool's subcommands."""
    t = sub.add_parser("tasks", help="list the registered tasks and their parameters")
    t.add_argument(
        "--tasks",
        action="append",
        default=[],
        metavar="MODULE",
        help="also the tasks of this module of yours (repeatable)",
    )
    t.add_argument("--format", choices=("text", "json"), default="text")
    p = sub.add_parser("params", help="print the parameters a spec file leaves open")
    p.add_argument("spec", help="the spec file (.yaml)")
    p.add_argument(
        "--format",
        choices=("yaml", "json"),
        default="yaml",
        help="yaml: a form to fill in (default); json: a JSON Schema",
    )
    p.add_argument(
        "--tasks",
        action="append",
        default=[],
        metavar="MODULE",
        help="also the tasks of this module of yours (repeatable)",
    )


def add_run_options(run_p: argparse.ArgumentParser) -> None:
    """The options ``depio-like run`` takes for a spec file."""
    run_p.add_argument(
        "--config", metavar="FILLED.yaml", help="for a spec file: the values of its open parameters"
    )
    run_p.add_argument(
        "--tasks",
        action="append",
        default=[],
        metavar="MODULE",
        help="for a spec file: also the tasks of this module of yours",
    )


def guarded(func: Any, *args: Any) -> int:
    """Run a command; a user's mistake is one message and exit 2, never a traceback."""
    try:
        return func(*args)
    except (PipelineError, ImportError) as e:
        for line in str(e).splitlines() or [""]:  # a SpecError: one problem a line
            print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


# -- depio-like tasks -------------------------------------------------------------------------


def tasks_command(args: argparse.Namespace) -> int:
    from .registry import load
    from .spec import add_import_dirs

    if args.tasks:
        add_import_dirs([os.getcwd()])
    reg = load(args.tasks)
    rows = _task_rows(reg)
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    else:
        print(_tasks_text(reg, rows))
    for problem in reg.problems:
        print(f"warning: could not load {problem}", file=sys.stderr)
    return 0


def _param_row(p: ParamInfo) -> dict[str, Any]:
    row: dict[str, Any] = {"name": p.name, "type": p.type_text, "required": p.required}
    if not p.required:
        d = plain_default(p.default)
        row["default"] = d if d is not MISSING else repr(p.default)
    row["marker"] = p.marker
    row["description"] = p.description
    return row


def _task_rows(reg: Registry) -> list[dict[str, Any]]:
    rows = []
    entries = [(n, e) for n, e in reg.entries.items()] + [
        (n, e) for n, es in reg.conflicts.items() for e in es
    ]
    for name, e in sorted(entries, key=lambda x: (x[0], x[1].source)):
        row: dict[str, Any] = {
            "name": name,
            "function": e.qualified,
            "source": e.source,
            "summary": summary(e.func),
        }
        if name in reg.conflicts:
            row["conflict"] = True
        try:
            row["parameters"] = [_param_row(p) for p in parameters(e.func)]
        except Exception as exc:  # noqa: BLE001 - list the others; say what is wrong here
            row["error"] = str(exc)
        rows.append(row)
    return rows


def _tasks_text(reg: Registry, rows: list[dict[str, Any]]) -> str:
    from tabulate import tabulate

    if not rows:
        return (
            "No tasks registered: install a package declaring the entry point group "
            "'depio_like.tasks', or pass --tasks MODULE."
        )
    out = []
    for row in rows:
        head = f"{row['name']}  ({row['function']}, from {row['source']})"
        if row.get("conflict"):
            head += "  [name claimed twice: use module:function]"
        out.append(head)
        if row["summary"]:
            out.append(f"    {row['summary']}")
        if "error" in row:
            out.append(f"    cannot be used: {row['error']}")
        elif row["parameters"]:
            table = [
                [
                    p["name"],
                    p["type"],
                    "(required)" if p["required"] else _yaml_scalar(p["default"]),
                    p["marker"],
                    p["description"],
                ]
                for p in row["parameters"]
            ]
            text = tabulate(
                table,
                headers=["parameter", "type", "default", "marker", "description"],
                disable_numparse=True,
            )
            out.extend("    " + ln for ln in text.splitlines())
        else:
            out.append("    (no parameters)")
        out.append("")
    return "\n".join(out).rstrip()


# -- depio-like params ------------------------------------------------------------------------


def params_command(args: argparse.Namespace) -> int:
    from .spec import load_spec

    spec = load_spec(args.spec, args.tasks)
    if args.format == "json":
        print(json.dumps(schema_of(spec), indent=2))
    else:
        sys.stdout.write(form_of(spec))
    return 0


def schema_of(spec: Any) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a config file for ``spec``."""
    props: dict[str, Any] = {}
    required_steps = []
    for sid, ps in spec.open_params().items():
        step = spec.steps[sid]
        sprops: dict[str, Any] = {}
        for p in ps:
            s = dict(json_schema(p.type))
            if p.description:
                s["description"] = p.description
            if not p.required:
                d = plain_default(p.default)
                if d is not MISSING:
                    s["default"] = d
            if p.marker:
                s["x-marker"] = p.marker
            sprops[p.name] = s
        required = [p.name for p in ps if p.required]
        one: dict[str, Any] = {"type": "object", "title": f"{sid} ({step.task})"}
        text = summary(step.entry.func)
        if text:
            one["description"] = text
        one["properties"] = sprops
        if required:
            one["required"] = required
            required_steps.append(sid)
        one["additionalProperties"] = bool(step.takes_any)
        props[sid] = one
    schema: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"parameters of {spec.name}",
    }
    if spec.description:
        schema["description"] = str(spec.description)
    schema.update({"type": "object", "properties": props, "additionalProperties": False})
    if required_steps:
        schema["required"] = required_steps
    return schema


def _yaml_scalar(v: Any) -> str:
    try:
        import yaml
    except ImportError:  # `depio-like tasks` works without the spec extra
        return json.dumps(v)

    text = yaml.safe_dump(v, default_flow_style=True, width=10**9, allow_unicode=True).strip()
    return text[:-4].rstrip() if text.endswith("\n...") else text


def form_of(spec: Any) -> str:
    """A YAML config file for ``spec`` to fill in: each open parameter commented with its
    type, default and description; required ones to fill, optional ones commented out
    (they keep their default)."""
    lines = [
        f"# Parameters left open by {spec.path}. Fill in the values, then run:",
        f"#   depio-like run {spec.path} --config THIS_FILE",
        "# A line left commented out keeps the task's default.",
    ]
    opened = spec.open_params()
    if not opened:
        lines.append("# (nothing is left open: run the spec as it is)")
    for sid, ps in opened.items():
        step = spec.steps[sid]
        text = summary(step.entry.func)
        lines.append("")
        lines.append(f"{sid}:  # task {step.task}" + (f": {text}" if text else ""))
        for p in ps:
            bits = [p.type_text]
            if p.marker:
                bits.append(p.marker)
            if p.required:
                bits.append("required")
            elif plain_default(p.default) is MISSING:  # else the line below shows it
                bits.append(f"default {p.default!r}, which a config file cannot write")
            comment = f"  # {p.name} ({', '.join(bits)})"
            if p.description:
                comment += f": {p.description}"
            lines.append(comment)
            if p.required:
                lines.append(f"  {p.name}:")
            else:
                d = plain_default(p.default)
                lines.append(
                    f"  # {p.name}: {_yaml_scalar(d)}" if d is not MISSING else f"  # {p.name}:"
                )
    return "\n".join(lines) + "\n"


# -- depio-like run SPEC ----------------------------------------------------------------------


def run_spec(args: argparse.Namespace) -> int:
    """``depio-like run SPEC [--config FILLED.yaml] [run options]``."""
    from .cli import UsageError, make_executor, options_of
    from .spec import build, load_spec, read_config

    if args.script_args:
        raise UsageError(
            f"{args.script}: a spec file takes no arguments after --; put the values in --config"
        )
    spec = load_spec(args.script, args.tasks)
    values = read_config(spec, args.config)
    executor = make_executor(args.executor, args.slurm) if args.executor else None
    pipeline = build(spec, values)
    if args.graph:
        if executor is not None:
            pipeline.executor = executor
        sys.stdout.write(pipeline.export_graph(args.graph, files=args.graph_files))
        return 0
    if args.clean:
        return pipeline.clean(yes=args.yes)
    return pipeline.run_with(options_of(args, executor))


__all__ = [
    "is_spec",
    "add_commands",
    "add_run_options",
    "tasks_command",
    "params_command",
    "run_spec",
    "schema_of",
    "form_of",
    "SpecError",
]
