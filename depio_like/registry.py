"""The registry of tasks a spec file may name: functions from installed packages (the entry
point group ``depio_like.tasks``) and from the user's own modules.

- ``@register`` (or ``@register("name")``) marks a function as a task of its module; it
  returns the function unchanged, so it stays an ordinary task function (usable in scripts,
  with ``@task`` above or below it).
- An entry point in the group ``depio_like.tasks`` names either a module
  (``wordcount = "wordtasks.tasks"``: that module's tasks) or one function
  (``count = "wordtasks.tasks:count_words"``: that function, registered under the entry
  point's name, marked or not).
- A module's tasks are its functions marked with ``@register``; a module with no marked
  function contributes every public function defined in it (not those it imports).

Nothing here imports the packages until a command asks for the registry.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

GROUP = "depio_like.tasks"
_ATTR = "__depio_like_register__"

F = TypeVar("F", bound=Callable[..., Any])


def register(func: Any = None, *, name: str | None = None) -> Any:
    """Mark ``func`` as a task a spec file may name (by ``name``, default its ``__name__``).

    ``@register``, ``@register("name")`` and ``@register(name="name")`` all work; the
    function is returned as it is.
    """
    if isinstance(func, str):
        func, name = None, func
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise TypeError(f"register(name={name!r}): a task name must be a non-empty str")

    def mark(f: F) -> F:
        if not callable(f):
            raise TypeError(f"register(): {f!r} is not callable")
        setattr(f, _ATTR, name or getattr(f, "__name__", None) or type(f).__name__)
        return f

    return mark(func) if func is not None else mark


@dataclass
class Entry:
    """One registered task: what it is called, what runs, and where it came from."""

    name: str
    func: Callable[..., Any]
    source: str  # "module wordtasks.tasks" or "entry point 'count' of wordtasks 0.1"

    @property
    def function(self) -> Callable[..., Any]:
        """The task function itself (a ``@task`` wrapper's function)."""
        return getattr(self.func, "task_function", self.func)

    @property
    def qualified(self) -> str:
        f = self.function
        return f"{getattr(f, '__module__', '?')}:{getattr(f, '__qualname__', self.name)}"


@dataclass
class Registry:
    """The tasks by name; ``conflicts`` holds names two different functions claim, and
    ``problems`` the sources that could not be loaded (each a sentence)."""

    entries: dict[str, Entry] = field(default_factory=dict)
    conflicts: dict[str, list[Entry]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, entry: Entry) -> None:
        if entry.name in self.conflicts:
            if not any(_same(e, entry) for e in self.conflicts[entry.name]):
                self.conflicts[entry.name].append(entry)
            return
        old = self.entries.get(entry.name)
        if old is None:
            self.entries[entry.name] = entry
        elif not _same(old, entry):
            del self.entries[entry.name]
            self.conflicts[entry.name] = [old, entry]

    def names(self) -> list[str]:
        return sorted(set(self.entries) | set(self.conflicts))

    def lookup(self, name: str) -> Entry:
        """The task called ``name``, or ``module:function`` imported directly; LookupError
        with a sentence saying why not."""
        entry = self.entries.get(name)
        if entry is not None:
            return entry
        if name in self.conflicts:
            who = "; ".join(f"{e.qualified} ({e.source})" for e in self.conflicts[name])
            raise LookupError(
                f"task {name!r} is registered by two different functions: {who}; "
                "name the one you mean as 'module:function'"
            )
        if ":" in name:
            return _import_function(name)
        import difflib

        close = difflib.get_close_matches(name, self.names(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        known = ", ".join(self.names()) or "none"
        text = f"unknown task {name!r}{hint}; registered tasks: {known}"
        if self.problems:
            text += " (could not load: " + "; ".join(self.problems) + ")"
        raise LookupError(text)


def _same(a: Entry, b: Entry) -> bool:
    return a.func is b.func or a.function is b.function


def _import_function(ref: str) -> Entry:
    module, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as e:  # noqa: BLE001 - any import failure is the user's to see
        raise LookupError(f"task {ref!r}: cannot import it ({type(e).__name__}: {e})") from None
    if not callable(obj):
        raise LookupError(f"task {ref!r} is not callable")
    return Entry(ref, obj, f"imported as {ref}")


def tasks_of_module(module: Any, source: str) -> list[Entry]:
    """The tasks a module contributes: its ``@register`` functions or, if it marks none,
    its public functions defined in it."""
    marked: list[Entry] = []
    plain: list[Entry] = []
    for attr, obj in list(vars(module).items()):
        try:
            name = getattr(obj, _ATTR, None)
        except Exception:  # noqa: BLE001 - an odd object with a raising __getattr__
            continue
        if isinstance(name, str) and callable(obj):
            marked.append(Entry(name, obj, source))
        elif (
            not attr.startswith("_")
            and inspect.isfunction(getattr(obj, "task_function", obj))
            and getattr(obj, "__module__", None) == module.__name__
        ):
            plain.append(Entry(attr, obj, source))
    return marked or plain


def load(modules: Iterable[str] = (), installed: bool = True) -> Registry:
    """The registry: the installed packages' entry points (``installed``), then
    ``modules`` (importable names; a failure to import one of these is an ImportError,
    since the user asked for it by name)."""
    reg = Registry()
    if installed:
        from importlib.metadata import entry_points

        for ep in sorted(entry_points(group=GROUP), key=lambda e: (e.name, e.value)):
            dist = getattr(ep, "dist", None)
            where = (
                f"{dist.name} {dist.version}, " if dist is not None else ""
            ) + f"entry point {ep.name!r}"
            try:
                obj = ep.load()
            except Exception as e:  # noqa: BLE001 - a broken package must not stop the others
                reg.problems.append(f"{where}: {type(e).__name__}: {e}")
                continue
            if inspect.ismodule(obj):
                for entry in tasks_of_module(obj, where):
                    reg.add(entry)
            elif callable(obj):
                reg.add(Entry(ep.name, obj, where))
            else:
                reg.problems.append(
                    f"{where}: names a {type(obj).__name__}, not a module or a function"
                )
    for name in modules:
        mod = import_user_module(name)
        for entry in tasks_of_module(mod, f"module {name}"):
            reg.add(entry)
    return reg


def import_user_module(name: str) -> Any:
    """Import the user's module ``name``; ImportError with a sentence if it cannot be."""
    if name.endswith(".py") or "/" in name:
        raise ImportError(
            f"tasks module {name!r}: give a module name (e.g. "
            f"{name.rsplit('/', 1)[-1].removesuffix('.py')!r}), importable from "
            "the spec file's directory or the working directory"
        )
    try:
        return importlib.import_module(name)
    except ImportError as e:
        if getattr(e, "name", None) == name:
            raise ImportError(
                f"tasks module {name!r} cannot be found (a module name, "
                "looked for next to the spec file, in the working directory and "
                "in the installed packages)"
            ) from None
        raise ImportError(f"tasks module {name!r} cannot be imported: {e}") from None
    except Exception as e:  # noqa: BLE001 - the module's own error, said where it happened
        import traceback

        frames = traceback.extract_tb(e.__traceback__)
        at = (
            f" ({frames[-1].filename}, line {frames[-1].lineno})"
            if frames and not isinstance(e, SyntaxError)
            else ""
        )  # its message says where
        raise ImportError(
            f"tasks module {name!r} failed while being imported: {type(e).__name__}: {e}{at}"
        ) from None
