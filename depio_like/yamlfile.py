"""Reading a YAML file while keeping where each entry came from, so that an error in a spec
or a config file names its line. Needs PyYAML (the ``spec`` extra); imported only by the
spec commands."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from .errors import SpecError


def need_yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise SpecError(
            "spec files need PyYAML: pip install 'depio_like[spec]' (or pip install pyyaml)"
        ) from None
    return yaml


Key = tuple[Any, ...]


@dataclass
class Doc:
    """A YAML document's data, and the line (1-based) of each mapping key and sequence
    item, by its path of keys and indices from the top."""

    path: str
    data: Any
    lines: dict[Key, int] = field(default_factory=dict)

    def line(self, *keys: Any) -> int:
        """The line of the entry at ``keys``, or of its nearest ancestor that has one."""
        k = tuple(keys)
        while k:
            if k in self.lines:
                return self.lines[k]
            k = k[:-1]
        return self.lines.get((), 1)

    def at(self, *keys: Any) -> str:
        """``file:line`` of the entry at ``keys``, for messages."""
        return f"{self.path}:{self.line(*keys)}"


def load(path: str | os.PathLike[str], shown_as: str | None = None) -> Doc:
    """Read the YAML file at ``path``; SpecError for a file that cannot be read or parsed,
    or that repeats a key in a mapping."""
    yaml = need_yaml()
    shown = shown_as or os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise SpecError(f"{shown}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{shown}: cannot read it ({e})") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark is not None else shown
        problem = getattr(e, "problem", None) or str(e)
        context = getattr(e, "context", None)
        raise SpecError(
            f"{where}: not valid YAML: {problem}" + (f" ({context})" if context else "")
        ) from None
    finally:
        loader.dispose()
    doc = Doc(shown, data)
    if node is not None:
        doc.lines[()] = node.start_mark.line + 1
        problems: list[str] = []
        _walk(yaml, node, (), doc.lines, shown, problems)
        if problems:
            raise SpecError("\n".join(problems))
    return doc


def _walk(
    yaml: Any, node: Any, key: Key, lines: dict[Key, int], shown: str, problems: list[str]
) -> None:
    stack = [(node, key)]
    while stack:
        n, k = stack.pop()
        if isinstance(n, yaml.MappingNode):
            seen: dict[str, int] = {}
            for kn, vn in n.value:
                if not isinstance(kn, yaml.ScalarNode) or kn.value == "<<":
                    continue  # merge keys and complex keys: no line of their own
                line = kn.start_mark.line + 1
                if kn.value in seen:
                    problems.append(
                        f"{shown}:{line}: {kn.value!r} is given twice in this "
                        f"mapping (first on line {seen[kn.value]})"
                    )
                    continue
                seen[kn.value] = line
                child = k + (kn.value,)
                lines[child] = line
                stack.append((vn, child))
        elif isinstance(n, yaml.SequenceNode):
            for i, vn in enumerate(n.value):
                child = k + (i,)
                lines[child] = vn.start_mark.line + 1
                stack.append((vn, child))
