"""`pydb studio` in a real browser: Debian's Chromium driven by Playwright, as a new user would use it.

The studio runs as its own process (`pydb studio --no-browser`) on a database seeded from the
repository's seed.yaml. `pytest tests/test_studio_browser.py --screenshots docs/studio` refreshes the
screenshots of docs/studio.md.
"""

from __future__ import annotations

import select
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.helpers import REPO, popen_pydb

CHROMIUM = Path("/usr/bin/chromium")
# As the machine notes say: no sandbox as root, and no background traffic to a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Chromium is not installed at /usr/bin/chromium; `make system-deps` installs it with apt-get when run "
           "as root (apt-get install chromium)",
)


@pytest.fixture
def studio_process(demo_database: str, pydb_dev_database: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`pydb studio --no-browser` on the demo database, and the address it printed; stopped with Ctrl-C after."""
    process = popen_pydb("studio", "--no-browser", "--port", "0", "--url", demo_database, cwd=REPO,
                         env={"ATLAS_DEV_URL": pydb_dev_database})
    assert process.stdout is not None and process.stderr is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], 120)  # a hang fails the test instead of blocking it
        line = process.stdout.readline() if ready else ""
        assert line.startswith("pydb studio: http://127.0.0.1:"), (line, process.poll())
        yield process, line.removeprefix("pydb studio: ").strip()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        process.stdout.close()
        process.stderr.close()


@pytest.fixture
def browser() -> Iterator[Browser]:
    """Headless Chromium from Debian's package (Playwright never downloads a browser here)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _shot(page: Page, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_a_new_user_browses_follows_relations_edits_and_queries(
    studio_process: tuple[subprocess.Popen[str], str], browser: Browser, demo_database: str, screenshots: Path,
) -> None:
    process, address = studio_process
    page = browser.new_page(viewport={"width": 1280, "height": 760})

    page.goto(address)
    expect(page).to_have_url(address.split("?")[0])  # the token was swapped for a cookie
    expect(page.locator("table.listing tbody td:first-child")).to_have_text(["ai_usage_log", "projects", "users"])
    expect(page.locator(".mode")).to_have_text("read-write")
    _shot(page, screenshots, "tables")

    page.get_by_role("link", name="users", exact=True).click()
    expect(page).to_have_url(address.split("?")[0] + "tables/users")
    ada_row = page.locator("table.rows tbody tr", has_text="ada@example.com")
    expect(ada_row.locator("td.null")).to_have_text("NULL")  # no password hash
    _shot(page, screenshots, "users")

    ada_row.locator("td").first.get_by_role("link").click()
    expect(page.locator("h1")).to_have_text("Tables / users / row")
    _shot(page, screenshots, "user-row")
    page.get_by_role("link", name="1 row of projects").click()
    expect(page.locator(".filter")).to_contain_text("owner_id")
    projects = page.locator("table.rows tbody tr")
    expect(projects).to_have_count(1)
    expect(projects).to_contain_text("Research notes")
    _shot(page, screenshots, "projects-of-a-user")

    projects.locator("td").first.get_by_role("link").click()
    project_id = page.url.rsplit("/", 1)[1]
    with psycopg.connect(demo_database) as conn:
        (before,) = conn.execute("SELECT updated_at FROM projects WHERE id = %s", (project_id,)).fetchone() or (None,)
    page.get_by_role("link", name="Edit").click()
    page.locator("[name='v.name']").fill("Research notes, second draft")
    page.locator("[name='v.status']").fill("active")
    expect(page.locator("[name='null.description']")).to_be_checked()
    page.locator("[name='v.description']").fill("Notes on the analytical engine")
    expect(page.locator("[name='null.description']")).not_to_be_checked()  # typing a value unticks NULL
    _shot(page, screenshots, "edit-form")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".notice")).to_have_text("Saved.")
    expect(page.locator("table.record")).to_contain_text("Research notes, second draft")
    with psycopg.connect(demo_database) as conn:
        row = conn.execute("SELECT name, status, description, updated_at FROM projects WHERE id = %s",
                           (project_id,)).fetchone()
    assert row is not None and row[:3] == ("Research notes, second draft", "active", "Notes on the analytical engine")
    assert before is not None and row[3] > before

    page.get_by_role("link", name="SQL").click()
    page.locator("textarea[name=sql]").fill(
        "SELECT u.email, count(p.id) AS projects\nFROM users u LEFT JOIN projects p ON p.owner_id = u.id\n"
        "GROUP BY u.email ORDER BY u.email")
    page.locator("textarea[name=sql]").press("Control+Enter")  # the page's own shortcut for Run
    expect(page.locator("p.status")).to_have_text("SELECT 2 · 2 rows")
    expect(page.locator("table.rows tbody tr").first).to_contain_text("ada@example.com")
    _shot(page, screenshots, "sql")

    page.get_by_role("link", name="Schema").click()
    expect(page.locator("#drift .notice")).to_contain_text("The database matches", timeout=120_000)
    _shot(page, screenshots, "schema")

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    assert process.stderr is not None and "pydb studio: stopped" in process.stderr.read()
