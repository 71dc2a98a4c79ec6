"""schema.hcl as Atlas sees it: applied to a scratch copy of the dev database, then read by pydb's reflection.

Atlas applies the project's `local` env source (atlas.hcl: schema.hcl) to a new database copied
from the dev database, so the tables are what PostgreSQL made of the HCL (types, defaults, enums
normalised by the server), and pydb.reflect reads them as it reads any live database: one schema
reader for the typed module and for the tables pydb hands out at run time. The copy is also the
dev database of that one Atlas run: Atlas normalises the HCL there and removes what it made before
it plans, and the empty copy needs nothing else. So the shared dev database is only ever a template
here, and other Atlas runs on it are not disturbed. The copy is dropped afterwards, also on failure.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pydb.atlas import Atlas
from pydb.errors import translate_driver_errors
from pydb.reflect import reflect
from pydb.testing import scratch_database
from pydb.urls import database_name, to_atlas, to_sqlalchemy

__all__ = ["schema_tables"]


def schema_tables(dev_url: str, atlas: Atlas, *, schema: str = "public") -> dict[str, sa.Table]:
    """Apply the `local` env's schema to a scratch copy of the dev database and return its tables, reflected."""
    with scratch_database(dev_url, database_name(dev_url), prefix="pydb_types_") as target:
        scoped = to_atlas(target, schema=schema)
        atlas.schema_apply(env="local", url=scoped, dev_url=scoped)
        engine = sa.create_engine(to_sqlalchemy(target), poolclass=NullPool)
        try:
            with translate_driver_errors(target, "cannot read the schema Atlas applied"), engine.connect() as conn:
                metadata = reflect(conn, schema)
        finally:
            engine.dispose()
    return {table.name: table for table in metadata.sorted_tables}
