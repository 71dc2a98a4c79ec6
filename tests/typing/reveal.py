"""What mypy infers for typed pydb code: tests/test_typing.py asserts each `reveal_type` line exactly."""

from __future__ import annotations

from typing import reveal_type

import sqlalchemy as sa

from pydb import async_db, db, users


def reveal() -> None:
    """Rows, nested relations, a Core select and a prepared query, as mypy sees them."""
    user = db.query.users.find_first(where=users.c.email == "ada@example.com",
                                     with_={"projects": {"with_": {"owner": True}}})
    reveal_type(user)
    if user is not None:
        reveal_type(user["projects"][0])
        reveal_type(user["projects"][0]["owner"]["email"])
        reveal_type(user["role"])
    reveal_type(sa.select(users.c.email, users.c.created_at))
    reveal_type(users.c.password_hash)
    reveal_type(db.query.users.prepare(where=users.c.email == "ada@example.com").all())


async def reveal_async() -> None:
    """The same through the async default database."""
    user = await async_db.query.users.find_first(where=users.c.email == "ada@example.com",
                                                 with_={"projects": {"with_": {"owner": True}}})
    reveal_type(user)
    reveal_type(await async_db.query.users.prepare(where=users.c.email == "ada@example.com").first())
