"""The audit trail: events written by the database, the context they record, and queries.

Use it through a repository: ``repo.audit_context(...)`` sets what the next writes record,
and ``repo.audit`` contains the queries (`AuditQueries`, or `AsyncAuditQueries` on the async
repository).
"""

from __future__ import annotations

from actortoken_store.audit.api import AsyncAuditQueries, AuditQueries
from actortoken_store.audit.context import AuditContext, AuditSource
from actortoken_store.audit.records import (
    ActorSummary,
    AuditPage,
    Impersonation,
    StaleToken,
    TokenEvent,
)

__all__ = [
    "ActorSummary",
    "AsyncAuditQueries",
    "AuditContext",
    "AuditPage",
    "AuditQueries",
    "AuditSource",
    "Impersonation",
    "StaleToken",
    "TokenEvent",
]
