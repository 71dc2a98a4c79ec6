"""Typed pydb code with mistakes: tests/test_typing.py asserts that mypy reports each marked line."""

from __future__ import annotations

from pydb import db, users
from pydb.schema import UsersInsert


def mistakes() -> None:
    """One mistake a line; none of them is found before run time without the typed module."""
    user = db.query.users.find_first(where=users.c.email == "ada@example.com")
    if user is None:
        return
    print(user["emial"])  # unknown key
    tokens: int = user["email"]  # an int from a str column
    name: str = user["password_hash"]  # a nullable column used as not null
    print(users.c.emial)  # unknown column
    new: UsersInsert = {"email": "eve@example.com", "name": 42}  # wrong insert value
    db.query.users.find_first(with_={"projets": True})  # unknown relation
    db.query.users.find_first(with_={"projects": {"with_": {"ownr": True}}})  # unknown nested relation
    print(tokens, name, new)
