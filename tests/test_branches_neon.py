"""Neon branches against the local Neon API double (tests/neon_double.py), which follows Neon's OpenAPI spec.

Neon's cloud is not reachable from the machines these tests run on. The double answers the
endpoints pydb uses over a real local PostgreSQL server (a branch is a copy of its parent's
database) and validates every request and response against Neon's published spec. The tests pin
the requests pydb sends (method, path, query, JSON body, `Authorization` header), look at the data
through the URLs the API returns, and check that the API key never shows up in any output: return
values, exception messages, CLI stdout and stderr.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from pydb.branches import Branch, backend, is_default_branch
from pydb.branches.neon import NeonBranches
from pydb.config import load_settings
from pydb.errors import BranchError
from pydb.urls import host, is_neon_host, is_pooled_host, mask_password
from tests.helpers import add_user, emails, run_pydb
from tests.neon_double import PASSWORD, NeonDouble


@pytest.fixture
def sleeps() -> list[float]:
    """The pauses the client asked for (recorded instead of slept)."""
    return []


@pytest.fixture
def neon(neon_api: NeonDouble, sleeps: list[float]) -> Iterator[NeonBranches]:
    """A Neon backend talking to the local Neon API double."""
    client = NeonBranches(neon_api.api_key, neon_api.project_id, api_url=neon_api.url, sleep=sleeps.append)
    yield client
    client.close()


def _assert_no_key(double: NeonDouble, *texts: str) -> None:
    for text in texts:
        assert double.api_key not in text
        assert "napi_" not in text


def test_create_posts_the_branch_waits_for_its_operations_and_fetches_the_direct_uri(
    neon_api: NeonDouble, neon: NeonBranches, sleeps: list[float],
) -> None:
    add_user(neon_api.database_url("main"), "before-branching@example.com")

    created = neon.create("feature-x")

    branch = neon_api.branch("feature-x")
    ops = [op.id for op in neon_api.operations.values() if op.branch_id == branch.id]
    assert [(s.method, s.path.split("/", 3)[-1], s.query, s.body) for s in neon_api.requests] == [
        ("GET", "branches", {"limit": "1000"}, None),
        ("POST", "branches", {}, {"branch": {"name": "feature-x"}, "endpoints": [{"type": "read_write"}]}),
        ("GET", f"operations/{ops[0]}", {}, None),
        ("GET", f"operations/{ops[0]}", {}, None),
        ("GET", f"operations/{ops[1]}", {}, None),
        ("GET", "connection_uri", {"branch_id": branch.id, "database_name": "neondb", "role_name": "neondb_owner",
                                   "pooled": "false"}, None),
    ]
    assert {s.authorization for s in neon_api.requests} == {f"Bearer {neon_api.api_key}"}
    assert sleeps == [0.25]  # the create operation was seen running once, then finished
    assert created == Branch(
        name="feature-x", parent="main", size=None, created_at=created.created_at, url=created.url,
        id=branch.id, default=False,
    )
    assert created.created_at is not None and abs(datetime.now(UTC) - created.created_at) < timedelta(minutes=5)
    assert created.url is not None and is_neon_host(host(created.url)) and not is_pooled_host(host(created.url))
    assert emails(created.url) == ["before-branching@example.com"]
    _assert_no_key(neon_api, repr(created), repr(neon))


def test_create_from_a_named_parent_sends_its_id(neon_api: NeonDouble, neon: NeonBranches) -> None:
    neon.create("dev")
    dev = neon_api.branch("dev")
    add_user(neon_api.database_url("dev"), "dev-only@example.com")
    sent_before = len(neon_api.requests)

    child = neon.create("feature-y", "dev")

    posts = [s for s in neon_api.requests[sent_before:] if s.method == "POST"]
    assert [p.body for p in posts] == [
        {"branch": {"name": "feature-y", "parent_id": dev.id}, "endpoints": [{"type": "read_write"}]},
    ]
    assert child.parent == "dev"
    assert child.url is not None and emails(child.url) == ["dev-only@example.com"]
    assert emails(neon_api.database_url("main")) == []


def test_create_refuses_an_existing_name_and_a_bad_name(neon_api: NeonDouble, neon: NeonBranches) -> None:
    with pytest.raises(BranchError, match="Neon branch main already exists"):
        neon.create("main")
    with pytest.raises(BranchError, match="invalid branch name"):
        neon.create("x'; drop")
    assert neon_api.sent() == [("GET", "branches")]


def test_a_failed_operation_is_a_branch_error(neon_api: NeonDouble, neon: NeonBranches) -> None:
    neon_api.end_operation("create_branch", "failed", "compute quota exceeded")
    with pytest.raises(BranchError, match=r"Neon operation create_branch \([0-9a-f-]{36}\) failed: "
                                          r"compute quota exceeded"):
        neon.create("x")


def test_url_direct_and_pooled_reach_the_same_branch(neon_api: NeonDouble, neon: NeonBranches) -> None:
    neon.create("dev")
    add_user(neon_api.database_url("dev"), "dev@example.com")
    direct, pooled = neon.url("dev"), neon.url("dev", pooled=True)
    assert is_neon_host(host(direct)) and not is_pooled_host(host(direct))
    assert is_neon_host(host(pooled)) and is_pooled_host(host(pooled))
    assert host(pooled).replace("-pooler.", ".") == host(direct)
    assert emails(direct) == emails(pooled) == ["dev@example.com"]
    asked = [s.query["pooled"] for s in neon_api.requests if s.path.endswith("/connection_uri")]
    assert asked[-2:] == ["false", "true"]


def test_list_names_parents_sizes_and_the_default_branch(neon_api: NeonDouble, neon: NeonBranches) -> None:
    neon.create("dev")
    listed = neon.list()
    assert [(b.name, b.parent, b.default, b.id) for b in listed] == [
        ("main", None, True, neon_api.branch("main").id),
        ("dev", "main", False, neon_api.branch("dev").id),
    ]
    assert all(b.size is not None and b.size > 1_000_000 for b in listed)  # a real database's size
    assert is_default_branch(listed[0]) and not is_default_branch(listed[1])


def test_delete_finds_the_id_by_name_and_waits(neon_api: NeonDouble, neon: NeonBranches) -> None:
    neon.create("dev")
    dev = neon_api.branch("dev")
    sent_before = len(neon_api.requests)
    neon.delete("dev")
    suspend, drop = [op for op in neon_api.operations.values()
                     if op.branch_id == dev.id and op.action in ("suspend_compute", "delete_timeline")]
    assert neon_api.sent()[sent_before:] == [
        ("GET", "branches"), ("DELETE", f"branches/{dev.id}"),
        ("GET", f"operations/{suspend.id}"), ("GET", f"operations/{suspend.id}"), ("GET", f"operations/{drop.id}"),
    ]
    deleted = [suspend, drop]
    assert all(op.status == "finished" for op in deleted)
    assert [b.name for b in neon.list()] == ["main"]


def test_delete_refuses_the_default_branch_and_a_missing_one(neon_api: NeonDouble, neon: NeonBranches) -> None:
    with pytest.raises(BranchError, match=f"main is the default branch of Neon project {neon_api.project_id}"):
        neon.delete("main")
    with pytest.raises(BranchError, match=f"no Neon branch named ghost in project {neon_api.project_id}"):
        neon.delete("ghost")
    assert {method for method, _ in neon_api.sent()} == {"GET"}


def test_reset_restores_the_branch_from_its_parent(neon_api: NeonDouble, neon: NeonBranches) -> None:
    neon.create("dev")
    add_user(neon_api.database_url("dev"), "made-on-dev@example.com")
    add_user(neon_api.database_url("main"), "made-on-main@example.com")
    main = neon_api.branch("main")
    sent_before = len(neon_api.requests)

    reset = neon.reset("dev")

    posts = [s for s in neon_api.requests[sent_before:] if s.method == "POST"]
    assert [(p.path.rsplit("/", 1)[-1], p.body) for p in posts] == [("restore", {"source_branch_id": main.id})]
    assert (reset.name, reset.parent) == ("dev", "main")
    assert emails(neon.url("dev")) == ["made-on-main@example.com"]


def test_429_is_retried_after_the_retry_after_delay(
    neon_api: NeonDouble, neon: NeonBranches, sleeps: list[float],
) -> None:
    neon_api.fail("GET", "branches", 429, retry_after="2")
    neon_api.fail("GET", "branches", 503)
    assert [b.name for b in neon.list()] == ["main"]
    assert sleeps == [2.0, 1.0]
    assert neon_api.sent() == [("GET", "branches")] * 3


def test_retries_are_bounded_and_the_error_carries_neons_message(
    neon_api: NeonDouble, neon: NeonBranches, sleeps: list[float],
) -> None:
    neon_api.fail("GET", "branches", 503, times=100, message="service temporarily unavailable")
    with pytest.raises(BranchError) as caught:
        neon.list()
    assert str(caught.value) == (
        f"Neon API GET /projects/{neon_api.project_id}/branches: service temporarily unavailable "
        f"(HTTP 503, request id {neon_api.requests[-1].request_id})"
    )
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert len(neon_api.requests) == 6


def test_401_and_404_name_the_setting_to_check_and_never_the_key(neon_api: NeonDouble, sleeps: list[float]) -> None:
    wrong_key = NeonBranches("napi_wrong_placeholder", neon_api.project_id, api_url=neon_api.url, sleep=sleeps.append)
    wrong_project = NeonBranches(neon_api.api_key, "no-such-project", api_url=neon_api.url, sleep=sleeps.append)
    with pytest.raises(BranchError) as unauthorized:
        wrong_key.list()
    assert str(unauthorized.value) == (
        f"Neon API GET /projects/{neon_api.project_id}/branches: authentication required "
        f"(HTTP 401, request id {neon_api.requests[-1].request_id}); check NEON_API_KEY"
    )
    with pytest.raises(BranchError) as missing:
        wrong_project.list()
    assert str(missing.value).endswith(
        f"project not found (HTTP 404, request id {neon_api.requests[-1].request_id}); check NEON_PROJECT_ID")
    _assert_no_key(neon_api, str(unauthorized.value), repr(unauthorized.value), str(missing.value))
    assert "napi_wrong_placeholder" not in str(unauthorized.value)
    assert sleeps == []


def test_an_unreachable_api_is_a_clear_error(sleeps: list[float]) -> None:
    client = NeonBranches("napi_placeholder_key", "shiny-wind-028834", api_url="http://127.0.0.1:9/api/v2",
                          sleep=sleeps.append, retries=1)
    with pytest.raises(BranchError, match=r"cannot reach the Neon API at http://127\.0\.0\.1:9/api/v2") as caught:
        client.list()
    assert "napi_" not in str(caught.value)
    assert sleeps == [0.5]


def test_is_default_branch_of_a_url(neon_api: NeonDouble, neon: NeonBranches, neon_env: dict[str, str]) -> None:
    neon.create("dev")
    main_direct, main_pooled = neon.url("main"), neon.url("main", pooled=True)
    assert is_default_branch(main_pooled, settings=load_settings(environ=neon_env)) is True
    assert is_default_branch(main_direct, settings=load_settings(environ=neon_env)) is True
    assert is_default_branch(neon.url("dev"), settings=load_settings(environ=neon_env)) is False
    assert is_default_branch("postgresql://postgres@127.0.0.1:5432/pydb", settings=load_settings(environ={})) is False
    with pytest.raises(BranchError, match="set NEON_API_KEY and NEON_PROJECT_ID"):
        is_default_branch(main_direct, settings=load_settings(environ={}))
    endpoint = host(main_direct).split(".")[0]
    assert ("GET", f"endpoints/{endpoint}") in neon_api.sent()


def test_backend_picks_neon_when_both_variables_are_set() -> None:
    key = "napi_placeholder_key_for_tests"
    chosen = backend(load_settings(environ={
        "NEON_API_KEY": key, "NEON_PROJECT_ID": "shiny-wind-028834", "NEON_API_URL": "http://127.0.0.1:9/api/v2",
        "NEON_DATABASE": "app", "NEON_ROLE": "app_owner"}))
    assert isinstance(chosen, NeonBranches)
    assert (chosen.kind, chosen.database_name, chosen.role_name) == ("neon", "app", "app_owner")
    assert key not in repr(chosen)


# -- the CLI, in a new process, against the double ------------------------------------------------


def _local(when: datetime | None) -> str:
    assert when is not None
    return when.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def test_cli_create_list_url_delete(neon_api: NeonDouble, neon: NeonBranches, neon_env: dict[str, str]) -> None:
    created = run_pydb("branch", "create", "feature-x", env=neon_env)
    assert created.returncode == 0, created.stderr
    feature = neon.get("feature-x")
    direct = neon.url("feature-x")
    assert re.fullmatch(r"branch feature-x created from main in \d+ ms\nurl: (?P<url>\S+)\n", created.stdout), \
        created.stdout
    assert created.stdout.endswith(f"url: {mask_password(direct)}\n")
    assert PASSWORD not in created.stdout and ":***@ep-" in created.stdout

    listed = run_pydb("branch", "list", env=neon_env)
    assert listed.returncode == 0, listed.stderr
    main = neon.get("main")
    size = r"\d+\.\d MB"
    assert [re.sub(size, "SIZE", line) for line in listed.stdout.splitlines()] == [
        "NAME            PARENT  SIZE    CREATED",
        f"main (default)  -       SIZE  {_local(main.created_at)}",
        f"feature-x       main    SIZE  {_local(feature.created_at)}",
    ]
    pooled = run_pydb("branch", "url", "feature-x", "--pooled", env=neon_env)
    assert pooled.stdout == neon.url("feature-x", pooled=True) + "\n"
    deleted = run_pydb("branch", "delete", "feature-x", "--yes", env=neon_env)
    assert deleted.returncode == 0 and deleted.stdout.startswith("branch feature-x deleted in ")
    assert [b.name for b in neon.list()] == ["main"]
    for result in (created, listed, pooled, deleted):
        _assert_no_key(neon_api, result.stdout, result.stderr)


def test_cli_errors_are_one_line_without_the_key(neon_api: NeonDouble, neon_env: dict[str, str]) -> None:
    env = neon_env | {"NEON_API_KEY": "napi_wrong_placeholder"}
    commands: list[tuple[str, ...]] = [("branch", "list"), ("branch", "create", "x"), ("--debug", "branch", "list")]
    for args in commands:
        result = run_pydb(*args, env=env)
        assert result.returncode == 1
        _assert_no_key(neon_api, result.stdout, result.stderr)
        assert "napi_wrong_placeholder" not in result.stdout + result.stderr
        if args[0] != "--debug":
            assert result.stderr == (
                f"Error: Neon API GET /projects/{neon_api.project_id}/branches: authentication required "
                f"(HTTP 401, request id {neon_api.requests[-1].request_id}); check NEON_API_KEY\n"
            )
