"""Unit tests of the SQLAlchemy metadata (no database)."""

from __future__ import annotations

import warnings

from sqlalchemy import Enum

from actortoken_store.schema import STATUS_ENUM_NAME, metadata, metadata_for


def test_metadata_for_places_enum_in_schema() -> None:
    placed = metadata_for("tenant_a")

    table = placed.tables["tenant_a.actor_tokens"]
    status_type = table.c.status.type
    assert isinstance(status_type, Enum)
    assert status_type.name == STATUS_ENUM_NAME
    assert status_type.schema == "tenant_a"


def test_metadata_for_default_keeps_original() -> None:
    assert metadata_for("public") is metadata
    assert metadata.tables["actor_tokens"].c.status.type.schema is None


def test_metadata_for_emits_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metadata_for("tenant_b")
