"""Property: for any seed document, valid or not, `load_seed` never fails with a traceback; every
problem has a position; a valid document loads, and loading it again changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pydb.errors import SeedError
from pydb.local import LocalServer
from pydb.seed import SeedReport, load_seed
from pydb.testing import scratch_database
from tests.helpers import contents, snapshot

NAMES = [f"u{i}" for i in range(5)]

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)


def quoted(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


def pick(good: list[str], bad: list[str], valid: bool) -> st.SearchStrategy[str]:
    """One of the good values, or (for an invalid document) of the good and the bad ones."""
    return st.sampled_from(good if valid else good + bad)


def user_row(valid: bool) -> st.SearchStrategy[dict[str, str]]:
    optional = {
        "_id": st.sampled_from(NAMES),
        "role": pick(["user", "admin"], ["boss"], valid),
        "email_verified": pick(["true", "false", "null"], ["yes"], valid),
        "password_hash": st.one_of(text.map(quoted), pick(["!env SEED_PROP_HASH:-x"], ["!env SEED_PROP_UNSET"], valid)),
    }
    if not valid:
        optional["emial"] = st.just("x")
    required = {"email": st.sampled_from(["a@x.io", "b@x.io", "c@x.io", "d@x.io"]).map(quoted)}
    if valid:
        required["name"] = text.map(quoted)
    else:
        optional["name"] = text.map(quoted)
    return st.fixed_dictionaries(required, optional=optional)


def project_row(valid: bool) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {"owner_id": pick(NAMES, ["nobody"], valid).map(lambda n: f"!ref {n}"), "name": text.map(quoted)},
        optional={"status": st.sampled_from(["active", "draft"]), "description": text.map(quoted)},
    )


def usage_row(valid: bool) -> st.SearchStrategy[dict[str, str]]:
    tokens = st.integers(0, 2**31 - 1) if valid else st.integers(-(2**33), 2**33)
    return st.fixed_dictionaries(
        {"user_id": pick(NAMES, ["nobody"], valid).map(lambda n: f"!ref {n}"),
         "model": pick(["gpt-4o", "o3"], ["m" * 101, "null"], valid),
         "tokens_used": st.one_of(tokens.map(str), pick(["1"], ["many"], valid))},
        optional={"estimated_cost": st.one_of(
                      st.decimals(places=6, min_value=-999999, max_value=999999, allow_nan=False).map(str),
                      pick(["0.5"], ["cheap"], valid)),
                  "created_at": pick(["2025-01-06T09:30:00Z", "2025-01-06"], ["2025-02-30", "now"], valid)},
    )


def render(tables: dict[str, list[dict[str, str]]]) -> str:
    """The YAML text of a document: one block per table, one `- key: value` line per cell."""
    lines = []
    for table, rows in tables.items():
        lines.append(f"{table}:")
        for row in rows:
            for i, (key, value) in enumerate(row.items()):
                lines.append(f"{'  - ' if i == 0 else '    '}{key}: {value}")
    return "\n".join(lines) + "\n"


@st.composite
def documents(draw: Any) -> str:
    valid = draw(st.booleans())
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=4, unique=True))
    emails = draw(st.permutations(["a@x.io", "b@x.io", "c@x.io", "d@x.io"]))
    users = []
    for i, name in enumerate(names):  # every _id a row can point at
        row = {"_id": name, "email": quoted(emails[i]), "name": draw(text.map(quoted))}
        users.append(row)
    tables: dict[str, list[dict[str, str]]] = {"users": users}
    if not valid:
        tables["users"] += draw(st.lists(user_row(False), max_size=3))
    for table, strategy in (("projects", project_row), ("ai_usage_log", usage_row)):
        if draw(st.booleans()):
            tables[table] = draw(st.lists(strategy(valid), max_size=4))
    if valid:
        for rows in tables.values():
            for row in rows:
                for key, value in row.items():
                    if value.startswith("!ref "):
                        row[key] = f"!ref {draw(st.sampled_from(names))}"
    if not valid and draw(st.integers(0, 4)) == 0:
        tables["userz"] = [{"name": '"x"'}]
    doc = render(tables)
    if not valid and draw(st.integers(0, 3)) == 0:  # break the YAML somewhere
        at = draw(st.integers(0, len(doc)))
        doc = doc[:at] + draw(st.sampled_from(["[", "]", ": :", "\t", "{", "- ", "&", "*x", "!!int x"])) + doc[at:]
    return doc


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=documents())
def test_any_document_loads_or_fails_with_positions(
    doc: str, pydb_server: LocalServer, pydb_template: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SEED_PROP_UNSET", raising=False)
    Path("seed.yaml").write_text(doc)
    lines = doc.count("\n") + 1
    with scratch_database(pydb_server.url(), pydb_template) as url:
        before = snapshot(url)
        try:
            report = load_seed("seed.yaml", url)
        except SeedError as err:
            assert err.problems
            for problem in err.problems:
                assert problem.path == "seed.yaml"
                assert 1 <= problem.line <= lines and problem.column >= 1, problem
                assert str(problem).startswith(f"seed.yaml:{problem.line}:{problem.column}: ")
            assert snapshot(url) == before
            event("refused with positions")
            return
        event("loaded")
        assert isinstance(report, SeedReport)
        loaded = snapshot(url)
        state = contents(url)
        again = load_seed("seed.yaml", url)
        assert (again.inserted, again.updated) == (0, 0)
        assert again.unchanged == report.inserted + report.updated + report.unchanged
        assert snapshot(url) == loaded and contents(url) == state
