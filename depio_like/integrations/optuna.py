"""Optuna studies whose trials run as depio_like tasks, on any executor.

``run_optuna_study(study, objective, n_trials, batch_size, executor)`` runs the study in
*generations* of ``batch_size`` trials. Each generation is one pipeline run: the driver
asks the study for ``batch_size`` trials, runs one task per trial (at the same time, as
the executor allows: worker processes, Slurm jobs), and asks for the next generation only
once every trial of this one has been told, so the sampler learns from all earlier
results. A larger ``batch_size`` means more trials at once and fewer chances to learn.

How a trial reaches its task. The driver creates the trial (``study.ask()``); the task
rebuilds it from the study's storage and calls ``objective(trial)`` with a real
``optuna.Trial``: ``suggest_*``, ``report``/``should_prune``, user attributes and
``trial.study`` work as under ``study.optimize``. The task leaves how the trial ended in
the trial's system attribute ``depio_like:result`` (``RESULT_ATTR``), and the driver
tells the study once the whole generation has ended: COMPLETE with the returned
value(s); PRUNED if the objective raised ``optuna.TrialPruned`` (the task is FINISHED);
FAIL for any other exception (the task is FAILED, with the traceback in its log; the
exception is kept in the ``fail_reason`` system attribute, as optuna does) or a value
optuna does not accept (NaN, None, the wrong number of values). A trial that left
nothing (its worker or Slurm job was killed, Ctrl-C) is told FAIL. Telling after the
generation means every trial of a generation sees the same finished trials (those of
earlier generations), whatever order its trials run in; a trial's ``datetime_complete``
is when the generation was told.

Which storage. The task must reach the study from wherever it runs:

- A study with a persistent storage (``JournalStorage`` with a file backend, an RDB URL
  such as ``sqlite:///study.db``) is used as it is; in another process the task opens it
  anew. For Slurm, the file must be on a filesystem the compute nodes share (as the state
  directory must be); an RDB server must be reachable from them.
- A study in memory (``optuna.create_study()`` without ``storage``) cannot be reached from
  another process. With ``SequentialExecutor`` the tasks run in the driver and use it
  directly. With any other executor the study is copied (its trials and attributes) into
  a journal file under the pipeline's state directory,
  ``<state_dir>/optuna/<study>-<id>.journal``; the trials run against that copy, and
  after each generation its new trials are added to your study, with the same numbers,
  so ``study.best_value`` and friends work afterwards. The copy is deleted at the end.
  Limits: attributes the objective sets on the *study* (``trial.study.set_user_attr``)
  stay in the copy; only trials come back.

Samplers and seeds. Each trial samples with its own copy of ``study.sampler``. Trials
that run at the same time in different processes would otherwise start from the same
random state and suggest the same values (optuna's ``reseed_rng`` avoids that at the
price of reproducibility). Here every random generator of the copy (numpy ``RandomState``
objects, as optuna's samplers keep) is seeded from the pair (a number drawn once per call
from the sampler's own generator, the trial number). So a seeded sampler gives the same
trials on every executor, one at a time or many at once, as long as it looks only at
finished trials: ``TPESampler(seed=0, constant_liar=False)`` (the default before optuna
5), ``RandomSampler``, ``QMCSampler``. A sampler that also looks at running trials (the
constant liar, the default of ``TPESampler`` since optuna 5) sees whichever trials of the
generation have started, which depends on timing. An unseeded sampler is random; a
sampler without such generators gets ``reseed_rng()``. Samplers keep what they learn in
the storage (as optuna's do, since they support distributed studies), so nothing is lost
by the copy.

Caching. Each trial is its own task (named ``trial-<number>``, identified by the study,
its storage and the trial), and runs every time (``always=True``): rerunning the script
never reuses an earlier trial's result. The pipeline's state directory still records
each trial (one line each).

Needs the ``optuna`` extra: ``pip install 'depio_like[optuna]'``.
"""

from __future__ import annotations

import copy
import os
import pickle
import re
import socket
import sys
import uuid
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..pipeline import DEFAULT_STATE_DIR, Pipeline
from ..task import Task

if TYPE_CHECKING:  # pragma: no cover
    import optuna

    from ..executors.base import Executor

__all__ = ["run_optuna_study", "RESULT_ATTR"]

#: The trial system attribute in which a trial's task leaves its result for the driver.
RESULT_ATTR = "depio_like:result"

_EXTRA_HINT = (
    "depio_like.integrations.optuna needs optuna: "
    "pip install 'depio_like[optuna]' (or: pip install 'optuna>=3')"
)


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as e:
        raise ImportError(f"{_EXTRA_HINT} [{e}]") from e
    return optuna


def _journal_storage(path: str) -> Any:
    optuna = _optuna()
    try:
        from optuna.storages.journal import JournalFileBackend  # optuna >= 4.0
    except ImportError:
        try:
            from optuna.storages import JournalFileStorage as JournalFileBackend  # 3.1 - 3.6
        except ImportError as e:
            raise ImportError(
                "running an in-memory study outside the driver's process needs "
                "optuna's JournalStorage (optuna >= 3.1); upgrade optuna, or "
                "give the study a storage (e.g. sqlite:///study.db)"
            ) from e
    return optuna.storages.JournalStorage(JournalFileBackend(path))


def _is_in_memory(storage: Any) -> bool:
    from optuna.storages import InMemoryStorage

    return isinstance(storage, InMemoryStorage)


def _here() -> tuple[str, int]:
    return (socket.gethostname(), os.getpid())


# ---------------------------------------------------------------- seeds
def _random_states(root: Any) -> list[Any]:
    """The numpy ``RandomState`` objects of a sampler (and of the samplers it holds), in a
    fixed order; lazily created ones (optuna's ``LazyRandomState``) are created."""
    import numpy as np
    from optuna.samplers import BaseSampler

    found: list[Any] = []
    seen: set[int] = set()
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, np.random.RandomState):
            found.append(obj)
            continue
        lazy = isinstance(getattr(type(obj), "rng", None), property) and hasattr(obj, "_rng")
        if lazy:
            rng = obj.rng  # creates it if it was never used
            if isinstance(rng, np.random.RandomState):
                stack.append(rng)
            continue
        if isinstance(obj, BaseSampler):
            stack.extend(
                reversed(
                    [
                        v
                        for v in vars(obj).values()
                        if isinstance(v, (BaseSampler, np.random.RandomState))
                        or (
                            isinstance(getattr(type(v), "rng", None), property)
                            and hasattr(v, "_rng")
                        )
                    ]
                )
            )
    return found


def _draw_seed(sampler: Any) -> int | None:
    """A number from the sampler's own generator (so a seeded sampler gives the same
    numbers run after run), or None if it has none."""
    states = _random_states(sampler)
    return int(states[0].randint(0, 2**31 - 1)) if states else None


def _trial_sampler(sampler: Any, seed: int | None, number: int) -> Any:
    """A copy of ``sampler`` whose generators are seeded from (seed, trial number)."""
    import numpy as np

    try:
        mine = copy.deepcopy(sampler)
    except Exception:  # noqa: BLE001 - a sampler that cannot be copied is used as it is
        mine = sampler
    states = _random_states(mine) if seed is not None else []
    if seed is None or not states:
        mine.reseed_rng()
        return mine
    for j, rs in enumerate(states):
        rs.seed(int(np.random.SeedSequence([seed, number, j]).generate_state(1)[0]))
    return mine


# ---------------------------------------------------------------- the task
class _TrialRef:
    """Everything a trial's task needs: travels to worker processes and Slurm jobs (by
    pickle), and names the trial for the task's identity without hashing any of it."""

    def __init__(
        self,
        *,
        storage: Any,
        storage_key: str,
        study_name: str,
        trial_id: int,
        number: int,
        started: str,
        objective: Callable[..., Any],
        sampler: Any,
        pruner: Any,
        seed: int | None,
        driver: tuple[str, int],
    ) -> None:
        self.storage = storage
        self.storage_key = storage_key
        self.study_name = study_name
        self.trial_id = trial_id
        self.number = number
        self.started = started
        self.objective = objective
        self.sampler = sampler
        self.pruner = pruner
        self.seed = seed
        self.driver = driver

    def __depio_canonical__(self) -> str:
        return (
            f"optuna-trial:{self.storage_key}:{self.study_name!r}:{self.trial_id}:"
            f"{self.number}:{self.started}"
        )

    def __repr__(self) -> str:
        return f"<trial {self.number} of study {self.study_name!r}>"

    def run(self) -> Any:
        optuna = _optuna()

        storage = self.storage
        if _here() != self.driver:
            if _is_in_memory(storage):
                raise RuntimeError(
                    f"trial {self.number} of study {self.study_name!r} runs in another "
                    "process than the driver, but the study is in memory there (this should "
                    "not happen: run_optuna_study copies such a study into a journal file "
                    "unless the executor is SequentialExecutor)"
                )
            # A fresh handle: new locks and connections, and (journal) its own worker id.
            storage = pickle.loads(pickle.dumps(storage))
        study = optuna.load_study(
            study_name=self.study_name,
            storage=storage,
            sampler=_trial_sampler(self.sampler, self.seed, self.number),
            pruner=self.pruner,
        )
        trial = optuna.Trial(study, self.trial_id)
        try:
            try:
                result = self.objective(trial)
            except optuna.TrialPruned:
                storage.set_trial_system_attr(self.trial_id, RESULT_ATTR, {"state": "PRUNED"})
                return None
            values = _values(result, len(study.directions), self.number)
        except BaseException as e:
            try:  # where optuna's own optimize() keeps it
                storage.set_trial_system_attr(
                    self.trial_id, "fail_reason", f"{type(e).__name__}: {e}"
                )
            except Exception:  # noqa: BLE001 - the objective's error is the one to show
                pass
            raise
        storage.set_trial_system_attr(
            self.trial_id, RESULT_ATTR, {"state": "COMPLETE", "values": values}
        )
        return values[0] if len(values) == 1 else values


def _values(result: Any, n: int, number: int) -> list[float]:
    """The objective's return value as optuna takes it, or a ValueError saying why not."""
    import math

    many = isinstance(result, Sequence) and not isinstance(result, (str, bytes))
    items = list(result) if many else [result]
    problem = None
    if len(items) != n:
        problem = f"{len(items)} value(s) for a study with {n} objective(s)"
    else:
        try:
            values = [float(v) for v in items]
        except (TypeError, ValueError) as e:
            problem = f"not a number ({e})"
        else:
            if any(math.isnan(v) for v in values):
                problem = "NaN is not a value optuna accepts"
            else:
                return values
    raise ValueError(
        f"trial {number}: the objective returned {result!r}: {problem}; the trial is told FAIL"
    )


def _run_trial(trial: _TrialRef) -> Any:
    """The task of one trial: call the objective and tell the study how it ended."""
    return trial.run()


# ---------------------------------------------------------------- the driver
def _storage_key(storage: Any, journal_path: str | None) -> str:
    if journal_path is not None:
        return f"journal:{journal_path}"
    url = getattr(storage, "url", None) or getattr(
        getattr(storage, "_backend", None), "_file_path", None
    )
    return f"{type(storage).__name__}:{url or id(storage)}"


def _tell_generation(work: Any, numbers: set[int]) -> list[Any]:
    """Tell the study how each trial of the generation ended (from what its task left in
    the trial's system attributes; nothing: FAIL); return the trials, in number order."""
    from optuna.trial import TrialState

    for ft in sorted(
        (ft for ft in work.get_trials(deepcopy=False) if ft.number in numbers),
        key=lambda ft: ft.number,
    ):
        if ft.state.is_finished():  # told already (by the objective itself)
            continue
        result = ft.system_attrs.get(RESULT_ATTR) or {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an unacceptable value was caught in the task
            if result.get("state") == "COMPLETE":
                work.tell(ft.number, result["values"], skip_if_finished=True)
            elif result.get("state") == "PRUNED":
                work.tell(ft.number, state=TrialState.PRUNED, skip_if_finished=True)
            else:  # the task failed, was killed, or never ran
                work.tell(ft.number, state=TrialState.FAIL, skip_if_finished=True)
    return sorted(
        (ft for ft in work.get_trials(deepcopy=False) if ft.number in numbers),
        key=lambda ft: ft.number,
    )


def _mirror(study: Any, trials: list[Any], waiting: dict[int, int]) -> list[Any]:
    """Add the trials of the journal copy to ``study`` (in memory), in number order, so
    they get the same numbers there; a trial that was enqueued in ``study`` (WAITING)
    is completed in place. Returns them as ``study`` has them."""
    from optuna.trial import TrialState

    storage = study._storage
    for ft in trials:
        trial_id = waiting.pop(ft.number, None)
        if trial_id is None:
            study.add_trial(ft)
            continue
        storage.set_trial_state_values(trial_id, TrialState.RUNNING)
        for name, value in ft.params.items():
            dist = ft.distributions[name]
            storage.set_trial_param(trial_id, name, dist.to_internal_repr(value), dist)
        for step, value in ft.intermediate_values.items():
            storage.set_trial_intermediate_value(trial_id, step, value)
        for key, value in ft.user_attrs.items():
            storage.set_trial_user_attr(trial_id, key, value)
        for key, value in ft.system_attrs.items():
            storage.set_trial_system_attr(trial_id, key, value)
        storage.set_trial_state_values(trial_id, ft.state, ft.values)
    numbers = {ft.number for ft in trials}
    return [t for t in study.get_trials(deepcopy=False) if t.number in numbers]


def _describe(ft: Any) -> str:
    def short(v: Any) -> str:
        return f"{v:.6g}" if isinstance(v, float) else repr(v)

    params = ", ".join(f"{k}={short(v)}" for k, v in ft.params.items())
    if ft.values is not None:
        value = ", ".join(short(v) for v in ft.values)
        return f"trial {ft.number} {ft.state.name} value {value} ({params})"
    return f"trial {ft.number} {ft.state.name} ({params})"


def run_optuna_study(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], Any],
    n_trials: int,
    batch_size: int,
    executor: Executor | None = None,
    pipeline_kwargs: dict[str, Any] | None = None,
    *,
    callbacks: Iterable[Callable[[optuna.Study, Any], Any]] | None = None,
    resources: dict[str, Any] | None = None,
) -> optuna.Study:
    """Run ``n_trials`` trials of ``study`` as depio_like tasks, ``batch_size`` at a time.

    ``objective(trial)`` is the usual Optuna objective: it calls ``trial.suggest_*`` and
    returns the value (a sequence for a multi-objective study); it runs inside a task, so
    wherever ``executor`` runs tasks (default ``ParallelExecutor()``). On Slurm it travels
    with cloudpickle, like any task function, and ``resources`` (``{"gpus": 1, "time":
    120}``, see the README) apply to every trial.

    Trials run in generations: ask ``batch_size`` trials, run them (one pipeline run,
    one task each), tell their results, then ask the next generation. A trial that raises
    ``optuna.TrialPruned`` is PRUNED (its task FINISHED); one that raises anything else is
    FAIL (its task FAILED) and the study goes on.

    ``pipeline_kwargs`` go to each generation's ``Pipeline`` (``state_dir``, ``quiet``,
    ``stream``, ``show_output``, ...). ``callbacks``: ``callback(study, frozen_trial)``
    after each trial is told, in the driver, in trial order, as with ``study.optimize``.
    Returns ``study``. Ctrl-C stops the generation (its unfinished trials are told FAIL)
    and raises ``KeyboardInterrupt``.

    See the module's documentation for which storages work where, and for seeds.
    """
    optuna = _optuna()
    from optuna.trial import TrialState

    from ..executors.local import ParallelExecutor, SequentialExecutor
    from ..options import tool_options

    if not callable(objective):
        raise TypeError(f"run_optuna_study(objective={objective!r}): objective must be callable")
    for name, value, least in (("n_trials", n_trials, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"run_optuna_study({name}={value!r}): need an int >= {least}")
    callbacks = list(callbacks or ())
    kwargs = dict(pipeline_kwargs or {})
    given = [k for k in ("executor", "depioExecutor") if k in kwargs]
    if len(given) + (executor is not None) > 1:
        raise TypeError(
            "run_optuna_study: executor given twice (as the argument and in "
            f"pipeline_kwargs: {', '.join(given)})"
        )
    if given:
        executor = kwargs.pop(given[0])
    if executor is None:
        executor = ParallelExecutor()
    kwargs.setdefault("name", f"optuna:{study.study_name}")
    Pipeline(executor=executor, **kwargs)  # bad pipeline_kwargs fail here, before any trial
    state_dir = os.path.abspath(kwargs.get("state_dir") or DEFAULT_STATE_DIR)
    tool = tool_options.get()  # what `depio-like run ... --executor X` imposes
    effective = (tool.executor if tool is not None else None) or executor
    quiet = bool(kwargs.get("quiet"))
    out = kwargs.get("stream") or sys.stdout

    def say(text: str) -> None:
        if not quiet:
            print(text, file=out, flush=True)

    generations = -(-n_trials // batch_size)
    if tool is not None and tool.dry_run:
        say(
            f"optuna: dry run: would run {n_trials} trial(s) of study {study.study_name!r} "
            f"in {generations} generation(s) of up to {batch_size}; no trial is asked"
        )
        return study

    storage = study._storage  # optuna keeps it private, but it is the study's storage
    journal_path: str | None = None
    work = study
    waiting: dict[int, int] = {}
    if _is_in_memory(storage) and not isinstance(effective, SequentialExecutor):
        folder = os.path.join(state_dir, "optuna")
        os.makedirs(folder, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", study.study_name)[:60] or "study"
        journal_path = os.path.join(folder, f"{safe}-{uuid.uuid4().hex[:8]}.journal")
        jstorage = _journal_storage(journal_path)
        optuna.copy_study(
            from_study_name=study.study_name, from_storage=storage, to_storage=jstorage
        )
        work = optuna.load_study(
            study_name=study.study_name,
            storage=jstorage,
            sampler=study.sampler,
            pruner=study.pruner,
        )
        # Enqueued trials are copied as WAITING; the copy's ask() takes them, and their
        # results go back to the same trials of your study.
        waiting = {
            t.number: t._trial_id
            for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        }
    work_storage = work._storage
    key = _storage_key(work_storage, journal_path)
    seed = _draw_seed(study.sampler)
    driver = _here()

    try:
        done = 0
        for g in range(1, generations + 1):
            k = min(batch_size, n_trials - done)
            trials = [work.ask() for _ in range(k)]
            pipeline = Pipeline(executor=executor, **kwargs)
            for t in trials:
                started = t.datetime_start.isoformat() if t.datetime_start else ""
                ref = _TrialRef(
                    storage=work_storage,
                    storage_key=key,
                    study_name=work.study_name,
                    trial_id=t._trial_id,
                    number=t.number,
                    started=started,
                    objective=objective,
                    sampler=study.sampler,
                    pruner=study.pruner,
                    seed=seed,
                    driver=driver,
                )
                pipeline.add_task(
                    Task(f"trial-{t.number}", _run_trial, [ref], always=True, resources=resources)
                )
            code = 130
            try:
                code = pipeline.run()
            finally:
                ended = _tell_generation(work, {t.number for t in trials})
                if work is not study:
                    ended = _mirror(study, ended, waiting)
            done += k
            say(f"optuna: generation {g}/{generations} told ({done}/{n_trials} trials):")
            for ft in ended:
                say(f"  {_describe(ft)}")
            if len(study.directions) == 1 and any(
                ft.state == TrialState.COMPLETE for ft in study.get_trials(deepcopy=False)
            ):
                best = study.best_trial
                say(f"  best so far: trial {best.number}, value {best.value:.6g}")
            for ft in ended:
                for cb in callbacks:
                    cb(study, ft)
            if code == 130:
                raise KeyboardInterrupt
    finally:
        if journal_path is not None:
            for path in (journal_path, journal_path + ".lock"):
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass
            try:
                os.rmdir(os.path.dirname(journal_path))
            except OSError:
                pass
    return study
