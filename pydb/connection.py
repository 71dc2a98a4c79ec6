"""Which database to use, and how to open a Neon-aware SQLAlchemy engine for it."""

from __future__ import annotations

import os

from pydb.errors import ConfigError


def resolve_url(url: str | None = None) -> str:
    """Return the URL to use: the argument, else DATABASE_URL, else the running local database."""
    if url:
        return url
    env_url = os.environ.get("DATABASE_URL")
    if env_url:
        return env_url
    from pydb.local import LocalServer

    server = LocalServer()
    if server.is_running():
        return server.url()
    raise ConfigError(
        "no database: set DATABASE_URL, or start the local one with `pydb dev up`"
    )
