"""What a task needs to run: CPUs, memory, GPUs, a time limit, and free-form sbatch settings.

Local executors use what they can (nothing, today); the Slurm executor turns it into sbatch
parameters. Keys are checked when the task is declared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import TaskDeclarationError

_KEYS = ("cpus", "memory", "gpus", "time", "slurm")
_MEM = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)B?\s*$", re.I)
_TIME = re.compile(r"^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$")


@dataclass(frozen=True)
class Resources:
    """``cpus`` per task, ``memory`` in MB (or "4G"), ``gpus``, ``time`` limit in minutes
    (or "HH:MM:SS" / "D-HH:MM:SS"), ``slurm``: any other sbatch settings."""

    cpus: int | None = None
    memory_mb: int | None = None
    gpus: int | None = None
    time_min: int | None = None
    slurm: Mapping[str, Any] = field(default_factory=dict)

    def key(self) -> tuple:
        """A hashable form: tasks with equal keys can share a Slurm job array."""
        return (self.cpus, self.memory_mb, self.gpus, self.time_min,
                tuple(sorted((k, repr(v)) for k, v in self.slurm.items())))


def parse_resources(value: Any, owner: str) -> Resources:
    """A ``Resources`` from a dict (or a Resources, or None); errors name ``owner``."""
    if value is None:
        return Resources()
    if isinstance(value, Resources):
        return value
    if not isinstance(value, Mapping):
        raise TaskDeclarationError(f"{owner}: resources must be a dict, got "
                                   f"{type(value).__name__} {value!r}")
    unknown = sorted(set(value) - set(_KEYS))
    if unknown:
        raise TaskDeclarationError(
            f"{owner}: unknown resource key(s) {', '.join(map(repr, unknown))}; known: "
            f"{', '.join(_KEYS)} (put other sbatch settings under 'slurm')")
    slurm = value.get("slurm") or {}
    if not isinstance(slurm, Mapping):
        raise TaskDeclarationError(f"{owner}: resources['slurm'] must be a dict of sbatch "
                                   f"settings, got {slurm!r}")
    return Resources(
        cpus=_positive_int(value.get("cpus"), "cpus", owner),
        memory_mb=_memory(value.get("memory"), owner),
        gpus=_positive_int(value.get("gpus"), "gpus", owner, zero_ok=True),
        time_min=_minutes(value.get("time"), owner),
        slurm=dict(slurm),
    )


def _positive_int(v: Any, name: str, owner: str, zero_ok: bool = False) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < (0 if zero_ok else 1):
        raise TaskDeclarationError(f"{owner}: resources[{name!r}] must be a "
                                   f"{'non-negative' if zero_ok else 'positive'} int, got {v!r}")
    return v


def _memory(v: Any, owner: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        return v
    m = _MEM.match(v) if isinstance(v, str) else None
    if not m:
        raise TaskDeclarationError(f"{owner}: resources['memory'] must be MB as an int or a "
                                   f"string like '512M' or '4G', got {v!r}")
    scale = {"": 1, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}[m.group(2).upper()]
    return max(1, int(float(m.group(1)) * scale))


def _minutes(v: Any, owner: str) -> int | None:
    if v is None:
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
        return max(1, int(round(v)))
    m = _TIME.match(v.strip()) if isinstance(v, str) else None
    if not m:
        raise TaskDeclarationError(f"{owner}: resources['time'] must be minutes or "
                                   f"'HH:MM:SS' / 'D-HH:MM:SS', got {v!r}")
    days, hours, mins, secs = (int(x) if x else 0 for x in m.groups())
    total = days * 1440 + hours * 60 + mins + (1 if secs else 0)
    return max(1, total)
