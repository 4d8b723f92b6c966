"""Pipelines from spec files: the task registry (an installed package's entry points and
the user's modules), `depio-like tasks`, `depio-like params SPEC`, `depio-like run SPEC
--config FILLED.yaml`, and the errors a spec or a config file gets, each with its line.

The example package examples/spec/wordtasks is really installed (pip, into a directory put
on PYTHONPATH, so the test venv is left as it was) and found through its entry points."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")  # the `spec` extra (in `test` too)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "spec"


@pytest.fixture(scope="session")
def wordtasks(tmp_path_factory):
    """The example task package, installed with pip into a directory of its own."""
    base = tmp_path_factory.mktemp("wordtasks")
    src = base / "src"
    shutil.copytree(EXAMPLE / "wordtasks", src)  # a build must not write into the repo
    target = base / "site"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-index",
        "--target",
        str(target),
        str(src),
    ]
    have_backend = all(importlib.util.find_spec(m) for m in ("setuptools", "wheel"))
    if have_backend:
        cmd.insert(5, "--no-build-isolation")
    else:  # the build backend comes from the package index
        cmd.remove("--no-index")
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (target / "wordtasks" / "tasks.py").exists()
    return target


@pytest.fixture
def project(tmp_path):
    for name in ("wordcount.yaml", "mysteps.py"):
        shutil.copy(EXAMPLE / name, tmp_path)
    return tmp_path


def tool(cwd, *args, site=None):
    exe = Path(sys.executable).with_name("depio-like")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [str(exe), *map(str, args)],
        cwd=cwd,
        env=env,
        text=True,
        capture_output=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def statuses(out):
    table = out[out.rindex("Tasks:") :].splitlines()
    return {r.split()[1]: r.split()[2] for r in table[3:] if r[:1].isdigit()}


def errors(r):
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    return [ln.removeprefix("error: ") for ln in r.stderr.splitlines() if ln.startswith("error: ")]


def fill(form: str, values: dict[str, dict[str, str]]) -> str:
    """The YAML form with `  name:` lines of each step filled in (as a user would)."""
    out, step = [], None
    for line in form.splitlines():
        m = re.match(r"^(\w[\w-]*):", line)
        if m:
            step = m.group(1)
        m = re.match(r"^  (#\s)?(\w+):.*$", line)
        if m and step in values and m.group(2) in values[step]:
            line = f"  {m.group(2)}: {values[step][m.group(2)]}"
        out.append(line)
    return "\n".join(out) + "\n"


# -- the acceptance round trip ----------------------------------------------------------------


def test_round_trip_params_fill_run_then_skip(project, wordtasks):
    form = tool(project, "params", "wordcount.yaml", "--format", "yaml", site=wordtasks)
    assert form.returncode == 0, form.stderr
    # Required parameters are lines to fill in, optional ones commented out with the default.
    assert re.search(r"^top:.*\n(  #.*\n)*  n:$", form.stdout, re.M)
    assert "  # n (int, required): how many words to report." in form.stdout
    assert "  # words: 200" in form.stdout
    assert "  # min_length (int): words shorter than this are not counted" in form.stdout
    assert "  # style (one of 'plain', 'markdown'): plain lines or a Markdown table." in form.stdout
    assert "corpus:" in form.stdout and "  out:" not in form.stdout  # given by the spec

    # Running the form unfilled names each field still empty.
    (project / "config.yaml").write_text(form.stdout)
    empty = errors(
        tool(project, "run", "wordcount.yaml", "--config", "config.yaml", site=wordtasks)
    )
    assert any(
        e.startswith("config.yaml:") and "top.n: expected int, got nothing" in e for e in empty
    ), empty
    assert any("banner.title: expected str, got nothing" in e for e in empty), empty
    assert not (project / "build").exists() and not (project / ".depio_like").exists()

    filled = fill(
        form.stdout,
        {
            "top": {"n": "3", "style": "markdown"},
            "banner": {"title": "Top words"},
            "corpus": {"words": "50", "seed": "7"},
        },
    )
    (project / "config.yaml").write_text(filled)
    first = tool(project, "run", "wordcount.yaml", "--config", "config.yaml", site=wordtasks)
    assert first.returncode == 0, first.stdout + first.stderr
    assert statuses(first.stdout) == dict.fromkeys(["corpus", "count", "top", "banner"], "FINISHED")
    words = (project / "build" / "corpus.txt").read_text().split()
    assert len(words) == 50  # corpus.words from the config
    counts = json.loads((project / "build" / "counts.json").read_text())
    assert sum(counts.values()) == 50
    top = (project / "build" / "top.txt").read_text().splitlines()
    assert top[0] == "| word | count |" and len(top) == 2 + 3  # markdown, n=3
    best = max(counts.values())
    assert top[2].split("|")[2].strip() == str(best)
    banner = (project / "build" / "banner.txt").read_text()
    assert "Top words" in banner and top[2] in banner

    second = tool(project, "run", "wordcount.yaml", "--config", "config.yaml", site=wordtasks)
    assert second.returncode == 0, second.stderr
    assert set(statuses(second.stdout).values()) == {"SKIPPED"}

    # A changed value reruns what it feeds, and only that.
    (project / "config.yaml").write_text(filled.replace("title: Top words", "title: Best"))
    third = tool(
        project, "run", "wordcount.yaml", "--config", "config.yaml", "--explain", site=wordtasks
    )
    assert third.returncode == 0, third.stderr
    assert statuses(third.stdout) == {
        "corpus": "SKIPPED",
        "count": "SKIPPED",
        "top": "SKIPPED",
        "banner": "FINISHED",
    }
    assert "RUN       [4] 'banner': arguments changed: title 'Top words' -> 'Best'" in third.stdout


def test_json_schema_is_valid_and_judges_configs_as_run_does(project, wordtasks):
    jsonschema = pytest.importorskip("jsonschema")
    r = tool(project, "params", "wordcount.yaml", "--format", "json", site=wordtasks)
    assert r.returncode == 0, r.stderr
    schema = json.loads(r.stdout)
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    top = schema["properties"]["top"]
    assert top["required"] == ["n"] and top["properties"]["n"]["type"] == "integer"
    assert top["properties"]["style"] == {
        "enum": ["plain", "markdown"],
        "description": "plain lines or a Markdown table.",
        "default": "plain",
    }
    assert schema["properties"]["corpus"]["properties"]["vocabulary"]["items"] == {"type": "string"}
    assert set(schema["required"]) == {"top", "banner"}

    good = {
        "top": {"n": 2},
        "banner": {"title": "T", "width": 10},
        "corpus": {"words": 20, "vocabulary": ["a", "b"]},
        "count": {"lowercase": False},
    }
    cases = [
        (good, True),
        ({**good, "top": {"n": "2"}}, False),
        ({**good, "top": {"n": 2.5}}, False),
        ({**good, "top": {"n": True}}, False),
        ({**good, "top": {"n": 2, "style": "fancy"}}, False),
        ({**good, "top": {"n": 2, "style": "markdown"}}, True),
        ({**good, "corpus": {"vocabulary": ["a", 3]}}, False),
        ({**good, "corpus": {"vocabulary": "abc"}}, False),
        ({**good, "count": {"lowercase": "no"}}, False),
        ({**good, "count": {"min_length": 2}}, True),
        ({**good, "banner": {"title": None}}, False),
        ({**good, "banner": {"width": 3}}, False),  # title missing
        ({**good, "banner": {"title": "x", "colour": 1}}, False),
        ({**good, "nosuchstep": {}}, False),
    ]
    for i, (config, ok) in enumerate(cases):
        assert v.is_valid(config) is ok, config
        (project / f"c{i}.json").write_text(json.dumps(config))
        r = tool(
            project, "run", "wordcount.yaml", "--config", f"c{i}.json", "--dry-run", site=wordtasks
        )
        assert (r.returncode == 0) is ok, (config, r.stdout + r.stderr)
        if not ok:
            assert "Traceback" not in r.stderr and r.returncode == 2


def test_bad_values_are_refused_all_at_once_naming_field_and_type(project, wordtasks):
    (project / "bad.yaml").write_text(
        textwrap.dedent("""\
        corpus:
          words: 2.5
          seed: "7"
          vocabulary: [run, 3]
        count:
          lowercase: no way
        top:
          n: three
          style: fancy
        banner:
          title: 5
          colour: red
        reprot:
          n: 1
        """)
    )
    errs = errors(tool(project, "run", "wordcount.yaml", "--config", "bad.yaml", site=wordtasks))
    assert errs == [
        "bad.yaml:2: corpus.words: expected int, got float 2.5",
        "bad.yaml:3: corpus.seed: expected int, got str '7'",
        "bad.yaml:4: corpus.vocabulary[1]: expected str, got int 3",
        "bad.yaml:6: count.lowercase: expected bool, got str 'no way'",
        "bad.yaml:8: top.n: expected int, got str 'three'",
        "bad.yaml:9: top.style: expected one of 'plain', 'markdown', got str 'fancy'",
        "bad.yaml:11: banner.title: expected str, got int 5",
        "bad.yaml:12: banner.colour: task 'banner' has no such parameter; open: title, width",
        "bad.yaml:13: 'reprot' is no step of wordcount.yaml; its steps: corpus, count, top, banner",
    ]
    assert not (project / ".depio_like").exists() and not (project / "build").exists()


def test_yaml_booleans_and_exponents(project, wordtasks):
    (project / "c.yaml").write_text("top: {n: 1}\nbanner:\n  title: no\n")
    errs = errors(tool(project, "run", "wordcount.yaml", "--config", "c.yaml", site=wordtasks))
    assert errs == [
        "c.yaml:3: banner.title: expected str, got bool False (YAML reads "
        "yes/no/on/off/true/false as booleans: quote it, 'no')"
    ]


def test_missing_config_names_what_needs_a_value(project, wordtasks):
    errs = errors(tool(project, "run", "wordcount.yaml", site=wordtasks))
    assert len(errs) == 2
    assert errs[0].startswith("wordcount.yaml: top.n (int) needs a value; none given")
    assert "depio-like params wordcount.yaml --format yaml > config.yaml" in errs[0]
    assert errs[1].startswith("wordcount.yaml: banner.title (str) needs a value")


def test_config_may_not_set_what_the_spec_fixes(project, wordtasks):
    (project / "c.yaml").write_text("top: {n: 1, out: elsewhere.txt}\nbanner: {title: t}\n")
    errs = errors(tool(project, "run", "wordcount.yaml", "--config", "c.yaml", site=wordtasks))
    assert errs == [
        "c.yaml:1: top.out is given by the spec (wordcount.yaml:24); only open "
        "parameters go in the config"
    ]


def test_run_options_apply_to_a_spec(project, wordtasks):
    (project / "c.yaml").write_text("top: {n: 2}\nbanner: {title: t}\n")
    dry = tool(
        project,
        "run",
        "wordcount.yaml",
        "--config",
        "c.yaml",
        "-n",
        "--executor",
        "sequential",
        site=wordtasks,
    )
    assert dry.returncode == 0, dry.stderr
    assert set(statuses(dry.stdout).values()) == {"WOULD-RUN"}
    assert not (project / "build").exists()
    graph = tool(
        project, "run", "wordcount.yaml", "--config", "c.yaml", "--graph", "mermaid", site=wordtasks
    )
    assert graph.returncode == 0 and "flowchart" in graph.stdout
    run = tool(
        project,
        "run",
        "wordcount.yaml",
        "--config",
        "c.yaml",
        "-j",
        "2",
        "--target",
        "build/counts.json",
        site=wordtasks,
    )
    assert run.returncode == 0, run.stderr
    assert set(statuses(run.stdout)) == {"corpus", "count"}
    assert not (project / "build" / "top.txt").exists()
    forced = tool(project, "run", "wordcount.yaml", "--config", "c.yaml", "--force", site=wordtasks)
    assert set(statuses(forced.stdout).values()) == {"FINISHED"}


def test_tasks_lists_parameters_types_defaults_markers_descriptions(project, wordtasks):
    r = tool(project, "tasks", "--tasks", "mysteps", site=wordtasks)
    assert r.returncode == 0, r.stderr
    out = r.stdout
    # count() is registered as count_words; top_words through an entry point naming it.
    heads = [ln.split()[0] for ln in out.splitlines() if ln and not ln.startswith(" ")]
    assert heads == ["banner", "count_words", "make_corpus", "top_words"]
    assert (
        "(wordtasks.tasks:count, from depio-like-wordtasks 0.1.0, entry point 'wordtasks')" in out
    )
    assert "(mysteps:banner, from module mysteps)" in out
    rows = {tuple(ln.split()[:2]): ln for ln in out.splitlines() if ln.startswith("    ")}
    assert re.search(r"corpus +Path +\(required\) +Dependency", rows[("corpus", "Path")])
    assert "words shorter than this are not counted" in rows[("min_length", "int")]  # Annotated
    assert "the random seed (the same seed writes the same corpus)." in rows[("seed", "int")]
    assert "word -> how often it occurs." in rows[("counts", "dict[str,")]  # NumPy section
    r = tool(project, "tasks", "--format", "json", site=wordtasks)
    data = {t["name"]: t for t in json.loads(r.stdout)}
    assert set(data) == {"count_words", "make_corpus", "top_words"}  # no --tasks: no banner
    params = {p["name"]: p for p in data["count_words"]["parameters"]}
    assert params["out"] == {
        "name": "out",
        "type": "Path",
        "required": True,
        "marker": "Product",
        "description": "",
    }
    assert params["lowercase"]["default"] is True


# -- errors in the spec, each with its line ---------------------------------------------------

SPEC_ERRORS = [
    (
        "unknown task",
        """\
        steps:
          - id: a
            task: make_corpse
            args: {out: a.txt}
        """,
        ["spec.yaml:3: step 'a': unknown task 'make_corpse' (did you mean 'make_corpus'?)"],
    ),
    (
        "unknown argument",
        """\
        steps:
          - id: a
            task: make_corpus
            args:
              out: a.txt
              word: 3
        """,
        [
            "spec.yaml:6: step 'a': task 'make_corpus' has no parameter 'word' (did you mean "
            "'words'?); its parameters: out, words, seed, vocabulary"
        ],
    ),
    (
        "unknown reference",
        """\
        steps:
          - id: corpus
            task: make_corpus
            args: {out: a.txt}
          - id: count
            task: count_words
            args:
              corpus: {product_of: corpsu}
              out: b.txt
          - id: top
            task: top_words
            args:
              counts: {value_of: cuont}
              out: c.txt
            depends_on: [corpus, nothing]
        """,
        [
            "spec.yaml:8: step 'count': product_of names 'corpsu', which is no step of this "
            "spec (did you mean 'corpus'?)",
            "spec.yaml:13: step 'top': value_of names 'cuont', which is no step of this spec "
            "(did you mean 'count'?)",
            "spec.yaml:15: step 'top': depends_on names 'nothing', which is no step of this spec",
        ],
    ),
    (
        "cycle",
        """\
        steps:
          - id: count
            task: count_words
            args:
              corpus: {product_of: top}
              out: counts.json
          - id: top
            task: top_words
            args:
              counts: {value_of: count}
              out: top.txt
        """,
        [
            "spec.yaml:10: the steps form a cycle: count takes product_of top (line 5); "
            "top takes value_of count (line 10)"
        ],
    ),
    (
        "self reference",
        """\
        steps:
          - id: top
            task: top_words
            args:
              counts: {value_of: top}
              out: top.txt
        """,
        ["spec.yaml:5: the steps form a cycle: top takes value_of top (line 5)"],
    ),
    (
        "not a product",
        """\
        steps:
          - id: corpus
            task: make_corpus
            args: {out: a.txt}
          - id: count
            task: count_words
            args:
              corpus: {product_of: corpus.words}
              out: b.txt
        """,
        [
            "spec.yaml:8: step 'count': product_of corpus.words: 'words' is not a product "
            "parameter of task 'make_corpus'; its products: out"
        ],
    ),
    (
        "bad literal",
        """\
        steps:
          - id: corpus
            task: make_corpus
            args:
              out: a.txt
              words: lots
        """,
        ["spec.yaml:6: corpus.words: expected int, got str 'lots'"],
    ),
    (
        "twice",
        """\
        steps:
          - id: corpus
            task: make_corpus
            args: {out: a.txt}
          - id: corpus
            task: make_corpus
            args: {out: b.txt}
        """,
        ["spec.yaml:5: step id 'corpus' is used twice (first on line 2)"],
    ),
    (
        "repeated key",
        """\
        steps:
          - id: corpus
            task: make_corpus
            args:
              out: a.txt
              out: b.txt
        """,
        ["spec.yaml:6: 'out' is given twice in this mapping (first on line 5)"],
    ),
    (
        "not yaml",
        """\
        steps:
          - id: corpus
            task: [make_corpus
        """,
        ["spec.yaml:4: not valid YAML"],
    ),
    (
        "unknown keys",
        """\
        step:
          - id: corpus
        """,
        [
            "spec.yaml:1: unknown key 'step' (did you mean 'steps'?)",
            "spec.yaml:1: a spec needs `steps:`",
        ],
    ),
    (
        "missing module",
        """\
        tasks: [no_such_module_here]
        steps:
          - {id: corpus, task: make_corpus, args: {out: a.txt}}
        """,
        ["spec.yaml:1: tasks module 'no_such_module_here' cannot be found"],
    ),
]


@pytest.mark.parametrize(
    "text,expected", [c[1:] for c in SPEC_ERRORS], ids=[c[0] for c in SPEC_ERRORS]
)
def test_spec_errors_name_the_line(tmp_path, wordtasks, text, expected):
    (tmp_path / "spec.yaml").write_text(textwrap.dedent(text))
    for command in (["params", "spec.yaml"], ["run", "spec.yaml"]):
        errs = errors(tool(tmp_path, *command, site=wordtasks))
        assert len(errs) == len(expected), errs
        for e, want in zip(errs, expected):
            assert e.startswith(want), (e, want)
    assert not (tmp_path / ".depio_like").exists()


# -- the registry -----------------------------------------------------------------------------


def test_a_plain_module_registers_its_public_functions_and_module_function_works(tmp_path):
    (tmp_path / "plain.py").write_text(
        textwrap.dedent("""\
        from pathlib import Path
        from os.path import join            # imported: not one of its tasks
        from depio_like import Product

        def write(out: Product, text: str = "x"):
            Path(out).write_text(text)

        def _helper():
            pass
        """)
    )
    (tmp_path / "spec.yaml").write_text(
        textwrap.dedent("""\
        tasks: [plain]
        steps:
          - {id: one, task: write, args: {out: one.txt}}
          - {id: two, task: "plain:write", args: {out: two.txt, text: "y"}}
        """)
    )
    r = tool(tmp_path, "tasks", "--tasks", "plain")
    assert [ln.split()[0] for ln in r.stdout.splitlines() if ln and ln[0] != " "] == ["write"]
    r = tool(tmp_path, "run", "spec.yaml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "one.txt").read_text() == "x" and (tmp_path / "two.txt").read_text() == "y"
    # module:function needs no `tasks:`; the module is found next to the spec.
    (tmp_path / "sub").mkdir()
    (tmp_path / "plain.py").rename(tmp_path / "sub" / "plain.py")
    (tmp_path / "sub" / "only.yaml").write_text(
        "steps:\n  - {id: three, task: 'plain:write', args: {out: three.txt, text: z}}\n"
    )
    r = tool(tmp_path, "run", "sub/only.yaml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "three.txt").read_text() == "z"


def test_a_name_claimed_twice_is_refused_when_used(tmp_path):
    for mod in ("m1", "m2"):
        (tmp_path / f"{mod}.py").write_text(
            textwrap.dedent(f"""\
            from depio_like import register

            @register("same")
            def f_{mod}(x: int):
                return x
            """)
        )
    (tmp_path / "spec.yaml").write_text("tasks: [m1, m2]\nsteps:\n  - {id: a, task: same}\n")
    errs = errors(tool(tmp_path, "params", "spec.yaml"))
    assert errs[0].startswith(
        "spec.yaml:3: step 'a': task 'same' is registered by two "
        "different functions: m1:f_m1 (module m1); m2:f_m2 (module m2)"
    )


def test_task_decorator_options_and_step_options(tmp_path):
    (tmp_path / "deco.py").write_text(
        textwrap.dedent("""\
        from pathlib import Path
        from depio_like import Product, register, task

        @register
        @task(always=True)
        def stamp(out: Product, n: int = 0):
            with open("calls.log", "a") as f:
                f.write("stamp\\n")
            Path(out).write_text(str(n))

        @register
        def once(out: Product):
            with open("calls.log", "a") as f:
                f.write("once\\n")
            Path(out).write_text("1")
        """)
    )
    (tmp_path / "spec.yaml").write_text(
        textwrap.dedent("""\
        tasks: [deco]
        steps:
          - {id: s, task: stamp, args: {out: s.txt, n: 3}}
          - {id: o, task: once, args: {out: o.txt}, always: true, retries: 1}
          - {id: p, task: once, args: {out: p.txt}}
        """)
    )
    for _ in range(2):
        r = tool(tmp_path, "run", "spec.yaml")
        assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "calls.log").read_text().split().count("stamp") == 2
    assert (tmp_path / "calls.log").read_text().split().count("once") == 3  # o twice, p once
    (tmp_path / "spec.yaml").write_text(
        textwrap.dedent("""\
        tasks: [deco]
        steps:
          - {id: o, task: once, args: {out: o.txt}, retries: -1}
        """)
    )
    errs = errors(tool(tmp_path, "run", "spec.yaml"))
    assert errs[0].startswith("spec.yaml:3: step 'o' (task 'once'): ") and "retries" in errs[0]


def test_a_broken_installed_package_does_not_stop_the_others(tmp_path, wordtasks):
    site = tmp_path / "site"
    shutil.copytree(wordtasks, site)
    dist = next(site.glob("depio_like_wordtasks-*.dist-info"))
    ep = dist / "entry_points.txt"
    ep.write_text(ep.read_text() + "broken = wordtasks.nosuchmodule\n")
    r = tool(tmp_path, "tasks", site=site)
    assert r.returncode == 0
    assert "make_corpus" in r.stdout
    assert (
        "warning: could not load depio-like-wordtasks 0.1.0, entry point 'broken': "
        "ModuleNotFoundError" in r.stderr
    )


def test_a_script_still_runs_and_spec_options_are_refused_for_it(tmp_path):
    (tmp_path / "p.py").write_text(
        textwrap.dedent("""\
        from pathlib import Path
        from depio_like import Pipeline, Product, SequentialExecutor, Task

        def w(out: Product):
            Path(out).write_text("w")

        p = Pipeline(SequentialExecutor())
        p.add_task(Task("w", w, ["w.txt"]))
        exit(p.run())
        """)
    )
    r = tool(tmp_path, "run", "p.py")
    assert r.returncode == 0 and (tmp_path / "w.txt").read_text() == "w"
    r = tool(tmp_path, "run", "p.py", "--config", "c.yaml")
    assert r.returncode == 2 and "--config and --tasks are for a spec file" in r.stderr


def test_import_depio_like_does_not_import_yaml():
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, depio_like; "
            "print(sorted(m for m in ('yaml', 'depio_like.spec', "
            "'depio_like.paramtypes', 'depio_like.registry') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.stdout.strip() == "[]", r.stderr


def test_references_inside_lists_fan_in_and_the_spec_dir_is_importable(tmp_path):
    sub = tmp_path / "conf"
    sub.mkdir()
    (sub / "fan.py").write_text(
        textwrap.dedent("""\
        from pathlib import Path
        from typing import Annotated
        from depio_like import Dependency, Product, register

        @register
        def part(out: Product, k: int) -> int:
            Path(out).write_text(str(k))
            return k * 10

        @register
        def gather(parts: Annotated[list[Path], Dependency], values: list[int],
                   out: Product) -> None:
            texts = [p.read_text() for p in parts]
            Path(out).write_text(",".join(texts) + ";" + ",".join(map(str, values)))
        """)
    )
    (sub / "fan.yaml").write_text(
        textwrap.dedent("""\
        tasks: [fan]
        steps:
          - {id: p1, task: part, args: {out: out/p1.txt, k: 1}}
          - {id: p2, task: part, args: {out: out/p2.txt}}
          - id: all
            task: gather
            args:
              parts: [{product_of: p1}, {product_of: p2.out}]
              values: [{value_of: p1}, {value_of: p2}]
              out: out/all.txt
        """)
    )
    (tmp_path / "c.yaml").write_text("p2: {k: 2}\n")
    # Run from the parent directory: fan.py is found next to the spec; paths are relative
    # to the working directory.
    r = tool(tmp_path, "run", "conf/fan.yaml", "--config", "c.yaml", "--executor", "parallel")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "out" / "all.txt").read_text() == "1,2;10,20"
    assert statuses(r.stdout)["all"] == "FINISHED"
    r = tool(tmp_path, "run", "conf/fan.yaml", "--config", "c.yaml")
    assert set(statuses(r.stdout).values()) == {"SKIPPED"}


@pytest.mark.slurm
def test_a_spec_runs_on_slurm_with_its_task_modules(project, wordtasks, slurm):
    # The job imports the installed package and the user's module next to the spec (not in
    # the working directory).
    (project / "spec").mkdir()
    for name in ("wordcount.yaml", "mysteps.py"):
        (project / name).rename(project / "spec" / name)
    (project / "c.yaml").write_text("top: {n: 2}\nbanner: {title: On Slurm}\n")
    r = tool(
        project,
        "run",
        "spec/wordcount.yaml",
        "--config",
        "c.yaml",
        "--executor",
        "slurm",
        site=wordtasks,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert set(statuses(r.stdout).values()) == {"FINISHED"}
    assert "On Slurm" in (project / "build" / "banner.txt").read_text()
