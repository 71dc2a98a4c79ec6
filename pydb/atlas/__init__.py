"""The Atlas CLI: find the binary, give atlas.hcl its URLs, and run its subcommands as typed methods."""

from pydb.atlas.client import (
    Atlas,
    AtlasResult,
    LintSummary,
    MigrateApply,
    MigrateStatus,
    SchemaApply,
    first_error,
)
from pydb.atlas.environ import atlas_environ, env_name, find_atlas

__all__ = [
    "Atlas",
    "AtlasResult",
    "LintSummary",
    "MigrateApply",
    "MigrateStatus",
    "SchemaApply",
    "atlas_environ",
    "env_name",
    "find_atlas",
    "first_error",
]
