"""Exception hierarchy of actortoken-store.

Every error the library raises on purpose derives from `ActorTokenStoreError`. Database
errors are translated at one seam (`actortoken_store.dberrors`) and chained with ``from``,
so callers never have to catch SQLAlchemy or psycopg exceptions.

Messages never contain a ticket or a ticket URL.
"""

from __future__ import annotations

__all__ = [
    "ActorClaimsMissingError",
    "ActorTokenStoreError",
    "ClerkRequestError",
    "ConfigurationError",
    "ConnectionFailedError",
    "ConnectionLostError",
    "DatabaseError",
    "InputReadError",
    "InvalidActorTokenError",
    "InvalidArgumentError",
    "InvalidTransitionError",
    "SchemaNotReadyError",
    "TicketDecryptionError",
    "TokenConflictError",
    "TokenNotFoundError",
    "TransientDatabaseError",
]


class ActorTokenStoreError(Exception):
    """Base class of every error raised by actortoken-store."""


class ConfigurationError(ActorTokenStoreError):
    """The database URL, schema name, keys or another setting is invalid."""


class InvalidActorTokenError(ActorTokenStoreError, ValueError):
    """An actor token, or one of its fields, failed validation.

    Attributes:
        field: dotted path of the offending field, such as ``"actor.sub"``.
        problem: what is wrong with it, in a few words.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"invalid actor token: {field}: {problem}")


class ActorClaimsMissingError(InvalidActorTokenError):
    """A Clerk SDK model carries no actor claims, and the caller passed none.

    clerk-backend-api 7.0.0 declares ``ActorToken.actor`` as a model without fields, so
    validating Clerk's response drops every actor claim, ``sub`` included. The store never
    keeps a token without its actor, so pass the claims that were sent to Clerk.

    Attributes:
        token_id: the id of the token whose claims are missing.
    """

    def __init__(self, token_id: str) -> None:
        self.token_id = token_id
        super().__init__(
            "actor",
            f"the Clerk SDK model of token {token_id!r} carries no actor claims, because "
            "clerk-backend-api 7 drops them while validating the response; pass the claims "
            "that were sent to Clerk as actor=",
        )


class TokenNotFoundError(ActorTokenStoreError, LookupError):
    """No stored actor token has the requested id."""

    def __init__(self, token_id: str) -> None:
        self.token_id = token_id
        super().__init__(f"actor token {token_id!r} not found")


class InvalidTransitionError(ActorTokenStoreError):
    """A status transition was requested from a status that does not allow it.

    Only a pending token can be accepted or revoked; accepted and revoked are terminal.

    Attributes:
        token_id: the token's id.
        current_status: the stored status when the transition was attempted.
        requested_status: the status the caller asked for.
    """

    def __init__(self, token_id: str, current_status: str, requested_status: str) -> None:
        self.token_id = token_id
        self.current_status = current_status
        self.requested_status = requested_status
        super().__init__(
            f"cannot move actor token {token_id!r} to {requested_status!r}: "
            f"its status is {current_status!r} and only pending tokens can change"
        )


class TokenConflictError(ActorTokenStoreError):
    """The stored token contradicts a snapshot from Clerk, so the snapshot was not stored.

    This happens when the stored token is terminal with another status, or belongs to
    another user or creation time.

    Attributes:
        token_id: the token's id.
        stored_status: the stored token's status.
        snapshot_status: the status in Clerk's snapshot.
    """

    def __init__(self, token_id: str, stored_status: str, snapshot_status: str) -> None:
        self.token_id = token_id
        self.stored_status = stored_status
        self.snapshot_status = snapshot_status
        super().__init__(
            f"actor token {token_id!r} from Clerk ({snapshot_status}) contradicts the stored "
            f"token ({stored_status}); the snapshot was not stored"
        )


class ClerkRequestError(ActorTokenStoreError):
    """Clerk's Backend API rejected a request, failed, or sent no usable response.

    Attributes:
        operation: ``"create"`` or ``"revoke"``.
        status_code: the HTTP status, or None when no response arrived.
        codes: Clerk's error codes from the response body, in order; empty when the body
            had none.
        token_id: the token concerned, when known.
    """

    def __init__(
        self,
        operation: str,
        detail: str,
        *,
        status_code: int | None = None,
        codes: tuple[str, ...] = (),
        token_id: str | None = None,
    ) -> None:
        self.operation = operation
        self.status_code = status_code
        self.codes = codes
        self.token_id = token_id
        target = f" of actor token {token_id!r}" if token_id is not None else " of an actor token"
        status = f" (HTTP {status_code})" if status_code is not None else ""
        super().__init__(f"Clerk {operation}{target} failed{status}: {detail}")


class DatabaseError(ActorTokenStoreError):
    """PostgreSQL rejected a statement for a reason the library does not model.

    Attributes:
        sqlstate: the five-character SQLSTATE code, when the server sent one.
        retryable: whether the same call may succeed on a new transaction. True only for
            `ConnectionLostError` and `TransientDatabaseError`.
    """

    retryable: bool = False

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        self.sqlstate = sqlstate
        super().__init__(message)


class ConnectionLostError(DatabaseError):
    """An established connection failed or was closed during a call.

    Nothing of the interrupted transaction was committed, so the same write can be
    retried on a new transaction.
    """

    retryable = True


class TransientDatabaseError(DatabaseError):
    """The statement failed because of other transactions or a timeout, not its input.

    PostgreSQL aborted it with a deadlock (SQLSTATE 40P01), a serialization failure
    (40001), a lock timeout (55P03, from ``lock_timeout``) or a statement timeout (57014,
    from ``statement_timeout``). The transaction cannot go on: roll it back, then retry the
    same writes on a new one.
    """

    retryable = True


class ConnectionFailedError(DatabaseError, ConfigurationError):
    """No connection could be opened: the server is unreachable or did not respond in time,
    the database or role does not exist, or authentication failed.

    Unlike `ConnectionLostError`, nothing was attempted, and the same call fails the same way
    until the URL, the credentials or the server change, so it is not marked retryable.
    """

    retryable = False


class SchemaNotReadyError(ConfigurationError):
    """The store's tables are missing or older than this version of the library.

    Run ``actortoken-store db upgrade`` (or `actortoken_store.migrate.upgrade`) first.
    """


class InvalidArgumentError(ActorTokenStoreError, ValueError):
    """A method argument is invalid: a malformed cursor, a naive datetime, a bad limit."""


class InputReadError(ActorTokenStoreError):
    """An import source could not be opened or read: a missing file, a damaged gzip file."""


class TicketDecryptionError(ActorTokenStoreError):
    """The stored ticket of a token cannot be decrypted with the configured keys.

    Raised instead of returning a value when the key is missing, the key is wrong, or the
    ciphertext was altered or copied from another token's row. Other tokens still read.

    Attributes:
        token_id: the token whose ticket failed to decrypt.
        key_id: the id of the key that encrypted it, as stored with the ciphertext.
        reason: what went wrong, in a few words.
    """

    def __init__(self, token_id: str, key_id: str, reason: str) -> None:
        self.token_id = token_id
        self.key_id = key_id
        self.reason = reason
        super().__init__(
            f"cannot decrypt the ticket of actor token {token_id!r} (key id {key_id!r}): {reason}"
        )
