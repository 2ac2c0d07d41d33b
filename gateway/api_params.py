"""Parameters shared by the routes: paging (``limit`` and ``offset`` in, ``{items, total, limit, offset}``
out) and ids (SQLite's integers: a bigger one is a 422, not an overflow)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Path, Query

Limit = Annotated[int, Query(ge=1, le=1000, description="at most this many items")]
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Offset = Annotated[int, Query(ge=0, le=10**9, description="items to skip (the next page: offset + limit)")]


def paged(items: Sequence[Any], limit: int, offset: int) -> dict[str, Any]:
    """A page of a list built whole (short lists: checkpoints, plans, rounds)."""
    return {"items": list(items[offset:offset + limit]), "total": len(items), "limit": limit, "offset": offset}
