"""Whether a task runs, and why: immutable ``Decision`` values carrying ``Reason``s.

The up-to-date check (``staleness.py``) makes the first decision of a task; the build plan
(``plan.py``) makes every later one (a producer rerun for its value, a chain run as a whole)
with ``Decision.rerun``. The table, the logs and ``--explain`` read the reasons from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

# ``--explain`` names this many changed inputs of one task, then counts the rest.
MAX_NAMED = 3


class Why(str, Enum):
    NEVER_RAN = "never ran"
    INCOMPLETE = "its last run did not finish (products may be partial)"
    FORCED = "forced"
    ALWAYS = "always runs"
    UNFINGERPRINTABLE = "arguments have no stable fingerprint"
    CODE_CHANGED = "function changed (its code or the state it carries)"
    ARGS_CHANGED = "arguments changed"
    INPUT_CHANGED = "input changed"
    INPUT_MISSING = "input missing"
    UPSTREAM = "upstream task reruns"
    VALUE_NEEDED = "its return value is needed by"
    PRODUCT_MISSING = "product missing"
    PRODUCT_CHANGED = "product changed since recorded"
    POSTCONDITION = "postcondition does not hold"
    DEP_FAILED = "runs after the failure of"  # run_if="all_done"
    AFTER_FAILURE = "its last run was after the failure of"


@dataclass(frozen=True)
class Reason:
    why: Why
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.why.value}: {self.detail}" if self.detail else self.why.value


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether a task runs, why, and what its inputs looked like when it was decided."""

    run: bool
    reasons: tuple[Reason, ...] = ()
    inputs: Mapping[str, str | None] = field(default_factory=dict)  # dependency -> digest
    upstream: Mapping[str, str] = field(default_factory=dict)  # depends_on key -> stamp
    fail: str | None = None  # the task cannot be made (BuildMode.NEVER, product missing)

    def rerun(self, reason: Reason) -> Decision:
        """The same task, decided again: it runs, for ``reason`` as well."""
        return Decision(True, self.reasons + (reason,), self.inputs, self.upstream)

    @property
    def only_for_value(self) -> bool:
        """It runs only to hand its return value on: its products come out as they were."""
        return self.run and all(r.why is Why.VALUE_NEEDED for r in self.reasons)

    def __str__(self) -> str:
        if not self.run:
            return "up to date"
        return "; ".join(_grouped(self.reasons))


def _grouped(reasons: tuple[Reason, ...]) -> list[str]:
    """Reasons of one kind on one line: a few details, then how many more."""
    details: dict[Why, list[str]] = {}
    for r in reasons:
        details.setdefault(r.why, [])
        if r.detail:
            details[r.why].append(r.detail)
    out = []
    for why, items in details.items():
        if not items:
            out.append(why.value)
            continue
        shown = ", ".join(items[:MAX_NAMED])
        more = f" and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else ""
        out.append(f"{why.value}: {shown}{more}")
    return out
