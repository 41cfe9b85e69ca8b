"""Reading a request's timeline of admin actions (its moves write it: services/requests.py)."""

from __future__ import annotations

from typing import Any

from ..shapes.resources import iso
from ..store import timeline
from ..store.db import Database
from .accounts import Principal


def api_actor(who: Principal) -> str:
    """How an admin API caller is named in a request's timeline (a cabinet user is named by email)."""
    if who.token_id is not None:
        return f"API token #{who.token_id}"
    return "operator token" if who.is_operator else f"account #{who.account_id}"


def action_resource(row: dict[str, Any]) -> dict[str, Any]:
    return {"action": row["action"], "at": iso(row["created_at"]), "dueAt": iso(row["due_at"]), "by": row["actor"]}


async def actions_of(db: Database, request_id: int) -> list[dict[str, Any]]:
    """Who did what to the request, oldest first. The caller has checked the principal may read it."""
    async with db.read() as conn:
        return await timeline.actions_of(conn, request_id)
