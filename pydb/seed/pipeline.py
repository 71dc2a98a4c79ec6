"""One pass over a seed file: each row read, checked, planned and written (or kept to write) as it comes.

A table that is empty and whose parents are already written is written while its rows are read,
straight into COPY: the server inserts on one core while Python reads on the other. Other rows
wait in a spool on disk, and are written in foreign-key order once the whole file is read, through
staging tables and upserts. Every problem is collected; nothing is committed here: the caller
commits when the pass returns, and rolls back when it raises.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from pydb.errors import SeedError, SeedProblem
from pydb.seed.cache import CachedLoad
from pydb.seed.load import CopySink, Progress, StreamedTable, TableReport, Writer, domain_problems
from pydb.seed.parse import SeedStream
from pydb.seed.plan import TablePlan, TablePlanner, fk_order

if TYPE_CHECKING:
    import sqlalchemy as sa

__all__ = ["PassResult", "replay", "seed_pass", "sorted_problems"]


@dataclass(slots=True)
class PassResult:
    """What a pass planned (tables in foreign-key order) and, when it wrote, what it did to each table."""

    tables: list[TablePlan]
    reports: list[TableReport]


def sorted_problems(problems: Iterable[SeedProblem], files: list[str]) -> list[SeedProblem]:
    """Problems by file (the seed file first, then its data files as named), then by position."""
    rank = {path: i for i, path in enumerate(files)}
    return sorted(problems, key=lambda p: (rank.get(p.path, len(rank)), p.line, p.column))


def seed_pass(
    stream: SeedStream, tables: dict[str, sa.Table], cur: psycopg.Cursor[Any] | None, *, progress: Progress,
    sink: CopySink | None = None, careful: bool = False, reset: bool = False, dry_run: bool = False,
    file_tables: frozenset[str] | None = None,
) -> PassResult:
    """Read, check and plan every row of a stream; with a cursor, write them. SeedError lists every problem.

    careful: write nothing before the whole file is read, ask the server about domain values first,
    and find the row the database refuses. file_tables: the tables the file names, when known
    beforehand (a table whose parents are all written or absent from the file can be streamed).
    """
    from pydb.seed.validate import SeedChecker

    checker = SeedChecker(tables, stream.path, positions=careful)
    problems = checker.problems
    files = [stream.path]
    plans: list[TablePlan] = []
    reports: dict[str, TableReport] = {}
    writer = Writer(cur, checker.names, progress, sink) if cur is not None else None
    streamed: StreamedTable | None = None
    try:
        if writer is not None:
            writer.lock()
        for seed_table in stream:
            if seed_table.rows_path not in files:
                files.append(seed_table.rows_path)
            progress.total += seed_table.estimate
            table_checker = checker.table(seed_table)
            if table_checker is None:
                for _row in seed_table.rows:
                    pass
                continue
            planner = TablePlanner(seed_table.name, seed_table.rows_path, seed_table.line, seed_table.column,
                                   tables[seed_table.name], problems)
            plan = planner.plan
            if (writer is not None and not careful and not reset and not problems and not stream.problems
                    and _streamable(plan, checker.written, file_tables) and writer.is_empty(plan.name)):
                streamed = StreamedTable(writer, plan)
            pk = plan.pk[0] if len(plan.pk) == 1 else None
            path = seed_table.rows_path
            for seed_row in seed_table.rows:
                row, refs, named = table_checker.check(seed_row)
                group = planner.add(row)
                if named is not None and pk is not None and pk in row.values:
                    named.key = row.values[pk]
                    named.has_key = True
                ready = checker.resolve(path, row, refs, seed_row) if refs else True
                if writer is None or problems or stream.problems:
                    continue  # a problem was found: nothing more is written, every row is still checked
                if streamed is not None:
                    streamed.add(group, row, ready)
                else:
                    writer.keep(group, row)
            plans.append(planner.finish())
            if streamed is not None:
                if not problems and not stream.problems:
                    reports[plan.name] = streamed.finish()
                    if streamed.complete:
                        checker.written.add(plan.name)
                else:
                    streamed.close()
                streamed = None
        checker.finish()
        order = fk_order(stream.path, plans, problems)
        if stream.problems:
            raise SeedError(list(stream.problems))
        if problems:
            raise SeedError(sorted_problems(problems, files))
        if writer is None:
            return PassResult(order, [])
        assert cur is not None
        if careful:
            refused = domain_problems(cur, order)
            if refused:
                raise SeedError(sorted_problems(refused, files))
        deleted = writer.delete_all(order) if reset else {}
        done: list[TableReport] = []
        for plan in order:
            report = reports.get(plan.name)
            if report is None:
                report = writer.load_table(plan, known_empty=reset, careful=careful)
            elif any(g.rows for g in plan.groups):
                more = writer.load_table(plan, known_empty=False, careful=careful)
                report.inserted += more.inserted
                report.updated += more.updated
                report.unchanged += more.unchanged
            report.deleted = deleted.get(plan.name, 0)
            done.append(report)
        if not dry_run:
            writer.advance_sequences(order)
        progress.end()
        return PassResult(order, done)
    except BaseException as exc:
        if streamed is not None:
            streamed.abort(exc)
        raise
    finally:
        if writer is not None:
            writer.close()


def _streamable(plan: TablePlan, written: set[str], file_tables: frozenset[str] | None) -> bool:
    """Tell whether a table's rows can go straight into COPY: no self reference, every parent written or absent."""
    if plan.self_ref_columns or file_tables is None:
        return False
    return all(parent in written or parent not in file_tables for parent in plan.parents())


def replay(cur: psycopg.Cursor[Any], cached: CachedLoad, *, progress: Progress, reset: bool,
           dry_run: bool) -> list[TableReport]:
    """Write a cached load (its COPY text) the way a pass writes: StaleCopyData when it no longer fits."""
    source = cached.open()
    writer = Writer(cur, {}, progress, source)
    try:
        writer.lock()
        deleted = writer.delete_all(cached.tables) if reset else {}
        reports = []
        for plan in cached.tables:
            report = writer.load_table(plan, known_empty=reset, careful=False)
            report.deleted = deleted.get(plan.name, 0)
            reports.append(report)
        if not dry_run:
            writer.advance_sequences(cached.tables)
        progress.end()
        return reports
    finally:
        source.close()
        writer.close()
