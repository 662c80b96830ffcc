"""Add the append-only actor_token_events table, written by a trigger on actor_tokens.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04

The table and its indexes match `actortoken_store.schema.ActorTokenEventRecord`. The
functions and triggers exist only here: Alembic's autogenerate (and so ``alembic check``)
does not compare functions or triggers, so a change to them needs a new revision written
by hand.

The upgrade creates the triggers before the backfill, in one transaction. CREATE TRIGGER
locks ``actor_tokens`` against writes until the commit, so no write can slip between the
backfill and the first trigger-written event.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema() -> str | None:
    # env.py always places the version table in the store's schema.
    return op.get_context().version_table_schema


def _quoted_schema() -> str:
    schema = _schema() or "public"
    return str(op.get_context().dialect.identifier_preparer.quote_schema(schema))


# Each body is kept free of '%' and ':name' so that it passes through SQLAlchemy's text()
# unchanged, online and in offline (--sql) output.
_RECORD_FUNCTION = """
CREATE FUNCTION {s}.actor_token_events_record() RETURNS trigger
LANGUAGE plpgsql AS $body$
DECLARE
    previous {s}.actor_token_status;
    setting_source text := nullif(current_setting('actortoken_store.source', true), '');
    setting_context text := nullif(current_setting('actortoken_store.context', true), '');
BEGIN
    IF TG_OP = 'UPDATE' THEN
        previous := OLD.status;
    END IF;
    INSERT INTO {s}.actor_token_events (
        token_id, user_id, actor_sub, actor, from_status, to_status,
        issued_at, occurred_at, source, context
    ) VALUES (
        NEW.id, NEW.user_id, NEW.actor ->> 'sub', NEW.actor, previous, NEW.status,
        NEW.created_at, NEW.updated_at,
        coalesce(setting_source, 'sql'), coalesce(setting_context::jsonb, '{{}}'::jsonb)
    );
    RETURN NULL;
END
$body$
"""

_REJECT_FUNCTION = """
CREATE FUNCTION {s}.actor_token_events_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $body$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('actortoken_store.pruning', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'restrict_violation',
        MESSAGE = 'actor_token_events is append-only: ' || TG_OP || ' is not allowed',
        HINT = 'to delete old events, call prune_actor_token_events(before)';
END
$body$
"""

_PRUNE_FUNCTION = """
CREATE FUNCTION {s}.prune_actor_token_events(before timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $body$
DECLARE
    removed bigint;
BEGIN
    IF before IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = 'null_value_not_allowed',
            MESSAGE = 'prune_actor_token_events: before must not be null';
    END IF;
    PERFORM set_config('actortoken_store.pruning', 'on', true);
    DELETE FROM {s}.actor_token_events WHERE occurred_at < before;
    GET DIAGNOSTICS removed = ROW_COUNT;
    PERFORM set_config('actortoken_store.pruning', '', true);
    RETURN removed;
END
$body$
"""

_TRIGGERS = (
    """
CREATE TRIGGER actor_token_events_on_insert
AFTER INSERT ON {s}.actor_tokens
FOR EACH ROW EXECUTE FUNCTION {s}.actor_token_events_record()
""",
    """
CREATE TRIGGER actor_token_events_on_status_change
AFTER UPDATE ON {s}.actor_tokens
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION {s}.actor_token_events_record()
""",
    """
CREATE TRIGGER actor_token_events_append_only
BEFORE UPDATE OR DELETE OR TRUNCATE ON {s}.actor_token_events
FOR EACH STATEMENT EXECUTE FUNCTION {s}.actor_token_events_reject_change()
""",
)

# Tokens stored before this revision: a creation event at created_at, then a transition
# event at updated_at for the ones already accepted or revoked. Creation events are
# inserted first, so within each token the event ids increase with time.
_BACKFILL = (
    """
INSERT INTO {s}.actor_token_events (
    token_id, user_id, actor_sub, actor, from_status, to_status,
    issued_at, occurred_at, source
)
SELECT id, user_id, actor ->> 'sub', actor, NULL, 'pending',
       created_at, created_at, 'migration'
FROM {s}.actor_tokens
ORDER BY created_at, id
""",
    """
INSERT INTO {s}.actor_token_events (
    token_id, user_id, actor_sub, actor, from_status, to_status,
    issued_at, occurred_at, source
)
SELECT id, user_id, actor ->> 'sub', actor, 'pending', status,
       created_at, updated_at, 'migration'
FROM {s}.actor_tokens
WHERE status <> 'pending'
ORDER BY updated_at, id
""",
)


def upgrade() -> None:
    schema = _schema()
    status = postgresql.ENUM(name="actor_token_status", schema=schema, create_type=False)
    op.create_table(
        "actor_token_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("token_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("actor_sub", sa.Text(), nullable=False),
        sa.Column("actor", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("from_status", status, nullable=True),
        sa.Column("to_status", status, nullable=False),
        sa.Column("issued_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("occurred_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column(
            "recorded_at",
            sa.TIMESTAMP(timezone=True),
            server_default=sa.text("statement_timestamp()"),
            nullable=False,
        ),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column(
            "context",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "source IN ('repository', 'import', 'migration', 'sql')",
            name=op.f("ck_actor_token_events_source_known"),
        ),
        sa.CheckConstraint(
            "jsonb_typeof(context) = 'object'",
            name=op.f("ck_actor_token_events_context_is_object"),
        ),
        sa.PrimaryKeyConstraint("id", name="pk_actor_token_events"),
        schema=schema,
    )
    op.create_index(
        "ix_actor_token_events_token_id_id",
        "actor_token_events",
        ["token_id", "id"],
        schema=schema,
    )
    op.create_index(
        "ix_actor_token_events_actor_sub_issued_at",
        "actor_token_events",
        ["actor_sub", "issued_at", "id"],
        postgresql_include=["from_status", "to_status", "user_id", "occurred_at"],
        schema=schema,
    )
    op.create_index(
        "ix_actor_token_events_user_id_issued_at",
        "actor_token_events",
        ["user_id", "issued_at", "id"],
        postgresql_where=sa.text("from_status IS NULL"),
        schema=schema,
    )
    op.create_index(
        "ix_actor_token_events_issued_at",
        "actor_token_events",
        ["issued_at", "id"],
        postgresql_include=["actor_sub", "from_status", "to_status", "user_id", "occurred_at"],
        schema=schema,
    )
    op.create_index(
        "ix_actor_token_events_occurred_at",
        "actor_token_events",
        ["occurred_at"],
        schema=schema,
    )

    quoted = _quoted_schema()
    for statement in (_RECORD_FUNCTION, _REJECT_FUNCTION, _PRUNE_FUNCTION, *_TRIGGERS):
        op.execute(sa.text(statement.format(s=quoted)))
    for statement in _BACKFILL:
        op.execute(sa.text(statement.format(s=quoted)))


def downgrade() -> None:
    quoted = _quoted_schema()
    for trigger in ("actor_token_events_on_status_change", "actor_token_events_on_insert"):
        op.execute(sa.text(f"DROP TRIGGER {trigger} ON {quoted}.actor_tokens"))
    # Dropping the table drops its own append-only trigger with it.
    op.drop_table("actor_token_events", schema=_schema())
    op.execute(sa.text(f"DROP FUNCTION {quoted}.prune_actor_token_events(timestamptz)"))
    op.execute(sa.text(f"DROP FUNCTION {quoted}.actor_token_events_reject_change()"))
    op.execute(sa.text(f"DROP FUNCTION {quoted}.actor_token_events_record()"))
