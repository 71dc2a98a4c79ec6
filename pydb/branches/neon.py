"""Neon branches through Neon's API v2 (https://console.neon.tech/api/v2, or $NEON_API_URL).

Each request carries `Authorization: Bearer $NEON_API_KEY`; the key is never part of a message.
Retries follow what Neon's OpenAPI spec says is safe (its GeneralError response): a GET is sent
again after a network error, a timeout, 429 or a 5xx answer; any call is sent again after 423
Locked or 503, and after 429 when Neon says when (`Retry-After`). Creating, resetting and deleting
a branch are not safe to send twice: when one gets no answer, pydb looks the branch up and sends it
again only if it did not happen; a 500 is reported at once. Every retry is bounded (`retries`),
and so is every wait for an operation (`operation_timeout`, counted in the pauses asked for, so it
holds with an injected sleep too); an operation that ends failed, in error or cancelled stops the
wait at once with Neon's error text. Lists follow Neon's cursor pagination (`limit`, `cursor`,
`pagination.next`). Errors keep Neon's request_id (NeonAPIError.request_id, and in the message).

Neon's cloud cannot be reached from pydb's development machines: this client is tested against a
local double of the API that validates every request and response against Neon's OpenAPI spec
(tests/neon_double.py).
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from pydb.branches import Branch, validate_name
from pydb.config import Settings
from pydb.errors import BranchError, NeonAPIError
from pydb.retry import Backoff
from pydb.urls import host, mask_password

__all__ = ["DEFAULT_API_URL", "NeonBranches"]

DEFAULT_API_URL = "https://console.neon.tech/api/v2"
DEFAULT_DATABASE = "neondb"
DEFAULT_ROLE = "neondb_owner"
_DONE = {"finished", "skipped"}
_FAILED = {"failed", "error", "cancelling", "cancelled"}
_ALWAYS_SAFE = {423, 503}  # the spec: a request answered so may be sent again, whatever its method
_MAX_RETRY_AFTER = 60.0
_PAGE_SIZE = 1000
_MAX_PAGES = 1000
_MAYBE_DONE = "it may have been carried out: check with pydb branch list"

_Objects = list[dict[str, Any]]  # JSON objects of Neon answers
_T = TypeVar("_T")


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
        data = self._request("POST", self._project("branches"), json=body, recover=lambda: self._created(name))
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
        """Delete branch name (Neon keeps it recoverable for a while); the project's default branch is refused."""
        branch = self._by_name(self._branches(), name)
        if _is_default(branch):
            raise BranchError(
                f"{name} is the default branch of Neon project {self.project_id}; pydb does not delete it"
            )
        branch_id = str(branch["id"])
        data = self._request("DELETE", self._project("branches", branch_id), recover=lambda: self._deleted(branch_id))
        self._wait(data.get("operations") or [])

    def reset(self, name: str, *, preserve_under: str | None = None) -> Branch:
        """Restore branch name to the current state of its parent, keeping its old state as preserve_under if given.

        Neon needs preserve_under when the branch has children: they move to that new branch.
        """
        branches = self._branches()
        branch = self._by_name(branches, name)
        branch_id, parent_id = str(branch["id"]), branch.get("parent_id")
        if not parent_id:
            raise BranchError(f"Neon branch {name} has no parent to reset from")
        body: dict[str, Any] = {"source_branch_id": parent_id}
        children = sorted(str(b.get("name")) for b in branches if b.get("parent_id") == branch_id)
        if children and not preserve_under:
            raise BranchError(
                f"Neon branch {name} has child branches ({', '.join(children)}): resetting it keeps its current "
                f"state, and moves its children, to a new branch; name that branch with --preserve-under NAME"
            )
        if preserve_under:
            validate_name(preserve_under)
            if any(b.get("name") == preserve_under for b in branches):
                raise BranchError(f"Neon branch {preserve_under} already exists in project {self.project_id}")
            body["preserve_under_name"] = preserve_under
        before = branch.get("last_reset_at")
        data = self._request(
            "POST", self._project("branches", branch_id, "restore"), json=body,
            recover=lambda: self._restored(branch_id, before, preserve_under),
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

    # -- after a create, reset or delete that got no answer: did it happen? ---------------------

    def _created(self, name: str) -> dict[str, Any] | None:
        found = next((b for b in self._branches() if b.get("name") == name), None)
        if found is None:
            return None
        return {"branch": self._ready(str(found["id"])), "operations": []}

    def _deleted(self, branch_id: str) -> dict[str, Any] | None:
        return {} if self._branch_by_id(branch_id) is None else None

    def _restored(self, branch_id: str, before: Any, preserve_under: str | None) -> dict[str, Any] | None:
        if preserve_under:
            happened = any(b.get("name") == preserve_under for b in self._branches())
        else:
            current = self._branch_by_id(branch_id) or {}
            happened = current.get("last_reset_at") not in (None, before)
        return {"branch": self._ready(branch_id), "operations": []} if happened else None

    def _branch_by_id(self, branch_id: str) -> dict[str, Any] | None:
        try:
            branch = self._request("GET", self._project("branches", branch_id)).get("branch")
        except NeonAPIError as err:
            if err.status == 404:
                return None
            raise
        return branch if isinstance(branch, dict) else None

    def _ready(self, branch_id: str) -> dict[str, Any]:
        """Wait until the branch's operations are over (current_state ready) and return it."""
        state = "unknown"

        def check() -> dict[str, Any] | None:
            nonlocal state
            branch = self._branch_by_id(branch_id)
            if branch is None:
                raise BranchError(f"Neon branch {branch_id} disappeared while pydb waited for it")
            state = str(branch.get("current_state"))
            return branch if state == "ready" else None

        return self._poll(lambda: f"Neon branch {branch_id} still {state}", check)

    # -- helpers ----------------------------------------------------------------------------

    def _project(self, *parts: str) -> str:
        return "/".join(["projects", quote(self.project_id, safe=""), *(quote(p, safe="") for p in parts)])

    def _branches(self) -> _Objects:
        """Every branch of the project, page after page."""
        found: dict[str, dict[str, Any]] = {}
        params = {"limit": str(_PAGE_SIZE)}
        for _ in range(_MAX_PAGES):
            data = self._request("GET", self._project("branches"), params=params)
            page = data.get("branches")
            if not isinstance(page, list):
                raise BranchError("Neon API: the list-branches answer has no branches")
            for branch in page:
                if isinstance(branch, dict):
                    found.setdefault(str(branch.get("id")), branch)
            pagination = data.get("pagination")
            cursor = pagination.get("next") if isinstance(pagination, dict) else None
            if not cursor or not page or cursor == params.get("cursor"):
                return list(found.values())
            params = {"limit": str(_PAGE_SIZE), "cursor": str(cursor)}
        raise BranchError(f"Neon API: the list of branches did not end after {_MAX_PAGES} pages")

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
        """Wait for each operation to finish; one that fails, errs or is cancelled is an error at once."""
        for operation in operations:
            if isinstance(operation, dict) and operation.get("status") not in _DONE:
                self._wait_one(str(operation["id"]), str(operation.get("action") or "operation"))

    def _wait_one(self, op_id: str, action: str) -> None:
        status = "unknown"

        def check() -> bool | None:
            nonlocal status
            current = self._request("GET", self._project("operations", op_id)).get("operation") or {}
            status = str(current.get("status"))
            if status in _FAILED:
                detail = current.get("error") or "no detail given"
                raise BranchError(self._clean(f"Neon operation {action} ({op_id}) {status}: {detail}"))
            return True if status in _DONE else None

        self._poll(lambda: f"Neon operation {action} ({op_id}) still {status}", check)

    def _poll(self, describe: Callable[[], str], check: Callable[[], _T | None]) -> _T:
        """Call check until it returns something, pausing longer each time, for at most operation_timeout."""
        backoff = Backoff(self.poll_interval, cap=5.0, budget=self.operation_timeout, clamp=True, sleep=self._sleep)
        while True:
            found = check()
            if found is not None:
                return found
            pause = backoff.next_pause()
            if pause is None:
                raise BranchError(f"{describe()} after {self.operation_timeout:.0f} s")
            backoff.wait(pause)

    def _request(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, str] | None = None,
        recover: Callable[[], dict[str, Any] | None] | None = None,
    ) -> dict[str, Any]:
        """Send one call, again only where Neon's spec says it is safe; recover looks up a write left unanswered."""
        backoff = Backoff(self.backoff, tries=self.retries, sleep=self._sleep)
        while True:
            last = backoff.next_pause() is None
            try:
                response = self._client.request(method, path, json=json, params=params)
            except httpx.RequestError as err:
                reason = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
                if method != "GET":
                    # The call may have been carried out and only its answer lost: look before sending again.
                    found = recover() if recover is not None else None
                    if found is not None:
                        return found
                    if last or recover is None:
                        raise NeonAPIError(self._clean(
                            f"no answer from the Neon API to {method} /{path} ({reason}); {_MAYBE_DONE}"
                        )) from None
                elif last:
                    raise NeonAPIError(self._clean(
                        f"cannot reach the Neon API at {self.api_url} ({reason})"
                    )) from None
                backoff.wait(backoff.next_pause() or 0.0)
                continue
            delay = self._retry_delay(method, response, backoff)
            if delay is not None and not last:
                backoff.wait(delay)
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

    def _retry_delay(self, method: str, response: httpx.Response, backoff: Backoff) -> float | None:
        """The pause before sending the call again, or None when that is not safe (or not useful)."""
        status = response.status_code
        asked = _retry_after(response)
        safe = status in _ALWAYS_SAFE or (status >= 500 and method == "GET") or (
            status == 429 and (asked is not None or method == "GET"))
        return backoff.next_pause(asked) if safe else None

    def _error(self, response: httpx.Response, method: str, path: str) -> NeonAPIError:
        message, request_id = "", None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            message = str(body.get("message") or "")
            request_id = str(body["request_id"]) if body.get("request_id") else None
        message = message or response.text.strip()[:200] or response.reason_phrase
        status = response.status_code
        hint = ""
        if status == 401:
            hint = "; check NEON_API_KEY"
        elif status == 404 and path.count("/") <= 2:
            hint = "; check NEON_PROJECT_ID"
        elif method != "GET" and status >= 500 and status not in _ALWAYS_SAFE:
            hint = f"; {_MAYBE_DONE}"
        ids = f", request id {request_id}" if request_id else ""
        text = f"Neon API {method} /{path}: {message} (HTTP {status}{ids}){hint}"
        return NeonAPIError(self._clean(text), status=status, request_id=request_id)

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
