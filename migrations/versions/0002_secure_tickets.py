"""Keep tickets encrypted or as digests, and record when they expire.

Adds ``ticket_digest``, ``ticket_ciphertext``, ``ticket_key_id`` and ``expires_at`` to
``actor_tokens`` and converts the rows stored by earlier revisions in batches, under the
secrets policy from the environment (``ACTORTOKEN_STORE_KEYS`` and friends) or from
``config.attributes["secrets"]``:

- every stored ticket gets its SHA-256 digest, and its expiry from the JWT ``exp`` claim;
- with a key, tickets are encrypted; in plaintext mode they stay as they are;
- without a key, rows holding a ticket make the upgrade stop, unless the operator passes
  ``-x drop_tickets=true`` (or ``config.attributes["drop_tickets"] = True``) to accept that
  only their digests are kept.

The downgrade decrypts what the configured keys can decrypt back into ``token`` and ``url``,
logs how many tickets it could not restore, and drops the new columns.

Offline (``--sql``) the rows cannot be read, so the SQL only adds the columns and fills the
digests; tickets stay in plaintext until ``actortoken-store keys rotate`` runs in encrypt mode.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-04
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa
from alembic import context, op
from alembic.util.exc import CommandError

from actortoken_store.errors import TicketDecryptionError
from actortoken_store.expiry import ticket_expiry_ms
from actortoken_store.model import TokenStatus, ms_to_datetime
from actortoken_store.secrets import (
    ENV_KEEP_TERMINAL_TICKETS,
    ENV_KEYS,
    Keyring,
    SecretsMode,
    SecretsPolicy,
)

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("actortoken_store.migrations")

BATCH_SIZE: Final = 1000
"""Rows read and written per round trip while converting."""

MAX_LISTED_IDS: Final = 20
"""Token ids named in a log message; the rest are counted."""

_TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})


def _schema() -> str | None:
    # env.py always places the version table in the store's schema.
    return op.get_context().version_table_schema


def _tokens(schema: str | None) -> sa.TableClause:
    return sa.table(
        "actor_tokens",
        sa.column("id", sa.Text()),
        sa.column("status", sa.Text()),
        sa.column("token", sa.Text()),
        sa.column("url", sa.Text()),
        sa.column("ticket_digest", sa.LargeBinary()),
        sa.column("ticket_ciphertext", sa.LargeBinary()),
        sa.column("ticket_key_id", sa.Text()),
        sa.column("expires_at", sa.TIMESTAMP(timezone=True)),
        schema=schema,
    )


def _policy() -> SecretsPolicy:
    configured = context.config.attributes.get("secrets")
    if isinstance(configured, SecretsPolicy):
        return configured
    return SecretsPolicy.from_environment()


def _drop_tickets_accepted() -> bool:
    if context.config.attributes.get("drop_tickets") is True:
        return True
    value = context.get_x_argument(as_dictionary=True).get("drop_tickets", "")
    return str(value).strip().lower() in _TRUE_WORDS


def upgrade() -> None:
    schema = _schema()
    tokens = _tokens(schema)
    policy = None if context.is_offline_mode() else _policy()
    if policy is not None:
        _check_tickets_may_be_dropped(tokens, policy)

    op.add_column("actor_tokens", sa.Column("ticket_digest", sa.LargeBinary()), schema=schema)
    op.add_column("actor_tokens", sa.Column("ticket_ciphertext", sa.LargeBinary()), schema=schema)
    op.add_column("actor_tokens", sa.Column("ticket_key_id", sa.Text()), schema=schema)
    op.add_column(
        "actor_tokens", sa.Column("expires_at", sa.TIMESTAMP(timezone=True)), schema=schema
    )

    if policy is None:
        logger.warning(
            "offline SQL fills ticket digests but leaves tickets in plaintext; run "
            "'actortoken-store keys rotate' with %s set to encrypt them",
            ENV_KEYS,
        )
        op.execute(
            tokens.update()
            .where(tokens.c.token.is_not(None))
            .values(ticket_digest=sa.func.sha256(sa.func.convert_to(tokens.c.token, "UTF8")))
        )
    else:
        _convert_rows(tokens, policy)

    op.create_check_constraint(
        op.f("ck_actor_tokens_ciphertext_has_key_id"),
        "actor_tokens",
        "(ticket_ciphertext IS NULL) = (ticket_key_id IS NULL)",
        schema=schema,
    )
    op.create_check_constraint(
        op.f("ck_actor_tokens_one_ticket_form"),
        "actor_tokens",
        "ticket_ciphertext IS NULL OR (token IS NULL AND url IS NULL)",
        schema=schema,
    )
    op.create_index(
        "ix_actor_tokens_ticket_digest", "actor_tokens", ["ticket_digest"], schema=schema
    )
    op.create_index(
        "ix_actor_tokens_pending_user_id_actor_sub",
        "actor_tokens",
        ["user_id", sa.text("(actor ->> 'sub')"), sa.text("created_at DESC"), sa.text("id DESC")],
        postgresql_where=sa.text("status = 'pending'"),
        schema=schema,
    )


def _check_tickets_may_be_dropped(tokens: sa.TableClause, policy: SecretsPolicy) -> None:
    """Stop the upgrade when it would drop stored tickets without the operator's consent."""
    if policy.mode is not SecretsMode.DIGEST:
        return
    holding = op.get_bind().scalar(
        sa.select(sa.func.count())
        .select_from(tokens)
        .where(sa.or_(tokens.c.token.is_not(None), tokens.c.url.is_not(None)))
    )
    if not holding:
        return
    if not _drop_tickets_accepted():
        raise CommandError(
            f"{holding} stored actor tokens hold a ticket and no encryption key is configured, "
            f"so upgrading would drop those tickets and keep only their SHA-256 digests. Set "
            f"{ENV_KEYS} to encrypt them instead, or rerun with -x drop_tickets=true to accept "
            "that the tickets will be dropped"
        )
    logger.warning(
        "dropping the tickets of %d actor tokens and keeping only their SHA-256 digests, "
        "as -x drop_tickets=true requested",
        holding,
    )


def _convert_rows(tokens: sa.TableClause, policy: SecretsPolicy) -> None:
    """Seal every stored ticket under ``policy``, in batches ordered by id."""
    bind = op.get_bind()
    converted = 0
    dropped_terminal = 0
    last_id = ""
    while True:
        rows = bind.execute(
            sa.select(tokens.c.id, tokens.c.status, tokens.c.token, tokens.c.url)
            .where(
                tokens.c.id > last_id,
                sa.or_(tokens.c.token.is_not(None), tokens.c.url.is_not(None)),
            )
            .order_by(tokens.c.id)
            .limit(BATCH_SIZE)
        ).all()
        if not rows:
            break
        updates = []
        for row in rows:
            status = TokenStatus(row.status)
            sealed = policy.seal(row.id, status, row.token, row.url)
            expiry = ticket_expiry_ms(row.token, token_id=row.id)
            if not policy.keeps_secret(status):
                dropped_terminal += 1
            updates.append(
                {
                    "b_id": row.id,
                    "b_token": sealed.token,
                    "b_url": sealed.url,
                    "b_digest": sealed.digest,
                    "b_ciphertext": sealed.ciphertext,
                    "b_key_id": sealed.key_id,
                    "b_expires_at": None if expiry is None else ms_to_datetime(expiry),
                }
            )
        bind.execute(_update_sealed(tokens), updates)
        converted += len(rows)
        last_id = rows[-1].id
    if converted:
        logger.info(
            "converted the tickets of %d actor tokens to secrets mode %s",
            converted,
            policy.mode.value,
        )
    if dropped_terminal:
        logger.info(
            "dropped the tickets of %d accepted or revoked actor tokens, which can no longer "
            "be used; set %s=true to keep them",
            dropped_terminal,
            ENV_KEEP_TERMINAL_TICKETS,
        )


def _update_sealed(tokens: sa.TableClause) -> Any:
    return (
        tokens.update()
        .where(tokens.c.id == sa.bindparam("b_id"))
        .values(
            token=sa.bindparam("b_token"),
            url=sa.bindparam("b_url"),
            ticket_digest=sa.bindparam("b_digest"),
            ticket_ciphertext=sa.bindparam("b_ciphertext"),
            ticket_key_id=sa.bindparam("b_key_id"),
            expires_at=sa.bindparam("b_expires_at"),
        )
    )


def downgrade() -> None:
    schema = _schema()
    tokens = _tokens(schema)
    op.drop_index("ix_actor_tokens_pending_user_id_actor_sub", "actor_tokens", schema=schema)
    op.drop_index("ix_actor_tokens_ticket_digest", "actor_tokens", schema=schema)
    # Dropped before restoring, because restored rows hold a plaintext and a ciphertext.
    op.drop_constraint(
        op.f("ck_actor_tokens_one_ticket_form"), "actor_tokens", type_="check", schema=schema
    )
    op.drop_constraint(
        op.f("ck_actor_tokens_ciphertext_has_key_id"),
        "actor_tokens",
        type_="check",
        schema=schema,
    )
    if not context.is_offline_mode():
        _restore_tickets(tokens)

    for name in ("expires_at", "ticket_key_id", "ticket_ciphertext", "ticket_digest"):
        op.drop_column("actor_tokens", name, schema=schema)


def _restore_tickets(tokens: sa.TableClause) -> None:
    """Decrypt stored tickets back into ``token`` and ``url`` and report what is lost."""
    configured = context.config.attributes.get("secrets")
    if isinstance(configured, SecretsPolicy):
        keyring = configured.keyring
    else:
        keyring = _keyring_from_environment()
    policy = SecretsPolicy(SecretsMode.PLAINTEXT, keyring)
    bind = op.get_bind()
    restored = 0
    failed: list[str] = []
    failed_key_ids: set[str] = set()
    last_id = ""
    while True:
        rows = bind.execute(
            sa.select(tokens.c.id, tokens.c.ticket_ciphertext, tokens.c.ticket_key_id)
            .where(tokens.c.id > last_id, tokens.c.ticket_ciphertext.is_not(None))
            .order_by(tokens.c.id)
            .limit(BATCH_SIZE)
        ).all()
        if not rows:
            break
        updates = []
        for row in rows:
            try:
                token, url = policy.open(row.id, row.ticket_key_id, row.ticket_ciphertext)
            except TicketDecryptionError:
                failed.append(row.id)
                failed_key_ids.add(row.ticket_key_id)
                continue
            updates.append({"b_id": row.id, "b_token": token, "b_url": url})
        if updates:
            bind.execute(
                tokens.update()
                .where(tokens.c.id == sa.bindparam("b_id"))
                .values(token=sa.bindparam("b_token"), url=sa.bindparam("b_url")),
                updates,
            )
        restored += len(updates)
        last_id = rows[-1].id

    digest_only = bind.scalar(
        sa.select(sa.func.count())
        .select_from(tokens)
        .where(
            tokens.c.ticket_digest.is_not(None),
            tokens.c.ticket_ciphertext.is_(None),
            tokens.c.token.is_(None),
        )
    )
    if restored:
        logger.info("restored %d tickets from their ciphertexts", restored)
    if failed:
        listed = ", ".join(failed[:MAX_LISTED_IDS])
        more = f" and {len(failed) - MAX_LISTED_IDS} more" if len(failed) > MAX_LISTED_IDS else ""
        logger.warning(
            "could not restore the tickets of %d actor tokens, because the configured keys "
            "do not decrypt them (key ids: %s); the earlier schema has no place for their "
            "ciphertexts, so those tickets are lost: %s%s",
            len(failed),
            ", ".join(sorted(failed_key_ids)),
            listed,
            more,
        )
    if digest_only:
        logger.warning(
            "could not restore the tickets of %d actor tokens that kept only a digest "
            "(digest secrets mode, or accepted and revoked tokens whose tickets were dropped); "
            "they read without a ticket in the earlier schema",
            digest_only,
        )


def _keyring_from_environment() -> Keyring:
    text = os.environ.get(ENV_KEYS, "")
    return Keyring.parse(text) if text.strip() else Keyring()
