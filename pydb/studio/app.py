"""The studio's web app: server-rendered pages over one Database (Starlette routes, Jinja2 templates).

Pages (all GET, bookmarkable): `/`, `/tables/{table}`, `/tables/{table}/rows/{key}`, `/tables/{table}/new`,
`/tables/{table}/rows/{key}/edit`, `/tables/{table}/rows/{key}/delete`, `/tables/{table}/export.{csv,json}`,
`/sql`, `/schema`, `/schema/drift`. Forms POST to the page they came from.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from markupsafe import Markup, escape
from sqlalchemy import event
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from pydb.config import Settings, load_settings
from pydb.database import Database
from pydb.errors import DatabaseError, ProductionGuardError, PydbError
from pydb.reflect import fingerprint
from pydb.relations import Relation
from pydb.studio import browse, edit, sql
from pydb.studio.export import FORMATS, csv_chunks, json_chunks
from pydb.studio.messages import explain
from pydb.studio.security import Guard, new_token
from pydb.studio.values import CELL_LIMIT, InvalidValue, has_converter, key_path, parse_key, text_of, type_label
from pydb.urls import mask_password, to_direct

__all__ = ["Mode", "Studio", "open_studio"]

HERE = Path(__file__).resolve().parent
NOTICES = {
    "saved": "Saved.", "unchanged": "Nothing changed, nothing saved.", "created": "Row inserted.",
    "deleted": "Row deleted.",
}


@dataclass(frozen=True)
class Mode:
    """Whether the studio may change data, and why (shown on every page)."""

    writable: bool
    reason: str


_NULL_TD = '<td class="null"><span class="null">NULL</span></td>'
_EMPTY_TD = '<td class="empty"><span class="empty" title="an empty string (not NULL)">empty</span></td>'


def td_html(value: Any, href: str | None = None, limit: int = CELL_LIMIT) -> str:
    """One value as a table cell: NULL and the empty string each look their own way; long text is cut."""
    if value is None:
        return _NULL_TD
    if isinstance(value, str) and not value:
        return _EMPTY_TD
    full = text_of(value)
    cut = len(full) > limit
    text = escape(full[: limit - 1] + "…" if cut else full)
    title = f' title="{escape(full)}"' if cut else ""
    if href:
        return f'<td class="value"><a href="{escape(href)}"{title}>{text}</a></td>'
    return f'<td class="value"><span{title}>{text}</span></td>' if cut else f'<td class="value">{text}</td>'


def row_html(values: Sequence[Any]) -> Markup:
    """The cells of one row of values."""
    return Markup("".join(td_html(v) for v in values))


def table_url(name: str, params: Sequence[tuple[str, str]] = ()) -> str:
    """The URL of a table page (with a view's query items)."""
    return f"/tables/{quote(name, safe='')}" + (f"?{urlencode(params)}" if params else "")


def row_url(table: sa.Table, row: Mapping[str, Any]) -> str | None:
    """The URL of a row's page (None for a table without a primary key)."""
    key = [row[c.name] for c in table.primary_key.columns]
    if not key or any(v is None for v in key):
        return None
    return f"{table_url(table.name)}/rows/{key_path(key)}"


def _read_only_session(dbapi_connection: Any, _record: Any) -> None:
    """Make every transaction of a new connection read-only unless it says otherwise (production targets)."""
    dbapi_connection.execute("SET default_transaction_read_only = on")
    dbapi_connection.commit()


def _mode(url: str, settings: Settings, *, allow_writes: bool, read_only: bool) -> Mode:
    from pydb.seed import check_production

    if read_only:
        return Mode(False, "started with --read-only")
    try:
        check_production(url, settings)
    except ProductionGuardError:
        why = "PYDB_ENV=production" if settings.production else "the Neon project's default branch"
        if allow_writes:
            return Mode(True, f"production database ({why}); writes allowed by --allow-writes")
        return Mode(False, f"production database ({why}); start with --allow-writes to change data")
    return Mode(True, "development database")


def open_studio(url: str | None = None, *, settings: Settings | None = None, allow_writes: bool = False,
                read_only: bool = False, token: str | None = None) -> Studio:
    """Connect to a database (url, else DATABASE_URL, else the local one) and build the studio for it."""
    from pydb.config import resolve_url

    settings = settings or load_settings()
    target = to_direct(resolve_url(url, settings))
    mode = _mode(target, settings, allow_writes=allow_writes, read_only=read_only)
    db = Database(target, settings=settings)
    if not mode.writable:
        event.listen(db.engine, "connect", _read_only_session)
    try:
        _ = db.tables  # connect and read the schema now: a wrong URL fails at start, not on the first page
        sql.check_timeout(db, settings.studio_statement_timeout)
    except BaseException:
        db.dispose()
        raise
    return Studio(db, settings=settings, mode=mode, token=token or new_token())


class Studio:
    """The web app over one database, with its token and mode; `app` is the ASGI application."""

    def __init__(self, db: Database, *, settings: Settings, mode: Mode, token: str) -> None:
        self.db = db
        self.settings = settings
        self.mode = mode
        self.token = token
        self.database = mask_password(db.url)
        self.templates = Jinja2Templates(directory=HERE / "templates")
        self.templates.env.globals.update(studio=self, operators=browse.OPERATORS, table_url=table_url)
        self.templates.env.trim_blocks = self.templates.env.lstrip_blocks = True
        self.templates.env.auto_reload = False  # templates are package data: no stat() per page
        routes = [
            Route("/", self.index),
            Route("/tables/{table}", self.table_page),
            Route("/tables/{table}/export.{fmt}", self.export),
            Route("/tables/{table}/new", self.new_row, methods=["GET", "POST"]),
            Route("/tables/{table}/rows/{key}", self.row_page),
            Route("/tables/{table}/rows/{key}/edit", self.edit_row, methods=["GET", "POST"]),
            Route("/tables/{table}/rows/{key}/delete", self.delete_row, methods=["GET", "POST"]),
            Route("/sql", self.sql_page, methods=["GET", "POST"]),
            Route("/schema", self.schema_page),
            Route("/schema/drift", self.drift),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ]
        self.app = Starlette(
            routes=routes, middleware=[Middleware(Guard, token=token)],
            exception_handlers={HTTPException: self._http_error, PydbError: self._pydb_error},
        )

    def close(self) -> None:
        """Close the database connections."""
        self.db.dispose()

    # -- helpers --------------------------------------------------------------------------------

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        """A page from its template."""
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return self.render(request, "error.html", exc.status_code, title=f"{exc.status_code}", message=exc.detail)

    def _pydb_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PydbError)
        return self.render(request, "error.html", 500, title="Database error", message=explain(exc))

    def _table(self, request: Request) -> sa.Table:
        name = request.path_params["table"]
        table = self.db.tables.get(name)
        if table is None:
            raise HTTPException(404, f"no table {name!r}; tables: {', '.join(sorted(self.db.tables)) or 'none'}")
        return table

    def _relations(self, table: sa.Table) -> dict[str, Relation]:
        return self.db.query.relations()[table.name]

    def _key(self, table: sa.Table, request: Request) -> list[Any]:
        if not table.primary_key.columns:
            raise HTTPException(404, f"{table.name} has no primary key: its rows have no page of their own")
        try:
            return parse_key(list(table.primary_key.columns), request.path_params["key"])
        except InvalidValue as err:
            raise HTTPException(404, f"not a key of {table.name}: {err}") from None

    def _refresh_if_changed(self) -> None:
        """Read the schema again when it changed since it was read (a push, a migration, DDL on the SQL page)."""
        with self.db.read_engine.connect() as conn:
            if fingerprint(conn, self.db.schema) != self.db.fingerprint:
                self.db.refresh()

    def _type_labels(self, table: sa.Table) -> dict[str, str]:
        dialect = self.db.engine.dialect
        return {c.name: type_label(c, dialect) for c in table.columns}

    def _cell_links(self, table: sa.Table) -> list[tuple[str, Callable[[Mapping[str, Any]], str | None] | None]]:
        """Per column: what its cells link to (primary key: the row; one-column foreign key: the parent row)."""
        parents = {}
        for relation in self._relations(table).values():
            pairs = relation.pairs
            if not relation.many and len(pairs) == 1 and [c.name for c in relation.target.primary_key] == [pairs[0][1]]:
                parents[pairs[0][0]] = f"{table_url(relation.target.name)}/rows/"
        out: list[tuple[str, Callable[[Mapping[str, Any]], str | None] | None]] = []
        for column in table.columns:
            name = column.name
            if column.primary_key:
                out.append((name, lambda row: row_url(table, row)))
            elif name in parents:
                out.append((name, _parent_link(name, parents[name])))
            else:
                out.append((name, None))
        return out

    def _refuse_writes(self, request: Request) -> Response | None:
        if self.mode.writable:
            return None
        return self.render(request, "error.html", 403, title="Read-only",
                           message=f"This studio is read-only: {self.mode.reason}.")

    # -- pages ----------------------------------------------------------------------------------

    def index(self, request: Request) -> Response:
        """`/`: the tables with their row counts, and the enum types."""
        from pydb.describe import schema_info

        self._refresh_if_changed()
        tables = list(self.db.tables.values())
        counts = browse.table_counts(self.db, tables)
        info = schema_info(tables, self.db.engine.dialect)
        listed = [
            {"name": t.name, "count": counts[t.name], "columns": len(t.columns),
             "relations": sorted(self._relations(t))}
            for t in sorted(tables, key=lambda t: t.name)
        ]
        return self.render(request, "index.html", tables=listed, enums=info.enums)

    def table_page(self, request: Request) -> Response:
        """`/tables/{table}`: one page of rows, with filters, order, paging and export links."""
        table = self._table(request)
        q = request.query_params
        view, problems = browse.View.parse(table, q.getlist("col"), q.getlist("op"), q.getlist("val"),
                                           q.get("sort"), q.get("dir"))
        page = browse.Page([])
        status = 200
        try:
            page = browse.read_page(self.db, table, view, after=q.get("after"), before=q.get("before"),
                                    last=q.get("last") == "1")
        except InvalidValue as err:
            problems.append(str(err))
            status = 400
        except DatabaseError as err:
            problems.append(explain(err))
            status = 400
        links = self._cell_links(table)
        rows = [
            Markup("".join(td_html(row[name], link(row) if link and row[name] is not None else None)
                           for name, link in links))
            for row in page.rows
        ]
        base = view.params()
        labels = self._type_labels(table)
        columns = [
            {"name": c.name, "type": labels[c.name], "sortable": has_converter(c), "pk": c.primary_key,
             "sorted": view.sort == c.name or (view.sort is None and c.primary_key),
             "sort_url": table_url(table.name, _sort_params(view, c.name))}
            for c in table.columns
        ]
        paging = {
            "first": table_url(table.name, base) if not page.first else None,
            "prev": table_url(table.name, [*base, ("before", page.prev_cursor)]) if page.prev_cursor else None,
            "next": table_url(table.name, [*base, ("after", page.next_cursor)]) if page.next_cursor else None,
            "last": table_url(table.name, [*base, ("last", "1")]) if page.next_cursor else None,
        }
        filters = [
            {"filter": f, "remove": table_url(table.name, view.params(without=i))}
            for i, f in enumerate(view.filters)
        ]
        return self.render(
            request, "table.html", status, table=table, columns=columns, rows=rows, view=view, filters=filters,
            problems=problems, paging=paging, base=base, page_size=browse.PAGE_SIZE,
            exports={fmt: f"{table_url(table.name)}/export.{fmt}" + (f"?{urlencode(base)}" if base else "")
                     for fmt in FORMATS},
            notice=NOTICES.get(q.get("notice", "")), keyed=bool(table.primary_key.columns),
        )

    def export(self, request: Request) -> Response:
        """`/tables/{table}/export.csv|json`: every row of the filtered, ordered view, streamed."""
        table = self._table(request)
        fmt = request.path_params["fmt"]
        if fmt not in FORMATS:
            raise HTTPException(404, f"no export format {fmt!r}; formats: {', '.join(FORMATS)}")
        q = request.query_params
        view, problems = browse.View.parse(table, q.getlist("col"), q.getlist("op"), q.getlist("val"),
                                           q.get("sort"), q.get("dir"))
        if problems:
            raise HTTPException(400, "; ".join(problems))
        names = [c.name for c in table.columns]
        try:
            browse.conditions(table, view.filters)
        except InvalidValue as err:
            raise HTTPException(400, str(err)) from None
        batches = ([[row[n] for n in names] for row in batch] for batch in browse.stream_rows(self.db, table, view))
        return _download(names, batches, fmt, table.name)

    def row_page(self, request: Request) -> Response:
        """`/tables/{table}/rows/{key}`: one row, its parents as links, its children counted and linked."""
        table = self._table(request)
        key = self._key(table, request)
        relations = self._relations(table)
        to_one = [r for r in relations.values() if not r.many]
        row = browse.read_row(self.db, table, key, [r.name for r in to_one])
        if row is None:
            raise HTTPException(404, f"no row of {table.name} has the key {', '.join(text_of(k) for k in key)}")
        labels = self._type_labels(table)
        fields = [{"name": c.name, "type": labels[c.name], "td": Markup(td_html(row[c.name], limit=10_000)),
                   "pk": c.primary_key} for c in table.columns]
        parents = []
        for r in to_one:
            parent = row.get(r.name)
            label = browse.label_column(r.target)
            parents.append({
                "name": r.name, "table": r.target.name, "columns": ", ".join(s for s, _ in r.pairs),
                "href": row_url(r.target, parent) if parent else None,
                "label": text_of(parent[label]) if parent and label and parent.get(label) is not None else None,
            })
        many = [r for r in relations.values() if r.many]
        counts = browse.relation_counts(self.db, row, many)
        children = [{
            "name": r.name, "table": r.target.name, "columns": ", ".join(t for _, t in r.pairs),
            "count": _count_text(counts[r.name]),
            "href": table_url(r.target.name, browse.child_filter(r, row).params()),
        } for r in many]
        return self.render(
            request, "row.html", table=table, key=key, fields=fields, parents=parents, children=children,
            python=_python_hint(table, key, [r.name for r in relations.values()]),
            url=row_url(table, row), notice=NOTICES.get(request.query_params.get("notice", "")),
        )

    async def new_row(self, request: Request) -> Response:
        """`/tables/{table}/new`: the insert form, and the insert."""
        table = self._table(request)
        if not table.primary_key.columns:
            raise HTTPException(404, f"{table.name} has no primary key: insert its rows on the SQL page")
        submitted = dict(await request.form()) if request.method == "POST" else None
        if submitted is not None:
            refused = self._refuse_writes(request)
            if refused is not None:
                return refused
            values, errors = edit.parse_form(table, _texts(submitted), inserting=True)
            message = None
            if not errors:
                try:
                    key = await run_in_threadpool(edit.insert_row, self.db, table, values)
                    return RedirectResponse(f"{table_url(table.name)}/rows/{key_path(key)}?notice=created", 303)
                except DatabaseError as err:
                    message = explain(err)
            return await run_in_threadpool(self._form, request, table, None, None, _texts(submitted), errors,
                                           message)
        return await run_in_threadpool(self._form, request, table, None, None, None, {}, None)

    async def edit_row(self, request: Request) -> Response:
        """`/tables/{table}/rows/{key}/edit`: the edit form, and the update."""
        table = self._table(request)
        key = self._key(table, request)
        row_page = f"{table_url(table.name)}/rows/{request.path_params['key']}"
        if request.method == "POST":
            refused = self._refuse_writes(request)
            if refused is not None:
                return refused
            submitted = _texts(dict(await request.form()))
            values, errors = edit.parse_form(table, submitted, inserting=False)
            message = None
            if not errors:
                try:
                    changed = await run_in_threadpool(edit.update_row, self.db, table, key, values)
                except DatabaseError as err:
                    message = explain(err)
                else:
                    if changed is None:
                        raise HTTPException(404, f"the row of {table.name} was deleted meanwhile")
                    return RedirectResponse(f"{row_page}?notice={'saved' if changed else 'unchanged'}", 303)
            return await run_in_threadpool(self._form, request, table, key, row_page, submitted, errors, message)
        return await run_in_threadpool(self._form, request, table, key, row_page, None, {}, None)

    def _form(self, request: Request, table: sa.Table, key: list[Any] | None, back: str | None,
              submitted: dict[str, str] | None, errors: dict[str, str], message: str | None) -> Response:
        row = None
        if key is not None:
            with self.db.read_engine.connect() as conn:
                found = conn.execute(sa.select(table).where(browse.key_condition(table, key))).mappings().first()
            if found is None:
                raise HTTPException(404, f"no row of {table.name} has this key")
            row = dict(found)
        to_one = {r.pairs[0][0]: r for r in self._relations(table).values() if not r.many and len(r.pairs) == 1}
        fields = edit.form_fields(self.db, table, self._type_labels(table), to_one, row, submitted, errors)
        status = 400 if (errors or message) else 200
        return self.render(request, "form.html", status, table=table, fields=fields, key=key, back=back,
                           message=message, problems=len(errors))

    async def delete_row(self, request: Request) -> Response:
        """`/tables/{table}/rows/{key}/delete`: what a delete takes with it, and the delete."""
        table = self._table(request)
        key = self._key(table, request)
        if request.method == "POST":
            refused = self._refuse_writes(request)
            if refused is not None:
                return refused
            await request.form()
            try:
                gone = await run_in_threadpool(edit.delete_row, self.db, table, key)
            except DatabaseError as err:
                return self.render(request, "error.html", 409, title="Not deleted", message=explain(err))
            if not gone:
                raise HTTPException(404, f"the row of {table.name} was already gone")
            return RedirectResponse(table_url(table.name, [("notice", "deleted")]), 303)
        return await run_in_threadpool(self._delete_form, request, table, key)

    def _delete_form(self, request: Request, table: sa.Table, key: list[Any]) -> Response:
        row = browse.read_row(self.db, table, key, [])
        if row is None:
            raise HTTPException(404, f"no row of {table.name} has this key")
        many = [r for r in self._relations(table).values() if r.many]
        counts = browse.relation_counts(self.db, row, many)
        children = [{"name": r.name, "table": r.target.name, "count": _count_text(counts[r.name]),
                     "rule": _on_delete(r)} for r in many if counts[r.name]]
        label = browse.label_column(table)
        named = text_of(row[label]) if label and row.get(label) is not None else None
        return self.render(request, "delete.html", table=table, key=", ".join(text_of(k) for k in key), named=named,
                           back=row_url(table, row), children=children)

    async def sql_page(self, request: Request) -> Response:
        """`/sql`: run one statement (read-only unless writes are allowed); show or export its rows."""
        if request.method != "POST":
            return self.render(request, "sql.html", text="", result=None, error=None)
        form = _texts(dict(await request.form()))
        text = form.get("sql", "").strip()
        action = form.get("action", "run")
        timeout = self.settings.studio_statement_timeout
        if not text:
            return self.render(request, "sql.html", 400, text=text, result=None, error="Type a statement first.")
        if action in FORMATS:
            try:
                stream = sql.stream_sql(self.db, text, timeout=timeout)
                header = await run_in_threadpool(next, stream)
            except DatabaseError as err:
                return self.render(request, "sql.html", 400, text=text, result=None, error=explain(err))
            names = [str(n) for n in header]
            batches: Iterator[Any] = stream  # after the header: batches of rows
            return await run_in_threadpool(_download, names, batches, action, "query")
        try:
            result = await run_in_threadpool(sql.run_sql, self.db, text, writes=self.mode.writable, timeout=timeout)
        except DatabaseError as err:
            return self.render(request, "sql.html", 400, text=text, result=None, error=explain(err))
        rows = [row_html(row) for row in result.rows]
        return self.render(request, "sql.html", text=text, result=result, rows=rows, error=None)

    def schema_page(self, request: Request) -> Response:
        """`/schema`: tables, columns, indexes, foreign keys, relations and enums; the schema.hcl check."""
        from pydb.describe import schema_info, schema_objects

        self._refresh_if_changed()
        info = schema_info(self.db.tables.values(), self.db.engine.dialect, schema_objects(self.db.url, self.db.schema))
        relations = {t.name: sorted(self._relations(self.db.tables[t.name]).values(), key=lambda r: r.name)
                     for t in info.tables}
        return self.render(request, "schema.html", info=info, relations=relations)

    def drift(self, request: Request) -> Response:
        """`/schema/drift`: does the database match schema.hcl? (Atlas compares them; takes a second or two.)"""
        from pydb.drift import diff_from_schema

        error = None
        diff = ""
        try:
            diff = diff_from_schema(self.db.url, settings=self.settings)
        except PydbError as err:
            error = explain(err)
        name = "drift_result.html" if request.query_params.get("fragment") == "1" else "drift.html"
        return self.render(request, name, diff=diff, error=error, schema=self.settings.root / "schema.hcl")


def _parent_link(column: str, prefix: str) -> Callable[[Mapping[str, Any]], str | None]:
    return lambda row: prefix + key_path([row[column]])


def _texts(form: Mapping[str, Any]) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _sort_params(view: browse.View, column: str) -> list[tuple[str, str]]:
    """The view sorted by column: ascending first, descending when it already is ascending."""
    descending = view.sort == column and not view.descending
    return browse.View(view.filters, column, descending).params()


def _count_text(count: int) -> str:
    return f"more than {browse.COUNT_LIMIT:,}" if count > browse.COUNT_LIMIT else f"{count:,}"


def _on_delete(relation: Relation) -> str:
    """What deleting a parent does to this relation's rows, from the child's foreign key."""
    columns = [t for _, t in relation.pairs]
    for fk in relation.target.foreign_key_constraints:
        if [c.name for c in fk.columns] == columns:
            return f"ON DELETE {(fk.ondelete or 'NO ACTION').upper()}"
    return ""


def _python_hint(table: sa.Table, key: Sequence[Any], relations: Sequence[str]) -> str:
    """The pydb query that loads this row with its relations, for the row page."""
    def literal(value: Any) -> str:
        return f"UUID({str(value)!r})" if isinstance(value, uuid.UUID) else repr(value)

    where = " & ".join(f"{table.name}.c.{c.name} == {literal(v)}" for c, v in zip(table.primary_key.columns, key,
                                                                                  strict=True))
    with_ = ", ".join(f'"{name}": True' for name in relations)
    return f"db.query.{table.name}.find_first(where={where}" + (f", with_={{{with_}}})" if with_ else ")")


def _download(names: list[str], batches: Iterator[Sequence[Sequence[Any]]], fmt: str, name: str) -> Response:
    """A streamed CSV or JSON download; its first batch is read now, so a failing query becomes a page."""
    first = next(batches, None)
    rest = batches if first is None else itertools.chain([first], batches)
    chunks = csv_chunks(names, rest) if fmt == "csv" else json_chunks(names, rest)
    return StreamingResponse(chunks, media_type=FORMATS[fmt],
                             headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'})
