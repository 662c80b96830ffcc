"""Ticket lookups, the cache, purging and key rotation behave alike in both repositories."""

from __future__ import annotations

from datetime import timedelta

import pytest

from actortoken_store.errors import TicketDecryptionError
from actortoken_store.model import TokenStatus
from actortoken_store.results import TicketState
from tests.drivers import RepoDriver, RepoFactory
from tests.integration.secrets_helpers import KEY_1, KEY_2, NOW_MS, encrypting, make_token

DAY_MS = 86_400_000


def test_get_by_ticket_both(any_repo: RepoDriver) -> None:
    token = make_token()
    any_repo.save_many([token, make_token("act_2")])
    assert token.token is not None

    found = any_repo.get_by_ticket(token.token)

    assert found is not None
    assert found.id == token.id
    assert found.token == token.token
    assert any_repo.get_by_ticket("eyJ.unknown.ticket") is None


def test_find_reusable_both(any_repo: RepoDriver) -> None:
    any_repo.save_many(
        [
            make_token("act_old", created_at=NOW_MS - 50_000),
            make_token("act_mid", created_at=NOW_MS - 40_000),
            make_token("act_new", created_at=NOW_MS - 30_000, exp_seconds=NOW_MS // 1000 + 240),
        ]
    )

    found = any_repo.find_reusable("user_1", "user_admin", timedelta(minutes=5), NOW_MS)

    assert found is not None
    assert found.id == "act_mid"
    assert any_repo.find_reusable("user_1", "user_admin", timedelta(hours=2), NOW_MS) is None


def test_save_expiry_both(any_repo: RepoDriver) -> None:
    token = make_token(exp_seconds=None)

    any_repo.save(token, expires_in_seconds=600)

    assert any_repo.get_one(token.id).expires_at == token.created_at + 600_000


def test_purge_both(any_repo: RepoDriver) -> None:
    old = NOW_MS - 100 * DAY_MS
    any_repo.save_many(
        [
            make_token("act_accepted", status=TokenStatus.ACCEPTED, created_at=old),
            make_token("act_expired", created_at=old, exp_seconds=old // 1000 + 60),
            make_token("act_valid", created_at=old),
            make_token("act_recent", status=TokenStatus.REVOKED),
        ]
    )

    assert any_repo.purge(timedelta(days=90), now=NOW_MS, dry_run=True) == 2
    assert any_repo.purge(timedelta(days=90), now=NOW_MS, batch_size=1) == 2
    assert any_repo.get("act_accepted") is None
    assert any_repo.get("act_valid") is not None


def test_transition_drops_both(any_repo: RepoDriver, repo_factory: RepoFactory) -> None:
    repo = repo_factory.open(any_repo.kind, secrets=encrypting())
    token = make_token()
    repo.save(token)

    revoked = repo.revoke(token.id, NOW_MS)

    assert revoked.has_ticket is False
    assert token.token is not None
    found = repo.get_by_ticket(token.token)
    assert found is not None
    assert found.status is TokenStatus.REVOKED


def test_rotate_keys_both(any_repo: RepoDriver, repo_factory: RepoFactory) -> None:
    tokens = [make_token(f"act_{number}") for number in range(3)]
    writer = repo_factory.open(any_repo.kind, secrets=encrypting(KEY_1))
    writer.save_many(tokens)
    writer.commit()

    rotating = repo_factory.open(any_repo.kind, secrets=encrypting(KEY_2, KEY_1))
    rotation = rotating.rotate_keys(batch_size=2)
    rotating.commit()

    assert rotation.rotated == 3
    assert rotation.finished
    reader = repo_factory.open(any_repo.kind, secrets=encrypting(KEY_2))
    for token in tokens:
        assert reader.get_one(token.id).token == token.token


def test_list_without_reveal_both(any_repo: RepoDriver, repo_factory: RepoFactory) -> None:
    writer = repo_factory.open(any_repo.kind, secrets=encrypting(KEY_1))
    writer.save_many([make_token("act_1"), make_token("act_2", ticket=False)])
    writer.commit()
    reader = repo_factory.open(any_repo.kind, secrets=encrypting(KEY_2))

    with pytest.raises(TicketDecryptionError):
        reader.list_for_user("user_1")
    page = reader.list_for_user("user_1", reveal=False)

    assert [token.token for token in page.items] == [None, None]
    assert page.ticket_states == {
        "act_1": TicketState.UNAVAILABLE,
        "act_2": TicketState.NONE,
    }
    assert reader.get_one("act_1", reveal=False).token is None
    with pytest.raises(TicketDecryptionError):
        reader.get_one("act_1")
