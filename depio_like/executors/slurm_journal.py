"""The Slurm executor's journal of submissions, so that a new driver can re-attach to the
jobs a dead one left (instead of submitting the same work again).

One JSON line per event, appended and flushed as it happens: the intent before sbatch
(a submission's token, its folder, and the fingerprints each array element runs), the job
ids right after, and "collected" once a result is recorded. Loading it keeps what is still
active and rewrites the file to just that, so it never grows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..fs import atomic_write, remove_stale_temps


@dataclass
class Entry:
    """Where the work of one fingerprint went: array element ``pos`` of ``n`` of the
    submission ``token`` (files under ``folder``); ``id`` once sbatch gave one."""

    token: str
    folder: str
    pos: int
    n: int
    id: str | None = None


class Journal:
    """Appends submission events to ``path``; ``load()`` reads back what is active."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._f: IO[str] | None = None

    def load(self) -> dict[str, Entry]:
        """Fingerprint -> Entry for jobs submitted and not collected."""
        active: dict[str, Entry] = {}
        by_token: dict[str, list[list[str]]] = {}
        # Left by a driver killed while it rewrote the journal (the state lock is held).
        remove_stale_temps(str(self.path.parent), (self.path.name,))
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if "intent" in rec:
                by_token[rec["intent"]] = rec["fps"]
                for pos, chunk in enumerate(rec["fps"]):
                    for fp in chunk:
                        active[fp] = Entry(rec["intent"], rec["folder"], pos, len(rec["fps"]))
            elif "submitted" in rec:
                # Not strict: the journal is read back from disk, and a run that died
                # between its lines leaves ids without an intent (or the reverse).
                for chunk, jid in zip(by_token.get(rec["submitted"], []), rec["ids"], strict=False):
                    for fp in chunk:
                        if fp in active:
                            active[fp].id = jid
            elif "collected" in rec:
                for fp in rec["collected"]:
                    active.pop(fp, None)
        # Rewrite it with what is still active (nothing: remove it), so it never grows.
        if lines and (not active or any('"collected"' in ln for ln in lines)):
            self._rewrite(active, by_token)
        return active

    def _rewrite(self, active: dict[str, Entry], by_token: dict[str, list[list[str]]]) -> None:
        if not active:
            self.path.unlink(missing_ok=True)
            return
        first: dict[str, Entry] = {}
        ids: dict[str, list[str]] = {}
        for e in active.values():
            first.setdefault(e.token, e)
            if e.id:
                ids.setdefault(e.token, [""] * e.n)[e.pos] = e.id
        with atomic_write(self.path, fsync=True) as f:
            for token, e in first.items():
                chunks = [[fp for fp in chunk if fp in active] for chunk in by_token[token]]
                f.write(json.dumps({"intent": token, "folder": e.folder, "fps": chunks}) + "\n")
                if token in ids:
                    f.write(json.dumps({"submitted": token, "ids": ids[token]}) + "\n")

    def _write(self, rec: dict[str, Any]) -> None:
        if self._f is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._f = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - appended to all run
        self._f.write(json.dumps(rec) + "\n")
        self._f.flush()

    def intent(self, token: str, folder: str, fps: list[list[str]]) -> None:
        """About to submit: element ``k`` of the array runs the work named by ``fps[k]``."""
        self._write({"intent": token, "folder": folder, "fps": fps})

    def submitted(self, token: str, ids: list[str]) -> None:
        self._write({"submitted": token, "ids": ids})

    def collected(self, fps: list[str]) -> None:
        fps = [fp for fp in fps if fp]
        if fps:
            self._write({"collected": fps})

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
