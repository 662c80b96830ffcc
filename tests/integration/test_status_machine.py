"""A stateful hypothesis test: random saves, transitions and reads against the repository,
checked after every step against a small in-memory model of the status rules."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from actortoken_store.errors import InvalidTransitionError, TokenNotFoundError
from actortoken_store.model import ActorToken, TokenStatus
from actortoken_store.repository import ActorTokenRepository
from actortoken_store.results import SaveOutcome

CREATED = 1_760_000_000_000
USERS = ["user_a", "user_b"]


def _expected_outcome(stored: ActorToken | None, incoming: ActorToken) -> SaveOutcome:
    """The outcome the rules call for when ``incoming`` is saved over ``stored``."""
    if stored is None:
        return SaveOutcome.INSERTED
    same_origin = (stored.user_id, stored.created_at) == (incoming.user_id, incoming.created_at)
    pending = TokenStatus.PENDING
    status_allowed = stored.status is pending or stored.status is incoming.status
    newer = incoming.updated_at > stored.updated_at or (
        incoming.updated_at == stored.updated_at
        and stored.status is pending
        and incoming.status is not pending
    )
    if same_origin and status_allowed and newer:
        return SaveOutcome.UPDATED
    if not same_origin:
        return SaveOutcome.CONFLICT
    if stored.status.is_terminal and incoming.status is not stored.status:
        # A pending snapshot no newer than the final one replays history: unchanged.
        replay = incoming.status is pending and incoming.updated_at <= stored.updated_at
        return SaveOutcome.UNCHANGED if replay else SaveOutcome.CONFLICT
    return SaveOutcome.UNCHANGED


class StatusMachine(RuleBasedStateMachine):
    """Drives one repository in one transaction, rolled back at the end."""

    engine: Engine
    ids = Bundle("ids")

    def __init__(self) -> None:
        super().__init__()
        self.session = Session(self.engine)
        self.repo = ActorTokenRepository(self.session)
        self.model: dict[str, ActorToken] = {}
        self.counter = 0

    def teardown(self) -> None:
        self.session.rollback()
        self.session.close()

    @rule(target=ids, user=st.sampled_from(USERS), offset=st.integers(0, 1000))
    def new_id(self, user: str, offset: int) -> tuple[str, str, int]:
        self.counter += 1
        return (f"act_sm_{self.counter}", user, CREATED + offset)

    @rule(
        key=ids,
        status=st.sampled_from(TokenStatus),
        delay=st.integers(0, 6),
        other_user=st.booleans(),
        note=st.integers(0, 3),
    )
    def save(
        self,
        key: tuple[str, str, int],
        status: TokenStatus,
        delay: int,
        other_user: bool,
        note: int,
    ) -> None:
        token_id, user, created = key
        snapshot = ActorToken(
            id=token_id,
            status=status,
            user_id="user_other" if other_user else user,
            actor={"sub": "user_admin", "note": note},
            created_at=created,
            updated_at=created + delay,
        )
        stored = self.model.get(token_id)
        expected = _expected_outcome(stored, snapshot)

        assert self.repo.save(snapshot) is expected
        if expected in (SaveOutcome.INSERTED, SaveOutcome.UPDATED):
            self.model[token_id] = snapshot

    @rule(key=ids, accept=st.booleans(), at_delay=st.integers(0, 8))
    def transition(self, key: tuple[str, str, int], accept: bool, at_delay: int) -> None:
        token_id, _, created = key
        at = created + at_delay
        target = TokenStatus.ACCEPTED if accept else TokenStatus.REVOKED
        method = self.repo.accept if accept else self.repo.revoke
        stored = self.model.get(token_id)

        if stored is None:
            try:
                method(token_id, at)
            except TokenNotFoundError:
                return
            raise AssertionError(f"{token_id} is not stored, but the transition succeeded")
        if stored.status.is_terminal:
            try:
                method(token_id, at)
            except InvalidTransitionError as error:
                assert error.current_status == stored.status.value
                return
            raise AssertionError(f"{token_id} is {stored.status}, but the transition succeeded")

        result = method(token_id, at)
        expected = ActorToken.from_clerk(
            {
                **stored.to_clerk(),
                "status": target.value,
                "updated_at": max(stored.updated_at, at),
            }
        )
        assert result == expected
        self.model[token_id] = expected

    @rule(key=consumes(ids))
    def forget_id(self, key: tuple[str, str, int]) -> None:
        """Stop using an id, so that later rules pick among fewer, busier ids."""

    @invariant()
    def reads_match_model(self) -> None:
        for token_id, token in self.model.items():
            assert self.repo.get(token_id) == token
        for user in [*USERS, "user_other"]:
            page = self.repo.list_for_user(user, limit=1000)
            expected = sorted(
                (token for token in self.model.values() if token.user_id == user),
                key=lambda token: (token.created_at, token.id),
                reverse=True,
            )
            assert [token.id for token in page.items] == [token.id for token in expected]
            pending = self.repo.list_for_user(user, status=TokenStatus.PENDING, limit=1000)
            assert {token.id for token in pending.items} == {
                token.id for token in expected if token.status is TokenStatus.PENDING
            }


def _run_machine(engine: Engine, examples: int, steps: int) -> None:
    machine: Any = type("BoundStatusMachine", (StatusMachine,), {"engine": engine})
    run_state_machine_as_test(
        machine, settings=settings(max_examples=examples, stateful_step_count=steps, deadline=None)
    )


def test_status_rules_state_machine(clean_engine: Engine) -> None:
    _run_machine(clean_engine, examples=12, steps=25)


@pytest.mark.slow
def test_status_rules_state_machine_soak(clean_engine: Engine) -> None:
    _run_machine(clean_engine, examples=300, steps=60)
