"""Postconditions (awflow's ``@ensure``): ``Task(..., ensure=...)`` / ``@task(ensure=...)``.

A postcondition is a callable returning a bool, called with the task's bound arguments it
names (``ensure=lambda i: os.path.exists(f"pi_{i}.npy")`` for a task ``estimate(i)``); a
``**kwargs`` parameter gets them all. They run in the driver and are cheap by contract:
the up-to-date check (``staleness.Checker``) calls them before a task runs, and after it
ran (a postcondition that does not hold then fails the task).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from .errors import TaskDeclarationError


class PostconditionError(Exception):
    """A postcondition raised instead of answering; the message names it and the task."""


class Postcondition:
    """One callable of ``ensure=``, with the names of the arguments it takes."""

    __slots__ = ("func", "name", "params", "takes_all")

    def __init__(
        self, func: Callable[..., Any], name: str, params: tuple[str, ...], takes_all: bool
    ) -> None:
        self.func, self.name, self.params, self.takes_all = func, name, params, takes_all

    def holds(self, arguments: Mapping[str, Any], task_label: str) -> bool:
        """Whether it holds for these arguments; ``PostconditionError`` if it raises."""
        kwargs = dict(arguments) if self.takes_all else {p: arguments[p] for p in self.params}
        try:
            return bool(self.func(**kwargs))
        except Exception as e:  # noqa: BLE001 - the user's code may raise anything
            raise PostconditionError(
                f"task {task_label}: postcondition {self.name} raised {type(e).__name__}: {e}"
            ) from None


def parse_ensure(
    task_name: str, ensure: Any, arguments: Mapping[str, Any], values: frozenset[str] = frozenset()
) -> tuple[Postcondition, ...]:
    """The postconditions of ``ensure=`` (a callable or a list of them), each checked now
    against the task's parameters: a postcondition may only ask for bound arguments, and
    not for one holding another task's return value (unknown until that task has run)."""
    if ensure is None:
        return ()
    items = list(ensure) if isinstance(ensure, (list, tuple)) else [ensure]
    out = []
    for f in items:
        if not callable(f):
            raise TaskDeclarationError(
                f"task {task_name!r}: ensure= takes a callable or a list "
                f"of callables, got {type(f).__name__} {f!r}"
            )
        name = describe(f)
        try:
            sig = inspect.signature(f)
        except (TypeError, ValueError):
            raise TaskDeclarationError(
                f"task {task_name!r}: postcondition {name} has no signature that can be read"
            ) from None
        params, takes_all = [], False
        P = inspect.Parameter
        for p in sig.parameters.values():
            if p.kind is P.VAR_KEYWORD:
                takes_all = True
            elif p.kind is P.VAR_POSITIONAL:
                continue
            elif p.name in arguments and p.kind is not P.POSITIONAL_ONLY:
                if p.name in values:
                    raise TaskDeclarationError(
                        f"task {task_name!r}: postcondition {name} takes {p.name!r}, the "
                        "return value of another task, which is unknown before the run; "
                        "postconditions take arguments known when the task is declared"
                    )
                params.append(p.name)
            elif p.default is P.empty:
                raise TaskDeclarationError(
                    f"task {task_name!r}: postcondition {name} takes {p.name!r}, which is not "
                    f"a parameter of the task (it has: {', '.join(arguments) or 'none'}); a "
                    "postcondition is called with the task's arguments by name"
                )
        out.append(Postcondition(f, name, tuple(params), takes_all))
    return tuple(out)


def describe(f: Callable[..., Any]) -> str:
    """How messages name a postcondition: its name, or a lambda's source text."""
    name = getattr(f, "__qualname__", None) or getattr(f, "__name__", None) or repr(f)
    if "<lambda>" not in name:
        return repr(name)
    text = _lambda_source(f)
    if text is not None:
        return repr(" ".join(text.split()))
    code = getattr(f, "__code__", None)
    return f"<lambda> ({code.co_filename}:{code.co_firstlineno})" if code else "<lambda>"


def _lambda_source(f: Callable[..., Any]) -> str | None:
    """The source text of this very lambda, found in its file's syntax tree: on its line,
    with its parameters, and where several match (``[lambda i: a(i), lambda i: b(i)]``),
    the one whose body the code's positions point at (Python >= 3.11)."""
    import ast
    import linecache

    code = getattr(f, "__code__", None)
    if code is None:
        return None
    source = "".join(linecache.getlines(code.co_filename))
    if not source:
        return None
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    nargs = code.co_argcount + code.co_kwonlyargcount
    nargs += bool(code.co_flags & inspect.CO_VARARGS) + bool(code.co_flags & inspect.CO_VARKEYWORDS)
    params = set(code.co_varnames[:nargs])
    found = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Lambda) and n.lineno == code.co_firstlineno:
            a = n.args
            names = {x.arg for x in a.posonlyargs + a.args + a.kwonlyargs}
            names |= {x.arg for x in (a.vararg, a.kwarg) if x is not None}
            if names == params:
                found.append(n)
    if len(found) > 1 and hasattr(code, "co_positions"):
        starts = {(p[0], p[2]) for p in code.co_positions()}
        found = [n for n in found if (n.body.lineno, n.body.col_offset) in starts] or found
    if not found:
        return None
    return ast.get_source_segment(source, found[0])
