"""Who may talk to the studio: this machine's browser holding the token, on a loopback host name.

- The Host header must name 127.0.0.1, localhost or [::1]: a page of another site whose name was
  made to resolve to 127.0.0.1 (DNS rebinding) is refused.
- The random token printed at start is exchanged, once, for an HttpOnly, SameSite=Strict cookie;
  a request with neither gets 401, a wrong token 403.
- A request that may write (anything but GET and HEAD) needs an Origin header of this very server.
"""

from __future__ import annotations

import hashlib
import secrets
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import Headers, QueryParams
from starlette.requests import cookie_parser
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["LOOPBACK_NAMES", "Guard", "new_token"]

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
_SAFE_METHODS = frozenset({"GET", "HEAD"})
_PUBLIC = "/static/"


def new_token() -> str:
    """A new random token for the studio's URL."""
    return secrets.token_urlsafe(24)


def _refusal(status: int, title: str, text: str) -> Response:
    body = (f"<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title>"
            f"<link rel=stylesheet href=/static/studio.css><main class=refused><h1>{title}</h1><p>{text}</p></main>")
    return HTMLResponse(body, status_code=status)


class Guard:
    """ASGI middleware enforcing the Host, token/cookie and Origin rules in front of the studio's pages."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token
        self.cookie = "pydb_studio_" + hashlib.sha256(token.encode()).hexdigest()[:12]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._check(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope) -> Response | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if urlsplit("//" + host).hostname not in LOOPBACK_NAMES:
            return _refusal(403, "Unknown host",
                            "pydb studio answers only to 127.0.0.1 and localhost; this request named another host.")
        if scope["path"].startswith(_PUBLIC):
            return None
        query = QueryParams(scope.get("query_string", b"").decode("latin-1"))
        if "token" in query:
            if not secrets.compare_digest(query["token"].encode(), self.token.encode()):
                return _refusal(403, "Wrong token", "This token is not the one pydb studio printed when it started.")
            rest = urlencode([(k, v) for k, v in query.multi_items() if k != "token"])
            response = RedirectResponse(scope["path"] + (f"?{rest}" if rest else ""), status_code=303)
            response.set_cookie(self.cookie, self.token, httponly=True, samesite="strict", path="/")
            return response
        held = cookie_parser(headers.get("cookie", "")).get(self.cookie, "")
        if not secrets.compare_digest(held.encode(), self.token.encode()):
            return _refusal(401, "Open the address pydb studio printed",
                            "This page needs the token in the address that <code>pydb studio</code> printed "
                            "when it started (<code>http://127.0.0.1:PORT/?token=…</code>); "
                                   "after a restart, it printed a new one.")
        if scope["method"] not in _SAFE_METHODS and headers.get("origin") != f"http://{host}":
            return _refusal(403, "Refused", "A change must come from a page of this studio (the Origin header "
                                            "is missing or names another site).")
        return None
