"""Errors raised while a ticket is a statement parameter do not carry the ticket."""

from __future__ import annotations

import traceback
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import event
from sqlalchemy.orm import Session

from actortoken_store.config import create_engine
from actortoken_store.errors import ActorTokenStoreError
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.secrets import SecretsMode, SecretsPolicy
from tests.integration.secrets_helpers import make_token


@pytest.mark.parametrize("observed", [False, True])
def test_plaintext_error_hides_ticket(database_url: sqlalchemy.URL, observed: bool) -> None:
    engine = create_engine(database_url)
    if observed:
        # A cursor listener sends statements through Session.execute, whose errors
        # include the statement parameters unless the engine hides them.
        def listener(*args: Any) -> None:
            return None

        event.listen(engine, "before_cursor_execute", listener)
    token = make_token()
    assert token.token is not None
    try:
        with Session(engine) as session:
            repo = ActorTokenRepository(
                session, schema="no_such_schema", secrets=SecretsPolicy(SecretsMode.PLAINTEXT)
            )
            with pytest.raises(ActorTokenStoreError) as caught:
                repo.save(token)
    finally:
        engine.dispose()

    rendered = "".join(traceback.format_exception(caught.value))
    assert "no_such_schema" in rendered
    _, payload, signature = token.token.split(".")
    assert payload[:16] not in rendered
    assert signature[:16] not in rendered
