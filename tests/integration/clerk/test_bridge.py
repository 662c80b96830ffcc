"""The Clerk bridge (issue, revoke) with the real SDK against the fake Backend API.

Every test runs twice, through the sync functions and repository and through the async
ones (`any_repo`). Each bridge call runs in its own transaction, committed when the call
returns.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from clerk_backend_api import Clerk
from sqlalchemy import Engine, event, text

from actortoken_store import clerk as bridge_module
from actortoken_store.errors import (
    ActorClaimsMissingError,
    ClerkRequestError,
    InvalidActorTokenError,
    InvalidArgumentError,
    InvalidTransitionError,
    SchemaNotReadyError,
    TokenConflictError,
    TokenNotFoundError,
)
from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.results import SaveOutcome
from actortoken_store.secrets import SecretsPolicy
from tests.drivers import EventLoopThread, RepoDriver, RepoFactory
from tests.fake_clerk import FakeClerk
from tests.integration.clerk.bridge_driver import BridgeDriver

USER = "user_2impersonatedXXXXXXXXXXXX"
ACTOR = {
    "sub": "user_2supportagentXXXXXXXXXXX",
    "reason": "support ticket #4312",
    "meta": {"team": "tier-2", "scopes": ["read", "write"]},
}
MISSING_SCHEMA = "schema_that_does_not_exist"


@pytest.fixture(autouse=True)
def no_ticket_in_logs(
    caplog: pytest.LogCaptureFixture, fake_clerk: FakeClerk
) -> Iterator[pytest.LogCaptureFixture]:
    """Capture the bridge's logs and check afterwards that no ticket appears in them."""
    caplog.set_level(logging.DEBUG, logger="actortoken_store")
    yield caplog
    text = "\n".join(record.getMessage() for record in caplog.records)
    for ticket in fake_clerk.issued_tickets:
        assert ticket not in text


def _count_stored(repo: RepoDriver) -> int:
    count: int = repo.execute("SELECT count(*) FROM actor_tokens")[0][0]
    return count


def _full_text(error: BaseException) -> str:
    """Render ``error`` as a traceback would print it, notes and causes included."""
    return "".join(traceback.format_exception(error))


def _assert_no_ticket(fake: FakeClerk, text: str) -> None:
    for ticket in fake.issued_tickets:
        assert ticket not in text
        assert ticket.split(".")[1] not in text


# --- issue ---


def test_issue_stores_token(
    bridge: BridgeDriver, any_repo: RepoDriver, fake_clerk: FakeClerk
) -> None:
    token = bridge.issue(USER, ACTOR, expires_in_seconds=600, session_max_duration_in_seconds=300)

    at_clerk = fake_clerk.tokens[token.id]
    assert token.status is TokenStatus.PENDING
    assert token.user_id == USER
    assert dict(token.actor) == ACTOR
    assert token.token == at_clerk["token"]
    assert token.url == at_clerk["url"]
    assert token.created_at == at_clerk["created_at"]
    assert token.expires_at == token.created_at + 600_000
    stored = any_repo.get(token.id)
    assert stored == token
    assert stored is not None
    assert stored.expires_at == token.expires_at


def test_issue_digest_mode(
    bridge: BridgeDriver, any_repo: RepoDriver, fake_clerk: FakeClerk
) -> None:
    token = bridge.issue(USER, ACTOR, secrets=SecretsPolicy("digest"))

    # The caller still gets the ticket to hand out, although the store keeps its digest only.
    ticket = fake_clerk.tokens[token.id]["token"]
    assert token.token == ticket
    stored = any_repo.get(token.id)
    assert stored is not None
    assert stored.token is None
    assert any_repo.get_by_ticket(ticket) == stored


def test_issue_sends_request(bridge: BridgeDriver, fake_clerk: FakeClerk) -> None:
    bridge.issue(USER, ACTOR, expires_in_seconds=600, session_max_duration_in_seconds=300)

    [call] = fake_clerk.calls("create")
    assert call.authorization == "Bearer sk_test_fake_clerk_for_tests"
    assert call.body == {
        "user_id": USER,
        "actor": ACTOR,
        "expires_in_seconds": 600,
        "session_max_duration_in_seconds": 300,
    }


def test_issue_default_durations(bridge: BridgeDriver, fake_clerk: FakeClerk) -> None:
    bridge.issue(USER, {"sub": "user_x"})

    [call] = fake_clerk.calls("create")
    assert call.body["expires_in_seconds"] == 3600
    assert call.body["session_max_duration_in_seconds"] == 1800


def test_issue_logs_token_id(
    bridge: BridgeDriver, no_ticket_in_logs: pytest.LogCaptureFixture
) -> None:
    token = bridge.issue(USER, ACTOR)

    messages = [record.getMessage() for record in no_ticket_in_logs.records]
    assert any(token.id in message and "issued" in message for message in messages)


@pytest.mark.parametrize(
    ("user_id", "actor", "options", "error"),
    [
        ("", ACTOR, {}, InvalidArgumentError),
        ("   ", ACTOR, {}, InvalidArgumentError),
        (USER, {"reason": "no sub"}, {}, InvalidActorTokenError),
        (USER, {"sub": ""}, {}, InvalidActorTokenError),
        (USER, {"sub": "user_x", "bad": "nul\x00"}, {}, InvalidActorTokenError),
        (USER, "user_x", {}, InvalidActorTokenError),
        (USER, ACTOR, {"expires_in_seconds": 0}, InvalidArgumentError),
        (USER, ACTOR, {"expires_in_seconds": True}, InvalidArgumentError),
        (USER, ACTOR, {"session_max_duration_in_seconds": -5}, InvalidArgumentError),
        (USER, ACTOR, {"session_max_duration_in_seconds": 1.5}, InvalidArgumentError),
    ],
)
def test_issue_invalid_arguments(
    bridge: BridgeDriver,
    any_repo: RepoDriver,
    fake_clerk: FakeClerk,
    user_id: str,
    actor: Any,
    options: dict[str, Any],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        bridge.issue(user_id, actor, **options)

    assert fake_clerk.requests == []
    assert _count_stored(any_repo) == 0


def test_issue_clerk_rejects(
    bridge: BridgeDriver, any_repo: RepoDriver, fake_clerk: FakeClerk
) -> None:
    fake_clerk.fail_next(
        "create",
        422,
        code="form_param_value_invalid",
        message="is invalid",
        long_message="user_id does not match any user",
    )

    with pytest.raises(ClerkRequestError) as caught:
        bridge.issue(USER, ACTOR)

    error = caught.value
    assert error.operation == "create"
    assert error.status_code == 422
    assert error.codes == ("form_param_value_invalid",)
    assert "user_id does not match any user" in str(error)
    assert _count_stored(any_repo) == 0
    assert fake_clerk.calls("revoke") == []


def test_issue_clerk_server_error(
    bridge: BridgeDriver, any_repo: RepoDriver, fake_clerk: FakeClerk
) -> None:
    fake_clerk.fail_next(
        "create", 503, raw=b"<html>upstream unavailable</html>", content_type="text/html"
    )

    with pytest.raises(ClerkRequestError) as caught:
        bridge.issue(USER, ACTOR)

    assert caught.value.status_code == 503
    assert caught.value.codes == ()
    assert "upstream unavailable" not in str(caught.value)
    assert _count_stored(any_repo) == 0


def test_issue_clerk_unreachable(
    bridge: BridgeDriver, any_repo: RepoDriver, make_clerk: Callable[[str | None], Clerk]
) -> None:
    # A port that was free a moment ago and has no listener now.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = make_clerk(f"http://127.0.0.1:{port}/v1")

    with pytest.raises(ClerkRequestError) as caught:
        bridge.issue(USER, ACTOR, clerk=unreachable)

    assert caught.value.status_code is None
    assert "ConnectError" in str(caught.value)
    assert _count_stored(any_repo) == 0


def test_issue_store_fails(
    bridge: BridgeDriver,
    any_repo: RepoDriver,
    fake_clerk: FakeClerk,
    no_ticket_in_logs: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(SchemaNotReadyError) as caught:
        bridge.issue(USER, ACTOR, schema=MISSING_SCHEMA)

    [token_id] = fake_clerk.tokens
    [revoke_call] = fake_clerk.calls("revoke")
    assert revoke_call.path == f"/v1/actor_tokens/{token_id}/revoke"
    assert fake_clerk.tokens[token_id]["status"] == "revoked"
    assert _count_stored(any_repo) == 0

    warnings = [r for r in no_ticket_in_logs.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert token_id in warnings[0].getMessage()
    assert "revoked" in warnings[0].getMessage()
    text = _full_text(caught.value)
    assert f"{token_id!r} was created at Clerk, not stored, and revoked" in text
    _assert_no_ticket(fake_clerk, text)


def test_issue_store_conflict(
    bridge: BridgeDriver, any_repo: RepoDriver, fake_clerk: FakeClerk
) -> None:
    existing = ActorToken.from_clerk(
        {
            "id": "act_2existingtokenXXXXXXXXXXXX",
            "status": "accepted",
            "user_id": "user_2someoneelseXXXXXXXXXXXX",
            "actor": {"sub": "user_2otheradminXXXXXXXXXXXX"},
            "created_at": 1_764_633_600_000,
            "updated_at": 1_764_633_700_000,
        }
    )
    assert any_repo.save(existing) is SaveOutcome.INSERTED
    any_repo.commit()
    fake_clerk.next_ids.append(existing.id)

    with pytest.raises(TokenConflictError) as caught:
        bridge.issue(USER, ACTOR)

    assert caught.value.token_id == existing.id
    assert caught.value.stored_status == "accepted"
    assert fake_clerk.tokens[existing.id]["status"] == "revoked"
    assert any_repo.get(existing.id) == existing


def test_issue_withdraw_fails(
    bridge: BridgeDriver,
    any_repo: RepoDriver,
    fake_clerk: FakeClerk,
    no_ticket_in_logs: pytest.LogCaptureFixture,
) -> None:
    fake_clerk.fail_next("revoke", 500, raw=b"internal error", content_type="text/plain")

    with pytest.raises(SchemaNotReadyError) as caught:
        bridge.issue(USER, ACTOR, schema=MISSING_SCHEMA)

    [token_id] = fake_clerk.tokens
    assert fake_clerk.tokens[token_id]["status"] == "pending"
    assert _count_stored(any_repo) == 0
    errors = [r for r in no_ticket_in_logs.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert token_id in errors[0].getMessage()
    assert "stays usable until it expires" in errors[0].getMessage()
    text = _full_text(caught.value)
    assert "revoking it failed (HTTP 500)" in text
    _assert_no_ticket(fake_clerk, text)


def test_issue_unparsable_response(
    bridge: BridgeDriver, any_repo: RepoDriver, fake_clerk: FakeClerk
) -> None:
    def drop_status(body: dict[str, Any]) -> dict[str, Any]:
        del body["status"]
        return body

    fake_clerk.mangle_next_create = drop_status

    with pytest.raises(ClerkRequestError) as caught:
        bridge.issue(USER, ACTOR)

    [token_id] = fake_clerk.tokens
    assert fake_clerk.tokens[token_id]["status"] == "revoked"
    assert _count_stored(any_repo) == 0
    assert caught.value.status_code == 200
    assert "status" in str(caught.value)
    _assert_no_ticket(fake_clerk, _full_text(caught.value))


# --- revoke ---


def test_revoke_records(bridge: BridgeDriver, any_repo: RepoDriver, fake_clerk: FakeClerk) -> None:
    issued = bridge.issue(USER, ACTOR)

    revoked = bridge.revoke(issued.id)

    at_clerk = fake_clerk.tokens[issued.id]
    assert revoked.expires_at == issued.expires_at
    assert revoked.status is TokenStatus.REVOKED
    assert revoked.updated_at == at_clerk["updated_at"]
    assert revoked.token is None
    assert revoked.url is None
    assert dict(revoked.actor) == ACTOR
    assert any_repo.get(issued.id) == revoked
    events = any_repo.execute(
        "SELECT from_status, to_status FROM actor_token_events WHERE token_id = :id ORDER BY id",
        {"id": issued.id},
    )
    assert [(event.from_status, event.to_status) for event in events] == [
        (None, "pending"),
        ("pending", "revoked"),
    ]


def test_revoke_not_pending(
    bridge: BridgeDriver, any_repo: RepoDriver, fake_clerk: FakeClerk
) -> None:
    issued = bridge.issue(USER, ACTOR)
    fake_clerk.set_status(issued.id, "accepted")

    with pytest.raises(InvalidTransitionError) as caught:
        bridge.revoke(issued.id)

    assert caught.value.token_id == issued.id
    assert caught.value.current_status == "accepted"
    assert caught.value.requested_status == "revoked"
    assert any_repo.get(issued.id) == issued


def test_revoke_not_pending_no_status(bridge: BridgeDriver, fake_clerk: FakeClerk) -> None:
    issued = bridge.issue(USER, ACTOR)
    fake_clerk.fail_next(
        "revoke",
        400,
        code="actor_token_cannot_be_revoked_code",
        message="cannot revoke",
        long_message="Only pending tokens can be revoked.",
    )

    with pytest.raises(InvalidTransitionError) as caught:
        bridge.revoke(issued.id)

    # Clerk's message named no status, so the error names the stored one.
    assert caught.value.current_status == "pending"


def test_revoke_unknown_at_clerk(bridge: BridgeDriver) -> None:
    with pytest.raises(ClerkRequestError) as caught:
        bridge.revoke("act_2unknownXXXXXXXXXXXXXXXXXX")

    assert caught.value.status_code == 404
    assert caught.value.codes == ("resource_not_found",)
    assert caught.value.token_id == "act_2unknownXXXXXXXXXXXXXXXXXX"


def test_revoke_not_stored(bridge: BridgeDriver, clerk: Clerk, fake_clerk: FakeClerk) -> None:
    created = clerk.actor_tokens.create(request={"user_id": USER, "actor": {"sub": "user_x"}})

    with pytest.raises(TokenNotFoundError) as caught:
        bridge.revoke(created.id)

    assert fake_clerk.tokens[created.id]["status"] == "revoked"
    assert "nothing was recorded" in _full_text(caught.value)


def test_revoke_stored_newer(
    bridge: BridgeDriver, any_repo: RepoDriver, fake_clerk: FakeClerk
) -> None:
    issued = bridge.issue(USER, ACTOR)
    # A pending snapshot dated after Clerk's revocation time keeps the upsert from applying.
    later = ActorToken.from_clerk(
        issued.to_clerk() | {"updated_at": issued.updated_at + 86_400_000}
    )
    assert any_repo.save(later) is SaveOutcome.UPDATED
    any_repo.commit()

    revoked = bridge.revoke(issued.id)

    assert revoked.status is TokenStatus.REVOKED
    assert revoked.updated_at == later.updated_at
    assert any_repo.get(issued.id) == revoked


def test_revoke_empty_id(bridge: BridgeDriver, fake_clerk: FakeClerk) -> None:
    with pytest.raises(InvalidArgumentError):
        bridge.revoke("")

    assert fake_clerk.requests == []


# --- saving SDK models through the repositories ---


def test_save_sdk_model(bridge: BridgeDriver, any_repo: RepoDriver, clerk: Clerk) -> None:
    created = clerk.actor_tokens.create(request={"user_id": USER, "actor": ACTOR})

    assert any_repo.save(created, actor=ACTOR) is SaveOutcome.INSERTED

    stored = any_repo.get(created.id)
    assert stored is not None
    assert dict(stored.actor) == ACTOR
    assert stored.token == created.token


def test_save_sdk_model_without_actor(
    bridge: BridgeDriver, any_repo: RepoDriver, clerk: Clerk
) -> None:
    created = clerk.actor_tokens.create(request={"user_id": USER, "actor": ACTOR})

    with pytest.raises(ActorClaimsMissingError) as caught:
        any_repo.save(created)

    assert caught.value.token_id == created.id
    assert "clerk-backend-api" in str(caught.value)
    assert _count_stored(any_repo) == 0


# --- interruptions ---


def test_issue_async_cancelled(
    repo_factory: RepoFactory,
    loop_thread: EventLoopThread,
    clean_engine: Engine,
    clerk: Clerk,
    fake_clerk: FakeClerk,
) -> None:
    """Cancelling the task while the INSERT waits for a lock still withdraws the ticket."""
    driver = repo_factory.open("async")

    def insert_is_waiting(blocker_pid: int) -> bool:
        # Only a session that the blocker holds up counts, because other test runs may
        # share the server.
        with clean_engine.connect() as watcher:
            waiting = watcher.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
                ),
                {"pid": blocker_pid},
            ).scalar_one()
        return bool(waiting)

    async def issue_then_cancel(blocker_pid: int) -> None:
        task = asyncio.create_task(bridge_module.issue_async(clerk, driver.repository, USER, ACTOR))
        for _ in range(500):
            if await asyncio.to_thread(insert_is_waiting, blocker_pid):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the INSERT never waited for the table lock")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with clean_engine.connect() as blocker, blocker.begin():
        blocker_pid = blocker.execute(text("SELECT pg_backend_pid()")).scalar_one()
        blocker.execute(text("LOCK TABLE actor_tokens IN ACCESS EXCLUSIVE MODE"))
        loop_thread.run(issue_then_cancel(blocker_pid))

    [token_id] = fake_clerk.tokens
    assert fake_clerk.tokens[token_id]["status"] == "revoked"
    assert [call.path for call in fake_clerk.calls("revoke")] == [
        f"/v1/actor_tokens/{token_id}/revoke"
    ]


def test_issue_interrupted(repo_factory: RepoFactory, clerk: Clerk, fake_clerk: FakeClerk) -> None:
    """Ctrl-C while the sync INSERT runs still withdraws the ticket, then propagates."""
    driver = repo_factory.open("sync")

    def interrupt(
        connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            raise KeyboardInterrupt

    event.listen(driver.engine, "before_cursor_execute", interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            bridge_module.issue(clerk, driver.repository, USER, ACTOR)
    finally:
        event.remove(driver.engine, "before_cursor_execute", interrupt)

    [token_id] = fake_clerk.tokens
    assert fake_clerk.tokens[token_id]["status"] == "revoked"
