"""Time the audit queries and the cost of the audit settings on writes.

Run from the repository root::

    python -m benchmarks.audit_queries [--database-url URL] [--tokens 200000] [--repeats 30]

It creates a throwaway database on the server (the URL's user must be a superuser, because
loading turns the trigger off), migrates it, loads ``--tokens`` tokens and their events
with `benchmarks.audit_data`, then prints:

- the first page of each audit query shape through the sync repository (median and p99
  of ``--repeats`` runs, in milliseconds);
- a transition (BEGIN, UPDATE, COMMIT) through the repository, which sets the audit
  settings inside its UPDATE, against the same UPDATE through a bare psycopg connection
  (which records source ``sql``), and the bare UPDATE with the settings subquery added;
- a single ``save`` in its own transaction against a bare psycopg INSERT, with and without
  the settings subquery.

Without ``--database-url`` it uses ``ACTORTOKEN_STORE_DATABASE_URL`` or the embedded server.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import sqlalchemy
from sqlalchemy import text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from actortoken_store import migrate
from actortoken_store.config import create_engine, display_url, resolve_database
from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.repository import ActorTokenRepository
from benchmarks.audit_data import load_tokens_and_events

_RAW_TRANSITION = (
    "UPDATE actor_tokens SET status = 'revoked', updated_at = greatest(updated_at, %s) "
    "WHERE id = %s AND status = 'pending' RETURNING *"
)
_SETTINGS = (
    "(SELECT set_config('actortoken_store.source', 'repository', true) "
    "|| set_config('actortoken_store.context', '{}', true)) IS NOT NULL"
)
_RAW_TRANSITION_WITH_SETTINGS = (
    "UPDATE actor_tokens SET status = 'revoked', updated_at = greatest(updated_at, %s) "
    f"WHERE id = %s AND status = 'pending' AND {_SETTINGS} RETURNING *"
)
_RAW_INSERT = (
    "INSERT INTO actor_tokens (id, status, user_id, actor, token, url, created_at, updated_at) "
    "VALUES (%s, 'pending', %s, %s::jsonb, NULL, NULL, %s, %s)"
)
_RAW_INSERT_WITH_SETTINGS = (
    "INSERT INTO actor_tokens (id, status, user_id, actor, token, url, created_at, updated_at) "
    f"SELECT %s, 'pending', %s, %s::jsonb, NULL, NULL, %s, %s WHERE {_SETTINGS}"
)


def _median_p99(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _time(function: Callable[[], object], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


@contextmanager
def _throwaway(admin_url: sqlalchemy.URL) -> Iterator[sqlalchemy.URL]:
    name = f"ats_bench_audit_{secrets.token_hex(4)}"
    admin = create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield admin_url.set(database=name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


def _query_timings(engine: sqlalchemy.Engine, repeats: int) -> list[tuple[str, list[float]]]:
    since = datetime(2025, 3, 1, tzinfo=UTC)
    until = since + timedelta(days=30)
    now = datetime(2025, 10, 1, tzinfo=UTC)
    shapes: list[tuple[str, Callable[[ActorTokenRepository], object]]] = [
        ("impersonations, newest", lambda repo: repo.audit.impersonations(limit=50)),
        (
            "impersonations by actor",
            lambda repo: repo.audit.impersonations(actor_sub="actor_7", limit=50),
        ),
        (
            "impersonations by actor, 30 days, revoked",
            lambda repo: repo.audit.impersonations(
                actor_sub="actor_7", since=since, until=until, status="revoked", limit=50
            ),
        ),
        (
            "impersonations by user",
            lambda repo: repo.audit.impersonations(user_id="user_42", limit=50),
        ),
        ("timeline of one token", lambda repo: repo.audit.timeline("act_000001234")),
        (
            "summary of all actors, 30 days",
            lambda repo: repo.audit.actor_summary(since=since, until=until, limit=50),
        ),
        (
            "summary of one actor, 30 days",
            lambda repo: repo.audit.actor_summary(actor_sub="actor_7", since=since, until=until),
        ),
        (
            "stale pending (older than 1 hour)",
            lambda repo: repo.audit.stale_pending(now=now, limit=50),
        ),
    ]
    results = []
    with Session(engine) as session:
        repo = ActorTokenRepository(session)
        for name, call in shapes:
            call(repo)  # warm the connection and the plan cache
            results.append((name, _time(lambda call=call: call(repo), repeats)))
            session.rollback()
    return results


def _write_timings(url: sqlalchemy.URL, repeats: int) -> list[tuple[str, list[float]]]:
    engine = create_engine(url)
    raw = psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    pending = iter(
        row[0]
        for row in raw.execute(
            "SELECT id FROM actor_tokens WHERE status = 'pending' ORDER BY id LIMIT %s",
            (repeats * 3 + 3,),
        )
    )
    raw.commit()
    at = datetime(2026, 1, 1, tzinfo=UTC)
    results: dict[str, list[float]] = {
        "transition, repository": [],
        "transition, raw psycopg": [],
        "transition, raw psycopg + settings": [],
        "save one new token, repository": [],
        "insert one new token, raw psycopg": [],
        "insert one new token, raw psycopg + settings": [],
    }
    counter = iter(range(10**9))

    def repository_transition(session: Session, repo: ActorTokenRepository) -> None:
        repo.revoke(next(pending), at)
        session.commit()

    def raw_transition(statement: str) -> None:
        raw.execute(statement, (at, next(pending))).fetchall()
        raw.commit()

    def new_token() -> ActorToken:
        return ActorToken(
            id=f"act_bench_repo_{next(counter)}",
            status=TokenStatus.PENDING,
            user_id="user_bench",
            actor={"sub": "actor_bench"},
            token=None,
            url=None,
            created_at=1_764_000_000_000,
            updated_at=1_764_000_000_000,
        )

    def repository_save(session: Session, repo: ActorTokenRepository) -> None:
        repo.save(new_token())
        session.commit()

    def raw_insert(statement: str) -> None:
        number = next(counter)
        raw.execute(
            statement,
            (f"act_bench_raw_{number}", "user_bench", '{"sub": "actor_bench"}', at, at),
        )
        raw.commit()

    with Session(engine) as session:
        repo = ActorTokenRepository(session)
        # Alternate the variants so that drift in the machine's load hits them alike.
        for _ in range(repeats):
            for name, call in (
                ("transition, repository", lambda: repository_transition(session, repo)),
                ("transition, raw psycopg", lambda: raw_transition(_RAW_TRANSITION)),
                (
                    "transition, raw psycopg + settings",
                    lambda: raw_transition(_RAW_TRANSITION_WITH_SETTINGS),
                ),
                ("save one new token, repository", lambda: repository_save(session, repo)),
                ("insert one new token, raw psycopg", lambda: raw_insert(_RAW_INSERT)),
                (
                    "insert one new token, raw psycopg + settings",
                    lambda: raw_insert(_RAW_INSERT_WITH_SETTINGS),
                ),
            ):
                results[name].extend(_time(call, 1))
    raw.close()
    engine.dispose()
    return list(results.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="admin URL of the server to benchmark on")
    parser.add_argument("--tokens", type=int, default=200_000, help="tokens to load")
    parser.add_argument("--repeats", type=int, default=30, help="runs per measurement")
    args = parser.parse_args()

    admin_url = resolve_database(args.database_url).url
    print(f"server: {display_url(admin_url)}")
    with _throwaway(admin_url) as url:
        migrate.upgrade(migrate.make_config(url.render_as_string(hide_password=False)))
        engine = create_engine(url)
        started = time.perf_counter()
        load_tokens_and_events(engine, args.tokens)
        print(
            f"loaded {args.tokens} tokens and their events in {time.perf_counter() - started:.1f} s"
        )
        with engine.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar_one()
            events = connection.execute(
                text("SELECT count(*) FROM actor_token_events")
            ).scalar_one()
        print(f"PostgreSQL {version}, {events} events\n")

        print(f"{'first page of':<45} {'median ms':>10} {'p99 ms':>10}")
        for name, samples in _query_timings(engine, args.repeats):
            median, p99 = _median_p99(samples)
            print(f"{name:<45} {median:>10.2f} {p99:>10.2f}")
        engine.dispose()

        print(f"\n{'write, one per transaction':<45} {'median ms':>10} {'p99 ms':>10}")
        medians = {}
        for name, samples in _write_timings(url, args.repeats):
            median, p99 = _median_p99(samples)
            medians[name] = median
            print(f"{name:<45} {median:>10.3f} {p99:>10.3f}")
        ratio = medians["transition, repository"] / medians["transition, raw psycopg"]
        setting = medians["transition, raw psycopg + settings"] / medians["transition, raw psycopg"]
        save = (
            medians["save one new token, repository"] / medians["insert one new token, raw psycopg"]
        )
        print(f"\ntransition, repository / raw psycopg: {ratio:.2f}x (target: at most 1.5x)")
        print(f"transition, raw + settings / raw: {setting:.2f}x")
        print(f"save, repository / raw insert: {save:.2f}x")
        raw_insert_median = medians["insert one new token, raw psycopg"]
        insert_settings = (
            medians["insert one new token, raw psycopg + settings"] / raw_insert_median
        )
        print(f"insert, raw + settings / raw: {insert_settings:.2f}x")


if __name__ == "__main__":
    main()
