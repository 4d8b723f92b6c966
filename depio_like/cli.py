"""Command lines: ``pipeline.main()`` for any pipeline script, and the ``depio-like`` tool.

``python pipeline.py --help`` lists the options when the script ends in
``exit(pipeline.main())``. ``depio-like run pipeline.py [options]`` does the same for a script
that ends in ``exit(pipeline.run())``; ``depio-like status`` shows the last recorded run.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import sys
from collections.abc import Sequence
from typing import Any

from .options import RunOptions, tool_options

EXECUTORS = (
    "parallel",
    "local",
    "sequential",
    "thread",
    "spawn",
    "forkserver",
    "slurm",
    "slurm-local",
    "dask",
)


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Run the pipeline: only the tasks that are not up to date."
    )
    p.add_argument(
        "-n",
        "--dry-run",
        action="store_true",
        help="show what would run (WOULD-RUN / SKIPPED); run and write nothing",
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="say why each task runs (with --dry-run: why it would)",
    )
    p.add_argument("--force", action="store_true", help="rerun every task")
    p.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="tasks at once (local workers, or Slurm array elements)",
    )
    p.add_argument(
        "--target",
        nargs="+",
        metavar="PATH",
        default=None,
        help="build only what these products need",
    )
    p.add_argument(
        "--graph",
        choices=("mermaid", "dot"),
        help="print the task graph (Mermaid or Graphviz DOT) and exit",
    )
    p.add_argument(
        "--graph-files", action="store_true", help="with --graph: show files as nodes too"
    )
    p.add_argument(
        "--clean",
        action="store_true",
        help="remove this pipeline's products, records and logs (asks first)",
    )
    p.add_argument("-y", "--yes", action="store_true", help="with --clean: do not ask")
    p.add_argument(
        "--executor",
        choices=EXECUTORS,
        help="run on another executor than the script's (slurm parameters: "
        "--slurm KEY=VALUE or DEPIO_LIKE_SLURM_<KEY> variables)",
    )
    p.add_argument(
        "--slurm",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an sbatch setting for --executor slurm (partition=gpu, time=120, ...)",
    )
    p.add_argument(
        "--dask-address",
        action=_DaskAddress,
        metavar="ADDRESS",
        help="with --executor dask (implied): a running Dask scheduler, e.g. "
        "tcp://host:8786 (default: an embedded LocalCluster)",
    )
    return p


class _DaskAddress(argparse.Action):
    """``--dask-address`` alone means ``--executor dask``."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Any = None) -> None:
        namespace.dask_address = values
        if namespace.executor is None:
            namespace.executor = "dask"


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: at least 1 task must run at a time")
    return n


class UsageError(Exception):
    """A command line that cannot be carried out (exit 2, one message, no traceback)."""


def main(pipeline: Any, argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: the script's arguments) and do what it asks. A pipeline
    that cannot run (a cycle, a missing file, an unusable state directory, ...) is
    reported in one message: exit 2. Ctrl-C: exit 130."""
    from .errors import PipelineError

    try:
        return _main(pipeline, argv)
    except (PipelineError, UsageError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


def _main(pipeline: Any, argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    executor = (
        make_executor(args.executor, args.slurm, args.dask_address) if args.executor else None
    )
    if args.graph:
        if executor is not None:
            pipeline.executor = executor
        sys.stdout.write(pipeline.export_graph(args.graph, files=args.graph_files))
        return 0
    if args.clean:
        return pipeline.clean(yes=args.yes)
    return pipeline.run_with(options_of(args, executor))


def options_of(args: argparse.Namespace, executor: Any) -> RunOptions:
    """The run options a parsed command line asks for."""
    return RunOptions.of(
        force=args.force,
        dry_run=args.dry_run,
        explain=args.explain,
        targets=args.target,
        jobs=args.jobs,
        executor=executor,
    )


def make_executor(name: str, slurm: Sequence[str] = (), dask_address: str | None = None) -> Any:
    """An executor by name; Slurm settings from ``KEY=VALUE`` items and, below them,
    ``DEPIO_LIKE_SLURM_<KEY>`` environment variables; ``dask_address``: a running Dask
    scheduler for ``dask`` (else an embedded LocalCluster)."""
    from .executors.local import ParallelExecutor, SequentialExecutor

    if dask_address and name != "dask":
        raise UsageError(f"--dask-address applies to --executor dask, not --executor {name}")
    if name == "dask":
        try:
            from .executors.dask import DaskExecutor
        except ImportError as e:
            raise UsageError(f"--executor dask: {e}") from None
        return DaskExecutor(dask_address)
    if name in ("parallel", "local"):
        return ParallelExecutor()
    if name in ("spawn", "forkserver"):  # ParallelExecutor's workers, started that way
        return ParallelExecutor(start_method=name)
    if name == "thread":
        from .executors.threads import ThreadExecutor

        return ThreadExecutor()
    if name == "sequential":
        return SequentialExecutor()
    from .executors.slurm import SubmitItExecutor

    params: dict[str, Any] = {}
    for key, value in os.environ.items():
        if key.startswith("DEPIO_LIKE_SLURM_") and key != "DEPIO_LIKE_SLURM_":
            params[key[len("DEPIO_LIKE_SLURM_") :].lower()] = _value(value)
    for item in slurm:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--slurm {item!r}: expected KEY=VALUE, e.g. partition=gpu")
        params[key.strip().replace("-", "_")] = _value(value.strip())
    try:
        return SubmitItExecutor(
            parameters=params, cluster="local" if name == "slurm-local" else "slurm"
        )
    except ValueError as e:  # an unknown or malformed setting: one message, no traceback
        raise UsageError(
            f"--slurm / DEPIO_LIKE_SLURM_*: "
            f"{str(e).replace('SubmitItExecutor(parameters=...): ', '')}"
        ) from None


def _value(text: str) -> Any:
    return int(text) if text.isdigit() else text


# -- the depio-like tool --------------------------------------------------------------------
def console_main(argv: Sequence[str] | None = None) -> int:
    """``depio-like run SCRIPT [options]``, ``depio-like run SPEC.yaml --config FILLED.yaml
    [options]``, ``depio-like tasks``, ``depio-like params SPEC`` and ``depio-like status
    [--state-dir DIR]``."""
    top = argparse.ArgumentParser(prog="depio-like", description="Run depio_like pipelines.")
    sub = top.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser(
        "run", parents=[build_parser_parent()], help="run a pipeline script with options"
    )
    run_p.add_argument(
        "script",
        help="the pipeline script (its own arguments go after --), or a spec file (.yaml/.yml)",
    )
    from . import spec_commands

    spec_commands.add_run_options(run_p)
    st = sub.add_parser("status", help="show the last recorded run; runs nothing")
    st.add_argument("--state-dir", default=".depio_like", help="default: .depio_like")
    spec_commands.add_commands(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    script_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, script_args = argv[:cut], argv[cut + 1 :]
    args = top.parse_args(argv)
    args.script_args = script_args
    if args.command == "status":
        return status(args.state_dir)
    if args.command == "tasks":
        return spec_commands.guarded(spec_commands.tasks_command, args)
    if args.command == "params":
        return spec_commands.guarded(spec_commands.params_command, args)
    try:
        if spec_commands.is_spec(args.script):
            return spec_commands.guarded(spec_commands.run_spec, args)
        if args.config or args.tasks:
            raise UsageError(
                "--config and --tasks are for a spec file (.yaml/.yml); "
                f"{args.script} is run as a Python script"
            )
        return run_script(args)
    except UsageError as e:
        print(f"depio-like run: {e}", file=sys.stderr)
        return 2


def build_parser_parent() -> argparse.ArgumentParser:
    """The run options, without -h, to be a parent parser of `depio-like run`."""
    full = build_parser()
    parent = argparse.ArgumentParser(add_help=False)
    for action in full._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        parent._add_action(action)
    return parent


def run_script(args: argparse.Namespace) -> int:
    script = os.path.abspath(args.script)
    if not os.path.isfile(script):
        why = "is not a file" if os.path.exists(script) else "does not exist"
        raise UsageError(f"the script {args.script} {why}")
    if args.graph or args.clean:
        raise UsageError(
            "--graph and --clean need the script to call pipeline.main(); "
            "run `python SCRIPT --graph ...` instead"
        )
    executor = (
        make_executor(args.executor, args.slurm, args.dask_address) if args.executor else None
    )
    token = tool_options.set(options_of(args, executor))
    extra = args.script_args
    old_argv, old_path = sys.argv, list(sys.path)
    sys.argv = [script, *extra]
    sys.path.insert(0, os.path.dirname(script))
    from .errors import PipelineError

    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # while the script declared its tasks, say
        print("Interrupted.", file=sys.stderr)
        return 130
    finally:
        sys.argv, sys.path[:] = old_argv, old_path
        tool_options.reset(token)
    return 0


def status(state_dir: str) -> int:
    """Print the table of the last run recorded in ``state_dir``."""
    from tabulate import tabulate

    from .display import printable
    from .state import LAST_RUN_NAME

    path = os.path.join(state_dir, LAST_RUN_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        print(f"no run recorded in {state_dir} yet", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"cannot read {path}: {e}", file=sys.stderr)
        return 1
    if not _well_formed_last_run(data):
        print(
            f"cannot read {path}: it is damaged (not the summary of a run); the next run "
            "rewrites it",
            file=sys.stderr,
        )
        return 1
    text = lambda v: printable(str(v))  # noqa: E731 - the file may hold anything
    print(
        f"Last run: finished {text(data['finished'])} in {text(data['cwd'])}, exit code "
        f"{text(data['exit_code'])}"
    )
    rows = [[text(c) for c in row] for row in data["rows"]]
    headers = [text(h) for h in data["headers"]]
    counts = data.get("counts") or {}
    if len(rows) < data.get("tasks", len(rows)):
        print(
            f"{text(data['tasks'])} tasks: "
            + ", ".join(f"{text(v)} {text(k)}" for k, v in counts.items())
            + ("; those that did not end well:" if rows else "")
        )
    if rows:
        print(tabulate(rows, headers=headers, disable_numparse=True))
    status_col = headers.index("Status") if "Status" in headers else None
    # Not strict: a summary written by an older version has rows and no "logs".
    for row, log in zip(rows, data.get("logs", []), strict=False):
        if status_col is not None and status_col < len(row) and row[status_col] == "FAILED":
            print(
                f"FAILED [{row[0]}] {row[1] if len(row) > 1 else ''}: output in "
                f"{text(log)}.out, {text(log)}.err"
            )
    return 0


def _well_formed_last_run(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    if not all(k in data for k in ("finished", "cwd", "exit_code", "headers", "rows")):
        return False
    if not isinstance(data["headers"], list) or not isinstance(data["rows"], list):
        return False
    if not all(isinstance(r, list) for r in data["rows"]):
        return False
    if not isinstance(data.get("tasks", 0), int):
        return False
    return isinstance(data.get("counts", {}), dict) and isinstance(data.get("logs", []), list)
