"""The one exception hierarchy of pydb: every error a user can cause is a PydbError."""

from __future__ import annotations

from dataclasses import dataclass


class PydbError(Exception):
    """Base class of every error pydb raises on purpose; the CLI prints it as one line."""


class ConfigError(PydbError):
    """Configuration is missing or contradicts itself (URLs, environment, project files)."""


class LocalServerError(PydbError):
    """The local PostgreSQL server under .pydb/ cannot be started, stopped or read."""


class ConnectError(PydbError):
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


class LintError(PydbError):
    """A migration linter (Atlas's or squawk) could not run or gave output pydb cannot read."""
