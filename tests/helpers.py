"""Helpers shared by test modules and fixtures: the download cache, a PgBouncer process, git."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from pydb.local import SERVER_OS_USER


def cache_dir(*parts: str) -> Path:
    """Return a folder of the cache shared by every clone (like tools/atlas/build.py's): ~/.cache/pydb/PARTS."""
    base = os.environ.get("PYDB_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pydb"
    )
    return Path(base, *parts)


def made_once(target: Path, make: Callable[[Path], None]) -> Path:
    """Return target, made by make(target) first if missing; parallel workers wait for the one making it."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not target.exists():
            make(target)
    return target


def pgbouncer_binary() -> str | None:
    """Return the PgBouncer program (Debian's package), or None when it is not installed."""
    found = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    return found if os.path.exists(found) else None


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def pgbouncer(binary: str, server_port: int, folder: Path) -> Iterator[int]:
    """Run PgBouncer in transaction mode in front of every database of the server on server_port; yield its port."""
    port = _free_port()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "userlist.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host=127.0.0.1 port={server_port}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'userlist.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 1\nmax_client_conn = 50\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    folder.chmod(0o755)
    for parent in folder.parents:
        if parent == Path("/tmp"):
            break
        parent.chmod(parent.stat().st_mode | 0o005)
    command = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        command[1:1] = ["-u", SERVER_OS_USER]  # PgBouncer refuses to run as root
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    printed = []
    # PgBouncer logs "process up" once it listens; an empty read means it exited.
    while "process up" not in (line := proc.stderr.readline()):
        printed.append(line)
        if not line:
            proc.kill()
            raise RuntimeError(f"pgbouncer did not start: {''.join(printed).strip()}")
    # Keep reading its log, so that a full pipe never blocks it.
    reader = threading.Thread(target=proc.stderr.read, daemon=True)
    reader.start()
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        reader.join(timeout=10)
        proc.stderr.close()


def git(folder: Path, *args: str) -> str:
    """Run git in folder as a fixed author and return what it printed; a failure fails the test."""
    result = subprocess.run(
        ["git", "-c", "user.name=pydb tests", "-c", "user.email=tests@example.com", *args],
        cwd=folder, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def emails(url: str) -> list[str]:
    """Return the users' emails in the database at url, sorted (prepared statements off: URLs may be pooled)."""
    import psycopg

    with psycopg.connect(url, prepare_threshold=None) as conn:
        return [str(row[0]) for row in conn.execute("SELECT email FROM users ORDER BY email").fetchall()]


def add_user(url: str, email: str) -> None:
    """Insert a user with that email into the database at url."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO users (email, name) VALUES (%s, 'Someone')", (email,))
