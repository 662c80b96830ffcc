"""Alembic environment of actortoken-store.

The store keeps its own version table (``actortoken_store_version``) in its own schema, so
it can share a database with an application that has an ``alembic_version`` of its own.

Settings, first match wins:
- connection: ``config.attributes["connection"]``, a SQLAlchemy Connection to reuse (tests
  and host applications pass one to run inside their own transaction), or an Engine to
  open a connection from;
- URL: ``config.attributes["url"]``, ``-x url=...``, ``sqlalchemy.url`` in the ini file,
  ``ACTORTOKEN_STORE_DATABASE_URL``, else the embedded PostgreSQL server;
- schema: ``config.attributes["schema"]``, ``-x schema=...``, ``ACTORTOKEN_STORE_SCHEMA``,
  else ``public``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine, pool
from sqlalchemy.schema import CreateSchema

from actortoken_store.migrate import VERSION_TABLE, migration_schema, migration_url
from actortoken_store.schema import DEFAULT_SCHEMA, metadata_for

config = context.config
schema = migration_schema(config)
target_metadata = metadata_for(schema)


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Compare only the store's own schema and tables, never a host application's."""
    if type_ == "schema":
        # Alembic names the connection's default schema None. Another schema's tables,
        # including a copy of the store's own in public, are not the store's business.
        return name == schema or (name is None and schema == DEFAULT_SCHEMA)
    if type_ == "table":
        return name in target_metadata.tables or f"{schema}.{name}" in target_metadata.tables
    return True


def _configure(**options: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        include_schemas=True,
        include_name=include_name,
        compare_type=True,
        **options,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    """Write the migration SQL to standard output instead of running it."""
    _configure(url=migration_url(config, offline=True), literal_binds=True)
    with context.begin_transaction():
        context.execute(CreateSchema(schema, if_not_exists=True))
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        # The version table lives in the schema, so the schema must exist first.
        connection.execute(CreateSchema(schema, if_not_exists=True))
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations on the given connection or on a new one."""
    connection = config.attributes.get("connection")
    if isinstance(connection, Engine):
        # pytest-alembic passes its engine here rather than a connection.
        with connection.connect() as engine_connection:
            _run_on(engine_connection)
            engine_connection.commit()
        return
    if connection is not None:
        _run_on(connection)
        return

    from actortoken_store.config import create_engine

    # Revisions handle tickets, so errors must not echo statement parameters.
    engine = create_engine(migration_url(config), poolclass=pool.NullPool, hide_parameters=True)
    try:
        with engine.connect() as connection:
            _run_on(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
