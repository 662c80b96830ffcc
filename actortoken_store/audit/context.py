"""Audit context: what the event trigger records as ``source`` and ``context``.

The trigger on ``actor_tokens`` reads two transaction-local settings:

- ``actortoken_store.source``: ``repository``, ``import`` or ``migration``. When it is
  unset, the event gets ``sql``.
- ``actortoken_store.context``: a JSON object, stored in the event's ``context`` column.

Every repository write sets both inside its own statement (see
`actortoken_store.statements.AUDIT_SETTINGS`), so they cost no round trip. They last until
the transaction ends. `SettingsTracker` keeps a repository's stack of `audit_context`
blocks and remembers where a block's settings were last written, so that leaving the block
can clear them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import Executable, func, literal_column, select, true
from sqlalchemy.orm import Session

from actortoken_store.errors import InvalidArgumentError
from actortoken_store.statements import AUDIT_CONTEXT_SETTING, AUDIT_SOURCE_SETTING

__all__ = [
    "MAX_CONTEXT_BYTES",
    "AuditContext",
    "AuditSource",
    "SettingsTracker",
    "clear_settings",
]

MAX_CONTEXT_BYTES: Final = 8 * 1024
"""Largest accepted context, as compact UTF-8 JSON; it is copied onto every event."""


class AuditSource(StrEnum):
    """The origin of a change, as stored in ``actor_token_events.source``."""

    REPOSITORY = "repository"
    """A repository method (the default for everything the library writes)."""
    IMPORT = "import"
    """The importer (``actortoken-store import``)."""
    MIGRATION = "migration"
    """A schema or data migration, including the backfill of events."""
    SQL = "sql"
    """Nothing set the source: raw SQL, psql, another program."""


@dataclass(frozen=True, slots=True)
class AuditContext:
    """The source and caller context that the next writes attribute their events to.

    Build one with `AuditContext.build`, which validates the values.
    """

    source: AuditSource = AuditSource.REPOSITORY
    context_json: str = "{}"
    """The context as compact JSON text, the exact value of the setting."""

    @property
    def parameters(self) -> dict[str, str]:
        """The values of the write statements' audit parameters."""
        return {"audit_source": self.source.value, "audit_context": self.context_json}

    @property
    def context(self) -> dict[str, Any]:
        """The context as a dict."""
        value: dict[str, Any] = json.loads(self.context_json)
        return value

    @classmethod
    def build(
        cls,
        *,
        source: AuditSource | str = AuditSource.REPOSITORY,
        base: AuditContext | None = None,
        **values: Any,
    ) -> AuditContext:
        """Validate ``values`` and return a context; keys whose value is None are left out.

        ``base`` is an enclosing context: its keys are kept unless ``values`` override them.

        Raises:
            InvalidArgumentError: an unknown source, a value JSON cannot hold, a NUL
                character (JSONB cannot store it), or a context over `MAX_CONTEXT_BYTES`.
        """
        try:
            parsed_source = AuditSource(source)
        except ValueError:
            allowed = ", ".join(
                member.value for member in AuditSource if member is not AuditSource.SQL
            )
            raise InvalidArgumentError(
                f"audit source must be one of {allowed}, got {source!r}"
            ) from None
        if parsed_source is AuditSource.SQL:
            raise InvalidArgumentError(
                "audit source 'sql' is recorded when nothing sets a source; it cannot be set"
            )

        merged = base.context if base is not None else {}
        merged.update({key: value for key, value in values.items() if value is not None})
        try:
            text = json.dumps(merged, separators=(",", ":"), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise InvalidArgumentError(
                f"audit context must be JSON serializable: {error}"
            ) from error
        if _contains_nul(merged):
            raise InvalidArgumentError("audit context must not contain a NUL character")
        size = len(text.encode())
        if size > MAX_CONTEXT_BYTES:
            raise InvalidArgumentError(
                f"audit context is {size} bytes as JSON; the maximum is {MAX_CONTEXT_BYTES}"
            )
        return cls(parsed_source, text)


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(key) or _contains_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(_contains_nul(item) for item in value)
    return False


DEFAULT_CONTEXT: Final = AuditContext()
"""Source ``repository`` with an empty context."""


def clear_settings() -> Executable:
    """Build the SELECT that unsets both settings for the rest of the transaction."""
    return select(
        func.set_config(literal_column(f"'{AUDIT_SOURCE_SETTING}'"), literal_column("''"), true()),
        func.set_config(literal_column(f"'{AUDIT_CONTEXT_SETTING}'"), literal_column("''"), true()),
    )


class SettingsTracker:
    """The audit context stack of one repository, and where its settings were last written.

    Both repositories use it; it does no I/O. A transaction is identified by the session's
    root and innermost nested `SessionTransaction` objects, so settings written inside a
    savepoint that was since released or rolled back do not count as current.
    """

    def __init__(self) -> None:
        self.stack: list[AuditContext] = [DEFAULT_CONTEXT]
        self._written: tuple[object, object, AuditContext] | None = None

    @property
    def current(self) -> AuditContext:
        """The innermost context."""
        return self.stack[-1]

    def mark_written(self, session: Session) -> None:
        """Record that a write set the current context in the session's transaction."""
        self._written = (
            session.get_transaction(),
            session.get_nested_transaction(),
            self.current,
        )

    def written_here(self, session: Session, audit: AuditContext) -> bool:
        """Return whether a write set ``audit`` last, in the session's current transaction."""
        if self._written is None or session.get_transaction() is None:
            return False
        root, nested, written = self._written
        return (
            root is session.get_transaction()
            and nested is session.get_nested_transaction()
            and written == audit
        )

    def forget(self) -> None:
        """Record that the settings were cleared or rolled back."""
        self._written = None
