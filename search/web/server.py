"""`mixer serve`: the web view on uvicorn, over one workspace, read-only."""

from __future__ import annotations

import re
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from mixer.errors import MixerError
from mixer.workspace import Workspace
from search.web.app import LOCAL_HOSTS, AppConfig, create_app
from store import SCHEMA_VERSION, schema_version
from store.db import connect

DEFAULT_PORT = 8470
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{16,}")   # URL-safe, so it travels in a URL and a cookie as it is


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    token: str | None = None      # required on every request; generated when the host is not local

    def __post_init__(self):
        if not 1 <= self.port <= 65535:
            raise MixerError(f"--port {self.port} is not a port (1 to 65535)")
        if not self.host.strip():
            raise MixerError("--host is empty")
        if self.token is not None and len(self.token) < 16:
            raise MixerError("--token is shorter than 16 characters: anyone on the network could guess it")
        if self.token is not None and not _TOKEN.fullmatch(self.token):
            raise MixerError("--token may hold letters, digits, '-', '_', '.' and '~' only (it travels in a URL and "
                             "a cookie)")

    @property
    def local(self) -> bool:
        return self.host in LOCAL_HOSTS


def check_listen(config: ServeConfig) -> None:
    """That the server can listen at --host and --port, before anything is printed or run
    (`demo --serve` checks before its search): one line naming the address otherwise."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as error:
        raise MixerError(f"--host {config.host}: {error.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise MixerError(f"cannot listen on {config.host} port {config.port}: {error.strerror}") from None


def check_store(ws: Workspace) -> None:
    """The web view reads; it never creates or upgrades a store (every other command may)."""
    if not ws.db_path.exists():
        raise MixerError(f"no mixer store in {ws.root}: run `mixer demo` (or `mixer corpus add`) there first")
    con = connect(ws.db_path, read_only=True)
    try:
        version = schema_version(con)
    finally:
        con.close()
    if version > SCHEMA_VERSION:
        raise MixerError(f"the store in {ws.root} is at schema {version}, newer than this mixer understands "
                         f"({SCHEMA_VERSION}); upgrade mixer")
    if version < SCHEMA_VERSION:
        raise MixerError(f"the store in {ws.root} is at schema {version}: run `mixer info` once to upgrade it")


def serve(ws: Workspace, config: ServeConfig, say: Callable[[str], None] = print) -> None:
    """Serve until interrupted. A non-local host gets a token (the one given or a new one)."""
    import uvicorn

    check_listen(config)
    check_store(ws)
    token = config.token or (None if config.local else secrets.token_urlsafe(24))
    app = create_app(ws, AppConfig(token=token, local_only=config.local, cookie=f"mixer_token_{config.port}"))
    say(f"mixer serve: {ws.root} (read-only) at {url(config, token)}")
    if config.host in ("0.0.0.0", "::"):
        say(f"listening on every interface: use this machine's name or address in place of {config.host}")
    if token and not config.token:
        say("the server is reachable from the network: every request needs the token in that URL")
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False)


def url(config: ServeConfig, token: str | None = None, path: str = "") -> str:
    """The address a browser opens: `path` under the server's root, with the token."""
    host = f"[{config.host}]" if ":" in config.host else config.host
    return f"http://{host}:{config.port}/{path}" + (f"?token={quote(token)}" if token else "")
