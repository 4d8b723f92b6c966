"""Run tasks as Slurm jobs through submitit, or through submitit's local backend.

Design (why, in short):
- Tasks are submitted when their dependencies are done, not chained with ``afterok``:
  the driver must check the cache (a rerun upstream may leave its product unchanged, and
  then the downstream task is skipped), which only it can do; and a failed ``afterok``
  parent leaves children PENDING forever (DependencyNeverSatisfied) instead of DEPFAILED.
- Ready tasks with the same function and resources go out as one job array (one sbatch),
  at most ``max_array_size`` elements, ``array_parallelism`` running at once. Each element
  runs several tasks one after the other, so thousands of tiny tasks do not pay a Python
  start-up each: ``tasks_per_job`` of them, or (by default) as many as fill about
  ``target_seconds`` by the durations recorded in earlier runs.
- State comes from one ``squeue`` call for all tracked jobs per ``poll_interval`` (squeue
  has no accounting lag), ``sacct`` only for jobs squeue no longer knows. A job is done
  when its result file appears; a job Slurm killed (TIMEOUT, OUT_OF_MEMORY, NODE_FAIL,
  CANCELLED) never writes one, and is failed from its Slurm state.
- Every submission is journalled (``slurm_journal``) so a rerun after the driver died
  re-attaches to those jobs instead of submitting the same work again. Each submission
  has its own folder, so a job id reused after Slurm's state was reset can never be
  mistaken for ours: the result file is looked up in that folder.
- What differs between a real Slurm and submitit's local backend lives in a ``Cluster``
  object (``slurm_cluster``); this module does not ask which one it has.
"""

from __future__ import annotations

import math
import os
import pickle
import shutil
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import TaskDeclarationError
from ..resources import Resources, is_slurm_name, sbatch_settings, task_resources
from .base import Executor, Job, Outcome, RunContext, Started
from .slurm_cluster import (
    RUNNING,
    TERMINAL,
    Cluster,
    Element,
    LocalCluster,
    SlurmCluster,
    gpu_request,
)
from .slurm_job import StepResult, payload, run_tasks, unpicklable
from .slurm_journal import Entry, Journal

# A result file can appear a little after Slurm reports the end (shared filesystems).
_RESULT_GRACE_S = 10.0
# A job neither squeue nor sacct knows yet (accounting lags) is given this long.
_VANISHED_S = 300.0
# With durations known, an element asks at most this many times what its tasks took.
_TIME_MARGIN = 4


class SubmitItExecutor(Executor):
    """Runs tasks as Slurm jobs (``cluster="slurm"``) or as local subprocesses through
    submitit's local backend (``cluster="local"``); ``None`` picks Slurm when ``sbatch``
    is on the PATH.

    ``folder``: where submitit keeps job files and logs (default: ``<state dir>/slurm``;
    must be on a filesystem the compute nodes share). ``parameters``: sbatch settings for
    every job, under any of submitit's names (``partition`` or ``slurm_partition``,
    ``time`` or ``timeout_min`` in minutes, ``mem`` or ``mem_gb``, ``setup`` lines, ...).
    ``internal_executor``: a ready ``submitit.AutoExecutor`` (or ``SlurmExecutor``), as
    depio takes it: its folder and parameters are used (``parameters`` win). Per-task
    needs come from the task's ``resources`` (or depio's ``slurm_parameters``).

    ``retries``: resubmissions of a failed task (a task's own ``retries`` wins).
    ``default_time_min``: the time limit of a task when nothing says one (Slurm enforces it).
    ``tasks_per_job``: tasks run one after the other by each array element; ``None``
    (default) groups them from their recorded durations into elements of about
    ``target_seconds``, and on a first run into at most four times as many elements as
    run at once (``array_parallelism``, or the partition's CPUs if fewer).
    ``max_jobs_queued`` / ``max_jobs_pending``: at most this many Slurm jobs (array
    elements) in the queue at once / waiting to start; the rest wait in the driver.
    """

    columns = ("Slurm ID", "Slurm Status")
    queues = True
    reattaches = True
    takes_jobs = True
    uses_durations = True

    def __init__(
        self,
        folder: str | os.PathLike | None = None,
        parameters: Mapping[str, Any] | None = None,
        internal_executor: Any = None,
        max_jobs_pending: int | None = None,
        max_jobs_queued: int | None = None,
        *,
        cluster: str | None = None,
        retries: int = 0,
        max_array_size: int = 500,
        array_parallelism: int = 64,
        tasks_per_job: int | None = None,
        target_seconds: float = 60.0,
        poll_interval: float = 2.0,
        max_poll_interval: float = 10.0,
        default_time_min: int = 60,
        python: str | None = None,
    ) -> None:
        # depio's positional order is (folder, internal_executor, parameters).
        if (
            parameters is not None
            and not isinstance(parameters, Mapping)
            and hasattr(parameters, "update_parameters")
        ):
            if internal_executor is not None and not isinstance(internal_executor, Mapping):
                raise TypeError("SubmitItExecutor(): two submitit executors given")
            parameters, internal_executor = internal_executor, parameters
        if parameters is not None and not isinstance(parameters, Mapping):
            raise TypeError(
                f"SubmitItExecutor(parameters=...): need a dict of sbatch "
                f"settings, got {type(parameters).__name__}"
            )
        given: dict[str, Any] = {}
        if internal_executor is not None:
            inner_cluster, inner_folder, given, inner_python = _from_submitit(internal_executor)
            cluster = cluster or inner_cluster
            folder = folder if folder is not None else inner_folder
            python = python if python is not None else inner_python
        if cluster is None:
            cluster = "slurm" if shutil.which("sbatch") else "local"
        if cluster not in ("slurm", "local"):
            raise ValueError(f"SubmitItExecutor(cluster={cluster!r}): use 'slurm' or 'local'")
        self.cluster = cluster
        self.folder = Path(folder).absolute() if folder is not None else None
        # Under our names (submitit's SlurmExecutor's), whatever spelling was used.
        owner = "SubmitItExecutor(parameters=...)"
        self.parameters = {
            **sbatch_settings(given, "SubmitItExecutor(internal_executor=...)"),
            **sbatch_settings(parameters or {}, owner),
        }
        self._default = task_resources(
            {k: v for k, v in self.parameters.items() if k == "time"}, owner, error=ValueError
        )
        super().__init__(max_jobs_pending=max_jobs_pending, max_jobs_queued=max_jobs_queued)
        for name, v in (
            ("max_array_size", max_array_size),
            ("array_parallelism", array_parallelism),
            ("tasks_per_job", tasks_per_job),
        ):
            if v is None and name == "tasks_per_job":
                continue
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"SubmitItExecutor({name}={v!r}): need an int >= 1")
        if not isinstance(target_seconds, (int, float)) or target_seconds <= 0:
            raise ValueError(
                f"SubmitItExecutor(target_seconds={target_seconds!r}): need a number > 0"
            )
        self.retries = retries
        self.max_array_size = max_array_size
        self.array_parallelism = array_parallelism
        self.tasks_per_job = tasks_per_job
        self.target_seconds = float(target_seconds)
        self.poll_interval = poll_interval
        self.max_poll_interval = max(poll_interval, max_poll_interval)
        self.default_time_min = default_time_min
        self.python = python
        #: Calls made to the cluster during the last run: sbatch, squeue, sacct, scancel.
        self.calls: dict[str, int] = {}

    # -- run lifecycle ---------------------------------------------------------------------
    def start(self, tasks: Sequence[Any], context: RunContext) -> None:
        self._parallelism = context.jobs or self.array_parallelism  # (--jobs wins)
        self._tasks = tasks
        self._base = self.folder or Path(context.state_dir) / "slurm"
        self._value_dir = context.values
        self._left_running = False  # a cancel failed: the journal keeps the jobs
        self._base.mkdir(parents=True, exist_ok=True)
        self.calls = {"sbatch": 0, "squeue": 0, "sacct": 0, "scancel": 0}
        self.backend: Cluster = (
            SlurmCluster(self.calls, self.poll_interval, self.max_poll_interval)
            if self.cluster == "slurm"
            else LocalCluster(self.calls)
        )
        # depio's per-task sbatch settings, checked before anything is submitted.
        self._task_settings: dict[int, Resources] = {}
        for i, t in enumerate(tasks):
            given = getattr(t, "slurm_parameters", None)
            if given:
                owner = f"task {t.label}: slurm_parameters"
                self._task_settings[i] = task_resources(
                    sbatch_settings(given, owner, error=TaskDeclarationError), owner
                )
        self._journal = Journal(Path(context.state_dir) / "slurm" / "jobs.jsonl")
        self._queue: list[Job] = []
        self._elements: dict[str, Element] = {}  # job id -> element
        self._of_task: dict[int, Element] = {}  # task index -> element
        self._ready: list[Outcome | Started] = []  # events found outside wait()
        self._next_files = 0.0
        self._next_pending = 0.0
        self._attachable = self._journal.load()
        if self._attachable:
            self.backend.prepare_reattach(self._attachable)

    def free_slots(self) -> int:
        if self.backend.queues:
            return 1_000_000  # Slurm queues; array_parallelism limits what runs at once
        # Locally every element is a process now: array_parallelism of them at most.
        per = self.tasks_per_job or 1
        queued = -(-len(self._queue) // per)
        return (self._parallelism - len(self._elements) - queued) * per

    def submit(self, job: Job) -> None:
        if not self._reattach(job):
            self._queue.append(job)

    def cells(self, index: int) -> Sequence[str]:
        el = self._of_task.get(index)
        return (el.job_id, el.state) if el is not None else ("", "")

    def wait(self, timeout: float | None) -> list[Outcome | Started]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._queue:
                self._submit_queued()
            events, self._ready = self._ready, []
            events += self._poll()
            if events or not (self._elements or self._queue):
                return events
            now = time.monotonic()
            wake = min(self._next_files, self.backend.next_wake())
            if deadline is not None:
                if now >= deadline:
                    return []
                wake = min(wake, deadline)
            time.sleep(max(0.0, min(wake - now, 1.0)))

    def cancel(self) -> list[int]:
        elements = list(self._elements.values())
        ids = sorted({el.base_id for el in elements})
        indices = sorted({i for el in elements for i in el.indices})
        done = not elements or self.backend.cancel(elements)
        if done:
            for el in elements:
                el.state = "CANCELLED"
                self._journal.collected(list(el.fps.values()))
            if ids:  # (local jobs too: this executor calls every job a Slurm job)
                print(
                    f"Cancelled Slurm job(s) {', '.join(ids)} ({len(indices)} task(s)).",
                    file=sys.stderr,
                    flush=True,
                )
        else:  # kept in the journal: the next run re-attaches instead of duplicating
            self._left_running = True
            print(
                f"Could not cancel Slurm job(s) {', '.join(ids)}; cancel them with scancel. "
                "The next run picks up their results.",
                file=sys.stderr,
                flush=True,
            )
        self._elements.clear()
        self._queue.clear()
        return indices

    def shutdown(self) -> None:
        self._journal.close()

    def outlived(self) -> bool:
        # Elements still tracked: the run ended without collecting them (an error in the
        # driver); the journal keeps them for the next run.
        return self._left_running or bool(self._elements)

    # -- submission ------------------------------------------------------------------------
    def _room(self) -> int:
        """How many more elements may go out now (``max_jobs_queued`` / ``_pending``)."""
        room = 1_000_000
        if self.max_jobs_queued is not None:
            room = min(room, self.max_jobs_queued - len(self._elements))
        if self.max_jobs_pending is not None:
            pending = sum(1 for el in self._elements.values() if not el.started)
            room = min(room, self.max_jobs_pending - pending)
        return room

    def _submit_queued(self) -> None:
        room = self._room()
        if room <= 0:
            return
        groups: dict[tuple, tuple[Resources, list[Job]]] = {}
        for job in self._queue:
            res = self._resources(job)
            key = (id(job.steps[0].task.func), res.key())
            groups.setdefault(key, (res, []))[1].append(job)
        self._queue = []
        for res, jobs in groups.values():
            params = self._parameters(res)
            chunks = self._chunks(jobs, params)
            if len(chunks) > room:  # the rest waits here for room (in the order it came)
                self._queue += [job for chunk in chunks[room:] for job in chunk]
                chunks = chunks[:room]
            room -= len(chunks)
            for a in range(0, len(chunks), self.max_array_size):
                self._submit_array(chunks[a : a + self.max_array_size], res, dict(params))

    def _chunks(self, jobs: list[Job], params: dict[str, Any]) -> list[list[Job]]:
        """The array elements these jobs (alike in function and resources) go out in."""
        per = self.tasks_per_job or (None if self.backend.queues else 1)
        seconds = [_seconds(job) for job in jobs]
        slots = self._parallelism
        if per is None and len(jobs) > 1:
            # (A small cluster runs fewer than array_parallelism at once.)
            slots = min(slots, self.backend.slots(params) or slots)
        # A first run: as few elements as keep the cluster busy.
        return group_jobs(jobs, seconds, per, self.target_seconds, 4 * slots, slots)

    def _submit_array(
        self, chunks: list[list[Job]], res: Resources, params: dict[str, Any]
    ) -> None:
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
            for job, item in zip(chunk, items, strict=True):
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
        problem = self.backend.gpu_problem(params) if gpu_request(params) else None
        if problem is None:
            time_min, problem = self._time_limit(sendable, res, params)
        if problem is not None:  # known before submitting: nothing goes out
            for chunk in sendable:
                for job in chunk:
                    self._ready.append(Outcome(job.index, False, error=problem))
            return
        token = uuid.uuid4().hex[:12]
        folder = self._base / token
        fps = [[st.fingerprint for j in chunk for st in j.steps] for chunk in sendable]
        self._journal.intent(token, str(folder), fps)
        value_dir = self._value_dir
        # Named "<prefix>-<token>": a driver that died in sbatch finds its jobs by it.
        params["job_name"] = f"{params.get('job_name') or 'depio_like'}-{token}"
        try:
            executor = self.backend.make_executor(folder, params, time_min, self.python)
            handles = executor.map_array(
                run_tasks, [list(sys.path)] * len(payloads), payloads, [value_dir] * len(payloads)
            )
        except Exception as e:  # sbatch refused (bad partition, limits, ...)
            msg = f"submission to {self.cluster} failed: {e}"
            for chunk in sendable:
                for job in chunk:
                    self._ready.append(Outcome(job.index, False, error=msg))
            self._journal.collected([fp for chunk in fps for fp in chunk])
            return
        self.backend.submitted(handles)
        self._journal.submitted(token, [h.job_id for h in handles])
        for handle, chunk in zip(handles, sendable, strict=True):
            el = Element(
                handle.job_id,
                folder,
                [j.indices for j in chunk],
                {st.index: st.fingerprint for j in chunk for st in j.steps},
                handle=self.backend.handle(handle),
            )
            self._track(el)

    def _resources(self, job: Job) -> Resources:
        """What a job needs: the most any of its tasks needs, and their times added up (a
        task that names none counts the executor's ``time`` or ``default_time_min``)."""
        rs = []
        for st in job.steps:
            r = st.task.resources
            extra = self._task_settings.get(st.index)
            rs.append(r.over(extra) if extra is not None else r)
        default = self._default.time_min or self.default_time_min
        slurm: dict[str, Any] = {}
        for r in rs:
            slurm.update(r.slurm)
        return Resources(
            cpus=max((r.cpus for r in rs if r.cpus), default=None),
            memory_mb=max((r.memory_mb for r in rs if r.memory_mb), default=None),
            gpus=max((r.gpus for r in rs if r.gpus), default=None),
            time_min=int(sum(r.time_min or default for r in rs)),
            slurm=slurm,
        )

    def _parameters(self, res: Resources) -> dict[str, Any]:
        """The SlurmExecutor parameters of a submission needing ``res`` (all but time):
        the executor's, with each task's own needs winning."""
        params: dict[str, Any] = {"array_parallelism": self._parallelism}
        params.update({k: v for k, v in self.parameters.items() if k != "time"})
        extra = dict(params.get("additional_parameters") or {})
        for k, v in res.slurm.items():
            if k == "additional_parameters":
                extra.update(v or {})
            elif is_slurm_name(k):
                params[k] = v
            else:  # an sbatch option submitit does not know: passed as it is
                extra[k] = v
        if res.cpus:
            params["cpus_per_task"] = res.cpus
        if res.memory_mb:
            for k in ("mem_per_cpu", "mem_per_gpu"):  # (sbatch takes one of them)
                params.pop(k, None)
            params["mem"] = f"{res.memory_mb}M"  # SlurmExecutor passes it to sbatch as is
        if res.gpus:
            for k in ("gpus_per_node", "gpus_per_task", "num_gpus"):
                params.pop(k, None)
            params["gres"] = f"gpu:{res.gpus}"
        if extra:
            params["additional_parameters"] = extra
        return params

    def _time_limit(
        self, chunks: list[list[Job]], res: Resources, params: dict[str, Any]
    ) -> tuple[int, str | None]:
        """The array's time limit in minutes: an element runs its jobs one after the
        other, so it gets their limits added up; with durations recorded for all its tasks,
        at most ``_TIME_MARGIN`` times what they took (never less than one job's limit); and
        never more than the partition allows. Also why it cannot go out, if it cannot."""
        one = res.time_min or self.default_time_min
        limit = max(element_minutes(one, [_seconds(job) for job in chunk]) for chunk in chunks)
        if limit > one:  # grouped: mind the partition's limit
            most = self.backend.max_time(params)
            if most is not None and limit > most:
                limit = max(one, most)
        signal_delay = params.get("signal_delay_s")
        if signal_delay is None:
            # submitit warns the job this long before its time limit (default 90 s, more
            # than a short limit): keep it a tenth of the limit, 10 to 90 s.
            params["signal_delay_s"] = int(min(90, max(10, limit * 6)))
        return limit, None

    def _track(self, el: Element) -> None:
        self._elements[el.job_id] = el
        for i in el.indices:
            self._of_task[i] = el

    # -- re-attaching after a lost driver --------------------------------------------------
    def _reattach(self, job: Job) -> bool:
        """Take over the job a dead driver submitted for exactly this work, if it may still
        bring a result; every task of the job must match (a changed step: submit afresh)."""
        recs: list[Entry | None] = [self._attachable.pop(st.fingerprint, None) for st in job.steps]
        ids = {(r.id or None) if r else None for r in recs}
        if len(ids) != 1 or None in ids:
            self._journal.collected(
                [st.fingerprint for st, r in zip(job.steps, recs, strict=True) if r]
            )
            return False
        jid, rec = ids.pop(), recs[0]
        assert jid is not None and rec is not None
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
        el = Element(jid, Path(rec.folder), [job.indices], fps)
        if el.paths().result_pickle.exists():
            self._track(el)
            return True
        state = self.backend.state_left(el)
        if state is not None and state not in TERMINAL:
            el.state = state
            self._track(el)
            return True
        self._journal.collected(list(fps.values()))  # gone without a result: submit afresh
        return False

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
        if self._elements and self.backend.due(now):
            before = {jid: el.state for jid, el in self._elements.items()}
            states = self.backend.states(list(self._elements.values()))
            if states is not None:  # else Slurm did not answer: ask again next time
                for el in list(self._elements.values()):
                    events += self._update(el, states.get(el.job_id), now)
            changed = bool(events) or any(
                el.state != before.get(jid) for jid, el in self._elements.items()
            )
            self.backend.polled(now, changed)
        return events

    def _update(self, el: Element, state: str | None, now: float) -> list[Outcome | Started]:
        if el.job_id not in self._elements:
            return []
        if state is None:
            if now - el.since > _VANISHED_S:
                return self._fail(
                    el, f"the job is unknown to Slurm (squeue and sacct) for {_VANISHED_S:.0f} s"
                )
            return []
        el.since = now
        el.state = state
        events: list[Outcome | Started] = []
        if not el.started and (state in RUNNING or state in TERMINAL):
            el.started = True
            events += [Started(i) for i in el.indices]
        if state in TERMINAL:
            if el.paths().result_pickle.exists():
                return events + self._collect(el, now)
            el.terminal_since = el.terminal_since or now
            if state == "COMPLETED":
                if now - el.terminal_since >= _RESULT_GRACE_S:
                    # (The local backend says COMPLETED of a job whose process died.)
                    events += self._fail(
                        el,
                        "the job ended without a result: its process "
                        "died (a crash, os._exit, the out-of-memory killer)",
                    )
            elif now - el.terminal_since >= 2.0:
                events += self._fail(el, f"Slurm ended the job: {state}")
        return events

    def _collect(self, el: Element, now: float) -> list[Outcome | Started]:
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
        if el.state not in TERMINAL:
            el.state = "COMPLETED" if kind == "success" else "FAILED"
        if kind != "success":
            return events + self._failures(el, f"{value}\n{self._logs(el)}", {})
        # Results are matched by fingerprint: after a re-attach the same task may have
        # another index than the one it was submitted with.
        results = [StepResult(*r) if isinstance(r, tuple) else r for r in value]
        by_fp = {r.fingerprint: r for r in results}
        reported: dict[int, bool] = {}  # task index -> ok
        for job in el.jobs:
            for i in job:
                r = by_fp.get(el.fps[i])
                if r is None:
                    break  # what follows in this job did not run: failed just below
                error = f"{r.error}\n{self._logs(el)}" if r.error else r.error
                events.append(
                    Outcome(
                        i,
                        r.ok,
                        value=r.value,
                        error=error,
                        duration=r.duration,
                        printed=r.printed,
                        products=r.products,
                        inputs=r.inputs,
                    )
                )
                reported[i] = r.ok
                if not r.ok:
                    break  # the driver fails the rest of its chain
        return events + self._failures(
            el, f"the job returned no result for this task\n{self._logs(el)}", reported
        )

    def _failures(self, el: Element, error: str, reported: dict[int, bool]) -> list[Outcome]:
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

    def _fail(self, el: Element, reason: str) -> list[Outcome | Started]:
        self._forget(el)
        tail = _tail(el.paths().stderr)
        detail = f"{reason}\n{self._logs(el)}" + (
            f"\nlast lines of its log:\n{tail}" if tail else ""
        )
        return list(self._failures(el, detail, {}))

    def _forget(self, el: Element) -> None:
        self._elements.pop(el.job_id, None)
        self._journal.collected(list(el.fps.values()))

    def _logs(self, el: Element) -> str:
        p = el.paths()
        return f"Slurm job {el.job_id}, log: {p.stderr} (stdout: {p.stdout})"


def group_jobs(
    jobs: list[Any],
    seconds: list[float | None],
    per: int | None,
    target: float,
    most: int,
    slots: int = 1,
) -> list[list[Any]]:
    """Jobs in order, cut into consecutive groups (array elements, each running its jobs
    one after the other): ``per`` jobs each if given; else by their expected ``seconds``
    into groups of about ``target`` seconds (a job never timed counts as the mean of those
    that were), but into no fewer than ``slots`` (the elements that can run at once) while
    each keeps a quarter of ``target``; and if none was ever timed (a first run), into at
    most ``most`` groups."""
    if per is None and all(s is None for s in seconds):
        per = max(1, -(-len(jobs) // most))
    if per is not None:
        return [jobs[k : k + per] for k in range(0, len(jobs), per)]
    known = [s for s in seconds if s is not None]
    mean = sum(known) / len(known)
    secs = [mean if s is None else max(0.0, s) for s in seconds]
    total = sum(secs)
    # (Fewer elements than can run at once would leave the cluster idle: split further
    # while each still runs long enough to be worth its Python start.)
    n = max(
        1, min(len(jobs), max(round(total / target), min(slots, math.floor(total / (target / 4)))))
    )
    if n == len(jobs):
        return [[job] for job in jobs]
    size = total / n
    groups: list[list[Any]] = [[] for _ in range(n)]
    done = 0.0
    for job, s in zip(jobs, secs, strict=True):
        # Into the group its middle falls in: groups come out equal to within one job.
        k = min(n - 1, int((done + s / 2) / size)) if size > 0 else 0
        groups[k].append(job)
        done += s
    return [g for g in groups if g]


def element_minutes(one: int, took: list[float | None]) -> int:
    """The time limit of an element running jobs of ``one`` minute limits each, one after
    the other: their limits added up; if all of them took a known time (``took``, seconds)
    when they last ran, at most ``_TIME_MARGIN`` times that, but never less than ``one``."""
    total = one * len(took)
    if len(took) > 1 and all(s is not None for s in took):
        expected = sum(s for s in took if s is not None)
        total = min(total, max(one, math.ceil(_TIME_MARGIN * expected / 60)))
    return total


def _seconds(job: Job) -> float | None:
    """How long a job took when its tasks last ran (None if any was never timed)."""
    total = 0.0
    for st in job.steps:
        if st.expected_seconds is None:
            return None
        total += st.expected_seconds
    return total


def _from_submitit(ex: Any) -> tuple[str, Path | None, dict[str, Any], str | None]:
    """(cluster, folder, parameters, python) of a submitit executor made by the user (an
    AutoExecutor, or the SlurmExecutor / LocalExecutor it wraps), as depio passes one."""
    inner = getattr(ex, "_executor", ex)  # AutoExecutor wraps the executor it picked
    kind = type(inner).__name__
    if kind == "SlurmExecutor":
        cluster = "slurm"
        params = dict(getattr(inner, "parameters", {}) or {})
    elif kind in ("LocalExecutor", "DebugExecutor"):
        cluster = "local"
        # (Slurm settings given to an AutoExecutor that found no Slurm are not kept.)
        params = {
            k: v for k, v in (getattr(inner, "parameters", {}) or {}).items() if k == "timeout_min"
        }
    else:
        raise TypeError(
            f"SubmitItExecutor(internal_executor=...): need a submitit "
            f"AutoExecutor, SlurmExecutor or LocalExecutor, got {kind}"
        )
    folder = getattr(ex, "folder", None)
    if folder is not None:
        from submitit.core.utils import JobPaths

        # Our submissions get folders of their own: take the part without "%j"-like fields.
        folder = JobPaths.get_first_id_independent_folder(Path(folder))
    python = getattr(inner, "python", None) if cluster == "slurm" else None
    return cluster, folder, params, python


def _tail(path: Path, n: int = 15) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            lines = f.read().decode("utf-8", "replace").splitlines()[-n:]
    except OSError:
        return ""
    return "\n".join("    " + ln for ln in lines)
