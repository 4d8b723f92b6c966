"""paramtypes.py: what a spec file learns from a task function's parameters (types,
defaults, markers, descriptions), the JSON Schema of each type, and the check of values read
from YAML. The schema is judged by an independent validator (jsonschema): for random types
and values, it and our check must agree."""

import enum
import textwrap
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from depio_like import Dependency, IgnoredForEq, Product
from depio_like.paramtypes import (
    _EXPONENT,
    MISSING,
    Invalid,
    convert,
    docstring_params,
    json_schema,
    parameters,
    summary,
    type_text,
)


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


def by_name(func):
    return {p.name: p for p in parameters(func)}


def test_types_defaults_markers_and_annotated_descriptions():
    def f(
        out: Annotated[Path, Product, "where it goes"],
        src: Dependency,
        srcs: Annotated[list[Path], Dependency],
        n: int = 3,
        rate: Annotated[float, "the rate", "ignored second note"] = 0.5,
        mode: Literal["a", "b"] = "a",
        colour: Colour = Colour.RED,
        maybe: int | None = None,
        quiet: Annotated[bool, IgnoredForEq] = False,
        anything=None,
        *args,
        **kwargs,
    ):
        pass

    ps = by_name(f)
    assert list(ps) == [
        "out",
        "src",
        "srcs",
        "n",
        "rate",
        "mode",
        "colour",
        "maybe",
        "quiet",
        "anything",
    ]  # *args and **kwargs are no spec parameters
    assert [(p.marker, p.type_text, p.required) for p in ps.values()] == [
        ("Product", "Path", True),
        ("Dependency", "Path", True),
        ("Dependency", "list[Path]", True),
        ("", "int", False),
        ("", "float", False),
        ("", "one of 'a', 'b'", False),
        ("", "Colour (one of 'red', 'blue')", False),
        ("", "int | None", False),
        ("IgnoredForEq", "bool", False),
        ("", "any", False),
    ]
    assert ps["out"].description == "where it goes"
    assert ps["rate"].description == "the rate"
    assert ps["n"].default == 3 and ps["out"].default is MISSING


def test_future_annotations_and_an_unresolvable_name(tmp_path, monkeypatch):
    (tmp_path / "futmod.py").write_text(
        textwrap.dedent("""\
        from __future__ import annotations
        from pathlib import Path
        from typing import Annotated, TYPE_CHECKING
        from depio_like import Product
        if TYPE_CHECKING:
            from collections import OrderedDict

        def g(out: Annotated[Path, Product], k: int | None = None, xs: list[float] = (),
              od: OrderedDict = None) -> None:
            '''Do g.

            Args:
                k: how many.
            '''
        """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    import futmod

    ps = by_name(futmod.g)
    assert ps["out"].marker == "Product" and ps["out"].type_text == "Path"
    assert ps["k"].type_text == "int | None" and ps["k"].description == "how many."
    assert ps["xs"].type_text == "list[float]"
    assert ps["od"].type_text == "OrderedDict"  # read as text: it cannot be resolved
    assert convert({"a": 1}, ps["od"].type) == {"a": 1}  # and not checked
    assert json_schema(ps["od"].type) == {}


def test_google_numpy_and_sphinx_docstrings():
    google = """Summary line.

    More.

    Args:
        a (int): first
            and more.
        b: second.
        *args: rest.

    Returns:
        something: not a parameter.
    """
    assert docstring_params(textwrap.dedent(google)) == {
        "a": "first and more.",
        "b": "second.",
        "args": "rest.",
    }
    numpy = """Summary.

    Parameters
    ----------
    x, y : float
        coordinates
        in metres.
    z
        no type.

    Returns
    -------
    r : float
        not a parameter.
    """
    assert docstring_params(textwrap.dedent(numpy)) == {
        "x": "coordinates in metres.",
        "y": "coordinates in metres.",
        "z": "no type.",
    }
    sphinx = """Summary.

    :param int a: the a
        continued.
    :param b: the b
    :returns: nothing
    """
    assert docstring_params(textwrap.dedent(sphinx)) == {"a": "the a continued.", "b": "the b"}

    def f(a: int):
        """Frame a report
        with a title.

        Args:
            a: x.
        """

    assert summary(f) == "Frame a report with a title."


@pytest.mark.parametrize(
    "value,tp,expected",
    [
        (3, int, 3),
        (3.0, int, 3),
        (3, float, 3.0),
        ("1e3", float, 1000.0),
        ("x", str, "x"),
        (True, bool, True),
        ("a.txt", Path, Path("a.txt")),
        (None, Optional[int], None),
        (4, Optional[int], 4),
        ([1, 2], list[int], [1, 2]),
        ([1, 2], tuple[int, ...], (1, 2)),
        ([1, "a"], tuple[int, str], (1, "a")),
        ({"a": 1.5}, dict[str, float], {"a": 1.5}),
        ("blue", Colour, Colour.BLUE),
        ("BLUE", Colour, Colour.BLUE),
        (2, Level, Level.HIGH),
        ("b", Literal["a", "b"], "b"),
        ([1, 1, 2], set[int], {1, 2}),
        (["a.txt"], Annotated[list[Path], Dependency], [Path("a.txt")]),
        ("x", Any, "x"),
        ({"k": [1]}, dict[str, list[int]], {"k": [1]}),
        (["a"], Sequence[str], ["a"]),
        (5, int | str, 5),
        ("5", int | str, "5"),
    ],
)
def test_convert_takes(value, tp, expected):
    got = convert(value, tp)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    "value,tp,where,expected",
    [
        ("3", int, "", "int"),
        (True, int, "", "int"),
        (2.5, int, "", "int"),
        (True, float, "", "float"),
        ("x", float, "", "float"),
        (3, str, "", "str"),
        ("", Path, "", "a path (Path)"),
        (None, int, "", "int"),
        ([1, "x"], list[int], "[1]", "int"),
        ("abc", list[str], "", "list[str]"),
        ([1], tuple[int, str], "", "tuple[int, str]"),
        ({"a": "x"}, dict[str, int], ".a", "int"),
        ("green", Colour, "", "Colour (one of 'red', 'blue')"),
        (True, Level, "", "Level (one of 1, 2)"),
        ("c", Literal["a", "b"], "", "one of 'a', 'b'"),
        ("x", Optional[int], "", "int | None"),
        (1, Literal[True], "", "one of True"),
    ],
)
def test_convert_refuses_naming_the_type_and_where(value, tp, where, expected):
    with pytest.raises(Invalid) as e:
        convert(value, tp, "")
    assert (e.value.where, e.value.expected) == (where, expected)


def test_other_classes_take_only_instances():
    class Model:
        pass

    with pytest.raises(Invalid) as e:
        convert({"lr": 1}, Model)
    assert e.value.expected.startswith("Model (which a config file cannot give")
    m = Model()
    assert convert(m, Model) is m


# -- the schema against an independent validator ----------------------------------------------

jsonschema = pytest.importorskip("jsonschema")


class Same(enum.Enum):  # names equal values: a name is taken as well as a value
    A = "A"
    B = "B"


LEAVES = [
    int,
    float,
    str,
    bool,
    Path,
    type(None),
    Any,
    Literal["a", 1, None],
    Same,
    Literal[1.5, 2],
]


def types_():
    return st.recursive(
        st.sampled_from(LEAVES),
        lambda inner: st.one_of(
            inner.map(lambda t: list[t]),
            inner.map(lambda t: tuple[t, ...]),
            st.tuples(inner, inner).map(lambda ab: tuple[ab[0], ab[1]]),
            inner.map(lambda t: dict[str, t]),
            inner.map(lambda t: Optional[t]),
            st.tuples(inner, inner).map(lambda ab: typing.Union[ab[0], ab[1]]),
            inner.map(lambda t: Annotated[t, "note"]),
        ),
        max_leaves=4,
    )


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 5),
        st.floats(allow_nan=False, allow_infinity=False, width=32),
        st.sampled_from(["a", "A", "", "x.txt", "1.5", "B"]),
        st.text(max_size=3),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(types_(), json_values)
@example(Literal["a", 1, None], True)
@example(Literal[1.5, 2], 2.0)
@example(int, 2.0)
@example(int, True)
@example(float, False)
@example(Optional[Path], "")
@example(tuple[int, str], [1, "a", 2])
@example(dict[str, int], {"a": 1.0})
def test_schema_and_check_agree(tp, value):
    # The one deliberate difference: "1e3" (text to PyYAML) is taken for a float.
    assume(not any(isinstance(v, str) and _EXPONENT.fullmatch(v.strip()) for v in _leaves(value)))
    schema = json_schema(tp)
    jsonschema.Draft202012Validator.check_schema(schema)
    by_schema = jsonschema.Draft202012Validator(schema).is_valid(value)
    try:
        convert(value, tp)
        by_us = True
    except Invalid:
        by_us = False
    assert by_schema == by_us, (type_text(tp), schema, value)


def _leaves(value):
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
        else:
            yield v
