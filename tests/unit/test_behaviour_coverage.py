"""The behavioural suite must call every public repository method through `any_repo`.

`any_repo` runs a test against both the sync and the async repository, so a method that
no such test calls could behave differently in the two without any test noticing. This
reads the integration tests' source and lists the methods called on `any_repo`, or on a
driver opened from `repo_factory` inside a test that uses `any_repo`.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from actortoken_store.repository import ActorTokenRepository

INTEGRATION_TESTS = Path(__file__).resolve().parents[1] / "integration"


def _public_methods() -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(ActorTokenRepository, inspect.isfunction)
        if not name.startswith("_")
    }


def _is_factory_call(node: ast.expr) -> bool:
    """Whether ``node`` is ``repo_factory.open(...)`` or ``repo_factory.peer(...)``."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in {"open", "peer"}
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "repo_factory"
    )


def _methods_called_on_drivers(function: ast.FunctionDef) -> set[str]:
    drivers = {"any_repo"}
    for node in ast.walk(function):
        if isinstance(node, ast.Assign) and _is_factory_call(node.value):
            drivers |= {target.id for target in node.targets if isinstance(target, ast.Name)}

    called = set()
    for node in ast.walk(function):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in drivers
        ):
            called.add(node.func.attr)
    return called


def _driven_methods() -> set[str]:
    called: set[str] = set()
    for path in sorted(INTEGRATION_TESTS.rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
                continue
            if "any_repo" in {argument.arg for argument in node.args.args}:
                called |= _methods_called_on_drivers(node)
    return called


def test_every_method_driven() -> None:
    missing = sorted(_public_methods() - _driven_methods())

    assert missing == [], "public repository methods that no any_repo test calls"


def test_scan_finds_known_calls() -> None:
    """The scan itself works: it finds the methods the behaviour tests are known to call."""
    driven = _driven_methods()

    assert {"save", "save_many", "get"} <= driven
