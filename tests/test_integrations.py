"""The Hydra and Optuna integrations, against the real libraries.

The extras are installed here if they are missing (once per session): outside CI a
registry that cannot be reached skips these tests, with the reason; in CI it fails them.
"""

import functools
import importlib
import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import pytest

from depio_like import Dependency, ParallelExecutor, Product, SequentialExecutor, Status, Task

from conftest import calls, log_call, new_pipeline, run_script

EXTRAS = {"hydra": "hydra-core>=1.3", "optuna": "optuna>=3"}


def _missing():
    return [req for mod, req in EXTRAS.items() if importlib.util.find_spec(mod) is None]


@functools.cache
def ensure_extras():
    """None once hydra-core and optuna can be imported (installing them with pip if they
    are missing), else why they cannot."""
    missing = _missing()
    if not missing:
        return None
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", *missing],
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`pip install {' '.join(missing)}` could not run: {e}"
    importlib.invalidate_caches()
    if proc.returncode == 0 and not _missing():
        return None
    return (
        f"`pip install {' '.join(missing)}` failed (exit {proc.returncode}): "
        f"{(proc.stderr or proc.stdout).strip()[-1500:]}"
    )


def require_extras():
    """Skip (fail in CI) unless the hydra and optuna extras are installed or installable."""
    reason = ensure_extras()
    if reason is None:
        return
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes", "on"):
        pytest.fail(f"the hydra/optuna extras must be installable in CI: {reason}", pytrace=False)
    pytest.skip(
        f"the hydra/optuna extras are not installed and pip cannot install them "
        f"(no registry?): {reason}"
    )


@pytest.fixture(scope="session")
def extras():
    require_extras()


def table_rows(text):
    """The rows of each table printed in ``text`` (lists of cells split on whitespace)."""
    tables = []
    for part in text.split("Tasks:\n")[1:]:
        lines = part.splitlines()
        header = lines[0].split()
        rows = [ln.split() for ln in lines[2:] if ln[:1].isdigit() and "  " in ln]
        tables.append((header, rows))
    return tables


# ---------------------------------------------------------------- Hydra
def write_config_tree(root):
    conf = Path(root) / "conf"
    (conf / "model").mkdir(parents=True)
    (conf / "config.yaml").write_text(
        "defaults:\n  - model: small\n  - _self_\n\nlr: 0.1\ndata:\n  raw: raw.txt\n"
    )
    (conf / "model" / "small.yaml").write_text("name: small\nwidth: 8\n")
    (conf / "model" / "large.yaml").write_text("name: large\nwidth: 64\n")
    return conf


def preprocess(out: Annotated[Path, Product], src: Annotated[Path, Dependency]):
    log_call("preprocess")
    Path(out).write_text(" ".join(str(int(x) * 2) for x in Path(src).read_text().split()))


def train(
    out: Annotated[Path, Product],
    data: Annotated[Path, Dependency],
    model: str,
    width: int,
    lr: float,
):
    log_call(f"train:{model}:{lr}")
    total = sum(map(int, Path(data).read_text().split()))
    Path(out).write_text(f"{model} {width} {lr} {total * width * lr}")


def build(pipeline, cfg):
    pipeline.add_task(Task("preprocess", preprocess, ["clean.txt", cfg.data.raw]))
    pipeline.add_task(
        Task(
            "train",
            train,
            [
                f"model-{cfg.model.name}-{cfg.lr}.txt",
                "clean.txt",
                cfg.model.name,
                cfg.model.width,
                cfg.lr,
            ],
        )
    )


OVERRIDE_SETS = [["model=small", "lr=0.1"], ["model=small", "lr=0.01"], ["model=large", "lr=0.1"]]


def test_hydra_sweep_shares_preprocessing_and_labels_each_configuration(
    extras, project, executor_factory
):
    from depio_like.integrations.hydra import run_hydra_multirun

    conf = write_config_tree(project)
    Path("raw.txt").write_text("1 2 3")
    p = new_pipeline(executor_factory())
    assert run_hydra_multirun(p, conf, "config", OVERRIDE_SETS, build) is p
    assert [t.name for t in p.tasks] == ["preprocess", "train", "train", "train"]
    assert p.run() == 0
    assert sorted(calls()) == [
        "preprocess",
        "train:large:0.1",
        "train:small:0.01",
        "train:small:0.1",
    ]
    assert Path("model-large-0.1.txt").read_text() == "large 64 0.1 " + str(12 * 64 * 0.1)
    [(header, rows)] = table_rows(p.stream.getvalue())
    assert header[-1] == "Variant"
    assert [(r[1], r[2], r[-1]) for r in rows] == [
        ("preprocess", "FINISHED", "all"),
        ("train", "FINISHED", "model=small,lr=0.1"),
        ("train", "FINISHED", "model=small,lr=0.01"),
        ("train", "FINISHED", "model=large,lr=0.1"),
    ]
    # Declared again (a rerun of the script): nothing is out of date.
    p = new_pipeline(executor_factory())
    run_hydra_multirun(p, str(conf), "config", OVERRIDE_SETS, build)
    assert p.run() == 0
    assert calls() == [] and {t.status for t in p.tasks} == {Status.SKIPPED}


def test_hydra_sweep_syntax_expands_like_multirun_and_labels_can_be_given(extras, project):
    from depio_like.integrations.hydra import compose_configs, run_hydra_multirun

    conf = write_config_tree(project)
    seen = []
    p = new_pipeline()
    run_hydra_multirun(
        p,
        conf,
        "config",
        ["model=small,large", "lr=0.1,0.01"],
        lambda pl, cfg: seen.append((cfg.model.name, cfg.lr)),
    )
    assert seen == [("small", 0.1), ("small", 0.01), ("large", 0.1), ("large", 0.01)]

    seen.clear()
    labels = {}

    def record(pl, cfg):
        t = pl.add_task(Task("noop", print, [cfg.model.name, cfg.lr]))
        labels[(cfg.model.name, cfg.lr)] = list(t.variants)

    run_hydra_multirun(
        new_pipeline(),
        conf,
        "config",
        ["model=glob(*)", "lr=range(1,3)"],
        record,
        labels=lambda overrides, cfg: f"{cfg.model.name}/{cfg.lr}",
    )
    assert labels == {
        ("large", 1): ["large/1"],
        ("large", 2): ["large/2"],
        ("small", 1): ["small/1"],
        ("small", 2): ["small/2"],
    }
    labels.clear()
    run_hydra_multirun(
        new_pipeline(), conf, "config", [[], ["model=large"]], record, labels=["base", "big"]
    )
    assert labels == {("small", 0.1): ["base"], ("large", 0.1): ["big"]}
    labels.clear()
    run_hydra_multirun(new_pipeline(), conf, "config", [[]], record)
    assert labels == {("small", 0.1): ["default"]}

    with pytest.raises(ValueError, match="2 labels for 3 configurations"):
        run_hydra_multirun(new_pipeline(), conf, "config", OVERRIDE_SETS, build, labels=["a", "b"])
    with pytest.raises(ValueError, match="set the same key.*'model=a,b'"):
        compose_configs(conf, "config", ["model=small", "model=large"])
    with pytest.raises(TypeError, match="not a mix"):
        compose_configs(conf, "config", ["model=small", ["lr=0.1"]])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        compose_configs(project / "nowhere", "config", [[]])


def test_hydra_compose_leaves_an_initialized_hydra_as_it_found_it(extras, project):
    import hydra
    from hydra.core.global_hydra import GlobalHydra

    from depio_like.integrations.hydra import compose_configs

    conf = write_config_tree(project)
    other = project / "other"
    other.mkdir()
    (other / "app.yaml").write_text("who: outer\n")
    with hydra.initialize_config_dir(config_dir=str(other), version_base=None):
        [(_, cfg)] = compose_configs(conf, "config", [["model=large"]])
        assert cfg.model.width == 64
        assert hydra.compose(config_name="app").who == "outer"  # the outer one is back
    assert not GlobalHydra.instance().is_initialized()


def test_a_missing_extra_names_it(monkeypatch, project):
    from depio_like.integrations import hydra as hydra_integration
    from depio_like.integrations import optuna as optuna_integration

    monkeypatch.setitem(sys.modules, "hydra", None)
    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ImportError, match=r"pip install 'depio_like\[hydra\]'"):
        hydra_integration.run_hydra_multirun(new_pipeline(), project, "config", [[]], build)
    with pytest.raises(ImportError, match=r"pip install 'depio_like\[optuna\]'"):
        optuna_integration.run_optuna_study(object(), lambda t: 0, 1, 1)


# ---------------------------------------------------------------- Optuna
def quadratic(trial):
    x = trial.suggest_float("x", -10, 10)
    return (x - 2) ** 2


def seeded_study(seed=3):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # constant_liar=False (the default before optuna 5): trials see only finished ones, so
    # a seed gives the same trials whatever runs at the same time.
    return optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, constant_liar=False))


def test_optuna_study_runs_in_generations_and_learns(extras, project, executor_factory):
    from depio_like.integrations.optuna import run_optuna_study

    study = seeded_study()
    told = []  # (trial number, how many trials the study had when it was told)
    stream = io.StringIO()
    out = run_optuna_study(
        study,
        quadratic,
        n_trials=20,
        batch_size=5,
        executor=executor_factory(),
        pipeline_kwargs={"stream": stream},
        callbacks=[lambda s, ft: told.append((ft.number, len(s.trials)))],
    )
    assert out is study
    trials = study.trials
    assert [t.number for t in trials] == list(range(20))
    assert {t.state.name for t in trials} == {"COMPLETE"}
    # Each generation was asked only after the previous one was told.
    assert told == [(n, 5 * (n // 5 + 1)) for n in range(20)]
    for g in range(1, 4):
        previous, this = trials[5 * (g - 1) : 5 * g], trials[5 * g : 5 * (g + 1)]
        assert min(t.datetime_start for t in this) >= max(t.datetime_complete for t in previous)
    assert study.best_value < 0.5
    tables = table_rows(stream.getvalue())
    assert len(tables) == 4
    for g, (_, rows) in enumerate(tables):
        assert [(r[1], r[2]) for r in rows] == [
            (f"trial-{n}", "FINISHED") for n in range(5 * g, 5 * g + 5)
        ]
    assert "optuna: generation 4/4 told (20/20 trials)" in stream.getvalue()
    assert not (project / ".depio_like" / "optuna").exists()  # the journal copy is gone


def test_a_seeded_study_gives_the_same_trials_on_every_executor(extras, project):
    from depio_like.integrations.optuna import run_optuna_study

    params = []
    for executor in (SequentialExecutor(), ParallelExecutor(max_workers=3)):
        study = seeded_study(seed=11)
        run_optuna_study(study, quadratic, 12, 4, executor, {"quiet": True})
        params.append([t.params["x"] for t in study.trials])
    assert params[0] == params[1]
    assert len(set(params[0])) == 12  # concurrent trials did not draw the same values


def flaky_objective(trial):
    x = trial.suggest_float("x", -10, 10)
    trial.report(x * x, step=0)
    if trial.number == 1:
        raise __import__("optuna").TrialPruned()
    if trial.number == 2:
        raise RuntimeError("this trial breaks")
    if trial.number == 3:
        return float("nan")
    return (x - 2) ** 2


def test_pruned_trials_finish_and_failed_trials_fail_and_the_study_goes_on(
    extras, project, executor_factory
):
    from depio_like.integrations.optuna import run_optuna_study

    study = seeded_study()
    stream = io.StringIO()
    run_optuna_study(study, flaky_objective, 6, 3, executor_factory(), {"stream": stream})
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "PRUNED", "FAIL", "FAIL", "COMPLETE", "COMPLETE"]
    assert study.trials[1].value == study.trials[1].intermediate_values[0]
    assert study.trials[2].system_attrs["fail_reason"] == "RuntimeError: this trial breaks"
    assert "NaN" in study.trials[3].system_attrs["fail_reason"]
    (_, first), (_, second) = table_rows(stream.getvalue())
    assert [(r[1], r[2]) for r in first + second] == [
        ("trial-0", "FINISHED"),
        ("trial-1", "FINISHED"),
        ("trial-2", "FAILED"),
        ("trial-3", "FAILED"),
        ("trial-4", "FINISHED"),
        ("trial-5", "FINISHED"),
    ]
    text = stream.getvalue()
    assert "RuntimeError: this trial breaks" in text
    assert "trial 3: the objective returned nan" in text


def dies(trial):
    trial.suggest_float("x", 0, 1)
    if trial.number == 0:
        os._exit(3)
    return 1.0


def test_a_trial_whose_worker_dies_is_told_fail(extras, project):
    from depio_like.integrations.optuna import run_optuna_study

    study = seeded_study()
    stream = io.StringIO()
    run_optuna_study(study, dies, 2, 2, ParallelExecutor(max_workers=2), {"stream": stream})
    assert [t.state.name for t in study.trials] == ["FAIL", "COMPLETE"]
    [(_, rows)] = table_rows(stream.getvalue())
    assert [r[2] for r in rows] == ["FAILED", "FINISHED"]


def test_existing_and_enqueued_trials_go_with_an_in_memory_study(extras, project):
    import optuna

    from depio_like.integrations.optuna import run_optuna_study

    study = seeded_study()
    study.optimize(quadratic, n_trials=3)
    study.enqueue_trial({"x": 2.0})
    run_optuna_study(study, quadratic, 4, 2, ParallelExecutor(max_workers=2), {"quiet": True})
    assert [t.number for t in study.trials] == list(range(7))
    assert study.trials[3].params == {"x": 2.0} and study.best_value == 0.0
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_a_persistent_storage_is_used_in_place_and_multi_objective_works(extras, project):
    import optuna

    from depio_like.integrations.optuna import run_optuna_study

    storage = f"sqlite:///{project / 'study.db'}"

    def two(trial):
        x = trial.suggest_float("x", 0, 1)
        return x, 1 - x

    study = optuna.create_study(
        study_name="s", storage=storage, directions=["minimize", "minimize"]
    )
    run_optuna_study(study, two, 4, 2, ParallelExecutor(max_workers=2), {"quiet": True})
    again = optuna.load_study(study_name="s", storage=storage)
    assert len(again.trials) == 4
    assert all(
        t.state.name == "COMPLETE" and t.values[0] + t.values[1] == pytest.approx(1)
        for t in again.trials
    )
    assert not (project / ".depio_like" / "optuna").exists()  # no copy was made


@pytest.mark.parametrize("cluster", ["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def test_trials_run_as_submitit_jobs(extras, project, cluster, request):
    from depio_like import SubmitItExecutor
    from depio_like.integrations.optuna import run_optuna_study

    if cluster == "slurm":
        request.getfixturevalue("slurm")  # a reachable Slurm, or skip (fail in CI)
    study = seeded_study()
    stream = io.StringIO()
    run_optuna_study(
        study, flaky_objective, 6, 3, SubmitItExecutor(cluster=cluster), {"stream": stream}
    )
    assert [t.state.name for t in study.trials] == [
        "COMPLETE",
        "PRUNED",
        "FAIL",
        "FAIL",
        "COMPLETE",
        "COMPLETE",
    ]
    statuses = [r[2] for _, rows in table_rows(stream.getvalue()) for r in rows]
    assert statuses == ["FINISHED", "FINISHED", "FAILED", "FAILED", "FINISHED", "FINISHED"]
    assert "RuntimeError: this trial breaks" in stream.getvalue()
    assert not (project / ".depio_like" / "optuna").exists()


SCRIPT = """
    import optuna
    from depio_like import SequentialExecutor
    from depio_like.integrations.optuna import run_optuna_study

    def objective(trial):
        x = trial.suggest_float("x", -10, 10)
        with open("calls.log", "a") as f:
            f.write(f"{trial.number}\\n")
        return (x - 2) ** 2

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    run_optuna_study(study, objective, 4, 2, SequentialExecutor())
    print("told", len(study.trials))
"""


def test_rerunning_the_script_runs_every_trial_again(extras, tmp_path):
    for _ in range(2):
        r = run_script(tmp_path, SCRIPT)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "told 4" in r.stdout and "SKIPPED" not in r.stdout
        assert [row[2] for _, rows in table_rows(r.stdout) for row in rows] == ["FINISHED"] * 4
    assert (tmp_path / "calls.log").read_text().split() == ["0", "1", "2", "3"] * 2


def test_bad_arguments_are_refused(extras, project):
    from depio_like.integrations.optuna import run_optuna_study

    study = seeded_study()
    with pytest.raises(ValueError, match="batch_size=0"):
        run_optuna_study(study, quadratic, 4, 0)
    with pytest.raises(ValueError, match="n_trials=-1"):
        run_optuna_study(study, quadratic, -1, 2)
    with pytest.raises(TypeError, match="executor given twice"):
        run_optuna_study(
            study, quadratic, 4, 2, SequentialExecutor(), {"executor": SequentialExecutor()}
        )
    with pytest.raises(TypeError):
        run_optuna_study(study, quadratic, 4, 2, SequentialExecutor(), {"no_such_option": 1})
    assert study.trials == []  # nothing was asked


def test_a_config_node_counts_by_its_own_content(extras):
    from omegaconf import OmegaConf

    from depio_like.fingerprint import canonical

    a = OmegaConf.create({"data": {"scale": 2}, "lr": 0.1})
    b = OmegaConf.create({"data": {"scale": 2}, "lr": 0.01})
    assert canonical(a.data) == canonical(b.data)  # the same node in two configurations
    assert canonical(a) != canonical(b)
