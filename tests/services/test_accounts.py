"""An account's API tokens as the cabinet lists and revokes them: only its own, never the hash."""

from __future__ import annotations

from perezvon.services.accounts import authenticate_token, create_account, create_token, list_tokens, revoke_token
from perezvon.store.db import Database


async def test_an_account_lists_its_own_tokens_newest_first_without_their_hash(db: Database) -> None:
    alice = await create_account(db, "alice@example.com", "correct horse")
    bob = await create_account(db, "bob@example.com", "battery staple")
    crm = await create_token(db, alice, "alice's CRM")
    await create_token(db, bob, "bob's CRM")
    site = await create_token(db, alice, "alice's site")

    listed = await list_tokens(db, alice)

    assert [t["name"] for t in listed] == ["alice's site", "alice's CRM"]
    assert [t["prefix"] for t in listed] == [site[:12], crm[:12]]
    assert set(listed[0]) == {"id", "name", "prefix", "created_at", "last_used_at"}
    assert listed[0]["last_used_at"] is None
    assert [t["name"] for t in await list_tokens(db, bob)] == ["bob's CRM"]


async def test_using_a_token_shows_in_the_list(db: Database) -> None:
    alice = await create_account(db, "alice@example.com", "correct horse")
    token = await create_token(db, alice, "crm")

    assert await authenticate_token(db, token) is not None

    [listed] = await list_tokens(db, alice)
    assert listed["last_used_at"] is not None


async def test_a_revoked_token_stops_working_and_another_account_cannot_revoke_it(db: Database) -> None:
    alice = await create_account(db, "alice@example.com", "correct horse")
    bob = await create_account(db, "bob@example.com", "battery staple")
    token = await create_token(db, alice, "crm")
    [listed] = await list_tokens(db, alice)

    assert await revoke_token(db, bob, listed["id"]) is False
    assert await authenticate_token(db, token) is not None

    assert await revoke_token(db, alice, listed["id"]) is True
    assert await authenticate_token(db, token) is None
    assert await list_tokens(db, alice) == []
    assert await revoke_token(db, alice, listed["id"]) is False
