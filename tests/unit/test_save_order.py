"""Tests for the order in which save_many sends rows to PostgreSQL.

The operation is driven by hand with fake results, so these tests need no database.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from actortoken_store import operations
from actortoken_store.calls import Call, Pipeline
from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.results import SaveOutcome
from actortoken_store.secrets import SecretsMode, SecretsPolicy

CREATED = 1_700_000_000_000


def _token(token_id: str, updated_offset: int = 0) -> ActorToken:
    return ActorToken(
        id=token_id,
        status=TokenStatus.PENDING,
        user_id="user_1",
        actor={"sub": "user_admin"},
        created_at=CREATED,
        updated_at=CREATED + updated_offset,
    )


def _statement_ids(step: Any) -> list[str]:
    """Return the ids of an upsert's rows, in the order PostgreSQL reads them."""
    assert isinstance(step, Call)
    return [row["id"] for row in json.loads(step.parameters["rows"])]


def _drive(tokens: Sequence[ActorToken], batch_size: int) -> tuple[list[list[str]], Any]:
    """Run save_many, sending back "every row inserted" for each upsert."""
    operation = operations.save_many(
        tokens, secrets=SecretsPolicy(SecretsMode.PLAINTEXT), batch_size=batch_size
    )
    sent: list[list[str]] = []

    def answer(call: Any) -> list[dict[str, Any]]:
        ids = _statement_ids(call)
        sent.append(ids)
        return [{"id": token_id, "inserted": True} for token_id in ids]

    step = next(operation)
    try:
        while True:
            if isinstance(step, Pipeline):
                step = operation.send([answer(call) for call in step.calls])
            else:
                step = operation.send(answer(step))
    except StopIteration as stop:
        return sent, stop.value


def test_save_many_sorts_each_batch_by_id() -> None:
    tokens = [_token(token_id) for token_id in ["act_c", "act_a", "act_d", "act_b"]]

    sent, report = _drive(tokens, batch_size=10)

    assert sent == [["act_a", "act_b", "act_c", "act_d"]]
    assert [result.token_id for result in report.results] == ["act_c", "act_a", "act_d", "act_b"]
    assert report.count(SaveOutcome.INSERTED) == 4


def test_save_many_sorts_across_batches() -> None:
    tokens = [_token(f"act_{index}") for index in [5, 3, 1, 4, 2, 0]]

    sent, report = _drive(tokens, batch_size=4)

    # The whole round is sorted before it is cut into batches, so every transaction
    # locks the same ids in the same global order.
    assert sent == [["act_0", "act_1", "act_2", "act_3"], ["act_4", "act_5"]]
    assert [result.token_id for result in report.results] == [
        f"act_{index}" for index in [5, 3, 1, 4, 2, 0]
    ]


def test_save_many_repeated_id_goes_to_later_round() -> None:
    tokens = [_token("act_b", 1), _token("act_a"), _token("act_b", 2)]

    sent, report = _drive(tokens, batch_size=10)

    assert sent == [["act_a", "act_b"], ["act_b"]]
    assert [result.token_id for result in report.results] == ["act_b", "act_a", "act_b"]
