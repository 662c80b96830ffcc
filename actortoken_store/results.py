"""Values the repositories return: save outcomes and pages of tokens."""

from __future__ import annotations

import base64
import binascii
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from actortoken_store.errors import InvalidArgumentError
from actortoken_store.model import MAX_TIMESTAMP_MS, ActorToken

__all__ = [
    "Page",
    "SaveOutcome",
    "SaveReport",
    "SaveResult",
    "TicketState",
    "decode_cursor",
    "encode_cursor",
]


class SaveOutcome(StrEnum):
    """Outcome of saving one snapshot of a token."""

    INSERTED = "inserted"
    """The token was new."""
    UPDATED = "updated"
    """The snapshot was newer than the stored token and replaced it."""
    UNCHANGED = "unchanged"
    """The snapshot equals the stored token, or is older than it."""
    CONFLICT = "conflict"
    """The snapshot contradicts the stored token and was not applied: it has another user or
    creation time, or the stored token is terminal and the snapshot has another status. An
    older pending snapshot of a terminal token is a stale replay and counts as unchanged."""


@dataclass(frozen=True, slots=True)
class SaveResult:
    """The outcome of saving one snapshot."""

    token_id: str
    outcome: SaveOutcome


@dataclass(frozen=True, slots=True)
class SaveReport:
    """The outcomes of a `save_many` call, in input order."""

    results: Sequence[SaveResult] = field(default_factory=tuple)

    def count(self, outcome: SaveOutcome) -> int:
        """Return how many snapshots had ``outcome``."""
        return sum(1 for result in self.results if result.outcome is outcome)

    def counts(self) -> dict[SaveOutcome, int]:
        """Return the number of snapshots per outcome, every outcome included."""
        tally = Counter(result.outcome for result in self.results)
        return {outcome: tally.get(outcome, 0) for outcome in SaveOutcome}


class TicketState(StrEnum):
    """Whether a stored row's ticket can be read, as `Page.ticket_states` reports it."""

    STORED = "stored"
    """The ticket is stored in plaintext or under a configured key."""
    NONE = "none"
    """No ticket is stored: it was dropped, or only its digest is kept."""
    UNAVAILABLE = "unavailable"
    """The ticket is encrypted under a key id that is not configured, so it cannot be read."""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of tokens, newest first, and the cursor of the next page."""

    items: Sequence[ActorToken]
    next_cursor: str | None
    """Pass as ``after`` to get the next page; None on the last page."""
    ticket_states: Mapping[str, TicketState] = field(default_factory=dict)
    """The state of each item's ticket, by token id; read from the row, never decrypted."""


def encode_cursor(created_at_ms: int, token_id: str) -> str:
    """Encode a keyset position (creation time and id of the last row) as an opaque string."""
    raw = f"{created_at_ms}:{token_id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    """Decode a cursor made by `encode_cursor`.

    Raises:
        InvalidArgumentError: the cursor is not one this library produced.
    """
    if not isinstance(cursor, str):
        raise InvalidArgumentError(
            f"invalid cursor of type {type(cursor).__name__}: pass the next_cursor string "
            "returned by a previous page"
        )
    problem = f"invalid cursor {cursor[:40]!r}: pass a next_cursor returned by a previous page"
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, _, token_id = (
            base64.urlsafe_b64decode(padded.encode("ascii")).decode().partition(":")
        )
        created_at_ms = int(created)
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidArgumentError(problem) from None
    if not token_id or not 0 <= created_at_ms <= MAX_TIMESTAMP_MS or "\x00" in token_id:
        raise InvalidArgumentError(problem)
    return created_at_ms, token_id
