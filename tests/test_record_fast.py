"""The usual record's fast paths give what the general ones give: its log line
(``State._usual_line`` against ``State._any_line``) and its ``Record``
(``Checker._usual_record`` against the general ``new_record``)."""

import os
import time
from pathlib import Path
from typing import Annotated

from hypothesis import given, settings
from hypothesis import strategies as st

from depio_like import BuildMode, Dependency, IgnoredForEq, Product, Task
from depio_like.fingerprint import RACY_NS, FileEntry, FileHasher
from depio_like.fs import RealDisk, file_stat
from depio_like.staleness import Checker
from depio_like.state import One, Record, State

from conftest import new_pipeline

# -- the line ----------------------------------------------------------------------------

ROOT = "/proj"
text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["", "a\nb", 'q"uote', "back\\slash", "\x00\x1f", "é€😀", "bad\udcff"]
)
paths = st.sampled_from(["/proj/out/a.txt", "/proj", "/elsewhere/b", "/proj/é ü.txt"]) | text.map(
    lambda s: "/proj/" + s
)
hexes = st.text("0123456789abcdef", min_size=32, max_size=32)
args_ = hexes | st.text(max_size=33) | st.none() | st.just("0123456789abcdef 123456789abcdef")
durations = (
    st.sampled_from([0.0, -0.0, 0.5, 1e-05, 0.0001, 1e16, 3.0])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-(10**20), 10**20)
    | st.none()
    | st.just(True)
)
reprs = st.dictionaries(text, text | st.integers(), max_size=3)


@st.composite
def records(draw):
    p = draw(paths)
    key = draw(st.sampled_from([p, p, p, "k:mod.f:1", "/proj/other"]))
    products = draw(st.sampled_from(["one", "dict", "two", "none"]))
    d = draw(st.sampled_from(["0011223344556677", "unreadable", 'x"y']) | st.none())
    prods = {"one": One(p, d), "dict": {p: d}, "two": {p: d, "/proj/z": "e"}, "none": {}}[products]
    av = draw(reprs)
    if len(av) == 1 and draw(st.booleans()):
        av = One(*next(iter(av.items())))
    rare = draw(
        st.sampled_from(
            [
                {},
                {},
                {},
                {"inputs": {"/proj/i": "x"}},
                {"inputs": One("/proj/i", "x")},
                {"inputs": {"/proj/i": None}},  # an input gone
                {"inputs": {"/elsewhere/c": 'q"', "/proj/é": "y", "/proj": "z"}},
                {"inputs": {"/proj/i": "x"}, "failed": {p: "t"}},
                {"failed": {p: "t"}},
            ]
        )
    )
    return Record(
        key,
        draw(text),
        draw(st.sampled_from(["c" * 32, "other", "é"]) | st.none()),
        draw(args_),
        prods,
        arg_reprs=av,
        duration=draw(durations),
        stamp=draw(st.sampled_from(["0123456789abcdef", "", 'st"amp'])),
        **rare,
    )


# A product's signature: (digest, size, mtime_ns, inode, ctime_ns - mtime_ns).
entries = st.none() | st.tuples(
    st.sampled_from(["0011223344556677", "other"]),
    st.integers(0, 10**12),
    st.integers(0, 2 * 10**18),
    st.integers(0, 10**12),
    st.sampled_from([0, 0, 7, -3]),
)


# The texts of durations as one state keeps them across lines (and examples).
_DURATIONS: dict = {}


def _state():
    s = State(os.path.join(ROOT, ".depio_like"))
    s._t0 = 1_700_000_000 * 10**9
    s._duration_text = _DURATIONS
    return s


@settings(max_examples=600, deadline=None)
@given(records(), entries, st.booleans())
def test_the_usual_line_is_the_general_one(r, entry, code_known):
    fast, general = _state(), _state()
    if code_known and r.code is not None:
        for s in (fast, general):  # its "c" line written before: the line alone
            s._codes[r.code] = 4
            s._next_code = 5
    ents = None
    if entry is not None:
        digest, size, mtime, ino, dc = entry
        ents = {p: FileEntry(size, mtime, ino, digest, mtime + dc) for p in r.products}
    got = fast._usual_line(r, ents)
    want = general._any_line(r, ents)
    if got is not None:
        assert got == want
        assert (fast._codes, fast._next_code) == (general._codes, general._next_code)
    else:  # not the usual record: nothing taken (no code numbered)
        assert fast._codes == ({} if not code_known or r.code is None else {r.code: 4})
    # Whichever way it was written, the line is what _record_line gives.
    assert _state()._record_line(r, ents) == _state()._any_line(r, ents)


def test_the_usual_line_is_taken_for_the_usual_record():
    r = Record(
        "/proj/out/a.txt",
        "t",
        "c" * 32,
        "0123456789abcdef" * 2,
        One("/proj/out/a.txt", "0011223344556677"),
        arg_reprs=One("i", "3"),
        duration=0.25,
        stamp="0123456789abcdef",
    )
    e = {"/proj/out/a.txt": FileEntry(5, 1_700_000_001 * 10**9, 9, "0011223344556677", 0)}
    s = _state()
    line = s._usual_line(r, e)
    assert line is not None and line == _state()._any_line(r, e)
    assert line.endswith(
        '["r","","t",0,"ASNFZ4mrze8BI0VniavN7w",0.25,"0123456789abcdef",'
        '[["out/a.txt","0011223344556677",5,1000000000,9,-1700000001000000000]],{"i":"3"}]'
    )


# -- the record --------------------------------------------------------------------------


def mk(out: Annotated[str, Product], a, b=None, *, c=0) -> None:
    pass


def two(out: Annotated[Path, Product], other: Path, n: int = 1) -> None:
    pass


def three(out: Annotated[str, Product], where: Path = Path("d/x"), xs=(1, 2), s="") -> None:
    pass


def ign(out: Annotated[str, Product], seed: int, verbose: Annotated[bool, IgnoredForEq] = False):
    pass


def four(out: Annotated[str, Product], *rest, **more) -> None:  # not a plain signature
    pass


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | text
    | st.binary(max_size=8)
    | st.builds(Path, st.sampled_from(["x.txt", "/abs/y", "d/é"])),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner),
    max_leaves=5,
)


@st.composite
def calls(draw):
    """(name, function, args, kwargs, file content) of a task of one product."""
    name = draw(st.sampled_from(["t", "é", "x\ny"]) | text)
    size = draw(st.sampled_from([0, 1, 4095, 4096, 65536, 65537, 200_000]) | st.integers(0, 99))
    content = draw(st.binary(min_size=min(size, 8), max_size=8)) * (size // 8 + 1)
    kind = draw(st.sampled_from(["mk", "two", "three", "four", "ign"]))
    if kind == "ign":  # an argument ignored: not described
        kw = draw(st.dictionaries(st.just("verbose"), st.booleans()))
        return name, ign, [draw(st.integers())], kw, content
    if kind == "mk":
        kw = draw(st.dictionaries(st.sampled_from(["b", "c"]), values, max_size=2))
        return name, mk, [draw(values)], kw, content[:size]
    if kind == "three":
        kw = draw(st.dictionaries(st.sampled_from(["where", "xs", "s"]), values, max_size=3))
        if "s" in kw and draw(st.booleans()):
            kw["s"] = "long " * 30  # shown cut short
        return name, three, [], kw, content[:size]
    if kind == "four":
        args = draw(st.lists(values, max_size=2))
        return name, four, args, draw(st.dictionaries(text, values, max_size=2)), content
    n = draw(st.integers(-5, 5))
    return name, two, [Path("other.txt")] + ([n] if draw(st.booleans()) else []), {}, content


def _checker(graph, known):
    return Checker(graph, {}, FileHasher(RealDisk(), known), RealDisk())


@settings(max_examples=150, deadline=None)
@given(
    st.lists(calls(), min_size=1, max_size=4),
    st.floats(0, 1e5),
    st.sampled_from(["none", "same", "stale"]),
    st.sampled_from(
        [{}, {"/p/config.txt": "0011223344556677"}, {"/p/c": None, "/p/b": "e", "/p/a": "f"}]
    ),
)
def test_the_usual_record_is_the_general_one(tmp_path_factory, tasks, duration, known, inputs):
    d = tmp_path_factory.mktemp("p")
    p = new_pipeline()
    for k, (name, func, args, kwargs, content) in enumerate(tasks):
        out = d / "out" / f"{k}.bin"
        out.parent.mkdir(exist_ok=True)
        out.write_bytes(content)
        first = out if func is two else str(out)
        # A description: the task keeps rare attributes (``_rare``), read otherwise.
        described = {"description": "d"} if k % 2 else {}
        p.add_task(Task(name, func, [first, *args], kwargs, **described))
    graph = p.validate()
    for i, t in enumerate(graph.tasks):
        (q,) = t.products
        s = os.stat(q)
        # What the hasher knew of the file: nothing, its signature now (not read again),
        # or an older one (read again).
        entries = {
            "none": {},
            "same": {q: FileEntry(s.st_size, s.st_mtime_ns, s.st_ino, "known", s.st_ctime_ns)},
            "stale": {q: FileEntry(s.st_size + 1, s.st_mtime_ns, s.st_ino, "old", s.st_ctime_ns)},
        }[known]
        fast, general = _checker(graph, dict(entries)), _checker(graph, dict(entries))
        missing, stats = fast.missing_products(i)
        assert missing == [] and type(stats[q]) is os.stat_result
        # The fast path is the one taken.
        fast_one = _checker(graph, dict(entries)).usual_record(i, duration, None, stats, inputs)
        assert fast_one is not None
        got = fast.new_record(i, dict(inputs), {}, duration, None, stats, None)
        # The general path: given a FileStat, as a disk other than the real one gives.
        want = general.new_record(i, dict(inputs), {}, duration, None, {q: file_stat(s)}, None)
        assert got == want == fast_one
        assert type(got.inputs) is type(want.inputs)  # One, a dict, or none
        assert got.stamp == want.stamp and type(got.products) is One
        assert type(got.arg_reprs) is type(want.arg_reprs)  # One, a dict, or none
        # (Not _unindexed: the fast path does not note a product there, see written.)
        for h in ("_memo", "_known", "fresh", "bytes_hashed"):
            assert getattr(fast.hasher, h) == getattr(general.hasher, h), h


def test_a_product_written_long_enough_ago_is_recorded_with_its_signature(tmp_path):
    # Not racy (written over RACY_NS before it is hashed): its entry is kept, as by the
    # general path.
    out = tmp_path / "a.txt"
    out.write_text("a")
    p = new_pipeline()
    p.add_task(Task("a", mk, [str(out), 1]))
    graph = p.validate()
    time.sleep(RACY_NS / 1e9 * 1.5)
    fast, general = _checker(graph, {}), _checker(graph, {})
    stats = fast.missing_products(0)[1]
    got = fast.new_record(0, {}, {}, 0.5, None, stats, None)
    want = general.new_record(0, {}, {}, 0.5, None, {str(out): file_stat(os.stat(out))}, None)
    assert got == want
    assert fast.hasher.fresh == general.hasher.fresh != {}


# -- the decision ------------------------------------------------------------------------


def made(out: Annotated[str, Product], n: int) -> None:
    Path(out).write_text(str(n))


def reads(out: Annotated[str, Product], src: Annotated[str, Dependency], n: int) -> None:
    Path(out).write_text(Path(src).read_text() + str(n))


@st.composite
def pipelines(draw):
    """Tasks (kind, n, extra) of a pipeline: plain ones, readers of an earlier task's
    product, tasks named in depends_on, other build modes, postconditions; which of them
    ran before (have a record), and which products were changed or removed since."""
    n = draw(st.integers(1, 8))
    tasks = []
    for k in range(n):
        kind = draw(
            st.sampled_from(["made", "made", "reads", "config", "after", "always", "ensure"])
        )
        if kind in ("reads", "after") and k == 0:
            kind = "made"
        tasks.append((kind, draw(st.integers(0, 3)), draw(st.integers(0, max(k - 1, 0)))))
    ran = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    touched = draw(st.lists(st.sampled_from(["", "", "edit", "remove"]), min_size=n, max_size=n))
    config = draw(st.sampled_from(["", "", "edit", "remove"]))  # the file no task makes
    return tasks, ran, touched, config


def _pipeline(tasks, keep):
    p = new_pipeline()
    declared = []
    for k, (kind, n, up) in enumerate(tasks):
        out = f"t{k}.txt"
        if kind == "reads":
            t = Task(f"t{k}", reads, [out, f"t{up}.txt", n])
        elif kind == "config":
            t = Task(f"t{k}", reads, [out, "config.txt", n])
        elif kind == "after":
            t = Task(f"t{k}", made, [out, n], depends_on=[declared[up]])
        elif kind == "always":
            t = Task(f"t{k}", made, [out, n], buildmode=BuildMode.ALWAYS)
        elif kind == "ensure":
            t = Task(f"t{k}", made, [out, n], ensure=lambda out: Path(out).exists())
        else:
            t = Task(f"t{k}", made, [out, n])
        declared.append(t)
    for k in keep:
        p.add_task(declared[k])
    return p


@settings(max_examples=60, deadline=None)
@given(pipelines())
def test_the_quick_decision_is_the_one_check_makes(tmp_path_factory, drawn):
    tasks, ran, touched, config = drawn
    os.chdir(tmp_path_factory.mktemp("q"))
    Path("config.txt").write_text("c")
    # The tasks that ran before, with what they need (a reader's producer, a task named
    # in depends_on).
    keep = set()
    for k in reversed(range(len(tasks))):
        if ran[k] or k in keep:
            keep.add(k)
            if tasks[k][0] in ("reads", "after"):
                keep.add(tasks[k][2])
    if keep:
        assert _pipeline(tasks, sorted(keep)).run() == 0
    for k, how in enumerate(touched):
        if how == "edit" and os.path.exists(f"t{k}.txt"):
            Path(f"t{k}.txt").write_text("edited")
        elif how == "remove" and os.path.exists(f"t{k}.txt"):
            os.remove(f"t{k}.txt")
    if config == "edit":
        Path("config.txt").write_text("c2")
    elif config == "remove":
        os.remove("config.txt")
    p = _pipeline(tasks, range(len(tasks)))
    if any(kind == "config" for kind, _, _ in tasks) and config == "remove":
        Path("config.txt").mkdir()  # there again, as a directory
    for kind, _, up in tasks:  # a reader's input must exist to validate
        if kind == "reads" and not os.path.exists(f"t{up}.txt"):
            Path(f"t{up}.txt").write_text("again")
    graph = p.validate()
    state = State(p.state_dir).read_only()
    quick_checker = Checker(
        graph, state.records, FileHasher(RealDisk(), dict(state.files)), RealDisk()
    )
    checker = Checker(graph, state.records, FileHasher(RealDisk(), dict(state.files)), RealDisk())
    quick = quick_checker._quick()
    for i in graph.order:
        got = quick(i)
        want = checker.check(i)
        if tasks[i][0] in ("made", "config") and i not in keep:  # never ran: answered quickly
            assert got is not None
        if tasks[i][0] == "config" and i in keep and not touched[i] and not config:
            assert got is not None  # up to date, reading what it read: answered quickly
        if got is not None:
            assert (got.run, got.reasons, dict(got.inputs), dict(got.upstream), got.fail) == (
                want.run,
                want.reasons,
                dict(want.inputs),
                dict(want.upstream),
                want.fail,
            )
            if got.run:  # its code digest taken before it runs (its record keeps that one)
                assert quick_checker._codes[i] == checker._codes[i] is not None
