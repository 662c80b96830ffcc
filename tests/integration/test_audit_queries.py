"""Audit queries over the events of the fixture files, checked against the files themselves."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from actortoken_store.audit import AuditPage
from actortoken_store.errors import InvalidArgumentError
from actortoken_store.importer import import_tokens
from actortoken_store.model import ms_to_datetime
from actortoken_store.repository import ActorTokenRepository
from tests.conftest import fixture_file, load_jsonl

FIXTURE_NOW = datetime(2025, 12, 2, tzinfo=UTC)
"""The instant the fixture data treats as now."""


def _final_states() -> dict[str, dict[str, Any]]:
    """Return each token's last snapshot under the store's rules, from the files alone.

    A terminal snapshot wins over any pending one, and a later snapshot of the same status
    wins over an earlier one.
    """
    final: dict[str, dict[str, Any]] = {}
    for record in load_jsonl("actor_tokens.jsonl") + load_jsonl("lifecycles.jsonl"):
        known = final.get(record["id"])
        if (
            known is None
            or (known["status"] == "pending" and record["status"] != "pending")
            or (known["status"] == record["status"] and record["updated_at"] > known["updated_at"])
        ):
            final[record["id"]] = record
    return final


@pytest.fixture
def imported(clean_engine: Engine) -> dict[str, dict[str, Any]]:
    """Import both fixture files in order with the importer, which commits per batch."""
    for name in ("actor_tokens.jsonl", "lifecycles.jsonl"):
        report = import_tokens(sessionmaker(clean_engine), fixture_file(name))
        assert report.rejected == 0
    return _final_states()


def _all_pages(fetch: Any) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        page: AuditPage[Any] = fetch(cursor)
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def test_import_events_per_token(imported: dict[str, dict[str, Any]], session: Session) -> None:
    rows = session.execute(
        text(
            "SELECT token_id, count(*) FILTER (WHERE from_status IS NULL) AS creations, "
            "count(*) FILTER (WHERE from_status IS NOT NULL) AS changes, "
            "array_agg(DISTINCT source) AS sources "
            "FROM actor_token_events GROUP BY token_id"
        )
    ).all()
    assert {row.token_id for row in rows} == set(imported)
    for row in rows:
        assert row.creations == 1, row.token_id
        assert row.changes <= 1, row.token_id
        assert row.sources == ["import"]


def test_summary_matches_files(
    repo: ActorTokenRepository, imported: dict[str, dict[str, Any]]
) -> None:
    expected: dict[str, Counter[str]] = defaultdict(Counter)
    users: dict[str, set[str]] = defaultdict(set)
    for record in imported.values():
        sub = record["actor"]["sub"]
        expected[sub]["issued"] += 1
        expected[sub][record["status"]] += 1
        users[sub].add(record["user_id"])

    summaries = _all_pages(lambda after: repo.audit.actor_summary(limit=2, after=after))
    assert [summary.actor_sub for summary in summaries] == sorted(expected)
    for summary in summaries:
        counts = expected[summary.actor_sub]
        assert summary.issued == counts["issued"], summary.actor_sub
        assert summary.accepted == counts["accepted"], summary.actor_sub
        assert summary.revoked == counts["revoked"], summary.actor_sub
        assert summary.pending == counts["pending"], summary.actor_sub
        assert summary.users == len(users[summary.actor_sub]), summary.actor_sub


def test_summary_window(repo: ActorTokenRepository, imported: dict[str, dict[str, Any]]) -> None:
    since = datetime(2025, 9, 1, tzinfo=UTC)
    until = datetime(2025, 11, 1, tzinfo=UTC)
    inside = [
        record
        for record in imported.values()
        if since <= ms_to_datetime(record["created_at"]) < until
    ]
    summaries = repo.audit.actor_summary(since=since, until=until, limit=100).items
    assert sum(summary.issued for summary in summaries) == len(inside)
    for summary in summaries:
        assert since <= summary.first_activity < until
        assert summary.last_activity >= summary.first_activity

    one = inside[0]["actor"]["sub"]
    [single] = repo.audit.actor_summary(actor_sub=one, since=since, until=until).items
    assert single.issued == sum(1 for record in inside if record["actor"]["sub"] == one)


def test_impersonations_by_actor(
    repo: ActorTokenRepository, imported: dict[str, dict[str, Any]]
) -> None:
    sub = next(iter(imported.values()))["actor"]["sub"]
    expected = [record for record in imported.values() if record["actor"]["sub"] == sub]
    rows = _all_pages(lambda after: repo.audit.impersonations(actor_sub=sub, limit=7, after=after))
    assert sorted(row.token_id for row in rows) == sorted(record["id"] for record in expected)
    issued = [(row.issued_at, row.event_id) for row in rows]
    assert issued == sorted(issued, reverse=True)
    for row in rows:
        record = imported[row.token_id]
        assert row.actor_sub == sub
        assert row.user_id == record["user_id"]
        assert row.issued_at == ms_to_datetime(record["created_at"])
        assert row.status == record["status"]
        finished = ms_to_datetime(record["updated_at"])
        assert row.accepted_at == (finished if record["status"] == "accepted" else None)
        assert row.revoked_at == (finished if record["status"] == "revoked" else None)


def test_impersonations_filters(
    repo: ActorTokenRepository, imported: dict[str, dict[str, Any]]
) -> None:
    user = next(iter(imported.values()))["user_id"]
    since = datetime(2025, 7, 1, tzinfo=UTC)
    expected = {
        record["id"]
        for record in imported.values()
        if record["user_id"] == user
        and record["status"] == "revoked"
        and ms_to_datetime(record["created_at"]) >= since
    }
    rows = _all_pages(
        lambda after: repo.audit.impersonations(
            user_id=user, since=since, status="revoked", limit=3, after=after
        )
    )
    assert {row.token_id for row in rows} == expected
    everyone = _all_pages(lambda after: repo.audit.impersonations(limit=100, after=after))
    assert len(everyone) == len(imported)


def test_timeline_of_lifecycle(
    repo: ActorTokenRepository, imported: dict[str, dict[str, Any]]
) -> None:
    token_id = load_jsonl("lifecycles.jsonl")[0]["id"]
    events = _all_pages(lambda after: repo.audit.timeline(token_id, limit=1, after=after))
    assert [event.to_status for event in events][-1] == imported[token_id]["status"]
    assert len(events) <= 2
    assert repo.audit.timeline("act_missing").items == []


def test_stale_pending(repo: ActorTokenRepository, imported: dict[str, dict[str, Any]]) -> None:
    age = timedelta(days=30)
    expected = sorted(
        (ms_to_datetime(record["created_at"]), record["id"])
        for record in imported.values()
        if record["status"] == "pending"
        and ms_to_datetime(record["created_at"]) < FIXTURE_NOW - age
    )
    rows = _all_pages(
        lambda after: repo.audit.stale_pending(
            older_than=age, now=FIXTURE_NOW, limit=4, after=after
        )
    )
    assert [(row.created_at, row.token_id) for row in rows] == expected
    assert expected, "the fixtures hold stale pending tokens"


@pytest.mark.parametrize(
    "call",
    [
        lambda repo: repo.audit.impersonations(since=datetime(2025, 1, 1)),
        lambda repo: repo.audit.impersonations(until=datetime(2025, 1, 1)),
        lambda repo: repo.audit.actor_summary(since=datetime(2025, 1, 1)),
        lambda repo: repo.audit.stale_pending(now=datetime(2025, 1, 1)),
    ],
)
def test_naive_datetime_rejected(repo: ActorTokenRepository, call: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="naive"):
        call(repo)


def test_bad_arguments_rejected(repo: ActorTokenRepository) -> None:
    with pytest.raises(InvalidArgumentError, match="limit"):
        repo.audit.impersonations(limit=0)
    with pytest.raises(InvalidArgumentError, match="status"):
        repo.audit.impersonations(status="expired")
    with pytest.raises(InvalidArgumentError, match="until"):
        repo.audit.impersonations(
            since=datetime(2025, 2, 1, tzinfo=UTC), until=datetime(2025, 1, 1, tzinfo=UTC)
        )
    with pytest.raises(InvalidArgumentError, match="older_than"):
        repo.audit.stale_pending(older_than=timedelta(seconds=-1))
    with pytest.raises(InvalidArgumentError, match="invalid cursor"):
        repo.audit.timeline("act_1", after="not a cursor")


def test_cursor_of_other_query(
    repo: ActorTokenRepository, imported: dict[str, dict[str, Any]]
) -> None:
    cursor = repo.audit.impersonations(limit=1).next_cursor
    assert cursor is not None
    with pytest.raises(InvalidArgumentError, match="same query"):
        repo.audit.stale_pending(after=cursor)
