"""Write a seed plan in one transaction: COPY into staging tables, then one upsert per group of rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.dialects.postgresql import DOMAIN

from pydb.errors import SeedError, SeedProblem
from pydb.seed.plan import RowGroup, SeedPlan, TablePlan
from pydb.seed.validate import CheckedRow, Ref

__all__ = ["LOCK_KEY", "ProgressCallback", "SeedReport", "TableReport", "write_plan"]

ProgressCallback = Callable[[int, int], None]
"""Called as progress(rows_written, rows_total) while rows are written."""

# One seed at a time per database: a second `pydb seed` waits, then finds the first one's rows.
LOCK_KEY = 0x5EED_0D0B
_SCHEMA = "public"
_PROGRESS_STEP = 5000
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


def write_plan(
    conn: psycopg.Connection[Any], plan: SeedPlan, *, dry_run: bool = False, reset: bool = False,
    progress: ProgressCallback | None = None,
) -> SeedReport:
    """Load a plan in one transaction on conn; commit, or roll back for a dry run or on any error."""
    report = SeedReport(plan.path, dry_run=dry_run, reset=reset)
    writer = _Writer(conn, plan, progress)
    try:
        with conn.cursor() as cur:
            problems = domain_problems(cur, plan)
            if problems:
                raise SeedError(problems)
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
            if reset:
                deleted = writer.delete_all(cur)
            for table in plan.tables:
                table_report = writer.load_table(cur, table, known_empty=reset)
                table_report.deleted = deleted.get(table.name, 0) if reset else 0
                report.tables.append(table_report)
            if not dry_run:
                writer.advance_sequences(cur)
    except BaseException:
        conn.rollback()
        raise
    if dry_run:
        conn.rollback()
    else:
        conn.commit()
    return report


class _Writer:
    def __init__(self, conn: psycopg.Connection[Any], plan: SeedPlan, progress: ProgressCallback | None) -> None:
        self.conn = conn
        self.plan = plan
        self.keys = dict(plan.keys)
        self.progress = progress
        self.total = plan.row_count
        self.done = 0
        self.staged = 0

    def _tick(self, count: int) -> None:
        self.done += count
        if self.progress is not None:
            self.progress(self.done, self.total)

    def delete_all(self, cur: psycopg.Cursor[Any]) -> dict[str, int]:
        """DELETE every row of the seeded tables, children first."""
        deleted: dict[str, int] = {}
        for table in reversed(self.plan.tables):
            cur.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(_SCHEMA, table.name)))
            deleted[table.name] = max(cur.rowcount, 0)
        return deleted

    def load_table(self, cur: psycopg.Cursor[Any], table: TablePlan, *, known_empty: bool) -> TableReport:
        """Write one table's rows; a refusal by the database is reported at the row it refused."""
        target = sql.Identifier(_SCHEMA, table.name)
        cur.execute("SAVEPOINT pydb_seed_table")
        try:
            empty = known_empty or _empty(cur, target)
            report = self._write(cur, table, table.groups, empty=empty)
        except psycopg.Error as err:
            cur.execute("ROLLBACK TO SAVEPOINT pydb_seed_table")
            raise SeedError([self._refusal(cur, table, empty=known_empty or _empty(cur, target), first=err)]) from err
        cur.execute("RELEASE SAVEPOINT pydb_seed_table")
        return report

    def _write(self, cur: psycopg.Cursor[Any], table: TablePlan, groups: list[RowGroup], *,
               empty: bool) -> TableReport:
        report = TableReport(table.name)
        target = sql.Identifier(_SCHEMA, table.name)
        if empty:
            # Nothing to match against: COPY straight into the table.
            for group in groups:
                self._copy(cur, target, group)
                report.inserted += len(group.rows)
            return report
        staged = [(group, self._stage(cur, table, group)) for group in groups]
        remap: dict[Any, Any] = {}
        for group, tmp in staged:
            if table.uuid_pk and group.match == "unique":
                remap.update(self._remap(cur, table, group, tmp))
        if remap:
            self._apply_remap(cur, table, staged, remap)
        for group, tmp in staged:
            inserted, updated = self._upsert(cur, table, group, tmp)
            report.inserted += inserted
            report.updated += updated
            report.unchanged += len(group.rows) - inserted - updated
        return report

    def _refusal(self, cur: psycopg.Cursor[Any], table: TablePlan, *, empty: bool, first: psycopg.Error) -> SeedProblem:
        """The row the database refuses, found by halving the rows of the failing group (each try rolled back)."""
        self.progress = None
        for group in table.groups:
            rows = group.rows
            if self._fails(cur, table, group, rows, empty) is None:
                continue
            while len(rows) > 1:
                half = rows[: len(rows) // 2]
                rows = half if self._fails(cur, table, group, half, empty) is not None else rows[len(half):]
            error = self._fails(cur, table, group, rows, empty) or first
            row = rows[0]
            column = error.diag.column_name
            line, col = row.position_of(column) if column else (row.line, row.column)
            return SeedProblem(self.plan.path, line, col, f"{table.name}: the database refused this row: "
                                                          f"{_db_message(error)}")
        return SeedProblem(self.plan.path, table.line, table.column,
                           f"{table.name}: the database refused the rows: {_db_message(first)}")

    def _fails(self, cur: psycopg.Cursor[Any], table: TablePlan, group: RowGroup, rows: list[CheckedRow],
               empty: bool) -> psycopg.Error | None:
        """Write some rows of a group inside a savepoint rolled back afterwards; the error, if any."""
        cur.execute("SAVEPOINT pydb_seed_try")
        try:
            self._write(cur, table, [RowGroup(group.columns, group.match, group.key, rows)], empty=empty)
        except psycopg.Error as err:
            return err
        finally:
            cur.execute("ROLLBACK TO SAVEPOINT pydb_seed_try")
        return None

    def _rows(self, group: RowGroup) -> Iterator[list[Any]]:
        keys = self.keys
        columns = group.columns
        for row in group.rows:
            values = row.values
            out = [values[c] for c in columns]
            for i, value in enumerate(out):
                if isinstance(value, Ref):
                    out[i] = keys[value.name]
            yield out

    def _copy(self, cur: psycopg.Cursor[Any], target: sql.Composable, group: RowGroup) -> None:
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in group.columns)
        query = sql.SQL("COPY {} ({}) FROM STDIN").format(target, columns)
        count = 0
        with cur.copy(query) as copy:
            for values in self._rows(group):
                copy.write_row(values)
                count += 1
                if count == _PROGRESS_STEP:
                    self._tick(count)
                    count = 0
        self._tick(count)

    def _stage(self, cur: psycopg.Cursor[Any], table: TablePlan, group: RowGroup) -> sql.Identifier:
        self.staged += 1
        tmp = sql.Identifier(f"pydb_seed_{self.staged}")
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in group.columns)
        cur.execute(sql.SQL("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
            tmp, columns, sql.Identifier(_SCHEMA, table.name)))
        self._copy(cur, tmp, group)
        cur.execute(sql.SQL("ANALYZE {}").format(tmp))
        return tmp

    def _remap(self, cur: psycopg.Cursor[Any], table: TablePlan, group: RowGroup,
               tmp: sql.Identifier) -> dict[Any, Any]:
        """Rows found by a unique key keep the primary key they already have in the database."""
        pk = sql.Identifier(str(table.uuid_pk))
        on = sql.SQL(" AND ").join(sql.SQL("t.{c} = s2.{c}").format(c=sql.Identifier(c)) for c in group.key)
        query = sql.SQL(
            "UPDATE {tmp} AS s SET {pk} = m.new FROM ("
            " SELECT s2.ctid AS row_id, s2.{pk} AS old, t.{pk} AS new FROM {tmp} AS s2"
            " JOIN {target} AS t ON {on} WHERE s2.{pk} IS DISTINCT FROM t.{pk}"
            ") AS m WHERE s.ctid = m.row_id RETURNING m.old, m.new"
        ).format(tmp=tmp, pk=pk, target=sql.Identifier(_SCHEMA, table.name), on=on)
        return {old: new for old, new in cur.execute(query).fetchall()}

    def _apply_remap(self, cur: psycopg.Cursor[Any], table: TablePlan,
                     staged: list[tuple[RowGroup, sql.Identifier]], remap: dict[Any, Any]) -> None:
        pk = str(table.uuid_pk)
        first_row: dict[Any, tuple[int, int]] = {}
        for group, _tmp in staged:
            for row in group.rows:
                key = remap.get(row.values[pk], row.values[pk])
                if key in first_row:
                    line, col = first_row[key]
                    raise SeedError([SeedProblem(
                        self.plan.path, row.line, row.column,
                        f"{table.name}: this row and the row at {self.plan.path}:{line}:{col} are the same row "
                        f"of the database ({pk} {key}); one is found by its unique key, the other by its _id")])
                first_row[key] = (row.line, row.column)
        for name, value in self.keys.items():
            if self.plan.key_table.get(name) == table.name and value in remap:
                self.keys[name] = remap[value]
        olds, news = list(remap), list(remap.values())
        for group, tmp in staged:
            for column in table.self_ref_columns:
                if column in group.columns:
                    cur.execute(sql.SQL(
                        "UPDATE {tmp} AS s SET {c} = m.new FROM unnest(%s::uuid[], %s::uuid[]) AS m(old, new)"
                        " WHERE s.{c} = m.old").format(tmp=tmp, c=sql.Identifier(column)), (olds, news))

    def _upsert(self, cur: psycopg.Cursor[Any], table: TablePlan, group: RowGroup,
                tmp: sql.Identifier) -> tuple[int, int]:
        target = sql.Identifier(_SCHEMA, table.name)
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in group.columns)
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
            row = cur.execute(query, (len(group.rows), len(group.rows))).fetchone()
        else:
            query = sql.SQL(
                "WITH written AS (INSERT INTO {target} AS t ({cols}) SELECT {cols} FROM {tmp}"
                " ON CONFLICT ({conflict}) {action} RETURNING (t.xmax = 0) AS inserted)"
                " SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM written"
            ).format(target=target, cols=cols, tmp=tmp, action=action, conflict=names)
            row = cur.execute(query).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    def advance_sequences(self, cur: psycopg.Cursor[Any]) -> None:
        """Move serial/identity sequences past explicit ids, so the application's next insert does not clash."""
        for table in self.plan.tables:
            given = {c for g in table.groups for c in g.columns}
            for column in table.table.columns:
                if column.name not in given or column.name == table.uuid_pk:
                    continue
                if column.identity is None and "nextval" not in str(getattr(column.server_default, "arg", "")):
                    continue
                row = cur.execute(_SEQUENCE_OF_COLUMN, (sql.Identifier(_SCHEMA, table.name).as_string(cur),
                                                        column.name)).fetchone()
                if not row or not row[0]:
                    continue
                cur.execute(sql.SQL(
                    "SELECT setval(%s::regclass, m) FROM (SELECT max({c}) AS m FROM {t}) AS x"
                    " WHERE m IS NOT NULL AND m > coalesce(pg_sequence_last_value(%s::regclass), 0)"
                ).format(c=sql.Identifier(column.name), t=sql.Identifier(_SCHEMA, table.name)), (row[0], row[0]))


def domain_problems(cur: psycopg.Cursor[Any], plan: SeedPlan) -> list[SeedProblem]:
    """Values the server says its domains refuse (one round trip per domain), at their positions in the file.

    Needs PostgreSQL 16+ (pg_input_error_info); on older servers a refusal is found when the rows are written.
    """
    if cur.connection.info.server_version < 160000:
        return []
    found: dict[str, list[tuple[TablePlan, CheckedRow, str, str]]] = {}
    for table in plan.tables:
        domains = {c.name: c.type for c in table.table.columns if isinstance(c.type, DOMAIN)}
        for group in table.groups:
            for name in domains.keys() & set(group.columns):
                kind = domains[name]
                domain = sql.Identifier(*[part for part in (kind.schema, kind.name) if part]).as_string(cur)
                for row in group.rows:
                    value = row.values[name]
                    if value is not None and not isinstance(value, Ref | list | dict):
                        found.setdefault(domain, []).append((table, row, name, str(value)))
    problems = []
    for domain, items in found.items():
        texts = sorted({text for _table, _row, _name, text in items})
        refused = dict(cur.execute(
            "SELECT v, (pg_input_error_info(v, %s)).message FROM unnest(%s::text[]) AS v", (domain, texts),
        ).fetchall())
        for table, row, name, text in items:
            if refused.get(text):
                line, col = row.position_of(name)
                problems.append(SeedProblem(plan.path, line, col, f"{table.name}.{name}: {refused[text]}"))
    return sorted(problems, key=lambda p: (p.line, p.column))


def _empty(cur: psycopg.Cursor[Any], target: sql.Composable) -> bool:
    return cur.execute(sql.SQL("SELECT NOT EXISTS (SELECT FROM {})").format(target)).fetchone() == (True,)


def _db_message(err: psycopg.Error) -> str:
    diag = err.diag
    text = diag.message_primary or str(err).strip().splitlines()[0]
    if diag.message_detail:
        text += f" ({diag.message_detail})"
    return text

