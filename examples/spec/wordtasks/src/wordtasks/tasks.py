"""Tasks registered with ``@register``; the package's entry point names this module."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Annotated

from depio_like import Dependency, Product, register

VOCABULARY = ("build", "task", "file", "graph", "cache", "slurm", "node", "path", "hash", "run")


@register
def make_corpus(out: Annotated[Path, Product], words: int = 200, seed: int = 0,
                vocabulary: list[str] = list(VOCABULARY)) -> None:
    """Write a corpus of random words, ten to a line.

    Args:
        out: the text file to write.
        words: how many words.
        seed: the random seed (the same seed writes the same corpus).
        vocabulary: the words to draw from.
    """
    rng = random.Random(seed)
    drawn = [rng.choice(vocabulary) for _ in range(words)]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(" ".join(drawn[i:i + 10]) for i in range(0, words, 10)) + "\n")


@register("count_words")
def count(corpus: Annotated[Path, Dependency], out: Annotated[Path, Product],
          min_length: Annotated[int, "words shorter than this are not counted"] = 1,
          lowercase: bool = True) -> dict[str, int]:
    """Count the words of a text file; write the counts as JSON and hand them on."""
    text = corpus.read_text()
    if lowercase:
        text = text.lower()
    counts = Counter(w for w in re.findall(r"\w+", text) if len(w) >= min_length)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dict(sorted(counts.items())), indent=1) + "\n")
    return dict(counts)
