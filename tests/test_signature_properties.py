"""Property test of reading markers: random annotations, as users might write them (nested
in Optional, unions, lists, Annotated with several items; names that resolve, names defined
later, names imported only for type checking, typos), with and without
``from __future__ import annotations``. Whatever the annotation, the markers read are
exactly the ones written, or the declaration fails: a marker is never silently lost."""

import os
import textwrap

import pytest

try:
    import hypothesis  # noqa: F401
except ImportError:
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on"):
        raise
    pytest.skip(
        "the property tests need hypothesis: pip install hypothesis", allow_module_level=True
    )
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from depio_like import TaskDeclarationError  # noqa: E402
from depio_like.signature import spec_of  # noqa: E402

PRELUDE = """
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional
import depio_like as dl
from depio_like import Dependency, IgnoredForEq, Product, Untracked
if TYPE_CHECKING:
    import numpy as np
    import depio_like
    from collections import OrderedDict as Cfg
    from depio_like import Product as Prod
Doc = object()
"""


class Ann:
    """An annotation's text and what reading it must give."""

    def __init__(self, text, kinds=frozenset(), ambiguous=False, eager_ok=True):
        self.text, self.kinds, self.ambiguous, self.eager_ok = text, kinds, ambiguous, eager_ok


# Types: (text, defined when the function is declared in eager mode too)
TYPES = st.sampled_from(
    [
        Ann("Path"),
        Ann("int"),
        Ann("str"),
        Ann("Later", eager_ok=False),  # a class defined further down the script
        Ann("Missing", eager_ok=False),  # a typo: never defined
        Ann("np.ndarray", eager_ok=False),  # imported only for type checking
        Ann("Cfg", eager_ok=False),
    ]
)
MARKERS = st.sampled_from(
    [
        Ann("Product", {"Product"}),
        Ann("Dependency", {"Dependency"}),
        Ann("IgnoredForEq", {"IgnoredForEq"}),
        Ann("Untracked", {"IgnoredForEq"}),
        Ann("dl.Product", {"Product"}),
        Ann("dl.Dependency", {"Dependency"}),
        Ann("depio_like.Product", {"Product"}, eager_ok=False),  # module only for type checking
    ]
)
# Metadata that is no marker, and names in metadata that cannot be read.
OTHER_META = st.sampled_from([Ann('"a note"'), Ann("Doc"), Ann("3")])
UNREADABLE_META = st.sampled_from(
    [
        Ann("Prod", ambiguous=True, eager_ok=False),  # a marker alias for type checking only
        Ann("Prodcut", ambiguous=True, eager_ok=False),  # a typo
        Ann("Missing2", ambiguous=True, eager_ok=False),
    ]
)


def combine(text, parts):
    return Ann(
        text,
        frozenset().union(*(p.kinds for p in parts)),
        any(p.ambiguous for p in parts),
        all(p.eager_ok for p in parts),
    )


def annotated(args):
    base, meta = args
    return combine(f"Annotated[{base.text}, {', '.join(m.text for m in meta)}]", [base, *meta])


def extend(inner):
    return st.one_of(
        inner.map(lambda a: combine(f"Optional[{a.text}]", [a])),
        inner.map(lambda a: combine(f"{a.text} | None", [a])),
        inner.map(lambda a: combine(f"list[{a.text}]", [a])),
        inner.map(lambda a: combine(f"tuple[{a.text}, ...]", [a])),
        st.tuples(
            inner, st.lists(st.one_of(MARKERS, OTHER_META, UNREADABLE_META), min_size=1, max_size=3)
        ).map(annotated),
    )


ANNOTATIONS = st.recursive(st.one_of(TYPES, MARKERS), extend, max_leaves=4)


def declare(annotations, future):
    params = ", ".join(f"p{i}: {a.text}" for i, a in enumerate(annotations))
    source = (
        ("from __future__ import annotations\n" if future else "")
        + PRELUDE
        + f"def f({params}):\n    pass\n\nclass Later:\n    pass\n"
    )
    ns = {"__name__": "generated"}
    exec(compile(source, "<generated>", "exec", dont_inherit=True), ns)
    return ns["f"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ANNOTATIONS, min_size=1, max_size=4), st.booleans())
def test_markers_are_read_exactly_or_the_declaration_fails(annotations, future):
    if not future and not all(a.eager_ok for a in annotations):
        future = True  # without it, Python itself would fail on the undefined names
    f = declare(annotations, future)
    must_fail = any(a.ambiguous or len(a.kinds) > 1 for a in annotations)
    where = textwrap.indent("\n".join(a.text for a in annotations), "    ")
    try:
        spec = spec_of(f)
    except TaskDeclarationError as e:
        assert must_fail, f"refused, though every marker is readable:\n{where}\n{e}"
        assert "f()" in str(e) and "parameter 'p" in str(e)
        return
    assert not must_fail, f"accepted, though a marker cannot be read:\n{where}"
    expected = {
        kind: tuple(f"p{i}" for i, a in enumerate(annotations) if a.kinds == {kind})
        for kind in ("Product", "Dependency", "IgnoredForEq")
    }
    assert spec.products == expected["Product"], where
    assert spec.dependencies == expected["Dependency"], where
    assert spec.ignored == frozenset(expected["IgnoredForEq"]), where
