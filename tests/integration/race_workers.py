"""Workers for the race tests, importable by child processes.

Each worker runs against its own connection, waits on a shared barrier so that all
workers start together, commits after every call, and returns a plain-data report. Child
processes are started with the "spawn" method, so everything they receive must pickle:
URLs travel as strings and tokens as Clerk dicts.
"""

from __future__ import annotations

import random
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import sqlalchemy
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from actortoken_store.config import create_engine
from actortoken_store.errors import InvalidTransitionError
from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.results import SaveOutcome

LOCK_TIMEOUT_MS = 5_000
"""A worker that waits this long for a row lock fails instead of hanging."""

STATEMENT_TIMEOUT_MS = 15_000
"""A statement that runs this long fails, so a deadlock or a hang ends the test."""

BARRIER_TIMEOUT_S = 60.0
"""Time for every worker, child processes included, to reach the start line."""


class Barrier(Protocol):
    def wait(self, timeout: float | None = None) -> int: ...


@dataclass
class WorkerReport:
    """What one worker did, in plain data that pickles."""

    name: str
    won: list[tuple[str, str]] = field(default_factory=list)
    """Transitions that succeeded: (token id, status)."""
    rejected: Counter[str] = field(default_factory=Counter)
    """Typed errors that the rules call for, by class name."""
    unexpected: list[str] = field(default_factory=list)
    """Any other error, with its traceback."""
    outcomes: Counter[str] = field(default_factory=Counter)
    """Save outcomes, by value."""
    inserted_ids: list[str] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    """Calls made, by method name."""


def worker_engine(url: str, pool_size: int = 1) -> Engine:
    """Create an engine whose sessions time out on locks and long statements."""
    options = f"-c lock_timeout={LOCK_TIMEOUT_MS} -c statement_timeout={STATEMENT_TIMEOUT_MS}"
    if pool_size <= 1:
        return create_engine(url, poolclass=NullPool, connect_args={"options": options})
    return create_engine(
        url, pool_size=pool_size, max_overflow=0, connect_args={"options": options}
    )


def render(url: sqlalchemy.URL) -> str:
    """Return the URL as a string that keeps the password, for a child process."""
    return url.render_as_string(hide_password=False)


def race_transitions(
    engine: Engine, name: str, token_ids: Sequence[str], seed: int, barrier: Barrier
) -> WorkerReport:
    """Try to accept or revoke every token once, in a shuffled order, one commit each."""
    report = WorkerReport(name)
    rng = random.Random(seed)
    order = list(token_ids)
    rng.shuffle(order)
    with Session(engine) as session:
        repo = ActorTokenRepository(session)
        barrier.wait(BARRIER_TIMEOUT_S)
        for token_id in order:
            method = rng.choice(["accept", "revoke"])
            report.calls[method] += 1
            try:
                token = getattr(repo, method)(token_id)
                session.commit()
            except InvalidTransitionError as error:
                session.rollback()
                report.rejected[type(error).__name__] += 1
            except Exception:
                session.rollback()
                report.unexpected.append(traceback.format_exc())
            else:
                report.won.append((token_id, token.status.value))
    return report


def race_saves(
    engine: Engine,
    name: str,
    snapshots: Sequence[dict[str, Any]],
    seed: int,
    barrier: Barrier,
) -> WorkerReport:
    """Save every snapshot in a shuffled order, alone or in random batches, one commit each."""
    report = WorkerReport(name)
    rng = random.Random(seed)
    tokens = [ActorToken.from_clerk(snapshot) for snapshot in snapshots]
    rng.shuffle(tokens)
    with Session(engine) as session:
        repo = ActorTokenRepository(session)
        barrier.wait(BARRIER_TIMEOUT_S)
        position = 0
        while position < len(tokens):
            size = rng.choice([1, 1, 5, 20, 60])
            chunk = tokens[position : position + size]
            position += size
            try:
                if len(chunk) == 1:
                    report.calls["save"] += 1
                    outcomes = [repo.save(chunk[0])]
                else:
                    report.calls["save_many"] += 1
                    saved = repo.save_many(chunk)
                    outcomes = [result.outcome for result in saved.results]
                session.commit()
            except Exception:
                session.rollback()
                report.unexpected.append(traceback.format_exc())
            else:
                report.outcomes.update(outcome.value for outcome in outcomes)
    return report


def mixed_workload(
    engine: Engine,
    name: str,
    shared_ids: Sequence[str],
    shared_user: str,
    seconds: float,
    seed: int,
    barrier: Barrier,
) -> WorkerReport:
    """Mix saves, reads and transitions for ``seconds``; the worker owns the tokens it saves.

    Saves write only tokens of the worker's own user, so their count is known exactly;
    transitions race with the other workers on ``shared_ids``.
    """
    report = WorkerReport(name)
    rng = random.Random(seed)
    own_user = f"user_{name}"
    own: dict[str, ActorToken] = {}
    created = 1_750_000_000_000
    with Session(engine) as session:
        repo = ActorTokenRepository(session)
        barrier.wait(BARRIER_TIMEOUT_S)
        deadline = time.monotonic() + seconds
        step = 0
        while time.monotonic() < deadline:
            step += 1
            action = rng.choice(["save_many", "resave", "list", "get", "transition", "audit"])
            report.calls[action] += 1
            try:
                _mixed_step(
                    action,
                    repo,
                    report,
                    rng,
                    own,
                    own_user,
                    created + step,
                    shared_ids,
                    shared_user,
                )
                session.commit()
            except InvalidTransitionError as error:
                session.rollback()
                report.rejected[type(error).__name__] += 1
            except Exception:
                session.rollback()
                report.unexpected.append(f"{action}: {traceback.format_exc()}")
    return report


def _mixed_step(
    action: str,
    repo: ActorTokenRepository,
    report: WorkerReport,
    rng: random.Random,
    own: dict[str, ActorToken],
    own_user: str,
    now: int,
    shared_ids: Sequence[str],
    shared_user: str,
) -> None:
    if action == "save_many":
        batch = [
            ActorToken(
                id=f"act_{report.name}_{len(own) + index}",
                status=TokenStatus.PENDING,
                user_id=own_user,
                actor={"sub": "user_admin", "step": now},
                created_at=now,
                updated_at=now,
            )
            for index in range(rng.randint(1, 30))
        ]
        saved = repo.save_many(batch)
        for token, result in zip(batch, saved.results, strict=True):
            report.outcomes[result.outcome.value] += 1
            if result.outcome is SaveOutcome.INSERTED:
                report.inserted_ids.append(token.id)
            own[token.id] = token
    elif action == "resave" and own:
        previous = own[rng.choice(sorted(own))]
        newer = ActorToken.from_clerk(
            {**previous.to_clerk(), "updated_at": max(now, previous.updated_at + 1)}
        )
        report.outcomes[repo.save(newer).value] += 1
        own[newer.id] = newer
    elif action == "list":
        page = repo.list_for_user(own_user, limit=1000)
        if len(page.items) != min(len(own), 1000):
            raise AssertionError(f"listed {len(page.items)} own tokens, saved {len(own)}")
        repo.list_for_user(shared_user, status=TokenStatus.PENDING, limit=20)
    elif action == "get" and own:
        token_id = rng.choice(sorted(own))
        if repo.get(token_id) != own[token_id]:
            raise AssertionError(f"token {token_id} differs from the saved snapshot")
    elif action == "audit":
        impersonations = repo.audit.impersonations(user_id=own_user, limit=200)
        if len(impersonations.items) != min(len(own), 200):
            raise AssertionError(
                f"audit listed {len(impersonations.items)} impersonations, saved {len(own)}"
            )
        if own:
            token_id = rng.choice(sorted(own))
            timeline = repo.audit.timeline(token_id)
            if not timeline.items or timeline.items[0].from_status is not None:
                raise AssertionError(f"token {token_id} has no creation event")
        repo.audit.actor_summary(limit=10)
    elif action == "transition":
        token_id = rng.choice(list(shared_ids))
        method: Callable[[str], ActorToken] = rng.choice([repo.accept, repo.revoke])
        token = method(token_id)
        report.won.append((token_id, token.status.value))


def run_in_process(
    kind: str, url: str, name: str, arguments: tuple[Any, ...], barrier: Barrier, queue: Any
) -> None:
    """Entry point of a child process: run one worker on a new engine, put its report."""
    workers: dict[str, Callable[..., WorkerReport]] = {
        "transitions": race_transitions,
        "saves": race_saves,
        "mixed": mixed_workload,
    }
    engine = worker_engine(url)
    try:
        report = workers[kind](engine, name, *arguments, barrier=barrier)
    except Exception:
        report = WorkerReport(name, unexpected=[traceback.format_exc()])
    finally:
        engine.dispose()
    queue.put(report)
