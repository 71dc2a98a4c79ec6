"""`pydb studio` over HTTP (Starlette's test client): pages, filters, paging, exports, edits and the safety rules."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterator
from html import unescape
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from pydb.config import Settings, load_settings
from pydb.errors import ConfigError
from pydb.studio import Studio, open_studio
from pydb.studio.server import listen
from tests.helpers import REPO, run_pydb

TOKEN = "test-token-not-a-secret"
BASE = "http://127.0.0.1:4980"
ORIGIN = {"Origin": BASE}

class Studios:
    """Studios on a test's database (settings changed as asked), each with a logged-in client; closed at the end."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.opened: list[Studio] = []

    def client(self, url: str | None = None, *, login: bool = True, allow_writes: bool = False,
               read_only: bool = False, **settings: Any) -> TestClient:
        """A new studio and a client for it (logged in with the token unless login=False)."""
        studio = open_studio(url or self.url, settings=load_settings(REPO).replace(**settings),
                             allow_writes=allow_writes, read_only=read_only, token=TOKEN)
        self.opened.append(studio)
        client = TestClient(studio.app, base_url=BASE, follow_redirects=False)
        if login:
            assert client.get(f"/?token={TOKEN}").status_code == 303
        return client


@pytest.fixture
def studios(demo_database: str) -> Iterator[Studios]:
    """Studios on the demo database, closed after the test."""
    made = Studios(demo_database)
    yield made
    for studio in made.opened:
        studio.close()


@pytest.fixture
def client(studios: Studios) -> TestClient:
    """A logged-in client of a read-write studio on the demo database."""
    return studios.client()


def _ids(url: str, sql: str) -> list[Any]:
    with psycopg.connect(url) as conn:
        return [row[0] for row in conn.execute(sql).fetchall()]


def _one(url: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, params or None).fetchone()
        assert row is not None
        return row[0] if len(row) == 1 else row


def _text(html: str) -> str:
    """The visible text of a page, tags dropped and spaces squeezed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


def _row_links(html: str, table: str) -> list[str]:
    return re.findall(rf'href="(/tables/{table}/rows/[^"/?]+)"', html)


# -- safety -----------------------------------------------------------------------------------------


def test_the_token_is_exchanged_for_a_strict_http_only_cookie(studios: Studios) -> None:
    client = studios.client(login=False)
    assert client.get("/").status_code == 401
    assert "Open the address pydb studio printed" in client.get("/tables/users").text
    assert client.get("/?token=wrong").status_code == 403

    response = client.get(f"/tables/users?token={TOKEN}&sort=email")
    assert response.status_code == 303
    assert response.headers["location"] == "/tables/users?sort=email"  # the token leaves the address bar
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert client.get("/tables/users?sort=email").status_code == 200
    assert client.get("/static/studio.css").status_code == 200


def test_only_loopback_host_names_are_answered(studios: Studios) -> None:
    client = studios.client()
    assert client.get("/", headers={"Host": "localhost:4980"}).status_code == 200
    rebound = client.get("/", headers={"Host": "attacker.example:4980"})
    assert rebound.status_code == 403
    assert "answers only to 127.0.0.1 and localhost" in rebound.text
    assert client.get("/static/studio.css", headers={"Host": "attacker.example"}).status_code == 403


def test_writes_need_an_origin_of_this_studio(client: TestClient, demo_database: str) -> None:
    project = _one(demo_database, "SELECT id FROM projects WHERE name = 'Launch plan'")
    edit = f"/tables/projects/rows/{project}/edit"
    form = {"v.name": "Renamed", "v.owner_id": str(_one(demo_database, "SELECT owner_id FROM projects LIMIT 1")),
            "v.status": "active", "v.created_at": "2025-01-01 00:00:00+00:00", "null.description": "1"}
    assert client.post(edit, data=form).status_code == 403
    assert client.post(edit, data=form, headers={"Origin": "http://attacker.example"}).status_code == 403
    assert client.post(edit, data=form, headers={"Origin": "null"}).status_code == 403
    assert _one(demo_database, "SELECT name FROM projects WHERE id = %s", project) == "Launch plan"
    assert client.post(edit, data=form, headers=ORIGIN).status_code == 303
    assert _one(demo_database, "SELECT name FROM projects WHERE id = %s", project) == "Renamed"


def test_only_loopback_addresses_are_listened_on() -> None:
    with pytest.raises(ConfigError, match="listens on this machine only"):
        listen("0.0.0.0", 0)
    sock = listen("127.0.0.1", 0)
    sock.listen(1)
    try:
        with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1:\d+: .*--port"):
            listen("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()


def test_passwords_are_never_shown(studios: Studios, demo_database: str) -> None:
    with_password = demo_database.replace("postgres@", "postgres:pw-not-a-secret@", 1)
    assert with_password != demo_database
    client = studios.client(with_password)
    pages = [client.get(path).text for path in ("/", "/tables/users", "/sql", "/schema")]
    pages.append(client.post("/sql", data={"sql": "SELECT nonsense"}, headers=ORIGIN).text)
    assert all("pw-not-a-secret" not in page for page in pages)
    assert "postgres:***@" in pages[0]


# -- pages ------------------------------------------------------------------------------------------


def test_the_index_lists_tables_with_row_counts_and_enums(client: TestClient) -> None:
    page = _text(client.get("/").text)
    assert "ai_usage_log 3 7 user" in page
    assert "projects 2 7 owner" in page
    assert "users 2 8 ai_usage_log, projects" in page
    assert "user_role : user , admin" in page
    assert 'href="/schema"' in client.get("/").text


def test_counts_of_big_tables_are_estimates_and_say_so(client: TestClient, demo_database: str) -> None:
    with psycopg.connect(demo_database) as conn:
        conn.execute("INSERT INTO ai_usage_log (user_id, model, tokens_used) "
                     "SELECT id, 'm', g FROM users, generate_series(1, 6000) AS g")
        conn.execute("ANALYZE ai_usage_log")
    page = _text(client.get("/").text)
    assert "ai_usage_log ≈ 12,003 estimated 7 user" in page
    assert "users 2 8" in page


def test_a_table_page_shows_types_and_tells_null_from_an_empty_string(client: TestClient, demo_database: str) -> None:
    with psycopg.connect(demo_database) as conn:
        conn.execute("UPDATE projects SET description = '' WHERE name = 'Launch plan'")
    users = client.get("/tables/users").text
    assert "varchar(255)" in users and "user_role" in users and "timestamptz" in users and "boolean" in users
    assert '<td class="null"><span class="null">NULL</span></td>' in users  # Ada's password_hash
    projects = client.get("/tables/projects").text
    assert '<td class="empty"><span class="empty" title="an empty string (not NULL)">empty</span></td>' in projects
    assert '<td class="null">' in projects  # Research notes has no description
    owner = _one(demo_database, "SELECT owner_id FROM projects WHERE name = 'Research notes'")
    assert f'href="/tables/users/rows/{owner}"' in projects  # foreign keys link to the parent row


def test_filters_are_kept_in_the_url_and_combine(client: TestClient) -> None:
    page = client.get("/tables/users?col=email&op=contains&val=ADA")
    assert page.status_code == 200
    assert "ada@example.com" in page.text and "admin@example.com" not in page.text
    both = client.get("/tables/ai_usage_log?col=tokens_used&op=ge&val=1250&col=model&op=starts&val=gpt")
    assert "gpt-4o-mini" in both.text and ">gpt-4o<" in both.text and "text-embedding" not in both.text
    # each filter can be removed on its own: the link keeps the other
    assert 'href="/tables/ai_usage_log?col=model&amp;op=starts&amp;val=gpt"' in both.text
    nulls = client.get("/tables/users?col=password_hash&op=null&val=ignored")
    assert "ada@example.com" in nulls.text and "admin@example.com" not in nulls.text
    enum = client.get("/tables/users?col=role&op=eq&val=admin")
    assert "admin@example.com" in enum.text and "ada@example.com" not in enum.text
    wildcard = client.get("/tables/users?col=email&op=contains&val=%25")  # % is a character, not a wildcard
    assert "No rows match these filters." in wildcard.text


def test_a_filter_value_that_does_not_fit_its_column_is_a_message(client: TestClient) -> None:
    bad = client.get("/tables/ai_usage_log?col=tokens_used&op=eq&val=lots")
    assert bad.status_code == 400
    assert "tokens_used: expected an integer, got &#39;lots&#39;" in bad.text
    unknown = client.get("/tables/users?col=nickname&op=eq&val=x&sort=nope")
    assert "users has no column &#39;nickname&#39;" in unknown.text
    assert "cannot sort users by &#39;nope&#39;" in unknown.text
    assert client.get("/tables/users?after=garbage").status_code == 400


def _walk(client: TestClient, first: str, rel: str) -> list[str]:
    """Follow next (or prev) links from a page; the row keys in page order."""
    seen: list[str] = []
    url: str | None = first
    pages = 0
    while url is not None:
        html = client.get(url.replace("&amp;", "&")).text
        keys = [link.rsplit("/", 1)[1] for link in _row_links(html, "projects")]
        seen = seen + keys if rel == "next" else keys + seen
        found = re.search(rf'<a href="([^"]+)" rel="{rel}">', html)
        url = found.group(1) if found else None
        pages += 1
        assert pages < 20
    return seen


@pytest.mark.parametrize(("sort", "order_by"), [
    ("", "id"),
    ("&sort=name&dir=desc", "name DESC, id DESC"),
    ("&sort=description", "description ASC NULLS LAST, id"),
    ("&sort=description&dir=desc", "description DESC NULLS FIRST, id DESC"),
])
def test_keyset_pages_cover_every_row_once_in_order(
    client: TestClient, demo_database: str, sort: str, order_by: str,
) -> None:
    with psycopg.connect(demo_database) as conn:
        conn.execute("INSERT INTO projects (owner_id, name, description) SELECT (SELECT id FROM users LIMIT 1), "
                     "'p' || (g % 37), CASE WHEN g % 3 = 0 THEN NULL ELSE 'd' || (g % 5) END "
                     "FROM generate_series(1, 130) AS g")
    expected = [str(i) for i in _ids(demo_database, f"SELECT id FROM projects ORDER BY {order_by}")]
    assert len(expected) == 132
    forwards = _walk(client, f"/tables/projects?x=1{sort}", "next")
    assert forwards == expected
    backwards = _walk(client, f"/tables/projects?last=1{sort}", "prev")
    assert backwards == expected


def test_paging_never_uses_offset(studios: Studios, demo_database: str) -> None:
    client = studios.client()
    with psycopg.connect(demo_database) as conn:
        conn.execute("INSERT INTO projects (owner_id, name) SELECT (SELECT id FROM users LIMIT 1), 'p' || g "
                     "FROM generate_series(1, 120) AS g")
    sent: list[str] = []
    sa.event.listen(studios.opened[-1].db.engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
    html = client.get("/tables/projects?sort=name").text
    deeper = re.search(r'<a href="([^"]+)" rel="next">', html)
    assert deeper is not None
    client.get(deeper.group(1).replace("&amp;", "&"))
    pages = [s for s in sent if "FROM projects" in s and "LIMIT" in s]
    assert len(pages) == 2
    assert all("OFFSET" not in s for s in pages)
    assert "projects.name >=" in pages[1]  # the index on the sort column can bound the scan


def test_exports_stream_the_filtered_rows(client: TestClient, demo_database: str) -> None:
    with psycopg.connect(demo_database) as conn:
        conn.execute("UPDATE projects SET description = '' WHERE name = 'Launch plan'")
    response = client.get("/tables/projects/export.csv?sort=name")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="projects.csv"' in response.headers["content-disposition"]
    lines = response.text.splitlines()
    assert lines[0] == "id,owner_id,name,description,status,created_at,updated_at"
    assert [line.split(",")[2:5] for line in lines[1:]] == [["Launch plan", '""', "active"],
                                                            ["Research notes", "", "draft"]]
    assert [row["name"] for row in csv.DictReader(io.StringIO(response.text))] == ["Launch plan", "Research notes"]

    rows = client.get("/tables/ai_usage_log/export.json?col=model&op=starts&val=gpt&sort=tokens_used&dir=desc").json()
    assert [(r["model"], r["tokens_used"], r["estimated_cost"]) for r in rows] == [
        ("gpt-4o", 4800, "0.024000"), ("gpt-4o-mini", 1250, "0.000375")]
    assert client.get("/tables/users/export.json?col=email&op=eq&val=nobody").json() == []
    assert client.get("/tables/users/export.xml").status_code == 404
    assert client.get("/tables/ai_usage_log/export.csv?col=tokens_used&op=eq&val=x").status_code == 400


def test_a_row_page_links_its_relations_both_ways(client: TestClient, demo_database: str) -> None:
    ada = _one(demo_database, "SELECT id FROM users WHERE email = 'ada@example.com'")
    page = client.get(f"/tables/users/rows/{ada}")
    assert page.status_code == 200
    text = _text(page.text)
    assert "users.projects : 1 row of projects" in text
    assert "users.ai_usage_log : 2 rows of ai_usage_log" in text
    assert f'href="/tables/projects?col=owner_id&amp;op=eq&amp;val={ada}"' in page.text
    assert f"db.query.users.find_first(where=users.c.id == UUID(&#39;{ada}&#39;)" in page.text

    project = _one(demo_database, "SELECT id FROM projects WHERE owner_id = %s", ada)
    child = client.get(f"/tables/projects/rows/{project}")
    assert "projects.owner → users:" in _text(child.text)
    assert f'<a href="/tables/users/rows/{ada}">Ada Lovelace</a>' in child.text
    assert client.get(f"/tables/users/rows/{uuid.uuid4()}").status_code == 404
    assert client.get("/tables/users/rows/not-a-uuid").status_code == 404
    assert client.get("/tables/nothing").status_code == 404


# -- edits ------------------------------------------------------------------------------------------


def _form(client: TestClient, url: str) -> dict[str, str]:
    """The values a browser would send for a form page as it is."""
    html = client.get(url).text
    data = {}
    for name, value in re.findall(r'<input id="[^"]*" name="([^"]+)" value="([^"]*)"', html):
        data[name] = value.replace("&#43;", "+").replace("&#39;", "'")
    for name in re.findall(r'<input type="checkbox" (?:id="[^"]*" )?name="([^"]+)" value="[^"]*" checked>', html):
        data[name] = "1" if name.startswith("null.") else "true"
    for name, body in re.findall(r'<select id="[^"]*" name="([^"]+)">(.*?)</select>', html, re.DOTALL):
        selected = re.search(r'<option value="([^"]*)" selected>', body)
        data[name] = selected.group(1) if selected else ""
    for name, body in re.findall(r'<textarea id="[^"]*" name="([^"]+)"[^>]*>(.*?)</textarea>', html, re.DOTALL):
        data[name] = body
    return data


def test_an_edit_sets_changed_columns_and_updated_at(client: TestClient, demo_database: str) -> None:
    project = _one(demo_database, "SELECT id FROM projects WHERE name = 'Launch plan'")
    before = _one(demo_database, "SELECT updated_at, created_at FROM projects WHERE id = %s", project)
    url = f"/tables/projects/rows/{project}/edit"
    data = _form(client, url)
    assert data["v.name"] == "Launch plan" and data["v.status"] == "active"
    data |= {"v.name": "Launch plan v2", "null.description": "1"}
    response = client.post(url, data=data, headers=ORIGIN)
    assert response.status_code == 303
    assert response.headers["location"] == f"/tables/projects/rows/{project}?notice=saved"
    name, description, updated_at, created_at = _one(
        demo_database, "SELECT name, description, updated_at, created_at FROM projects WHERE id = %s", project)
    assert (name, description, created_at) == ("Launch plan v2", None, before[1])
    assert updated_at > before[0]
    assert "Saved." in client.get(response.headers["location"]).text

    again = client.post(url, data=_form(client, url), headers=ORIGIN)
    assert again.headers["location"].endswith("?notice=unchanged")
    assert _one(demo_database, "SELECT updated_at FROM projects WHERE id = %s", project) == updated_at


def test_values_that_do_not_fit_are_shown_on_the_form(client: TestClient, demo_database: str) -> None:
    admin = _one(demo_database, "SELECT id FROM users WHERE email = 'admin@example.com'")
    url = f"/tables/users/rows/{admin}/edit"
    data = _form(client, url)
    assert data["v.role"] == "admin" and data["v.email_verified"] == "true"
    data |= {"v.email": "x" * 256, "v.role": "root", "v.created_at": "yesterday"}
    response = client.post(url, data=data, headers=ORIGIN)
    assert response.status_code == 400
    text = _text(response.text)
    assert "Not saved: 3 values to fix below." in text
    assert "256 characters, longer than the column's 255" in text
    assert "'root' is not a value of user_role (one of: user, admin)" in text
    assert "expected a timestamp (ISO 8601" in text
    assert "Traceback" not in response.text
    assert 'value="yesterday"' in response.text  # what was typed stays in the form
    assert _one(demo_database, "SELECT role::text FROM users WHERE id = %s", admin) == "admin"


def test_constraint_violations_are_messages_on_the_form(client: TestClient, demo_database: str) -> None:
    admin = _one(demo_database, "SELECT id FROM users WHERE email = 'admin@example.com'")
    url = f"/tables/users/rows/{admin}/edit"
    data = _form(client, url) | {"v.email": "ada@example.com"}
    response = client.post(url, data=data, headers=ORIGIN)
    assert response.status_code == 400
    text = _text(response.text)
    assert 'Not saved: duplicate key value violates unique constraint "users_email_key" ' \
           "Key (email)=(ada@example.com) already exists." in text
    assert "Traceback" not in response.text

    stranger = uuid.uuid4()
    insert = client.post("/tables/projects/new", data={"v.owner_id": str(stranger), "v.name": "Orphan"},
                         headers=ORIGIN)
    assert insert.status_code == 400
    assert "violates foreign key constraint" in insert.text and f"Key (owner_id)=({stranger})" in insert.text
    assert _one(demo_database, "SELECT count(*) FROM projects") == 2


def test_insert_uses_defaults_and_delete_cascades(client: TestClient, demo_database: str) -> None:
    form = client.get("/tables/users/new").text
    assert '<option value="admin">admin</option>' in form  # enum columns are a select
    assert 'placeholder="default: gen_random_uuid()"' in form
    response = client.post("/tables/users/new", data={"v.email": "grace@example.com", "v.name": "Grace"},
                           headers=ORIGIN)
    assert response.status_code == 303, response.text
    grace = _one(demo_database, "SELECT id FROM users WHERE email = 'grace@example.com'")
    assert response.headers["location"] == f"/tables/users/rows/{grace}?notice=created"
    assert _one(demo_database, "SELECT role::text, email_verified, password_hash FROM users WHERE id = %s",
                grace) == ("user", False, None)

    owner_form = client.get("/tables/projects/new").text
    assert f'<option value="{grace}">Grace ({grace})</option>' in owner_form  # a foreign key is a choice
    assert client.post("/tables/projects/new", data={"v.owner_id": str(grace), "v.name": "Compiler"},
                       headers=ORIGIN).status_code == 303
    confirm = _text(client.get(f"/tables/users/rows/{grace}/delete").text)
    assert "1 of projects (projects): their foreign key says ON DELETE CASCADE" in confirm
    deleted = client.post(f"/tables/users/rows/{grace}/delete", headers=ORIGIN)
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/tables/users?notice=deleted"
    assert _one(demo_database, "SELECT count(*) FROM projects WHERE owner_id = %s", grace) == 0
    assert client.post(f"/tables/users/rows/{grace}/delete", headers=ORIGIN).status_code == 404


def test_an_insert_without_a_required_value_says_so(client: TestClient, demo_database: str) -> None:
    response = client.post("/tables/ai_usage_log/new", data={"v.model": "m"}, headers=ORIGIN)
    assert response.status_code == 400
    assert "a value is required" in response.text  # tokens_used and user_id
    assert _one(demo_database, "SELECT count(*) FROM ai_usage_log") == 3


# -- SQL --------------------------------------------------------------------------------------------


def _run(client: TestClient, statement: str, action: str = "run") -> Any:
    return client.post("/sql", data={"sql": statement, "action": action}, headers=ORIGIN)


def test_the_sql_page_shows_the_first_thousand_rows_and_the_count(client: TestClient) -> None:
    assert 'name="sql"' in client.get("/sql").text
    page = _run(client, "SELECT g AS n, CASE WHEN g = 1 THEN NULL ELSE '' END AS t FROM generate_series(1, 1500) g")
    assert page.status_code == 200
    assert "1,500 rows, the first 1,000 shown (export for all)" in _text(page.text)
    assert page.text.count("<tr>") == 1001
    assert '<td class="null">' in page.text and '<td class="empty">' in page.text
    csv_text = _run(client, "SELECT g FROM generate_series(1, 1500) g", "csv").text
    assert csv_text.splitlines() == ["g", *(str(i) for i in range(1, 1501))]
    assert _run(client, "SELECT 1 AS a, 'x' AS b", "json").json() == [{"a": 1, "b": "x"}]
    percent = _run(client, "SELECT email FROM users WHERE email LIKE '%ada%'")
    assert "ada@example.com" in percent.text


def test_the_sql_page_runs_one_statement_and_reports_errors(client: TestClient, demo_database: str) -> None:
    two = _run(client, "UPDATE users SET name = 'x'; DELETE FROM users")
    assert two.status_code == 400
    assert "cannot insert multiple commands into a prepared statement" in two.text
    assert _one(demo_database, "SELECT count(*) FROM users WHERE name = 'x'") == 0
    bad = _run(client, "SELECT * FROM nowhere")
    assert bad.status_code == 400
    assert "relation &#34;nowhere&#34; does not exist (at character 15)" in bad.text
    update = _run(client, "-- a comment first\nUPDATE users SET name = name || '!' RETURNING email")
    assert "UPDATE 2 · 2 rows · committed" in _text(update.text)
    assert _one(demo_database, "SELECT count(*) FROM users WHERE name LIKE '%!'") == 2


def test_a_production_database_is_read_only_unless_writes_are_allowed(
    studios: Studios, demo_database: str,
) -> None:
    client = studios.client(env="production")
    index = client.get("/").text
    assert "Read-only: production database (PYDB_ENV=production); start with --allow-writes" in index
    users = client.get("/tables/users").text
    assert "Insert a row" not in users
    admin = _one(demo_database, "SELECT id FROM users WHERE email = 'admin@example.com'")
    assert ">Edit</a>" not in client.get(f"/tables/users/rows/{admin}").text
    refused = client.post(f"/tables/users/rows/{admin}/edit", data={"v.name": "x"}, headers=ORIGIN)
    assert refused.status_code == 403 and "This studio is read-only" in refused.text
    assert client.post(f"/tables/users/rows/{admin}/delete", headers=ORIGIN).status_code == 403
    assert client.post("/tables/users/new", data={"v.email": "a@b.c", "v.name": "x"}, headers=ORIGIN).status_code \
        == 403
    update = _run(client, "UPDATE users SET name = 'x'")
    assert "cannot execute UPDATE in a read-only transaction" in update.text
    assert "on" in _text(_run(client, "SHOW default_transaction_read_only").text).split("SELECT 1")[-1]
    escape = _run(client, "COMMIT")  # leaving the transaction leaves nothing writable behind
    assert escape.status_code == 200
    assert "cannot execute UPDATE" in _run(client, "UPDATE users SET name = 'x'").text
    assert _one(demo_database, "SELECT count(*) FROM users WHERE name = 'x'") == 0

    writable = studios.client(env="production", allow_writes=True)
    assert "writes allowed by --allow-writes" in writable.get("/").text
    assert "UPDATE 2" in _run(writable, "UPDATE users SET name = 'x'").text
    forced = studios.client(read_only=True)
    assert "Read-only: started with --read-only" in forced.get("/").text


def test_a_slow_statement_is_stopped_by_the_timeout(studios: Studios, demo_database: str) -> None:
    client = studios.client(studio_statement_timeout="200ms")
    with psycopg.connect(demo_database) as blocker:
        blocker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")  # held until this block ends
        response = _run(client, "SELECT count(*) FROM users")
    assert response.status_code == 400
    assert "canceling statement due to statement timeout" in response.text
    assert "stopped after 200ms" in response.text
    assert "SELECT 1" in _text(_run(client, "SELECT count(*) FROM users").text)


def test_a_bad_timeout_setting_is_refused_at_start(demo_database: str) -> None:
    settings: Settings = load_settings(REPO).replace(studio_statement_timeout="soon")
    with pytest.raises(ConfigError, match="PYDB_STUDIO_STATEMENT_TIMEOUT='soon' is not a valid statement_timeout"):
        open_studio(demo_database, settings=settings)


# -- schema -----------------------------------------------------------------------------------------


def test_the_schema_page_and_the_comparison_with_schema_hcl(
    studios: Studios, demo_database: str, pydb_dev_database: str,
) -> None:
    client = studios.client(atlas_dev_url=pydb_dev_database)
    page = _text(client.get("/schema").text)
    assert "index users_email_key (email) unique" in page
    assert "foreign key projects_owner_id_fkey: (owner_id) -> users(id) on delete cascade" in page
    assert "relation projects.owner → one users" in page and "relation users.projects → many projects" in page
    assert "user_role : user , admin" in page
    assert "The database matches" in client.get("/schema/drift?fragment=1").text

    with psycopg.connect(demo_database) as conn:
        conn.execute("ALTER TABLE users ADD COLUMN nickname text")
    drift = client.get("/schema/drift")
    assert "does <strong>not</strong> match" in drift.text
    assert 'DROP COLUMN "nickname"' in drift.text.replace("&#34;", '"')
    assert "nickname" in client.get("/schema").text  # the schema is read again when it changed


def test_the_command_refuses_contradicting_flags_and_a_bad_url() -> None:
    both = run_pydb("studio", "--allow-writes", "--read-only", "--no-browser")
    assert both.returncode == 2 and "--allow-writes and --read-only contradict each other" in both.stderr
    bad = run_pydb("studio", "--no-browser", "--url", "postgresql://postgres:pw-not-a-secret@127.0.0.1:1/none")
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: cannot connect to postgresql://postgres:***@127.0.0.1:1/none")
    assert len(bad.stderr.strip().splitlines()) == 1


def test_json_export_is_one_array(client: TestClient) -> None:
    rows = json.loads(client.get("/tables/users/export.json?sort=email").text)
    assert [r["email"] for r in rows] == ["ada@example.com", "admin@example.com"]
    assert rows[0]["password_hash"] is None and rows[0]["email_verified"] is False
