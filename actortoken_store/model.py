"""The ActorToken value: parsing Clerk's JSON, validation and serialization.

Nothing here does I/O. Clerk's Backend API sends snake_case keys (``user_id``,
``created_at``); Clerk's PHP and JS SDK models use camelCase (``userId``, ``createdAt``).
Both forms parse to the same value, and `ActorToken.to_clerk` always writes snake_case.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from actortoken_store.errors import InvalidActorTokenError

__all__ = [
    "MAX_ACTOR_BYTES",
    "MAX_ACTOR_DEPTH",
    "MAX_ID_BYTES",
    "MAX_SECRET_BYTES",
    "MAX_TIMESTAMP_MS",
    "MIN_TIMESTAMP_MS",
    "ActorToken",
    "ObjectType",
    "TokenStatus",
    "ms_to_datetime",
    "validate_actor",
]

logger = logging.getLogger(__name__)

MIN_TIMESTAMP_MS: Final = 1_000_000_000_000
"""2001-09-09T01:46:40Z in milliseconds. A smaller value is almost surely in seconds."""

MAX_TIMESTAMP_MS: Final = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z, the last instant a Python datetime holds."""

MAX_ACTOR_BYTES: Final = 64 * 1024
"""Largest accepted actor, as compact UTF-8 JSON. Clerk puts the actor into a JWT, so
real actors are a few hundred bytes; the limit keeps a broken record from filling memory."""

MAX_ACTOR_DEPTH: Final = 64
"""Deepest accepted nesting of objects and lists inside the actor."""

MAX_ID_BYTES: Final = 1024
"""Longest accepted ``id``, ``user_id`` and ``actor.sub``, in UTF-8 bytes. Clerk's ids are
about 30 characters. The limit keeps an index entry holding two of them (a user's tokens are
indexed by ``user_id`` and ``id``) below PostgreSQL's B-tree maximum of 2704 bytes."""

MAX_SECRET_BYTES: Final = 64 * 1024
"""Longest accepted ``token`` and ``url``, in UTF-8 bytes. Clerk's tickets are JWTs of
about a kilobyte; the limit keeps a broken record from filling memory."""

_MAX_INT_DIGITS: Final = 4300
"""Python's default limit on int-to-str conversion (`sys.get_int_max_str_digits`)."""


class TokenStatus(StrEnum):
    """Status of an actor token. Only a pending token can change; the others are terminal."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"

    @property
    def is_terminal(self) -> bool:
        """Whether no further transition is possible."""
        return self is not TokenStatus.PENDING


class ObjectType(StrEnum):
    """Value of Clerk's ``object`` field for this resource."""

    ACTOR_TOKEN = "actor_token"


# Clerk field -> the camelCase name used by Clerk's PHP and JS SDK models.
_CAMEL_NAMES: Final = {
    "user_id": "userId",
    "created_at": "createdAt",
    "updated_at": "updatedAt",
}
_KNOWN_KEYS: Final = frozenset(
    {"object", "id", "status", "user_id", "actor", "token", "url", "created_at", "updated_at"}
    | set(_CAMEL_NAMES.values())
)


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def ms_to_datetime(ms: int) -> datetime:
    """Convert Unix milliseconds to an aware UTC datetime, exactly."""
    # Integer timedelta arithmetic is exact and faster than fromtimestamp().replace().
    return _EPOCH + timedelta(milliseconds=ms)


@dataclass(frozen=True, slots=True, repr=False)
class ActorToken:
    """An immutable, validated Clerk actor token.

    Build one with `ActorToken.from_clerk` or the constructor; both validate. Timestamps are
    Unix milliseconds, as Clerk sends them, and `created_at_utc`/`updated_at_utc` give the
    same instants as aware datetimes. ``token`` and ``url`` are secrets: they are left out of
    `repr` and `str`.

    ``expires_at`` is not a Clerk field: it is the expiry of the ticket in Unix milliseconds as
    stored (from the ``exp`` claim of the ticket or given at save), or None. It does not
    take part in equality, so a token read back equals the Clerk value it was saved from.

    ``actor`` is a private deep copy of the claims. Treat it as read-only; `to_clerk`
    returns a fresh copy that may be changed freely.
    """

    id: str
    status: TokenStatus
    user_id: str
    actor: Mapping[str, Any]
    created_at: int
    updated_at: int
    token: str | None = field(default=None, compare=True)
    url: str | None = field(default=None, compare=True)
    object: ObjectType = ObjectType.ACTOR_TOKEN
    expires_at: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        _validate_text("id", self.id)
        _validate_text("user_id", self.user_id)
        try:
            status = TokenStatus(self.status)
        except ValueError:
            raise _invalid_choice("status", self.status, TokenStatus) from None
        try:
            object_type = ObjectType(self.object)
        except ValueError:
            raise _invalid_choice("object", self.object, ObjectType) from None
        actor = _validate_actor(self.actor)
        _validate_timestamp("created_at", self.created_at)
        _validate_timestamp("updated_at", self.updated_at)
        if self.updated_at < self.created_at:
            raise InvalidActorTokenError(
                "updated_at",
                f"{self.updated_at} is before created_at {self.created_at}",
            )
        _validate_secret("token", self.token)
        _validate_secret("url", self.url)
        if self.expires_at is not None:
            _validate_timestamp("expires_at", self.expires_at)

        # Normalize plain strings to the enums and keep a private copy of the claims.
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "object", object_type)
        object.__setattr__(self, "actor", actor)

    @property
    def actor_sub(self) -> str:
        """The impersonator: the actor's ``sub`` claim."""
        sub: str = self.actor["sub"]
        return sub

    @property
    def created_at_utc(self) -> datetime:
        """`created_at` as an aware UTC datetime."""
        return ms_to_datetime(self.created_at)

    @property
    def updated_at_utc(self) -> datetime:
        """`updated_at` as an aware UTC datetime."""
        return ms_to_datetime(self.updated_at)

    @property
    def expires_at_utc(self) -> datetime | None:
        """`expires_at` as an aware UTC datetime, or None when the expiry is unknown."""
        return None if self.expires_at is None else ms_to_datetime(self.expires_at)

    @property
    def has_ticket(self) -> bool:
        """Whether this value carries the sign-in ticket."""
        return self.token is not None

    def with_expiry(self, expires_at: int | None) -> ActorToken:
        """Return a copy with ``expires_at`` (Unix milliseconds, or None) replaced."""
        return dataclasses.replace(self, expires_at=expires_at)

    @classmethod
    def from_clerk(cls, data: Mapping[str, Any] | str | bytes | bytearray) -> ActorToken:
        """Parse one actor token from Clerk's JSON, snake_case or camelCase.

        Args:
            data: a decoded JSON object, or the JSON text of one.

        Raises:
            InvalidActorTokenError: the input is not a JSON object or a field is invalid;
                the error names the field.
        """
        if isinstance(data, str | bytes | bytearray):
            data = _decode_json(data)
        if not isinstance(data, Mapping):
            problem = f"expected a JSON object, got {_describe_type(data)}"
            if hasattr(data, "model_dump"):
                # Most likely clerk_backend_api.models.ActorToken, which has lost its claims.
                problem += (
                    "; convert a Clerk SDK model with "
                    "actortoken_store.clerk_models.from_sdk_model(model, actor=claims)"
                )
            raise InvalidActorTokenError("<record>", problem)

        unknown = [key for key in data if key not in _KNOWN_KEYS]
        if unknown:
            logger.debug("ignoring unknown actor token keys: %s", sorted(map(str, unknown)))

        return cls(
            object=_pick(data, "object", ObjectType.ACTOR_TOKEN),
            id=_pick(data, "id"),
            status=_pick(data, "status"),
            user_id=_pick(data, "user_id"),
            actor=_pick(data, "actor"),
            token=_pick(data, "token", None),
            url=_pick(data, "url", None),
            created_at=_pick(data, "created_at"),
            updated_at=_pick(data, "updated_at"),
        )

    @classmethod
    def from_trusted(
        cls,
        *,
        id: str,
        status: TokenStatus,
        user_id: str,
        actor: dict[str, Any],
        created_at: int,
        updated_at: int,
        token: str | None = None,
        url: str | None = None,
        object: ObjectType = ObjectType.ACTOR_TOKEN,
        expires_at: int | None = None,
    ) -> ActorToken:
        """Build a token from values that are known to be valid, without validating them.

        The repositories use this for rows they read back: every row passed validation on
        its way in, or the table's CHECK constraints when raw SQL wrote it. Skipping the
        validation (which deep-copies and re-encodes the actor) makes reading a page of
        tokens several times cheaper. ``status`` must be a `TokenStatus`, ``actor`` a dict
        that the new token may own, and the timestamps Unix milliseconds.
        """
        # The builtin `object` is shadowed by the Clerk field of the same name here.
        instance = _new(cls)
        _set(instance, "id", id)
        _set(instance, "status", status)
        _set(instance, "user_id", user_id)
        _set(instance, "actor", actor)
        _set(instance, "created_at", created_at)
        _set(instance, "updated_at", updated_at)
        _set(instance, "token", token)
        _set(instance, "url", url)
        _set(instance, "expires_at", expires_at)
        _set(instance, "object", object)
        return instance

    def to_clerk(self) -> dict[str, Any]:
        """Serialize to Clerk's snake_case JSON object, in Clerk's key order."""
        return {
            "object": self.object.value,
            "id": self.id,
            "status": self.status.value,
            "user_id": self.user_id,
            "actor": _copy_json(self.actor),
            "token": self.token,
            "url": self.url,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def __repr__(self) -> str:
        return (
            f"ActorToken(id={self.id!r}, status={self.status.value!r}, "
            f"user_id={self.user_id!r}, actor_sub={self.actor_sub!r}, "
            f"created_at={self.created_at}, updated_at={self.updated_at}, "
            f"expires_at={self.expires_at}, has_ticket={self.has_ticket})"
        )

    __str__ = __repr__

    def __hash__(self) -> int:
        return hash((self.id, self.status, self.updated_at))


_MISSING: Final = object()
_new: Final = object.__new__
_set: Final = object.__setattr__


def _pick(data: Mapping[str, Any], name: str, default: Any = _MISSING) -> Any:
    """Return field ``name`` from its snake_case or camelCase key."""
    camel = _CAMEL_NAMES.get(name, name)
    has_snake = name in data
    has_camel = camel != name and camel in data
    if has_snake and has_camel and data[name] != data[camel]:
        raise InvalidActorTokenError(name, f"both {name!r} and {camel!r} are given and differ")
    if has_snake:
        return data[name]
    if has_camel:
        return data[camel]
    if default is _MISSING:
        raise InvalidActorTokenError(name, "missing")
    return default


def _decode_json(text: str | bytes | bytearray) -> Any:
    try:
        return json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=_reject_duplicate_keys
        )
    except InvalidActorTokenError:
        raise
    except UnicodeDecodeError as exc:
        raise InvalidActorTokenError("<record>", f"not valid UTF-8 ({exc.reason})") from None
    except RecursionError:
        raise InvalidActorTokenError(
            "<record>", "not valid JSON: nested too deeply for the parser"
        ) from None
    except (json.JSONDecodeError, ValueError) as exc:
        raise InvalidActorTokenError("<record>", f"not valid JSON: {exc}") from None


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json.loads keeps the last of two equal keys, so the value the sender meant is unknown.
    decoded: dict[str, Any] = {}
    for key, value in pairs:
        if key in decoded:
            raise InvalidActorTokenError(
                "<record>",
                f"not valid JSON for a token: an object has the key {_describe_value(key)} twice",
            )
        decoded[key] = value
    return decoded


def _describe_type(value: object) -> str:
    if value is None:
        return "null"
    return type(value).__name__


def _describe_value(value: object, limit: int = 60) -> str:
    if isinstance(value, int) and value.bit_length() > 64:
        # repr() of an int past the interpreter's digit limit raises ValueError.
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return text


def _invalid_choice(name: str, value: object, choices: type[StrEnum]) -> InvalidActorTokenError:
    allowed = ", ".join(repr(member.value) for member in choices)
    return InvalidActorTokenError(name, f"{_describe_value(value)} is not one of {allowed}")


def _check_string(path: str, value: str) -> None:
    """Reject text PostgreSQL cannot store: NUL characters and lone surrogates."""
    if "\x00" in value:
        raise InvalidActorTokenError(
            path, "contains a NUL character, which PostgreSQL cannot store"
        )
    # isascii() reads a flag of the string, and ASCII text contains no surrogates.
    if value.isascii():
        return
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidActorTokenError(
            path, "contains a lone surrogate, which is not valid UTF-8"
        ) from None


def _check_size(path: str, value: str, limit: int) -> None:
    size = len(value) if value.isascii() else len(value.encode("utf-8"))
    if size > limit:
        raise InvalidActorTokenError(path, f"is {size} bytes long; the maximum is {limit}")


def _validate_text(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise InvalidActorTokenError(name, f"must be a string, got {_describe_type(value)}")
    if not value.strip():
        raise InvalidActorTokenError(name, "must not be empty")
    _check_no_padding(name, value)
    _check_string(name, value)
    _check_size(name, value, MAX_ID_BYTES)


def _check_no_padding(name: str, value: str) -> None:
    # Clerk ids never have surrounding whitespace. " act_x " stored as given would be a
    # second token next to "act_x", and lookups by the real id would miss it.
    if value != value.strip():
        raise InvalidActorTokenError(
            name, f"{value!r} has leading or trailing whitespace; remove it"
        )


def _validate_secret(name: str, value: object) -> None:
    # The value is a secret, so messages describe it without echoing it.
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidActorTokenError(name, f"must be a string or null, got {_describe_type(value)}")
    if not value:
        raise InvalidActorTokenError(name, "must not be empty; use null when there is none")
    _check_string(name, value)
    _check_size(name, value, MAX_SECRET_BYTES)


def _validate_timestamp(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidActorTokenError(
            name,
            f"must be an integer of Unix milliseconds, got {_describe_type(value)}"
            + ("" if value is None else f" {_describe_value(value)}"),
        )
    if value < 0:
        raise InvalidActorTokenError(name, f"{_describe_value(value)} is negative")
    if value < MIN_TIMESTAMP_MS:
        raise InvalidActorTokenError(
            name,
            f"{value} is before 2001-09-09 in milliseconds; it looks like seconds, "
            "and Clerk sends milliseconds",
        )
    if value > MAX_TIMESTAMP_MS:
        raise InvalidActorTokenError(name, f"{_describe_value(value)} is after year 9999")


def validate_actor(actor: object) -> dict[str, Any]:
    """Validate actor claims as `ActorToken` does and return a deep copy of them.

    Raises:
        InvalidActorTokenError: the claims are not an object, lack a non-empty string
            ``sub``, or contain a value PostgreSQL's JSONB cannot store; the error names it.
    """
    return _validate_actor(actor)


def _validate_actor(actor: object) -> dict[str, Any]:
    if not isinstance(actor, Mapping):
        raise InvalidActorTokenError("actor", f"must be an object, got {_describe_type(actor)}")
    if "sub" not in actor:
        raise InvalidActorTokenError("actor.sub", "missing")
    sub = actor["sub"]
    if not isinstance(sub, str):
        raise InvalidActorTokenError("actor.sub", f"must be a string, got {_describe_type(sub)}")
    if not sub.strip():
        raise InvalidActorTokenError("actor.sub", "must not be empty")
    _check_no_padding("actor.sub", sub)
    _check_size("actor.sub", sub, MAX_ID_BYTES)

    copied = _copy_claims("actor", actor, depth=1)
    size = len(json.dumps(copied, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    if size > MAX_ACTOR_BYTES:
        raise InvalidActorTokenError(
            "actor", f"is {size} bytes as JSON; the maximum is {MAX_ACTOR_BYTES}"
        )
    return copied


def _copy_claims(path: str, value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    """Validate and deep-copy a JSON object of claims."""
    if depth > MAX_ACTOR_DEPTH:
        raise InvalidActorTokenError(path, f"is nested deeper than {MAX_ACTOR_DEPTH} levels")
    copied: dict[str, Any] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise InvalidActorTokenError(
                path, f"has a key of type {_describe_type(key)}; JSON keys are strings"
            )
        child = f"{path}.{key}"
        _check_string(child, key)
        copied[key] = _copy_claim(child, item, depth)
    return copied


def _copy_claim(path: str, value: object, depth: int) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        _check_string(path, value)
        return value
    if isinstance(value, int):
        # str() itself raises ValueError past the interpreter's digit limit.
        try:
            too_long = len(str(abs(value))) > _MAX_INT_DIGITS
        except ValueError:
            too_long = True
        if too_long:
            raise InvalidActorTokenError(path, f"integer has more than {_MAX_INT_DIGITS} digits")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidActorTokenError(
                path, f"{value} is not a finite number; PostgreSQL JSONB has no NaN or infinity"
            )
        return _as_jsonb_number(value)
    if isinstance(value, Mapping):
        return _copy_claims(path, value, depth + 1)
    if isinstance(value, list | tuple):
        if depth + 1 > MAX_ACTOR_DEPTH:
            raise InvalidActorTokenError(path, f"is nested deeper than {MAX_ACTOR_DEPTH} levels")
        return [
            _copy_claim(f"{path}[{index}]", item, depth + 1) for index, item in enumerate(value)
        ]
    raise InvalidActorTokenError(
        path, f"has a value of type {_describe_type(value)}, which JSON cannot hold"
    )


def _as_jsonb_number(value: float) -> float | int:
    """Return the number that PostgreSQL JSONB gives back for the finite float ``value``.

    JSONB stores numbers as ``numeric``, which has no negative zero, and prints a number
    written with a positive exponent (Python writes ``1e+16`` for ``1e16``) without one, so
    it reads back as an integer. Normalizing here keeps a stored token equal to the value
    that was saved: ``-0.0`` becomes ``0.0`` and ``1e308`` becomes ``10**308``, the exact
    integer of its shortest decimal form.
    """
    if value == 0:
        return 0.0
    text = repr(value)
    if "e+" in text:
        return int(Decimal(text))
    return value


def _copy_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy_json(item) for item in value]
    return value
