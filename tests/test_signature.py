"""What a task function's signature declares, written as users write it: with
``from __future__ import annotations``, names that do not resolve, bare markers,
``Optional``, ``async def``, generators, and plain ``str`` paths."""

import textwrap
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import (
    Dependency,
    ParallelExecutor,
    Product,
    SequentialExecutor,
    Task,
    TaskDeclarationError,
    task,
)

from conftest import new_pipeline, run_script

FUTURE = "from __future__ import annotations\n"
HEADER = """
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional
from depio_like import Dependency, IgnoredForEq, Product, Task, task
"""


def script(source, future=True):
    """Run ``source`` as a module of its own (as a user's script is) and return its globals."""
    text = (FUTURE if future else "") + HEADER + textwrap.dedent(source)
    ns = {"__name__": "user_script"}
    exec(compile(text, "<user_script>", "exec", dont_inherit=True), ns)
    return ns


# -- markers are never lost ----------------------------------------------------------------


def test_a_class_defined_later_in_the_script_does_not_hide_the_markers(project):
    ns = script("""
        @task
        def train(model: Annotated[Path, Product], data: Annotated[Path, Dependency],
                  opts: Options, quiet: Annotated[bool, IgnoredForEq] = False):
            model.write_text(opts.text)

        class Options:
            text = "fitted"
    """)
    t = ns["train"]("model.txt", "data.txt", ns["Options"]())
    assert t.products == (str(project / "model.txt"),)
    assert t.dependencies == (str(project / "data.txt"),)
    assert t.ignored == frozenset({"quiet"})


def test_a_type_imported_only_for_type_checking_does_not_hide_the_markers(project):
    ns = script("""
        if TYPE_CHECKING:
            from collections import OrderedDict as Config

        def fit(out: Annotated[Path, Product], src: Annotated[Path, Dependency], cfg: Config):
            pass
    """)
    t = Task("fit", ns["fit"], ["out.txt", "in.txt", {}])
    assert t.products == (str(project / "out.txt"),)
    assert t.dependencies == (str(project / "in.txt"),)


def test_a_typo_in_another_parameters_type_does_not_hide_the_markers(project):
    ns = script("""
        def fit(out: Annotated[Path, Product], degree: Intt = 3):
            pass
    """)
    assert Task("fit", ns["fit"], ["out.txt"]).products == (str(project / "out.txt"),)


def test_the_products_of_such_a_function_are_built_and_tracked(project):
    # The whole cycle: a product the pipeline knows about is checked on the next run.
    ns = script("""
        def make(out: Annotated[Path, Product], src: Annotated[Path, Dependency], n: Later):
            out.write_text(src.read_text().upper())

        class Later:
            pass
    """)
    Path("in.txt").write_text("a")
    for expected, ran in (("A", True), ("A", False)):
        p = new_pipeline()
        t = p.add_task(Task("make", ns["make"], ["out.txt", "in.txt", 1]))
        assert p.run() == 0
        assert Path("out.txt").read_text() == expected
        assert (t.status.name == "FINISHED") is ran
    Path("in.txt").write_text("b")
    p = new_pipeline()
    p.add_task(Task("make", ns["make"], ["out.txt", "in.txt", 1]))
    assert p.run() == 0
    assert Path("out.txt").read_text() == "B"


def test_a_marker_wrapped_in_optional_or_a_union_with_none_is_found(project):
    def a(out: Annotated[Path, Product] | None = None):
        pass

    def b(src: Annotated[Path, Dependency] | None = None, out: list[Annotated[Path, Product]] = ()):
        pass

    assert Task("a", a, ["x"]).products == (str(project / "x"),)
    t = Task("b", b, ["i"], {"out": ["o1", "o2"]})
    assert t.dependencies == (str(project / "i"),)
    assert t.products == (str(project / "o1"), str(project / "o2"))


def test_markers_qualified_with_the_module_name_are_read_from_the_text(project):
    ns = script("""
        if TYPE_CHECKING:
            import depio_like

        def f(out: Annotated[Path, depio_like.Product], src: depio_like.Dependency):
            pass
    """)
    t = Task("f", ns["f"], ["o", "i"])
    assert t.products == (str(project / "o"),)
    assert t.dependencies == (str(project / "i"),)


def test_a_marker_that_cannot_be_resolved_fails_naming_function_and_parameter():
    ns = script("""
        if TYPE_CHECKING:
            from depio_like import Product as Out

        def save(data: int, target: Annotated[Path, Out]):
            pass
    """)
    with pytest.raises(TaskDeclarationError, match=r"save\(\).*parameter 'target'.*'Out'"):
        Task("save", ns["save"], [1, "o"])


def test_a_marker_imported_only_for_type_checking_fails_at_declaration():
    ns = script("""
        if TYPE_CHECKING:
            from depio_like import Dependency as Dep, Product as Prod

        def save(target: Annotated[Path, Prod]):
            pass

        def load(src: Annotated[Path, Dep], data: Dependency):
            pass
    """)
    with pytest.raises(TaskDeclarationError, match=r"save\(\).*'target'.*TYPE_CHECKING"):
        Task("save", ns["save"], ["o"])
    with pytest.raises(TaskDeclarationError, match=r"load\(\).*'src'"):
        task(ns["load"])("i", "j")


def test_a_misspelt_marker_fails_at_declaration():
    ns = script("""
        def save(target: Annotated[Path, Prodcut]):
            pass
    """)
    with pytest.raises(TaskDeclarationError, match=r"save\(\).*'target'.*'Prodcut'"):
        Task("save", ns["save"], ["o"])


def test_a_parameter_with_two_markers_is_refused():
    def f(x: Annotated[Path, Product, Dependency]):
        pass

    with pytest.raises(TaskDeclarationError, match=r"f\(\).*'x'.*Dependency, Product"):
        Task("f", f, ["o"])


# -- bare markers, return annotations ------------------------------------------------------


@pytest.mark.parametrize("future", [True, False], ids=["future", "eager"])
def test_a_bare_marker_works_as_annotated_path(project, future):
    ns = script(
        """
        seen = []

        def copy(out: Product, src: Dependency, extra: Optional[Product] = None):
            seen.append((isinstance(out, Path), isinstance(src, Path)))
            out.write_text(src.read_text())
    """,
        future=future,
    )
    Path("in.txt").write_text("x")
    t = Task("copy", ns["copy"], ["out.txt", "in.txt"])
    assert t.products == (str(project / "out.txt"),)
    assert t.dependencies == (str(project / "in.txt"),)
    p = new_pipeline()
    p.add_task(t)
    assert p.run() == 0
    assert ns["seen"] == [(True, True)]
    assert Path("out.txt").read_text() == "x"


@pytest.mark.parametrize("future", [True, False], ids=["future", "eager"])
def test_a_product_in_the_return_annotation_is_refused_saying_what_to_write(future):
    ns = script(
        """
        def make(n: int) -> Annotated[Path, Product]:
            return Path(f"{n}.txt")
    """,
        future=future,
    )
    with pytest.raises(
        TaskDeclarationError, match=r"make\(\).*return.*out: Annotated\[Path, Product\]"
    ):
        Task("make", ns["make"], [1])


def test_a_plain_return_annotation_is_fine():
    def f(x: int) -> Annotated[int, "a note"]:
        return x

    assert Task("f", f, [1]).products == ()


# -- str -> Path ----------------------------------------------------------------------------


def test_a_str_given_to_a_path_parameter_reaches_the_function_as_a_path(project):
    ns = script("""
        got = {}

        def f(out: Annotated[Path, Product], src: Annotated[Path, Dependency],
              plain: Path, maybe: Path | None, opt: Optional[Path], many: list[Path],
              pair: tuple[Path, ...], text: str, either: Path | str, anything=None,
              default: Path = "d.txt"):
            got.update(locals())
            out.write_text("ok")
    """)
    Path("in.txt").write_text("x")
    p = new_pipeline()
    p.add_task(
        Task(
            "f",
            ns["f"],
            ["out.txt", "in.txt", "p.txt", "m.txt", None],
            {
                "many": ["a", Path("b")],
                "pair": ("c",),
                "text": "t.txt",
                "either": "e.txt",
                "anything": "n.txt",
            },
        )
    )
    assert p.run() == 0
    got = ns["got"]
    for name in ("out", "src", "plain", "maybe", "default"):
        assert isinstance(got[name], Path), name
    assert got["out"] == Path("out.txt") and got["default"] == Path("d.txt")
    assert got["opt"] is None
    assert got["many"] == [Path("a"), Path("b")] and got["pair"] == (Path("c"),)
    assert got["text"] == "t.txt" and got["either"] == "e.txt" and got["anything"] == "n.txt"


@pytest.mark.parametrize(
    "make_executor",
    [SequentialExecutor, lambda: ParallelExecutor(2)],
    ids=["sequential", "parallel"],
)
def test_the_path_conversion_holds_in_worker_processes(project, make_executor):
    def write(out: Annotated[Path, Product]):
        out.write_text(type(out).__name__)  # a str has no write_text

    p = new_pipeline(make_executor())
    p.add_task(Task("w", write, ["out.txt"]))
    assert p.run() == 0
    assert Path("out.txt").read_text() == "PosixPath"


def test_str_and_path_spellings_are_one_task(project):
    def f(out: Annotated[Path, Product], cfg: Path, n: int = 1):
        pass

    a = Task("a", f, ["o.txt", "c.yaml"])
    b = Task("b", f, [Path("o.txt")], {"cfg": Path("c.yaml")})
    assert a == b and a.args_digest == b.args_digest and a.record_key == b.record_key
    p = new_pipeline()
    assert p.add_task(a) is p.add_task(b)


# -- binding errors -------------------------------------------------------------------------


def test_a_keyword_typo_names_the_unknown_keyword_and_suggests_the_parameter():
    @task
    def fit(out: Annotated[Path, Product], degree: int, alpha: float = 1.0):
        pass

    with pytest.raises(TaskDeclarationError) as e:
        fit("o", degre=3)
    assert "unexpected keyword argument 'degre'" in str(e.value)
    assert "did you mean 'degree'" in str(e.value)
    assert "missing" not in str(e.value)
    with pytest.raises(TaskDeclarationError, match=r"'colour'; it takes out, degree, alpha"):
        Task("fit", fit.task_function, ["o", 3], {"colour": 1})


def test_a_keyword_typo_is_named_for_signatures_with_positional_only_parameters():
    def fit(out, /, degree, *, alpha=1.0):
        pass

    with pytest.raises(TaskDeclarationError, match=r"'degre' \(did you mean 'degree'\?\)"):
        Task("fit", fit, ["o"], {"degre": 3})


# -- async def and generators ---------------------------------------------------------------

ASYNC_AND_GENERATORS = """
    import asyncio

    async def fetch(out: Annotated[Path, Product], n: int):
        await asyncio.sleep(0)
        out.write_text(str(n))
        return n * 10

    def numbers(out: Annotated[Path, Product], n: int):
        out.write_text("made")
        for i in range(n):
            yield i

    async def agen(n: int):
        for i in range(n):
            await asyncio.sleep(0)
            yield -i

    def total(out: Annotated[Path, Product], a, b, c):
        out.write_text(repr((a, b, c)))
"""


@pytest.mark.parametrize(
    "make_executor",
    [SequentialExecutor, lambda: ParallelExecutor(2)],
    ids=["sequential", "parallel"],
)
def test_async_and_generator_tasks_run_to_completion_and_hand_on_their_results(
    project, make_executor
):
    ns = script(ASYNC_AND_GENERATORS)
    p = new_pipeline(make_executor())
    a = p.add_task(Task("fetch", ns["fetch"], ["a.txt", 4]))
    g = p.add_task(Task("numbers", ns["numbers"], ["g.txt", 3]))
    h = p.add_task(Task("agen", ns["agen"], [2]))
    p.add_task(Task("total", ns["total"], ["t.txt", a, g, h]))
    assert p.run() == 0, p.stream.getvalue()
    assert Path("a.txt").read_text() == "4"
    assert Path("g.txt").read_text() == "made"
    assert Path("t.txt").read_text() == "(40, [0, 1, 2], [0, -1])"


def test_an_async_task_runs_inside_a_running_event_loop(project):
    import asyncio

    ns = script(ASYNC_AND_GENERATORS)

    async def notebook():
        p = new_pipeline()
        p.add_task(Task("fetch", ns["fetch"], ["a.txt", 2]))
        return p.run()

    assert asyncio.run(notebook()) == 0
    assert Path("a.txt").read_text() == "2"


def test_an_async_task_in_a_slurm_style_job(project):
    pytest.importorskip("submitit")
    ns_source = FUTURE + HEADER + textwrap.dedent(ASYNC_AND_GENERATORS)
    result = run_script(
        project,
        ns_source
        + textwrap.dedent("""
        from depio_like import Pipeline, SubmitItExecutor
        p = Pipeline(executor=SubmitItExecutor(cluster="local"))
        a = p.add_task(Task("fetch", fetch, ["a.txt", 4]))
        g = p.add_task(Task("numbers", numbers, ["g.txt", 3]))
        p.add_task(Task("total", total, ["t.txt", a, g, None]))
        exit(p.run())
    """),
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (project / "t.txt").read_text() == "(40, [0, 1, 2], None)"
    assert "never awaited" not in result.stderr


def test_a_decorator_that_hides_the_markers_is_refused_saying_how_to_fix_it():
    ns = script("""
        def plain_wrapper(f):
            def wrapper(*args, **kwargs):
                return f(*args, **kwargs)
            return wrapper

        class Wrapper:
            def __init__(self, f):
                self.f = f

            def __call__(self, *args, **kwargs):
                return self.f(*args, **kwargs)

        def save(out: Annotated[Path, Product], n: int):
            out.write_text(str(n))

        hidden = plain_wrapper(save)
        hidden_by_object = Wrapper(save)
        varargs = plain_wrapper(print)
    """)
    with pytest.raises(TaskDeclarationError, match=r"wrapper.*save\(\).*'out'.*functools.wraps"):
        Task("save", ns["hidden"], ["o.txt", 1])
    with pytest.raises(TaskDeclarationError, match=r"Wrapper.*save\(\).*update_wrapper"):
        Task("save", ns["hidden_by_object"], ["o.txt", 1])
    assert Task("print", ns["varargs"], ["x"]).products == ()  # nothing hidden: fine
