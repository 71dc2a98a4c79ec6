"""Errors as the studio's pages show them: the database's own words, with its detail and hint."""

from __future__ import annotations

from pydb.errors import PydbError
from pydb.urls import mask_password

__all__ = ["explain"]


def explain(err: PydbError) -> str:
    """One paragraph for a page: PostgreSQL's message, detail, hint and position when the driver gave them."""
    cause = err.__cause__
    diag = getattr(getattr(cause, "orig", None) or cause, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if diag is None or not primary:
        return mask_password(str(err))
    parts = [str(primary)]
    if diag.message_detail:
        parts.append(str(diag.message_detail))
    if diag.message_hint:
        parts.append(f"Hint: {diag.message_hint}")
    if diag.statement_position:
        parts.append(f"(at character {diag.statement_position})")
    return mask_password(" ".join(parts))
