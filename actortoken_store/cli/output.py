"""Rendering actor tokens for the terminal and as JSON, with tickets masked.

A ticket (``token``) and its sign-in URL (``url``) let anyone who reads them sign in as the
impersonated user, so command output shows only a short prefix and the length.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from actortoken_store.model import ActorToken
from actortoken_store.results import TicketState

__all__ = ["format_table", "format_token", "mask_secret", "masked_clerk", "to_json"]

SHOWN_PREFIX: Final = 10
"""Characters of a secret shown before the mask: a JWT's header or a URL's scheme and host
start, neither of which grants access."""

MIN_LENGTH_FOR_PREFIX: Final = 40
"""Shorter secrets are masked completely, because a 10-character prefix would be a large
part of them."""


def mask_secret(value: str | None) -> str | None:
    """Mask a ticket or ticket URL, such as ``eyJhbGciOi…(redacted, 812 chars)``.

    None stays None, so the output still shows whether a ticket is stored.
    """
    if value is None:
        return None
    prefix = value[:SHOWN_PREFIX] if len(value) >= MIN_LENGTH_FOR_PREFIX else ""
    return f"{prefix}…(redacted, {len(value)} chars)"


def masked_clerk(token: ActorToken) -> dict[str, Any]:
    """Return Clerk's snake_case JSON object for ``token`` with the secrets masked."""
    data = token.to_clerk()
    data["token"] = mask_secret(token.token)
    data["url"] = mask_secret(token.url)
    return data


def to_json(value: Any) -> str:
    """Serialize command output as indented JSON, keeping non-ASCII text readable."""
    return json.dumps(value, ensure_ascii=False, indent=2)


def format_token(token: ActorToken, *, reveal: bool = False) -> str:
    """Render one token as aligned ``field  value`` lines.

    The ticket and the ticket URL are masked unless ``reveal`` is set.
    """
    render_secret = (lambda value: value) if reveal else mask_secret
    expires = "unknown" if token.expires_at_utc is None else _iso(token.expires_at_utc)
    if token.expires_at is not None:
        expires += f" ({token.expires_at})"
    fields = [
        ("id", token.id),
        ("object", token.object.value),
        ("status", token.status.value),
        ("user_id", token.user_id),
        ("actor", json.dumps(token.to_clerk()["actor"], ensure_ascii=False)),
        ("token", _or_null(render_secret(token.token))),
        ("url", _or_null(render_secret(token.url))),
        ("created_at", f"{_iso(token.created_at_utc)} ({token.created_at})"),
        ("updated_at", f"{_iso(token.updated_at_utc)} ({token.updated_at})"),
        ("expires_at", expires),
    ]
    width = max(len(name) for name, _ in fields)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in fields)


def format_table(
    tokens: Iterable[ActorToken], ticket_states: Mapping[str, TicketState] | None = None
) -> str:
    """Render tokens as a table: creation time, status, id, actor and ticket presence.

    The TICKET column is ``yes``, ``no``, or ``unavailable`` for a ticket under a key that
    is not configured. Without ``ticket_states``, it reads the tokens' own tickets.
    """
    header = ("CREATED_AT", "STATUS", "ID", "ACTOR", "TICKET")
    rows = [
        (
            _iso(token.created_at_utc),
            token.status.value,
            token.id,
            token.actor_sub,
            _ticket_cell(token, ticket_states),
        )
        for token in tokens
    ]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    return "\n".join(_join(row, widths) for row in [header, *rows])


def _ticket_cell(token: ActorToken, states: Mapping[str, TicketState] | None) -> str:
    state = None if states is None else states.get(token.id)
    if state is None:
        return "yes" if token.has_ticket else "no"
    return {TicketState.STORED: "yes", TicketState.NONE: "no"}.get(state, state.value)


def _join(row: tuple[str, ...], widths: list[int]) -> str:
    return "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _or_null(value: str | None) -> str:
    return "null" if value is None else value
