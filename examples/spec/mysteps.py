"""The user's own tasks, next to the spec: `tasks: [mysteps]` in wordcount.yaml loads them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from depio_like import Dependency, Product, register


@register
def banner(report: Annotated[Path, Dependency], out: Annotated[Path, Product], title: str,
           width: int = 40) -> None:
    """Frame a report with a title.

    Args:
        report: the report to frame.
        out: where the framed report goes.
        title: the title line.
        width: the width of the rules.
    """
    rule = "=" * width
    out.write_text(f"{rule}\n{title.center(width)}\n{rule}\n{report.read_text()}{rule}\n")
