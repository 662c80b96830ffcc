"""Synthetic tokens and their audit events, generated inside PostgreSQL with set-based SQL.

The events are the ones the trigger would write: a creation event per token and a
transition event per accepted or revoked token. They are inserted directly with the trigger
off (``session_replication_role = replica``, which needs a superuser), about ten times
faster than firing the trigger per row.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import Engine, text

__all__ = ["SPAN_MINUTES", "load_tokens_and_events"]

SPAN_MINUTES: Final = 400_000
"""The tokens' creation times span this many minutes (about 278 days) at any size, so a
time window selects the same fraction of rows whatever the size."""

_LOAD_TOKENS: Final = """
INSERT INTO actor_tokens (id, status, user_id, actor, created_at, updated_at)
SELECT 'act_' || lpad(g::text, 9, '0'),
       (CASE WHEN g % 10 < 5 THEN 'accepted' WHEN g % 10 < 8 THEN 'revoked'
             ELSE 'pending' END)::actor_token_status,
       'user_' || (g * 7919 % 5000),
       jsonb_build_object('sub', 'actor_' || (g * 31 % 50)),
       timestamptz '2025-01-01' + g * :step * interval '1 minute',
       timestamptz '2025-01-01' + g * :step * interval '1 minute'
           + CASE WHEN g % 10 < 8 THEN interval '5 minutes' ELSE interval '0' END
FROM generate_series(1, :size) AS g
"""

_LOAD_EVENTS: Final = """
INSERT INTO actor_token_events (
    token_id, user_id, actor_sub, actor, from_status, to_status, issued_at, occurred_at, source
)
SELECT id, user_id, actor ->> 'sub', actor, NULL::actor_token_status,
       'pending'::actor_token_status, created_at, created_at, 'sql'
FROM actor_tokens
UNION ALL
SELECT id, user_id, actor ->> 'sub', actor, 'pending'::actor_token_status,
       status, created_at, updated_at, 'sql'
FROM actor_tokens WHERE status <> 'pending'
"""


def load_tokens_and_events(engine: Engine, size: int) -> None:
    """Insert ``size`` tokens into empty tables, with their events, then VACUUM ANALYZE.

    Tokens go to 50 actors and 5,000 users; half end accepted, 30% revoked, 20% pending.
    """
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        step = max(1, SPAN_MINUTES // size)
        connection.execute(text(_LOAD_TOKENS), {"size": size, "step": step})
        connection.execute(text(_LOAD_EVENTS))
    with engine.connect() as connection:
        autocommit = connection.execution_options(isolation_level="AUTOCOMMIT")
        # The visibility map lets the summary read its index alone.
        autocommit.execute(text("VACUUM ANALYZE actor_tokens"))
        autocommit.execute(text("VACUUM ANALYZE actor_token_events"))
