"""A local double of Neon's API v2 for the endpoints pydb uses, backed by the local PostgreSQL server.

Neon's cloud cannot be reached from the machines the tests run on, so pydb's Neon client is tested
against this WSGI app (werkzeug, in a thread of the test process). Every request it receives and
every response it sends is validated against Neon's published OpenAPI spec (tests/neon_spec.py):
an off-spec request gets a 400 answer at once, and any violation fails the test that caused it.

What it does, as Neon documents it:
- A project with a default branch `main`, whose database is the one the double is given.
- A branch is a copy of its parent's database (`CREATE DATABASE … TEMPLATE`, pydb.databases' helper);
  its read-write endpoint has a Neon-shaped host (`ep-….us-east-2.aws.neon.tech`, `-pooler` for the
  pooled one), so pydb's host checks see a Neon URL.
- Operations start `scheduling`; every later request moves each unfinished one a step
  (`scheduling` → `running` → `finished`), so a client that polls sees them run, with no clock.
- A branch with unfinished operations is locked: creating a child, restoring or deleting it answers
  423 Locked. Restoring a branch that has children needs `preserve_under_name`; delete is a soft
  delete (the data is kept, `include_deleted=true` lists it); deleting again answers 204.
- Lists page with `limit`, `cursor` and `pagination.next`.
- Faults a test asks for: any status on a route (423, 429 with Retry-After, 500, 503 …), a timeout
  (the request is carried out but its answer is withheld until the client gives up), an operation
  that ends in `error`, `failed` or `cancelled`, and a cap on the page size.

Where it differs from Neon, because everything runs on one local server:
- URLs reach the local server through `hostaddr=127.0.0.1` (libpq connects to that address and
  keeps the Neon host name), on the server's port (the pooled one on PgBouncer's port, when
  PgBouncer is installed), with `sslmode=disable` (the local server has no TLS) and without
  `channel_binding`; the database name in the URL is the branch's own local database, not `neondb`,
  and the user is the local superuser (trust authentication: the password is not checked).
- Copying a database needs it idle, so the double ends the other sessions on a branch's database
  before copying it (Neon branches without touching the parent's sessions).
- Only restores to the head of a branch are supported (no LSN or timestamp), and only one
  read-write endpoint per branch; other options of the spec answer 400 and fail the test.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from pydb import databases
from pydb.urls import with_database
from tests.neon_spec import SPEC_SERVER, VALIDATED

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment
    from openapi_core import OpenAPI

API_PREFIX = "/api/v2"
DATABASE = "neondb"
ROLE = "neondb_owner"
REGION = "aws-us-east-2"
PROXY_HOST = "us-east-2.aws.neon.tech"
PASSWORD = "placeholder-password-for-tests"
_STEPS = {"scheduling": "running", "cancelling": "cancelled"}
_ENDED = {"finished", "failed", "error", "cancelled", "skipped"}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Sent:
    """One request the double received: method, path under /api/v2, query, JSON body and Authorization."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None
    request_id: str | None = None  # of the error the double answered, if it did


@dataclass
class _Branch:
    id: str
    name: str
    parent_id: str | None
    database: str
    default: bool
    seq: int
    created_at: str
    updated_at: str
    state: str = "ready"
    endpoint_id: str | None = None
    last_reset_at: str | None = None
    deleted_at: str | None = None


@dataclass
class _Endpoint:
    id: str
    branch_id: str
    created_at: str
    updated_at: str


@dataclass
class _Operation:
    id: str
    action: str
    branch_id: str
    endpoint_id: str | None
    created_at: str
    updated_at: str
    status: str = "scheduling"
    ends_in: str = "finished"
    error: str | None = None


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    status: int | None  # None: a timeout
    times: int
    headers: dict[str, str] = field(default_factory=dict)
    message: str = ""


class _Answer(Exception):
    """A response decided while handling a request (an error answer, usually)."""

    def __init__(self, status: int, body: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


class _SpecRequest:
    """A werkzeug request as openapi-core sees it, addressed to the spec's server (console.neon.tech)."""

    def __init__(self, request: Request) -> None:
        from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest

        self._inner = WerkzeugOpenAPIRequest(request)
        self.parameters = self._inner.parameters
        self.path = self._inner.path
        self.method = self._inner.method
        self.body = self._inner.body
        self.content_type = self._inner.content_type

    @property
    def host_url(self) -> str:
        return SPEC_SERVER


class NeonDouble:
    """One Neon project served over HTTP on 127.0.0.1, its branches held by the local server."""

    def __init__(self, root_url: str, spec: OpenAPI, *, pooler_port: int | None = None,
                 api_key: str = "napi_placeholder_key_for_tests") -> None:
        parts = urlsplit(root_url)
        self.server_url = with_database(root_url, "postgres")
        self.user = parts.username or "postgres"
        self.port = parts.port or 5432
        self.pooler_port = pooler_port
        self.spec = spec
        self.api_key = api_key
        self.project_id = f"shiny-wind-{secrets.randbelow(10**6):06d}"
        self.url = ""  # the API's base URL, set by serve()
        self.requests: list[Sent] = []
        self.violations: list[str] = []
        self.page_limit: int | None = None
        self._faults: list[_Fault] = []
        self._endings: list[tuple[str, str, str | None]] = []
        self._lock = threading.RLock()
        self._release = threading.Event()
        self._seq = 0
        self.branches: dict[str, _Branch] = {}
        self.endpoints: dict[str, _Endpoint] = {}
        self.operations: dict[str, _Operation] = {}
        self._made: list[str] = []  # databases the double created, dropped by close()
        made = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        main = self._new_branch("main", None, database=parts.path.lstrip("/"), created_at=made)
        main.default = True
        self._new_endpoint(main)

    # -- what tests use ------------------------------------------------------------------------

    def fail(self, method: str, path: str, status: int, *, times: int = 1, retry_after: str | None = None,
             message: str = "") -> None:
        """Answer the next `times` requests METHOD PATH (a regex under /projects/ID/) with status."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        self._faults.append(_Fault(method, self._route(path), status, times, headers, message))

    def hang(self, method: str, path: str, *, times: int = 1) -> None:
        """Carry out the next `times` requests METHOD PATH but withhold the answer until the client gives up."""
        self._faults.append(_Fault(method, self._route(path), None, times))

    def end_operation(self, action: str, status: str, error: str | None = None) -> None:
        """Make the next operation of this action end in status (error, failed, cancelling …) with error text.

        `cancelling` goes on to `cancelled`; `running` never ends.
        """
        self._endings.append((action, status, error))

    def branch(self, name: str) -> _Branch:
        """Return the live branch of that name."""
        (found,) = [b for b in self.branches.values() if b.name == name and b.deleted_at is None]
        return found

    def database_url(self, name: str) -> str:
        """Return a plain local URL of the database behind branch name (for checks from the test)."""
        return with_database(self.server_url, self.branch(name).database)

    def sent(self, *, method: str | None = None) -> list[tuple[str, str]]:
        """Return (method, path under the project) of the requests received, optionally of one method."""
        prefix = f"/projects/{self.project_id}/"
        return [(s.method, s.path.removeprefix(prefix)) for s in self.requests if method in (None, s.method)]

    def release(self) -> None:
        """Send the answers withheld by hang() (to clients long gone)."""
        self._release.set()

    def close(self) -> None:
        """Release withheld answers and drop every database the double made."""
        self.release()
        for database in self._made:
            _drop_database(self.server_url, database)

    # -- WSGI ----------------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        request = Request(environ)
        response, withhold = self._respond(request)
        if withhold:
            # A timeout as the client sees it: the work is done, the answer never comes in time.
            self._release.wait(timeout=120)
        return response(environ, start_response)

    def _respond(self, request: Request) -> tuple[Response, bool]:
        with self._lock:
            body = request.get_json(silent=True) if request.data else None
            path = request.path.removeprefix(API_PREFIX)
            sent = Sent(request.method, path, dict(request.args), body, request.headers.get("Authorization"))
            self.requests.append(sent)
            withhold = False
            spec_request = _SpecRequest(request)
            problems = [str(e) for e in self.spec.iter_request_errors(spec_request)]
            if problems:
                self.violations.append(f"{request.method} {path}: request off the spec: {'; '.join(problems)}")
                response = self._json(400, self._error_body(f"request off Neon's OpenAPI spec: {problems[0]}"))
            else:
                try:
                    status, payload, headers, withhold = self._handle(request, path, body)
                    response = self._json(status, payload, headers)
                except _Answer as answer:
                    response = self._json(answer.status, answer.body, answer.headers)
            if response.status_code >= 400:
                sent.request_id = json.loads(response.get_data())["request_id"]
            from openapi_core.contrib.werkzeug import WerkzeugOpenAPIResponse

            problems = [str(e) for e in self.spec.iter_response_errors(spec_request,
                                                                        WerkzeugOpenAPIResponse(response))]
            if problems:
                self.violations.append(f"{request.method} {path}: response {response.status_code} off the spec: "
                                       f"{'; '.join(problems)}")
            else:
                VALIDATED.add()
            return response, withhold

    @staticmethod
    def _json(status: int, payload: dict[str, Any] | None, headers: dict[str, str] | None = None) -> Response:
        if payload is None:
            return Response(status=status, headers=headers)
        return Response(json.dumps(payload), status=status, headers=headers, mimetype="application/json")

    @staticmethod
    def _error_body(message: str) -> dict[str, Any]:
        return {"code": "", "message": message, "request_id": str(uuid.uuid4())}

    def _unsupported(self, what: str) -> _Answer:
        self.violations.append(f"the double does not implement {what}")
        return _Answer(400, self._error_body(f"the local Neon double does not implement {what}"))

    # -- routing -------------------------------------------------------------------------------

    def _route(self, path: str) -> re.Pattern[str]:
        return re.compile(rf"/projects/[^/]+/{path}")

    def _handle(
        self, request: Request, path: str, body: Any,
    ) -> tuple[int, dict[str, Any] | None, dict[str, str], bool]:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            raise _Answer(401, self._error_body("authentication required"))
        self._tick()
        match = re.fullmatch(r"/projects/(?P<project>[^/]+)(?P<rest>/.*)", path)
        if match is None:
            raise self._unsupported(f"{request.method} {path}")
        if match["project"] != self.project_id:
            raise _Answer(404, self._error_body("project not found"))
        withhold = False
        for fault in self._faults:
            if fault.times > 0 and fault.method == request.method and fault.path.fullmatch(path):
                fault.times -= 1
                if fault.status is not None:
                    message = fault.message or _REASONS.get(fault.status, "error")
                    raise _Answer(fault.status, self._error_body(message), fault.headers)
                withhold = True
                break
        rest = match["rest"]
        args = request.args
        routes: list[tuple[str, str, Callable[..., tuple[int, dict[str, Any] | None]]]] = [
            ("GET", r"/branches", lambda: self._list(args)),
            ("POST", r"/branches", lambda: self._create(body or {})),
            ("GET", r"/branches/(?P<id>[^/]+)", lambda id: self._get(id)),
            ("DELETE", r"/branches/(?P<id>[^/]+)", lambda id: self._delete(id, args.get("hard_delete") == "true")),
            ("POST", r"/branches/(?P<id>[^/]+)/restore", lambda id: self._restore(id, body or {})),
            ("GET", r"/operations/(?P<id>[^/]+)", lambda id: self._operation(id)),
            ("GET", r"/connection_uri", lambda: self._connection_uri(args)),
            ("GET", r"/endpoints/(?P<id>[^/]+)", lambda id: self._endpoint(id)),
        ]
        for method, pattern, handler in routes:
            found = re.fullmatch(pattern, rest)
            if method == request.method and found:
                status, payload = handler(**found.groupdict())
                return status, payload, {}, withhold
        raise self._unsupported(f"{request.method} {path}")

    # -- state ---------------------------------------------------------------------------------

    def _tick(self) -> None:
        """Move every unfinished operation one step; a branch whose operations all finished is ready."""
        for op in self.operations.values():
            if op.status in _ENDED:
                continue
            op.status = _STEPS.get(op.status, op.ends_in)
            op.updated_at = _now()
            if op.status == "finished":
                branch = self.branches.get(op.branch_id)
                if branch and not self._busy(branch):
                    branch.state = "ready"
                    branch.updated_at = op.updated_at

    def _busy(self, branch: _Branch) -> bool:
        return any(op.branch_id == branch.id and op.status not in _ENDED for op in self.operations.values())

    def _live(self, branch_id: str) -> _Branch:
        branch = self.branches.get(branch_id)
        if branch is None or branch.deleted_at is not None:
            raise _Answer(404, self._error_body(f"branch {branch_id} not found"))
        return branch

    def _lock_check(self, *branches: _Branch) -> None:
        for branch in branches:
            if self._busy(branch):
                raise _Answer(423, self._error_body(
                    f"branch {branch.id} is locked by an operation in progress; try again later"))

    def _new_branch(self, name: str, parent: _Branch | None, *, database: str | None = None,
                    created_at: str | None = None) -> _Branch:
        branch_id = f"br-{secrets.token_hex(3)}-{secrets.token_hex(3)}"
        self._seq += 1
        now = created_at or _now()
        branch = _Branch(branch_id, name, parent.id if parent else None, database or f"neon_{branch_id}",
                         False, self._seq, now, now)
        self.branches[branch_id] = branch
        return branch

    def _new_endpoint(self, branch: _Branch) -> _Endpoint:
        now = _now()
        endpoint = _Endpoint(f"ep-{secrets.token_hex(4)}-{secrets.token_hex(2)}", branch.id, now, now)
        self.endpoints[endpoint.id] = endpoint
        branch.endpoint_id = endpoint.id
        return endpoint

    def _start(self, action: str, branch: _Branch, endpoint_id: str | None = None) -> _Operation:
        now = _now()
        op = _Operation(str(uuid.uuid4()), action, branch.id, endpoint_id, now, now)
        for i, (wanted, status, error) in enumerate(self._endings):
            if wanted == action:
                op.ends_in, op.error = status, error
                del self._endings[i]
                break
        self.operations[op.id] = op
        return op

    def _end_sessions(self, database: str) -> None:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (database,))

    def _copy(self, source: str, target: str) -> None:
        self._end_sessions(source)
        _copy_database(self.server_url, target, source)
        self._made.append(target)

    def _sizes(self) -> dict[str, int]:
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            rows = conn.execute("SELECT datname, pg_database_size(oid) FROM pg_database").fetchall()
        return {str(name): int(size) for name, size in rows}

    # -- JSON of Neon's objects ------------------------------------------------------------------

    def _branch_json(self, branch: _Branch, sizes: dict[str, int] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": branch.id, "project_id": self.project_id, "name": branch.name,
            "current_state": branch.state, "state_changed_at": branch.updated_at, "creation_source": "console",
            "created_at": branch.created_at, "updated_at": branch.updated_at, "default": branch.default,
            "protected": False, "cpu_used_sec": 0, "active_time_seconds": 0, "compute_time_seconds": 0,
            "written_data_bytes": 0, "data_transfer_bytes": 0, "init_source": "parent-data",
        }
        if branch.state != "ready":
            data["pending_state"] = "ready"
        if sizes is not None and branch.database in sizes:
            data["logical_size"] = sizes[branch.database]
        if branch.parent_id:
            data |= {"parent_id": branch.parent_id, "parent_lsn": "0/1E19478", "parent_timestamp": branch.created_at}
        if branch.last_reset_at:
            data["last_reset_at"] = branch.last_reset_at
        if branch.deleted_at:
            until = datetime.strptime(branch.deleted_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC) + timedelta(days=7)
            data["recovery"] = {"deleted_at": branch.deleted_at, "deletion_method": "user",
                                "recoverable_until": until.strftime("%Y-%m-%dT%H:%M:%SZ")}
        return data

    def _endpoint_json(self, endpoint: _Endpoint) -> dict[str, Any]:
        branch = self.branches[endpoint.branch_id]
        return {
            "host": f"{endpoint.id}.{PROXY_HOST}", "id": endpoint.id, "project_id": self.project_id,
            "branch_id": endpoint.branch_id, "region_id": REGION, "autoscaling_limit_min_cu": 0.25,
            "autoscaling_limit_max_cu": 0.25, "type": "read_write",
            "current_state": "active" if branch.state == "ready" else "init", "settings": {},
            "pooler_enabled": False, "pooler_mode": "transaction", "disabled": False, "passwordless_access": True,
            "creation_source": "console", "created_at": endpoint.created_at, "updated_at": endpoint.updated_at,
            "proxy_host": PROXY_HOST, "suspend_timeout_seconds": 0, "provisioner": "k8s-neonvm",
        }

    def _operation_json(self, op: _Operation) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": op.id, "project_id": self.project_id, "branch_id": op.branch_id, "action": op.action,
            "status": op.status, "failures_count": 1 if op.status in ("failed", "error") else 0,
            "created_at": op.created_at, "updated_at": op.updated_at, "total_duration_ms": 0,
        }
        if op.endpoint_id:
            data["endpoint_id"] = op.endpoint_id
        if op.status not in ("scheduling", "running", "finished") and op.error:
            data["error"] = op.error
        return data

    # -- handlers ------------------------------------------------------------------------------

    def _list(self, args: Any) -> tuple[int, dict[str, Any]]:
        include_deleted = args.get("include_deleted") == "true"
        search = args.get("search", "")
        sort_by = args.get("sort_by", "updated_at")
        order = args.get("sort_order", "desc")
        found = [b for b in self.branches.values()
                 if (include_deleted or b.deleted_at is None) and (search in b.name or search in b.id)]
        found.sort(key=lambda b: (getattr(b, sort_by), b.seq), reverse=order == "desc")
        start = int(base64.urlsafe_b64decode(args["cursor"]).decode()) if args.get("cursor") else 0
        size = min(int(args.get("limit", 10_000)), self.page_limit or 10_000)
        page = found[start:start + size]
        pagination: dict[str, Any] = {"sort_by": sort_by, "sort_order": order}
        if start + size < len(found):
            pagination["next"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        sizes = self._sizes()
        return 200, {"branches": [self._branch_json(b, sizes) for b in page], "annotations": {},
                     "pagination": pagination}

    def _get(self, branch_id: str) -> tuple[int, dict[str, Any]]:
        branch = self._live(branch_id)
        return 200, {"branch": self._branch_json(branch, self._sizes()),
                     "annotation": {"object": {"type": "console/branch", "id": branch.id}, "value": {}}}

    def _create(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        wanted = body.get("branch") or {}
        for option in ("parent_lsn", "parent_timestamp", "init_source", "expires_at", "archived", "protected"):
            if option in wanted:
                raise self._unsupported(f"branch.{option} when creating a branch")
        endpoints = body.get("endpoints") or []
        if any(e.get("type") != "read_write" for e in endpoints) or len(endpoints) > 1:
            raise self._unsupported("endpoints other than one read_write endpoint")
        default = next(b for b in self.branches.values() if b.default)
        parent = self._live(wanted["parent_id"]) if wanted.get("parent_id") else default
        name = wanted.get("name")
        if name and any(b.name == name and b.deleted_at is None for b in self.branches.values()):
            raise _Answer(409, self._error_body(f"branch with name {name} already exists"))
        self._lock_check(parent)
        branch = self._new_branch(name or "", parent)
        branch.name = branch.name or branch.id
        self._copy(parent.database, branch.database)
        branch.state = "init"
        operations = [self._start("create_branch", branch)]
        if endpoints:
            endpoint = self._new_endpoint(branch)
            operations.append(self._start("start_compute", branch, endpoint.id))
        now = branch.created_at
        return 201, {
            "branch": self._branch_json(branch),
            "endpoints": [self._endpoint_json(self.endpoints[branch.endpoint_id])] if branch.endpoint_id else [],
            "operations": [self._operation_json(op) for op in operations],
            "roles": [{"branch_id": branch.id, "name": ROLE, "protected": False, "created_at": now,
                       "updated_at": now}],
            "databases": [{"id": self._seq, "branch_id": branch.id, "name": DATABASE, "owner_name": ROLE,
                           "created_at": now, "updated_at": now}],
        }

    def _delete(self, branch_id: str, hard: bool) -> tuple[int, dict[str, Any] | None]:
        branch = self.branches.get(branch_id)
        if branch is None or branch.deleted_at is not None:
            return 204, None
        if branch.default:
            raise _Answer(400, self._error_body("cannot delete the project's default branch"))
        children = [b.name for b in self.branches.values() if b.parent_id == branch.id and b.deleted_at is None]
        if children:
            raise _Answer(400, self._error_body(f"cannot delete a branch that has children: {', '.join(children)}"))
        self._lock_check(branch)
        self._end_sessions(branch.database)
        if hard:
            _drop_database(self.server_url, branch.database)
        operations = []
        if branch.endpoint_id:
            operations.append(self._start("suspend_compute", branch, branch.endpoint_id))
            del self.endpoints[branch.endpoint_id]
            branch.endpoint_id = None
        operations.append(self._start("delete_timeline", branch))
        branch.deleted_at = branch.updated_at = _now()
        return 200, {"branch": self._branch_json(branch),
                     "operations": [self._operation_json(op) for op in operations]}

    def _restore(self, branch_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        branch = self._live(branch_id)
        source = self._live(body["source_branch_id"])
        if "source_lsn" in body or "source_timestamp" in body:
            raise self._unsupported("restoring to an LSN or a timestamp")
        if source.id == branch.id:
            raise _Answer(400, self._error_body(
                "source_lsn or source_timestamp is required when source_branch_id is the branch itself"))
        children = [b for b in self.branches.values() if b.parent_id == branch.id and b.deleted_at is None]
        keep_as = body.get("preserve_under_name")
        if children and not keep_as:
            raise _Answer(400, self._error_body(
                f"branch {branch.id} has children: preserve_under_name is required to restore it"))
        if keep_as and any(b.name == keep_as and b.deleted_at is None for b in self.branches.values()):
            raise _Answer(409, self._error_body(f"branch with name {keep_as} already exists"))
        self._lock_check(branch, source)
        self._end_sessions(branch.database)
        if keep_as:
            kept = self._new_branch(keep_as, None)
            kept.parent_id = branch.parent_id
            with psycopg.connect(self.server_url, autocommit=True) as conn:
                conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                    sql.Identifier(branch.database), sql.Identifier(kept.database)))
            self._made.append(kept.database)
            for child in children:
                child.parent_id = kept.id
        else:
            _drop_database(self.server_url, branch.database)
        self._copy(source.database, branch.database)
        branch.parent_id = source.id
        branch.last_reset_at = branch.updated_at = _now()
        branch.state = "resetting"
        operations = []
        if branch.endpoint_id:
            operations.append(self._start("suspend_compute", branch, branch.endpoint_id))
        operations.append(self._start("create_timeline", branch))
        if branch.endpoint_id:
            operations.append(self._start("start_compute", branch, branch.endpoint_id))
        return 200, {"branch": self._branch_json(branch),
                     "operations": [self._operation_json(op) for op in operations]}

    def _operation(self, op_id: str) -> tuple[int, dict[str, Any]]:
        op = self.operations.get(op_id)
        if op is None:
            raise _Answer(404, self._error_body(f"operation {op_id} not found"))
        return 200, {"operation": self._operation_json(op)}

    def _connection_uri(self, args: Any) -> tuple[int, dict[str, Any]]:
        if args.get("database_name") != DATABASE:
            raise _Answer(404, self._error_body(f"database {args.get('database_name')} not found"))
        if args.get("role_name") != ROLE:
            raise _Answer(404, self._error_body(f"role {args.get('role_name')} not found"))
        if args.get("branch_id"):
            branch = self._live(args["branch_id"])
        else:
            branch = next(b for b in self.branches.values() if b.default)
        endpoint_id = args.get("endpoint_id") or branch.endpoint_id
        if endpoint_id is None or endpoint_id not in self.endpoints:
            raise _Answer(404, self._error_body(f"branch {branch.id} has no read_write endpoint"))
        pooled = args.get("pooled") == "true"
        host = f"{endpoint_id}-pooler.{PROXY_HOST}" if pooled else f"{endpoint_id}.{PROXY_HOST}"
        port = self.pooler_port if pooled and self.pooler_port else self.port
        uri = (f"postgresql://{self.user}:{PASSWORD}@{host}:{port}/{branch.database}"
               f"?sslmode=disable&hostaddr=127.0.0.1")
        return 200, {"uri": uri}

    def _endpoint(self, endpoint_id: str) -> tuple[int, dict[str, Any]]:
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            raise _Answer(404, self._error_body(f"endpoint {endpoint_id} not found"))
        return 200, {"endpoint": self._endpoint_json(endpoint)}


_REASONS = {
    423: "the branch is locked by another operation", 429: "rate limit exceeded",
    500: "internal server error", 503: "service temporarily unavailable",
}


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without a log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@contextlib.contextmanager
def serve(double: NeonDouble) -> Iterator[NeonDouble]:
    """Serve the double on a free port of 127.0.0.1 in a thread; set double.url; stop and clean up after."""
    server = make_server("127.0.0.1", 0, double, threaded=True, request_handler=_QuietHandler)
    # A short poll interval: shutdown() waits for the serving loop to look again.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    double.url = f"http://127.0.0.1:{server.server_port}{API_PREFIX}"
    try:
        yield double
    finally:
        double.release()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        double.close()


def _copy_database(server_url: str, name: str, template: str) -> None:
    with databases.admin_connection(server_url) as conn:
        databases.create_database(conn, name, template=template)


def _drop_database(server_url: str, name: str) -> None:
    with databases.admin_connection(server_url) as conn:
        databases.drop_database(conn, name, force=True, missing_ok=True)
