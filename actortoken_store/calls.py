"""Fixed statements with parameter values, which the repositories run on the driver directly.

An operation yields a `Call` instead of a bare statement when the statement's SQL does not
depend on the values. The runners then compile the statement once per schema and dialect,
and execute it on the psycopg connection that the caller's session already holds, inside
the caller's transaction. That skips SQLAlchemy's per-execution work (cache-key lookup,
execution context, result metadata). For a point read, that work costs more than the
statement itself, as the bench measures.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from sqlalchemy import Executable

__all__ = ["Call", "Pipeline", "Rows"]

Rows: TypeAlias = list[dict[str, Any]]
"""The rows of a `Call`, each a dict keyed by result column name; empty for no rows."""


@dataclass(frozen=True, slots=True)
class Call:
    """A statement and the values of its named bind parameters.

    Compiled SQL is cached by the statement object's identity, so ``statement`` must be a
    long-lived object (a module constant or the result of a cached builder), never one
    built per call.
    """

    statement: Executable
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Calls whose rows the operation needs only after the last one has run.

    The runners return one `Rows` per call, in order. They may send a call before the
    rows of the previous ones arrive (psycopg's pipeline mode), so building the parameters
    of the next call overlaps with the server running the previous ones. ``calls`` is
    iterated once, lazily, which is what lets an operation build each call's parameters
    only when the runner asks for it.
    """

    calls: Iterable[Call]
