"""Secrets policy: tickets stored encrypted, as a digest only, or in plaintext.

A ticket (``token``) and its sign-in URL (``url``) let their holder sign in as another user,
so the store treats both as secrets. `SecretsPolicy` decides what a row holds:

- ``encrypt``: the ticket and URL are encrypted together with AES-256-GCM. The associated
  data binds the ciphertext to its token id and key id, so a ciphertext copied onto another
  row fails to decrypt. The default whenever keys are configured.
- ``digest``: only the SHA-256 digest of the ticket is kept. The default without keys.
- ``plaintext``: the ticket and URL are stored as given. For development only.

Every mode stores the digest, so `get_by_ticket` works in all of them. When a token becomes
accepted or revoked its ticket can never be used again, so its secret is dropped unless the
policy keeps terminal tickets.

Keys come from the ``ACTORTOKEN_STORE_KEYS`` environment variable or from the constructor,
as ``KEY_ID:BASE64_KEY`` entries separated by commas (see `Keyring.parse`). The first key
encrypts; every key decrypts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from actortoken_store.errors import ConfigurationError, TicketDecryptionError
from actortoken_store.model import TokenStatus

__all__ = [
    "ENV_KEEP_TERMINAL_TICKETS",
    "ENV_KEYS",
    "ENV_SECRETS_MODE",
    "KEY_BYTES",
    "Keyring",
    "SealedTicket",
    "SecretsMode",
    "SecretsPolicy",
    "format_key",
    "generate_key",
    "ticket_digest",
]

logger = logging.getLogger(__name__)

ENV_KEYS: Final = "ACTORTOKEN_STORE_KEYS"
"""Environment variable with the encryption keys, ``KEY_ID:BASE64_KEY`` joined by commas."""

ENV_SECRETS_MODE: Final = "ACTORTOKEN_STORE_SECRETS_MODE"
"""Environment variable with the secrets mode: encrypt, digest or plaintext."""

ENV_KEEP_TERMINAL_TICKETS: Final = "ACTORTOKEN_STORE_KEEP_TERMINAL_TICKETS"
"""Environment variable that, when true, keeps the tickets of accepted and revoked tokens."""

KEY_BYTES: Final = 32
"""Length of an encryption key: AES-256."""

_NONCE_BYTES: Final = 12
_FORMAT_VERSION: Final = 1
"""First byte of every ciphertext, so that a later format can be distinguished."""

_AAD_PREFIX: Final = b"actortoken-store ticket v1\x00"
_KEY_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS: Final = frozenset({"0", "false", "no", "off", ""})

_digest_default_warned = False
"""Whether this process has already logged that digest mode was chosen for lack of keys."""


class SecretsMode(StrEnum):
    """Storage form of a ticket at rest."""

    ENCRYPT = "encrypt"
    """Encrypted with the first configured key; the default when keys are configured."""
    DIGEST = "digest"
    """Only the SHA-256 digest is kept; the default when no key is configured."""
    PLAINTEXT = "plaintext"
    """Stored as given. For development only: anyone who reads the database can use it."""


def ticket_digest(ticket: str) -> bytes:
    """Return the SHA-256 digest of a ticket's UTF-8 bytes (32 bytes)."""
    return hashlib.sha256(ticket.encode("utf-8")).digest()


def generate_key() -> bytes:
    """Return a new random 256-bit AES key."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def format_key(key_id: str, key: bytes) -> str:
    """Format one ``KEY_ID:BASE64_KEY`` entry for ``ACTORTOKEN_STORE_KEYS``."""
    _check_key_id(key_id)
    _check_key_length(key_id, key)
    return f"{key_id}:{base64.urlsafe_b64encode(key).decode('ascii').rstrip('=')}"


class Keyring:
    """Encryption keys in order of preference: the first encrypts, every key decrypts.

    The key material never appears in `repr`, `str` or error messages; only key ids do.

    Args:
        keys: ``(key_id, key)`` pairs. Key ids are 1 to 64 characters from letters, digits,
            ``.``, ``_`` and ``-``, starting with a letter or digit, and must be distinct.
            Keys are 32 bytes.

    Raises:
        ConfigurationError: a key id is invalid or repeated, or a key has the wrong length.
    """

    def __init__(self, keys: Iterable[tuple[str, bytes]] = ()) -> None:
        ciphers: dict[str, AESGCM] = {}
        for key_id, key in keys:
            _check_key_id(key_id)
            if key_id in ciphers:
                raise ConfigurationError(f"key id {key_id!r} is configured twice")
            _check_key_length(key_id, key)
            ciphers[key_id] = AESGCM(key)
        self._ciphers = ciphers

    @classmethod
    def parse(cls, text: str, *, source: str = ENV_KEYS) -> Keyring:
        """Parse ``KEY_ID:BASE64_KEY`` entries separated by commas.

        Whitespace around entries is ignored and empty entries are skipped. The key is
        base64 (URL-safe or standard alphabet, padding optional) of 32 random bytes, such
        as ``actortoken-store keys generate`` prints.

        Args:
            text: the entries.
            source: where the text came from, named in error messages.

        Raises:
            ConfigurationError: an entry is malformed; the message names the entry by
                position and key id, never by key material.
        """
        pairs: list[tuple[str, bytes]] = []
        entries = [entry.strip() for entry in text.split(",")]
        for position, entry in enumerate((entry for entry in entries if entry), start=1):
            key_id, separator, encoded = entry.partition(":")
            key_id = key_id.strip()
            if not separator or not key_id or not encoded.strip():
                raise ConfigurationError(
                    f"invalid {source} entry {position}: expected KEY_ID:BASE64_KEY, such as "
                    "the line 'actortoken-store keys generate' prints"
                )
            _check_key_id(key_id)
            pairs.append((key_id, _decode_key(key_id, encoded.strip(), source)))
        return cls(pairs)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The configured key ids, the encrypting one first."""
        return tuple(self._ciphers)

    @property
    def primary_key_id(self) -> str | None:
        """The id of the key that encrypts, or None when the keyring is empty."""
        return next(iter(self._ciphers), None)

    def __len__(self) -> int:
        return len(self._ciphers)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._ciphers

    def __repr__(self) -> str:
        return f"Keyring(key_ids={self.key_ids!r})"

    __str__ = __repr__

    def encrypt(self, token_id: str, plaintext: bytes) -> tuple[str, bytes]:
        """Encrypt ``plaintext`` for ``token_id`` with the first key.

        Returns:
            The key id and the ciphertext: a format byte, a random 96-bit nonce, then the
            AES-GCM output with its tag.

        Raises:
            ConfigurationError: the keyring is empty.
        """
        key_id = self.primary_key_id
        if key_id is None:
            raise ConfigurationError(f"no encryption key is configured; set {ENV_KEYS}")
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, plaintext, _associated_data(key_id, token_id))
        return key_id, bytes([_FORMAT_VERSION]) + nonce + sealed

    def decrypt(self, token_id: str, key_id: str, ciphertext: bytes) -> bytes:
        """Decrypt a ciphertext made by `encrypt` for ``token_id`` under ``key_id``.

        Raises:
            TicketDecryptionError: the key is not configured, the ciphertext is malformed,
                or it does not authenticate (wrong key, altered, or made for another token).
        """
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise TicketDecryptionError(
                token_id, key_id, f"no key with this id is configured in {ENV_KEYS}"
            )
        data = bytes(ciphertext)
        if len(data) < 1 + _NONCE_BYTES + 16:
            raise TicketDecryptionError(token_id, key_id, "the ciphertext is truncated")
        if data[0] != _FORMAT_VERSION:
            raise TicketDecryptionError(
                token_id, key_id, f"unknown ciphertext format version {data[0]}"
            )
        nonce = data[1 : 1 + _NONCE_BYTES]
        try:
            return cipher.decrypt(
                nonce, data[1 + _NONCE_BYTES :], _associated_data(key_id, token_id)
            )
        except InvalidTag:
            raise TicketDecryptionError(
                token_id,
                key_id,
                "the ciphertext does not authenticate: the key is wrong, or the row was "
                "altered or copied from another token",
            ) from None


@dataclass(frozen=True, slots=True, repr=False)
class SealedTicket:
    """The secret columns of one row, as a `SecretsPolicy` fills them."""

    digest: bytes | None = None
    """SHA-256 of the ticket; None when the token has no ticket."""
    token: str | None = None
    """The ticket in plaintext (plaintext mode only)."""
    url: str | None = None
    """The sign-in URL in plaintext (plaintext mode only)."""
    ciphertext: bytes | None = None
    """Ticket and URL encrypted together (encrypt mode only)."""
    key_id: str | None = None
    """Id of the key that made ``ciphertext``."""

    def __repr__(self) -> str:
        return (
            f"SealedTicket(has_digest={self.digest is not None}, "
            f"has_plaintext={self.token is not None or self.url is not None}, "
            f"key_id={self.key_id!r})"
        )


class SecretsPolicy:
    """Decides how tickets are written, and decrypts them on read.

    Args:
        mode: the secrets mode; None picks ``encrypt`` when keys are given, else ``digest``.
            A ``digest`` picked this way logs a warning the first time it drops a ticket,
            once per process, because the caller may not expect tickets to be lost.
        keys: a `Keyring`, or its text form for `Keyring.parse`. Keys also decrypt in the
            ``digest`` and ``plaintext`` modes, so rows written earlier still read.
        keep_terminal_tickets: keep the secret of accepted and revoked tokens instead of
            dropping it. The digest is kept either way.

    Raises:
        ConfigurationError: ``encrypt`` without keys, an unknown mode, or malformed keys.
    """

    def __init__(
        self,
        mode: SecretsMode | str | None = None,
        keys: Keyring | str | None = None,
        *,
        keep_terminal_tickets: bool = False,
    ) -> None:
        keyring = Keyring.parse(keys, source="keys") if isinstance(keys, str) else keys
        self.keyring = keyring if keyring is not None else Keyring()
        self.keep_terminal_tickets = keep_terminal_tickets
        self._digest_by_default = False
        if mode is None:
            self.mode = SecretsMode.ENCRYPT if self.keyring else SecretsMode.DIGEST
            self._digest_by_default = self.mode is SecretsMode.DIGEST
            return
        try:
            self.mode = SecretsMode(mode)
        except ValueError:
            allowed = ", ".join(member.value for member in SecretsMode)
            raise ConfigurationError(
                f"invalid secrets mode {mode!r}: expected one of {allowed}"
            ) from None
        if self.mode is SecretsMode.ENCRYPT and not self.keyring:
            raise ConfigurationError(
                f"secrets mode 'encrypt' needs at least one key; set {ENV_KEYS} "
                "(actortoken-store keys generate prints one)"
            )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SecretsPolicy:
        """Build the policy from ``ACTORTOKEN_STORE_KEYS``, ``..._SECRETS_MODE`` and
        ``..._KEEP_TERMINAL_TICKETS``; empty variables count as unset.

        Raises:
            ConfigurationError: a variable has an invalid value.
        """
        source = os.environ if environ is None else environ
        keys_text = source.get(ENV_KEYS, "")
        keyring = Keyring.parse(keys_text) if keys_text.strip() else None
        mode = source.get(ENV_SECRETS_MODE, "").strip().lower() or None
        keep_text = source.get(ENV_KEEP_TERMINAL_TICKETS, "").strip().lower()
        if keep_text not in _TRUE_WORDS | _FALSE_WORDS:
            raise ConfigurationError(
                f"invalid {ENV_KEEP_TERMINAL_TICKETS} value {keep_text!r}: expected true or false"
            )
        return cls(mode, keyring, keep_terminal_tickets=keep_text in _TRUE_WORDS)

    def __repr__(self) -> str:
        return (
            f"SecretsPolicy(mode={self.mode.value!r}, key_ids={self.keyring.key_ids!r}, "
            f"keep_terminal_tickets={self.keep_terminal_tickets})"
        )

    __str__ = __repr__

    def keeps_secret(self, status: TokenStatus) -> bool:
        """Return True when a token in ``status`` keeps its ticket (the digest is always kept)."""
        return not status.is_terminal or self.keep_terminal_tickets

    def seal(
        self, token_id: str, status: TokenStatus, token: str | None, url: str | None
    ) -> SealedTicket:
        """Return the secret columns for a token's ticket and URL under this policy."""
        digest = None if token is None else ticket_digest(token)
        if (token is None and url is None) or not self.keeps_secret(status):
            return SealedTicket(digest=digest)
        if self.mode is SecretsMode.PLAINTEXT:
            return SealedTicket(digest=digest, token=token, url=url)
        if self.mode is SecretsMode.DIGEST:
            if self._digest_by_default:
                _warn_digest_default()
            return SealedTicket(digest=digest)
        payload = json.dumps({"token": token, "url": url}, separators=(",", ":")).encode()
        key_id, ciphertext = self.keyring.encrypt(token_id, payload)
        return SealedTicket(digest=digest, ciphertext=ciphertext, key_id=key_id)

    def can_decrypt(self, key_id: str) -> bool:
        """Return True when a key with ``key_id`` is configured."""
        return key_id in self.keyring

    def open(self, token_id: str, key_id: str, ciphertext: bytes) -> tuple[str | None, str | None]:
        """Decrypt a sealed ticket and return ``(token, url)``.

        Raises:
            TicketDecryptionError: the key is missing or wrong, or the ciphertext was made
                for another token or altered.
        """
        plaintext = self.keyring.decrypt(token_id, key_id, ciphertext)
        try:
            payload = json.loads(plaintext)
            token, url = payload["token"], payload["url"]
        except (ValueError, TypeError, KeyError):
            raise TicketDecryptionError(
                token_id, key_id, "the decrypted payload is not a ticket record"
            ) from None
        if not (token is None or isinstance(token, str)) or not (
            url is None or isinstance(url, str)
        ):
            raise TicketDecryptionError(
                token_id, key_id, "the decrypted payload is not a ticket record"
            )
        return token, url


def _associated_data(key_id: str, token_id: str) -> bytes:
    # Binding the key id and token id means a ciphertext only opens on its own row.
    return _AAD_PREFIX + key_id.encode("utf-8") + b"\x00" + token_id.encode("utf-8")


def _check_key_id(key_id: str) -> None:
    if not _KEY_ID_PATTERN.fullmatch(key_id):
        raise ConfigurationError(
            f"invalid key id {key_id[:70]!r}: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )


def _check_key_length(key_id: str, key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise ConfigurationError(
            f"key {key_id!r} is {len(key)} bytes long; AES-256 keys are {KEY_BYTES} bytes"
        )


def _decode_key(key_id: str, encoded: str, source: str) -> bytes:
    # Both alphabets are accepted, and padding is optional; any other character is an error.
    padded = encoded + "=" * (-len(encoded) % 4)
    urlsafe = padded.replace("+", "-").replace("/", "_")
    try:
        return base64.b64decode(urlsafe.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ConfigurationError(
            f"invalid {source} entry for key {key_id!r}: the key is not valid base64"
        ) from None


def _warn_digest_default() -> None:
    global _digest_default_warned
    if _digest_default_warned:
        return
    _digest_default_warned = True
    logger.warning(
        "no encryption key is configured, so secrets mode is 'digest': tickets and sign-in "
        "URLs are not stored, only SHA-256 digests of the tickets; set %s to store them "
        "encrypted",
        ENV_KEYS,
    )
