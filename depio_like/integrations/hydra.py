"""Sweeps over Hydra configurations: one pipeline, one variant per configuration.

``run_hydra_multirun`` composes each configuration with Hydra's compose API (no Hydra
application, no launcher, no output directories, the working directory is left alone)
and calls your ``build(pipeline, cfg)`` inside ``pipeline.variant(label)``. Tasks that
several configurations declare identically (same function, same arguments) are merged by
``add_task``: they run once, and the table's Variant column says ``all`` (or lists the
configurations that share them). It only declares tasks; run them with
``pipeline.run()`` (or ``pipeline.main()``).

Needs the ``hydra`` extra: ``pip install 'depio_like[hydra]'``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # pragma: no cover
    from omegaconf import DictConfig

    from ..pipeline import Pipeline

__all__ = ["run_hydra_multirun", "expand_overrides", "compose_configs"]

_EXTRA_HINT = (
    "depio_like.integrations.hydra needs hydra-core: "
    "pip install 'depio_like[hydra]' (or: pip install 'hydra-core>=1.3')"
)


def _hydra() -> Any:
    try:
        import hydra
        from hydra.core.global_hydra import GlobalHydra
        from hydra.core.override_parser.overrides_parser import OverridesParser
    except ImportError as e:
        raise ImportError(f"{_EXTRA_HINT} [{e}]") from e
    return hydra, GlobalHydra, OverridesParser


def expand_overrides(overrides: Sequence[str], parser: Any = None) -> list[list[str]]:
    """The override sets that Hydra's ``--multirun`` would run for the command line
    ``overrides``: ``["model=small,large", "lr=0.1,0.01"]`` gives the four combinations,
    in Hydra's order (the first override varies slowest). ``range(1,4)`` and
    ``choice(a,b)`` sweeps work; an override without a sweep is in every set.
    """
    if isinstance(overrides, str):
        raise TypeError(f"expand_overrides({overrides!r}): give a list of override strings")
    _, _, OverridesParser = _hydra()
    parser = parser or OverridesParser.create()
    parsed = parser.parse_overrides(list(overrides))
    choices: list[list[str]] = []
    seen: dict[str, str] = {}
    for text, ov in zip(overrides, parsed, strict=True):
        key = ov.get_key_element()
        if key in seen:
            raise ValueError(
                f"overrides {seen[key]!r} and {text!r} set the same key; in a list of strings "
                f"each key appears once, and its values are swept with Hydra's syntax "
                f"('{key}=a,b'). For explicit override sets pass a list of lists "
                f"([['{key}=a'], ['{key}=b']])."
            )
        seen[key] = text
        if ov.is_sweep_override():
            if not (ov.is_choice_sweep() or ov.is_range_sweep()):
                raise ValueError(
                    f"override {text!r}: only choice and range sweeps can be "
                    "enumerated (an interval sweep needs a sweeper such as "
                    "Optuna: see depio_like.integrations.optuna)"
                )
            choices.append([f"{key}={v}" for v in ov.sweep_string_iterator()])
        else:
            choices.append([text])
    return [list(combo) for combo in itertools.product(*choices)]


def _is_list_of_lists(overrides: Sequence[Any]) -> bool:
    kinds = {isinstance(o, str) for o in overrides}
    if kinds == {True}:
        return False
    if kinds == {False}:
        for o in overrides:
            if not isinstance(o, (list, tuple)) or not all(isinstance(x, str) for x in o):
                raise TypeError(
                    f"overrides: each override set must be a list of strings, got {o!r}"
                )
        return True
    raise TypeError(
        "overrides: give either a list of override strings (a Hydra sweep, as "
        "on the command line with --multirun) or a list of override sets "
        f"(lists of strings), not a mix: {list(overrides)!r}"
    )


def compose_configs(
    config_dir: str | os.PathLike,
    config_name: str,
    overrides: Sequence[Sequence[str]] | Sequence[str],
) -> list[tuple[list[str], DictConfig]]:
    """``(override set, composed config)`` for each override set (see
    ``run_hydra_multirun`` for the forms ``overrides`` takes), composed with Hydra's compose
    API. Hydra's global state is restored afterwards, so this works inside a
    ``@hydra.main`` application too."""
    hydra, GlobalHydra, OverridesParser = _hydra()
    config_dir = os.path.abspath(os.fspath(config_dir))
    if not os.path.isdir(config_dir):
        raise FileNotFoundError(f"Hydra config directory {config_dir} does not exist")
    if isinstance(overrides, str):
        raise TypeError(
            f"overrides={overrides!r}: give a list of override strings or a list "
            "of override sets, not one string"
        )
    overrides = list(overrides)
    gh = GlobalHydra.instance()
    outer = gh.hydra if gh.is_initialized() else None  # e.g. inside @hydra.main
    gh.clear()
    try:
        with hydra.initialize_config_dir(config_dir=config_dir, version_base=None):
            if not overrides:
                sets: list[list[str]] = [[]]
            elif _is_list_of_lists(overrides):
                sets = [list(o) for o in overrides]
            else:
                loader = GlobalHydra.instance().config_loader()
                strings = cast("list[str]", overrides)  # _is_list_of_lists said so
                sets = expand_overrides(strings, OverridesParser.create(config_loader=loader))
            return [(s, hydra.compose(config_name=config_name, overrides=s)) for s in sets]
    finally:
        gh = GlobalHydra.instance()
        gh.clear()
        if outer is not None:
            gh.initialize(outer)


def run_hydra_multirun(
    pipeline: Pipeline,
    config_dir: str | os.PathLike,
    config_name: str,
    overrides: Sequence[Sequence[str]] | Sequence[str],
    build: Callable[[Pipeline, DictConfig], Any],
    labels: Sequence[str] | Callable[[list[str], DictConfig], str] | None = None,
) -> Pipeline:
    """Declare, in ``pipeline``, the tasks of every configuration of a Hydra sweep.

    ``config_dir``: the directory holding ``<config_name>.yaml`` and its config groups
    (relative paths are taken from the current directory). ``overrides`` is either

    - a list of override sets, one configuration each:
      ``[["model=small", "lr=0.1"], ["model=large", "lr=0.01"]]`` (``[[]]``: the defaults), or
    - a list of override strings in Hydra's ``--multirun`` syntax, expanded as Hydra
      would: ``["model=small,large", "lr=0.1,0.01"]`` is four configurations
      (``range(1,4)`` and ``choice(...)`` work too).

    For each configuration, ``build(pipeline, cfg)`` is called inside
    ``pipeline.variant(label)``, with the composed ``DictConfig``. The label is the
    override set joined by commas (``"model=small,lr=0.1"``; ``"default"`` for no
    overrides) unless ``labels`` gives them: a list (one per configuration, in order) or a
    function ``labels(overrides, cfg) -> str``.

    Returns ``pipeline``: run it with ``pipeline.run()``. Identical tasks of several
    configurations merge and run once. Pass tasks plain values taken from the config
    (``cfg.data.path``, ``cfg.lr``, or ``OmegaConf.to_container(cfg.model)``) rather than
    config nodes: a node carries its whole configuration with it, so a task given
    ``cfg.data`` differs between configurations that differ anywhere else and would not
    be shared. Not available without a Hydra application: ``${hydra:...}``
    interpolations, output directories, launchers and sweepers.
    """
    if not callable(build):
        raise TypeError(
            f"run_hydra_multirun(build={build!r}): build must be a callable build(pipeline, cfg)"
        )
    configs = compose_configs(config_dir, config_name, overrides)
    if labels is not None and not callable(labels):
        labels = [str(x) for x in labels]
        if len(labels) != len(configs):
            raise ValueError(
                f"run_hydra_multirun: {len(labels)} labels for {len(configs)} "
                f"configurations ({[','.join(s) for s, _ in configs]})"
            )
    for k, (override_set, cfg) in enumerate(configs):
        if labels is None:
            label = ",".join(override_set) or "default"
        elif callable(labels):
            label = str(labels(override_set, cfg))
        else:
            label = labels[k]
        with pipeline.variant(label):
            build(pipeline, cfg)
    return pipeline
