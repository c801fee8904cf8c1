"""The gate in front of every ``/v1`` route: API keys (401), rate limit (429) and bounded waiting (503).

One pure ASGI middleware, installed by ``build_app``, so the three services get the same rules with no code of
their own. In order:

1. **API key** (only when ``<PREFIX>_API_KEY`` is set): ``Authorization: Bearer <key>`` must name one of the keys.
   Checked first, so a stranger uses no one's budget and learns nothing. Keys are never logged.
2. **Rate limit** (only when ``<PREFIX>_RATE_LIMIT`` is set): per key, or per client address without keys, with
   the ``limits`` library (moving window, in memory: per process, so per replica).
3. **Admission** (always): a POST under ``/v1`` uses the model, which serves one request at a time; at most
   ``1 + <PREFIX>_MAX_QUEUED_REQUESTS`` such requests are in the service at once, counted from arrival until
   the last byte of the response (streams included). One more gets 503 with ``Retry-After`` at once, instead
   of waiting behind a queue it cannot see.

``/health``, ``/ready``, ``/docs`` and ``/openapi.json`` are not under ``/v1`` and stay open; CORS preflights are
answered by Starlette's CORSMiddleware, which sits in front of this one.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from prometheus_client import Counter

from .errors import InvalidApiKey, Overloaded, RateLimited, ServiceError, error_response

logger = logging.getLogger(__name__)

API_PREFIX = "/v1/"
OVERLOADED_RETRY_AFTER_S = 2

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ApiKeys:
    """The configured bearer keys; an empty list lets everyone in."""

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = [key.encode() for key in keys]

    @property
    def required(self) -> bool:
        return bool(self._keys)

    def caller(self, authorization: bytes | None) -> str | None:
        """A name for the caller, ``key-<n>`` (the position of its key, never the key), or None without keys.

        Raises InvalidApiKey (401) when keys are configured and the header names none of them.
        """
        if not self._keys:
            return None
        scheme, _, token = (authorization or b"").strip().partition(b" ")
        token = token.strip()
        if scheme.lower() != b"bearer" or not token:
            raise InvalidApiKey(
                "no API key: send it as 'Authorization: Bearer <key>' (set by this service's API_KEY variable)"
            )
        # every key compared in constant time, so the time taken tells nothing about any of them
        matches = [hmac.compare_digest(token, key) for key in self._keys]
        if not any(matches):
            raise InvalidApiKey("incorrect API key provided")
        return f"key-{matches.index(True)}"


class RateLimit:
    """``limits``' moving window over one or more rates, e.g. ``"5/second;300/hour"``, per caller."""

    def __init__(self, spec: str) -> None:
        from limits import parse_many
        from limits.storage import MemoryStorage
        from limits.strategies import MovingWindowRateLimiter

        self.spec = spec
        self._items = parse_many(spec)
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, caller: str) -> None:
        """Count one request of ``caller``; raises RateLimited (429) if one of the rates is used up."""
        full = [item for item in self._items if not self._limiter.test(item, caller)]
        if full:
            reset_at = max(self._limiter.get_window_stats(item, caller).reset_time for item in full)
            retry_after_s = max(1, math.ceil(reset_at - time.time()))
            raise RateLimited(
                f"rate limit reached ({self.spec}); try again in {retry_after_s} s", retry_after_s=retry_after_s
            )
        for item in self._items:
            self._limiter.hit(item, caller)


class Admission:
    """How many model requests are in the service; at most ``max_queued + 1`` (one served, the rest waiting).

    Used from the event loop only, so a plain counter needs no lock.
    """

    def __init__(self, max_queued: int) -> None:
        self.max_queued = max_queued
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no model request is in the service; False if some still are after ``timeout_s``."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def enter(self) -> None:
        """Take a place; raises Overloaded (503, Retry-After) when every place is taken."""
        if self.in_flight > self.max_queued:
            raise Overloaded(
                f"the service is busy: {self.in_flight} requests are being served or waiting, the most it queues; "
                f"try again in {OVERLOADED_RETRY_AFTER_S} s",
                retry_after_s=OVERLOADED_RETRY_AFTER_S,
            )
        self.in_flight += 1
        self._idle.clear()

    def leave(self) -> None:
        self.in_flight -= 1
        if not self.in_flight:
            self._idle.set()


class ApiGuard:
    """ASGI middleware applying ``ApiKeys``, ``RateLimit`` (optional) and ``Admission`` to ``/v1`` requests.

    Each refusal is counted in ``refused`` (a prometheus_client Counter labelled ``reason``: ``api_key``,
    ``rate_limit``, ``queue_full``) when one is given.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_keys: ApiKeys,
        rate_limit: RateLimit | None,
        admission: Admission,
        refused: Counter | None = None,
    ) -> None:
        self.app = app
        self.api_keys = api_keys
        self.rate_limit = rate_limit
        self.admission = admission
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        uses_model = scope["method"] == "POST"
        try:
            self._admit(scope, uses_model)
        except ServiceError as err:
            await error_response(err)(scope, receive, send)
            return
        if not uses_model:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.admission.leave()

    def _admit(self, scope: Scope, uses_model: bool) -> None:
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        where = f"{scope['method']} {scope['path']} from {address}"
        try:
            caller = self.api_keys.caller(_header(scope, b"authorization"))
        except InvalidApiKey as err:
            logger.warning("401 for %s: %s", where, err.message)  # the message never contains the key
            self._count_refusal("api_key")
            raise
        if self.rate_limit is not None:
            try:
                self.rate_limit.hit(caller or address)
            except RateLimited as err:
                logger.info("429 for %s (%s): %s", where, caller or "no key", err.message)
                self._count_refusal("rate_limit")
                raise
        if uses_model:
            try:
                self.admission.enter()
            except Overloaded:
                logger.warning("503 for %s: %d requests already in the service", where, self.admission.in_flight)
                self._count_refusal("queue_full")
                raise

    def _count_refusal(self, reason: str) -> None:
        if self.refused is not None:
            self.refused.labels(reason).inc()


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None
