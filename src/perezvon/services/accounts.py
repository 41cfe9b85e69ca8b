"""Accounts, passwords and API tokens. Tokens are stored only as SHA-256 hashes; passwords with argon2."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select, update

from ..clock import utcnow
from ..store.db import Database
from ..store.tables import accounts, api_tokens

TOKEN_PREFIX = "pzv_"
LAST_USED_GRANULARITY = timedelta(minutes=1)
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Principal:
    """Who is calling: an account (reaches its own sites) or an operator (reaches every site)."""

    account_id: int | None
    token_id: int | None = None

    @property
    def is_operator(self) -> bool:
        return self.account_id is None

    def owns(self, site_account_id: int | None) -> bool:
        return self.is_operator or (site_account_id is not None and site_account_id == self.account_id)


OPERATOR = Principal(account_id=None)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


class AccountError(ValueError):
    pass


async def create_account(db: Database, email: str, password: str | None) -> int:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise AccountError(f"not an email address: {email!r}")
    if password is not None and len(password) < 8:
        raise AccountError("password must be at least 8 characters")
    async with db.write() as conn:
        exists = (await conn.execute(select(accounts.c.id).where(accounts.c.email == email))).scalar()
        if exists is not None:
            if password is None:
                return int(exists)
            await conn.execute(
                update(accounts).where(accounts.c.id == exists).values(password_hash=hash_password(password))
            )
            return int(exists)
        result = await conn.execute(
            insert(accounts).values(
                email=email,
                password_hash=hash_password(password) if password else None,
                created_at=utcnow(),
            )
        )
        return int(result.inserted_primary_key[0])


async def account_by_email(db: Database, email: str) -> dict | None:
    async with db.read() as conn:
        row = (await conn.execute(select(accounts).where(accounts.c.email == email.strip().lower()))).mappings().first()
    return dict(row) if row else None


async def create_token(db: Database, account_id: int | None, name: str = "") -> str:
    """A new token, shown once: only its hash is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    async with db.write() as conn:
        await conn.execute(
            insert(api_tokens).values(
                account_id=account_id,
                name=name[:100],
                token_hash=hash_token(token),
                prefix=token[:12],
                created_at=utcnow(),
            )
        )
    return token


async def list_tokens(db: Database, account_id: int) -> list[dict[str, Any]]:
    """An account's tokens, newest first, as the cabinet lists them: never the hash, only the prefix."""
    query = (
        select(
            api_tokens.c.id, api_tokens.c.name, api_tokens.c.prefix, api_tokens.c.created_at, api_tokens.c.last_used_at
        )
        .where(api_tokens.c.account_id == account_id)
        .order_by(api_tokens.c.id.desc())
    )
    async with db.read() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


async def revoke_token(db: Database, account_id: int, token_id: int) -> bool:
    """Delete one of the account's tokens; False when it has no such token (another account's included)."""
    async with db.write() as conn:
        result = await conn.execute(
            delete(api_tokens).where(api_tokens.c.id == token_id, api_tokens.c.account_id == account_id)
        )
    return result.rowcount > 0


async def authenticate_token(db: Database, token: str | None, bootstrap_token: str = "") -> Principal | None:
    if not token:
        return None
    if bootstrap_token and hmac.compare_digest(token.encode(), bootstrap_token.encode()):
        return OPERATOR
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(api_tokens.c.id, api_tokens.c.account_id, api_tokens.c.last_used_at).where(
                    api_tokens.c.token_hash == hash_token(token)
                )
            )
        ).first()
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
        # The cabinet lists when each token was last used; a minute's precision is enough and keeps
        # busy API clients from turning every request into a write.
        async with db.write() as conn:
            await conn.execute(update(api_tokens).where(api_tokens.c.id == row.id).values(last_used_at=now))
    return Principal(account_id=row.account_id, token_id=row.id)
