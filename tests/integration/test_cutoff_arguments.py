"""Cut-offs, ages and reference instants are checked before anything is deleted or read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from actortoken_store.errors import InvalidArgumentError
from actortoken_store.model import TokenStatus
from actortoken_store.repository import ActorTokenRepository
from tests.drivers import RepoDriver
from tests.integration.secrets_helpers import NOW_MS, make_token

DAY_MS = 86_400_000


@pytest.mark.parametrize(
    ("older_than", "expected"),
    [
        (None, "required"),
        (datetime(2025, 1, 1), "naive"),
        (timedelta(days=-5), "more than zero"),
        (timedelta(0), "more than zero"),
        (90, "required"),
        (timedelta(days=999_999_999), "before the year 1"),
    ],
)
def test_purge_cutoff_rejected(any_repo: RepoDriver, older_than: object, expected: str) -> None:
    any_repo.save(make_token("act_old", status=TokenStatus.ACCEPTED, created_at=NOW_MS - DAY_MS))

    with pytest.raises(InvalidArgumentError, match=expected):
        any_repo.purge(older_than, now=NOW_MS)  # type: ignore[arg-type]

    assert any_repo.get("act_old") is not None


def test_find_reusable_skips_future(any_repo: RepoDriver) -> None:
    any_repo.save_many(
        [
            make_token("act_before", created_at=NOW_MS - 60_000),
            make_token("act_after", created_at=NOW_MS + 60_000),
        ]
    )

    found = any_repo.find_reusable("user_1", "user_admin", timedelta(minutes=5), NOW_MS)

    assert found is not None
    assert found.id == "act_before"


def test_find_reusable_huge_remaining(any_repo: RepoDriver) -> None:
    with pytest.raises(InvalidArgumentError, match="min_remaining"):
        any_repo.find_reusable("user_1", "user_admin", timedelta(days=999_999_999), NOW_MS)


def test_stale_pending_huge_age(repo: ActorTokenRepository) -> None:
    audit = repo.audit
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidArgumentError, match="before the year 1"):
        audit.stale_pending(older_than=timedelta(days=999_999_999), now=now)
    with pytest.raises(InvalidArgumentError, match="timedelta"):
        audit.stale_pending(older_than=None, now=now)  # type: ignore[arg-type]


def test_prune_events_requires_before(repo: ActorTokenRepository) -> None:
    audit = repo.audit
    with pytest.raises(InvalidArgumentError, match="aware datetime"):
        audit.prune_events(before=None)  # type: ignore[arg-type]
