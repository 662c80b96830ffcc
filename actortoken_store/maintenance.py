"""Maintenance operations: purging old tokens and re-encrypting tickets under a new key.

Both work in bounded batches and never commit: the caller decides whether the batches share
one transaction or each gets its own (``max_batches=1`` in a loop).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from actortoken_store import ticket_statements
from actortoken_store.errors import ConfigurationError, InvalidArgumentError
from actortoken_store.model import TokenStatus, ms_to_datetime
from actortoken_store.operations import Operation
from actortoken_store.rows import cutoff_before, instant_to_ms
from actortoken_store.secrets import ENV_KEYS, SecretsMode, SecretsPolicy

__all__ = [
    "DEFAULT_PURGE_BATCH_SIZE",
    "DEFAULT_ROTATION_BATCH_SIZE",
    "KeyRotation",
    "purge",
    "rotate_keys",
]

logger = logging.getLogger(__name__)

DEFAULT_PURGE_BATCH_SIZE: Final = 1000
"""Tokens deleted per DELETE statement."""

DEFAULT_ROTATION_BATCH_SIZE: Final = 500
"""Rows locked, decrypted and re-encrypted per round trip."""


@dataclass(frozen=True, slots=True)
class KeyRotation:
    """Result of a `rotate_keys` call."""

    key_id: str
    """The key every rotated ticket is now encrypted with."""
    rotated: int
    """Rows re-encrypted, or whose ticket was dropped because the token is terminal."""
    finished: bool
    """True when no row is left to rotate; False when ``max_batches`` stopped early."""
    unreachable: Mapping[str, int] = field(default_factory=dict)
    """Rows per key id that is not configured, so rotation could not read them. Filled only
    when ``finished``."""


def purge(
    older_than: timedelta | datetime,
    *,
    now: datetime | int | None = None,
    batch_size: int = DEFAULT_PURGE_BATCH_SIZE,
    max_batches: int | None = None,
    dry_run: bool = False,
) -> Operation[int]:
    """Delete tokens that are accepted, revoked or expired and older than a cut-off.

    "Older" means the token's last change (``updated_at``) is before the cut-off. A pending
    token counts as expired once its ``expires_at`` is at or before ``now``; a pending token
    with an unknown expiry is never purged. Audit events of deleted tokens stay.

    Args:
        older_than: the cut-off, as an age before ``now`` or as an aware datetime.
        now: the current time (aware datetime or Unix ms); default: the clock.
        batch_size: tokens deleted per statement.
        max_batches: stop after this many statements; None runs until done.
        dry_run: count the tokens that would be deleted and delete nothing.

    Returns:
        The number of tokens deleted, or with ``dry_run`` the number that would be.

    Raises:
        InvalidArgumentError: ``older_than`` is missing, of another type, an age of zero or
            less, or a naive datetime; or a batch size or batch count is below 1.
    """
    _check_positive("batch_size", batch_size)
    if max_batches is not None:
        _check_positive("max_batches", max_batches)
    now_at = ms_to_datetime(instant_to_ms("now", now))
    # No default: a missing cut-off must not widen into "everything terminal until now".
    if isinstance(older_than, datetime):
        cutoff = ms_to_datetime(instant_to_ms("older_than", older_than))
    elif isinstance(older_than, timedelta):
        cutoff = cutoff_before("older_than", now_at, older_than)
    else:
        raise InvalidArgumentError(
            "older_than is required and must be a timedelta of more than zero or an aware "
            f"datetime, got {type(older_than).__name__}"
        )

    if dry_run:
        counted = yield ticket_statements.count_purgeable(cutoff, now_at)
        count: int = counted.scalar_one()
        return count

    deleted = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        result = yield ticket_statements.delete_purgeable(cutoff, now_at, batch_size)
        removed = len(result.all())
        deleted += removed
        batches += 1
        if removed < batch_size:
            break
    logger.info("purged %d actor tokens last changed before %s", deleted, cutoff.isoformat())
    return deleted


def rotate_keys(
    *,
    secrets: SecretsPolicy,
    batch_size: int = DEFAULT_ROTATION_BATCH_SIZE,
    max_batches: int | None = None,
) -> Operation[KeyRotation]:
    """Re-encrypt stored tickets under the policy's first key.

    Rows encrypted under another configured key are decrypted and encrypted again. In
    ``encrypt`` mode, rows that keep their ticket in plaintext are encrypted too. A
    terminal token's ticket is dropped instead, unless the policy keeps terminal tickets.
    Rows under a key id that is not configured are left alone and reported.

    Raises:
        ConfigurationError: no key is configured.
        InvalidArgumentError: a batch size or batch count below 1.
        TicketDecryptionError: a row under a configured key id does not decrypt; nothing of
            that batch is written.
    """
    _check_positive("batch_size", batch_size)
    if max_batches is not None:
        _check_positive("max_batches", max_batches)
    primary = secrets.keyring.primary_key_id
    if primary is None:
        raise ConfigurationError(f"key rotation needs at least one key; set {ENV_KEYS}")
    key_ids = secrets.keyring.key_ids
    encrypting = SecretsPolicy(
        SecretsMode.ENCRYPT, secrets.keyring, keep_terminal_tickets=secrets.keep_terminal_tickets
    )
    include_plaintext = secrets.mode is SecretsMode.ENCRYPT

    rotated = 0
    batches = 0
    finished = False
    while max_batches is None or batches < max_batches:
        result = yield ticket_statements.select_to_rotate(
            primary, key_ids, plaintext=include_plaintext, limit=batch_size
        )
        rows = list(result.mappings())
        if rows:
            yield ticket_statements.update_secrets(
                [_reseal(row, secrets, encrypting) for row in rows]
            )
        rotated += len(rows)
        batches += 1
        if len(rows) < batch_size:
            finished = True
            break

    unreachable: dict[str, int] = {}
    if finished:
        counts = yield ticket_statements.count_unrotatable(key_ids)
        unreachable = {row["ticket_key_id"]: row["tokens"] for row in counts.mappings()}
    logger.info("re-encrypted %d actor token tickets under key %s", rotated, primary)
    return KeyRotation(primary, rotated, finished, unreachable)


def _reseal(row: Any, secrets: SecretsPolicy, encrypting: SecretsPolicy) -> dict[str, Any]:
    token, url = row["token"], row["url"]
    if row["ticket_ciphertext"] is not None:
        token, url = secrets.open(row["id"], row["ticket_key_id"], row["ticket_ciphertext"])
    sealed = encrypting.seal(row["id"], TokenStatus(row["status"]), token, url)
    return {
        "id": row["id"],
        "token": sealed.token,
        "url": sealed.url,
        "ticket_ciphertext": sealed.ciphertext,
        "ticket_key_id": sealed.key_id,
    }


def _check_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"{name} must be an integer of at least 1, got {value!r}")
