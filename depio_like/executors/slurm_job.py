"""What runs inside a Slurm (or submitit-local) job: the tasks' payload, built in the
driver, and the function that runs it on the node. Kept apart from the driver's side:
this module is imported in every job."""

from __future__ import annotations

import pickle
import sys
from typing import Any, Callable

from .base import Job

def payload(job: Job) -> tuple:
    steps = []
    for st in job.steps:
        t = st.task
        code = getattr(t.func, "__code__", None)
        source = code.co_filename if code is not None else ""
        steps.append((st.index, t.id, t.name, t.func, t.call_args, t.call_kwargs,
                      st.fingerprint, source, st.export_to, st.log, t.products))
    return (steps, job.values)


def unpicklable(cloudpickle: Any, item: tuple, job: Job) -> str | None:
    """Why ``item`` cannot be sent to a job (naming the argument), or None if it can."""
    try:
        cloudpickle.dumps(item)
        return None
    except Exception as e:  # noqa: BLE001 - any pickling failure
        whole = e
    for st in job.steps:
        t = st.task
        for name, value in t.arguments.items():
            if t.value_inputs and any(v is value for v in t.value_inputs):
                continue  # replaced by the producer's value in the job
            try:
                cloudpickle.dumps(value)
            except Exception as e:  # noqa: BLE001
                return (f"task {t.label}: argument {name!r} ({type(value).__name__}) cannot be "
                        f"sent to a job (it cannot be pickled: {e}); pass something picklable, "
                        "or use ParallelExecutor/SequentialExecutor")
    t = job.steps[0].task
    return (f"task {t.label}: its function {getattr(t.func, '__qualname__', t.func)!r} cannot "
            f"be sent to a job (it cannot be pickled: {whole})")


class _Remote:
    """A task as a job sees it: its function and arguments, nothing of the graph."""

    def __init__(self, task_id: int, name: str, func: Callable[..., Any], args: Any,
                 kwargs: Any, source: str, products: tuple[str, ...] = ()) -> None:
        self.id, self.name, self.func, self.args, self.kwargs = task_id, name, func, args, kwargs
        self.products = products
        code = getattr(func, "__code__", None)
        if source and code is not None and code.co_filename != source:
            # cloudpickle sends functions of the user's script by value and their code
            # forgets its file name; give it back, so tracebacks show the script's lines.
            func.__code__ = code.replace(co_filename=source)

    def run(self, values: Any) -> Any:
        from ..channel import fill

        try:
            return self.func(*fill(self.args, values), **fill(self.kwargs, values))
        except Exception as e:
            # submitit turns Slurm's warning signal before the time limit into this error,
            # raised wherever the task happened to be: say what it means.
            if type(e).__name__ == "UncompletedJobError" and "timed-out" in str(e):
                raise TimeoutError(f"TIMEOUT: task {self.name!r} ran into the job's Slurm time "
                                   "limit; give it more with resources={'time': minutes}"
                                   ).with_traceback(e.__traceback__) from None
            raise


def run_tasks(sys_path: list[str], blob: bytes, value_dir: str) -> list[tuple]:
    """Runs in the job: each job's tasks in turn, every failure turned into a result."""
    from .base import Capture, Step, export_to_file, run_steps

    sys.path[:] = sys_path + [p for p in sys.path if p not in sys_path]
    jobs = pickle.loads(blob)
    export = export_to_file(value_dir)
    capture = Capture(for_good=False)  # between tasks, submitit's own lines reach the Slurm log
    results = []
    for steps, values in jobs:
        fps = {index: fp for index, _i, _n, _f, _a, _k, fp, *_ in steps}
        names = {index: name for index, _i, name, *_ in steps}
        job = Job([Step(index, _Remote(task_id, name, func, args, kwargs, source, products), fp,
                        export_to, log)
                   for index, task_id, name, func, args, kwargs, fp, source, export_to, log,
                   products in steps], values)
        # Products are hashed here, on the node that wrote them: the driver need not read
        # them back over the shared filesystem.
        for o in run_steps(job, export, capture, hash_products=True):
            error = f"task {names[o.index]!r} failed in the job:\n{o.error}" if o.error else None
            results.append((o.index, o.ok, error, o.duration, fps[o.index], o.value, o.printed,
                            o.products))
    capture.close()
    return results
