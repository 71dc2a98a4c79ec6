"""pydb: schema-as-code for PostgreSQL and Neon, with SQLAlchemy Core access to the tables."""

from __future__ import annotations

__all__ = ["PydbError"]

from pydb.errors import PydbError
