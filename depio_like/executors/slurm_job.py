"""What runs inside a Slurm (or submitit-local) job: the tasks' payload, built in the
driver, and the function that runs it on the node. Kept apart from the driver's side:
this module is imported in every job."""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .base import Job, JobEnding, format_task_exception, log_path


@dataclass
class StepPayload:
    """One task as it travels to a job: what to call, and where its output and value go."""

    index: int  # the task's index in the driver's run
    task_id: int
    name: str
    func: Callable[..., Any]
    args: Any
    kwargs: Any
    fingerprint: str
    source: str  # the file the function was defined in (for tracebacks)
    export_to: tuple[str, ...]
    log: str
    old_log: bool
    products: tuple[str, ...]
    dependencies: tuple[str, ...] = ()


@dataclass
class JobPayload:
    """One of the driver's jobs (a task, or a chain of tasks) and the values it takes."""

    steps: list[StepPayload]
    values: dict[int, Any]


@dataclass
class StepResult:
    """How one task ended in the job, as the job hands it back to the driver."""

    index: int
    ok: bool
    error: str | None
    duration: float
    fingerprint: str  # the driver matches results by it (indices may differ)
    value: Any = None  # the return value, or a ValueFile, for tasks outside
    printed: bool = True
    products: dict[str, Any] | None = None
    inputs: dict[str, str | None] | None = None  # inputs as the job read them


def payload(job: Job) -> JobPayload:
    steps = []
    for st in job.steps:
        t = st.task
        code = getattr(t.func, "__code__", None)
        source = code.co_filename if code is not None else ""
        steps.append(
            StepPayload(
                st.index,
                t.id,  # type: ignore[arg-type]  # set: the task is in the graph
                t.name,
                t.func,
                *t.prepared_call(),
                st.fingerprint,
                source,
                st.export_to,
                log_path(st.log),
                st.old_log,
                t.products,
                t.dependencies,
            )
        )
    return JobPayload(steps, job.values)


def unpicklable(cloudpickle: Any, item: JobPayload, job: Job) -> str | None:
    """Why ``item`` cannot be sent to a job (naming the argument), or None if it can."""
    try:
        cloudpickle.dumps(item)
        return None
    except Exception as e:  # noqa: BLE001 - any pickling failure
        whole = e
    for st in job.steps:
        why = _bad_argument(cloudpickle, st.task, "a job", "ParallelExecutor/SequentialExecutor")
        if why is not None:
            return why
    t = job.steps[0].task
    return (
        f"task {t.label}: its function {getattr(t.func, '__qualname__', t.func)!r} cannot "
        f"be sent to a job (it cannot be pickled: {whole})"
    )


def _bad_argument(cloudpickle: Any, t: Any, where: str, instead: str) -> str | None:
    for name, value in t.arguments.items():
        if t.value_inputs and any(v is value for v in t.value_inputs):
            continue  # replaced by the producer's value in the job
        try:
            cloudpickle.dumps(value)
        except Exception as e:  # noqa: BLE001
            return (
                f"task {t.label}: argument {name!r} ({type(value).__name__}) cannot be "
                f"sent to {where} (it cannot be pickled: {e}); pass something picklable, "
                f"or use {instead}"
            )
    return None


def pickled_tasks(tasks: Sequence[Any]) -> list[bytes]:
    """Each task as a spawned worker process runs it (function, arguments, paths), pickled
    with cloudpickle; ``TaskNotPicklableError`` naming the first task (and argument) that
    cannot be."""
    import cloudpickle

    from ..errors import TaskNotPicklableError

    out = []
    for t in tasks:
        code = getattr(t.func, "__code__", None)
        args, kwargs = t.prepared_call()
        remote = _Remote(
            t.id,
            t.name,
            t.func,
            args,
            kwargs,
            code.co_filename if code is not None else "",
            t.products,
            t.dependencies,
        )
        try:
            out.append(cloudpickle.dumps(remote))
        except Exception as e:  # noqa: BLE001 - pickling can raise anything
            instead = "ParallelExecutor(start_method='fork') or ThreadExecutor"
            raise TaskNotPicklableError(
                _bad_argument(cloudpickle, t, "a spawned worker process", instead)
                or f"task {t.label}: its function {getattr(t.func, '__qualname__', t.func)!r} "
                f"cannot be sent to a spawned worker process (it cannot be pickled: {e}); "
                f"use {instead}"
            ) from None
    return out


class _Remote:
    """A task as a job sees it: its function and arguments, nothing of the graph."""

    def __init__(
        self,
        task_id: int,
        name: str,
        func: Callable[..., Any],
        args: Any,
        kwargs: Any,
        source: str,
        products: tuple[str, ...] = (),
        dependencies: tuple[str, ...] = (),
    ) -> None:
        self.id, self.name, self.func, self.args, self.kwargs = task_id, name, func, args, kwargs
        self.products = products
        self.dependencies = dependencies
        code = getattr(func, "__code__", None)
        if source and code is not None and code.co_filename != source:
            # cloudpickle sends functions of the user's script by value and their code
            # forgets its file name; give it back, so tracebacks show the script's lines.
            func.__code__ = code.replace(co_filename=source)

    def run(self, values: Any) -> Any:
        from ..channel import fill
        from ..task import finish  # async def: awaited; generator: exhausted

        try:
            return finish(self.func(*fill(self.args, values), **fill(self.kwargs, values)))
        except Exception as e:
            # submitit turns Slurm's warning signal before the time limit into this error,
            # raised wherever the task happened to be: the job must end, saying why.
            if type(e).__name__ == "UncompletedJobError" and "timed-out" in str(e):
                # Where it was when time ran out, as a traceback like any failure's.
                timeout = TimeoutError(
                    f"TIMEOUT: task {self.name!r} ran into the job's Slurm "
                    "time limit; give it more with resources={'time': minutes}"
                )
                raise JobEnding(
                    format_task_exception(timeout.with_traceback(e.__traceback__))
                ) from e
            raise
        except SystemExit as e:
            # On preemption submitit requeues the job and exits: let it (the requeued job
            # runs these tasks again), rather than calling it the task's own sys.exit.
            if _raised_by_submitit(e):
                raise JobEnding("preempted: requeued", requeued=True) from e
            raise


def run_tasks(sys_path: list[str], blob: bytes, value_dir: str) -> list[StepResult]:
    """Runs in the job: each job's tasks in turn, every failure turned into a result. A
    time limit ends the element: the task it hit fails with it, later ones never start."""
    from .base import Capture, Step, export_to_file, run_steps

    sys.path[:] = sys_path + [p for p in sys.path if p not in sys_path]
    payloads: list[JobPayload] = pickle.loads(blob)
    # A _Remote stands in for the Task: it has what run_steps uses (id, name, run, products,
    # dependencies).
    jobs = [
        Job(
            [
                Step(
                    s.index,
                    _Remote(
                        s.task_id,
                        s.name,
                        s.func,
                        s.args,
                        s.kwargs,
                        s.source,  # type: ignore[arg-type]
                        s.products,
                        s.dependencies,
                    ),
                    s.fingerprint,
                    s.export_to,
                    s.log,
                    s.old_log,
                )
                for s in p.steps
            ],
            p.values,
        )
        for p in payloads
    ]
    export = export_to_file(value_dir)
    capture = Capture(for_good=False)  # between tasks, submitit's own lines reach the Slurm log
    results: list[StepResult] = []
    current = jobs[0] if jobs else None
    try:
        for current in jobs:
            steps = {st.index: st for st in current.steps}
            # Products are hashed here, on the node that wrote them: the driver need not
            # read them back over the shared filesystem.
            for o in run_steps(current, export, capture, hash_products=True):
                st = steps[o.index]
                error = f"task {st.task.name!r} failed in the job:\n{o.error}" if o.error else None
                results.append(
                    StepResult(
                        o.index,
                        o.ok,
                        error,
                        o.duration,
                        st.fingerprint,
                        o.value,
                        o.printed,
                        o.products,
                        o.inputs,
                    )
                )
    except JobEnding as e:
        capture.close()
        if e.requeued:
            raise SystemExit(-1) from None
        # The task it stopped fails with the reason; the driver fails the jobs that never
        # started for want of a result.
        assert current is not None
        done = {r.index for r in results}
        hit = next(st for st in current.steps if st.index not in done)
        results.append(
            StepResult(
                hit.index,
                False,
                f"task {hit.task.name!r} failed in the job:\n{e}",
                0.0,
                hit.fingerprint,
            )
        )
        return results
    capture.close()
    return results


def _raised_by_submitit(e: BaseException) -> bool:
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and "submitit" in tb.tb_frame.f_code.co_filename
