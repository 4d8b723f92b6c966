"""A plain function (no decorator): the package's entry point ``top_words`` names it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from depio_like import Product


def top_words(counts: dict[str, int], n: int, out: Annotated[Path, Product],
              style: Literal["plain", "markdown"] = "plain") -> list[str]:
    """Write the ``n`` most frequent words and their counts.

    Parameters
    ----------
    counts : dict
        word -> how often it occurs.
    n : int
        how many words to report.
    out : Path
        the report to write.
    style : {"plain", "markdown"}
        plain lines or a Markdown table.
    """
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    if style == "markdown":
        lines = ["| word | count |", "|---|---|"] + [f"| {w} | {c} |" for w, c in top]
    else:
        lines = [f"{w} {c}" for w, c in top]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return [w for w, _ in top]
