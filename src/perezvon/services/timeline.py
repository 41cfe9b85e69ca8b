"""Reading a request's timeline of admin actions (its moves write it: services/requests.py)."""

from __future__ import annotations

from typing import Any

from ..store import timeline
from ..store.db import Database


async def actions_of(db: Database, request_id: int) -> list[dict[str, Any]]:
    """Who did what to the request, oldest first. The caller has checked the principal may read it."""
    async with db.read() as conn:
        return await timeline.actions_of(conn, request_id)
