"""`mixer serve`: a live, read-only web view of a workspace's searches, runs and answers."""

from search.web.server import DEFAULT_PORT, ServeConfig, check_listen, serve, url

__all__ = ["DEFAULT_PORT", "ServeConfig", "check_listen", "serve", "url"]
