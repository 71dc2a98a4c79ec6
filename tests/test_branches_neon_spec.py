"""pydb's Neon client where Neon's OpenAPI spec asks for more than the happy path, against the local Neon double.

Each test here stands for a point where the client once differed from the spec (API v2, as shipped
in @neondatabase/api-client): restoring a branch that has children, operations that end in
`error` or `cancelling`, which calls may be retried (GET, 423, 503, 429 with Retry-After) and what
to do instead after a timeout, cursor pagination, and Neon's request_id in errors. Faults are
injected in the double (tests/neon_double.py); every request and response is checked against the
spec; pauses are recorded, never slept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pydb.branches.neon import NeonBranches
from pydb.errors import BranchError
from tests.helpers import add_user, emails
from tests.neon_double import NeonDouble

Client = Callable[..., NeonBranches]


@pytest.fixture
def sleeps() -> list[float]:
    """The pauses the client asked for (recorded instead of slept)."""
    return []


@pytest.fixture
def client(neon_api: NeonDouble, sleeps: list[float]) -> Iterator[Client]:
    """Make Neon clients talking to the double (options as NeonBranches takes them); closed afterwards."""
    made: list[NeonBranches] = []

    def make(**options: Any) -> NeonBranches:
        made.append(NeonBranches(neon_api.api_key, neon_api.project_id, api_url=neon_api.url, sleep=sleeps.append,
                                 **options))
        return made[-1]

    yield make
    for each in made:
        each.close()


def _posts(double: NeonDouble, path_end: str = "") -> list[object]:
    return [s.body for s in double.requests if s.method == "POST" and s.path.endswith(path_end)]


# -- reset: preserve_under_name when the branch has children ---------------------------------------


@pytest.fixture
def with_child(client: Client) -> NeonBranches:
    """A client, after it made branch dev and dev-child, a branch of dev."""
    neon = client()
    neon.create("dev")
    neon.create("dev-child", "dev")
    return neon


def test_reset_of_a_branch_with_children_keeps_its_old_state_under_the_name_given(
    neon_api: NeonDouble, with_child: NeonBranches,
) -> None:
    neon = with_child
    add_user(neon_api.database_url("dev"), "made-on-dev@example.com")

    reset = neon.reset("dev", preserve_under="dev-before-reset")

    assert _posts(neon_api, "/restore") == [
        {"source_branch_id": neon_api.branch("main").id, "preserve_under_name": "dev-before-reset"},
    ]
    assert (reset.name, reset.parent) == ("dev", "main")
    assert emails(neon.url("dev")) == []
    assert emails(neon_api.database_url("dev-before-reset")) == ["made-on-dev@example.com"]
    parents = {b.name: b.parent for b in neon.list()}
    assert parents == {"main": None, "dev": "main", "dev-before-reset": "main", "dev-child": "dev-before-reset"}


def test_reset_of_a_branch_with_children_needs_a_name_for_its_old_state(
    neon_api: NeonDouble, with_child: NeonBranches,
) -> None:
    with pytest.raises(BranchError) as caught:
        with_child.reset("dev")
    assert str(caught.value) == (
        "Neon branch dev has child branches (dev-child): resetting it keeps its current state, and moves its "
        "children, to a new branch; name that branch with --preserve-under NAME"
    )
    assert _posts(neon_api, "/restore") == []  # refused before anything changed


# -- operations: error and cancelling end the wait at once; the wait is bounded -----------------------


@pytest.mark.parametrize("status", ["error", "cancelling"])
def test_an_operation_that_ends_badly_fails_at_once_with_its_text(
    neon_api: NeonDouble, client: Client, sleeps: list[float], status: str,
) -> None:
    neon_api.end_operation("create_branch", status, "timeline creation failed on the pageserver")
    with pytest.raises(BranchError) as caught:
        client(operation_timeout=5.0).create("x")
    assert re.fullmatch(rf"Neon operation create_branch \([0-9a-f-]{{36}}\) {status}: "
                        r"timeline creation failed on the pageserver", str(caught.value)), str(caught.value)
    assert sleeps == [0.25]  # seen running once, then the bad status: no more polling


def test_the_wait_for_an_operation_is_bounded_even_without_a_clock(
    neon_api: NeonDouble, client: Client, sleeps: list[float],
) -> None:
    neon_api.end_operation("create_branch", "running")  # never finishes
    neon = client(operation_timeout=10.0)
    with pytest.raises(BranchError, match=r"Neon operation create_branch \(.*\) still running after 10 s"):
        neon.create("x")
    assert sum(sleeps) <= 10.0
    assert len([s for s in neon_api.requests if "/operations/" in s.path]) <= 10


# -- retries: only where the spec says a retry is safe ----------------------------------------------


@pytest.mark.parametrize("status", [500, 502])
def test_a_create_answered_with_a_server_error_is_not_sent_again(
    neon_api: NeonDouble, client: Client, sleeps: list[float], status: int,
) -> None:
    neon_api.fail("POST", "branches", status)
    with pytest.raises(BranchError) as caught:
        client().create("x")
    assert f"(HTTP {status}, request id {neon_api.requests[-1].request_id})" in str(caught.value)
    assert "it may have been carried out" in str(caught.value)
    # One POST: the create was not sent again (a GET may be, after a hiccup of the local HTTP server).
    assert len(_posts(neon_api)) == 1


def test_a_create_answered_429_without_retry_after_is_not_sent_again(
    neon_api: NeonDouble, client: Client, sleeps: list[float],
) -> None:
    neon_api.fail("POST", "branches", 429)
    with pytest.raises(BranchError, match=r"rate limit exceeded \(HTTP 429"):
        client().create("x")
    assert len(_posts(neon_api)) == 1  # not sent again


@pytest.mark.parametrize(("status", "retry_after", "pause"), [(423, None, 0.5), (503, None, 0.5), (429, "3", 3.0)])
def test_a_create_is_retried_when_the_spec_says_it_is_safe(
    neon_api: NeonDouble, client: Client, sleeps: list[float], status: int, retry_after: str | None, pause: float,
) -> None:
    neon_api.fail("POST", "branches", status, retry_after=retry_after)
    created = client().create("x")
    assert created.url is not None
    assert len(_posts(neon_api)) == 2
    assert sleeps[0] == pause


@pytest.mark.parametrize("call", ["delete", "reset"])
def test_423_locked_is_retried_for_delete_and_reset(
    neon_api: NeonDouble, client: Client, sleeps: list[float], call: str,
) -> None:
    neon = client()
    neon.create("dev")
    sleeps.clear()
    method, path = ("DELETE", "branches/[^/]+") if call == "delete" else ("POST", "branches/[^/]+/restore")
    neon_api.fail(method, path, 423, times=2)
    if call == "delete":
        neon.delete("dev")
        assert [b.name for b in neon.list()] == ["main"]
    else:
        neon.reset("dev")
    assert sleeps[:2] == [0.5, 1.0]
    tried = [s for s in neon_api.requests if s.method == method and (call == "delete" or s.path.endswith("/restore"))]
    assert len(tried) == 3


def test_a_create_that_timed_out_is_looked_up_instead_of_sent_twice(
    neon_api: NeonDouble, client: Client,
) -> None:
    neon_api.hang("POST", "branches")
    created = client(request_timeout=2.0).create("x")
    assert len(_posts(neon_api)) == 1
    assert [b.name for b in client().list()] == ["main", "x"]
    assert created.url is not None and emails(created.url) == []
    assert neon_api.branch("x").state == "ready"


def test_a_delete_that_timed_out_is_looked_up_instead_of_sent_twice(neon_api: NeonDouble, client: Client) -> None:
    client().create("dev")
    dev = neon_api.branch("dev")
    neon_api.hang("DELETE", "branches/[^/]+")
    client(request_timeout=2.0).delete("dev")
    assert [s.method for s in neon_api.requests if s.path.endswith(dev.id)] == ["DELETE", "GET"]
    assert dev.deleted_at is not None


def test_a_reset_that_timed_out_is_looked_up_instead_of_sent_twice(neon_api: NeonDouble, client: Client) -> None:
    client().create("dev")
    add_user(neon_api.database_url("dev"), "made-on-dev@example.com")
    neon_api.hang("POST", "branches/[^/]+/restore")
    reset = client(request_timeout=2.0).reset("dev")
    assert len(_posts(neon_api, "/restore")) == 1
    assert reset.name == "dev" and neon_api.branch("dev").state == "ready"
    assert emails(neon_api.database_url("dev")) == []


def test_a_get_that_timed_out_is_sent_again(neon_api: NeonDouble, client: Client, sleeps: list[float]) -> None:
    neon_api.hang("GET", "branches")
    assert [b.name for b in client(request_timeout=2.0).list()] == ["main"]
    assert sleeps == [0.5]


# -- lists: cursor pagination ---------------------------------------------------------------------------


def test_list_follows_the_pagination_cursor(neon_api: NeonDouble, client: Client) -> None:
    neon = client()
    for name in ("a", "b", "c"):
        neon.create(name)
    neon_api.page_limit = 2
    asked = len(neon_api.requests)
    assert [b.name for b in neon.list()] == ["main", "a", "b", "c"]
    pages = neon_api.requests[asked:]
    assert [("cursor" in p.query, "limit" in p.query) for p in pages] == [(False, True), (True, True)]


def test_a_branch_on_a_later_page_is_found_by_name(neon_api: NeonDouble, client: Client) -> None:
    neon = client()
    for name in ("a", "b", "c"):
        neon.create(name)
    neon_api.page_limit = 1
    assert {neon.get(name).name for name in ("main", "a", "b", "c")} == {"main", "a", "b", "c"}


# -- errors keep Neon's request_id ------------------------------------------------------------------


def test_an_error_keeps_neons_request_id(neon_api: NeonDouble, client: Client) -> None:
    neon_api.fail("GET", "branches", 404, message="project not found")
    with pytest.raises(BranchError) as caught:
        client().list()
    request_id = neon_api.requests[-1].request_id
    assert request_id is not None
    assert caught.value.request_id == request_id  # type: ignore[attr-defined]
    assert str(caught.value) == (
        f"Neon API GET /projects/{neon_api.project_id}/branches: project not found "
        f"(HTTP 404, request id {request_id}); check NEON_PROJECT_ID"
    )
