"""The audit context and the audit queries behave the same on the sync and async repository.

Every test runs once per repository kind through the `any_repo` driver.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from actortoken_store.audit import AuditSource
from actortoken_store.errors import InvalidArgumentError
from actortoken_store.model import ActorToken, TokenStatus
from tests.drivers import RepoDriver

T0 = 1_764_000_000_000
"""2025-11-24T16:00:00Z in ms."""


def _token(token_id: str, *, sub: str = "user_admin", created_at: int = T0) -> ActorToken:
    return ActorToken(
        id=token_id,
        status=TokenStatus.PENDING,
        user_id="user_1",
        actor={"sub": sub},
        token=None,
        url=None,
        created_at=created_at,
        updated_at=created_at,
    )


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def test_context_on_events(any_repo: RepoDriver) -> None:
    with any_repo.audit_context(operator="op_1", request_id="req_9", source="import"):
        any_repo.save(_token("act_1"))
        any_repo.accept("act_1", T0 + 60_000)
    any_repo.save_many([_token("act_2")])
    any_repo.commit()

    creation, change = any_repo.audit.timeline("act_1").items
    assert creation.source is AuditSource.IMPORT
    assert creation.context == {"operator": "op_1", "request_id": "req_9"}
    assert change.from_status is TokenStatus.PENDING
    assert change.to_status is TokenStatus.ACCEPTED
    assert change.occurred_at == _at(T0 + 60_000)
    assert change.context == creation.context
    [other] = any_repo.audit.timeline("act_2").items
    assert other.source is AuditSource.REPOSITORY
    assert other.context == {}


def test_context_cleared_after_block(any_repo: RepoDriver) -> None:
    with any_repo.audit_context(reason="cleanup"):
        any_repo.save(_token("act_1"))
    any_repo.execute(
        "INSERT INTO actor_tokens VALUES ('act_raw', 'pending', 'user_1', "
        """'{"sub": "user_admin"}', NULL, NULL, now(), now())"""
    )
    [raw] = any_repo.audit.timeline("act_raw").items
    assert raw.source is AuditSource.SQL
    assert raw.context == {}


def test_context_rejects_sql_source(any_repo: RepoDriver) -> None:
    rejected = pytest.raises(InvalidArgumentError, match="cannot be set")
    with rejected, any_repo.audit_context(source="sql"):
        pass


def test_impersonations_and_summary(any_repo: RepoDriver) -> None:
    any_repo.save(_token("act_1", sub="user_a"))
    any_repo.save(_token("act_2", sub="user_a", created_at=T0 + 1000))
    any_repo.save(_token("act_3", sub="user_b", created_at=T0 + 2000))
    any_repo.revoke("act_1", T0 + 5000)
    any_repo.commit()

    page = any_repo.audit.impersonations(actor_sub="user_a", limit=1)
    assert [row.token_id for row in page.items] == ["act_2"]
    assert page.next_cursor is not None
    [last] = any_repo.audit.impersonations(actor_sub="user_a", after=page.next_cursor).items
    assert last.token_id == "act_1"
    assert last.status is TokenStatus.REVOKED
    assert last.revoked_at == _at(T0 + 5000)
    assert last.accepted_at is None

    summaries = any_repo.audit.actor_summary(since=_at(T0), until=_at(T0 + 3000)).items
    assert [(row.actor_sub, row.issued, row.revoked, row.pending) for row in summaries] == [
        ("user_a", 2, 1, 1),
        ("user_b", 1, 0, 1),
    ]


def test_stale_and_prune(any_repo: RepoDriver) -> None:
    any_repo.save(_token("act_old", created_at=T0))
    any_repo.save(_token("act_new", created_at=T0 + 3_600_000))
    any_repo.commit()

    now = _at(T0 + 3_600_000 + 60_000)
    stale = any_repo.audit.stale_pending(older_than=timedelta(minutes=30), now=now).items
    assert [row.token_id for row in stale] == ["act_old"]

    assert any_repo.audit.prune_events(before=_at(T0 + 1)) == 1
    any_repo.commit()
    assert any_repo.audit.timeline("act_old").items == []
    assert len(any_repo.audit.timeline("act_new").items) == 1
