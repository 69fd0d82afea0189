"""Access control: who may call which route, as an ASGI middleware.

Rules, in order:

* ``/health`` is open to everyone (monitoring and load balancers probe it).
* A request with credentials must present an active token, as ``Authorization: Bearer <secret>``
  or as HTTP Basic with the secret as password (what a URL such as
  ``http://lab:<secret>@host:8002/`` makes httpx, and so the official MADSci client, send).
  A wrong or revoked secret is refused with 401 whenever access control is on.
* Access control is on when any token exists, when ``auth_required`` is set, or when
  ``trusted_networks`` is given. Then a request without credentials gets 401, unless it comes
  from a trusted network, where it acts with ``trusted_scope``. When it is off (a fresh
  install on loopback) everyone acts as admin.
* Reading needs ``read``; changing anything needs ``write``; purging the trash and managing
  tokens needs ``admin`` (:data:`ADMIN_ROUTES`). Too little scope: 403 naming both scopes.

The token's name goes to ``request.state.token_name``, which the event log records as the actor.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio.to_thread

from labledger.core.access import Scope, hash_secret
from labledger.core.ids import utcnow
from labledger.core.store import Tokens
from labledger.errors import Forbidden, LabledgerError, Unauthorized
from labledger.server.errors import error_response
from labledger.settings import Settings

__all__ = [
    "ADMIN_ROUTES",
    "OPEN_PATHS",
    "AccessControl",
    "AuthMiddleware",
    "access_summary",
    "client_host",
    "exposure_problem",
    "is_loopback",
    "is_loopback_bind",
    "parse_credentials",
    "required_scope",
]

Scope_ = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope_, Receive, Send], Awaitable[None]]

log = logging.getLogger("labledger.server")

#: paths anyone may call
OPEN_PATHS = frozenset({"/health"})
#: (method or "*", path pattern) of the routes that need an admin token
ADMIN_ROUTES: list[tuple[str, re.Pattern[str]]] = [
    ("DELETE", re.compile(r"^/trash/[^/]+$")),
    ("*", re.compile(r"^/tokens(/.*)?$")),
]
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: how long the list of active tokens is trusted before it is read again (revocation delay)
TOKEN_CACHE_SECONDS = 1.0
#: how often a token's last_used_at is written at most
TOUCH_SECONDS = 60.0


def required_scope(method: str, path: str) -> Scope:
    """The scope a request needs: read for reads, write for changes, admin for ADMIN_ROUTES."""
    for admin_method, pattern in ADMIN_ROUTES:
        if admin_method in ("*", method) and pattern.match(path):
            return Scope.ADMIN
    return Scope.READ if method in _READ_METHODS else Scope.WRITE


def parse_credentials(header: str | None) -> str | None:
    """The secret in an Authorization header (Bearer, or Basic with it as password), or None.

    Raises ValueError when the header is present but not understood.
    """
    if not header:
        return None
    kind, _, value = header.strip().partition(" ")
    value = value.strip()
    if kind.lower() == "bearer" and value:
        return value
    if kind.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError("Basic credentials are not valid base64 of 'user:secret'") from None
        user, _, password = decoded.partition(":")
        secret = password or user  # `curl -u SECRET:` sends the secret as the user name
        if secret:
            return secret
    raise ValueError(
        "expected 'Authorization: Bearer <token>' (or Basic with the token as password)"
    )


def client_host(scope: Scope_) -> str:
    """The peer address of a request ('unknown' when the server does not say)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8 and ::1 (and the test client's 'testclient')."""
    if host == "testclient":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class AccessControl:
    """The active tokens (cached briefly) and the decision for one request."""

    def __init__(self, settings: Settings, tokens: Tokens) -> None:
        self.settings = settings
        self.tokens = tokens
        self._active: dict[str, tuple[str, Scope]] = {}
        self._loaded_at = -1e9
        self._touched: dict[str, float] = {}
        self._lock = anyio.Lock()

    def invalidate(self) -> None:
        """Forget the cached tokens (after one was created or revoked here)."""
        self._loaded_at = -1e9

    async def active(self) -> dict[str, tuple[str, Scope]]:
        """Secret hash -> (name, scope) of every active token, at most a second old."""
        if time.monotonic() - self._loaded_at > TOKEN_CACHE_SECONDS:
            async with self._lock:
                if time.monotonic() - self._loaded_at > TOKEN_CACHE_SECONDS:
                    self._active = await anyio.to_thread.run_sync(self.tokens.active)
                    self._loaded_at = time.monotonic()
        return self._active

    def enforced(self, active: dict[str, tuple[str, Scope]]) -> bool:
        """Whether requests need credentials at all."""
        s = self.settings
        return bool(active) or s.auth_required or bool(s.trusted_networks)

    def trusted(self, host: str) -> bool:
        """Whether ``host`` is in one of the trusted networks."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.settings.trusted_networks)

    async def touch(self, name: str) -> None:
        """Note that a token was used (written at most once a minute per token)."""
        now = time.monotonic()
        if now - self._touched.get(name, -1e9) < TOUCH_SECONDS:
            return
        self._touched[name] = now
        await anyio.to_thread.run_sync(self.tokens.touch, {name}, utcnow())


class AuthMiddleware:
    """Apply the rules of the module docstring to every HTTP request."""

    def __init__(self, app: ASGIApp, control: AccessControl) -> None:
        self.app = app
        self.control = control

    async def __call__(self, scope: Scope_, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        path: str = scope["path"]
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"authorization")
        try:
            active = await self.control.active()
        except LabledgerError as exc:  # the database is unreachable: 503, as any route would
            await error_response(exc)(scope, receive, send)
            return
        enforced = self.control.enforced(active)
        state = scope.setdefault("state", {})
        try:
            secret = parse_credentials(raw.decode("latin-1") if raw else None)
        except ValueError as exc:
            if enforced:
                await error_response(Unauthorized(f"Authorization: {exc}"))(scope, receive, send)
                return
            secret = None
        granted: Scope
        if secret is not None and enforced:
            found = active.get(hash_secret(secret))
            if found is None:
                refusal = Unauthorized("Authorization: the token is unknown or was revoked")
                await error_response(refusal)(scope, receive, send)
                return
            name, granted = found
            state["token_name"] = name
            state["principal"] = name
            try:
                await self.control.touch(name)
            except LabledgerError as exc:  # last-use bookkeeping must never refuse a request
                log.warning("could not note the use of token %r: %s", name, exc)
        elif not enforced:
            granted = Scope.ADMIN
        elif self.control.trusted(client_host(scope)):
            granted = Scope(self.control.settings.trusted_scope)
        else:
            refusal = Unauthorized(
                "A token is needed: send 'Authorization: Bearer <token>' "
                "(an admin makes one with `labledger token create NAME --scope read|write`)"
            )
            await error_response(refusal)(scope, receive, send)
            return
        needed = required_scope(method, path)
        if not granted.allows(needed):
            who = f"token {state['token_name']!r}" if "token_name" in state else "this client"
            forbidden = Forbidden(
                f"{method} {path} needs scope '{needed.value}'; {who} has '{granted.value}'",
                needed_scope=needed.value,
                granted_scope=granted.value,
            )
            await error_response(forbidden)(scope, receive, send)
            return
        state["scope"] = granted.value
        await self.app(scope, receive, send)


def is_loopback_bind(host: str) -> bool:
    """True when binding ``host`` exposes the server to this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: assume it faces the network


def exposure_problem(host: str, settings: Settings, token_count: int) -> str | None:
    """Why serving on ``host`` would leave the records open to the network, or None."""
    if is_loopback_bind(host):
        return None
    if token_count or settings.auth_required or settings.trusted_networks:
        return None
    return (
        f"Serving on {host} with no access control: anyone who can reach this port could "
        "change or delete every record. Make a token first "
        "(labledger token create NAME --scope admin), or allow only your lab's networks "
        "(EXPERIMENT_TRUSTED_NETWORKS='[\"10.0.5.0/24\"]'), or pass --insecure on a network "
        "you trust completely."
    )


def access_summary(settings: Settings, token_count: int) -> str:
    """One line on who may do what, for the server's start-up message."""
    if not (token_count or settings.auth_required or settings.trusted_networks):
        return "off (no tokens yet: everyone who can connect is admin)"
    parts = [f"{token_count} active token{'s' if token_count != 1 else ''}"]
    if settings.trusted_networks:
        nets = ", ".join(str(n) for n in settings.trusted_networks)
        parts.append(f"no token needed from {nets} ({settings.trusted_scope})")
    return "on: " + "; ".join(parts)
