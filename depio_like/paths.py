"""How paths are normalised for identity and shown to the user."""

from __future__ import annotations

import os


def show_path(path: str) -> str:
    """``path`` as a user would write it: relative to the working directory when inside it."""
    cwd = os.getcwd()
    if path.startswith(cwd + os.sep):
        return path[len(cwd) + 1:]
    return path
