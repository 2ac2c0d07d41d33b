"""Checkpoints edited through the API, kept on top of the site file's.

The site file stays the installer's source; a manager adding a checkpoint for a new sticker,
or correcting a tag, does it from the office without touching it. An edit replaces the
site file's checkpoint of the same id (or adds one); a deletion hides it.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from pathlib import Path
from typing import Any

from gateway import schema
from gateway.outbox import connect
from gateway.site import CheckpointModel, Site


class CheckpointError(ValueError):
    """An edit that would leave the site inconsistent; the message says what to change."""


class CheckpointEdits:
    def __init__(self, path: Path) -> None:
        self.db = connect(path)
        schema.migrate(self.db, schema.GATEWAY)  # its table: gateway/schema.py
        self._lock = threading.Lock()

    def _edits(self) -> dict[str, dict[str, Any] | None]:
        with self._lock:
            rows = self.db.execute("SELECT id, doc, deleted FROM checkpoint_edits").fetchall()
        return {i: None if deleted else json.loads(doc) for i, doc, deleted in rows}

    def apply(self, site: Site) -> Site:
        """The site with the edits applied (the site file's checkpoints, replaced, added or hidden)."""
        edits = self._edits()
        if not edits:
            return site
        merged = {c.id: c for c in site.checkpoints}
        for ident, doc in edits.items():
            if doc is None:
                merged.pop(ident, None)
            else:
                merged[ident] = CheckpointModel.model_validate(doc)
        checkpoints = tuple(merged.values())
        return dataclasses.replace(site, checkpoints=checkpoints, tags={c.tag: c.id for c in checkpoints})

    def put(self, site: Site, checkpoint: CheckpointModel, by: str, at: float) -> Site:
        """Add or replace one; refused when its tag is another checkpoint's or its asset does not exist."""
        others = [c for c in site.checkpoints if c.id != checkpoint.id]
        clash = next((c for c in others if c.tag == checkpoint.tag), None)
        if clash is not None:
            raise CheckpointError(f"tag {checkpoint.tag} already belongs to checkpoint {clash.id}")
        if checkpoint.asset and checkpoint.asset not in {a.id for a in site.assets}:
            raise CheckpointError(f"no asset {checkpoint.asset!r} on this site")
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO checkpoint_edits (id, doc, deleted, at, by) VALUES (?, ?, 0, ?, ?)",
                            (checkpoint.id, checkpoint.model_dump_json(), at, by))
        return self.apply_over(site, checkpoint)

    def delete(self, site: Site, ident: str, by: str, at: float) -> Site:
        if ident not in {c.id for c in site.checkpoints}:
            raise CheckpointError(f"no checkpoint {ident!r}")
        used = [r.id for r in site.routes if ident in r.checkpoints]
        if used:
            raise CheckpointError(f"checkpoint {ident!r} is on route(s) {', '.join(used)}: change the site file first")
        with self._lock:
            self.db.execute("INSERT OR REPLACE INTO checkpoint_edits (id, doc, deleted, at, by) "
                            "VALUES (?, NULL, 1, ?, ?)", (ident, at, by))
        checkpoints = tuple(c for c in site.checkpoints if c.id != ident)
        return dataclasses.replace(site, checkpoints=checkpoints, tags={c.tag: c.id for c in checkpoints})

    @staticmethod
    def apply_over(site: Site, checkpoint: CheckpointModel) -> Site:
        merged = {c.id: c for c in site.checkpoints}
        merged[checkpoint.id] = checkpoint
        checkpoints = tuple(merged.values())
        return dataclasses.replace(site, checkpoints=checkpoints, tags={c.tag: c.id for c in checkpoints})

    def close(self) -> None:
        with self._lock:
            self.db.close()
