"""What a task function's signature says: which parameters are products, dependencies or
left out of the task's identity (the markers), which take paths, and how a call binds.

Read once per function and cached: declaring 10,000 tasks of one function reads its
annotations once. Each parameter's annotation is resolved on its own, so one name that
cannot be resolved (a class defined later, a ``TYPE_CHECKING``-only import, a typo) costs
no other parameter its marker; where a marker may be in an annotation that cannot be
resolved, the annotation's text is read instead, and where that cannot settle it, the
declaration fails naming the function and the parameter. A marker is never dropped.
"""

from __future__ import annotations

import ast
import builtins
import collections.abc
import functools
import inspect
import os
import pathlib
import sys
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from .errors import TaskDeclarationError


class Product:
    """Marker: ``Annotated[Path, Product]`` (or just ``Product``) says the parameter names a
    file the task writes."""


class Dependency:
    """Marker: ``Annotated[Path, Dependency]`` (or just ``Dependency``) says the parameter
    names a file the task reads."""


class IgnoredForEq:
    """Marker: ``Annotated[bool, IgnoredForEq]`` keeps a parameter out of the task's identity
    and out of its up-to-date check (a verbosity flag, a logger). depio's name; ``Untracked``
    is the same marker."""


Untracked = IgnoredForEq

_MARKERS: dict[str, type] = {
    "Product": Product,
    "Dependency": Dependency,
    "IgnoredForEq": IgnoredForEq,
    "Untracked": IgnoredForEq,
}
_MARKER_TYPES = (Product, Dependency, IgnoredForEq)
# Module names under which a marker's qualified name is ours even when that module is not
# importable where the function was defined (``depio_like.Product`` under TYPE_CHECKING).
_OUR_MODULES = ("depio_like", "depio")


def func_name(func: Any) -> str:
    """How messages and records name a task function (never with a memory address)."""
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if isinstance(name, str):
        return name
    if isinstance(func, functools.partial):
        return f"partial({func_name(func.func)})"
    return type(func).__qualname__


def func_module(func: Any) -> str:
    """The module of what a task function runs (a partial's function's, an object's class')."""
    while isinstance(func, functools.partial):
        func = func.func
    mod = getattr(func, "__module__", _MISSING)
    if mod is _MISSING:
        mod = getattr(type(func), "__module__", "?")
    return str(mod)


class Spec(typing.NamedTuple):
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
    # Parameters annotated with a pathlib class: a str given there reaches the function as
    # that class; those that are no Product/Dependency count in the identity as paths.
    to_path: tuple[tuple[str, type], ...]
    plain_paths: dict[str, type]
    path_call: PathCall | None
    # For a plain signature: (name, index) of the parameters annotated ``Path`` (or
    # ``PosixPath``), where a task may keep the str of a ``PosixPath`` it was given: the call
    # makes it that same path again.
    str_paths: tuple[tuple[str, int], ...]
    # id() of the function the spec was read from (made once, not once per task).
    func_id: int


_MISSING = object()


def bind(spec: Spec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments by parameter name, defaults applied; TypeError as inspect words it,
    except that an unknown keyword is named first (``degre=3`` for ``degree``)."""
    if not spec.plain:
        try:
            bound = spec.signature.bind(*args, **kwargs)
        except TypeError:
            _unknown_keyword(spec, kwargs)
            raise
        bound.apply_defaults()
        return dict(bound.arguments)
    n = len(args)
    if n > spec.n_positional:
        raise TypeError(f"takes {spec.n_positional} positional argument(s) but {n} were given")
    names = spec.names
    if not kwargs:  # the common call: positional arguments, then defaults
        out = dict(zip(names, args, strict=False))
        if n < len(names):
            defaults = spec.defaults
            for name in names[n:]:
                v = defaults.get(name, _MISSING)
                if v is _MISSING:
                    raise TypeError(f"missing a required argument: {name!r}")
                out[name] = v
        return out
    # Not strict: fewer positional arguments than parameters is the common case.
    given = dict(zip(spec.names, args, strict=False))
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
                _unknown_keyword(spec, kwargs)
                raise TypeError(f"missing a required argument: {name!r}")
        out[name] = v
    if given:
        _unknown_keyword(spec, kwargs)
        raise TypeError(f"got an unexpected keyword argument {next(iter(given))!r}")
    return out


def _unknown_keyword(spec: Spec, kwargs: dict[str, Any]) -> None:
    """Raise the TypeError naming the first keyword the function does not take, if any."""
    params = spec.signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    takes = [
        n
        for n, p in params.items()
        if p.kind not in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.VAR_POSITIONAL)
    ]
    for k in kwargs:
        if k not in takes:
            import difflib

            close = difflib.get_close_matches(k, takes, n=1)
            hint = (
                f" (did you mean {close[0]!r}?)"
                if close
                else (
                    f"; it takes {', '.join(takes)}" if takes else "; it takes no keyword arguments"
                )
            )
            raise TypeError(f"got an unexpected keyword argument {k!r}{hint}")


# What each pathlib class makes here (Path makes a PosixPath on this system).
_CONCRETE: dict[Any, Any] = (
    {
        pathlib.PosixPath: pathlib.PosixPath,
        pathlib.Path: pathlib.PosixPath,
        pathlib.PurePosixPath: pathlib.PurePosixPath,
        pathlib.PurePath: pathlib.PurePosixPath,
    }
    if os.name == "posix"
    else {}
)

if sys.version_info < (3, 12) and hasattr(pathlib.PurePath, "_from_parsed_parts"):

    def make_path(cls: Any, s: str) -> Any:
        """``cls(s)`` for a pathlib class, without parsing ``s`` when it is spelt as
        pathlib spells a path (the str of a PosixPath a task kept: each task that runs makes
        its paths again, and parsing is two thirds of the cost). Python 3.10 and 3.11 only
        (pathlib's internals changed in 3.12); tests/test_declare_fast.py checks it against
        ``cls(s)``."""
        made = _CONCRETE.get(cls)
        # Spelt otherwise (``//``, ``.`` parts, a trailing ``/``; a relative one starting
        # with ``.``, ``..`` included, which is never stored), or a class of the user's:
        # parsed, its own way.
        if (
            made is None
            or not s
            or "//" in s
            or "/./" in s
            or s[-1] == "/"
            or s[-2:] == "/."
            or s[0] == "."
        ):
            return cls(s)
        # What _from_parsed_parts does, without its call.
        p = _new(made)
        p._drv = ""
        parts = s.split("/")
        if s[0] == "/":
            p._root = parts[0] = "/"
        else:
            p._root = ""
        p._parts = parts
        return p

    _new = object.__new__

else:

    def make_path(cls: Any, s: str) -> Any:
        """``cls(s)`` for a pathlib class."""
        return cls(s)


def as_path(value: Any, cls: type) -> Any:
    """``value`` with a str turned into ``cls`` (a pathlib class), also inside a list or
    tuple (which keeps its type); anything else as it is."""
    t = type(value)
    if t is str:
        return make_path(cls, value) if value else value
    if (t is list or t is tuple) and any(type(x) is str for x in value):
        return t([make_path(cls, x) if type(x) is str and x else x for x in value])
    return value


class PathCall(typing.NamedTuple):
    """What turning strs into paths in a call needs (small and picklable: a task keeps it)."""

    to_path: tuple[tuple[str, type], ...]
    positions: dict[str, int]  # where each of them sits when given positionally
    defaults: dict[str, Any]  # their defaults that may be given by keyword


def paths_for_call(
    spec: PathCall, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The call's arguments with the strs given to path-annotated parameters (defaults
    included) turned into paths. Done when the task runs, not when it is declared: a
    declaration stays cheap, and only tasks that run pay for it."""
    new_args: list[Any] | None = None
    new_kwargs: dict[str, Any] | None = None
    for name, cls in spec.to_path:
        if kwargs and name in kwargs:
            v = kwargs[name]
            nv = as_path(v, cls)
            if nv is not v:
                if new_kwargs is None:
                    new_kwargs = dict(kwargs)
                new_kwargs[name] = nv
            continue
        pos = spec.positions.get(name)
        if pos is not None and pos < len(args):
            v = args[pos]
            # as_path, its usual case inlined (a str, given positionally)
            nv = make_path(cls, v) if type(v) is str and v else as_path(v, cls)
            if nv is not v:
                if new_args is None:
                    new_args = list(args)
                new_args[pos] = nv
        elif name in spec.defaults:
            v = spec.defaults[name]
            nv = as_path(v, cls)
            if nv is not v:  # a str default: given explicitly, as a path
                if new_kwargs is None:
                    new_kwargs = dict(kwargs)
                new_kwargs[name] = nv
    return (
        tuple(new_args) if new_args is not None else args,
        new_kwargs if new_kwargs is not None else kwargs,
    )


_signatures: dict[Any, inspect.Signature] = {}
_specs: dict[Any, Spec] = {}


def _cache_key(func: Any) -> Any:
    """What a spec may be cached under (None: not cached). A bound method's signature is
    its function's, whatever the instance (so ``Model(lr).train`` for 10,000 instances
    reads the annotations once and keeps no instance alive)."""
    t = type(func)
    if t is types.FunctionType:
        return func
    if t is types.MethodType:
        return (func.__func__, "bound")
    if isinstance(func, functools.partial):
        return None  # its signature depends on the arguments it holds
    if (
        isinstance(func, type)
        or "__wrapped__" in getattr(func, "__dict__", ())
        or "__signature__" in getattr(func, "__dict__", ())
    ):
        return func if _hashable(func) else None
    return (t, "instance")


def _hashable(x: Any) -> bool:
    try:
        hash(x)
        return True
    except TypeError:
        return False


def _signature(func: Any) -> inspect.Signature:
    try:
        return inspect.signature(func)
    except (ValueError, TypeError) as e:
        raise TaskDeclarationError(
            f"{func_name(func)}: cannot read the parameters of this callable ({e}); "
            "wrap it in a Python function"
        ) from None


def signature_of(func: Callable[..., Any]) -> inspect.Signature:
    """The signature of ``func`` (cached), without reading its annotations."""
    key = _cache_key(func)
    if key is not None:
        s = _specs.get(key)
        if s is not None:
            return s.signature
        sig = _signatures.get(key)
        if sig is None:
            sig = _signatures[key] = _signature(func)
        return sig
    return _signature(func)


def spec_of(func: Callable[..., Any]) -> Spec:
    """The ``Spec`` of ``func``, read on first use and cached."""
    try:
        return _specs[func]
    except (KeyError, TypeError):
        pass
    if not callable(func):
        raise TaskDeclarationError(f"a task needs a callable, got {type(func).__name__}: {func!r}")
    key = _cache_key(func)
    if key is not None and key is not func:
        s = _specs.get(key)
        if s is not None:
            return s
    spec = _make_spec(func, signature_of(func))
    if key is not None:
        _specs[key] = spec
    return spec


def _make_spec(func: Any, sig: inspect.Signature) -> Spec:
    globalns = _globals_of(func)
    reader = _AnnotationReader(func, globalns)
    products, deps, ignored, to_path = [], [], [], []
    P = inspect.Parameter
    for name, p in sig.parameters.items():
        if p.annotation is P.empty:
            continue
        kinds, path_cls = reader.read(p.annotation, name)
        if len(kinds) > 1:
            raise TaskDeclarationError(
                f"{func_name(func)}(): parameter {name!r} carries more than one marker "
                f"({', '.join(sorted(k.__name__ for k in kinds))}); give it one"
            )
        if Product in kinds:
            products.append(name)
        elif Dependency in kinds:
            deps.append(name)
        elif IgnoredForEq in kinds:
            ignored.append(name)
        if path_cls is not None and p.kind not in (P.VAR_POSITIONAL, P.VAR_KEYWORD):
            to_path.append((name, path_cls))
    if sig.return_annotation is not P.empty:
        kinds, _ = reader.read(sig.return_annotation, "return")
        kinds.discard(IgnoredForEq)
        if kinds:
            kind = next(iter(kinds)).__name__
            raise TaskDeclarationError(
                f"{func_name(func)}(): its return annotation marks the return value as a "
                f"{kind}, which cannot work: a {kind.lower()}'s path must be known before "
                f"the task runs (depio reads the marker there but never uses it). Declare it "
                f"as a parameter instead, e.g. `out: Annotated[Path, {kind}]`, and pass the "
                "path when declaring the task; to hand a value to another task, return it "
                "without a marker"
            )
    params = list(sig.parameters.values())
    if not (products or deps or ignored) and any(
        p.kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD) for p in params
    ):
        _check_hidden_markers(func)
    plain = all(p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY) for p in params)
    positions = {}
    for i, p in enumerate(params):
        if p.kind not in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD):
            break
        positions[p.name] = i
    defaults = {p.name: p.default for p in params if p.default is not P.empty}
    path_call = None
    if to_path:
        names = {n for n, _ in to_path}
        path_call = PathCall(
            tuple(to_path),
            {n: i for n, i in positions.items() if n in names},
            {
                n: defaults[n]
                for n in names
                if n in defaults and sig.parameters[n].kind is not P.POSITIONAL_ONLY
            },
        )
    return Spec(
        sig,
        tuple(products),
        tuple(deps),
        frozenset(ignored),
        plain,
        tuple(p.name for p in params),
        sum(1 for p in params if p.kind is P.POSITIONAL_OR_KEYWORD),
        defaults,
        tuple(to_path),
        {n: c for n, c in to_path if n not in products and n not in deps},
        path_call,
        tuple(
            (n, [p.name for p in params].index(n))
            for n, c in to_path
            if c is pathlib.Path or c is pathlib.PosixPath
        )
        if plain
        else (),
        id(func),
    )


def _check_hidden_markers(func: Any) -> None:
    """Fail if ``func`` is a wrapper taking ``*args, **kwargs`` around a function whose
    parameters carry markers: a decorator without ``functools.wraps`` hides them."""
    inner: list[Any] = []
    for cell in getattr(func, "__closure__", None) or ():
        try:
            inner.append(cell.cell_contents)
        except ValueError:
            pass
    if not isinstance(func, (types.FunctionType, types.MethodType, type, functools.partial)):
        inner.extend(getattr(func, "__dict__", {}).values())
    for f in inner:
        if not isinstance(f, types.FunctionType) or f is func:
            continue
        reader = _AnnotationReader(f, f.__globals__)
        for name, ann in getattr(f, "__annotations__", {}).items():
            if name == "return":
                continue
            try:
                kinds, _ = reader.read(ann, name)
            except TaskDeclarationError:
                continue
            kinds.discard(IgnoredForEq)
            if kinds:
                raise TaskDeclarationError(
                    f"{func_name(func)}: it takes (*args, **kwargs) and wraps "
                    f"{func_name(f)}(), whose parameter {name!r} is a "
                    f"{next(iter(kinds)).__name__}, but the wrapper hides it. Make the "
                    "decorator expose what it wraps: `@functools.wraps(f)` on the wrapper "
                    "function, or `functools.update_wrapper(self, f)` in a class decorator"
                )


def _globals_of(func: Any) -> dict[str, Any]:
    """The globals the annotations of ``func``'s signature were written against: those of the
    function ``inspect.signature`` took its parameters from."""
    seen: set[int] = set()
    while id(func) not in seen:
        seen.add(id(func))
        if isinstance(func, types.MethodType):
            func = func.__func__
        elif isinstance(func, functools.partial):
            func = func.func
        elif getattr(func, "__wrapped__", None) is not None and "__signature__" not in getattr(
            func, "__dict__", ()
        ):
            func = func.__wrapped__
        elif isinstance(func, types.FunctionType):
            return func.__globals__
        elif isinstance(func, type):
            func = func.__init__  # type: ignore[misc]  # the class's own, looked up on purpose
        else:
            call = getattr(type(func), "__call__", None)  # noqa: B004 - the function itself
            if call is None:
                break
            func = call
    g = getattr(func, "__globals__", None)
    return g if isinstance(g, dict) else {}


_NONE_TYPE = type(None)
_SEQUENCES = (
    list,
    tuple,
    collections.abc.Sequence,
    collections.abc.Iterable,
    collections.abc.Collection,
    collections.abc.MutableSequence,
)


class _AnnotationReader:
    """Reads the markers and the path class out of one function's annotations."""

    def __init__(self, func: Any, globalns: dict[str, Any]) -> None:
        self.func = func
        self.globalns = globalns

    def read(self, ann: Any, param: str) -> tuple[set[type], type | None]:
        """(the markers found, the pathlib class a str given there becomes, or None)."""
        self.param = param
        kinds: set[type] = set()
        if isinstance(ann, str):
            try:
                ann = eval(ann, self.globalns)  # noqa: S307 - what typing.get_type_hints does
            except Exception:  # noqa: BLE001 - any failure: read the text instead
                return self._read_text(ann, kinds), self._text_path_class(ann)
        self._scan(ann, kinds, 0)
        return kinds, _path_class(ann, 0)

    # -- resolved annotations ---------------------------------------------------------------

    def _scan(self, obj: Any, kinds: set[type], depth: int) -> None:
        if depth > 20:
            return
        for m in _MARKER_TYPES:
            if obj is m or isinstance(obj, m):
                kinds.add(m)
                return
        if isinstance(obj, str):
            self._read_text(obj, kinds, nested=True)
            return
        if isinstance(obj, typing.ForwardRef):
            self._read_text(obj.__forward_arg__, kinds, nested=True)
            return
        try:
            args = typing.get_args(obj)
        except Exception:  # noqa: BLE001
            return
        for a in args:
            self._scan(a, kinds, depth + 1)

    # -- annotation text ----------------------------------------------------------------------

    def _read_text(self, text: str, kinds: set[type], nested: bool = False) -> set[type]:
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError:
            if nested:
                return kinds  # a string that is not a type (Annotated[int, "a note"])
            if any(n in text for n in _MARKERS):
                self._fail(text, "it is not a Python expression")
            return kinds
        self._visit(tree.body, kinds, in_meta=False, text=text)
        return kinds

    def _visit(self, node: ast.AST, kinds: set[type], in_meta: bool, text: str) -> None:
        if isinstance(node, ast.Subscript):
            base = _dotted(node.value)
            if base is not None and base.rsplit(".", 1)[-1] == "Annotated":
                elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
                if elts:
                    self._visit(elts[0], kinds, False, text)
                for m in elts[1:]:
                    self._visit(m, kinds, True, text)
                return
            self._visit(node.value, kinds, in_meta, text)
            self._visit(node.slice, kinds, in_meta, text)
            return
        name = _dotted(node)
        if name is not None:
            self._name(name, kinds, in_meta, text)
            return
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and not in_meta:
            self._read_text(node.value, kinds, nested=True)
            return
        for child in ast.iter_child_nodes(node):
            self._visit(child, kinds, in_meta, text)

    def _name(self, name: str, kinds: set[type], in_meta: bool, text: str) -> None:
        found, obj = _resolve(name, self.globalns)
        if found:
            self._scan(obj, kinds, 1)
            return
        first, _, rest = name.partition(".")
        last = name.rsplit(".", 1)[-1]
        if last in _MARKERS:
            if rest and first in _OUR_MODULES:
                kinds.add(_MARKERS[last])
                return
            self._fail(text, f"{name!r} is not defined where the function is")
        if in_meta:
            self._fail(
                text, f"{name!r} is not defined where the function is, and it may be a marker"
            )

    def _fail(self, text: str, why: str) -> None:
        raise TaskDeclarationError(
            f"{func_name(self.func)}(): cannot tell whether parameter {self.param!r} is a "
            f"Product, a Dependency or IgnoredForEq: its annotation {text!r} cannot be read "
            f"({why}). Make the names it uses importable when the function is declared "
            "(not only under `if TYPE_CHECKING:`), e.g. `from depio_like import Product, "
            "Dependency`"
        )

    def _text_path_class(self, text: str) -> type | None:
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError:
            return None
        return _text_path(tree.body, self.globalns, 0)


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` for a Name or an Attribute chain on a Name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _resolve(name: str, globalns: dict[str, Any]) -> tuple[bool, Any]:
    first, *rest = name.split(".")
    if first in globalns:
        obj = globalns[first]
    elif hasattr(builtins, first):
        obj = getattr(builtins, first)
    else:
        return False, None
    for part in rest:
        try:
            obj = getattr(obj, part)
        except Exception:  # noqa: BLE001
            return False, None
    return True, obj


def _is_path_class(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, pathlib.PurePath)


def _path_class(t: Any, depth: int) -> type | None:
    """The pathlib class a str given to a parameter annotated ``t`` becomes, or None:
    ``Path``, ``Annotated[Path, ...]``, a bare ``Product``/``Dependency``, ``Path | None``,
    ``Optional[Path]``, and lists, tuples and sequences of those."""
    if depth > 5:
        return None
    if t is Product or t is Dependency:
        return pathlib.Path
    if _is_path_class(t):
        return t
    origin = typing.get_origin(t)
    if origin is None:
        return None
    args = typing.get_args(t)
    if origin is typing.Annotated:
        return _path_class(args[0], depth + 1) if args else None
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in args if a is not _NONE_TYPE]
    elif origin in _SEQUENCES:
        members = [a for a in args if a is not Ellipsis]
    else:
        return None
    classes = {_path_class(a, depth + 1) for a in members}
    return classes.pop() if len(classes) == 1 else None


def _text_path(node: ast.AST, globalns: dict[str, Any], depth: int) -> type | None:
    """``_path_class`` for an annotation that could not be resolved, read from its text."""
    if depth > 5:
        return None
    name = _dotted(node)
    if name is not None:
        found, obj = _resolve(name, globalns)
        if found:
            return _path_class(obj, 0)
        return pathlib.Path if name in ("Path", "pathlib.Path") else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        members = [node.left, node.right]
    elif isinstance(node, ast.Subscript):
        base = _dotted(node.value) or ""
        last = base.rsplit(".", 1)[-1]
        elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if last == "Annotated":
            return _text_path(elts[0], globalns, depth + 1) if elts else None
        if last not in (
            "Optional",
            "Union",
            "List",
            "list",
            "Tuple",
            "tuple",
            "Sequence",
            "Iterable",
            "Collection",
            "MutableSequence",
        ):
            return None
        members = [e for e in elts if not (isinstance(e, ast.Constant) and e.value is Ellipsis)]
    else:
        return None
    classes = set()
    for m in members:
        if isinstance(m, ast.Constant) and m.value is None:
            continue
        if _dotted(m) == "None":
            continue
        classes.add(_text_path(m, globalns, depth + 1))
    return classes.pop() if len(classes) == 1 else None


def has_marker(meta: Iterable[Any], marker: type) -> bool:
    return any(m is marker or isinstance(m, marker) for m in meta)
