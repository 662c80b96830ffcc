"""Repository operations written once for both the sync and the async repository.

Each operation is a generator: it yields a step, receives the step's result, and finally
returns the operation's value. A step is a `Call` (a fixed statement and its parameter
values), a `Pipeline` of calls, or any other SQLAlchemy statement. The runners execute a
`Call` on the session's psycopg connection and send back `Rows`, and a `Pipeline` the same
way, sending back one `Rows` per call. They pass any other statement to
``Session.execute`` (or ``await AsyncSession.execute``) and send back its buffered
`Result`. The code here never does I/O, so every rule exists once for sync and async.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, TypeVar

from sqlalchemy import Executable

from actortoken_store import statements
from actortoken_store.calls import Call, Pipeline, Rows
from actortoken_store.clerk_models import TokenInput, to_actor_token
from actortoken_store.errors import (
    InvalidArgumentError,
    InvalidTransitionError,
    TokenNotFoundError,
)
from actortoken_store.expiry import with_expiry
from actortoken_store.model import ActorToken, TokenStatus, ms_to_datetime
from actortoken_store.results import (
    Page,
    SaveOutcome,
    SaveReport,
    SaveResult,
    decode_cursor,
    encode_cursor,
)
from actortoken_store.rows import datetime_to_ms, from_row, ticket_state, to_row
from actortoken_store.secrets import SecretsPolicy

__all__ = [
    "DEFAULT_AUDIT",
    "DEFAULT_BATCH_SIZE",
    "MAX_PAGE_SIZE",
    "Operation",
    "Step",
    "check_text_argument",
    "get",
    "get_one",
    "list_for_user",
    "save",
    "save_many",
    "transition",
]

T = TypeVar("T")
Step = Call | Pipeline | Executable
"""The step type an operation yields. The runner sends back `Rows` for a `Call`, a list of `Rows`
for a `Pipeline`, and a `sqlalchemy.Result` for any other statement."""

Operation = Generator[Step, Any, T]
"""A generator that yields steps, receives their results and returns a ``T``."""

DEFAULT_BATCH_SIZE: Final = 1000
"""Rows per INSERT in `save_many`. The rows travel as one JSON parameter, so no
bind-parameter limit caps the size. Larger batches cost more memory on both sides and were
no faster in the bench."""

MAX_PAGE_SIZE: Final = 1000

DEFAULT_AUDIT: Final[Mapping[str, str]] = MappingProxyType(
    {"audit_source": "repository", "audit_context": "{}"}
)
"""The values of the audit settings that writes set unless the caller gives others: source
``repository`` and an empty context. `AuditContext.parameters` builds other values."""


def save(
    token: TokenInput,
    *,
    secrets: SecretsPolicy,
    actor: Mapping[str, Any] | None = None,
    expires_at: datetime | int | None = None,
    expires_in_seconds: int | None = None,
    audit: Mapping[str, str] = DEFAULT_AUDIT,
) -> Operation[SaveOutcome]:
    """Store one snapshot under the monotonic rule and return what happened to it.

    ``token`` may be a Clerk SDK model, converted with ``actor`` as its claims. An explicit
    ``expires_at`` or ``expires_in_seconds`` (see `with_expiry`) wins over the ``exp``
    claim of the ticket.
    """
    value = with_expiry(
        to_actor_token(token, actor),
        expires_at=expires_at,
        expires_in_seconds=expires_in_seconds,
    )
    report = yield from save_many([value], secrets=secrets, audit=audit)
    return report.results[0].outcome


def save_many(
    tokens: Iterable[ActorToken],
    *,
    secrets: SecretsPolicy,
    batch_size: int = DEFAULT_BATCH_SIZE,
    audit: Mapping[str, str] = DEFAULT_AUDIT,
) -> Operation[SaveReport]:
    """Store snapshots in input order, as if each were saved alone, in few statements.

    Snapshots are grouped into rounds in which every id appears once, because PostgreSQL's
    ON CONFLICT cannot update a row twice in one statement. A later snapshot of the same id
    goes to a later round, so the rule applies them in input order. Each round is sorted by
    id and sent in batches of ``batch_size`` rows, one statement each, without waiting
    between them; the report lists outcomes in input order.

    The sort fixes the order in which the upserts lock rows. Two transactions that save
    overlapping ids in different input orders then wait for each other instead of
    deadlocking. A later round only touches ids of the first round, whose rows the
    transaction already holds.

    ``audit`` contains the audit settings each statement sets (see `DEFAULT_AUDIT`).

    Raises:
        InvalidArgumentError: ``batch_size`` is not a positive integer, or an item is not an
            `ActorToken`. Nothing is sent then.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidArgumentError(
            f"batch_size must be an integer of at least 1, got {batch_size!r}"
        )
    if isinstance(tokens, ActorToken) or not isinstance(tokens, Iterable):
        raise InvalidArgumentError(
            f"tokens must be an iterable of ActorToken, got {type(tokens).__name__}; "
            "wrap a single token in a list, or call save"
        )
    ordered = list(tokens)
    for position, token in enumerate(ordered):
        if not isinstance(token, ActorToken):
            raise InvalidArgumentError(
                f"tokens[{position}] must be an ActorToken, got {type(token).__name__}; "
                "parse Clerk JSON with ActorToken.from_clerk first"
            )
    if not ordered:
        return SaveReport(())
    outcomes: list[SaveOutcome | None] = [None] * len(ordered)

    for positions_in_round in _rounds(ordered):
        round_positions = sorted(positions_in_round, key=lambda position: ordered[position].id)
        batches = [
            round_positions[start : start + batch_size]
            for start in range(0, len(round_positions), batch_size)
        ]
        round_outcomes = yield from _save_round(
            [[ordered[position] for position in batch] for batch in batches], secrets, audit
        )
        for batch, batch_outcomes in zip(batches, round_outcomes, strict=True):
            for position, outcome in zip(batch, batch_outcomes, strict=True):
                outcomes[position] = outcome

    return SaveReport(
        tuple(
            SaveResult(token.id, outcome)
            for token, outcome in zip(ordered, outcomes, strict=True)
            if outcome is not None
        )
    )


def _rounds(tokens: Sequence[ActorToken]) -> list[list[int]]:
    """Split positions into rounds in which each token id occurs at most once."""
    rounds: list[list[int]] = []
    seen: dict[str, int] = {}
    for position, token in enumerate(tokens):
        index = seen.get(token.id, -1) + 1
        seen[token.id] = index
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(position)
    return rounds


def _save_round(
    batches: list[list[ActorToken]], secrets: SecretsPolicy, audit: Mapping[str, str]
) -> Operation[list[list[SaveOutcome]]]:
    """Store batches whose ids are all distinct, then classify the snapshots not applied.

    The upserts go out as one `Pipeline`: no batch touches another's rows, so the order in
    which their rows come back does not matter, and each batch's rows are built (to_row,
    JSON) while the server stores the previous one. One SELECT then reads the stored
    state of every snapshot the round did not apply.
    """
    calls = (
        statements.upsert_tokens([to_row(token, secrets) for token in batch], audit)
        for batch in batches
    )
    results: list[Rows] = yield Pipeline(calls)
    applied = {row["id"]: row["inserted"] for rows in results for row in rows}

    missing = [token.id for batch in batches for token in batch if token.id not in applied]
    stored: dict[str, dict[str, Any]] = {}
    if missing:
        states: Rows = yield statements.select_states(missing)
        stored = {row["id"]: row for row in states}

    outcomes = []
    for batch in batches:
        batch_outcomes = []
        for token in batch:
            if token.id in applied:
                inserted = applied[token.id]
                batch_outcomes.append(SaveOutcome.INSERTED if inserted else SaveOutcome.UPDATED)
            else:
                batch_outcomes.append(_classify_unapplied(token, stored.get(token.id)))
        outcomes.append(batch_outcomes)
    return outcomes


def _classify_unapplied(token: ActorToken, stored: dict[str, Any] | None) -> SaveOutcome:
    """Tell a stale or repeated snapshot (unchanged) from one that contradicts the row."""
    if stored is None:
        # Deleted by another transaction after the upsert looked; nothing was written.
        return SaveOutcome.UNCHANGED
    if (
        stored["user_id"] != token.user_id
        or datetime_to_ms(stored["created_at"]) != token.created_at
    ):
        return SaveOutcome.CONFLICT
    stored_status = TokenStatus(stored["status"])
    if stored_status.is_terminal and token.status is not stored_status:
        # A pending snapshot from before the final one is a stale replay of the history.
        # A later pending one, or another terminal status, contradicts the stored row.
        stale = token.status is TokenStatus.PENDING and token.updated_at <= datetime_to_ms(
            stored["updated_at"]
        )
        return SaveOutcome.UNCHANGED if stale else SaveOutcome.CONFLICT
    return SaveOutcome.UNCHANGED


def get(
    token_id: str, *, secrets: SecretsPolicy, reveal: bool = True
) -> Operation[ActorToken | None]:
    """Return the stored token with ``token_id``, or None.

    With ``reveal`` False, the ticket is not read: ``token`` and ``url`` are None.
    """
    check_text_argument("token_id", token_id)
    rows: Rows = yield statements.select_by_id(token_id)
    return from_row(rows[0], secrets, reveal=reveal) if rows else None


def get_one(token_id: str, *, secrets: SecretsPolicy, reveal: bool = True) -> Operation[ActorToken]:
    """Return the stored token with ``token_id``; raise `TokenNotFoundError` if none."""
    token = yield from get(token_id, secrets=secrets, reveal=reveal)
    if token is None:
        raise TokenNotFoundError(token_id)
    return token


def list_for_user(
    user_id: str,
    *,
    secrets: SecretsPolicy,
    status: TokenStatus | str | None = None,
    limit: int = 50,
    after: str | None = None,
    reveal: bool = True,
) -> Operation[Page]:
    """Return one page of a user's tokens, newest first (by ``created_at``, then id).

    With ``reveal`` False, no ticket is read or decrypted: every item's ``token`` and
    ``url`` are None, and `Page.ticket_states` records which rows have one. A row under a key
    that is not configured then lists instead of raising `TicketDecryptionError`.
    """
    check_text_argument("user_id", user_id)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidArgumentError(
            f"limit must be an integer from 1 to {MAX_PAGE_SIZE}, got {limit!r}"
        )
    wanted = _parse_status(status)
    position = None
    if after is not None:
        created_at_ms, last_id = decode_cursor(after)
        position = (ms_to_datetime(created_at_ms), last_id)

    # One extra row shows whether another page follows.
    rows: Rows = yield statements.select_for_user(
        user_id, status=wanted, limit=limit + 1, after=position
    )
    tokens = [from_row(row, secrets, reveal=reveal) for row in rows[:limit]]
    states = {row["id"]: ticket_state(row, secrets) for row in rows[:limit]}
    if len(rows) <= limit:
        return Page(tokens, None, states)
    last = tokens[-1]
    return Page(tokens, encode_cursor(last.created_at, last.id), states)


def transition(
    token_id: str,
    target: TokenStatus,
    at_ms: int,
    *,
    secrets: SecretsPolicy,
    audit: Mapping[str, str] = DEFAULT_AUDIT,
) -> Operation[ActorToken]:
    """Move a pending token to ``target`` in one conditional UPDATE and return it.

    The ticket is dropped (the digest stays) unless the policy keeps terminal tickets.
    ``audit`` contains the audit settings the UPDATE sets (see `DEFAULT_AUDIT`).

    Raises:
        TokenNotFoundError: no token has ``token_id``.
        InvalidTransitionError: the token is not pending; the error names its status.
    """
    check_text_argument("token_id", token_id)
    rows: Rows = yield statements.transition_token(
        token_id,
        target,
        ms_to_datetime(at_ms),
        audit,
        keep_terminal_tickets=secrets.keep_terminal_tickets,
    )
    if rows:
        return from_row(rows[0], secrets)

    # Nothing matched: find out whether the token is missing or no longer pending.
    states: Rows = yield statements.select_states([token_id])
    if not states:
        raise TokenNotFoundError(token_id)
    current = TokenStatus(states[0]["status"])
    raise InvalidTransitionError(token_id, current.value, target.value)


def check_text_argument(name: str, value: object) -> None:
    """Raise `InvalidArgumentError` unless ``value`` is a non-empty string psycopg can send."""
    # psycopg cannot send a NUL character or a lone surrogate (the second would escape
    # as a raw UnicodeEncodeError), and a non-string would fail in the database with a
    # less helpful type error. Any other text is a bound parameter, so quotes, LIKE
    # wildcards and JSON-path syntax are plain characters.
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be a string, got {type(value).__name__}")
    if not value:
        raise InvalidArgumentError(f"{name} must not be empty")
    if "\x00" in value:
        raise InvalidArgumentError(f"{name} must not contain a NUL character, got {value!r}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgumentError(
            f"{name} must not contain a lone surrogate, which is not valid UTF-8, got {value!r}"
        ) from None


def _parse_status(status: TokenStatus | str | None) -> TokenStatus | None:
    if status is None:
        return None
    try:
        return TokenStatus(status)
    except ValueError:
        allowed = ", ".join(member.value for member in TokenStatus)
        raise InvalidArgumentError(f"status must be one of {allowed}, got {status!r}") from None
