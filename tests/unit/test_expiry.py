"""Unit tests of actortoken_store.expiry and the expiry field of ActorToken."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from actortoken_store.errors import InvalidActorTokenError, InvalidArgumentError
from actortoken_store.expiry import ticket_expiry_ms, with_expiry
from actortoken_store.model import ActorToken, TokenStatus


def jwt(payload: Any) -> str:
    def part(value: bytes) -> str:
        return base64.urlsafe_b64encode(value).decode().rstrip("=")

    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return f"{part(b'{}')}.{part(body)}.{part(b'signature')}"


def token(ticket: str | None = None) -> ActorToken:
    return ActorToken(
        id="act_1",
        status=TokenStatus.PENDING,
        user_id="user_1",
        actor={"sub": "user_admin"},
        created_at=1_764_633_000_000,
        updated_at=1_764_633_000_000,
        token=ticket,
        url=None if ticket is None else f"https://x.dev/accept?ticket={ticket}",
    )


def test_expiry_from_exp_seconds() -> None:
    assert ticket_expiry_ms(jwt({"exp": 1_764_634_500}), token_id="act_1") == 1_764_634_500_000


def test_expiry_from_fractional_exp() -> None:
    assert ticket_expiry_ms(jwt({"exp": 1_764_634_500.25}), token_id="act_1") == 1_764_634_500_250


def test_expiry_none_without_ticket() -> None:
    assert ticket_expiry_ms(None, token_id="act_1") is None


@pytest.mark.parametrize(
    ("ticket", "problem"),
    [
        ("opaque-ticket", "not a JWT"),
        ("a.b.c.d", "not a JWT"),
        ("a.!!!.c", "not base64url-encoded JSON"),
        (jwt(b"not json"), "not base64url-encoded JSON"),
        (jwt([1, 2]), "not a JSON object"),
        (jwt({"iat": 1}), "no numeric exp"),
        (jwt({"exp": True}), "no numeric exp"),
        (jwt({"exp": "1764634500"}), "no numeric exp"),
        (jwt({"exp": 10**20}), "outside the supported range"),
        (jwt({"exp": 5}), "outside the supported range"),
    ],
)
def test_expiry_malformed_logs_debug(
    ticket: str, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="actortoken_store.expiry"):
        assert ticket_expiry_ms(ticket, token_id="act_9") is None
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 1
    assert "act_9" in messages[0]
    assert problem in messages[0]
    assert ticket not in messages[0]
    assert caplog.records[0].levelno == logging.DEBUG


def test_with_expiry_datetime() -> None:
    at = datetime(2025, 12, 2, 1, 0, tzinfo=UTC)
    assert with_expiry(token(), expires_at=at).expires_at == 1_764_637_200_000


def test_with_expiry_milliseconds() -> None:
    assert with_expiry(token(), expires_at=1_764_637_200_000).expires_at == 1_764_637_200_000


def test_with_expiry_seconds_from_creation() -> None:
    assert with_expiry(token(), expires_in_seconds=600).expires_at == 1_764_633_600_000


def test_with_expiry_nothing_given() -> None:
    original = token()
    assert with_expiry(original) is original


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"expires_at": 1_764_637_200_000, "expires_in_seconds": 60}, "not both"),
        ({"expires_at": datetime(2025, 12, 2)}, "naive"),
        ({"expires_in_seconds": 0}, "positive integer"),
        ({"expires_in_seconds": True}, "positive integer"),
        ({"expires_in_seconds": 1.5}, "positive integer"),
    ],
)
def test_with_expiry_rejects(arguments: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidArgumentError, match=expected):
        with_expiry(token(), **arguments)


def test_expires_at_validated() -> None:
    with pytest.raises(InvalidActorTokenError, match="expires_at"):
        token().with_expiry(12)


def test_expires_at_not_compared() -> None:
    assert token().with_expiry(1_764_637_200_000) == token()


def test_expires_at_utc() -> None:
    assert token().with_expiry(1_764_637_200_000).expires_at_utc == datetime(
        2025, 12, 2, 1, 0, tzinfo=UTC
    )
    assert token().expires_at_utc is None


def test_repr_hides_ticket() -> None:
    ticket = jwt({"exp": 1_764_634_500})
    value = token(ticket)
    for text in (repr(value), str(value)):
        assert ticket not in text
        assert "has_ticket=True" in text
