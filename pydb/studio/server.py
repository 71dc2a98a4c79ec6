"""Serving the studio with uvicorn on a loopback address, until Ctrl-C."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import uvicorn

from pydb.errors import ConfigError
from pydb.studio.security import LOOPBACK_NAMES

if TYPE_CHECKING:
    from pydb.studio.app import Studio

__all__ = ["DEFAULT_PORT", "serve"]

DEFAULT_PORT = 4980


class _Server(uvicorn.Server):
    """uvicorn's server, telling when it listens."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started()


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to a loopback address (ConfigError for any other address, or a port in use)."""
    if host not in LOOPBACK_NAMES:
        raise ConfigError(f"pydb studio listens on this machine only (127.0.0.1, localhost or ::1), not {host!r}; "
                          "to reach it from another machine, forward the port over SSH (ssh -L PORT:127.0.0.1:PORT)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {err.strerror}; choose another port with --port "
                          "(--port 0: any free one)") from None
    return sock


def serve(studio: Studio, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the studio until interrupted (Ctrl-C); on_ready gets its address with the token once it listens."""
    sock = listen(host, port)
    shown = f"[{host}]" if ":" in host else host
    address = f"http://{shown}:{sock.getsockname()[1]}/?token={studio.token}"
    config = uvicorn.Config(studio.app, log_config=None, access_log=False, lifespan="off",
                            timeout_graceful_shutdown=3)
    server = _Server(config, lambda: on_ready(address) if on_ready else None)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn stops on the first Ctrl-C, then raises it again: that is the normal way to stop
    finally:
        sock.close()
        studio.close()
