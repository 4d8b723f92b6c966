"""Declaring tasks: the ``Task`` class, the ``@task`` decorator and the path markers."""

from __future__ import annotations

import functools
import inspect
import os
import pathlib
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar, overload

import xxhash

from .channel import fill, find_tasks
from .errors import TaskDeclarationError
from .fingerprint import Unfingerprintable, call_identity, canonical
from .modes import BuildMode
from .paths import BadPath, normalise, normalise_shared
from .postconditions import Postcondition, parse_ensure
from .resources import Resources, parse_resources

# The markers and the reading of signatures live in signature.py; imported here for
# ``from depio_like.task import Product`` (and depio's ``depio.Task``).
from .signature import (  # noqa: F401
    Dependency,
    IgnoredForEq,
    Product,
    Untracked,
    as_path,
    func_module,
    make_path,
    paths_for_call,
    signature_of,
)
from .signature import bind as _bind
from .signature import func_name as _func_name
from .signature import spec_of as _spec
from .status import Status

_PosixPath = pathlib.PosixPath


def _norm_paths(value: Any, param: str, kind: str, func: Any) -> tuple[str, ...]:
    """Path identities (``paths.normalise``: absolute, the directory's symlinks and ``..``
    resolved) from a path, a str, a list/tuple of them, or None."""
    if value is None:
        return ()
    t = type(value)
    if t is str or t is _PosixPath:  # the common case: one path (a str "" is refused below)
        p = value if t is str else str(value)
        if p:
            try:
                norm = normalise(p, "" if p[:1] == "/" else os.getcwd())
            except BadPath:
                pass  # said with the task's name below
            else:
                # An absolute path as normalised: its str (kept by the task's arguments
                # too) is the identity; no second copy per task.
                return (p if norm == p else norm,)
    items = value if isinstance(value, (list, tuple)) else (value,)
    out = []
    cwd = os.getcwd()
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
                f"filesystem takes: {e}"
            ) from None
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


class _FrozenDict(dict[str, Any]):
    """A dict no one may fill or change: the empty one shared by every task declared
    without keyword arguments (a dict apiece would cost 64 bytes per task), and the one
    ``Task.kwargs`` builds to give paths back (a write to it would reach nothing)."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            "a task's keyword arguments are read-only here (they are fixed when it is "
            "declared): declare a new task"
        )

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = _refuse  # type: ignore[assignment]
    __ior__ = _refuse  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),) if self else ())


_NO_KWARGS: dict[str, Any] = _FrozenDict()


class _Keywords(tuple[str, ...]):
    """In place of a task's dict of keyword arguments: the names given by keyword, in the
    order given, their values kept in the task's tuple of arguments at their parameters'
    places. For a call whose keywords name the parameters right after its positional ones
    (``f(out, i=1, config=c)``): no dict a task (184 bytes, 17 MiB of 10^5 tasks); shared
    by every call giving the same names in the same order (``_keywords``)."""

    __slots__ = ()


_keyword_orders: dict[tuple[str, ...], _Keywords] = {}


def _keywords(names: tuple[str, ...]) -> _Keywords:
    k = _keyword_orders.get(names)
    if k is None:
        if len(_keyword_orders) >= 1024:  # (a new order every call: nothing to share)
            _keyword_orders.clear()
        k = _keyword_orders[names] = _Keywords(names)
    return k


def _folded(
    names: Sequence[str], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], _Keywords] | None:
    """``args`` and ``kwargs`` as one tuple, when the keywords are the parameters right
    after the positional arguments (``names``: all the parameters, positional-or-keyword),
    with the ``_Keywords`` that says which; None otherwise."""
    n, m = len(args), len(args) + len(kwargs)
    if m > len(names):
        return None
    tail = names[n:m]
    for k in kwargs:
        if k not in tail:
            return None
    return (*args, *[kwargs[k] for k in tail]), _keywords(tuple(kwargs))


_NO_RESOURCES = Resources()
_WAITING = (Status.WAITING,)  # a task's status before a run attaches it
# Argument types that can hold no task: no need to look inside them for values.
_SCALARS = frozenset(
    {str, int, float, bool, type(None), bytes, pathlib.PosixPath, pathlib.WindowsPath}
)


def _positional_depends_on(name: str, more: tuple[Any, ...], depends_on: Any) -> Any:
    """The 5th positional argument is depends_on (tasks); depio's 5th is ``produces``, so
    paths there are refused rather than guessed at."""
    if not more:
        return depends_on
    if len(more) > 1:
        raise TaskDeclarationError(
            f"task {name!r}: Task() takes at most 5 positional arguments (name, func, args, "
            f"kwargs, depends_on), got {4 + len(more)}; pass the others by keyword "
            "(depio's order: produces=, depends_on=, buildmode=, slurm_parameters=, "
            "arg_resolver=, description=)"
        )
    if depends_on:
        raise TaskDeclarationError(
            f"task {name!r}: depends_on given both positionally and by keyword"
        )
    items = list(more[0]) if more[0] is not None else []
    if any(not isinstance(t, Task) for t in items):
        raise TaskDeclarationError(
            f"task {name!r}: the 5th positional argument of Task() is depends_on (tasks); "
            f"got {items!r}. In depio the 5th argument was produces: write produces=[...] "
            "for files the task writes beyond its Product parameters, or depends_on=[...] "
            "by keyword for files whose producer it must wait for"
        )
    return items


def _alias(name: str, ours: str, value: Any, depios: str, alias: Any) -> Any:
    if alias is None:
        return value
    if value is not None:
        raise TaskDeclarationError(
            f"task {name!r}: pass {ours}= or {depios}= (depio's name), not both"
        )
    return alias


def _resolve(
    name: str,
    resolver: Callable[..., Any],
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """depio's ``arg_resolver(func, args, kwargs) -> (args, kwargs)``, applied before binding."""
    if not callable(resolver):
        raise TaskDeclarationError(
            f"task {name!r}: arg_resolver must be callable, got "
            f"{type(resolver).__name__} {resolver!r}"
        )
    out = resolver(func, list(args), dict(kwargs))
    try:
        new_args, new_kwargs = out
        new_args = tuple(new_args) if new_args is not None else ()
        new_kwargs = dict(new_kwargs) if new_kwargs else {}
    except (TypeError, ValueError):
        raise TaskDeclarationError(
            f"task {name!r}: arg_resolver {_func_name(resolver)} must return (args, kwargs), "
            f"got {out!r}"
        ) from None
    return new_args, new_kwargs


def _bind_partial(
    spec: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The arguments given (defaults applied) and the required parameters left out; no
    names missing if the call is wrong in another way (then the full error stands)."""
    try:
        bound = spec.signature.bind_partial(*args, **kwargs)
    except TypeError:
        return {}, ()
    bound.apply_defaults()
    P = inspect.Parameter
    missing = tuple(
        n
        for n, p in spec.signature.parameters.items()
        if n not in bound.arguments and p.kind not in (P.VAR_POSITIONAL, P.VAR_KEYWORD)
    )
    return dict(bound.arguments), missing


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _caller() -> str:
    """``file:line`` of the user's code that declared the task (the first frame outside
    this package), for messages raised later."""
    import sys

    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and (os.path.abspath(frame.f_code.co_filename) + os.sep).startswith(
        _PACKAGE_DIR + os.sep
    ):
        frame = frame.f_back
    if frame is None:
        return ""
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def _slurm_parameters(name: str, params: Any) -> dict[str, Any]:
    """Task-level Slurm settings as given (submitit's names, e.g. ``slurm_gpus_per_task``);
    the Slurm executor reads ``task.slurm_parameters``, the local executors ignore it."""
    if params is None:
        return {}
    if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
        raise TaskDeclarationError(
            f"task {name!r}: slurm_parameters must be a dict of "
            f"setting names to values, got {params!r}"
        )
    from .resources import sbatch_settings  # unknown names are refused here, when declared

    sbatch_settings(params, f"task {name!r}: slurm_parameters", error=TaskDeclarationError)
    return dict(params)


_PLAIN_REPR = frozenset({str, int, float, bool, type(None)})


def _identity_parts(
    arguments: dict[str, Any], normalised: dict[str, Any], ignored: frozenset[str]
) -> list[str]:
    """``name=canonical(value)`` for each tracked argument (paths as normalised). Plain
    values and one path, the common case, are spelt out here as ``canonical`` spells them."""
    out = []
    for k, v in arguments.items():
        if ignored and k in ignored:
            continue
        if k in normalised:
            v = normalised[k]
            if type(v) is tuple and len(v) == 1:  # one Product/Dependency path
                out.append(f"{k}=({v[0]!r})")
                continue
        out.append(f"{k}={v!r}" if type(v) in _PLAIN_REPR else f"{k}={canonical(v)}")
    return out


_V = TypeVar("_V")


class _Rare(Generic[_V]):
    """A task's attribute that most tasks leave at its default: kept in the task's ``_rare``
    dict (made when the first one is set), not in a slot of its own that every task of a
    million would pay 8 bytes for. With ``made``: a mutable default, made for the task (and
    kept) when first read."""

    __slots__ = ("name", "default", "made")

    def __init__(self, default: _V, made: Callable[[], _V] | None = None) -> None:
        self.default = default
        self.made = made
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, task: None, owner: type | None = None) -> _Rare[_V]: ...
    @overload
    def __get__(self, task: Task, owner: type | None = None) -> _V: ...
    def __get__(self, task: Task | None, owner: type | None = None) -> Any:
        if task is None:
            return self
        rare = task._rare
        if self.made is None:
            return self.default if rare is None else rare.get(self.name, self.default)
        if rare is None or self.name not in rare:
            value = self.made()
            self.__set__(task, value)
            return value
        return rare[self.name]

    def __set__(self, task: Task, value: _V) -> None:
        rare = task._rare
        if rare is None:
            if value is self.default and self.made is None:
                return
            rare = task._rare = {}
        rare[self.name] = value


class Task:
    """One call of a function, bound to its arguments; declaring it does not run it.

    Products and dependencies come from ``Annotated[..., Product]`` and
    ``Annotated[..., Dependency]`` parameters. Two tasks with the same function and the
    same bound arguments are the same task (``==``), whatever their names.

    ``ensure=``: postconditions (a callable or a list), called in the driver with the bound
    arguments they name; see ``postconditions``. ``run_if="all_done"``: run once every
    dependency has ended, even badly (a summary over a sweep); default ``"all_success"``.
    """

    # A run holds one per task (a million, declared in a loop): no per-instance dict.
    # ``__weakref__`` and ``__dict__`` stay out; a subclass gets a dict of its own.
    __slots__ = (
        "_rare",
        "name",
        "func",
        "_args",
        "_kwargs",
        "_str_paths",
        "products",
        "dependencies",
        "_path_call",
        "args_digest",
        "_merge_key",
        "record_key",
        "id",
        "_statuses",
        "_index",
        # Set only where not the class's default below (most tasks: never), so made
        # only for those tasks.
        "__dict__",
    )

    # Defaults, read through the class by every task that does not set its own: eight
    # slots fewer, 64 bytes a task, and less for the cyclic collector to walk.
    buildmode: BuildMode | None = None  # None: the pipeline's default
    resources: Resources = _NO_RESOURCES
    retries: int | None = None
    #: "all_success": runs only if every dependency succeeded; "all_done": once every
    #: dependency has ended, succeeded or failed (a summary over a sweep).
    run_if: str = "all_success"
    # Made when there is something in it, or when asked for (``depends_on``).
    _depends_on: list[Task] | None = None
    #: Tasks passed as arguments: their return values replace them when this one runs.
    value_inputs: tuple[Task, ...] = ()
    #: Postconditions (``ensure=``): checked in the driver before and after the task runs.
    ensure: tuple[Postcondition, ...] = ()
    #: Why this call has no stable identity (then it merges with nothing, always runs).
    unfingerprintable: str | None = None
    # What the function is called with, where the graph swapped the tasks in the
    # arguments for ValueSlots (else the arguments themselves).
    _call_args: tuple[Any, ...] | None = None
    _call_kwargs: dict[str, Any] | None = None

    def __init__(
        self,
        name: str | None,
        func: Callable[..., Any],
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        *more: Any,
        depends_on: Iterable[Task | str | os.PathLike[str]] = (),
        always: bool = False,
        resources: dict[str, Any] | Resources | None = None,
        retries: int | None = None,
        buildmode: BuildMode | None = None,
        produces: Iterable[str | os.PathLike[str]] | None = None,
        description: str | None = None,
        slurm_parameters: dict[str, Any] | None = None,
        arg_resolver: Callable[..., Any] | None = None,
        func_args: Sequence[Any] | None = None,
        func_kwargs: dict[str, Any] | None = None,
        ensure: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None,
        run_if: str = "all_success",
    ) -> None:
        if (
            type(func) is _FunctionType
            and not (more or depends_on or always)
            and resources is None
            and retries is None
            and buildmode is None
            and produces is None
            and description is None
            and slurm_parameters is None
            and arg_resolver is None
            and func_args is None
            and func_kwargs is None
            and ensure is None
            and run_if == "all_success"
            and (kwargs is None or type(kwargs) is dict)
        ):
            # The usual call of the functional interface (depio's ``Task(name, f, [out],
            # {...})``): declared as the decorator declares it, without binding.
            try:
                shape = _shapes[func]
            except KeyError:
                shape = _shapes[func] = _usual_shape(func)
            if shape is not None:
                given = args if type(args) is tuple else tuple(args) if args is not None else ()
                name_ = name if name is not None else func.__name__
                if not kwargs and len(given) == shape.n:
                    if _usual_task(shape, name_, func, given, self) is not None:
                        return
                elif _usual_task_kw(shape, name_, func, given, kwargs or {}, self) is not None:
                    return
        self._bind_call(
            name,
            func,
            args,
            kwargs,
            more,
            depends_on,
            always,
            resources,
            retries,
            buildmode,
            produces,
            description,
            slurm_parameters,
            arg_resolver,
            func_args,
            func_kwargs,
            ensure,
            run_if,
        )

    def _bind_call(
        self,
        name: str | None,
        func: Callable[..., Any],
        args: Sequence[Any] | None,
        kwargs: dict[str, Any] | None,
        more: tuple[Any, ...] = (),
        depends_on: Iterable[Task | str | os.PathLike[str]] = (),
        always: bool = False,
        resources: dict[str, Any] | Resources | None = None,
        retries: int | None = None,
        buildmode: BuildMode | None = None,
        produces: Iterable[str | os.PathLike[str]] | None = None,
        description: str | None = None,
        slurm_parameters: dict[str, Any] | None = None,
        arg_resolver: Callable[..., Any] | None = None,
        func_args: Sequence[Any] | None = None,
        func_kwargs: dict[str, Any] | None = None,
        ensure: Callable[..., Any] | Sequence[Callable[..., Any]] | None = None,
        run_if: str = "all_success",
    ) -> None:
        """``__init__`` for any call: bound to the function's parameters (the arguments
        as ``__init__`` takes them, ``more`` its extra positional ones)."""
        name_ = name if name is not None else getattr(func, "__name__", "task")
        if more:
            depends_on = _positional_depends_on(name_, more, depends_on)
        if func_args is not None or func_kwargs is not None:
            args = _alias(name_, "args", args, "func_args", func_args)
            kwargs = _alias(name_, "kwargs", kwargs, "func_kwargs", func_kwargs)
        spec = _spec(func)
        if type(args) is not tuple:
            args = tuple(args) if args is not None else ()
        kwargs = dict(kwargs) if kwargs else _NO_KWARGS
        if arg_resolver is not None:
            args, kwargs = _resolve(name_, arg_resolver, func, args, kwargs)
        # The user's PosixPaths given to parameters annotated Path are kept as their strs
        # (a path object and its list of parts cost 300 bytes a task, and the collector's
        # time): the call turns them back into paths, ``args``, ``kwargs`` and
        # ``arguments`` too. The identity is the same: such a parameter counts as a path.
        # (Postconditions are handed the arguments as given.)
        str_paths = 0
        if spec.str_paths and ensure is None:
            given: list[Any] | None = None
            for p, i in spec.str_paths:
                if i < len(args):
                    if type(args[i]) is _PosixPath:
                        if given is None:
                            given = list(args)
                        given[i] = str(args[i])
                        str_paths |= 1 << i
                elif kwargs and type(kwargs.get(p)) is _PosixPath:
                    if not str_paths >> len(args):
                        kwargs = dict(kwargs)  # the one given is kept if binding fails
                    kwargs[p] = str(kwargs[p])
                    str_paths |= 1 << i
            if str_paths:
                as_given = args, kwargs
                if given is not None:
                    args = tuple(given)
        # depio accepts a call missing required arguments (its own tests declare
        # Task("t", f) for an f that takes some); such a task may be compared and added,
        # and run() refuses it before anything runs (Pipeline.validate).
        self._rare: dict[str, Any] | None = None
        try:
            arguments = _bind(spec, args, kwargs)
        except TypeError as e:
            if str_paths:  # the arguments it keeps are as given
                args, kwargs = as_given
                str_paths = 0
            arguments, missing = _bind_partial(spec, args, kwargs)
            if not missing:
                raise TaskDeclarationError(f"{_func_name(func)}(): {e}") from None
            self.missing = missing
            self.declared_at = _caller()
            # Bound again when asked for (rarely: a record's description, postconditions):
            # a dict per task kept for the run's length costs more. Kept when it cannot be.
            self._arguments = arguments
        self.name: str = name_
        if description is not None:
            self.description = str(description)
        if slurm_parameters is not None and slurm_parameters != {}:
            self.slurm_parameters = _slurm_parameters(name_, slurm_parameters)
        self.func = func
        if spec.ignored:
            self.ignored = spec.ignored  # IgnoredForEq parameters
        if buildmode is not None and not isinstance(buildmode, BuildMode):
            raise TaskDeclarationError(
                f"task {self.name!r}: buildmode must be a BuildMode "
                f"(ALWAYS, IF_MISSING, IF_NEW, NEVER), got {buildmode!r}"
            )
        if always:
            buildmode = BuildMode.ALWAYS
        if buildmode is not None:
            self.buildmode = buildmode
        if resources is not None and resources is not _NO_RESOURCES:
            self.resources = (
                resources
                if type(resources) is Resources
                else parse_resources(resources, f"task {name_!r}")
            )
        if retries is not None and (
            isinstance(retries, bool) or not isinstance(retries, int) or retries < 0
        ):
            raise TaskDeclarationError(
                f"task {self.name!r}: retries must be an int >= 0, got {retries!r}"
            )
        if retries is not None:
            self.retries = retries
        if run_if not in RUN_IF:
            raise TaskDeclarationError(
                f"task {self.name!r}: run_if must be one of "
                f"{', '.join(map(repr, RUN_IF))}, got {run_if!r}"
            )
        if run_if != "all_success":
            self.run_if = run_if
        # A path in depends_on (depio) is a dependency: the task waits for its producer.
        extra_deps: list[Any] = []
        if depends_on:
            for t in depends_on:
                if isinstance(t, Task):
                    self.depends_on.append(t)
                elif isinstance(t, (str, os.PathLike)):
                    extra_deps.append(t)
                else:
                    raise TaskDeclarationError(
                        f"task {self.name!r}: depends_on takes tasks or paths, got "
                        f"{type(t).__name__} {t!r}"
                    )
        if produces is not None and isinstance(produces, (str, os.PathLike)):
            produces = [produces]

        normalised: dict[str, Any] = {}
        # Tuples, joined only when there are several (one path is the common case).
        products: tuple[str, ...] = ()
        dependencies: tuple[str, ...] = ()
        extra: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
        if spec.products or spec.dependencies or produces or extra_deps:
            for p in spec.products:
                paths = _norm_paths(arguments.get(p), p, "Product", func)
                normalised[p] = paths
                products = products + paths if products else paths
            for p in spec.dependencies:
                paths = _norm_paths(arguments.get(p), p, "Dependency", func)
                normalised[p] = paths
                dependencies = dependencies + paths if dependencies else paths
            if produces or extra_deps:
                # Task(..., produces=[...]) and depends_on=[path]: paths beyond the
                # parameters, part of the task's identity (two calls differing there are
                # two tasks).
                extra = (
                    _norm_paths(list(produces), "produces", "Product", func) if produces else (),
                    _norm_paths(extra_deps, "depends_on", "Dependency", func) if extra_deps else (),
                )
                products += extra[0]
                dependencies += extra[1]
        if spec.plain_paths:
            for p, cls in spec.plain_paths.items():  # "a.txt" and Path("a.txt"): one task
                if p in arguments:  # (a call missing arguments lacks some)
                    normalised[p] = as_path(arguments[p], cls)
        self.products: tuple[str, ...] = (
            tuple(dict.fromkeys(products)) if len(products) > 1 else products
        )
        self.dependencies: tuple[str, ...] = (
            tuple(dict.fromkeys(dependencies)) if len(dependencies) > 1 else dependencies
        )
        # Tasks passed as arguments: their return values replace them when this one runs.
        if not _SCALARS.issuperset(map(type, arguments.values())):
            found = find_tasks(list(arguments.values()), _is_task)
            if found:
                self.value_inputs = tuple({id(t): t for t in found}.values())
        if ensure is not None:
            self.ensure = parse_ensure(
                self.name,
                ensure,
                arguments,
                frozenset(k for k, v in arguments.items() if find_tasks([v], _is_task))
                if self.value_inputs
                else frozenset(),
            )
        if kwargs and spec.plain and spec.n_positional == len(spec.names):
            # Kept as the quick declaration keeps them (one tuple), unless the call is
            # incomplete or takes other tasks' values (the graph swaps those by keyword).
            both = _folded(spec.names, args, kwargs)
            if both is not None and not self.value_inputs and not self.missing:
                args, kwargs = both  # type: ignore[assignment]
        self._args = args
        self._kwargs: dict[str, Any] | _Keywords = kwargs
        self._str_paths = str_paths
        self._path_call = spec.path_call  # strs to turn into paths when called

        code_key: Any = func  # a plain function: nothing but its code and the arguments
        carried = ""
        no_identity = None
        if (
            type(func) is not _FunctionType
            or func.__closure__ is not None
            or "__wrapped__" in func.__dict__
        ):
            # A closure, bound method, callable object, partial or decorated function: what it
            # carries (captured values, the instance's state, ...) is part of the call.
            try:
                code_key, carried = call_identity(func)
            except Unfingerprintable as e:
                no_identity = str(e)
        try:
            if no_identity is not None:
                raise Unfingerprintable(no_identity)
            text = ";".join(_identity_parts(arguments, normalised, spec.ignored))
            if extra[0] or extra[1]:
                text += f";\x00produces={canonical(extra[0])};\x00depends_on={canonical(extra[1])}"
            self.args_digest: str | None = xxhash.xxh3_128_hexdigest(
                text.encode("utf-8", "surrogateescape")
            )
            # By the digest, not the text: a million texts would be kept for this alone.
            # A plain function's call by the digest alone (the str the task keeps anyway):
            # two such tasks are one call when their functions are one object too (see
            # ``same_call`` and ``CallIndex``).
            self._merge_key: Any = (
                self.args_digest if code_key is func else (code_key, carried, self.args_digest)
            )
        except Unfingerprintable as e:
            # No stable identity: this call merges with nothing and always runs.
            self.args_digest = None
            self.unfingerprintable = str(e)
            self._merge_key = ("unfingerprintable", id(self))
        if self.products:
            # Its first product itself (the same str): the record is the product's.
            self.record_key = self.products[0] if len(self.products) == 1 else min(self.products)
        else:
            ident = self.args_digest or id(self)
            if carried and self.args_digest:
                # Two tasks of one factory (same name, other captured values) are two tasks.
                ident = xxhash.xxh3_128_hexdigest(
                    f"{carried}\0{self.args_digest}".encode("utf-8", "surrogateescape")
                )
            self.record_key = f"k:{func_module(func)}.{_func_name(func)}:{ident}"

        self.id: int | None = None  # set by the pipeline that holds it
        self._statuses: Sequence[Status] = _WAITING  # one tuple for every task
        self._index = 0

    #: The required parameters a call missing some (depio allows it) left out; run() refuses.
    missing = _Rare[tuple[str, ...]](())
    #: ``file:line`` where such a task was declared, for that message.
    declared_at = _Rare[str]("")
    description = _Rare[str]("")
    #: Task-level Slurm settings as given (submitit's names); the local executors ignore it.
    slurm_parameters = _Rare[dict[str, Any]](_NO_KWARGS, dict)
    _arguments = _Rare[dict[str, Any] | None](None)
    #: The IgnoredForEq parameters.
    ignored = _Rare[frozenset[str]](frozenset())
    #: The configurations (``Pipeline.variant``) it belongs to.
    variants = _Rare[tuple[str, ...]](())

    def __setstate__(self, state: Any) -> None:
        # Unpickled or copied (copy.copy comes here too). A merge key holding a function's
        # id() is only valid in the process that made it: a task unpickled elsewhere
        # (declared in a worker, sent back) takes its function's id here, so that it stays
        # equal to the same call declared here. A copy gets its own dict of rare
        # attributes: one set on the copy must not change the original.
        d, slots = state if isinstance(state, tuple) else (state, None)
        for part in (d, slots):
            if part:
                for k, v in part.items():
                    object.__setattr__(self, k, v)
        key = getattr(self, "_merge_key", None)
        if type(key) is tuple and len(key) == 2 and key[0] == "unfingerprintable":
            # Never merged: by its own id, not the id of the object it was made from
            # (another process's id may be a live task's here).
            self._merge_key = ("unfingerprintable", id(self))
        rare = getattr(self, "_rare", None)
        if rare is not None:
            self._rare = dict(rare)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Task):
            return NotImplemented
        return same_call(self, other)

    def __hash__(self) -> int:
        return hash(self._merge_key)

    def __repr__(self) -> str:
        ident = f"{self.id} " if self.id is not None else ""
        return f"<Task {ident}{self.name!r} {_func_name(self.func)} {self.status}>"

    @property
    def args(self) -> tuple[Any, ...]:
        """The positional arguments, as given."""
        a, m = self._args, self._str_paths
        kw = self._kwargs
        if isinstance(kw, _Keywords):
            a = a[: len(a) - len(kw)]
        if not m:
            return a
        return tuple(make_path(_PosixPath, v) if m >> i & 1 else v for i, v in enumerate(a))

    @property
    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments, as given."""
        kw = self._kwargs
        if isinstance(kw, _Keywords):
            a, m = self._args, self._str_paths
            where = _spec(self.func).names
            # Read-only, as below: a write to it would reach nothing.
            return _FrozenDict(
                {
                    k: make_path(_PosixPath, a[i]) if m >> i & 1 else a[i]
                    for k in kw
                    for i in (where.index(k),)
                }
            )
        m = self._str_paths >> len(self._args)
        if not m or not kw:
            return kw
        names = _spec(self.func).names[len(self._args) :]
        # Read-only: a new dict each time, so a write to it would be lost without a word.
        return _FrozenDict(
            {
                k: make_path(_PosixPath, v) if k in names and m >> names.index(k) & 1 else v
                for k, v in kw.items()
            }
        )

    @property
    def call_args(self) -> tuple[Any, ...]:
        """The positional arguments the function is called with (tasks given as arguments
        swapped for ValueSlots by the graph)."""
        c = self._call_args
        return self._args if c is None else c

    @call_args.setter
    def call_args(self, args: tuple[Any, ...]) -> None:
        self._call_args = args

    @property
    def call_kwargs(self) -> dict[str, Any]:
        """The keyword arguments the function is called with (see ``call_args``)."""
        c = self._call_kwargs
        if c is None:
            kw = self._kwargs
            return _NO_KWARGS if isinstance(kw, _Keywords) else kw  # (their values: call_args)
        return c

    @call_kwargs.setter
    def call_kwargs(self, kwargs: dict[str, Any]) -> None:
        self._call_kwargs = kwargs

    @property
    def depends_on(self) -> list[Task]:
        """The tasks this one waits for besides those producing its dependencies (a list
        that may be added to)."""
        d = self._depends_on
        if d is None:
            d = self._depends_on = []
        return d

    @depends_on.setter
    def depends_on(self, tasks: Iterable[Task]) -> None:
        self._depends_on = list(tasks)

    @property
    def path_params(self) -> tuple[str, ...]:
        """The parameters that name products and dependencies."""
        spec = _spec(self.func)
        return spec.products + spec.dependencies

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
    def arguments(self) -> dict[str, Any]:
        """The arguments by parameter name, defaults applied (a new dict each time)."""
        a = self._arguments
        if a is not None:
            return dict(a)
        return _bind(_spec(self.func), self.args, self.kwargs)

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
        return f"T{disk_key(self.record_key)}:{self.args_digest}"

    def run(self, values: Any = None) -> Any:
        """Call the function here and now; ``values`` maps producer task id -> return value
        (or ``ValueFile``) for the tasks given as arguments."""
        # prepared_call, inlined (this is every task's).
        args, kwargs = self._call_args, self._call_kwargs
        if args is None:
            args = self._args
        if kwargs is None:
            kw = self._kwargs
            kwargs = _NO_KWARGS if isinstance(kw, _Keywords) else kw  # (their values: args)
        if self._path_call is not None:
            args, kwargs = paths_for_call(self._path_call, args, kwargs)
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


_DECORATOR_OPTIONS = (
    "name",
    "always",
    "pipeline",
    "resources",
    "retries",
    "buildmode",
    "skipmode",
    "slurm_parameters",
    "ensure",
    "run_if",
)
#: The values of ``run_if=``: when a task runs with respect to its dependencies' ends.
RUN_IF = ("all_success", "all_done")
# submitit's own parameter names (AutoExecutor's generic ones, and any slurm_* one): depio
# passes them as decorator keywords, e.g. @task("train", slurm_gpus_per_task=1).
_SUBMITIT_GENERIC = frozenset(
    {
        "timeout_min",
        "mem_gb",
        "nodes",
        "cpus_per_task",
        "gpus_per_node",
        "tasks_per_node",
        "stderr_to_stdout",
    }
)


def _is_slurm_option(key: str) -> bool:
    return (key.startswith("slurm_") and key != "slurm_parameters") or key in _SUBMITIT_GENERIC


def task(
    name: Any = None, pipeline: Any = None, buildmode: BuildMode | None = None, **options: Any
) -> Any:
    """Make a function declare tasks: calling it returns a ``Task`` and does not run it.

    Works as ``@task``, ``@task("name")`` and ``@task(name=..., always=True,
    resources={"cpus": 4, "memory": "8G", "time": 60}, retries=1)``. With
    ``pipeline=p`` each call also adds the task to ``p`` and returns the surviving task.
    A call may pass ``depends_on=[...]`` unless the function has a parameter of that name.
    depio's positional order is accepted: ``@task("name", pipeline, BuildMode.ALWAYS)``;
    submitit's parameter names (``slurm_gpus_per_task=1``, ``timeout_min=60``, ...) and
    ``slurm_parameters={...}`` go to each task's ``slurm_parameters``; ``ensure=`` and
    ``run_if=`` are ``Task``'s.
    """
    slurm = {k: options.pop(k) for k in [k for k in options if _is_slurm_option(k)]}
    unknown = set(options) - set(_DECORATOR_OPTIONS)
    if unknown:
        raise TypeError(
            f"task(): unknown option(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(_DECORATOR_OPTIONS)}, and submitit's parameter "
            f"names for Slurm (slurm_*, {', '.join(sorted(_SUBMITIT_GENERIC))})"
        )
    if buildmode is not None:
        options["buildmode"] = buildmode
    if slurm:
        given = options.get("slurm_parameters")
        if given is not None and not isinstance(given, dict):
            raise TypeError(f"task(): slurm_parameters must be a dict, got {given!r}")
        options["slurm_parameters"] = {**(given or {}), **slurm}
    if callable(name) and not isinstance(name, str):
        return _decorate(name, None, pipeline, options)
    name = options.pop("name", name)
    return lambda func: _decorate(func, name, pipeline, options)


_TASK_DEFAULTS: dict[str, Any] = {
    "always": False,
    "resources": _NO_RESOURCES,
    "retries": None,
    "buildmode": None,
    "slurm_parameters": None,
    "ensure": None,
    "run_if": "all_success",
}


def disk_key(record_key: str) -> str:
    """A task's record key as it was first spelt, ``"p:"`` before a product's path: what
    identities (a task passed as an argument) and log file names are made of."""
    return "p:" + record_key if record_key[:1] == "/" else record_key


def same_call(a: Task, b: Task) -> bool:
    """Whether two tasks are one call (the same function, the same arguments)."""
    k = a._merge_key
    return k == b._merge_key and (type(k) is not str or a.func is b.func)


class CallIndex:
    """A pipeline's tasks by call (``same_call``): a plain function's tasks are found by
    their args digest (no key object per task), the rare task of another function with the
    same digest (a product-less ``g(1)`` beside ``f(1)``) by (function id, digest)."""

    __slots__ = ("_by_key", "_aside")

    def __init__(self) -> None:
        self._by_key: dict[Any, Task] = {}
        self._aside: dict[Any, Task] = {}

    def get(self, t: Task) -> Task | None:
        """The task of this index that is the same call as ``t``, if any."""
        k = t._merge_key
        s = self._by_key.get(k)
        if s is None or type(k) is not str or s.func is t.func:
            return s
        return self._aside.get((id(t.func), k))  # the function is kept alive by its task

    def add(self, t: Task) -> None:
        """Add ``t``, of a call not in the index yet."""
        k = t._merge_key
        if type(k) is str and k in self._by_key:
            self._aside[(id(t.func), k)] = t
        else:
            self._by_key[k] = t

    def clear(self) -> None:
        self._by_key.clear()
        self._aside.clear()


class _Usual(NamedTuple):
    """How ``_usual_task`` declares a call of one function: the usual shape of a task,
    computed once per function (see ``_usual_shape``)."""

    spec: Any  # the function's Spec
    n: int  # how many parameters (all given positionally)
    product: int  # the position of the one Product parameter (annotated Path or str)
    names: tuple[str, ...]
    # The Dependency parameters, in the spec's order: (position, whether a PosixPath given
    # to it is kept as its str, as Task does for a parameter annotated Path).
    deps: tuple[tuple[int, bool], ...] = ()
    where: dict[str, int] = {}  # each parameter's position, for a call by keyword
    paths_at: frozenset[int] = frozenset()  # the positions of the product and dependencies


def _usual_shape(func: Any) -> _Usual | None:
    """The shape of the calls ``_usual_task`` declares for ``func``, or None when its
    tasks are never of it: a plain function (no closure, no wrapper) whose parameters are
    all plain, one of them the Product, any Dependency ones taking one path each, none
    ignored or another path."""
    if (
        type(func) is not _FunctionType
        or func.__closure__ is not None
        or "__wrapped__" in func.__dict__
    ):
        return None
    spec = _spec(func)
    if not (
        spec.plain
        and len(spec.products) == 1
        and not spec.ignored
        and not spec.plain_paths
        and spec.func_id == id(func)
        and spec.n_positional == len(spec.names)
    ):
        return None
    k = spec.names.index(spec.products[0])
    if spec.to_path and (spec.products[0], k) not in spec.str_paths:
        return None
    deps = []
    for d in spec.dependencies:
        j = spec.names.index(d)
        deps.append((j, (d, j) in spec.str_paths))
    where = {p: i for i, p in enumerate(spec.names)}
    paths_at = frozenset([k, *(j for j, _ in deps)])
    return _Usual(spec, len(spec.names), k, spec.names, tuple(deps), where, paths_at)


def _usual_task(
    shape: _Usual, name: str, func: Any, args: tuple[Any, ...], into: Task | None = None
) -> Task | None:
    """The task ``Task(name, func, args)`` makes, for the usual call: every argument given
    positionally (``_usual_task_kw``: some by keyword), a path (str or PosixPath) for the
    product and for each dependency, plain values (str, int, float, bool, None) for the
    rest; None for any other call (``Task`` declares it). Made without binding the call,
    in a third of the time: a script declares 10^5 of them. What it sets must equal what
    ``Task.__init__`` sets (tests/test_declare_fast.py compares every slot). ``into``: the
    task to make it in (``Task.__init__``'s own), left as it was when None is returned."""
    if len(args) != shape.n:
        return None
    k = shape.product
    path = args[k]
    t = type(path)
    str_paths = 0
    if t is _PosixPath and shape.spec.str_paths:
        path = str(path)
        str_paths = 1 << k
        args = (*args[:k], path, *args[k + 1 :])
    elif t is not str or not path:
        return None
    deps = shape.deps
    if deps:
        given = list(args)
        for j, keep_str in deps:
            v = given[j]
            if type(v) is _PosixPath and keep_str:
                given[j] = str(v)
                str_paths |= 1 << j
            elif type(v) is not str or not v:  # none, a list, ...: Task says what it makes
                return None
    for i, v in enumerate(given if deps else args):
        if i != k and type(v) not in _PLAIN_REPR:
            return None
    cwd = None
    try:
        if path[:1] != "/":
            cwd = os.getcwd()
        norm = normalise(path, "" if cwd is None else cwd)
        product = path if norm == path else norm
        if deps:
            paths = {k: product}
            one: tuple[str, ...] = ()
            for j, _ in deps:
                v = given[j]
                if v[:1] != "/" and cwd is None:
                    cwd = os.getcwd()
                # The same path given to many tasks (a sweep's config file) is resolved
                # once, and every task keeps the same strings: not one copy each.
                given[j], paths[j], one = normalise_shared(v, "" if v[:1] == "/" else cwd)  # type: ignore[arg-type]
            args = tuple(given)
    except BadPath:
        return None
    names = shape.names
    if deps:
        parts = [
            f"{names[i]}=({paths[i]!r})" if i in paths else f"{names[i]}={v!r}"
            for i, v in enumerate(args)
        ]
        dependencies: tuple[str, ...]
        if len(deps) == 1:
            dependencies = one
        else:
            dependencies = tuple(dict.fromkeys([paths[j] for j, _ in deps]))
    else:
        parts = [
            f"{names[i]}=({product!r})" if i == k else f"{names[i]}={v!r}"
            for i, v in enumerate(args)
        ]
        dependencies = ()
    digest = xxhash.xxh3_128_hexdigest(";".join(parts).encode("utf-8", "surrogateescape"))
    task = Task.__new__(Task) if into is None else into
    task._rare = None
    task.name = name
    task.func = func
    task.products = (product,)
    task.dependencies = dependencies
    task._args = args
    task._kwargs = _NO_KWARGS
    task._str_paths = str_paths
    task._path_call = shape.spec.path_call
    task.args_digest = digest
    task._merge_key = digest
    task.record_key = product
    task.id = None
    task._statuses = _WAITING
    task._index = 0
    return task


def _usual_task_kw(
    shape: _Usual,
    name: str,
    func: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    into: Task | None = None,
) -> Task | None:
    """``_usual_task`` for a call giving arguments by keyword, as depio's own examples do
    (``f(out, input=..., sec=2)``), or leaving plain ones to their defaults: each
    parameter given at most once, the paths given. The task keeps the arguments as they
    were given, as ``Task`` does (its identity counts the defaults, as binding does)."""
    n_pos = len(args)
    names = shape.names
    if n_pos + len(kwargs) > shape.n:
        return None
    full = list(args)
    taken = 0
    for p in names[n_pos:]:
        v = kwargs.get(p, _UNSET)
        if v is _UNSET:
            v = shape.spec.defaults.get(p, _UNSET)
            # A required one missing (Task says so), or a path left to its default (Task
            # keeps a Path default as it is).
            if v is _UNSET or shape.where[p] in shape.paths_at:
                return None
        else:
            taken += 1
        full.append(v)
    if taken != len(kwargs):  # a name the function does not take, or one given twice
        return None
    t = _usual_task(shape, name, func, tuple(full), into)
    if t is None:
        return None
    made = t._args  # in the parameters' order, the paths as kept
    if not kwargs:  # (the shared empty dict, as Task keeps)
        t._args = made[:n_pos]
        return t
    m = n_pos + len(kwargs)
    where = shape.where
    for p in kwargs:
        if where[p] >= m:  # a default left out before it: kept as given
            t._args = made[:n_pos]
            t._kwargs = {p: made[where[p]] for p in kwargs}
            return t
    t._args = made[:m]  # the usual: as Task keeps them too (_folded)
    t._kwargs = _keywords(tuple(kwargs))
    return t


_UNSET = object()
# Each plain function's ``_usual_shape`` (None: none), for ``Task(...)``; kept with it, as
# its spec is (signature.py).
_shapes: dict[Any, _Usual | None] = {}


def _decorate(
    func: Callable[..., Any], name: str | None, pipeline: Any, options: dict[str, Any]
) -> Callable[..., Task]:
    # Only the parameter names now: the annotations are read when the first task is declared
    # (a class they name may be defined further down the script).
    reserved = "depends_on" not in signature_of(func).parameters
    always = bool(options.get("always", False))
    buildmode = options.get("buildmode", options.get("skipmode"))  # depio named it both ways
    owner = f"@task on {_func_name(func)}"
    resources = parse_resources(options.get("resources"), owner)  # fail at decoration time
    retries = options.get("retries")
    slurm_parameters = _slurm_parameters(owner, options.get("slurm_parameters")) or None
    ensure = options.get("ensure")
    run_if = options.get("run_if", "all_success")
    if run_if not in RUN_IF:
        raise TaskDeclarationError(
            f"{owner}: run_if must be one of {', '.join(map(repr, RUN_IF))}, got {run_if!r}"
        )

    # Only the options set are passed on (each keyword costs every declaration its time).
    given: dict[str, Any] = {
        k: v
        for k, v in (
            ("always", always),
            ("resources", resources),
            ("retries", retries),
            ("buildmode", buildmode),
            ("slurm_parameters", slurm_parameters),
            ("ensure", ensure),
            ("run_if", run_if),
        )
        if v != _TASK_DEFAULTS[k]
    }

    task_name = name if name is not None else getattr(func, "__name__", "task")
    usual: list[_Usual | None] = []  # made at the first call: annotations are read then

    @functools.wraps(func)
    def declare(*args: Any, **kwargs: Any) -> Task:
        if not given:
            if not usual:
                usual.append(_usual_shape(func))
            shape = usual[0]
            if shape is not None:
                t = (
                    _usual_task(shape, task_name, func, args)
                    if not kwargs and len(args) == shape.n
                    else _usual_task_kw(shape, task_name, func, args, kwargs)
                )
                if t is not None:
                    return pipeline.add_task(t) if pipeline is not None else t
        depends_on = kwargs.pop("depends_on", None) if reserved and kwargs else None
        # Bound: the quick way was tried above, when it could be (not again by Task()).
        t = Task.__new__(Task)
        t._bind_call(name, func, args, kwargs, (), depends_on or (), **given)
        if t.missing:  # a call of the function: it must be complete, as any call must
            raise TaskDeclarationError(
                f"{_func_name(func)}(): missing a required argument: {t.missing[0]!r}"
            )
        return pipeline.add_task(t) if pipeline is not None else t

    declare.task_function = func  # type: ignore[attr-defined]
    return declare
