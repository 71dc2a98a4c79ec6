"""Rows changed from the studio's forms: text checked with the seed's converters, each write one transaction.

An update sets only the columns whose value changed, and `updated_at` is then set to the database's
`now()` by the reflected table's ON UPDATE default (pydb.reflect), as for every update made through pydb.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from pydb.database import Database
from pydb.errors import translate_driver_errors
from pydb.reflect import UPDATED_AT
from pydb.relations import Relation
from pydb.seed.convert import InvalidValue, column_type, convert_text
from pydb.studio.browse import key_condition, parent_choices
from pydb.studio.values import has_converter, text_of

__all__ = ["FormField", "delete_row", "form_fields", "insert_row", "parse_form", "update_row"]


@dataclass
class FormField:
    """One input of a row form."""

    name: str
    type: str
    widget: str  # text, textarea, enum, bool, choice or fixed (shown, not sent)
    value: str = ""
    null: bool = False
    nullable: bool = False
    default: str | None = None
    options: list[tuple[str, str]] = field(default_factory=list)  # (value, label)
    note: str = ""
    error: str | None = None


def _default_text(column: sa.Column[Any]) -> str | None:
    arg = getattr(column.server_default, "arg", None)
    if arg is None:
        return "identity" if column.identity is not None else None
    return str(getattr(arg, "text", arg))


def _is_bool(column: sa.Column[Any]) -> bool:
    return isinstance(column_type(column), sa.Boolean)


def _editable(column: sa.Column[Any], inserting: bool) -> str:
    """'' when a form sets the column, else why not."""
    if column.name == UPDATED_AT and column.onupdate is not None:
        return "set to now() when saved"
    if not has_converter(column):
        return "not editable here: change it on the SQL page"
    if column.primary_key and not inserting:
        return "primary key"
    return ""


def form_fields(
    db: Database, table: sa.Table, type_labels: Mapping[str, str], to_one: Mapping[str, Relation],
    row: Mapping[str, Any] | None, submitted: Mapping[str, str] | None, errors: Mapping[str, str],
) -> list[FormField]:
    """The inputs of the edit form (row given) or the insert form (row None), holding submitted text if any."""
    inserting = row is None
    out = []
    for column in table.columns:
        name = column.name
        current = None if row is None else row.get(name)
        f = FormField(name, type_labels[name], "text", nullable=bool(column.nullable),
                      default=_default_text(column) if inserting else None, error=errors.get(name))
        f.note = _editable(column, inserting)
        if f.note:
            f.widget = "fixed"
            f.value, f.null = ("" if current is None else text_of(current)), current is None and not inserting
            out.append(f)
            continue
        kind = column_type(column)
        if isinstance(kind, sa.Enum):
            f.widget, f.options = "enum", [(label, label) for label in kind.enums]
        elif isinstance(kind, sa.Boolean):
            f.widget = "bool"
        elif name in to_one and (choices := parent_choices(db, to_one[name])) is not None:
            f.widget, f.options = "choice", [(text_of(k), f"{label} ({text_of(k)})") for k, label in choices.options]
        elif isinstance(kind, sa.Text) or (isinstance(kind, sa.String) and kind.length is None):
            f.widget = "textarea"
        if submitted is not None:
            f.null = bool(submitted.get(f"null.{name}"))
            f.value = ("true" if submitted.get(f"v.{name}") else "false") if f.widget == "bool" \
                else submitted.get(f"v.{name}", "")
        elif inserting:
            f.value = "true" if f.widget == "bool" and (f.default or "").lower() == "true" else ""
        else:
            f.null = current is None
            f.value = "" if current is None else text_of(current)
        out.append(f)
    return out


def parse_form(table: sa.Table, form: Mapping[str, str], *, inserting: bool) -> tuple[dict[str, Any], dict[str, str]]:
    """Column values from a submitted form, and the problem of each column whose text does not fit."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for column in table.columns:
        name = column.name
        if _editable(column, inserting):
            continue
        if form.get(f"null.{name}"):
            if not column.nullable:
                errors[name] = "cannot be NULL"
            else:
                values[name] = None
            continue
        text = ("true" if form.get(f"v.{name}") else "false") if _is_bool(column) else form.get(f"v.{name}", "")
        if inserting and text == "":
            if _default_text(column) is not None or column.nullable:
                continue  # the column's default (NULL when it has none)
            if not isinstance(column_type(column), sa.String):
                errors[name] = "a value is required"
                continue
        try:
            values[name] = convert_text(column, text)
        except InvalidValue as err:
            errors[name] = str(err)
    return values, errors


def insert_row(db: Database, table: sa.Table, values: Mapping[str, Any]) -> list[Any]:
    """Insert one row in its own transaction; return its primary key."""
    stmt = sa.insert(table).values(dict(values)).returning(*table.primary_key.columns)
    with translate_driver_errors(db.url, "not saved"), db.begin() as conn:
        return list(conn.execute(stmt).one())


def update_row(db: Database, table: sa.Table, key: Sequence[Any], values: Mapping[str, Any]) -> list[str] | None:
    """Set the columns whose value changed, in one transaction; the names changed, or None if the row is gone."""
    where = key_condition(table, key)
    with translate_driver_errors(db.url, "not saved"), db.begin() as conn:
        if not values:
            found = conn.execute(sa.select(sa.literal(1)).select_from(table).where(where)).first()
            return None if found is None else []
        locked = sa.select(*(table.c[n] for n in values)).where(where).with_for_update()
        current = conn.execute(locked).mappings().first()
        if current is None:
            return None
        changed = {n: v for n, v in values.items() if current[n] != v or (current[n] is None) != (v is None)}
        if changed:
            conn.execute(sa.update(table).where(where).values(changed))
        return sorted(changed)


def delete_row(db: Database, table: sa.Table, key: Sequence[Any]) -> bool:
    """Delete one row in its own transaction; False when it was already gone."""
    with translate_driver_errors(db.url, "not deleted"), db.begin() as conn:
        return bool(conn.execute(sa.delete(table).where(key_condition(table, key))).rowcount)
