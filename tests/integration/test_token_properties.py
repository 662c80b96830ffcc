"""Property tests: any actor claims or token either round-trips through PostgreSQL or is
rejected with InvalidActorTokenError before anything is written.

The strategies reach the values JSONB changes or rejects: NUL characters, lone
surrogates, NaN and infinities, -0.0, floats that JSONB prints as integers, integers
beyond what Python prints by default, and nesting past the model's depth limit.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from actortoken_store.errors import InvalidActorTokenError, InvalidArgumentError
from actortoken_store.model import (
    MAX_ACTOR_DEPTH,
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    ActorToken,
    TokenStatus,
)
from actortoken_store.repository import ActorTokenRepository
from tests.json_equality import same_json

_ids = itertools.count()

# Every code point, surrogates (category Cs) and NUL included.
any_character = st.characters(codec=None, exclude_categories=())
hostile_text = st.text(any_character, max_size=12) | st.sampled_from(
    ["", " ", "\x00", "a\x00b", "\ud800", "\udfff", "😀", "\U0010ffff", "é", "\u2028"]
)
storable_text = st.text(
    st.characters(codec=None, exclude_categories=("Cs",), exclude_characters="\x00"),
    max_size=12,
)
# Mostly storable, so that most examples reach the database, and sometimes hostile.
any_text = st.one_of(storable_text, storable_text, storable_text, hostile_text)

edge_floats = st.sampled_from(
    [-0.0, 0.0, 1e308, -1e308, 1.7976931348623157e308, 5e-324, 1e16, 1e-7, 0.1, 2.5e22]
)
storable_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.sampled_from([2**63, -(2**63) - 1]),
    st.floats(allow_nan=False, allow_infinity=False),
    edge_floats,
)
hostile_numbers = st.one_of(
    # 4299 digits pass and 4301 do not: Python refuses to print longer integers by default.
    st.sampled_from([4298, 4300, -4300]).map(lambda exponent: 10 ** abs(exponent) * exponent),
    st.floats(),
)


def _json(leaves: st.SearchStrategy[Any], keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        leaves,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)
        ),
        max_leaves=12,
    )


storable_json = _json(st.none() | st.booleans() | storable_numbers | storable_text, storable_text)
json_values = _json(
    st.none() | st.booleans() | storable_numbers | hostile_numbers | any_text, any_text
)


def _nested(depth: int) -> dict[str, Any]:
    """Return objects and lists alternating ``depth`` levels deep below the actor."""
    value: Any = "leaf"
    for level in range(depth):
        value = {"k": value} if level % 2 else [value]
    return {"deep": value}


claims = st.one_of(
    st.dictionaries(storable_text, storable_json, max_size=6),
    st.dictionaries(storable_text, storable_json, max_size=6),
    st.dictionaries(any_text, json_values, max_size=6),
    st.integers(min_value=MAX_ACTOR_DEPTH - 3, max_value=MAX_ACTOR_DEPTH + 2).map(_nested),
)


@pytest.fixture
def open_repo(clean_engine: Engine) -> Any:
    """Return a context manager that yields a repository on a new session per example.

    The session rolls back and returns its connection when the example ends, so hundreds
    of examples never exhaust the connection pool.
    """

    @contextlib.contextmanager
    def open_session_repo() -> Iterator[ActorTokenRepository]:
        with Session(clean_engine) as session:
            yield ActorTokenRepository(session)
            session.rollback()

    return open_session_repo


def _build(**fields: Any) -> ActorToken:
    values: dict[str, Any] = {
        "id": f"act_prop_{next(_ids)}",
        "status": TokenStatus.PENDING,
        "user_id": "user_prop",
        "actor": {"sub": "user_admin"},
        "created_at": 1_760_000_000_000,
        "updated_at": 1_760_000_000_000,
    }
    values.update(fields)
    return ActorToken(**values)


def _store_and_read(repo: ActorTokenRepository, token: ActorToken) -> ActorToken:
    """Save ``token`` and read it back from the database in the same transaction."""
    repo.save(token)
    repo.session.flush()
    return repo.get_one(token.id)


@given(actor=claims)
@example(actor={"n": math.nan})
@example(actor={"n": -math.inf})
@example(actor={"n": 1e308, "z": -0.0})
@example(actor={"a\x00": 1})
@example(actor={"\ud83d": "lone surrogate key"})
@example(actor={"": {"": []}})
def test_actor_claims_round_trip(open_repo: Any, actor: dict[str, Any]) -> None:
    full = {"sub": "user_admin", **actor}
    token_id = f"act_prop_{next(_ids)}"
    try:
        token = _build(id=token_id, actor=full)
    except InvalidActorTokenError as error:
        event(f"rejected: {error.problem.split()[0]}")
        with open_repo() as repo:
            assert repo.get(token_id) is None
        return

    event("stored")
    with open_repo() as repo:
        stored = _store_and_read(repo, token)
    assert stored == token
    assert same_json(dict(stored.actor), full)


timestamps = st.one_of(
    st.integers(min_value=MIN_TIMESTAMP_MS, max_value=MAX_TIMESTAMP_MS),
    st.integers(),
    st.sampled_from([MIN_TIMESTAMP_MS - 1, MAX_TIMESTAMP_MS + 1, 1_700_000_000, -1, 0]),
    st.booleans(),
    st.floats(),
    st.none(),
)
names = storable_text.filter(str.strip)
valid_tokens = st.fixed_dictionaries(
    {
        "id": names,
        "status": st.sampled_from(TokenStatus),
        "user_id": names,
        "actor": claims.map(lambda actor: {"sub": "user_admin", **actor}),
        "token": st.none() | storable_text.filter(bool),
        "url": st.none() | storable_text.filter(bool),
        "created_at": st.just(1_760_000_000_000),
        "updated_at": st.integers(min_value=1_760_000_000_000, max_value=MAX_TIMESTAMP_MS),
    }
)
hostile_fields = {
    "id": hostile_text,
    "status": st.sampled_from(["PENDING", "expired", "", None]),
    "user_id": hostile_text,
    "actor": json_values,
    "token": hostile_text,
    "url": hostile_text,
    "created_at": timestamps,
    "updated_at": timestamps,
}


def _with_one_hostile_field(fields: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(sorted(hostile_fields)).flatmap(
        lambda name: hostile_fields[name].map(lambda value: {**fields, name: value})
    )


tokens = st.one_of(valid_tokens, valid_tokens.flatmap(_with_one_hostile_field))


@given(fields=tokens)
@example(
    fields={
        "id": "act_1",
        "status": "pending",
        "user_id": "user_1",
        "actor": {"sub": " "},
        "token": None,
        "url": None,
        "created_at": 1_760_000_000_000,
        "updated_at": 1_760_000_000_000,
    }
)
def test_whole_token_round_trip(open_repo: Any, fields: dict[str, Any]) -> None:
    # The id may be what is invalid, so look up a stand-in id when it cannot be stored.
    token_id = fields["id"] if isinstance(fields["id"], str) and fields["id"].strip() else "x"
    try:
        token = ActorToken(**fields)
    except InvalidActorTokenError as error:
        event(f"rejected: {error.problem.split()[0]}")
        with open_repo() as repo, contextlib.suppress(InvalidArgumentError):
            assert repo.get(token_id) is None
        return

    event("stored")
    with open_repo() as repo:
        stored = _store_and_read(repo, token)
        page = repo.list_for_user(token.user_id, limit=5)
    assert stored == token
    assert [item.id for item in page.items] == [token.id]


@given(
    pairs=st.lists(
        st.tuples(st.sampled_from(["sub", "role", "", "x"]), json_values), min_size=1, max_size=6
    )
)
def test_duplicate_keys_last_wins(open_repo: Any, pairs: list[tuple[str, Any]]) -> None:
    members = [("sub", "user_admin"), *pairs]
    try:
        actor_text = "{" + ",".join(f"{json.dumps(k)}:{json.dumps(v)}" for k, v in members) + "}"
    except ValueError:
        return
    token_id = f"act_prop_{next(_ids)}"
    record = (
        f'{{"id": "{token_id}", "status": "pending", "user_id": "user_dup", '
        f'"actor": {actor_text}, "created_at": 1760000000000, "updated_at": 1760000000000}}'
    )
    expected = json.loads(actor_text)
    try:
        token = ActorToken.from_clerk(record)
    except InvalidActorTokenError as error:
        event(f"rejected: {error.problem.split()[0]}")
        with open_repo() as repo:
            assert repo.get(token_id) is None
        return

    event("stored")
    with open_repo() as repo:
        stored = _store_and_read(repo, token)
    assert stored == token
    assert same_json(dict(stored.actor), expected)


@given(data=st.binary(max_size=40))
def test_clerk_bytes_never_crash(data: bytes) -> None:
    try:
        ActorToken.from_clerk(data)
    except InvalidActorTokenError as error:
        assert error.field
