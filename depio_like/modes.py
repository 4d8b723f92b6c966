"""Build modes: when a task runs. depio's names, with the content-hash rule as default."""

from __future__ import annotations

from enum import Enum


class BuildMode(Enum):
    ALWAYS = "always"  # run every time
    IF_MISSING = "if_missing"  # run only if a product is missing (changed inputs are ignored)
    IF_NEW = "if_new"  # run if out of date: the content-hash rule (the default)
    NEVER = "never"  # never run: a source; a missing product is an error

    def __str__(self) -> str:
        return f"BuildMode.{self.name}"
