"""Every audit query shape reads an index, never a whole table, on a loaded database.

The data comes from `benchmarks.audit_data`, set-based SQL that writes the events the
trigger would write. The default size keeps the suite fast; the slow variant loads 200,000
tokens. Both spread the tokens over the same 278 days, so each window selects the same
fraction of rows, and both VACUUM ANALYZE, so the planner has real statistics and a visibility map.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, Select

from actortoken_store.audit import queries
from benchmarks.audit_data import load_tokens_and_events

DEFAULT_SIZE = 20_000
FULL_SIZE = 200_000


def _at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


SHAPES: dict[str, Select[Any]] = {
    "impersonations, all": queries.select_impersonations(
        actor_sub=None, user_id=None, since=None, until=None, status=None, after=None, limit=51
    ),
    "impersonations, actor": queries.select_impersonations(
        actor_sub="actor_7", user_id=None, since=None, until=None, status=None, after=None, limit=51
    ),
    "impersonations, actor, window, status": queries.select_impersonations(
        actor_sub="actor_7",
        user_id=None,
        since=_at(2025, 3, 1),
        until=_at(2025, 4, 1),
        status="revoked",
        after=None,
        limit=51,
    ),
    "impersonations, user": queries.select_impersonations(
        actor_sub=None, user_id="user_42", since=None, until=None, status=None, after=None, limit=51
    ),
    "impersonations, user, second page": queries.select_impersonations(
        actor_sub=None,
        user_id="user_42",
        since=_at(2025, 1, 1),
        until=None,
        status=None,
        after=(_at(2025, 6, 1), 100_000),
        limit=51,
    ),
    "impersonations, window, status": queries.select_impersonations(
        actor_sub=None,
        user_id=None,
        since=_at(2025, 3, 1),
        until=_at(2025, 3, 31),
        status="pending",
        after=None,
        limit=51,
    ),
    "timeline": queries.select_timeline("act_000001234", after=None, limit=51),
    "timeline, second page": queries.select_timeline("act_000001234", after=5, limit=51),
    "summary, 30 days": queries.select_actor_summaries(
        actor_sub=None, since=_at(2025, 3, 1), until=_at(2025, 3, 31), after=None, limit=51
    ),
    "summary, 30 days, second page": queries.select_actor_summaries(
        actor_sub=None, since=_at(2025, 3, 1), until=_at(2025, 3, 31), after="actor_3", limit=51
    ),
    "summary, one actor, 30 days": queries.select_actor_summaries(
        actor_sub="actor_7", since=_at(2025, 3, 1), until=_at(2025, 3, 31), after=None, limit=51
    ),
    "summary, one actor": queries.select_actor_summaries(
        actor_sub="actor_7", since=None, until=None, after=None, limit=51
    ),
    "stale pending": queries.select_stale_pending(
        cutoff=_at(2025, 6, 1), since=None, after=None, limit=51
    ),
    "stale pending, second page": queries.select_stale_pending(
        cutoff=_at(2025, 6, 1), since=_at(2025, 1, 1), after=(_at(2025, 2, 1), "act_x"), limit=51
    ),
}


@pytest.fixture(
    params=[DEFAULT_SIZE, pytest.param(FULL_SIZE, marks=pytest.mark.slow)],
    ids=lambda size: f"{size}_tokens",
)
def loaded(request: pytest.FixtureRequest, clean_engine: Engine) -> Iterator[Engine]:
    load_tokens_and_events(clean_engine, request.param)
    yield clean_engine


def _scans(plan: dict[str, Any]) -> Iterator[tuple[str, str]]:
    yield plan["Node Type"], plan.get("Relation Name", "")
    for child in plan.get("Plans", []):
        yield from _scans(child)


def test_plans_use_indexes(loaded: Engine) -> None:
    problems = []
    with loaded.connect() as connection:
        for name, statement in SHAPES.items():
            sql = str(
                statement.compile(
                    dialect=connection.dialect, compile_kwargs={"literal_binds": True}
                )
            )
            raw = connection.exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql.replace("%", "%%"))
            plan = raw.scalar_one()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            scans = list(_scans(plan[0]["Plan"]))
            full = [relation for node, relation in scans if node == "Seq Scan"]
            if full:
                problems.append(f"{name}: sequential scan of {', '.join(full)}")
            read = {relation for node, relation in scans if relation}
            if not read:
                problems.append(f"{name}: the plan reads no table")
    assert problems == []
