"""Synthetic actor tokens in the shape of Clerk's Backend API responses.

Ids, users, actors and tickets are random but deterministic for a seed. Tickets are JWTs
with Clerk's header and payload claims (``exp``, ``iat``, ``iid``, ``sid``, ``st``) and a
random 256-byte signature, so rows have the size of real ones (about 1.5 KB as JSON).
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, TextIO

from actortoken_store.model import ActorToken, TokenStatus

__all__ = ["NOW_MS", "SyntheticTokens"]

NOW_MS: Final = 1_764_633_600_000
""""Now" of the synthetic data: 2025-12-02T00:00:00Z. Tokens are created in the year before."""

DAY_MS: Final = 86_400_000
YEAR_MS: Final = 365 * DAY_MS
TICKET_LIFETIME_S: Final = 3600

_ALPHABET: Final = string.ascii_letters + string.digits
_HEADER: Final = base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"JWT"}').decode().rstrip("=")
_INSTANCE: Final = "ins_2UFawfnXlgH1JnxlJPv4bxOe5Lx"
_URL_PREFIX: Final = "https://example-app-00.clerk.accounts.dev/v1/tickets/accept?ticket="


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class SyntheticTokens:
    """A deterministic population of tokens: ``count`` tokens over ``users`` and ``actors``.

    Token ``i`` is created at an even spacing over the year before `NOW_MS`, so the
    newest tokens have the highest indexes, and a 30-day window contains about 30/365 of
    them. Every token is pending, as Clerk returns a newly created one, unless ``settled``.
    """

    count: int
    users: int
    actors: int
    seed: int = 2024
    settled: bool = False
    """Make two tokens in five terminal (accepted or revoked an hour after creation), as in
    a real history. Otherwise every token is pending."""

    def _rng(self, salt: str) -> random.Random:
        return random.Random(f"{self.seed}:{salt}")

    def _ids(self, prefix: str, count: int, salt: str) -> list[str]:
        rng = self._rng(salt)
        return [prefix + "".join(rng.choices(_ALPHABET, k=27)) for _ in range(count)]

    def records(self, start: int = 0, stop: int | None = None) -> Iterator[dict[str, Any]]:
        """Yield Clerk JSON objects (snake_case) of tokens ``start`` to ``stop``."""
        stop = self.count if stop is None else stop
        users = self._ids("user_", self.users, "users")
        actors = self._ids("user_", self.actors, "actors")
        rng = self._rng(f"tokens:{start}")
        spacing = YEAR_MS // max(self.count, 1)
        first = NOW_MS - YEAR_MS
        for index in range(start, stop):
            token_id = "act_" + "".join(rng.choices(_ALPHABET, k=27))
            created_at = first + index * spacing + rng.randrange(max(spacing, 1))
            issued = created_at // 1000
            payload = (
                f'{{"exp":{issued + TICKET_LIFETIME_S},"iat":{issued},"iid":"{_INSTANCE}",'
                f'"sid":"{token_id}","st":"actor_token"}}'
            )
            ticket = f"{_HEADER}.{_b64(payload.encode())}.{_b64(rng.randbytes(256))}"
            actor: dict[str, Any] = {"sub": actors[index % self.actors]}
            if index % 3 == 0:
                actor["reason"] = f"support ticket #{index}"
            status, updated_at = TokenStatus.PENDING, created_at
            if self.settled and index % 5 < 2:
                status = (TokenStatus.ACCEPTED, TokenStatus.REVOKED)[index % 5]
                updated_at = created_at + TICKET_LIFETIME_S * 1000
            yield {
                "object": "actor_token",
                "id": token_id,
                "status": status.value,
                "user_id": users[rng.randrange(self.users)],
                "actor": actor,
                "token": ticket,
                "url": _URL_PREFIX + ticket,
                "created_at": created_at,
                "updated_at": updated_at,
            }

    def tokens(self) -> list[ActorToken]:
        """Return every token as a validated `ActorToken`."""
        return [ActorToken.from_clerk(record) for record in self.records()]

    def user_ids(self) -> list[str]:
        """Return the impersonated users, in the order tokens draw from."""
        return self._ids("user_", self.users, "users")

    def actor_subs(self) -> list[str]:
        """Return the actors' ``sub`` claims."""
        return self._ids("user_", self.actors, "actors")

    def write_jsonl(self, out: TextIO) -> int:
        """Write every token as one line of JSON; return the number of lines."""
        lines = 0
        for record in self.records():
            out.write(json.dumps(record, separators=(",", ":")))
            out.write("\n")
            lines += 1
        return lines
