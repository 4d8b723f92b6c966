"""Integrations with other tools: ``depio_like.integrations.hydra`` (configuration sweeps
composed with Hydra) and ``depio_like.integrations.optuna`` (Optuna studies whose trials
run as tasks). Each needs its extra: ``pip install 'depio_like[hydra]'`` /
``'depio_like[optuna]'``."""
