"""A record's stamp is what downstream tasks compare (``upstream``): it must be spelt as
before the in-memory record keys of product tasks lost their ``"p:"`` (f854a64), or every
task named in depends_on (or whose value is taken) by a task with upstream of its own gets
a new stamp once it reruns after an upgrade, even with identical products, and its
readers all rerun once: early cutoff lost across the upgrade."""

from typing import Annotated

import xxhash

from depio_like import Product, Task
from depio_like.state import State

from conftest import new_pipeline


def mk(out: Annotated[str, Product], i: int) -> None:
    with open(out, "w") as f:
        f.write(str(i))


def bad(out: Annotated[str, Product]) -> None:
    raise RuntimeError("fails on purpose")


def _spelt(m, keys=False):
    # A task's key as the log spells it (f854a64 kept "p:" in memory too): what stamps hash.
    items = [(k if not keys or k[:2] in ("p:", "k:") else "p:" + k, v) for k, v in m.items()]
    return repr(sorted(items)) if items else "[]"


def _stamp(rec):
    text = (
        f"{rec.code!r}{rec.args!r}{_spelt(rec.inputs)}{_spelt(rec.products)}"
        f"{_spelt(rec.upstream, True)}{_spelt(rec.failed, True)}"
    )
    return xxhash.xxh3_64_hexdigest(text.encode("utf-8", "surrogateescape"))


def test_stamps_spell_upstream_and_failed_keys_as_the_log_does(project):
    p = new_pipeline()
    a = p.add_task(Task("a", mk, ["a.txt", 1]))
    b = p.add_task(Task("b", mk, ["b.txt", 2], depends_on=[a]))
    p.add_task(Task("c", mk, ["c.txt", 3], depends_on=[b]))
    f = p.add_task(Task("f", bad, ["f.txt"]))
    p.add_task(Task("s", mk, ["s.txt", 4], depends_on=[f], run_if="all_done"))
    p.run()

    s = State(str(project / ".depio_like")).open()
    try:
        recs = {r.name: r for r in s.records.values()}
    finally:
        s.close()
    assert recs["b"].upstream and recs["c"].upstream and recs["s"].failed
    for name in ("a", "b", "c", "s"):
        assert recs[name].stamp == _stamp(recs[name]), name
