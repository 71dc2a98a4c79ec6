"""Seed files read as a stream: the line reader says what libyaml says, memory stays bounded, and a load
that fails late in the file writes nothing."""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, Any, cast

import psycopg
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pydb.errors import SeedError
from pydb.seed import load_seed
from pydb.seed.parse import parse_seed
from pydb.seed.rows import NODE, ReadAgain
from tests.helpers import GOOD, snapshot

# -- the line reader and the event reader agree ------------------------------------------------------

SIMPLE = ["Ada", "01234", "-5", "2025-01-06T09:30:00Z", "a,b", "x:y", "a#c", '"dq"', "'s''q'", "!ref u1", "u1"]
VALUES = [
    "Ada", "01234", "yes", "null", "~", "-5", "-", "2025-01-06T09:30:00Z", "a,b", "50%", "x:y", "a: b", "a #c",
    "a#c", '"dq"', '"d\\"q"', "'s''q'", "'open", '"open', "!ref u1", "!ref  u2", "!ref", "!ref u 1", "!ref 'u1'",
    "!env SEED_DIFF_X:-d", "!env SEED_DIFF_UNSET", "!env", "[a, b]", "{a: 1}", "[open", "&a x", "*a", "!!str 5",
    "!foo x", "ü ñ", "tab\tin", "x  ", "", "|\n        literal\n        text", ">-\n        folded", "é: x", "a:",
    "?x", "@x", "`x", "%x", "'it''s'", '"q"  # c', "u1", "bad id!", "\u00a0nbsp",
]
KEYS = ["_id", "_id", "email", "name", "note", "note", "x y", "'q'", "<<", "ñame", "a-b"]


@st.composite
def rows(draw: Any) -> list[str]:
    """The lines of one row, `- ` first."""
    odd = draw(st.integers(0, 3)) == 0
    values = st.sampled_from(VALUES) if odd else st.sampled_from(SIMPLE)
    keys = st.sampled_from(KEYS) if odd else st.sampled_from(["_id", "email", "name", "note"])
    cells = draw(st.lists(st.tuples(keys, values), min_size=1, max_size=4))
    dash = draw(st.sampled_from(["- ", "-  "]))
    lines = []
    for i, (key, value) in enumerate(cells):
        sep = draw(st.sampled_from([": ", ":  ", ": "]))
        lines.append(f"{dash if i == 0 else ' ' * len(dash)}{key}{sep}{value}".rstrip(" ") + draw(
            st.sampled_from(["", "", "  "])))
        extra = draw(st.sampled_from(["", "", "", "", "", "", "blank", "comment", "deeper", "outdent"]))
        if extra == "blank":
            lines.append("")
        elif extra == "comment":
            lines.append(" " * len(dash) + "# a comment")
        elif extra == "deeper":
            lines.append(" " * (len(dash) + 2) + "continued")
        elif extra == "outdent":
            lines.append(" " + "x: 1")
    return lines


@st.composite
def documents(draw: Any) -> str:
    indent = draw(st.sampled_from(["", "  "]))
    out = []
    if draw(st.booleans()):
        out.append("# a seed file")
    for _ in range(draw(st.integers(1, 3))):
        table = draw(st.sampled_from(["users", "users", "projects", "projects", "'quoted'", "t: x", "e"]))
        tail = draw(st.sampled_from(["", "", "", "", "", "  # rows", " ~", " []", " !csv missing.csv"]))
        out.append(f"{table}:{tail}")
        if tail.strip() in ("", "# rows"):
            for row in draw(st.lists(rows(), max_size=4)):
                out += [indent + line if line else line for line in row]
    end: str = draw(st.sampled_from(["\n", "", "\n\n"]))
    text = "\n".join(out) + end
    ending: str = draw(st.sampled_from(["\n", "\n", "\n", "\r\n", "\t\n"]))
    return text.replace("\n", ending)


def _node(node: Node) -> Any:
    """A YAML node as comparable data (the cell holding it has its position): kind, tag, value, style."""
    if isinstance(node, ScalarNode):
        return ("scalar", node.tag, node.value, bool(node.style))
    if isinstance(node, SequenceNode):
        return ("seq", node.tag, [_node(item) for item in node.value])
    assert isinstance(node, MappingNode)
    return ("map", node.tag, [(_node(k), _node(v)) for k, v in node.value])


def _read(text: str, events: bool) -> tuple[list[Any], list[str]]:
    """Every table and row of a document, as comparable data, and its problems."""
    stream = parse_seed(io.StringIO(text), "seed.yaml", environ={"SEED_DIFF_X": "v"}, events=events)
    tables = []
    for table in stream:
        rows = []
        for row in table.rows:
            cells = {name: cell if cell[0] != NODE else (NODE, _node(cell[1]), *cell[2:])
                     for name, cell in row.cells.items()}
            rows.append((row.line, row.column, row.name, row.name_line, row.name_column, cells))
        tables.append((table.name, table.line, table.column, table.rows_path, rows))
    return tables, [str(p) for p in stream.problems]


@settings(max_examples=400, deadline=None)
@given(doc=documents())
def test_the_line_reader_reads_what_libyaml_reads(doc: str) -> None:
    expected = _read(doc, events=True)
    try:
        got = _read(doc, events=False)
    except ReadAgain:
        event("read by the event reader")
        return
    event("read line by line")
    assert got == expected


def test_the_line_reader_hands_odd_rows_to_libyaml_with_their_positions() -> None:
    text = ("users:\n"
            "  - _id: ada\n"
            "    email: ada@example.com   # a comment\n"
            "    tags: [a, b]\n"
            "  - email: b@example.com\n"
            "    name: !env SEED_DIFF_X\n")
    tables, problems = _read(text, events=False)
    assert problems == []
    [(name, _line, _col, _path, rows)] = tables
    assert name == "users"
    assert [(r[0], r[1], r[2], sorted(r[5])) for r in rows] == [
        (2, 5, "ada", ["email", "tags"]), (5, 5, None, ["email", "name"])]
    assert rows[0][5]["email"][:4] == (0, "ada@example.com", 3, 12)  # plain text, line 3, column 12
    assert rows[0][5]["tags"][2:4] == (4, 11)
    assert rows[1][5]["name"][:4] == (2, "v", 6, 11)  # the variable's text, where the !env tag is


def test_anchors_across_rows_send_the_file_to_the_event_reader() -> None:
    text = "users:\n  - &base\n    name: A\n  - <<: *base\n    email: b@example.com\n"
    with pytest.raises(ReadAgain):
        _read(text, events=False)
    tables, problems = _read(text, events=True)
    assert problems == []
    assert [sorted(row[5]) for row in tables[0][4]] == [["name"], ["email", "name"]]


# -- bounded memory ----------------------------------------------------------------------------------


class CountingLines:
    """Lines of text, counting those handed out (the line reader only iterates its source)."""

    def __init__(self, text: str) -> None:
        self._lines = iter(text.splitlines(keepends=True))
        self.handed = 0

    def __iter__(self) -> CountingLines:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self.handed += 1
        return line


def test_the_reader_holds_one_row_at_a_time() -> None:
    rows = 10_000
    text = "users:\n" + "".join(f"  - _id: u{i}\n    email: u{i}@example.com\n    name: U {i}\n" for i in range(rows))
    source = CountingLines(text)
    seen = 0
    for table in parse_seed(cast(IO[str], source), "seed.yaml", environ={}):
        for row in table.rows:
            seen += 1
            # The row ends where the next one starts: only that one line beyond the row has been read.
            assert source.handed <= row.line + 3
    assert seen == rows and source.handed == 1 + 3 * rows


# -- failing late ------------------------------------------------------------------------------------


def test_a_load_that_fails_late_in_the_file_wrote_rows_and_leaves_nothing(pydb_database: str, seed_file: Any) -> None:
    usage = 12_000
    text = GOOD + "".join(f"  - user_id: !ref ada\n    model: m{i}\n    tokens_used: {i}\n" for i in range(usage))
    path = seed_file(text.replace(f"tokens_used: {usage - 1}\n", "tokens_used: lots\n"))
    before = snapshot(pydb_database)
    written: list[int] = []
    with pytest.raises(SeedError) as info:
        load_seed(path, pydb_database, progress=lambda done, total: written.append(done))
    assert [str(p) for p in info.value.problems] == [
        f"seed.yaml:{18 + 3 * usage}:18: ai_usage_log.tokens_used: expected an integer, got 'lots'"]
    assert written and written[-1] >= 10_000  # rows were sent to the server while the file was read
    assert snapshot(pydb_database) == before


def test_children_before_parents_kept_on_disk_then_written(pydb_database: str, seed_file: Any) -> None:
    usage = 4_500  # more rows than a spool keeps in memory
    text = ("ai_usage_log:\n" + "".join(f"  - user_id: !ref u{i % 7}\n    model: m\n    tokens_used: {i}\n"
                                        for i in range(usage))
            + "users:\n" + "".join(f"  - _id: u{i}\n    email: u{i}@example.com\n    name: U{i}\n" for i in range(7)))
    path = seed_file(text)
    report = load_seed(path, pydb_database)
    assert [(t.table, t.inserted) for t in report.tables] == [("users", 7), ("ai_usage_log", usage)]
    with psycopg.connect(pydb_database) as conn:
        rows = conn.execute("SELECT u.email, count(*) FROM ai_usage_log a JOIN users u ON u.id = a.user_id"
                            " GROUP BY u.email ORDER BY u.email").fetchall()
    assert rows == [(f"u{i}@example.com", len(range(i, usage, 7))) for i in range(7)]
    again = load_seed(Path(path), pydb_database)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, usage + 7)


def test_a_table_written_in_several_statements_loads_and_loads_again(pydb_database: str, seed_file: Any) -> None:
    usage = 25_000  # more rows than one COPY statement of a table written while it is read
    rows = "".join(f"  - user_id: !ref ada\n    model: m\n    tokens_used: {i}\n" for i in range(usage))
    path = seed_file(GOOD + rows)
    first = load_seed(path, pydb_database)
    assert [(t.table, t.inserted) for t in first.tables] == [
        ("users", 2), ("projects", 1), ("ai_usage_log", usage + 1)]
    with psycopg.connect(pydb_database) as conn:
        assert conn.execute("SELECT count(DISTINCT tokens_used) FROM ai_usage_log").fetchone() == (usage,)
    again = load_seed(path, pydb_database)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, usage + 4)


def test_a_row_the_database_refuses_in_a_later_statement_is_reported_at_its_line(
    pydb_database: str, seed_file: Any,
) -> None:
    usage = 15_000
    text = GOOD + "".join(f"  - user_id: !ref ada\n    model: m\n    tokens_used: {i}\n" for i in range(usage))
    nobody = "0b2f3c4d-0000-4000-8000-000000000001"
    path = seed_file(text.replace("  - user_id: !ref ada\n    model: m\n    tokens_used: 12345\n",
                                  f"  - user_id: {nobody}\n    model: m\n    tokens_used: 12345\n"))
    before = snapshot(pydb_database)
    with pytest.raises(SeedError) as info:
        load_seed(path, pydb_database)
    [problem] = [str(p) for p in info.value.problems]
    assert problem.startswith(f"seed.yaml:{19 + 3 * 12345}:5: ai_usage_log: the database refused this row: "
                              f'insert or update on table "ai_usage_log" violates foreign key constraint')
    assert f"(user_id)=({nobody}) is not present" in problem
    assert snapshot(pydb_database) == before
