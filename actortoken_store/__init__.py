"""actortoken-store: persist Clerk actor tokens (impersonation tickets) in PostgreSQL."""

from __future__ import annotations

import logging

from actortoken_store.aio import AsyncActorTokenRepository
from actortoken_store.errors import (
    ActorClaimsMissingError,
    ActorTokenStoreError,
    ClerkRequestError,
    ConfigurationError,
    ConnectionLostError,
    DatabaseError,
    InputReadError,
    InvalidActorTokenError,
    InvalidArgumentError,
    InvalidTransitionError,
    SchemaNotReadyError,
    TokenConflictError,
    TokenNotFoundError,
)
from actortoken_store.model import ActorToken, ObjectType, TokenStatus
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.results import Page, SaveOutcome, SaveReport, SaveResult

__all__ = [
    "ActorClaimsMissingError",
    "ActorToken",
    "ActorTokenRepository",
    "ActorTokenStoreError",
    "AsyncActorTokenRepository",
    "ClerkRequestError",
    "ConfigurationError",
    "ConnectionLostError",
    "DatabaseError",
    "InputReadError",
    "InvalidActorTokenError",
    "InvalidArgumentError",
    "InvalidTransitionError",
    "ObjectType",
    "Page",
    "SaveOutcome",
    "SaveReport",
    "SaveResult",
    "SchemaNotReadyError",
    "TokenConflictError",
    "TokenNotFoundError",
    "TokenStatus",
]

__version__ = "0.1.0"

# Quiet unless the application configures logging.
logging.getLogger(__name__).addHandler(logging.NullHandler())
