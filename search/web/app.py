"""The ASGI application of `mixer serve`: three pages (searches, a search, the corpus) that
render the JSON documents of `/api` in the browser (static/app.js), the documents
themselves, and the export download. Read-only: every route reads through
`search.web.documents`; nothing a browser sends becomes SQL or a file path.

    GET /api                              this list
    GET /api/searches                     every search (searches_document)
    GET /api/searches/{name}              one search: progress, runs, recommendation (search_document)
    GET /api/searches/{name}/export       ?format=F[&path_template=T]: what `mixer export` writes
    GET /api/curves                       ?run=ID: one run's loss curves (curves_document)
    GET /api/corpus                       domains, eval-only sets, clusterings (corpus_document)
"""

from __future__ import annotations

import html
import secrets
from dataclasses import dataclass
from importlib import resources
from string import Template

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mixer.errors import MixerError
from mixer.workspace import Workspace
from search.web import documents
from search.web.snapshots import BUSY_MARKER, Snapshots

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
ALLOWED_LOCAL_HOST_HEADERS = ("127.0.0.1", "localhost", "[::1]")   # as Host headers carry them
SECURITY_HEADERS = {
    # scripts, styles and data come from this server only; nothing inline runs
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; base-uri 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


@dataclass(frozen=True)
class AppConfig:
    """token: required on every request when set (query `?token=`, then a cookie, or an
    `Authorization: Bearer` header; `cookie` names the cookie); local_only: accept only loopback Host headers (a page
    on another site cannot reach a local server by DNS rebinding); refresh_s: how often a
    page polls its document (at least 2 s); snapshot_s: how often the store is read (once per
    refresh: a live search changes with every run, and each read is a moment a driver waits)."""

    token: str | None = None
    local_only: bool = True
    refresh_s: float = 2.0
    snapshot_s: float = 2.0
    cookie: str = "mixer_token"   # one per port: two servers on one host keep their own tokens


def create_app(ws: Workspace, config: AppConfig = AppConfig()) -> Starlette:
    snapshots = Snapshots(config.snapshot_s)
    routes = [*_page_routes(ws, config, snapshots), *_api_routes(ws, snapshots),
              Mount("/static", StaticFiles(packages=[("search.web", "static")]), name="static")]
    middleware = [Middleware(SecurityHeaders)]
    if config.token:
        middleware.append(Middleware(TokenGate, token=config.token, cookie=config.cookie))
    if config.local_only:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(ALLOWED_LOCAL_HOST_HEADERS)))
    return Starlette(routes=routes, middleware=middleware)


def _page_routes(ws: Workspace, config: AppConfig, snapshots: Snapshots) -> list[Route]:
    """The HTML pages: one shell, filled by the page's script from the API."""
    shell = Template(resources.files("search.web").joinpath("static/page.html").read_text())

    def page(kind: str, title: str, body: str, search: str = "") -> HTMLResponse:
        text = shell.substitute(root="/", title=html.escape(title), page=kind, search=html.escape(search, quote=True),
                                refresh_ms=int(max(config.refresh_s, 2.0) * 1000), body=body)
        return HTMLResponse(text)

    def searches_page(request: Request) -> Response:
        return page("searches", "searches", '<h1>searches</h1><div id="content"></div>')

    def search_page(request: Request) -> Response:
        name = request.path_params["name"]
        try:   # from the shared list (a page load opens no store of its own), else by id
            listed = snapshots.get("searches", lambda: documents.searches_document(ws)).document["searches"]
            if name not in {row["name"] for row in listed}:
                documents.search_exists(ws, name)
        except MixerError as error:
            response = page("missing", name, f'<h1>{html.escape(str(error))}</h1><p><a href="">every search</a></p>')
            response.status_code = 404
            return response
        return page("search", name, SEARCH_BODY.substitute(name=html.escape(name)), search=name)

    def corpus_page(request: Request) -> Response:
        return page("corpus", "corpus", '<h1>corpus</h1><div id="content"></div>')

    return [Route("/", searches_page), Route("/search/{name}", search_page), Route("/corpus", corpus_page)]


def _api_routes(ws: Workspace, snapshots: Snapshots) -> list[Route]:
    """The JSON documents the pages poll (shared snapshots), and the export download."""
    def api_index(request: Request) -> Response:
        return JSONResponse({"endpoints": API_ENDPOINTS})

    def api_searches(request: Request) -> Response:
        return _answer(lambda: snapshots.get("searches", lambda: documents.searches_document(ws)))

    def api_search(request: Request) -> Response:
        name = request.path_params["name"]
        return _answer(lambda: snapshots.get(("search", name), lambda: documents.search_document(ws, name),
                                             lambda: documents.search_fingerprint(ws, name)))

    def api_curves(request: Request) -> Response:
        run = request.query_params.get("run", "")
        return _answer(lambda: snapshots.get(("curves", run), lambda: documents.curves_document(ws, run),
                                             lambda: documents.run_fingerprint(ws, run)))

    def api_corpus(request: Request) -> Response:
        return _answer(lambda: snapshots.get("corpus", lambda: documents.corpus_document(ws)))

    def api_export(request: Request) -> Response:
        name, query = request.path_params["name"], request.query_params
        try:
            text, filename = documents.export_document(ws, name, query.get("format", "json"),
                                                       query.get("path_template"))
        except MixerError as error:
            return _error(error, missing=400)    # a bad format or template is the request's fault
        return PlainTextResponse(text, headers={"content-disposition": f'attachment; filename="{filename}"'})

    return [Route("/api", api_index), Route("/api/searches", api_searches), Route("/api/searches/{name}", api_search),
            Route("/api/searches/{name}/export", api_export), Route("/api/curves", api_curves),
            Route("/api/corpus", api_corpus)]


def _answer(read) -> Response:
    """A snapshot's JSON; a search or run that is not there is a 404 naming it."""
    try:
        return Response(read().body, media_type="application/json")
    except MixerError as error:
        return _error(error)


def _error(error: MixerError, missing: int = 404) -> JSONResponse:
    """One line of JSON: 503 while the store is busy (nothing read yet), 404 for a search or
    run that is not there, else `missing` (a request the server cannot answer)."""
    text = str(error)
    status = 503 if BUSY_MARKER in text else 404 if text.startswith(("no search named", "no run ")) else missing
    return JSONResponse({"error": text}, status_code=status)


SEARCH_BODY = Template("""<h1 id="title">$name</h1>
<div class="grid2">
<section><h2>progress</h2><div id="facts-box"></div>
<h2>best so far</h2><div id="best-curve"></div></section>
<section><h2>recommendation</h2><div id="recommendation"></div>
<h2>export</h2><div id="exports"></div></section>
</div>
<h2>mixtures of the search's runs (best first; the strip is the target)</h2><div id="mixtures"></div>
<div id="schedule-box"></div>
<h2>runs</h2><div id="runs-filter"></div><div id="runs-note"></div><div id="runs-table"></div>
<h2 id="curves-title">loss curves: click a run</h2><div id="curves"></div>""")

API_ENDPOINTS = [
    {"path": "/api/searches", "returns": "every search: name, kind, backend, target, direction, status, live, runs, "
                                         "done, budget, best, created"},
    {"path": "/api/searches/{name}", "returns": "search facts, progress (runs by status, budget, cost, best), "
                                                "domains, runs (columns; weights follow domains), best_curve, "
                                                "recommendation (mixture, predicted ± std, evidence lines, "
                                                "quality, references), exports, schedule"},
    {"path": "/api/searches/{name}/export?format=F&path_template=T", "returns": "what `mixer export` writes"},
    {"path": "/api/curves?run=ID", "returns": "a run's curves: series 'split/name' -> [[tokens, value]]"},
    {"path": "/api/corpus", "returns": "domains and eval-only sets; clusterings with cluster sizes and top terms"},
]


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


class TokenGate:
    """Every request must carry the token; one given as `?token=` is kept in a cookie so
    the page's own requests carry it."""

    def __init__(self, app: ASGIApp, token: str, cookie: str):
        self.app, self.token, self.cookie = app, token, cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        in_query = request.query_params.get("token")
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        bearer = credentials.strip() if scheme.lower() == "bearer" else ""
        given = in_query or bearer or request.cookies.get(self.cookie) or ""
        if not secrets.compare_digest(given.encode(), self.token.encode()):
            await JSONResponse({"error": "mixer serve needs its token: open the URL it printed (…?token=…)"},
                               status_code=401)(scope, receive, send)
            return

        cookie = f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        if in_query and request.method == "GET" and not request.url.path.startswith("/api"):
            # a page opened from the printed URL: the cookie carries the token on, and the
            # address bar (and the history) keeps no copy of it
            clean = request.url.remove_query_params("token")
            await RedirectResponse(str(clean), status_code=303, headers={"set-cookie": cookie})(scope, receive, send)
            return

        async def keep_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and in_query:
                message.setdefault("headers", [])
                message["headers"] += [(b"set-cookie", cookie.encode())]
            await send(message)

        await self.app(scope, receive, keep_cookie)
