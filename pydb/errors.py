"""The one exception hierarchy of pydb: every error a user can cause is a PydbError.

Driver errors (psycopg, SQLAlchemy) are translated where pydb calls the driver, with
`translate_driver_errors`: they become DatabaseError (or ConnectError) keeping the SQLSTATE and
the masked URL, so callers branch on data, never on message text.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


class PydbError(Exception):
    """Base class of every error pydb raises on purpose; the CLI prints it as one line."""

    def report(self) -> str:
        """The text the CLI prints for this error."""
        return f"Error: {self}"


class ConfigError(PydbError):
    """Configuration is missing or contradicts itself (URLs, environment, project files)."""


class LocalServerError(PydbError):
    """The local PostgreSQL server under .pydb/ cannot be started, stopped or read."""


class DatabaseError(PydbError):
    """The database refused a statement pydb sent; `sqlstate` and the masked `url` say which and where."""

    def __init__(self, message: str, *, sqlstate: str | None = None, url: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.url = url


class ConnectError(DatabaseError):
    """A database could not be reached, or refused the connection."""


class AtlasError(PydbError):
    """The Atlas CLI is missing or a command of it failed."""

    def __init__(self, message: str, *, stderr: str = "", exit_code: int | None = None) -> None:
        super().__init__(message)
        self.stderr = stderr
        self.exit_code = exit_code


class DestructiveChangeError(PydbError):
    """A push to a shared database would drop data and the user did not opt in."""


class QueryError(PydbError, AttributeError):
    """A relational query names a table, column or relation that does not exist."""


class BranchError(PydbError):
    """A branch cannot be created, found or deleted."""


class NeonAPIError(BranchError):
    """Neon's API refused a call or did not answer it: the HTTP `status` and Neon's `request_id`, when known."""

    def __init__(self, message: str, *, status: int | None = None, request_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id


class ProductionGuardError(PydbError):
    """A write to a production database was refused without an explicit opt-in."""


@dataclass(frozen=True)
class SeedProblem:
    """One problem found in a seed file, with its 1-based position."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class SeedError(PydbError):
    """A seed file is invalid; carries every problem found, each with file:line:col."""

    def __init__(self, problems: list[SeedProblem]) -> None:
        self.problems = problems
        first = str(problems[0]) if problems else "invalid seed file"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first + more)

    def report(self) -> str:
        """Every problem on its own line, then how many there were."""
        count = len(self.problems)
        lines = [str(problem) for problem in self.problems]
        return "\n".join([*lines, f"{count} problem{'s' if count != 1 else ''}; nothing was written"])


class LintError(PydbError):
    """A migration linter (Atlas's or squawk) could not run or gave output pydb cannot read."""


def driver_message(err: BaseException) -> str:
    """The first line of a driver error's own message (the DBAPI error under a SQLAlchemy one)."""
    text = str(getattr(err, "orig", None) or err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def driver_sqlstate(err: BaseException) -> str | None:
    """The SQLSTATE of a driver error (or of the DBAPI error under a SQLAlchemy one), if it has one."""
    inner = getattr(err, "orig", None) or err
    state = getattr(inner, "sqlstate", None)
    return str(state) if state else None


@contextmanager
def translate_driver_errors(url: str | None = None, doing: str = "") -> Iterator[None]:
    """Turn psycopg and SQLAlchemy errors raised inside into DatabaseError."""
    try:
        yield
    except PydbError:
        raise
    except Exception as err:
        import psycopg
        import sqlalchemy.exc

        if not isinstance(err, psycopg.Error | sqlalchemy.exc.DBAPIError):
            raise
        from pydb.urls import mask_password

        shown = mask_password(url) if url else None
        where = f" ({shown})" if shown else ""
        prefix = f"{doing}: " if doing else "database error: "
        message = mask_password(prefix + driver_message(err)) + where
        raise DatabaseError(message, sqlstate=driver_sqlstate(err), url=shown) from err
