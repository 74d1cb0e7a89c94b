"""The ``ledgerlake serve`` application: errors as JSON, a bearer token, a body size limit.

The CLI's exit codes map to HTTP statuses: bad input 400 (422 when the request does not
fit the OpenAPI schema), unknown order 404, body too large 413, concurrency conflict 409,
business rule 422 (with the rule's type), integrity problem 500.
Every error body is ``{"error": TYPE, "message": TEXT, "exit_code": N}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from eventlog.errors import ConcurrencyError, LedgerLakeError, RuleError, exit_code_for
from pipelines.serve_lake import ServedLake, UnknownOrderError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_MAX_BODY = 1_048_576
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """How the server runs: the lake, the token (None: open on loopback) and the body limit."""

    lake: Path
    token: str | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY
    warm: bool = True


def status_for(error: BaseException) -> int:
    """The HTTP status of a LedgerLake error (see the module docstring)."""
    if isinstance(error, UnknownOrderError):
        return 404
    if isinstance(error, ConcurrencyError):
        return 409
    if isinstance(error, RuleError):
        return 422
    return {2: 400, 3: 409, 4: 422}.get(exit_code_for(error), 500)


def error_body(kind: str, message: str, exit_code: int, **extra: Any) -> dict[str, Any]:
    """The one shape of every error: type, message, the CLI's exit code, details."""
    return {"error": kind, "message": message, "exit_code": exit_code, **extra}


def _json_error(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return JSONResponse(body, status_code=status, headers=headers)


class _BodyTooLargeError(Exception):
    pass


def _raw_json(status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]) -> Any:
    data = json.dumps(body).encode()

    async def respond(send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(data)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": data})

    return respond


class GuardMiddleware:
    """Checks the bearer token on every request and cuts request bodies at a size limit.

    A browser cannot send a bearer token on a page load: the page also accepts HTTP Basic
    with the token as the password (any user name), which browsers ask for themselves.
    """

    def __init__(self, app: ASGIApp, token: str | None, max_body: int) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body

    def _authorized(self, scope: Scope) -> bool:
        if self.token is None:
            return True
        headers = dict(scope.get("headers") or [])
        value = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, credential = value.partition(" ")
        if scheme.lower() == "bearer":
            given = credential.strip()
        elif scheme.lower() == "basic":
            try:
                given = base64.b64decode(credential.strip()).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                return False
        else:
            return False
        return secrets.compare_digest(given.encode(), self.token.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self._authorized(scope):
            api = str(scope.get("path", "")).startswith("/api")
            challenge = b'Bearer realm="ledgerlake"' if api else b'Basic realm="ledgerlake"'
            body = error_body("Unauthorized", "a valid bearer token is required", 2)
            await _raw_json(401, body, [(b"www-authenticate", challenge)])(send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        too_large = error_body(
            "BodyTooLarge", f"the request body is larger than {self.max_body} bytes", 2
        )
        if length is not None and length.isdigit() and int(length) > self.max_body:
            await _raw_json(413, too_large, [])(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise _BodyTooLargeError
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLargeError:
            if not started:
                await _raw_json(413, too_large, [])(send)


def create_app(settings: ServeSettings) -> FastAPI:
    """The FastAPI app over one lake: the JSON API under /api, the search page at /."""
    from pipelines import serve_api, serve_page

    served = ServedLake(settings.lake)  # raises (exit 2) when there is no lake

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if settings.warm:
            served.warm()
        try:
            yield
        finally:
            served.close()

    app = FastAPI(
        title="LedgerLake",
        summary="Commands, events, order states and semantic search over one lake.",
        version="1",
        lifespan=lifespan,
    )
    app.state.lake = served

    @app.exception_handler(LedgerLakeError)
    async def ledgerlake_error(_request: Request, exc: LedgerLakeError) -> Any:
        extra: dict[str, Any] = {}
        if isinstance(exc, ConcurrencyError):
            extra = {"stream_id": exc.stream_id, "expected": exc.expected, "actual": exc.actual}
        body = error_body(type(exc).__name__, str(exc), exit_code_for(exc), **extra)
        return _json_error(status_for(exc), body)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> Any:
        problems = [
            {"where": ".".join(str(p) for p in e.get("loc", ())), "problem": e.get("msg", "")}
            for e in exc.errors()
        ]
        message = "; ".join(f"{p['where']}: {p['problem']}" for p in problems) or "invalid request"
        return _json_error(422, error_body("InvalidRequest", message, 2, problems=problems))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Any:
        return _json_error(exc.status_code, error_body("HTTPError", str(exc.detail), 2))

    @app.exception_handler(Exception)
    async def unexpected(_request: Request, exc: Exception) -> Any:
        body = error_body("InternalError", f"internal error: {type(exc).__name__}", 1)
        return _json_error(500, body)

    app.include_router(serve_api.router)
    app.include_router(serve_page.router)
    app.add_middleware(GuardMiddleware, token=settings.token, max_body=settings.max_body_bytes)
    return app


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond loopback without a token (InvalidInputError, exit 2)."""
    from eventlog.errors import InvalidInputError

    if host not in LOOPBACK and not token:
        raise InvalidInputError(
            f"binding {host} exposes the lake beyond this machine: give --token "
            "(or LEDGERLAKE_TOKEN) so every request must carry it"
        )
    if token is not None and len(token) < 16:
        raise InvalidInputError("the token must be at least 16 characters long")
