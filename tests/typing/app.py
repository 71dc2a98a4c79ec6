"""A sample application module on pydb's typed access: `mypy --strict --disallow-any-expr` reports nothing here.

tests/test_typing.py type-checks it and runs `main()` on a real database.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import uuid
from decimal import Decimal

import sqlalchemy as sa

from pydb import ai_usage_log, async_db, db, projects, users
from pydb.async_database import AsyncPreparedQuery
from pydb.database import PreparedQuery
from pydb.schema import AiUsageLogInsert, ProjectsInsert, UsersInsert, UsersRow, UsersUpdate


def sign_up(new: UsersInsert) -> uuid.UUID:
    """Insert a user (Core insert on the typed table) and return the id the database gave it."""
    with db.begin() as conn:
        return conn.execute(sa.insert(users).values(new).returning(users.c.id)).scalar_one()


def add_project(new: ProjectsInsert) -> None:
    """Insert a project."""
    with db.begin() as conn:
        conn.execute(sa.insert(projects).values(new))


def log_usage(rows: list[AiUsageLogInsert]) -> None:
    """Insert usage rows in one statement."""
    with db.begin() as conn:
        conn.execute(sa.insert(ai_usage_log), rows)


def rename(user_id: uuid.UUID, changes: UsersUpdate) -> datetime.datetime:
    """Update a user (Core update) and return its new updated_at, set by the database."""
    with db.begin() as conn:
        stmt = sa.update(users).where(users.c.id == user_id).values(changes).returning(users.c.updated_at)
        return conn.execute(stmt).scalar_one()


def user_with_projects(email: str) -> UsersRow | None:
    """A user, their projects each with its owner (two levels of with_), and their usage rows."""
    return db.query.users.find_first(
        where=users.c.email == email,
        with_={"projects": {"order_by": projects.c.name, "with_": {"owner": True}}, "ai_usage_log": True},
    )


def project_owners(email: str) -> list[tuple[str, str]]:
    """(project name, owner email) for each project of a user, read from the nested relations."""
    user = user_with_projects(email)
    if user is None:
        return []
    return [(project["name"], project["owner"]["email"]) for project in user["projects"]]


def total_cost(user_id: uuid.UUID) -> Decimal:
    """What a user's usage cost, summed in Python over find_many's typed rows."""
    rows = db.query.ai_usage_log.find_many(where=ai_usage_log.c.user_id == user_id,
                                           order_by=ai_usage_log.c.created_at)
    return sum((row["estimated_cost"] or Decimal(0) for row in rows), Decimal(0))


class Directory:
    """Lookups an application makes on every request, prepared once when it starts."""

    def __init__(self) -> None:
        self.by_email: PreparedQuery[UsersRow] = db.query.users.prepare(
            where=users.c.email == sa.bindparam("email", type_=users.c.email.type),
            columns=["id", "email", "name", "role"],
        )

    def find_by_email(self, email: str) -> UsersRow | None:
        """One user by email, through the prepared query."""
        return self.by_email.first(email=email)


def signups_since(since: datetime.datetime) -> list[tuple[str, datetime.datetime]]:
    """(email, created_at) of the users who signed up since a time: a Core select of typed columns."""
    stmt = sa.select(users.c.email, users.c.created_at).where(users.c.created_at >= since).order_by(users.c.email)
    with db.connect() as conn:
        return [(email, created) for email, created in conn.execute(stmt)]


async def owners_async(email: str) -> list[tuple[str, str]]:
    """The same tree from the async default database, read through its nested relations."""
    user = await async_db.query.users.find_first(
        where=users.c.email == email, with_={"projects": {"order_by": projects.c.name, "with_": {"owner": True}}})
    return [] if user is None else [(project["name"], project["owner"]["email"]) for project in user["projects"]]


async def rename_async(email: str, changes: UsersUpdate) -> list[str]:
    """Update through the async database's transaction, then read back with an async prepared query."""
    async with async_db.begin() as conn:
        await conn.execute(sa.update(users).where(users.c.email == email).values(changes))
    by_email: AsyncPreparedQuery[UsersRow] = async_db.query.users.prepare(
        where=users.c.email == sa.bindparam("email", type_=users.c.email.type))
    return [row["name"] for row in await by_email.all(email=email)]


async def async_part() -> dict[str, object]:
    """The async functions, on one event loop (the async database's pool belongs to it)."""
    try:
        return {"async owners": await owners_async("ada@example.com"),
                "async renamed": await rename_async("bob@example.com", {"name": "Robert"})}
    finally:
        await async_db.dispose()


def main() -> None:
    """Exercise every function once and print what they returned, as JSON."""
    start = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    ada = sign_up({"email": "ada@example.com", "name": "Ada", "role": "admin"})
    sign_up({"email": "bob@example.com", "name": "Bob"})
    add_project({"owner_id": ada, "name": "Notes"})
    add_project({"owner_id": ada, "name": "Analytical engine", "description": "a machine"})
    log_usage([{"user_id": ada, "model": "m-small", "tokens_used": 10, "estimated_cost": Decimal("0.000125")},
               {"user_id": ada, "model": "m-large", "tokens_used": 20, "estimated_cost": None}])
    updated = rename(ada, {"name": "Ada L."})
    found = Directory().find_by_email("ada@example.com")
    loaded = user_with_projects("ada@example.com")
    report: dict[str, object] = {
        "owners": project_owners("ada@example.com"),
        "cost": str(total_cost(ada)),
        "found": None if found is None else [found["name"], found["role"], str(found["id"] == ada)],
        "usage": None if loaded is None else len(loaded["ai_usage_log"]),
        "updated_at": None if loaded is None else loaded["updated_at"] == updated,
        "signups": [email for email, created in signups_since(start) if created >= start],
    }
    report.update(asyncio.run(async_part()))
    print(json.dumps(report))


if __name__ == "__main__":
    main()
