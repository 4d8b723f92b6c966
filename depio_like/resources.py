"""What a task needs to run: CPUs, memory, GPUs, a time limit, and free-form sbatch settings;
and the names sbatch settings go by.

Local executors use what they can (nothing, today); the Slurm executor turns it into sbatch
parameters. Keys are checked when the task is declared.

Sbatch settings are accepted under submitit's names, as depio users write them: ours (the
parameters of submitit's ``SlurmExecutor``: ``partition``, ``time``, ``mem``, ...), the same
with a ``slurm_`` prefix (``slurm_partition``, as ``AutoExecutor`` takes them), and
``AutoExecutor``'s shared names (``timeout_min``, ``mem_gb``, ``gpus_per_node``, ...).
``sbatch_settings`` maps them all onto ours.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

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

    def over(self, base: Resources) -> Resources:
        """These resources, with what they leave unset taken from ``base``."""
        return Resources(
            cpus=self.cpus if self.cpus is not None else base.cpus,
            memory_mb=self.memory_mb if self.memory_mb is not None else base.memory_mb,
            gpus=self.gpus if self.gpus is not None else base.gpus,
            time_min=self.time_min if self.time_min is not None else base.time_min,
            slurm={**base.slurm, **self.slurm},
        )

    def key(self) -> tuple:
        """A hashable form: tasks with equal keys can share a Slurm job array."""
        return (
            self.cpus,
            self.memory_mb,
            self.gpus,
            self.time_min,
            tuple(sorted((k, repr(v)) for k, v in self.slurm.items())),
        )


def parse_resources(value: Any, owner: str) -> Resources:
    """A ``Resources`` from a dict (or a Resources, or None); errors name ``owner``."""
    if value is None:
        return Resources()
    if isinstance(value, Resources):
        return value
    if not isinstance(value, Mapping):
        raise TaskDeclarationError(
            f"{owner}: resources must be a dict, got {type(value).__name__} {value!r}"
        )
    unknown = sorted(set(value) - set(_KEYS))
    if unknown:
        raise TaskDeclarationError(
            f"{owner}: unknown resource key(s) {', '.join(map(repr, unknown))}; known: "
            f"{', '.join(_KEYS)} (put other sbatch settings under 'slurm')"
        )
    slurm = value.get("slurm") or {}
    if not isinstance(slurm, Mapping):
        raise TaskDeclarationError(
            f"{owner}: resources['slurm'] must be a dict of sbatch settings, got {slurm!r}"
        )
    own = Resources(
        cpus=_positive_int(value.get("cpus"), "cpus", owner),
        memory_mb=_memory(value.get("memory"), owner),
        gpus=_positive_int(value.get("gpus"), "gpus", owner, zero_ok=True),
        time_min=_minutes(value.get("time"), owner),
    )
    if not slurm:
        return own
    # Any sbatch setting goes under 'slurm' (names submitit does not know pass as they are).
    settings = sbatch_settings(
        slurm, f"{owner}: resources['slurm']", raw_ok=True, error=TaskDeclarationError
    )
    return own.over(task_resources(settings, f"{owner}: resources['slurm']"))


def task_resources(
    settings: Mapping[str, Any],
    owner: str,
    error: Callable[[str], Exception] = TaskDeclarationError,
) -> Resources:
    """``Resources`` from sbatch settings under our names (``sbatch_settings``): time,
    CPUs, memory and a GPU count become fields (an element's time limit adds up its tasks'
    limits, and a task's own needs win over the executor's), the rest stays sbatch settings."""
    rest = dict(settings)
    # (numbers given on the command line arrive as text)
    cpus, gpus = (
        int(v) if isinstance(v, str) and v.strip().isdigit() else v
        for v in (rest.pop("cpus_per_task", None), rest.pop("gpus_per_node", None))
    )
    try:
        return Resources(
            cpus=_positive_int(cpus, "cpus_per_task", owner),
            memory_mb=_memory(rest.pop("mem", None), owner, "mem"),
            gpus=_positive_int(gpus, "gpus_per_node", owner, zero_ok=True) or None,
            time_min=_minutes(rest.pop("time", None), owner, "time"),
            slurm=rest,
        )
    except TaskDeclarationError as e:
        raise error(str(e)) from None


# The parameters of submitit's SlurmExecutor (submitit 1.5.4), our names for sbatch
# settings; names a newer submitit adds are looked up in it when met.
SLURM_NAMES = frozenset(
    (
        "account",
        "additional_parameters",
        "array_parallelism",
        "comment",
        "constraint",
        "cpus_per_gpu",
        "cpus_per_task",
        "dependency",
        "exclude",
        "exclusive",
        "gpus_per_node",
        "gpus_per_task",
        "gres",
        "job_name",
        "mail_type",
        "mail_user",
        "mem",
        "mem_per_cpu",
        "mem_per_gpu",
        "nodelist",
        "nodes",
        "ntasks_per_node",
        "num_gpus",
        "partition",
        "qos",
        "setup",
        "signal_delay_s",
        "srun_args",
        "stderr_to_stdout",
        "teardown",
        "time",
        "use_srun",
        "wckey",
    )
)
# submitit's AutoExecutor names, shared by all its clusters -> the SlurmExecutor's, with
# the type AutoExecutor wants.
AUTO_NAMES: dict[str, tuple[str, type]] = {
    "name": ("job_name", str),
    "timeout_min": ("time", int),
    "mem_gb": ("mem", float),
    "nodes": ("nodes", int),
    "cpus_per_task": ("cpus_per_task", int),
    "gpus_per_node": ("gpus_per_node", int),
    "tasks_per_node": ("ntasks_per_node", int),
    "stderr_to_stdout": ("stderr_to_stdout", bool),
}
# GPU counts: 0 asks for no GPU, so the setting is left out (a node without GPUs takes it).
_GPU_COUNTS = ("gpus_per_node", "gpus_per_task", "num_gpus")


def is_slurm_name(name: str) -> bool:
    """Is ``name`` a parameter of submitit's SlurmExecutor?"""
    if name in SLURM_NAMES:
        return True
    try:
        from submitit.slurm.slurm import _get_default_parameters
    except ImportError:  # pragma: no cover - submitit is a dependency
        return False
    return name in _get_default_parameters()


def sbatch_settings(
    params: Mapping[str, Any],
    owner: str,
    *,
    raw_ok: bool = False,
    error: Callable[[str], Exception] = ValueError,
) -> dict[str, Any]:
    """``params`` under any of submitit's spellings -> the same settings under our names.

    AutoExecutor's shared names are converted as it does (``mem_gb=4`` -> ``mem="4GB"``);
    a Slurm-specific name wins over a shared one (``slurm_time`` over ``timeout_min``), as in
    submitit. ``local_*`` / ``debug_*`` names (submitit's other clusters) are ignored, as
    AutoExecutor ignores them on Slurm. A GPU count of 0 is left out. ``raw_ok``: a name
    submitit does not know passes as a raw sbatch option (else it is an error, naming the
    spellings that are known).
    """
    shared: dict[str, Any] = {}
    specific: dict[str, Any] = {}
    spelled: dict[str, str] = {}  # our name -> how it was written (for conflicts)
    unknown: list[str] = []
    for key, value in params.items():
        k = str(key)
        bare = k[6:] if k.startswith("slurm_") else None
        if k in AUTO_NAMES or (bare is not None and bare in AUTO_NAMES):
            ours, kind = AUTO_NAMES[bare if bare is not None and k not in AUTO_NAMES else k]
            target = specific if bare is not None and k not in AUTO_NAMES else shared
            if k in AUTO_NAMES and is_slurm_name(k):
                target = shared  # (cpus_per_task, gpus_per_node, nodes: same either way)
            converted = _auto_value(k, value, kind, owner, error)
        elif is_slurm_name(k):
            ours, target, converted = k, specific, value
        elif bare is not None and is_slurm_name(bare):
            ours, target, converted = bare, specific, value
        elif k.split("_", 1)[0] in ("local", "debug") and "_" in k:
            continue  # for submitit's other clusters: ignored here, as AutoExecutor does
        elif raw_ok and bare is None:
            ours, target, converted = k, specific, value
        else:
            unknown.append(k)
            continue
        if ours in target and target[ours] != converted:
            raise error(
                f"{owner}: {spelled[ours]}={target[ours]!r} and {k}={value!r} set the "
                f"same sbatch setting ({ours}); give one"
            )
        target[ours] = converted
        spelled[ours] = k
    if unknown:
        import difflib

        spellings = sorted(SLURM_NAMES | {f"slurm_{n}" for n in SLURM_NAMES} | set(AUTO_NAMES))
        close = {k: m[0] for k in unknown if (m := difflib.get_close_matches(k, spellings, 1))}
        hint = "".join(f" ({k!r}: did you mean {m!r}?)" for k, m in sorted(close.items()))
        raise error(
            f"{owner}: unknown sbatch setting(s) {sorted(unknown)}{hint}; known are submitit's "
            f"names: its SlurmExecutor's ({', '.join(sorted(SLURM_NAMES))}), each also with a "
            f"'slurm_' prefix as AutoExecutor takes them (slurm_partition, slurm_mem, ...), "
            f"and AutoExecutor's shared ones ({', '.join(AUTO_NAMES)})"
        )
    settings = {**shared, **specific}
    for k in _GPU_COUNTS:
        if k in settings and _is_zero(settings[k]):
            del settings[k]
    return settings


def _auto_value(
    key: str, value: Any, kind: type, owner: str, error: Callable[[str], Exception]
) -> Any:
    """An AutoExecutor setting's value as submitit would pass it to sbatch (numbers written
    on a command line arrive as text)."""
    try:
        if kind is bool:
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "0", "false", "no"):
                value = value.lower() in ("1", "true", "yes")
            if not isinstance(value, bool):
                raise ValueError
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, (int, str)):
                raise ValueError
            value = int(value)
        elif kind is float:
            if isinstance(value, bool):
                raise ValueError
            value = float(value)
            # submitit's SlurmExecutor writes GB as "<n>GB" (or MB for a fraction)
            return f"{int(value)}GB" if value == int(value) else f"{int(value * 1024)}MB"
        else:
            value = str(value)
    except (TypeError, ValueError):
        raise error(f"{owner}: {key} must be {kind.__name__}, got {value!r}") from None
    return value


def _is_zero(value: Any) -> bool:
    try:
        return int(value) == 0
    except (TypeError, ValueError):
        return False


def _positive_int(v: Any, name: str, owner: str, zero_ok: bool = False) -> int | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < (0 if zero_ok else 1):
        raise TaskDeclarationError(
            f"{owner}: resources[{name!r}] must be a "
            f"{'non-negative' if zero_ok else 'positive'} int, got {v!r}"
        )
    return v


def _memory(v: Any, owner: str, name: str = "resources['memory']") -> int | None:
    if v is None:
        return None
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        return v
    m = _MEM.match(v) if isinstance(v, str) else None
    if not m:
        raise TaskDeclarationError(
            f"{owner}: {name} must be MB as an int or a string like '512M' or '4G', got {v!r}"
        )
    scale = {"": 1, "K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}[m.group(2).upper()]
    return max(1, int(float(m.group(1)) * scale))


def _minutes(v: Any, owner: str, name: str = "resources['time']") -> int | None:
    if v is None:
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
        return max(1, int(round(v)))
    if isinstance(v, str) and v.strip().isdigit() and int(v) > 0:
        return int(v)
    m = _TIME.match(v.strip()) if isinstance(v, str) else None
    if not m:
        raise TaskDeclarationError(
            f"{owner}: {name} must be minutes or 'HH:MM:SS' / 'D-HH:MM:SS', got {v!r}"
        )
    days, hours, mins, secs = (int(x) if x else 0 for x in m.groups())
    total = days * 1440 + hours * 60 + mins + (1 if secs else 0)
    return max(1, total)
