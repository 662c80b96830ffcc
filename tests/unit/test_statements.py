"""Statement builders: the JSON form of an upsert batch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from actortoken_store.model import TokenStatus
from actortoken_store.operations import DEFAULT_AUDIT
from actortoken_store.statements import rows_to_json, upsert_tokens


def test_rows_to_json_text_inputs() -> None:
    at = datetime(2025, 12, 2, 1, 2, 3, 456000, tzinfo=UTC)
    offset = at.astimezone(timezone(timedelta(hours=2)))
    rows = [
        {
            "id": "act_1",
            "status": TokenStatus.REVOKED,
            "actor": {"sub": "user_1", "n": [1, 2.5, None, "é"]},
            "created_at": at,
            "updated_at": offset,
            "ciphertext": b"\x00\xff",
        }
    ]
    decoded = json.loads(rows_to_json(rows))
    assert decoded == [
        {
            "id": "act_1",
            "status": "revoked",
            "actor": {"sub": "user_1", "n": [1, 2.5, None, "é"]},
            "created_at": "2025-12-02T01:02:03.456000+00:00",
            "updated_at": "2025-12-02T03:02:03.456000+02:00",
            "ciphertext": "\\x00ff",
        }
    ]


def test_rows_to_json_rejects_unknown_type() -> None:
    with pytest.raises(TypeError, match="set"):
        rows_to_json([{"id": "act_1", "actor": {1, 2}}])


def test_upsert_shape_fixed_per_columns() -> None:
    first = upsert_tokens([{"id": "a", "status": "pending"}], DEFAULT_AUDIT)
    second = upsert_tokens(
        [{"id": "b", "status": "pending"}, {"id": "c", "status": "revoked"}], DEFAULT_AUDIT
    )
    other = upsert_tokens([{"id": "a", "status": "pending", "user_id": "u"}], DEFAULT_AUDIT)
    assert first.statement is second.statement
    assert first.statement is not other.statement
    assert list(second.parameters) == ["rows", "audit_source", "audit_context"]


def test_rows_to_json_big_integer() -> None:
    decoded = json.loads(rows_to_json([{"id": "act_1", "actor": {"sub": "u", "n": 2**80}}]))
    assert decoded[0]["actor"]["n"] == 2**80
