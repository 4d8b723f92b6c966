"""Run tasks on a Dask cluster: an embedded ``LocalCluster``, a running scheduler, or any
Dask cluster object (``dask_jobqueue.SLURMCluster``, a cloud deployment, ...).

Design (why, in short):
- The driver still decides what runs (cache, failures, retries); Dask decides where. A job
  (one task, or a chain joined by values) is one Dask task, submitted as a future once its
  dependencies are done, so a skipped task never reaches the cluster.
- A return value another job takes stays on the worker that made it, as a Dask future of
  its own; the consumer's future takes it as an argument, so Dask moves it worker to worker
  (or not at all) and frees it once the driver, after the last consumer, drops the future.
  The driver never fetches it, and nothing is written under the state directory.
- What the driver needs back (success, error, duration, the products' digests, made where
  they were written) is small: it comes as Dask events (``Worker.log_event``, one topic
  the driver subscribes to), with progress from inside tasks and the news that a task
  started and on which worker. The job's own result is fetched only if its events got lost.
- A task runs in the driver's working directory (the worker changes to it for the task
  and back after), with the driver's ``sys.path`` appended to the worker's, as a Slurm job
  does: relative paths and the script's own modules mean the same on every worker.
- Output is captured per task at the file-descriptor level where a worker runs one task at
  a time (the embedded cluster: one thread per worker process); a worker with several
  threads shares fds 1 and 2 between its tasks, so there ``sys.stdout`` / ``sys.stderr``
  are routed per thread instead (output of C code and subprocesses then goes to the
  worker's own log).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import pickle
import queue
import signal
import socket
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO


def _shadowing_dir() -> str | None:
    """The main script's directory if the script itself is named like a package Dask
    imports (``examples/dask.py``): on ``sys.path`` it would stand in for that package."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path or os.path.splitext(os.path.basename(path))[0] not in ("dask", "distributed"):
        return None
    return os.path.dirname(os.path.abspath(path))


def _without(directory: str | None) -> list[str]:
    return [p for p in sys.path if directory is None or os.path.abspath(p or ".") != directory]


_saved_path = list(sys.path)
sys.path[:] = _without(_shadowing_dir())
try:
    import distributed
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "DaskExecutor needs Dask's distributed package: pip install 'depio_like[dask]'"
    ) from e
finally:
    sys.path[:] = _saved_path

from ..errors import PipelineError  # noqa: E402 - after sys.path is restored
from .base import (  # noqa: E402
    Capture,
    Executor,
    Job,
    LogPath,
    Outcome,
    RunContext,
    Started,
    Step,
    log_path,
    run_steps,
)
from .routing import ThreadCapture, route, unroute  # noqa: E402

# One topic for every run (a run's events carry its token): a long-lived scheduler keeps
# a bounded log per topic, and a topic per run would leave one behind each time.
TOPIC = "depio_like"
ENDED = "ended"  # (scheduler metadata) the runs that are over, by token
_MEMORY_TOPIC = "worker-restart-memory"  # a nanny's news that it killed its worker
_RESEND = 2  # times a job a dying worker took down before it started is sent again
# Dask worker resources that task ``resources`` map to (``dask worker --resources GPU=1``).
RESOURCE_NAMES = {"cpus": "CPU", "memory": "MEMORY", "gpus": "GPU"}


class DaskConnectionError(PipelineError):
    """The Dask scheduler cannot be reached (raised before any task runs)."""


@dataclass
class _Flight:
    """A job handed to Dask and not over yet."""

    name: str  # of its first task, for Dask keys
    blob: bytes  # the pickled steps
    inputs: dict[int, Any]  # the values it takes (futures), by producer task id
    exports: list[tuple[int, str]]  # (task index, name) of steps whose value goes on
    options: dict[str, Any]  # more Client.submit keywords
    indices: list[int]
    key: str = ""
    future: Any = None  # the job's Dask future
    values: dict[int, Any] = field(default_factory=dict)  # task index -> its value's future
    reported: set[int] = field(default_factory=set)
    running: bool = False
    resent: int = 0  # times sent again after a worker died before it started


class DaskExecutor(Executor):
    """Runs tasks on a Dask cluster.

    - ``DaskExecutor()``: an embedded ``distributed.LocalCluster`` for the run (worker
      processes, one per core, one thread each; ``n_workers``, ``threads_per_worker``,
      ``memory_limit``, ``dashboard_address`` and ``cluster_kwargs`` shape it), started when
      the first task goes out and closed after the run.
    - ``DaskExecutor("tcp://host:8786")``: a running scheduler, left running.
    - ``DaskExecutor(cluster=c)``: any Dask cluster object (``LocalCluster``,
      ``dask_jobqueue.SLURMCluster`` scaled or adaptive, ...), left running.

    Workers must see the driver's files at the same paths (a shared filesystem) and import
    what the tasks use (the same environment). ``retries``: resubmissions of a failed
    task (a task's own ``retries`` wins). ``resources``: map task resources (cpus, memory,
    gpus) to the Dask worker resources ``CPU``, ``MEMORY`` (bytes) and ``GPU``; ``None``
    (default) where the connected workers declare them, ``True`` always (an adaptive cluster
    whose future workers declare them), ``False`` never. ``submit_options(task)`` may
    return more ``Client.submit`` keywords for a task (``workers=``, ``resources=``,
    ``allow_other_workers=``, ``priority=``); for a chain, those of its first task.
    ``timeout``: seconds to reach the scheduler.
    """

    columns = ("Worker",)
    queues = True  # a submitted task waits for a free worker thread: PENDING until it starts
    takes_jobs = True  # --jobs N: at most N jobs handed to Dask at once

    def __init__(
        self,
        address: str | None = None,
        *,
        cluster: Any = None,
        n_workers: int | None = None,
        threads_per_worker: int = 1,
        memory_limit: str | float | None = "auto",
        dashboard_address: str | None = ":8787",
        cluster_kwargs: Mapping[str, Any] | None = None,
        retries: int = 0,
        resources: bool | None = None,
        submit_options: Callable[[Any], Mapping[str, Any]] | None = None,
        timeout: float = 10.0,
    ) -> None:
        if address is not None and cluster is not None:
            raise ValueError("DaskExecutor(): pass address= or cluster=, not both")
        embedded = {"n_workers": n_workers, "cluster_kwargs": cluster_kwargs}
        if (address is not None or cluster is not None) and any(
            v is not None for v in embedded.values()
        ):
            given = ", ".join(k for k, v in embedded.items() if v is not None)
            raise ValueError(
                f"DaskExecutor(): {given} shape the embedded cluster; they do "
                "not apply with address= or cluster="
            )
        if address is not None and not isinstance(address, str):
            raise TypeError(
                f"DaskExecutor(address={address!r}): give the scheduler's address "
                "as a string, e.g. 'tcp://host:8786'"
            )
        if n_workers is not None and (not isinstance(n_workers, int) or n_workers < 1):
            raise ValueError(f"DaskExecutor(n_workers={n_workers!r}): need an int >= 1")
        if not isinstance(threads_per_worker, int) or threads_per_worker < 1:
            raise ValueError(
                f"DaskExecutor(threads_per_worker={threads_per_worker!r}): need an int >= 1"
            )
        self.address = address
        self.cluster = cluster
        self.n_workers = n_workers
        self.threads_per_worker = threads_per_worker
        self.memory_limit = memory_limit
        self.dashboard_address = dashboard_address
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.retries = retries
        self.resources = resources
        self.submit_options = submit_options
        self.timeout = timeout
        self.client: Any = None
        #: What the last run did: jobs submitted to Dask, job results fetched because
        #: their events did not arrive first (normally 0).
        self.stats: dict[str, int] = {}
        self._own_cluster: Any = None

    # -- run lifecycle ---------------------------------------------------------------------
    def start(self, tasks: Sequence[Any], context: RunContext) -> None:
        self._tasks = tasks
        self._jobs = getattr(context, "jobs", None)
        self._token = uuid.uuid4().hex[:16]
        self._flights: dict[str, _Flight] = {}
        self._of_task: dict[int, _Flight] = {}
        self._worker: dict[int, str] = {}  # task index -> where it ran (the table)
        # Dask key (a job's, a value's) -> the tasks whose values it makes or holds: a
        # reader's error names the producer whose value was lost.
        self._made_by: dict[str, tuple[int, ...]] = {}
        self._ready: list[Outcome | Started] = []
        self._inbox: queue.Queue = queue.Queue()
        self._announced = False
        self._declared: dict[str, float] | None = None
        self._undo: list[Callable[[], None]] = []
        self.stats = {"submitted": 0, "results_fetched": 0}
        self._ctx = (
            self._token,
            TOPIC,
            os.getcwd(),
            tuple(sys.path),
            (socket.gethostname(), os.getpid()),
        )
        # An existing scheduler must answer before anything runs; the embedded cluster
        # starts with the first task (a run with nothing to do starts none).
        if self.address is not None or self.cluster is not None:
            self._connect()

    def free_slots(self) -> int:
        if self._jobs:
            return self._jobs - len(self._flights)
        return 1_000_000  # Dask queues and places; the scheduler runs what fits

    def submit(self, job: Job) -> None:
        if self.client is None:
            self._connect()
        if not self._announced:
            self._announce()
        problem = self._resource_problem(job)
        if problem:
            self._ready.append(Outcome(job.index, False, error=problem))
            return
        try:
            blob = _dumps([_payload(st) for st in job.steps])
        except Exception:  # noqa: BLE001 - find what cannot go, and say it
            self._ready.append(Outcome(job.index, False, error=_unpicklable(job)))
            return
        flight = _Flight(
            _key_name(job.steps[0].task.name),
            blob,
            job.values,
            [(st.index, _key_name(st.task.name)) for st in job.steps if st.export_to],
            self._options(job),
            job.indices,
        )
        for i in job.indices:
            self._of_task[i] = flight
            self._worker.pop(i, None)
        self._send(flight)

    def _send(self, flight: _Flight) -> None:
        key = flight.key = f"{flight.name}-{uuid.uuid4().hex}"
        self._made_by[key] = tuple(i for i, _ in flight.exports)
        flight.future = self.client.submit(
            _run_job,
            self._ctx,
            key,
            flight.blob,
            flight.inputs,
            key=key,
            pure=False,
            **flight.options,
        )
        flight.values = {}
        for i, name in flight.exports:
            vkey = f"{name}-value-{uuid.uuid4().hex}"
            self._made_by[vkey] = (i,)
            flight.values[i] = self.client.submit(_value_of, flight.future, i, pure=False, key=vkey)
        self._flights[key] = flight
        self.stats["submitted"] += 1
        flight.future.add_done_callback(lambda f, k=key: self._inbox.put(("done", k)))

    def wait(self, timeout: float | None) -> list[Outcome | Started]:
        # What has arrived is taken even with no time to wait (a redraw may be due).
        events, self._ready = self._ready, []
        events += self._handle(self._drain())
        deadline = None if timeout is None else time.monotonic() + timeout
        while not events and self._flights:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            try:
                first = self._inbox.get(timeout=left)
            except queue.Empty:
                break
            events += self._handle([first, *self._drain()])
        return events

    def cells(self, index: int) -> Sequence[str]:
        return (self._worker.get(index, ""),)

    def cancel(self) -> list[int]:
        flights = list(self._flights.values())
        indices = [i for f in flights for i in f.indices if i not in f.reported]
        futures = [f.future for f in flights] + [v for f in flights for v in f.values.values()]
        running = sum(1 for f in flights if f.running)
        if futures and self.client is not None:
            try:
                self.client.cancel(futures)
            except Exception as e:  # noqa: BLE001 - the scheduler may be gone too
                print(
                    f"warning: cancelling the Dask tasks failed: {e}", file=sys.stderr, flush=True
                )
        if running and self._own_cluster is None:
            # Dask cannot stop a task that runs in a worker thread; the embedded cluster's
            # workers are stopped with it, a shared cluster's run the task to its end.
            print(
                f"Cancelled this run's Dask tasks; {running} already running on workers "
                "of the existing cluster run to their end (Dask cannot stop a running "
                "task), and their results are dropped.",
                file=sys.stderr,
                flush=True,
            )
        self._flights.clear()
        self._of_task.clear()
        return indices

    def shutdown(self) -> None:
        self._flights = {}
        self._of_task = {}
        client, self.client = self.client, None
        cluster, self._own_cluster = self._own_cluster, None
        with _quiet_dask():
            if client is not None:
                with contextlib.suppress(Exception):
                    client.unsubscribe_topic(TOPIC)
                if cluster is None:  # (the embedded cluster's scheduler ends with it)
                    self._end_marks(client)
                with contextlib.suppress(Exception):
                    client.close()
            if cluster is not None:
                with contextlib.suppress(Exception):
                    cluster.close()
        for undo in reversed(getattr(self, "_undo", [])):
            undo()
        self._undo = []
        _unroute_here()

    def _end_marks(self, client: Any) -> None:
        """On a scheduler that outlives the run, the run's started-job marks give way to
        one word that it ended: what Dask would still rerun for it is refused (_claim)."""
        with contextlib.suppress(Exception):
            client.set_metadata([TOPIC, ENDED, self._token], True)
            client.set_metadata([TOPIC, self._token], None)

    # -- connecting ------------------------------------------------------------------------
    def _connect(self) -> None:
        from distributed import Client

        if self.address is None and self.cluster is None:
            self._own_cluster = self._start_local_cluster()
            target: Any = self._own_cluster
        else:
            target = self.cluster if self.cluster is not None else self.address
        where = self.address or getattr(self.cluster, "scheduler_address", None) or "the cluster"
        try:
            with _quiet_dask():
                self.client = Client(target, timeout=self.timeout, set_as_default=False)
        except Exception as e:  # noqa: BLE001 - OSError, TimeoutError, ValueError (address)
            self.shutdown()
            raise DaskConnectionError(
                f"cannot reach the Dask scheduler at {where}: {type(e).__name__}: {e}. "
                "Is it running, and is the address right (e.g. tcp://host:8786)? "
                "Nothing was run."
            ) from None
        self.client.subscribe_topic(TOPIC, lambda ev: self._inbox.put(("event", ev[1])))
        # Dask logs what goes wrong with tracebacks (a lost scheduler, a dead worker); the
        # run reports it itself, per task, in a sentence.
        quiet = logging.getLogger("distributed")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        self._undo.append(lambda: quiet.setLevel(level))

    def _start_local_cluster(self) -> Any:
        import dask
        from distributed import LocalCluster

        from .local import default_workers

        kwargs: dict[str, Any] = dict(
            n_workers=self.n_workers or default_workers(),
            processes=True,
            threads_per_worker=self.threads_per_worker,
            memory_limit=self.memory_limit,
            dashboard_address=self.dashboard_address,
            silence_logs=logging.ERROR,
            # Ctrl-C is the driver's to handle: workers ignore SIGINT (also when restarted).
            preload=[__name__],
        )
        kwargs.update(self.cluster_kwargs)
        self._hide_main()
        old_sigint = None
        if threading.current_thread() is threading.main_thread():
            # Ignored signals stay ignored in the worker processes spawned now.
            old_sigint = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            # A worker that dies fails its task at once (retries= resubmits), as with the
            # other executors; tasks may use multiprocessing (not daemonic workers).
            with (
                dask.config.set(
                    {
                        "distributed.scheduler.allowed-failures": 0,
                        "distributed.worker.daemon": False,
                    }
                ),
                _quiet_dask(),
            ):
                return LocalCluster(**kwargs)
        finally:
            if old_sigint is not None:
                signal.signal(signal.SIGINT, old_sigint)

    def _hide_main(self) -> None:
        """Worker processes are spawned, and spawn re-runs the main script in each child
        unless ``__main__`` looks like a module run with ``-m``; a pipeline script has no
        ``if __name__ == "__main__"`` guard. Until the run ends (the nanny may restart a
        worker), ``__main__.__spec__`` names ``__main__``, which multiprocessing skips."""
        from .processes import hide_main

        shadow = _shadowing_dir()
        if shadow is not None:  # spawned workers start with our sys.path: keep it out
            saved = list(sys.path)
            sys.path[:] = _without(shadow)
            self._undo.append(lambda: sys.path.__setitem__(slice(None), saved))
        undo = hide_main()
        if undo is not None:
            self._undo.append(undo)

    def _info(self) -> dict[str, Any]:
        try:
            return self.client.scheduler_info(n_workers=-1)
        except TypeError:  # older distributed: always all workers
            return self.client.scheduler_info()

    def _announce(self) -> None:
        """Once per run, before the first task goes out: where it runs, the dashboard,
        and a note if tasks ask for resources the workers do not declare."""
        self._announced = True
        info = self._info()
        workers = info.get("workers", {})
        threads = sum(w.get("nthreads", 0) for w in workers.values())
        kind = (
            "embedded LocalCluster"
            if self._own_cluster is not None
            else type(self.cluster).__name__
            if self.cluster is not None
            else "scheduler"
        )
        link = None
        if "dashboard" in (info.get("services") or {}):  # (a scheduler may run without)
            with contextlib.suppress(Exception):
                link = self.client.dashboard_link
        if link and self._own_cluster is not None and importlib.util.find_spec("bokeh") is None:
            link += " (needs `pip install bokeh`)"
        print(
            f"Dask: {kind} at {self.client.scheduler.address}, {len(workers)} worker(s), "
            f"{threads} thread(s)" + (f"; dashboard: {link}" if link else ""),
            file=sys.stderr,
            flush=True,
        )
        declared: dict[str, float] = {}
        for w in workers.values():
            for name, amount in (w.get("resources") or {}).items():
                declared[name] = max(declared.get(name, 0), amount)
        if self.resources is False or (self.resources is None and not workers):
            self._declared = {}
        elif self.resources is True:
            self._declared = None  # pass them all
        else:
            self._declared = declared
        asked: dict[str, list[str]] = {}
        for t in self._tasks:
            for kind_, amount in _asked(t).items():
                if amount and (self._declared is not None and kind_ not in self._declared):
                    asked.setdefault(kind_, []).append(t.label)
        if asked:
            what = ", ".join(f"{k} ({len(v)} task(s), e.g. {v[0]})" for k, v in asked.items())
            why = (
                "no worker is connected yet to say what it has"
                if not workers and self.resources is None
                else "no Dask worker declares them"
            )
            print(
                f"note: tasks ask for Dask resources {what}; {why}, so they are ignored "
                "(start workers with --resources, e.g. `dask worker ... --resources GPU=1`)",
                file=sys.stderr,
                flush=True,
            )

    # -- submitting ------------------------------------------------------------------------
    def _job_resources(self, job: Job) -> dict[str, float]:
        need: dict[str, float] = {}
        for st in job.steps:
            for k, v in _asked(st.task).items():
                if v:
                    need[k] = max(need.get(k, 0), v)
        if self._declared is None:
            return need
        return {k: v for k, v in need.items() if k in self._declared}

    def _resource_problem(self, job: Job) -> str | None:
        if not self._declared:
            return None
        for k, v in self._job_resources(job).items():
            if v > self._declared[k]:
                return (
                    f"task {job.steps[0].task.label} asks for Dask resource {k}={v:g}, "
                    f"more than any worker declares (at most {self._declared[k]:g}); "
                    "it could never start"
                )
        return None

    def _options(self, job: Job) -> dict[str, Any]:
        options: dict[str, Any] = {}
        res = self._job_resources(job)
        if res:
            options["resources"] = res
        if self.submit_options is not None:
            extra = dict(self.submit_options(job.steps[0].task) or {})
            if "resources" in extra and res:
                extra["resources"] = {**res, **extra["resources"]}
            options.update(extra)
        return options

    # -- what comes back -------------------------------------------------------------------
    def _drain(self) -> list[tuple[str, Any]]:
        got = []
        while True:
            try:
                got.append(self._inbox.get_nowait())
            except queue.Empty:
                return got

    def _handle(self, messages: list[tuple[str, Any]]) -> list[Outcome | Started]:
        events: list[Outcome | Started] = []
        for kind, msg in messages:
            if kind == "event":
                events += self._event(msg)
            elif kind == "done":
                events += self._done(msg)
        return events

    def _event(self, msg: Any) -> list[Outcome | Started]:
        if not isinstance(msg, dict) or msg.get("r") != self._token:
            return []  # another run's, on a shared scheduler
        flight = self._flights.get(msg.get("k", ""))
        i = msg.get("i")
        if flight is None or i not in flight.indices or i in flight.reported:
            return []  # a job Dask reruns to rebuild a lost value: its task has ended
        what = msg.get("e")
        if what == "progress":
            from .. import progress

            progress.deliver(i, msg.get("p") or {})
            return []
        if what == "start":
            flight.running = True
            self._worker[i] = _short(msg.get("w", ""))
            return [Started(i)]
        if what == "end":
            return self._outcome(flight, msg.get("m"))
        return []

    def _outcome(self, flight: _Flight, meta: Any) -> list[Outcome | Started]:
        index, ok, error, duration, printed, products, inputs = meta
        if index in flight.reported:
            return []
        flight.reported.add(index)
        if products is not None:
            products = {p: tuple(d) for p, d in products.items()}
        return [
            Outcome(
                index,
                ok,
                value=flight.values.get(index) if ok else None,
                error=error,
                duration=duration,
                printed=printed,
                products=products,
                inputs=inputs,
            )
        ]

    def _done(self, key: str) -> list[Outcome | Started]:
        flight = self._flights.pop(key, None)
        if flight is None:
            return []  # cancelled
        for i in flight.indices:
            if self._of_task.get(i) is flight:
                del self._of_task[i]
        future = flight.future
        left = [i for i in flight.indices if i not in flight.reported]
        if not left:
            return []
        if future.status == "finished":
            # The job's events did not all arrive first: take its outcomes from the result
            # (on the worker; only the small part is fetched, never the values).
            self.stats["results_fetched"] += 1
            try:
                metas = self.client.submit(_metas_of, future, pure=False).result(timeout=60)
            except Exception as e:  # noqa: BLE001
                return [
                    Outcome(
                        left[0],
                        False,
                        error=f"the job's result could not be read "
                        f"from its Dask worker: {type(e).__name__}: {e}",
                    )
                ]
            events: list[Outcome | Started] = []
            for meta in metas:
                events += self._outcome(flight, meta)
            if not any(not m[1] for m in metas):
                rest = [i for i in flight.indices if i not in flight.reported]
                if rest:
                    events.append(
                        Outcome(rest[0], False, error="the job returned no result for this task")
                    )
            return events
        if future.status == "cancelled":
            return [
                Outcome(
                    left[0],
                    False,
                    error="Dask cancelled the task (another client "
                    "cancelled it, or the scheduler restarted or was lost)",
                )
            ]
        exc = _exception(future)
        lost = self._lost_value(flight, exc)
        if lost is not None:
            return [Outcome(left[0], False, error=lost)]
        if (
            isinstance(exc, distributed.KilledWorker)
            and not flight.running
            and flight.resent < _RESEND
            and not self._claimed(flight.key)
        ):
            # Dask fails every task a dying worker held, also those queued behind the one
            # that killed it: a job never seen to start is sent again (a few times: one
            # that kills its worker at once may die before its start is heard of).
            flight.resent += 1
            for i in flight.indices:
                self._of_task[i] = flight
            self._send(flight)
            return []
        return [Outcome(left[0], False, error=self._why(exc))]

    def _claimed(self, key: str) -> bool:
        """Whether job ``key`` started (its start may not have reached us before its
        worker died): then it is not sent again, as its tasks may have run."""
        try:
            return bool(self.client.get_metadata([TOPIC, self._token, key], default=None))
        except Exception:  # noqa: BLE001 - the scheduler is gone: nothing is sent anyway
            return True

    def _lost_value(self, flight: _Flight, exc: BaseException) -> str | None:
        """The job could not start because a value it takes was lost: the worker holding
        it died after its producer had ended. Dask would rebuild it by running the producer
        again; a producer that ended runs once a run, so the reader fails, saying so."""
        key: Any
        if isinstance(exc, _RanAlready):
            key = exc.key
        elif isinstance(exc, distributed.KilledWorker):
            key = exc.task  # (a Dask key: a str for ours)
        else:
            return None
        if key == flight.key or not isinstance(key, str) or key not in self._made_by:
            return None  # its own job (Dask retrying it)
        # The values it takes that Dask could not rebuild: their futures erred too (the
        # job Dask refused to rerun may be further up, a producer of theirs), else those
        # of that job's values it takes (a chain's job makes several).
        index_of = {t.id: i for i, t in enumerate(self._tasks)}  # (inputs are by task id)
        gone = [
            index_of[p]
            for p, f in flight.inputs.items()
            if getattr(f, "status", None) in ("error", "lost", "cancelled") and p in index_of
        ]
        made = self._made_by[key]
        lost = gone or [i for i in made if self._tasks[i].id in flight.inputs] or list(made)
        producer = " and ".join(self._tasks[i].label for i in lost)
        return (
            f"not run: the return value of task {producer} it takes was lost, as the Dask "
            "worker holding it died (a crash, os._exit, or the out-of-memory killer; see "
            f"the task that failed with it). {producer} ended, so it is not run again in "
            "this run: run the pipeline again to rebuild the value."
        )

    def _why(self, exc: BaseException) -> str:
        """Why a job's future erred: a worker's death, or an error outside the task."""
        if isinstance(exc, distributed.KilledWorker):
            last = getattr(getattr(exc, "last_worker", None), "address", "") or ""
            reason = self._memory_reason(last)
            return (
                f"the Dask worker running it{f' ({_short(last)})' if last else ''} died: "
                f"{reason}. Dask says: {exc}"
            )
        if isinstance(exc, _WorkerSetupError):
            return str(exc)
        if isinstance(exc, _RanAlready):
            return (
                "its Dask worker died, while running it or before its result reached this "
                "run, and Dask started it again; a task runs once a run, so it is failed "
                "instead (retries= resubmits a failed task as a new run)"
            )
        return f"Dask could not run it: {type(exc).__name__}: {exc}"

    def _memory_reason(self, worker: str) -> str:
        try:
            for _, msg in reversed(self.client.get_events(_MEMORY_TOPIC)):
                if isinstance(msg, dict) and msg.get("worker") == worker:
                    rss = msg.get("rss")
                    return (
                        "it went over its memory limit and its nanny stopped it (out of "
                        f"memory{f': {rss / 2**20:.0f} MiB in use' if rss else ''})"
                    )
        except Exception:  # noqa: BLE001 - a reason is a courtesy
            pass
        return "a crash, os._exit, or the out-of-memory killer"


def _exception(future: Any) -> BaseException:
    try:
        return future.exception(timeout=10)
    except Exception as e:  # noqa: BLE001 - the scheduler is gone, ...
        return e


# -- in the worker ---------------------------------------------------------------------------
class _WorkerSetupError(Exception):
    """The task could not be set up on the worker (no shared directory, a missing module)."""


def _payload(st: Step) -> tuple:
    t = st.task
    code = getattr(t.func, "__code__", None)
    args, kwargs = t.prepared_call()  # a str given to a Path parameter is a Path, as elsewhere
    return (
        st.index,
        t.id,
        t.name,
        t.func,
        args,
        kwargs,
        st.export_to,
        log_path(st.log),
        st.old_log,
        t.products,
        t.dependencies,
        code.co_filename if code is not None else "",
    )


def _dumps(obj: Any) -> bytes:
    import cloudpickle

    return cloudpickle.dumps(obj)


def _unpicklable(job: Job) -> str:
    """Why a job cannot be sent to a worker, naming the argument or the function."""
    import cloudpickle

    for st in job.steps:
        t = st.task
        for name, value in t.arguments.items():
            if any(v is value for v in t.value_inputs):
                continue  # replaced by the producer's value on the worker
            try:
                cloudpickle.dumps(value)
            except Exception as e:  # noqa: BLE001
                return (
                    f"task {t.label}: argument {name!r} ({type(value).__name__}) cannot be "
                    f"sent to a Dask worker (it cannot be pickled: {e}); pass something "
                    "picklable, or use ParallelExecutor/SequentialExecutor"
                )
    t = job.steps[0].task
    try:
        cloudpickle.dumps([_payload(st) for st in job.steps])
        whole = "unknown reason"
    except Exception as e:  # noqa: BLE001
        whole = str(e)
    return (
        f"task {t.label}: its function {getattr(t.func, '__qualname__', t.func)!r} cannot "
        f"be sent to a Dask worker (it cannot be pickled: {whole})"
    )


class _CwdGate:
    """Tasks run in their driver's working directory. A worker with several threads runs
    tasks at once, and the working directory is the process's: tasks of one directory
    share it, a task of another directory waits until they are done."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._cwd: str | None = None
        self._saved: str | None = None
        self._n = 0

    @contextlib.contextmanager
    def inside(self, cwd: str, worker: str) -> Iterator[None]:
        with self._cond:
            while self._n and self._cwd != cwd:
                self._cond.wait()
            if not self._n:
                try:
                    saved = os.getcwd()
                except OSError:
                    saved = None
                try:
                    os.chdir(cwd)
                except OSError as e:
                    raise _WorkerSetupError(
                        f"the driver's working directory {cwd} cannot be entered on Dask "
                        f"worker {worker} ({e.strerror}): workers must share the driver's "
                        "filesystem at the same paths"
                    ) from None
                self._saved, self._cwd = saved, cwd
            self._n += 1
        try:
            yield
        finally:
            with self._cond:
                self._n -= 1
                if not self._n:
                    if self._saved is not None:
                        with contextlib.suppress(OSError):
                            os.chdir(self._saved)
                    self._cwd = self._saved = None
                    self._cond.notify_all()


_GATE = _CwdGate()
_captures: dict[str, Any] = {}
_captures_lock = threading.Lock()
_routed: tuple[TextIO, TextIO] | None = None  # the streams routing replaced in this process


def _unroute_here() -> None:
    """The driver's run ended: tasks that ran in its own process (in threads) print no
    more, so its streams are given back."""
    global _routed
    with _captures_lock:
        if _captures.pop("thread", None) is not None:
            unroute(_routed)
            _routed = None


class _Steps:
    """The capture run_steps uses, telling the driver each time a step of the job starts."""

    def __init__(self, inner: Any, started: Callable[[str], None]) -> None:
        self.inner, self.started = inner, started

    def begin(self, log: LogPath) -> None:
        self.started(log_path(log))
        self.inner.begin(log)

    def end(self, log: LogPath, old_log: bool = True) -> bool:
        return self.inner.end(log, old_log)


def _capture_for(worker: Any, driver: tuple[str, int]) -> Any:
    """The process's capture: at the fd level when it runs one task at a time and is not
    the driver's own process; else routed per thread."""
    in_driver = driver == (socket.gethostname(), os.getpid())
    kind = "fd" if getattr(worker.state, "nthreads", 1) == 1 and not in_driver else "thread"
    with _captures_lock:
        cap = _captures.get(kind)
        if cap is None:
            if kind == "fd":
                cap = Capture(for_good=False)
            else:  # for the process's life (a worker's), or until the driver's run ends
                global _routed
                _routed = route()
                cap = ThreadCapture()
            _captures[kind] = cap
        return cap


def _run_job(ctx: tuple, key: str, blob: bytes, values: dict[int, Any]) -> tuple[list, dict]:
    """Runs on a worker: the job's tasks in the driver's directory, each outcome sent to
    the driver as an event; returns the outcomes and the values handed on."""
    from distributed import get_worker

    from .. import progress

    token, topic, cwd, sys_path, driver = ctx
    worker = get_worker()
    where = worker.address
    if not _claim(worker, topic, token, key):
        raise _RanAlready(key)

    def emit(what: str, i: int, **more: Any) -> dict:
        msg = {"r": token, "k": key, "e": what, "i": i, **more}
        worker.log_event(topic, msg)
        return msg

    def started(i: int) -> None:
        # Out before the task runs: if it kills the worker, the driver must know it was
        # the one running (Dask fails every task the worker held).
        _flush(worker, emit("start", i, w=where))

    for p in sys_path:  # the script's own modules, found as in the driver
        if p not in sys.path:
            sys.path.append(p)
    with _GATE.inside(cwd, where):
        try:
            steps = pickle.loads(blob)
        except Exception as e:  # noqa: BLE001 - a module the worker cannot import, ...
            raise _WorkerSetupError(
                f"the task could not be loaded on Dask worker {where}: {type(e).__name__}: {e} "
                "(workers need the driver's environment and files)"
            ) from None
        try:
            values = {k: v.open() if isinstance(v, _Boxed) else v for k, v in values.items()}
        except Exception as e:  # noqa: BLE001
            raise _WorkerSetupError(
                f"a value the task takes could not be loaded on Dask worker {where}: "
                f"{type(e).__name__}: {e} (workers need the driver's environment and files)"
            ) from None
        # A _Remote (the one Slurm jobs and spawned workers use) stands in for the Task.
        from .slurm_job import _Remote

        job = Job(
            [
                Step(
                    index,
                    _Remote(task_id, name, func, args, kwargs, source, products, deps),  # type: ignore[arg-type]
                    "",
                    export_to,
                    log,
                    old_log,
                )
                for (
                    index,
                    task_id,
                    name,
                    func,
                    args,
                    kwargs,
                    export_to,
                    log,
                    old_log,
                    products,
                    deps,
                    source,
                ) in steps
            ],
            values,
        )
        by_log = {log_path(st.log): st.index for st in job.steps if st.log}
        if not by_log:
            started(job.index)
        capture = _Steps(_capture_for(worker, driver), lambda log: started(by_log[log]))

        def send_progress(i: int, snap: dict[str, Any]) -> None:
            emit("progress", i, p=snap)

        progress.set_thread_sink(send_progress)
        metas: list[tuple] = []
        handed: dict[int, Any] = {}
        exported = {st.index for st in job.steps if st.export_to}
        try:
            # (Ctrl-C never reaches a worker: a KeyboardInterrupt here is the task's own.)
            for o in run_steps(
                job, _check_picklable, capture, hash_products=True, own_interrupts=True
            ):
                error = f"on Dask worker {where}:\n{o.error}" if o.error else None
                products = {p: list(d) for p, d in o.products.items()} if o.products else o.products
                meta = (o.index, o.ok, error, o.duration, o.printed, products, o.inputs)
                metas.append(meta)
                if o.ok and o.index in exported:
                    handed[o.index] = o.value
                emit("end", o.index, m=list(meta))
        finally:
            progress.set_thread_sink(None)
    return metas, handed


class _RanAlready(Exception):
    """Dask started a job of this run a second time; it is refused, as a task runs at most
    once a run (a retry is the driver's to decide, with the task's record)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"job {self.key} ran already in this run"


def _claim(worker: Any, topic: str, token: str, key: str) -> bool:
    """Mark job ``key`` as started in the scheduler, which every worker shares; False if
    it was already, or if its run has ended. Dask runs a finished job again when a value
    it made was lost with a dead worker and is still wanted (a reader, or the driver until
    it lets go), or, with allowed-failures above 0, after a worker died running it: the
    task's effects would happen twice, its products be rewritten after its record."""
    import asyncio

    from distributed.utils import sync

    meta = worker.scheduler

    async def claim() -> bool:
        # Two reads at once, then the mark: two round trips before the task starts.
        ended, started = await asyncio.gather(
            meta.get_metadata(keys=[topic, ENDED, token], default=None),
            meta.get_metadata(keys=[topic, token, key], default=None),
        )
        if ended or started:
            return False
        await meta.set_metadata(keys=[topic, token, key], value=True)
        return True

    return bool(sync(worker.loop, claim))


def _flush(worker: Any, msg: dict) -> None:
    """Wait (briefly) until the worker's event loop has sent ``msg``: it queues it, then
    its batched stream takes the queue (at most every few ms), then writes it."""
    done = threading.Event()
    with contextlib.suppress(Exception):
        worker.loop.add_callback(lambda: worker.loop.add_callback(done.set))
        done.wait(0.5)
        stream = worker.batched_stream
        deadline = time.monotonic() + 0.2
        while any(m.get("msg") is msg for m in list(stream.buffer)) and time.monotonic() < deadline:
            time.sleep(0.001)
        done.clear()
        worker.loop.add_callback(done.set)  # (the round that writes what it took)
        done.wait(0.5)


def _check_picklable(step: Step, value: Any) -> Any:
    """A value another task takes stays here, boxed; fail its producer now if it could not
    be moved to another worker (large buffers are not copied by this check)."""
    import cloudpickle

    cloudpickle.dumps(value, protocol=5, buffer_callback=lambda b: None)
    return _Boxed(value)


class _Boxed:
    """A value handed between tasks, as Dask holds and moves it. Dask unpickles what it
    receives before our code runs, and a value's class may live in a module only the
    driver's ``sys.path`` finds (next to the script): a failed unpickling there makes Dask
    retry the transfer for ever. So the box travels as bytes (large buffers out of band,
    not copied) and is opened in the task, once ``sys.path`` is set; on the worker that
    made it, it is the object itself."""

    __slots__ = ("_value", "_data", "_buffers")

    def __init__(self, value: Any = None, data: bytes | None = None, buffers: Any = ()) -> None:
        self._value, self._data, self._buffers = value, data, buffers

    def __reduce__(self) -> Any:
        if self._data is not None:
            return _unbox, (self._data, list(self._buffers))
        import cloudpickle

        buffers: list[pickle.PickleBuffer] = []
        data = cloudpickle.dumps(self._value, protocol=5, buffer_callback=buffers.append)
        return _unbox, (data, buffers)

    def open(self) -> Any:
        if self._data is not None:
            self._value = pickle.loads(self._data, buffers=self._buffers)
            self._data, self._buffers = None, ()
        return self._value


def _unbox(data: bytes, buffers: list) -> _Boxed:
    return _Boxed(data=data, buffers=buffers)


def _value_of(result: tuple[list, dict], index: int) -> Any:
    return result[1][index]


def _metas_of(result: tuple[list, dict]) -> list:
    return result[0]


def dask_setup(worker: Any) -> None:
    """Preload of the embedded cluster's workers: Ctrl-C in the driver's terminal reaches
    them too, and stopping them is the driver's to decide."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker the nanny restarts does not inherit the cluster's silence_logs.
    logging.getLogger("distributed").setLevel(logging.ERROR)
    # The driver reports what these mean, per task, in a sentence.
    logging.getLogger("distributed.worker").addFilter(_OwnErrors())


class _OwnErrors(logging.Filter):
    """Drops a worker's "Compute Failed" log of a job refused or not set up by us."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(
            isinstance(a, str) and a.startswith(("_RanAlready(", "_WorkerSetupError("))
            for a in (record.args if isinstance(record.args, tuple) else ())
        )


# -- helpers ---------------------------------------------------------------------------------
def _asked(task: Any) -> dict[str, float]:
    r = task.resources
    return {
        RESOURCE_NAMES["cpus"]: r.cpus or 0,
        RESOURCE_NAMES["memory"]: (r.memory_mb or 0) * 2**20,
        RESOURCE_NAMES["gpus"]: r.gpus or 0,
    }


def _key_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_." else "_" for c in name)[:60] or "task"


def _short(address: str) -> str:
    return address.split("://", 1)[-1]


@contextlib.contextmanager
def _quiet_dask() -> Iterator[None]:
    """Dask's own chatter while we start and stop it (a busy dashboard port, closing
    comms) is not the user's business; errors that matter reach us as exceptions."""
    loggers = [logging.getLogger(n) for n in ("distributed", "tornado")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
