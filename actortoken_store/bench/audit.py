"""Audit queries on the table of the large import: the first page of each, in milliseconds.

The large import leaves about a year of settled tokens and their events. The per-actor
summary covers the last 30 days of that data; the other queries fetch their first page.
Each query runs ``repeats`` times on one session, and the median counts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import sqlalchemy
from sqlalchemy.orm import Session

from actortoken_store.bench.database import BENCH_SECRETS, libpq_url
from actortoken_store.bench.synthetic import NOW_MS, SyntheticTokens
from actortoken_store.bench.timing import median, stopwatch_ns
from actortoken_store.config import create_engine
from actortoken_store.model import ms_to_datetime
from actortoken_store.repository import ActorTokenRepository

__all__ = ["SUMMARY", "measure_audit"]

SUMMARY = "actor_summary_30d"
"""Name of the per-actor summary over 30 days in the returned timings."""

WINDOW = timedelta(days=30)


def measure_audit(
    url: sqlalchemy.URL, population: SyntheticTokens, repeats: int
) -> dict[str, float] | None:
    """Return the median milliseconds of each audit query, or None without audit queries.

    Runs VACUUM ANALYZE first, because an index-only scan reads the heap for every page
    that the visibility map does not mark all-visible.
    """
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")

    now = ms_to_datetime(NOW_MS)
    since = now - WINDOW
    actor = population.actor_subs()[0]
    user = population.user_ids()[0]
    record = next(population.records(stop=1))
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            audit: Any = getattr(
                ActorTokenRepository(session, secrets=BENCH_SECRETS), "audit", None
            )
            if audit is None:
                return None
            queries: dict[str, Callable[[], object]] = {
                SUMMARY: lambda: audit.actor_summary(actor_sub=actor, since=since, until=now),
                "actor_summaries_30d": lambda: audit.actor_summary(since=since, until=now),
                "impersonations_by_actor": lambda: audit.impersonations(actor_sub=actor),
                "impersonations_by_user": lambda: audit.impersonations(user_id=user),
                "impersonations_30d": lambda: audit.impersonations(since=since, until=now),
                "impersonations_revoked": lambda: audit.impersonations(status="revoked"),
                "timeline": lambda: audit.timeline(record["id"]),
                "stale_pending": lambda: audit.stale_pending(now=now),
            }
            timings: dict[str, list[float]] = {name: [] for name in queries}
            for _ in range(repeats + 1):
                for name, query in queries.items():
                    started = stopwatch_ns()
                    query()
                    timings[name].append((stopwatch_ns() - started) / 1e6)
            session.rollback()
    finally:
        engine.dispose()
    # The first round warms caches and prepares statements; it is not counted.
    return {name: median(values[1:]) for name, values in timings.items()}
