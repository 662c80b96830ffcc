"""Tests for how actor claims hold numbers that PostgreSQL JSONB would change."""

from __future__ import annotations

import math

import pytest

from actortoken_store.errors import InvalidActorTokenError
from actortoken_store.model import ActorToken, TokenStatus

CREATED = 1_700_000_000_000


def _actor_value(value: object) -> object:
    token = ActorToken(
        id="act_1",
        status=TokenStatus.PENDING,
        user_id="user_1",
        actor={"sub": "user_admin", "n": value},
        created_at=CREATED,
        updated_at=CREATED,
    )
    return token.actor["n"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (1e16, 10**16),
        (1.5e16, 15 * 10**15),
        (1e308, 10**308),
        (1.7976931348623157e308, 17976931348623157 * 10**292),
        (-1e20, -(10**20)),
    ],
)
def test_claim_exponent_float_becomes_int(given: float, expected: int) -> None:
    value = _actor_value(given)

    assert type(value) is int
    assert value == expected


def test_claim_negative_zero_becomes_zero() -> None:
    value = _actor_value(-0.0)

    assert isinstance(value, float)
    assert math.copysign(1.0, value) == 1.0


@pytest.mark.parametrize("given", [0.1, 1.0, 1e15, 1e-7, 5e-324, -2.5e-5, 123.456])
def test_claim_plain_float_kept(given: float) -> None:
    value = _actor_value(given)

    assert type(value) is float
    assert value == given


@pytest.mark.parametrize("given", [math.nan, math.inf, -math.inf])
def test_claim_non_finite_rejected(given: float) -> None:
    with pytest.raises(InvalidActorTokenError) as caught:
        _actor_value(given)

    assert caught.value.field == "actor.n"


def test_claim_nested_float_normalized() -> None:
    value = _actor_value({"list": [1e300, -0.0, 2.5]})

    assert value == {"list": [10**300, 0.0, 2.5]}
