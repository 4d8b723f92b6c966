"""The usual record's fast paths give what the general ones give: its log line
(``State._usual_line`` against ``State._any_line``) and its ``Record``
(``Checker._usual_record`` against the general ``new_record``)."""

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from depio_like.fingerprint import FileEntry
from depio_like.state import One, Record, State

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
    st.floats(allow_nan=True, allow_infinity=True)
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
    rare = draw(st.sampled_from([{}, {}, {}, {"inputs": {"/proj/i": "x"}}, {"failed": {p: "t"}}]))
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


def _state():
    s = State(os.path.join(ROOT, ".depio_like"))
    s._t0 = 1_700_000_000 * 10**9
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
