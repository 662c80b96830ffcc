"""Equality of JSON values as JSON defines it, for tests of values that PostgreSQL stores."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def same_json(left: Any, right: Any) -> bool:
    """Compare JSON values: numbers by decimal value, objects by key set, lists in order.

    ``1e16`` and ``10000000000000000`` are the same JSON number, and so are ``-0.0`` and
    ``0.0``. The store keeps numbers in the form PostgreSQL's JSONB returns them, so a
    stored value equals its input in this sense even where Python's ``==`` between a float
    and an int returns False.
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return Decimal(repr(left)) == Decimal(repr(right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same_json(left[k], right[k]) for k in left)
    if isinstance(left, list | tuple) and isinstance(right, list | tuple):
        return len(left) == len(right) and all(map(same_json, left, right))
    return bool(left == right) and type(left) is type(right)
