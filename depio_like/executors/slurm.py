"""Run tasks as Slurm jobs through submitit, or through submitit's local backend.

Design (why, in short):
- Tasks are submitted when their dependencies are done, not chained with ``afterok``:
  the driver must check the cache (a rerun upstream may leave its product unchanged, and
  then the downstream task is skipped), which only it can do; and a failed ``afterok``
  parent leaves children PENDING forever (DependencyNeverSatisfied) instead of DEPFAILED.
- Ready tasks with the same function and resources go out as one job array (one sbatch),
  at most ``max_array_size`` elements, ``array_parallelism`` running at once; with
  ``tasks_per_job > 1`` each element runs several tasks, so hundreds of tiny tasks do not
  pay a Python start-up each.
- State comes from one ``squeue`` call for all tracked jobs per ``poll_interval`` (squeue
  has no accounting lag), ``sacct`` only for jobs squeue no longer knows. A job is done
  when its result file appears; a job Slurm killed (TIMEOUT, OUT_OF_MEMORY, NODE_FAIL,
  CANCELLED) never writes one, and is failed from its Slurm state.
- Every submission is journalled in ``<state dir>/slurm/jobs.jsonl`` (intent before sbatch,
  ids right after, "collected" once its result is recorded). A rerun after the driver died
  re-attaches to those jobs instead of submitting the same work again. Each submission
  has its own folder, so a job id reused after Slurm's state was reset can never be
  mistaken for ours: the result file is looked up in that folder.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..fs import atomic_write
from ..resources import Resources
from .base import Executor, Job, Outcome, RunContext, Started
from .slurm_job import payload, run_tasks, unpicklable

# Slurm states after which a job will not write anything any more.
_TERMINAL = {"COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "CANCELLED", "NODE_FAIL",
             "PREEMPTED", "BOOT_FAIL", "DEADLINE", "REVOKED", "SPECIAL_EXIT"}
_RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING"}
# A result file can appear a little after Slurm reports the end (shared filesystems).
_RESULT_GRACE_S = 10.0
# A job neither squeue nor sacct knows yet (accounting lags) is given this long.
_VANISHED_S = 300.0


@dataclass
class _Element:
    """One array element (or one local job): a Slurm job running one or more of our jobs
    (each a task, or a chain of tasks), one after the other."""

    job_id: str
    folder: Path
    jobs: list[list[int]]          # task indices, job by job, in the order they run
    fps: dict[int, str]            # task index -> fingerprint (results are matched by it)
    state: str = "PENDING"
    started: bool = False
    since: float = field(default_factory=time.monotonic)  # last time Slurm knew it
    terminal_since: float | None = None
    handle: Any = None  # submitit Job (local backend: the process lives in it)
    _paths: Any = None

    @property
    def indices(self) -> list[int]:
        return [i for job in self.jobs for i in job]

    def paths(self) -> Any:
        if self._paths is None:
            from submitit.core.utils import JobPaths

            self._paths = JobPaths(self.folder, job_id=self.job_id, task_id=0)
        return self._paths


class SubmitItExecutor(Executor):
    """Runs tasks as Slurm jobs (``cluster="slurm"``) or as local subprocesses through
    submitit's local backend (``cluster="local"``); ``None`` picks Slurm when ``sbatch``
    is on the PATH.

    ``folder``: where submitit keeps job files and logs (default: ``<state dir>/slurm``;
    must be on a filesystem the compute nodes share). ``parameters``: sbatch settings for
    every job (``partition``, ``account``, ``qos``, ``time`` in minutes, ``setup`` lines,
    ... any of submitit's SlurmExecutor parameters). Per-task needs come from the task's
    ``resources``. ``retries``: resubmissions of a failed task (a task's own ``retries``
    wins). ``default_time_min``: the time limit when neither says one (Slurm enforces it).
    """

    columns = ("Slurm ID", "Slurm Status")
    queues = True
    reattaches = True
    takes_jobs = True

    def __init__(self, folder: str | os.PathLike | None = None,
                 parameters: Mapping[str, Any] | None = None, *, cluster: str | None = None,
                 retries: int = 0, max_array_size: int = 500, array_parallelism: int = 64,
                 tasks_per_job: int = 1, poll_interval: float = 2.0,
                 max_poll_interval: float = 10.0,
                 default_time_min: int = 60, python: str | None = None) -> None:
        if cluster is None:
            cluster = "slurm" if shutil.which("sbatch") else "local"
        if cluster not in ("slurm", "local"):
            raise ValueError(f"SubmitItExecutor(cluster={cluster!r}): use 'slurm' or 'local'")
        self.cluster = cluster
        self.folder = Path(folder).absolute() if folder is not None else None
        self.parameters = dict(parameters or {})
        if cluster == "slurm":
            from submitit.slurm.slurm import _get_default_parameters

            unknown = sorted(set(self.parameters) - set(_get_default_parameters()))
            if unknown:
                raise ValueError(f"SubmitItExecutor(parameters=...): unknown sbatch setting(s) "
                                 f"{unknown}; known: {sorted(_get_default_parameters())}")
        for name, v in (("max_array_size", max_array_size), ("array_parallelism", array_parallelism),
                        ("tasks_per_job", tasks_per_job)):
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"SubmitItExecutor({name}={v!r}): need an int >= 1")
        self.retries = retries
        self.max_array_size = max_array_size
        self.array_parallelism = array_parallelism
        self.tasks_per_job = tasks_per_job
        self.poll_interval = poll_interval
        self.max_poll_interval = max(poll_interval, max_poll_interval)
        self.default_time_min = default_time_min
        self.python = python
        #: Calls made to the cluster during the last run: sbatch, squeue, sacct, scancel.
        self.calls: dict[str, int] = {}

    # -- run lifecycle ---------------------------------------------------------------------
    def start(self, tasks: Sequence[Any], context: RunContext) -> None:
        self._parallelism = context.jobs or self.array_parallelism
        self._tasks = tasks
        self._base = self.folder or Path(context.state_dir) / "slurm"
        self._state_dir = context.state_dir
        self._base.mkdir(parents=True, exist_ok=True)
        self._journal = _Journal(Path(context.state_dir) / "slurm" / "jobs.jsonl")
        self._queue: list[Job] = []
        self._elements: dict[str, _Element] = {}      # job id -> element
        self._of_task: dict[int, _Element] = {}       # task index -> element
        self._ready: list[Outcome | Started] = []     # events found outside wait()
        self._next_squeue = 0.0
        self._next_files = 0.0
        self._interval = self.poll_interval
        self._next_pending = 0.0
        self.calls = {"sbatch": 0, "squeue": 0, "sacct": 0, "scancel": 0}
        self._attachable = self._journal.load()
        # What Slurm says of the jobs a dead driver left, asked once for all of them.
        self._left_states: dict[str, str] | None = {}
        if self._attachable and self.cluster == "slurm":
            self._resolve_missing_ids()
            ids = sorted({r["id"] for r in self._attachable.values() if r.get("id")})
            self._left_states = self._states(ids) if ids else {}

    def free_slots(self) -> int:
        if self.cluster == "slurm":
            return 1_000_000  # Slurm queues; array_parallelism limits what runs at once
        # Locally every element is a process now: array_parallelism of them at most.
        queued = -(-len(self._queue) // self.tasks_per_job)
        return (self._parallelism - len(self._elements) - queued) * self.tasks_per_job

    def submit(self, job: Job) -> None:
        if not self._reattach(job):
            self._queue.append(job)

    def cells(self, index: int) -> Sequence[str]:
        el = self._of_task.get(index)
        return (el.job_id, el.state) if el is not None else ("", "")

    def wait(self, timeout: float | None) -> list[Outcome | Started]:
        if self._queue:
            self._submit_queued()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            events, self._ready = self._ready, []
            events += self._poll()
            if events or not self._elements:
                return events
            now = time.monotonic()
            wake = min(self._next_files, self._next_squeue if self.cluster == "slurm" else 1e18)
            if deadline is not None:
                if now >= deadline:
                    return []
                wake = min(wake, deadline)
            time.sleep(max(0.0, min(wake - now, 1.0)))

    def cancel(self) -> list[int]:
        elements = list(self._elements.values())
        ids = sorted({el.job_id.split("_")[0] for el in elements})
        indices = sorted({i for el in elements for i in el.indices})
        if self.cluster == "slurm":
            done = bool(ids) and self._cluster(["scancel", *ids], "scancel") is not None
        else:
            for el in elements:
                _stop_local(el)
            done = True
        if done:
            for el in elements:
                el.state = "CANCELLED"
                self._journal.collected(list(el.fps.values()))
            if ids:  # (local jobs too: this executor calls every job a Slurm job)
                print(f"Cancelled Slurm job(s) {', '.join(ids)} ({len(indices)} task(s)).",
                      file=sys.stderr, flush=True)
        elif ids:  # kept in the journal: the next run re-attaches instead of duplicating
            print(f"Could not cancel Slurm job(s) {', '.join(ids)}; cancel them with scancel. "
                  "The next run picks up their results.", file=sys.stderr, flush=True)
        self._elements.clear()
        self._queue.clear()
        return indices

    def shutdown(self) -> None:
        self._journal.close()

    # -- submission ------------------------------------------------------------------------
    def _submit_queued(self) -> None:
        groups: dict[tuple, tuple[Resources, list[Job]]] = {}
        for job in self._queue:
            res = self._resources(job)
            key = (id(job.steps[0].task.func), res.key())
            groups.setdefault(key, (res, []))[1].append(job)
        self._queue = []
        for res, jobs in groups.values():
            chunks = [jobs[k:k + self.tasks_per_job] for k in range(0, len(jobs), self.tasks_per_job)]
            for a in range(0, len(chunks), self.max_array_size):
                self._submit_array(chunks[a:a + self.max_array_size], res)

    def _submit_array(self, chunks: list[list[Job]], res: Resources) -> None:
        import cloudpickle

        payloads: list[bytes] = []
        sendable: list[list[Job]] = []
        for chunk in chunks:
            items = [payload(job) for job in chunk]
            try:
                # Pickled here, unpickled by run_tasks after it has set sys.path: the tasks'
                # modules may be importable only from the driver's sys.path.
                payloads.append(cloudpickle.dumps(items))
                sendable.append(chunk)
                continue
            except Exception:  # noqa: BLE001 - find which job cannot go, and say why
                pass
            ok = []
            for job, item in zip(chunk, items):
                problem = unpicklable(cloudpickle, item, job)
                if problem:
                    self._ready.append(Outcome(job.index, False, error=problem))
                else:
                    ok.append((job, item))
            if ok:
                payloads.append(cloudpickle.dumps([item for _, item in ok]))
                sendable.append([job for job, _ in ok])
        if not payloads:
            return
        token = uuid.uuid4().hex[:12]
        folder = self._base / token
        fps = [[st.fingerprint for j in chunk for st in j.steps] for chunk in sendable]
        self._journal.intent(token, str(folder), fps)
        value_dir = os.path.join(self._state_dir, "values")
        try:
            # An element runs its jobs one after the other: its time limit is theirs added up.
            longest = max(len(chunk) for chunk in sendable)
            executor = self._make_executor(folder, res, token, longest)
            handles = executor.map_array(run_tasks, [list(sys.path)] * len(payloads), payloads,
                                         [value_dir] * len(payloads))
        except Exception as e:  # sbatch refused (bad partition, limits, ...)
            msg = f"submission to {self.cluster} failed: {e}"
            for chunk in sendable:
                for job in chunk:
                    self._ready.append(Outcome(job.index, False, error=msg))
            self._journal.collected([fp for chunk in fps for fp in chunk])
            return
        self.calls["sbatch"] += 1 if self.cluster == "slurm" else len(handles)
        self._journal.submitted(token, [h.job_id for h in handles])
        for handle, chunk in zip(handles, sendable):
            el = _Element(handle.job_id, folder, [j.indices for j in chunk],
                          {st.index: st.fingerprint for j in chunk for st in j.steps},
                          handle=handle if self.cluster == "local" else None)
            self._track(el)

    def _resources(self, job: Job) -> Resources:
        """What a job needs: the most any of its tasks needs, and their times added up (a
        task that names none counts the executor's ``time`` or ``default_time_min``)."""
        rs = [st.task.resources for st in job.steps]
        default = self.parameters.get("time")
        if not isinstance(default, (int, float)):
            default = self.default_time_min
        slurm: dict[str, Any] = {}
        for r in rs:
            slurm.update(r.slurm)
        return Resources(
            cpus=max((r.cpus for r in rs if r.cpus), default=None),
            memory_mb=max((r.memory_mb for r in rs if r.memory_mb), default=None),
            gpus=max((r.gpus for r in rs if r.gpus), default=None),
            time_min=int(sum(r.time_min or default for r in rs)),
            slurm=slurm)

    def _make_executor(self, folder: Path, res: Resources, token: str, jobs_each: int) -> Any:
        time_min = (res.time_min or self.default_time_min) * jobs_each
        if self.cluster == "local":
            import submitit

            ex = submitit.LocalExecutor(folder=folder)
            ex.update_parameters(timeout_min=time_min)
            return ex
        from submitit.slurm.slurm import SlurmExecutor

        ex = SlurmExecutor(folder=folder, python=self.python)
        params: dict[str, Any] = {"job_name": f"depio_like-{token}", "time": time_min,
                                  "array_parallelism": self._parallelism}
        # submitit warns the job this long before its time limit (default 90 s, more than a
        # short limit): keep it a tenth of the limit, 10 to 90 s.
        params["signal_delay_s"] = int(min(90, max(10, time_min * 6)))
        params.update({k: v for k, v in self.parameters.items() if k != "time"})
        if res.cpus:
            params["cpus_per_task"] = res.cpus
        if res.memory_mb:
            params["mem"] = f"{res.memory_mb}M"  # SlurmExecutor passes it to sbatch as is
        if res.gpus:
            params["gres"] = f"gpu:{res.gpus}"
        if res.slurm:
            extra = dict(params.get("additional_parameters") or {})
            extra.update(res.slurm)
            params["additional_parameters"] = extra
        ex.update_parameters(**params)
        return ex

    def _track(self, el: _Element) -> None:
        self._elements[el.job_id] = el
        for i in el.indices:
            self._of_task[i] = el

    # -- re-attaching after a lost driver --------------------------------------------------
    def _reattach(self, job: Job) -> bool:
        """Take over the job a dead driver submitted for exactly this work, if it may still
        bring a result; every task of the job must match (a changed step: submit afresh)."""
        recs = [self._attachable.pop(st.fingerprint, None) for st in job.steps]
        ids = {(r.get("id") or None) if r else None for r in recs}
        if len(ids) != 1 or None in ids:
            self._journal.collected([st.fingerprint for st, r in zip(job.steps, recs) if r])
            return False
        jid, rec = ids.pop(), recs[0]
        fps = {st.index: st.fingerprint for st in job.steps}
        el = self._elements.get(jid)
        if el is not None:  # another job of the same array element already re-attached
            el.jobs.append(job.indices)
            el.fps.update(fps)
            for i in job.indices:
                self._of_task[i] = el
            if el.started:
                self._ready += [Started(i) for i in job.indices]
            return True
        el = _Element(jid, Path(rec["folder"]), [job.indices], fps)
        if el.paths().result_pickle.exists():
            self._track(el)
            return True
        if self.cluster == "slurm":
            known = self._left_states
            # Slurm could not be asked: assume it still runs (never run the work twice).
            state = known.get(jid) if known is not None else "PENDING"
        else:
            state = _local_state(el)
        if state is not None and state not in _TERMINAL:
            el.state = state
            self._track(el)
            return True
        self._journal.collected(list(fps.values()))  # gone without a result: submit afresh
        return False

    def _resolve_missing_ids(self) -> None:
        """Intents journalled before a driver died in sbatch: find their ids by job name."""
        missing = {r["token"] for r in self._attachable.values() if not r.get("id")}
        if not missing:
            return
        got = self._cluster(["squeue", "--me", "-h", "-t", "all", "-o", "%F|%j"], "squeue")
        base_of: dict[str, str] = {}
        for line in (got[1] if got else "").splitlines():
            jid, _, name = line.partition("|")
            if name.startswith("depio_like-") and name[11:] in missing:
                base_of[name[11:]] = jid.strip()
        for rec in self._attachable.values():
            base = base_of.get(rec["token"])
            if not rec.get("id") and base:
                rec["id"] = f"{base}_{rec['pos']}" if rec["n"] > 1 else base

    # -- polling ---------------------------------------------------------------------------
    def _poll(self) -> list[Outcome | Started]:
        now = time.monotonic()
        events: list[Outcome | Started] = []
        if now >= self._next_files:
            self._next_files = now + min(0.5, self.poll_interval)
            # One listing per submission folder, not a stat per job (shared filesystems do
            # not like a storm of stats); jobs Slurm last said were pending, every 2 s.
            all_of_them = now >= self._next_pending
            if all_of_them:
                self._next_pending = now + 2.0
            listed: dict[Path, set[str]] = {}
            for el in list(self._elements.values()):
                if not all_of_them and el.state == "PENDING":
                    continue
                names = listed.get(el.folder)
                if names is None:
                    try:
                        names = listed[el.folder] = set(os.listdir(el.folder))
                    except OSError:
                        names = listed[el.folder] = set()
                if el.paths().result_pickle.name in names:
                    events += self._collect(el, now)
        if self.cluster == "slurm" and self._elements and now >= self._next_squeue:
            before = {jid: el.state for jid, el in self._elements.items()}
            states = self._states(list(self._elements))
            if states is not None:  # else Slurm did not answer: ask again next time
                for el in list(self._elements.values()):
                    events += self._update(el, states.get(el.job_id), now)
            # Back off while nothing changes; a result file still ends a job at once.
            changed = events or any(el.state != before.get(jid)
                                    for jid, el in self._elements.items())
            self._interval = self.poll_interval if changed else \
                min(self.max_poll_interval, self._interval * 2)
            self._next_squeue = now + self._interval
        elif self.cluster == "local":
            for el in list(self._elements.values()):
                events += self._update(el, _local_state(el), now)
        return events

    def _update(self, el: _Element, state: str | None, now: float) -> list[Outcome | Started]:
        if el.job_id not in self._elements:
            return []
        if state is None:
            if now - el.since > _VANISHED_S:
                return self._fail(el, "the job is unknown to Slurm (squeue and sacct) for "
                                      f"{_VANISHED_S:.0f} s")
            return []
        el.since = now
        el.state = state
        events: list[Outcome | Started] = []
        if not el.started and (state in _RUNNING or state in _TERMINAL):
            el.started = True
            events += [Started(i) for i in el.indices]
        if state in _TERMINAL:
            if el.paths().result_pickle.exists():
                return events + self._collect(el, now)
            el.terminal_since = el.terminal_since or now
            if state == "COMPLETED":
                if now - el.terminal_since >= _RESULT_GRACE_S:
                    # (The local backend says COMPLETED of a job whose process died.)
                    events += self._fail(el, "the job ended without a result: its process "
                                             "died (a crash, os._exit, the out-of-memory killer)")
            elif now - el.terminal_since >= 2.0:
                events += self._fail(el, f"Slurm ended the job: {state}")
        return events

    def _collect(self, el: _Element, now: float) -> list[Outcome | Started]:
        paths = el.paths()
        events: list[Outcome | Started] = []
        if not el.started:
            el.started = True
            events += [Started(i) for i in el.indices]
        try:
            with open(paths.result_pickle, "rb") as f:
                kind, value = pickle.load(f)
        except Exception as e:  # noqa: BLE001 - a torn or foreign file
            el.terminal_since = el.terminal_since or now  # maybe still arriving: wait a bit
            if now - el.terminal_since < _RESULT_GRACE_S:
                return events
            return events + self._fail(el, f"unreadable result file {paths.result_pickle}: {e}")
        self._forget(el)
        if el.state not in _TERMINAL:
            el.state = "COMPLETED" if kind == "success" else "FAILED"
        if kind != "success":
            return events + self._failures(el, f"{value}\n{self._logs(el)}", {})
        # Results are matched by fingerprint: after a re-attach the same task may have
        # another index than the one it was submitted with.
        by_fp = {r[4]: r for r in value}
        reported: dict[int, bool] = {}  # task index -> ok
        for job in el.jobs:
            for i in job:
                r = by_fp.get(el.fps[i])
                if r is None:
                    break  # what follows in this job did not run: failed just below
                _, ok, error, duration, _fp, handed, printed, products, inputs = r
                if error:
                    error = f"{error}\n{self._logs(el)}"
                events.append(Outcome(i, ok, value=handed, error=error, duration=duration,
                                      printed=printed, products=products, inputs=inputs))
                reported[i] = ok
                if not ok:
                    break  # the driver fails the rest of its chain
        return events + self._failures(el, f"the job returned no result for this task\n"
                                           f"{self._logs(el)}", reported)

    def _failures(self, el: _Element, error: str, reported: dict[int, bool]) -> list[Outcome]:
        """Fail each job of ``el`` at its first task with no outcome yet (``reported``:
        task -> ok). The driver fails the rest of a chain itself, and must hear of each
        task once."""
        out = []
        for job in el.jobs:
            if any(reported.get(i) is False for i in job):
                continue  # this job ended in a reported failure already
            first = next((i for i in job if i not in reported), None)
            if first is not None:
                out.append(Outcome(first, False, error=error))
        return out

    def _fail(self, el: _Element, reason: str) -> list[Outcome | Started]:
        self._forget(el)
        tail = _tail(el.paths().stderr)
        detail = f"{reason}\n{self._logs(el)}" + (f"\nlast lines of its log:\n{tail}" if tail else "")
        return self._failures(el, detail, {})

    def _forget(self, el: _Element) -> None:
        self._elements.pop(el.job_id, None)
        self._journal.collected(list(el.fps.values()))

    def _logs(self, el: _Element) -> str:
        p = el.paths()
        return f"Slurm job {el.job_id}, log: {p.stderr} (stdout: {p.stdout})"

    def _states(self, job_ids: list[str]) -> dict[str, str] | None:
        """Slurm state of each element id: squeue for all of them, sacct for the rest.
        None if Slurm could not be asked (a missing id is not a vanished job then)."""
        bases = sorted({j.split("_")[0] for j in job_ids})
        states: dict[str, str] = {}
        got = self._cluster(["squeue", "-r", "-h", "-t", "all", "-o", "%i|%T",
                             "-j", ",".join(bases)], "squeue")
        if got is None:
            return None
        for line in got[1].splitlines():  # (ids it forgot are no failure: see _cluster)
            jid, _, st = line.partition("|")
            if st:
                states[jid.strip()] = st.strip().split()[0]
        left = sorted({j.split("_")[0] for j in job_ids if j not in states})
        if left:
            got = self._cluster(["sacct", "-n", "-P", "-X", "-o", "JobID,State",
                                 "-j", ",".join(left)], "sacct")
            for line in (got[1] if got and got[0] == 0 else "").splitlines():
                jid, _, st = line.partition("|")
                if st and "[" not in jid:
                    states.setdefault(jid.strip(), st.strip().split()[0])
        return states

    def _cluster(self, cmd: list[str], kind: str) -> tuple[int, str, str] | None:
        """Run a Slurm command: (return code, stdout, stderr), or None if it could not run
        (missing, timed out) or failed for another reason than unknown job ids."""
        self.calls[kind] = self.calls.get(kind, 0) + 1
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                               stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as e:
            print(f"warning: {' '.join(cmd[:2])} failed: {e}", file=sys.stderr)
            return None
        if r.returncode != 0 and "Invalid job id" not in r.stderr:
            print(f"warning: {' '.join(cmd[:2])} failed: {r.stderr.strip()[:200]}",
                  file=sys.stderr)
            return None
        return r.returncode, r.stdout, r.stderr


class _Journal:
    """The executor's own record of submissions, so a new driver can re-attach."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: Any = None

    def load(self) -> dict[str, dict[str, Any]]:
        """Fingerprint -> {token, folder, id, pos, n} for jobs submitted and not collected."""
        active: dict[str, dict[str, Any]] = {}
        by_token: dict[str, list[list[str]]] = {}
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "intent" in rec:
                by_token[rec["intent"]] = rec["fps"]
                for pos, chunk in enumerate(rec["fps"]):
                    for fp in chunk:
                        active[fp] = {"token": rec["intent"], "folder": rec["folder"],
                                      "id": None, "pos": pos, "n": len(rec["fps"])}
            elif "submitted" in rec:
                for chunk, jid in zip(by_token.get(rec["submitted"], []), rec["ids"]):
                    for fp in chunk:
                        if fp in active:
                            active[fp]["id"] = jid
            elif "collected" in rec:
                for fp in rec["collected"]:
                    active.pop(fp, None)
        # Rewrite it with what is still active (nothing: remove it), so it never grows.
        if lines and (not active or any('"collected"' in ln for ln in lines)):
            self._rewrite(active, by_token)
        return active

    def _rewrite(self, active: dict[str, dict[str, Any]], by_token: dict[str, list[list[str]]]) -> None:
        if not active:
            self.path.unlink(missing_ok=True)
            return
        keep = {rec["token"] for rec in active.values()}
        ids: dict[str, list[str]] = {}
        for fp, rec in active.items():
            if rec.get("id"):
                ids.setdefault(rec["token"], [""] * rec["n"])[rec["pos"]] = rec["id"]
        with atomic_write(self.path, fsync=True) as f:
            for token in keep:
                rec = next(r for r in active.values() if r["token"] == token)
                chunks = [[fp for fp in chunk if fp in active] for chunk in by_token[token]]
                f.write(json.dumps({"intent": token, "folder": rec["folder"], "fps": chunks}) + "\n")
                if token in ids:
                    f.write(json.dumps({"submitted": token, "ids": ids[token]}) + "\n")

    def _write(self, rec: dict[str, Any]) -> None:
        if self._f is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "a", encoding="utf-8")
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()

    def intent(self, token: str, folder: str, fps: list[list[str]]) -> None:
        self._write({"intent": token, "folder": folder, "fps": fps})

    def submitted(self, token: str, ids: list[str]) -> None:
        self._write({"submitted": token, "ids": ids})

    def collected(self, fps: list[str]) -> None:
        fps = [fp for fp in fps if fp]
        if fps:
            self._write({"collected": fps})

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _local_state(el: _Element) -> str:
    """The state of a job of the local backend, ours or one a dead driver started."""
    if el.handle is not None:
        info = el.handle.get_info()["jobState"]
        return {"RUNNING": "RUNNING", "FINISHED": "COMPLETED",
                "INTERRUPTED": "CANCELLED"}.get(info, "UNKNOWN")
    return "RUNNING" if _local_pid(el) is not None else "CANCELLED"


def _local_pid(el: _Element) -> int | None:
    """The pid of a local job's controller (the job id) if it still runs that job."""
    try:
        pid = int(el.job_id)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return pid if str(el.folder).encode() in f.read() else None
    except (OSError, ValueError):
        return None


def _stop_local(el: _Element) -> None:
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


def _tail(path: Path, n: int = 15) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = f.read().decode("utf-8", "replace").splitlines()[-n:]
    except OSError:
        return ""
    return "\n".join("    " + ln for ln in lines)
