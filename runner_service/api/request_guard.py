"""What every request passes before any route sees it (a pure ASGI middleware).

- A body over `max_bytes` is refused with 413 before it is parsed: at once when its
  Content-Length says so, else as soon as the streamed (chunked) body passes the cap.
- NUL characters in the path, the query or a header, and in any string or key of a JSON body,
  are refused with 422; so are non-finite numbers in a JSON body (NaN, Infinity, -Infinity and
  numbers too large for a float, such as 1e999), which Python's JSON reader would otherwise
  turn into floats that pydantic accepts and the store writes as null.
- A JSON body nested too deeply for Python's JSON reader is refused with 422.
The body, once read and checked, is handed on to the application unchanged.
"""

from __future__ import annotations

import json
import math
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runner_service.api.errors import problem


class Refused(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status = status
        self.detail = detail


class RequestGuard:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] != 'http':
            await self.app(scope, receive, send)
            return
        try:
            check_target(scope)
            body = await self._read(scope, receive)
            if body:
                check_json(body, _content_type(scope))
        except Refused as refused:
            await problem(refused.status, refused.detail)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {'type': 'http.request', 'body': body, 'more_body': False}
            return await receive()  # after the body: only http.disconnect is left to come

        await self.app(scope, replay, send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes:
        declared = _header(scope, b'content-length')
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                raise Refused(400, 'Content-Length is not a number') from None
            if length > self.max_bytes:
                raise Refused(413, _too_large(self.max_bytes))
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message['type'] == 'http.disconnect':
                break
            chunk = message.get('body', b'')
            size += len(chunk)
            if size > self.max_bytes:
                raise Refused(413, _too_large(self.max_bytes))
            chunks.append(chunk)
            if not message.get('more_body', False):
                break
        return b''.join(chunks)


def check_target(scope: Scope) -> None:
    """No NUL in the path (raw or %00), the query string or a header."""
    raw_path = scope.get('raw_path') or scope.get('path', '').encode()
    if b'\x00' in unquote_to_bytes(raw_path) or '\x00' in scope.get('path', ''):
        raise Refused(422, 'invalid request: the path holds a NUL character')
    if b'\x00' in unquote_to_bytes(scope.get('query_string', b'').replace(b'+', b' ')):
        raise Refused(422, 'invalid request: the query string holds a NUL character')
    for name, value in scope.get('headers', ()):
        if b'\x00' in name or b'\x00' in value:
            raise Refused(422, 'invalid request: a header holds a NUL character')


def check_json(body: bytes, content_type: str) -> None:
    """Refused: NUL and non-finite numbers anywhere in a JSON body. A body that is not JSON is
    left to the route (which answers 422 for it)."""
    if content_type and 'json' not in content_type:
        return
    try:
        document = json.loads(body, parse_constant=_non_finite, parse_float=_finite_float)
    except Refused:
        raise
    except RecursionError:
        raise Refused(422, 'invalid request: the JSON body is nested too deeply') from None
    except ValueError:  # not JSON (or not UTF-8): the route says what it expected
        return
    pending = [(document, 'body')]
    while pending:
        value, where = pending.pop()
        if isinstance(value, str):
            if '\x00' in value:
                raise Refused(422, 'invalid request: %s holds a NUL character' % where)
        elif isinstance(value, dict):
            for key, item in value.items():
                if '\x00' in key:
                    raise Refused(422, 'invalid request: a key in %s holds a NUL character' % where)
                pending.append((item, _step(where, '.' + key)))
        elif isinstance(value, list):
            pending.extend((item, _step(where, '[%d]' % index)) for index, item in enumerate(value))


def _non_finite(constant: str):
    raise Refused(422, 'invalid request: %s is not a number JSON allows (NaN and infinite numbers are refused)'
                  % constant)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise Refused(422, 'invalid request: %s... is too large for a number' % text[:20])
    return value


def _step(where: str, step: str) -> str:
    path = where + step[:41]
    return path if len(path) <= 120 else '...' + path[-117:]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get('headers', ()):
        if key.lower() == name:
            return value.decode('latin-1')
    return None


def _content_type(scope: Scope) -> str:
    return (_header(scope, b'content-type') or '').lower()


def _too_large(limit: int) -> str:
    return 'the request body is larger than %d bytes (DBFLEET_MAX_REQUEST_BYTES): send less' % limit
