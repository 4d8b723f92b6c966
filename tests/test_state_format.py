"""State format 2: compact lines, paths relative to the project, product signatures inside
the record; format 1 still read (and rewritten), a newer format refused."""

import base64
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Annotated

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from depio_like import Product, Task
from depio_like.errors import StateError, TaskDeclarationError
from depio_like.fingerprint import FileEntry
from depio_like.state import LOG_NAME, Record, State


def open_state(directory):
    notices = []
    s = State(str(directory), notify=notices.append).open()
    s.notices = notices
    return s


def lines_of(state_dir):
    return [
        json.loads(ln) for ln in (state_dir / LOG_NAME).read_text(encoding="utf-8").splitlines()
    ]


def test_a_record_round_trips_with_its_product_signature_inside_it(tmp_path):
    sd = tmp_path / ".depio_like"
    out = str(tmp_path / "out" / "a.txt")
    s = open_state(sd)
    fresh = {out: FileEntry(5, 1_000, 42, "d1", 1_007)}
    args = "0123456789abcdef" * 2  # a 128-bit digest, stored in base64
    r = Record(
        out,
        "a",
        "c1",
        args,
        {out: "d1"},
        inputs={str(tmp_path / "in.txt"): "i"},
        upstream={str(tmp_path / "up.txt"): "s0"},
        arg_reprs={"n": "3"},
        duration=0.5,
        stamp="s1",
    )
    s.put_record(r, fresh)
    assert fresh == {}  # taken into the record: no line of its own
    s.close()

    lines = lines_of(sd)
    assert lines[0]["depio_like_state"] == 2
    t0 = lines[0]["t0"]  # modification times count from it; the code digest is numbered
    assert lines[1:] == [
        ["c", 0, "c1"],
        [
            "r",
            "",
            "a",
            0,
            "ASNFZ4mrze8BI0VniavN7w",
            0.5,
            "s1",
            [["out/a.txt", "d1", 5, 1_000 - t0, 42, 7]],
            {"n": "3"},
            {"in.txt": "i"},
            {"p:up.txt": "s0"},
        ],
    ]
    again = open_state(sd)
    assert again.records == {r.key: r}
    assert again.files == {out: FileEntry(5, 1_000, 42, "d1", 1_007)}
    assert again.warnings == []
    again.close()


def test_paths_outside_the_project_stay_absolute(tmp_path):
    sd = tmp_path / "project" / ".depio_like"
    elsewhere = str(tmp_path / "elsewhere" / "x.txt")
    s = open_state(sd)
    s.put_record(Record("k:mod.f:1", "f", "c", "a", {elsewhere: "d"}))
    s.put_files({elsewhere: FileEntry(1, 2, 3, "d", 2)})
    s.close()
    text = (sd / LOG_NAME).read_text()
    assert f'"{elsewhere}"' in text
    again = open_state(sd)
    assert again.records["k:mod.f:1"].products == {elsewhere: "d"}
    assert again.files == {elsewhere: FileEntry(1, 2, 3, "d", 2)}
    again.close()


def test_a_format_1_log_is_read_and_rewritten_as_format_2(tmp_path):
    sd = tmp_path / ".depio_like"
    sd.mkdir(mode=0o700)
    out = str(tmp_path / "o.txt")
    (sd / LOG_NAME).write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {"depio_like_state": 1},
                {
                    "r": "p:" + out,
                    "n": "t",
                    "c": "c1",
                    "a": "a1",
                    "p": {out: "d"},
                    "t": 0.25,
                    "s": "st",
                    "av": {"i": "1"},
                },
                ["f", out, 3, 10, 7, "d", 11],
                ["f", str(tmp_path / "old.txt"), 3, 10, 7, "d"],  # no ctime: not trusted
                {"x": "p:" + out},
            ]
        )
        + "\n"
    )
    s = open_state(sd)
    want = Record(
        out,
        "t",
        "c1",
        "a1",
        {out: "d"},
        arg_reprs={"i": "1"},
        duration=0.25,
        stamp="st",
        incomplete=True,
    )
    assert s.records == {want.key: want}
    assert s.files == {out: FileEntry(3, 10, 7, "d", 11)}
    assert s.warnings == []
    s.close()

    lines = lines_of(sd)
    assert lines[0]["depio_like_state"] == 2
    assert ["x", "p:o.txt"] in lines
    again = open_state(sd)
    assert again.records == {want.key: want}
    assert again.files == {out: FileEntry(3, 10, 7, "d", 11)}
    again.close()


def test_a_log_of_a_newer_format_is_refused_and_left_alone(tmp_path):
    sd = tmp_path / ".depio_like"
    sd.mkdir(mode=0o700)
    text = '{"depio_like_state": 3}\n["r", "whatever"]\n'
    (sd / LOG_NAME).write_text(text)
    with pytest.raises(StateError, match=r"newer depio_like.*format 3.*remove"):
        open_state(sd)
    assert (sd / LOG_NAME).read_text() == text
    # and the lock was released: a second attempt says the same, it does not wait
    with pytest.raises(StateError, match="newer"):
        open_state(sd)


def test_a_line_cut_by_a_kill_is_dropped_and_the_next_record_stands_alone(tmp_path):
    sd = tmp_path / ".depio_like"
    out = str(tmp_path / "a.txt")
    s = open_state(sd)
    s.put_record(Record(out, "a", "c", "x", {out: "d"}))
    s.close()
    whole = (sd / LOG_NAME).read_bytes()
    line = whole.splitlines()[1]
    with open(sd / LOG_NAME, "ab") as f:
        f.write(line[: len(line) // 2])  # the second record, cut halfway

    s = open_state(sd)
    assert list(s.records) == [out] and len(s.warnings) == 1
    b = str(tmp_path / "b.txt")
    s.put_record(Record(b, "b", "c", "y", {b: "e"}))
    s.close()
    again = open_state(sd)
    assert sorted(again.records) == sorted([out, b])
    assert again.warnings == []
    again.close()


SCRIPT = textwrap.dedent("""\
    import sys
    from pathlib import Path
    from typing import Annotated

    from depio_like import Dependency, Pipeline, Product, SequentialExecutor, task


    @task("step")
    def step(out: Annotated[Path, Product], src: Annotated[Path, Dependency], i: int):
        with open("ran.log", "a") as f:
            f.write(f"{i}\\n")
        out.write_text(src.read_text() + str(i))


    p = Pipeline(executor=SequentialExecutor())
    for i in range(3):
        p.add_task(step(Path("out") / f"{i}.txt", "in.txt", i))
    sys.exit(p.run())
""")


def run(d):
    r = subprocess.run(
        [sys.executable, "pipeline.py"], cwd=d, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr
    ran = (d / "ran.log").read_text().split() if (d / "ran.log").exists() else []
    if (d / "ran.log").exists():
        (d / "ran.log").unlink()
    return ran, r.stdout


def test_a_moved_project_finds_its_records_by_their_relative_keys(tmp_path):
    # Records are found after a move (keys are relative to the project); the tasks still
    # rerun once, because their identity (the arguments digest) holds absolute paths.
    a = tmp_path / "project"
    a.mkdir()
    (a / "pipeline.py").write_text(SCRIPT.replace("p.run()", "p.run(explain=True)"))
    (a / "in.txt").write_text("x")
    assert run(a)[0] == ["0", "1", "2"]
    assert run(a)[0] == []
    b = tmp_path / "renamed" / "project-2"
    b.parent.mkdir()
    os.rename(a, b)
    ran, out = run(b)
    assert sorted(ran) == ["0", "1", "2"]
    assert out.count("arguments changed") == 3 and "never ran" not in out, out
    assert run(b)[0] == []
    assert (b / "out" / "2.txt").read_text() == "x2"


def test_a_code_digest_is_written_once_and_a_lost_code_line_loses_only_its_records(tmp_path):
    sd = tmp_path / ".depio_like"
    outs = [str(tmp_path / f"o{k}.txt") for k in range(3)]
    s = open_state(sd)
    for k, out in enumerate(outs):
        s.put_record(Record(out, "t", "same-code" if k < 2 else "other", f"a{k}", {out: "d"}))
    s.close()
    text = (sd / LOG_NAME).read_text()
    assert text.count("same-code") == 1 and text.count("other") == 1
    again = open_state(sd)
    assert [again.records[o].code for o in outs] == ["same-code", "same-code", "other"]
    again.close()

    # The line numbering "same-code" is damaged (an edit): its records are unreadable, and
    # rerun; the others stand, and so does a digest recorded after.
    lines = (sd / LOG_NAME).read_text().splitlines()
    lines = [ln if "same-code" not in ln else ln.replace('"same-code"', "nul") for ln in lines]
    (sd / LOG_NAME).write_text("\n".join(lines) + "\n")
    damaged = open_state(sd)
    assert set(damaged.records) == {outs[2]}
    assert damaged.warnings and "3 unreadable line(s)" in damaged.warnings[0]
    new = str(tmp_path / "new.txt")
    damaged.put_record(Record(new, "t", "third", "a", {new: "d"}))
    damaged.close()
    final = open_state(sd)
    assert {k: r.code for k, r in final.records.items()} == {
        outs[2]: "other",
        new: "third",
    }
    final.close()


def test_a_format_2_log_without_a_time_base_is_read_with_absolute_times(tmp_path):
    # As the first format-2 logs were written: no "t0", the code digest in the record, six
    # elements in a product's signature.
    sd = tmp_path / ".depio_like"
    sd.mkdir(mode=0o700)
    line = ["r", "", "a", "c1", "a1", 0.5, "s1", [["a.txt", "d1", 5, 1_000, 42, 7]]]
    (sd / LOG_NAME).write_text(json.dumps({"depio_like_state": 2}) + "\n" + json.dumps(line) + "\n")
    s = open_state(sd)
    out = str(tmp_path / "a.txt")
    assert s.records[out].code == "c1"
    assert s.files == {out: FileEntry(5, 1_000, 42, "d1", 1_007)}
    assert s.warnings == []
    s.close()


def test_the_failed_dependencies_of_a_record_round_trip_relative_to_the_project(tmp_path):
    # run_if="all_done": a task that ran beside a failed dependency keeps which, to run
    # again next time; format 2 keeps that part too.
    sd = tmp_path / ".depio_like"
    out = str(tmp_path / "a.txt")
    up_key = str(tmp_path / "up.txt")
    s = open_state(sd)
    r = Record(out, "a", "c", "a", {out: "d"}, failed={up_key: "[1] 'up'"})
    s.put_record(r)
    s.close()
    last = lines_of(sd)[-1]
    assert last[0] == "r" and last[-1] == {"p:up.txt": "[1] 'up'"}
    again = open_state(sd)
    assert again.records[r.key].failed == {up_key: "[1] 'up'"}
    assert again.records[r.key] == r
    again.close()


def test_the_usual_record_line_reads_as_the_general_reader_reads_it(tmp_path):
    # One product with its signature, a numbered code, a 128-bit argument digest: the line
    # almost every task writes, read by a shortcut; it must agree with _parse_record. So
    # must the same line without the signature (a product hashed as it was written: racy).
    sd = tmp_path / ".depio_like"
    s = open_state(sd)
    for k in range(5):
        out = str(tmp_path / "out" / f"f{k}.txt")
        r = Record(
            out,
            "wide",
            "code-a",
            f"{k:032x}",
            {out: f"d{k}"},
            arg_reprs={"i": str(k)} if k else {},
            duration=0.25 if k else 1,
            stamp=f"s{k}",
        )
        s.put_record(
            r, {out: FileEntry(7, 5_000 + k, 40 + k, f"d{k}", 5_000 + k)} if k < 3 else None
        )
    s.close()
    lines = lines_of(sd)
    assert all(len(ln) in (8, 9) and ln[1] == "" for ln in lines[2:])  # the usual shape
    assert [len(ln[7][0]) for ln in lines[2:]] == [5, 5, 5, 2, 2]
    loaded = open_state(sd)
    slow = State(str(sd))
    slow._t0, slow._code_list = loaded._t0, loaded._code_list
    for item in lines[2:]:
        got = loaded._quick_record(item)
        assert got is not None and got == slow._parse_record(item)
    assert len(loaded.records) == 5
    assert loaded.files == slow.files and len(loaded.files) == 3
    assert loaded.records[str(tmp_path / "out" / "f1.txt")].args == f"{1:032x}"
    loaded.close()

    # Its code line lost: the record is unreadable, and so is the signature inside it.
    text = (sd / LOG_NAME).read_text().replace('"code-a"', "nul")
    (sd / LOG_NAME).write_text(text)
    damaged = open_state(sd)
    assert damaged.records == {} and damaged.files == {}
    damaged.close()


@pytest.mark.parametrize("n", [0, 1, 3])
def test_records_with_none_one_or_many_entries_load_as_written(tmp_path, n):
    # Loaded records keep one-entry mappings in a compact form: they must read, compare,
    # pickle and be written again exactly as the dicts they were written from.
    import pickle

    sd = tmp_path / ".depio_like"

    def paths(kind):
        return [str(tmp_path / kind / f"{kind}{j}.txt") for j in range(n)]

    written = {}
    s = open_state(sd)
    for name in ("plain", "with_files"):
        products = {p: f"d{j}" for j, p in enumerate(paths(name + "_out"))}
        r = Record(
            min(products) if products else f"k:mod.{name}:{n}",
            name,
            "c1",
            "0123456789abcdef" * 2,
            products,
            inputs={p: f"i{j}" for j, p in enumerate(paths(name + "_in"))},
            upstream={p: f"s{j}" for j, p in enumerate(paths(name + "_up"))},
            arg_reprs={f"a{j}": repr(j) for j in range(n)},
            duration=0.25,
            stamp="st",
            failed={p: f"[{j}] x" for j, p in enumerate(paths(name + "_failed"))},
        )
        # The product's signature inside the record, or not.
        fresh = {p: FileEntry(5, 1_000, 42, d, 1_000) for p, d in products.items()}
        s.put_record(r, fresh if name == "with_files" else None)
        written[r.key] = r
    s.close()

    for _ in range(2):  # as loaded, then as rewritten from what was loaded
        again = open_state(sd)
        assert again.records == written
        for key, r in written.items():
            got = again.records[key]
            for field in ("products", "inputs", "upstream", "arg_reprs", "failed"):
                want, have = getattr(r, field), getattr(got, field)
                assert dict(have) == want and have == want and want == have
                assert len(have) == len(want) and sorted(have) == sorted(want)
                assert list(have.items()) == list(want.items())
                for k, v in want.items():
                    assert k in have and have[k] == v and have.get(k) == v
                assert have.get("nowhere") is None and "nowhere" not in have
                with pytest.raises(KeyError):
                    have["nowhere"]
                if want:  # (the shared empty mapping never was picklable)
                    assert pickle.loads(pickle.dumps(have)) == want
        again.forget([])  # rewritten at close: from the loaded records
        again.close()


def test_a_product_tasks_identity_and_log_name_are_spelt_as_on_disk(tmp_path: Path) -> None:
    """In memory a product task's record key is its product's path; what other tasks'
    identities and the log file names are made of is still "p:" + that path (a change
    would rerun every task that takes another's value, and lose every log once)."""
    from typing import Annotated

    import xxhash

    from depio_like import Product, Task
    from depio_like.fingerprint import canonical
    from depio_like.logs import task_log

    def f(out: Annotated[Path, Product], i: int) -> None:
        pass

    out = str(tmp_path / "o.txt")
    t = Task("f", f, [out, 1])
    assert t.record_key == out
    assert canonical(t) == f"Tp:{out}:{t.args_digest}"
    key = xxhash.xxh3_64_hexdigest(("p:" + out).encode())[:10]
    assert task_log(str(tmp_path), t) == str(tmp_path / f"f-{key}")
    # A product-less task keeps its key, "k:..." on disk and in memory.
    g = Task("g", lambda i: None, [1])
    assert g.record_key.startswith("k:") and canonical(g).startswith(f"T{g.record_key}:")


# -- the quick reader against the general one, on any record line ----------------------


def _one_product(out: Annotated[Path, Product]) -> None:
    pass


def _two_products(a: Annotated[Path, Product], b: Annotated[Path, Product]) -> None:
    pass


def test_records_of_one_input_share_its_strings_and_keep_their_own_digest(tmp_path):
    """A sweep: every record read the same config file. Loaded, they hold one string for
    its path (and one for a digest they share), and a record that read another version
    of it keeps that digest."""
    sd = tmp_path / ".depio_like"
    cfg = str(tmp_path / "config.txt")
    s = open_state(sd)
    for k in range(6):
        out = str(tmp_path / "out" / f"f{k}.txt")
        s.put_record(
            Record(
                out,
                "sweep",
                "code-a",
                f"{k:032x}",
                {out: f"d{k}"},
                {cfg: "new" if k == 4 else "old"},
                arg_reprs={"i": str(k)},
                duration=0.5,
                stamp=f"s{k}",
            ),
            None,
        )
    s.close()
    assert all(len(ln) == 10 for ln in lines_of(sd)[2:])
    loaded = open_state(sd)
    slow = State(str(sd))
    slow._t0, slow._code_list = loaded._t0, loaded._code_list
    for ln in lines_of(sd)[2:]:
        assert loaded._quick_record(ln) == slow._parse_record(ln)
    recs = [loaded.records[str(tmp_path / "out" / f"f{k}.txt")] for k in range(6)]
    assert [dict(r.inputs) for r in recs] == [{cfg: "new" if k == 4 else "old"} for k in range(6)]
    keys = {id(k) for r in recs for k in r.inputs}
    digests = {id(r.inputs[cfg]) for k, r in enumerate(recs) if k != 4}
    assert len(keys) == 1 and len(digests) == 1
    assert len({id(r.inputs) for k, r in enumerate(recs) if k != 4}) == 1  # one mapping
    loaded.close()


_PATHS = st.one_of(
    st.sampled_from(["a.txt", "out/a.txt", "out/b.txt"]),
    st.sampled_from(["a.txt", "out/a.txt", "out/b.txt"]),
    st.sampled_from(["a.txt", "out/a.txt", "out/b.txt", "", ".", "/abs/x", "./a.txt", "a//b"]),
    st.sampled_from(["a/../b", "out/t1.d", "é/ü", "a\udcff", "p:x", "k:y"]),
    st.text(max_size=6),
)
_ARGS = st.binary(min_size=16, max_size=16).map(lambda b: base64.b64encode(b).decode()[:-2])
_NUMBERS = st.one_of(st.integers(-3, 2**40), st.just(True), st.floats(), st.none())
_ENTRY = st.one_of(
    st.tuples(_PATHS, st.sampled_from(["d0", "d1"])).map(list),
    st.tuples(_PATHS, st.one_of(st.text(max_size=2), st.none(), st.integers())).map(list),
    st.tuples(_PATHS, st.sampled_from(["d0", "d1"]), _NUMBERS, _NUMBERS, _NUMBERS).map(list),
    st.tuples(_PATHS, st.just("d0"), _NUMBERS, _NUMBERS, _NUMBERS, st.integers(0, 5)).map(list),
    st.lists(_PATHS, max_size=1),
)
_LINE = st.tuples(
    st.sampled_from(["", "", "", "k:x:1", "p:a.txt"]),
    st.sampled_from(["t0", "t1"]),
    st.one_of(
        *[st.integers(0, 2)] * 4, st.integers(0, 3), st.none(), st.just("c")
    ),  # 3: no "c" line
    st.one_of(_ARGS, _ARGS, st.text(min_size=22, max_size=22), st.just("declared")),
    st.one_of(st.floats(), st.floats(), st.integers(-2, 5), st.none(), st.text(max_size=1)),
    st.text(max_size=3),
    st.one_of(
        _ENTRY.map(lambda e: [e]),
        st.tuples(_PATHS, st.sampled_from(["d0", "d1"])).map(lambda e: [list(e)]),
        st.lists(_ENTRY, max_size=2),
    ),
    st.one_of(st.none(), st.dictionaries(st.text(max_size=2), st.text(max_size=2), max_size=2)),
    # The inputs it read (a 10th element): none, the usual one file, odd ones.
    st.one_of(
        st.none(),
        st.dictionaries(_PATHS, st.sampled_from(["i0", "i1"]), min_size=1, max_size=1),
        st.dictionaries(_PATHS, st.one_of(st.text(max_size=2), st.none(), _NUMBERS), max_size=3),
        st.just(["not", "a", "dict"]),
    ),
)


@settings(max_examples=1500, deadline=None, database=None, derandomize=True)
@given(
    line=_LINE,
    declared=st.lists(st.lists(_PATHS, min_size=1, max_size=2, unique=True), max_size=3),
    own_first=st.sampled_from([True, True, False]),
    next_task=st.integers(0, 3),
)
def test_the_quick_reader_takes_any_line_as_the_general_reader_does(
    line, declared, own_first, next_task
):
    """Whatever line ``_quick_record`` takes (a product with or without its stat signature,
    the inputs it read or none, odd paths, a declared task of that product or of another,
    or none), it returns what ``_parse_record`` returns and leaves the same file entries; a
    line it leaves, or one either refuses, is the general reader's."""
    key, name, code, args, t, stamp, plist, av, ins = line
    item = ["r", key, name, code, args, t, stamp, plist] + ([av] if av is not None else [])
    if ins is not None:
        item += ([] if av is not None else [{}]) + [ins]
    with tempfile.TemporaryDirectory() as d:  # absolute paths: no working directory needed
        prefix = State(os.path.join(d, ".depio_like"))._prefix
        tasks = []
        for paths in declared:
            if own_first and plist and type(plist[0]) is list and plist[0]:
                if type(plist[0][0]) is str and plist[0][0][:1] != "/" and plist[0][0] != ".":
                    paths = [plist[0][0], *paths[1:]]  # the line's own task
                own_first = False
            try:
                full = [Path(prefix + p) for p in paths if p and p[:1] != "/"]
                if len(full) == 1:
                    tasks.append(Task("w", _one_product, [full[0]]))
                elif len(full) == 2 and full[0] != full[1]:
                    tasks.append(Task("w2", _two_products, full))
            except TaskDeclarationError:
                pass
        if args == "declared":
            digest = tasks[0].args_digest if tasks else "00" * 16
            item[4] = base64.b64encode(bytes.fromhex(digest)).decode()[:-2]
        readers = []
        for _ in range(2):
            s = State(os.path.join(d, ".depio_like"))
            s._t0 = 1_000
            s._code_list = {0: "c0", 1: "c1", 2: "c2"}
            producers: dict[str, int] = {}
            for i, task in enumerate(tasks):
                for p in task.products:
                    producers.setdefault(p, i)
            s.share(producers, tasks)
            s._next = next_task
            readers.append(s)
        quick, general = readers

        def outcome(read):
            try:
                return read(item)
            except (TypeError, ValueError, IndexError, AttributeError, KeyError):
                return "unreadable"  # as _load_items counts it

        got = outcome(quick._quick_record)
        if got is None:
            return
        assert got == outcome(general._parse_record), item
        assert quick.files == general.files, item
        if got != "unreadable":
            assert type(got.duration) is type(general._parse_record(item).duration)
