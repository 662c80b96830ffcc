"""Unit tests of `actortoken_store.migrate` that need no database."""

from __future__ import annotations

import io
from pathlib import Path

from actortoken_store import migrate


def test_script_location_has_revisions() -> None:
    folder = Path(migrate._script_location())

    assert (folder / "env.py").is_file()
    assert (folder / "script.py.mako").is_file()
    assert sorted(path.name for path in (folder / "versions").glob("0001_*.py")) == [
        "0001_create_actor_tokens.py"
    ]


def test_head_is_newest_revision() -> None:
    assert migrate.head() >= "0001"


def test_offline_sql_goes_to_output_buffer() -> None:
    config = migrate.make_config("postgresql://")
    buffer = io.StringIO()
    config.output_buffer = buffer

    migrate.upgrade(config, sql=True)

    assert "CREATE TABLE public.actor_tokens" in buffer.getvalue()
