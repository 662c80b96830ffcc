"""Integration tests of how tickets are stored: encrypt, digest and plaintext modes,
dropping terminal tickets, and decryption failures."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from actortoken_store.errors import TicketDecryptionError
from actortoken_store.model import TokenStatus
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.secrets import Keyring, SecretsMode, SecretsPolicy
from tests.integration.secrets_helpers import (
    KEY_1,
    KEY_2,
    NOW_MS,
    encrypting,
    make_token,
    raw_row,
)


def test_encrypt_stores_no_plaintext(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    token = make_token()
    repo.save(token)
    row = raw_row(session, token.id)
    assert row["token"] is None
    assert row["url"] is None
    assert row["ticket_key_id"] == "key-1"
    assert token.token is not None
    assert row["ticket_digest"] == hashlib.sha256(token.token.encode()).digest()
    assert token.token.encode() not in bytes(row["ticket_ciphertext"])


def test_encrypt_reads_back(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    token = make_token()
    repo.save(token)
    stored = repo.get_one(token.id)
    assert stored == token
    assert stored.token == token.token
    assert stored.url == token.url


def test_digest_mode_drops_ticket(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=SecretsPolicy(SecretsMode.DIGEST))
    token = make_token()
    repo.save(token)
    row = raw_row(session, token.id)
    assert (row["token"], row["url"], row["ticket_ciphertext"]) == (None, None, None)
    assert row["ticket_digest"] is not None
    stored = repo.get_one(token.id)
    assert stored.token is None
    assert stored.url is None
    assert stored.has_ticket is False


def test_plaintext_mode_keeps_ticket(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=SecretsPolicy(SecretsMode.PLAINTEXT))
    token = make_token()
    repo.save(token)
    row = raw_row(session, token.id)
    assert row["token"] == token.token
    assert row["ticket_digest"] is not None
    assert repo.get_one(token.id).token == token.token


def test_upsert_terminal_drops_ticket(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    pending = make_token()
    repo.save(pending)
    accepted = make_token(status=TokenStatus.ACCEPTED, updated_at=NOW_MS)
    repo.save(accepted)
    row = raw_row(session, pending.id)
    assert row["status"] == "accepted"
    assert (row["ticket_ciphertext"], row["ticket_key_id"]) == (None, None)
    assert row["ticket_digest"] is not None
    assert repo.get_one(pending.id).has_ticket is False


def test_upsert_terminal_without_ticket_clears(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    pending = make_token()
    repo.save(pending)
    digest = raw_row(session, pending.id)["ticket_digest"]
    repo.save(make_token(status=TokenStatus.REVOKED, updated_at=NOW_MS, ticket=False))
    row = raw_row(session, pending.id)
    assert row["ticket_ciphertext"] is None
    assert row["ticket_digest"] == digest
    assert row["expires_at"] is not None


def test_upsert_plaintext_terminal_drops(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=SecretsPolicy(SecretsMode.PLAINTEXT))
    repo.save(make_token())
    repo.save(make_token(status=TokenStatus.ACCEPTED, updated_at=NOW_MS, ticket=False))
    row = raw_row(session, "act_1")
    assert (row["token"], row["url"]) == (None, None)


def test_upsert_terminal_kept_on_request(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting(keep=True))
    repo.save(make_token())
    accepted = make_token(status=TokenStatus.ACCEPTED, updated_at=NOW_MS)
    repo.save(accepted)
    stored = repo.get_one(accepted.id)
    assert stored.status is TokenStatus.ACCEPTED
    assert stored.token == accepted.token


def test_upsert_kept_terminal_replaced(session: Session) -> None:
    # A newer snapshot replaces the ticket, even with none, as it replaces other fields.
    repo = ActorTokenRepository(session, secrets=encrypting(keep=True))
    repo.save(make_token())
    repo.save(make_token(status=TokenStatus.ACCEPTED, updated_at=NOW_MS, ticket=False))
    row = raw_row(session, "act_1")
    assert row["ticket_ciphertext"] is None
    assert row["ticket_digest"] is not None


def test_upsert_stale_snapshot_keeps_secret(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    newer = make_token(updated_at=NOW_MS)
    repo.save(newer)
    repo.save(make_token(ticket=False))
    assert repo.get_one(newer.id).token == newer.token


@pytest.mark.parametrize("method", ["accept", "revoke"])
def test_transition_drops_ticket(session: Session, method: str) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    pending = make_token()
    repo.save(pending)
    digest = raw_row(session, pending.id)["ticket_digest"]
    moved = getattr(repo, method)(pending.id, at=NOW_MS)
    assert moved.has_ticket is False
    row = raw_row(session, pending.id)
    assert (row["ticket_ciphertext"], row["ticket_key_id"]) == (None, None)
    assert row["ticket_digest"] == digest


def test_transition_plaintext_drops(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=SecretsPolicy(SecretsMode.PLAINTEXT))
    repo.save(make_token())
    repo.accept("act_1", at=NOW_MS)
    row = raw_row(session, "act_1")
    assert (row["token"], row["url"]) == (None, None)


def test_transition_kept_on_request(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting(keep=True))
    pending = make_token()
    repo.save(pending)
    assert repo.revoke(pending.id, at=NOW_MS).token == pending.token


def test_copied_ciphertext_fails(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    repo.save(make_token("act_a"))
    repo.save(make_token("act_b"))
    session.execute(
        text(
            "UPDATE actor_tokens SET ticket_ciphertext = source.ticket_ciphertext "
            "FROM actor_tokens AS source WHERE source.id = 'act_a' AND actor_tokens.id = 'act_b'"
        )
    )
    with pytest.raises(TicketDecryptionError) as caught:
        repo.get("act_b")
    assert caught.value.token_id == "act_b"
    assert caught.value.key_id == "key-1"
    assert "act_b" in str(caught.value)
    assert repo.get_one("act_a").has_ticket


def test_list_page_with_bad_row_fails(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    repo.save_many([make_token("act_a"), make_token("act_b")])
    session.execute(text("UPDATE actor_tokens SET ticket_key_id = 'key-9' WHERE id = 'act_b'"))
    with pytest.raises(TicketDecryptionError) as caught:
        repo.list_for_user("user_1")
    assert caught.value.token_id == "act_b"
    assert caught.value.key_id == "key-9"
    assert repo.get_one("act_a").has_ticket


def test_missing_key_fails(session: Session) -> None:
    ActorTokenRepository(session, secrets=encrypting(KEY_1)).save(make_token())
    reader = ActorTokenRepository(session, secrets=encrypting(KEY_2))
    with pytest.raises(TicketDecryptionError, match="no key with this id") as caught:
        reader.get_one("act_1")
    assert caught.value.key_id == "key-1"


def test_wrong_key_fails(session: Session) -> None:
    ActorTokenRepository(session, secrets=encrypting(KEY_1)).save(make_token())
    impostor = ("key-1", KEY_2[1])
    reader = ActorTokenRepository(session, secrets=encrypting(impostor))
    with pytest.raises(TicketDecryptionError, match="does not authenticate"):
        reader.get_one("act_1")


def test_undecryptable_row_spares_others(session: Session) -> None:
    ActorTokenRepository(session, secrets=encrypting(KEY_1)).save(make_token("act_old"))
    repo = ActorTokenRepository(session, secrets=encrypting(KEY_2))
    repo.save(make_token("act_new"))
    assert repo.get_one("act_new").has_ticket
    with pytest.raises(TicketDecryptionError):
        repo.get_one("act_old")


def test_digest_mode_reads_encrypted_rows(session: Session) -> None:
    # Keys decrypt in every mode, so switching modes never hides rows written earlier.
    token = make_token()
    ActorTokenRepository(session, secrets=encrypting()).save(token)
    reader = ActorTokenRepository(
        session, secrets=SecretsPolicy(SecretsMode.DIGEST, Keyring([KEY_1]))
    )
    assert reader.get_one(token.id).token == token.token


def test_repository_repr_hides_keys(session: Session) -> None:
    repo = ActorTokenRepository(session, secrets=encrypting())
    assert KEY_1[1].hex() not in repr(repo)
    assert "key-1" in repr(repo)


def test_default_policy_from_environment(session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTORTOKEN_STORE_KEYS", "env-key:" + "A" * 43)
    repo = ActorTokenRepository(session)
    assert repo.secrets.mode is SecretsMode.ENCRYPT
    assert repo.secrets.keyring.key_ids == ("env-key",)
