"""SQLAlchemy mapping of the store's tables.

Tables are declared without a schema. The repositories run every statement with a
``schema_translate_map`` that puts them in the configured PostgreSQL schema (default
``public``); code that queries `ActorTokenRecord` directly in another schema passes the same
map, which `schema_options` builds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Enum,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TIMESTAMP, SchemaType

from actortoken_store.model import TokenStatus

__all__ = [
    "DEFAULT_SCHEMA",
    "EVENT_SOURCES",
    "STATUS_ENUM_NAME",
    "ActorTokenEventRecord",
    "ActorTokenRecord",
    "Base",
    "metadata",
    "metadata_for",
    "schema_options",
    "status_type",
]

DEFAULT_SCHEMA: Final = "public"
STATUS_ENUM_NAME: Final = "actor_token_status"

# Every constraint and index gets a stable name, so Alembic can compare and drop them.
NAMING_CONVENTION: Final = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

status_type = Enum(
    TokenStatus,
    name=STATUS_ENUM_NAME,
    values_callable=lambda members: [member.value for member in members],
    metadata=metadata,
    validate_strings=True,
)
"""The native PostgreSQL enum ``actor_token_status``: pending, accepted, revoked."""


class Base(DeclarativeBase):
    """Declarative base of the store's mapped classes."""

    metadata = metadata


class ActorTokenRecord(Base):
    """One stored actor token: the row behind `actortoken_store.model.ActorToken`."""

    __tablename__ = "actor_tokens"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    """Clerk's token id, such as ``act_2B3Y...``."""

    status: Mapped[TokenStatus] = mapped_column(status_type)
    user_id: Mapped[str] = mapped_column(Text)
    """The impersonated user."""

    actor: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """The actor claims; ``sub`` is the impersonator."""

    token: Mapped[str | None] = mapped_column(Text)
    """The sign-in ticket (a JWT) in plaintext; only the plaintext secrets mode fills it."""

    url: Mapped[str | None] = mapped_column(Text)
    """The sign-in URL, which embeds the ticket; plaintext secrets mode only."""

    ticket_digest: Mapped[bytes | None] = mapped_column(LargeBinary)
    """SHA-256 of the ticket, kept in every secrets mode and after the ticket is dropped."""

    ticket_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    """Ticket and URL encrypted with AES-256-GCM, bound to the token id (encrypt mode)."""

    ticket_key_id: Mapped[str | None] = mapped_column(Text)
    """Id of the key that encrypted ``ticket_ciphertext``."""

    expires_at: Mapped[datetime | None] = mapped_column(TIMESTAMP(timezone=True))
    """When the ticket expires: its JWT ``exp`` claim or an expiry given at save."""

    created_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True))

    __table_args__ = (
        CheckConstraint("id <> ''", name="id_not_empty"),
        CheckConstraint("user_id <> ''", name="user_id_not_empty"),
        CheckConstraint(
            "jsonb_typeof(actor) = 'object' AND jsonb_typeof(actor -> 'sub') = 'string'",
            name="actor_has_sub",
        ),
        CheckConstraint("updated_at >= created_at", name="updated_after_created"),
        CheckConstraint(
            "(ticket_ciphertext IS NULL) = (ticket_key_id IS NULL)",
            name="ciphertext_has_key_id",
        ),
        CheckConstraint(
            "ticket_ciphertext IS NULL OR (token IS NULL AND url IS NULL)",
            name="one_ticket_form",
        ),
        # A user's tokens, newest first: list_for_user and its keyset pagination.
        Index(
            "ix_actor_tokens_user_id_created_at",
            "user_id",
            text("created_at DESC"),
            text("id DESC"),
        ),
        # Pending tokens, oldest first: stale-ticket queries and the cache.
        Index(
            "ix_actor_tokens_pending_created_at",
            "created_at",
            postgresql_where=text("status = 'pending'"),
        ),
        # Tokens issued by one impersonator.
        Index("ix_actor_tokens_actor_sub_created_at", text("(actor ->> 'sub')"), "created_at"),
        # get_by_ticket.
        Index("ix_actor_tokens_ticket_digest", "ticket_digest"),
        # find_reusable: a pair's pending tokens, newest first.
        Index(
            "ix_actor_tokens_pending_user_id_actor_sub",
            "user_id",
            text("(actor ->> 'sub')"),
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("status = 'pending'"),
        ),
    )


EVENT_SOURCES: Final = ("repository", "import", "migration", "sql")
"""Values of ``actor_token_events.source``: what made the change."""


class ActorTokenEventRecord(Base):
    """One audit event: a token appeared or changed status.

    Rows are written only by the trigger on ``actor_tokens`` (and by the migration that
    backfills them). Triggers reject UPDATE, DELETE and TRUNCATE; the one exception is the
    ``prune_actor_token_events`` function. ``token_id`` has no foreign key on purpose, so
    events outlive their token.
    """

    __tablename__ = "actor_token_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    """Increases with every event, so it orders one token's events."""

    token_id: Mapped[str] = mapped_column(Text)
    user_id: Mapped[str] = mapped_column(Text)
    """The impersonated user."""

    actor_sub: Mapped[str] = mapped_column(Text)
    """The impersonator: ``actor ->> 'sub'`` at the time of the event."""

    actor: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """All actor claims at the time of the event."""

    from_status: Mapped[TokenStatus | None] = mapped_column(status_type)
    """The status before the change; null on the event that records the token's creation."""

    to_status: Mapped[TokenStatus] = mapped_column(status_type)
    issued_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True))
    """The token's ``created_at``, copied onto every event so audit queries need no join."""

    occurred_at: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True))
    """The token's ``updated_at`` after the change."""

    recorded_at: Mapped[datetime] = mapped_column(
        TIMESTAMP(timezone=True), server_default=text("statement_timestamp()")
    )
    """When the database wrote the event (its clock at the start of the statement)."""

    source: Mapped[str] = mapped_column(Text)
    """Origin of the change, one of `EVENT_SOURCES`."""

    context: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    """Caller-supplied context such as an operator id, a request id and a reason."""

    __table_args__ = (
        CheckConstraint(
            "source IN ('repository', 'import', 'migration', 'sql')", name="source_known"
        ),
        CheckConstraint("jsonb_typeof(context) = 'object'", name="context_is_object"),
        # One token's timeline, and the final state of each impersonation.
        Index("ix_actor_token_events_token_id_id", "token_id", "id"),
        # Impersonations by one actor and the per-actor summary, read from the index alone.
        Index(
            "ix_actor_token_events_actor_sub_issued_at",
            "actor_sub",
            "issued_at",
            "id",
            postgresql_include=["from_status", "to_status", "user_id", "occurred_at"],
        ),
        # Impersonations of one user, newest first.
        Index(
            "ix_actor_token_events_user_id_issued_at",
            "user_id",
            "issued_at",
            "id",
            postgresql_where=text("from_status IS NULL"),
        ),
        # Impersonations and the summary of every actor over a time window.
        Index(
            "ix_actor_token_events_issued_at",
            "issued_at",
            "id",
            postgresql_include=["actor_sub", "from_status", "to_status", "user_id", "occurred_at"],
        ),
        # Retention: prune_actor_token_events deletes by occurred_at.
        Index("ix_actor_token_events_occurred_at", "occurred_at"),
    )


def metadata_for(schema: str) -> MetaData:
    """Return the store's metadata with every table and the enum type placed in ``schema``.

    Alembic's autogenerate compares this copy with the database. The default schema keeps
    the schema-less original, because Alembic reports an explicit ``public`` as a difference.
    """
    if schema == DEFAULT_SCHEMA:
        return metadata
    placed = MetaData(naming_convention=NAMING_CONVENTION)
    for table in metadata.sorted_tables:
        copied = table.to_metadata(placed, schema=schema)
        # SQLAlchemy 2.0 copies a schema-less enum type without the table's schema (2.1
        # moves it along), so place the copied types explicitly on either version.
        for column in copied.columns:
            if isinstance(column.type, SchemaType) and column.type.schema is None:
                column.type.schema = schema
    return placed


def schema_options(schema: str = DEFAULT_SCHEMA) -> dict[str, Any]:
    """Build the execution options that place the store's tables in ``schema``."""
    return {"schema_translate_map": {None: schema}}
