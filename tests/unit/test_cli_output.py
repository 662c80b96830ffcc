"""Masking and rendering of tokens in command output."""

from __future__ import annotations

import json

from actortoken_store.cli.output import format_table, format_token, mask_secret, masked_clerk
from actortoken_store.model import ActorToken

TICKET = "eyJhbGciOiJSUzI1NiJ9." + "x" * 60 + ".signature-part-that-must-stay-hidden"


def make_token(**changes: object) -> ActorToken:
    data: dict[str, object] = {
        "object": "actor_token",
        "id": "act_0001",
        "status": "pending",
        "user_id": "user_one",
        "actor": {"sub": "user_support", "reason": "café visit"},
        "token": TICKET,
        "url": f"https://accounts.example.test/v1/tickets/accept?ticket={TICKET}",
        "created_at": 1_775_233_450_840,
        "updated_at": 1_775_233_450_840,
    }
    data.update(changes)
    return ActorToken.from_clerk(data)


def test_mask_long_secret() -> None:
    assert mask_secret(TICKET) == f"eyJhbGciOi…(redacted, {len(TICKET)} chars)"


def test_mask_short_secret_fully() -> None:
    assert mask_secret("short-ticket-123") == "…(redacted, 16 chars)"
    assert mask_secret("x" * 39) == "…(redacted, 39 chars)"
    assert mask_secret("x" * 40) == "xxxxxxxxxx…(redacted, 40 chars)"


def test_mask_none_stays_none() -> None:
    assert mask_secret(None) is None


def test_masked_clerk_fields() -> None:
    token = make_token()
    data = masked_clerk(token)
    assert data["token"] == mask_secret(TICKET)
    assert data["url"] == f"https://ac…(redacted, {len(token.url or '')} chars)"
    assert {key: value for key, value in data.items() if key not in ("token", "url")} == {
        key: value for key, value in token.to_clerk().items() if key not in ("token", "url")
    }


def test_format_token_hides_ticket() -> None:
    text = format_token(make_token())
    assert "signature-part" not in text
    assert "created_at  2026-04-03T16:24:10.840Z (1775233450840)" in text
    assert json.dumps({"sub": "user_support", "reason": "café visit"}, ensure_ascii=False) in text


def test_format_token_without_ticket() -> None:
    text = format_token(make_token(status="revoked", token=None, url=None))
    assert "token       null" in text
    assert "url         null" in text


def test_format_table_columns() -> None:
    lines = format_table([make_token(), make_token(id="act_0002", token=None, url=None)]).split(
        "\n"
    )
    assert lines[0].split() == ["CREATED_AT", "STATUS", "ID", "ACTOR", "TICKET"]
    assert lines[1].split() == [
        "2026-04-03T16:24:10.840Z",
        "pending",
        "act_0001",
        "user_support",
        "yes",
    ]
    assert lines[2].split()[-1] == "no"
