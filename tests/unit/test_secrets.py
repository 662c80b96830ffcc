"""Unit tests of actortoken_store.secrets: keys, encryption, digests and the policy."""

from __future__ import annotations

import base64
import logging

import pytest

from actortoken_store import secrets as secrets_module
from actortoken_store.errors import ConfigurationError, TicketDecryptionError
from actortoken_store.model import TokenStatus
from actortoken_store.secrets import (
    ENV_KEEP_TERMINAL_TICKETS,
    ENV_KEYS,
    ENV_SECRETS_MODE,
    Keyring,
    SecretsMode,
    SecretsPolicy,
    format_key,
    generate_key,
    ticket_digest,
)

KEY_A = bytes(range(32))
KEY_B = bytes(range(32, 64))
TICKET = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3NjQ2MzQ1MDB9.c2lnbmF0dXJl"
URL = f"https://example.accounts.dev/v1/tickets/accept?ticket={TICKET}"


def b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def test_keyring_parse_orders_keys() -> None:
    keyring = Keyring.parse(f" new:{b64(KEY_B)} , old:{b64(KEY_A)},")
    assert keyring.key_ids == ("new", "old")
    assert keyring.primary_key_id == "new"
    assert "old" in keyring
    assert len(keyring) == 2


def test_keyring_parse_standard_alphabet() -> None:
    key = bytes([0xFB, 0xFF] * 16)
    standard = base64.b64encode(key).decode()
    assert "+" in standard or "/" in standard
    keyring = Keyring.parse(f"k:{standard}")
    key_id, ciphertext = keyring.encrypt("act_1", b"x")
    assert Keyring([("k", key)]).decrypt("act_1", key_id, ciphertext) == b"x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("justakey", "expected KEY_ID:BASE64_KEY"),
        (f":{b64(KEY_A)}", "expected KEY_ID:BASE64_KEY"),
        ("k1:", "expected KEY_ID:BASE64_KEY"),
        (f"bad id:{b64(KEY_A)}", "invalid key id"),
        (f"-k:{b64(KEY_A)}", "invalid key id"),
        ("k1:not*base64!", "not valid base64"),
        (f"k1:{b64(KEY_A[:16])}", "16 bytes long"),
        (f"k1:{b64(KEY_A)},k1:{b64(KEY_B)}", "configured twice"),
    ],
)
def test_keyring_parse_rejects(text: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected) as caught:
        Keyring.parse(text)
    assert b64(KEY_A) not in str(caught.value)
    assert b64(KEY_B) not in str(caught.value)


def test_keyring_repr_hides_keys() -> None:
    keyring = Keyring([("k1", KEY_A)])
    assert repr(keyring) == "Keyring(key_ids=('k1',))"
    assert b64(KEY_A) not in str(keyring)


def test_generated_key_parses() -> None:
    line = format_key("k-2026", generate_key())
    keyring = Keyring.parse(line)
    assert keyring.key_ids == ("k-2026",)


def test_encrypt_round_trip() -> None:
    keyring = Keyring([("k1", KEY_A)])
    key_id, ciphertext = keyring.encrypt("act_1", b"secret")
    assert key_id == "k1"
    assert b"secret" not in ciphertext
    assert keyring.decrypt("act_1", "k1", ciphertext) == b"secret"


def test_encrypt_uses_fresh_nonces() -> None:
    keyring = Keyring([("k1", KEY_A)])
    assert keyring.encrypt("act_1", b"s")[1] != keyring.encrypt("act_1", b"s")[1]


def test_decrypt_other_token_fails() -> None:
    keyring = Keyring([("k1", KEY_A)])
    _, ciphertext = keyring.encrypt("act_1", b"secret")
    with pytest.raises(TicketDecryptionError, match="does not authenticate") as caught:
        keyring.decrypt("act_2", "k1", ciphertext)
    assert caught.value.token_id == "act_2"
    assert caught.value.key_id == "k1"
    assert "act_2" in str(caught.value)
    assert "'k1'" in str(caught.value)


def test_decrypt_other_key_id_fails() -> None:
    # Both ids hold the same key: the key id is bound too, not just the key bytes.
    keyring = Keyring([("k1", KEY_A), ("k2", KEY_A)])
    _, ciphertext = keyring.encrypt("act_1", b"secret")
    with pytest.raises(TicketDecryptionError):
        keyring.decrypt("act_1", "k2", ciphertext)


def test_decrypt_wrong_key_fails() -> None:
    _, ciphertext = Keyring([("k1", KEY_A)]).encrypt("act_1", b"secret")
    with pytest.raises(TicketDecryptionError, match="does not authenticate"):
        Keyring([("k1", KEY_B)]).decrypt("act_1", "k1", ciphertext)


def test_decrypt_missing_key_fails() -> None:
    _, ciphertext = Keyring([("k1", KEY_A)]).encrypt("act_1", b"secret")
    with pytest.raises(TicketDecryptionError, match="no key with this id") as caught:
        Keyring([("k2", KEY_B)]).decrypt("act_1", "k1", ciphertext)
    assert caught.value.key_id == "k1"


@pytest.mark.parametrize(
    ("mangle", "expected"),
    [
        (lambda data: data[:20], "truncated"),
        (lambda data: b"\x09" + data[1:], "format version 9"),
        (lambda data: data[:-1] + bytes([data[-1] ^ 1]), "does not authenticate"),
    ],
)
def test_decrypt_damaged_fails(mangle: object, expected: str) -> None:
    keyring = Keyring([("k1", KEY_A)])
    _, ciphertext = keyring.encrypt("act_1", b"secret")
    with pytest.raises(TicketDecryptionError, match=expected):
        keyring.decrypt("act_1", "k1", mangle(ciphertext))  # type: ignore[operator]


def test_digest_is_sha256() -> None:
    import hashlib

    assert ticket_digest(TICKET) == hashlib.sha256(TICKET.encode()).digest()
    assert len(ticket_digest(TICKET)) == 32


def test_policy_default_with_keys_encrypts() -> None:
    policy = SecretsPolicy(keys=Keyring([("k1", KEY_A)]))
    assert policy.mode is SecretsMode.ENCRYPT


def test_policy_default_without_keys_warns_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(secrets_module, "_digest_default_warned", False)
    with caplog.at_level(logging.WARNING, logger="actortoken_store.secrets"):
        first = SecretsPolicy()
        SecretsPolicy.from_environment({})
        # Building a policy drops nothing, so it stays quiet (an empty upgrade, say).
        assert caplog.records == []
        first.seal("act_1", TokenStatus.PENDING, TICKET, URL)
        first.seal("act_2", TokenStatus.PENDING, TICKET, URL)
        SecretsPolicy().seal("act_3", TokenStatus.PENDING, TICKET, URL)
    assert first.mode is SecretsMode.DIGEST
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert ENV_KEYS in warnings[0].getMessage()
    assert TICKET not in warnings[0].getMessage()


def test_policy_explicit_digest_does_not_warn(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(secrets_module, "_digest_default_warned", False)
    with caplog.at_level(logging.WARNING, logger="actortoken_store.secrets"):
        SecretsPolicy(SecretsMode.DIGEST).seal("act_1", TokenStatus.PENDING, TICKET, URL)
    assert caplog.records == []


def test_policy_encrypt_needs_keys() -> None:
    with pytest.raises(ConfigurationError, match="needs at least one key"):
        SecretsPolicy("encrypt")


def test_policy_rejects_unknown_mode() -> None:
    with pytest.raises(ConfigurationError, match="invalid secrets mode 'rot13'"):
        SecretsPolicy("rot13", Keyring([("k1", KEY_A)]))


def test_policy_from_environment() -> None:
    policy = SecretsPolicy.from_environment(
        {
            ENV_KEYS: f"k2:{b64(KEY_B)},k1:{b64(KEY_A)}",
            ENV_SECRETS_MODE: "Plaintext",
            ENV_KEEP_TERMINAL_TICKETS: "yes",
        }
    )
    assert policy.mode is SecretsMode.PLAINTEXT
    assert policy.keyring.key_ids == ("k2", "k1")
    assert policy.keep_terminal_tickets is True


def test_policy_from_environment_bad_flag() -> None:
    with pytest.raises(ConfigurationError, match=ENV_KEEP_TERMINAL_TICKETS):
        SecretsPolicy.from_environment(
            {ENV_KEYS: f"k1:{b64(KEY_A)}", ENV_KEEP_TERMINAL_TICKETS: "maybe"}
        )


def test_policy_keys_as_text() -> None:
    policy = SecretsPolicy(keys=f"k1:{b64(KEY_A)}")
    assert policy.keyring.key_ids == ("k1",)


def test_policy_repr_hides_secrets() -> None:
    policy = SecretsPolicy(keys=Keyring([("k1", KEY_A)]))
    sealed = policy.seal("act_1", TokenStatus.PENDING, TICKET, URL)
    for text in (repr(policy), str(policy), repr(sealed)):
        assert b64(KEY_A) not in text
        assert TICKET not in text
    assert "k1" in repr(policy)


def test_seal_encrypt_round_trip() -> None:
    policy = SecretsPolicy(keys=Keyring([("k1", KEY_A)]))
    sealed = policy.seal("act_1", TokenStatus.PENDING, TICKET, URL)
    assert sealed.token is None
    assert sealed.url is None
    assert sealed.key_id == "k1"
    assert sealed.digest == ticket_digest(TICKET)
    assert sealed.ciphertext is not None
    assert policy.open("act_1", "k1", sealed.ciphertext) == (TICKET, URL)


def test_seal_digest_keeps_digest_only() -> None:
    sealed = SecretsPolicy(SecretsMode.DIGEST).seal("act_1", TokenStatus.PENDING, TICKET, URL)
    assert sealed.digest == ticket_digest(TICKET)
    assert (sealed.token, sealed.url, sealed.ciphertext, sealed.key_id) == (None,) * 4


def test_seal_plaintext_keeps_ticket() -> None:
    sealed = SecretsPolicy(SecretsMode.PLAINTEXT).seal("act_1", TokenStatus.PENDING, TICKET, URL)
    assert (sealed.token, sealed.url) == (TICKET, URL)
    assert sealed.ciphertext is None


@pytest.mark.parametrize("status", [TokenStatus.ACCEPTED, TokenStatus.REVOKED])
@pytest.mark.parametrize("mode", [SecretsMode.ENCRYPT, SecretsMode.PLAINTEXT])
def test_seal_terminal_drops_ticket(status: TokenStatus, mode: SecretsMode) -> None:
    sealed = SecretsPolicy(mode, Keyring([("k1", KEY_A)])).seal("act_1", status, TICKET, URL)
    assert sealed.digest == ticket_digest(TICKET)
    assert (sealed.token, sealed.url, sealed.ciphertext, sealed.key_id) == (None,) * 4


def test_seal_terminal_kept_on_request() -> None:
    policy = SecretsPolicy(keys=Keyring([("k1", KEY_A)]), keep_terminal_tickets=True)
    sealed = policy.seal("act_1", TokenStatus.ACCEPTED, TICKET, URL)
    assert sealed.ciphertext is not None


def test_seal_without_ticket() -> None:
    sealed = SecretsPolicy(keys=Keyring([("k1", KEY_A)])).seal(
        "act_1", TokenStatus.PENDING, None, None
    )
    assert (sealed.digest, sealed.ciphertext) == (None, None)


def test_open_rejects_foreign_payload() -> None:
    keyring = Keyring([("k1", KEY_A)])
    _, ciphertext = keyring.encrypt("act_1", b"[1, 2]")
    with pytest.raises(TicketDecryptionError, match="not a ticket record"):
        SecretsPolicy(keys=keyring).open("act_1", "k1", ciphertext)
