"""Declaring tasks: the ``Task`` class, the ``@task`` decorator and the path markers."""

from __future__ import annotations

import functools
import os
import pathlib
import types
from typing import Any, Callable, Iterable, Sequence

import xxhash

from .errors import TaskDeclarationError
from .channel import fill, find_tasks
from .fingerprint import Unfingerprintable, call_identity, canonical
from .modes import BuildMode
from .paths import BadPath, normalise
from .resources import Resources, parse_resources
# The markers and the reading of signatures live in signature.py; imported here for
# ``from depio_like.task import Product`` (and depio's ``depio.Task``).
from .signature import (Dependency, IgnoredForEq, Product, Untracked,  # noqa: F401
                        as_path, bind as _bind, func_module, func_name as _func_name,
                        paths_for_call, signature_of, spec_of as _spec)
from .status import Status


def _norm_paths(value: Any, param: str, kind: str, func: Any, cwd: str) -> tuple[str, ...]:
    """Path identities (``paths.normalise``: absolute, the directory's symlinks and ``..``
    resolved) from a path, a str, a list/tuple of them, or None."""
    if value is None:
        return ()
    items = value if isinstance(value, (list, tuple)) else (value,)
    out = []
    for item in items:
        if item is None:
            continue
        if not isinstance(item, (str, os.PathLike)) or (isinstance(item, str) and not item):
            raise TaskDeclarationError(
                f"{_func_name(func)}(): parameter {param!r} is annotated as a {kind} but got "
                f"{type(item).__name__} {item!r}; expected a path, a str, or a list of them"
            )
        p = os.fspath(item)
        if isinstance(p, bytes):
            p = os.fsdecode(p)
        try:
            out.append(normalise(p, cwd))
        except BadPath as e:
            raise TaskDeclarationError(
                f"{_func_name(func)}(): parameter {param!r} ({kind}) names a path no "
                f"filesystem takes: {e}") from None
    return tuple(out)


_FunctionType = types.FunctionType
_UNFINISHED = frozenset({types.CoroutineType, types.GeneratorType, types.AsyncGeneratorType})


def finish(result: Any) -> Any:
    """What a task's call hands on once its work is done.

    An ``async def`` function's call only makes a coroutine: it is run to completion with
    ``asyncio.run`` (in a thread of its own if this thread already runs an event loop) and
    its return value is handed on. A generator function's call only makes a generator: it
    is exhausted and the list of what it yielded is handed on (an async generator likewise).
    Anything else is handed on as it is.
    """
    t = type(result)
    if t is types.GeneratorType:
        return list(result)
    if t is types.CoroutineType:
        return _run_coroutine(result)
    if t is types.AsyncGeneratorType:
        async def collect() -> list[Any]:
            return [x async for x in result]
        return _run_coroutine(collect())
    return result


def _run_coroutine(coro: Any) -> Any:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside a running event loop (a notebook): asyncio.run would refuse.
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _is_task(v: Any) -> bool:
    return isinstance(v, Task)


_NO_RESOURCES = Resources()
# Argument types that can hold no task: no need to look inside them for values.
_SCALARS = frozenset({str, int, float, bool, type(None), bytes, pathlib.PosixPath,
                      pathlib.WindowsPath})


class Task:
    """One call of a function, bound to its arguments; declaring it does not run it.

    Products and dependencies come from ``Annotated[..., Product]`` and
    ``Annotated[..., Dependency]`` parameters. Two tasks with the same function and the
    same bound arguments are the same task (``==``), whatever their names.
    """

    def __init__(
        self,
        name: str | None,
        func: Callable[..., Any],
        args: Sequence[Any] = (),
        kwargs: dict[str, Any] | None = None,
        depends_on: Iterable["Task"] = (),
        *,
        always: bool = False,
        resources: dict[str, Any] | Resources | None = None,
        retries: int | None = None,
        buildmode: BuildMode | None = None,
    ) -> None:
        spec = _spec(func)
        args = tuple(args)
        kwargs = dict(kwargs) if kwargs else {}
        try:
            arguments = _bind(spec, args, kwargs)
        except TypeError as e:
            raise TaskDeclarationError(f"{_func_name(func)}(): {e}") from None
        self.name: str = name if name is not None else getattr(func, "__name__", "task")
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.arguments: dict[str, Any] = arguments
        self.ignored: frozenset[str] = spec.ignored  # IgnoredForEq parameters
        self.path_params: tuple[str, ...] = spec.products + spec.dependencies
        if buildmode is not None and not isinstance(buildmode, BuildMode):
            raise TaskDeclarationError(f"task {self.name!r}: buildmode must be a BuildMode "
                                       f"(ALWAYS, IF_MISSING, IF_NEW, NEVER), got {buildmode!r}")
        if always:
            buildmode = BuildMode.ALWAYS
        self.buildmode: BuildMode | None = buildmode  # None: the pipeline's default
        self.resources: Resources = _NO_RESOURCES if resources is None else \
            parse_resources(resources, f"task {self.name!r}")
        if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int)
                                    or retries < 0):
            raise TaskDeclarationError(f"task {self.name!r}: retries must be an int >= 0, "
                                       f"got {retries!r}")
        self.retries: int | None = retries
        self.depends_on: list[Task] = []
        for t in depends_on:
            if not isinstance(t, Task):
                raise TaskDeclarationError(
                    f"task {self.name!r}: depends_on takes tasks, got {type(t).__name__} {t!r}"
                )
            self.depends_on.append(t)

        normalised: dict[str, Any] = {}
        products: list[str] = []
        dependencies: list[str] = []
        if spec.products or spec.dependencies:
            cwd = os.getcwd()
            for p in spec.products:
                paths = _norm_paths(arguments[p], p, "Product", func, cwd)
                normalised[p] = paths
                products.extend(paths)
            for p in spec.dependencies:
                paths = _norm_paths(arguments[p], p, "Dependency", func, cwd)
                normalised[p] = paths
                dependencies.extend(paths)
        for p, cls in spec.plain_paths.items():  # "a.txt" and Path("a.txt"): one task
            normalised[p] = as_path(arguments[p], cls)
        self.products: tuple[str, ...] = tuple(dict.fromkeys(products)) if len(products) > 1 \
            else tuple(products)
        self.dependencies: tuple[str, ...] = tuple(dict.fromkeys(dependencies)) \
            if len(dependencies) > 1 else tuple(dependencies)
        # Tasks passed as arguments: their return values replace them when this one runs.
        if all(type(v) in _SCALARS for v in arguments.values()):
            self.value_inputs: tuple[Task, ...] = ()
        else:
            found = find_tasks(list(arguments.values()), _is_task)
            self.value_inputs = tuple({id(t): t for t in found}.values())
        # What the function is called with; the graph swaps the tasks in it for ValueSlots.
        self.call_args: tuple[Any, ...] = args
        self.call_kwargs: dict[str, Any] = kwargs
        self._path_call = spec.path_call  # strs to turn into paths when called

        code_key: Any = func  # a plain function: nothing but its code and the arguments
        carried = ""
        no_identity = None
        if type(func) is not _FunctionType or func.__closure__ is not None \
                or "__wrapped__" in func.__dict__:
            # A closure, bound method, callable object, partial or decorated function: what it
            # carries (captured values, the instance's state, ...) is part of the call.
            try:
                code_key, carried = call_identity(func)
            except Unfingerprintable as e:
                no_identity = str(e)
        try:
            if no_identity is not None:
                raise Unfingerprintable(no_identity)
            text = ";".join(
                f"{k}={canonical(normalised[k]) if k in normalised else canonical(v)}"
                for k, v in self.arguments.items() if k not in spec.ignored
            )
            self.args_digest: str | None = xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogateescape"))
            self.unfingerprintable: str | None = None
            self._merge_key: Any = (func, text) if code_key is func \
                else (code_key, carried, text)
        except Unfingerprintable as e:
            # No stable identity: this call merges with nothing and always runs.
            self.args_digest = None
            self.unfingerprintable = str(e)
            self._merge_key = ("unfingerprintable", id(self))
        if self.products:
            self.record_key = "p:" + min(self.products)
        else:
            ident = self.args_digest or id(self)
            if carried and self.args_digest:
                # Two tasks of one factory (same name, other captured values) are two tasks.
                ident = xxhash.xxh3_128_hexdigest(
                    f"{carried}\0{self.args_digest}".encode("utf-8", "surrogateescape"))
            self.record_key = f"k:{func_module(func)}.{_func_name(func)}:{ident}"

        self.id: int | None = None  # set by the pipeline that holds it
        self.variants: list[str] = []  # the configurations (sweep) it belongs to
        self._statuses: Sequence[Status] = (Status.WAITING,)
        self._index = 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Task):
            return NotImplemented
        return self._merge_key == other._merge_key

    def __hash__(self) -> int:
        return hash(self._merge_key)

    def __repr__(self) -> str:
        ident = f"{self.id} " if self.id is not None else ""
        return f"<Task {ident}{self.name!r} {_func_name(self.func)} {self.status}>"

    @property
    def status(self) -> Status:
        """Where the task is in the current (or last) run; the run's plan decides it."""
        return self._statuses[self._index]

    def _attach(self, statuses: Sequence[Status], index: int) -> None:
        """A run starts: the task's status is the run's entry ``index`` from now on."""
        self._statuses, self._index = statuses, index

    @property
    def always(self) -> bool:
        """Whether the task runs every time (``always=True`` or ``BuildMode.ALWAYS``)."""
        return self.buildmode is BuildMode.ALWAYS

    @property
    def tracked_arguments(self) -> dict[str, Any]:
        """The arguments that make the task what it is (all but IgnoredForEq ones)."""
        if not self.ignored:
            return self.arguments
        return {k: v for k, v in self.arguments.items() if k not in self.ignored}

    @property
    def label(self) -> str:
        """How messages name this task: its id (when in a pipeline) and name."""
        return f"[{self.id}] {self.name!r}" if self.id is not None else repr(self.name)

    def __depio_canonical__(self) -> str:
        return f"T{self.record_key}:{self.args_digest}"

    def run(self, values: Any = None) -> Any:
        """Call the function here and now; ``values`` maps producer task id -> return value
        (or ``ValueFile``) for the tasks given as arguments."""
        args, kwargs = self.prepared_call()
        if self.value_inputs:
            args, kwargs = fill(args, values or {}), fill(kwargs, values or {})
        result = self.func(*args, **kwargs)
        return finish(result) if type(result) in _UNFINISHED else result

    def prepared_call(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The arguments the function is called with, before the values of other tasks are
        filled in: a str given to a parameter annotated ``Path`` is a ``Path`` here."""
        if self._path_call is None:
            return self.call_args, self.call_kwargs
        return paths_for_call(self._path_call, self.call_args, self.call_kwargs)


_DECORATOR_OPTIONS = ("name", "always", "pipeline", "resources", "retries", "buildmode",
                      "skipmode")


def task(name: Any = None, pipeline: Any = None, **options: Any) -> Any:
    """Make a function declare tasks: calling it returns a ``Task`` and does not run it.

    Works as ``@task``, ``@task("name")`` and ``@task(name=..., always=True,
    resources={"cpus": 4, "memory": "8G", "time": 60}, retries=1)``. With
    ``pipeline=p`` each call also adds the task to ``p`` and returns the surviving task.
    A call may pass ``depends_on=[...]`` unless the function has a parameter of that name.
    """
    unknown = set(options) - set(_DECORATOR_OPTIONS)
    if unknown:
        raise TypeError(f"task(): unknown option(s) {', '.join(sorted(unknown))}; "
                        f"known: {', '.join(_DECORATOR_OPTIONS)}")
    if callable(name) and not isinstance(name, str):
        return _decorate(name, None, pipeline, options)
    name = options.pop("name", name)
    return lambda func: _decorate(func, name, pipeline, options)


def _decorate(func: Callable[..., Any], name: str | None, pipeline: Any,
              options: dict[str, Any]) -> Callable[..., Task]:
    # Only the parameter names now: the annotations are read when the first task is declared
    # (a class they name may be defined further down the script).
    reserved = "depends_on" not in signature_of(func).parameters
    always = bool(options.get("always", False))
    buildmode = options.get("buildmode", options.get("skipmode"))  # depio named it both ways
    owner = f"@task on {_func_name(func)}"
    resources = parse_resources(options.get("resources"), owner)  # fail at decoration time
    retries = options.get("retries")

    @functools.wraps(func)
    def declare(*args: Any, **kwargs: Any) -> Task:
        depends_on = kwargs.pop("depends_on", ()) if reserved else ()
        t = Task(name, func, args, kwargs, depends_on, always=always, resources=resources,
                 retries=retries, buildmode=buildmode)
        return pipeline.add_task(t) if pipeline is not None else t

    declare.task_function = func  # type: ignore[attr-defined]
    return declare
