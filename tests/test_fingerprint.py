"""File digests (stat first, read only what changed), code digests and argument encodings."""

import collections
import dataclasses
import enum
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path, PurePosixPath

import pytest
import xxhash

from depio_like.fingerprint import (
    RACY_NS,
    FileEntry,
    FileHasher,
    Unfingerprintable,
    canonical,
    code_digest,
)
from depio_like.fs import FileStat, RealDisk

SECOND = 1_000_000_000
NOW = 1_700_000_000 * SECOND
OLD = NOW - 3600 * SECOND  # an hour ago: well outside the racy window


class FakeDisk:
    """An in-memory ``Disk`` that counts how often each file's bytes are read."""

    def __init__(self, now_ns=NOW):
        self.now = now_ns
        self.files = {}  # path -> [data, mtime_ns, ino, ctime_ns]
        self.dirs = {"/": 1}  # path -> ino
        self.reads = collections.Counter()
        self._next_ino = 100

    def write(self, path, data, mtime_ns=OLD, *, new_inode=False, ctime_ns=None):
        """Create or overwrite ``path``; keeps its inode unless told otherwise. Its ctime
        is its mtime unless given (a write at that time)."""
        old = self.files.get(path)
        if old is None or new_inode:
            self._next_ino += 1
            ino = self._next_ino
        else:
            ino = old[2]
        self.files[path] = [data, mtime_ns, ino, mtime_ns if ctime_ns is None else ctime_ns]
        parent = path.rsplit("/", 1)[0]
        while parent:
            if parent not in self.dirs:
                self._next_ino += 1
                self.dirs[parent] = self._next_ino
            parent = parent.rsplit("/", 1)[0]

    def touch(self, path, mtime_ns):
        self.files[path][1] = self.files[path][3] = mtime_ns

    def remove(self, path):
        del self.files[path]

    # -- the Disk protocol ------------------------------------------------------------
    def stat(self, path):
        if path in self.files:
            data, mtime, ino, ctime = self.files[path]
            return FileStat(len(data), mtime, ino, False, ctime)
        if path in self.dirs:
            return FileStat(0, OLD, self.dirs[path], True, OLD)
        return None

    def chunks(self, path, size_hint):
        self.reads[path] += 1
        data = self.files[path][0]
        for i in range(0, len(data), 3):  # several chunks, to exercise streaming
            yield data[i : i + 3]

    def listdir(self, path):
        prefix = path.rstrip("/") + "/"
        names = {
            p[len(prefix) :].split("/", 1)[0]
            for p in [*self.files, *self.dirs]
            if p.startswith(prefix) and p != prefix
        }
        return sorted(names, reverse=True)  # not sorted the way the hasher needs it

    def now_ns(self):
        return self.now


def xxh(data):
    return xxhash.xxh3_64(data).hexdigest()


# --------------------------------------------------------------------------------------
# FileHasher with the in-memory disk
# --------------------------------------------------------------------------------------


def test_digest_is_the_xxh3_of_the_content_streamed_in_chunks():
    disk = FakeDisk()
    disk.write("/p/a.txt", b"hello, world")
    hasher = FileHasher(disk, {})
    assert hasher.digest("/p/a.txt") == xxh(b"hello, world")
    assert hasher.bytes_hashed == len(b"hello, world")


def test_a_file_with_an_unchanged_stat_is_not_read_again_in_the_next_run():
    disk = FakeDisk()
    disk.write("/p/a.txt", b"content")
    first = FileHasher(disk, {})
    d1 = first.digest("/p/a.txt")
    assert disk.reads["/p/a.txt"] == 1
    assert first.fresh == {"/p/a.txt": FileEntry(7, OLD, disk.files["/p/a.txt"][2], d1, OLD)}

    second_run = FileHasher(disk, dict(first.fresh))  # what the state hands the next run
    assert second_run.digest("/p/a.txt") == d1
    assert disk.reads["/p/a.txt"] == 1
    assert second_run.bytes_hashed == 0
    assert second_run.fresh == {}  # nothing new worth saving


def test_a_matching_stat_signature_is_trusted_without_looking_at_the_bytes():
    disk = FakeDisk()
    disk.write("/p/a.txt", b"content")
    st = disk.stat("/p/a.txt")
    known = {"/p/a.txt": FileEntry(st.size, st.mtime_ns, st.ino, "recorded-digest", st.ctime_ns)}
    assert FileHasher(disk, known).digest("/p/a.txt") == "recorded-digest"
    assert disk.reads["/p/a.txt"] == 0


def test_the_same_file_is_read_once_per_run():
    disk = FakeDisk()
    disk.write("/p/a.txt", b"content", mtime_ns=NOW)  # racy: not trusted across runs
    hasher = FileHasher(disk, {})
    assert hasher.digest("/p/a.txt") == hasher.digest("/p/a.txt") == xxh(b"content")
    assert disk.reads["/p/a.txt"] == 1


def test_touch_rereads_the_file_and_gives_the_same_digest():
    disk = FakeDisk()
    disk.write("/p/a.txt", b"content")
    first = FileHasher(disk, {})
    d1 = first.digest("/p/a.txt")

    disk.touch("/p/a.txt", OLD + SECOND)
    second = FileHasher(disk, dict(first.fresh))
    assert second.digest("/p/a.txt") == d1
    assert disk.reads["/p/a.txt"] == 2
    assert second.fresh["/p/a.txt"].mtime_ns == OLD + SECOND  # the new signature is saved


def test_changed_bytes_give_a_different_digest():
    disk = FakeDisk()
    disk.write("/p/a.txt", b"version 1")
    first = FileHasher(disk, {})
    d1 = first.digest("/p/a.txt")

    disk.write("/p/a.txt", b"version 2", mtime_ns=OLD + SECOND)
    d2 = FileHasher(disk, dict(first.fresh)).digest("/p/a.txt")
    assert d2 == xxh(b"version 2") != d1


def test_a_file_replaced_by_another_inode_is_reread_even_with_same_size_and_mtime():
    disk = FakeDisk()
    disk.write("/p/a.txt", b"version 1")
    first = FileHasher(disk, {})
    d1 = first.digest("/p/a.txt")

    disk.write("/p/a.txt", b"version 2", mtime_ns=OLD, new_inode=True)  # e.g. mv over it
    assert FileHasher(disk, dict(first.fresh)).digest("/p/a.txt") == xxh(b"version 2") != d1


def test_a_missing_file_has_no_digest():
    disk = FakeDisk()
    hasher = FileHasher(disk, {})
    assert hasher.digest("/p/nope.txt") is None
    assert hasher.fresh == {}

    disk.write("/p/a.txt", b"x")
    hasher.digest("/p/a.txt")
    disk.remove("/p/a.txt")
    # Within a run a path is looked at once: what changes it (a task writing its
    # products) makes the run forget it first.
    hasher.forget("/p/a.txt")
    assert hasher.digest("/p/a.txt") is None
    assert FileHasher(disk, {}).digest("/p/a.txt") is None


def test_a_racy_file_is_hashed_but_not_trusted_next_time():
    disk = FakeDisk()
    disk.write("/p/new.txt", b"just written", mtime_ns=NOW - RACY_NS // 2)
    first = FileHasher(disk, {})
    assert first.digest("/p/new.txt") == xxh(b"just written")
    assert first.fresh == {}

    # The next run must look at the bytes again, whatever the stat says.
    second = FileHasher(disk, dict(first.fresh))
    assert second.digest("/p/new.txt") == xxh(b"just written")
    assert disk.reads["/p/new.txt"] == 2


def test_a_file_with_an_mtime_in_the_future_is_not_trusted():
    disk = FakeDisk()
    disk.write("/p/skewed.txt", b"x", mtime_ns=NOW + 60 * SECOND)
    hasher = FileHasher(disk, {})
    assert hasher.digest("/p/skewed.txt") == xxh(b"x")
    assert hasher.fresh == {}


def test_a_file_older_than_the_racy_window_is_trusted():
    disk = FakeDisk()
    disk.write("/p/settled.txt", b"x", mtime_ns=NOW - 2 * RACY_NS)
    hasher = FileHasher(disk, {})
    d = hasher.digest("/p/settled.txt")
    assert hasher.fresh == {
        "/p/settled.txt": FileEntry(
            1, NOW - 2 * RACY_NS, disk.files["/p/settled.txt"][2], d, NOW - 2 * RACY_NS
        )
    }


def test_forget_makes_the_next_digest_look_at_the_file_again():
    # A task rewrites its product within the same clock tick: size, mtime, inode all equal.
    disk = FakeDisk()
    disk.write("/p/out.txt", b"old!", mtime_ns=NOW)
    hasher = FileHasher(disk, {})
    assert hasher.digest("/p/out.txt") == xxh(b"old!")

    disk.write("/p/out.txt", b"new!", mtime_ns=NOW)
    assert hasher.digest("/p/out.txt") == xxh(b"old!")  # remembered for this run...
    hasher.forget("/p/out.txt")
    assert hasher.digest("/p/out.txt") == xxh(b"new!")  # ...until forgotten


def test_forget_of_a_directory_forgets_every_file_under_it_looked_at_alone():
    # A reader of a file inside a directory product is checked before the producer runs
    # (they are one chain); the producer then rewrites the directory. Found by the oracle:
    # the directory was recorded with the file's old digest, so the next run reran it.
    disk = FakeDisk()
    disk.write("/out/t.d/f1.txt", b"old")
    disk.write("/out/t.d/sub/f2.txt", b"old")
    hasher = FileHasher(disk, {})
    assert hasher.digest("/out/t.d/f1.txt") == xxh(b"old")
    assert hasher.digest("/out/t.d/sub/f2.txt") == xxh(b"old")

    hasher.forget("/out/t.d")  # the producer is about to run
    disk.write("/out/t.d/f1.txt", b"new", mtime_ns=NOW)
    disk.write("/out/t.d/sub/f2.txt", b"new", mtime_ns=NOW)
    assert hasher.digest("/out/t.d") == FileHasher(disk, {}).digest("/out/t.d")
    assert hasher.digest("/out/t.d/f1.txt") == xxh(b"new")
    assert hasher.digest("/out/t.d/sub/f2.txt") == xxh(b"new")


def test_directory_digest_changes_when_a_nested_file_changes():
    disk = FakeDisk()
    disk.write("/out/a.txt", b"a")
    disk.write("/out/sub/deep/b.txt", b"b")
    first = FileHasher(disk, {})
    d1 = first.digest("/out")
    assert d1 is not None
    assert set(first.fresh) == {"/out/a.txt", "/out/sub/deep/b.txt"}

    # Nothing changed: same digest and nothing is read.
    assert FileHasher(disk, dict(first.fresh)).digest("/out") == d1
    assert sum(disk.reads.values()) == 2

    disk.write("/out/sub/deep/b.txt", b"B", mtime_ns=OLD + SECOND)
    d2 = FileHasher(disk, dict(first.fresh)).digest("/out")
    assert d2 != d1


def test_directory_digest_depends_on_names_and_new_files():
    disk = FakeDisk()
    disk.write("/out/a.txt", b"a")
    d1 = FileHasher(disk, {}).digest("/out")

    disk.write("/out/extra.txt", b"")
    d2 = FileHasher(disk, {}).digest("/out")
    assert d2 != d1

    disk.remove("/out/extra.txt")
    disk.files["/out/renamed.txt"] = disk.files.pop("/out/a.txt")
    d3 = FileHasher(disk, {}).digest("/out")
    assert len({d1, d2, d3}) == 3


def test_directory_digest_does_not_depend_on_listdir_order():
    disk = FakeDisk()
    for name in "cab":
        disk.write(f"/out/{name}", name.encode())
    d1 = FileHasher(disk, {}).digest("/out")
    disk.listdir = lambda path: sorted(FakeDisk.listdir(disk, path))  # another order
    assert FileHasher(disk, {}).digest("/out") == d1


# --------------------------------------------------------------------------------------
# FileHasher on the real filesystem
# --------------------------------------------------------------------------------------


def test_real_disk_streams_a_large_file_to_the_digest_of_its_whole_content(tmp_path):
    content = os.urandom(2 * (1 << 20) + 12345)  # > 1 MiB: read in reused chunks
    big = tmp_path / "big.bin"
    big.write_bytes(content)
    hasher = FileHasher(RealDisk(), {})
    assert hasher.digest(str(big)) == xxhash.xxh3_64(content).hexdigest()
    assert hasher.bytes_hashed == len(content)


def test_real_disk_small_file_missing_file_and_directory(tmp_path):
    (tmp_path / "small.txt").write_bytes(b"small")
    (tmp_path / "d" / "sub").mkdir(parents=True)
    nested = tmp_path / "d" / "sub" / "n.txt"
    nested.write_bytes(b"one")
    hasher = FileHasher(RealDisk(), {})
    assert hasher.digest(str(tmp_path / "small.txt")) == xxh(b"small")
    assert hasher.digest(str(tmp_path / "missing.txt")) is None
    assert hasher.digest(str(tmp_path / "small.txt" / "below-a-file")) is None
    d1 = hasher.digest(str(tmp_path / "d"))

    nested.write_bytes(b"two")
    assert FileHasher(RealDisk(), {}).digest(str(tmp_path / "d")) != d1


def test_real_directory_with_a_file_name_that_is_not_utf8(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    odd = os.path.join(os.fsencode(out), b"caf\xe9.txt")
    try:
        with open(odd, "wb") as f:
            f.write(b"one")
    except OSError:
        pytest.skip("this filesystem only takes UTF-8 names")
    d1 = FileHasher(RealDisk(), {}).digest(str(out))
    with open(odd, "wb") as f:
        f.write(b"two")
    assert FileHasher(RealDisk(), {}).digest(str(out)) != d1


def test_real_disk_known_entry_skips_reading(tmp_path):
    f = tmp_path / "a.txt"
    f.write_bytes(b"real bytes")
    st = os.stat(f)
    known = {
        str(f): FileEntry(st.st_size, st.st_mtime_ns, st.st_ino, "from-the-state", st.st_ctime_ns)
    }
    hasher = FileHasher(RealDisk(), known)
    assert hasher.digest(str(f)) == "from-the-state"
    assert hasher.bytes_hashed == 0


# --------------------------------------------------------------------------------------
# code_digest
# --------------------------------------------------------------------------------------


def define(source, name="f"):
    """Compile ``source`` in a fresh namespace and return the function called ``name``."""
    ns = {}
    exec(compile(textwrap.dedent(source), f"<{name}>", "exec"), ns)
    return ns[name]


PLAIN = """
def f(items, scale):
    total = 0
    for x in items:
        total += x * scale
    return total
"""


def test_code_digest_ignores_comments_whitespace_blank_lines_and_position():
    noisy = define("""



        # a comment before the function
        def f(items,   scale):   # trailing comment

            total = 0      # start at zero


            for x in items:
                # the loop
                total += x*scale
            return total
        """)
    assert code_digest(noisy) == code_digest(define(PLAIN))


def test_code_digest_ignores_the_docstring_text():
    a = define('''
        def f(items, scale):
            """Sum the scaled items."""
            total = 0
            for x in items:
                total += x * scale
            return total
        ''')
    b = define('''
        def f(items, scale):
            """A completely different
            and longer docstring."""
            total = 0
            for x in items:
                total += x * scale
            return total
        ''')
    assert code_digest(a) == code_digest(b)


def test_code_digest_ignores_adding_a_docstring():
    documented = define('''
        def f(items, scale):
            """Sum the scaled items."""
            total = 0
            for x in items:
                total += x * scale
            return total
        ''')
    assert code_digest(documented) == code_digest(define(PLAIN))


@pytest.mark.parametrize(
    "changed",
    [
        PLAIN.replace("total = 0", "total = 1"),  # a constant
        PLAIN.replace("x * scale", "x + scale"),  # an operator
        PLAIN.replace("return total", "return -total"),  # an extra operation
        PLAIN.replace("x * scale", "scale * x"),  # operand order
    ],
    ids=["constant", "operator", "negation", "operand-order"],
)
def test_code_digest_changes_when_the_body_changes(changed):
    assert code_digest(define(changed)) != code_digest(define(PLAIN))


def test_code_digest_changes_when_a_nested_function_changes():
    src = """
    def f(xs):
        def inner(x):
            return x * 2
        return [inner(x) for x in xs]
    """
    assert code_digest(define(src)) == code_digest(define(src))
    assert code_digest(define(src.replace("x * 2", "x * 3"))) != code_digest(define(src))


def test_code_digest_changes_when_a_lambda_inside_changes():
    src = """
    def f(pairs):
        return sorted(pairs, key=lambda p: p[0])
    """
    assert code_digest(define(src.replace("p[0]", "p[1]"))) != code_digest(define(src))


def test_code_digest_sees_values_captured_by_a_closure():
    def make(k):
        def f(x):
            return x * k

        return f

    assert code_digest(make(2)) == code_digest(make(2))
    assert code_digest(make(2)) != code_digest(make(3))


def test_code_digest_of_a_recursive_closure_does_not_depend_on_the_call_depth():
    def make():
        def walk(n):
            return 0 if n == 0 else walk(n - 1)

        return walk

    def at_depth(k):
        return code_digest(make()) if k == 0 else at_depth(k - 1)

    assert at_depth(0) == at_depth(200)


def _run_with_seed(seed, code):
    env = dict(os.environ, PYTHONHASHSEED=str(seed))
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_code_digest_of_a_set_constant_is_stable_across_hash_seeds():
    code = """
    from depio_like.fingerprint import code_digest
    def f(x):
        return x in {'a', 'b', 'c'}
    print(repr(f.__code__.co_consts))
    print(code_digest(f))
    """
    raw0, digest0 = _run_with_seed(0, code)
    raw1, digest1 = _run_with_seed(1, code)
    assert raw0 != raw1, "these seeds should order the frozenset constant differently"
    assert digest0 == digest1


# --------------------------------------------------------------------------------------
# canonical
# --------------------------------------------------------------------------------------


def test_dicts_with_different_insertion_order_are_equal():
    a = {"x": 1, "y": [1, 2], "z": {"p": 1, "q": 2}}
    b = {"z": {"q": 2, "p": 1}, "y": [1, 2], "x": 1}
    assert canonical(a) == canonical(b)
    assert canonical(a) != canonical({**a, "x": 2})


def test_sets_are_equal_across_hash_seeds():
    code = """
    from depio_like.fingerprint import canonical
    s = {'alpha', 'beta', 'gamma', 'delta'}
    print(repr(s))
    print(canonical({'tags': s, 'frozen': frozenset(s)}))
    """
    raw0, canon0 = _run_with_seed(0, code)
    raw1, canon1 = _run_with_seed(1, code)
    assert raw0 != raw1, "these seeds should iterate the set in different orders"
    assert canon0 == canon1


def test_path_and_str_are_distinct():
    assert canonical(Path("data/in.txt")) != canonical("data/in.txt")
    assert canonical(Path("data/in.txt")) == canonical(PurePosixPath("data/in.txt"))
    assert canonical(Path("a")) != canonical(Path("b"))


def test_nesting_and_sequence_types_are_distinct():
    values = [[1, [2, 3]], [1, (2, 3)], (1, [2, 3]), [[1, 2], 3], [1, 2, 3], (1, 2, 3)]
    encodings = [canonical(v) for v in values]
    assert len(set(encodings)) == len(values)


def test_scalars_of_different_types_are_distinct():
    values = [1, 1.0, True, "1", b"1", None, "None"]
    assert len({canonical(v) for v in values}) == len(values)


def test_strings_that_look_like_structure_do_not_collide():
    assert canonical(["a,b"]) != canonical(["a", "b"])
    assert canonical({"a": "b:c"}) != canonical({"a:b": "c"})


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int


@dataclasses.dataclass(frozen=True)
class OtherPoint:
    x: int
    y: int


@dataclasses.dataclass
class Config:
    name: str
    tags: set
    origin: Point


def test_dataclasses_are_encoded_by_type_and_fields():
    assert canonical(Point(1, 2)) == canonical(Point(1, 2))
    assert canonical(Point(1, 2)) != canonical(Point(2, 1))
    assert canonical(Point(1, 2)) != canonical(OtherPoint(1, 2))
    c1 = Config("run", {"b", "a"}, Point(0, 0))
    c2 = Config("run", {"a", "b"}, Point(0, 0))
    assert canonical(c1) == canonical(c2)
    assert canonical(c1) != canonical(Config("run", {"a"}, Point(0, 0)))


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Mode(str, enum.Enum):
    FAST = "fast"


def test_enums_are_encoded_by_member():
    assert canonical(Color.RED) == canonical(Color(1))
    assert canonical(Color.RED) != canonical(Color.BLUE)
    assert canonical(Color.RED) != canonical(1)
    assert canonical(Mode.FAST) != canonical("fast")


def test_functions_as_arguments_are_encoded_by_name_and_code():
    f1 = define(PLAIN)
    f2 = define(PLAIN.replace("total = 0", "total = 1"))
    assert canonical(f1) == canonical(define(PLAIN))
    assert canonical(f1) != canonical(f2)


def test_an_object_that_cannot_be_pickled_is_unfingerprintable():
    with pytest.raises(Unfingerprintable):
        canonical(threading.Lock())
    with pytest.raises(Unfingerprintable):
        canonical({"lock": [threading.Lock()]})


def test_a_cyclic_list_is_unfingerprintable():
    cyclic = [1, 2]
    cyclic.append(cyclic)
    with pytest.raises(Unfingerprintable):
        canonical(cyclic)
    cyclic_dict = {}
    cyclic_dict["self"] = cyclic_dict
    with pytest.raises(Unfingerprintable):
        canonical(cyclic_dict)


class Box:
    """A plain class: canonical() encodes its instances by their attributes."""

    def __init__(self, a):
        self.a = a


def test_a_plain_picklable_object_is_encoded_by_its_state():
    assert canonical(Box(1)) == canonical(Box(1))
    assert canonical(Box(1)) != canonical(Box(2))
    assert canonical(collections.OrderedDict(a=1)) == canonical(collections.OrderedDict(a=1))
    assert canonical(collections.OrderedDict(a=1)) != canonical(collections.OrderedDict(a=2))


def test_a_plain_object_holding_a_set_is_equal_across_hash_seeds():
    code = """
    from depio_like.fingerprint import canonical
    class Settings:  # a plain object, not a dataclass: canonical() falls back to pickle
        def __init__(self):
            self.tags = {'alpha', 'beta', 'gamma', 'delta'}
    print(canonical(Settings()))
    """
    (canon0,) = _run_with_seed(0, code)
    (canon1,) = _run_with_seed(1, code)
    assert canon0 == canon1


def test_dict_subclasses_with_different_insertion_order_are_equal():
    assert canonical(collections.Counter({"a": 1, "b": 2})) == canonical(
        collections.Counter({"b": 2, "a": 1})
    )


# -- a product nothing else reads, on the real disk -------------------------------------


def _settled(*files):
    """Files written outside the racy window (their stat signatures can be trusted): a
    change of the clock's tick ago (ctime cannot be set back)."""
    for path, text in files:
        path.write_text(text)
    time.sleep(RACY_NS / 1e9 * 1.5)
    return [str(path) for path, _ in files]


def test_unchanged_without_a_signature_hashes_and_keeps_the_recorded_digest(tmp_path):
    """The rerun after a build: no product has a signature yet (each was hashed as it was
    written). Its content is compared with the recorded digest, and the new signature
    keeps that very string (not an equal copy: 100,000 of them at 100,000 tasks); the
    run keeps no memo of it (nothing else reads it)."""
    (p,) = _settled((tmp_path / "a.txt", "content"))
    d = FileHasher(RealDisk(), {}).digest(p)
    recorded = d[:4] + d[4:]  # equal, not the same object: as the state's loader made it
    h = FileHasher(RealDisk(), {})
    assert h.unchanged(p, recorded) is True
    entry = h.fresh[p]
    assert entry.digest is recorded and h._known[p] is entry
    assert (entry.size, entry.mtime_ns, entry.ino) == (
        7,
        os.stat(p).st_mtime_ns,
        os.stat(p).st_ino,
    )
    assert p not in h._memo and h.bytes_hashed == 7
    # Next run: the signature answers, nothing is read.
    again = FileHasher(RealDisk(), {p: entry})
    assert again.unchanged(p, recorded) is True and again.bytes_hashed == 0


def test_unchanged_without_a_signature_sees_a_changed_content(tmp_path):
    (p,) = _settled((tmp_path / "a.txt", "content"))
    h = FileHasher(RealDisk(), {})
    assert h.unchanged(p, "0123456789abcdef") is None  # digest() decides: it differs
    assert h.fresh == {} and h.digest(p) != "0123456789abcdef"
    assert h.unchanged(str(tmp_path / "gone.txt"), "0123456789abcdef") is False


def test_a_racy_product_is_compared_but_gets_no_signature(tmp_path):
    p = str(tmp_path / "a.txt")
    Path(p).write_text("just now")
    d = FileHasher(RealDisk(), {}).digest(p)
    h = FileHasher(RealDisk(), {})
    assert h.unchanged(p, d) is True
    assert h.fresh == {} and p not in h._known


def test_many_new_signatures_are_handed_on_before_the_run_ends(tmp_path, monkeypatch):
    """The rerun after a build finds a new signature for every product: they go to the
    state in batches (``spill``), not all held until the run's end."""
    import depio_like.fingerprint as fp

    monkeypatch.setattr(fp, "SPILL_AT", 3)
    handed: list[dict] = []
    h = FileHasher(RealDisk(), {}, spill=lambda fresh: (handed.append(dict(fresh)), fresh.clear()))
    files = _settled(*[(tmp_path / f"f{k}.txt", str(k)) for k in range(7)])
    for f in files[:4]:
        assert h.unchanged(f, FileHasher(RealDisk(), {}).digest(f)) is True
    for f in files[4:]:
        h.digest(f)  # the general path too
    assert [sorted(b) for b in handed] == [sorted(files[:3]), sorted(files[3:6])]
    assert list(h.fresh) == [files[6]]


def test_inputs_no_task_makes_leave_the_products_on_the_unchanged_path(tmp_path):
    """The graph hands over its stats of the inputs no task makes (one per run and file):
    a product is still answered by ``unchanged`` (no memo, its signature kept), and the
    input itself is left to ``digest``, which uses that stat."""
    inp, prod = _settled((tmp_path / "in.txt", "input"), (tmp_path / "out.txt", "product"))
    d = FileHasher(RealDisk(), {}).digest(prod)
    h = FileHasher(RealDisk(), {}, stats={inp: RealDisk().stat(inp)})
    assert h.unchanged(prod, d) is True
    assert prod not in h._memo and h.fresh[prod].digest is d
    assert h.unchanged(inp, FileHasher(RealDisk(), {}).digest(inp)) is None
