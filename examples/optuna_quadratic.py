"""Minimise (x - 2)^2 with Optuna, each trial a depio_like task.

20 trials in generations of 5: the five trials of a generation run at the same time (in
worker processes here; as one Slurm job array with `SubmitItExecutor()`), and the sampler
proposes the next five knowing all earlier results. The study lives in memory; with
another executor than SequentialExecutor its trials run against a copy in a journal file
under .depio_like/optuna/, which is deleted at the end. For a study that survives the
script, give it a storage (e.g. `storage="sqlite:///study.db", load_if_exists=True`).
Needs the optuna extra: pip install 'depio_like[optuna]'.
"""

import optuna

from depio_like import ParallelExecutor
from depio_like.integrations.optuna import run_optuna_study


def objective(trial):
    x = trial.suggest_float("x", -10, 10)
    return (x - 2) ** 2


optuna.logging.set_verbosity(optuna.logging.WARNING)
# A seed makes the study reproducible; constant_liar=False (the default before optuna 5)
# keeps it so whatever runs at the same time: each trial sees only finished trials.
sampler = optuna.samplers.TPESampler(seed=3, constant_liar=False)
study = optuna.create_study(direction="minimize", sampler=sampler)

run_optuna_study(study, objective, n_trials=20, batch_size=5,
                 executor=ParallelExecutor(max_workers=5))

print(f"best: x = {study.best_params['x']:.4f}, (x - 2)^2 = {study.best_value:.6f} "
      f"(trial {study.best_trial.number} of {len(study.trials)})")
