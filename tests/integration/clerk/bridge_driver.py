"""One synchronous interface over the sync and the async Clerk bridge functions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clerk_backend_api import Clerk

from actortoken_store import clerk as bridge_module
from actortoken_store.model import ActorToken
from actortoken_store.schema import DEFAULT_SCHEMA
from actortoken_store.secrets import SecretsPolicy
from tests.drivers import EventLoopThread, RepoDriver, RepoFactory
from tests.fake_clerk import FakeClerk


@dataclass
class BridgeDriver:
    """Runs `issue` and `revoke` (or their async forms) with the kind of `repo`.

    Each call gets a session of its own on ``schema`` and commits when the call returns,
    so `repo` reads the result afterwards. A failed call leaves its session to be rolled
    back by the factory.
    """

    repo: RepoDriver
    factory: RepoFactory
    loop: EventLoopThread
    clerk: Clerk
    fake: FakeClerk

    def issue(
        self,
        user_id: Any,
        actor: Any,
        *,
        schema: str = DEFAULT_SCHEMA,
        secrets: SecretsPolicy | None = None,
        clerk: Clerk | None = None,
        **options: Any,
    ) -> ActorToken:
        driver = self.factory.open(self.repo.kind, schema=schema, secrets=secrets)
        client = clerk or self.clerk
        if driver.kind == "sync":
            token = bridge_module.issue(client, driver.repository, user_id, actor, **options)
        else:
            token = self.loop.run(
                bridge_module.issue_async(client, driver.repository, user_id, actor, **options)
            )
        driver.commit()
        return token

    def revoke(self, token_id: Any) -> ActorToken:
        driver = self.factory.open(self.repo.kind)
        if driver.kind == "sync":
            token = bridge_module.revoke(self.clerk, driver.repository, token_id)
        else:
            token = self.loop.run(
                bridge_module.revoke_async(self.clerk, driver.repository, token_id)
            )
        driver.commit()
        return token
