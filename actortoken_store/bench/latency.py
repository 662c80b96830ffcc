"""Point operations: the store's get, list_for_user and accept against the same SQL on psycopg.

The store side runs on one `Session` that the caller holds for the whole loop; the raw side
on one bare psycopg connection. Each sample runs every method once, in an order that
rotates from sample to sample, so drift in the machine's speed hits all methods alike.
Reads run inside one open transaction on each side. A transition commits on each side:
BEGIN, the UPDATE, COMMIT for the raw reference, and ``accept`` plus ``Session.commit``
for the store.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg
import sqlalchemy
from sqlalchemy.orm import Session

from actortoken_store.bench.database import BENCH_SECRETS, libpq_url
from actortoken_store.bench.timing import stopwatch_ns
from actortoken_store.config import create_engine
from actortoken_store.model import ms_to_datetime
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.statements import TOKENS

__all__ = ["LIST_PAGE", "Latencies", "measure_reads", "measure_transitions"]

LIST_PAGE = 20
"""Page size of list_for_user; both sides fetch one more row to see whether a page follows."""

WARMUP = 50
"""Unrecorded samples first: psycopg prepares a statement on its fifth execution."""


@dataclass
class Latencies:
    """Nanoseconds per call, by method name."""

    samples: dict[str, list[int]] = field(default_factory=dict)

    def add(self, name: str, elapsed_ns: int) -> None:
        self.samples.setdefault(name, []).append(elapsed_ns)


def _columns() -> str:
    return ", ".join(TOKENS.c.keys())


def _run_rotated(
    methods: Sequence[tuple[str, Callable[[int], object]]],
    count: int,
    latencies: Latencies,
) -> None:
    for sample in range(-WARMUP, count):
        shift = sample % len(methods)
        for name, method in [*methods[shift:], *methods[:shift]]:
            started = stopwatch_ns()
            method(sample)
            elapsed = stopwatch_ns() - started
            if sample >= 0:
                latencies.add(name, elapsed)


def measure_reads(
    url: sqlalchemy.URL,
    token_ids: Sequence[str],
    user_ids: Sequence[str],
    count: int,
    seed: int = 7,
) -> Latencies:
    """Time ``count`` calls each of get and list_for_user, store and raw."""
    rng = random.Random(seed)
    ids = [rng.choice(token_ids) for _ in range(count + WARMUP)]
    users = [rng.choice(user_ids) for _ in range(count + WARMUP)]
    get_sql = f"SELECT {_columns()} FROM actor_tokens WHERE id = %s"
    list_sql = (
        f"SELECT {_columns()} FROM actor_tokens WHERE user_id = %s "
        f"ORDER BY created_at DESC, id DESC LIMIT {LIST_PAGE + 1}"
    )
    latencies = Latencies()
    engine = create_engine(url)
    try:
        with psycopg.connect(libpq_url(url)) as raw, Session(engine) as session:
            repo = ActorTokenRepository(session, secrets=BENCH_SECRETS)

            def raw_get(sample: int) -> object:
                return raw.execute(get_sql, (ids[sample + WARMUP],)).fetchone()

            def raw_list(sample: int) -> object:
                return raw.execute(list_sql, (users[sample + WARMUP],)).fetchall()

            def get(sample: int) -> object:
                return repo.get(ids[sample + WARMUP])

            def list_for_user(sample: int) -> object:
                return repo.list_for_user(users[sample + WARMUP], limit=LIST_PAGE)

            methods = [
                ("raw_get", raw_get),
                ("get", get),
                ("raw_list_for_user", raw_list),
                ("list_for_user", list_for_user),
            ]
            _run_rotated(methods, count, latencies)
            session.commit()
            raw.commit()
    finally:
        engine.dispose()
    return latencies


def measure_transitions(
    url: sqlalchemy.URL, pending_ids: Sequence[str], count: int, at_ms: int
) -> Latencies:
    """Time ``count`` accept transitions each, store and raw, on distinct pending tokens.

    Needs ``2 * (count + WARMUP)`` pending tokens.
    """
    needed = 2 * (count + WARMUP)
    if len(pending_ids) < needed:
        raise ValueError(f"{needed} pending tokens needed, got {len(pending_ids)}")
    raw_ids = pending_ids[0::2]
    store_ids = pending_ids[1::2]
    at = ms_to_datetime(at_ms)
    update_sql = (
        "UPDATE actor_tokens SET status = 'accepted', "
        "updated_at = greatest(updated_at, %s) "
        f"WHERE id = %s AND status = 'pending' RETURNING {_columns()}"
    )
    latencies = Latencies()
    engine = create_engine(url)
    try:
        with psycopg.connect(libpq_url(url)) as raw, Session(engine) as session:
            repo = ActorTokenRepository(session, secrets=BENCH_SECRETS)

            def raw_transition(sample: int) -> object:
                row = raw.execute(update_sql, (at, raw_ids[sample + WARMUP])).fetchone()
                raw.commit()
                return row

            def transition(sample: int) -> object:
                token = repo.accept(store_ids[sample + WARMUP], at_ms)
                session.commit()
                return token

            methods = [("raw_transition", raw_transition), ("transition", transition)]
            _run_rotated(methods, count, latencies)
    finally:
        engine.dispose()
    return latencies
