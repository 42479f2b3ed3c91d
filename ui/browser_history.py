"""One browser history entry per user action, so Back undoes exactly one step.

Every page writes its view into the URL (ui/filters), and Streamlit adds a history entry for each
write. Two kinds of write left a step too many:
- a click on another page in the menu: Streamlit 1.67 pushes the new page's query on the *old*
  page's path (the page's first run writes it before the frontend has moved to the new path), then
  pushes the new path; one Back showed Overview without its filter, a second Back was needed;
- a link tidied on opening (a wrong filter left out): Back returned to the untidy link, which
  tidied itself again, so Back seemed to do nothing.

The guard makes every `history.pushState` after the first of the same action a `replaceState`; an
action begins with a pointer press, a key press or typed text. Writes made while a page loads or
while Back/Forward shows an entry (popstate) add no entry of their own: they tidy the address the
user is on. Nor does the login form's address (`?next=`, a link opened before logging in): the page
it opens after the login takes its place (also when Streamlit first drops `next` from the address,
then pushes the page), so Back leaves for where the user was before the link. It has to be in place before Streamlit's own script runs (a page's first run writes the
URL before any component of that run is mounted), so `HistoryGuard`, an ASGI middleware of app.py,
puts it at the top of the app's HTML page.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ui.context import NEXT_PAGE

GUARD_JS = """(function () {
  if (window.__tbHistoryGuard) { return; }
  window.__tbHistoryGuard = true;
  var history = window.history;
  var push = history.pushState.bind(history);
  var replace = history.replaceState.bind(history);
  var added = true;  // has the current action added its entry? Loading a page adds none.
  var onLogin = function () { return new URLSearchParams(window.location.search).has(NEXT_PAGE); };
  // Did the current action start on the login form's address? Streamlit may drop `next` from the
  // address (a replace) before it pushes the page the login opens: that push is the same step.
  var fromLogin = false;
  var newAction = function () { added = false; fromLogin = onLogin(); };
  ['pointerdown', 'keydown', 'input'].forEach(function (type) {
    window.addEventListener(type, newAction, true);
  });
  window.addEventListener('popstate', function () { added = true; fromLogin = false; }, true);
  history.pushState = function (state, unused, url) {
    // The login form's address (it names the page to open after the login) gives way to that page.
    if (added || fromLogin || onLogin()) { return replace(state, unused, url); }
    added = true;
    return push(state, unused, url);
  };
})();"""
SCRIPT = (
    '<script data-tallyboard="history-guard">'
    + GUARD_JS.replace("NEXT_PAGE", json.dumps(NEXT_PAGE))
    + "</script>"
).encode()

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Message, Receive, Send], Awaitable[None]]


def with_guard(html: bytes) -> bytes:
    """The page with the guard as the first thing in its <head> (unchanged without a <head>)."""
    head = html.find(b"<head>")
    if head < 0 or SCRIPT in html:
        return html
    cut = head + len(b"<head>")
    return html[:cut] + SCRIPT + html[cut:]


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes:
    return next((v for k, v in headers if k.lower() == name), b"")


class HistoryGuard:
    """ASGI middleware: the app's HTML page (Streamlit's index.html, served for every page path)
    carries the guard. A page request (one that accepts text/html) is asked for in full and
    uncompressed (it is 8 KB and marked no-cache anyway), and answered without the file's validators
    (ETag, Last-Modified), which describe the page without the guard."""

    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        headers = list(scope.get("headers") or ())
        if (
            scope["type"] != "http"
            or scope.get("method") != "GET"
            or b"text/html" not in _header(headers, b"accept")
        ):
            await self.app(scope, receive, send)
            return
        dropped = {b"accept-encoding", b"if-none-match", b"if-modified-since"}
        scope = {**scope, "headers": [(k, v) for k, v in headers if k.lower() not in dropped]}
        start: Message | None = None
        body: list[bytes] = []

        async def send_guarded(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                out = list(message.get("headers") or ())
                html = _header(out, b"content-type").startswith(b"text/html")
                if html and not _header(out, b"content-encoding"):
                    start = message  # held until the whole body is here
                    return
            elif message["type"] == "http.response.body" and start is not None:
                body.append(message.get("body", b""))
                if message.get("more_body"):
                    return
                page = with_guard(b"".join(body))
                kept = [
                    (k, v)
                    for k, v in start.get("headers") or ()
                    if k.lower() not in {b"content-length", b"etag", b"last-modified"}
                ]
                kept.append((b"content-length", str(len(page)).encode()))
                await send({**start, "headers": kept})
                await send({"type": "http.response.body", "body": page})
                return
            await send(message)

        await self.app(scope, receive, send_guarded)
