"""Where the Slurm executor's jobs run: a real Slurm cluster (sbatch, squeue, sacct,
scancel), or submitit's local backend (local processes). Each backend is a small object
with the operations that differ between the two; the executor itself does not ask which
one it has.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .slurm_journal import Entry

# Slurm states after which a job will not write anything any more.
TERMINAL = {
    "COMPLETED",
    "FAILED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "CANCELLED",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "REVOKED",
    "SPECIAL_EXIT",
}
RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING"}


@dataclass
class Element:
    """One array element (or one local job): a Slurm job running one or more of the
    driver's jobs (each a task, or a chain of tasks), one after the other."""

    job_id: str
    folder: Path
    jobs: list[list[int]]  # task indices, job by job, in the order they run
    fps: dict[int, str]  # task index -> fingerprint (results are matched by it)
    state: str = "PENDING"
    started: bool = False
    since: float = field(default_factory=time.monotonic)  # last time Slurm knew it
    terminal_since: float | None = None
    handle: Any = None  # submitit Job (local backend: the process lives in it)
    _paths: Any = None

    @property
    def indices(self) -> list[int]:
        return [i for job in self.jobs for i in job]

    @property
    def base_id(self) -> str:
        """The array's id (what sbatch printed, and what scancel takes)."""
        return self.job_id.split("_")[0]

    def paths(self) -> Any:
        if self._paths is None:
            from submitit.core.utils import JobPaths

            self._paths = JobPaths(self.folder, job_id=self.job_id, task_id=0)
        return self._paths


@dataclass
class Partition:
    """What sinfo says of a partition: any GPUs, its time limit (None: unlimited), CPUs."""

    gpus: bool
    max_minutes: int | None
    cpus: int


class Cluster:
    """What differs between backends. ``calls`` counts the commands run against the
    cluster (the executor shows it as ``SubmitItExecutor.calls``)."""

    name = ""
    #: Does the backend queue jobs, so that any number may be submitted at once?
    queues = True

    def __init__(self, calls: dict[str, int]) -> None:
        self.calls = calls

    def prepare_reattach(self, attachable: dict[str, Entry]) -> None:
        """Before re-attaching to the jobs a dead driver left (``attachable``)."""

    def state_left(self, el: Element) -> str | None:
        """The state of a job a dead driver left, or None if it is gone."""
        raise NotImplementedError

    def due(self, now: float) -> bool:
        """Is it time to ask the cluster for the states of the jobs?"""
        return True

    def states(self, elements: list[Element]) -> dict[str, str] | None:
        """State by job id (a job missing is not known); None if the cluster could not
        be asked (then a missing job is not a vanished one)."""
        raise NotImplementedError

    def polled(self, now: float, changed: bool) -> None:
        """After ``states``: whether anything changed since the last poll."""

    def next_wake(self) -> float:
        """When (``time.monotonic()``) the next ``states`` is due."""
        return float("inf")

    def cancel(self, elements: list[Element]) -> bool:
        """Stop these jobs; False if that could not be done (they may still run)."""
        raise NotImplementedError

    def make_executor(
        self, folder: Path, params: dict[str, Any], time_min: int, python: str | None
    ) -> Any:
        """A submitit executor for one submission (an array) into ``folder``;
        ``params``: SlurmExecutor parameters, ``time_min``: the element's time limit."""
        raise NotImplementedError

    def submitted(self, handles: list[Any]) -> None:
        """Count one submission that made ``handles``."""

    def handle(self, handle: Any) -> Any:
        """What an Element keeps of a submitit Job (only the local backend needs it)."""
        return None

    def gpu_problem(self, params: dict[str, Any]) -> str | None:
        """Why a job with ``params`` asking for GPUs cannot get them here, or None."""
        return None

    def max_time(self, params: dict[str, Any]) -> int | None:
        """The longest time limit (minutes) a job with ``params`` may ask, if known."""
        return None

    def slots(self, params: dict[str, Any]) -> int | None:
        """How many jobs with ``params`` can run at once at most, if known."""
        return None


class SlurmCluster(Cluster):
    """A real Slurm: one ``squeue`` for all tracked jobs per poll, ``sacct`` only for those
    squeue no longer knows; polls back off while nothing changes."""

    name = "slurm"

    def __init__(
        self, calls: dict[str, int], poll_interval: float, max_poll_interval: float
    ) -> None:
        super().__init__(calls)
        self.poll_interval = poll_interval
        self.max_poll_interval = max(poll_interval, max_poll_interval)
        self._interval = poll_interval
        self._next = 0.0
        # What Slurm says of the jobs a dead driver left, asked once for all of them.
        self._left: dict[str, str] | None = {}
        self._partitions: dict[str, Partition] | None = None
        self._default_partition = ""

    def prepare_reattach(self, attachable: dict[str, Entry]) -> None:
        self._resolve_missing_ids(attachable)
        ids = sorted({e.id for e in attachable.values() if e.id})
        self._left = self._states(ids) if ids else {}

    def state_left(self, el: Element) -> str | None:
        # Slurm could not be asked: assume it still runs (never run the work twice).
        return self._left.get(el.job_id) if self._left is not None else "PENDING"

    def _resolve_missing_ids(self, attachable: dict[str, Entry]) -> None:
        """Intents journalled before a driver died in sbatch: find their ids by job name."""
        missing = {e.token for e in attachable.values() if not e.id}
        if not missing:
            return
        got = self.run(["squeue", "--me", "-h", "-t", "all", "-o", "%F|%j"], "squeue")
        base_of: dict[str, str] = {}
        for line in (got[1] if got else "").splitlines():
            jid, _, name = line.partition("|")
            token = name.rpartition("-")[2]  # names are "<prefix>-<token>"
            if token in missing:
                base_of[token] = jid.strip()
        for e in attachable.values():
            base = base_of.get(e.token)
            if not e.id and base:
                e.id = f"{base}_{e.pos}" if e.n > 1 else base

    def due(self, now: float) -> bool:
        return now >= self._next

    def states(self, elements: list[Element]) -> dict[str, str] | None:
        return self._states([el.job_id for el in elements])

    def polled(self, now: float, changed: bool) -> None:
        # Back off while nothing changes; a result file still ends a job at once.
        self._interval = (
            self.poll_interval if changed else min(self.max_poll_interval, self._interval * 2)
        )
        self._next = now + self._interval

    def next_wake(self) -> float:
        return self._next

    def cancel(self, elements: list[Element]) -> bool:
        ids = sorted({el.base_id for el in elements})
        return bool(ids) and self.run(["scancel", *ids], "scancel") is not None

    def make_executor(
        self, folder: Path, params: dict[str, Any], time_min: int, python: str | None
    ) -> Any:
        from submitit.slurm.slurm import SlurmExecutor

        ex = SlurmExecutor(folder=folder, python=python)
        ex.update_parameters(**params, time=time_min)
        return ex

    def submitted(self, handles: list[Any]) -> None:
        self.calls["sbatch"] = self.calls.get("sbatch", 0) + 1

    def _partition(self, params: dict[str, Any]) -> str:
        """The partition a job with ``params`` goes to (after ``_partition_info`` ran)."""
        extra = params.get("additional_parameters") or {}
        return str(
            params.get("partition")
            or extra.get("partition")
            or os.environ.get("SBATCH_PARTITION")
            or self._default_partition
        )

    def _partition_info(self, params: dict[str, Any]) -> Partition | None:
        """What sinfo says of the partition a job with ``params`` goes to; None if it
        cannot say. sinfo runs once per run, and only if asked."""
        if self._partitions is None:
            self._partitions = {}
            got = self.run(["sinfo", "-h", "-o", "%P|%G|%l|%C"], "sinfo")
            for line in (got[1] if got else "").splitlines():
                name, gres, limit, cpus = (line.strip().split("|") + ["", "", ""])[:4]
                if name.endswith("*"):  # the default partition
                    name = name[:-1]
                    self._default_partition = name
                # (one line per group of nodes alike: add them up)
                part = self._partitions.setdefault(
                    name, Partition(False, _slurm_minutes(limit.strip()), 0)
                )
                part.gpus = part.gpus or "gpu" in gres.lower()
                total = cpus.strip().rpartition("/")[2]  # allocated/idle/other/total
                part.cpus += int(total) if total.isdigit() else 0
        return self._partitions.get(self._partition(params))

    def gpu_problem(self, params: dict[str, Any]) -> str | None:
        info = self._partition_info(params)
        if info is None or info.gpus:
            return None  # sinfo cannot tell: let sbatch decide
        return (
            f"the job asks for GPUs ({gpu_request(params)}) but no node of partition "
            f"{self._partition(params)!r} has any (sinfo shows no gpu GRES); choose a "
            "partition with GPUs (slurm_partition=...) or ask for none"
        )

    def max_time(self, params: dict[str, Any]) -> int | None:
        info = self._partition_info(params)
        return info.max_minutes if info is not None else None

    def slots(self, params: dict[str, Any]) -> int | None:
        info = self._partition_info(params)
        if info is None or info.cpus <= 0:
            return None
        asked = params.get("cpus_per_task")
        each = (
            int(asked) if isinstance(asked, int) else int(str(asked)) if str(asked).isdigit() else 1
        )
        return max(1, info.cpus // max(1, each))

    def _states(self, job_ids: list[str]) -> dict[str, str] | None:
        """Slurm state of each element id: squeue for all of them, sacct for the rest."""
        bases = sorted({j.split("_")[0] for j in job_ids})
        states: dict[str, str] = {}
        got = self.run(
            ["squeue", "-r", "-h", "-t", "all", "-o", "%i|%T", "-j", ",".join(bases)], "squeue"
        )
        if got is None:
            return None
        for line in got[1].splitlines():  # (ids it forgot are no failure: see run)
            jid, _, st = line.partition("|")
            if st:
                states[jid.strip()] = st.strip().split()[0]
        left = sorted({j.split("_")[0] for j in job_ids if j not in states})
        if left:
            got = self.run(
                ["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(left)], "sacct"
            )
            for line in (got[1] if got and got[0] == 0 else "").splitlines():
                jid, _, st = line.partition("|")
                if st and "[" not in jid:
                    states.setdefault(jid.strip(), st.strip().split()[0])
        return states

    def run(self, cmd: list[str], kind: str) -> tuple[int, str, str] | None:
        """Run a Slurm command: (return code, stdout, stderr), or None if it could not run
        (missing, timed out) or failed for another reason than unknown job ids."""
        self.calls[kind] = self.calls.get(kind, 0) + 1
        try:
            r = subprocess.run(
                cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            print(f"warning: {' '.join(cmd[:2])} failed: {e}", file=sys.stderr)
            return None
        if r.returncode != 0 and "Invalid job id" not in r.stderr:
            print(f"warning: {' '.join(cmd[:2])} failed: {r.stderr.strip()[:200]}", file=sys.stderr)
            return None
        return r.returncode, r.stdout, r.stderr


class LocalCluster(Cluster):
    """submitit's local backend: each element is a local process, asked directly."""

    name = "local"
    queues = False  # every element is a process now: the executor keeps the rest back

    def state_left(self, el: Element) -> str | None:
        return _local_state(el)

    def states(self, elements: list[Element]) -> dict[str, str] | None:
        return {el.job_id: _local_state(el) for el in elements}

    def cancel(self, elements: list[Element]) -> bool:
        for el in elements:
            _stop_local(el)
        return True

    def make_executor(
        self, folder: Path, params: dict[str, Any], time_min: int, python: str | None
    ) -> Any:
        import submitit

        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=time_min)
        return ex

    def submitted(self, handles: list[Any]) -> None:
        # (The local backend starts one process per element.)
        self.calls["sbatch"] = self.calls.get("sbatch", 0) + len(handles)

    def handle(self, handle: Any) -> Any:
        return handle


def gpu_request(params: dict[str, Any]) -> str:
    """The GPU settings in SlurmExecutor ``params`` that ask for at least one GPU, as
    ``name=value`` text ("" if none does)."""
    asks = []
    extra = params.get("additional_parameters") or {}
    for source in (params, extra):
        for key, value in source.items():
            k = key.replace("-", "_")
            if k in ("gpus_per_node", "gpus_per_task", "num_gpus", "gpus") and _count(value) != 0:
                asks.append(f"{key}={value}")
            elif k == "gres" and "gpu" in str(value) and not str(value).endswith(":0"):
                asks.append(f"{key}={value}")
    return ", ".join(asks)


def _count(value: Any) -> int | None:
    """The number in a GPU count ("2", 2, "a100:2"); None if there is none."""
    text = str(value).rpartition(":")[2]
    return int(text) if text.isdigit() else None


def _slurm_minutes(text: str) -> int | None:
    """Minutes in a Slurm time limit ("1-00:00:00", "2:00:00", "30:00", "infinite")."""
    days = 0
    if "-" in text:
        d, _, text = text.partition("-")
        if not d.isdigit():
            return None
        days = int(d)
    parts = text.split(":")
    if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3:
        return None
    nums = [int(p) for p in parts]
    if len(nums) == 3:
        h, m, s = nums
    elif len(nums) == 2:
        h, m, s = 0, nums[0], nums[1]
    else:
        h, m, s = 0, nums[0], 0
    return days * 1440 + h * 60 + m + (1 if s else 0)


def _local_state(el: Element) -> str:
    """The state of a job of the local backend, ours or one a dead driver started."""
    if el.handle is not None:
        info = el.handle.get_info()["jobState"]
        return {"RUNNING": "RUNNING", "FINISHED": "COMPLETED", "INTERRUPTED": "CANCELLED"}.get(
            info, "UNKNOWN"
        )
    return "RUNNING" if _local_pid(el) is not None else "CANCELLED"


def _local_pid(el: Element) -> int | None:
    """The pid of a local job's controller (the job id) if it still runs that job."""
    try:
        pid = int(el.job_id)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return pid if str(el.folder).encode() in f.read() else None
    except (OSError, ValueError):
        return None


def _stop_local(el: Element) -> None:
    """Stop a local job, ours (through submitit) or one a dead driver started (by pid)."""
    if el.handle is not None:
        el.handle.cancel(check=False)
        return
    pid = _local_pid(el)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGINT)  # what submitit's LocalJob.cancel sends
        except OSError:
            pass
