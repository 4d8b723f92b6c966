"""Declaring tasks: the ``Task`` class, the ``@task`` decorator and the path markers."""

from __future__ import annotations

import functools
import inspect
import os
import pathlib
import typing
from typing import Any, Callable, Iterable, Sequence

import xxhash

from .errors import TaskDeclarationError
from .channel import fill, find_tasks
from .fingerprint import Unfingerprintable, canonical
from .modes import BuildMode
from .paths import BadPath, normalise
from .resources import Resources, parse_resources
from .status import Status


class Product:
    """Marker: ``Annotated[Path, Product]`` says the parameter names a file the task writes."""


class Dependency:
    """Marker: ``Annotated[Path, Dependency]`` says the parameter names a file the task reads."""


class IgnoredForEq:
    """Marker: ``Annotated[bool, IgnoredForEq]`` keeps a parameter out of the task's identity
    and out of its up-to-date check (a verbosity flag, a logger). depio's name; ``Untracked``
    is the same marker."""


Untracked = IgnoredForEq


def _has_marker(meta: Iterable[Any], marker: type) -> bool:
    return any(m is marker or isinstance(m, marker) for m in meta)


class _Spec(typing.NamedTuple):
    """What a function's signature says about its parameters, computed once per function."""

    signature: inspect.Signature
    products: tuple[str, ...]
    dependencies: tuple[str, ...]
    ignored: frozenset[str]
    # For the fast binding of plain signatures (no *args, **kwargs, positional-only):
    # the parameter names in order, how many may be positional, and the defaults.
    plain: bool
    names: tuple[str, ...]
    n_positional: int
    defaults: dict[str, Any]


_MISSING = object()


def _bind(spec: _Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments by parameter name, defaults applied; TypeError as inspect words it."""
    if not spec.plain:
        bound = spec.signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)
    if len(args) > spec.n_positional:
        raise TypeError("too many positional arguments")
    given = dict(zip(spec.names, args))
    for k, v in kwargs.items():
        if k in given:
            raise TypeError(f"multiple values for argument {k!r}")
        given[k] = v
    out = {}
    for name in spec.names:
        v = given.pop(name, _MISSING)
        if v is _MISSING:
            v = spec.defaults.get(name, _MISSING)
            if v is _MISSING:
                raise TypeError(f"missing a required argument: {name!r}")
        out[name] = v
    if given:
        raise TypeError(f"got an unexpected keyword argument {next(iter(given))!r}")
    return out


_specs: dict[Any, _Spec] = {}


def _spec(func: Callable[..., Any]) -> _Spec:
    try:
        return _specs[func]
    except (KeyError, TypeError):
        pass
    if not callable(func):
        raise TaskDeclarationError(f"a task needs a callable, got {type(func).__name__}: {func!r}")
    sig = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:
        # String annotations that cannot be evaluated: fall back to what is there.
        hints = {n: p.annotation for n, p in sig.parameters.items()}
    products, deps, ignored = [], [], []
    for name in sig.parameters:
        meta = getattr(hints.get(name), "__metadata__", ())
        if _has_marker(meta, Product):
            products.append(name)
        elif _has_marker(meta, Dependency):
            deps.append(name)
        elif _has_marker(meta, IgnoredForEq):
            ignored.append(name)
    params = list(sig.parameters.values())
    P = inspect.Parameter
    plain = all(p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY) for p in params)
    spec = _Spec(sig, tuple(products), tuple(deps), frozenset(ignored), plain,
                 tuple(p.name for p in params),
                 sum(1 for p in params if p.kind is P.POSITIONAL_OR_KEYWORD),
                 {p.name: p.default for p in params if p.default is not P.empty})
    try:
        _specs[func] = spec
    except TypeError:
        pass
    return spec


def _func_name(func: Any) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)


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

        try:
            text = ";".join(
                f"{k}={canonical(normalised[k]) if k in normalised else canonical(v)}"
                for k, v in self.arguments.items() if k not in spec.ignored
            )
            self.args_digest: str | None = xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogateescape"))
            self.unfingerprintable: str | None = None
            self._merge_key: Any = (func, text)
        except Unfingerprintable as e:
            # No stable identity: this call merges with nothing and always runs.
            self.args_digest = None
            self.unfingerprintable = str(e)
            self._merge_key = (func, id(self))
        if self.products:
            self.record_key = "p:" + min(self.products)
        else:
            self.record_key = f"k:{getattr(func, '__module__', '?')}.{_func_name(func)}:{self.args_digest or id(self)}"

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
        if not self.value_inputs:
            return self.func(*self.args, **self.kwargs)
        return self.func(*fill(self.call_args, values or {}), **fill(self.call_kwargs, values or {}))


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
    spec = _spec(func)
    reserved = "depends_on" not in spec.signature.parameters
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
