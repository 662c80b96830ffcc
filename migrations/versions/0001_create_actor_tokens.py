"""Create the actor_tokens table and the actor_token_status enum.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _schema() -> str | None:
    # env.py always places the version table in the store's schema.
    return op.get_context().version_table_schema


def upgrade() -> None:
    schema = _schema()
    status = postgresql.ENUM(
        "pending", "accepted", "revoked", name="actor_token_status", schema=schema
    )
    status.create(op.get_bind(), checkfirst=False)

    op.create_table(
        "actor_tokens",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM(name="actor_token_status", schema=schema, create_type=False),
            nullable=False,
        ),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("actor", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("token", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.Column("updated_at", sa.TIMESTAMP(timezone=True), nullable=False),
        sa.CheckConstraint("id <> ''", name=op.f("ck_actor_tokens_id_not_empty")),
        sa.CheckConstraint("user_id <> ''", name=op.f("ck_actor_tokens_user_id_not_empty")),
        sa.CheckConstraint(
            "jsonb_typeof(actor) = 'object' AND jsonb_typeof(actor -> 'sub') = 'string'",
            name=op.f("ck_actor_tokens_actor_has_sub"),
        ),
        sa.CheckConstraint(
            "updated_at >= created_at", name=op.f("ck_actor_tokens_updated_after_created")
        ),
        sa.PrimaryKeyConstraint("id", name="pk_actor_tokens"),
        schema=schema,
    )
    op.create_index(
        "ix_actor_tokens_user_id_created_at",
        "actor_tokens",
        ["user_id", sa.text("created_at DESC"), sa.text("id DESC")],
        schema=schema,
    )
    op.create_index(
        "ix_actor_tokens_pending_created_at",
        "actor_tokens",
        ["created_at"],
        postgresql_where=sa.text("status = 'pending'"),
        schema=schema,
    )
    op.create_index(
        "ix_actor_tokens_actor_sub_created_at",
        "actor_tokens",
        [sa.text("(actor ->> 'sub')"), "created_at"],
        schema=schema,
    )


def downgrade() -> None:
    schema = _schema()
    op.drop_table("actor_tokens", schema=schema)
    postgresql.ENUM(name="actor_token_status", schema=schema).drop(op.get_bind(), checkfirst=False)
