"""What a task function's parameters take, for spec files: each parameter's type (from its
annotation), default, marker and description, as JSON Schema, as text, and a check that
converts a value read from YAML into what the function expects.

Descriptions come from ``Annotated[T, "a description"]`` (the first string in the
metadata) or else the docstring: a Google ``Args:`` (``Arguments:``, ``Parameters:``)
section, a NumPy ``Parameters`` section, or Sphinx ``:param name:`` lines.

Types understood: ``int``, ``float`` (an int is taken), ``str``, ``bool``, ``Path`` (and
the other pathlib classes), ``None``, ``list[T]`` / ``Sequence[T]`` / ``set[T]``,
``tuple[T, ...]`` and ``tuple[A, B]``, ``dict[str, T]``, ``Literal[...]``, an ``Enum``
(a member's value or name), ``Optional[T]`` / ``T | None`` and other unions,
``Annotated[T, ...]``, ``Any``. Another class takes only an instance of itself (which a
YAML file cannot give: pass such a value from another task with ``value_of``).
"""

from __future__ import annotations

import collections.abc
import enum
import inspect
import pathlib
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .signature import Dependency, IgnoredForEq, Product, _globals_of, spec_of

MISSING: Any = inspect.Parameter.empty
_NONE = type(None)


class Unresolved:
    """An annotation whose text could not be evaluated where the function is defined."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


@dataclass
class ParamInfo:
    """One parameter of a task function, as a spec file sees it."""

    name: str
    type: Any  # the annotation, Annotated and markers stripped (Any if none)
    default: Any  # MISSING when required
    marker: str  # "Product", "Dependency", "IgnoredForEq" or ""
    description: str
    positional_only: bool = False

    @property
    def required(self) -> bool:
        return self.default is MISSING

    @property
    def type_text(self) -> str:
        return type_text(self.type)


def summary(func: Callable[..., Any]) -> str:
    """The first paragraph of the function's docstring, on one line."""
    doc = inspect.getdoc(getattr(func, "task_function", func)) or ""
    return " ".join(doc.strip().split("\n\n", 1)[0].split())


def parameters(func: Callable[..., Any]) -> list[ParamInfo]:
    """The parameters a spec can give ``func`` (``*args`` / ``**kwargs`` left out)."""
    func = getattr(func, "task_function", func)
    spec = spec_of(func)  # raises for an unreadable marker, as declaring a task would
    globalns = _globals_of(func)
    docs = docstring_params(inspect.getdoc(func) or "")
    out = []
    P = inspect.Parameter
    for p in spec.signature.parameters.values():
        if p.kind in (P.VAR_POSITIONAL, P.VAR_KEYWORD):
            continue
        ann = p.annotation
        if isinstance(ann, str):
            try:
                ann = eval(ann, globalns)  # noqa: S307 - what typing.get_type_hints does
            except Exception:  # noqa: BLE001
                ann = Unresolved(ann)
        marker = (
            "Product"
            if p.name in spec.products
            else "Dependency"
            if p.name in spec.dependencies
            else "IgnoredForEq"
            if p.name in spec.ignored
            else ""
        )
        tp, note = _strip(ann)
        if ann is P.empty:
            tp = Any
        if marker in ("Product", "Dependency") and tp is Any:
            tp = pathlib.Path
        out.append(
            ParamInfo(
                p.name,
                tp,
                p.default,
                marker,
                note or docs.get(p.name, ""),
                p.kind is P.POSITIONAL_ONLY,
            )
        )
    return out


def _strip(ann: Any) -> tuple[Any, str]:
    """The annotation without its outer Annotated (markers inside are read where the type
    is used), and the first description string found in Annotated metadata in it."""
    if ann is inspect.Parameter.empty or isinstance(ann, Unresolved):
        return ann, ""
    if ann is IgnoredForEq:
        return Any, ""
    notes: list[str] = []
    stack, seen = [ann], 0
    while stack and seen < 50:
        t = stack.pop()
        seen += 1
        if typing.get_origin(t) is typing.Annotated:
            base, *meta = typing.get_args(t)
            notes.extend(" ".join(m.split()) for m in meta if isinstance(m, str) and m.strip())
            stack.append(base)
        else:
            try:
                stack.extend(reversed(typing.get_args(t)))
            except Exception:  # noqa: BLE001
                pass
    return _bare(ann), (notes[0] if notes else "")


def _bare(t: Any) -> Any:
    """``t`` without an outer Annotated; a bare marker is a Path."""
    while typing.get_origin(t) is typing.Annotated:
        t = typing.get_args(t)[0]
    if t is Product or t is Dependency:
        return pathlib.Path
    if t is IgnoredForEq:
        return Any
    return t


# -- docstrings -------------------------------------------------------------------------------

_GOOGLE = re.compile(
    r"^(\s*)(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments)"
    r":\s*$"
)
_GOOGLE_ITEM = re.compile(r"^\**(\w+)\s*(\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ITEM = re.compile(r"^\**(\w+(?:\s*,\s*\w+)*)\s*(:.*)?$")
_SPHINX = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


def docstring_params(doc: str) -> dict[str, str]:
    """Parameter descriptions from a (dedented) docstring, one line each."""
    lines = doc.expandtabs().splitlines()
    out: dict[str, str] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _GOOGLE.match(line)
        if m:
            i = _google_section(lines, i + 1, len(m.group(1)), out)
            continue
        if (
            line.strip() in ("Parameters", "Other Parameters")
            and i + 1 < len(lines)
            and set(lines[i + 1].strip()) == {"-"}
        ):
            i = _numpy_section(lines, i + 2, len(line) - len(line.lstrip()), out)
            continue
        m = _SPHINX.match(line)
        if m:
            text = [m.group(2)]
            i += 1
            while i < len(lines) and lines[i].strip() and not lines[i].strip().startswith(":"):
                text.append(lines[i].strip())
                i += 1
            out.setdefault(m.group(1), " ".join(" ".join(text).split()))
            continue
        i += 1
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _google_section(lines: list[str], i: int, base: int, out: dict[str, str]) -> int:
    item_indent = None
    name: str | None = None
    text: list[str] = []
    while i < len(lines):
        line = lines[i]
        if line.strip() and _indent(line) <= base:
            break
        if line.strip():
            if item_indent is None:
                item_indent = _indent(line)
            m = _GOOGLE_ITEM.match(line.strip()) if _indent(line) == item_indent else None
            if m:
                if name:
                    out.setdefault(name, " ".join(" ".join(text).split()))
                name, text = m.group(1), [m.group(3)]
            elif name:
                text.append(line.strip())
        i += 1
    if name:
        out.setdefault(name, " ".join(" ".join(text).split()))
    return i


def _numpy_section(lines: list[str], i: int, base: int, out: dict[str, str]) -> int:
    name: str | None = None
    text: list[str] = []
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if (
            stripped
            and i + 1 < len(lines)
            and set(lines[i + 1].strip()) == {"-"}
            and _indent(line) <= base
        ):
            break  # the next section's heading
        if stripped and _indent(line) <= base:
            m = _NUMPY_ITEM.match(stripped)
            if not m:
                break
            if name:
                for n in name.split(","):
                    out.setdefault(n.strip(), " ".join(" ".join(text).split()))
            name, text = m.group(1), []
        elif stripped and name:
            text.append(stripped)
        i += 1
    if name:
        for n in name.split(","):
            out.setdefault(n.strip(), " ".join(" ".join(text).split()))
    return i


# -- types as text and as JSON Schema -----------------------------------------------------------


def _union_args(t: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(t)
    if origin is typing.Union or origin is types.UnionType:
        return typing.get_args(t)
    return None


def type_text(t: Any) -> str:
    """How messages write a type: ``int``, ``Path``, ``list[int]``, ``float | None``."""
    t = _bare(t)
    if t is Any or t is MISSING:
        return "any"
    if t is _NONE or t is None:
        return "None"
    if isinstance(t, Unresolved):
        return t.text
    members = _union_args(t)
    if members is not None:
        return " | ".join(type_text(a) for a in members)
    origin = typing.get_origin(t)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(t))
    if isinstance(t, type) and issubclass(t, enum.Enum):
        return f"{t.__name__} (one of {', '.join(repr(m.value) for m in t)})"
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        args = typing.get_args(t)
        inner = ", ".join("..." if a is Ellipsis else type_text(a) for a in args)
        return f"{name}[{inner}]" if args else name
    if isinstance(t, type):
        return t.__name__
    return str(t).replace("typing.", "")


_SEQ_ORIGINS = (
    list,
    collections.abc.Sequence,
    collections.abc.MutableSequence,
    collections.abc.Iterable,
    collections.abc.Collection,
)
_SET_ORIGINS = (set, frozenset, collections.abc.Set, collections.abc.MutableSet)
_MAP_ORIGINS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)


def json_schema(t: Any) -> dict[str, Any]:
    """The JSON Schema of the values a parameter of type ``t`` takes from a config file."""
    t = _bare(t)
    if t is Any or t is MISSING or isinstance(t, Unresolved) or t is object:
        return {}
    if t is _NONE or t is None:
        return {"type": "null"}
    if t is bool:
        return {"type": "boolean"}
    if t is int:
        return {"type": "integer"}
    if t is float:
        return {"type": "number"}
    if t is str:
        return {"type": "string"}
    if isinstance(t, type) and issubclass(t, pathlib.PurePath):
        return {"type": "string", "format": "path", "minLength": 1}
    if isinstance(t, type) and issubclass(t, enum.Enum):
        return {"enum": [_plain(m.value) for m in t]}
    members = _union_args(t)
    if members is not None:
        return {"anyOf": [json_schema(a) for a in members]}
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin is typing.Literal:
        return {"enum": [_plain(a) for a in args]}
    if origin in _SEQ_ORIGINS or t in (list, collections.abc.Sequence):
        return {"type": "array", **({"items": json_schema(args[0])} if args else {})}
    if origin in _SET_ORIGINS or t in (set, frozenset):
        return {"type": "array", **({"items": json_schema(args[0])} if args else {})}
    if origin is tuple or t is tuple:
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            return {"type": "array", **({"items": json_schema(args[0])} if args else {})}
        if args == ((),):
            return {"type": "array", "maxItems": 0}
        return {
            "type": "array",
            "prefixItems": [json_schema(a) for a in args],
            "items": False,
            "minItems": len(args),
            "maxItems": len(args),
        }
    if origin in _MAP_ORIGINS or t is dict:
        schema: dict[str, Any] = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = json_schema(args[1])
        return schema
    return {"x-python-type": type_text(t)}


def _plain(v: Any) -> Any:
    """``v`` as JSON/YAML can write it (paths as str, enums by value, tuples and sets as
    lists); MISSING if it cannot be written."""
    if v is None or type(v) in (bool, int, str):
        return v
    if type(v) is float:
        return v if v == v and v not in (float("inf"), float("-inf")) else MISSING
    if isinstance(v, enum.Enum):
        return _plain(v.value)
    if isinstance(v, pathlib.PurePath):
        return str(v)
    if isinstance(v, (list, tuple, set, frozenset)):
        items = [_plain(x) for x in (sorted(v, key=repr) if isinstance(v, (set, frozenset)) else v)]
        return MISSING if any(x is MISSING for x in items) else items
    if isinstance(v, dict):
        entries = {k: _plain(x) for k, x in v.items()}
        if any(type(k) is not str for k in entries) or any(x is MISSING for x in entries.values()):
            return MISSING
        return entries
    return MISSING


def plain_default(v: Any) -> Any:
    """A default as a config file would write it, or MISSING."""
    return _plain(v)


# -- checking and converting values -----------------------------------------------------------


class Invalid(Exception):
    """A value that does not fit: ``where`` is the place inside it (``[2]``, ``.key``)."""

    def __init__(self, where: str, expected: str, value: Any) -> None:
        super().__init__(where, expected, value)
        self.where, self.expected, self.value = where, expected, value


def describe(value: Any) -> str:
    """A value as an error message shows it: ``str 'abc'``, ``nothing`` for None."""
    if value is None:
        return "nothing (null)"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


# YAML 1.1 (PyYAML) reads 1e3 as text; a float parameter takes it as the number it looks like.
_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _same(a: Any, value: Any) -> bool:
    """Equal as JSON Schema's ``enum`` compares: 1 and 1.0 alike, True and 1 not."""
    if type(a) is type(value) or (type(a) in (int, float) and type(value) in (int, float)):
        try:
            return bool(a == value)
        except Exception:  # noqa: BLE001
            return False
    return False


def convert(value: Any, t: Any, where: str = "") -> Any:
    """``value`` (as read from YAML) as a parameter of type ``t`` takes it; Invalid if it
    does not fit."""
    t = _bare(t)
    if t is Any or t is MISSING or isinstance(t, Unresolved) or t is object:
        return value
    if t is _NONE or t is None:
        if value is None:
            return None
        raise Invalid(where, "None", value)
    if t is bool:
        if type(value) is bool:
            return value
        raise Invalid(where, "bool", value)
    if t is int:
        if type(value) is int:
            return value
        if type(value) is float and value.is_integer():  # as JSON Schema's "integer"
            return int(value)
        raise Invalid(where, "int", value)
    if t is float:
        if type(value) in (int, float):
            return float(value)
        if type(value) is str and _EXPONENT.fullmatch(value.strip()):
            return float(value)
        raise Invalid(where, "float", value)
    if t is str:
        if type(value) is str:
            return value
        raise Invalid(where, "str", value)
    if isinstance(t, type) and issubclass(t, pathlib.PurePath):
        if isinstance(value, str) and value:
            return t(value)
        raise Invalid(where, f"a path ({t.__name__})", value)
    if isinstance(t, type) and issubclass(t, enum.Enum):
        for m in t:
            if _same(m.value, value):
                return m
        if isinstance(value, str) and value in t.__members__:
            return t.__members__[value]
        raise Invalid(where, type_text(t), value)
    members = _union_args(t)
    if members is not None:
        # None first: `null` for Optional[...] is None even if another member would take it.
        for a in sorted(members, key=lambda a: a is not _NONE):
            try:
                return convert(value, a, where)
            except Invalid:
                continue
        raise Invalid(where, type_text(t), value)
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin is typing.Literal:
        for a in args:
            if _same(a, value):
                return a
        raise Invalid(where, type_text(t), value)
    if origin in _SEQ_ORIGINS or t in (list, collections.abc.Sequence):
        if type(value) is not list:
            raise Invalid(where, type_text(t), value)
        return (
            [convert(x, args[0], f"{where}[{i}]") for i, x in enumerate(value)] if args else value
        )
    if origin in _SET_ORIGINS or t in (set, frozenset):
        if type(value) is not list:
            raise Invalid(where, type_text(t), value)
        items = (
            [convert(x, args[0], f"{where}[{i}]") for i, x in enumerate(value)] if args else value
        )
        try:
            return (frozenset if (origin or t) in (frozenset,) else set)(items)
        except TypeError:
            raise Invalid(where, type_text(t), value) from None
    if origin is tuple or t is tuple:
        if type(value) is not list:
            raise Invalid(where, type_text(t), value)
        if not args:
            return tuple(value)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(x, args[0], f"{where}[{i}]") for i, x in enumerate(value))
        if args == ((),):
            args = ()
        if len(value) != len(args):
            raise Invalid(where, type_text(t), value)
        return tuple(
            convert(x, a, f"{where}[{i}]") for i, (x, a) in enumerate(zip(value, args, strict=True))
        )
    if origin in _MAP_ORIGINS or t is dict:
        if type(value) is not dict:
            raise Invalid(where, type_text(t), value)
        if len(args) != 2:
            return value
        return {
            convert(k, args[0], f"{where}.{k}"): convert(v, args[1], f"{where}.{k}")
            for k, v in value.items()
        }
    if isinstance(t, type):
        if isinstance(value, t):
            return value
        raise Invalid(
            where,
            f"{t.__name__} (which a config file cannot give; pass it from "
            "another task with value_of)",
            value,
        )
    return value  # a typing construct not understood here: taken as given
