"""Run a `Call` on the psycopg connection beneath a SQLAlchemy session.

The statement is compiled once per (statement, schema, dialect) with SQLAlchemy's own
compiler, so the SQL is exactly what ``Session.execute`` would send. Each execution then
costs what a bare psycopg ``execute`` costs, plus SQLAlchemy's bind and result processors
of the statement's types (for example the status enum), which are applied here as
``Session.execute`` would apply them.

This path would skip SQLAlchemy's execute events and ``echo`` logging, which SQL logging,
tracing and statement counting rely on. So the runners use it only when `is_observed` is
false for the connection, and otherwise send the same statement through
``Session.execute``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from psycopg import AsyncConnection, AsyncCursor, Connection, Cursor
from sqlalchemy import ClauseElement, CursorResult, Dialect, Executable, Result
from sqlalchemy import Connection as SqlAlchemyConnection
from sqlalchemy.sql.compiler import SQLCompiler

from actortoken_store.calls import Call, Rows

__all__ = [
    "PIPELINE_WINDOW",
    "CompiledCall",
    "compile_call",
    "is_lost",
    "is_observed",
    "rows_from_result",
    "run",
    "run_async",
    "run_pipeline",
    "run_pipeline_async",
]

PIPELINE_WINDOW = 8
"""Calls in flight in `run_pipeline` before their rows are collected. Each keeps its
parameters in memory until then; a save_many batch of 1000 rows is about 1.5 MB of JSON."""

Processor = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class CompiledCall:
    """A statement compiled for one schema, with its type processors."""

    sql: str
    compiled: SQLCompiler
    bind_processors: Mapping[str, Processor]
    result_processors: tuple[Processor | None, ...]
    """One entry per result column, in order; empty when no column needs processing."""
    names: list[list[str]] = field(default_factory=list, compare=False, hash=False)
    """The result column names, once a first execution has returned them: reading a
    cursor's description builds a Column object per column on every call."""

    def column_names(self, cursor: Cursor[Any] | AsyncCursor[Any]) -> list[str] | None:
        """Return the names of the result columns; None when the statement returns no rows."""
        if self.names:
            return self.names[0]
        description = cursor.description
        if description is None:
            return None
        names = [column.name for column in description]
        self.names.append(names)
        return names

    def parameters(self, values: Mapping[str, Any]) -> MutableMapping[str, Any]:
        """Return the driver parameters: ``values`` plus the statement's literal binds."""
        parameters = self.compiled.construct_params(values)
        for name, process in self.bind_processors.items():
            if name in parameters:
                parameters[name] = process(parameters[name])
        return parameters

    def rows(self, names: list[str], records: list[tuple[Any, ...]]) -> Rows:
        """Turn driver records into dicts, applying the result processors."""
        rows = [dict(zip(names, record, strict=True)) for record in records]
        if self.result_processors:
            processed = [
                (name, process)
                for name, process in zip(names, self.result_processors, strict=True)
                if process is not None
            ]
            for row in rows:
                for name, process in processed:
                    value = row[name]
                    if value is not None:
                        row[name] = process(value)
        return rows


def is_observed(connection: SqlAlchemyConnection) -> bool:
    """Tell whether execute listeners or ``echo`` watch ``connection``'s statements."""
    dispatch = connection.dispatch
    return bool(
        dispatch.before_cursor_execute
        or dispatch.after_cursor_execute
        or dispatch.before_execute
        or dispatch.after_execute
        or connection.engine.echo
    )


@lru_cache(maxsize=256)
def compile_call(statement: Executable, schema: str, dialect: Dialect) -> CompiledCall:
    """Compile ``statement`` with its tables placed in ``schema``."""
    assert isinstance(statement, ClauseElement)
    compiled = statement.compile(
        dialect=dialect,
        schema_translate_map={None: schema},
        render_schema_translate=True,
    )
    assert isinstance(compiled, SQLCompiler)

    bind_processors = {}
    for name, bind in compiled.binds.items():
        process = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            bind_processors[name] = process

    result_processors: tuple[Processor | None, ...] = ()
    columns = getattr(statement, "exported_columns", None)
    if columns is not None:
        processors = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        )
        if any(process is not None for process in processors):
            result_processors = processors

    return CompiledCall(compiled.string, compiled, bind_processors, result_processors)


def is_lost(connection: Any) -> bool:
    """Return whether a psycopg connection is closed or broken after an error.

    SQLAlchemy does not see errors of statements run on the driver connection directly,
    so the repositories check this and invalidate the session's connection themselves.
    Otherwise closing the session would try to roll back on the dead connection and
    raise a raw driver error in place of the library's `ConnectionLostError`.
    """
    assert isinstance(connection, Connection | AsyncConnection)
    return connection.closed or connection.broken


def run(connection: Any, compiled: CompiledCall, call: Call) -> Rows:
    """Execute ``call`` on a psycopg `Connection` and return its rows."""
    assert isinstance(connection, Connection)
    with connection.cursor() as cursor:
        cursor.execute(compiled.sql, compiled.parameters(call.parameters))
        names = compiled.column_names(cursor)
        if names is None:
            return []
        return compiled.rows(names, cursor.fetchall())


async def run_async(connection: Any, compiled: CompiledCall, call: Call) -> Rows:
    """Execute ``call`` on a psycopg `AsyncConnection` and return its rows."""
    assert isinstance(connection, AsyncConnection)
    async with connection.cursor() as cursor:
        await cursor.execute(compiled.sql, compiled.parameters(call.parameters))
        names = compiled.column_names(cursor)
        if names is None:
            return []
        return compiled.rows(names, await cursor.fetchall())


def rows_from_result(result: Result[Any]) -> Rows:
    """Return the rows of a SQLAlchemy result in the form `run` returns them."""
    if isinstance(result, CursorResult) and not result.returns_rows:
        return []
    return [dict(row) for row in result.mappings()]


def run_pipeline(connection: Any, calls: Iterable[tuple[CompiledCall, Call]]) -> list[Rows]:
    """Execute ``calls`` in psycopg's pipeline mode and return the rows of each, in order.

    Every call must return rows (a SELECT, or DML with RETURNING).

    Each call is sent without waiting for the previous ones, so the next item of ``calls``
    is built while the server works. Every `PIPELINE_WINDOW` calls the rows in flight are
    collected, which bounds the memory that queued parameters take.
    """
    assert isinstance(connection, Connection)
    results: list[Rows] = []
    window: list[tuple[Cursor[Any], CompiledCall]] = []
    with connection.pipeline():
        for compiled, call in calls:
            cursor = connection.cursor()
            cursor.execute(compiled.sql, compiled.parameters(call.parameters))
            window.append((cursor, compiled))
            if len(window) >= PIPELINE_WINDOW:
                results.extend(_collect(window))
        results.extend(_collect(window))
    return results


async def run_pipeline_async(
    connection: Any, calls: Iterable[tuple[CompiledCall, Call]]
) -> list[Rows]:
    """Run a pipeline of calls on an async connection, like `run_pipeline`."""
    assert isinstance(connection, AsyncConnection)
    results: list[Rows] = []
    window: list[tuple[AsyncCursor[Any], CompiledCall]] = []
    async with connection.pipeline():
        for compiled, call in calls:
            cursor = connection.cursor()
            await cursor.execute(compiled.sql, compiled.parameters(call.parameters))
            window.append((cursor, compiled))
            if len(window) >= PIPELINE_WINDOW:
                results.extend([await _collect_async(*item) for item in window])
                window.clear()
        results.extend([await _collect_async(*item) for item in window])
    return results


# In pipeline mode a cursor's description is known only once its rows are fetched, so
# the rows come first. Every call in a pipeline must return rows.


def _collect(window: list[tuple[Cursor[Any], CompiledCall]]) -> list[Rows]:
    collected = []
    for cursor, compiled in window:
        records = cursor.fetchall()
        collected.append(compiled.rows(compiled.column_names(cursor) or [], records))
        cursor.close()
    window.clear()
    return collected


async def _collect_async(cursor: AsyncCursor[Any], compiled: CompiledCall) -> Rows:
    try:
        records = await cursor.fetchall()
        return compiled.rows(compiled.column_names(cursor) or [], records)
    finally:
        await cursor.close()
