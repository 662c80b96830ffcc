"""actortoken-store: persist Clerk actor tokens (impersonation tickets) in PostgreSQL."""

from __future__ import annotations

import logging

from actortoken_store.aio import AsyncActorTokenRepository
from actortoken_store.audit import (
    ActorSummary,
    AuditContext,
    AuditPage,
    AuditSource,
    Impersonation,
    StaleToken,
    TokenEvent,
)
from actortoken_store.errors import (
    ActorClaimsMissingError,
    ActorTokenStoreError,
    ClerkRequestError,
    ConfigurationError,
    ConnectionFailedError,
    ConnectionLostError,
    DatabaseError,
    InputReadError,
    InvalidActorTokenError,
    InvalidArgumentError,
    InvalidTransitionError,
    SchemaNotReadyError,
    TicketDecryptionError,
    TokenConflictError,
    TokenNotFoundError,
    TransientDatabaseError,
)
from actortoken_store.maintenance import KeyRotation
from actortoken_store.model import ActorToken, ObjectType, TokenStatus
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.results import Page, SaveOutcome, SaveReport, SaveResult, TicketState
from actortoken_store.secrets import Keyring, SecretsMode, SecretsPolicy

__all__ = [
    "ActorClaimsMissingError",
    "ActorSummary",
    "ActorToken",
    "ActorTokenRepository",
    "ActorTokenStoreError",
    "AsyncActorTokenRepository",
    "AuditContext",
    "AuditPage",
    "AuditSource",
    "ClerkRequestError",
    "ConfigurationError",
    "ConnectionFailedError",
    "ConnectionLostError",
    "DatabaseError",
    "Impersonation",
    "InputReadError",
    "InvalidActorTokenError",
    "InvalidArgumentError",
    "InvalidTransitionError",
    "KeyRotation",
    "Keyring",
    "ObjectType",
    "Page",
    "SaveOutcome",
    "SaveReport",
    "SaveResult",
    "SchemaNotReadyError",
    "SecretsMode",
    "SecretsPolicy",
    "StaleToken",
    "TicketDecryptionError",
    "TicketState",
    "TokenConflictError",
    "TokenEvent",
    "TokenNotFoundError",
    "TokenStatus",
    "TransientDatabaseError",
]

__version__ = "0.1.0"

# Quiet unless the application configures logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())
