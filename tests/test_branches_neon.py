"""Neon branches against a local HTTP server that replays Neon API v2 answers.

Neon's cloud is not reachable from the machines these tests run on, so the client is tested against
pytest-httpserver answering with bodies shaped like Neon's published API v2 reference (create
branch with `branch`, `endpoints` and `operations`; `GET …/operations/{id}`; `connection_uri`;
`{"code", "message"}` errors; 429 with `Retry-After`). The tests pin the exact requests pydb sends
(method, path, query, JSON body, `Authorization` header) and check that the API key never shows up
in any output: return values, exception messages, CLI stdout and stderr.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from pydb.branches import Branch, backend, is_default_branch
from pydb.branches.neon import NeonBranches
from pydb.config import load_settings
from pydb.errors import BranchError
from tests.helpers import run_pydb

KEY = "napi_placeholder_key_for_tests"
PROJECT = "shiny-wind-028834"
BASE = f"/api/v2/projects/{PROJECT}"
AUTH = {"Authorization": f"Bearer {KEY}"}
PASSWORD = "placeholder-password-for-tests"
HOST = "ep-cool-darkness-a1b2c3d4.us-east-2.aws.neon.tech"
POOLED_HOST = "ep-cool-darkness-a1b2c3d4-pooler.us-east-2.aws.neon.tech"
DIRECT_URI = f"postgresql://neondb_owner:{PASSWORD}@{HOST}/neondb?sslmode=require&channel_binding=require"
POOLED_URI = f"postgresql://neondb_owner:{PASSWORD}@{POOLED_HOST}/neondb?sslmode=require&channel_binding=require"


def _branch(branch_id: str, name: str, parent_id: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": branch_id, "project_id": PROJECT, "name": name, "current_state": "ready",
        "state_changed_at": "2025-05-01T10:00:05Z", "logical_size": 30_785_536, "creation_source": "console",
        "default": False, "protected": False, "cpu_used_sec": 0, "compute_time_seconds": 0,
        "active_time_seconds": 0, "written_data_bytes": 0, "data_transfer_bytes": 0,
        "created_at": "2025-05-01T10:00:00Z", "updated_at": "2025-05-01T10:00:05Z",
    }
    if parent_id:
        body |= {"parent_id": parent_id, "parent_lsn": "0/1E19478", "parent_timestamp": "2025-05-01T10:00:00Z"}
    return body | extra


MAIN = _branch("br-main-123456", "main", default=True, primary=True)
DEV = _branch("br-dev-654321", "dev", "br-main-123456", created_at="2025-05-02T09:00:00Z", logical_size=31_000_000)
BRANCHES = {"branches": [DEV, MAIN], "annotations": {}}


def _operation(op_id: str, action: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": op_id, "project_id": PROJECT, "branch_id": "br-feature-x-777", "action": action, "status": status,
        "failures_count": 0, "created_at": "2025-05-03T08:00:00Z", "updated_at": "2025-05-03T08:00:01Z",
        "total_duration_ms": 0, **extra,
    }


def _created(name: str) -> dict[str, Any]:
    return {
        "branch": _branch("br-feature-x-777", name, "br-main-123456", current_state="init", pending_state="ready",
                          created_at="2025-05-03T08:00:00Z", logical_size=None),
        "endpoints": [{
            "host": HOST, "id": "ep-cool-darkness-a1b2c3d4", "project_id": PROJECT, "branch_id": "br-feature-x-777",
            "autoscaling_limit_min_cu": 0.25, "autoscaling_limit_max_cu": 0.25, "region_id": "aws-us-east-2",
            "type": "read_write", "current_state": "init", "pending_state": "active", "settings": {},
            "pooler_enabled": False, "pooler_mode": "transaction", "disabled": False, "passwordless_access": True,
            "creation_source": "console", "created_at": "2025-05-03T08:00:00Z",
            "updated_at": "2025-05-03T08:00:00Z", "proxy_host": "us-east-2.aws.neon.tech",
            "suspend_timeout_seconds": 0, "provisioner": "k8s-neonvm",
        }],
        "operations": [
            _operation("22acbb37-209b-4b90-a39c-8460090e1329", "create_branch", "running"),
            _operation("055b17e6-ffe3-47ab-b545-cfd7db6fd8b8", "start_compute", "scheduling",
                       endpoint_id="ep-cool-darkness-a1b2c3d4"),
        ],
        "roles": [{"branch_id": "br-feature-x-777", "name": "neondb_owner", "protected": False,
                   "created_at": "2025-05-03T08:00:00Z", "updated_at": "2025-05-03T08:00:00Z"}],
        "databases": [{"id": 1139149, "branch_id": "br-feature-x-777", "name": "neondb", "owner_name": "neondb_owner",
                       "created_at": "2025-05-03T08:00:00Z", "updated_at": "2025-05-03T08:00:00Z"}],
        "connection_uris": [],
    }


@pytest.fixture
def sleeps() -> list[float]:
    """The pauses the client asked for (recorded instead of slept)."""
    return []


@pytest.fixture
def neon(httpserver: HTTPServer, sleeps: list[float]) -> Iterator[NeonBranches]:
    """A Neon backend talking to the local replay server."""
    client = NeonBranches(KEY, PROJECT, api_url=httpserver.url_for("/api/v2"), sleep=sleeps.append)
    yield client
    client.close()


def _sent(httpserver: HTTPServer) -> list[tuple[str, str, str, Any]]:
    """(method, path, query, JSON body) of every request the server received; each one carried the key."""
    sent = []
    for request, _response in httpserver.log:
        assert request.headers.get("Authorization") == f"Bearer {KEY}"
        body = json.loads(request.data) if request.data else None
        sent.append((request.method, request.path, request.query_string.decode(), body))
    return sent


def _assert_no_key(*texts: str) -> None:
    for text in texts:
        assert KEY not in text
        assert "napi_" not in text


def test_create_posts_the_branch_waits_for_its_operations_and_fetches_the_direct_uri(
    httpserver: HTTPServer, neon: NeonBranches, sleeps: list[float],
) -> None:
    op1, op2 = "22acbb37-209b-4b90-a39c-8460090e1329", "055b17e6-ffe3-47ab-b545-cfd7db6fd8b8"
    httpserver.expect_ordered_request(f"{BASE}/branches", "GET", headers=AUTH).respond_with_json(BRANCHES)
    httpserver.expect_ordered_request(f"{BASE}/branches", "POST", headers=AUTH, json={
        "branch": {"name": "feature-x"}, "endpoints": [{"type": "read_write"}],
    }).respond_with_json(_created("feature-x"), status=201)
    httpserver.expect_ordered_request(f"{BASE}/operations/{op1}", "GET").respond_with_json(
        {"operation": _operation(op1, "create_branch", "running")})
    httpserver.expect_ordered_request(f"{BASE}/operations/{op1}", "GET").respond_with_json(
        {"operation": _operation(op1, "create_branch", "finished", total_duration_ms=812)})
    httpserver.expect_ordered_request(f"{BASE}/operations/{op2}", "GET").respond_with_json(
        {"operation": _operation(op2, "start_compute", "finished")})
    httpserver.expect_ordered_request(f"{BASE}/connection_uri", "GET", query_string={
        "branch_id": "br-feature-x-777", "database_name": "neondb", "role_name": "neondb_owner", "pooled": "false",
    }).respond_with_json({"uri": DIRECT_URI})

    created = neon.create("feature-x")

    httpserver.check_assertions()
    assert _sent(httpserver) == [
        ("GET", f"{BASE}/branches", "", None),
        ("POST", f"{BASE}/branches", "", {"branch": {"name": "feature-x"}, "endpoints": [{"type": "read_write"}]}),
        ("GET", f"{BASE}/operations/{op1}", "", None),
        ("GET", f"{BASE}/operations/{op1}", "", None),
        ("GET", f"{BASE}/operations/{op2}", "", None),
        ("GET", f"{BASE}/connection_uri",
         "branch_id=br-feature-x-777&database_name=neondb&role_name=neondb_owner&pooled=false", None),
    ]
    assert sleeps == [0.25]
    assert created == Branch(
        name="feature-x", parent="main", size=None, created_at=created.created_at, url=DIRECT_URI,
        id="br-feature-x-777", default=False,
    )
    assert created.created_at is not None and created.created_at.isoformat() == "2025-05-03T08:00:00+00:00"
    _assert_no_key(repr(created), repr(neon))


def test_create_from_a_named_parent_sends_its_id(httpserver: HTTPServer, neon: NeonBranches) -> None:
    finished = _created("feature-y")
    for operation in finished["operations"]:
        operation["status"] = "finished"
    httpserver.expect_ordered_request(f"{BASE}/branches", "GET").respond_with_json(BRANCHES)
    httpserver.expect_ordered_request(f"{BASE}/branches", "POST", json={
        "branch": {"name": "feature-y", "parent_id": "br-dev-654321"}, "endpoints": [{"type": "read_write"}],
    }).respond_with_json(finished, status=201)
    httpserver.expect_ordered_request(f"{BASE}/connection_uri", "GET").respond_with_json({"uri": DIRECT_URI})

    assert neon.create("feature-y", "dev").url == DIRECT_URI
    httpserver.check_assertions()
    assert [method for method, *_ in _sent(httpserver)] == ["GET", "POST", "GET"]


def test_create_refuses_an_existing_name_and_a_bad_name(httpserver: HTTPServer, neon: NeonBranches) -> None:
    httpserver.expect_request(f"{BASE}/branches", "GET").respond_with_json(BRANCHES)
    with pytest.raises(BranchError, match="Neon branch dev already exists"):
        neon.create("dev")
    with pytest.raises(BranchError, match="invalid branch name"):
        neon.create("x'; drop")
    assert [method for method, *_ in _sent(httpserver)] == ["GET"]


def test_a_failed_operation_is_a_branch_error(httpserver: HTTPServer, neon: NeonBranches) -> None:
    op1 = "22acbb37-209b-4b90-a39c-8460090e1329"
    httpserver.expect_ordered_request(f"{BASE}/branches", "GET").respond_with_json(BRANCHES)
    httpserver.expect_ordered_request(f"{BASE}/branches", "POST").respond_with_json(_created("x"), status=201)
    httpserver.expect_ordered_request(f"{BASE}/operations/{op1}", "GET").respond_with_json(
        {"operation": _operation(op1, "create_branch", "failed", error="compute quota exceeded")})
    with pytest.raises(BranchError, match=f"Neon operation create_branch \\({op1}\\) failed: compute quota exceeded"):
        neon.create("x")


def test_url_direct_and_pooled(httpserver: HTTPServer, neon: NeonBranches) -> None:
    httpserver.expect_request(f"{BASE}/branches", "GET").respond_with_json(BRANCHES)
    httpserver.expect_request(f"{BASE}/connection_uri", "GET", query_string={
        "branch_id": "br-dev-654321", "database_name": "neondb", "role_name": "neondb_owner", "pooled": "true",
    }).respond_with_json({"uri": POOLED_URI})
    httpserver.expect_request(f"{BASE}/connection_uri", "GET", query_string={
        "branch_id": "br-dev-654321", "database_name": "neondb", "role_name": "neondb_owner", "pooled": "false",
    }).respond_with_json({"uri": DIRECT_URI})
    assert neon.url("dev", pooled=True) == POOLED_URI
    assert neon.url("dev") == DIRECT_URI


def test_list_names_parents_sizes_and_the_default_branch(httpserver: HTTPServer, neon: NeonBranches) -> None:
    httpserver.expect_request(f"{BASE}/branches", "GET").respond_with_json(BRANCHES)
    listed = neon.list()
    assert [(b.name, b.parent, b.size, b.default, b.id) for b in listed] == [
        ("main", None, 30_785_536, True, "br-main-123456"),
        ("dev", "main", 31_000_000, False, "br-dev-654321"),
    ]
    assert is_default_branch(listed[0]) and not is_default_branch(listed[1])


def test_delete_finds_the_id_by_name_and_waits(httpserver: HTTPServer, neon: NeonBranches) -> None:
    op = "b2d3a7c1-0a9e-4f6b-8d43-3f5f5e0c1a11"
    httpserver.expect_ordered_request(f"{BASE}/branches", "GET").respond_with_json(BRANCHES)
    httpserver.expect_ordered_request(f"{BASE}/branches/br-dev-654321", "DELETE", headers=AUTH).respond_with_json({
        "branch": DEV, "operations": [_operation(op, "suspend_compute", "running")],
    })
    httpserver.expect_ordered_request(f"{BASE}/operations/{op}", "GET").respond_with_json(
        {"operation": _operation(op, "suspend_compute", "finished")})
    neon.delete("dev")
    httpserver.check_assertions()
    assert [(m, p) for m, p, *_ in _sent(httpserver)] == [
        ("GET", f"{BASE}/branches"), ("DELETE", f"{BASE}/branches/br-dev-654321"), ("GET", f"{BASE}/operations/{op}"),
    ]


def test_delete_refuses_the_default_branch_and_a_missing_one(httpserver: HTTPServer, neon: NeonBranches) -> None:
    httpserver.expect_request(f"{BASE}/branches", "GET").respond_with_json(BRANCHES)
    with pytest.raises(BranchError, match=f"main is the default branch of Neon project {PROJECT}"):
        neon.delete("main")
    with pytest.raises(BranchError, match=f"no Neon branch named ghost in project {PROJECT}"):
        neon.delete("ghost")
    assert {method for method, *_ in _sent(httpserver)} == {"GET"}


def test_reset_restores_the_branch_from_its_parent(httpserver: HTTPServer, neon: NeonBranches) -> None:
    httpserver.expect_ordered_request(f"{BASE}/branches", "GET").respond_with_json(BRANCHES)
    httpserver.expect_ordered_request(
        f"{BASE}/branches/br-dev-654321/restore", "POST", json={"source_branch_id": "br-main-123456"},
    ).respond_with_json({"branch": DEV, "operations": []})
    reset = neon.reset("dev")
    httpserver.check_assertions()
    assert (reset.name, reset.parent) == ("dev", "main")


def test_429_is_retried_after_the_retry_after_delay(
    httpserver: HTTPServer, neon: NeonBranches, sleeps: list[float],
) -> None:
    httpserver.expect_ordered_request(f"{BASE}/branches", "GET").respond_with_json(
        {"code": "", "message": "rate limit exceeded"}, status=429, headers={"Retry-After": "2"})
    httpserver.expect_ordered_request(f"{BASE}/branches", "GET").respond_with_json(
        {"code": "", "message": "internal error"}, status=503)
    httpserver.expect_ordered_request(f"{BASE}/branches", "GET").respond_with_json(BRANCHES)
    assert [b.name for b in neon.list()] == ["main", "dev"]
    assert sleeps == [2.0, 1.0]


def test_retries_are_bounded_and_the_error_carries_neons_message(
    httpserver: HTTPServer, neon: NeonBranches, sleeps: list[float],
) -> None:
    httpserver.expect_request(f"{BASE}/branches", "GET").respond_with_json(
        {"code": "", "message": "service temporarily unavailable"}, status=503)
    with pytest.raises(BranchError) as caught:
        neon.list()
    assert str(caught.value) == (
        f"Neon API GET /projects/{PROJECT}/branches: service temporarily unavailable (HTTP 503)"
    )
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert len(httpserver.log) == 6


def test_401_and_404_name_the_setting_to_check_and_never_the_key(httpserver: HTTPServer, neon: NeonBranches) -> None:
    httpserver.expect_ordered_request(f"{BASE}/branches", "GET").respond_with_json(
        {"code": "", "message": "authentication required"}, status=401)
    httpserver.expect_ordered_request(f"{BASE}/branches", "GET").respond_with_json(
        {"code": "", "message": "project not found"}, status=404)
    with pytest.raises(BranchError) as unauthorized:
        neon.list()
    assert str(unauthorized.value) == (
        f"Neon API GET /projects/{PROJECT}/branches: authentication required (HTTP 401); check NEON_API_KEY"
    )
    with pytest.raises(BranchError) as missing:
        neon.list()
    assert str(missing.value).endswith("project not found (HTTP 404); check NEON_PROJECT_ID")
    _assert_no_key(str(unauthorized.value), repr(unauthorized.value), str(missing.value))


def test_an_unreachable_api_is_a_clear_error(sleeps: list[float]) -> None:
    client = NeonBranches(KEY, PROJECT, api_url="http://127.0.0.1:9/api/v2", sleep=sleeps.append, retries=1)
    with pytest.raises(BranchError, match=r"cannot reach the Neon API at http://127\.0\.0\.1:9/api/v2") as caught:
        client.list()
    _assert_no_key(str(caught.value))
    assert sleeps == [0.5]


def test_is_default_branch_of_a_url(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request(f"{BASE}/endpoints/ep-cool-darkness-a1b2c3d4", "GET", headers=AUTH).respond_with_json(
        {"endpoint": {"id": "ep-cool-darkness-a1b2c3d4", "host": HOST, "branch_id": "br-main-123456",
                      "type": "read_write", "project_id": PROJECT}})
    httpserver.expect_request(f"{BASE}/branches/br-main-123456", "GET").respond_with_json({"branch": MAIN})
    env = {"NEON_API_KEY": KEY, "NEON_PROJECT_ID": PROJECT, "NEON_API_URL": httpserver.url_for("/api/v2")}
    assert is_default_branch(POOLED_URI, settings=load_settings(environ=env)) is True
    assert is_default_branch(DIRECT_URI, settings=load_settings(environ=env)) is True
    assert is_default_branch("postgresql://postgres@127.0.0.1:5432/pydb", settings=load_settings(environ={})) is False
    with pytest.raises(BranchError, match="set NEON_API_KEY and NEON_PROJECT_ID"):
        is_default_branch(DIRECT_URI, settings=load_settings(environ={}))


def test_backend_picks_neon_when_both_variables_are_set(httpserver: HTTPServer) -> None:
    chosen = backend(load_settings(environ={
        "NEON_API_KEY": KEY, "NEON_PROJECT_ID": PROJECT, "NEON_API_URL": httpserver.url_for("/x"),
        "NEON_DATABASE": "app", "NEON_ROLE": "app_owner"}))
    assert isinstance(chosen, NeonBranches)
    assert (chosen.kind, chosen.database_name, chosen.role_name) == ("neon", "app", "app_owner")
    _assert_no_key(repr(chosen))


# -- the CLI, in a new process, against the replay server -----------------------------------------


def _env(httpserver: HTTPServer) -> dict[str, str]:
    return {"NEON_API_KEY": KEY, "NEON_PROJECT_ID": PROJECT, "NEON_API_URL": httpserver.url_for("/api/v2")}


def test_cli_create_list_url_delete(httpserver: HTTPServer) -> None:
    finished = _created("feature-x")
    for operation in finished["operations"]:
        operation["status"] = "finished"
    httpserver.expect_request(f"{BASE}/branches", "GET").respond_with_json(BRANCHES)
    httpserver.expect_request(f"{BASE}/branches", "POST").respond_with_json(finished, status=201)
    httpserver.expect_request(f"{BASE}/connection_uri", "GET", query_string={
        "branch_id": "br-feature-x-777", "database_name": "neondb", "role_name": "neondb_owner", "pooled": "false",
    }).respond_with_json({"uri": DIRECT_URI})
    httpserver.expect_request(f"{BASE}/connection_uri", "GET", query_string={
        "branch_id": "br-dev-654321", "database_name": "neondb", "role_name": "neondb_owner", "pooled": "true",
    }).respond_with_json({"uri": POOLED_URI})
    httpserver.expect_request(f"{BASE}/branches/br-dev-654321", "DELETE").respond_with_json(
        {"branch": DEV, "operations": []})
    env = _env(httpserver)

    created = run_pydb("branch", "create", "feature-x", env=env)
    assert created.returncode == 0, created.stderr
    assert re.fullmatch(
        r"branch feature-x created from main in \d+ ms\n"
        rf"url: postgresql://neondb_owner:\*\*\*@{re.escape(HOST)}/neondb\?sslmode=require&channel_binding=require\n",
        created.stdout,
    ), created.stdout
    assert PASSWORD not in created.stdout

    listed = run_pydb("branch", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1:] == [
        f"main (default)  -       29.4 MB  {_local('2025-05-01T10:00:00+00:00')}",
        f"dev             main    29.6 MB  {_local('2025-05-02T09:00:00+00:00')}",
    ]
    pooled = run_pydb("branch", "url", "dev", "--pooled", env=env)
    assert pooled.stdout == POOLED_URI + "\n"
    deleted = run_pydb("branch", "delete", "dev", "--yes", env=env)
    assert deleted.returncode == 0 and deleted.stdout.startswith("branch dev deleted in ")
    for result in (created, listed, pooled, deleted):
        _assert_no_key(result.stdout, result.stderr)


def _local(iso: str) -> str:
    from datetime import datetime

    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def test_cli_errors_are_one_line_without_the_key(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{BASE}/branches", "GET").respond_with_json(
        {"code": "", "message": "authentication required"}, status=401)
    env = _env(httpserver)
    commands: list[tuple[str, ...]] = [("branch", "list"), ("branch", "create", "x"), ("--debug", "branch", "list")]
    for args in commands:
        result = run_pydb(*args, env=env)
        assert result.returncode == 1
        _assert_no_key(result.stdout, result.stderr)
        if args[0] != "--debug":
            assert result.stderr == (
                f"Error: Neon API GET /projects/{PROJECT}/branches: authentication required (HTTP 401); "
                f"check NEON_API_KEY\n"
            )
