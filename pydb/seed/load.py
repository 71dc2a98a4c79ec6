"""Write seed rows in one transaction: COPY straight into empty tables, else through staging tables and upserts."""

from __future__ import annotations

import operator
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg
from psycopg import sql

from pydb.errors import SeedError, SeedProblem
from pydb.seed.plan import RowGroup, TablePlan
from pydb.seed.rows import CheckedRow, Named, Ref
from pydb.seed.spool import Spool, SpoolFile

__all__ = ["LOCK_KEY", "CopySink", "Progress", "ProgressCallback", "SeedReport", "StaleCopyData", "StreamedTable",
           "TableReport", "Writer", "domain_problems"]

ProgressCallback = Callable[[int, int], None]
"""Called as progress(rows_written, rows_total) while rows are written; rows_total is an estimate until the end."""

# One seed at a time per database: a second `pydb seed` waits, then finds the first one's rows.
LOCK_KEY = 0x5EED_0D0B
_SCHEMA = "public"
_PROGRESS_STEP = 5000
_SWITCH = 1000  # rows of another group that make a streamed table's COPY switch to that group
_STATEMENT_ROWS = 10_000  # rows of a streamed table's COPY statement (each one's foreign keys are checked at its end)
# The sequence a column takes its values from: the one it owns (serial, identity), else the one its
# default's nextval() names (common in schemas restored from dumps, where no column owns it).
_SEQUENCE_OF_COLUMN = """
SELECT coalesce(pg_get_serial_sequence(t.rel::text, a.attname), (
         SELECT d.refobjid::regclass::text FROM pg_attrdef ad
           JOIN pg_depend d ON d.classid = 'pg_attrdef'::regclass AND d.objid = ad.oid
                           AND d.refclassid = 'pg_class'::regclass
           JOIN pg_class s ON s.oid = d.refobjid AND s.relkind = 'S'
          WHERE ad.adrelid = t.rel AND ad.adnum = a.attnum LIMIT 1))
  FROM (SELECT %s::regclass AS rel) AS t JOIN pg_attribute a ON a.attrelid = t.rel AND a.attname = %s
"""


@dataclass(slots=True)
class TableReport:
    """What a seed did (or, in a dry run, would do) to one table."""

    table: str
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0


class _Total:
    """A count of a SeedReport summed over its tables (the TableReport field of the same name)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, report: SeedReport, owner: type | None = None) -> int:
        return sum(int(getattr(table, self.name)) for table in report.tables)


@dataclass(slots=True)
class SeedReport:
    """What a seed did, table by table, in foreign-key order."""

    path: str
    tables: list[TableReport] = field(default_factory=list)
    dry_run: bool = False
    reset: bool = False

    inserted = _Total()  # rows inserted, all tables
    updated = _Total()  # rows updated, all tables
    unchanged = _Total()  # rows found already as the file says, all tables
    deleted = _Total()  # rows deleted by --reset, all tables


class StaleCopyData(Exception):
    """Cached COPY text no longer fits the database (a row of it is found under another key): read the file."""


class CopySink(Protocol):
    """Where the COPY text of each group goes besides the server (the plan cache), and where cached text comes from."""

    def writer(self, cursor: psycopg.Cursor[Any], group: RowGroup) -> psycopg.copy.Writer | None: ...

    def feed(self, copy: psycopg.Copy, segments: list[tuple[int, int]]) -> None: ...

    def remapped(self) -> None: ...


class Progress:
    """Rows written so far, reported to a progress callback every few thousand rows."""

    def __init__(self, callback: ProgressCallback | None, total: int) -> None:
        self.callback = callback
        self.total = total
        self.done = 0

    def tick(self, count: int) -> None:
        """Count rows written."""
        self.done += count
        if self.callback is not None and count:
            self.total = max(self.total, self.done)
            self.callback(self.done, self.total)

    def end(self) -> None:
        """The last report: every row is written."""
        if self.callback is not None and self.done:
            self.total = self.done
            self.callback(self.done, self.done)


class Writer:
    """Writes tables on one transaction's cursor; `!ref`s are resolved through `names` when written."""

    def __init__(self, cur: psycopg.Cursor[Any], names: dict[str, Named], progress: Progress,
                 sink: CopySink | None = None) -> None:
        self.cur = cur
        self.names = names
        self.progress = progress
        self.sink = sink
        self.spool_file = SpoolFile()
        self.staged = 0

    def close(self) -> None:
        """Remove the rows kept on disk."""
        self.spool_file.close()

    def spool(self) -> Spool:
        """A new store for rows that wait."""
        return Spool(self.spool_file)

    def keep(self, group: RowGroup, row: CheckedRow) -> None:
        """Keep a row of a group to write later."""
        if group.rows is None:
            group.rows = Spool(self.spool_file)
        assert isinstance(group.rows, Spool)
        group.rows.add(row)

    def lock(self) -> None:
        """Wait for any other seed of this database to end (the lock lasts until the transaction ends)."""
        self.cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))

    def is_empty(self, name: str) -> bool:
        """Tell whether a table has no rows."""
        return _empty(self.cur, sql.Identifier(_SCHEMA, name))

    @contextmanager
    def copy_into(self, target: sql.Composable, group: RowGroup) -> Iterator[psycopg.Copy]:
        """A COPY of a group's columns into target (the sink keeps its text too)."""
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in group.columns)
        query = sql.SQL("COPY {} ({}) FROM STDIN").format(target, columns)
        writer = self.sink.writer(self.cur, group) if self.sink is not None else None
        with self.cur.copy(query, writer=writer) as copy:
            yield copy

    def delete_all(self, tables: list[TablePlan]) -> dict[str, int]:
        """DELETE every row of the seeded tables, children first."""
        deleted: dict[str, int] = {}
        for table in reversed(tables):
            self.cur.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(_SCHEMA, table.name)))
            deleted[table.name] = max(self.cur.rowcount, 0)
        return deleted

    def load_table(self, table: TablePlan, *, known_empty: bool, careful: bool) -> TableReport:
        """Write the rows of a table that wait; with careful, a refusal is reported at the row it refused."""
        cur = self.cur
        groups = [g for g in table.groups if _waiting(g)]
        target = sql.Identifier(_SCHEMA, table.name)
        if not careful:
            return self._write(table, groups, empty=known_empty or _empty(cur, target))
        cur.execute("SAVEPOINT pydb_seed_table")
        try:
            empty = known_empty or _empty(cur, target)
            report = self._write(table, groups, empty=empty)
        except psycopg.Error as err:
            cur.execute("ROLLBACK TO SAVEPOINT pydb_seed_table")
            raise SeedError([self._refusal(table, groups, empty=known_empty or _empty(cur, target), first=err)]) \
                from err
        cur.execute("RELEASE SAVEPOINT pydb_seed_table")
        return report

    def _write(self, table: TablePlan, groups: list[RowGroup], *, empty: bool) -> TableReport:
        report = TableReport(table.name)
        target = sql.Identifier(_SCHEMA, table.name)
        if empty:
            # Nothing to match against: COPY straight into the table.
            for group in groups:
                with self.copy_into(target, group) as copy:
                    self._feed(copy, group)
                report.inserted += _waiting(group)
            return report
        staged = [(group, self._stage(table, group)) for group in groups]
        remap: dict[Any, Any] = {}
        for group, tmp in staged:
            if table.uuid_pk and group.match == "unique":
                remap.update(self._remap(table, group, tmp))
        if remap:
            if self.sink is not None:
                self.sink.remapped()
            self._apply_remap(table, staged, remap)
        for group, tmp in staged:
            inserted, updated = self._upsert(table, group, tmp)
            report.inserted += inserted
            report.updated += updated
            report.unchanged += _waiting(group) - inserted - updated
        return report

    def _feed(self, copy: psycopg.Copy, group: RowGroup) -> None:
        """Send a group's rows (or its cached COPY text) into an open COPY."""
        if group.copy_data is not None:
            assert self.sink is not None
            self.sink.feed(copy, group.copy_data)
            self.progress.tick(group.count)
            return
        assert group.rows is not None
        names = self.names
        columns = group.columns
        count = 0
        for row in group.rows:
            values = row.values
            out = [values[c] for c in columns]
            for i, value in enumerate(out):
                if type(value) is Ref:
                    out[i] = names[value.name].key
            copy.write_row(out)
            count += 1
            if count == _PROGRESS_STEP:
                self.progress.tick(count)
                count = 0
        self.progress.tick(count)

    def _refusal(self, table: TablePlan, groups: list[RowGroup], *, empty: bool, first: psycopg.Error) -> SeedProblem:
        """The row the database refuses, found by halving the rows of the failing group (each try rolled back)."""
        self.progress.callback = None
        for group in groups:
            rows = list(group.rows or [])
            if self._fails(table, group, rows, empty) is None:
                continue
            while len(rows) > 1:
                half = rows[: len(rows) // 2]
                rows = half if self._fails(table, group, half, empty) is not None else rows[len(half):]
            error = self._fails(table, group, rows, empty) or first
            row = rows[0]
            column = error.diag.column_name
            line, col = row.position_of(column) if column else (row.line, row.column)
            return SeedProblem(table.path, line, col, f"{table.name}: the database refused this row: "
                                                      f"{_db_message(error)}")
        return SeedProblem(table.path, table.line, table.column,
                           f"{table.name}: the database refused the rows: {_db_message(first)}")

    def _fails(self, table: TablePlan, group: RowGroup, rows: list[CheckedRow], empty: bool) -> psycopg.Error | None:
        """Write some rows of a group inside a savepoint rolled back afterwards; the error, if any."""
        cur = self.cur
        sink, self.sink = self.sink, None
        cur.execute("SAVEPOINT pydb_seed_try")
        try:
            self._write(table, [RowGroup(group.columns, group.match, group.key, len(rows), rows)], empty=empty)
        except psycopg.Error as err:
            return err
        finally:
            cur.execute("ROLLBACK TO SAVEPOINT pydb_seed_try")
            self.sink = sink
        return None

    def _stage(self, table: TablePlan, group: RowGroup) -> sql.Identifier:
        self.staged += 1
        tmp = sql.Identifier(f"pydb_seed_{self.staged}")
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in group.columns)
        self.cur.execute(sql.SQL(
            "CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            tmp, columns, sql.Identifier(_SCHEMA, table.name)))
        with self.copy_into(tmp, group) as copy:
            self._feed(copy, group)
        self.cur.execute(sql.SQL("ANALYZE {}").format(tmp))
        return tmp

    def _remap(self, table: TablePlan, group: RowGroup, tmp: sql.Identifier) -> dict[Any, Any]:
        """Rows found by a unique key keep the primary key they already have in the database."""
        pk = sql.Identifier(str(table.uuid_pk))
        on = sql.SQL(" AND ").join(sql.SQL("t.{c} = s2.{c}").format(c=sql.Identifier(c)) for c in group.key)
        query = sql.SQL(
            "UPDATE {tmp} AS s SET {pk} = m.new FROM ("
            " SELECT s2.ctid AS row_id, s2.{pk} AS old, t.{pk} AS new FROM {tmp} AS s2"
            " JOIN {target} AS t ON {on} WHERE s2.{pk} IS DISTINCT FROM t.{pk}"
            ") AS m WHERE s.ctid = m.row_id RETURNING m.old, m.new"
        ).format(tmp=tmp, pk=pk, target=sql.Identifier(_SCHEMA, table.name), on=on)
        return {old: new for old, new in self.cur.execute(query).fetchall()}

    def _apply_remap(self, table: TablePlan, staged: list[tuple[RowGroup, sql.Identifier]],
                     remap: dict[Any, Any]) -> None:
        if any(group.rows is None for group, _tmp in staged):
            raise StaleCopyData(table.name)
        pk = str(table.uuid_pk)
        first_row: dict[Any, tuple[int, int]] = {}
        for group, _tmp in staged:
            for row in group.rows or ():
                key = remap.get(row.values[pk], row.values[pk])
                if key in first_row:
                    line, col = first_row[key]
                    raise SeedError([SeedProblem(
                        table.path, row.line, row.column,
                        f"{table.name}: this row and the row at {table.path}:{line}:{col} are the same row "
                        f"of the database ({pk} {key}); one is found by its unique key, the other by its _id")])
                first_row[key] = (row.line, row.column)
        for named in self.names.values():
            if named.table == table.name and named.has_key and named.key in remap:
                named.key = remap[named.key]
        olds, news = list(remap), list(remap.values())
        for group, tmp in staged:
            for column in table.self_ref_columns:
                if column in group.columns:
                    self.cur.execute(sql.SQL(
                        "UPDATE {tmp} AS s SET {c} = m.new FROM unnest(%s::uuid[], %s::uuid[]) AS m(old, new)"
                        " WHERE s.{c} = m.old").format(tmp=tmp, c=sql.Identifier(column)), (olds, news))

    def _upsert(self, table: TablePlan, group: RowGroup, tmp: sql.Identifier) -> tuple[int, int]:
        target = sql.Identifier(_SCHEMA, table.name)
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in group.columns)
        cur = self.cur
        if group.match == "content":
            # Matched on content: insert the rows not there yet (EXCEPT compares NULLs as equal, and hashes).
            cur.execute(sql.SQL(
                "INSERT INTO {target} ({cols}) SELECT {cols} FROM {tmp} EXCEPT SELECT {cols} FROM {target}"
            ).format(target=target, cols=cols, tmp=tmp))
            return max(cur.rowcount, 0), 0
        conflict = table.pk if table.uuid_pk else group.key
        changing = [c for c in group.columns if c not in conflict]
        compared = [c for c in changing if not (c == "updated_at" and table.has_updated_at)]
        if not changing:
            action: sql.Composable = sql.SQL("DO NOTHING")
        else:
            sets: list[sql.Composable] = [sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in changing]
            if table.has_updated_at and "updated_at" not in group.columns:
                sets.append(sql.SQL("updated_at = now()"))
            mine = sql.SQL(", ").join(sql.SQL("t.{}").format(sql.Identifier(c)) for c in compared or changing)
            theirs = sql.SQL(", ").join(sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in compared or changing)
            action = sql.SQL("DO UPDATE SET {sets} WHERE ROW({mine}) IS DISTINCT FROM ROW({theirs})").format(
                sets=sql.SQL(", ").join(sets), mine=mine, theirs=theirs)
        names = sql.SQL(", ").join(sql.Identifier(c) for c in conflict)
        count = _waiting(group)
        if table.partitioned:
            # A partitioned table has no xmax to tell inserts from updates: count the rows already there
            # (CTEs see the table as it was before the INSERT), the rest of the staged rows are new.
            on = sql.SQL(" AND ").join(sql.SQL("t.{c} = s.{c}").format(c=sql.Identifier(c)) for c in conflict)
            query = sql.SQL(
                "WITH found AS (SELECT count(*) AS n FROM {tmp} AS s JOIN {target} AS t ON {on}),"
                " written AS (INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM {tmp}"
                " ON CONFLICT ({conflict}) {action} RETURNING 1)"
                " SELECT %s - (SELECT n FROM found), count(*) - (%s - (SELECT n FROM found)) FROM written"
            ).format(target=target, cols=cols, tmp=tmp, action=action, conflict=names, on=on)
            row = cur.execute(query, (count, count)).fetchone()
        else:
            query = sql.SQL(
                "WITH written AS (INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM {tmp}"
                " ON CONFLICT ({conflict}) {action} RETURNING (t.xmax = 0) AS inserted)"
                " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written"
            ).format(target=target, cols=cols, tmp=tmp, action=action, conflict=names)
            row = cur.execute(query).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def advance_sequences(self, tables: list[TablePlan]) -> None:
        """Move serial/identity sequences past explicit ids, so the application's next insert does not clash."""
        cur = self.cur
        for table in tables:
            given = {c for g in table.groups for c in g.columns}
            for column in table.sequence_columns:
                if column not in given or column == table.uuid_pk:
                    continue
                row = cur.execute(_SEQUENCE_OF_COLUMN, (sql.Identifier(_SCHEMA, table.name).as_string(cur),
                                                        column)).fetchone()
                if not row or not row[0]:
                    continue
                cur.execute(sql.SQL(
                    "SELECT setval(%s::regclass, m) FROM (SELECT max({c}) AS m FROM {t}) AS x"
                    " WHERE m IS NOT NULL AND m > coalesce(pg_sequence_last_value(%s::regclass), 0)"
                ).format(c=sql.Identifier(column), t=sql.Identifier(_SCHEMA, table.name)), (row[0], row[0]))


class _Ending(threading.Thread):
    """A COPY statement ending in the background, while the next rows are read.

    When a COPY ends, the server checks the foreign keys of all its rows; the connection is left
    to this thread meanwhile (the reading thread only keeps rows aside until `wait`).
    """

    def __init__(self, statement: ExitStack) -> None:
        super().__init__(name="pydb-seed-copy-end", daemon=True)
        self._statement = statement
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        """End the statement, keeping its error for `wait`."""
        try:
            self._statement.close()
        except BaseException as err:
            self.error = err

    def wait(self) -> None:
        """Wait for the statement to end; raise its error."""
        self.join()
        if self.error is not None:
            raise self.error


class StreamedTable:
    """A table that was empty, written while its rows are read.

    The rows of one group go straight into COPY, in statements of some thousand rows; each
    statement ends in the background while the next rows are read (its foreign keys are checked
    then). Rows of other groups wait in a spool and are copied when the table's rows end (a group
    that gathers many rows gets the COPY instead); rows whose `!ref`s cannot be resolved yet wait in
    their group's spool until the whole file is read.
    """

    def __init__(self, writer: Writer, table: TablePlan) -> None:
        self.writer = writer
        self.table = table
        self.target = sql.Identifier(_SCHEMA, table.name)
        self.report = TableReport(table.name)
        self._stack = ExitStack()
        self._group: RowGroup | None = None
        self._copy: psycopg.Copy | None = None
        self._later: dict[int, tuple[RowGroup, Spool]] = {}  # other groups, copied at the table's end
        self._values: Callable[[dict[str, Any]], Any] = dict.values  # a row's values, in COPY order (set by _open)
        self._ending: _Ending | None = None  # the previous statement, ending in the background
        self._kept: list[Any] = []  # rows (values in COPY order) read while it ends
        self._in_statement = 0
        self._count = 0

    def add(self, group: RowGroup, row: CheckedRow, ready: bool) -> None:
        """Write a row (ready: its refs are resolved), or keep it for later."""
        if not ready:
            self.writer.keep(group, row)
            return
        if self._group is None:
            self._open(group)
        if group is self._group:
            values = self._values(row.values)
            if self._ending is not None:
                self._kept.append(values)
                if len(self._kept) >= _STATEMENT_ROWS or not self._ending.is_alive():
                    self._resume()
            else:
                assert self._copy is not None
                self._copy.write_row(values)
                self._in_statement += 1
                if self._in_statement >= _STATEMENT_ROWS:
                    self._ending = _Ending(self._stack)
                    self._stack, self._copy = ExitStack(), None
            self._count += 1
            if self._count == _PROGRESS_STEP:
                self.writer.progress.tick(self._count)
                self._count = 0
            return
        later = self._later.get(id(group))
        if later is None:
            later = self._later[id(group)] = (group, self.writer.spool())
        later[1].add(row)
        if len(later[1]) >= _SWITCH:
            # Many rows of another group: end this COPY and stream that group's rows instead.
            del self._later[id(group)]
            self._settle()
            self._stack.close()
            self._open(group)
            waiting, group.rows = group.rows, later[1]
            assert self._copy is not None
            self.writer._feed(self._copy, group)
            group.rows = waiting

    def _open(self, group: RowGroup) -> None:
        self._stack = ExitStack()
        self._group = group
        columns = group.columns
        self._values = operator.itemgetter(*columns) if len(columns) > 1 else lambda values: (values[columns[0]],)
        self._copy = self._stack.enter_context(self.writer.copy_into(self.target, group))
        self._in_statement = 0

    def _resume(self) -> None:
        """The previous statement has ended: a new one, starting with the rows read meanwhile."""
        assert self._ending is not None and self._group is not None
        self._ending.wait()
        self._ending = None
        self._copy = self._stack.enter_context(self.writer.copy_into(self.target, self._group))
        for values in self._kept:
            self._copy.write_row(values)
        self._in_statement = len(self._kept)
        self._kept = []

    def _settle(self) -> None:
        """No statement left ending in the background, the rows read meanwhile sent."""
        if self._ending is not None:
            self._resume()

    def finish(self) -> TableReport:
        """End the COPY, then copy the other groups' rows; the rows written so far are counted."""
        self._settle()
        self._stack.close()
        writer = self.writer
        writer.progress.tick(self._count)
        written = sum(g.count - len(g.rows or ()) for g in self.table.groups)
        for group, rows in self._later.values():
            waiting, group.rows = group.rows, rows
            with writer.copy_into(self.target, group) as copy:
                writer._feed(copy, group)
            group.rows = waiting
        self.report.inserted = written
        return self.report

    def close(self) -> None:
        """End the COPY, writing nothing more (a problem was found: the transaction is rolled back)."""
        self._join()
        self._stack.close()

    def abort(self, exc: BaseException) -> None:
        """End the COPY with an error (the transaction is rolled back)."""
        self._join()
        self._stack.__exit__(type(exc), exc, exc.__traceback__)

    def _join(self) -> None:
        """Wait for a statement ending in the background; its error does not matter any more."""
        if self._ending is not None:
            self._ending.join()
            self._ending = None
        self._kept = []

    @property
    def complete(self) -> bool:
        """Tell whether every row of the table is written (none waits for a later `!ref`)."""
        return all(not g.rows for g in self.table.groups)


def domain_problems(cur: psycopg.Cursor[Any], tables: list[TablePlan]) -> list[SeedProblem]:
    """Values the server says its domains refuse (one round trip per domain), at their positions in the file.

    Needs PostgreSQL 16+ (pg_input_error_info); on older servers a refusal is found when the rows are written.
    """
    if cur.connection.info.server_version < 160000:
        return []
    found: dict[str, list[tuple[TablePlan, CheckedRow, str, str]]] = {}
    for table in tables:
        domains = {name: sql.Identifier(*parts).as_string(cur) for name, parts in table.domain_columns.items()}
        if not domains:
            continue
        for group in table.groups:
            names = [name for name in group.columns if name in domains]
            if not names:
                continue
            for row in group.rows or ():
                for name in names:
                    value = row.values[name]
                    if value is not None and not isinstance(value, Ref | list | dict):
                        found.setdefault(domains[name], []).append((table, row, name, str(value)))
    problems = []
    for domain, items in found.items():
        texts = sorted({text for _table, _row, _name, text in items})
        refused = dict(cur.execute(
            "SELECT v, (pg_input_error_info(v, %s)).message FROM unnest(%s::text[]) AS v", (domain, texts),
        ).fetchall())
        for table, row, name, text in items:
            if refused.get(text):
                line, col = row.position_of(name)
                problems.append(SeedProblem(table.path, line, col, f"{table.name}.{name}: {refused[text]}"))
    return problems


def _waiting(group: RowGroup) -> int:
    """Rows of a group still to write."""
    if group.copy_data is not None:
        return group.count
    return len(group.rows) if group.rows is not None else 0


def _empty(cur: psycopg.Cursor[Any], target: sql.Composable) -> bool:
    return cur.execute(sql.SQL("SELECT NOT EXISTS (SELECT FROM {})").format(target)).fetchone() == (True,)


def _db_message(err: psycopg.Error) -> str:
    diag = err.diag
    text = diag.message_primary or str(err).strip().splitlines()[0]
    if diag.message_detail:
        text += f" ({diag.message_detail})"
    return text
