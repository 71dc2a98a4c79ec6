"""Neon branches through Neon's API v2 (https://console.neon.tech/api/v2, or $NEON_API_URL).

Each request carries `Authorization: Bearer $NEON_API_KEY`; the key is never part of a message.
429 and 5xx answers are retried with exponential backoff (honouring `Retry-After`), a bounded
number of times. Creating, resetting and deleting a branch start operations that are polled until
they finish, within a time limit. Branches are found by name with one list request.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from pydb.branches import Branch, validate_name
from pydb.config import Settings
from pydb.errors import BranchError
from pydb.urls import host, mask_password

__all__ = ["DEFAULT_API_URL", "NeonBranches"]

DEFAULT_API_URL = "https://console.neon.tech/api/v2"
DEFAULT_DATABASE = "neondb"
DEFAULT_ROLE = "neondb_owner"
_DONE = {"finished", "skipped"}
_FAILED = {"failed", "cancelled"}
_MAX_RETRY_AFTER = 60.0

_Objects = list[dict[str, Any]]  # JSON objects of Neon answers


class NeonBranches:
    """Branches of one Neon project."""

    kind = "neon"

    def __init__(
        self,
        api_key: str,
        project_id: str,
        *,
        api_url: str | None = None,
        database_name: str = DEFAULT_DATABASE,
        role_name: str = DEFAULT_ROLE,
        retries: int = 5,
        backoff: float = 0.5,
        poll_interval: float = 0.25,
        operation_timeout: float = 300.0,
        request_timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not api_key or not project_id:
            raise BranchError("Neon branches need NEON_API_KEY and NEON_PROJECT_ID")
        self.project_id = project_id
        self.api_url = (api_url or DEFAULT_API_URL).rstrip("/")
        self.database_name = database_name
        self.role_name = role_name
        self.retries = retries
        self.backoff = backoff
        self.poll_interval = poll_interval
        self.operation_timeout = operation_timeout
        self._sleep = sleep
        self._secret = api_key
        self._client = httpx.Client(
            base_url=self.api_url + "/",
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=request_timeout,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> NeonBranches:
        """Build the backend from the neon_* settings (NEON_API_KEY, NEON_PROJECT_ID, ...)."""
        return cls(
            settings.neon_api_key or "", settings.neon_project_id or "", api_url=settings.neon_api_url,
            database_name=settings.neon_database, role_name=settings.neon_role,
        )

    def __repr__(self) -> str:
        return f"NeonBranches(project_id={self.project_id!r}, api_url={self.api_url!r})"

    def close(self) -> None:
        """Close the HTTP connections."""
        self._client.close()

    # -- public API -------------------------------------------------------------------------

    def create(self, name: str, parent: str | None = None) -> Branch:
        """Create branch name with a read-write compute, from parent (default: the project's default branch)."""
        validate_name(name)
        branches = self._branches()
        if any(b.get("name") == name for b in branches):
            raise BranchError(f"Neon branch {name} already exists in project {self.project_id}")
        body: dict[str, Any] = {"branch": {"name": name}, "endpoints": [{"type": "read_write"}]}
        if parent:
            parent_branch = self._by_name(branches, parent)
            body["branch"]["parent_id"] = parent_branch["id"]
        data = self._request("POST", self._project("branches"), json=body)
        created = data.get("branch")
        if not isinstance(created, dict) or "id" not in created:
            raise BranchError("Neon API: the create-branch answer has no branch")
        self._wait(data.get("operations") or [])
        url = self._connection_uri(str(created["id"]), pooled=False)
        return self._branch(created, branches, url)

    def list(self) -> list[Branch]:
        """Return every branch of the project, oldest first."""
        branches = self._branches()
        found = [self._branch(b, branches) for b in branches]
        return sorted(found, key=lambda b: (b.created_at or datetime.min.replace(tzinfo=UTC), b.name))

    def get(self, name: str) -> Branch:
        """Return the branch name."""
        branches = self._branches()
        return self._branch(self._by_name(branches, name), branches)

    def url(self, name: str, *, pooled: bool = False) -> str:
        """Return the branch's URL: direct (migrations, Atlas, seeds) or pooled (application traffic)."""
        branch = self._by_name(self._branches(), name)
        return self._connection_uri(str(branch["id"]), pooled=pooled)

    def delete(self, name: str) -> None:
        """Delete branch name; the project's default branch is refused."""
        branch = self._by_name(self._branches(), name)
        if _is_default(branch):
            raise BranchError(
                f"{name} is the default branch of Neon project {self.project_id}; pydb does not delete it"
            )
        data = self._request("DELETE", self._project("branches", str(branch["id"])))
        self._wait(data.get("operations") or [])

    def reset(self, name: str) -> Branch:
        """Restore branch name to the current state of its parent."""
        branches = self._branches()
        branch = self._by_name(branches, name)
        parent_id = branch.get("parent_id")
        if not parent_id:
            raise BranchError(f"Neon branch {name} has no parent to reset from")
        data = self._request(
            "POST", self._project("branches", str(branch["id"]), "restore"), json={"source_branch_id": parent_id},
        )
        self._wait(data.get("operations") or [])
        restored = data.get("branch")
        return self._branch(restored if isinstance(restored, dict) else branch, branches)

    def is_default_url(self, url: str) -> bool:
        """Tell whether a Neon URL points at the project's default branch."""
        endpoint_id = host(url).split(".", 1)[0].removesuffix("-pooler")
        endpoint = self._request("GET", self._project("endpoints", endpoint_id)).get("endpoint") or {}
        branch_id = endpoint.get("branch_id")
        if not branch_id:
            raise BranchError(f"Neon API: endpoint {endpoint_id} has no branch")
        branch = self._request("GET", self._project("branches", str(branch_id))).get("branch") or {}
        return _is_default(branch)

    # -- helpers ----------------------------------------------------------------------------

    def _project(self, *parts: str) -> str:
        return "/".join(["projects", quote(self.project_id, safe=""), *(quote(p, safe="") for p in parts)])

    def _branches(self) -> _Objects:
        branches = self._request("GET", self._project("branches")).get("branches")
        if not isinstance(branches, list):
            raise BranchError("Neon API: the list-branches answer has no branches")
        return [b for b in branches if isinstance(b, dict)]

    def _by_name(self, branches: _Objects, name: str) -> dict[str, Any]:
        for branch in branches:
            if branch.get("name") == name or branch.get("id") == name:
                return dict(branch)
        raise BranchError(f"no Neon branch named {name} in project {self.project_id} (see: pydb branch list)")

    def _branch(self, data: dict[str, Any], branches: _Objects, url: str | None = None) -> Branch:
        names = {b.get("id"): b.get("name") for b in branches}
        parent_id = data.get("parent_id")
        parent = names.get(parent_id) or parent_id
        size = data.get("logical_size")
        return Branch(
            name=str(data.get("name")), parent=str(parent) if parent else None,
            size=int(size) if isinstance(size, int | float) else None,
            created_at=_parse_time(data.get("created_at")), url=url, id=str(data.get("id")),
            default=_is_default(data),
        )

    def _connection_uri(self, branch_id: str, *, pooled: bool) -> str:
        params = {
            "branch_id": branch_id, "database_name": self.database_name, "role_name": self.role_name,
            "pooled": "true" if pooled else "false",
        }
        uri = self._request("GET", self._project("connection_uri"), params=params).get("uri")
        if not isinstance(uri, str) or not uri:
            raise BranchError("Neon API: the connection_uri answer has no uri")
        return uri

    def _wait(self, operations: _Objects) -> None:
        deadline = time.monotonic() + self.operation_timeout
        for operation in operations:
            if not isinstance(operation, dict) or operation.get("status") in _DONE:
                continue
            op_id = str(operation["id"])
            interval = self.poll_interval
            while True:
                current = self._request("GET", self._project("operations", op_id)).get("operation") or {}
                status = current.get("status")
                action = current.get("action") or operation.get("action") or "operation"
                if status in _DONE:
                    break
                if status in _FAILED:
                    detail = current.get("error") or "no detail given"
                    raise BranchError(f"Neon operation {action} ({op_id}) {status}: {detail}")
                if time.monotonic() >= deadline:
                    raise BranchError(
                        f"Neon operation {action} ({op_id}) still {status} after {self.operation_timeout:.0f} s"
                    )
                self._sleep(interval)
                interval = min(interval * 2, 5.0)

    def _request(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = self._client.request(method, path, json=json, params=params)
            except httpx.HTTPError as err:
                if last:
                    raise BranchError(self._clean(
                        f"cannot reach the Neon API at {self.api_url} ({type(err).__name__}: {err})"
                    )) from None
                self._sleep(self.backoff * 2**attempt)
                continue
            if (response.status_code == 429 or response.status_code >= 500) and not last:
                self._sleep(_retry_after(response) or self.backoff * 2**attempt)
                continue
            if response.is_error:
                raise self._error(response, method, path)
            if not response.content:
                return {}
            try:
                data = response.json()
            except ValueError as err:
                raise BranchError(f"Neon API {method} /{path}: the answer is not JSON") from err
            return data if isinstance(data, dict) else {}
        raise AssertionError("unreachable")

    def _error(self, response: httpx.Response, method: str, path: str) -> BranchError:
        try:
            body = response.json()
            message = str(body.get("message")) if isinstance(body, dict) and body.get("message") else ""
        except ValueError:
            message = ""
        message = message or response.text.strip()[:200] or response.reason_phrase
        hint = ""
        if response.status_code == 401:
            hint = "; check NEON_API_KEY"
        elif response.status_code == 404 and path.count("/") <= 2:
            hint = "; check NEON_PROJECT_ID"
        return BranchError(self._clean(f"Neon API {method} /{path}: {message} (HTTP {response.status_code}){hint}"))

    def _clean(self, text: str) -> str:
        return mask_password(text.replace(self._secret, "***"))


def _is_default(branch: Mapping[str, Any]) -> bool:
    return bool(branch.get("default") or branch.get("primary"))


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(0.0, min(seconds, _MAX_RETRY_AFTER))
