"""Integration tests of expiry, get_by_ticket, find_reusable, purge and key rotation."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from actortoken_store.errors import (
    ConfigurationError,
    InvalidArgumentError,
    TicketDecryptionError,
)
from actortoken_store.model import TokenStatus
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.secrets import SecretsMode, SecretsPolicy
from tests.integration.secrets_helpers import (
    KEY_1,
    KEY_2,
    NOW_MS,
    encrypting,
    make_token,
    raw_row,
)

NOW_S = NOW_MS // 1000
DAY_MS = 86_400_000


def test_expiry_from_ticket(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    repo.save(make_token(exp_seconds=NOW_S + 900))
    assert repo.get_one("act_1").expires_at == (NOW_S + 900) * 1000
    assert raw_row(session, "act_1")["expires_at"] == datetime.fromtimestamp(NOW_S + 900, UTC)


def test_expiry_explicit_wins(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    at = datetime(2025, 12, 3, tzinfo=UTC)
    repo.save(make_token(), expires_at=at)
    assert repo.get_one("act_1").expires_at_utc == at


def test_expiry_in_seconds(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    token = make_token(exp_seconds=None)
    repo.save(token, expires_in_seconds=600)
    assert repo.get_one("act_1").expires_at == token.created_at + 600_000


def test_expiry_both_rejected(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    with pytest.raises(InvalidArgumentError, match="not both"):
        repo.save(make_token(), expires_at=NOW_MS, expires_in_seconds=60)
    assert repo.get("act_1") is None


def test_expiry_malformed_ticket(session: Session, caplog: pytest.LogCaptureFixture) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    token = make_token()
    opaque = type(token)(**{**token.to_clerk(), "token": "not-a-jwt", "url": None})
    with caplog.at_level(logging.DEBUG, logger="actortoken_store.expiry"):
        repo.save(opaque)
    assert repo.get_one("act_1").expires_at is None
    assert any("act_1" in record.getMessage() for record in caplog.records)
    assert all("not-a-jwt" not in record.getMessage() for record in caplog.records)


def test_expiry_kept_by_later_snapshot(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    repo.save(make_token(exp_seconds=NOW_S + 900))
    repo.save(make_token(updated_at=NOW_MS, ticket=False))
    assert repo.get_one("act_1").expires_at == (NOW_S + 900) * 1000


@pytest.mark.parametrize("mode", list(SecretsMode))
def test_get_by_ticket_every_mode(session: Session, mode: SecretsMode) -> None:
    repo = ActorTokenRepository(session, secrets=SecretsPolicy(mode, encrypting().keyring))
    token = make_token()
    repo.save(token)
    repo.save(make_token("act_2"))
    assert token.token is not None
    found = repo.get_by_ticket(token.token)
    assert found is not None
    assert found.id == "act_1"


def test_get_by_ticket_unknown(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    repo.save(make_token())
    assert repo.get_by_ticket("eyJ.unknown.ticket") is None


def test_get_by_ticket_after_drop(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    token = make_token()
    repo.save(token)
    repo.accept(token.id, at=NOW_MS)
    assert token.token is not None
    found = repo.get_by_ticket(token.token)
    assert found is not None
    assert found.status is TokenStatus.ACCEPTED
    assert found.has_ticket is False


@pytest.mark.parametrize("ticket", ["", None, 5])
def test_get_by_ticket_rejects(session: Session, ticket: object) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    with pytest.raises(InvalidArgumentError, match="ticket must"):
        repo.get_by_ticket(ticket)  # type: ignore[arg-type]


def test_find_reusable_newest_valid(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    repo.save_many(
        [
            make_token("act_old", created_at=NOW_MS - 50_000, exp_seconds=NOW_S + 3600),
            make_token("act_mid", created_at=NOW_MS - 40_000, exp_seconds=NOW_S + 3600),
            # Newest, but expires in four minutes.
            make_token("act_new", created_at=NOW_MS - 30_000, exp_seconds=NOW_S + 240),
            make_token("act_other_actor", created_at=NOW_MS - 10_000, actor_sub="user_x"),
            make_token("act_other_user", created_at=NOW_MS - 10_000, user_id="user_2"),
            make_token(
                "act_accepted",
                created_at=NOW_MS - 5_000,
                status=TokenStatus.ACCEPTED,
            ),
        ]
    )
    found = repo.find_reusable("user_1", "user_admin", now=NOW_MS)
    assert found is not None
    assert found.id == "act_mid"
    assert found.token is not None


def test_find_reusable_min_remaining(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    repo.save(make_token(exp_seconds=NOW_S + 240))
    now = datetime.fromtimestamp(NOW_S, UTC)
    assert repo.find_reusable("user_1", "user_admin", now=now) is None
    found = repo.find_reusable("user_1", "user_admin", timedelta(minutes=4), now)
    assert found is not None


def test_find_reusable_unknown_expiry(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    repo.save(make_token(exp_seconds=None))
    assert repo.find_reusable("user_1", "user_admin", now=NOW_MS) is None


def test_find_reusable_needs_secret(session: Session) -> None:
    ActorTokenRepository(session, secrets=SecretsPolicy(SecretsMode.DIGEST)).save(make_token())
    repo = ActorTokenRepository(session, secrets=encrypting())
    assert repo.find_reusable("user_1", "user_admin", now=NOW_MS) is None


def test_find_reusable_skips_unknown_key(session: Session) -> None:
    ActorTokenRepository(session, secrets=encrypting(KEY_2)).save(
        make_token("act_new", created_at=NOW_MS - 1_000)
    )
    repo = ActorTokenRepository(session, secrets=encrypting(KEY_1))
    repo.save(make_token("act_old", created_at=NOW_MS - 9_000))
    found = repo.find_reusable("user_1", "user_admin", now=NOW_MS)
    assert found is not None
    assert found.id == "act_old"


def test_find_reusable_wrong_key_raises(session: Session) -> None:
    ActorTokenRepository(session, secrets=encrypting(KEY_1)).save(make_token())
    repo = ActorTokenRepository(session, secrets=encrypting(("key-1", KEY_2[1])))
    with pytest.raises(TicketDecryptionError):
        repo.find_reusable("user_1", "user_admin", now=NOW_MS)


def test_find_reusable_rejects_negative(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    with pytest.raises(InvalidArgumentError, match="min_remaining"):
        repo.find_reusable("user_1", "user_admin", timedelta(seconds=-1))


def test_find_reusable_uses_index(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    # Enough users, actors and statuses that the statistics favour the pair index, whatever
    # earlier tests left in pg_statistic. With one row the planner sometimes chose another.
    repo.save_many(
        make_token(
            f"act_plan_{number}",
            user_id=f"user_{number % 40}",
            actor_sub=f"user_admin_{number % 7}",
            status=TokenStatus.PENDING if number % 3 else TokenStatus.ACCEPTED,
            created_at=NOW_MS - 60_000 - number,
        )
        for number in range(2000)
    )
    session.execute(text("ANALYZE actor_tokens"))
    session.execute(text("SET LOCAL enable_seqscan = off"))
    from actortoken_store.ticket_statements import select_reusable

    statement = select_reusable(
        "user_1",
        "user_admin",
        created_by=datetime.fromtimestamp(NOW_S, UTC),
        valid_until=datetime.fromtimestamp(NOW_S, UTC),
        key_ids=["key-1"],
    )
    compiled = statement.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
    plan = "\n".join(session.execute(text(f"EXPLAIN {compiled}")).scalars())
    assert "ix_actor_tokens_pending_user_id_actor_sub" in plan


def test_get_by_ticket_uses_index(session: Session) -> None:
    session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        session.execute(
            text(
                "EXPLAIN SELECT * FROM actor_tokens WHERE ticket_digest = "
                "sha256('x'::bytea) ORDER BY created_at DESC, id DESC LIMIT 1"
            )
        ).scalars()
    )
    assert "ix_actor_tokens_ticket_digest" in plan


def purge_fixture(repo: ActorTokenRepository) -> None:
    old = NOW_MS - 100 * DAY_MS
    repo.save_many(
        [
            make_token("act_old_accepted", status=TokenStatus.ACCEPTED, created_at=old),
            make_token("act_old_revoked", status=TokenStatus.REVOKED, created_at=old),
            make_token("act_old_expired", created_at=old, exp_seconds=old // 1000 + 3600),
            make_token("act_old_valid", created_at=old, exp_seconds=NOW_S + 3600),
            make_token("act_old_no_expiry", created_at=old, exp_seconds=None),
            make_token("act_recent_accepted", status=TokenStatus.ACCEPTED),
        ]
    )


def test_purge_deletes_old_terminal(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    purge_fixture(repo)
    assert repo.purge(timedelta(days=90), now=NOW_MS) == 3
    remaining = set(session.execute(text("SELECT id FROM actor_tokens")).scalars())
    assert remaining == {"act_old_valid", "act_old_no_expiry", "act_recent_accepted"}


def test_purge_dry_run(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    purge_fixture(repo)
    assert repo.purge(timedelta(days=90), now=NOW_MS, dry_run=True) == 3
    assert session.execute(text("SELECT count(*) FROM actor_tokens")).scalar_one() == 6


def test_purge_in_batches(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    purge_fixture(repo)
    assert repo.purge(timedelta(days=90), now=NOW_MS, batch_size=2, max_batches=1) == 2
    assert repo.purge(timedelta(days=90), now=NOW_MS, batch_size=2) == 1
    assert repo.purge(timedelta(days=90), now=NOW_MS, batch_size=2) == 0


def test_purge_cutoff_datetime(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    purge_fixture(repo)
    cutoff = datetime.fromtimestamp(NOW_S, UTC) + timedelta(days=1)
    assert repo.purge(cutoff, now=NOW_MS) == 4


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"older_than": timedelta(days=-1)}, "more than zero"),
        ({"older_than": datetime(2025, 1, 1)}, "naive"),
        ({"older_than": timedelta(days=1), "batch_size": 0}, "batch_size"),
        ({"older_than": timedelta(days=1), "max_batches": 0}, "max_batches"),
    ],
)
def test_purge_rejects(session: Session, arguments: dict[str, object], expected: str) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    with pytest.raises(InvalidArgumentError, match=expected):
        repo.purge(**arguments)  # type: ignore[arg-type]


def test_purge_keeps_audit_events(session: Session) -> None:
    has_events = session.execute(text("SELECT to_regclass('actor_token_events')")).scalar()
    if has_events is None:
        pytest.skip("this schema has no actor_token_events table")
    repo = ActorTokenRepository(session, secrets=encrypting())
    purge_fixture(repo)
    query = text("SELECT count(*) FROM actor_token_events WHERE token_id = 'act_old_accepted'")
    before = session.execute(query).scalar_one()
    assert before > 0
    repo.purge(timedelta(days=90), now=NOW_MS)
    assert session.execute(query).scalar_one() == before


def test_rotate_reencrypts(session: Session) -> None:
    old = ActorTokenRepository(session, secrets=encrypting(KEY_1, keep=True))
    tokens = [make_token(f"act_{number}") for number in range(5)]
    tokens.append(make_token("act_done", status=TokenStatus.ACCEPTED))
    old.save_many(tokens)

    rotating = ActorTokenRepository(session, secrets=encrypting(KEY_2, KEY_1, keep=True))
    rotation = rotating.rotate_keys(batch_size=2)
    assert rotation.rotated == 6
    assert rotation.key_id == "key-2"
    assert rotation.finished
    assert rotation.unreachable == {}

    new_only = ActorTokenRepository(session, secrets=encrypting(KEY_2))
    for token in tokens:
        assert new_only.get_one(token.id).token == token.token
    assert rotating.rotate_keys().rotated == 0


def test_rotate_drops_terminal(session: Session) -> None:
    ActorTokenRepository(session, secrets=encrypting(KEY_1, keep=True)).save(
        make_token(status=TokenStatus.ACCEPTED)
    )
    rotation = ActorTokenRepository(session, secrets=encrypting(KEY_2, KEY_1)).rotate_keys()
    assert rotation.rotated == 1
    row = raw_row(session, "act_1")
    assert row["ticket_ciphertext"] is None
    assert row["ticket_digest"] is not None


def test_rotate_max_batches(session: Session) -> None:
    ActorTokenRepository(session, secrets=encrypting(KEY_1)).save_many(
        [make_token(f"act_{number}") for number in range(5)]
    )
    repo = ActorTokenRepository(session, secrets=encrypting(KEY_2, KEY_1))
    first = repo.rotate_keys(batch_size=2, max_batches=1)
    assert (first.rotated, first.finished) == (2, False)
    rest = repo.rotate_keys(batch_size=2)
    assert (rest.rotated, rest.finished) == (3, True)


def test_rotate_encrypts_plaintext(session: Session) -> None:
    token = make_token()
    ActorTokenRepository(session, secrets=SecretsPolicy(SecretsMode.PLAINTEXT)).save(token)
    repo = ActorTokenRepository(session, secrets=encrypting())
    assert repo.rotate_keys().rotated == 1
    row = raw_row(session, token.id)
    assert (row["token"], row["url"], row["ticket_key_id"]) == (None, None, "key-1")
    assert repo.get_one(token.id).token == token.token


def test_rotate_reports_unknown_keys(session: Session) -> None:
    ActorTokenRepository(session, secrets=encrypting(("lost", KEY_1[1]))).save_many(
        [make_token("act_a"), make_token("act_b")]
    )
    rotation = ActorTokenRepository(session, secrets=encrypting(KEY_2)).rotate_keys()
    assert rotation.rotated == 0
    assert rotation.unreachable == {"lost": 2}


def test_rotate_needs_keys(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=SecretsPolicy(SecretsMode.DIGEST))
    with pytest.raises(ConfigurationError, match="needs at least one key"):
        repo.rotate_keys()


def test_rotate_wrong_key_raises(session: Session) -> None:
    ActorTokenRepository(session, secrets=encrypting(KEY_1)).save(make_token())
    impostor = ("key-1", KEY_2[1])
    repo = ActorTokenRepository(session, secrets=encrypting(KEY_2, impostor))
    with pytest.raises(TicketDecryptionError):
        repo.rotate_keys()
