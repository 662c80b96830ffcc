"""Unit tests of `actortoken_store.model`: parsing, validation and serialization."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from actortoken_store.errors import ActorTokenStoreError, InvalidActorTokenError
from actortoken_store.model import (
    MAX_ACTOR_BYTES,
    MAX_ACTOR_DEPTH,
    MAX_ID_BYTES,
    MAX_SECRET_BYTES,
    MAX_TIMESTAMP_MS,
    MIN_TIMESTAMP_MS,
    ActorToken,
    ObjectType,
    TokenStatus,
    ms_to_datetime,
)
from tests.conftest import fixture_file, load_jsonl

CREATED = 1_750_500_032_016
UPDATED = 1_750_500_637_310
TICKET = "eyJhbGciOiJSUzI1NiJ9.eyJzdCI6ImFjdG9yX3Rva2VuIn0.c2lnbmF0dXJl"
TICKET_URL = f"https://example.clerk.accounts.dev/v1/tickets/accept?ticket={TICKET}"


def record(**changes: Any) -> dict[str, Any]:
    """Return a valid pending snapshot in Clerk's snake_case form, with ``changes`` applied."""
    data: dict[str, Any] = {
        "object": "actor_token",
        "id": "act_2v0Hewk5o1Sce0BqlreKI0OgApH",
        "status": "pending",
        "user_id": "user_2UEUOEtV6bYeLqRgdf2q1SoZvwj",
        "actor": {"sub": "user_2fBwCI7pUHaHU6OEZMr0OaG0CQx", "reason": "billing dispute"},
        "token": TICKET,
        "url": TICKET_URL,
        "created_at": CREATED,
        "updated_at": UPDATED,
    }
    data.update(changes)
    return data


def without(name: str) -> dict[str, Any]:
    data = record()
    del data[name]
    return data


def rejection(data: Any) -> InvalidActorTokenError:
    """Parse ``data`` and return the validation error it must raise."""
    with pytest.raises(InvalidActorTokenError) as caught:
        ActorToken.from_clerk(data)
    return caught.value


# --- valid input -----------------------------------------------------------------------------


def test_parse_valid_record() -> None:
    token = ActorToken.from_clerk(record())

    assert token.id == "act_2v0Hewk5o1Sce0BqlreKI0OgApH"
    assert token.status is TokenStatus.PENDING
    assert token.object is ObjectType.ACTOR_TOKEN
    assert token.user_id == "user_2UEUOEtV6bYeLqRgdf2q1SoZvwj"
    assert token.actor_sub == "user_2fBwCI7pUHaHU6OEZMr0OaG0CQx"
    assert token.token == TICKET
    assert token.url == TICKET_URL
    assert token.has_ticket


def test_error_type_is_library_error() -> None:
    error = rejection(record(status="done"))

    assert isinstance(error, ActorTokenStoreError)
    assert isinstance(error, ValueError)
    assert "status" in str(error)


def test_object_defaults_when_missing() -> None:
    assert ActorToken.from_clerk(without("object")).object is ObjectType.ACTOR_TOKEN


@pytest.mark.parametrize("name", ["token", "url"])
def test_secret_missing_or_null_is_none(name: str) -> None:
    assert getattr(ActorToken.from_clerk(without(name)), name) is None
    assert getattr(ActorToken.from_clerk(record(**{name: None})), name) is None


@pytest.mark.parametrize("status", ["pending", "accepted", "revoked"])
def test_every_status_parses(status: str) -> None:
    token = ActorToken.from_clerk(record(status=status))

    assert token.status is TokenStatus(status)
    assert token.status.is_terminal is (status != "pending")


def test_constructor_validates_too() -> None:
    with pytest.raises(InvalidActorTokenError) as caught:
        ActorToken(
            id="act_1",
            status=TokenStatus.PENDING,
            user_id="",
            actor={"sub": "user_1"},
            created_at=CREATED,
            updated_at=CREATED,
        )
    assert caught.value.field == "user_id"


def test_constructor_normalizes_strings() -> None:
    token = ActorToken(
        id="act_1",
        status="revoked",  # type: ignore[arg-type]
        user_id="user_1",
        actor={"sub": "user_2"},
        created_at=CREATED,
        updated_at=CREATED,
        object="actor_token",  # type: ignore[arg-type]
    )

    assert token.status is TokenStatus.REVOKED
    assert token.object is ObjectType.ACTOR_TOKEN


# --- object and status -----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["session", "", "ACTOR_TOKEN", None, 1, ["actor_token"]])
def test_object_not_actor_token(value: Any) -> None:
    error = rejection(record(object=value))

    assert error.field == "object"
    assert "'actor_token'" in error.problem


@pytest.mark.parametrize("value", ["done", "", "Pending", "PENDING", None, 0, True, ["pending"]])
def test_status_unknown(value: Any) -> None:
    error = rejection(record(status=value))

    assert error.field == "status"
    assert "is not one of 'pending', 'accepted', 'revoked'" in error.problem


def test_status_missing() -> None:
    error = rejection(without("status"))

    assert error.field == "status"
    assert error.problem == "missing"


# --- id and user_id --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["id", "user_id"])
def test_text_field_missing(name: str) -> None:
    error = rejection(without(name))

    assert error.field == name
    assert error.problem == "missing"


@pytest.mark.parametrize("name", ["id", "user_id"])
@pytest.mark.parametrize("value", ["", " ", "\t\n"])
def test_text_field_empty(name: str, value: str) -> None:
    error = rejection(record(**{name: value}))

    assert error.field == name
    assert error.problem == "must not be empty"


@pytest.mark.parametrize("name", ["id", "user_id"])
@pytest.mark.parametrize(
    ("value", "type_name"),
    [(None, "null"), (42, "int"), (4.2, "float"), (True, "bool"), (["a"], "list"), ({}, "dict")],
)
def test_text_field_not_string(name: str, value: Any, type_name: str) -> None:
    error = rejection(record(**{name: value}))

    assert error.field == name
    assert error.problem == f"must be a string, got {type_name}"


@pytest.mark.parametrize("name", ["id", "user_id"])
def test_text_field_too_long(name: str) -> None:
    assert ActorToken.from_clerk(record(**{name: "a" * MAX_ID_BYTES}))

    error = rejection(record(**{name: "é" * MAX_ID_BYTES}))

    assert error.field == name
    assert error.problem == f"is {2 * MAX_ID_BYTES} bytes long; the maximum is {MAX_ID_BYTES}"


# --- token and url ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["token", "url"])
@pytest.mark.parametrize(
    ("value", "type_name"), [(42, "int"), (True, "bool"), ([TICKET], "list"), ({}, "dict")]
)
def test_secret_not_string(name: str, value: Any, type_name: str) -> None:
    error = rejection(record(**{name: value}))

    assert error.field == name
    assert error.problem == f"must be a string or null, got {type_name}"


@pytest.mark.parametrize("name", ["token", "url"])
def test_secret_empty(name: str) -> None:
    error = rejection(record(**{name: ""}))

    assert error.field == name
    assert "use null" in error.problem


@pytest.mark.parametrize("name", ["token", "url"])
def test_secret_too_long(name: str) -> None:
    error = rejection(record(**{name: "x" * (MAX_SECRET_BYTES + 1)}))

    assert error.field == name
    assert error.problem == (
        f"is {MAX_SECRET_BYTES + 1} bytes long; the maximum is {MAX_SECRET_BYTES}"
    )


@pytest.mark.parametrize("name", ["token", "url"])
def test_secret_never_in_error(name: str) -> None:
    secret = TICKET + "\x00"

    error = rejection(record(**{name: secret}))

    assert error.field == name
    assert TICKET not in str(error)
    assert TICKET not in repr(error)


# --- actor -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(None, "null"), ("user_1", "str"), (["user_1"], "list"), (7, "int"), (True, "bool")],
)
def test_actor_not_object(value: Any, type_name: str) -> None:
    error = rejection(record(actor=value))

    assert error.field == "actor"
    assert error.problem == f"must be an object, got {type_name}"


def test_actor_missing() -> None:
    error = rejection(without("actor"))

    assert error.field == "actor"
    assert error.problem == "missing"


def test_actor_without_sub() -> None:
    error = rejection(record(actor={"reason": "support"}))

    assert error.field == "actor.sub"
    assert error.problem == "missing"


@pytest.mark.parametrize("value", ["", "   "])
def test_actor_sub_empty(value: str) -> None:
    error = rejection(record(actor={"sub": value}))

    assert error.field == "actor.sub"
    assert error.problem == "must not be empty"


@pytest.mark.parametrize(
    ("value", "type_name"),
    [(None, "null"), (12, "int"), (1.5, "float"), (False, "bool"), (["u"], "list"), ({}, "dict")],
)
def test_actor_sub_not_string(value: Any, type_name: str) -> None:
    error = rejection(record(actor={"sub": value}))

    assert error.field == "actor.sub"
    assert error.problem == f"must be a string, got {type_name}"


def test_actor_sub_too_long() -> None:
    error = rejection(record(actor={"sub": "u" * (MAX_ID_BYTES + 1)}))

    assert error.field == "actor.sub"
    assert "maximum is 1024" in error.problem


def test_actor_too_large() -> None:
    error = rejection(record(actor={"sub": "user_1", "note": "x" * MAX_ACTOR_BYTES}))

    assert error.field == "actor"
    assert f"the maximum is {MAX_ACTOR_BYTES}" in error.problem


def test_actor_too_deep() -> None:
    nested: Any = "leaf"
    for _ in range(MAX_ACTOR_DEPTH + 1):
        nested = [nested]

    error = rejection(record(actor={"sub": "user_1", "deep": nested}))

    assert error.field.startswith("actor.deep")
    assert f"deeper than {MAX_ACTOR_DEPTH} levels" in error.problem


def test_actor_cycle_rejected() -> None:
    cyclic: dict[str, Any] = {"sub": "user_1"}
    cyclic["self"] = cyclic

    error = rejection(record(actor=cyclic))

    assert "deeper than" in error.problem


def test_actor_key_not_string() -> None:
    error = rejection(record(actor={"sub": "user_1", 5: "five"}))

    assert error.field == "actor"
    assert "key of type int" in error.problem


@pytest.mark.parametrize("value", [{1, 2}, b"bytes", object()])
def test_actor_value_not_json(value: Any) -> None:
    error = rejection(record(actor={"sub": "user_1", "odd": value}))

    assert error.field == "actor.odd"
    assert "which JSON cannot hold" in error.problem


def test_actor_huge_integer() -> None:
    error = rejection(record(actor={"sub": "user_1", "n": 10**5000}))

    assert error.field == "actor.n"
    assert "more than 4300 digits" in error.problem


def test_actor_claims_kept_exactly() -> None:
    claims = {
        "sub": "user_1",
        "reason": "support",
        "scopes": ["read", "impersonate"],
        "meta": {"team": "support", "level": 2, "ratio": 0.5, "on": True, "gone": None},
        "empty": {},
        "": "empty key",
    }

    token = ActorToken.from_clerk(record(actor=claims))

    assert token.to_clerk()["actor"] == claims


def test_actor_copied_on_input_and_output() -> None:
    claims: dict[str, Any] = {"sub": "user_1", "scopes": ["read"]}
    token = ActorToken.from_clerk(record(actor=claims))

    claims["scopes"].append("write")
    token.to_clerk()["actor"]["scopes"].append("admin")

    assert token.actor["scopes"] == ["read"]


def test_actor_tuple_becomes_list() -> None:
    token = ActorToken.from_clerk(record(actor={"sub": "user_1", "scopes": ("read",)}))

    assert token.to_clerk()["actor"]["scopes"] == ["read"]


# --- timestamps ------------------------------------------------------------------------------

TIMESTAMP_FIELDS = ["created_at", "updated_at"]


@pytest.mark.parametrize("name", TIMESTAMP_FIELDS)
def test_timestamp_missing(name: str) -> None:
    error = rejection(without(name))

    assert error.field == name
    assert error.problem == "missing"


@pytest.mark.parametrize("name", TIMESTAMP_FIELDS)
@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (True, "bool"),
        (False, "bool"),
        (float(UPDATED), "float"),
        (1_750_500_637_310.5, "float"),
        (str(UPDATED), "str"),
        ("2025-06-21T10:00:32Z", "str"),
        (None, "null"),
        ([UPDATED], "list"),
    ],
)
def test_timestamp_not_integer(name: str, value: Any, type_name: str) -> None:
    # Both fields get the same value, so updated_at >= created_at cannot interfere.
    error = rejection(record(created_at=value, updated_at=value))

    assert error.field == "created_at"
    assert error.problem.startswith(f"must be an integer of Unix milliseconds, got {type_name}")

    other = "updated_at" if name == "created_at" else "created_at"
    error = rejection(record(**{name: value, other: UPDATED}))
    assert error.field == name


@pytest.mark.parametrize("name", TIMESTAMP_FIELDS)
@pytest.mark.parametrize("value", [-1, -UPDATED, pytest.param(-(10**5000), id="huge")])
def test_timestamp_negative(name: str, value: int) -> None:
    error = rejection(record(**{name: value}))

    assert error.field == name
    assert error.problem.endswith("is negative")


@pytest.mark.parametrize("name", TIMESTAMP_FIELDS)
@pytest.mark.parametrize("value", [0, 1_750_500_032, MIN_TIMESTAMP_MS - 1])
def test_timestamp_in_seconds(name: str, value: int) -> None:
    error = rejection(record(**{name: value}))

    assert error.field == name
    assert "looks like seconds" in error.problem
    assert str(value) in error.problem


@pytest.mark.parametrize("name", TIMESTAMP_FIELDS)
@pytest.mark.parametrize("value", [MAX_TIMESTAMP_MS + 1, 10**20, pytest.param(10**5000, id="huge")])
def test_timestamp_after_year_9999(name: str, value: int) -> None:
    error = rejection(record(**{name: value}))

    assert error.field == name
    assert error.problem.endswith("is after year 9999")


def test_timestamp_limits_accepted() -> None:
    first = ActorToken.from_clerk(record(created_at=MIN_TIMESTAMP_MS, updated_at=MAX_TIMESTAMP_MS))

    assert first.created_at_utc == datetime(2001, 9, 9, 1, 46, 40, tzinfo=UTC)
    assert first.updated_at_utc == datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)


def test_updated_before_created() -> None:
    error = rejection(record(created_at=UPDATED, updated_at=CREATED))

    assert error.field == "updated_at"
    assert error.problem == f"{CREATED} is before created_at {UPDATED}"


def test_timestamps_exact() -> None:
    token = ActorToken.from_clerk(record(created_at=CREATED, updated_at=CREATED + 1))

    assert token.created_at == CREATED
    assert token.updated_at == CREATED + 1
    assert token.to_clerk()["created_at"] == CREATED
    assert token.to_clerk()["updated_at"] == CREATED + 1


def test_timestamps_as_aware_utc() -> None:
    token = ActorToken.from_clerk(record())

    assert token.created_at_utc.tzinfo is UTC
    assert token.created_at_utc.utcoffset() == timedelta(0)
    assert token.created_at_utc == datetime(2025, 6, 21, 10, 0, 32, 16000, tzinfo=UTC)
    assert token.updated_at_utc.timestamp() * 1000 == pytest.approx(UPDATED, abs=0.5)


@pytest.mark.parametrize("ms", [MIN_TIMESTAMP_MS, CREATED, CREATED + 999, MAX_TIMESTAMP_MS])
def test_ms_to_datetime_exact(ms: int) -> None:
    moment = ms_to_datetime(ms)

    back = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    assert back == ms
    assert moment.microsecond % 1000 == 0


# --- NUL characters, lone surrogates, NaN ----------------------------------------------------


@pytest.mark.parametrize("name", ["id", "user_id", "token", "url"])
@pytest.mark.parametrize("text", ["\x00", "act\x00", "a\x00b"])
def test_nul_in_string_field(name: str, text: str) -> None:
    error = rejection(record(**{name: text}))

    assert error.field == name
    assert "NUL character" in error.problem


@pytest.mark.parametrize(
    ("actor", "field"),
    [
        ({"sub": "user\x00"}, "actor.sub"),
        ({"sub": "user_1", "reason": "a\x00"}, "actor.reason"),
        ({"sub": "user_1", "bad\x00key": "x"}, "actor.bad\x00key"),
        ({"sub": "user_1", "meta": {"team": "\x00"}}, "actor.meta.team"),
        ({"sub": "user_1", "meta": {"\x00": 1}}, "actor.meta.\x00"),
        ({"sub": "user_1", "scopes": ["read", "\x00"]}, "actor.scopes[1]"),
        ({"sub": "user_1", "deep": [{"list": [["ok", "x\x00"]]}]}, "actor.deep[0].list[0][1]"),
    ],
)
def test_nul_in_actor_claims(actor: dict[str, Any], field: str) -> None:
    error = rejection(record(actor=actor))

    assert error.field == field
    assert "NUL character" in error.problem


@pytest.mark.parametrize("name", ["id", "user_id", "token", "url"])
def test_lone_surrogate_in_string_field(name: str) -> None:
    error = rejection(record(**{name: "a\ud800b"}))

    assert error.field == name
    assert "lone surrogate" in error.problem


def test_lone_surrogate_in_actor() -> None:
    error = rejection(record(actor={"sub": "user_1", "scopes": ["\udfff"]}))

    assert error.field == "actor.scopes[0]"
    assert "lone surrogate" in error.problem


def test_lone_surrogate_in_json_text() -> None:
    text = json.dumps(record(user_id="user_\ud83d"))

    error = rejection(text)

    assert error.field == "user_id"
    assert "lone surrogate" in error.problem


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_number_in_actor(value: float) -> None:
    error = rejection(record(actor={"sub": "user_1", "meta": {"score": value}}))

    assert error.field == "actor.meta.score"
    assert "not a finite number" in error.problem


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_constant_in_json_text(constant: str) -> None:
    text = json.dumps(record()).replace('"reason": "billing dispute"', f'"score": {constant}')
    assert constant in text

    error = rejection(text)

    assert error.field == "<record>"
    assert f"{constant} is not a JSON number" in error.problem


def test_overflowing_number_in_json_text() -> None:
    # json.loads turns 1e400 into an infinite float without calling parse_constant.
    text = json.dumps(record(actor={"sub": "user_1", "score": 0})).replace(
        '"score": 0', '"score": 1e400'
    )

    error = rejection(text)

    assert error.field == "actor.score"
    assert "not a finite number" in error.problem


@pytest.mark.parametrize("name", TIMESTAMP_FIELDS)
def test_non_finite_timestamp(name: str) -> None:
    error = rejection(record(**{name: float("nan")}))

    assert error.field == name
    assert "got float nan" in error.problem


# --- unknown keys and key styles -------------------------------------------------------------


def test_unknown_keys_ignored_with_debug_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="actortoken_store.model")

    token = ActorToken.from_clerk(record(expires_at=None, session_id="sess_1"))

    assert token == ActorToken.from_clerk(record())
    messages = [
        entry.getMessage() for entry in caplog.records if entry.name == "actortoken_store.model"
    ]
    assert messages == ["ignoring unknown actor token keys: ['expires_at', 'session_id']"]
    assert all(entry.levelno == logging.DEBUG for entry in caplog.records)


def test_known_keys_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="actortoken_store.model")

    ActorToken.from_clerk(record())

    assert caplog.records == []


def camel(data: dict[str, Any]) -> dict[str, Any]:
    names = {"user_id": "userId", "created_at": "createdAt", "updated_at": "updatedAt"}
    return {names.get(key, key): value for key, value in data.items()}


def test_camel_case_parses_same() -> None:
    assert ActorToken.from_clerk(camel(record())) == ActorToken.from_clerk(record())


def test_mixed_case_keys_parse() -> None:
    data = record()
    data["userId"] = data.pop("user_id")

    assert ActorToken.from_clerk(data) == ActorToken.from_clerk(record())


def test_equal_pair_accepted() -> None:
    data = record()
    data["createdAt"] = data["created_at"]

    assert ActorToken.from_clerk(data).created_at == CREATED


@pytest.mark.parametrize(
    ("snake", "camel_name", "other"),
    [
        ("user_id", "userId", "user_other"),
        ("created_at", "createdAt", CREATED - 1),
        ("updated_at", "updatedAt", UPDATED + 1),
    ],
)
def test_conflicting_pair_rejected(snake: str, camel_name: str, other: Any) -> None:
    data = record()
    data[camel_name] = other

    error = rejection(data)

    assert error.field == snake
    assert error.problem == f"both {snake!r} and {camel_name!r} are given and differ"


def test_camel_errors_name_clerk_field() -> None:
    error = rejection(camel(record(user_id="")))

    assert error.field == "user_id"


# --- JSON text and bytes ---------------------------------------------------------------------


def test_parse_json_text() -> None:
    assert ActorToken.from_clerk(json.dumps(record())) == ActorToken.from_clerk(record())


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16", "utf-32"])
def test_parse_json_bytes(encoding: str) -> None:
    data = json.dumps(record(actor={"sub": "user_1", "name": "Zoë"}), ensure_ascii=False)

    token = ActorToken.from_clerk(data.encode(encoding))

    assert token.actor["name"] == "Zoë"


def test_parse_json_bytearray() -> None:
    assert ActorToken.from_clerk(bytearray(json.dumps(record()).encode())).id == record()["id"]


@pytest.mark.parametrize("text", ["", "   ", "{", '{"id": }', "not json", '{"a": 1} {"b": 2}'])
def test_invalid_json(text: str) -> None:
    error = rejection(text)

    assert error.field == "<record>"
    assert error.problem.startswith("not valid JSON")


def test_invalid_utf8() -> None:
    error = rejection(b'{"id": "\xff"}')

    assert error.field == "<record>"
    assert "UTF-8" in error.problem


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a":' * 100_000])
def test_json_nested_too_deeply(text: str) -> None:
    error = rejection(text)

    assert error.field == "<record>"
    assert "nested too deeply" in error.problem


def test_duplicate_key_in_json_text() -> None:
    text = json.dumps(record())[:-1] + ', "status": "revoked"}'

    error = rejection(text)

    assert error.field == "<record>"
    assert "'status' twice" in error.problem


def test_duplicate_actor_key_in_json_text() -> None:
    text = json.dumps(record(actor={"sub": "user_1"})).replace(
        '{"sub": "user_1"}', '{"sub": "user_1", "sub": "user_2"}'
    )

    error = rejection(text)

    assert "'sub' twice" in error.problem


@pytest.mark.parametrize(
    ("data", "type_name"),
    [("[]", "list"), ("[{}]", "list"), ('"text"', "str"), ("42", "int"), ("null", "null")],
)
def test_json_not_object(data: str, type_name: str) -> None:
    error = rejection(data)

    assert error.field == "<record>"
    assert error.problem == f"expected a JSON object, got {type_name}"


@pytest.mark.parametrize(("data", "type_name"), [([record()], "list"), (None, "null"), (7, "int")])
def test_record_not_object(data: Any, type_name: str) -> None:
    error = rejection(data)

    assert error.field == "<record>"
    assert error.problem == f"expected a JSON object, got {type_name}"


def test_error_message_bounded() -> None:
    error = rejection(record(status="x" * 10_000))

    assert len(str(error)) < 200


# --- round trip and fixtures -----------------------------------------------------------------


def test_fixture_lines_round_trip() -> None:
    lines = fixture_file("actor_tokens.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 308

    for number, line in enumerate(lines, start=1):
        token = ActorToken.from_clerk(line)
        assert token.to_clerk() == json.loads(line), f"line {number}"
        assert list(token.to_clerk()) == list(json.loads(line)), f"key order, line {number}"


def test_fixture_bytes_round_trip() -> None:
    for line in fixture_file("actor_tokens.jsonl").read_bytes().splitlines():
        assert ActorToken.from_clerk(line).to_clerk() == json.loads(line)


def test_camel_file_matches_snake_twins() -> None:
    camel_records = json.loads(fixture_file("actor_tokens_camel.json").read_text("utf-8"))
    snake_records = load_jsonl("actor_tokens.jsonl")[: len(camel_records)]
    assert len(camel_records) == 20

    for camel_record, snake_record in zip(camel_records, snake_records, strict=True):
        assert "userId" in camel_record
        parsed = ActorToken.from_clerk(camel_record)
        assert parsed == ActorToken.from_clerk(snake_record)
        assert parsed.to_clerk() == snake_record


def test_lifecycle_lines_parse() -> None:
    for data in load_jsonl("lifecycles.jsonl"):
        assert ActorToken.from_clerk(data).to_clerk() == data


def test_equal_values_hash_equal() -> None:
    first = ActorToken.from_clerk(record())
    second = ActorToken.from_clerk(json.dumps(record()))

    assert first == second
    assert hash(first) == hash(second)
    assert first != ActorToken.from_clerk(record(token=None))


def test_value_is_frozen() -> None:
    token = ActorToken.from_clerk(record())

    with pytest.raises(AttributeError):
        token.status = TokenStatus.REVOKED  # type: ignore[misc]


# --- secrets stay out of repr and str --------------------------------------------------------


@pytest.mark.parametrize("render", [repr, str, "{}".format, "{!r}".format])
def test_repr_hides_secrets(render: Any) -> None:
    token = ActorToken.from_clerk(record())

    text = render(token)

    assert TICKET not in text
    assert "accept?ticket" not in text
    assert "eyJ" not in text
    assert "act_2v0Hewk5o1Sce0BqlreKI0OgApH" in text
    assert "has_ticket=True" in text


def test_repr_hides_secrets_in_containers() -> None:
    tokens = [ActorToken.from_clerk(record())]

    assert TICKET not in repr(tokens)
    assert TICKET not in str({"token": tokens[0]})


def test_fixture_reprs_hide_secrets(fixture_tokens: list[ActorToken]) -> None:
    for token in fixture_tokens:
        text = repr(token)
        if token.token is not None:
            assert token.token not in text
        if token.url is not None:
            assert token.url not in text


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": " act_x "}, "id"),
        ({"id": "act_x\n"}, "id"),
        ({"user_id": "\tuser_1"}, "user_id"),
        ({"actor": {"sub": "user_admin "}}, "actor.sub"),
    ],
)
def test_padded_ids_rejected(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidActorTokenError, match="leading or trailing whitespace") as raised:
        ActorToken.from_clerk(record(**changes))
    assert raised.value.field == field
