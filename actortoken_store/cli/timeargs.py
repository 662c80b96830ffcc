"""Parsing and range checks of every age and instant the command line accepts.

Ages are a whole number and a unit (``90d``); instants are ISO 8601 dates or times. Both
are bounded so that every later step (``now - age``, conversion to UTC) stays within what
`datetime` can hold, and an argument out of range is a usage error, not an OverflowError.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

__all__ = [
    "MAX_AGE",
    "MAX_INSTANT",
    "MIN_INSTANT",
    "NEGATIVE_AGE",
    "parse_age",
    "parse_duration",
    "parse_instant",
]

_AGE: Final = re.compile(r"\s*(-?)(\d+)\s*([smhdw])\s*")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

NEGATIVE_AGE: Final = re.compile(r"-\d+\s*[smhdw]")
"""A negative age, which argparse would take for an option unless it is joined to it."""

MAX_AGE: Final = timedelta(days=36_500)
"""The maximum age accepted, 100 years: longer than any stored token can be old."""

MIN_INSTANT: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_INSTANT: Final = datetime(9999, 12, 30, tzinfo=UTC)
"""Instants lie in [MIN_INSTANT, MAX_INSTANT], so that subtracting `MAX_AGE` or a time
zone offset never leaves the range of `datetime`."""

_FORMS: Final = "2025-12-01, 20251201, 2025-12-01T08:00:00Z or 2025-12-01T10:00:00+02:00"


def parse_age(text: str) -> timedelta:
    """Parse an age of more than zero, such as ``90d``, ``12h`` or ``2w``.

    Raises:
        argparse.ArgumentTypeError: the text is not a whole number and a unit (s, m, h, d,
            w), or the age is zero, negative or longer than `MAX_AGE`.
    """
    age = parse_duration(text)
    if age == timedelta(0):
        raise argparse.ArgumentTypeError(f"invalid age {text!r}: must be more than zero")
    return age


def parse_duration(text: str) -> timedelta:
    """Parse an age of zero or more, such as ``0s``, ``90m`` or ``7d``.

    Raises:
        argparse.ArgumentTypeError: the text is not a whole number and a unit (s, m, h, d,
            w), or the age is negative or longer than `MAX_AGE`.
    """
    match = _AGE.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f"invalid age {text!r}: expected a whole number and a unit, such as 90d "
            "(units: s, m, h, d, w)"
        )
    sign, amount, unit = match.groups()
    if sign:
        raise argparse.ArgumentTypeError(
            f"invalid age {text!r}: must not be negative; give how long ago, such as {amount}{unit}"
        )
    limit = f"at most {MAX_AGE.days}d (100 years)"
    try:
        age = timedelta(**{_UNITS[unit]: int(amount)})
    except (OverflowError, ValueError):
        # ValueError: Python refuses to convert integers of more than 4300 digits.
        raise argparse.ArgumentTypeError(f"invalid age {text!r}: must be {limit}") from None
    if age > MAX_AGE:
        raise argparse.ArgumentTypeError(f"invalid age {text!r}: must be {limit}")
    return age


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 time with an offset or ``Z``, or a date meaning UTC midnight.

    Dates may be extended (``2025-12-01``) or basic (``20251201``). The result is in UTC.

    Raises:
        argparse.ArgumentTypeError: the text is neither, a time has no offset, or the
            instant lies outside `MIN_INSTANT` to `MAX_INSTANT`.
    """
    value = text.strip()
    try:
        if len(value) in (8, 10) and value[:1].isdigit() and "T" not in value:
            parsed = datetime.combine(date.fromisoformat(value), time(), tzinfo=UTC)
        else:
            parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid date or time {text!r}: use e.g. {_FORMS}"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: add an offset such as Z or +02:00, or give a date only"
        )
    bounds = f"{MIN_INSTANT.date()} and {MAX_INSTANT.date()} UTC"
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        raise argparse.ArgumentTypeError(
            f"invalid date or time {text!r}: must lie between {bounds}"
        ) from None
    if not MIN_INSTANT <= utc <= MAX_INSTANT:
        raise argparse.ArgumentTypeError(
            f"invalid date or time {text!r}: must lie between {bounds}"
        )
    return utc
