"""How paths are normalised for identity and shown to the user."""

from __future__ import annotations

import os


def show_path(path: str) -> str:
    """``path`` as a user would write it: relative to the working directory when inside it,
    and printable (bytes that are not UTF-8 in a file name show as U+FFFD)."""
    cwd = os.getcwd()
    if path.startswith(cwd + os.sep):
        path = path[len(cwd) + 1:]
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        path = path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return path
