"""A FastAPI service that issues Clerk impersonation tickets and lists them.

Run it with the store's tables in place (``actortoken-store db upgrade``) and:

    CLERK_SECRET_KEY=sk_test_... uvicorn examples.fastapi_app:app

The database is ``ACTORTOKEN_STORE_DATABASE_URL``, else the embedded server.
``CLERK_API_URL`` overrides the Backend API address (default ``https://api.clerk.com/v1``).
"""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from clerk_backend_api import Clerk
from clerk_backend_api.utils import BackoffStrategy, RetryConfig
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from actortoken_store import (
    AsyncActorTokenRepository,
    ClerkRequestError,
    InvalidActorTokenError,
    InvalidArgumentError,
    TokenStatus,
)
from actortoken_store.clerk import issue_async
from actortoken_store.config import create_async_engine, resolve_database


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = create_async_engine(resolve_database(async_driver=True).url)
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    # No retries: a retried create whose first attempt reached Clerk would leave a second,
    # unrecorded ticket.
    no_retries = RetryConfig("none", BackoffStrategy(0, 0, 1.0, 0), False)
    async with Clerk(
        bearer_auth=os.environ["CLERK_SECRET_KEY"],
        server_url=os.environ.get("CLERK_API_URL"),
        retry_config=no_retries,
        timeout_ms=10_000,
    ) as clerk:
        app.state.clerk = clerk
        try:
            yield
        finally:
            await engine.dispose()


app = FastAPI(title="impersonation", lifespan=lifespan)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield one session per request; an endpoint commits what it must keep."""
    async with request.app.state.sessions() as session:
        yield session


async def get_repository(
    session: Annotated[AsyncSession, Depends(get_session)],
) -> AsyncActorTokenRepository:
    return AsyncActorTokenRepository(session)


def get_clerk(request: Request) -> Clerk:
    clerk: Clerk = request.app.state.clerk
    return clerk


async def current_admin(x_admin_user_id: Annotated[str, Header()]) -> str:
    """Return the Clerk user id of the admin making the request.

    Replace this stand-in with real authentication, such as verifying the admin's Clerk
    session, because any caller of the issue endpoint can sign in as any user.
    """
    return x_admin_user_id


Repository = Annotated[AsyncActorTokenRepository, Depends(get_repository)]
ClerkClient = Annotated[Clerk, Depends(get_clerk)]
Admin = Annotated[str, Depends(current_admin)]


class IssueRequest(BaseModel):
    reason: str = Field(min_length=1, max_length=500)
    expires_in_seconds: int = Field(default=600, ge=60, le=3600)


class IssuedTicket(BaseModel):
    id: str
    status: str
    url: str | None
    """The sign-in URL for the admin. It is a secret, so it is returned once, here."""


class TokenSummary(BaseModel):
    id: str
    status: str
    actor: dict[str, Any]
    created_at: int
    updated_at: int


class TokenPage(BaseModel):
    items: list[TokenSummary]
    next_cursor: str | None


@app.post("/users/{user_id}/impersonations", status_code=201)
async def issue_ticket(
    user_id: str, body: IssueRequest, repository: Repository, clerk: ClerkClient, admin: Admin
) -> IssuedTicket:
    actor = {"sub": admin, "reason": body.reason}
    try:
        # The audit event of the new token records who issued it and why.
        async with repository.audit_context(operator=admin, reason=body.reason):
            token = await issue_async(
                clerk,
                repository,
                user_id,
                actor,
                expires_in_seconds=body.expires_in_seconds,
            )
    except (InvalidArgumentError, InvalidActorTokenError) as error:
        raise HTTPException(status_code=422, detail=str(error)) from error
    except ClerkRequestError as error:
        raise HTTPException(status_code=502, detail=str(error)) from error
    # Commit at once: until then, a rollback would leave a live ticket the store forgot.
    await repository.session.commit()
    return IssuedTicket(id=token.id, status=token.status.value, url=token.url)


@app.get("/users/{user_id}/impersonations")
async def list_tickets(
    user_id: str,
    repository: Repository,
    admin: Admin,
    status: TokenStatus | None = None,
    limit: int = 20,
    after: str | None = None,
) -> TokenPage:
    try:
        page = await repository.list_for_user(user_id, status=status, limit=limit, after=after)
    except InvalidArgumentError as error:  # a malformed cursor or a limit out of range
        raise HTTPException(status_code=400, detail=str(error)) from error
    items = [
        TokenSummary(
            id=token.id,
            status=token.status.value,
            actor=dict(token.actor),
            created_at=token.created_at,
            updated_at=token.updated_at,
        )
        for token in page.items
    ]
    return TokenPage(items=items, next_cursor=page.next_cursor)
