"""`mixer serve`: the web view on uvicorn, over one workspace, read-only."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from mixer.errors import MixerError
from mixer.workspace import Workspace
from search.web.app import LOCAL_HOSTS, AppConfig, create_app
from store import SCHEMA_VERSION, schema_version
from store.db import connect

DEFAULT_PORT = 8470


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

    @property
    def local(self) -> bool:
        return self.host in LOCAL_HOSTS


def check_store(ws: Workspace) -> None:
    """The web view reads; it never creates or upgrades a store (every other command may)."""
    if not ws.db_path.exists():
        raise MixerError(f"no mixer store in {ws.root}: run `mixer demo` (or `mixer corpus add`) there first")
    con = connect(ws.db_path, read_only=True)
    try:
        version = schema_version(con)
    finally:
        con.close()
    if version < SCHEMA_VERSION:
        raise MixerError(f"the store in {ws.root} is at schema {version}: run `mixer info` once to upgrade it")


def serve(ws: Workspace, config: ServeConfig, say: Callable[[str], None] = print) -> None:
    """Serve until interrupted. A non-local host gets a token (the one given or a new one)."""
    import uvicorn

    check_store(ws)
    token = config.token or (None if config.local else secrets.token_urlsafe(24))
    app = create_app(ws, AppConfig(token=token, local_only=config.local))
    shown_host = f"[{config.host}]" if ":" in config.host else config.host
    url = f"http://{shown_host}:{config.port}/" + (f"?token={token}" if token else "")
    say(f"mixer serve: {ws.root} (read-only) at {url}")
    if token and not config.token:
        say("the server is reachable from the network: every request needs the token in that URL")
    uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False)
