"""The sync and async APIs must stay twins: same public methods, same parameters.

Each public method of `ActorTokenRepository` needs a counterpart on
`AsyncActorTokenRepository` with the same parameter names, kinds, defaults and annotations.
The async one must be awaitable. It is a coroutine function for a plain method, an async
generator function for a generator, and an async context manager for a context manager.
The same holds for the Clerk bridge's ``issue``/``issue_async`` and ``revoke``/``revoke_async``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Final

import pytest

from actortoken_store import clerk
from actortoken_store.aio import AsyncActorTokenRepository
from actortoken_store.repository import ActorTokenRepository

SYNC_IN_BOTH: Final[frozenset[str]] = frozenset()
"""Public methods that do no I/O and so are plain functions in both classes. Empty today."""


def _public_members(cls: type) -> dict[str, Any]:
    """Return the public attributes defined by ``cls`` or its bases, excluding object's."""
    return {
        name: inspect.getattr_static(cls, name) for name in dir(cls) if not name.startswith("_")
    }


def _function_of(member: Any) -> Callable[..., Any] | None:
    """Return the function behind a method, static method or class method, else None."""
    if isinstance(member, staticmethod | classmethod):
        function: Callable[..., Any] = member.__func__
        return function
    if inspect.isfunction(member):
        return member
    return None


def _parameters(function: Callable[..., Any]) -> list[tuple[str, Any, Any, Any]]:
    """Return name, kind, default and annotation (as source text) of every parameter."""
    return [
        (parameter.name, parameter.kind, parameter.default, parameter.annotation)
        for parameter in inspect.signature(function, eval_str=False).parameters.values()
    ]


def _kind(function: Callable[..., Any]) -> str:
    """Classify a function by how it runs: plain, generator or context manager."""
    wrapped = getattr(function, "__wrapped__", None)
    if wrapped is not None and (
        inspect.isgeneratorfunction(wrapped) or inspect.isasyncgenfunction(wrapped)
    ):
        return "context manager"
    if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
        return "generator"
    return "plain"


def _is_async_form(function: Callable[..., Any], sync_kind: str) -> bool:
    wrapped = getattr(function, "__wrapped__", None)
    if sync_kind == "context manager":
        return wrapped is not None and inspect.isasyncgenfunction(wrapped)
    if sync_kind == "generator":
        return inspect.isasyncgenfunction(function)
    return inspect.iscoroutinefunction(function)


SYNC_MEMBERS = _public_members(ActorTokenRepository)
ASYNC_MEMBERS = _public_members(AsyncActorTokenRepository)


def test_parity_same_public_names() -> None:
    only_sync = sorted(SYNC_MEMBERS.keys() - ASYNC_MEMBERS.keys())
    only_async = sorted(ASYNC_MEMBERS.keys() - SYNC_MEMBERS.keys())

    assert only_sync == [], "public on ActorTokenRepository only"
    assert only_async == [], "public on AsyncActorTokenRepository only"


@pytest.mark.parametrize("name", sorted(SYNC_MEMBERS.keys() & ASYNC_MEMBERS.keys()))
def test_parity_method(name: str) -> None:
    sync_member = SYNC_MEMBERS[name]
    async_member = ASYNC_MEMBERS[name]
    sync_function = _function_of(sync_member)
    async_function = _function_of(async_member)

    assert type(sync_member) is type(async_member), "one is a property or attribute"
    if sync_function is None or async_function is None:
        return
    assert _parameters(async_function) == _parameters(sync_function)
    sync_return = inspect.signature(sync_function).return_annotation
    async_return = inspect.signature(async_function).return_annotation
    if _kind(sync_function) in {"context manager", "generator"}:
        # An async generator, and the one behind an async context manager, is annotated
        # with the async twin of its sync counterpart's type.
        for async_name, sync_name in (
            ("AsyncIterator[", "Iterator["),
            ("AsyncIterable[", "Iterable["),
        ):
            async_return = async_return.replace(async_name, sync_name, 1)
    assert async_return == sync_return
    if name in SYNC_IN_BOTH:
        assert _kind(async_function) == _kind(sync_function) == "plain"
    else:
        sync_kind = _kind(sync_function)
        assert not _is_async_form(sync_function, sync_kind), "the sync method is async"
        assert _is_async_form(async_function, sync_kind), f"the async {sync_kind} is not async"


def test_parity_constructors() -> None:
    sync_init = _parameters(ActorTokenRepository.__init__)
    async_init = _parameters(AsyncActorTokenRepository.__init__)

    # Only the session's type differs.
    assert [entry[:3] for entry in async_init] == [entry[:3] for entry in sync_init]
    assert [entry[3] for entry in sync_init if entry[0] != "session"] == [
        entry[3] for entry in async_init if entry[0] != "session"
    ]


@pytest.mark.parametrize(
    ("sync_name", "async_name"), [("issue", "issue_async"), ("revoke", "revoke_async")]
)
def test_parity_clerk_bridge(sync_name: str, async_name: str) -> None:
    sync_function = getattr(clerk, sync_name)
    async_function = getattr(clerk, async_name)

    sync_parameters = _parameters(sync_function)
    async_parameters = _parameters(async_function)
    assert [entry[:3] for entry in async_parameters] == [entry[:3] for entry in sync_parameters]
    assert [entry[3] for entry in async_parameters if entry[0] != "repo"] == [
        entry[3] for entry in sync_parameters if entry[0] != "repo"
    ]
    assert inspect.iscoroutinefunction(async_function)
    assert not inspect.iscoroutinefunction(sync_function)


def test_parity_catches_drift() -> None:
    """The checks above fail on the differences they are meant to catch."""

    class Sync:
        def save(self, token: str, *, batch: int = 1) -> int:
            return batch

    class AsyncDifferentDefault:
        async def save(self, token: str, *, batch: int = 2) -> int:
            return batch

    class AsyncNotCoroutine:
        def save(self, token: str, *, batch: int = 1) -> int:
            return batch

    sync_function = _function_of(_public_members(Sync)["save"])
    different = _function_of(_public_members(AsyncDifferentDefault)["save"])
    not_coroutine = _function_of(_public_members(AsyncNotCoroutine)["save"])
    assert sync_function is not None
    assert different is not None
    assert not_coroutine is not None

    assert _parameters(different) != _parameters(sync_function)
    assert not _is_async_form(not_coroutine, _kind(sync_function))
