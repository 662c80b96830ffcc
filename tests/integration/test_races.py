"""Races between workers that each hold their own connection: threads and processes.

Every worker commits after each call, so the interleavings are real. Locks and statements
time out (see `tests.integration.race_workers`), so a deadlock fails a test instead of
hanging it.
"""

from __future__ import annotations

import multiprocessing
import queue
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import reduce
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.statements import TOKENS
from tests.integration import race_workers
from tests.integration.race_workers import WorkerReport

THREADS = 3
PROCESSES = 2
CREATED = 1_760_000_000_000
SHARED_USER = "user_shared"


@pytest.fixture
def worker_engine(database_url: sqlalchemy.URL, clean_engine: Engine) -> Iterator[Engine]:
    """An engine for the thread workers, one pooled connection each; tables emptied after."""
    engine = race_workers.worker_engine(race_workers.render(database_url), pool_size=THREADS)
    yield engine
    engine.dispose()


def _run_workers(
    kind: str,
    engine: Engine,
    url: sqlalchemy.URL,
    arguments: Callable[[int], tuple[Any, ...]],
    threads: int = THREADS,
    processes: int = PROCESSES,
) -> list[WorkerReport]:
    """Run ``threads`` thread workers and ``processes`` process workers of ``kind`` at once.

    ``arguments(index)`` gives each worker's positional arguments after its name.
    """
    functions: dict[str, Callable[..., WorkerReport]] = {
        "transitions": race_workers.race_transitions,
        "saves": race_workers.race_saves,
        "mixed": race_workers.mixed_workload,
    }
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(threads + processes)
    results: queue.Queue[WorkerReport] = queue.Queue()
    process_results = context.Queue()

    def run_thread(index: int) -> None:
        name = f"t{index}"
        try:
            results.put(functions[kind](engine, name, *arguments(index), barrier=barrier))
        except Exception as error:
            results.put(WorkerReport(name, unexpected=[repr(error)]))

    children = [
        context.Process(
            target=race_workers.run_in_process,
            args=(
                kind,
                race_workers.render(url),
                f"p{index}",
                arguments(threads + index),
                barrier,
                process_results,
            ),
        )
        for index in range(processes)
    ]
    for child in children:
        child.start()
    workers = [threading.Thread(target=run_thread, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()

    reports = [process_results.get(timeout=120) for _ in children]
    for worker in workers:
        worker.join(timeout=120)
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0, f"worker process exited with {child.exitcode}"
    while not results.empty():
        reports.append(results.get_nowait())
    assert len(reports) == threads + processes
    return reports


def _pending_tokens(engine: Engine, count: int) -> list[str]:
    tokens = [
        ActorToken(
            id=f"act_race_{index:04d}",
            status=TokenStatus.PENDING,
            user_id=SHARED_USER,
            actor={"sub": "user_admin"},
            created_at=CREATED + index,
            updated_at=CREATED + index,
        )
        for index in range(count)
    ]
    with Session(engine) as session:
        ActorTokenRepository(session).save_many(tokens)
        session.commit()
    return [token.id for token in tokens]


def _stored(engine: Engine) -> dict[str, ActorToken]:
    with Session(engine) as session:
        repo = ActorTokenRepository(session)
        ids = session.execute(select(TOKENS.c.id)).scalars().all()
        return {token_id: repo.get_one(token_id) for token_id in ids}


def _events(engine: Engine) -> dict[str, list[tuple[str | None, str]]]:
    """Return each token's events as (from_status, to_status), in the order recorded."""
    events: dict[str, list[tuple[str | None, str]]] = {}
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT token_id, from_status::text, to_status::text "
                "FROM actor_token_events ORDER BY id"
            )
        )
        for token_id, from_status, to_status in rows:
            events.setdefault(token_id, []).append((from_status, to_status))
    return events


def _no_unexpected(reports: Sequence[WorkerReport]) -> None:
    problems = [problem for report in reports for problem in report.unexpected]
    assert not problems, "\n".join(problems[:3])


def test_transition_race_one_winner(worker_engine: Engine, database_url: sqlalchemy.URL) -> None:
    token_ids = _pending_tokens(worker_engine, 40)

    reports = _run_workers(
        "transitions", worker_engine, database_url, lambda index: (token_ids, index)
    )

    _no_unexpected(reports)
    winners: dict[str, list[str]] = {}
    for report in reports:
        for token_id, status in report.won:
            winners.setdefault(token_id, []).append(status)
    assert sorted(winners) == token_ids
    assert all(len(statuses) == 1 for statuses in winners.values()), winners

    attempts = sum(sum(report.calls.values()) for report in reports)
    rejected = sum(report.rejected["InvalidTransitionError"] for report in reports)
    assert rejected == attempts - len(token_ids)

    stored = _stored(worker_engine)
    for token_id, statuses in winners.items():
        assert stored[token_id].status.value == statuses[0]

    # The trigger wrote one creation event and exactly one transition event per token.
    events = _events(worker_engine)
    for token_id, statuses in winners.items():
        assert events[token_id] == [(None, "pending"), ("pending", statuses[0])], token_id


# --- save race --------------------------------------------------------------------------


def _rule_applies(stored: ActorToken, incoming: ActorToken) -> bool:
    """The monotonic rule of the upsert, restated in Python."""
    pending = TokenStatus.PENDING
    if stored.status is not pending and stored.status is not incoming.status:
        return False
    if (stored.user_id, stored.created_at) != (incoming.user_id, incoming.created_at):
        return False
    if incoming.updated_at > stored.updated_at:
        return True
    return (
        incoming.updated_at == stored.updated_at
        and stored.status is pending
        and incoming.status is not pending
    )


def _apply(stored: ActorToken, incoming: ActorToken) -> ActorToken:
    return incoming if _rule_applies(stored, incoming) else stored


def _lifecycle_snapshots(rng: random.Random, token_id: str) -> list[ActorToken]:
    """Snapshots of one token's life: pending versions, then maybe one terminal status.

    Times are distinct within a kind, and a terminal snapshot may share its time with a
    pending one, which the rule breaks in favour of the terminal status.
    """
    created = CREATED + rng.randint(0, 10_000)
    times = sorted(rng.sample(range(0, 50), rng.randint(1, 5)))
    snapshots = [
        ActorToken(
            id=token_id,
            status=TokenStatus.PENDING,
            user_id=SHARED_USER,
            actor={"sub": "user_admin", "version": step},
            created_at=created,
            updated_at=created + offset,
        )
        for step, offset in enumerate(times)
    ]
    if rng.random() < 0.7:
        terminal = rng.choice([TokenStatus.ACCEPTED, TokenStatus.REVOKED])
        start = rng.choice([times[-1], times[-1] + 1])
        for step, offset in enumerate(sorted(rng.sample(range(start, start + 20), 2))):
            snapshots.append(
                ActorToken(
                    id=token_id,
                    status=terminal,
                    user_id=SHARED_USER,
                    actor={"sub": "user_admin", "final": step},
                    created_at=created,
                    updated_at=created + offset,
                )
            )
    return snapshots


def test_save_race_monotonic_winner(worker_engine: Engine, database_url: sqlalchemy.URL) -> None:
    rng = random.Random(20261204)
    lifecycles = {
        f"act_save_{index:04d}": _lifecycle_snapshots(rng, f"act_save_{index:04d}")
        for index in range(60)
    }
    expected = {}
    for token_id, snapshots in lifecycles.items():
        expected[token_id] = reduce(_apply, snapshots)
        # The rule must pick the same winner in any order, or the test proves nothing.
        shuffled = snapshots[:]
        rng.shuffle(shuffled)
        assert reduce(_apply, shuffled) == expected[token_id]
    clerk = [snapshot.to_clerk() for snapshots in lifecycles.values() for snapshot in snapshots]

    reports = _run_workers("saves", worker_engine, database_url, lambda index: (clerk, index))

    _no_unexpected(reports)
    assert _stored(worker_engine) == expected
    events = _events(worker_engine)
    for token_id, final in expected.items():
        history = events[token_id]
        assert history[0][0] is None, token_id
        assert all(from_status is not None for from_status, _ in history[1:]), token_id
        assert len(history) <= 2, token_id
        assert history[-1][1] == final.status.value, token_id
    outcomes: Counter[str] = Counter()
    for report in reports:
        outcomes.update(report.outcomes)
    assert outcomes["inserted"] == len(lifecycles)
    assert sum(outcomes.values()) == len(clerk) * len(reports)


def test_save_many_reversed_no_deadlock(worker_engine: Engine) -> None:
    # Before save_many sorted its batches, about half of these rounds ended in
    # deadlock_detected on PostgreSQL 15.
    ids = [f"act_order_{index:04d}" for index in range(300)]
    errors: list[BaseException] = []
    for round_number in range(6):
        barrier = threading.Barrier(2)

        def save(order: list[str], offset: int, barrier: threading.Barrier = barrier) -> None:
            tokens = [
                ActorToken(
                    id=token_id,
                    status=TokenStatus.PENDING,
                    user_id=SHARED_USER,
                    actor={"sub": "user_admin"},
                    created_at=CREATED,
                    updated_at=CREATED + offset,
                )
                for token_id in order
            ]
            try:
                with Session(worker_engine) as session:
                    barrier.wait(30)
                    ActorTokenRepository(session).save_many(tokens)
                    session.commit()
            except BaseException as error:
                errors.append(error)

        forward = threading.Thread(target=save, args=(ids, 2 * round_number + 1))
        backward = threading.Thread(target=save, args=(ids[::-1], 2 * round_number + 2))
        forward.start()
        backward.start()
        forward.join(60)
        backward.join(60)

    assert errors == []
    stored = _stored(worker_engine)
    assert len(stored) == len(ids)
    # The later of the two writers of the last round wins everywhere. Which one committed
    # last is up to the scheduler, so either is accepted, but never a mix of both.
    assert len({token.updated_at for token in stored.values()}) == 1


def _mixed(
    worker_engine: Engine, database_url: sqlalchemy.URL, seconds: float, processes: int
) -> None:
    shared = _pending_tokens(worker_engine, 30)

    reports = _run_workers(
        "mixed",
        worker_engine,
        database_url,
        lambda index: (shared, SHARED_USER, seconds, index),
        processes=processes,
    )

    _no_unexpected(reports)
    with Session(worker_engine) as session:
        total = session.execute(select(func.count()).select_from(TOKENS)).scalar_one()
        terminal = session.execute(
            select(func.count())
            .select_from(TOKENS)
            .where(TOKENS.c.user_id == SHARED_USER, TOKENS.c.status != TokenStatus.PENDING)
        ).scalar_one()
    inserted = [token_id for report in reports for token_id in report.inserted_ids]
    assert len(inserted) == len(set(inserted))
    assert total == len(shared) + len(inserted)

    won = [token_id for report in reports for token_id, _ in report.won]
    assert len(won) == len(set(won))
    assert terminal == len(won)

    # Re-saving a pending token changes no status, so it writes no event.
    events = _events(worker_engine)
    pairs = [pair for history in events.values() for pair in history]
    creations = sum(1 for from_status, _ in pairs if from_status is None)
    transitions = len(pairs) - creations
    assert creations == total
    assert transitions == len(won)
    assert sum(report.calls["audit"] for report in reports) > 0

    outcomes: Counter[str] = Counter()
    for report in reports:
        outcomes.update(report.outcomes)
    assert outcomes["unchanged"] == 0
    assert outcomes["conflict"] == 0
    assert sum(report.calls["transition"] for report in reports) == len(won) + sum(
        report.rejected["InvalidTransitionError"] for report in reports
    )


def test_mixed_workload_counts_match(worker_engine: Engine, database_url: sqlalchemy.URL) -> None:
    _mixed(worker_engine, database_url, seconds=2.0, processes=PROCESSES)


@pytest.mark.slow
def test_mixed_workload_soak(worker_engine: Engine, database_url: sqlalchemy.URL) -> None:
    _mixed(worker_engine, database_url, seconds=60.0, processes=PROCESSES)
