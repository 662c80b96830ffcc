"""Builders shared by the integration tests of tickets, expiry and the cache."""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import RowMapping, text
from sqlalchemy.orm import Session

from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.secrets import Keyring, SecretsMode, SecretsPolicy

NOW_MS = 1_764_633_600_000
"""2025-12-02T00:00:00Z, the "now" of the shared fixture data."""

KEY_1 = ("key-1", bytes(range(100, 132)))
KEY_2 = ("key-2", bytes(range(150, 182)))


def encrypting(*keys: tuple[str, bytes], keep: bool = False) -> SecretsPolicy:
    """An encrypt-mode policy with ``keys`` (default: KEY_1)."""
    return SecretsPolicy(SecretsMode.ENCRYPT, Keyring(keys or [KEY_1]), keep_terminal_tickets=keep)


def make_ticket(token_id: str, exp_seconds: int | None) -> str:
    """A JWT-shaped ticket (random-looking signature, not verifiable)."""

    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).decode().rstrip("=")

    claims: dict[str, Any] = {"sid": token_id, "st": "actor_token"}
    if exp_seconds is not None:
        claims["exp"] = exp_seconds
    header = part(b'{"alg":"RS256","typ":"JWT"}')
    return f"{header}.{part(json.dumps(claims).encode())}.{part(token_id.encode() * 4)}"


def make_token(
    token_id: str = "act_1",
    *,
    status: TokenStatus = TokenStatus.PENDING,
    user_id: str = "user_1",
    actor_sub: str = "user_admin",
    created_at: int = NOW_MS - 60_000,
    updated_at: int | None = None,
    exp_seconds: int | None = NOW_MS // 1000 + 3600,
    ticket: bool = True,
) -> ActorToken:
    """A token whose ticket expires at ``exp_seconds`` (None: a ticket without exp)."""
    value = make_ticket(token_id, exp_seconds) if ticket else None
    return ActorToken(
        id=token_id,
        status=status,
        user_id=user_id,
        actor={"sub": actor_sub},
        created_at=created_at,
        updated_at=created_at if updated_at is None else updated_at,
        token=value,
        url=None if value is None else f"https://example.accounts.dev/accept?ticket={value}",
    )


def raw_row(session: Session, token_id: str) -> RowMapping:
    """The stored columns of one token, as PostgreSQL has them."""
    return (
        session.execute(text("SELECT * FROM actor_tokens WHERE id = :id"), {"id": token_id})
        .mappings()
        .one()
    )
