"""The documentation matches the code: every command and option is in docs/cli.md, and every link leads somewhere."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from pydb.cli import cli
from tests.helpers import REPO, run_pydb

CLI_DOC = REPO / "docs" / "cli.md"
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
_HEADING = re.compile(r"^#{1,3} ", re.MULTILINE)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def _commands(command: click.Command, path: str = "pydb") -> Iterator[tuple[str, click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _commands(sub, f"{path} {name}")


COMMANDS = list(_commands(cli))
LEAVES = [(path, command) for path, command in COMMANDS if not isinstance(command, click.Group)]


def _flags(command: click.Command) -> list[str]:
    """Every spelling of every option of a command, --help excepted."""
    flags: list[str] = []
    for param in command.params:
        if isinstance(param, click.Option) and "--help" not in param.opts:
            flags += [*param.opts, *param.secondary_opts]
    return flags


def _section(path: str) -> str:
    """The text of docs/cli.md under the heading "### `PATH`", up to the next heading of level 1 to 3."""
    text = CLI_DOC.read_text()
    heading = f"### `{path}`\n"
    assert heading in text, f"docs/cli.md has no section {heading.strip()!r}"
    body = text[text.index(heading) + len(heading):]
    end = _HEADING.search(body)
    return body[: end.start()] if end else body


def _listed_options(section: str) -> set[str]:
    """The flags named in the first column of the option tables of a section (`-y, --yes` gives both)."""
    listed: set[str] = set()
    for line in section.splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            listed.update(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", first_cell))
    return listed


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[p for p, _ in COMMANDS])
def test_every_command_and_option_is_in_docs_cli(path: str, command: click.Command) -> None:
    listed = _listed_options(_section(path))
    missing = [flag for flag in _flags(command) if flag not in listed]
    assert not missing, f"docs/cli.md: the option table of {path} does not list {', '.join(missing)}"


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[p for p, _ in LEAVES])
def test_every_command_has_help_with_an_example(path: str, command: click.Command) -> None:
    assert command.help and "Example:" in command.help, f"{path} --help has no example"


def test_help_runs() -> None:
    result = run_pydb("--help")
    assert result.returncode == 0
    assert "schema-as-code for PostgreSQL and Neon" in result.stdout
    assert "dev" in result.stdout


def test_a_usage_error_is_clicks_exit_2() -> None:
    result = run_pydb("dev", "frobnicate")
    assert result.returncode == 2
    assert "No such command 'frobnicate'" in result.stderr


def test_the_readme_is_short() -> None:
    lines = README.read_text().count("\n")
    assert lines <= 150, f"README.md has {lines} lines; reference material belongs in docs/"


def _anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the headings of a page: lower case, punctuation dropped, spaces as '-'."""
    text = _FENCE.sub("", page.read_text())
    headings = re.findall(r"^#+ (.+)$", text, re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(REPO).as_posix() for p in PAGES])
def test_every_relative_link_leads_to_a_file_and_heading(page: Path) -> None:
    links = _LINK.findall(_FENCE.sub("", page.read_text()))
    for link in links:
        if re.match(r"^[a-z]+:", link):
            continue  # https://, mailto:
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.name}: the link {link} leads to no file"
        if anchor and path.suffix == ".md":
            assert anchor in _anchors(path), f"{page.name}: the link {link} leads to no heading of {path.name}"
