"""A request's timeline of admin actions: who cancelled, called now, rescheduled or called it again.

``record_action`` takes the connection of the move it records, so the move and its line in the
timeline commit together or not at all.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import request_actions

CANCEL = "cancel"
CALL_NOW = "call_now"
RESCHEDULE = "reschedule"
CALL_AGAIN = "call_again"
ACTIONS = (CANCEL, CALL_NOW, RESCHEDULE, CALL_AGAIN)


async def record_action(
    conn: AsyncConnection, request_id: int, action: str, actor: str, at: datetime, due_at: datetime | None = None
) -> None:
    if action not in ACTIONS:
        raise ValueError(f"unknown request action {action!r}")
    await conn.execute(
        insert(request_actions).values(
            request_id=request_id, action=action, due_at=due_at, actor=actor[:320], created_at=at
        )
    )


async def actions_of(conn: AsyncConnection, request_id: int) -> list[dict[str, Any]]:
    query = select(request_actions).where(request_actions.c.request_id == request_id).order_by(request_actions.c.id)
    return [dict(r) for r in (await conn.execute(query)).mappings()]
