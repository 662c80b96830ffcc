"""examples/fastapi_app.py, run as written against the test database and the fake Clerk."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import sqlalchemy
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from actortoken_store.config import ENV_DATABASE_URL
from tests.fake_clerk import SECRET_KEY, FakeClerk

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "fastapi_app.py"
USER = "user_2impersonatedXXXXXXXXXXXX"
ADMIN = "user_2supportagentXXXXXXXXXXX"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_app_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def client(
    monkeypatch: pytest.MonkeyPatch,
    clean_engine: Engine,
    database_url: sqlalchemy.URL,
    fake_clerk: FakeClerk,
) -> Iterator[TestClient]:
    """The example app, configured through its environment variables only."""
    plain_url = database_url.set(drivername="postgresql")
    monkeypatch.setenv(ENV_DATABASE_URL, plain_url.render_as_string(hide_password=False))
    monkeypatch.setenv("CLERK_SECRET_KEY", SECRET_KEY)
    monkeypatch.setenv("CLERK_API_URL", fake_clerk.server_url)
    with TestClient(_load_example().app) as test_client:
        yield test_client


def _stored_count(engine: Engine) -> int:
    with engine.connect() as connection:
        count: int = connection.execute(text("SELECT count(*) FROM actor_tokens")).scalar_one()
    return count


def test_example_issue_then_list(
    client: TestClient, clean_engine: Engine, fake_clerk: FakeClerk
) -> None:
    issued = client.post(
        f"/users/{USER}/impersonations",
        json={"reason": "billing question", "expires_in_seconds": 900},
        headers={"X-Admin-User-Id": ADMIN},
    )

    assert issued.status_code == 201, issued.text
    body = issued.json()
    at_clerk = fake_clerk.tokens[body["id"]]
    assert body["status"] == "pending"
    assert body["url"] == at_clerk["url"]
    [create_call] = fake_clerk.calls("create")
    assert create_call.body["actor"] == {"sub": ADMIN, "reason": "billing question"}
    assert create_call.body["expires_in_seconds"] == 900

    listed = client.get(f"/users/{USER}/impersonations", headers={"X-Admin-User-Id": ADMIN})

    assert listed.status_code == 200, listed.text
    page = listed.json()
    assert page["next_cursor"] is None
    assert [item["id"] for item in page["items"]] == [body["id"]]
    assert page["items"][0]["actor"] == {"sub": ADMIN, "reason": "billing question"}
    assert at_clerk["token"] not in listed.text
    assert _stored_count(clean_engine) == 1
    with clean_engine.connect() as connection:
        [event] = connection.execute(
            text("SELECT source, context FROM actor_token_events WHERE token_id = :id"),
            {"id": body["id"]},
        ).all()
    assert event.source == "repository"
    assert event.context == {"operator": ADMIN, "reason": "billing question"}


def test_example_list_pages(client: TestClient) -> None:
    headers = {"X-Admin-User-Id": ADMIN}
    issued = [
        client.post(f"/users/{USER}/impersonations", json={"reason": f"r{n}"}, headers=headers)
        for n in range(3)
    ]
    assert [response.status_code for response in issued] == [201, 201, 201]

    first = client.get(f"/users/{USER}/impersonations?limit=2", headers=headers).json()
    second = client.get(
        f"/users/{USER}/impersonations",
        params={"limit": 2, "after": first["next_cursor"]},
        headers=headers,
    ).json()

    listed = [item["id"] for item in first["items"] + second["items"]]
    assert sorted(listed) == sorted(response.json()["id"] for response in issued)
    assert second["next_cursor"] is None


def test_example_clerk_failure(
    client: TestClient, clean_engine: Engine, fake_clerk: FakeClerk
) -> None:
    fake_clerk.fail_next(
        "create", 422, code="form_param_value_invalid", long_message="user_id is invalid"
    )

    response = client.post(
        f"/users/{USER}/impersonations",
        json={"reason": "billing question"},
        headers={"X-Admin-User-Id": ADMIN},
    )

    assert response.status_code == 502
    assert "form_param_value_invalid" in response.json()["detail"]
    assert _stored_count(clean_engine) == 0


def test_example_bad_requests(client: TestClient) -> None:
    headers = {"X-Admin-User-Id": ADMIN}

    no_admin = client.get(f"/users/{USER}/impersonations")
    bad_cursor = client.get(f"/users/{USER}/impersonations?after=nonsense", headers=headers)
    bad_status = client.get(f"/users/{USER}/impersonations?status=lost", headers=headers)
    no_reason = client.post(f"/users/{USER}/impersonations", json={}, headers=headers)

    assert no_admin.status_code == 422
    assert bad_cursor.status_code == 400
    assert "cursor" in bad_cursor.json()["detail"]
    assert bad_status.status_code == 422
    assert no_reason.status_code == 422
