"""A local stand-in for Clerk's Backend API, for testing the SDK bridge with the real SDK.

`FakeClerk` serves ``POST /v1/actor_tokens`` and ``POST /v1/actor_tokens/{id}/revoke`` on
127.0.0.1 at a free port. Its responses have Clerk's JSON shapes: actor tokens whose ticket is
a JWT with ``exp`` and ``iat`` in Unix seconds, and errors as
``{"errors": [{"message", "long_message", "code"}]}`` with Clerk's status codes. The
tokens and tickets it makes are random and sign nobody in.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from clerk_backend_api import Clerk
from clerk_backend_api.utils import BackoffStrategy, RetryConfig

SECRET_KEY = "sk_test_fake_clerk_for_tests"
"""The only bearer token the fake accepts."""

FRONTEND_URL = "https://fake-app.clerk.accounts.dev"
"""Origin of the sign-in URLs in the fake's tokens; nothing is ever sent there."""

_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    body: Any
    authorization: str | None


@dataclass
class ScriptedResponse:
    """A response to send instead of the normal one, for the next matching request."""

    operation: str
    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass
class FakeClerk:
    """State and behaviour of the fake Backend API; see the module docstring."""

    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    scripted: deque[ScriptedResponse] = field(default_factory=deque)
    next_ids: deque[str] = field(default_factory=deque)
    issued_tickets: list[str] = field(default_factory=list)
    """Every ticket the fake created, so tests can check that none leaks into logs."""
    mangle_next_create: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """Applied once to the body of the next successful create response; the token is kept."""
    port: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def server_url(self) -> str:
        """The URL to pass as ``Clerk(server_url=...)``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def client(self, server_url: str | None = None) -> Clerk:
        """Return an SDK client for this fake, with retries off so failures return at once.

        ``server_url`` replaces the fake's URL, to send the requests elsewhere on 127.0.0.1.
        """
        return Clerk(
            bearer_auth=SECRET_KEY,
            server_url=server_url or self.server_url,
            retry_config=RetryConfig("none", BackoffStrategy(1, 1, 1.0, 1), False),
            timeout_ms=5000,
        )

    def fail_next(
        self,
        operation: str,
        status: int,
        *,
        code: str = "",
        message: str = "",
        long_message: str = "",
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> None:
        """Response the next ``operation`` ("create" or "revoke") with an error.

        Without ``raw`` the body is Clerk's error shape with one error.
        """
        if raw is None:
            raw = _errors_body(code, message, long_message)
        self.scripted.append(ScriptedResponse(operation, status, raw, content_type))

    def respond_next(self, operation: str, status: int, body: dict[str, Any]) -> None:
        """Response the next ``operation`` with ``body`` as JSON, whatever the request."""
        self.scripted.append(ScriptedResponse(operation, status, json.dumps(body).encode()))

    def set_status(self, token_id: str, status: str) -> None:
        """Change a token's status at the fake, as a sign-in with its ticket would."""
        with self.lock:
            token = self.tokens[token_id]
            token["status"] = status
            token["updated_at"] = _later_ms(token["updated_at"])
            if status != "pending":
                token["token"] = None
                token["url"] = None

    def calls(self, operation: str) -> list[RecordedRequest]:
        """Return the received requests of one operation, in order."""
        return [request for request in self.requests if _operation_of(request.path) == operation]

    # --- request handling, called from the server's threads ---

    def handle(self, method: str, path: str, body: Any, authorization: str | None) -> Response:
        with self.lock:
            self.requests.append(RecordedRequest(method, path, body, authorization))
            operation = _operation_of(path)
            if authorization != f"Bearer {SECRET_KEY}":
                return _error(
                    HTTPStatus.UNAUTHORIZED,
                    "authentication_invalid",
                    "Unauthorized request",
                    "The provided secret key is invalid.",
                )
            if method != "POST" or operation is None:
                return _not_found()
            for index, scripted in enumerate(self.scripted):
                if scripted.operation == operation:
                    del self.scripted[index]
                    return Response(scripted.status, scripted.body, scripted.content_type)
            if operation == "create":
                return self._create(body)
            return self._revoke(path.split("/")[3])

    def _create(self, body: Any) -> Response:
        problem = _create_problem(body)
        if problem is not None:
            return problem
        now_ms = int(time.time() * 1000)
        token_id = self.next_ids.popleft() if self.next_ids else _new_id()
        ticket = _ticket(token_id, now_ms // 1000, body.get("expires_in_seconds", 3600))
        token = {
            "object": "actor_token",
            "id": token_id,
            "status": "pending",
            "user_id": body["user_id"],
            "actor": body["actor"],
            "token": ticket,
            "url": f"{FRONTEND_URL}/v1/tickets/accept?ticket={ticket}",
            "created_at": now_ms,
            "updated_at": now_ms,
        }
        self.tokens[token_id] = token
        self.issued_tickets.append(ticket)
        if self.mangle_next_create is not None:
            mangle, self.mangle_next_create = self.mangle_next_create, None
            return _json(HTTPStatus.OK, mangle(dict(token)))
        return _json(HTTPStatus.OK, token)

    def _revoke(self, token_id: str) -> Response:
        token = self.tokens.get(token_id)
        if token is None:
            return _not_found()
        if token["status"] != "pending":
            return _error(
                HTTPStatus.BAD_REQUEST,
                "actor_token_cannot_be_revoked_code",
                "cannot revoke",
                f"Actor token cannot be revoked because its status is {token['status']}. "
                "Only pending tokens can be revoked.",
            )
        token["status"] = "revoked"
        token["updated_at"] = _later_ms(token["updated_at"])
        token["token"] = None
        token["url"] = None
        return _json(HTTPStatus.OK, token)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"


@contextmanager
def running_fake_clerk() -> Iterator[FakeClerk]:
    """Start a `FakeClerk` on 127.0.0.1 at a free port and stop it afterwards."""
    fake = FakeClerk()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(fake))
    server.daemon_threads = True
    fake.port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-clerk", daemon=True
    )
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _handler_for(fake: FakeClerk) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            response = fake.handle("POST", self.path, body, self.headers.get("Authorization"))
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        def log_message(self, format: str, *args: Any) -> None:
            # Quiet: request lines would go to stderr for every test.
            return

    return Handler


def _operation_of(path: str) -> str | None:
    parts = path.split("?")[0].strip("/").split("/")
    if parts == ["v1", "actor_tokens"]:
        return "create"
    if len(parts) == 4 and parts[:2] == ["v1", "actor_tokens"] and parts[3] == "revoke":
        return "revoke"
    return None


def _create_problem(body: Any) -> Response | None:
    """Return Clerk's 422 response to a create request that lacks a required field."""
    if not isinstance(body, dict):
        return _error(422, "form_param_missing", "is missing", "user_id is missing")
    if not isinstance(body.get("user_id"), str) or not body["user_id"]:
        return _error(422, "form_param_missing", "is missing", "user_id is missing")
    actor = body.get("actor")
    if not isinstance(actor, dict) or not isinstance(actor.get("sub"), str):
        return _error(
            422,
            "form_param_value_invalid",
            "is invalid",
            "actor must be an object with a sub claim",
        )
    return None


def _ticket(token_id: str, issued_at: int, lifetime: int) -> str:
    header = {"alg": "RS256", "typ": "JWT"}
    payload = {
        "exp": issued_at + lifetime,
        "iat": issued_at,
        "iid": "ins_fakeclerkinstance",
        "sid": token_id,
        "st": "actor_token",
    }
    parts = [_b64(json.dumps(header).encode()), _b64(json.dumps(payload).encode())]
    parts.append(_b64(secrets.token_bytes(64)))
    return ".".join(parts)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _new_id() -> str:
    return "act_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(27))


def _later_ms(previous: int) -> int:
    return max(int(time.time() * 1000), previous + 1)


def _errors_body(code: str, message: str, long_message: str) -> bytes:
    error = {"message": message, "long_message": long_message, "code": code}
    return json.dumps({"errors": [error], "meta": {}}).encode()


def _error(status: int, code: str, message: str, long_message: str) -> Response:
    return Response(status, _errors_body(code, message, long_message))


def _not_found() -> Response:
    return _error(
        HTTPStatus.NOT_FOUND,
        "resource_not_found",
        "not found",
        "The requested resource was not found.",
    )


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(status, json.dumps(body).encode())
