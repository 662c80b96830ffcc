"""Fixtures for the Clerk bridge tests: the fake Backend API and the bridge driver."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from clerk_backend_api import Clerk

from tests.drivers import EventLoopThread, RepoDriver, RepoFactory
from tests.fake_clerk import FakeClerk, running_fake_clerk
from tests.integration.clerk.bridge_driver import BridgeDriver


@pytest.fixture
def fake_clerk() -> Iterator[FakeClerk]:
    with running_fake_clerk() as fake:
        yield fake


@pytest.fixture
def make_clerk(
    fake_clerk: FakeClerk, loop_thread: EventLoopThread
) -> Iterator[Callable[[str | None], Clerk]]:
    """Make real SDK clients for the fake, or for another URL on 127.0.0.1.

    Their HTTP clients are closed after the test, the async ones on the loop that used them.
    """
    clients: list[Clerk] = []

    def make(server_url: str | None = None) -> Clerk:
        client = fake_clerk.client(server_url)
        clients.append(client)
        return client

    yield make
    for client in clients:
        configuration = client.sdk_configuration
        if configuration.client is not None:
            configuration.client.close()
        if configuration.async_client is not None:
            loop_thread.run(configuration.async_client.aclose())


@pytest.fixture
def clerk(make_clerk: Callable[[str | None], Clerk]) -> Clerk:
    """The real SDK client, pointed at the fake."""
    return make_clerk(None)


@pytest.fixture
def bridge(
    any_repo: RepoDriver,
    repo_factory: RepoFactory,
    loop_thread: EventLoopThread,
    clerk: Clerk,
    fake_clerk: FakeClerk,
) -> BridgeDriver:
    """The sync or async bridge functions, with the repository kind of `any_repo`."""
    return BridgeDriver(any_repo, repo_factory, loop_thread, clerk, fake_clerk)
