"""Branches: isolated copies of a database, on the local server or on Neon.

The local backend copies a database of the local server with `CREATE DATABASE … TEMPLATE`; the
Neon backend calls Neon's API v2. `backend()` picks Neon when `NEON_API_KEY` and `NEON_PROJECT_ID`
are set, else the local server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from pydb.config import Settings, load_settings
from pydb.errors import BranchError

__all__ = [
    "Branch",
    "BranchBackend",
    "backend",
    "branch_url",
    "create_branch",
    "delete_branch",
    "format_size",
    "is_default_branch",
    "list_branches",
    "reset_branch",
    "validate_name",
]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")


@dataclass(frozen=True)
class Branch:
    """One branch: its name, parent, size in bytes, creation time and (when known) URL."""

    name: str
    parent: str | None
    size: int | None
    created_at: datetime | None
    url: str | None = None
    id: str | None = None
    default: bool = False


@runtime_checkable
class BranchBackend(Protocol):
    """Where branches live: the local server or a Neon project."""

    kind: str

    def create(self, name: str, parent: str | None = None) -> Branch:
        """Create a branch as a copy of parent (the backend's default parent when None)."""
        ...

    def list(self) -> list[Branch]:
        """Return every branch, oldest first."""
        ...

    def get(self, name: str) -> Branch:
        """Return one branch by name."""
        ...

    def url(self, name: str, *, pooled: bool = False) -> str:
        """Return the connection URL of a branch (pooled: for application traffic on Neon)."""
        ...

    def delete(self, name: str) -> None:
        """Delete a branch and its data."""
        ...

    def reset(self, name: str, *, preserve_under: str | None = None) -> Branch:
        """Make a branch a fresh copy of its parent again (its old state kept as branch preserve_under if given)."""
        ...


def validate_name(name: str) -> str:
    """Return the branch name if it is valid, else raise BranchError."""
    if not _NAME.match(name):
        raise BranchError(
            f"invalid branch name {name!r}: use 1 to 41 characters among a-z, 0-9, '_' and '-', "
            f"starting with a letter or a digit"
        )
    return name


def backend(settings: Settings | None = None) -> BranchBackend:
    """Return the Neon backend when NEON_API_KEY and NEON_PROJECT_ID are set, else the local one."""
    settings = settings or load_settings()
    if settings.neon:
        from pydb.branches.neon import NeonBranches

        return NeonBranches.from_settings(settings)
    if settings.neon_api_key or settings.neon_project_id:
        missing = "NEON_PROJECT_ID" if settings.neon_api_key else "NEON_API_KEY"
        raise BranchError(f"Neon branches need both NEON_API_KEY and NEON_PROJECT_ID; {missing} is not set")
    from pydb.branches.local import LocalBranches
    from pydb.local import LocalServer

    return LocalBranches(LocalServer(settings.state))


def create_branch(name: str, parent: str | None = None, *, where: BranchBackend | None = None) -> Branch:
    """Create a branch named name as a copy of parent (default: the app database, or Neon's default)."""
    return (where or backend()).create(name, parent)


def list_branches(*, where: BranchBackend | None = None) -> list[Branch]:
    """Return every branch."""
    return (where or backend()).list()


def branch_url(name: str, *, pooled: bool = False, where: BranchBackend | None = None) -> str:
    """Return the connection URL of a branch."""
    return (where or backend()).url(name, pooled=pooled)


def delete_branch(name: str, *, where: BranchBackend | None = None) -> None:
    """Delete a branch and its data."""
    (where or backend()).delete(name)


def reset_branch(name: str, *, preserve_under: str | None = None, where: BranchBackend | None = None) -> Branch:
    """Recreate a branch from its parent: its changes are discarded, or kept as branch preserve_under."""
    return (where or backend()).reset(name, preserve_under=preserve_under)


def is_default_branch(url_or_branch: str | Branch, *, settings: Settings | None = None) -> bool:
    """Tell whether a URL or branch is a Neon project's default (production) branch."""
    if isinstance(url_or_branch, Branch):
        return url_or_branch.default
    from pydb.urls import host, is_neon_host

    if not is_neon_host(host(url_or_branch)):
        return False
    from pydb.branches.neon import NeonBranches

    settings = settings or load_settings()
    if not settings.neon:
        raise BranchError(
            "cannot tell whether this Neon URL is the project's default branch: "
            "set NEON_API_KEY and NEON_PROJECT_ID"
        )
    return NeonBranches.from_settings(settings).is_default_url(url_or_branch)


def format_size(size: int | None) -> str:
    """Return a size in bytes as text for people, e.g. '2.1 MB' (units of 1024, like pg_size_pretty)."""
    if size is None:
        return "size unknown"
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
