"""Behaviour of the sync and the async repository against a real PostgreSQL server.

Every test runs once per repository kind through the `any_repo` driver, which gives both the
same synchronous methods.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import Engine, text

from actortoken_store import migrate
from actortoken_store.errors import (
    InvalidArgumentError,
    InvalidTransitionError,
    SchemaNotReadyError,
    TokenNotFoundError,
)
from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.operations import MAX_PAGE_SIZE
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.results import SaveOutcome, encode_cursor
from tests.conftest import load_jsonl
from tests.drivers import RepoDriver, RepoFactory, count_statements
from tests.servers import throwaway_database

CREATED = 1_750_500_032_016
LATER = CREATED + 600_000
USER = "user_2UEUOEtV6bYeLqRgdf2q1SoZvwj"


def snapshot(
    token_id: str = "act_1",
    status: str = "pending",
    updated_at: int = CREATED,
    **changes: Any,
) -> ActorToken:
    """Build a token snapshot; a pending one carries a ticket, a terminal one none."""
    fields: dict[str, Any] = {
        "id": token_id,
        "status": TokenStatus(status),
        "user_id": USER,
        "actor": {"sub": "user_2fBwCI7pUHaHU6OEZMr0OaG0CQx", "reason": "support"},
        "token": "eyJ.ticket.sig" if status == "pending" else None,
        "url": "https://example.test/v1/tickets/accept?ticket=eyJ.ticket.sig"
        if status == "pending"
        else None,
        "created_at": CREATED,
        "updated_at": updated_at,
    }
    fields.update(changes)
    return ActorToken(**fields)


def stored_after(repo: RepoDriver, first: ActorToken, second: ActorToken) -> tuple[Any, Any]:
    """Save ``first`` then ``second``; return the second outcome and the stored token."""
    assert repo.save(first) is SaveOutcome.INSERTED
    outcome = repo.save(second)
    return outcome, repo.get(first.id)


def many_tokens(count: int, prefix: str = "act_bulk_") -> list[ActorToken]:
    base = snapshot()
    return [
        dataclasses.replace(
            base,
            id=f"{prefix}{number:05d}",
            created_at=CREATED + number,
            updated_at=CREATED + number,
        )
        for number in range(count)
    ]


# --- save: the monotonic upsert ------------------------------------------------------------


def test_save_new_token_inserted(any_repo: RepoDriver) -> None:
    token = snapshot()

    assert any_repo.save(token) is SaveOutcome.INSERTED
    assert any_repo.get(token.id) == token


def test_save_same_snapshot_unchanged(any_repo: RepoDriver) -> None:
    outcome, stored = stored_after(any_repo, snapshot(), snapshot())

    assert outcome is SaveOutcome.UNCHANGED
    assert stored == snapshot()


def test_save_newer_snapshot_updates(any_repo: RepoDriver) -> None:
    newer = snapshot(status="accepted", updated_at=LATER, actor={"sub": "user_x", "n": 2})

    outcome, stored = stored_after(any_repo, snapshot(), newer)

    assert outcome is SaveOutcome.UPDATED
    assert stored == newer


def test_save_newer_pending_updates(any_repo: RepoDriver) -> None:
    newer = snapshot(updated_at=LATER, token="eyJ.other.sig")

    outcome, stored = stored_after(any_repo, snapshot(), newer)

    assert outcome is SaveOutcome.UPDATED
    assert stored == newer


def test_save_older_pending_unchanged(any_repo: RepoDriver) -> None:
    newer = snapshot(updated_at=LATER, token="eyJ.newer.sig")

    outcome, stored = stored_after(any_repo, newer, snapshot())

    assert outcome is SaveOutcome.UNCHANGED
    assert stored == newer


def test_save_stale_pending_after_terminal(any_repo: RepoDriver) -> None:
    final = snapshot(status="revoked", updated_at=LATER)

    outcome, stored = stored_after(any_repo, final, snapshot())

    assert outcome is SaveOutcome.UNCHANGED
    assert stored == final


def test_save_older_terminal_unchanged(any_repo: RepoDriver) -> None:
    # The older snapshot loses even though it is terminal: time decides first.
    newer = snapshot(updated_at=LATER)

    outcome, stored = stored_after(any_repo, newer, snapshot(status="accepted"))

    assert outcome is SaveOutcome.UNCHANGED
    assert stored == newer


@pytest.mark.parametrize(
    ("stored_status", "other_status"), [("accepted", "revoked"), ("revoked", "accepted")]
)
@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_save_terminal_other_status_conflict(
    any_repo: RepoDriver, stored_status: str, other_status: str, delta: int
) -> None:
    final = snapshot(status=stored_status, updated_at=LATER)
    other = snapshot(status=other_status, updated_at=LATER + delta)

    outcome, stored = stored_after(any_repo, final, other)

    assert outcome is SaveOutcome.CONFLICT
    assert stored == final


@pytest.mark.parametrize("status", ["accepted", "revoked"])
def test_save_newer_pending_after_terminal_conflict(any_repo: RepoDriver, status: str) -> None:
    final = snapshot(status=status, updated_at=LATER)

    outcome, stored = stored_after(any_repo, final, snapshot(updated_at=LATER + 1))

    assert outcome is SaveOutcome.CONFLICT
    assert stored == final


def test_save_terminal_same_status_newer_updates(any_repo: RepoDriver) -> None:
    final = snapshot(status="accepted", updated_at=LATER, token="eyJ.kept.sig")
    cleared = snapshot(status="accepted", updated_at=LATER + 5, token=None)

    outcome, stored = stored_after(any_repo, final, cleared)

    assert outcome is SaveOutcome.UPDATED
    assert stored == cleared


def test_save_terminal_same_status_equal_unchanged(any_repo: RepoDriver) -> None:
    final = snapshot(status="accepted", updated_at=LATER)

    outcome, stored = stored_after(any_repo, final, final)

    assert outcome is SaveOutcome.UNCHANGED
    assert stored == final


@pytest.mark.parametrize("status", ["accepted", "revoked"])
def test_save_equal_time_terminal_wins(any_repo: RepoDriver, status: str) -> None:
    pending = snapshot(updated_at=LATER)
    final = snapshot(status=status, updated_at=LATER)

    outcome, stored = stored_after(any_repo, pending, final)

    assert outcome is SaveOutcome.UPDATED
    assert stored == final


@pytest.mark.parametrize("status", ["accepted", "revoked"])
def test_save_equal_time_pending_loses(any_repo: RepoDriver, status: str) -> None:
    final = snapshot(status=status, updated_at=LATER)

    outcome, stored = stored_after(any_repo, final, snapshot(updated_at=LATER))

    assert outcome is SaveOutcome.UNCHANGED
    assert stored == final


def test_save_equal_time_pending_first_wins(any_repo: RepoDriver) -> None:
    first = snapshot(updated_at=LATER, token="eyJ.first.sig")

    outcome, stored = stored_after(any_repo, first, snapshot(updated_at=LATER))

    assert outcome is SaveOutcome.UNCHANGED
    assert stored == first


@pytest.mark.parametrize(
    "changes",
    [
        {"user_id": "user_someone_else"},
        {"created_at": CREATED - 1},
        {"created_at": CREATED + 1},
    ],
)
@pytest.mark.parametrize("status", ["pending", "accepted"])
def test_save_identity_mismatch_conflict(
    any_repo: RepoDriver, changes: dict[str, Any], status: str
) -> None:
    other = snapshot(status=status, updated_at=LATER, **changes)

    outcome, stored = stored_after(any_repo, snapshot(), other)

    assert outcome is SaveOutcome.CONFLICT
    assert stored == snapshot()


def test_save_identity_mismatch_older_conflict(any_repo: RepoDriver) -> None:
    stored_token = snapshot(updated_at=LATER)

    outcome, stored = stored_after(any_repo, stored_token, snapshot(user_id="user_other"))

    assert outcome is SaveOutcome.CONFLICT
    assert stored == stored_token


def test_save_rejects_non_token(any_repo: RepoDriver) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        any_repo.save(snapshot().to_clerk())

    assert "ActorToken.from_clerk" in str(caught.value)


def test_save_uncommitted_invisible(any_repo: RepoDriver, repo_factory: RepoFactory) -> None:
    peer = repo_factory.peer(any_repo)
    any_repo.save(snapshot())

    assert peer.get("act_1") is None

    any_repo.commit()
    assert peer.get("act_1") == snapshot()


def test_save_round_trips_fixtures(any_repo: RepoDriver, fixture_tokens: list[ActorToken]) -> None:
    any_repo.save_many(fixture_tokens)

    for token in fixture_tokens:
        assert any_repo.get(token.id) == token


@pytest.mark.parametrize("observed", [False, True], ids=["driver", "observed"])
def test_save_round_trips_text_and_numbers(any_repo: RepoDriver, observed: bool) -> None:
    # Rows travel as JSON text to json_populate_recordset on the driver path, so escapes,
    # non-ASCII text and JSON numbers must come back exactly.
    tricky = 'quote" backslash\\ tab\t newline\n \u0001 \u2028 é 日本 😀 %s %(x)s'
    token = snapshot(
        "act_ü😀",
        user_id="user_" + tricky,
        token=tricky,
        url="https://example.test/?ticket=" + tricky,
        actor={
            "sub": "user_😀" + tricky,
            tricky: [tricky, {"é": None}],
            "numbers": [0, -1, 10**30, 1.5, 1e-7, 0.1, 2.0**52, -2.5e-300, True, False],
        },
    )
    counting = count_statements(any_repo.engine) if observed else contextlib.nullcontext([])

    with counting:
        any_repo.save(token)
        any_repo.save_many([dataclasses.replace(token, id="act_2")])
        stored = any_repo.get(token.id)
        batched = any_repo.get("act_2")

    assert stored == token
    assert batched == dataclasses.replace(token, id="act_2")
    assert stored.actor["numbers"] == token.actor["numbers"]
    assert [type(number) for number in stored.actor["numbers"]] == [
        type(number) for number in token.actor["numbers"]
    ]


def test_save_keeps_timestamps_exact(any_repo: RepoDriver) -> None:
    token = snapshot(updated_at=CREATED + 1)
    any_repo.save(token)

    rows = any_repo.execute(
        "SELECT (extract(epoch FROM created_at) * 1000)::bigint,"
        " (extract(epoch FROM updated_at) * 1000)::bigint FROM actor_tokens"
    )

    assert rows == [(CREATED, CREATED + 1)]
    assert any_repo.get(token.id).updated_at == CREATED + 1


# --- lifecycles ------------------------------------------------------------------------------


def final_snapshots() -> dict[str, ActorToken]:
    """Return the one terminal snapshot of each token in the lifecycles file."""
    finals: dict[str, ActorToken] = {}
    for record in load_jsonl("lifecycles.jsonl"):
        token = ActorToken.from_clerk(record)
        if token.status.is_terminal:
            assert token.id not in finals
            finals[token.id] = token
    return finals


def lifecycle_snapshots() -> list[ActorToken]:
    return [ActorToken.from_clerk(record) for record in load_jsonl("lifecycles.jsonl")]


def test_lifecycles_line_by_line(any_repo: RepoDriver) -> None:
    finals = final_snapshots()
    assert len(finals) == 12

    outcomes = [any_repo.save(token) for token in lifecycle_snapshots()]

    for token_id, final in finals.items():
        assert any_repo.get(token_id) == final
    assert SaveOutcome.CONFLICT not in outcomes
    assert outcomes.count(SaveOutcome.INSERTED) == 12


def test_lifecycles_save_many(any_repo: RepoDriver) -> None:
    snapshots = lifecycle_snapshots()

    report = any_repo.save_many(snapshots)

    for token_id, final in final_snapshots().items():
        assert any_repo.get(token_id) == final
    assert [result.token_id for result in report.results] == [token.id for token in snapshots]
    assert report.count(SaveOutcome.INSERTED) == 12
    assert report.count(SaveOutcome.CONFLICT) == 0


def test_lifecycles_same_outcomes_both_ways(any_repo: RepoDriver) -> None:
    snapshots = lifecycle_snapshots()
    single = [any_repo.save(token) for token in snapshots]
    any_repo.rollback()

    report = any_repo.save_many(snapshots, batch_size=5)

    assert [result.outcome for result in report.results] == single


def test_lifecycles_reversed(any_repo: RepoDriver) -> None:
    any_repo.save_many(list(reversed(lifecycle_snapshots())))

    for token_id, final in final_snapshots().items():
        assert any_repo.get(token_id) == final


# --- save_many -------------------------------------------------------------------------------


def test_save_many_duplicate_ids(any_repo: RepoDriver) -> None:
    pending = snapshot()
    accepted = snapshot(status="accepted", updated_at=LATER)
    other = snapshot("act_2")

    report = any_repo.save_many([pending, other, accepted, pending, accepted, other])

    assert [result.outcome for result in report.results] == [
        SaveOutcome.INSERTED,
        SaveOutcome.INSERTED,
        SaveOutcome.UPDATED,
        SaveOutcome.UNCHANGED,
        SaveOutcome.UNCHANGED,
        SaveOutcome.UNCHANGED,
    ]
    assert [result.token_id for result in report.results] == [
        "act_1",
        "act_2",
        "act_1",
        "act_1",
        "act_1",
        "act_2",
    ]
    assert any_repo.get("act_1") == accepted


def test_save_many_small_batches(any_repo: RepoDriver, fixture_tokens: list[ActorToken]) -> None:
    tokens = fixture_tokens[:20]

    with count_statements(any_repo.engine) as statements:
        report = any_repo.save_many(tokens, batch_size=3)

    assert report.count(SaveOutcome.INSERTED) == 20
    assert len(statements) == 7
    assert [any_repo.get(token.id) for token in tokens] == tokens


def test_save_many_empty(any_repo: RepoDriver) -> None:
    with count_statements(any_repo.engine) as statements:
        report = any_repo.save_many([])

    assert list(report.results) == []
    assert report.counts() == dict.fromkeys(SaveOutcome, 0)
    assert statements == []


def test_save_many_accepts_generator(any_repo: RepoDriver) -> None:
    report = any_repo.save_many(token for token in many_tokens(3))

    assert report.count(SaveOutcome.INSERTED) == 3


def test_save_many_bounded_statements(any_repo: RepoDriver) -> None:
    tokens = many_tokens(2500)

    with count_statements(any_repo.engine) as first:
        inserted = any_repo.save_many(tokens, batch_size=1000)
    with count_statements(any_repo.engine) as second:
        repeated = any_repo.save_many(tokens, batch_size=1000)

    assert inserted.count(SaveOutcome.INSERTED) == 2500
    assert len(first) == 3
    # Nothing applies the second time, so one more statement reads the stored states.
    assert repeated.count(SaveOutcome.UNCHANGED) == 2500
    assert len(second) == 4


def test_save_many_batch_one_statement(any_repo: RepoDriver) -> None:
    # A batch travels as one JSON parameter, so its size meets no bind-parameter limit.
    tokens = many_tokens(2500)

    with count_statements(any_repo.engine) as statements:
        report = any_repo.save_many(tokens, batch_size=2500)

    assert report.count(SaveOutcome.INSERTED) == 2500
    assert len(statements) == 1


@pytest.mark.slow
def test_save_many_parameter_limit(repo: ActorTokenRepository) -> None:
    # 8,200 rows of 12 columns need more bind parameters than PostgreSQL allows.
    tokens = many_tokens(8200)

    report = repo.save_many(tokens, batch_size=10_000)

    assert report.count(SaveOutcome.INSERTED) == 8200


@pytest.mark.parametrize("batch_size", [0, -1, True, 2.5, "10", None])
def test_save_many_bad_batch_size(any_repo: RepoDriver, batch_size: Any) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        any_repo.save_many([snapshot()], batch_size=batch_size)

    assert "batch_size" in str(caught.value)


def test_save_many_bad_item_stores_nothing(any_repo: RepoDriver) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        any_repo.save_many([snapshot("act_1"), {"id": "act_2"}])

    assert "tokens[1]" in str(caught.value)
    assert any_repo.get("act_1") is None


# --- get and get_one -------------------------------------------------------------------------


def test_get_missing_is_none(any_repo: RepoDriver) -> None:
    assert any_repo.get("act_missing") is None


def test_get_one_missing_raises(any_repo: RepoDriver) -> None:
    with pytest.raises(TokenNotFoundError) as caught:
        any_repo.get_one("act_missing")

    assert caught.value.token_id == "act_missing"
    assert "act_missing" in str(caught.value)


def test_get_one_returns_token(any_repo: RepoDriver) -> None:
    any_repo.save(snapshot())

    assert any_repo.get_one("act_1") == snapshot()


@pytest.mark.parametrize("token_id", [None, 5, b"act_1", "act\x00"])
@pytest.mark.parametrize("method", ["get", "get_one", "accept", "revoke"])
def test_bad_token_id_rejected(any_repo: RepoDriver, method: str, token_id: Any) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        getattr(any_repo, method)(token_id)

    assert "token_id" in str(caught.value)


# --- list_for_user ---------------------------------------------------------------------------


def expected_for(tokens: list[ActorToken], user_id: str) -> list[ActorToken]:
    mine = [token for token in tokens if token.user_id == user_id]
    return sorted(mine, key=lambda token: (token.created_at, token.id), reverse=True)


@pytest.fixture
def stored_fixtures(any_repo: RepoDriver, fixture_tokens: list[ActorToken]) -> list[ActorToken]:
    any_repo.save_many(fixture_tokens)
    return fixture_tokens


def test_list_newest_first(any_repo: RepoDriver, stored_fixtures: list[ActorToken]) -> None:
    users = sorted({token.user_id for token in stored_fixtures})
    assert len(users) == 25

    for user_id in users:
        page = any_repo.list_for_user(user_id, limit=MAX_PAGE_SIZE)
        assert list(page.items) == expected_for(stored_fixtures, user_id)
        assert page.next_cursor is None


@pytest.mark.parametrize("status", ["pending", "accepted", "revoked"])
def test_list_status_filter(
    any_repo: RepoDriver, stored_fixtures: list[ActorToken], status: str
) -> None:
    user_id = stored_fixtures[0].user_id
    expected = [token for token in expected_for(stored_fixtures, user_id) if token.status == status]
    assert expected

    by_text = any_repo.list_for_user(user_id, status=status, limit=MAX_PAGE_SIZE)
    by_enum = any_repo.list_for_user(user_id, status=TokenStatus(status), limit=MAX_PAGE_SIZE)

    assert list(by_text.items) == expected
    assert list(by_enum.items) == expected


def test_list_unknown_user_empty(any_repo: RepoDriver, stored_fixtures: list[ActorToken]) -> None:
    page = any_repo.list_for_user("user_nobody")

    assert list(page.items) == []
    assert page.next_cursor is None


def collect_pages(
    repo: RepoDriver, user_id: str, limit: int, after: str | None = None, **options: Any
) -> list[Any]:
    pages = []
    cursor = after
    while True:
        page = repo.list_for_user(user_id, limit=limit, after=cursor, **options)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert len(pages) < 1000, "pagination does not end"


@pytest.mark.parametrize("limit", [1, 3, 7])
def test_list_pages_cover_all(
    any_repo: RepoDriver, stored_fixtures: list[ActorToken], limit: int
) -> None:
    user_id = stored_fixtures[0].user_id
    expected = expected_for(stored_fixtures, user_id)

    pages = collect_pages(any_repo, user_id, limit)

    assert [token for page in pages for token in page.items] == expected
    assert all(len(page.items) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1].items) <= limit


def test_list_exact_page_has_no_cursor(any_repo: RepoDriver) -> None:
    any_repo.save_many(many_tokens(4))

    page = any_repo.list_for_user(USER, limit=4)

    assert len(page.items) == 4
    assert page.next_cursor is None


def test_list_status_pages(any_repo: RepoDriver, stored_fixtures: list[ActorToken]) -> None:
    user_id = stored_fixtures[0].user_id
    expected = [
        token for token in expected_for(stored_fixtures, user_id) if token.status == "accepted"
    ]

    pages = collect_pages(any_repo, user_id, 2, status="accepted")

    assert [token for page in pages for token in page.items] == expected


def test_list_ties_ordered_by_id(any_repo: RepoDriver) -> None:
    same_time = [snapshot(f"act_{letter}") for letter in "cabed"]
    any_repo.save_many(same_time)

    pages = collect_pages(any_repo, USER, 2)

    ids = [token.id for page in pages for token in page.items]
    assert ids == ["act_e", "act_d", "act_c", "act_b", "act_a"]


def test_list_new_tokens_between_pages(any_repo: RepoDriver) -> None:
    any_repo.save_many(many_tokens(10))
    first = any_repo.list_for_user(USER, limit=4)

    # Newer tokens arrive, including one at the same instant as the page's last row.
    last = first.items[-1]
    arrivals = [
        snapshot("act_new_1", created_at=CREATED + 100, updated_at=CREATED + 100),
        snapshot("act_new_2", created_at=CREATED + 100, updated_at=CREATED + 100),
        dataclasses.replace(last, id=last.id + "_twin_after"),
    ]
    any_repo.save_many(arrivals)
    any_repo.commit()
    rest = collect_pages(any_repo, USER, 4, after=first.next_cursor)

    seen = [token.id for token in first.items] + [token.id for page in rest for token in page.items]
    originals = [token.id for token in expected_for(many_tokens(10), USER)]
    assert seen == originals
    assert len(set(seen)) == len(seen)


def test_list_older_token_between_pages(any_repo: RepoDriver) -> None:
    # A backfilled token older than the cursor belongs to a later page, exactly once.
    any_repo.save_many(many_tokens(6))
    first = any_repo.list_for_user(USER, limit=3)

    any_repo.save(snapshot("act_backfill", created_at=CREATED - 50, updated_at=CREATED))
    rest = collect_pages(any_repo, USER, 3, after=first.next_cursor)

    later_ids = [token.id for page in rest for token in page.items]
    assert later_ids == ["act_bulk_00002", "act_bulk_00001", "act_bulk_00000", "act_backfill"]


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "garbage!",
        "bm90LWEtY3Vyc29y",  # "not-a-cursor"
        encode_cursor(CREATED, ""),
        encode_cursor(-5, "act_1"),
        encode_cursor(10**16, "act_1"),
        encode_cursor(CREATED, "act\x001"),
        12345,
        encode_cursor(CREATED, "act_1").encode(),
    ],
)
def test_list_bad_cursor(any_repo: RepoDriver, cursor: Any) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        any_repo.list_for_user(USER, after=cursor)

    assert "cursor" in str(caught.value)


@pytest.mark.parametrize("limit", [0, -1, MAX_PAGE_SIZE + 1, True, "10", 2.5, None])
def test_list_bad_limit(any_repo: RepoDriver, limit: Any) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        any_repo.list_for_user(USER, limit=limit)

    assert "limit" in str(caught.value)


@pytest.mark.parametrize("status", ["done", "PENDING", "", 5, ["pending"]])
def test_list_bad_status(any_repo: RepoDriver, status: Any) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        any_repo.list_for_user(USER, status=status)

    assert "status must be one of pending, accepted, revoked" in str(caught.value)


@pytest.mark.parametrize("user_id", [None, 42, "user\x00"])
def test_list_bad_user_id(any_repo: RepoDriver, user_id: Any) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        any_repo.list_for_user(user_id)

    assert "user_id" in str(caught.value)


# --- accept and revoke -----------------------------------------------------------------------

TRANSITIONS = [("accept", TokenStatus.ACCEPTED), ("revoke", TokenStatus.REVOKED)]


@pytest.mark.parametrize(("method", "target"), TRANSITIONS)
def test_transition_from_pending(any_repo: RepoDriver, method: str, target: TokenStatus) -> None:
    any_repo.save(snapshot())

    changed = getattr(any_repo, method)("act_1", LATER)

    assert changed.status is target
    assert changed.updated_at == LATER
    assert changed == dataclasses.replace(snapshot(), status=target, updated_at=LATER)
    assert any_repo.get("act_1") == changed


@pytest.mark.parametrize(("method", "target"), TRANSITIONS)
def test_transition_aware_datetime(any_repo: RepoDriver, method: str, target: TokenStatus) -> None:
    any_repo.save(snapshot())
    at = datetime(2025, 6, 21, 12, 10, 32, 16_999, tzinfo=timezone(timedelta(hours=2)))

    changed = getattr(any_repo, method)("act_1", at)

    # 10:10:32.016 UTC; microseconds below the millisecond are dropped.
    assert changed.updated_at == CREATED + 600_000
    assert changed.updated_at_utc == datetime(2025, 6, 21, 10, 10, 32, 16_000, tzinfo=UTC)


def test_transition_default_now(any_repo: RepoDriver) -> None:
    any_repo.save(snapshot())
    before = datetime.now(UTC) - timedelta(seconds=1)

    changed = any_repo.accept("act_1")

    assert before <= changed.updated_at_utc <= datetime.now(UTC) + timedelta(seconds=1)


def test_transition_older_time_keeps_updated_at(any_repo: RepoDriver) -> None:
    any_repo.save(snapshot(updated_at=LATER))

    changed = any_repo.revoke("act_1", CREATED + 1)

    assert changed.status is TokenStatus.REVOKED
    assert changed.updated_at == LATER


@pytest.mark.parametrize(
    "at",
    [
        datetime(2025, 6, 21, 12, 0),
        True,
        "2025-06-21T12:00:00Z",
        1.75e12,
        1_750_500_032,
        -1,
        10**20,
        datetime(9999, 12, 31, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
@pytest.mark.parametrize("method", ["accept", "revoke"])
def test_transition_bad_time(any_repo: RepoDriver, method: str, at: Any) -> None:
    any_repo.save(snapshot())

    with pytest.raises(InvalidArgumentError) as caught:
        getattr(any_repo, method)("act_1", at)

    assert str(caught.value).startswith("at must")
    assert any_repo.get("act_1") == snapshot()


def test_transition_naive_message(any_repo: RepoDriver) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        any_repo.accept("act_1", datetime(2025, 6, 21, 12, 0))

    assert "naive" in str(caught.value)
    assert "datetime.now(UTC)" in str(caught.value)


@pytest.mark.parametrize("stored_status", ["accepted", "revoked"])
@pytest.mark.parametrize(("method", "target"), TRANSITIONS)
def test_transition_from_terminal(
    any_repo: RepoDriver, stored_status: str, method: str, target: TokenStatus
) -> None:
    final = snapshot(status=stored_status, updated_at=LATER)
    any_repo.save(final)

    with pytest.raises(InvalidTransitionError) as caught:
        getattr(any_repo, method)("act_1", LATER + 1)

    assert caught.value.token_id == "act_1"
    assert caught.value.current_status == stored_status
    assert caught.value.requested_status == target.value
    assert f"its status is {stored_status!r}" in str(caught.value)
    assert any_repo.get("act_1") == final


@pytest.mark.parametrize("method", ["accept", "revoke"])
def test_transition_missing_token(any_repo: RepoDriver, method: str) -> None:
    with pytest.raises(TokenNotFoundError) as caught:
        getattr(any_repo, method)("act_missing", LATER)

    assert caught.value.token_id == "act_missing"


@pytest.mark.parametrize(("winner", "loser"), [("accept", "revoke"), ("revoke", "accept")])
def test_transition_race_one_wins(
    any_repo: RepoDriver, repo_factory: RepoFactory, engine: Engine, winner: str, loser: str
) -> None:
    any_repo.save(snapshot())
    any_repo.commit()
    first = any_repo
    second = repo_factory.peer(any_repo)
    assert second.get("act_1") == snapshot()  # the second transaction is open too

    won = getattr(first, winner)("act_1", LATER)
    with ThreadPoolExecutor(max_workers=1) as pool:
        blocked = pool.submit(getattr(second, loser), "act_1", LATER + 1)
        wait_for_lock_wait(engine)
        assert not blocked.done()

        first.commit()

        with pytest.raises(InvalidTransitionError) as caught:
            blocked.result(timeout=10)

    assert caught.value.current_status == won.status.value
    second.rollback()
    assert second.get("act_1") == won


def test_insert_race_one_inserts(
    any_repo: RepoDriver, repo_factory: RepoFactory, engine: Engine
) -> None:
    second = repo_factory.peer(any_repo)
    assert any_repo.save(snapshot()) is SaveOutcome.INSERTED

    with ThreadPoolExecutor(max_workers=1) as pool:
        blocked = pool.submit(second.save, snapshot())
        wait_for_lock_wait(engine)
        any_repo.commit()

        assert blocked.result(timeout=10) is SaveOutcome.UNCHANGED


def wait_for_lock_wait(engine: Engine, timeout: float = 10.0) -> None:
    """Wait until some backend of this database waits for a lock."""
    deadline = time.monotonic() + timeout
    with engine.connect() as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            ).scalar_one()
            connection.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError(f"no session waited for a lock within {timeout} s")


# --- schemas ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tenant_database(admin_url: sqlalchemy.URL) -> Iterator[sqlalchemy.URL]:
    """A database migrated into the schema tenant_a only."""
    with throwaway_database(admin_url) as url:
        plain = url.render_as_string(hide_password=False)
        migrate.upgrade(migrate.make_config(plain, schema="tenant_a"))
        yield url


@pytest.mark.parametrize("observed", [False, True], ids=["driver", "observed"])
def test_repository_in_other_schema(
    any_repo: RepoDriver,
    repo_factory: RepoFactory,
    tenant_database: sqlalchemy.URL,
    observed: bool,
) -> None:
    # A statement listener sends the calls through Session.execute instead of the driver
    # connection, and both paths must place the tables in the schema.
    tenant = repo_factory.open(any_repo.kind, schema="tenant_a", url=tenant_database)
    token = snapshot(f"act_{any_repo.kind}")
    pending = snapshot(f"act_{any_repo.kind}_2")
    counting = count_statements(tenant.engine) if observed else contextlib.nullcontext([])

    with counting as statements:
        assert tenant.save(token) is SaveOutcome.INSERTED
        assert tenant.save(token) is SaveOutcome.UNCHANGED
        report = tenant.save_many([pending, token])
        assert tenant.get(token.id) == token
        page = tenant.list_for_user(USER, status="pending", limit=1)
        after = tenant.list_for_user(USER, status="pending", limit=1, after=page.next_cursor)
        revoked = tenant.revoke(token.id, LATER)
        with pytest.raises(InvalidTransitionError):
            tenant.accept(token.id, LATER)

    assert [result.outcome for result in report.results] == [
        SaveOutcome.INSERTED,
        SaveOutcome.UNCHANGED,
    ]
    assert list(page.items) + list(after.items) == [pending, token]
    assert revoked.status is TokenStatus.REVOKED
    assert all("tenant_a" in statement for statement in statements)
    assert len(statements) == (11 if observed else 0)
    rows = tenant.execute(
        "SELECT table_schema FROM information_schema.tables WHERE table_name = 'actor_tokens'"
    )
    assert rows == [("tenant_a",)]
    tenant.rollback()


def test_default_schema_missing_in_tenant_db(
    any_repo: RepoDriver, repo_factory: RepoFactory, tenant_database: sqlalchemy.URL
) -> None:
    public = repo_factory.open(any_repo.kind, url=tenant_database)

    with pytest.raises(SchemaNotReadyError) as caught:
        public.get("act_1")

    assert "db upgrade" in str(caught.value)


@pytest.mark.parametrize(
    "call",
    [
        lambda repo: repo.get("act_1"),
        lambda repo: repo.save(snapshot()),
        lambda repo: repo.save_many([snapshot()]),
        lambda repo: repo.list_for_user(USER),
        lambda repo: repo.accept("act_1", LATER),
    ],
    ids=["get", "save", "save_many", "list_for_user", "accept"],
)
def test_missing_tables_not_ready(
    any_repo: RepoDriver, repo_factory: RepoFactory, call: Any
) -> None:
    missing = repo_factory.open(any_repo.kind, schema="no_such_schema")

    with pytest.raises(SchemaNotReadyError) as caught:
        call(missing)

    assert "actortoken-store db upgrade" in str(caught.value)


@pytest.fixture(scope="module")
def empty_database(admin_url: sqlalchemy.URL) -> Iterator[sqlalchemy.URL]:
    """A database that was never migrated."""
    with throwaway_database(admin_url) as url:
        yield url


def test_unmigrated_database_not_ready(
    any_repo: RepoDriver, repo_factory: RepoFactory, empty_database: sqlalchemy.URL
) -> None:
    empty = repo_factory.open(any_repo.kind, url=empty_database)

    with pytest.raises(SchemaNotReadyError) as caught:
        empty.save(snapshot())

    assert "actortoken-store db upgrade" in str(caught.value)


# --- the upsert rule against a reference model -----------------------------------------------


def reference_outcome(stored: ActorToken | None, incoming: ActorToken) -> SaveOutcome:
    """Return what `save` must report, from the rule as the documentation states it."""
    if stored is None:
        return SaveOutcome.INSERTED
    if stored.user_id != incoming.user_id or stored.created_at != incoming.created_at:
        return SaveOutcome.CONFLICT
    if stored.status.is_terminal and incoming.status is not stored.status:
        stale = incoming.status is TokenStatus.PENDING and incoming.updated_at <= stored.updated_at
        return SaveOutcome.UNCHANGED if stale else SaveOutcome.CONFLICT
    if incoming.updated_at > stored.updated_at:
        return SaveOutcome.UPDATED
    terminal_wins = (
        incoming.updated_at == stored.updated_at
        and stored.status is TokenStatus.PENDING
        and incoming.status is not TokenStatus.PENDING
    )
    return SaveOutcome.UPDATED if terminal_wins else SaveOutcome.UNCHANGED


def random_snapshots(seed: int, token_count: int = 30) -> list[ActorToken]:
    """Return shuffled snapshots of a few tokens, with ties, replays and contradictions."""
    chooser = random.Random(seed)
    snapshots = []
    for number in range(token_count):
        for _ in range(chooser.randint(1, 6)):
            status = chooser.choice(["pending", "pending", "accepted", "revoked"])
            changes: dict[str, Any] = {}
            if chooser.random() < 0.1:
                changes["user_id"] = "user_other"
            if chooser.random() < 0.1:
                changes["created_at"] = CREATED - 1
            snapshots.append(
                snapshot(
                    f"act_{seed}_{number}",
                    status=status,
                    updated_at=CREATED + chooser.randint(0, 3),
                    actor={"sub": "user_1", "variant": chooser.randint(0, 2)},
                    **changes,
                )
            )
    chooser.shuffle(snapshots)
    return snapshots


@pytest.mark.parametrize("seed", [1, 2])
def test_save_matches_reference_model(any_repo: RepoDriver, seed: int) -> None:
    snapshots = random_snapshots(seed)
    stored: dict[str, ActorToken] = {}
    expected = []
    for token in snapshots:
        outcome = reference_outcome(stored.get(token.id), token)
        expected.append(outcome)
        if outcome in (SaveOutcome.INSERTED, SaveOutcome.UPDATED):
            stored[token.id] = token

    one_by_one = [any_repo.save(token) for token in snapshots]
    singles = {token_id: any_repo.get(token_id) for token_id in stored}
    any_repo.rollback()
    report = any_repo.save_many(snapshots, batch_size=7)
    batched = {token_id: any_repo.get(token_id) for token_id in stored}

    assert one_by_one == expected
    assert [result.outcome for result in report.results] == expected
    assert singles == stored
    assert batched == stored
    assert set(expected) == set(SaveOutcome)
